import Foundation

/// Why a checkpoint could not be read or written; each case names the file.
public enum CheckpointError: Error, CustomStringConvertible, Equatable {
  /// The file cannot be opened or written.
  case io(path: String, reason: String)
  /// Not a safetensors file of this toolkit (bad header, wrong format tag).
  case notACheckpoint(path: String, reason: String)
  /// Shorter than its header says.
  case truncated(path: String)
  /// Written by an incompatible version of the format.
  case incompatibleVersion(path: String, found: String)
  /// Its tensors do not match its configuration.
  case mismatch(path: String, reason: String)
  /// A checkpoint of the toolkit's other kind: `found` and `expected` are "language model" or
  /// "text classifier"; `hint` names the command that reads it.
  case wrongKind(path: String, found: String, expected: String, hint: String)

  /// One line for the user.
  public var description: String {
    switch self {
    case .io(let path, let reason): return "\(path): \(reason)"
    case .notACheckpoint(let path, let reason): return "\(path) is not an RNNLM checkpoint: \(reason)"
    case .truncated(let path): return "\(path) is truncated: its data ends before its header says"
    case .incompatibleVersion(let path, let found):
      return "\(path) has checkpoint format version \(found); this toolkit reads version \(Checkpoint.formatVersion)"
    case .mismatch(let path, let reason): return "\(path) is inconsistent: \(reason)"
    case .wrongKind(let path, let found, let expected, let hint):
      return "\(path) is a \(found)'s checkpoint, not a \(expected)'s (\(hint))"
    }
  }
}

/// Where a language model's run stands.
public typealias RunState = LoopState<EpochRecord>

extension LoopState where Record == EpochRecord {
  /// Best validation perplexity so far (``LoopState/bestScore``).
  public var bestValidPerplexity: Double? {
    get { bestScore }
    set { bestScore = newValue }
  }
  /// Tokens trained so far (``LoopState/trainedExamples``).
  public var trainedTokens: Int {
    get { trainedExamples }
    set { trainedExamples = newValue }
  }
}

/// What one epoch measured.
public struct EpochRecord: Codable, Sendable, Equatable {
  /// 1-based epoch.
  public var epoch: Int
  /// Learning rate during the epoch.
  public var learningRate: Double
  /// Training perplexity over the epoch's batches (dropout on).
  public var trainPerplexity: Double
  /// Validation perplexity after the epoch.
  public var validPerplexity: Double
  /// Training tokens per second during the epoch.
  public var tokensPerSecond: Double
  /// Seconds since the run started (training time, across resumptions).
  public var elapsedSeconds: Double
}

extension EpochRecord: EpochRecordKind {
  public var validationScore: Double { validPerplexity }

  public static var stateKeys: LoopStateKeys {
    LoopStateKeys(
      bestScore: "bestValidPerplexity", trainedExamples: "trainedTokens", epochLossCount: "epochBatches",
      epochExamples: "epochTokens")
  }

  public static func csvHeader(_ labels: RunLabels) -> String {
    "epoch,batch,lr,train_ppl,valid_ppl,tokens_per_s,elapsed_s"
  }

  public static func csvRow(_ p: BatchProgress, labels: RunLabels) -> String {
    String(
      format: "%d,%d,%g,%.4f,,%.1f,%.2f", p.epoch, p.batch, p.learningRate, exp(p.intervalLoss), p.tokensPerSecond,
      p.runSeconds)
  }

  public func csvRow(labels: RunLabels) -> String {
    String(
      format: "%d,end,%g,%.4f,%.4f,%.1f,%.2f", epoch, learningRate, trainPerplexity, validPerplexity, tokensPerSecond,
      elapsedSeconds)
  }

  public static func progressLine(_ p: BatchProgress, labels: RunLabels, terminal: Bool) -> String {
    if terminal {
      return progressBar(p)
        + String(
          format: " | lr %6.3f | %7.1f ms/batch | %7.0f tok/s | ppl %8.2f | ETA %@", p.learningRate, p.msPerBatch,
          p.tokensPerSecond, exp(p.intervalLoss), eta(p))
    }
    return String(
      format: "| epoch %3d | batch %5d/%d | lr %6.3f | %7.1f ms/batch | %8.0f tok/s | loss %6.3f | ppl %9.2f |",
      p.epoch, p.batch, p.batchesPerEpoch, p.learningRate, p.msPerBatch, p.tokensPerSecond, p.intervalLoss,
      exp(p.intervalLoss))
  }

