import Foundation

/// How a text classifier turns the encoder's outputs into one feature vector per text.
public enum ClassifierPooling: String, Codable, Sendable, CaseIterable {
  /// The top layer's hidden state at the text's last real step (Keras' default).
  case last
  /// The mean of the top layer's hidden states over the text's real steps.
  case mean
  /// The largest value of each feature over the text's real steps (Keras' GlobalMaxPooling1D;
  /// the BiLSTM-max of Conneau et al. 2017); its gradient goes to the step that held it.
  case max
}

/// The shape of a many-to-one text classifier: embedding → L recurrent layers of one cell →
/// pooling over the real steps → dropout → affine → sigmoid (2 classes) or softmax (K classes).
/// With `layers` 0 it is the bag-of-words baseline: the mean of the text's embeddings → dropout →
/// affine.
public struct ClassifierConfig: Codable, Sendable, Equatable {
  /// Vocabulary size V (`<pad>` and `<unk>` included).
  public var vocabularySize: Int
  /// Embedding size D.
  public var embeddingSize: Int
  /// Hidden size H of every recurrent layer (unused by the bag of words).
  public var hiddenSize: Int
  /// Number of stacked recurrent layers L; 0 is the bag-of-words baseline.
  public var layers: Int
  /// The recurrent cell of every layer.
  public var cell: RecurrentCell
  /// Number of classes K ≥ 2.
  public var classes: Int
  /// Dropout rate on the pooled features, in training.
  public var dropout: Double
  /// Embedding dropout, in training: each batch drops every vocabulary word with this
  /// probability, all its occurrences at once, and scales the kept words' vectors by 1 / (1 − p)
  /// (the language models' `--embedding-dropout`, after Gal & Ghahramani 2016). 0 in checkpoints
  /// written before it existed.
  public var embeddingDropout: Double
  /// How the encoder's states become one vector.
  public var pooling: ClassifierPooling
  /// Whether every recurrent layer also reads each text backwards (`_reverse` parameters, as
  /// PyTorch's bidirectional modules name them); the layers above and the output read both
  /// directions' states side by side (2H).
  public var bidirectional: Bool

  /// A configuration; see the properties for the meaning of each value.
  public init(
    vocabularySize: Int, embeddingSize: Int, hiddenSize: Int, layers: Int = 1, cell: RecurrentCell = .lstm,
    classes: Int = 2, dropout: Double = 0, pooling: ClassifierPooling = .last, bidirectional: Bool = false,
    embeddingDropout: Double = 0
  ) {
    self.vocabularySize = vocabularySize
    self.embeddingSize = embeddingSize
    self.hiddenSize = hiddenSize
    self.layers = layers
    self.cell = cell
    self.classes = classes
    self.dropout = dropout
    self.pooling = pooling
    self.bidirectional = bidirectional
    self.embeddingDropout = embeddingDropout
  }

  /// Decodes a configuration; a checkpoint written before embedding dropout existed has none.
  public init(from decoder: any Decoder) throws {
    let c = try decoder.container(keyedBy: CodingKeys.self)
    self.init(
      vocabularySize: try c.decode(Int.self, forKey: .vocabularySize),
      embeddingSize: try c.decode(Int.self, forKey: .embeddingSize),
      hiddenSize: try c.decode(Int.self, forKey: .hiddenSize), layers: try c.decode(Int.self, forKey: .layers),
      cell: try c.decode(RecurrentCell.self, forKey: .cell), classes: try c.decode(Int.self, forKey: .classes),
      dropout: try c.decode(Double.self, forKey: .dropout),
      pooling: try c.decode(ClassifierPooling.self, forKey: .pooling),
      bidirectional: try c.decode(Bool.self, forKey: .bidirectional),
      embeddingDropout: try c.decodeIfPresent(Double.self, forKey: .embeddingDropout) ?? 0)
  }

  /// Whether this is the bag-of-words baseline (no recurrent layer).
  public var isBagOfWords: Bool { layers == 0 }

