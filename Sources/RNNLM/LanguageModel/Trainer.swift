import Foundation
import Synchronization

/// Why a run stopped early.
public enum TrainingError: Error, CustomStringConvertible {
  /// The loss became NaN or infinite; `kept` is the last good checkpoint, if any.
  case diverged(epoch: Int, batch: Int, loss: Double, kept: String?)
  /// A checkpoint does not fit the data it is resumed on.
  case incompatibleResume(String)

  /// A one-line explanation.
  public var description: String {
    switch self {
    case .diverged(let epoch, let batch, let loss, let kept):
      let keptText = kept.map { " The last good checkpoint is \($0)." } ?? ""
      return "training diverged: loss \(loss) at epoch \(epoch), batch \(batch). "
        + "Lower the learning rate (--lr) or clip harder (--clip).\(keptText)"
    case .incompatibleResume(let reason): return "cannot resume: \(reason)"
    }
  }
}

/// Limits of one invocation of ``Trainer/run(_:limits:)``; the run can be resumed after any.
public struct RunLimits: Sendable {
  /// Stop after this many minutes of wall time (checked after every batch).
  public var maxMinutes: Double?
  /// Stop after this many epochs completed in this invocation.
  public var maxEpochs: Int?
  /// Stop after this many training batches in this invocation.
  public var maxBatches: Int?
  /// Directory for `best.safetensors`, `last.safetensors`, `metrics.csv` and `curve.svg`;
  /// nil keeps the best parameters in memory only.
  public var saveDirectory: String?

  /// No limits, nothing saved.
  public init(maxMinutes: Double? = nil, maxEpochs: Int? = nil, maxBatches: Int? = nil, saveDirectory: String? = nil) {
    self.maxMinutes = maxMinutes
    self.maxEpochs = maxEpochs
    self.maxBatches = maxBatches
    self.saveDirectory = saveDirectory
  }
}

extension RunLimits {
  /// Why a run should stop after a training batch, or nil: Ctrl-C (see
  /// ``Trainer/stopOnInterrupt()``), a stop request (`stopRequested` uses it up), the time
  /// budget, or the batch budget (which an epoch's last batch leaves to the epoch's end).
  package func stopReasonAfterBatch(
    start: Date, batchesThisCall: Int, epochDone: Bool, stopRequested: () -> Bool
  ) -> String? {
    if interruptRequested.load(ordering: .relaxed) { return "interrupted (Ctrl-C)" }
    if stopRequested() { return "stop requested" }
    if let m = maxMinutes, Date().timeIntervalSince(start) >= 60 * m { return "time budget of \(m) minutes reached" }
    if let b = maxBatches, batchesThisCall >= b, !epochDone { return "batch budget of \(b) reached" }
    return nil
  }

  /// Why a run with epochs left should stop after an epoch, or nil: the epoch or time budget.
  package func stopReasonAfterEpoch(start: Date, epochsThisCall: Int) -> String? {
    if let m = maxEpochs, epochsThisCall >= m { return "epoch budget of \(m) reached" }
    if let m = maxMinutes, Date().timeIntervalSince(start) >= 60 * m { return "time budget of \(m) minutes reached" }
    return nil
  }
}

/// What a run (or one invocation of a resumed run) measured.
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

/// Progress of the epoch under way, reported after every batch.
public struct BatchProgress: Sendable {
  /// 1-based epoch and batch, batches per epoch.
  public var epoch: Int, batch: Int, batchesPerEpoch: Int
  /// The learning rate of the batch (with the cosine schedule applied).
  public var learningRate: Double
  /// Mean loss over the batches since the last log line.
  public var intervalLoss: Double
  /// Batches in that interval.
  public var intervalBatches: Int
  /// Milliseconds per batch and tokens per second over that interval.
  public var msPerBatch: Double, tokensPerSecond: Double
  /// Seconds spent in the epoch so far, and in the whole run so far (training steps).
  public var epochSeconds: Double, runSeconds: Double
  /// Whether a log line is due (every log interval and at the epoch's last batch).
  public var logLine: Bool
}

/// Receives a run's progress (the console, a metrics file, a test).
public protocol TrainingObserver: AnyObject {
  /// After every batch.
  func batchFinished(_ progress: BatchProgress)
  /// After every epoch's validation.
  func epochFinished(_ record: EpochRecord, improved: Bool)
  /// Anything else worth a line (saving, stopping, the final result).
  func note(_ message: String)
}

