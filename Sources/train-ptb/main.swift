import ArgumentParser
import Foundation
import RNNLM

struct TrainPTB: ParsableCommand {
  static let configuration = CommandConfiguration(
    commandName: "train-ptb",
    abstract: "Train an LSTM language model on Penn Treebank and report its test perplexity.",
    discussion: """
      PTB is found by --data, then $PTB_DIR, then corpora/ptb/, then ../shared/corpora/ptb/.
      A preset sets every hyper-parameter; the flags below override single ones.

      Examples:
        train-ptb                                  # the book's small model, 4 epochs
        train-ptb --epochs 1 --nhid 200 --emsize 200
        train-ptb --data ~/data/ptb --threads 1
      """)

  @Option(help: "Preset: \(Preset.all.map(\.name).joined(separator: ", ")).")
  var preset = "small"
  @Option(help: "Directory holding ptb.train.txt, ptb.valid.txt and ptb.test.txt.")
  var data: String?
  @Flag(help: "Skip the SHA-256 check of the PTB files (for other corpora laid out like PTB).")
  var noVerify = false
  @Option(help: "Embedding size D.") var emsize: Int?
  @Option(help: "Hidden size H.") var nhid: Int?
  @Option(help: "Number of LSTM layers.") var nlayers: Int?
  @Option(help: "Tie the output layer to the embedding (needs emsize = nhid): true or false.") var tied: Bool?
  @Option(help: "SGD learning rate.") var lr: Double?
  @Option(help: "Global gradient-norm clip; 0 disables it.") var clip: Double?
  @Option(help: "Epochs.") var epochs: Int?
  @Option(name: .customLong("batch-size"), help: "Training batch size N.") var batchSize: Int?
  @Option(help: "Truncated BPTT length T.") var bptt: Int?
  @Option(name: .customLong("eval-batch-size"), help: "Streams for validation/test perplexity.") var evalBatchSize: Int?
  @Option(name: .customLong("log-interval"), help: "Batches between log lines.") var logInterval: Int?
  @Option(help: "Random seed.") var seed: UInt64?
  @Option(help: "OpenBLAS threads (default: OpenBLAS's own choice).") var threads: Int?

  func run() throws {
    guard var p = Preset.named(preset) else {
      throw ValidationError(
        "unknown preset '\(preset)'; choose one of \(Preset.all.map(\.name).joined(separator: ", "))")
    }
    if let emsize { p.embeddingSize = emsize }
    if let nhid { p.hiddenSize = nhid }
    if let nlayers { p.layers = nlayers }
    if let tied { p.tied = tied }
    if let lr { p.training.learningRate = lr }
    if let clip { p.training.clip = clip }
    if let epochs { p.training.epochs = epochs }
    if let batchSize { p.training.batchSize = batchSize }
    if let bptt { p.training.steps = bptt }
    if let evalBatchSize { p.training.evalBatchSize = evalBatchSize }
    if let logInterval { p.training.logInterval = logInterval }
    if let seed { p.training.seed = seed }
    if let threads {
      guard threads >= 1 else { throw ValidationError("--threads must be at least 1") }
      BLASThreads.set(threads)
    }
    do {
      try p.validate()
      let directory = try PTB.locate(explicit: data)
      say("reading PTB from \(directory)")
      let dataset = try PTB.load(directory: directory, verify: !noVerify)
      let config = p.modelConfig(vocabularySize: dataset.vocabulary.count)
      let trainer = try Trainer(config: config, options: p.training)
      trainer.log = say
      let t = p.training
      say(
        "preset \(p.name): V \(config.vocabularySize), D \(config.embeddingSize), H \(config.hiddenSize), "
          + "layers \(config.layers), tied \(config.tied), \(config.parameterCount) parameters")
      say(
        "N \(t.batchSize), T \(t.steps), lr \(t.learningRate), clip \(t.clip), epochs \(t.epochs), seed \(t.seed), "
          + "OpenBLAS threads \(BLASThreads.count); train \(dataset.train.count), valid \(dataset.valid.count), "
          + "test \(dataset.test.count) tokens")
      _ = try trainer.run(dataset)
    } catch let error as DataError {
      throw Failure(error.description)
    } catch let error as ConfigurationError {
      throw ValidationError(error.description)
    } catch let error as TrainingError {
      throw Failure(error.description)
    }
  }
}

/// A run that cannot go on: ArgumentParser prints "Error: <description>" to standard error
/// and exits with status 1 (usage errors exit with 64).
struct Failure: Error, CustomStringConvertible {
  let description: String
  init(_ description: String) { self.description = description }
}

/// Writes one line to standard output at once: log lines must reach a file or pipe as they
/// are printed, not when a buffer fills.
func say(_ line: String) {
  FileHandle.standardOutput.write(Data((line + "\n").utf8))
}

TrainPTB.main()
