import Foundation
import Synchronization

/// Why a run stopped early.
public enum TrainingError: Error, CustomStringConvertible {
  /// The loss became NaN or infinite; `kept` is the last good checkpoint, if any.
  case diverged(epoch: Int, batch: Int, loss: Double, kept: String?)
  /// A checkpoint does not fit the data it is resumed on.
  case incompatibleResume(String)
  /// The processes of a data-parallel run do not hold the same run (settings, data or
  /// parameters), at its start or after an epoch.
  case processesDisagree(String)

  /// A one-line explanation.
  public var description: String {
    switch self {
    case .diverged(let epoch, let batch, let loss, let kept):
      let keptText = kept.map { " The last good checkpoint is \($0)." } ?? ""
      return "training diverged: loss \(loss) at epoch \(epoch), batch \(batch). "
        + "Lower the learning rate (--lr) or clip harder (--clip).\(keptText)"
    case .incompatibleResume(let reason): return "cannot resume: \(reason)"
    case .processesDisagree(let reason): return reason
    }
  }
}

/// Limits of one invocation of a run (``Trainer/run(_:limits:)``, ``ClassifierTrainer/run(_:limits:)``,
/// ``Seq2SeqTrainer/run(_:limits:)``); the run can be resumed after any.
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
  /// With a save directory, also write `last.safetensors` in the middle of an epoch once this
  /// many minutes have passed since the last save, so that a killed run loses at most that much
  /// (nil: at epoch ends and stops only).
  public var checkpointMinutes: Double?
  /// The directory the run's data was read from, saved with the run so that a resumed run finds
  /// it without being told (see ``LoopState/dataDirectory``).
  public var dataDirectory: String?
  /// With several processes, sum each layer's gradient over them while backward goes on (a
  /// communication thread; pays where a core is free for it and the links are slow against the
  /// step), instead of the whole gradient after backward. The result is the same.
  public var overlapGradientSum = false
  /// The clock the run measures its steps and budgets with (tests drive it by hand).
  package var clock: @Sendable () -> Date = { Date() }

  /// No limits, nothing saved.
  public init(maxMinutes: Double? = nil, maxEpochs: Int? = nil, maxBatches: Int? = nil, saveDirectory: String? = nil) {
    self.maxMinutes = maxMinutes
    self.maxEpochs = maxEpochs
    self.maxBatches = maxBatches
    self.saveDirectory = saveDirectory
  }

  /// Why a run should stop after a training batch, or nil: Ctrl-C (see
  /// ``RunLoop/stopOnInterrupt()``), a stop request (`stopRequested` uses it up), the time
  /// budget, or the batch budget (which an epoch's last batch leaves to the epoch's end).
  package func stopReasonAfterBatch(
    start: Date, batchesThisCall: Int, epochDone: Bool, stopRequested: () -> Bool
  ) -> String? {
    if interruptRequested.load(ordering: .relaxed) { return "interrupted (Ctrl-C)" }
    if stopSignalled.exchange(false, ordering: .relaxed) { return "stop requested (SIGUSR1)" }
    if stopRequested() { return "stop requested" }
    if let m = maxMinutes, clock().timeIntervalSince(start) >= 60 * m { return "time budget of \(m) minutes reached" }
    if let b = maxBatches, batchesThisCall >= b, !epochDone { return "batch budget of \(b) reached" }
    return nil
  }

  /// Why a run with epochs left should stop after an epoch, or nil: the epoch or time budget.
  package func stopReasonAfterEpoch(start: Date, epochsThisCall: Int) -> String? {
    if let m = maxEpochs, epochsThisCall >= m { return "epoch budget of \(m) reached" }
    if let m = maxMinutes, clock().timeIntervalSince(start) >= 60 * m { return "time budget of \(m) minutes reached" }
    return nil
  }
}

