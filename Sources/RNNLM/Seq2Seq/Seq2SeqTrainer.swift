import Foundation
import Synchronization

/// Hyper-parameters of a sequence-to-sequence run.
public struct Seq2SeqTrainingOptions: Codable, Sendable, Equatable, RunOptions {
  /// Pairs per batch N.
  public var batchSize = 64
  /// Epochs of the whole run (early stopping may end it sooner).
  public var epochs = 20
  /// The update rule (Adam by default) and its learning rate.
  public var optimizer = OptimizerKind.adam
  public var learningRate = 0.001
  /// Global gradient-norm bound; 0 turns clipping off.
  public var clip = 5.0
  /// L2 weight decay; 0 turns it off.
  public var weightDecay = 0.0
  /// Early stopping on validation loss after this many epochs without improvement; 0 never.
  public var patience = 3
  /// Validation accuracy, not loss, decides the best epoch (see ``RunOptions/monitorAccuracy``).
  public var monitorAccuracy = false
  /// The fraction of training pairs held out for validation when the data has no valid.tsv.
  public var validationSplit = 0.1
  /// Sources and targets longer than this many tokens are an error (they would not fit).
  public var maxSourceLength = 100, maxTargetLength = 100
  /// Characters or words.
  public var tokens = TokenLevel.characters
  /// Seed of the run's generator.
  public var seed: UInt64 = 1
  /// Batches between log lines.
  public var logInterval = 100

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
    maxSourceLength = try c.decode(Int.self, forKey: .maxSourceLength)
    maxTargetLength = try c.decode(Int.self, forKey: .maxTargetLength)
    tokens = try c.decode(TokenLevel.self, forKey: .tokens)
    seed = try c.decode(UInt64.self, forKey: .seed)
    logInterval = try c.decode(Int.self, forKey: .logInterval)
    try decodeSchedule(from: decoder)
  }

  /// Throws ``ConfigurationError`` for values that cannot make a run.
  public func validate() throws {
    try validateTaskOptions(
      batchSize: batchSize, epochs: epochs, learningRate: learningRate, clip: clip, weightDecay: weightDecay,
      patience: patience, validationSplit: validationSplit, logInterval: logInterval)
    try LearningRateSchedule.validate(self)
    if maxSourceLength < 1 || maxTargetLength < 1 {
      throw ConfigurationError("the maximum lengths must be at least 1")
    }
  }
}

/// A data set encoded for a sequence-to-sequence model.
public struct Seq2SeqSplits: Sendable {
  /// The pairs of each split.
  public var train: [EncodedPair], valid: [EncodedPair], test: [EncodedPair]
  /// Where the validation pairs came from, for the header.
  public var validationSource: String
  /// Pairs whose source has no token, which were skipped: how many, and where the first was.
  public var skippedPairs = 0
  public var firstSkipped: String?
}

/// Trains a ``Seq2SeqConfig`` model in `Float` with teacher forcing: batches bucketed by source
/// length, Adam with clipping, validation loss and exact-match accuracy of greedy decoding after
/// every epoch, early stopping with the best parameters restored, exact resumption — a task of
/// the one ``RunLoop`` (``TaskReport``, `best.safetensors`, `last.safetensors`, `metrics.csv`,
/// `curve.svg`, every schedule and budget).
public final class Seq2SeqTrainer {
  /// The model's shape, the run's options, the two vocabularies.
  public let config: Seq2SeqConfig
  public let options: Seq2SeqTrainingOptions
  public let sourceVocabulary: Seq2SeqVocabulary, targetVocabulary: Seq2SeqVocabulary
  /// The model (N = options.batchSize).
  package let model: Seq2SeqModel<Float>
  package let optimizerState: OptimizerState<Float>
  /// NT-ASGD's average of the parameters (with `options.averaging`).
  package let average: ParameterAverage<Float>?
  /// The processes training together (one, but under mpirun); each holds an equal share of
  /// every batch's rows.
  public let group: ProcessGroup
  /// Where the run stands.
  public private(set) var state: TaskRunState
  /// Receives the run's log lines.
  public var log: (String) -> Void = { _ in }
  /// Whether the log is a terminal, where progress updates one line in place.
  public var logIsTerminal = false
  /// Who else hears about progress.
  public var observers: [any TrainingObserver<TaskEpochRecord>] = []
  private var batch: Seq2SeqBatch
  private var epochBatches: [ArraySlice<Int>] = []
  /// The data of the run under way (set by ``run(_:limits:)``).
  package var splits: Seq2SeqSplits?
  private let stopRequested = Atomic<Bool>(false)

