import Foundation
import Testing

@testable import RNNLM

/// The adaptive softmax on its own: a distribution over all V words, the loss it defines, the
/// tail chunks, its layout and its gradients (the whole model's are in ``GradientCheckTests``).
@Suite struct AdaptiveSoftmaxTests {
  /// A layer over random parameters: V = 11, a head of 4 words, clusters 4 ..< 7 and 7 ..< 11.
  /// With `tiedTails`, the division is 1 and the tails' output rows are the embedding's.
  static func layer(
    rows: Int, tied: Bool = false, tiedTails: Bool = false, chunk: Int = AdaptiveSoftmaxShape.tailChunkLimit,
    seed: UInt64 = 3
  ) throws -> (layer: TimeAdaptiveSoftmax<Double>, store: ParameterStore<Double>, config: ModelConfig) {
    let config = ModelConfig(
      vocabularySize: 11, embeddingSize: 5, hiddenSize: 5, tied: tied, adaptiveCutoffs: [4, 7],
      adaptiveDivision: tiedTails ? 1 : 2, adaptiveTiedTails: tiedTails)
    try config.validate()
    let store = try ParameterStore<Double>(layout: config.parameterLayout)
    var g = SeededGenerator(seed: seed)
    for i in 0..<store.count { store.values.pointer[i] = g.nextNormal() * 0.7 }
    let layer = try TimeAdaptiveSoftmax<Double>(
      shape: config.adaptiveShape!, inputSize: 5, maxRows: rows, parameters: store, tied: tied,
      tiedTails: tiedTails, tailChunkElements: chunk)
    return (layer, store, config)
  }

