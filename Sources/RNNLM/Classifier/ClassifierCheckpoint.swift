import Foundation

/// Hyper-parameters of a classifier's training run.
public struct ClassifierTrainingOptions: Codable, Sendable, Equatable, RunOptions {
  /// Texts per batch N.
  public var batchSize = 32
  /// Epochs of the whole run (early stopping may end it sooner).
  public var epochs = 10
  /// The update rule; Adam by default, as Keras users train these models.
  public var optimizer = OptimizerKind.adam
  /// The learning rate at the start (constant unless a schedule is chosen: ``learningRateDecay``,
  /// ``cosineSchedule``, ``cosineToBudget``).
  public var learningRate = 0.001
  /// Global gradient-norm bound; 0 turns clipping off.
  public var clip = 0.0
  /// L2 weight decay added to the gradients; 0 turns it off.
  public var weightDecay = 0.0
  /// Early stopping: the run ends when validation loss has not improved for this many epochs
  /// (Keras' `EarlyStopping(patience)`); 0 never stops early. The best parameters are restored
  /// at the end either way.
  public var patience = 3
  /// Validation accuracy, not loss, decides the best epoch (see ``RunOptions/monitorAccuracy``).
  public var monitorAccuracy = false
  /// The fraction of the training texts held out for validation (seeded) when the data has no
  /// validation split of its own.
  public var validationSplit = 0.1
  /// Texts longer than this many words are cut (see ``truncation``).
  public var maxLength = 100
  /// Which end of a long text is kept.
  public var truncation = Truncation.keepEnd
  /// Vocabulary: this many most frequent training words, plus `<pad>` and `<unk>`.
  public var numWords = 10_000
  /// Train on this many of the training texts, a sample seeded by ``seed`` kept in file order
  /// (after the validation texts are held out), to measure how accuracy grows with labelled
  /// data; nil trains on all.
  public var trainingTexts: Int?
  /// Train only the output layer for this many epochs, then everything (ULMFiT's gradual
  /// unfreezing, in two stages): the encoder a language model initialised (``ClassifierTrainer/initialize(from:maximumLayers:)``)
  /// is not disturbed while the output layer is still random. 0 trains everything from the start.
  public var freezeEncoderEpochs = 0
  /// Keep the embedding as it started (pretrained vectors, ``ClassifierTrainer/initialize(from:path:)``):
  /// its gradient is zero throughout, so only weight decay, when given, changes it.
  public var freezeEmbeddings = false
  /// The embedding and recurrent layers learn at this factor times the learning rate, the output
  /// layer at the rate itself (ULMFiT's discriminative fine-tuning, in two groups): below 1 a
  /// language model's encoder (``ClassifierTrainer/initialize(from:maximumLayers:)``) moves less than the new
  /// output layer. 1 (the default) is one rate for all.
  public var encoderLearningRateFactor = 1.0
  /// Seed of the run's generator (weights, validation split, batch order, dropout).
  public var seed: UInt64 = 1
  /// Batches between log lines.
  public var logInterval = 50

  /// The learning rate is divided by this whenever validation loss does not improve (1, the
  /// default, keeps it).
  public var learningRateDecay = 1.0
  /// Cosine annealing over the run's epochs (see ``RunOptions/cosineSchedule``).
  public var cosineSchedule = false
  /// Cosine annealing planned to end with the time budget (see ``BudgetPlanner``).
  public var cosineToBudget = false
  /// NT-ASGD's averaging and its non-monotone interval (see ``RunOptions/averaging``).
  public var averaging = false
  public var nonmono = 5

  /// The defaults.
  public init() {}

  /// Decodes options; the schedule's, absent from checkpoints written before every task had
  /// them, take their defaults (a constant rate, no averaging).
  public init(from decoder: Decoder) throws {
    let c = try decoder.container(keyedBy: CodingKeys.self)
    batchSize = try c.decode(Int.self, forKey: .batchSize)
    epochs = try c.decode(Int.self, forKey: .epochs)
    optimizer = try c.decode(OptimizerKind.self, forKey: .optimizer)
    learningRate = try c.decode(Double.self, forKey: .learningRate)
    clip = try c.decode(Double.self, forKey: .clip)
    weightDecay = try c.decode(Double.self, forKey: .weightDecay)
    patience = try c.decode(Int.self, forKey: .patience)
    validationSplit = try c.decode(Double.self, forKey: .validationSplit)
    maxLength = try c.decode(Int.self, forKey: .maxLength)
    truncation = try c.decode(Truncation.self, forKey: .truncation)
    numWords = try c.decode(Int.self, forKey: .numWords)
    seed = try c.decode(UInt64.self, forKey: .seed)
    logInterval = try c.decode(Int.self, forKey: .logInterval)
    trainingTexts = try c.decodeIfPresent(Int.self, forKey: .trainingTexts)
    freezeEncoderEpochs = try c.decodeIfPresent(Int.self, forKey: .freezeEncoderEpochs) ?? 0
    freezeEmbeddings = try c.decodeIfPresent(Bool.self, forKey: .freezeEmbeddings) ?? false
    encoderLearningRateFactor = try c.decodeIfPresent(Double.self, forKey: .encoderLearningRateFactor) ?? 1
    try decodeSchedule(from: decoder)
  }