/// Set by SIGINT (see ``Trainer/stopOnInterrupt()``); the trainer stops after the current batch.
let interruptRequested = Atomic<Bool>(false)

/// Trains a recurrent language model in `Float`: truncated BPTT, SGD, clipping, the
/// validation-driven schedule, checkpoints and exact resumption.
public final class Trainer {
  /// The model's shape.
  public let config: ModelConfig
  /// The run's hyper-parameters.
  public let options: TrainingOptions
  /// Words in id order (stored in checkpoints).
  public let vocabulary: [String]
  /// The model trained (N = options.batchSize, dropout on).
  package let model: LanguageModel<Float>
  /// The same parameters, for evaluation (N = options.evalBatchSize, dropout off), sharing the
  /// training model's scratch buffers.
  package let evaluator: LanguageModel<Float>
  /// The optimizer's moments (Adam, RMSprop) and update count.
  package let optimizerState: OptimizerState<Float>
  /// NT-ASGD's average of the parameters (with `averaging`; in use once state.averagedSteps is
  /// set).
  package let average: ParameterAverage<Float>?
  /// The current parameters while the average stands in for them in an evaluation.
  private var parked: Buffer<Float>?
  /// Where the run stands.
  public private(set) var state: RunState
  /// Who hears about progress.
  public var observers: [TrainingObserver] = []
  private var bestInMemory: [Float]?
  private let stopRequested = Atomic<Bool>(false)

  /// A fresh run: weights initialised from `options.seed`.
  public init(config: ModelConfig, options: TrainingOptions, vocabulary: [String]) throws {
    try options.validate()
    guard vocabulary.count == config.vocabularySize else {
      throw ConfigurationError("\(vocabulary.count) words for a vocabulary size of \(config.vocabularySize)")
    }
    self.config = config
    self.options = options
    self.vocabulary = vocabulary
    var generator = SeededGenerator(seed: options.seed)
    // Variable windows reach T + 20 steps (TrainingBatches.maxWindow).
    model = try LanguageModel(
      config: config, batchSize: options.batchSize,
      maxSteps: options.variableLength ? options.steps + 20 : options.steps, generator: &generator)
    // Evaluation runs between training steps on the same thread: it borrows the training
    // model's scratch buffers (they are large enough unless the evaluation batch is larger).
    evaluator = try LanguageModel(
      config: config, parameters: model.parameters, batchSize: options.evalBatchSize, maxSteps: options.steps,
      scratch: model.scratch)
    evaluator.setTraining(false)
    optimizerState = try OptimizerState(kind: options.optimizer, count: model.parameters.count)
    average = options.averaging ? try ParameterAverage(count: model.parameters.count) : nil
    model.activationRegularization = options.activationRegularization
    model.temporalActivationRegularization = options.temporalActivationRegularization
    state = RunState(learningRate: options.learningRate, generator: model.generator)
  }

  /// Continues the run saved in `checkpoint` exactly where it stopped.
  public convenience init(resuming checkpoint: Checkpoint) throws {
    guard let generator = checkpoint.state.restoredGenerator() else {
      throw ConfigurationError("the checkpoint's generator state is malformed")
    }
    try self.init(config: checkpoint.config, options: checkpoint.training, vocabulary: checkpoint.vocabulary)
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
      model.setCarriedState(checkpoint.recurrentStates)
    }
    // Adam's and RMSprop's moments and NT-ASGD's average: without them (a best.safetensors)
    // they start again from zero.
    let optimizerBuffers = optimizerBuffers(averaging: checkpoint.state.averagedSteps != nil)
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

  /// Makes SIGINT (Ctrl-C) stop training after the current batch, save, and still evaluate;
  /// a second Ctrl-C ends the process at once.
  public static func stopOnInterrupt() {
    interruptRequested.store(false, ordering: .relaxed)
    signal(SIGINT) { _ in
      interruptRequested.store(true, ordering: .relaxed)
      signal(SIGINT, SIG_DFL)
    }
  }

  /// Asks the run under way (or the next one) to stop after its current batch, save and
  /// evaluate, as Ctrl-C does; the request is used up by that stop. Safe from any thread.
  public func requestStop() { stopRequested.store(true, ordering: .relaxed) }

  /// Perplexity of the current parameters on `corpus` (state reset first).
  public func evaluate(_ corpus: [Int32]) -> Double {
    perplexity(of: evaluator, on: corpus, steps: options.steps).perplexity
  }

