import Testing

@testable import RNNLM

/// Evaluation's word-projection table (``WordProjections``): an evaluation pass that looks up the
/// first layer's input projection per word gives the losses of the plain forward pass, for every
/// cell, when the table holds every word and when it runs out of room.
@Suite struct WordProjectionTests {
  static let (v, n, steps) = (40, 3, 4)

  /// A corpus where a few words recur and many are rare, as in text.
  static func corpus(count: Int, seed: UInt64) -> [Int32] {
    var g = SeededGenerator(seed: seed)
    return (0..<count).map { i in Int32(i % 3 == 0 ? g.next() % UInt64(v) : g.next() % 6) }
  }

  /// The summed loss of the batches ``evaluationLoss(of:on:steps:streams:)`` reads, each through
  /// the model's plain forward pass (no table), and the distinct words of their inputs.
  static func plainLoss(of model: LanguageModel<Double>, on corpus: [Int32]) -> (loss: Double, words: Int) {
    let jump = (corpus.count - 1) / n
    model.resetState()
    var (total, start, seen) = (0.0, 0, Set<Int32>())
    while start < jump {
      let t = min(steps, jump - start)
      var inputs: [Int32] = []
      var targets: [Int32] = []
      for s in 0..<t {
        for i in 0..<n {
          inputs.append(corpus[i * jump + start + s])
          targets.append(corpus[i * jump + start + s + 1])
        }
      }
      seen.formUnion(inputs)
      total += model.loss(inputs: inputs, targets: targets, steps: t, gradient: false)
      start += t
    }
    return (total, seen.count)
  }

  @Test(
    arguments: RecurrentCell.allCases.flatMap { cell in [(cell, nil), (cell, 16)] as [(RecurrentCell, Int?)] })
  func passesGiveThePlainForwardLosses(cell: RecurrentCell, capacity: Int?) throws {
    // Dropout of every kind is off in evaluation; the first layer's input is the embedding row.
    let config = ModelConfig(
      vocabularySize: Self.v, embeddingSize: 6, hiddenSize: 5, layers: 2, cell: cell, tied: false, dropout: 0.3,
      embeddingDropout: 0.2)
    let model = try GradientCheckTests.model(config, n: Self.n, steps: Self.steps, seed: 11)
    model.setTraining(false)
    let corpus = Self.corpus(count: 400, seed: 3)
    let plain = Self.plainLoss(of: model, on: corpus)
    let looked = model.withWordProjections(capacity: capacity) {
      evaluationLoss(of: model, on: corpus, steps: Self.steps, streams: .whole(Self.n))
    }
    #expect(
      abs(looked.lossSum - plain.loss) <= 1e-12 * abs(plain.loss),
      "\(cell), capacity \(capacity.map(String.init) ?? "all"): \(looked.lossSum) against \(plain.loss)")
    // The table was used: room for all, it holds every word the inputs had; small, it filled
    // with some and the batches that brought more words than it had room for ran without it.
    if let capacity {
      #expect(model.wordProjectionCount > 0 && model.wordProjectionCount <= capacity)
      #expect(model.wordProjectionCount < plain.words)
    } else {
      #expect(model.wordProjectionCount == plain.words)
    }
    // A pass without the outer call makes its own table, from empty.
    let again = evaluationLoss(of: model, on: corpus, steps: Self.steps, streams: .whole(Self.n))
    #expect(abs(again.lossSum - plain.loss) <= 1e-12 * abs(plain.loss))
    #expect(model.wordProjectionCount == plain.words)
  }

  /// A batch with more new words than the table has room for runs without it and leaves no trace:
  /// the words it met before running out of room are projected afresh when they come again.
  @Test(arguments: RecurrentCell.allCases)
  func aBatchThatDoesNotFitLeavesNoTrace(cell: RecurrentCell) throws {
    let config = ModelConfig(vocabularySize: Self.v, embeddingSize: 6, hiddenSize: 5, cell: cell)
    let model = try GradientCheckTests.model(config, n: 2, steps: 1, seed: 13)
    model.setTraining(false)
    // Room for 3: [0, 1] fills two rows; [2, 3] gives 2 the third and then runs out; [2, 0] fits.
    let batches: [[Int32]] = [[0, 1], [2, 3], [2, 0]]
    func losses() -> [Double] {
      model.resetState()
      return batches.map { model.loss(inputs: $0, targets: [4, 5], steps: 1, gradient: false) }
    }
    let plain = losses()
    let looked = model.withWordProjections(capacity: 3) { losses() }
    for (a, b) in zip(looked, plain) { #expect(abs(a - b) <= 1e-12 * abs(b), "\(cell): \(looked) against \(plain)") }
    #expect(model.wordProjectionCount == 3)
  }

  /// In training mode the forward pass is the plain one (dropout makes the first layer's input
  /// differ from the embedding row), so no table is made.
  @Test func trainingPassesMakeNoTable() throws {
    let config = ModelConfig(vocabularySize: Self.v, embeddingSize: 6, hiddenSize: 5, dropout: 0.3)
    let model = try GradientCheckTests.model(config, n: Self.n, steps: Self.steps, seed: 12)
    _ = model.withWordProjections {
      model.loss(inputs: [1, 2, 3], targets: [2, 3, 4], steps: 1, gradient: false)
    }
    #expect(model.wordProjectionCount == 0)
  }
}