  /// Throws ``ConfigurationError`` for values that cannot make a run.
  public func validate() throws {
    try validateTaskOptions(
      batchSize: batchSize, epochs: epochs, learningRate: learningRate, clip: clip, weightDecay: weightDecay,
      patience: patience, validationSplit: validationSplit, logInterval: logInterval)
    try LearningRateSchedule.validate(self)
    if maxLength < 1 { throw ConfigurationError("maximum length must be at least 1, got \(maxLength)") }
    if numWords < 1 { throw ConfigurationError("number of words must be at least 1, got \(numWords)") }
    if freezeEncoderEpochs < 0 {
      throw ConfigurationError("encoder epochs frozen must be 0 or more, got \(freezeEncoderEpochs)")
    }
    if !(encoderLearningRateFactor > 0 && encoderLearningRateFactor <= 1) {
      throw ConfigurationError("the encoder's learning-rate factor must be in (0, 1], got \(encoderLearningRateFactor)")
    }
    if let trainingTexts, trainingTexts < 1 {
      throw ConfigurationError("training texts must be at least 1, got \(trainingTexts)")
    }
  }
}

/// A text classifier and its run, in the toolkit's safetensors container (safetensors):
/// the parameters under PyTorch's names (`embedding.weight`; `rnn.*` as `nn.LSTM`/`nn.GRU`/
/// `nn.RNN`, with zero `bias_hh` for the cells with one bias; `fc.weight`, `fc.bias`), the
/// optimizer's moments (`optimizer.m`, `optimizer.v`) in a `last.safetensors`, and as metadata
/// `format` = `rnnlm-classifier`, `version`, `config`, `training`, `state`, `vocabulary` and
/// `classes` (JSON).
public struct ClassifierCheckpoint {
  /// The format version this toolkit writes and reads.
  public static let formatVersion = "1"
  /// The format tag.
  public static let formatTag = "rnnlm-classifier"

  /// The model's shape.
  public var config: ClassifierConfig
  /// The run's hyper-parameters (with the text preparation: maximum length, truncation).
  public var training: ClassifierTrainingOptions
  /// Where the run stands.
  public var state: TaskRunState
  /// Words by id.
  public var vocabulary: [String]
  /// Class names by id.
  public var classes: [String]
  /// Parameters in the layout of `config.parameterLayout`.
  public var parameters: [Float]
  /// The optimizer's moments in ``OptimizerKind/savedTensorNames(averaging:)`` order (NT-ASGD's
  /// average last); empty when not saved.
  public var optimizerState: [[Float]]

  /// Writes a checkpoint atomically, the tensors read in place.
  package static func write(
    to path: String, config: ClassifierConfig, training: ClassifierTrainingOptions, state: TaskRunState,
    vocabulary: [String], classes: [String], parameters: UnsafeBufferPointer<Float>,
    optimizerState: [UnsafeBufferPointer<Float>]
  ) throws {
    let metadata = [
      "format": formatTag, "version": formatVersion, "config": try SafeTensors.json(config),
      "training": try SafeTensors.json(training), "state": try SafeTensors.json(state),
      "vocabulary": try SafeTensors.json(vocabulary), "classes": try SafeTensors.json(classes),
    ]
    try SafeTensors.writeModel(
      to: path, metadata: metadata, layout: config.parameterLayout, cell: config.cell, parameters: parameters,
      optimizerNames: training.optimizer.savedTensorNames(averaging: state.averagedSteps != nil),
      optimizerState: optimizerState)
  }

  /// The validated header: configuration, options, state, vocabulary and classes.
  fileprivate struct Header {
    let file: SafeTensors.Header
    let config: ClassifierConfig
    let training: ClassifierTrainingOptions
    let state: TaskRunState
    let vocabulary: [String]
    let classes: [String]
  }