/// Progress of the epoch under way, reported after every batch.
public struct BatchProgress: Sendable {
  /// 1-based epoch and batch, batches per epoch.
  public var epoch: Int, batch: Int, batchesPerEpoch: Int
  /// The learning rate of the batch (with a cosine schedule's factor applied).
  public var learningRate: Double
  /// Mean loss and accuracy (0 where there is none) over the batches since the last log line.
  public var intervalLoss: Double, intervalAccuracy: Double
  /// Batches in that interval.
  public var intervalBatches: Int
  /// Milliseconds per batch and examples (tokens, texts, pairs) per second over that interval.
  public var msPerBatch: Double, tokensPerSecond: Double
  /// Seconds spent in the epoch so far, and in the whole run so far (training steps).
  public var epochSeconds: Double, runSeconds: Double
  /// Whether a log line is due (every log interval and at the epoch's last batch).
  public var logLine: Bool
}

/// Receives a run's progress (the console, the metrics files, a test). `Record` is the task's
/// per-epoch record.
public protocol TrainingObserver<Record>: AnyObject {
  associatedtype Record: EpochRecordKind
  /// After every batch.
  func batchFinished(_ progress: BatchProgress)
  /// After every epoch's validation.
  func epochFinished(_ record: Record, improved: Bool)
  /// Anything else worth a line (saving, stopping, the final result).
  func note(_ message: String)
}

/// Set by SIGINT (see ``RunLoop/stopOnInterrupt()``); the run stops after the current batch.
let interruptRequested = Atomic<Bool>(false)
/// Set by SIGUSR1, which mpirun passes on to every process: a data-parallel run's way to stop
/// cleanly (mpirun answers Ctrl-C by ending the processes at once).
let stopSignalled = Atomic<Bool>(false)

/// What one training or evaluation pass over a batch measured.
package struct BatchResult {
  /// Sum of the losses (natural log) of what the batch counts, filler rows excluded (a language
  /// model: the batch's mean loss per token).
  package var lossSum: Double
  /// Correct predictions among them.
  package var correct: Int
  /// What `lossSum` is divided by for a mean: texts, target tokens (a language model: 1).
  package var count: Int
  /// Examples (tokens, texts, sequence pairs) in the batch, filler rows excluded.
  package var examples: Int
}

/// A validation or test figure: the score validation decides on (lower is better: perplexity or
/// loss) and an accuracy (NaN where there is none).
package struct Evaluation: Sendable {
  package var score: Double
  package var accuracy: Double = .nan
}

/// The two splits a run evaluates.
package enum EvaluationSplit { case valid, test }

