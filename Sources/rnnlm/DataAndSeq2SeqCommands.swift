import ArgumentParser
import Foundation
import RNNLM
import RNNLMCommandLine

struct MakeData: ParsableCommand {
  static let configuration = CommandConfiguration(
    commandName: "make-data",
    abstract: "Write the project's own generated data sets (nothing is downloaded).",
    discussion: """
      sentiment: short film reviews from a grammar in which negation and contrast decide the label ("not good", "boring, but moving"): train.tsv and test.tsv of label<TAB>text.

      addition: "123+45" → "168", operands of up to 3 digits (--digits), all pairs distinct.

      dates: dates written in 12 formats ("september 27, 1994", "27 SEP 1994", "9/27/94", "Tuesday, September 27, 1994", "1994.09.27", …) → "1994-09-27".

      The last two are train.tsv, valid.tsv and test.tsv of source<TAB>target lines.

      zipf --vocab V --tokens T: a language-model corpus with a vocabulary of any size, for measuring cost against V: words w0, w1, … drawn with Zipf's law (p ∝ 1/rank), sentences of 20 words on average; train.txt (T tokens plus every word the draw missed, so the vocabulary is exactly V with <eos>), valid.txt and test.txt (T/10 each).

      corpus --from-tsv DIR: the text column of labelled data (label<TAB>text files or class folders) as a language-model corpus: train.txt, valid.txt and test.txt, one text a line in the words the classifier reads, so that a language model learns the text a classifier will see (train-ptb --data OUTPUT, then train-classifier --init-from). The validation texts are the data's own, or 10% of the training texts (seeded). --drop-spans leaves out each training text that is a shorter word span of another one: SST's phrases are the spans of its sentences, so the language model then reads each sentence once (on SST-2 it keeps 8,707 of 67,347 texts; a 1 × 256 language model of them reached validation perplexity 438, of all the texts 478, each having read about 1.8 million words).

      Examples:
        rnnlm make-data sentiment --output data/sentiment
        rnnlm make-data dates --output data/dates
        rnnlm make-data addition --output data/addition --count 50000
        rnnlm make-data corpus --from-tsv ../shared/corpora/sst2 --output data/sst2-text
        rnnlm make-data corpus --from-tsv ../shared/corpora/sst2 --drop-spans --output data/sst2-sentences
        rnnlm make-data zipf --vocab 100000 --tokens 1000000 --output data/zipf-100k
      """)

  @Argument(help: "Which data set: sentiment, addition, dates, zipf, or corpus (with --from-tsv).") var kind: String
  @Option(help: "zipf: the vocabulary size V, <eos> included.") var vocab: Int?
  @Option(help: "zipf: training tokens drawn (default 1000000).") var tokens: Int?
  @Option(
    name: .customLong("from-tsv"),
    help: "corpus: the labelled data whose texts to write (label<TAB>text files or class folders).")
  var fromTSV: String?
  @Flag(
    name: .customLong("drop-spans"),
    help: "corpus: leave out each training text that is a shorter word span of another training text.")
  var dropSpans = false
  @Option(help: "Directory to write into (created when missing).") var output: String
  @Option(help: "Pairs in all (addition, dates; default 50000) or training texts (sentiment; default 10000).")
  var count: Int?
  @Option(name: .customLong("test-size"), help: "Test texts or pairs (default 2000 and 5000).") var testSize: Int?
  @Option(name: .customLong("valid-size"), help: "Validation pairs (addition, dates; default 5000).") var validSize =
    5000
  @Option(help: "Digits of each operand (addition; default 3).") var digits = 3
  @Option(help: "Seed.") var seed: UInt64 = 1

