import ArgumentParser
import Foundation
import RNNLM
import RNNLMCommandLine

struct Classify: ParsableCommand {
  static let configuration = CommandConfiguration(
    abstract: "Classify texts with a trained text classifier: one line per text, the label and its probability.",
    discussion: """
      Each FILE is one text (as in IMDB's folders); with -, or no FILE, every line of standard input is one text. Texts are tokenised and cut as in training.

      Examples:
        rnnlm classify runs/classifier-1/best.safetensors review.txt
        echo "the plot was not good , but the acting was superb" \\
            | rnnlm classify runs/classifier-1/best.safetensors
      """)

  @Argument(help: "The classifier's checkpoint.") var checkpoint: String
  @Argument(help: "Text files, or - for lines of standard input (the default).") var files: [String] = []
  @Flag(help: "Print every class's probability, not only the most probable one.") var all = false

  func run() throws {
    try reporting {
      let classifier = try TrainedClassifier(contentsOf: checkpoint)
      var texts: [(source: String, text: String)] = []
      for file in files.isEmpty ? ["-"] : files {
        if file == "-" {
          var n = 0
          while let line = readLine() {
            n += 1
            if !line.allSatisfy(\.isWhitespace) { texts.append(("stdin:\(n)", line)) }
          }
        } else {
          texts.append((file, try Corpus.readText(at: file)))
        }
      }
      let results = classifier.probabilities(of: texts.map(\.text))
      for ((source, _), probabilities) in zip(texts, results) {
        guard let p = probabilities else { throw DataError.malformed("\(source): the text has no words") }
        let best = p.indices.max { p[$0] < p[$1] }!
        var line = String(format: "%@\t%.4f", classifier.classes[best], p[best])
        if all {
          line += "\t" + zip(classifier.classes, p).map { String(format: "%@=%.6f", $0, $1) }.joined(separator: " ")
        }
        say(files.count > 1 ? "\(source)\t\(line)" : line)
      }
    }
  }
}

/// `rnnlm info` for a classifier's checkpoint.
func classifierInfo(_ path: String, tensors listTensors: Bool) throws {
  let s = try ClassifierCheckpoint.Summary(contentsOf: path)
  let (c, t, st) = (s.config, s.training, s.state)
  say(
    "checkpoint: \(path) (\(s.fileSize) bytes, text classifier, format version \(ClassifierCheckpoint.formatVersion))")
  say(
    "model: \(c.encoderDescription), V \(c.vocabularySize), D \(c.embeddingSize), dropout \(c.dropout), \(c.classes == 2 ? "sigmoid" : "softmax") output"
  )
  say("classes: \(s.classes.joined(separator: ", "))")
  say("parameters: \(c.parameterCount)")
  say("vocabulary: \(s.vocabularySize) words (<pad>, <unk> and the \(s.vocabularySize - 2) most frequent)")
  say(
    "training: \(t.optimizer), lr \(t.learningRate), clip \(t.clip), N \(t.batchSize), max length \(t.maxLength) (keep the \(t.truncation.rawValue)), epochs \(t.epochs), patience \(t.patience), seed \(t.seed)"
  )
  say(
    "trained: \(st.epochsCompleted) epochs" + (st.batchesInEpoch > 0 ? " and \(st.batchesInEpoch) batches" : "")
      + ", \(st.trainedTexts) texts, \(String(format: "%.0f", st.trainingSeconds)) s"
      + (st.stoppedEarly ? ", stopped early" : ""))
  if let best = st.bestValidLoss, let epoch = st.bestEpoch,
    let record = st.history.first(where: { $0.epoch == epoch })
  {
    say(String(format: "best validation: loss %.4f, accuracy %.4f (epoch %d)", best, record.validAccuracy, epoch))
  } else {
    say("best validation: none yet")
  }
  if listTensors {
    for (name, shape) in s.tensors { say("  \(name) \(shape)") }
  }
}