  /// Logits per text: 1 for two classes (sigmoid, binary cross-entropy), K otherwise (softmax).
  public var outputs: Int { classes == 2 ? 1 : classes }

  /// Width of the pooled features: H, or D for the bag of words.
  public var featureSize: Int { isBagOfWords ? embeddingSize : directions * hiddenSize }

  /// Directions of every recurrent layer: 2 when bidirectional, else 1.
  public var directions: Int { bidirectional ? 2 : 1 }

  /// The input size of recurrent layer `l`: D for the first, H (2H when bidirectional) above.
  public func inputSize(layer l: Int) -> Int { l == 0 ? embeddingSize : directions * hiddenSize }

  /// What the model is, for headers and `rnnlm info`: "2 × 64 LSTM" or "bag of words".
  public var encoderDescription: String {
    isBagOfWords
      ? "bag of words (mean of embeddings)"
      : "\(layers) × \(hiddenSize) \(bidirectional ? "bidirectional " : "")\(cell), \(pooling) state"
  }

  /// The model in one line, for run headers and `rnnlm info`: "1 × 64 LSTM, last state, V 10002,
  /// D 64, dropout 0.2, sigmoid output" (embedding dropout named when there is some).
  public var summary: String {
    "\(encoderDescription), V \(vocabularySize), D \(embeddingSize), dropout \(dropout), "
      + (embeddingDropout > 0 ? "embedding dropout \(embeddingDropout), " : "")
      + "\(classes == 2 ? "sigmoid" : "softmax") output"
  }

  /// Throws ``ConfigurationError`` when the values cannot make a model.
  public func validate() throws {
    if vocabularySize < 3 { throw ConfigurationError("vocabulary size must be at least 3, got \(vocabularySize)") }
    if embeddingSize < 1 { throw ConfigurationError("embedding size must be at least 1, got \(embeddingSize)") }
    if hiddenSize < 1 { throw ConfigurationError("hidden size must be at least 1, got \(hiddenSize)") }
    if layers < 0 { throw ConfigurationError("number of recurrent layers must be at least 0, got \(layers)") }
    if classes < 2 { throw ConfigurationError("a classifier needs at least 2 classes, got \(classes)") }
    let largest = Int(Int32.max) / 4
    for (name, value) in [
      ("vocabulary size", vocabularySize), ("embedding size", embeddingSize), ("hidden size", hiddenSize),
      ("number of recurrent layers", layers), ("number of classes", classes),
    ] where value > largest {
      throw ConfigurationError("\(name) must be at most \(largest), got \(value)")
    }
    if !(dropout >= 0 && dropout < 1) { throw ConfigurationError("dropout must be in [0, 1), got \(dropout)") }
    if !(embeddingDropout >= 0 && embeddingDropout < 1) {
      throw ConfigurationError("embedding dropout must be in [0, 1), got \(embeddingDropout)")
    }
  }

  /// Parameter names and shapes in buffer order: `embedding.weight` (V, D) as `nn.Embedding`,
  /// the recurrent layers as `nn.LSTM`/`nn.GRU`/`nn.RNN` name them (`rnn.*`), and `fc.weight`
  /// (outputs, F), `fc.bias` (outputs) as `nn.Linear`.
  public var parameterLayout: [(name: String, shape: [Int])] {
    var layout: [(name: String, shape: [Int])] = [("embedding.weight", [vocabularySize, embeddingSize])]
    for l in 0..<layers {
      layout += cell.parameterLayout(layer: l, inputSize: inputSize(layer: l), hiddenSize: hiddenSize)
      if bidirectional {
        layout += cell.parameterLayout(
          layer: l, inputSize: inputSize(layer: l), hiddenSize: hiddenSize, suffix: "_reverse")
      }
    }
    layout += [("fc.weight", [outputs, featureSize]), ("fc.bias", [outputs])]
    return layout
  }

  /// Number of trainable scalars.
  public var parameterCount: Int { parameterLayout.reduce(0) { $0 + $1.shape.reduce(1, *) } }

