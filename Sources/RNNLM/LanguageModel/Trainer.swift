import Foundation
import Synchronization

/// What a language model's run (or one invocation of a resumed run) measured.
public struct TrainingReport: Sendable {
  /// Every completed epoch of the run, resumed ones included.
  public var epochs: [EpochRecord] = []
  /// Test perplexity of the best parameters at the end.
  public var testPerplexity = Double.nan
  /// Best validation perplexity.
  public var bestValidPerplexity: Double?
  /// Training tokens per second over the whole run (training steps only).
  public var tokensPerSecond = 0.0
  /// Wall time of this invocation, evaluations included.
  public var seconds = 0.0
  /// Why the run stopped before its last epoch, or nil when it completed.
  public var stoppedEarly: String?
}

/// Trains a recurrent language model in `Float` as a task of the one ``RunLoop``: its batches are
/// the book's N streams in windows of T (or variable) time steps with the recurrent state carried
/// between them; the loop brings SGD or another optimizer, clipping, the schedules, budgets,
/// checkpoints and exact resumption.
public final class Trainer {
  /// The model's shape.
  public let config: ModelConfig
  /// The run's hyper-parameters.
  public let options: TrainingOptions
  /// Words in id order (stored in checkpoints).
  public let vocabulary: [String]
  /// The processes training together (one, but under mpirun); each holds an equal share of the
  /// N streams.
  public let group: ProcessGroup
  /// The model trained (N = options.batchSize / group.size streams, dropout on).
  package let model: LanguageModel<Float>
  /// The same parameters, for evaluation (N = options.evalBatchSize / group.size, dropout off),
  /// sharing the training model's scratch buffers.
  package let evaluator: LanguageModel<Float>
  /// The streams this process trains on, and evaluates.
  private let trainingStreams: RowShard, evaluationStreams: RowShard
  /// The optimizer's moments (Adam, RMSprop) and update count.
  package let optimizerState: OptimizerState<Float>
  /// NT-ASGD's average of the parameters (with `averaging`; in use once state.averagedSteps is
  /// set).
  package let average: ParameterAverage<Float>?
  /// Where the run stands.
  public private(set) var state: RunState
  /// Who hears about progress.
  public var observers: [any TrainingObserver<EpochRecord>] = []
  private let stopRequested = Atomic<Bool>(false)
  /// The run's data while ``run(_:limits:)`` runs.
  private var dataset: Dataset?
  private var batches: TrainingBatches?
  /// One batch's inputs and targets, (T, N) time-major (T the longest window).
  private var inputs: [Int32] = [], targets: [Int32] = []

  /// A fresh run: weights initialised from `options.seed`. With a `group` of several processes
  /// (``ProcessGroup/world()`` under mpirun) each trains on its share of the N streams and
  /// evaluates its share of the evaluation streams; both must divide by the group's size.
  public init(
    config: ModelConfig, options: TrainingOptions, vocabulary: [String], group: ProcessGroup = .single
  ) throws {
    try options.validate()
    try group.requireDivisible(options.batchSize, what: "the batch of \(options.batchSize) streams (--batch-size)")
    try group.requireDivisible(
      options.evalBatchSize, what: "the evaluation's \(options.evalBatchSize) streams (--eval-batch-size)")
    guard vocabulary.count == config.vocabularySize else {
      throw ConfigurationError("\(vocabulary.count) words for a vocabulary size of \(config.vocabularySize)")
    }
    self.config = config
    self.options = options
    self.vocabulary = vocabulary
    self.group = group
    (trainingStreams, evaluationStreams) = (group.share(of: options.batchSize), group.share(of: options.evalBatchSize))
    var generator = SeededGenerator(seed: options.seed)
    // Variable windows reach T + 20 steps (TrainingBatches.maxWindow).
    model = try LanguageModel(
      config: config, batchSize: trainingStreams.count,
      maxSteps: options.variableLength ? options.steps + 20 : options.steps, generator: &generator)
    model.setShard(trainingStreams)
    // Evaluation runs between training steps on the same thread: it borrows the training
    // model's scratch buffers (they are large enough unless the evaluation batch is larger).
    evaluator = try LanguageModel(
      config: config, parameters: model.parameters, batchSize: evaluationStreams.count, maxSteps: options.steps,
      scratch: model.scratch)
    evaluator.setTraining(false)
    // The sum over processes writes every process's rows into each one's embedding gradient.
    if group.size > 1 { model.parameters.stopTrackingRows() }
    optimizerState = try OptimizerState(kind: options.optimizer, count: model.parameters.count)
    average = options.averaging ? try ParameterAverage(count: model.parameters.count) : nil
    model.activationRegularization = options.activationRegularization
    model.temporalActivationRegularization = options.temporalActivationRegularization
    state = RunState(learningRate: options.learningRate, generator: model.generator)
  }