  func validate() throws {
    guard ["sentiment", "addition", "dates", "corpus", "zipf"].contains(kind) else {
      throw ValidationError("unknown data set '\(kind)'; choose sentiment, addition, dates, zipf or corpus")
    }
    if (kind == "zipf") != (vocab != nil) || (tokens != nil && kind != "zipf") {
      throw ValidationError(kind == "zipf" ? "zipf needs --vocab V" : "--vocab and --tokens go with zipf")
    }
    if kind == "zipf" {
      guard vocab! >= 2 else { throw ValidationError("--vocab must be at least 2") }
      guard (tokens ?? 1_000_000) >= 100 else { throw ValidationError("--tokens must be at least 100") }
      return
    }
    if (kind == "corpus") != (fromTSV != nil) {
      throw ValidationError(
        kind == "corpus" ? "corpus needs --from-tsv DIR, the labelled data to read" : "--from-tsv goes with corpus")
    }
    if dropSpans && kind != "corpus" { throw ValidationError("--drop-spans goes with corpus") }
    if kind == "corpus" { return }
    if let count, count < 2 { throw ValidationError("--count must be at least 2") }
    if let testSize, testSize < 1 { throw ValidationError("--test-size must be at least 1") }
    if kind != "sentiment" {
      let total = count ?? 50_000
      guard validSize >= 1, validSize + (testSize ?? 5000) < total else {
        throw ValidationError("--valid-size and --test-size must leave pairs for training out of --count \(total)")
      }
      if kind == "addition" {
        guard (1...6).contains(digits) else { throw ValidationError("--digits must be in 1...6") }
        let distinct = Double(pow(10, Double(2 * digits)))
        if Double(total) > distinct {
          throw ValidationError("there are \(Int(distinct)) distinct additions of \(digits)-digit numbers")
        }
      }
    }
  }

  func run() throws {
    try reporting {
      switch kind {
      case "zipf":
        let w = try ZipfCorpus.write(to: output, vocabularySize: vocab!, tokens: tokens ?? 1_000_000, seed: seed)
        say(
          "wrote \(output)/train.txt (\(w.train) tokens, \(w.appended) of them words the draw missed), valid.txt (\(w.valid)) and test.txt (\(w.test)); V = \(vocab!), seed \(seed)"
        )
      case "corpus":
        let data = try LabelledTexts.load(directory: fromTSV!)
        let written = try data.writeCorpus(to: output, seed: seed, dropSpans: dropSpans)
        say(
          "wrote \(output)/train.txt (\(written.train) texts\(dropSpans ? "; \(written.spans) spans of them left out" : "")), valid.txt (\(written.valid)) and test.txt (\(written.test)) from the texts of \(fromTSV!)"
            + (data.skippedTexts > 0
              ? "; skipped \(data.skippedTexts) texts with no words (the first: \(data.firstSkipped!))" : ""))
      case "sentiment":
        let (train, test) = (count ?? 10_000, testSize ?? 2000)
        try SentimentCorpus.write(to: output, trainCount: train, testCount: test, seed: seed)
        say("wrote \(output)/train.tsv (\(train) reviews) and \(output)/test.tsv (\(test)), seed \(seed)")
      default:
        let total = count ?? 50_000
        let pairs =
          kind == "addition"
          ? Seq2SeqTasks.addition(count: total, seed: seed, digits: digits)
          : Seq2SeqTasks.dates(count: total, seed: seed)
        let test = testSize ?? 5000
        try Seq2SeqTasks.write(pairs, to: output, validCount: validSize, testCount: test)
        say(
          "wrote \(output)/train.tsv (\(total - validSize - test) pairs), valid.tsv (\(validSize)) and test.tsv (\(test)), seed \(seed)"
        )
      }
    }
  }
}

struct Translate: ParsableCommand {
  static let configuration = CommandConfiguration(
    abstract: "Decode sources with a trained sequence-to-sequence model: one output line per source line.",
    discussion: """
      Reads one source per line from FILE, or from standard input with - or no FILE. Greedy decoding unless --beam K (a beam never returns an output less probable than greedy's). --show-attention writes an SVG heatmap of the attention weights of the first source (source tokens along the top, output tokens down the side).

      Examples:
        echo "september 27, 1994" | rnnlm translate runs/seq2seq-1/best.safetensors
        rnnlm translate runs/seq2seq-1/best.safetensors dates.txt --beam 5
        echo "Tuesday, September 27, 1994" \\
            | rnnlm translate runs/seq2seq-1/best.safetensors --show-attention att.svg
      """)