  public func summaryLine(improved: Bool, labels: RunLabels) -> String {
    String(
      format: "| end of epoch %3d | %7.1f tok/s | train ppl %8.2f | valid ppl %8.2f |%@", epoch, tokensPerSecond,
      trainPerplexity, validPerplexity, improved ? " best so far" : " no better")
  }

  /// An SVG line chart of training and validation perplexity (log scale) against epochs.
  public static func curveSVG(_ records: [EpochRecord], labels: RunLabels) -> String {
    func series(_ label: String, _ color: String, _ key: KeyPath<EpochRecord, Double>) -> LinePlot.Series {
      LinePlot.Series(
        label: label, color: color, points: records.map { (Double($0.epoch), $0[keyPath: key]) }, markers: true)
    }
    return LinePlot(
      series: [series("training", "#1f77b4", \.trainPerplexity), series("validation", "#ff7f0e", \.validPerplexity)],
      xLabel: "epoch", yLabel: "perplexity (log scale)", integerTicks: true
    ).svg()
  }
}

/// A model and its run, in the safetensors layout: an 8-byte little-endian header length, a
/// JSON header, then raw little-endian float32 tensors.
///
/// Tensors (PyTorch's word_language_model names and layouts; G = 4 for the LSTM (gates i, f, g,
/// o), 3 for the GRU (r, z, n), 1 for the RNN; the config's `cell` says which):
/// - `encoder.weight` (V, D) — `nn.Embedding`
/// - `rnn.weight_ih_l{k}` (G·H, D or H), `rnn.weight_hh_l{k}` (G·H, H), `rnn.bias_ih_l{k}` (G·H),
///   `rnn.bias_hh_l{k}` (G·H; zeros for the LSTM and RNN, which keep one bias) — `nn.LSTM`,
///   `nn.GRU`, `nn.RNN`
/// - `decoder.weight` (V, H) (absent when tied: it is `encoder.weight`), `decoder.bias` (V) — `nn.Linear`
/// - `state.h_l{k}` and for the LSTM `state.c_l{k}` (N, H): the training run's carried state, for resuming
///
/// `__metadata__` (strings): `format` = `rnnlm-checkpoint`, `version`, `config`, `training`,
/// `state` (JSON) and `vocabulary` (JSON array of words in id order).
public struct Checkpoint {
  /// The format version this toolkit writes and reads.
  public static let formatVersion = "1"

  /// The model's shape.
  public var config: ModelConfig
  /// The run's hyper-parameters.
  public var training: TrainingOptions
  /// Where the run stands.
  public var state: RunState
  /// Words in id order.
  public var vocabulary: [String]
  /// Parameters in the layout of `config.parameterLayout`.
  public var parameters: [Float]
  /// The training model's carried state per layer, bottom first: the cell's state tensors in
  /// ``RecurrentCell/stateNames`` order, each (N, H); empty when not saved.
  public var recurrentStates: [[[Float]]]
  /// The optimizer's state tensors in ``optimizerTensorNames(training:state:)`` order (Adam's m
  /// and v, RMSprop's v, then NT-ASGD's average), each of the parameters' size; empty when there
  /// are none or they were not saved.
  public var optimizerState: [[Float]]

  /// The names of the optimizer's state tensors a run of these options in this state saves:
  /// ``OptimizerKind/stateNames``, then `asgd.average` once NT-ASGD has begun averaging.
  public static func optimizerTensorNames(training: TrainingOptions, state: RunState) -> [String] {
    training.optimizer.savedTensorNames(averaging: state.averagedSteps != nil)
  }

  /// A checkpoint of the given parts.
  public init(
    config: ModelConfig, training: TrainingOptions, state: RunState, vocabulary: [String], parameters: [Float],
    recurrentStates: [[[Float]]], optimizerState: [[Float]] = []
  ) {
    self.config = config
    self.training = training
    self.state = state
    self.vocabulary = vocabulary
    self.parameters = parameters
    self.recurrentStates = recurrentStates
    self.optimizerState = optimizerState
  }

