import Foundation
import Synchronization

/// A data set encoded for a classifier: each split's texts as ids, with the classes.
public struct ClassifierSplits: Sendable {
  /// Class names by id.
  public var classes: [String]
  /// The texts of each split.
  public var train: [EncodedText], valid: [EncodedText], test: [EncodedText]
  /// Where the validation texts came from, for the header: "valid split of the data" or "10% of
  /// the training texts (seed 1)".
  public var validationSource: String
}

/// Trains a many-to-one text classifier in `Float` the way Keras users train one: shuffled batches of
/// texts bucketed by length, Adam (or RMSprop, or SGD) with optional clipping, validation
/// after every epoch, early stopping on validation loss with the best parameters restored
/// (`best.safetensors`), and exact resumption from `last.safetensors`. It is a task of the one
/// ``RunLoop``: schedules, budgets, NT-ASGD, Ctrl-C and checkpoints work as for every model.
public final class ClassifierTrainer {
  /// The model's shape.
  public let config: ClassifierConfig
  /// The run's hyper-parameters.
  public let options: ClassifierTrainingOptions
  /// The words the model knows.
  public let vocabulary: ClassifierVocabulary
  /// Class names by id.
  public let classes: [String]
  /// The processes training together (one, but under mpirun); each holds an equal share of
  /// every batch's rows.
  public let group: ProcessGroup
  /// The model (N = options.batchSize / group.size, T up to options.maxLength).
  package let model: TextClassifier<Float>
  /// The optimizer's moments and update count.
  package let optimizerState: OptimizerState<Float>
  /// NT-ASGD's average of the parameters (with `options.averaging`).
  package let average: ParameterAverage<Float>?
  /// Where the run stands.
  public private(set) var state: TaskRunState
  /// Receives the run's log lines (progress, epochs, notes), each ending in a newline.
  public var log: (String) -> Void = { _ in }
  /// Whether the log is a terminal, where progress updates one line in place.
  public var logIsTerminal = false
  /// Who else hears about progress.
  public var observers: [any TrainingObserver<TaskEpochRecord>] = []
  private var batch: ClassifierBatch
  private var epochBatches: [ArraySlice<Int>] = []
  /// The epoch under way (1-based).
  private var currentEpoch = 0
  private let stopRequested = Atomic<Bool>(false)

  /// A fresh run: weights initialised from `options.seed`. With a `group` of several processes
  /// (``ProcessGroup/world()`` under mpirun) each takes an equal share of every batch's rows,
  /// so the batch size must divide by the group's size.
  public init(
    config: ClassifierConfig, options: ClassifierTrainingOptions, vocabulary: ClassifierVocabulary, classes: [String],
    group: ProcessGroup = .single
  ) throws {
    try options.validate()
    try config.validate()
    try group.requireDivisible(options.batchSize, what: "the batch of \(options.batchSize) texts (--batch-size)")
    guard vocabulary.count == config.vocabularySize, classes.count == config.classes else {
      throw ConfigurationError(
        "\(vocabulary.count) words and \(classes.count) classes for a model of \(config.vocabularySize) and \(config.classes)"
      )
    }
    (self.config, self.options, self.vocabulary, self.classes) = (config, options, vocabulary, classes)
    self.group = group
    let rows = group.share(of: options.batchSize)
    var generator = SeededGenerator(seed: options.seed)
    model = try TextClassifier(
      config: config, batchSize: rows.count, maxSteps: options.maxLength, generator: &generator)
    model.dropout.setShard(rows)
    optimizerState = try OptimizerState(kind: options.optimizer, count: model.parameters.count)
    average = options.averaging ? try ParameterAverage(count: model.parameters.count) : nil
    state = TaskRunState(generator: model.generator, learningRate: options.learningRate)
    batch = ClassifierBatch(batchSize: rows.count, maxSteps: options.maxLength)
  }

  /// Continues the run saved in `checkpoint` exactly where it stopped (from a `last.safetensors`;
  /// a `best.safetensors` has no optimizer moments, which then start again from zero).
  public convenience init(resuming checkpoint: ClassifierCheckpoint, group: ProcessGroup = .single) throws {
    guard let generator = checkpoint.state.restoredGenerator() else {
      throw ConfigurationError("the checkpoint's generator state is malformed")
    }
    try self.init(
      config: checkpoint.config, options: checkpoint.training,
      vocabulary: try ClassifierVocabulary(words: checkpoint.vocabulary), classes: checkpoint.classes, group: group)
    model.parameters.values.pointer.update(from: checkpoint.parameters, count: checkpoint.parameters.count)
    model.generator = generator
    restoreOptimizer(checkpoint.optimizerState, state: checkpoint.state, optimizer: optimizerState, average: average)
    state = checkpoint.state
  }