  /// A fresh run: weights initialised from `options.seed`. With a `group` of several processes
  /// (``ProcessGroup/world()`` under mpirun) each takes an equal share of every batch's rows,
  /// so the batch size must divide by the group's size.
  public init(
    config: Seq2SeqConfig, options: Seq2SeqTrainingOptions, sourceVocabulary: Seq2SeqVocabulary,
    targetVocabulary: Seq2SeqVocabulary, group: ProcessGroup = .single
  ) throws {
    try options.validate()
    try config.validate()
    try group.requireDivisible(options.batchSize, what: "the batch of \(options.batchSize) pairs (--batch-size)")
    guard sourceVocabulary.count == config.sourceVocabularySize, targetVocabulary.count == config.targetVocabularySize
    else { throw ConfigurationError("the vocabularies do not have the configuration's sizes") }
    (self.config, self.options, self.sourceVocabulary, self.targetVocabulary) = (
      config, options, sourceVocabulary, targetVocabulary
    )
    self.group = group
    let rows = group.share(of: options.batchSize)
    var generator = SeededGenerator(seed: options.seed)
    model = try Seq2SeqModel(
      config: config, batchSize: rows.count, maxSourceSteps: options.maxSourceLength,
      maxTargetSteps: options.maxTargetLength + 1, generator: &generator)
    model.dropout.setShard(rows)
    optimizerState = try OptimizerState(kind: options.optimizer, count: model.parameters.count)
    average = options.averaging ? try ParameterAverage(count: model.parameters.count) : nil
    state = TaskRunState(generator: model.generator, learningRate: options.learningRate)
    batch = Seq2SeqBatch(
      batchSize: rows.count, maxSourceSteps: options.maxSourceLength, maxTargetSteps: options.maxTargetLength + 1)
  }

  /// Continues the run saved in `checkpoint` exactly where it stopped.
  public convenience init(resuming checkpoint: Seq2SeqCheckpoint, group: ProcessGroup = .single) throws {
    guard let generator = checkpoint.state.restoredGenerator() else {
      throw ConfigurationError("the checkpoint's generator state is malformed")
    }
    try self.init(
      config: checkpoint.config, options: checkpoint.training,
      sourceVocabulary: try Seq2SeqVocabulary(tokens: checkpoint.sourceVocabulary),
      targetVocabulary: try Seq2SeqVocabulary(tokens: checkpoint.targetVocabulary), group: group)
    model.parameters.values.pointer.update(from: checkpoint.parameters, count: checkpoint.parameters.count)
    model.generator = generator
    restoreOptimizer(checkpoint.optimizerState, state: checkpoint.state, optimizer: optimizerState, average: average)
    state = checkpoint.state
  }

  /// A new run's vocabularies (every training token) for `data`.
  public static func vocabularies(for data: SequencePairs, tokens: TokenLevel) -> (
    source: Seq2SeqVocabulary, target: Seq2SeqVocabulary
  ) {
    (
      Seq2SeqVocabulary(counting: data.train.map { tokens.tokens($0.source) }),
      Seq2SeqVocabulary(counting: data.train.map { tokens.tokens($0.target) })
    )
  }

