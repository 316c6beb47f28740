import Testing

@testable import RNNLM

/// Central-difference gradient checks in Double: every layer on its own (each recurrent cell), then
/// the whole model with each cell with respect to every parameter. Loss for a single layer: L = Σ w ⊙ output with fixed
/// random w, so dL/d(output) = w.
@Suite struct GradientCheckTests {
  /// A single layer of `cell` with random parameters (the GRU's recurrent bias included) and a
  /// random non-zero carried state, as in the middle of a text.
  static func layer(
    _ cell: RecurrentCell, n: Int, steps: Int, d: Int, h: Int, _ g: inout SeededGenerator
  ) throws -> (layer: any RecurrentLayer<Double>, store: ParameterStore<Double>, state: [[Double]]) {
    let store = try ParameterStore<Double>(layout: cell.parameterLayout(layer: 0, inputSize: d, hiddenSize: h))
    for i in 0..<store.count { store.values.pointer[i] = g.nextNormal() * 0.5 }
    let layer = try cell.makeLayer(
      layer: 0, inputSize: d, hiddenSize: h, batchSize: n, maxSteps: steps, parameters: store, scratch: ScratchPool())
    let state = cell.stateNames.map { _ in randomArray(n * h, scale: 0.5, &g) }
    return (layer, store, state)
  }

