import Testing

@testable import RNNLM

@Suite struct DropoutTests {
  /// The kept fraction is 1 - p within 5 standard deviations, kept values are scaled by
  /// 1/(1-p), dropped ones are exactly 0, and backward applies the same mask.
  @Test(arguments: [0.25, 0.5, 0.65])
  func maskStatisticsAndScaling(rate: Double) throws {
    let (rows, width) = (200, 50)
    let dropout = try TimeDropout<Float>(rate: rate, width: width, maxRows: rows)
    let x = (0..<(rows * width)).map { Float($0 % 7) + 1 }  // never 0
    var g = SeededGenerator(seed: 9)
    let out = Array(UnsafeBufferPointer(start: dropout.forward(input: x, rows: rows, generator: &g), count: x.count))
    var kept = 0
    for i in x.indices where out[i] != 0 {
      kept += 1
      #expect(abs(out[i] - x[i] / Float(1 - rate)) < 1e-5 * x[i], "kept value \(out[i]) for input \(x[i])")
    }
    let n = Double(x.count)
    let expected = n * (1 - rate)
    let sigma = (n * rate * (1 - rate)).squareRoot()
    print("dropout p=\(rate): kept \(kept) of \(x.count), expected \(expected) ± \(sigma)")
    #expect(abs(Double(kept) - expected) < 5 * sigma)
    var d = [Float](repeating: 2, count: x.count)
    let dx = d.withUnsafeMutableBufferPointer { p in
      Array(UnsafeBufferPointer(start: dropout.backward(dOutput: p.baseAddress!), count: x.count))
    }
    for i in x.indices { #expect(dx[i] == (out[i] == 0 ? 0 : 2 / Float(1 - rate))) }
  }

  /// Off in evaluation: the input itself comes back, unchanged, and no random number is drawn.
  @Test func identityWhenNotTraining() throws {
    let dropout = try TimeDropout<Float>(rate: 0.5, width: 4, maxRows: 2)
    dropout.training = false
    let x: [Float] = [1, 2, 3, 4, 5, 6, 7, 8]
    var g = SeededGenerator(seed: 1)
    let before = g.state
    x.withUnsafeBufferPointer { xp in
      let y = dropout.forward(input: xp.baseAddress!, rows: 2, generator: &g)
      #expect(y == xp.baseAddress!)
    }
    #expect(g.state == before)
  }

  /// The same seed gives the same mask; the generator's stream moves on between calls.
  @Test func masksFollowTheSeed() throws {
    let dropout = try TimeDropout<Float>(rate: 0.5, width: 8, maxRows: 4)
    let x = [Float](repeating: 1, count: 32)
    func mask(_ g: inout SeededGenerator) -> [Float] {
      Array(UnsafeBufferPointer(start: dropout.forward(input: x, rows: 4, generator: &g), count: 32))
    }
    var a = SeededGenerator(seed: 5)
    var b = SeededGenerator(seed: 5)
    let first = mask(&a)
    #expect(first == mask(&b))
    #expect(mask(&a) != first)
  }

  /// The model's dropout layers are used in training and bypassed in evaluation: the same batch
  /// gives different losses under different masks, and identical losses with dropout off.
  @Test func modelUsesDropoutOnlyInTraining() throws {
    let config = ModelConfig(vocabularySize: 6, embeddingSize: 4, hiddenSize: 4, layers: 2, tied: true, dropout: 0.5)
    var g = SeededGenerator(seed: 2)
    let m = try LanguageModel<Float>(config: config, batchSize: 2, maxSteps: 3, generator: &g)
    let tokens: [Int32] = [0, 1, 2, 3, 4, 5]
    func loss() -> Double {
      m.resetState()
      return m.loss(inputs: tokens, targets: tokens.reversed(), steps: 3, gradient: false)
    }
    let first = loss()
    #expect(loss() != first)
    m.setTraining(false)
    let evaluation = loss()
    #expect(loss() == evaluation)
  }

  /// Locked (variational) dropout: within a batch of T time steps of N sequences, every time
  /// step of a sequence loses the same units, sequences differ, the kept fraction is 1 − p, and
  /// backward applies the same mask.
  @Test func lockedMaskIsTheSameAtEveryTimeStep() throws {
    let (n, steps, width, rate) = (40, 6, 30, 0.4)
    let rows = n * steps
    let dropout = try TimeDropout<Float>(rate: rate, width: width, maxRows: rows, lockedRows: n)
    let x = (0..<(rows * width)).map { Float($0 % 5) + 1 }
    var g = SeededGenerator(seed: 4)
    let out = Array(UnsafeBufferPointer(start: dropout.forward(input: x, rows: rows, generator: &g), count: x.count))
    func dropped(_ t: Int, _ s: Int) -> [Bool] { (0..<width).map { out[((t * n) + s) * width + $0] == 0 } }
    for s in 0..<n {
      for t in 1..<steps { #expect(dropped(t, s) == dropped(0, s), "sequence \(s), step \(t)") }
    }
    #expect(Set((0..<n).map { dropped(0, $0) }).count > n / 2, "sequences get different masks")
    let kept = (0..<(n * width)).filter { out[$0] != 0 }.count
    let sigma = (Double(n * width) * rate * (1 - rate)).squareRoot()
    #expect(abs(Double(kept) - Double(n * width) * (1 - rate)) < 5 * sigma)
    for i in x.indices where out[i] != 0 { #expect(abs(out[i] - x[i] / Float(1 - rate)) < 1e-5 * x[i]) }
    var d = [Float](repeating: 3, count: x.count)
    let dx = d.withUnsafeMutableBufferPointer { p in
      Array(UnsafeBufferPointer(start: dropout.backward(dOutput: p.baseAddress!), count: x.count))
    }
    for i in x.indices { #expect(dx[i] == (out[i] == 0 ? 0 : 3 / Float(1 - rate))) }
  }

  /// Embedding dropout drops whole words: a word is zero at all its occurrences or kept (and
  /// scaled by 1 / (1 − p)) at all of them, and a dropped word gets no gradient.
  @Test func embeddingDropoutDropsWholeWords() throws {
    let (v, d, rate) = (50, 4, 0.3)
    let store = try ParameterStore<Float>(layout: [("e", [v, d])])
    for i in 0..<store.count { store.values.pointer[i] = Float(i % 7) + 1 }
    let embedding = try TimeEmbedding<Float>(
      vocabularySize: v, dimension: d, maxRows: 400, dropout: rate, weight: store.values.pointer,
      weightGradient: store.gradients.pointer)
    let tokens = (0..<400).map { Int32($0 * 7 % v) }
    var g = SeededGenerator(seed: 8)
    embedding.forward(tokens: tokens, rows: tokens.count, generator: &g)
    var keptWords = Set<Int32>()
    var droppedWords = Set<Int32>()
    for (r, w) in tokens.enumerated() {
      let row = (0..<d).map { embedding.output.pointer[r * d + $0] }
      let original = (0..<d).map { store.values.pointer[Int(w) * d + $0] }
      if row.allSatisfy({ $0 == 0 }) {
        droppedWords.insert(w)
      } else {
        keptWords.insert(w)
        #expect(zip(row, original).allSatisfy { abs($0 - $1 / Float(1 - rate)) < 1e-5 * $1 })
      }
    }
    #expect(keptWords.isDisjoint(with: droppedWords), "a word kept at one place and dropped at another")
    #expect(!droppedWords.isEmpty && !keptWords.isEmpty)
    let ones = [Float](repeating: 1, count: tokens.count * d)
    embedding.backward(dOutput: ones)
    for w in droppedWords { #expect((0..<d).allSatisfy { store.gradients.pointer[Int(w) * d + $0] == 0 }) }
    for w in keptWords { #expect(store.gradients.pointer[Int(w) * d] > 0) }
    // Evaluation: the rows as they are.
    embedding.training = false
    embedding.forward(tokens: tokens, rows: tokens.count, generator: &g)
    #expect(embedding.output.pointer[0] == store.values.pointer[Int(tokens[0]) * d])
  }

  /// Weight drop: one mask over W_hh for the batch (its statistics and scale), the loops read
  /// the masked copy, the stored weights are unchanged by the pass, the gradient is zero where
  /// the mask dropped, and evaluation reads the stored weights.
  @Test func weightDropMasksTheRecurrentWeights() throws {
    let config = ModelConfig(vocabularySize: 9, embeddingSize: 8, hiddenSize: 8, layers: 1, weightDrop: 0.5)
    var g = SeededGenerator(seed: 5)
    let m = try LanguageModel<Float>(config: config, batchSize: 4, maxSteps: 5, generator: &g)
    let weights = m.recurrentWeights[0]
    let before = Array(UnsafeBufferPointer(start: weights.storedWHH, count: 4 * 8 * 8))
    let inputs = (0..<20).map { Int32($0 % 9) }
    m.setTraining(true)
    m.parameters.zeroGradients()
    _ = m.loss(inputs: inputs, targets: inputs.reversed(), steps: 5, gradient: true)
    let drop = try #require(weights.weightDrop)
    #expect(drop.active && weights.wHH == drop.masked.pointer)
    #expect(Array(UnsafeBufferPointer(start: weights.storedWHH, count: before.count)) == before)
    let mask = drop.mask.array
    let kept = mask.filter { $0 != 0 }.count
    let sigma = (Double(mask.count) * 0.25).squareRoot()
    #expect(abs(Double(kept) - Double(mask.count) / 2) < 5 * sigma)
    for i in mask.indices {
      #expect(mask[i] == 0 || mask[i] == 2)
      #expect(drop.masked.pointer[i] == before[i] * mask[i])
      if mask[i] == 0 { #expect(weights.dWHH[i] == 0) }
    }
    #expect((0..<mask.count).contains { weights.dWHH[$0] != 0 })
    m.setTraining(false)
    _ = m.loss(inputs: inputs, targets: inputs, steps: 5, gradient: false)
    #expect(!drop.active && weights.wHH == weights.storedWHH)
  }
}