/// What the run loop needs of a task: a language model, a classifier, a sequence-to-sequence
/// model. A task says only what is its own — its batches and a forward and backward pass over
/// one, its evaluation, its epoch records and its checkpoints — and ``RunLoop/fit(_:state:limits:observers:stopRequested:)``
/// does the rest.
///
/// Units: the schedule (cosine, budget plan) counts *steps*, a language model's time steps per
/// stream (T per batch, or a variable window) and a task's batches (one per batch).
package protocol TrainingTask: AnyObject {
  associatedtype Options: RunOptions
  associatedtype Record: EpochRecordKind
  /// The run's options.
  var options: Options { get }
  /// What the run's lines call its examples and accuracy.
  var labels: RunLabels { get }
  /// The processes training together (``ProcessGroup/single`` but under mpirun): each holds the
  /// whole model and computes its share of every batch and evaluation.
  var group: ProcessGroup { get }
  /// The parameters trained, with their gradients.
  var parameters: ParameterStore<Float> { get }
  /// The optimizer's moments, and NT-ASGD's average (with ``RunOptions/averaging``).
  var optimizerState: OptimizerState<Float> { get }
  var average: ParameterAverage<Float>? { get }
  /// Where the update's time is counted, if anywhere.
  var profiler: Profiler? { get }
  /// Batches and steps of an epoch (every epoch has the same), the steps of a batch of the
  /// nominal size, and whether a batch's steps vary (then each batch says its own).
  var batchesPerEpoch: Int { get }
  var stepsPerEpoch: Int { get }
  var stepsPerBatch: Int { get }
  var variableSteps: Bool { get }
  /// Examples one step trains (a language model's N streams; a task's batch size), and the
  /// examples of the validation and test splits (for a budget plan's estimate of their cost).
  var examplesPerStep: Int { get }
  var evaluationExamples: (valid: Int, test: Int) { get }
  /// The training examples of the data, and a fingerprint of them (a resumed run on other data
  /// is refused).
  var trainingExamples: Int { get }
  var dataFingerprint: String { get }
  /// Where the reader of training data stands, carried across epochs (``LoopState/timeIndex``).
  var dataPosition: Int { get set }
  /// Whether the best parameters stay in place when the run has finished (Keras'
  /// `restore_best_weights`), rather than the last ones.
  var restoresBestWhenFinished: Bool { get }
  /// Prepares epoch `epoch` (1-based): a function of the run's seed and the epoch alone, so that
  /// a resumed run replays it.
  func beginEpoch(_ epoch: Int)
  /// Forward and backward over batch `batch` (0-based) of the epoch, of which `stepsDone` steps
  /// are done, into the parameters' gradients (zeroed before); returns what it measured and its
  /// steps. The loop updates the parameters.
  ///
  /// With several processes each computes its share: a gradient whose mean over the processes
  /// is the whole batch's, and a result whose sum over them is the batch's; the loop averages
  /// and sums them.
  func trainingBatch(_ batch: Int, stepsDone: Int) -> (result: BatchResult, steps: Int)
  /// The current parameters on a split, dropout off (with several processes each evaluates its
  /// share, and every one returns the whole split's figures).
  func evaluate(_ split: EvaluationSplit) -> Evaluation
  /// Gathers what only the processes together hold (a language model's carried state of every
  /// stream) before rank 0 saves a `last.safetensors`; every process calls it.
  func prepareToSave()
  /// The record of epoch `epoch`, from the state before its end (`stepsDone` steps) and its
  /// validation.
  func record(epoch: Int, state: LoopState<Record>, stepsDone: Int, valid: Evaluation) -> Record
  /// Writes the current parameters with `state` to `path`: a `best.safetensors` (parameters
  /// only) or a `last.safetensors` (with everything a resumed run needs).
  func save(to path: String, best: Bool, state: LoopState<Record>) throws
  /// The parameters saved in the `best.safetensors` at `path`.
  func bestParameters(at path: String) throws -> [Float]
  /// The leading parameters that learn at a fraction of the learning rate (a classifier's
  /// encoder under discriminative fine-tuning), or nil for one rate throughout.
  var slowerPrefix: (count: Int, factor: Double)? { get }
  /// The line that ends a run: its test figures (`test`, of the best parameters unless
  /// `usedBest` is false) and speed.
  func finalLine(test: Evaluation, usedBest: Bool, state: LoopState<Record>, seconds: Double) -> String
}

extension TrainingTask {
  package func prepareToSave() {}
  package var slowerPrefix: (count: Int, factor: Double)? { nil }
}

extension BatchResult {
  /// The sums of every process's result (a data-parallel batch's shares).
  func summed(over group: ProcessGroup) -> BatchResult {
    guard group.size > 1 else { return self }
    var values = [lossSum, Double(correct), Double(count), Double(examples)]
    group.sum(&values)
    return BatchResult(
      lossSum: values[0], correct: Int(values[1]), count: Int(values[2]), examples: Int(values[3]))
  }
}

/// What rank 0 decides for every process of a data-parallel run after a batch or an epoch (from
/// its clock and its signals): whether to stop, whether to save, and the budget plan.
struct Decisions {
  var stop = false, save = false

  /// Rank 0's decisions and plan on every process.
  static func share<R>(_ d: inout Decisions, state: inout LoopState<R>, group: ProcessGroup) {
    guard group.size > 1 else { return }
    var values: [Double] = [
      d.stop ? 1 : 0, d.save ? 1 : 0, state.plannedSteps.map(Double.init) ?? -1,
      state.planAnchor.map { Double($0.steps) } ?? -1, state.planAnchor?.fraction ?? 0,
    ]
    group.broadcast(&values)
    (d.stop, d.save) = (values[0] != 0, values[1] != 0)
    state.plannedSteps = values[2] < 0 ? nil : Int(values[2])
    state.planAnchor = values[3] < 0 ? nil : PlanAnchor(steps: Int(values[3]), fraction: values[4])
  }
}