  /// A new run's configuration and vocabulary for `data`: the `options.numWords` most frequent
  /// training words, and the data's classes; every other value is `shape`'s.
  public static func prepare(data: LabelledTexts, options: ClassifierTrainingOptions, shape: ClassifierConfig) -> (
    config: ClassifierConfig, vocabulary: ClassifierVocabulary
  ) {
    let vocabulary = ClassifierVocabulary(counting: data.train, limit: options.numWords)
    var config = shape
    (config.vocabularySize, config.classes) = (vocabulary.count, data.classes.count)
    return (config, vocabulary)
  }

  /// A new run's configuration and vocabulary for `data`, as ``prepare(data:options:shape:)``
  /// gives them for a model of these values.
  public static func prepare(
    data: LabelledTexts, options: ClassifierTrainingOptions, embeddingSize: Int, hiddenSize: Int, layers: Int,
    cell: RecurrentCell, dropout: Double, pooling: ClassifierPooling, bidirectional: Bool = false
  ) -> (config: ClassifierConfig, vocabulary: ClassifierVocabulary) {
    let shape = ClassifierConfig(
      vocabularySize: 3, embeddingSize: embeddingSize, hiddenSize: hiddenSize, layers: layers, cell: cell,
      classes: data.classes.count, dropout: dropout, pooling: pooling, bidirectional: bidirectional)
    return prepare(data: data, options: options, shape: shape)
  }

  /// Encodes `data` with the model's vocabulary and options; the validation texts are the data's
  /// own, or the last `validationSplit` of the training texts after a seeded shuffle.
  public func splits(of data: LabelledTexts) throws -> ClassifierSplits {
    guard data.classes == classes else {
      throw TrainingError.incompatibleResume(
        "the data's classes (\(data.classes.joined(separator: ", "))) differ from the model's (\(classes.joined(separator: ", ")))"
      )
    }
    func encode(_ texts: [LabelledText]) -> [EncodedText] {
      texts.map {
        EncodedText(
          ids: vocabulary.ids(of: $0.words, maxLength: options.maxLength, truncation: options.truncation),
          label: Int32($0.label))
      }
    }
    var train = encode(data.train)
    let valid: [EncodedText]
    let source: String
    if let own = data.valid {
      valid = encode(own)
      source = "the data's validation split"
    } else {
      guard let split = heldOutSplit(count: train.count, fraction: options.validationSplit, seed: options.seed) else {
        throw ConfigurationError(
          "a validation split of \(options.validationSplit) of \(train.count) training texts holds none or all of them; "
            + "give --validation-split so that at least one text is held out, or a valid split in the data")
      }
      valid = split.held.map { train[$0] }
      train = split.train.map { train[$0] }
      source = String(format: "%g%% of the training texts (seed %llu)", 100 * options.validationSplit, options.seed)
    }
    if let n = options.trainingTexts, n < train.count {
      // A sample seeded by the run's seed, in file order: the first n of a seeded shuffle.
      var g = SeededGenerator(seed: options.seed ^ 0x7E47_5A3B_1E5E)
      var order = Array(train.indices)
      for i in stride(from: order.count - 1, to: 0, by: -1) { order.swapAt(i, Int(g.next() % UInt64(i + 1))) }
      train = order.prefix(n).sorted().map { train[$0] }
    }
    return ClassifierSplits(
      classes: classes, train: train, valid: valid, test: encode(data.test), validationSource: source)
  }

  /// The batches of epoch `epoch` (1-based), as index lists into `texts`: a shuffle seeded by the
  /// run's seed and the epoch, then groups of 20 batches' texts sorted by length and cut into
  /// batches (so a batch holds texts of similar length and little padding), in shuffled order.
  /// The order is a function of (seed, epoch) alone, so a resumed run replays it.
  package static func epochBatches(texts: [EncodedText], batchSize n: Int, seed: UInt64, epoch: Int) -> [ArraySlice<
    Int
  >] {
    bucketedBatches(count: texts.count, batchSize: n, seed: seed, epoch: epoch) { (texts[$0].ids.count, 0) }
  }

  /// Forward and backward over the texts of `texts` at `indices` (this process's share of them)
  /// into the gradients (zeroed before).
  private func lossAndGradient(_ texts: [EncodedText], indices: ArraySlice<Int>) -> BatchResult {
    batch.fill(from: texts, indices: share(of: indices))
    model.training = true
    return model.pass(batch, gradient: true, divisor: gradientDivisor(indices.count))
  }