  /// The current run as a checkpoint.
  public func checkpoint(includingCarriedState: Bool = true) -> Checkpoint {
    Checkpoint(
      config: config, training: options, state: savedState, vocabulary: vocabulary,
      parameters: model.parameters.values.array,
      recurrentStates: includingCarriedState ? model.carriedState : [],
      optimizerState: includingCarriedState ? optimizerBuffers(averaging: state.averagedSteps != nil).map(\.array) : [])
  }

  /// The buffers saved as the optimizer's state: its moments, then the average when averaging.
  private func optimizerBuffers(averaging: Bool) -> [Buffer<Float>] {
    optimizerState.buffers + (averaging ? average.map { [$0.values] } ?? [] : [])
  }

  /// Runs `body` with NT-ASGD's average in place of the parameters, once averaging has begun;
  /// the parameters are back afterwards.
  private func withAveragedParameters<R>(_ body: () throws -> R) throws -> R {
    guard let average, state.averagedSteps != nil, average.count > 0 else { return try body() }
    let values = model.parameters.values
    if parked == nil { parked = try Buffer(count: values.count) }
    parked!.pointer.update(from: values.pointer, count: values.count)
    values.pointer.update(from: average.values.pointer, count: values.count)
    defer { values.pointer.update(from: parked!.pointer, count: values.count) }
    return try body()
  }

  /// The run's state with the generator where it stands now, as checkpoints store it.
  private var savedState: RunState {
    var s = state
    s.setGenerator(model.generator)
    s.optimizerSteps = options.optimizer == .sgd ? nil : optimizerState.steps
    return s
  }

  /// Writes ``checkpoint(includingCarriedState:)`` to `path` straight from the live parameters.
  private func save(to path: String, includingCarriedState: Bool = true) throws {
    try Checkpoint.write(
      to: path, config: config, training: options, state: savedState, vocabulary: vocabulary,
      parameters: UnsafeBufferPointer(start: model.parameters.values.pointer, count: model.parameters.count),
      recurrentStates: includingCarriedState ? model.carriedState : [],
      optimizerState: includingCarriedState
        ? optimizerBuffers(averaging: state.averagedSteps != nil).map {
          UnsafeBufferPointer(start: $0.pointer, count: $0.count)
        } : [])
  }

  /// One training step on a (T, N) batch: zero the gradients, forward and backward, clip, and
  /// the optimizer's update at the current learning rate. Returns the mean loss; when it is not finite the
  /// parameters are left as they were.
  package func trainingStep(
    inputs: UnsafePointer<Int32>, targets: UnsafePointer<Int32>, steps: Int? = nil, learningRateFactor: Double = 1
  ) -> Double {
    let steps = steps ?? options.steps
    model.parameters.zeroGradients()
    let loss =
      model.loss(inputs: inputs, targets: targets, steps: steps, gradient: true)
      / Double(options.batchSize * steps)
    guard loss.isFinite else { return loss }
    _ = model.profiler.time("clip + update") {
      // A window of another length than T takes a learning rate in proportion (variable BPTT).
      Optimizer.step(
        model.parameters, state: optimizerState,
        learningRate: state.learningRate * learningRateFactor * Double(steps) / Double(options.steps),
        maxNorm: options.clip,
        weightDecay: options.weightDecay)
    }
    if let average, state.averagedSteps != nil {
      average.add(model.parameters.values.pointer)
      state.averagedSteps = average.count
    }
    return loss
  }

  private func notify(_ message: String) {
    for o in observers { o.note(message) }
  }

