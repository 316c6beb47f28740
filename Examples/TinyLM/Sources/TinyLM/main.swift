import RNNLM

// Train a small LSTM language model on a corpus (train.txt, valid.txt, test.txt), then let it write.
let directory = CommandLine.arguments.dropFirst().first ?? "corpora/tiny"
let data = try PTB.load(directory: directory)

var options = TrainingOptions()
options.epochs = 3
options.batchSize = 10
options.steps = 10
options.learningRate = 2
options.clip = 1
let config = ModelConfig(
  vocabularySize: data.vocabulary.count, embeddingSize: 16, hiddenSize: 16, layers: 2, tied: true, dropout: 0.1)

let trainer = try Trainer(config: config, options: options, vocabulary: data.vocabulary.words)
let report = try trainer.run(data)
for epoch in report.epochs {
  print("epoch \(epoch.epoch): validation perplexity \(epoch.validPerplexity)")
}
print("test perplexity of the best epoch: \(report.testPerplexity)")

let model = try TrainedModel(trainer: trainer)
let words = try model.generate(prompt: ["cats"], count: 9, temperature: 0, seed: 1)
print("cats " + words.map { $0 == "<eos>" ? "/" : $0 }.joined(separator: " "))