  /// Encodes `data`: the validation pairs are the data's own or the last `validationSplit` of
  /// the training pairs after a seeded shuffle. A pair longer than the maximum lengths is an
  /// error naming its line; a pair whose source has no token is skipped and counted, or refused
  /// (`emptySources`).
  public func splits(of data: SequencePairs, emptySources: EmptyTextPolicy = .skip) throws -> Seq2SeqSplits {
    var skipped = (count: 0, first: String?.none)
    func encode(_ pairs: [SequencePairs.Pair]) throws -> [EncodedPair] {
      try pairs.compactMap { p in
        let source = sourceVocabulary.ids(of: options.tokens.tokens(p.source))
        let target = targetVocabulary.ids(of: options.tokens.tokens(p.target))
        if source.isEmpty {
          if emptySources == .refuse {
            throw DataError.malformed("\(p.origin): the source has no \(options.tokens.rawValue)")
          }
          skipped = (skipped.count + 1, skipped.first ?? p.origin)
          return nil
        }
        if source.count > options.maxSourceLength || target.count > options.maxTargetLength {
          throw DataError.malformed(
            "\(p.origin): \(source.count) source and \(target.count) target tokens; the maximum lengths are \(options.maxSourceLength) and \(options.maxTargetLength) (raise --max-source-length or --max-target-length)"
          )
        }
        return EncodedPair(source: source, target: target)
      }
    }
    var train = try encode(data.train)
    let valid: [EncodedPair]
    let source: String
    if let own = data.valid {
      valid = try encode(own)
      source = "valid.tsv"
    } else {
      guard let split = heldOutSplit(count: train.count, fraction: options.validationSplit, seed: options.seed) else {
        throw ConfigurationError(
          "a validation split of \(options.validationSplit) of \(train.count) training pairs holds none or all of them; give valid.tsv or another --validation-split"
        )
      }
      valid = split.held.map { train[$0] }
      train = split.train.map { train[$0] }
      source = String(format: "%g%% of the training pairs (seed %llu)", 100 * options.validationSplit, options.seed)
    }
    var splits = Seq2SeqSplits(train: train, valid: valid, test: try encode(data.test), validationSource: source)
    (splits.skippedPairs, splits.firstSkipped) = skipped
    return splits
  }

  /// Forward and backward over the pairs at `indices` (this process's share of them) into the
  /// gradients (zeroed before).
  private func lossAndGradient(_ indices: ArraySlice<Int>) -> BatchResult {
    let pairs = splits!.train
    batch.fill(from: pairs, indices: share(of: indices), reverse: config.reverseSource, stepsOf: indices)
    model.training = true
    // The batch's real target steps: each pair's tokens and its <eos>.
    let tokens = indices.reduce(0) { $0 + pairs[$1].target.count + 1 }
    return model.pass(batch, gradient: true, divisor: gradientDivisor(tokens))
  }

  /// Mean loss per target token (teacher forcing) and exact-match accuracy of greedy decoding on
  /// `pairs`, dropout off.
  public func evaluate(_ pairs: [EncodedPair]) -> (loss: Double, accuracy: Double) {
    guard !pairs.isEmpty else { return (.nan, .nan) }
    model.training = false
    defer { model.training = true }
    let order = pairs.indices.sorted { (pairs[$0].source.count, $0) < (pairs[$1].source.count, $1) }
    var sums = [0.0, 0.0, 0.0]  // loss, target tokens, exact matches
    for start in stride(from: 0, to: order.count, by: options.batchSize) {
      let indices = share(of: order[start..<min(start + options.batchSize, order.count)])
      batch.fill(from: pairs, indices: indices, reverse: config.reverseSource)
      let r = model.pass(batch, gradient: false)
      sums[0] += r.lossSum
      sums[1] += Double(r.count)
      let decoded = model.greedyDecode(batch, maxLength: options.maxTargetLength)
      for (row, i) in indices.enumerated() where decoded[row].tokens == pairs[i].target { sums[2] += 1 }
    }
    group.sum(&sums)
    return (sums[0] / sums[1], sums[2] / Double(pairs.count))
  }

