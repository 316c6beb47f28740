/// The shape of a recurrent language model.
public struct ModelConfig: Codable, Sendable, Equatable {
  /// Vocabulary size V.
  public var vocabularySize: Int
  /// Embedding size D.
  public var embeddingSize: Int
  /// Hidden size H of every recurrent layer.
  public var hiddenSize: Int
  /// Number of stacked recurrent layers L.
  public var layers: Int
  /// The recurrent cell of every layer (checkpoints written before there was a choice hold LSTMs).
  public var cell: RecurrentCell
  /// Whether the output layer uses the embedding matrix as its weight (needs D = H).
  public var tied: Bool
  /// Dropout rate after the embedding, between recurrent layers and before the output layer
  /// (each place takes its own rate below when one is given).
  public var dropout: Double
  /// Dropout rate on the embedding's output (AWD-LSTM's `dropouti`); nil uses ``dropout``.
  public var inputDropout: Double?
  /// Dropout rate between recurrent layers (`dropouth`); nil uses ``dropout``.
  public var hiddenDropout: Double?
  /// Dropout rate on the last recurrent layer's output (`dropout`); nil uses ``dropout``.
  public var outputDropout: Double?
  /// Variational ("locked") dropout: one mask per sequence of a batch, the same at every time
  /// step, instead of a fresh mask for every element.
  public var lockedDropout: Bool
  /// Embedding dropout (`dropoute`): in training, each word of the vocabulary is dropped with
  /// this probability for the whole batch (its embedding row is zero wherever it occurs) and
  /// the others are scaled by 1 / (1 − rate).
  public var embeddingDropout: Double
  /// Weight drop (DropConnect) on every layer's W_hh (`wdrop`): in training, each element of
  /// W_hh is dropped with this probability for the whole batch.
  public var weightDrop: Double
  /// The adaptive softmax's cutoffs (Grave et al. 2017): the word ids where each tail cluster
  /// begins, increasing, each in 1 ..< V. `[2000, 20000]` is a head over words 0 ..< 2000 plus two
  /// tail clusters, 2000 ..< 20000 and 20000 ..< V. Nil is the full softmax. Word ids must be in
  /// order of frequency (see ``Dataset/orderedByFrequency(keeping:)``).
  public var adaptiveCutoffs: [Int]?
  /// How much each tail cluster's projection shrinks: cluster i projects H to ⌊H / divⁱ⁺¹⌋
  /// (PyTorch's `div_value`, default 4).
  public var adaptiveDivision: Double
  /// Tied, with ``adaptiveDivision`` 1 (every tail cluster projects H to H): each tail cluster's
  /// output rows are the embedding's rows of its words too, so every word's output vector is its
  /// embedding, the tail's through the cluster's projection. Off, only the head's word rows are.
  public var adaptiveTiedTails: Bool

  /// A configuration; see the properties for the meaning of each value.
  public init(
    vocabularySize: Int, embeddingSize: Int, hiddenSize: Int, layers: Int = 1, cell: RecurrentCell = .lstm,
    tied: Bool = false, dropout: Double = 0, inputDropout: Double? = nil, hiddenDropout: Double? = nil,
    outputDropout: Double? = nil, lockedDropout: Bool = false, embeddingDropout: Double = 0, weightDrop: Double = 0,
    adaptiveCutoffs: [Int]? = nil, adaptiveDivision: Double = 4, adaptiveTiedTails: Bool = false
  ) {
    self.vocabularySize = vocabularySize
    self.embeddingSize = embeddingSize
    self.hiddenSize = hiddenSize
    self.layers = layers
    self.cell = cell
    self.tied = tied
    self.dropout = dropout
    self.inputDropout = inputDropout
    self.hiddenDropout = hiddenDropout
    self.outputDropout = outputDropout
    self.lockedDropout = lockedDropout
    self.embeddingDropout = embeddingDropout
    self.weightDrop = weightDrop
    self.adaptiveCutoffs = adaptiveCutoffs
    self.adaptiveDivision = adaptiveDivision
    self.adaptiveTiedTails = adaptiveTiedTails
  }

  /// The dropout rate after the embedding (position 0), after recurrent layer l (position l + 1)
  /// below the top, and after the top layer (position L).
  public func dropoutRate(at position: Int) -> Double {
    if position == 0 { return inputDropout ?? dropout }
    if position == layers { return outputDropout ?? dropout }
    return hiddenDropout ?? dropout
  }

