import Foundation

/// The shape of an encoder–decoder (sequence-to-sequence) model: an encoder (embedding → L
/// recurrent layers) reads the source; a decoder of the same cell and size, started from the
/// encoder's final state layer by layer, reads `<sos>` and the target and predicts the target
/// and `<eos>`; optionally with attention over every encoder state, a reversed source, and a
/// "peeky" decoder that sees the encoder's summary at every step.
public struct Seq2SeqConfig: Codable, Sendable, Equatable {
  /// Source and target vocabulary sizes (special tokens included).
  public var sourceVocabularySize: Int, targetVocabularySize: Int
  /// Embedding size D and hidden size H of both sides.
  public var embeddingSize: Int, hiddenSize: Int
  /// Recurrent layers L of the encoder and of the decoder.
  public var layers: Int
  /// The recurrent cell of every layer.
  public var cell: RecurrentCell
  /// The attention score; `.none` turns attention off.
  public var attention: AttentionScore
  /// Whether the encoder reads each source backwards (its real tokens; padding stays at the end).
  public var reverseSource: Bool
  /// Whether the decoder's first layer reads [embedding; encoder summary] at every step, the
  /// summary being the encoder's top state at the source's last step.
  public var peeky: Bool
  /// Dropout rate before the output layer, in training.
  public var dropout: Double

  /// A configuration; see the properties for the meaning of each value.
  public init(
    sourceVocabularySize: Int, targetVocabularySize: Int, embeddingSize: Int, hiddenSize: Int, layers: Int = 1,
    cell: RecurrentCell = .lstm, attention: AttentionScore = .dot, reverseSource: Bool = false, peeky: Bool = false,
    dropout: Double = 0
  ) {
    (self.sourceVocabularySize, self.targetVocabularySize) = (sourceVocabularySize, targetVocabularySize)
    (self.embeddingSize, self.hiddenSize, self.layers, self.cell) = (embeddingSize, hiddenSize, layers, cell)
    (self.attention, self.reverseSource, self.peeky, self.dropout) = (attention, reverseSource, peeky, dropout)
  }

  /// Throws ``ConfigurationError`` when the values cannot make a model.
  public func validate() throws {
    for (name, value) in [
      ("source vocabulary size", sourceVocabularySize), ("target vocabulary size", targetVocabularySize),
    ]
    where value < Seq2SeqVocabulary.specials.count + 1 {
      throw ConfigurationError("\(name) must be at least \(Seq2SeqVocabulary.specials.count + 1), got \(value)")
    }
    if embeddingSize < 1 { throw ConfigurationError("embedding size must be at least 1, got \(embeddingSize)") }
    if hiddenSize < 1 { throw ConfigurationError("hidden size must be at least 1, got \(hiddenSize)") }
    if layers < 1 { throw ConfigurationError("number of recurrent layers must be at least 1, got \(layers)") }
    let largest = Int(Int32.max) / 4
    for (name, value) in [
      ("source vocabulary size", sourceVocabularySize), ("target vocabulary size", targetVocabularySize),
      ("embedding size", embeddingSize), ("hidden size", hiddenSize), ("number of recurrent layers", layers),
    ] where value > largest {
      throw ConfigurationError("\(name) must be at most \(largest), got \(value)")
    }
    if !(dropout >= 0 && dropout < 1) { throw ConfigurationError("dropout must be in [0, 1), got \(dropout)") }
  }

  /// The decoder's first layer's input size: D, or D + H when peeky.
  public var decoderInputSize: Int { embeddingSize + (peeky ? hiddenSize : 0) }