  /// Asks the run under way to stop after its current batch and save, as Ctrl-C does.
  public func requestStop() { stopRequested.store(true, ordering: .relaxed) }

  /// Trains until the epochs are done, early stopping ends the run, the budget plan is reached
  /// or a limit is reached; then restores the best parameters and reports their test loss and
  /// exact-match accuracy.
  public func run(_ splits: Seq2SeqSplits, limits: RunLimits = RunLimits()) throws -> TaskReport {
    self.splits = splits
    defer { self.splits = nil }
    var state = self.state
    defer { self.state = state }
    return try fitExamples(
      state: &state, limits: limits, log: log, logIsTerminal: logIsTerminal, observers: observers,
      stopRequested: { stopRequested.exchange(false, ordering: .relaxed) })
  }
}

extension Seq2SeqTrainer: ExampleTask {
  package var labels: RunLabels {
    RunLabels(unit: "pairs", examples: "pairs", scoreName: "loss", accuracyName: "exact match")
  }
  package var parameters: ParameterStore<Float> { model.parameters }
  package var examplesPerStep: Int { options.batchSize }
  package var dataFingerprint: String {
    var f = DataFingerprint()
    for p in splits!.train {
      f.add(p.source)
      f.add(p.target)
    }
    return f.value
  }
  package var splitSizes: (train: Int, valid: Int, test: Int) {
    (splits!.train.count, splits!.valid.count, splits!.test.count)
  }

  /// The batches of epoch `epoch`, bucketed by source and target length (see `bucketedBatches`).
  package func beginEpoch(_ epoch: Int) {
    let pairs = splits!.train
    epochBatches = bucketedBatches(count: pairs.count, batchSize: options.batchSize, seed: options.seed, epoch: epoch) {
      (pairs[$0].source.count, pairs[$0].target.count)
    }
  }

  package func trainingBatch(_ batch: Int, stepsDone: Int) -> (result: BatchResult, steps: Int) {
    (lossAndGradient(epochBatches[batch]), 1)
  }

  package func evaluate(_ split: EvaluationSplit) -> Evaluation {
    let r = evaluate(split == .valid ? splits!.valid : splits!.test)
    return Evaluation(score: r.loss, accuracy: r.accuracy)
  }

  package func save(to path: String, best: Bool, state: TaskRunState) throws {
    var s = state
    s.setGenerator(model.generator)
    s.optimizerSteps = optimizerState.steps
    let metadata = [
      "format": Seq2SeqCheckpoint.formatTag, "version": Seq2SeqCheckpoint.formatVersion,
      "config": try SafeTensors.json(config), "training": try SafeTensors.json(options),
      "state": try SafeTensors.json(s), "sourceVocabulary": try SafeTensors.json(sourceVocabulary.tokens),
      "targetVocabulary": try SafeTensors.json(targetVocabulary.tokens),
    ]
    try SafeTensors.writeModel(
      to: path, metadata: metadata, layout: config.parameterLayout, cell: config.cell,
      parameters: model.parameters.values.bufferPointer,
      optimizerNames: options.optimizer.savedTensorNames(averaging: state.averagedSteps != nil),
      optimizerState: best
        ? [] : optimizerState.savedBuffers(average: average, averaging: state.averagedSteps != nil).map(\.bufferPointer)
    )
  }

  package func bestParameters(at path: String) throws -> [Float] { try Seq2SeqCheckpoint.read(from: path).parameters }

}