  /// Decodes a configuration; one without `cell` (written before GRU and RNN existed) is an LSTM,
  /// and one without the regularisers' fields has them off.
  public init(from decoder: Decoder) throws {
    let c = try decoder.container(keyedBy: CodingKeys.self)
    vocabularySize = try c.decode(Int.self, forKey: .vocabularySize)
    embeddingSize = try c.decode(Int.self, forKey: .embeddingSize)
    hiddenSize = try c.decode(Int.self, forKey: .hiddenSize)
    layers = try c.decode(Int.self, forKey: .layers)
    cell = try c.decodeIfPresent(RecurrentCell.self, forKey: .cell) ?? .lstm
    tied = try c.decode(Bool.self, forKey: .tied)
    dropout = try c.decode(Double.self, forKey: .dropout)
    inputDropout = try c.decodeIfPresent(Double.self, forKey: .inputDropout)
    hiddenDropout = try c.decodeIfPresent(Double.self, forKey: .hiddenDropout)
    outputDropout = try c.decodeIfPresent(Double.self, forKey: .outputDropout)
    lockedDropout = try c.decodeIfPresent(Bool.self, forKey: .lockedDropout) ?? false
    embeddingDropout = try c.decodeIfPresent(Double.self, forKey: .embeddingDropout) ?? 0
    weightDrop = try c.decodeIfPresent(Double.self, forKey: .weightDrop) ?? 0
    adaptiveCutoffs = try c.decodeIfPresent([Int].self, forKey: .adaptiveCutoffs)
    adaptiveDivision = try c.decodeIfPresent(Double.self, forKey: .adaptiveDivision) ?? 4
    adaptiveTiedTails = try c.decodeIfPresent(Bool.self, forKey: .adaptiveTiedTails) ?? false
  }

  /// Throws ``ConfigurationError`` when the values cannot make a model.
  public func validate() throws {
    if vocabularySize < 2 { throw ConfigurationError("vocabulary size must be at least 2, got \(vocabularySize)") }
    if embeddingSize < 1 { throw ConfigurationError("embedding size must be at least 1, got \(embeddingSize)") }
    if hiddenSize < 1 { throw ConfigurationError("hidden size must be at least 1, got \(hiddenSize)") }
    if layers < 1 { throw ConfigurationError("number of recurrent layers must be at least 1, got \(layers)") }
    // The C kernels take sizes as 32-bit ints, and G·H must fit one.
    let largest = Int(Int32.max) / 4
    for (name, value) in [
      ("vocabulary size", vocabularySize), ("embedding size", embeddingSize),
      ("hidden size", hiddenSize), ("number of recurrent layers", layers),
    ] where value > largest {
      throw ConfigurationError("\(name) must be at most \(largest), got \(value)")
    }
    for (name, rate) in [
      ("dropout", dropout), ("input dropout", inputDropout ?? 0), ("hidden dropout", hiddenDropout ?? 0),
      ("output dropout", outputDropout ?? 0), ("embedding dropout", embeddingDropout), ("weight drop", weightDrop),
    ] where !(rate >= 0 && rate < 1) {
      throw ConfigurationError("\(name) must be in [0, 1), got \(rate)")
    }
    if tied && embeddingSize != hiddenSize {
      throw ConfigurationError(
        "weight tying needs embedding size = hidden size, got \(embeddingSize) and \(hiddenSize)")
    }
    if let cutoffs = adaptiveCutoffs {
      guard !cutoffs.isEmpty else { throw ConfigurationError("the adaptive softmax needs at least one cutoff") }
      for (a, b) in zip([0] + cutoffs, cutoffs + [vocabularySize]) where a >= b {
        throw ConfigurationError(
          "adaptive softmax cutoffs must increase strictly and lie in 1..<V (V = \(vocabularySize)), got "
            + cutoffs.map(String.init).joined(separator: ","))
      }
      guard adaptiveDivision >= 1 && adaptiveDivision.isFinite else {
        throw ConfigurationError("the adaptive softmax's division must be at least 1, got \(adaptiveDivision)")
      }
      if let shape = adaptiveShape, let last = shape.projections.last, last < 1 {
        throw ConfigurationError(
          "the adaptive softmax's last cluster would project H = \(hiddenSize) to \(last) (H / \(adaptiveDivision)^\(cutoffs.count)): "
            + "use fewer cutoffs or a smaller --adaptive-div")
      }
    }
    if adaptiveTiedTails && !(tied && adaptiveCutoffs != nil && adaptiveDivision == 1) {
      throw ConfigurationError(
        "tying the adaptive softmax's tail clusters needs a tied model with the adaptive softmax and division 1 "
          + "(tied: \(tied), adaptive softmax: \(adaptiveCutoffs != nil), division: \(adaptiveDivision))")
    }
  }