  /// Continues the run saved in `checkpoint` exactly where it stopped, with `group`'s processes
  /// (their number may differ from the run's before, wherever the batch divides).
  public convenience init(resuming checkpoint: Checkpoint, group: ProcessGroup = .single) throws {
    guard let generator = checkpoint.state.restoredGenerator() else {
      throw ConfigurationError("the checkpoint's generator state is malformed")
    }
    try self.init(
      config: checkpoint.config, options: checkpoint.training, vocabulary: checkpoint.vocabulary, group: group)
    model.parameters.values.pointer.update(from: checkpoint.parameters, count: checkpoint.parameters.count)
    model.generator = generator
    // A best.safetensors holds no carried state: training then continues from a zero state, which
    // is not the uninterrupted run (``resumedWithCarriedState`` says which case this is).
    if !checkpoint.recurrentStates.isEmpty {
      let cell = config.cell
      guard checkpoint.recurrentStates.count == config.layers,
        checkpoint.recurrentStates.allSatisfy({
          $0.count == cell.stateNames.count && $0.allSatisfy { $0.count == options.batchSize * config.hiddenSize }
        })
      else {
        throw ConfigurationError(
          "the checkpoint's carried state does not fit \(config.layers) \(cell) layers of \(cell.stateNames.count) × (N \(options.batchSize), H \(config.hiddenSize))"
        )
      }
      // The checkpoint holds every stream's state, (N, H); this process takes its streams'.
      let (h, rows) = (config.hiddenSize, trainingStreams.range)
      model.setCarriedState(
        checkpoint.recurrentStates.map { $0.map { Array($0[(rows.lowerBound * h)..<(rows.upperBound * h)]) } })
    }
    // Adam's and RMSprop's moments and NT-ASGD's average: without them (a best.safetensors)
    // they start again from zero.
    let optimizerBuffers = optimizerState.savedBuffers(
      average: average, averaging: checkpoint.state.averagedSteps != nil)
    if !checkpoint.optimizerState.isEmpty {
      guard checkpoint.optimizerState.count == optimizerBuffers.count,
        checkpoint.optimizerState.allSatisfy({ $0.count == model.parameters.count })
      else { throw ConfigurationError("the checkpoint's \(options.optimizer) state does not fit the parameters") }
      for (buffer, values) in zip(optimizerBuffers, checkpoint.optimizerState) {
        buffer.pointer.update(from: values, count: values.count)
      }
      optimizerState.steps = checkpoint.state.optimizerSteps ?? 0
      average?.count = checkpoint.state.averagedSteps ?? 0
    }
    resumedWithCarriedState =
      !checkpoint.recurrentStates.isEmpty && checkpoint.optimizerState.count == optimizerBuffers.count
    state = checkpoint.state
  }

  /// Whether this trainer resumed a run together with its carried recurrent state and its
  /// optimizer's moments (from a `last.safetensors`): only then does it continue exactly as the
  /// uninterrupted run would.
  public private(set) var resumedWithCarriedState = false

  /// Makes SIGINT (Ctrl-C) stop training after the current batch, save, and still evaluate
  /// (``RunLoop/stopOnInterrupt()``, which every task's run obeys).
  public static func stopOnInterrupt() { RunLoop.stopOnInterrupt() }

  /// Asks the run under way (or the next one) to stop after its current batch, save and
  /// evaluate, as Ctrl-C does; the request is used up by that stop. Safe from any thread.
  public func requestStop() { stopRequested.store(true, ordering: .relaxed) }

  /// Perplexity of the current parameters on `corpus` (state reset first); with several
  /// processes each evaluates its share of the streams and every process gets the whole
  /// corpus's perplexity (all must call it).
  public func evaluate(_ corpus: [Int32]) -> Double {
    let share = evaluationLoss(of: evaluator, on: corpus, steps: options.steps, streams: evaluationStreams)
    var sums = [share.lossSum, Double(share.tokens)]
    group.sum(&sums)
    return exp(sums[0] / sums[1])
  }