/// A sequence-to-sequence model and its run in the toolkit's safetensors container: the
/// parameters under PyTorch-style names (`encoder.*`, `decoder.*`, `attention.*`, `output.*`,
/// the recurrent ones as `nn.LSTM`/`nn.GRU`/`nn.RNN` name theirs), the optimizer's moments in a
/// `last.safetensors`, and as metadata `format` = `rnnlm-seq2seq`, `version`, `config`,
/// `training`, `state`, `sourceVocabulary` and `targetVocabulary` (JSON).
public struct Seq2SeqCheckpoint {
  /// The format version and tag.
  public static let formatVersion = "1"
  public static let formatTag = "rnnlm-seq2seq"

  /// The checkpoint's parts.
  public var config: Seq2SeqConfig
  public var training: Seq2SeqTrainingOptions
  public var state: TaskRunState
  public var sourceVocabulary: [String], targetVocabulary: [String]
  public var parameters: [Float]
  public var optimizerState: [[Float]]

  /// The validated header.
  fileprivate struct Header {
    let file: SafeTensors.Header
    let config: Seq2SeqConfig
    let training: Seq2SeqTrainingOptions
    let state: TaskRunState
    let sourceVocabulary: [String], targetVocabulary: [String]
  }

  fileprivate static func parseHeader(_ prefix: [UInt8], fileSize: Int, path: String) throws -> Header {
    let file = try SafeTensors.parseHeader(
      prefix, fileSize: fileSize, path: path, format: formatTag, version: formatVersion)
    func field<D: Decodable>(_ name: String, _ type: D.Type) throws -> D {
      try SafeTensors.field(name, type, in: file, path: path)
    }
    let config = try field("config", Seq2SeqConfig.self)
    do { try config.validate() } catch { throw CheckpointError.mismatch(path: path, reason: "\(error)") }
    let training = try field("training", Seq2SeqTrainingOptions.self)
    do { try training.validate() } catch { throw CheckpointError.mismatch(path: path, reason: "\(error)") }
    var state = try field("state", TaskRunState.self)
    // Checkpoints written before every task had a schedule ran at the options' constant rate.
    state.learningRate = state.learningRate.isNaN ? training.learningRate : state.learningRate
    let (v, d, h) = (
      Double(config.sourceVocabularySize + config.targetVocabularySize), Double(config.embeddingSize),
      Double(config.hiddenSize)
    )
    let needed = 4 * (v * d + 2 * Double(config.layers) * Double(config.cell.gateCount) * h * (h + 1))
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
      model: "a sequence-to-sequence model of \(config.description)", path: path)
    let source = try field("sourceVocabulary", [String].self)
    let target = try field("targetVocabulary", [String].self)
    guard source.count == config.sourceVocabularySize, target.count == config.targetVocabularySize else {
      throw CheckpointError.mismatch(path: path, reason: "its vocabularies do not have the configuration's sizes")
    }
    do {
      _ = try Seq2SeqVocabulary(tokens: source)
      _ = try Seq2SeqVocabulary(tokens: target)
    } catch { throw CheckpointError.mismatch(path: path, reason: "\(error)") }
    return Header(
      file: file, config: config, training: training, state: state, sourceVocabulary: source, targetVocabulary: target)
  }

  /// Reads and validates a sequence-to-sequence checkpoint.
  public static func read(from path: String) throws -> Seq2SeqCheckpoint {
    let bytes = try SafeTensors.readBytes(of: path)
    let h = try parseHeader(bytes, fileSize: bytes.count, path: path)
    func values(_ name: String) -> [Float]? { SafeTensors.values(name, in: h.file, bytes: bytes) }
    return Seq2SeqCheckpoint(
      config: h.config, training: h.training, state: h.state, sourceVocabulary: h.sourceVocabulary,
      targetVocabulary: h.targetVocabulary,
      parameters: h.config.cell.parameters(h.config.parameterLayout, values: values),
      optimizerState: h.training.optimizer.savedTensorNames(averaging: h.state.averagedSteps != nil).compactMap {
        values($0)
      })
  }

  /// What a checkpoint holds, from its header alone (for `rnnlm info`).
  public struct Summary {
    public let config: Seq2SeqConfig
    public let training: Seq2SeqTrainingOptions
    public let state: TaskRunState
    public let sourceVocabularySize: Int, targetVocabularySize: Int
    public let tensors: [(name: String, shape: [Int])]
    public let fileSize: Int

    /// Reads the header of the checkpoint at `path`.
    public init(contentsOf path: String) throws {
      let (prefix, size) = try SafeTensors.readPrefix(of: path)
      let h = try Seq2SeqCheckpoint.parseHeader(prefix, fileSize: size, path: path)
      (config, training, state) = (h.config, h.training, h.state)
      (sourceVocabularySize, targetVocabularySize) = (h.sourceVocabulary.count, h.targetVocabulary.count)
      tensors = h.file.tensors.map { (name: $0.key, shape: $0.value.shape) }.sorted { $0.name < $1.name }
      fileSize = size
    }
  }
}