  /// One training step on the texts of `texts` at `indices` as the run loop takes it: zero the
  /// gradients, forward and backward, then the loop's update at the current learning rate. When
  /// the loss is not finite the parameters are left as they were. (For benchmarks; runs go
  /// through ``run(_:limits:)``.)
  package func trainingStep(_ texts: [EncodedText], indices: ArraySlice<Int>) -> BatchResult {
    model.parameters.zeroGradients()
    let result = lossAndGradient(texts, indices: indices)
    guard result.lossSum.isFinite else { return result }
    RunLoop.update(
      model.parameters, optimizer: optimizerState, average: average, state: &state, learningRate: state.learningRate,
      options: options, slowerPrefix: slowerPrefix)
    return result
  }

  /// Mean loss and accuracy of the current parameters on `texts` (dropout off), in batches of
  /// similar lengths (with several processes each takes its share of every batch; all must call
  /// it).
  public func evaluate(_ texts: [EncodedText]) -> (loss: Double, accuracy: Double) {
    guard !texts.isEmpty else { return (.nan, .nan) }
    model.training = false
    defer { model.training = true }
    let order = texts.indices.sorted { (texts[$0].ids.count, $0) < (texts[$1].ids.count, $1) }
    var sums = [0.0, 0.0]
    for start in stride(from: 0, to: order.count, by: options.batchSize) {
      batch.fill(from: texts, indices: share(of: order[start..<min(start + options.batchSize, order.count)]))
      let r = model.pass(batch, gradient: false)
      sums[0] += r.lossSum
      sums[1] += Double(r.correct)
    }
    group.sum(&sums)
    return (sums[0] / Double(texts.count), sums[1] / Double(texts.count))
  }

  /// The data of the run under way (set by ``run(_:limits:)``).
  package var splits: ClassifierSplits?

  /// Trains until `options.epochs` epochs are done, early stopping ends the run, the budget
  /// plan is reached or a limit of `limits` is reached; then restores the best parameters (by
  /// validation loss) and reports their test loss and accuracy. With a save directory,
  /// `best.safetensors`, `last.safetensors`, `metrics.csv` and `curve.svg` are written there.
  public func run(_ splits: ClassifierSplits, limits: RunLimits = RunLimits()) throws -> TaskReport {
    self.splits = splits
    defer { self.splits = nil }
    var state = self.state
    defer { self.state = state }
    return try fitExamples(
      state: &state, limits: limits, log: log, logIsTerminal: logIsTerminal, observers: observers,
      stopRequested: { stopRequested.exchange(false, ordering: .relaxed) })
  }

  /// Asks the run under way to stop after its current batch and save, as Ctrl-C does.
  public func requestStop() { stopRequested.store(true, ordering: .relaxed) }

  /// `state` with the generator and optimizer count as they stand, as saved.
  private func saved(_ state: TaskRunState) -> TaskRunState {
    var s = state
    s.setGenerator(model.generator)
    s.optimizerSteps = optimizerState.steps
    return s
  }

  /// The current run as a checkpoint (what `last.safetensors` holds).
  public func checkpoint() -> ClassifierCheckpoint {
    ClassifierCheckpoint(
      config: config, training: options, state: saved(state), vocabulary: vocabulary.words, classes: classes,
      parameters: model.parameters.values.array,
      optimizerState: optimizerState.savedBuffers(average: average, averaging: state.averagedSteps != nil).map(\.array))
  }

  /// Class probabilities of each raw text (tokenised by ``LabelledTexts/words(in:)`` and cut
  /// as in training) with the current parameters, dropout off: one row of K per text, in
  /// order; nil for a text with no words.
  public func probabilities(of texts: [String]) -> [[Float]?] {
    Self.probabilities(
      ofWords: texts.map(LabelledTexts.words(in:)), vocabulary: vocabulary, options: options, model: model,
      batch: &batch)
  }

  /// ``probabilities(of:)`` for texts already split into words, with a given model and batch.
  package static func probabilities(
    ofWords texts: [[String]], vocabulary: ClassifierVocabulary, options: ClassifierTrainingOptions,
    model: TextClassifier<Float>, batch: inout ClassifierBatch
  ) -> [[Float]?] {
    let encoded = texts.map {
      EncodedText(
        ids: vocabulary.ids(of: $0, maxLength: options.maxLength, truncation: options.truncation), label: 0)
    }
    let nonEmpty = encoded.indices.filter { !encoded[$0].ids.isEmpty }
    model.training = false
    defer { model.training = true }
    let k = model.config.classes
    var out = [[Float]?](repeating: nil, count: texts.count)
    for start in stride(from: 0, to: nonEmpty.count, by: model.batchSize) {
      let indices = nonEmpty[start..<min(start + model.batchSize, nonEmpty.count)]
      batch.fill(from: encoded, indices: indices)
      _ = model.pass(batch, gradient: false)
      for (r, i) in indices.enumerated() {
        out[i] = Array(UnsafeBufferPointer(start: model.probabilities.pointer + r * k, count: k))
      }
    }
    return out
  }

}