  /// The parameter tensor called `name` (e.g. `encoder.weight`, (V, D)) as a slice of
  /// ``parameters``, row-major; its indices are those of ``parameters``. A name that is not in
  /// ``ModelConfig/parameterLayout`` is a programming error.
  package func tensor(_ name: String) -> ArraySlice<Float> {
    let view = ParameterStore<Float>.views(for: config.parameterLayout).first { $0.name == name }!
    return parameters[view.offset..<(view.offset + view.count)]
  }

  /// Runs `body` with ``optimizerState`` as buffers.
  private func withOptimizerBuffers<R>(_ body: ([UnsafeBufferPointer<Float>]) throws -> R) rethrows -> R {
    let flat = optimizerState.flatMap { $0 }
    return try flat.withUnsafeBufferPointer { all in
      var offset = 0
      var buffers: [UnsafeBufferPointer<Float>] = []
      for t in optimizerState {
        buffers.append(UnsafeBufferPointer(rebasing: all[offset..<(offset + t.count)]))
        offset += t.count
      }
      return try body(buffers)
    }
  }

  /// The file's bytes.
  public func encoded() throws -> Data {
    var data = Data()
    try parameters.withUnsafeBufferPointer { p in
      try withOptimizerBuffers { o in
        try Self.encode(
          config: config, training: training, state: state, vocabulary: vocabulary, parameters: p,
          recurrentStates: recurrentStates, optimizerState: o
        ) { data.append(contentsOf: $0) }
      }
    }
    return data
  }

  /// Writes the checkpoint atomically: to a temporary file in the same directory, flushed to
  /// disk, then renamed over `path`, so a run killed while saving leaves the old file intact.
  public func write(to path: String) throws {
    try parameters.withUnsafeBufferPointer { p in
      try withOptimizerBuffers { o in
        try Self.write(
          to: path, config: config, training: training, state: state, vocabulary: vocabulary, parameters: p,
          recurrentStates: recurrentStates, optimizerState: o)
      }
    }
  }

  /// ``write(to:)`` for parameters read in place (a training run's live buffer): the tensors go
  /// to the file straight from `parameters`, without a copy of the model in memory.
  package static func write(
    to path: String, config: ModelConfig, training: TrainingOptions, state: RunState, vocabulary: [String],
    parameters: UnsafeBufferPointer<Float>, recurrentStates: [[[Float]]],
    optimizerState: [UnsafeBufferPointer<Float>] = []
  ) throws {
    try withContents(
      config: config, training: training, state: state, vocabulary: vocabulary, parameters: parameters,
      recurrentStates: recurrentStates, optimizerState: optimizerState
    ) { try SafeTensors.write(to: path, metadata: $0, tensors: $1) }
  }

  /// The file's bytes for the given parts.
  private static func encode(
    config: ModelConfig, training: TrainingOptions, state: RunState, vocabulary: [String],
    parameters: UnsafeBufferPointer<Float>, recurrentStates: [[[Float]]], optimizerState: [UnsafeBufferPointer<Float>],
    to sink: (UnsafeRawBufferPointer) throws -> Void
  ) throws {
    try withContents(
      config: config, training: training, state: state, vocabulary: vocabulary, parameters: parameters,
      recurrentStates: recurrentStates, optimizerState: optimizerState
    ) { try SafeTensors.encode(metadata: $0, tensors: $1, to: sink) }
  }