  /// Parses and checks a header: the format, the configuration and options, the tensors exactly
  /// those of the configuration (the optimizer's all or none), the vocabulary and classes.
  fileprivate static func parseHeader(_ prefix: [UInt8], fileSize: Int, path: String) throws -> Header {
    let file = try SafeTensors.parseHeader(
      prefix, fileSize: fileSize, path: path, format: formatTag, version: formatVersion)
    func field<D: Decodable>(_ name: String, _ type: D.Type) throws -> D {
      try SafeTensors.field(name, type, in: file, path: path)
    }
    let config = try field("config", ClassifierConfig.self)
    do { try config.validate() } catch { throw CheckpointError.mismatch(path: path, reason: "\(error)") }
    let training = try field("training", ClassifierTrainingOptions.self)
    do { try training.validate() } catch { throw CheckpointError.mismatch(path: path, reason: "\(error)") }
    var state = try field("state", TaskRunState.self)
    // Checkpoints written before every task had a schedule ran at the options' constant rate.
    state.learningRate = state.learningRate.isNaN ? training.learningRate : state.learningRate
    // The embedding and the recurrent weights alone bound every size before the layout is made.
    let (v, d, h) = (Double(config.vocabularySize), Double(config.embeddingSize), Double(config.hiddenSize))
    let needed = 4 * (v * d + Double(config.layers) * Double(config.cell.gateCount) * h * (h + 1))
    guard needed <= Double(file.dataSize) else {
      throw CheckpointError.mismatch(
        path: path,
        reason:
          "its configuration needs at least \(String(format: "%.0f", needed)) bytes of tensors; the file holds \(file.dataSize)"
      )
    }
    try SafeTensors.checkModelTensors(
      file, layout: config.parameterLayout, cell: config.cell, optimizer: training.optimizer,
      averaging: state.averagedSteps != nil,
      model: "a classifier of \(config.encoderDescription)", path: path)
    let vocabulary = try field("vocabulary", [String].self)
    guard vocabulary.count == config.vocabularySize else {
      throw CheckpointError.mismatch(
        path: path, reason: "\(vocabulary.count) words for a vocabulary size of \(config.vocabularySize)")
    }
    do { _ = try ClassifierVocabulary(words: vocabulary) } catch {
      throw CheckpointError.mismatch(path: path, reason: "\(error)")
    }
    let classes = try field("classes", [String].self)
    guard classes.count == config.classes, Set(classes).count == classes.count else {
      throw CheckpointError.mismatch(
        path: path, reason: "its class names (\(classes.count)) do not match its \(config.classes) classes")
    }
    return Header(
      file: file, config: config, training: training, state: state, vocabulary: vocabulary, classes: classes)
  }

  /// Reads and validates a classifier checkpoint.
  public static func read(from path: String) throws -> ClassifierCheckpoint {
    let bytes = try SafeTensors.readBytes(of: path)
    let h = try parseHeader(bytes, fileSize: bytes.count, path: path)
    func values(_ name: String) -> [Float]? { SafeTensors.values(name, in: h.file, bytes: bytes) }
    return ClassifierCheckpoint(
      config: h.config, training: h.training, state: h.state, vocabulary: h.vocabulary, classes: h.classes,
      parameters: h.config.cell.parameters(h.config.parameterLayout, values: values),
      optimizerState: h.training.optimizer.savedTensorNames(averaging: h.state.averagedSteps != nil).compactMap {
        values($0)
      })
  }

  /// What a classifier checkpoint holds, from its header alone (for `rnnlm info`).
  public struct Summary {
    /// The model's shape, the run's options and where it stood.
    public let config: ClassifierConfig
    public let training: ClassifierTrainingOptions
    public let state: TaskRunState
    /// Class names; number of words.
    public let classes: [String]
    public let vocabularySize: Int
    /// Tensor names and shapes, sorted by name.
    public let tensors: [(name: String, shape: [Int])]
    /// The file's size in bytes.
    public let fileSize: Int

    /// Reads the header of the checkpoint at `path`.
    public init(contentsOf path: String) throws {
      let (prefix, size) = try SafeTensors.readPrefix(of: path)
      let h = try ClassifierCheckpoint.parseHeader(prefix, fileSize: size, path: path)
      (config, training, state, classes, vocabularySize) = (
        h.config, h.training, h.state, h.classes, h.vocabulary.count
      )
      tensors = h.file.tensors.map { (name: $0.key, shape: $0.value.shape) }.sorted { $0.name < $1.name }
      fileSize = size
    }
  }
}
