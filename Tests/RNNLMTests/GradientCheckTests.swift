import Testing

@testable import RNNLM

/// Central-difference gradient checks in Double: every layer on its own, then the whole model
/// with respect to every parameter. Loss for a single layer: L = Σ w ⊙ output with fixed
/// random w, so dL/d(output) = w.
@Suite struct GradientCheckTests {
  @Test func timeLSTM() {
    var g = SeededGenerator(seed: 11)
    let (n, steps, d, h) = (2, 4, 3, 4)
    let store = ParameterStore<Double>(layout: [("wih", [4 * h, d]), ("whh", [4 * h, h]), ("b", [4 * h])])
    for i in 0..<store.count { store.values.pointer[i] = g.nextNormal() * 0.5 }
    let lstm = TimeLSTM<Double>(
      inputSize: d, hiddenSize: h, batchSize: n, maxSteps: steps,
      parameters: (store.value("wih"), store.value("whh"), store.value("b")),
      gradients: (store.gradient("wih"), store.gradient("whh"), store.gradient("b")))
    var x = randomArray(steps * n * d, &g)
    let w = randomArray(steps * n * h, &g)
    // A non-zero carried state, as in the middle of a text.
    let h0 = randomArray(n * h, scale: 0.5, &g)
    let c0 = randomArray(n * h, scale: 0.5, &g)

    func loss() -> Double {
      lstm.setState(h: h0, c: c0)
      lstm.forward(input: x, steps: steps)
      return (0..<w.count).reduce(0.0) { $0 + w[$1] * lstm.output[$1] }
    }
    _ = loss()
    store.zeroGradients()
    lstm.backward(dOutput: w)
    let dx = lstm.dInput.array
    expectGradient(
      "TimeLSTM parameters", analytic: store.gradients.array, at: store.values.pointer, count: store.count, loss: loss)
    x.withUnsafeMutableBufferPointer { xp in
      expectGradient("TimeLSTM input", analytic: dx, at: xp.baseAddress!, count: xp.count) {
        lstm.setState(h: h0, c: c0)
        lstm.forward(input: xp.baseAddress!, steps: steps)
        return (0..<w.count).reduce(0.0) { $0 + w[$1] * lstm.output[$1] }
      }
    }
  }

  @Test func timeAffine() {
    var g = SeededGenerator(seed: 12)
    let (rows, h, v) = (5, 3, 6)
    let store = ParameterStore<Double>(layout: [("w", [v, h]), ("b", [v])])
    for i in 0..<store.count { store.values.pointer[i] = g.nextNormal() }
    let affine = TimeAffine<Double>(
      inputSize: h, outputSize: v, maxRows: rows, weight: store.value("w"), bias: store.value("b"),
      dWeight: store.gradient("w"), dBias: store.gradient("b"))
    var x = randomArray(rows * h, &g)
    let w = randomArray(rows * v, &g)
    func loss(_ input: UnsafePointer<Double>) -> Double {
      affine.forward(input: input, rows: rows)
      return (0..<w.count).reduce(0.0) { $0 + w[$1] * affine.output.pointer[$1] }
    }
    x.withUnsafeMutableBufferPointer { xp in
      let input = xp.baseAddress!
      _ = loss(input)
      store.zeroGradients()
      affine.backward(dOutput: w)
      let dx = affine.dInput.array
      expectGradient(
        "TimeAffine parameters", analytic: store.gradients.array, at: store.values.pointer, count: store.count
      ) {
        loss(input)
      }
      expectGradient("TimeAffine input", analytic: dx, at: input, count: xp.count) { loss(input) }
    }
  }

  /// Repeated tokens: their gradient rows must add up, not overwrite each other.
  @Test func timeEmbedding() {
    var g = SeededGenerator(seed: 13)
    let (v, d) = (5, 3)
    let tokens: [Int32] = [1, 4, 1, 0, 1, 3]
    let store = ParameterStore<Double>(layout: [("e", [v, d])])
    for i in 0..<store.count { store.values.pointer[i] = g.nextNormal() }
    let embedding = TimeEmbedding<Double>(
      vocabularySize: v, dimension: d, maxRows: tokens.count, weight: store.value("e"),
      weightGradient: store.gradient("e"))
    let w = randomArray(tokens.count * d, &g)
    func loss() -> Double {
      embedding.forward(tokens: tokens, rows: tokens.count)
      return (0..<w.count).reduce(0.0) { $0 + w[$1] * embedding.output.pointer[$1] }
    }
    _ = loss()
    store.zeroGradients()
    embedding.backward(dOutput: w)
    expectGradient(
      "TimeEmbedding", analytic: store.gradients.array, at: store.values.pointer, count: store.count, loss: loss)
    // Word 2 never occurs: its gradient row is exactly zero.
    #expect(store.gradients.array[(2 * d)..<(3 * d)].allSatisfy { $0 == 0 })
  }

