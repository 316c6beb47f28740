import Foundation

/// Hyper-parameters of a training run.
public struct TrainingOptions: Codable, Sendable, Equatable {
  /// Batch size N (parallel streams).
  public var batchSize = 20
  /// Truncated-BPTT length T.
  public var steps = 35
  /// SGD learning rate.
  public var learningRate = 20.0
  /// Global gradient-norm bound; 0 turns clipping off.
  public var clip = 0.25
  /// Passes over the training text.
  public var epochs = 4
  /// Streams used for validation and test perplexity (the book's 10).
  public var evalBatchSize = 10
  /// Batches between log lines.
  public var logInterval = 20
  /// Seed of the run's generator.
  public var seed: UInt64 = 1

  /// The defaults: the book's small-model run.
  public init() {}

  /// Throws ``ConfigurationError`` for values that cannot make a run.
  public func validate() throws {
    if batchSize < 1 { throw ConfigurationError("batch size must be at least 1, got \(batchSize)") }
    if steps < 1 { throw ConfigurationError("bptt steps must be at least 1, got \(steps)") }
    if !(learningRate > 0) || !learningRate.isFinite {
      throw ConfigurationError("learning rate must be a positive number, got \(learningRate)")
    }
    if !(clip >= 0) || !clip.isFinite { throw ConfigurationError("clip must be 0 (off) or positive, got \(clip)") }
    if epochs < 1 { throw ConfigurationError("epochs must be at least 1, got \(epochs)") }
    if evalBatchSize < 1 { throw ConfigurationError("evaluation batch size must be at least 1, got \(evalBatchSize)") }
    if logInterval < 1 { throw ConfigurationError("log interval must be at least 1, got \(logInterval)") }
  }
}

/// A named model shape and run: flags override any field.
public struct Preset: Sendable {
  /// The preset's name on the command line.
  public let name: String
  /// Embedding size D, hidden size H, LSTM layers L, tying.
  public var embeddingSize: Int, hiddenSize: Int, layers: Int, tied: Bool
  /// The run's hyper-parameters.
  public var training: TrainingOptions

  /// The book's first LSTM language model ("Deep Learning from Scratch 2", ch. 6):
  /// D = H = 100, one layer, untied; N = 20, T = 35, SGD lr 20, clip 0.25, 4 epochs.
  public static let small = Preset(
    name: "small", embeddingSize: 100, hiddenSize: 100, layers: 1, tied: false, training: TrainingOptions())

  /// All presets by name.
  public static let all: [Preset] = [.small]

  /// The preset called `name`, or nil.
  public static func named(_ name: String) -> Preset? { all.first { $0.name == name } }

  /// Checks the model shape and the run's options before any data is read. (The vocabulary
  /// size comes from the data; 2, the smallest valid one, stands in for it here.)
  public func validate() throws {
    try modelConfig(vocabularySize: 2).validate()
    try training.validate()
  }

  /// The model configuration for a vocabulary of `vocabularySize` words.
  public func modelConfig(vocabularySize: Int) -> ModelConfig {
    ModelConfig(
      vocabularySize: vocabularySize, embeddingSize: embeddingSize, hiddenSize: hiddenSize, layers: layers,
      tied: tied)
  }
}

/// Why a run stopped early.
public enum TrainingError: Error, CustomStringConvertible {
  /// The loss became NaN or infinite.
  case diverged(epoch: Int, batch: Int, loss: Double)

  /// A one-line explanation.
  public var description: String {
    switch self {
    case .diverged(let epoch, let batch, let loss):
      return
        "training diverged: loss \(loss) at epoch \(epoch), batch \(batch). Lower the learning rate (--lr) or clip harder (--clip)."
    }
  }
}

/// What a finished run measured.
public struct TrainingReport: Sendable {
  /// Per epoch: training perplexity (over the epoch's batches) and validation perplexity.
  public var epochs: [(train: Double, valid: Double)] = []
  /// Test perplexity at the end.
  public var testPerplexity = Double.nan
  /// Training tokens per second over all epochs (training steps only, evaluation excluded).
  public var tokensPerSecond = 0.0
  /// Wall time of the whole run, evaluations included.
  public var seconds = 0.0
}