  /// Trains until `options.epochs` epochs are complete or a limit of `limits` is reached,
  /// then reports the test perplexity of the best parameters (by validation).
  public func run(_ dataset: Dataset, limits: RunLimits = RunLimits()) throws -> TrainingReport {
    guard dataset.vocabulary.words == vocabulary else {
      throw TrainingError.incompatibleResume("the data's vocabulary differs from the model's")
    }
    if options.cosineToBudget, state.plannedSteps == nil, limits.maxMinutes == nil {
      throw ConfigurationError("a cosine schedule planned from the time budget needs a time budget (--max-minutes)")
    }
    let start = Date()
    var batches = try TrainingBatches(corpus: dataset.train, batchSize: options.batchSize, steps: options.steps)
    batches.timeIndex = state.timeIndex
    var inputs = [Int32](
      repeating: 0, count: (options.variableLength ? batches.maxWindow : options.steps) * options.batchSize)
    var targets = inputs
    let perEpoch = batches.batchesPerEpoch
    if let directory = limits.saveDirectory { try prepareRunDirectory(directory) }
    let paths = limits.saveDirectory.map { dir in
      (
        best: (dir as NSString).appendingPathComponent("best.safetensors"),
        last: (dir as NSString).appendingPathComponent("last.safetensors")
      )
    }
    /// The checkpoint a diverging run leaves, named in its error.
    func lastGood() -> String? { paths.flatMap { FileManager.default.fileExists(atPath: $0.last) ? $0.last : nil } }
    var epochsThisCall = 0
    var batchesThisCall = 0
    var stopReason: String?
    // The speed a budget-planned schedule is planned from: this call's batches after its first
    // until the plan is made, then those since (the first batches can run slower than the rest);
    // and since the plan's last check (a machine that slows down shows there first).
    var (calibrationSeconds, calibrationSteps) = (0.0, 0)
    var (recentSeconds, recentSteps) = (0.0, 0)
    model.setTraining(true)
    // Steps of the epoch done per stream (the batches' own count with fixed windows), and of the run.
    func stepsDone() -> Int { state.stepsInEpoch ?? state.batchesInEpoch * options.steps }
    func runSteps() -> Int { state.epochsCompleted * batches.stepsPerEpoch + stepsDone() }
    /// Whether a budget-planned schedule has reached its end.
    func planReached() -> Bool { state.plannedSteps.map { runSteps() >= $0 } ?? false }
    // The measured cost of this call's epoch ends (validation, checkpoints, progress files).
    var (epochEndSeconds, epochEnds) = (0.0, 0)
    // Only the call that made a budget plan checks it against its budget; a resumed run follows it.
    var plannedThisCall = false
    /// A budget plan's costs: an epoch end's and the final test's, measured once an epoch has
    /// ended in this call, estimated from the training speed before.
    func planCosts(secondsPerStep: Double) -> (epochEnd: Double, final: Double) {
      func estimate(_ tokens: Int) -> Double {
        TrainingOptions.estimatedEvaluationSeconds(
          tokens: tokens, secondsPerStep: secondsPerStep, trainTokensPerStep: options.batchSize)
      }
      guard epochEnds > 0 else { return (estimate(dataset.valid.count), estimate(dataset.test.count)) }
      let epochEnd = epochEndSeconds / Double(epochEnds)
      return (epochEnd, epochEnd * max(1, Double(dataset.test.count) / Double(max(dataset.valid.count, 1))))
    }
    /// The seconds left of a `minutes` budget that began at `start`.
    func secondsLeft(of minutes: Double) -> Double { 60 * minutes - Date().timeIntervalSince(start) }
    /// The fraction of a budget-planned cosine done after `steps` (nil before it is planned).
    func budgetFraction(_ steps: Int) -> Double? {
      state.plannedSteps.map {
        TrainingOptions.budgetCosineFraction(steps: steps, planned: $0, anchor: state.planAnchor)
      }
    }
    /// Re-plans this call's budget plan: shorter if it no longer fits the time left, longer
    /// (before its last tenth) if it leaves time unused; the cosine continues from the fraction it
    /// had reached.
    func checkPlan() {
      guard plannedThisCall, let planned = state.plannedSteps, let minutes = limits.maxMinutes,
        calibrationSteps > 0
      else { return }
      // The slower of the call's mean speed and the speed since the last check.
      var secondsPerStep = calibrationSeconds / Double(calibrationSteps)
      if recentSteps > 0 { secondsPerStep = max(secondsPerStep, recentSeconds / Double(recentSteps)) }
      (recentSeconds, recentSteps) = (0, 0)
      let costs = planCosts(secondsPerStep: secondsPerStep)
      guard
        let replanned = TrainingOptions.replannedSteps(
          planned: planned, remainingSeconds: secondsLeft(of: minutes),
          secondsPerStep: secondsPerStep, stepsDone: runSteps(), stepsPerEpoch: batches.stepsPerEpoch,
          maxSteps: options.epochs * batches.stepsPerEpoch, secondsPerEpochEnd: costs.epochEnd,
          finalSeconds: costs.final),
        let fraction = budgetFraction(runSteps())
      else { return }
      state.planAnchor = PlanAnchor(steps: runSteps(), fraction: fraction)
      state.plannedSteps = replanned
      notify(
        String(
          format:
            "cosine schedule re-planned to end after %d steps per stream (%.2f epochs): at %.1f ms per step and %.2f s per epoch end the plan of %d ",
          replanned, Double(replanned) / Double(batches.stepsPerEpoch), 1000 * secondsPerStep, costs.epochEnd, planned)
          + (replanned > planned ? "left time unused" : "no longer fit the budget"))
    }

    training: while state.epochsCompleted < options.epochs && !planReached() {
      let epoch = state.epochsCompleted + 1
      var intervalLoss = 0.0
      var intervalBatches = 0
      var intervalTokens = 0
      var intervalStart = Date()
      while stepsDone() < batches.stepsPerEpoch && !planReached() {
        let batch = state.batchesInEpoch + 1
        let stepStart = Date()
        let window = batches.windowLength(
          variable: options.variableLength, stepsDone: stepsDone(), generator: &model.generator)
        // Cosine annealing over the planned run, by steps done (deterministic, so resumable); a
        // budget-planned schedule runs at the full rate until it is planned.
        var factor = 1.0
        if options.cosineSchedule {
          factor = TrainingOptions.cosineFactor(Double(runSteps()) / Double(options.epochs * batches.stepsPerEpoch))
        } else if options.cosineToBudget, let fraction = budgetFraction(runSteps()) {
          factor = TrainingOptions.cosineFactor(fraction)
        }
        let loss = inputs.withUnsafeMutableBufferPointer { ip in
          targets.withUnsafeMutableBufferPointer { tp in
            batches.next(inputs: ip.baseAddress!, targets: tp.baseAddress!, steps: window)
            return trainingStep(
              inputs: ip.baseAddress!, targets: tp.baseAddress!, steps: window, learningRateFactor: factor)
          }
        }
        guard loss.isFinite else {
          throw TrainingError.diverged(epoch: epoch, batch: batch, loss: loss, kept: lastGood())
        }
        let seconds = Date().timeIntervalSince(stepStart)
        if batchesThisCall > 0 {
          (calibrationSeconds, calibrationSteps) = (calibrationSeconds + seconds, calibrationSteps + window)
          (recentSeconds, recentSteps) = (recentSeconds + seconds, recentSteps + window)
        }
        state.epochSeconds += seconds
        state.trainingSeconds += seconds
        state.trainedTokens += window * options.batchSize
        state.timeIndex = batches.timeIndex
        state.batchesInEpoch = batch
        if options.variableLength { state.stepsInEpoch = stepsDone() + window }
        let epochDone = stepsDone() >= batches.stepsPerEpoch
        if options.cosineToBudget, state.plannedSteps == nil, let minutes = limits.maxMinutes, calibrationSteps > 0,
          state.epochsCompleted * perEpoch + state.batchesInEpoch >= TrainingOptions.budgetCalibrationBatches
        {
          let secondsPerStep = calibrationSeconds / Double(calibrationSteps)
          let costs = planCosts(secondsPerStep: secondsPerStep)
          let planned = TrainingOptions.plannedSteps(
            remainingSeconds: secondsLeft(of: minutes), secondsPerStep: secondsPerStep,
            stepsDone: runSteps(), stepsPerEpoch: batches.stepsPerEpoch,
            maxSteps: options.epochs * batches.stepsPerEpoch,
            secondsPerEpochEnd: costs.epochEnd, finalSeconds: costs.final)
          state.plannedSteps = planned
          plannedThisCall = true
          (calibrationSeconds, calibrationSteps, recentSeconds, recentSteps) = (0, 0, 0, 0)
          notify(
            String(
              format:
                "cosine schedule planned to end after %d steps per stream (%.2f epochs), at %.1f ms per step, within the %g-minute budget",
              planned, Double(planned) / Double(batches.stepsPerEpoch), 1000 * secondsPerStep, minutes))
        }
        state.epochLossSum += loss
        intervalLoss += loss
        intervalBatches += 1
        intervalTokens += window * options.batchSize
        batchesThisCall += 1
        let logLine = batch % options.logInterval == 0 || epochDone
        if logLine && !epochDone { checkPlan() }
        let elapsed = Date().timeIntervalSince(intervalStart)
        let progress = BatchProgress(
          epoch: epoch, batch: batch, batchesPerEpoch: perEpoch, learningRate: state.learningRate * factor,
          intervalLoss: intervalLoss / Double(intervalBatches), intervalBatches: intervalBatches,
          msPerBatch: 1000 * elapsed / Double(intervalBatches),
          tokensPerSecond: Double(intervalTokens) / elapsed, epochSeconds: state.epochSeconds,
          runSeconds: state.trainingSeconds, logLine: logLine)
        for o in observers { o.batchFinished(progress) }
        if logLine {
          intervalLoss = 0
          intervalBatches = 0
          intervalTokens = 0
          intervalStart = Date()
        }
        stopReason = limits.stopReasonAfterBatch(
          start: start, batchesThisCall: batchesThisCall, epochDone: epochDone,
          stopRequested: { stopRequested.exchange(false, ordering: .relaxed) })
        if stopReason != nil { break training }
      }

      // End of epoch: validate, keep the best, decay the learning rate when it did not improve.
      let epochEndStart = Date()
      let train = exp(state.epochLossSum / Double(max(state.batchesInEpoch, 1)))
      let valid = try withAveragedParameters { evaluate(dataset.valid) }
      guard valid.isFinite else {
        throw TrainingError.diverged(epoch: epoch, batch: perEpoch, loss: valid, kept: lastGood())
      }
      // NT-ASGD's trigger: validation worse than the best of all epochs but the last `nonmono`.
      let previous = state.history.map(\.validPerplexity)
      let startAveraging =
        options.averaging && state.averagedSteps == nil && previous.count > options.nonmono
        && valid > previous[..<(previous.count - options.nonmono)].min()!
      let record = EpochRecord(
        epoch: epoch, learningRate: state.learningRate, trainPerplexity: train, validPerplexity: valid,
        tokensPerSecond: Double(stepsDone() * options.batchSize) / max(state.epochSeconds, 1e-9),
        elapsedSeconds: state.trainingSeconds)
      state.history.append(record)
      state.epochsCompleted = epoch
      state.batchesInEpoch = 0
      state.stepsInEpoch = nil
      state.epochLossSum = 0
      state.epochSeconds = 0
      let improved = state.recordValidation(valid, decay: options.learningRateDecay)
      if improved {
        try withAveragedParameters {
          if let paths {
            try save(to: paths.best, includingCarriedState: false)
          } else {
            bestInMemory = model.parameters.values.array
          }
        }
      }
      if startAveraging {
        state.averagedSteps = 0
        average?.count = 0
        notify("NT-ASGD: validation \(valid) is not better than \(options.nonmono) epochs ago: averaging from now on")
      }
      for o in observers { o.epochFinished(record, improved: improved) }
      if state.learningRate != record.learningRate {
        notify("validation did not improve: learning rate \(record.learningRate) → \(state.learningRate)")
      }
      if let paths { try save(to: paths.last) }
      epochsThisCall += 1
      (epochEndSeconds, epochEnds) = (epochEndSeconds + Date().timeIntervalSince(epochEndStart), epochEnds + 1)
      checkPlan()
      if state.epochsCompleted < options.epochs, !planReached(),
        let reason = limits.stopReasonAfterEpoch(start: start, epochsThisCall: epochsThisCall)
      {
        stopReason = reason
        break
      }
    }

    if let stopReason, let paths {
      // A stop at an epoch boundary was saved with the epoch; only a stop inside one is new.
      if state.batchesInEpoch > 0 { try save(to: paths.last) }
      notify("stopped: \(stopReason); saved \(paths.last) (resume with --resume \(paths.last))")
    } else if let stopReason {
      notify("stopped: \(stopReason)")
    }

    // Test perplexity of the best parameters; the current ones are restored afterwards so that
    // a resumed run continues from where it was, not from the best.
    var best: [Float]? = bestInMemory
    if best == nil, let paths, FileManager.default.fileExists(atPath: paths.best) {
      best = try Checkpoint.read(from: paths.best).parameters
    }
    var report = TrainingReport()
    if let best {
      let current = model.parameters.values.array
      model.parameters.values.pointer.update(from: best, count: best.count)
      report.testPerplexity = evaluate(dataset.test)
      model.parameters.values.pointer.update(from: current, count: current.count)
    } else {
      report.testPerplexity = evaluate(dataset.test)
    }
    report.epochs = state.history
    report.bestValidPerplexity = state.bestValidPerplexity
    report.tokensPerSecond = Double(state.trainedTokens) / max(state.trainingSeconds, 1e-9)
    report.seconds = Date().timeIntervalSince(start)
    report.stoppedEarly = stopReason
    notify(
      String(
        format: "| end of training | test ppl %8.2f (%@) | %.0f tok/s | %.1f s |", report.testPerplexity,
        best == nil ? "current parameters" : "best by validation", report.tokensPerSecond, report.seconds))
    return report
  }
}