  /// Matrix-product FLOPs of a training step (forward and backward) per real token: 3× the
  /// recurrent layers' forward products (0 for the bag of words, whose work is not products).
  public var trainingFLOPsPerToken: Double {
    (0..<layers).reduce(0.0) {
      $0 + 3 * Double(directions) * cell.forwardFLOPsPerToken(inputSize: inputSize(layer: $1), hiddenSize: hiddenSize)
    }
  }
}

/// A batch of texts for ``TextClassifier``: N texts of at most T tokens, right-padded, time-major.
package struct ClassifierBatch {
  /// tokens: (T, N) time-major, token (t, n) at t·N + n; `<pad>` (0) after each text's end.
  package var tokens: [Int32]
  /// lengths: (N), real tokens of each text, 1...T; a filler row (weight 0) has length 1.
  package var lengths: [Int]
  /// labels: (N), class ids.
  package var labels: [Int32]
  /// weights: (N), 1 for a text, 0 for a filler row that only completes the last batch.
  package var weights: [Double]
  /// Time steps T of this batch (the longest text's length).
  package var steps: Int

  /// An empty batch of N rows with room for `maxSteps` steps (allocated once, refilled per step).
  package init(batchSize n: Int, maxSteps: Int) {
    tokens = [Int32](repeating: 0, count: n * maxSteps)
    lengths = [Int](repeating: 1, count: n)
    labels = [Int32](repeating: 0, count: n)
    weights = [Double](repeating: 0, count: n)
    steps = 1
  }

  /// Fills the batch with the texts of `texts` at `indices` (at most N; the rest become filler
  /// rows): each text's ids, already cut to at most the batch's room, right-padded with `<pad>`.
  package mutating func fill(from texts: [EncodedText], indices: some Collection<Int>) {
    let n = lengths.count
    precondition(indices.count <= n, "\(indices.count) texts for a batch of \(n)")
    steps = 1
    for i in indices { steps = max(steps, texts[i].ids.count) }
    precondition(steps * n <= tokens.count, "a text of \(steps) tokens exceeds the batch's room")
    for i in 0..<(steps * n) { tokens[i] = 0 }
    for r in 0..<n {
      lengths[r] = 1
      labels[r] = 0
      weights[r] = 0
    }
    for (r, i) in indices.enumerated() {
      let text = texts[i]
      precondition(!text.ids.isEmpty, "a text must have at least one token")
      for t in text.ids.indices { tokens[t * n + r] = text.ids[t] }
      lengths[r] = text.ids.count
      labels[r] = text.label
      weights[r] = 1
    }
  }
}

/// A text as a classifier reads it: its token ids (cut to the maximum length) and its class.
public struct EncodedText: Sendable, Equatable {
  /// Token ids, at least one.
  public var ids: [Int32]
  /// Class id.
  public var label: Int32

  /// A text of `ids` in class `label`.
  public init(ids: [Int32], label: Int32) {
    self.ids = ids
    self.label = label
  }
}

