import ArgumentParser
import Foundation
import RNNLM
import RNNLMCommandLine

struct NGramCommand: ParsableCommand {
  static let configuration = CommandConfiguration(
    commandName: "ngram",
    abstract: "The statistical baseline: interpolated modified Kneser-Ney n-gram models, in ARPA files.",
    subcommands: [NGramTrain.self, NGramEvaluate.self])
}

struct NGramTrain: ParsableCommand {
  static let configuration = CommandConfiguration(
    commandName: "train",
    abstract: "Count a corpus's training split, estimate the model, report validation and test perplexity.",
    discussion: """
      The corpus is read as train-ptb reads it (one stream, <eos> after every line, the vocabulary of the training split), and perplexity is measured as the recurrent models' is: every token after the first, given the ones before it.

      Examples:
        rnnlm ngram train --order 5 --output runs/kn5.arpa
        rnnlm ngram train --order 3 --data corpora/tiny
      """)

  @Option(help: "The order N (1 or more).") var order = 5
  @Option(help: "Directory of the corpus (as train-ptb finds it).") var data: String?
  @Flag(help: "Skip the SHA-256 check of files named like PTB's.") var noVerify = false
  @Flag(
    name: .customLong("map-unknown"),
    help: "Read validation and test words outside the training vocabulary as <unk> and count them.")
  var mapUnknown = false
  @Option(help: "Write the model to this ARPA file.") var output: String?

  func validate() throws {
    if order < 1 { throw ValidationError("--order must be at least 1") }
  }

  func run() throws {
    try reporting {
      let directory = try PTB.locate(explicit: data)
      let dataset = try PTB.load(directory: directory, verify: !noVerify, mapUnknown: mapUnknown)
      say("read \(PTB.describe(directory: directory, verified: !noVerify))")
      let start = Date()
      let model = try NGramModel(training: dataset.train, vocabulary: dataset.vocabulary, order: order)
      let seconds = Date().timeIntervalSince(start)
      say(
        "counted \(dataset.train.count) tokens in \(String(format: "%.1f", seconds)) s: "
          + model.counts.enumerated().map { "\($0.offset + 1)-grams \($0.element)" }.joined(separator: ", "))
      for (k, d) in model.discounts.enumerated() {
        let fallback = model.discountFallbacks[k].map { " (fallback values: \($0))" } ?? ""
        say("order \(k + 1) discounts: " + d.map { String(format: "%.4f", $0) }.joined(separator: ", ") + fallback)
      }
      let valid = model.perplexity(of: dataset.valid)
      let test = model.perplexity(of: dataset.test)
      say(String(format: "valid ppl %.4f (%d tokens)", valid.perplexity, valid.tokens))
      say(String(format: "test ppl %.4f (%d tokens)", test.perplexity, test.tokens))
      if let output {
        let t0 = Date()
        try model.writeARPA(to: output)
        say("wrote \(output) in \(String(format: "%.1f", Date().timeIntervalSince(t0))) s")
      }
    }
  }
}

struct NGramEvaluate: ParsableCommand {
  static let configuration = CommandConfiguration(
    commandName: "evaluate",
    abstract: "Perplexity of a text under an ARPA n-gram model.",
    discussion: """
      The text is read as train-ptb reads a split (<eos> after every line); words outside the model's vocabulary are read as <unk> and counted.

      Example:
        rnnlm ngram evaluate runs/kn5.arpa ../shared/corpora/ptb/ptb.test.txt
      """)

  @Argument(help: "The ARPA file.") var model: String
  @Argument(help: "A text file.") var text: String

  func run() throws {
    try reporting {
      let model = try NGramModel(arpa: model)
      let (ids, oov) = try Corpus.tokenize(
        Corpus.readText(at: text), path: text, vocabulary: model.vocabulary,
        readingUnknownAs: model.vocabulary.id(of: Vocabulary.unknownWord))
      let r = model.perplexity(of: ids)
      say(
        "model: order \(model.order), "
          + model.counts.enumerated().map { "\($0.offset + 1)-grams \($0.element)" }
          .joined(separator: ", "))
      say(String(format: "perplexity: %.4f", r.perplexity))
      say("tokens: \(ids.count) (\(r.tokens) predicted), read as <unk>: \(oov)")
    }
  }
}