/// What a run (or one invocation of a resumed run) measured, for any task.
package struct RunReport<Record: EpochRecordKind> {
  /// Every completed epoch of the run, resumed ones included.
  package var epochs: [Record] = []
  /// Test figures of the best parameters (by validation; the current ones when none were kept).
  package var test = Evaluation(score: .nan)
  /// Examples per second over the run's training steps.
  package var examplesPerSecond = 0.0
  /// Wall time of this invocation, evaluations included.
  package var seconds = 0.0
  /// Why this invocation stopped before the run's last epoch, or nil.
  package var stoppedEarly: String?
}

/// The one training loop of the toolkit: epochs and batches, the learning-rate schedule,
/// the update (clipping, the optimizer, NT-ASGD's average), budgets, the budget plan, early
/// stopping, Ctrl-C, divergence, best and last checkpoints, metrics files and progress — for
/// every task.
public enum RunLoop {
  /// Makes SIGINT (Ctrl-C) stop training after the current batch, save, and still evaluate;
  /// a second Ctrl-C ends the process at once. SIGUSR1 does the same (`kill -USR1` of mpirun,
  /// which passes it on to every process, stops a data-parallel run cleanly; mpirun ends the
  /// processes at once on Ctrl-C).
  public static func stopOnInterrupt() {
    interruptRequested.store(false, ordering: .relaxed)
    stopSignalled.store(false, ordering: .relaxed)
    signal(SIGINT) { _ in
      interruptRequested.store(true, ordering: .relaxed)
      signal(SIGINT, SIG_DFL)
    }
    signal(SIGUSR1) { _ in stopSignalled.store(true, ordering: .relaxed) }
  }

  /// One update of `parameters` from their gradients: global-norm clipping, the optimizer's
  /// rule at `learningRate` (times `slowerPrefix.factor` for the first `slowerPrefix.count`
  /// parameters), weight decay; then NT-ASGD's average takes the new iterate once averaging has
  /// begun (`state.averagedSteps` set). Every task's training step ends here.
  package static func update<R>(
    _ parameters: ParameterStore<Float>, optimizer: OptimizerState<Float>, average: ParameterAverage<Float>?,
    state: inout LoopState<R>, learningRate: Double, options: some RunOptions,
    slowerPrefix: (count: Int, factor: Double)? = nil
  ) {
    Optimizer.step(
      parameters, state: optimizer, learningRate: learningRate, maxNorm: options.clip,
      weightDecay: options.weightDecay, slowerPrefix: slowerPrefix)
    if let average, state.averagedSteps != nil {
      average.add(parameters.values.pointer)
      state.averagedSteps = average.count
    }
  }

  /// Refuses to start a data-parallel run whose processes do not hold the same run: each hashes
  /// its settings, its training data and its parameters, and they compare.
  static func requireSameRun<Task: TrainingTask>(_ task: Task, state: LoopState<Task.Record>, fingerprint: String)
    throws
  {
    let group = task.group
    guard group.size > 1 else { return }
    var settings = DataFingerprint()
    let encoder = JSONEncoder()
    encoder.outputFormatting = .sortedKeys
    if let data = try? encoder.encode(task.options) { data.withUnsafeBytes { settings.add($0) } }
    var stateHash = DataFingerprint()
    var s = state
    (s.epochSeconds, s.trainingSeconds, s.dataDirectory) = (0, 0, nil)
    if let data = try? encoder.encode(s) { data.withUnsafeBytes { stateHash.add($0) } }
    var data = DataFingerprint()
    data.add(UInt32(truncatingIfNeeded: task.trainingExamples))
    Data(fingerprint.utf8).withUnsafeBytes { data.add($0) }
    var parameters = DataFingerprint()
    parameters.add(UnsafeRawBufferPointer(task.parameters.values.bufferPointer))
    let all = group.allGather([settings.hash, data.hash, stateHash.hash, parameters.hash])
    let what = [
      "settings (flags, preset or checkpoint)", "training data (the files under --data)", "run state (checkpoint)",
      "parameters (another build of the toolkit?)",
    ]
    for (index, name) in what.enumerated() {
      if let other = all.firstIndex(where: { $0[index] != all[0][index] }) {
        throw TrainingError.processesDisagree(
          "the processes do not hold the same run: rank \(other)'s \(name) differ from rank 0's; "
            + "every process must run the same build with the same flags on the same data")
      }
    }
  }