  @Argument(help: "The model's checkpoint.") var checkpoint: String
  @Argument(help: "A file of sources, one per line, or - for standard input (the default).") var file: String?
  @Option(help: "Beam width (1: greedy).") var beam = 1
  @Option(name: .customLong("max-length"), help: "Longest output in tokens (default: the training maximum).")
  var maxLength: Int?
  @Option(name: .customLong("show-attention"), help: "Write the first source's attention heatmap to this SVG file.")
  var showAttention: String?
  @Flag(help: "Print each output's log-probability after a tab.") var scores = false

  func validate() throws {
    if beam < 1 { throw ValidationError("--beam must be at least 1") }
    if let maxLength, maxLength < 1 { throw ValidationError("--max-length must be at least 1") }
  }

  func run() throws {
    try reporting {
      let model = try TrainedSeq2Seq(contentsOf: checkpoint)
      if showAttention != nil && model.config.attention == .none {
        throw ValidationError("--show-attention needs a model with attention; \(checkpoint) has none")
      }
      var lines: [(origin: String, text: String)] = []
      if let file, file != "-" {
        let text = try Corpus.readText(at: file)
        for (i, line) in text.split(separator: "\n", omittingEmptySubsequences: false).enumerated()
        where !line.allSatisfy(\.isWhitespace) {
          lines.append(("\(file):\(i + 1)", String(line)))
        }
      } else {
        var n = 0
        while let line = readLine() {
          n += 1
          if !line.allSatisfy(\.isWhitespace) { lines.append(("stdin:\(n)", line)) }
        }
      }
      for (i, (origin, text)) in lines.enumerated() {
        guard model.sourceIDs(text) != nil else { throw DataError.malformed("\(origin): the source has no tokens") }
        let record = i == 0 && showAttention != nil
        let decoded = try model.decode(text, beam: beam, maxLength: maxLength, recordAttention: record)
        let output = model.text(of: decoded)
        say(scores ? "\(output)\t\(String(format: "%.6f", decoded.logProbability))" : output)
        if record, let path = showAttention {
          // The weights follow the encoder's reading order: back to the source's own order.
          let weights = model.config.reverseSource ? decoded.attention.map { Array($0.reversed()) } : decoded.attention
          let outputs = model.targetVocabulary.tokens(of: decoded.tokens) + ["<eos>"]
          let svg = attentionHeatmapSVG(
            source: model.options.tokens.tokens(text), output: outputs, weights: weights)
          do { try svg.write(toFile: path, atomically: true, encoding: .utf8) } catch {
            throw FileError(path: path, reason: fileFailure(path, error: error))
          }
        }
      }
    }
  }
}

/// `rnnlm info` for a sequence-to-sequence checkpoint.
func seq2seqInfo(_ path: String, tensors listTensors: Bool) throws {
  let s = try Seq2SeqCheckpoint.Summary(contentsOf: path)
  let (c, t, st) = (s.config, s.training, s.state)
  say(
    "checkpoint: \(path) (\(s.fileSize) bytes, sequence-to-sequence model, format version \(Seq2SeqCheckpoint.formatVersion))"
  )
  say("model: \(c.description), D \(c.embeddingSize), dropout \(c.dropout)")
  say("vocabularies: source \(s.sourceVocabularySize), target \(s.targetVocabularySize) (\(t.tokens.rawValue))")
  say("parameters: \(c.parameterCount)")
  say(
    "training: \(t.optimizer), lr \(t.learningRate), clip \(t.clip), N \(t.batchSize), epochs \(t.epochs), patience \(t.patience), seed \(t.seed)"
  )
  say(
    "trained: \(st.epochsCompleted) epochs" + (st.batchesInEpoch > 0 ? " and \(st.batchesInEpoch) batches" : "")
      + ", \(st.trainedTexts) pairs, \(String(format: "%.0f", st.trainingSeconds)) s"
      + (st.stoppedEarly ? ", stopped early" : ""))
  if let best = st.bestValidLoss, let epoch = st.bestEpoch, let record = st.history.first(where: { $0.epoch == epoch })
  {
    say(String(format: "best validation: loss %.4f, exact match %.4f (epoch %d)", best, record.validAccuracy, epoch))
  } else {
    say("best validation: none yet")
  }
  if listTensors {
    for (name, shape) in s.tensors { say("  \(name) \(shape)") }
  }
}