  /// Every stream's carried state, (N, H) per layer and state, bottom first: this process's own,
  /// or with several processes theirs gathered in stream order (all must call it).
  private func allCarriedState() -> [[[Float]]] {
    guard group.size > 1 else { return model.carriedState }
    return model.carriedState.map { $0.map { group.allGather($0) } }
  }

  /// The carried state gathered for the next save (``prepareToSave()``), with several processes.
  private var gatheredState: [[[Float]]]?

  /// The current run as a checkpoint (with several processes, all must call it).
  public func checkpoint(includingCarriedState: Bool = true) -> Checkpoint {
    Checkpoint(
      config: config, training: options, state: savedState, vocabulary: vocabulary,
      parameters: model.parameters.values.array,
      recurrentStates: includingCarriedState ? allCarriedState() : [],
      optimizerState: includingCarriedState
        ? optimizerState.savedBuffers(average: average, averaging: state.averagedSteps != nil).map(\.array) : [])
  }

  /// The run's state with the generator where it stands now, as checkpoints store it.
  private var savedState: RunState { saved(state) }

  /// `state` with the generator and optimizer count where they stand now.
  private func saved(_ state: RunState) -> RunState {
    var s = state
    s.setGenerator(model.generator)
    s.optimizerSteps = options.optimizer == .sgd ? nil : optimizerState.steps
    return s
  }

  /// Writes ``checkpoint(includingCarriedState:)`` of the run in `state` to `path` straight from
  /// the live parameters.
  private func save(to path: String, state: RunState, includingCarriedState: Bool) throws {
    try Checkpoint.write(
      to: path, config: config, training: options, state: saved(state), vocabulary: vocabulary,
      parameters: model.parameters.values.bufferPointer,
      recurrentStates: includingCarriedState ? gatheredState ?? model.carriedState : [],
      optimizerState: includingCarriedState
        ? optimizerState.savedBuffers(average: average, averaging: state.averagedSteps != nil).map(\.bufferPointer)
        : [])
  }

  /// Forward and backward over a (T, N) batch of `steps` time steps into the parameters'
  /// gradients (zeroed before): the mean loss per token (N: this process's streams).
  private func lossAndGradient(inputs: UnsafePointer<Int32>, targets: UnsafePointer<Int32>, steps: Int) -> Double {
    model.loss(inputs: inputs, targets: targets, steps: steps, gradient: true) / Double(model.batchSize * steps)
  }

  /// One training step on a (T, N) batch as the run loop takes it: zero the gradients, forward
  /// and backward, then the loop's update (clipping, the optimizer, NT-ASGD's average) at the
  /// current learning rate times `learningRateFactor`. Returns the mean loss; when it is not
  /// finite the parameters are left as they were. (For benchmarks; runs go through
  /// ``run(_:limits:)``.)
  package func trainingStep(
    inputs: UnsafePointer<Int32>, targets: UnsafePointer<Int32>, steps: Int? = nil, learningRateFactor: Double = 1
  ) -> Double {
    let steps = steps ?? options.steps
    model.parameters.zeroGradients()
    let loss = lossAndGradient(inputs: inputs, targets: targets, steps: steps)
    guard loss.isFinite else { return loss }
    model.profiler.time("clip + update") {
      RunLoop.update(
        model.parameters, optimizer: optimizerState, average: average, state: &state,
        learningRate: state.learningRate * learningRateFactor * Double(steps) / Double(options.steps),
        options: options)
    }
    return loss
  }

  /// Takes `dataset` as the data of the run about to start: its batches (the loop sets their
  /// position from the run's state, ``dataPosition``) and their buffers; training mode on.
  package func begin(_ dataset: Dataset) throws {
    guard dataset.vocabulary.words == vocabulary else {
      throw TrainingError.incompatibleResume("the data's vocabulary differs from the model's")
    }
    let batches = try TrainingBatches(
      corpus: dataset.train, batchSize: options.batchSize, steps: options.steps, streams: trainingStreams)
    (self.dataset, self.batches) = (dataset, batches)
    inputs = [Int32](
      repeating: 0, count: (options.variableLength ? batches.maxWindow : options.steps) * trainingStreams.count)
    targets = inputs
    model.setTraining(true)
  }