  /// Parameter names and shapes in buffer order: `encoder.embedding.weight` (Vs, D),
  /// `encoder.rnn.*` and `decoder.rnn.*` as `nn.LSTM`/`nn.GRU`/`nn.RNN` name theirs,
  /// `decoder.embedding.weight` (Vt, D), with attention `attention.weight` (H, H; general score)
  /// and `attention.combine.weight` (H, 2H) + `attention.combine.bias` (H) — tanh(W_c [c; h] + b)
  /// — and `output.weight` (Vt, H), `output.bias` (Vt).
  public var parameterLayout: [(name: String, shape: [Int])] {
    let (d, h) = (embeddingSize, hiddenSize)
    var layout: [(name: String, shape: [Int])] = [("encoder.embedding.weight", [sourceVocabularySize, d])]
    for l in 0..<layers {
      layout += cell.parameterLayout(layer: l, inputSize: l == 0 ? d : h, hiddenSize: h, prefix: "encoder.rnn.")
    }
    layout.append(("decoder.embedding.weight", [targetVocabularySize, d]))
    for l in 0..<layers {
      layout += cell.parameterLayout(
        layer: l, inputSize: l == 0 ? decoderInputSize : h, hiddenSize: h, prefix: "decoder.rnn.")
    }
    if attention == .general { layout.append(("attention.weight", [h, h])) }
    if attention != .none { layout += [("attention.combine.weight", [h, 2 * h]), ("attention.combine.bias", [h])] }
    layout += [("output.weight", [targetVocabularySize, h]), ("output.bias", [targetVocabularySize])]
    return layout
  }

  /// Number of trainable scalars.
  public var parameterCount: Int { parameterLayout.reduce(0) { $0 + $1.shape.reduce(1, *) } }

  /// What the model is, for headers: "2 × 128 LSTM, dot attention, reversed source".
  public var description: String {
    var parts = ["\(layers) × \(hiddenSize) \(cell)", attention == .none ? "no attention" : "\(attention) attention"]
    if reverseSource { parts.append("reversed source") }
    if peeky { parts.append("peeky decoder") }
    return parts.joined(separator: ", ")
  }
}

/// A batch of sequence pairs: N sources and targets, right-padded, time-major.
package struct Seq2SeqBatch {
  /// source: (Ts, N) time-major; `<pad>` after each source's end (reversed when the model says).
  package var source: [Int32]
  /// sourceLengths: (N), 1...Ts.
  package var sourceLengths: [Int]
  /// decoderInput: (Tt, N): `<sos>` then the target; targets: (Tt, N): the target then `<eos>`.
  package var decoderInput: [Int32], targets: [Int32]
  /// targetLengths: (N): target tokens + 1 (the `<eos>`), 1...Tt.
  package var targetLengths: [Int]
  /// weights: (N): 1 for a pair, 0 for a filler row completing the last batch.
  package var weights: [Double]
  /// Steps of this batch: the longest source and the longest target + 1.
  package var sourceSteps = 1, targetSteps = 1

  /// An empty batch of N rows with room for the given steps.
  package init(batchSize n: Int, maxSourceSteps: Int, maxTargetSteps: Int) {
    source = [Int32](repeating: 0, count: n * maxSourceSteps)
    decoderInput = [Int32](repeating: 0, count: n * maxTargetSteps)
    targets = decoderInput
    sourceLengths = [Int](repeating: 1, count: n)
    targetLengths = sourceLengths
    weights = [Double](repeating: 0, count: n)
  }

  /// Fills the batch with the pairs of `pairs` at `indices` (at most N; the rest become filler
  /// rows), reversing each source's tokens when `reverse`. Its steps are those of the pairs at
  /// `stepsOf` (a data-parallel run's whole batch, of which `indices` are this process's share:
  /// its dropout masks are drawn for the whole batch's steps), `indices` by default.
  package mutating func fill(
    from pairs: [EncodedPair], indices: some Collection<Int>, reverse: Bool, stepsOf: ArraySlice<Int>? = nil
  ) {
    let n = weights.count
    precondition(indices.count <= n, "\(indices.count) pairs for a batch of \(n)")
    sourceSteps = 1
    targetSteps = 1
    for i in stepsOf.map(Array.init) ?? Array(indices) {
      sourceSteps = max(sourceSteps, pairs[i].source.count)
      targetSteps = max(targetSteps, pairs[i].target.count + 1)
    }
    precondition(sourceSteps * n <= source.count && targetSteps * n <= targets.count, "a pair exceeds the batch's room")
    for i in 0..<(sourceSteps * n) { source[i] = Seq2SeqVocabulary.padID }
    for i in 0..<(targetSteps * n) {
      (decoderInput[i], targets[i]) = (Seq2SeqVocabulary.padID, Seq2SeqVocabulary.padID)
    }
    for r in 0..<n {
      (sourceLengths[r], targetLengths[r], weights[r]) = (1, 1, 0)
      decoderInput[r] = Seq2SeqVocabulary.startID
      targets[r] = Seq2SeqVocabulary.endID
    }
    for (r, i) in indices.enumerated() {
      let pair = pairs[i]
      precondition(!pair.source.isEmpty, "a source must have at least one token")
      let len = pair.source.count
      for t in 0..<len { source[t * n + r] = pair.source[reverse ? len - 1 - t : t] }
      sourceLengths[r] = len
      decoderInput[r] = Seq2SeqVocabulary.startID
      for (t, id) in pair.target.enumerated() {
        decoderInput[(t + 1) * n + r] = id
        targets[t * n + r] = id
      }
      targets[pair.target.count * n + r] = Seq2SeqVocabulary.endID
      targetLengths[r] = pair.target.count + 1
      weights[r] = 1
    }
  }
}