  /// The adaptive softmax's sizes (nil for the full softmax).
  public var adaptiveShape: AdaptiveSoftmaxShape? {
    adaptiveCutoffs.map {
      AdaptiveSoftmaxShape(
        cutoffs: $0, vocabularySize: vocabularySize, inputSize: hiddenSize, division: adaptiveDivision)
    }
  }

  /// Parameter names and shapes in buffer order, named as PyTorch's word_language_model
  /// names them (`encoder`, `rnn`, `decoder`), in `nn.Embedding`/`nn.LSTM`/`nn.GRU`/`nn.RNN`/
  /// `nn.Linear` layouts (see ``RecurrentCell/parameterLayout(layer:inputSize:hiddenSize:prefix:suffix:)``).
  public var parameterLayout: [(name: String, shape: [Int])] {
    let v = vocabularySize
    let d = embeddingSize
    let h = hiddenSize
    var layout: [(name: String, shape: [Int])] = [("encoder.weight", [v, d])]
    for l in 0..<layers { layout += cell.parameterLayout(layer: l, inputSize: l == 0 ? d : h, hiddenSize: h) }
    if let a = adaptiveShape {
      // PyTorch's nn.AdaptiveLogSoftmaxWithLoss(H, V, cutoffs, div_value, head_bias=True) under
      // `decoder.`; tied, the head's word rows are the embedding's first rows, and only its
      // cluster rows are the model's own; with tied tails, so are the tails' output rows.
      if tied {
        layout.append(("decoder.head_clusters.weight", [a.clusters, h]))
      } else {
        layout.append(("decoder.head.weight", [a.headSize, h]))
      }
      layout.append(("decoder.head.bias", [a.headSize]))
      for i in 0..<a.clusters {
        layout.append(("decoder.tail.\(i).0.weight", [a.projections[i], h]))
        if !adaptiveTiedTails {
          layout.append(("decoder.tail.\(i).1.weight", [a.clusterSize(i), a.projections[i]]))
        }
      }
      return layout
    }
    if !tied { layout.append(("decoder.weight", [v, h])) }
    layout.append(("decoder.bias", [v]))
    return layout
  }

  /// Number of trainable scalars.
  public var parameterCount: Int { parameterLayout.reduce(0) { $0 + $1.shape.reduce(1, *) } }
}