  /// Calls `body` with the metadata and the tensors of a checkpoint of the given parts, in file
  /// order: the parameters (with a zero `bias_hh` beside each `bias_ih` of a cell with one bias),
  /// the carried states, the optimizer's state.
  private static func withContents(
    config: ModelConfig, training: TrainingOptions, state: RunState, vocabulary: [String],
    parameters: UnsafeBufferPointer<Float>, recurrentStates: [[[Float]]], optimizerState: [UnsafeBufferPointer<Float>],
    _ body: ([String: String], [SafeTensors.Source]) throws -> Void
  ) throws {
    let views = ParameterStore<Float>.views(for: config.parameterLayout)
    let zeros = [Float](repeating: 0, count: views.map(\.count).max() ?? 0)
    // The carried states and the optimizer's state after the parameters.
    let states = recurrentStates.enumerated().flatMap { l, layerState in
      zip(config.cell.stateNames, layerState).map { ("state.\($0)_l\(l)", $1) }
    }
    let metadata = [
      "format": "rnnlm-checkpoint", "version": Self.formatVersion, "config": try SafeTensors.json(config),
      "training": try SafeTensors.json(training), "state": try SafeTensors.json(state),
      "vocabulary": try SafeTensors.json(vocabulary),
    ]
    let flatStates = states.flatMap(\.1)
    try zeros.withUnsafeBufferPointer { z in
      try flatStates.withUnsafeBufferPointer { f in
        var tensors = config.cell.pytorchTensors(views: views, values: parameters, zeros: z)
        var offset = 0
        for (name, values) in states {
          tensors.append(
            SafeTensors.Source(
              name: name, shape: [values.count / config.hiddenSize, config.hiddenSize],
              values: UnsafeBufferPointer(rebasing: f[offset..<(offset + values.count)])))
          offset += values.count
        }
        for (name, values) in zip(optimizerTensorNames(training: training, state: state), optimizerState) {
          tensors.append(SafeTensors.Source(name: name, shape: [values.count], values: values))
        }
        try body(metadata, tensors)
      }
    }
  }

  /// Reads and validates a checkpoint: header, format tag and version, every tensor's dtype,
  /// shape and byte range, and that the parameters match the configuration.
  public static func read(from path: String) throws -> Checkpoint {
    try decode(bytes: SafeTensors.readBytes(of: path), path: path)
  }

  /// The parts of a checkpoint's header, validated.
  fileprivate struct Header {
    let file: SafeTensors.Header
    let config: ModelConfig
    let training: TrainingOptions
    let state: RunState
    let vocabulary: [String]
  }

  /// Parses and validates the header from the file's first bytes (`prefix`, at least the
  /// header) of a file of `fileSize` bytes. The header alone decides whether the file can be
  /// loaded: nothing of the model's size is built or allocated before every check has passed.
  fileprivate static func parseHeader(_ prefix: [UInt8], fileSize: Int, path: String) throws -> Header {
    let file = try SafeTensors.parseHeader(
      prefix, fileSize: fileSize, path: path, format: "rnnlm-checkpoint", version: formatVersion)
    func field<D: Decodable>(_ name: String, _ type: D.Type) throws -> D {
      try SafeTensors.field(name, type, in: file, path: path)
    }
    let config = try field("config", ModelConfig.self)
    do { try config.validate() } catch { throw CheckpointError.mismatch(path: path, reason: "\(error)") }
    let training = try field("training", TrainingOptions.self)
    do { try training.validate() } catch { throw CheckpointError.mismatch(path: path, reason: "\(error)") }
    var runState = try field("state", RunState.self)
    runState.learningRate = runState.learningRate.isNaN ? training.learningRate : runState.learningRate
    let tensors = file.tensors
    let dataSize = file.dataSize

    // The configuration: the embedding and every layer's W_hh and bias alone need this many
    // bytes (counted in Double, so absurd sizes cannot overflow), which bounds every size and the
    // number of layers before the parameter layout, an entry per layer, is made.
    let (v, d, h) = (Double(config.vocabularySize), Double(config.embeddingSize), Double(config.hiddenSize))
    let perLayer = Double(config.cell.gateCount) * h * (h + 1)
    let needed = 4 * (v * d + Double(config.layers) * perLayer)
    guard needed <= Double(dataSize) else {
      throw CheckpointError.mismatch(
        path: path,
        reason:
          "its configuration (V \(config.vocabularySize), D \(config.embeddingSize), H \(config.hiddenSize), \(config.layers) \(config.cell) layers) needs at least \(String(format: "%.0f", needed)) bytes of tensors; the file holds \(dataSize)"
      )
    }

    // The tensors are exactly those of the configuration: every parameter with its shape; for
    // cells with one bias, PyTorch's bias_hh beside bias_ih, with the same shape; the carried
    // state (N, H) of every layer or of none.
    var expected = config.cell.pytorchShapes(config.parameterLayout)
    let required = Set(config.parameterLayout.map(\.name))
    let parameterCount = config.parameterLayout.reduce(0) { $0 + $1.shape.reduce(1, *) }
    for name in optimizerTensorNames(training: training, state: runState) { expected[name] = [parameterCount] }
    var stateNames: [String] = []
    for l in 0..<config.layers {
      for s in config.cell.stateNames {
        stateNames.append("state.\(s)_l\(l)")
        expected["state.\(s)_l\(l)"] = [training.batchSize, config.hiddenSize]
      }
    }
    try SafeTensors.checkTensors(
      file, expected: expected, required: required,
      model: "a \(config.layers)-layer \(config.cell) model" + (config.tied ? " with tied weights" : ""), path: path)
    let statesPresent = stateNames.filter { tensors[$0] != nil }.count
    if statesPresent != 0 && statesPresent != stateNames.count {
      throw CheckpointError.mismatch(
        path: path, reason: "it holds \(statesPresent) of the \(stateNames.count) carried-state tensors")
    }
    let optimizerNames = optimizerTensorNames(training: training, state: runState)
    let optimizerPresent = optimizerNames.filter { tensors[$0] != nil }.count
    if optimizerPresent != 0 && optimizerPresent != optimizerNames.count {
      throw CheckpointError.mismatch(
        path: path,
        reason: "it holds \(optimizerPresent) of the \(optimizerNames.count) \(training.optimizer) state tensors")
    }

    let vocabulary = try field("vocabulary", [String].self)
    guard vocabulary.count == config.vocabularySize else {
      throw CheckpointError.mismatch(
        path: path, reason: "\(vocabulary.count) words for a vocabulary size of \(config.vocabularySize)")
    }
    guard Set(vocabulary).count == vocabulary.count else {
      throw CheckpointError.mismatch(path: path, reason: "its vocabulary lists a word twice")
    }
    return Header(file: file, config: config, training: training, state: runState, vocabulary: vocabulary)
  }

