import Foundation
import RNNLM

// Train a GRU sentiment classifier on labelled texts (train.tsv and test.tsv of label<TAB>text
// lines, or IMDB-style class folders); without a directory, on the toolkit's generated reviews.
var directory = CommandLine.arguments.dropFirst().first
if directory == nil {
  directory = NSTemporaryDirectory() + "sentiment-example"
  try SentimentCorpus.write(to: directory!, trainCount: 2000, testCount: 500, seed: 1)
}
let data = try LabelledTexts.load(directory: directory!)

var options = ClassifierTrainingOptions()
options.epochs = 6
options.learningRate = 0.01
let (config, vocabulary) = ClassifierTrainer.prepare(
  data: data, options: options, embeddingSize: 16, hiddenSize: 32, layers: 1, cell: .gru, dropout: 0.1,
  pooling: .last)

let trainer = try ClassifierTrainer(config: config, options: options, vocabulary: vocabulary, classes: data.classes)
let report = try trainer.run(try trainer.splits(of: data))
for epoch in report.epochs {
  print("epoch \(epoch.epoch): validation accuracy \(epoch.validAccuracy)")
}
print("test accuracy of the best epoch: \(report.testAccuracy)")

let reviews = [
  "the plot was not good , but the acting was superb", "the acting was superb , but the plot was not good",
]
for (review, p) in zip(reviews, trainer.probabilities(of: reviews)) {
  let best = p!.indices.max { p![$0] < p![$1] }!
  print("\(data.classes[best]) (\(p![best])): \(review)")
}
