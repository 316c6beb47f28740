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
  private let length: Int, jump: Int

  /// Batches of `batchSize` streams and `steps` time steps over `corpus`.
  package init(corpus: [Int32], batchSize: Int, steps: Int) throws {
    length = corpus.count - 1
    guard batchSize >= 1, steps >= 1, length >= batchSize * steps else {
      throw ConfigurationError(
        "the training text has \(corpus.count) tokens, too few for one batch of \(batchSize) × \(steps)")
    }
    self.corpus = corpus
    self.batchSize = batchSize
    self.steps = steps
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

  /// Fills `inputs` and `targets`, each (steps, N) time-major, with the next window of `steps`.
  package mutating func next(
    inputs: UnsafeMutablePointer<Int32>, targets: UnsafeMutablePointer<Int32>, steps: Int
  ) {
    let n = batchSize
    for t in 0..<steps {
      for i in 0..<n {
        let position = (i * jump + timeIndex) % length
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
  let n = model.batchSize
  let jump = (corpus.count - 1) / n
  precondition(jump >= 1, "corpus of \(corpus.count) tokens is too short for \(n) streams")
  let window = min(steps, model.maxSteps)
  var inputs = [Int32](repeating: 0, count: n * window)
  var targets = inputs
  model.resetState()
  var total = 0.0
  var start = 0
  while start < jump {
    let t = min(window, jump - start)
    for s in 0..<t {
      for i in 0..<n {
        inputs[s * n + i] = corpus[i * jump + start + s]
        targets[s * n + i] = corpus[i * jump + start + s + 1]
      }
    }
    total += inputs.withUnsafeBufferPointer { ip in
      targets.withUnsafeBufferPointer { tp in
        model.loss(inputs: ip.baseAddress!, targets: tp.baseAddress!, steps: t, gradient: false)
      }
    }
    start += t
  }
  let tokens = n * jump
  let mean = total / Double(tokens)
  return (exp(mean), mean, tokens)
}