/// A trained sequence-to-sequence model loaded from a checkpoint, for translation.
public final class TrainedSeq2Seq {
  /// The checkpoint's parts.
  public let config: Seq2SeqConfig
  public let options: Seq2SeqTrainingOptions
  public let sourceVocabulary: Seq2SeqVocabulary, targetVocabulary: Seq2SeqVocabulary
  private let parameters: ParameterStore<Float>
  private var models: [Int: Seq2SeqModel<Float>] = [:]

  /// The model saved at `path`.
  public init(contentsOf path: String) throws {
    let c = try Seq2SeqCheckpoint.read(from: path)
    (config, options) = (c.config, c.training)
    sourceVocabulary = try Seq2SeqVocabulary(tokens: c.sourceVocabulary)
    targetVocabulary = try Seq2SeqVocabulary(tokens: c.targetVocabulary)
    parameters = try ParameterStore<Float>(layout: c.config.parameterLayout)
    parameters.values.pointer.update(from: c.parameters, count: c.parameters.count)
  }

  /// A model over the parameters with batch size `n` (made once per size).
  private func model(batchSize n: Int, sourceSteps: Int) throws -> Seq2SeqModel<Float> {
    if let m = models[n], m.maxSourceSteps >= sourceSteps { return m }
    let m = try Seq2SeqModel<Float>(
      config: config, parameters: parameters, batchSize: n, maxSourceSteps: max(sourceSteps, options.maxSourceLength),
      maxTargetSteps: 1)
    m.training = false
    models[n] = m
    return m
  }

  /// The source's tokens as the model reads them (ids), or nil when it has none.
  public func sourceIDs(_ text: String) -> [Int32]? {
    let ids = sourceVocabulary.ids(of: options.tokens.tokens(text))
    return ids.isEmpty ? nil : ids
  }

  /// Decodes `text`: greedy with `beam` 1, else beam search of that width — which returns the
  /// greedy output instead when greedy's is more probable, so a beam is never worse than greedy.
  /// The output stops at `<eos>` or after `maxLength` tokens (default: the training maximum).
  public func decode(_ text: String, beam: Int = 1, maxLength: Int? = nil, recordAttention: Bool = false) throws
    -> Decoded
  {
    guard let source = sourceIDs(text) else { throw DataError.malformed("the source \"\(text)\" has no tokens") }
    let limit = maxLength ?? options.maxTargetLength
    let greedy = try model(batchSize: 1, sourceSteps: source.count).beamSearch(
      source: source, maxLength: limit, recordAttention: recordAttention)
    guard beam > 1 else { return greedy }
    let searched = try model(batchSize: beam, sourceSteps: source.count).beamSearch(
      source: source, maxLength: limit, recordAttention: recordAttention)
    return searched.logProbability >= greedy.logProbability ? searched : greedy
  }

  /// The output tokens of `decoded` as text.
  public func text(of decoded: Decoded) -> String { options.tokens.join(targetVocabulary.tokens(of: decoded.tokens)) }
}