/// A source and its target as token ids (without `<sos>` and `<eos>`).
public struct EncodedPair: Sendable, Equatable {
  /// Source ids, at least one; target ids (may be empty).
  public var source: [Int32], target: [Int32]

  /// A pair of id sequences.
  public init(source: [Int32], target: [Int32]) {
    self.source = source
    self.target = target
  }
}

/// The encoder–decoder model of ``Seq2SeqConfig`` over a time-major batch.
///
/// Sources are right-padded: each sequence's encoder states at its real steps never see the
/// padding, the decoder starts from the states at the source's last real step (gathered per
/// sequence), attention gives padded steps weight 0, and the loss counts only real target steps
/// (the target and `<eos>`); the decoder's padded steps come after its real ones. So padding
/// changes no sequence's loss, gradient or prediction. Backward, the decoder's gradient with
/// respect to its initial state enters the encoder at each source's last real step (for the
/// LSTM through the cell state too).
package final class Seq2SeqModel<T: BLASScalar> {
  /// The model's shape.
  package let config: Seq2SeqConfig
  /// N and the largest source and target step counts.
  package let batchSize: Int, maxSourceSteps: Int, maxTargetSteps: Int
  /// Parameters and gradients.
  package let parameters: ParameterStore<T>
  let encoderEmbedding: TimeEmbedding<T>, decoderEmbedding: TimeEmbedding<T>
  /// The encoder's and the decoder's layers, bottom first.
  let encoderLayers: [any RecurrentLayer<T>], decoderLayers: [any RecurrentLayer<T>]
  /// Attention over the encoder's top states, and the combination tanh(W_c [c; h] + b), or nil.
  let attention: TimeAttention<T>?, combine: TimeAffine<T>?
  /// concatenated: (Tt·N, 2H): [context; decoder top state]; then combined: (Tt·N, H) the tanh.
  let concatenated: Buffer<T>, combined: Buffer<T>
  /// peekyInput: (Tt·N, D + H): [embedding; encoder summary] (peeky only); dEmbedding (Tt·N, D).
  let peekyInput: Buffer<T>, dEmbedding: Buffer<T>
  package let dropout: TimeDropout<T>
  /// The output layer: (Tt·N, H) → (Tt·N, Vt).
  let output: TimeAffine<T>
  /// finalStates[l][k]: (N, H), the encoder layer l's state k at each source's last step.
  let finalStates: [[Buffer<T>]]
  /// initialGradients[l][k]: (N, H), the gradient reaching decoder layer l's initial state k.
  let initialGradients: [[Buffer<T>]]
  /// dEncoderTop: (Ts·N, H): the gradient of the encoder's top outputs; cellInjection: (Ts·N, H),
  /// the LSTM's gradients reaching c at each source's last step.
  let dEncoderTop: Buffer<T>, cellInjection: Buffer<T>
  /// probabilities: (Tt·N, Vt) after a pass with `keepProbabilities`, or the last decoding step.
  package let probabilities: Buffer<T>
  /// Draws the dropout masks.
  package var generator: SeededGenerator
  private var sourceLengths: [Int]
  private var sourceSteps = 1

  /// A model with fresh parameters drawn from `generator`: embeddings N(0, 1)/10, every other
  /// weight N(0, 1)/sqrt(fan_in), biases zero.
  package convenience init(
    config: Seq2SeqConfig, batchSize: Int, maxSourceSteps: Int, maxTargetSteps: Int, generator: inout SeededGenerator
  ) throws {
    try config.validate()
    let store = try ParameterStore<T>(layout: config.parameterLayout)
    for view in store.views where view.shape.count == 2 {
      let scale = view.name.hasSuffix("embedding.weight") ? 0.1 : 1 / Double(view.shape[1]).squareRoot()
      let p = store.values.pointer + view.offset
      for i in 0..<view.count { p[i] = T(generator.nextNormal() * scale) }
    }
    try self.init(
      config: config, parameters: store, batchSize: batchSize, maxSourceSteps: maxSourceSteps,
      maxTargetSteps: maxTargetSteps, generator: generator)
  }

  /// A model over existing parameters; `generator` draws its dropout masks.
  package init(
    config: Seq2SeqConfig, parameters: ParameterStore<T>, batchSize: Int, maxSourceSteps: Int, maxTargetSteps: Int,
    generator: SeededGenerator = SeededGenerator(seed: 0)
  ) throws {
    try config.validate()
    if batchSize < 1 { throw ConfigurationError("batch size must be at least 1, got \(batchSize)") }
    if maxSourceSteps < 1 || maxTargetSteps < 1 {
      throw ConfigurationError("the longest source and target must have at least 1 step")
    }
    guard parameters.views == ParameterStore<T>.views(for: config.parameterLayout) else {
      throw ConfigurationError("the parameters do not have the layout of this configuration")
    }
    let (d, h, vt, n) = (config.embeddingSize, config.hiddenSize, config.targetVocabularySize, batchSize)
    let rows = Double(n) * Double(max(maxSourceSteps, maxTargetSteps))
    let bytes =
      Double(MemoryLayout<T>.stride) * rows
      * Double(4 * d + 2 * config.layers * h * (config.cell.gateCount + 4) + 2 * vt + 8 * h)
    if Memory.availableBytes > 0 && bytes > Memory.availableBytes {
      throw AllocationError(
        "a batch of \(n) pairs of up to \(maxSourceSteps) and \(maxTargetSteps) tokens needs about \(Memory.describe(bytes)); this machine has \(Memory.describe(Memory.availableBytes))"
      )
    }
    (self.config, self.batchSize, self.maxSourceSteps, self.maxTargetSteps) = (
      config, batchSize, maxSourceSteps, maxTargetSteps
    )
    self.parameters = parameters
    self.generator = generator
    let p = parameters
    let scratch = ScratchPool<T>()
    let (sourceRows, targetRows) = (n * maxSourceSteps, n * maxTargetSteps)
    encoderEmbedding = try TimeEmbedding(
      vocabularySize: config.sourceVocabularySize, dimension: d, maxRows: sourceRows,
      weight: p.value("encoder.embedding.weight"), weightGradient: p.gradient("encoder.embedding.weight"),
      scratch: scratch, scratchName: "encoder.embedding")
    decoderEmbedding = try TimeEmbedding(
      vocabularySize: vt, dimension: d, maxRows: targetRows, weight: p.value("decoder.embedding.weight"),
      weightGradient: p.gradient("decoder.embedding.weight"), scratch: scratch, scratchName: "decoder.embedding")
    encoderLayers = try (0..<config.layers).map { l in
      try config.cell.makeLayer(
        layer: l, inputSize: l == 0 ? d : h, hiddenSize: h, batchSize: n, maxSteps: maxSourceSteps, parameters: p,
        scratch: scratch, prefix: "encoder.rnn.")
    }
    decoderLayers = try (0..<config.layers).map { l in
      try config.cell.makeLayer(
        layer: l, inputSize: l == 0 ? config.decoderInputSize : h, hiddenSize: h, batchSize: n,
        maxSteps: maxTargetSteps, parameters: p, scratch: scratch, prefix: "decoder.rnn.")
    }
    if config.attention != .none {
      attention = try TimeAttention(
        hiddenSize: h, batchSize: n, maxSourceSteps: maxSourceSteps, maxTargetSteps: maxTargetSteps,
        weight: config.attention == .general ? UnsafePointer(p.value("attention.weight")) : nil,
        dWeight: config.attention == .general ? p.gradient("attention.weight") : nil)
      combine = try TimeAffine(
        inputSize: 2 * h, outputSize: h, maxRows: targetRows, weight: p.value("attention.combine.weight"),
        bias: p.value("attention.combine.bias"), dWeight: p.gradient("attention.combine.weight"),
        dBias: p.gradient("attention.combine.bias"), scratch: scratch, scratchName: "combine")
    } else {
      (attention, combine) = (nil, nil)
    }
    concatenated = try Buffer(count: config.attention == .none ? 0 : targetRows * 2 * h)
    combined = try Buffer(count: config.attention == .none ? 0 : targetRows * h)
    peekyInput = try Buffer(count: config.peeky ? targetRows * (d + h) : 0)
    dEmbedding = try Buffer(count: config.peeky ? targetRows * d : 0)
    dropout = try TimeDropout(rate: config.dropout, width: h, maxRows: targetRows, scratch: scratch)
    output = try TimeAffine(
      inputSize: h, outputSize: vt, maxRows: targetRows, weight: p.value("output.weight"),
      bias: p.value("output.bias"), dWeight: p.gradient("output.weight"), dBias: p.gradient("output.bias"),
      scratch: scratch, scratchName: "output")
    let states = config.cell.stateNames.count
    finalStates = try (0..<config.layers).map { _ in try (0..<states).map { _ in try Buffer<T>(count: n * h) } }
    initialGradients = try (0..<config.layers).map { _ in try (0..<states).map { _ in try Buffer<T>(count: n * h) } }
    dEncoderTop = try Buffer(count: sourceRows * h)
    cellInjection = try Buffer(count: config.cell == .lstm ? sourceRows * h : 0)
    probabilities = try Buffer(count: targetRows * vt)
    sourceLengths = [Int](repeating: 1, count: n)
  }

  /// Training (dropout on) or evaluation (off).
  package var training: Bool {
    get { dropout.training }
    set { dropout.training = newValue }
  }

  /// Runs the encoder over the batch's sources and gathers each layer's state at each source's
  /// last step into ``finalStates``.
  package func encode(_ batch: Seq2SeqBatch) {
    let (n, h) = (batchSize, config.hiddenSize)
    sourceSteps = batch.sourceSteps
    for r in 0..<n { sourceLengths[r] = batch.sourceLengths[r] }
    batch.source.withUnsafeBufferPointer { s in
      encoderEmbedding.forward(tokens: s.baseAddress!, rows: n * sourceSteps, generator: &generator)
    }
    var x = UnsafePointer(encoderEmbedding.output.pointer)
    for (l, layer) in encoderLayers.enumerated() {
      layer.resetState()
      layer.forward(input: x, steps: sourceSteps)
      x = layer.output
      for (k, sequence) in layer.stateSequences.enumerated() {
        for r in 0..<n {
          (finalStates[l][k].pointer + r * h).update(from: sequence + (sourceLengths[r] * n + r) * h, count: h)
        }
      }
    }
  }

  /// Starts every decoder layer from the encoder's final state of the same layer.
  package func startDecoder() {
    for (l, layer) in decoderLayers.enumerated() { layer.setState(finalStates[l].map(\.array)) }
  }

  /// The decoder from `tokens` (steps·N, time-major) on: embedding (with the encoder summary when
  /// peeky), its layers from their carried state, attention and the output layer; returns the
  /// logits (steps·N, Vt).
  @discardableResult
  package func decode(tokens: UnsafePointer<Int32>, steps: Int) -> UnsafeMutablePointer<T> {
    let (n, h, d) = (batchSize, config.hiddenSize, config.embeddingSize)
    let rows = n * steps
    decoderEmbedding.forward(tokens: tokens, rows: rows, generator: &generator)
    var x = UnsafePointer(decoderEmbedding.output.pointer)
    if config.peeky {
      let summary = finalStates[config.layers - 1][0].pointer
      for row in 0..<rows {
        let out = peekyInput.pointer + row * (d + h)
        out.update(from: x + row * d, count: d)
        (out + d).update(from: summary + (row % n) * h, count: h)
      }
      x = UnsafePointer(peekyInput.pointer)
    }
    for layer in decoderLayers {
      layer.forward(input: x, steps: steps)
      x = layer.output
    }
    var feature = x
    if let attention, let combine {
      let top = x
      attention.forward(
        query: top, targetSteps: steps, source: encoderLayers[config.layers - 1].output, sourceSteps: sourceSteps,
        sourceLengths: sourceLengths)
      for row in 0..<rows {
        let out = concatenated.pointer + row * 2 * h
        out.update(from: attention.context.pointer + row * h, count: h)
        (out + h).update(from: top + row * h, count: h)
      }
      combine.forward(input: concatenated.pointer, rows: rows)
      for i in 0..<(rows * h) { combined.pointer[i] = T(Foundation.tanh(Double(combine.output.pointer[i]))) }
      feature = UnsafePointer(combined.pointer)
    }
    let dropped = dropout.forward(input: feature, rows: rows, generator: &generator)
    output.forward(input: dropped, rows: rows)
    return output.output.pointer
  }

  /// Runs the batch with teacher forcing and returns the summed cross-entropy over real target
  /// steps, the correct tokens among them (argmax), the count and the pairs. With `gradient`,
  /// backpropagates the MEAN over real target steps (or their sum divided by `divisor`: a
  /// data-parallel share) and ADDS into the parameters' gradients.
  package func pass(_ batch: Seq2SeqBatch, gradient: Bool, divisor: Double? = nil) -> BatchResult {
    let (n, vt) = (batchSize, config.targetVocabularySize)
    precondition(batch.weights.count == n, "batch does not fit the model")
    precondition(batch.sourceSteps <= maxSourceSteps && batch.targetSteps <= maxTargetSteps, "batch too long")
    encode(batch)
    startDecoder()
    let tt = batch.targetSteps
    let logits = batch.decoderInput.withUnsafeBufferPointer { decode(tokens: $0.baseAddress!, steps: tt) }

    // Loss over real target steps only; the gradient of their mean, zero elsewhere.
    var real = 0
    for r in 0..<n where batch.weights[r] > 0 { real += batch.targetLengths[r] }
    var result = BatchResult(lossSum: 0, correct: 0, count: real, examples: Int(batch.weights.reduce(0, +)))
    for t in 0..<tt {
      for r in 0..<n {
        let row = logits + (t * n + r) * vt
        guard batch.weights[r] > 0 && t < batch.targetLengths[r] else {
          if gradient { row.update(repeating: 0, count: vt) }
          continue
        }
        var target = batch.targets[t * n + r]
        var best = 0
        for j in 1..<vt where row[j] > row[best] { best = j }
        if best == Int(target) { result.correct += 1 }
        // The language model's softmax kernel on this row: its loss, and with `gradient` the
        // row becomes (softmax − one-hot) / real.
        result.lossSum += T._softmaxCrossEntropy(1, vt, row, &target, gradient ? 1 / T(divisor ?? Double(real)) : 0)
      }
    }
    guard gradient else { return result }
    backward(targetSteps: tt)
    return result
  }

  private func backward(targetSteps tt: Int) {
    let (n, h, dim) = (batchSize, config.hiddenSize, config.embeddingSize)
    let rows = n * tt
    output.backward(dOutput: output.output.pointer)
    let dFeature = dropout.backward(dOutput: output.dInput.pointer)
    var dTop = dFeature
    dEncoderTop.pointer.update(repeating: 0, count: n * sourceSteps * h)
    if let attention, let combine {
      // tanh' in place, the combination's backward, then [dContext; dTop] apart.
      for i in 0..<(rows * h) { dFeature[i] *= 1 - combined.pointer[i] * combined.pointer[i] }
      combine.backward(dOutput: dFeature)
      let dConcatenated = combine.dInput.pointer
      for row in 0..<rows {
        (dFeature + row * h).update(from: dConcatenated + row * 2 * h, count: h)
      }
      attention.backward(dContext: dFeature)
      for row in 0..<rows {
        let d = dFeature + row * h
        let fromTop = dConcatenated + row * 2 * h + h
        let fromQuery = attention.dQuery.pointer + row * h
        for j in 0..<h { d[j] = fromTop[j] + fromQuery[j] }
      }
      dEncoderTop.pointer.update(from: attention.dSource.pointer, count: n * sourceSteps * h)
      dTop = dFeature
    }
    var d = UnsafePointer(dTop)
    for l in decoderLayers.indices.reversed() {
      decoderLayers[l].backward(dOutput: d)
      decoderLayers[l].initialStateGradients(into: initialGradients[l].map(\.pointer))
      d = UnsafePointer(decoderLayers[l].dInput.pointer)
    }
    let top = config.layers - 1
    if config.peeky {
      // The summary's gradient, summed over the decoder's steps, reaches the encoder's top state
      // at each source's last step, like the top decoder layer's initial-state gradient.
      let summary = initialGradients[top][0].pointer
      for row in 0..<rows {
        let g = d + row * (dim + h)
        (dEmbedding.pointer + row * dim).update(from: g, count: dim)
        let s = summary + (row % n) * h
        for j in 0..<h { s[j] += g[dim + j] }
      }
      d = UnsafePointer(dEmbedding.pointer)
    }
    decoderEmbedding.backward(dOutput: d)

    // The encoder: the decoder's initial-state gradients enter at each source's last step.
    var dOut = dEncoderTop.pointer
    for l in encoderLayers.indices.reversed() {
      for r in 0..<n {
        let at = ((sourceLengths[r] - 1) * n + r) * h
        let g = initialGradients[l][0].pointer + r * h
        for j in 0..<h { dOut[at + j] += g[j] }
      }
      var cells: UnsafePointer<T>? = nil
      if config.cell == .lstm {
        cellInjection.pointer.update(repeating: 0, count: n * sourceSteps * h)
        for r in 0..<n {
          (cellInjection.pointer + ((sourceLengths[r] - 1) * n + r) * h).update(
            from: initialGradients[l][1].pointer + r * h, count: h)
        }
        cells = UnsafePointer(cellInjection.pointer)
      }
      encoderLayers[l].backward(dOutput: dOut, stateGradients: nil, cellGradients: cells)
      dOut = encoderLayers[l].dInput.pointer
    }
    encoderEmbedding.backward(dOutput: dOut)
  }
}