  /// Every cell's layer: parameters and input, several steps, from a carried non-zero state.
  @Test(arguments: RecurrentCell.allCases)
  func recurrentLayer(cell: RecurrentCell) throws {
    var g = SeededGenerator(seed: 11)
    let (n, steps, d, h) = (2, 4, 3, 5)
    let (layer, store, state0) = try Self.layer(cell, n: n, steps: steps, d: d, h: h, &g)
    var x = randomArray(steps * n * d, &g)
    let w = randomArray(steps * n * h, &g)
    func loss(_ input: UnsafePointer<Double>) -> Double {
      layer.setState(state0)
      layer.forward(input: input, steps: steps)
      return (0..<w.count).reduce(0.0) { $0 + w[$1] * layer.output[$1] }
    }
    x.withUnsafeMutableBufferPointer { xp in
      let input = xp.baseAddress!
      _ = loss(input)
      store.zeroGradients()
      layer.backward(dOutput: w)
      let dx = layer.dInput.array
      expectGradient(
        "\(cell) layer parameters", analytic: store.gradients.array, at: store.values.pointer, count: store.count
      ) { loss(input) }
      expectGradient("\(cell) layer input", analytic: dx, at: input, count: xp.count) { loss(input) }
      // Every parameter tensor receives gradient (the GRU's b_hh included).
      for view in store.views {
        #expect(
          store.gradients.array[view.offset..<(view.offset + view.count)].contains { $0 != 0 },
          "\(cell): \(view.name) has no gradient")
      }
    }
  }

  /// The gradients reaching the initial state (what an encoder receives from its decoder) and,
  /// for the LSTM, gradients from outside reaching every c_t: the loss also weighs the cell
  /// states, L = Σ w ⊙ h_t + Σ v ⊙ c_t, checked against central differences in the parameters
  /// and in the initial state.
  @Test(arguments: RecurrentCell.allCases)
  func initialStateAndCellGradients(cell: RecurrentCell) throws {
    var g = SeededGenerator(seed: 13)
    let (n, steps, d, h) = (2, 4, 3, 5)
    let (layer, store, state0) = try Self.layer(cell, n: n, steps: steps, d: d, h: h, &g)
    let x = randomArray(steps * n * d, &g)
    let w = randomArray(steps * n * h, &g)
    let v = cell == .lstm ? randomArray(steps * n * h, &g) : []
    var state = state0
    func loss() -> Double {
      layer.setState(state)
      x.withUnsafeBufferPointer { layer.forward(input: $0.baseAddress!, steps: steps) }
      var l = (0..<w.count).reduce(0.0) { $0 + w[$1] * layer.output[$1] }
      if cell == .lstm {
        let cs = layer.stateSequences[1] + n * h
        l += (0..<v.count).reduce(0.0) { $0 + v[$1] * cs[$1] }
      }
      return l
    }
    _ = loss()
    store.zeroGradients()
    v.withUnsafeBufferPointer { vp in
      layer.backward(dOutput: w, stateGradients: nil, cellGradients: cell == .lstm ? vp.baseAddress : nil)
    }
    let buffers = state.map { _ in UnsafeMutablePointer<Double>.allocate(capacity: n * h) }
    defer { buffers.forEach { $0.deallocate() } }
    layer.initialStateGradients(into: buffers)
    let analyticState = buffers.map { Array(UnsafeBufferPointer(start: $0, count: n * h)) }
    expectGradient(
      "\(cell) parameters with cell-state gradients", analytic: store.gradients.array, at: store.values.pointer,
      count: store.count, loss: loss)
    for k in state.indices {
      var values = state[k]
      values.withUnsafeMutableBufferPointer { p in
        expectGradient(
          "\(cell) initial \(cell.stateNames[k])", analytic: analyticState[k], at: p.baseAddress!, count: p.count
        ) {
          state[k] = Array(p)
          defer { state[k] = state0[k] }
          return loss()
        }
      }
    }
  }

  /// The gradient the backward loops record for each h_t (the gradient-flow experiment) is the
  /// whole derivative of the loss with respect to h_t: checked at t = 0 by running step 0, then
  /// the other steps from a perturbed h_0 (the LSTM's c_0 held fixed).
  @Test(arguments: RecurrentCell.allCases)
  func recordedStateGradients(cell: RecurrentCell) throws {
    var g = SeededGenerator(seed: 12)
    let (n, steps, d, h) = (2, 5, 3, 4)
    let (layer, _, state0) = try Self.layer(cell, n: n, steps: steps, d: d, h: h, &g)
    let x = randomArray(steps * n * d, &g)
    let w = randomArray(steps * n * h, &g)
    var recorded = [Double](repeating: .nan, count: steps * n * h)
    x.withUnsafeBufferPointer { xp in
      // The layer keeps the input pointer until backward: both inside the pointer's scope.
      layer.setState(state0)
      layer.forward(input: xp.baseAddress!, steps: steps)
      layer.backward(dOutput: w, stateGradients: &recorded)
    }
    // The last step's gradient is its output gradient alone.
    expectClose(
      Array(recorded[((steps - 1) * n * h)...]), Array(w[((steps - 1) * n * h)...]), tolerance: 0, "last step")

    layer.setState(state0)
    layer.forward(input: x, steps: 1)
    let afterFirst = layer.state
    var h0 = afterFirst[0]
    h0.withUnsafeMutableBufferPointer { hp in
      expectGradient("\(cell) dL/dh_0", analytic: Array(recorded[..<(n * h)]), at: hp.baseAddress!, count: n * h) {
        var total = (0..<(n * h)).reduce(0.0) { $0 + w[$1] * hp[$1] }
        layer.setState([Array(hp)] + afterFirst.dropFirst())
        x.withUnsafeBufferPointer { xp in layer.forward(input: xp.baseAddress! + n * d, steps: steps - 1) }
        for i in 0..<((steps - 1) * n * h) { total += w[n * h + i] * layer.output[i] }
        return total
      }
    }
  }

  @Test func timeAffine() throws {
    var g = SeededGenerator(seed: 12)
    let (rows, h, v) = (5, 3, 6)
    let store = try ParameterStore<Double>(layout: [("w", [v, h]), ("b", [v])])
    for i in 0..<store.count { store.values.pointer[i] = g.nextNormal() }
    let affine = try TimeAffine<Double>(
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
  @Test func timeEmbedding() throws {
    var g = SeededGenerator(seed: 13)
    let (v, d) = (5, 3)
    let tokens: [Int32] = [1, 4, 1, 0, 1, 3]
    let store = try ParameterStore<Double>(layout: [("e", [v, d])])
    for i in 0..<store.count { store.values.pointer[i] = g.nextNormal() }
    let embedding = try TimeEmbedding<Double>(
      vocabularySize: v, dimension: d, maxRows: tokens.count, weight: store.value("e"),
      weightGradient: store.gradient("e"))
    let w = randomArray(tokens.count * d, &g)
    var unused = SeededGenerator(seed: 0)  // no embedding dropout: nothing is drawn
    func loss() -> Double {
      embedding.forward(tokens: tokens, rows: tokens.count, generator: &unused)
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
  @Test(
    arguments: RecurrentCell.allCases.flatMap { cell in
      [
        ModelConfig(vocabularySize: 7, embeddingSize: 3, hiddenSize: 4, layers: 1, cell: cell, tied: false),
        ModelConfig(vocabularySize: 7, embeddingSize: 4, hiddenSize: 4, layers: 2, cell: cell, tied: true),
        // The adaptive softmax: a head of 3 words and 2 clusters, projections 4 → 2 and 4 → 1.
        ModelConfig(
          vocabularySize: 7, embeddingSize: 3, hiddenSize: 4, layers: 1, cell: cell, tied: false,
          adaptiveCutoffs: [3, 5], adaptiveDivision: 2),
        ModelConfig(
          vocabularySize: 7, embeddingSize: 4, hiddenSize: 4, layers: 2, cell: cell, tied: true,
          adaptiveCutoffs: [3, 5], adaptiveDivision: 2),
        // Every output row tied: the tails' too, through projections 4 → 4.
        ModelConfig(
          vocabularySize: 7, embeddingSize: 4, hiddenSize: 4, layers: 1, cell: cell, tied: true,
          adaptiveCutoffs: [3, 5], adaptiveDivision: 1, adaptiveTiedTails: true),
      ]
    })
  func wholeModel(config: ModelConfig) throws {
    let (n, steps) = (2, 4)
    let m = try Self.model(config, n: n, steps: steps, seed: 21)
    var g = SeededGenerator(seed: 22)
    let batch = { (count: Int) in (0..<count).map { _ in Int32(g.next() % UInt64(config.vocabularySize)) } }
    let (firstInputs, firstTargets) = (batch(n * steps), batch(n * steps))
    // Targets run through every word, so that every output row (and every adaptive cluster) is used.
    let inputs = batch(n * steps)
    let targets = (0..<(n * steps)).map { Int32(($0 * 3) % config.vocabularySize) }

    // The previous batch leaves a non-zero state in every layer.
    _ = m.loss(inputs: firstInputs, targets: firstTargets, steps: steps, gradient: false)
    let carried = m.carriedState
    #expect(carried.allSatisfy { $0[0].contains { $0 != 0 } })
    func loss() -> Double {
      m.setCarriedState(carried)
      return m.loss(inputs: inputs, targets: targets, steps: steps, gradient: false) / Double(n * steps)
    }
    m.setCarriedState(carried)
    m.parameters.zeroGradients()
    _ = m.loss(inputs: inputs, targets: targets, steps: steps, gradient: true)
    let analytic = m.parameters.gradients.array
    // 1e-5, not the layers' 1e-6: the smallest of several hundred entries sit where the
    // difference quotient's rounding (≈ 4e-11 absolute here) reaches 1e-6 of them. A wrong
    // term in any backward pass shows as 1e-2 or more.
    expectGradient(
      "\(config.cell) model L=\(config.layers) tied=\(config.tied) adaptive=\(config.adaptiveCutoffs != nil) tails=\(config.adaptiveTiedTails)",
      analytic: analytic,
      at: m.parameters.values.pointer,
      count: m.parameters.count, bound: 1e-5, loss: loss)
    // Each named parameter receives gradient (none silently disconnected).
    for view in m.parameters.views {
      #expect(analytic[view.offset..<(view.offset + view.count)].contains { $0 != 0 }, "\(view.name) has no gradient")
    }
  }

  /// The whole model in training with every regulariser on — separate dropout rates, locked
  /// dropout, embedding dropout, weight drop, AR and TAR — against central differences of the objective
  /// (mean cross-entropy + AR + TAR), the masks held fixed by drawing them from the same
  /// generator state for every evaluation.
  @Test(arguments: RecurrentCell.allCases)
  func wholeModelWithRegularisers(cell: RecurrentCell) throws {
    let config = ModelConfig(
      vocabularySize: 7, embeddingSize: 4, hiddenSize: 4, layers: 2, cell: cell, tied: true, dropout: 0.3,
      inputDropout: 0.2, hiddenDropout: 0.25, outputDropout: 0.4, lockedDropout: true, embeddingDropout: 0.2,
      weightDrop: 0.3)
    let (n, steps) = (3, 4)
    let m = try Self.model(config, n: n, steps: steps, seed: 41)
    m.setTraining(true)
    m.activationRegularization = 2
    m.temporalActivationRegularization = 1
    var g = SeededGenerator(seed: 42)
    let inputs = (0..<(n * steps)).map { _ in Int32(g.next() % 7) }
    let targets = (0..<(n * steps)).map { _ in Int32(g.next() % 7) }
    let masks = m.generator
    func objective(gradient: Bool) -> Double {
      m.resetState()
      m.generator = masks
      let ce = m.loss(inputs: inputs, targets: targets, steps: steps, gradient: gradient) / Double(n * steps)
      return ce + m.lastRegularization
    }
    m.parameters.zeroGradients()
    _ = objective(gradient: true)
    #expect(m.lastRegularization > 0)
    let analytic = m.parameters.gradients.array
    expectGradient(
      "\(cell) model with regularisers", analytic: analytic, at: m.parameters.values.pointer,
      count: m.parameters.count, bound: 1e-5, loss: { objective(gradient: false) })
  }

  /// The state carried between batches continues the text: two windows of T equal one of 2T.
  @Test(arguments: RecurrentCell.allCases)
  func stateCarriesAcrossBatches(cell: RecurrentCell) throws {
    let config = ModelConfig(vocabularySize: 6, embeddingSize: 3, hiddenSize: 3, layers: 2, cell: cell)
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