  @Test func softmaxWithLoss() {
    var g = SeededGenerator(seed: 14)
    let (rows, v) = (4, 7)
    var x = randomArray(rows * v, scale: 2, &g)
    let targets: [Int32] = [3, 0, 6, 3]
    var analytic = x
    _ = analytic.withUnsafeMutableBufferPointer {
      TimeSoftmaxWithLoss.loss(scores: $0.baseAddress!, targets: targets, rows: rows, classes: v, gradient: true)
    }
    x.withUnsafeMutableBufferPointer { xp in
      expectGradient("softmax with loss (mean)", analytic: analytic, at: xp.baseAddress!, count: xp.count) {
        var copy = Array(xp)
        return copy.withUnsafeMutableBufferPointer {
          TimeSoftmaxWithLoss.loss(scores: $0.baseAddress!, targets: targets, rows: rows, classes: v, gradient: false)
        } / Double(rows)
      }
    }
  }

  /// A model with larger-than-default weights so every gradient is well above rounding.
  static func model(_ config: ModelConfig, n: Int, steps: Int, seed: UInt64) throws -> LanguageModel<Double> {
    var g = SeededGenerator(seed: seed)
    let m = try LanguageModel<Double>(config: config, batchSize: n, maxSteps: steps, generator: &g)
    for i in 0..<m.parameters.count { m.parameters.values.pointer[i] = g.nextNormal() * 0.4 }
    return m
  }

  /// The whole model's mean loss with respect to every parameter, through several time steps,
  /// starting from the state carried over from a previous batch (held fixed: truncated BPTT).
  @Test(arguments: [
    ModelConfig(vocabularySize: 7, embeddingSize: 3, hiddenSize: 4, layers: 1, tied: false),
    ModelConfig(vocabularySize: 7, embeddingSize: 4, hiddenSize: 4, layers: 2, tied: true),
  ])
  func wholeModel(config: ModelConfig) throws {
    let (n, steps) = (2, 4)
    let m = try Self.model(config, n: n, steps: steps, seed: 21)
    var g = SeededGenerator(seed: 22)
    let batch = { (count: Int) in (0..<count).map { _ in Int32(g.next() % UInt64(config.vocabularySize)) } }
    let (firstInputs, firstTargets) = (batch(n * steps), batch(n * steps))
    let (inputs, targets) = (batch(n * steps), batch(n * steps))

    // The previous batch leaves a non-zero state in every layer.
    _ = m.loss(inputs: firstInputs, targets: firstTargets, steps: steps, gradient: false)
    let carried = m.lstms.map(\.state)
    #expect(carried.allSatisfy { $0.h.contains { $0 != 0 } })
    func loss() -> Double {
      for (lstm, s) in zip(m.lstms, carried) { lstm.setState(h: s.h, c: s.c) }
      return m.loss(inputs: inputs, targets: targets, steps: steps, gradient: false) / Double(n * steps)
    }
    for (lstm, s) in zip(m.lstms, carried) { lstm.setState(h: s.h, c: s.c) }
    m.parameters.zeroGradients()
    _ = m.loss(inputs: inputs, targets: targets, steps: steps, gradient: true)
    let analytic = m.parameters.gradients.array
    // 1e-5, not the layers' 1e-6: the smallest of several hundred entries sit where the
    // difference quotient's rounding (≈ 4e-11 absolute here) reaches 1e-6 of them. A wrong
    // term in any backward pass shows as 1e-2 or more.
    expectGradient(
      "model L=\(config.layers) tied=\(config.tied)", analytic: analytic, at: m.parameters.values.pointer,
      count: m.parameters.count, bound: 1e-5, loss: loss)
    // Each named parameter receives gradient (none silently disconnected).
    for view in m.parameters.views {
      #expect(analytic[view.offset..<(view.offset + view.count)].contains { $0 != 0 }, "\(view.name) has no gradient")
    }
  }

  /// The state carried between batches continues the text: two windows of T equal one of 2T.
  @Test func stateCarriesAcrossBatches() throws {
    let config = ModelConfig(vocabularySize: 6, embeddingSize: 3, hiddenSize: 3, layers: 2)
    let (n, steps) = (2, 3)
    let long = try Self.model(config, n: n, steps: 2 * steps, seed: 31)
    let short = try LanguageModel<Double>(config: config, parameters: long.parameters, batchSize: n, maxSteps: steps)
    var g = SeededGenerator(seed: 32)
    let inputs = (0..<(2 * steps * n)).map { _ in Int32(g.next() % 6) }
    let targets = (0..<(2 * steps * n)).map { _ in Int32(g.next() % 6) }
    let whole = long.loss(inputs: inputs, targets: targets, steps: 2 * steps, gradient: false)
    let half = steps * n
    let first = short.loss(
      inputs: Array(inputs[..<half]), targets: Array(targets[..<half]), steps: steps, gradient: false)
    let second = short.loss(
      inputs: Array(inputs[half...]), targets: Array(targets[half...]), steps: steps, gradient: false)
    #expect(abs(first + second - whole) < 1e-12, "windows \(first + second) vs whole \(whole)")
    // And a reset really forgets: the second window alone gives another loss.
    short.resetState()
    let fresh = short.loss(
      inputs: Array(inputs[half...]), targets: Array(targets[half...]), steps: steps, gradient: false)
    #expect(abs(fresh - second) > 1e-6)
  }
}
