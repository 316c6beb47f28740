/// The shape of an LSTM language model.
public struct ModelConfig: Codable, Sendable, Equatable {
  /// Vocabulary size V.
  public var vocabularySize: Int
  /// Embedding size D.
  public var embeddingSize: Int
  /// Hidden size H of every LSTM layer.
  public var hiddenSize: Int
  /// Number of stacked LSTM layers L.
  public var layers: Int
  /// Whether the output layer uses the embedding matrix as its weight (needs D = H).
  public var tied: Bool

  /// A configuration; see the properties for the meaning of each value.
  public init(vocabularySize: Int, embeddingSize: Int, hiddenSize: Int, layers: Int = 1, tied: Bool = false) {
    self.vocabularySize = vocabularySize
    self.embeddingSize = embeddingSize
    self.hiddenSize = hiddenSize
    self.layers = layers
    self.tied = tied
  }

  /// Throws ``ConfigurationError`` when the values cannot make a model.
  public func validate() throws {
    if vocabularySize < 2 { throw ConfigurationError("vocabulary size must be at least 2, got \(vocabularySize)") }
    if embeddingSize < 1 { throw ConfigurationError("embedding size must be at least 1, got \(embeddingSize)") }
    if hiddenSize < 1 { throw ConfigurationError("hidden size must be at least 1, got \(hiddenSize)") }
    if layers < 1 { throw ConfigurationError("number of LSTM layers must be at least 1, got \(layers)") }
    if tied && embeddingSize != hiddenSize {
      throw ConfigurationError(
        "weight tying needs embedding size = hidden size, got \(embeddingSize) and \(hiddenSize)")
    }
  }

  /// Parameter names and shapes in buffer order, named as PyTorch's word_language_model
  /// names them (`encoder`, `rnn`, `decoder`), in `nn.Embedding`/`nn.LSTM`/`nn.Linear`
  /// layouts. The LSTM has one bias per layer (PyTorch's `bias_ih`; its `bias_hh` is zero).
  public var parameterLayout: [(name: String, shape: [Int])] {
    let v = vocabularySize
    let d = embeddingSize
    let h = hiddenSize
    var layout: [(name: String, shape: [Int])] = [("encoder.weight", [v, d])]
    for l in 0..<layers {
      let input = l == 0 ? d : h
      layout.append(("rnn.weight_ih_l\(l)", [4 * h, input]))
      layout.append(("rnn.weight_hh_l\(l)", [4 * h, h]))
      layout.append(("rnn.bias_ih_l\(l)", [4 * h]))
    }
    if !tied { layout.append(("decoder.weight", [v, h])) }
    layout.append(("decoder.bias", [v]))
    return layout
  }

  /// Number of trainable scalars.
  public var parameterCount: Int { parameterLayout.reduce(0) { $0 + $1.shape.reduce(1, *) } }
}

/// A configuration that cannot make a model or a run, with the reason.
public struct ConfigurationError: Error, CustomStringConvertible, Equatable {
  /// What is wrong.
  public let description: String
  /// An error saying `description`.
  public init(_ description: String) { self.description = description }
}

/// The LSTM language model: TimeEmbedding → L × TimeLSTM → TimeAffine → softmax/cross-entropy.
///
/// Batches are time-major: token (t, n) of a (T, N) batch sits at index t·N + n. The model
/// owns buffers for (N, maxSteps); a pass may use fewer steps. Several models of different
/// batch sizes can share one ``ParameterStore`` (training with N = 20, evaluating with N = 10).
public final class LanguageModel<T: BLASScalar> {
  /// The model's shape.
  public let config: ModelConfig
  /// Batch size N the buffers are allocated for.
  public let batchSize: Int
  /// Largest number of time steps per pass.
  public let maxSteps: Int
  /// Parameters and gradients.
  public let parameters: ParameterStore<T>
  /// The layers, in order.
  public let embedding: TimeEmbedding<T>
  /// One per LSTM layer, bottom first.
  public let lstms: [TimeLSTM<T>]
  /// The output layer (tied or not).
  public let decoder: TimeAffine<T>

  /// A model with fresh parameters drawn from `generator` as the book initialises them:
  /// embedding N(0, 1)/100, every other weight N(0, 1)/sqrt(fan_in), biases zero.
  public convenience init(
    config: ModelConfig, batchSize: Int, maxSteps: Int, generator: inout SeededGenerator
  ) throws {
    try config.validate()
    let store = ParameterStore<T>(layout: config.parameterLayout)
    for view in store.views where view.shape.count == 2 {
      let scale = view.name == "encoder.weight" ? 0.01 : 1 / Double(view.shape[1]).squareRoot()
      let p = store.values.pointer + view.offset
      for i in 0..<view.count { p[i] = T(generator.nextNormal() * scale) }
    }
    try self.init(config: config, parameters: store, batchSize: batchSize, maxSteps: maxSteps)
  }