  /// ``read(from:)`` for bytes already in memory; `path` names them in errors.
  public static func decode(_ data: Data, path: String) throws -> Checkpoint {
    try decode(bytes: [UInt8](data), path: path)
  }

  /// ``decode(_:path:)`` for the file's bytes.
  private static func decode(bytes: [UInt8], path: String) throws -> Checkpoint {
    let h = try parseHeader(bytes, fileSize: bytes.count, path: path)
    let config = h.config

    func values(_ name: String) -> [Float]? { SafeTensors.values(name, in: h.file, bytes: bytes) }

    let parameters = config.cell.parameters(config.parameterLayout, values: values)
    var recurrentStates: [[[Float]]] = []
    if h.file.tensors["state.\(config.cell.stateNames[0])_l0"] != nil {
      recurrentStates = (0..<config.layers).map { l in config.cell.stateNames.map { values("state.\($0)_l\(l)")! } }
    }
    let optimizerState = optimizerTensorNames(training: h.training, state: h.state).compactMap { values($0) }
    return Checkpoint(
      config: config, training: h.training, state: h.state, vocabulary: h.vocabulary, parameters: parameters,
      recurrentStates: recurrentStates, optimizerState: optimizerState)
  }
}

/// What a checkpoint holds, read from its header alone (the weights are not loaded).
public struct CheckpointSummary {
  /// The model's shape.
  public let config: ModelConfig
  /// The run's hyper-parameters.
  public let training: TrainingOptions
  /// Where the run stood.
  public let state: RunState
  /// Number of words.
  public let vocabularySize: Int
  /// Tensor names and shapes, sorted by name.
  public let tensors: [(name: String, shape: [Int])]
  /// The file's size in bytes.
  public let fileSize: Int

  /// Reads the header of the checkpoint at `path` (8 + header bytes), with the same checks as
  /// ``Checkpoint/read(from:)`` apart from the tensor data.
  public init(contentsOf path: String) throws {
    let (prefix, size) = try SafeTensors.readPrefix(of: path)
    let h = try Checkpoint.parseHeader(prefix, fileSize: size, path: path)
    config = h.config
    training = h.training
    state = h.state
    vocabularySize = h.vocabulary.count
    tensors = h.file.tensors.map { (name: $0.key, shape: $0.value.shape) }.sorted { $0.name < $1.name }
    fileSize = size
  }
}