/// The recurrent language model: TimeEmbedding → dropout → L × (recurrent layer → dropout) →
/// TimeAffine → softmax/cross-entropy, with the cell of ``ModelConfig/cell``.
///
/// Batches are time-major: token (t, n) of a (T, N) batch sits at index t·N + n. The model
/// owns buffers for (N, maxSteps); a pass may use fewer steps. Several models of different
/// batch sizes can share one ``ParameterStore`` (training with N = 20, evaluating with N = 10).
package final class LanguageModel<T: BLASScalar> {
  /// The model's shape.
  package let config: ModelConfig
  /// Batch size N the buffers are allocated for.
  package let batchSize: Int
  /// Largest number of time steps per pass.
  package let maxSteps: Int
  /// Parameters and gradients.
  package let parameters: ParameterStore<T>
  /// Where the layers' scratch buffers come from (see ``ScratchPool``).
  package let scratch: ScratchPool<T>
  /// The layers, in order.
  package let embedding: TimeEmbedding<T>
  /// One per recurrent layer, bottom first.
  package let recurrentLayers: [any RecurrentLayer<T>]
  /// Each recurrent layer's weight views (and its weight drop), bottom first.
  package let recurrentWeights: [RecurrentWeights<T>]
  /// The output layer of the full softmax (tied or not); nil with the adaptive softmax.
  package let decoder: TimeAffine<T>?
  /// The adaptive softmax, when ``ModelConfig/adaptiveCutoffs`` asks for it.
  package let adaptiveSoftmax: TimeAdaptiveSoftmax<T>?
  /// Dropout after the embedding (index 0) and after each recurrent layer (index l + 1).
  package let dropouts: [TimeDropout<T>]
  /// Times each part of a pass when set (the throughput benchmark's breakdown).
  package var profiler: Profiler? {
    didSet { for layer in recurrentLayers { layer.profiler = profiler } }
  }
  /// Draws the dropout masks: the run's generator, continuing the stream that initialised the
  /// weights, so that one seed reproduces the whole run.
  package var generator: SeededGenerator

  /// A model with fresh parameters drawn from `generator` as the book initialises them:
  /// embedding N(0, 1)/100, every other weight N(0, 1)/sqrt(fan_in), biases zero.
  package convenience init(
    config: ModelConfig, batchSize: Int, maxSteps: Int, generator: inout SeededGenerator
  ) throws {
    try config.validate()
    try config.checkMemory(batchSize: batchSize, steps: maxSteps, scalarBytes: MemoryLayout<T>.stride)
    let store = try ParameterStore<T>(layout: config.parameterLayout)
    for view in store.views where view.shape.count == 2 {
      let scale = view.name == "encoder.weight" ? 0.01 : 1 / Double(view.shape[1]).squareRoot()
      let p = store.values.pointer + view.offset
      for i in 0..<view.count { p[i] = T(generator.nextNormal() * scale) }
    }
    try self.init(
      config: config, parameters: store, batchSize: batchSize, maxSteps: maxSteps, generator: generator)
  }

  /// A model over existing parameters (shared, not copied); `generator` draws its dropout
  /// masks. Its layers take their scratch buffers from `scratch`: pass another model's pool
  /// to share them with a model that never runs interleaved with this one.
  package init(
    config: ModelConfig, parameters: ParameterStore<T>, batchSize: Int, maxSteps: Int,
    generator: SeededGenerator = SeededGenerator(seed: 0), scratch: ScratchPool<T> = ScratchPool()
  ) throws {
    try config.validate()
    if batchSize < 1 { throw ConfigurationError("batch size must be at least 1, got \(batchSize)") }
    if maxSteps < 1 { throw ConfigurationError("time steps must be at least 1, got \(maxSteps)") }
    try config.checkMemory(batchSize: batchSize, steps: maxSteps, scalarBytes: MemoryLayout<T>.stride)
    guard parameters.views == ParameterStore<T>.views(for: config.parameterLayout) else {
      throw ConfigurationError("the parameters do not have the layout of this configuration")
    }
    self.config = config
    self.batchSize = batchSize
    self.maxSteps = maxSteps
    self.parameters = parameters
    self.generator = generator
    self.scratch = scratch
    let p = parameters
    let rows = batchSize * maxSteps
    let h = config.hiddenSize
    embedding = try TimeEmbedding(
      vocabularySize: config.vocabularySize, dimension: config.embeddingSize, maxRows: rows,
      dropout: config.embeddingDropout,
      weight: p.value("encoder.weight"), weightGradient: p.gradient("encoder.weight"), scratch: scratch)
    // Untied, only the embedding writes its gradient, and only the batch's rows.
    if !config.tied { embedding.touchedRows = p.trackRows(of: "encoder.weight") }
    let weights = try (0..<config.layers).map { l in
      try RecurrentWeights(
        store: p, layer: l, recurrentBias: config.cell.hasRecurrentBias, weightDrop: config.weightDrop)
    }
    recurrentWeights = weights
    recurrentLayers = try (0..<config.layers).map { l in
      try config.cell.makeLayer(
        layer: l, inputSize: l == 0 ? config.embeddingSize : h, hiddenSize: h, batchSize: batchSize,
        maxSteps: maxSteps, parameters: p, scratch: scratch, weights: weights[l])
    }
    if let shape = config.adaptiveShape {
      decoder = nil
      adaptiveSoftmax = try TimeAdaptiveSoftmax(
        shape: shape, inputSize: h, maxRows: rows, parameters: p, tied: config.tied,
        tiedTails: config.adaptiveTiedTails, scratch: scratch)
    } else {
      let decoderWeight = config.tied ? "encoder.weight" : "decoder.weight"
      decoder = try TimeAffine(
        inputSize: h, outputSize: config.vocabularySize, maxRows: rows,
        weight: p.value(decoderWeight), bias: p.value("decoder.bias"),
        dWeight: p.gradient(decoderWeight), dBias: p.gradient("decoder.bias"), scratch: scratch,
        scratchName: "decoder")
      adaptiveSoftmax = nil
    }
    dropouts = try (0...config.layers).map { l in
      try TimeDropout(
        rate: config.dropoutRate(at: l), width: l == 0 ? config.embeddingSize : h, maxRows: rows,
        lockedRows: config.lockedDropout ? batchSize : nil, scratch: scratch, scratchName: "dropout\(l)")
    }
  }

  /// Makes the model hold rows `shard.range` of every time step's `shard.total` in a
  /// data-parallel run (``batchSize`` is `shard.count`): its dropout layers draw the whole batch's
  /// masks and keep these rows.
  package func setShard(_ shard: RowShard) {
    precondition(shard.count == batchSize, "the shard's rows are the model's batch")
    for d in dropouts { d.setShard(shard) }
  }

  /// The ranges of the gradient buffer each recurrent layer's parameters (bottom first) and the
  /// output layer's own parameters cover: the pieces backward finishes one after another.
  private lazy var gradientRanges: (layers: [Range<Int>], decoder: Range<Int>) = (
    (0..<config.layers).map { l in
      parameters.range { $0.hasPrefix("rnn.") && $0.hasSuffix("_l\(l)") }
    },
    parameters.range { $0.hasPrefix("decoder.") }
  )

  /// Sets every dropout layer's training flag: true while training, false to evaluate.
  package func setTraining(_ on: Bool) {
    for d in dropouts { d.training = on }
    embedding.training = on
  }

  /// Activation regularisation (AR, Merity et al. 2017): α · mean(d²) over the top layer's
  /// dropped-out output d is added to the training objective (0: off).
  package var activationRegularization = 0.0
  /// Temporal activation regularisation (TAR): β · mean((h_t − h_{t−1})²) over the top layer's
  /// output h before dropout, consecutive steps of a batch (0: off).
  package var temporalActivationRegularization = 0.0
  /// The AR + TAR value of the last training pass (0 when off, or when not training); the
  /// objective is the mean cross-entropy plus this.
  package private(set) var lastRegularization = 0.0
  /// The top layer's output after dropout in the last pass: (rows, H), the output layer's input.
  private var topOutput: UnsafePointer<T>?

  /// Forgets the recurrent state carried between batches (start of a new text).
  package func resetState() {
    for layer in recurrentLayers { layer.resetState() }
  }

  /// The carried state of every layer, bottom first, each in ``RecurrentCell/stateNames`` order.
  package var carriedState: [[[T]]] { recurrentLayers.map { $0.state } }

  /// Replaces every layer's carried state (as ``carriedState`` gives it).
  package func setCarriedState(_ state: [[[T]]]) {
    precondition(state.count == recurrentLayers.count, "one state per layer")
    for (layer, s) in zip(recurrentLayers, state) { layer.setState(s) }
  }

  /// Runs the model up to the output layer and returns its scores: (steps·N, V), row t·N + n for
  /// token (t, n); logits of the full softmax, log-probabilities of the adaptive softmax (either
  /// way their softmax is the model's distribution). They stay valid until the next pass.
  package func logits(inputs: UnsafePointer<Int32>, steps: Int) throws -> UnsafeMutablePointer<T> {
    let rows = batchSize * steps
    let hidden = topLayerOutput(inputs: inputs, steps: steps)
    if let adaptiveSoftmax {
      return try profiler.time("output fwd: adaptive log-probabilities") {
        try adaptiveSoftmax.logProbabilities(input: hidden, rows: rows)
      }
    }
    let decoder = decoder!
    profiler.time("output fwd: h·Wᵀ + b") { decoder.forward(input: hidden, rows: rows) }
    return decoder.output.pointer
  }

  /// The mean loss's part from the output layer: the SUM of the token losses of `rows` rows of
  /// the top layer's output `hidden` (rows, H) against `targets` (rows); with `gradient`, the
  /// output layer's parameter gradients are added and the gradient of the MEAN loss with respect
  /// to `hidden` is returned: (rows, H), valid until the next pass.
  package func outputLoss(
    hidden: UnsafePointer<T>, targets: UnsafePointer<Int32>, rows: Int, gradient: Bool
  ) -> (loss: Double, dHidden: UnsafeMutablePointer<T>?) {
    if let adaptiveSoftmax {
      let loss = profiler.time(gradient ? "adaptive softmax fwd + bwd" : "adaptive softmax fwd") {
        adaptiveSoftmax.loss(input: hidden, targets: targets, rows: rows, gradient: gradient)
      }
      return (loss, gradient ? adaptiveSoftmax.dInput.pointer : nil)
    }
    let decoder = decoder!
    profiler.time("output fwd: h·Wᵀ + b") { decoder.forward(input: hidden, rows: rows) }
    let scores = decoder.output.pointer
    let loss = profiler.time("softmax + cross-entropy") {
      TimeSoftmaxWithLoss.loss(
        scores: scores, targets: targets, rows: rows, classes: config.vocabularySize, gradient: gradient)
    }
    guard gradient else { return (loss, nil) }
    profiler.time("output bwd: dW, db, dX") { decoder.backward(dOutput: scores) }
    return (loss, decoder.dInput.pointer)
  }

  /// Runs the model up to the top recurrent layer's output after dropout: (steps·N, H), the
  /// output layer's input.
  package func topLayerOutput(inputs: UnsafePointer<Int32>, steps: Int) -> UnsafePointer<T> {
    let rows = batchSize * steps
    profiler.time("embedding fwd") { embedding.forward(tokens: inputs, rows: rows, generator: &generator) }
    var x = profiler.time("dropout fwd") {
      dropouts[0].forward(input: embedding.output.pointer, rows: rows, generator: &generator)
    }
    for l in recurrentLayers.indices {
      if let drop = recurrentWeights[l].weightDrop {
        let stored = recurrentWeights[l].storedWHH
        let training = embedding.training
        profiler.time("weight drop: mask W_hh") {
          drop.prepare(weights: stored, training: training, generator: &generator)
        }
      }
      if l == 0, let table = wordProjections, !embedding.training {
        table.forward(
          recurrentLayers[0], tokens: inputs, rows: rows, steps: steps, embedded: x, embedding: embedding.weight)
      } else {
        recurrentLayers[l].forward(input: x, steps: steps)
      }
      x = profiler.time("dropout fwd") {
        dropouts[l + 1].forward(input: recurrentLayers[l].output, rows: rows, generator: &generator)
      }
    }
    topOutput = x
    return x
  }

  /// The first layer's input projection per word while ``withWordProjections(capacity:_:)`` runs; nil
  /// outside it.
  private var wordProjections: WordProjections<T>?
  /// The table ``withWordProjections(capacity:_:)`` keeps between passes (its pages stay mapped).
  private var keptWordProjections: WordProjections<T>?
  /// The capacity the kept table was asked for (nil: the default).
  private var keptCapacity: Int?
  /// How many words the last pass's table held (0 before any).
  package var wordProjectionCount: Int { keptWordProjections?.count ?? 0 }
  /// Elements the table of word projections holds (0 before the first evaluation pass makes it).
  package var wordProjectionElements: Int { keptWordProjections?.elementCount ?? 0 }

  /// Runs `body`, an evaluation pass over fixed weights, with the first recurrent layer's input
  /// projection computed once per distinct word and looked up after (``WordProjections``, holding
  /// at most `capacity` words, by default what its memory limit allows); the parameters must not
  /// change inside `body`. Called inside another such call, `body` uses the outer call's table; in
  /// training mode, or when the table cannot be allocated, it runs as it would without one.
  package func withWordProjections<R>(capacity: Int? = nil, _ body: () throws -> R) rethrows -> R {
    guard !embedding.training, wordProjections == nil else { return try body() }
    if keptWordProjections == nil || keptCapacity != capacity {
      keptCapacity = capacity
      keptWordProjections = try? WordProjections(
        vocabularySize: config.vocabularySize, embeddingSize: config.embeddingSize,
        width: recurrentLayers[0].projectionWidth, maxRows: batchSize * maxSteps, capacity: capacity)
    }
    keptWordProjections?.reset()
    wordProjections = keptWordProjections
    defer { wordProjections = nil }
    return try body()
  }

  /// Runs the model over one batch and returns the SUM of the token losses (natural log).
  ///
  /// - Parameters:
  ///   - inputs: (steps, N) time-major token ids.
  ///   - targets: (steps, N) the ids to predict.
  ///   - steps: time steps in this batch, 1...maxSteps.
  ///   - gradient: when true, also backpropagates the MEAN loss (plus AR and TAR) and ADDS the
  ///     gradients into ``parameters``' gradient buffer (call ``ParameterStore/zeroGradients()``
  ///     first; with weight drop the W_hh gradients must start from zero, as they are masked in
  ///     place).
  package func loss(
    inputs: UnsafePointer<Int32>, targets: UnsafePointer<Int32>, steps: Int, gradient: Bool
  ) -> Double {
    let rows = batchSize * steps
    let hidden = topLayerOutput(inputs: inputs, steps: steps)
    let (total, dHidden) = outputLoss(hidden: hidden, targets: targets, rows: rows, gradient: gradient)
    // AR and TAR on the top layer's output, in training only.
    let (alpha, beta) = (activationRegularization, temporalActivationRegularization)
    let regularize = embedding.training && (alpha > 0 || beta > 0)
    let width = config.hiddenSize
    let dropped = topOutput!
    let raw = recurrentLayers[recurrentLayers.count - 1].output
    lastRegularization = 0
    if regularize {
      var ar = 0.0
      for i in 0..<(rows * width) { ar += Double(dropped[i]) * Double(dropped[i]) }
      var tar = 0.0
      for i in (batchSize * width)..<(rows * width) {
        let d = Double(raw[i]) - Double(raw[i - batchSize * width])
        tar += d * d
      }
      lastRegularization = alpha * ar / Double(rows * width)
      if steps > 1 { lastRegularization += beta * tar / Double((steps - 1) * batchSize * width) }
    }
    guard gradient, var dx = dHidden else { return total }

    // Untied, the output layer's gradient is final now; tied, only its own part (the weight it
    // shares is the embedding's, which backward adds to at the end).
    parameters.gradientsFinished?(gradientRanges.decoder)
    if regularize && alpha > 0 {
      // d/dd of α · mean(d²): 2α · d / count, into the gradient of the dropped-out output.
      let k = T(2 * alpha / Double(rows * width))
      for i in 0..<(rows * width) { dx[i] += k * dropped[i] }
    }
    // Index loops: reversing `enumerated()` builds an array, an allocation in every step.
    for l in recurrentLayers.indices.reversed() {
      let d = dx
      let dRaw = profiler.time("dropout bwd") { dropouts[l + 1].backward(dOutput: d) }
      if regularize && beta > 0 && steps > 1 && l == recurrentLayers.count - 1 {
        // d/dh_t of β · mean((h_t − h_{t−1})²): 2β/count · ((h_t − h_{t−1}) − (h_{t+1} − h_t)).
        let k = T(2 * beta / Double((steps - 1) * batchSize * width))
        let stride = batchSize * width
        for i in 0..<(rows * width) {
          var g = T(0)
          if i >= stride { g += raw[i] - raw[i - stride] }
          if i + stride < rows * width { g -= raw[i + stride] - raw[i] }
          dRaw[i] += k * g
        }
      }
      recurrentLayers[l].backward(dOutput: dRaw)
      recurrentWeights[l].weightDrop?.maskGradient(recurrentWeights[l].dWHH)
      parameters.gradientsFinished?(gradientRanges.layers[l])
      dx = recurrentLayers[l].dInput.pointer
    }
    let d = dx
    let dEmbedding = profiler.time("dropout bwd") { dropouts[0].backward(dOutput: d) }
    profiler.time("embedding bwd") { embedding.backward(dOutput: dEmbedding) }
    return total
  }

  /// ``loss(inputs:targets:steps:gradient:)`` for arrays, for tests and small uses.
  package func loss(inputs: [Int32], targets: [Int32], steps: Int, gradient: Bool) -> Double {
    precondition(inputs.count == batchSize * steps && targets.count == inputs.count, "batch must be (steps, N)")
    return inputs.withUnsafeBufferPointer { i in
      targets.withUnsafeBufferPointer { t in
        loss(inputs: i.baseAddress!, targets: t.baseAddress!, steps: steps, gradient: gradient)
      }
    }
  }
}