  /// A model over existing parameters (shared, not copied), with its own buffers.
  public init(config: ModelConfig, parameters: ParameterStore<T>, batchSize: Int, maxSteps: Int) throws {
    try config.validate()
    guard parameters.views == ParameterStore<T>.views(for: config.parameterLayout) else {
      throw ConfigurationError("the parameters do not have the layout of this configuration")
    }
    if batchSize < 1 { throw ConfigurationError("batch size must be at least 1, got \(batchSize)") }
    if maxSteps < 1 { throw ConfigurationError("time steps must be at least 1, got \(maxSteps)") }
    self.config = config
    self.batchSize = batchSize
    self.maxSteps = maxSteps
    self.parameters = parameters
    let p = parameters
    let rows = batchSize * maxSteps
    let h = config.hiddenSize
    embedding = TimeEmbedding(
      vocabularySize: config.vocabularySize, dimension: config.embeddingSize, maxRows: rows,
      weight: p.value("encoder.weight"), weightGradient: p.gradient("encoder.weight"))
    lstms = (0..<config.layers).map { l in
      TimeLSTM(
        inputSize: l == 0 ? config.embeddingSize : h, hiddenSize: h, batchSize: batchSize, maxSteps: maxSteps,
        parameters: (p.value("rnn.weight_ih_l\(l)"), p.value("rnn.weight_hh_l\(l)"), p.value("rnn.bias_ih_l\(l)")),
        gradients: (
          p.gradient("rnn.weight_ih_l\(l)"), p.gradient("rnn.weight_hh_l\(l)"), p.gradient("rnn.bias_ih_l\(l)")
        ))
    }
    let decoderWeight = config.tied ? "encoder.weight" : "decoder.weight"
    decoder = TimeAffine(
      inputSize: h, outputSize: config.vocabularySize, maxRows: rows,
      weight: p.value(decoderWeight), bias: p.value("decoder.bias"),
      dWeight: p.gradient(decoderWeight), dBias: p.gradient("decoder.bias"))
  }

  /// Forgets the LSTM state carried between batches (start of a new text).
  public func resetState() {
    for lstm in lstms { lstm.resetState() }
  }

  /// Runs the model over one batch and returns the SUM of the token losses (natural log).
  ///
  /// - Parameters:
  ///   - inputs: (steps, N) time-major token ids.
  ///   - targets: (steps, N) the ids to predict.
  ///   - steps: time steps in this batch, 1...maxSteps.
  ///   - gradient: when true, also backpropagates the MEAN loss and ADDS the gradients into
  ///     ``parameters``' gradient buffer (call ``ParameterStore/zeroGradients()`` first).
  public func loss(
    inputs: UnsafePointer<Int32>, targets: UnsafePointer<Int32>, steps: Int, gradient: Bool
  ) -> Double {
    let rows = batchSize * steps
    embedding.forward(tokens: inputs, rows: rows)
    var x = UnsafePointer(embedding.output.pointer)
    for lstm in lstms {
      lstm.forward(input: x, steps: steps)
      x = lstm.output
    }
    decoder.forward(input: x, rows: rows)
    let total = TimeSoftmaxWithLoss.loss(
      scores: decoder.output.pointer, targets: targets, rows: rows, classes: config.vocabularySize,
      gradient: gradient)
    guard gradient else { return total }

    decoder.backward(dOutput: decoder.output.pointer)
    var dx = UnsafePointer(decoder.dInput.pointer)
    for lstm in lstms.reversed() {
      lstm.backward(dOutput: dx)
      dx = UnsafePointer(lstm.dInput.pointer)
    }
    embedding.backward(dOutput: dx)
    return total
  }

  /// ``loss(inputs:targets:steps:gradient:)`` for arrays, for tests and small uses.
  public func loss(inputs: [Int32], targets: [Int32], steps: Int, gradient: Bool) -> Double {
    precondition(inputs.count == batchSize * steps && targets.count == inputs.count, "batch must be (steps, N)")
    return inputs.withUnsafeBufferPointer { i in
      targets.withUnsafeBufferPointer { t in
        loss(inputs: i.baseAddress!, targets: t.baseAddress!, steps: steps, gradient: gradient)
      }
    }
  }
}