  /// Trains until `options.epochs` epochs are complete, the budget plan is reached, early
  /// stopping ends the run or a limit of `limits` is reached, then reports the test perplexity
  /// of the best parameters (by validation). See ``RunLoop``.
  public func run(_ dataset: Dataset, limits: RunLimits = RunLimits()) throws -> TrainingReport {
    try begin(dataset)
    defer { (self.dataset, self.batches, inputs, targets) = (nil, nil, [], []) }
    var state = self.state
    defer { self.state = state }
    let r = try RunLoop.fit(
      self, state: &state, limits: limits, observers: observers,
      stopRequested: { stopRequested.exchange(false, ordering: .relaxed) })
    var report = TrainingReport()
    report.epochs = r.epochs
    report.testPerplexity = r.test.score
    report.bestValidPerplexity = state.bestScore
    report.tokensPerSecond = r.examplesPerSecond
    report.seconds = r.seconds
    report.stoppedEarly = r.stoppedEarly
    return report
  }
}

extension Trainer: TrainingTask {
  package var labels: RunLabels { .languageModel }
  package var parameters: ParameterStore<Float> { model.parameters }
  package var profiler: Profiler? { model.profiler }
  package var batchesPerEpoch: Int { batches!.batchesPerEpoch }
  package var stepsPerEpoch: Int { batches!.stepsPerEpoch }
  package var stepsPerBatch: Int { options.steps }
  package var variableSteps: Bool { options.variableLength }
  package var examplesPerStep: Int { options.batchSize }
  package var evaluationExamples: (valid: Int, test: Int) { (dataset!.valid.count, dataset!.test.count) }
  package var trainingExamples: Int { dataset!.train.count }
  package var dataFingerprint: String {
    var f = DataFingerprint()
    f.add(dataset!.train)
    return f.value
  }
  package var dataPosition: Int {
    get { batches!.timeIndex }
    set { batches!.timeIndex = newValue }
  }
  package var restoresBestWhenFinished: Bool { false }

  package func beginEpoch(_ epoch: Int) {}

  package func trainingBatch(_ batch: Int, stepsDone: Int) -> (result: BatchResult, steps: Int) {
    let window = batches!.windowLength(
      variable: options.variableLength, stepsDone: stepsDone, generator: &model.generator)
    let loss = inputs.withUnsafeMutableBufferPointer { ip in
      targets.withUnsafeMutableBufferPointer { tp in
        batches!.next(inputs: ip.baseAddress!, targets: tp.baseAddress!, steps: window)
        return lossAndGradient(inputs: ip.baseAddress!, targets: tp.baseAddress!, steps: window)
      }
    }
    // This process's share: the mean over its streams, weighted by their part of the batch;
    // the batch counts once (on rank 0).
    let part = Double(trainingStreams.count) / Double(trainingStreams.total)
    return (
      BatchResult(
        lossSum: loss * part, correct: 0, count: group.isRoot ? 1 : 0, examples: window * trainingStreams.count),
      window
    )
  }

  package func evaluate(_ split: EvaluationSplit) -> Evaluation {
    Evaluation(score: evaluate(split == .valid ? dataset!.valid : dataset!.test))
  }

  package func record(epoch: Int, state: RunState, stepsDone: Int, valid: Evaluation) -> EpochRecord {
    EpochRecord(
      epoch: epoch, learningRate: state.learningRate,
      trainPerplexity: exp(state.epochLossSum / Double(max(state.batchesInEpoch, 1))), validPerplexity: valid.score,
      tokensPerSecond: Double(stepsDone * options.batchSize) / max(state.epochSeconds, 1e-9),
      elapsedSeconds: state.trainingSeconds)
  }

  package func prepareToSave() { gatheredState = group.size > 1 ? allCarriedState() : nil }

  package func save(to path: String, best: Bool, state: RunState) throws {
    try save(to: path, state: state, includingCarriedState: !best)
  }

  package func bestParameters(at path: String) throws -> [Float] { try Checkpoint.read(from: path).parameters }

  package func finalLine(test: Evaluation, usedBest: Bool, state: RunState, seconds: Double) -> String {
    String(
      format: "| end of training | test ppl %8.2f (%@) | %.0f tok/s | %.1f s |", test.score,
      usedBest ? "best by validation" : "current parameters",
      Double(state.trainedExamples) / max(state.trainingSeconds, 1e-9), seconds)
  }
}