/// The many-to-one text classifier: TimeEmbedding → L recurrent layers → pooling over each
/// text's real steps → dropout → affine → sigmoid or softmax with cross-entropy (see
/// ``ClassifierConfig``).
///
/// Texts are right-padded: the real steps of every text come first, so the states at a text's
/// real steps do not depend on the padding after them, and the pooled vector (the state at the
/// last real step, or the mean or maximum over real steps) is the one the unpadded text gives — the same
/// result Keras' masking gives, whose masked steps carry the state through unchanged. Backward,
/// the gradient at every padded step is zero, so padding adds nothing to any parameter's
/// gradient either. The recurrent state starts from zero for every batch.
package final class TextClassifier<T: BLASScalar> {
  /// The model's shape.
  package let config: ClassifierConfig
  /// Batch size N and the largest number of steps T the buffers hold.
  package let batchSize: Int, maxSteps: Int
  /// Parameters and gradients.
  package let parameters: ParameterStore<T>
  package let embedding: TimeEmbedding<T>
  /// One per recurrent layer, bottom first (none for the bag of words).
  package let recurrentLayers: [any RecurrentLayer<T>]
  /// The backward direction of each layer when bidirectional, bottom first; else empty.
  package let reverseLayers: [any RecurrentLayer<T>]
  /// Bidirectional only, per layer: reversed: (T·N, input size), each text's real steps of the
  /// layer's input in reverse order (zeros after them); joined: (T·N, 2H), [forward state;
  /// backward state] of each original step. splitForward, splitBackward: (T·N, H), the two halves
  /// of a gradient of `joined`, the second in the backward direction's step order.
  let reversed: [Buffer<T>], joined: [Buffer<T>]
  let splitForward: Buffer<T>, splitBackward: Buffer<T>
  /// Dropout on the pooled features: (N, F).
  package let dropout: TimeDropout<T>
  /// The output layer: (N, F) → (N, outputs).
  package let classifier: TimeAffine<T>
  /// pooled: (N, F), the pooled features of the last pass.
  let pooled: Buffer<T>
  /// Max pooling only: (N, F), for each text and feature the step whose state ``pooled`` holds
  /// (the first of equal values); empty otherwise.
  private var maxStep: [Int32]
  /// dTop: (T·N, F), the gradient of the top layer's outputs (of the embeddings for the bag of
  /// words), zero at padded steps.
  let dTop: Buffer<T>
  /// probabilities: (N, K), each text's class probabilities after the last pass.
  package let probabilities: Buffer<T>
  /// Draws the dropout masks.
  package var generator: SeededGenerator
  /// Times each part of a pass when set.
  package var profiler: Profiler? {
    didSet { for layer in recurrentLayers + reverseLayers { layer.profiler = profiler } }
  }
  private var lengths: [Int]
  private var steps = 0
  private var top: UnsafePointer<T>?

  /// A model with fresh parameters drawn from `generator`: embedding N(0, 1)/10, every other
  /// weight N(0, 1)/sqrt(fan_in), biases zero.
  package convenience init(
    config: ClassifierConfig, batchSize: Int, maxSteps: Int, generator: inout SeededGenerator
  ) throws {
    try config.validate()
    let store = try ParameterStore<T>(layout: config.parameterLayout)
    for view in store.views where view.shape.count == 2 {
      let scale = view.name == "embedding.weight" ? 0.1 : 1 / Double(view.shape[1]).squareRoot()
      let p = store.values.pointer + view.offset
      for i in 0..<view.count { p[i] = T(generator.nextNormal() * scale) }
    }
    try self.init(config: config, parameters: store, batchSize: batchSize, maxSteps: maxSteps, generator: generator)
  }

  /// A model over existing parameters; `generator` draws its dropout masks.
  package init(
    config: ClassifierConfig, parameters: ParameterStore<T>, batchSize: Int, maxSteps: Int,
    generator: SeededGenerator = SeededGenerator(seed: 0)
  ) throws {
    try config.validate()
    if batchSize < 1 { throw ConfigurationError("batch size must be at least 1, got \(batchSize)") }
    if maxSteps < 1 { throw ConfigurationError("the maximum length must be at least 1, got \(maxSteps)") }
    guard parameters.views == ParameterStore<T>.views(for: config.parameterLayout) else {
      throw ConfigurationError("the parameters do not have the layout of this configuration")
    }
    let bytes =
      Double(MemoryLayout<T>.stride) * Double(batchSize) * Double(maxSteps)
      * Double(config.embeddingSize * 2 + config.layers * config.hiddenSize * (config.cell.gateCount + 4))
    if Memory.availableBytes > 0 && bytes > Memory.availableBytes {
      throw AllocationError(
        "a batch of \(batchSize) texts of up to \(maxSteps) tokens needs about \(Memory.describe(bytes)); "
          + "this machine has \(Memory.describe(Memory.availableBytes)). Lower the batch size or the maximum length")
    }
    self.config = config
    self.batchSize = batchSize
    self.maxSteps = maxSteps
    self.parameters = parameters
    self.generator = generator
    let scratch = ScratchPool<T>()
    let rows = batchSize * maxSteps
    let p = parameters
    embedding = try TimeEmbedding(
      vocabularySize: config.vocabularySize, dimension: config.embeddingSize, maxRows: rows,
      dropout: config.embeddingDropout, weight: p.value("embedding.weight"),
      weightGradient: p.gradient("embedding.weight"), scratch: scratch)
    recurrentLayers = try (0..<config.layers).map { l in
      try config.cell.makeLayer(
        layer: l, inputSize: config.inputSize(layer: l), hiddenSize: config.hiddenSize, batchSize: batchSize,
        maxSteps: maxSteps, parameters: p, scratch: scratch)
    }
    let bidirectional = config.bidirectional && !config.isBagOfWords
    reverseLayers = try (bidirectional ? 0..<config.layers : 0..<0).map { l in
      try config.cell.makeLayer(
        layer: l, inputSize: config.inputSize(layer: l), hiddenSize: config.hiddenSize, batchSize: batchSize,
        maxSteps: maxSteps, parameters: p, scratch: scratch, suffix: "_reverse")
    }
    reversed = try (bidirectional ? 0..<config.layers : 0..<0).map { l in
      try Buffer(count: rows * config.inputSize(layer: l))
    }
    joined = try (bidirectional ? 0..<config.layers : 0..<0).map { _ in try Buffer(count: rows * 2 * config.hiddenSize)
    }
    splitForward = try Buffer(count: bidirectional ? rows * config.hiddenSize : 0)
    splitBackward = try Buffer(count: bidirectional ? rows * config.hiddenSize : 0)
    let f = config.featureSize
    dropout = try TimeDropout(rate: config.dropout, width: f, maxRows: batchSize, scratch: scratch)
    classifier = try TimeAffine(
      inputSize: f, outputSize: config.outputs, maxRows: batchSize, weight: p.value("fc.weight"),
      bias: p.value("fc.bias"), dWeight: p.gradient("fc.weight"), dBias: p.gradient("fc.bias"), scratch: scratch,
      scratchName: "fc")
    pooled = try Buffer(count: batchSize * f)
    maxStep = [Int32](repeating: 0, count: config.pooling == .max && !config.isBagOfWords ? batchSize * f : 0)
    dTop = try Buffer(count: rows * f)
    probabilities = try Buffer(count: batchSize * config.classes)
    lengths = [Int](repeating: 1, count: batchSize)
  }

  /// Training (dropout on) or evaluation (off).
  package var training: Bool {
    get { dropout.training }
    set {
      dropout.training = newValue
      embedding.training = newValue
    }
  }

  /// Runs the model over `batch` and returns its summed loss and accuracy; fills
  /// ``probabilities``. With `gradient`, backpropagates the MEAN loss over the batch's texts (or
  /// the loss summed over them divided by `divisor`: a data-parallel share) and ADDS the
  /// gradients into ``parameters``' gradient buffer.
  package func pass(_ batch: ClassifierBatch, gradient: Bool, divisor: Double? = nil) -> BatchResult {
    let n = batchSize
    precondition(batch.lengths.count == n && batch.steps <= maxSteps, "batch does not fit the model")
    steps = batch.steps
    let rows = n * steps
    let f = config.featureSize
    for r in 0..<n { lengths[r] = batch.lengths[r] }

    batch.tokens.withUnsafeBufferPointer { tokens in
      profiler.time("embedding fwd") {
        embedding.forward(tokens: tokens.baseAddress!, rows: rows, generator: &generator)
      }
    }
    var x = UnsafePointer(embedding.output.pointer)
    for (l, layer) in recurrentLayers.enumerated() {
      layer.resetState()
      layer.forward(input: x, steps: steps)
      if reverseLayers.isEmpty {
        x = layer.output
        continue
      }
      // The backward direction reads each text's real steps in reverse; its states go back to
      // the original steps beside the forward ones.
      let (width, h) = (config.inputSize(layer: l), config.hiddenSize)
      reorder(x, into: reversed[l].pointer, width: width)
      reverseLayers[l].resetState()
      reverseLayers[l].forward(input: reversed[l].pointer, steps: steps)
      let forward = layer.output
      let backward = reverseLayers[l].output
      let out = joined[l].pointer
      out.update(repeating: 0, count: rows * 2 * h)
      for row in 0..<rows { (out + row * 2 * h).update(from: forward + row * h, count: h) }
      for r in 0..<n {
        for t in 0..<lengths[r] {
          (out + (t * n + r) * 2 * h + h).update(from: backward + ((lengths[r] - 1 - t) * n + r) * h, count: h)
        }
      }
      x = UnsafePointer(out)
    }
    top = x
    profiler.time("pooling") { pool(x, width: f) }
    let features = dropout.forward(input: pooled.pointer, rows: n, generator: &generator)
    classifier.forward(input: features, rows: n)

    // Loss, probabilities and the gradient of the mean loss over real texts, row by row (N × K
    // is small next to the products above).
    let real = batch.weights.reduce(0, +)
    let divisor = divisor ?? real
    var result = BatchResult(lossSum: 0, correct: 0, count: Int(real), examples: Int(real))
    let logits = classifier.output.pointer
    let k = config.classes
    for r in 0..<n {
      let w = batch.weights[r]
      let label = Int(batch.labels[r])
      let probs = probabilities.pointer + r * k
      var loss = 0.0
      var predicted = 0
      if config.outputs == 1 {
        let z = Double(logits[r])
        let p1 = 1 / (1 + Foundation.exp(-z))
        probs[0] = T(1 - p1)
        probs[1] = T(p1)
        // −log σ(z) for label 1, −log(1 − σ(z)) for label 0, without overflow.
        loss = max(z, 0) - (label == 1 ? z : 0) + Foundation.log1p(Foundation.exp(-abs(z)))
        predicted = z > 0 ? 1 : 0
        logits[r] = T(gradient && real > 0 ? w * (p1 - Double(label)) / divisor : 0)
      } else {
        let row = logits + r * k
        // The most probable class is the largest logit (the first of equals).
        var m = -Double.infinity
        for j in 0..<k where Double(row[j]) > m { (m, predicted) = (Double(row[j]), j) }
        var sum = 0.0
        for j in 0..<k { sum += Foundation.exp(Double(row[j]) - m) }
        for j in 0..<k { probs[j] = T(Foundation.exp(Double(row[j]) - m) / sum) }
        loss = Foundation.log(sum) + m - Double(row[label])
        for j in 0..<k {
          row[j] = T(gradient && real > 0 ? w * (Double(probs[j]) - (j == label ? 1 : 0)) / divisor : 0)
        }
      }
      if w > 0 {
        result.lossSum += loss
        if predicted == label { result.correct += 1 }
      }
    }
    guard gradient else { return result }

    classifier.backward(dOutput: classifier.output.pointer)
    let dFeatures = dropout.backward(dOutput: classifier.dInput.pointer)
    profiler.time("pooling bwd") { unpool(dFeatures, width: f) }
    var d = UnsafePointer(dTop.pointer)
    for l in recurrentLayers.indices.reversed() {
      let layer = recurrentLayers[l]
      if reverseLayers.isEmpty {
        layer.backward(dOutput: d)
        d = UnsafePointer(layer.dInput.pointer)
        continue
      }
      // Split the gradient of [forward; backward] and put the backward half in that direction's
      // step order; after both directions, add the backward direction's input gradient, back in
      // the original order, to the forward one's.
      let (width, h) = (config.inputSize(layer: l), config.hiddenSize)
      for row in 0..<rows { (splitForward.pointer + row * h).update(from: d + row * 2 * h, count: h) }
      splitBackward.pointer.update(repeating: 0, count: rows * h)
      for r in 0..<n {
        for t in 0..<lengths[r] {
          (splitBackward.pointer + ((lengths[r] - 1 - t) * n + r) * h).update(
            from: d + (t * n + r) * 2 * h + h, count: h)
        }
      }
      layer.backward(dOutput: splitForward.pointer)
      reverseLayers[l].backward(dOutput: splitBackward.pointer)
      let dInput = layer.dInput.pointer
      let dReversed = reverseLayers[l].dInput.pointer
      for r in 0..<n {
        for t in 0..<lengths[r] {
          let into = dInput + (t * n + r) * width
          let from = dReversed + ((lengths[r] - 1 - t) * n + r) * width
          for j in 0..<width { into[j] += from[j] }
        }
      }
      d = UnsafePointer(dInput)
    }
    profiler.time("embedding bwd") { embedding.backward(dOutput: d) }
    return result
  }

  /// Each text's real steps of `input` (T·N, width) in reverse order into `output`, zeros after.
  private func reorder(_ input: UnsafePointer<T>, into output: UnsafeMutablePointer<T>, width: Int) {
    let n = batchSize
    output.update(repeating: 0, count: steps * n * width)
    for r in 0..<n {
      for t in 0..<lengths[r] {
        (output + (t * n + r) * width).update(from: input + ((lengths[r] - 1 - t) * n + r) * width, count: width)
      }
    }
  }

  /// pooled[n] = the state at step lengths[n] − 1 of `states` (T·N, F), or the mean or the
  /// feature-wise maximum over steps 0..<lengths[n] (always the mean for the bag of words). Bidirectional, the last state is the
  /// forward direction's at the last step beside the backward direction's at the first (where it
  /// has read the whole text).
  private func pool(_ states: UnsafePointer<T>, width f: Int) {
    let n = batchSize
    let pooling = config.isBagOfWords ? .mean : config.pooling
    for r in 0..<n {
      let out = pooled.pointer + r * f
      switch pooling {
      case .last:
        // The forward half (all of it with one direction) at the last step; the backward half
        // at the first.
        let half = reverseLayers.isEmpty ? f : f / 2
        out.update(from: states + ((lengths[r] - 1) * n + r) * f, count: half)
        if half < f { (out + half).update(from: states + r * f + half, count: f - half) }
      case .mean:
        out.update(repeating: 0, count: f)
        for t in 0..<lengths[r] {
          let s = states + (t * n + r) * f
          for j in 0..<f { out[j] += s[j] }
        }
        let scale = T(1) / T(lengths[r])
        for j in 0..<f { out[j] *= scale }
      case .max:
        out.update(from: states + r * f, count: f)
        maxStep.withUnsafeMutableBufferPointer { steps in
          let at = steps.baseAddress! + r * f
          at.update(repeating: 0, count: f)
          for t in 1..<max(lengths[r], 1) {
            let s = states + (t * n + r) * f
            for j in 0..<f where s[j] > out[j] {
              out[j] = s[j]
              at[j] = Int32(t)
            }
          }
        }
      }
    }
  }

  /// The gradient of ``pool(_:width:)``: `dPooled` (N, F) into ``dTop`` (T·N, F), zero at
  /// padded steps.
  private func unpool(_ dPooled: UnsafePointer<T>, width f: Int) {
    let n = batchSize
    dTop.pointer.update(repeating: 0, count: steps * n * f)
    let pooling = config.isBagOfWords ? .mean : config.pooling
    for r in 0..<n {
      let g = dPooled + r * f
      switch pooling {
      case .last:
        let half = reverseLayers.isEmpty ? f : f / 2
        (dTop.pointer + ((lengths[r] - 1) * n + r) * f).update(from: g, count: half)
        if half < f { (dTop.pointer + r * f + half).update(from: g + half, count: f - half) }
      case .mean:
        let scale = T(1) / T(lengths[r])
        for t in 0..<lengths[r] {
          let d = dTop.pointer + (t * n + r) * f
          for j in 0..<f { d[j] = g[j] * scale }
        }
      case .max:
        for j in 0..<f { dTop.pointer[(Int(maxStep[r * f + j]) * n + r) * f + j] = g[j] }
      }
    }
  }
}