/// A trained classifier loaded from a checkpoint, for predictions.
public final class TrainedClassifier {
  /// The checkpoint's parts.
  public let config: ClassifierConfig
  public let options: ClassifierTrainingOptions
  public let vocabulary: ClassifierVocabulary
  public let classes: [String]
  private let model: TextClassifier<Float>
  private var batch: ClassifierBatch

  /// The classifier saved at `path` (a `best.safetensors` or `last.safetensors`), for batches of
  /// `batchSize` texts.
  public init(contentsOf path: String, batchSize: Int = 32) throws {
    let c = try ClassifierCheckpoint.read(from: path)
    (config, options, classes) = (c.config, c.training, c.classes)
    vocabulary = try ClassifierVocabulary(words: c.vocabulary)
    let store = try ParameterStore<Float>(layout: c.config.parameterLayout)
    store.values.pointer.update(from: c.parameters, count: c.parameters.count)
    model = try TextClassifier(
      config: c.config, parameters: store, batchSize: batchSize, maxSteps: c.training.maxLength)
    batch = ClassifierBatch(batchSize: batchSize, maxSteps: c.training.maxLength)
  }

  /// Class probabilities of each text (raw text, tokenised by ``LabelledTexts/words(in:)``, cut
  /// as in training); nil for a text with no words.
  public func probabilities(of texts: [String]) -> [[Float]?] {
    probabilities(ofWords: texts.map(LabelledTexts.words(in:)))
  }

  /// ``probabilities(of:)`` for texts already split into words (``LabelledText/words``).
  public func probabilities(ofWords texts: [[String]]) -> [[Float]?] {
    ClassifierTrainer.probabilities(
      ofWords: texts, vocabulary: vocabulary, options: options, model: model, batch: &batch)
  }
}

extension ClassifierTrainer: ExampleTask {
  package var labels: RunLabels {
    RunLabels(unit: "texts", examples: "texts", scoreName: "loss", accuracyName: "accuracy")
  }
  package var parameters: ParameterStore<Float> { model.parameters }
  package var examplesPerStep: Int { options.batchSize }
  package var dataFingerprint: String {
    var f = DataFingerprint()
    for t in splits!.train {
      f.add(t.ids)
      f.add(UInt32(bitPattern: t.label))
    }
    return f.value
  }
  package var splitSizes: (train: Int, valid: Int, test: Int) {
    (splits!.train.count, splits!.valid.count, splits!.test.count)
  }

  package func beginEpoch(_ epoch: Int) {
    currentEpoch = epoch
    epochBatches = Self.epochBatches(
      texts: splits!.train, batchSize: options.batchSize, seed: options.seed, epoch: epoch)
  }

  package func trainingBatch(_ batch: Int, stepsDone: Int) -> (result: BatchResult, steps: Int) {
    let result = lossAndGradient(splits!.train, indices: epochBatches[batch])
    if currentEpoch <= options.freezeEncoderEpochs {
      // Everything before the output layer (which the layout puts last) keeps a zero gradient,
      // so no optimizer moves it.
      model.parameters.gradients.pointer.update(repeating: 0, count: model.parameters.view("fc.weight").offset)
    }
    if options.freezeEmbeddings {
      let embedding = model.parameters.view("embedding.weight")
      (model.parameters.gradients.pointer + embedding.offset).update(repeating: 0, count: embedding.count)
    }
    return (result, 1)
  }

  package func evaluate(_ split: EvaluationSplit) -> Evaluation {
    let r = evaluate(split == .valid ? splits!.valid : splits!.test)
    return Evaluation(score: r.loss, accuracy: r.accuracy)
  }

  package func save(to path: String, best: Bool, state: TaskRunState) throws {
    try ClassifierCheckpoint.write(
      to: path, config: config, training: options, state: saved(state), vocabulary: vocabulary.words, classes: classes,
      parameters: model.parameters.values.bufferPointer,
      optimizerState: best
        ? [] : optimizerState.savedBuffers(average: average, averaging: state.averagedSteps != nil).map(\.bufferPointer)
    )
  }

  package func bestParameters(at path: String) throws -> [Float] {
    try ClassifierCheckpoint.read(from: path).parameters
  }

  /// Everything before the output layer (which the layout puts last) at
  /// `options.encoderLearningRateFactor` × the rate.
  package var slowerPrefix: (count: Int, factor: Double)? {
    options.encoderLearningRateFactor == 1
      ? nil : (model.parameters.view("fc.weight").offset, options.encoderLearningRateFactor)
  }

}
