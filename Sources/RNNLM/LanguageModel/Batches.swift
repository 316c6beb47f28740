import Foundation

/// The book's training batches: N streams starting at offsets i·⌊len/N⌋, read as
/// consecutive windows of T words.
///
/// With `len` = corpus count - 1 (inputs are the corpus without its last word, targets
/// without its first), stream i reads position (i·jump + k) mod len at its k-th step. The
/// position keeps advancing from batch to batch AND across epochs, so the recurrent state carried
/// between batches always continues the text it saw.
package struct TrainingBatches: Sendable {
  /// The corpus as ids.
  package let corpus: [Int32]
  /// Batch size N and time steps T.
  package let batchSize: Int, steps: Int
  /// Batches per epoch: ⌊len / (N·T)⌋.
  package let batchesPerEpoch: Int
  /// Steps taken so far (the book's `time_idx`).
  package var timeIndex = 0
  /// The streams this process reads (all of them, but in a data-parallel run); a batch holds
  /// these streams' rows, (T, streams.count).
  package let streams: RowShard
  private let length: Int, jump: Int

  /// Batches of `batchSize` streams and `steps` time steps over `corpus`, of which this process
  /// reads `streams` (default: all).
  package init(corpus: [Int32], batchSize: Int, steps: Int, streams: RowShard? = nil) throws {
    length = corpus.count - 1
    guard batchSize >= 1, steps >= 1, length >= batchSize * steps else {
      throw ConfigurationError(
        "the training text has \(corpus.count) tokens, too few for one batch of \(batchSize) × \(steps)")
    }
    self.corpus = corpus
    self.batchSize = batchSize
    self.steps = steps
    self.streams = streams ?? .whole(batchSize)
    precondition(self.streams.total == batchSize, "the streams are a share of the batch")
    jump = length / batchSize
    batchesPerEpoch = length / (batchSize * steps)
  }

  /// Time steps of an epoch per stream: ``batchesPerEpoch`` · T, however the windows are cut.
  package var stepsPerEpoch: Int { batchesPerEpoch * steps }

  /// The longest window ``windowLength(variable:stepsDone:generator:)`` returns: T + 20 (four
  /// standard deviations above T).
  package var maxWindow: Int { steps + 20 }

  /// The length of the next window of an epoch of which `stepsDone` steps are done. Fixed: T.
  /// Variable (AWD-LSTM's): T with probability 0.95, else T/2, as the mean of a normal
  /// distribution with standard deviation 5, truncated to an integer, at least 5 and at most
  /// ``maxWindow``, drawn from `generator`. Either way cut to what is left of the epoch, so
  /// that an epoch reads exactly ``stepsPerEpoch`` steps.
  package func windowLength(variable: Bool, stepsDone: Int, generator: inout SeededGenerator) -> Int {
    var length = steps
    if variable {
      let mean = generator.nextUniform() < 0.95 ? Double(steps) : Double(steps) / 2
      length = min(max(5, Int(mean + 5 * generator.nextNormal())), maxWindow)
    }
    return min(length, stepsPerEpoch - stepsDone)
  }

  /// Fills `inputs` and `targets`, each (T, N) time-major, with the next batch.
  package mutating func next(inputs: UnsafeMutablePointer<Int32>, targets: UnsafeMutablePointer<Int32>) {
    next(inputs: inputs, targets: targets, steps: steps)
  }

  /// Fills `inputs` and `targets`, each (steps, N) time-major (N: the streams read), with the
  /// next window of `steps`.
  package mutating func next(
    inputs: UnsafeMutablePointer<Int32>, targets: UnsafeMutablePointer<Int32>, steps: Int
  ) {
    let n = streams.count
    for t in 0..<steps {
      for i in 0..<n {
        let position = ((streams.first + i) * jump + timeIndex) % length
        inputs[t * n + i] = corpus[position]
        targets[t * n + i] = corpus[position + 1]
      }
      timeIndex += 1
    }
  }
}

/// Perplexity of a model on a corpus: exp of the mean cross-entropy over every evaluated token.
///
/// The corpus is read as N parallel streams of ⌊(len - 1)/N⌋ tokens each (stream i starts at
/// i·jump), in windows of T steps, the state carried from window to window, as the book's
/// `eval_perplexity` does (N = 10, T = 35 by default). Unlike the book, the last, shorter
/// window is evaluated too, so all N·jump tokens count. The state is reset first.
package func perplexity<T: BLASScalar>(of model: LanguageModel<T>, on corpus: [Int32], steps: Int = 35) -> (
  perplexity: Double, meanLoss: Double, tokens: Int
) {
  let (total, tokens) = evaluationLoss(of: model, on: corpus, steps: steps, streams: .whole(model.batchSize))
  let mean = total / Double(tokens)
  return (exp(mean), mean, tokens)
}

/// The summed loss of ``perplexity(of:on:steps:)`` over the streams `streams` of the
/// corpus read as `streams.total` streams (the model has `streams.count` rows), and the tokens
/// it counted: a data-parallel run's share of an evaluation, which the ranks sum.
package func evaluationLoss<T: BLASScalar>(
  of model: LanguageModel<T>, on corpus: [Int32], steps: Int, streams: RowShard
) -> (lossSum: Double, tokens: Int) {
  precondition(model.batchSize == streams.count, "the model holds the streams evaluated")
  let n = model.batchSize
  let jump = (corpus.count - 1) / streams.total
  precondition(jump >= 1, "corpus of \(corpus.count) tokens is too short for \(streams.total) streams")
  let window = min(steps, model.maxSteps)
  var inputs = [Int32](repeating: 0, count: n * window)
  var targets = inputs
  model.resetState()
  var total = 0.0
  var start = 0
  model.withWordProjections {
    while start < jump {
      let t = min(window, jump - start)
      for s in 0..<t {
        for i in 0..<n {
          inputs[s * n + i] = corpus[(streams.first + i) * jump + start + s]
          targets[s * n + i] = corpus[(streams.first + i) * jump + start + s + 1]
        }
      }
      total += inputs.withUnsafeBufferPointer { ip in
        targets.withUnsafeBufferPointer { tp in
          model.loss(inputs: ip.baseAddress!, targets: tp.baseAddress!, steps: t, gradient: false)
        }
      }
      start += t
    }
  }
  return (total, n * jump)
}