  @Test func shapeFollowsPyTorch() throws {
    let config = ModelConfig(
      vocabularySize: 10_000, embeddingSize: 650, hiddenSize: 650, layers: 2, adaptiveCutoffs: [2000, 6000])
    let layout = Dictionary(uniqueKeysWithValues: config.parameterLayout.map { ($0.name, $0.shape) })
    // int(650 // 4.0) = 162, int(650 // 16.0) = 40 in PyTorch's AdaptiveLogSoftmaxWithLoss.
    #expect(layout["decoder.head.weight"] == [2002, 650])
    #expect(layout["decoder.head.bias"] == [2002])
    #expect(layout["decoder.tail.0.0.weight"] == [162, 650])
    #expect(layout["decoder.tail.0.1.weight"] == [4000, 162])
    #expect(layout["decoder.tail.1.0.weight"] == [40, 650])
    #expect(layout["decoder.tail.1.1.weight"] == [4000, 40])
    #expect(layout["decoder.weight"] == nil && layout["decoder.bias"] == nil)
    var tied = config
    tied.tied = true
    let tiedLayout = Dictionary(uniqueKeysWithValues: tied.parameterLayout.map { ($0.name, $0.shape) })
    #expect(tiedLayout["decoder.head_clusters.weight"] == [2, 650] && tiedLayout["decoder.head.weight"] == nil)
    // Tied tails: no output rows of the tails' own, the projections stay (650 → 650 with div 1).
    tied.adaptiveDivision = 1
    tied.adaptiveTiedTails = true
    try tied.validate()
    let tailsLayout = Dictionary(uniqueKeysWithValues: tied.parameterLayout.map { ($0.name, $0.shape) })
    #expect(tailsLayout["decoder.tail.0.1.weight"] == nil && tailsLayout["decoder.tail.1.1.weight"] == nil)
    #expect(
      tailsLayout["decoder.tail.0.0.weight"] == [650, 650] && tailsLayout["decoder.tail.1.0.weight"] == [650, 650])
    let shape = try #require(config.adaptiveShape)
    #expect(shape.cluster(of: 1999) == nil && shape.cluster(of: 2000) == 0 && shape.cluster(of: 9999) == 1)
  }

  @Test func badCutoffsAreRefused() {
    for cutoffs in [[], [0], [5, 5], [7, 3], [3, 11], [3, 12]] {
      let config = ModelConfig(vocabularySize: 11, embeddingSize: 4, hiddenSize: 4, adaptiveCutoffs: cutoffs)
      #expect(throws: ConfigurationError.self, "cutoffs \(cutoffs)") { try config.validate() }
    }
    // H = 4 with div 4: the second cluster would project to ⌊4 / 16⌋ = 0.
    let narrow = ModelConfig(vocabularySize: 11, embeddingSize: 4, hiddenSize: 4, adaptiveCutoffs: [3, 6])
    #expect(throws: ConfigurationError.self) { try narrow.validate() }
    // Tied tails need tying, the adaptive softmax and division 1.
    for (tied, cutoffs, division) in [(false, [3, 6], 1.0), (true, [3, 6], 2.0), (true, nil, 1.0)] {
      let config = ModelConfig(
        vocabularySize: 11, embeddingSize: 4, hiddenSize: 4, tied: tied, adaptiveCutoffs: cutoffs,
        adaptiveDivision: division, adaptiveTiedTails: true)
      #expect(throws: ConfigurationError.self, "tied \(tied) cutoffs \(cutoffs ?? []) div \(division)") {
        try config.validate()
      }
    }
  }

  /// Every row's probabilities add up to 1 over the V words, and the loss is −Σ log p(target).
  @Test(arguments: [(false, false), (true, false), (true, true)])
  func distributionAndLossAgree(tied: Bool, tiedTails: Bool) throws {
    let rows = 9
    let (layer, _, config) = try Self.layer(rows: rows, tied: tied, tiedTails: tiedTails)
    var g = SeededGenerator(seed: 5)
    let x = randomArray(rows * 5, &g)
    let targets: [Int32] = [0, 3, 4, 6, 7, 10, 2, 8, 5]
    let v = config.vocabularySize
    let logP = try x.withUnsafeBufferPointer {
      try Array(UnsafeBufferPointer(start: layer.logProbabilities(input: $0.baseAddress!, rows: rows), count: rows * v))
    }
    var expected = 0.0
    for r in 0..<rows {
      let total = (0..<v).reduce(0.0) { $0 + exp(logP[r * v + $1]) }
      #expect(abs(total - 1) < 1e-12, "row \(r) sums to \(total)")
      expected -= logP[r * v + Int(targets[r])]
    }
    let loss = x.withUnsafeBufferPointer { xp in
      targets.withUnsafeBufferPointer {
        layer.loss(input: xp.baseAddress!, targets: $0.baseAddress!, rows: rows, gradient: false)
      }
    }
    #expect(abs(loss - expected) < 1e-10 * abs(expected), "loss \(loss), from the distribution \(expected)")
  }

  /// With tied tails a tail word's log-probability is its cluster's head entry plus the
  /// log-softmax of (x · Pᵢᵀ) · Eᵀ over the embedding's rows E of the cluster's words, computed
  /// here from the named parameters.
  @Test func tiedTailsScoreWithTheEmbeddingRows() throws {
    let rows = 3
    let (layer, store, config) = try Self.layer(rows: rows, tied: true, tiedTails: true)
    let (h, v, bounds) = (5, config.vocabularySize, [0, 4, 7, 11])
    var g = SeededGenerator(seed: 8)
    let x = randomArray(rows * h, &g)
    let logP = try x.withUnsafeBufferPointer {
      try Array(UnsafeBufferPointer(start: layer.logProbabilities(input: $0.baseAddress!, rows: rows), count: rows * v))
    }
    let embedding = store.value("encoder.weight")
    let (clusterRows, bias) = (store.value("decoder.head_clusters.weight"), store.value("decoder.head.bias"))
    func dot(_ a: UnsafePointer<Double>, _ b: [Double]) -> Double { (0..<h).reduce(0) { $0 + a[$1] * b[$1] } }
    func logSoftmax(_ s: [Double]) -> [Double] {
      let shift = log(s.reduce(0) { $0 + exp($1) })
      return s.map { $0 - shift }
    }
    for r in 0..<rows {
      let xr = Array(x[(r * h)..<((r + 1) * h)])
      let head = logSoftmax(
        (0..<4).map { dot(embedding + $0 * h, xr) + bias[$0] }
          + (0..<2).map { dot(clusterRows + $0 * h, xr) + bias[4 + $0] })
      for w in 0..<4 { #expect(abs(logP[r * v + w] - head[w]) < 1e-12, "row \(r) word \(w)") }
      for i in 0..<2 {
        let projection = store.value("decoder.tail.\(i).0.weight")
        let z = (0..<h).map { dot(projection + $0 * h, xr) }
        let tail = logSoftmax((bounds[i + 1]..<bounds[i + 2]).map { dot(embedding + $0 * h, z) })
        for (j, w) in (bounds[i + 1]..<bounds[i + 2]).enumerated() {
          #expect(abs(logP[r * v + w] - (head[4 + i] + tail[j])) < 1e-12, "row \(r) word \(w)")
        }
      }
    }
  }

  /// Loss, parameter gradients and input gradient against central differences, tied and untied,
  /// with tail chunks of one row and of the whole cluster.
  @Test(arguments: [
    (false, false, AdaptiveSoftmaxShape.tailChunkLimit), (true, false, AdaptiveSoftmaxShape.tailChunkLimit),
    (false, false, 4), (true, true, AdaptiveSoftmaxShape.tailChunkLimit), (true, true, 4),
  ])
  func gradients(tied: Bool, tiedTails: Bool, chunk: Int) throws {
    let rows = 8
    let (layer, store, _) = try Self.layer(rows: rows, tied: tied, tiedTails: tiedTails, chunk: chunk)
    var g = SeededGenerator(seed: 6)
    var x = randomArray(rows * 5, &g)
    let targets: [Int32] = [1, 5, 9, 4, 10, 0, 6, 8]
    x.withUnsafeMutableBufferPointer { xp in
      let input = xp.baseAddress!
      func loss() -> Double {
        targets.withUnsafeBufferPointer {
          layer.loss(input: input, targets: $0.baseAddress!, rows: rows, gradient: false)
        }
          / Double(rows)
      }
      store.zeroGradients()
      _ = targets.withUnsafeBufferPointer {
        layer.loss(input: input, targets: $0.baseAddress!, rows: rows, gradient: true)
      }
      let dx = Array(UnsafeBufferPointer(start: layer.dInput.pointer, count: rows * 5))
      let analytic = store.gradients.array
      expectGradient(
        "adaptive softmax parameters tied=\(tied) tails=\(tiedTails) chunk=\(chunk)", analytic: analytic,
        at: store.values.pointer,
        count: store.count, loss: loss)
      expectGradient(
        "adaptive softmax input tied=\(tied) tails=\(tiedTails) chunk=\(chunk)", analytic: dx, at: input,
        count: xp.count, loss: loss)
      for view in store.views where view.name.hasPrefix("decoder.") {
        #expect(analytic[view.offset..<(view.offset + view.count)].contains { $0 != 0 }, "\(view.name) has no gradient")
      }
    }
  }

  /// One-row chunks give the loss and gradients of whole-cluster chunks.
  @Test func chunksDoNotChangeTheResult() throws {
    let rows = 10
    let (whole, wholeStore, _) = try Self.layer(rows: rows)
    let (chunked, chunkedStore, _) = try Self.layer(rows: rows, chunk: 4)
    var g = SeededGenerator(seed: 7)
    let x = randomArray(rows * 5, &g)
    let targets: [Int32] = [7, 8, 9, 10, 7, 4, 5, 0, 1, 9]
    func run(_ layer: TimeAdaptiveSoftmax<Double>, _ store: ParameterStore<Double>) -> (Double, [Double], [Double]) {
      store.zeroGradients()
      let loss = x.withUnsafeBufferPointer { xp in
        targets.withUnsafeBufferPointer {
          layer.loss(input: xp.baseAddress!, targets: $0.baseAddress!, rows: rows, gradient: true)
        }
      }
      return (loss, store.gradients.array, Array(UnsafeBufferPointer(start: layer.dInput.pointer, count: rows * 5)))
    }
    let a = run(whole, wholeStore)
    let b = run(chunked, chunkedStore)
    #expect(abs(a.0 - b.0) < 1e-12)
    #expect(zip(a.1, b.1).allSatisfy { abs($0 - $1) < 1e-12 })
    #expect(zip(a.2, b.2).allSatisfy { abs($0 - $1) < 1e-12 })
  }

  /// The memory estimate counts the adaptive layer's buffers as they are allocated.
  @Test func memoryEstimateMatchesTheBuffers() throws {
    let config = ModelConfig(
      vocabularySize: 3000, embeddingSize: 32, hiddenSize: 32, layers: 2, adaptiveCutoffs: [200, 1000])
    var g = SeededGenerator(seed: 1)
    let model = try LanguageModel<Double>(config: config, batchSize: 6, maxSteps: 7, generator: &g)
    evaluateOneBatch(model)
    let held = 8 * Double(2 * model.parameters.count + model.scratch.elementCount + model.wordProjectionElements)
    let estimate = config.bytesNeeded(batchSize: 6, steps: 7, scalarBytes: 8)
    #expect(abs(estimate / held - 1) < 0.1, "estimate \(estimate), held \(held)")
  }
}