/// Trains a ``LanguageModel`` in `Float` with truncated BPTT, SGD and gradient clipping.
public final class Trainer {
  /// The model trained (N = options.batchSize).
  public let model: LanguageModel<Float>
  /// The same parameters, with buffers for evaluation (N = options.evalBatchSize).
  public let evaluator: LanguageModel<Float>
  /// The run's hyper-parameters.
  public let options: TrainingOptions
  /// Where log lines go.
  public var log: (String) -> Void = { print($0) }
  /// The run's random generator.
  public var generator: SeededGenerator

  /// A fresh model of `config`, initialised from `options.seed`.
  public init(config: ModelConfig, options: TrainingOptions) throws {
    try options.validate()
    self.options = options
    generator = SeededGenerator(seed: options.seed)
    model = try LanguageModel(
      config: config, batchSize: options.batchSize, maxSteps: options.steps, generator: &generator)
    evaluator = try LanguageModel(
      config: config, parameters: model.parameters, batchSize: options.evalBatchSize, maxSteps: options.steps)
  }

  /// Perplexity of the current parameters on `corpus` (state reset first).
  public func evaluate(_ corpus: [Int32]) -> Double {
    perplexity(of: evaluator, on: corpus, steps: options.steps).perplexity
  }

  /// Trains on `dataset.train` for `options.epochs` epochs, reports validation perplexity
  /// after each, and test perplexity at the end.
  public func run(_ dataset: Dataset) throws -> TrainingReport {
    let start = Date()
    var batches = try TrainingBatches(corpus: dataset.train, batchSize: options.batchSize, steps: options.steps)
    let rows = options.batchSize * options.steps
    var inputs = [Int32](repeating: 0, count: rows)
    var targets = inputs
    var report = TrainingReport()
    var trainingSeconds = 0.0
    var trainedTokens = 0
    let perEpoch = batches.batchesPerEpoch

    for epoch in 1...options.epochs {
      var epochLoss = 0.0
      var windowLoss = 0.0
      var windowStart = Date()
      let epochStart = Date()
      for batch in 1...perEpoch {
        let loss = inputs.withUnsafeMutableBufferPointer { ip in
          targets.withUnsafeMutableBufferPointer { tp in
            batches.next(inputs: ip.baseAddress!, targets: tp.baseAddress!)
            model.parameters.zeroGradients()
            let sum = model.loss(
              inputs: ip.baseAddress!, targets: tp.baseAddress!, steps: options.steps, gradient: true)
            return sum / Double(rows)
          }
        }
        guard loss.isFinite else { throw TrainingError.diverged(epoch: epoch, batch: batch, loss: loss) }
        if options.clip > 0 { Optimizer.clipGlobalNorm(model.parameters, maxNorm: options.clip) }
        Optimizer.sgdStep(model.parameters, learningRate: options.learningRate)
        epochLoss += loss
        windowLoss += loss
        if batch % options.logInterval == 0 || batch == perEpoch {
          let count = batch % options.logInterval == 0 ? options.logInterval : batch % options.logInterval
          let elapsed = Date().timeIntervalSince(windowStart)
          log(
            String(
              format: "| epoch %3d | batch %5d/%d | lr %6.3f | %7.1f ms/batch | %8.0f tok/s | loss %6.3f | ppl %9.2f |",
              epoch, batch, perEpoch, options.learningRate, 1000 * elapsed / Double(count),
              Double(count * rows) / elapsed, windowLoss / Double(count), exp(windowLoss / Double(count))))
          windowLoss = 0
          windowStart = Date()
        }
      }
      trainingSeconds += Date().timeIntervalSince(epochStart)
      trainedTokens += perEpoch * rows
      let train = exp(epochLoss / Double(perEpoch))
      let valid = evaluate(dataset.valid)
      guard valid.isFinite else { throw TrainingError.diverged(epoch: epoch, batch: perEpoch, loss: valid) }
      report.epochs.append((train, valid))
      log(
        String(
          format: "| end of epoch %3d | time %7.1f s | train ppl %8.2f | valid ppl %8.2f |", epoch,
          Date().timeIntervalSince(epochStart), train, valid))
    }
    report.testPerplexity = evaluate(dataset.test)
    report.tokensPerSecond = Double(trainedTokens) / trainingSeconds
    report.seconds = Date().timeIntervalSince(start)
    log(
      String(
        format: "| end of training | test ppl %8.2f | %.0f tok/s | %.1f s |", report.testPerplexity,
        report.tokensPerSecond, report.seconds))
    return report
  }
}
