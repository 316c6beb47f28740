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
        rnnlm classify runs/gru-1/best.safetensors --with runs/gru-2/best.safetensors review.txt
        echo "the plot was not good , but the acting was superb" \\
            | rnnlm classify runs/classifier-1/best.safetensors
      """)

  @Argument(help: "The classifier's checkpoint.") var checkpoint: String
  @Argument(help: "Text files, or - for lines of standard input (the default).") var files: [String] = []
  @Flag(help: "Print every class's probability, not only the most probable one.") var all = false
  @Option(
    name: .customLong("with"),
    help: ArgumentHelp(
      "Another classifier of the same classes (repeatable): the probabilities are the mean of all of them.",
      valueName: "checkpoint"))
  var others: [String] = []

  func run() throws {
    try reporting {
      let classifier = try ClassifierEnsemble(contentsOf: [checkpoint] + others)
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

struct Accuracy: ParsableCommand {
  static let configuration = CommandConfiguration(
    abstract:
      "Accuracy of a trained text classifier, or of several averaged, on a labelled data set's test (or validation) texts.",
    discussion: """
      --data reads the layouts train-classifier reads (train.tsv and test.tsv of label<TAB>text lines, optionally valid.tsv; or train/ and test/ class folders). With several checkpoints every text's class probabilities are the mean of theirs (an ensemble), and each one's own accuracy is printed too.

      Examples:
        rnnlm accuracy runs/classifier-1/best.safetensors --data ../shared/corpora/sst2
        rnnlm accuracy runs/gru-1/best.safetensors runs/gru-2/best.safetensors runs/gru-3/best.safetensors \\
            --data ../shared/corpora/sst2 --split valid
      """)

  @Argument(help: "One or more classifier checkpoints.") var checkpoints: [String]
  @Option(help: "Directory of labelled texts.") var data: String
  @Option(help: "Which texts: test or valid.") var split = "test"

  func validate() throws {
    guard !checkpoints.isEmpty else { throw ValidationError("give at least one classifier checkpoint") }
    guard ["test", "valid"].contains(split) else {
      throw ValidationError("--split must be test or valid, got '\(split)'")
    }
  }

  func run() throws {
    try reporting {
      let ensemble = try ClassifierEnsemble(contentsOf: checkpoints)
      let labelled = try LabelledTexts.load(directory: data)
      guard let texts = split == "test" ? labelled.test : labelled.valid else {
        throw DataError.malformed("\(data) has no validation texts (valid.tsv)")
      }
      let result = try ensemble.accuracy(on: texts, names: labelled.classes)
      say("texts: \(texts.count) (\(split), \(labelled.layout))")
      if checkpoints.count > 1 {
        for (path, accuracy) in zip(checkpoints, result.members) { say(String(format: "%@: %.4f", path, accuracy)) }
        say(
          String(
            format: "accuracy: %.4f (the mean probabilities of %d classifiers)", result.ensemble, checkpoints.count)
        )
      } else {
        say(String(format: "accuracy: %.4f", result.ensemble))
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
  say("model: \(c.summary)")
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