  /// Trains `task` until its epochs are done, its budget plan is reached, early stopping ends
  /// the run, or a limit of `limits` is reached; then tests the best parameters (by validation)
  /// and reports. With a save directory, `best.safetensors`, `last.safetensors`, `metrics.csv`
  /// and `curve.svg` are written there. `state` is the run's, updated as it goes.
  package static func fit<Task: TrainingTask>(
    _ task: Task, state: inout LoopState<Task.Record>, limits: RunLimits,
    observers given: [any TrainingObserver<Task.Record>], stopRequested: () -> Bool
  ) throws -> RunReport<Task.Record> {
    let options = task.options
    let group = task.group
    let clock = limits.clock
    let start = clock()
    if options.cosineToBudget, state.plannedSteps == nil, limits.maxMinutes == nil {
      throw ConfigurationError("a cosine schedule planned from the time budget needs a time budget (--max-minutes)")
    }
    if let trained = state.trainingExamples, trained != task.trainingExamples {
      throw TrainingError.incompatibleResume(
        "the run was trained on \(trained) training \(task.labels.examples); these data have \(task.trainingExamples)")
    }
    let fingerprint = task.dataFingerprint
    if let saved = state.dataFingerprint, saved != fingerprint {
      throw TrainingError.incompatibleResume(
        "the run was trained on other \(task.labels.examples) than these data's (the same number, other contents)")
    }
    (state.trainingExamples, state.dataFingerprint) = (task.trainingExamples, fingerprint)
    try requireSameRun(task, state: state, fingerprint: fingerprint)
    if let directory = limits.dataDirectory {
      state.dataDirectory = URL(fileURLWithPath: directory).standardizedFileURL.path
    }
    let paths = limits.saveDirectory.map { dir in
      (
        best: (dir as NSString).appendingPathComponent("best.safetensors"),
        last: (dir as NSString).appendingPathComponent("last.safetensors")
      )
    }
    // Rank 0 speaks for the run: it alone prints, writes checkpoints and metrics.
    var observers = group.isRoot ? given : []
    if let directory = limits.saveDirectory, group.isRoot {
      try prepareRunDirectory(directory)
      let csv = MetricsFiles<Task.Record>.csvPath(in: directory)
      if !observers.contains(where: { ($0 as? MetricsFiles<Task.Record>)?.csvPath == csv }) {
        observers.append(
          try MetricsFiles<Task.Record>(directory: directory, history: state.history, labels: task.labels))
      }
    }
    func notify(_ message: String) { for o in observers { o.note(message) } }
    /// The checkpoint a diverging run leaves, named in its error.
    func lastGood() -> String? { paths.flatMap { FileManager.default.fileExists(atPath: $0.last) ? $0.last : nil } }
    /// Writes `last.safetensors` (every process gathers; rank 0 writes) and says where it is,
    /// should mpirun end the run.
    func saveLast() throws {
      guard let paths else { return }
      task.prepareToSave()
      if group.isRoot { try task.save(to: paths.last, best: false, state: state) }
      group.setTerminationNote(
        "\(paths.last), saved after epoch \(state.epochsCompleted), batch \(state.batchesInEpoch)")
    }
    if let paths, FileManager.default.fileExists(atPath: paths.last) {
      group.setTerminationNote("\(paths.last)")
    }

    let (perEpoch, stepsPerEpoch) = (task.batchesPerEpoch, task.stepsPerEpoch)
    let totalSteps = options.epochs * stepsPerEpoch
    /// Steps of the epoch done, and of the run.
    func stepsDone() -> Int { state.stepsInEpoch ?? state.batchesInEpoch * task.stepsPerBatch }
    func runSteps() -> Int { state.epochsCompleted * stepsPerEpoch + stepsDone() }
    /// Whether a budget-planned schedule has reached its end.
    func planReached() -> Bool { state.plannedSteps.map { runSteps() >= $0 } ?? false }
    // Rank 0 plans, and shares its plan (``Decisions``).
    var planner = limits.maxMinutes.flatMap { minutes in
      options.cosineToBudget && group.isRoot
        ? BudgetPlanner(
          minutes: minutes, start: start,
          run: .init(
            stepsPerEpoch: stepsPerEpoch, maxSteps: totalSteps, examplesPerStep: task.examplesPerStep,
            validExamples: task.evaluationExamples.valid, testExamples: task.evaluationExamples.test))
        : nil
    }
    if task.stepsPerBatch == 1 { planner?.unitNames = ("batch", "batches") }
    /// Runs `body` with NT-ASGD's average in place of the parameters, once averaging has begun.
    func withAveragedParameters<R>(_ body: () throws -> R) rethrows -> R {
      guard let average = task.average, state.averagedSteps != nil, average.count > 0 else { return try body() }
      let values = task.parameters.values
      let parked = values.array
      values.pointer.update(from: average.values.pointer, count: values.count)
      defer { values.pointer.update(from: parked, count: parked.count) }
      return try body()
    }

    task.dataPosition = state.timeIndex
    var (epochsThisCall, batchesThisCall) = (0, 0)
    var stopReason: String?
    var decisions = Decisions()
    let overlapped =
      group.size > 1 && limits.overlapGradientSum && group.threadsMayCommunicate
      ? OverlappedGradientSum(group: group, gradients: task.parameters.gradients) : nil
    if let overlapped { task.parameters.gradientsFinished = { overlapped.announce($0) } }
    defer {
      overlapped?.close()
      task.parameters.gradientsFinished = nil
    }
    /// The best parameters, when they are not (only) in a file: with several processes every
    /// process keeps them, as only rank 0 may reach the file.
    var bestInMemory: [Float]?
    /// When `last.safetensors` was last written (or the call began).
    var lastSave = start
    training: while state.epochsCompleted < options.epochs && !state.stoppedEarly && !planReached() {
      let epoch = state.epochsCompleted + 1
      task.beginEpoch(epoch)
      var interval = (loss: 0.0, count: 0, correct: 0, examples: 0, batches: 0, start: clock())
      while stepsDone() < stepsPerEpoch && !planReached() {
        let batch = state.batchesInEpoch + 1
        let stepStart = clock()
        let factor = LearningRateSchedule.factor(options, state: state, stepsDone: runSteps(), totalSteps: totalSteps)
        let done = stepsDone()
        task.parameters.zeroGradients()
        var (r, steps) = task.trainingBatch(state.batchesInEpoch, stepsDone: done)
        if group.size > 1 {
          task.profiler.time("gradient sum over processes") {
            if let overlapped {
              overlapped.finish()
            } else {
              group.averageGradients(task.parameters.gradients.pointer, count: task.parameters.count)
            }
          }
          r = r.summed(over: group)
        }
        guard r.lossSum.isFinite else {
          throw TrainingError.diverged(epoch: epoch, batch: batch, loss: r.lossSum, kept: lastGood())
        }
        task.profiler.time("clip + update") {
          // A batch of other than the nominal steps takes a learning rate in proportion
          // (a language model's variable BPTT).
          update(
            task.parameters, optimizer: task.optimizerState, average: task.average, state: &state,
            learningRate: state.learningRate * factor * Double(steps) / Double(task.stepsPerBatch), options: options,
            slowerPrefix: task.slowerPrefix)
        }
        let seconds = clock().timeIntervalSince(stepStart)
        if batchesThisCall > 0 { planner?.recordStep(seconds: seconds, steps: steps) }
        state.epochSeconds += seconds
        state.trainingSeconds += seconds
        state.trainedExamples += r.examples
        state.timeIndex = task.dataPosition
        state.batchesInEpoch = batch
        if task.variableSteps { state.stepsInEpoch = done + steps }
        let epochDone = stepsDone() >= stepsPerEpoch
        if let note = planner?.planIfDue(
          &state, batchesDone: state.epochsCompleted * perEpoch + state.batchesInEpoch, stepsDone: runSteps(),
          now: clock())
        {
          notify(note)
        }
        state.epochLossSum += r.lossSum
        state.epochLossCount += r.count
        state.epochCorrect += r.correct
        state.epochExamples += r.examples
        interval.loss += r.lossSum
        interval.count += r.count
        interval.correct += r.correct
        interval.examples += r.examples
        interval.batches += 1
        batchesThisCall += 1
        let logLine = batch % options.logInterval == 0 || epochDone || planReached()
        if logLine && !epochDone, let note = planner?.check(&state, stepsDone: runSteps(), now: clock()) {
          notify(note)
        }
        let elapsed = clock().timeIntervalSince(interval.start)
        let progress = BatchProgress(
          epoch: epoch, batch: batch, batchesPerEpoch: perEpoch, learningRate: state.learningRate * factor,
          intervalLoss: interval.loss / Double(max(interval.count, 1)),
          intervalAccuracy: Double(interval.correct) / Double(max(interval.count, 1)),
          intervalBatches: interval.batches, msPerBatch: 1000 * elapsed / Double(interval.batches),
          tokensPerSecond: Double(interval.examples) / max(elapsed, 1e-9), epochSeconds: state.epochSeconds,
          runSeconds: state.trainingSeconds, logLine: logLine)
        for o in observers { o.batchFinished(progress) }
        if logLine { interval = (0, 0, 0, 0, 0, clock()) }
        decisions.save =
          paths != nil && !epochDone
          && limits.checkpointMinutes.map { clock().timeIntervalSince(lastSave) >= 60 * $0 } ?? false
        stopReason = limits.stopReasonAfterBatch(
          start: start, batchesThisCall: batchesThisCall, epochDone: epochDone, stopRequested: stopRequested)
        decisions.stop = stopReason != nil
        Decisions.share(&decisions, state: &state, group: group)
        if decisions.save {
          let saveStart = clock()
          try saveLast()
          lastSave = clock()
          // The plan counts the saves' time as part of the training speed.
          planner?.recordStep(seconds: lastSave.timeIntervalSince(saveStart), steps: 0)
        }
        if decisions.stop {
          stopReason = stopReason ?? "rank 0 stopped the run"
          break training
        }
      }

      // End of epoch: validate, keep the best, decay the learning rate when it did not improve,
      // count epochs without improvement, start NT-ASGD's average when it is due.
      let epochEndStart = clock()
      let valid = withAveragedParameters { task.evaluate(.valid) }
      guard valid.score.isFinite else {
        throw TrainingError.diverged(epoch: epoch, batch: perEpoch, loss: valid.score, kept: lastGood())
      }
      // NT-ASGD's trigger: validation worse than the best of all epochs but the last `nonmono`.
      let previous = state.history.map(\.validationScore)
      let startAveraging =
        options.averaging && state.averagedSteps == nil && previous.count > options.nonmono
        && valid.score > previous[..<(previous.count - options.nonmono)].min()!
      let record = task.record(epoch: epoch, state: state, stepsDone: stepsDone(), valid: valid)
      state.history.append(record)
      state.epochsCompleted = epoch
      (state.batchesInEpoch, state.stepsInEpoch, state.epochSeconds) = (0, nil, 0)
      (state.epochLossSum, state.epochLossCount, state.epochCorrect, state.epochExamples) = (0, 0, 0, 0)
      let rateBefore = state.learningRate
      // Lower is better: the loss, or the accuracy negated.
      let improved = state.recordValidation(
        options.monitorAccuracy ? -valid.accuracy : valid.score, decay: options.learningRateDecay)
      if improved {
        (state.bestEpoch, state.epochsWithoutImprovement) = (epoch, 0)
        try withAveragedParameters {
          if let paths, group.isRoot { try task.save(to: paths.best, best: true, state: state) }
          if paths == nil || group.size > 1 { bestInMemory = task.parameters.values.array }
        }
      } else {
        state.epochsWithoutImprovement += 1
      }
      if startAveraging, let average = task.average {
        state.averagedSteps = 0
        average.count = 0
        notify(
          "NT-ASGD: validation \(valid.score) is not better than \(options.nonmono) epochs ago: averaging from now on")
      }
      for o in observers { o.epochFinished(record, improved: improved) }
      if state.learningRate != rateBefore {
        notify("validation did not improve: learning rate \(rateBefore) → \(state.learningRate)")
      }
      if options.patience > 0 && state.epochsWithoutImprovement >= options.patience && epoch < options.epochs {
        state.stoppedEarly = true
        stopReason =
          "early stopping: validation \(options.monitorAccuracy ? task.labels.accuracyName : task.labels.scoreName) has not improved for \(options.patience) epoch\(options.patience == 1 ? "" : "s"); the best was epoch \(state.bestEpoch ?? 0)"
      }
      if paths != nil {
        try saveLast()
        lastSave = clock()
      }
      if !group.agree(on: task.parameters.values.bufferPointer) {
        throw TrainingError.processesDisagree(
          "the processes' parameters differ after epoch \(epoch): they no longer train the same model")
      }
      epochsThisCall += 1
      planner?.recordEpochEnd(seconds: clock().timeIntervalSince(epochEndStart))
      if let note = planner?.check(&state, stepsDone: runSteps(), now: clock()) { notify(note) }
      if state.stoppedEarly { break }
      if state.epochsCompleted < options.epochs, !planReached() {
        stopReason = limits.stopReasonAfterEpoch(start: start, epochsThisCall: epochsThisCall)
      }
      decisions = Decisions(stop: stopReason != nil)
      Decisions.share(&decisions, state: &state, group: group)
      if decisions.stop {
        stopReason = stopReason ?? "rank 0 stopped the run"
        break
      }
    }

    if let stopReason, !state.stoppedEarly, let paths {
      // A stop at an epoch boundary was saved with the epoch; only a stop inside one is new.
      if state.batchesInEpoch > 0 { try saveLast() }
      notify("stopped: \(stopReason); saved \(paths.last) (resume with --resume \(paths.last))")
    } else if let stopReason {
      notify("stopped: \(stopReason)")
    }

    // Test the best parameters; the current ones come back afterwards so that a resumed run
    // continues from them (unless the run is over and the task keeps the best).
    var best = bestInMemory
    if best == nil, let paths, group.isRoot, FileManager.default.fileExists(atPath: paths.best) {
      best = try task.bestParameters(at: paths.best)
    }
    if group.size > 1, bestInMemory == nil, paths != nil {
      // Rank 0 read them (a resumed run's best from before); the others receive them.
      best = group.broadcast(best, count: task.parameters.count)
    }
    let values = task.parameters.values
    let current = values.array
    if let best { values.pointer.update(from: best, count: best.count) }
    var report = RunReport<Task.Record>()
    report.test = task.evaluate(.test)
    let finished = state.epochsCompleted >= options.epochs || state.stoppedEarly || planReached()
    if !(finished && task.restoresBestWhenFinished) { values.pointer.update(from: current, count: current.count) }
    report.epochs = state.history
    report.examplesPerSecond = Double(state.trainedExamples) / max(state.trainingSeconds, 1e-9)
    report.seconds = clock().timeIntervalSince(start)
    report.stoppedEarly = stopReason
    notify(task.finalLine(test: report.test, usedBest: best != nil, state: state, seconds: report.seconds))
    return report
  }
}
