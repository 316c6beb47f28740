import Foundation
import Testing

@testable import RNNLM

/// A clock the tests move by hand: each toy batch takes `secondsPerBatch` of it.
final class FakeClock: @unchecked Sendable {
  var now = Date(timeIntervalSinceReferenceDate: 0)
  func advance(_ seconds: Double) { now += seconds }
}

/// The options of a toy run.
struct ToyOptions: RunOptions {
  var epochs = 3
  var optimizer = OptimizerKind.sgd
  var learningRate = 0.1
  var learningRateDecay = 1.0
  var clip = 0.0
  var weightDecay = 0.0
  var cosineSchedule = false
  var cosineToBudget = false
  var averaging = false
  var nonmono = 0
  var patience = 0
  var monitorAccuracy = false
  var logInterval = 5
}

/// The run loop's toy task: one parameter w fitted to 3 by the loss (w − 3)² on every example
/// (gradient 2 (w − 3)), 40 training examples in batches of 4 (10 batches an epoch), validation
/// losses scripted by epoch or (w − 3)², a batch that can be made to diverge, and a fake clock
/// each batch advances. Its checkpoint is JSON: the state and w.
final class ToyTask: ExampleTask {
  var options: ToyOptions
  let group = ProcessGroup.single
  let parameters: ParameterStore<Float>
  let optimizerState: OptimizerState<Float>
  let average: ParameterAverage<Float>?
  let labels = RunLabels(unit: "ex", examples: "examples", scoreName: "loss", accuracyName: "accuracy")
  let examplesPerStep = 4
  let splitSizes = (train: 40, valid: 10, test: 10)
  let clock: FakeClock
  var secondsPerBatch = 1.0
  var dataFingerprint = "toy"
  /// Validation losses of epochs 1, 2, …; (w − 3)² past their end.
  var validScores: [Double] = []
  /// Validation accuracies of epochs 1, 2, …; 0 past their end.
  var validAccuracies: [Double] = []
  /// Batches trained by this task object, and the one (1-based) whose loss is NaN.
  var batchesRun = 0
  var nanAtBatch: Int?
  /// Steps of each batch when they vary (nil: 1 each), cycled.
  var variableSteps = false
  var epoch = 0
  var stepsSeen: [Int] = []

  init(options: ToyOptions, clock: FakeClock, w: Float = 0) throws {
    self.options = options
    self.clock = clock
    parameters = try ParameterStore<Float>(layout: [("w", [1])])
    parameters.values.pointer[0] = w
    optimizerState = try OptimizerState(kind: options.optimizer, count: 1)
    average = options.averaging ? try ParameterAverage(count: 1) : nil
  }

  var w: Float { parameters.values.pointer[0] }

  var stepsPerBatch: Int { variableSteps ? 4 : 1 }
  var stepsPerEpoch: Int { variableSteps ? 40 : batchesPerEpoch }

  func beginEpoch(_ epoch: Int) { self.epoch = epoch }

  func trainingBatch(_ batch: Int, stepsDone: Int) -> (result: BatchResult, steps: Int) {
    clock.advance(secondsPerBatch)
    batchesRun += 1
    let d = Double(w) - 3
    parameters.gradients.pointer[0] = Float(2 * d)
    // Variable steps: 3, 5, 3, 5, … cut to what is left of the epoch.
    let steps = variableSteps ? min(batchesRun % 2 == 1 ? 3 : 5, stepsPerEpoch - stepsDone) : 1
    stepsSeen.append(steps)
    let loss = nanAtBatch == batchesRun ? Double.nan : 4 * d * d
    return (BatchResult(lossSum: loss, correct: 0, count: 4, examples: 4), steps)
  }

  func evaluate(_ split: EvaluationSplit) -> Evaluation {
    let d = Double(w) - 3
    if split == .valid, epoch - 1 < validScores.count {
      return Evaluation(
        score: validScores[epoch - 1], accuracy: epoch - 1 < validAccuracies.count ? validAccuracies[epoch - 1] : 0)
    }
    return Evaluation(score: d * d, accuracy: 0)
  }

  struct Saved: Codable {
    var state: TaskRunState
    var w: Float
    var average: Float?
  }

  /// The batch count at each save of `last.safetensors`.
  var lastSaves: [Int] = []

  func save(to path: String, best: Bool, state: TaskRunState) throws {
    if !best { lastSaves.append(batchesRun) }
    let saved = Saved(state: state, w: w, average: state.averagedSteps != nil ? average?.values.pointer[0] : nil)
    try JSONEncoder().encode(saved).write(to: URL(fileURLWithPath: path), options: .atomic)
  }

  func bestParameters(at path: String) throws -> [Float] { [try Self.read(path).w] }

  static func read(_ path: String) throws -> Saved {
    try JSONDecoder().decode(Saved.self, from: Data(contentsOf: URL(fileURLWithPath: path)))
  }

  /// A task continuing the run saved at `path`.
  static func resuming(_ path: String, options: ToyOptions, clock: FakeClock) throws -> (ToyTask, TaskRunState) {
    let saved = try read(path)
    let task = try ToyTask(options: options, clock: clock, w: saved.w)
    if let a = saved.average {
      task.average?.values.pointer[0] = a
      task.average?.count = saved.state.averagedSteps ?? 0
    }
    task.optimizerState.steps = saved.state.optimizerSteps ?? 0
    return (task, saved.state)
  }
}

/// Records the learning rate of every batch and every note.
final class Recorder: TrainingObserver {
  var rates: [Double] = []
  var notes: [String] = []
  var epochs: [TaskEpochRecord] = []
  func batchFinished(_ p: BatchProgress) { rates.append(p.learningRate) }
  func epochFinished(_ record: TaskEpochRecord, improved: Bool) { epochs.append(record) }
  func note(_ message: String) { notes.append(message) }
}

/// The one run loop, on the toy task: every schedule, budget and stopping rule, resumption,
/// Ctrl-C and divergence, with a clock the test moves.
@Suite struct RunLoopTests {
  static func fit(
    _ task: ToyTask, state: inout TaskRunState, limits: RunLimits = RunLimits(), recorder: Recorder = Recorder(),
    stop: @escaping () -> Bool = { false }
  ) throws -> RunReport<TaskEpochRecord> {
    var limits = limits
    let clock = task.clock
    limits.clock = { clock.now }
    return try RunLoop.fit(task, state: &state, limits: limits, observers: [recorder], stopRequested: stop)
  }

  static func fresh(_ o: ToyOptions) -> TaskRunState {
    TaskRunState(generator: SeededGenerator(seed: 1), learningRate: o.learningRate)
  }

  /// A constant rate: w after n SGD steps of rate r is 3 − 3 (1 − 2r)ⁿ (worked by hand).
  @Test func constantRateFitsByHand() throws {
    let o = ToyOptions()
    let task = try ToyTask(options: o, clock: FakeClock())
    let recorder = Recorder()
    var state = Self.fresh(o)
    let report = try Self.fit(task, state: &state, recorder: recorder)
    #expect(report.epochs.count == 3 && state.epochsCompleted == 3 && task.batchesRun == 30)
    #expect(recorder.rates.allSatisfy { $0 == 0.1 })
    #expect(abs(Double(task.w) - (3 - 3 * pow(0.8, 30))) < 1e-5)
    #expect(report.stoppedEarly == nil && abs(report.test.score - pow(3 * pow(0.8, 30), 2)) < 1e-8)
  }

  /// ÷ decay on a plateau: a validation that does not improve divides the rate (and is noted).
  @Test func plateauDividesTheRate() throws {
    var o = ToyOptions()
    (o.epochs, o.learningRateDecay) = (4, 4)
    let task = try ToyTask(options: o, clock: FakeClock())
    task.validScores = [5, 4, 4.5, 3]
    let recorder = Recorder()
    var state = Self.fresh(o)
    _ = try Self.fit(task, state: &state, recorder: recorder)
    // Epochs 1–3 at 0.1, epoch 4 at 0.025 (epoch 3 did not improve on 4).
    #expect(Array(recorder.rates[0..<30]).allSatisfy { $0 == 0.1 })
    #expect(Array(recorder.rates[30..<40]).allSatisfy { $0 == 0.025 })
    #expect(recorder.notes.contains("validation did not improve: learning rate 0.1 → 0.025"))
    #expect(state.bestScore == 3 && state.bestEpoch == 4)
  }

  /// Monitoring accuracy: the best epoch, patience and the decay follow the validation accuracy
  /// (higher is better) while the loss falls every epoch; watching the loss, the last is best.
  @Test(arguments: [false, true]) func accuracyOrLossDecides(monitorAccuracy: Bool) throws {
    var o = ToyOptions()
    (o.epochs, o.patience, o.learningRateDecay, o.monitorAccuracy) = (6, 2, 2, monitorAccuracy)
    let dir = try DataTests.temporaryDirectory()
    let task = try ToyTask(options: o, clock: FakeClock())
    (task.validScores, task.validAccuracies) = ([5, 4, 3, 2, 1, 0.5], [0.6, 0.8, 0.7, 0.75, 0.7, 0.9])
    let recorder = Recorder()
    var state = Self.fresh(o)
    let report = try Self.fit(
      task, state: &state, limits: RunLimits(saveDirectory: dir), recorder: recorder)
    if monitorAccuracy {
      // Epoch 2 is best; 3 and 4 are not better, so the rate halves twice and patience ends the run.
      #expect(state.bestEpoch == 2 && report.epochs.count == 4)
      #expect(report.stoppedEarly?.hasPrefix("early stopping: validation accuracy has not improved for 2") == true)
      #expect(recorder.rates.last == 0.05 && state.learningRate == 0.025)
      #expect(state.bestValidLoss == 4)
    } else {
      #expect(state.bestEpoch == 6 && report.epochs.count == 6 && report.stoppedEarly == nil)
      #expect(recorder.rates.allSatisfy { $0 == 0.1 } && state.bestValidLoss == 0.5)
    }
    // best.safetensors holds the best epoch's parameters.
    let best = try ToyTask.read((dir as NSString).appendingPathComponent("best.safetensors"))
    #expect(best.state.bestEpoch == state.bestEpoch)
  }

  /// Cosine over the epochs: batch k (0-based) of 30 runs at ½ (1 + cos(π k / 30)) of the rate.
  @Test func cosineOverTheEpochs() throws {
    var o = ToyOptions()
    o.cosineSchedule = true
    let task = try ToyTask(options: o, clock: FakeClock())
    let recorder = Recorder()
    var state = Self.fresh(o)
    _ = try Self.fit(task, state: &state, recorder: recorder)
    for (k, rate) in recorder.rates.enumerated() {
      #expect(abs(rate - 0.1 * 0.5 * (1 + cos(Double.pi * Double(k) / 30))) < 1e-15)
    }
  }

  /// Cosine planned to the budget, on the fake clock (1 s a batch): after 20 batches the plan
  /// fills 98% of what is left of 2 minutes with batches and epoch ends; the run ends at the
  /// plan, inside the budget, and the rate falls to almost 0.
  @Test func cosinePlannedToTheBudget() throws {
    var o = ToyOptions()
    (o.epochs, o.cosineToBudget) = (100, true)
    let task = try ToyTask(options: o, clock: FakeClock())
    let recorder = Recorder()
    var state = Self.fresh(o)
    let report = try Self.fit(task, state: &state, limits: RunLimits(maxMinutes: 2), recorder: recorder)
    let planned = try #require(state.plannedSteps)
    // 100 s left after 20 batches at 1 s; epoch 1's end, measured, took no time on this clock:
    // 20 + 98 batches fill 98% of them.
    let expected = BudgetPlanner.plannedSteps(
      remainingSeconds: 100, secondsPerStep: 1, stepsDone: 20, stepsPerEpoch: 10, maxSteps: 1000,
      secondsPerEpochEnd: 0, finalSeconds: 0)
    #expect(expected == 118)
    #expect(recorder.notes.contains { $0.hasPrefix("cosine schedule planned to end after \(expected) batches") })
    #expect(report.stoppedEarly == nil && task.batchesRun == planned && planned <= 120)
    #expect(recorder.rates.prefix(20).allSatisfy { $0 == 0.1 })
    #expect(zip(recorder.rates.dropFirst(20), recorder.rates.dropFirst(21)).allSatisfy { $0 >= $1 })
    #expect(recorder.rates.last! < 0.01 * 0.1)
  }

  /// Budgets: batches, epochs and minutes (on the fake clock) stop a run, which says why.
  @Test func budgetsStopTheRun() throws {
    let o = ToyOptions()
    for (limits, reason, batches) in [
      (RunLimits(maxBatches: 7), "batch budget of 7 reached", 7),
      (RunLimits(maxEpochs: 2), "epoch budget of 2 reached", 20),
      (RunLimits(maxMinutes: 0.25), "time budget of 0.25 minutes reached", 15),
    ] {
      let task = try ToyTask(options: o, clock: FakeClock())
      var state = Self.fresh(o)
      let report = try Self.fit(task, state: &state, limits: limits)
      #expect(report.stoppedEarly == reason && task.batchesRun == batches)
    }
  }

  /// Patience: two epochs without improvement end the run; the best parameters are kept.
  @Test func patienceStopsEarlyAndKeepsTheBest() throws {
    var o = ToyOptions()
    (o.epochs, o.patience) = (10, 2)
    let task = try ToyTask(options: o, clock: FakeClock())
    task.validScores = [5, 4, 6, 7, 1]
    var state = Self.fresh(o)
    let recorder = Recorder()
    let dir = try DataTests.temporaryDirectory()
    let report = try Self.fit(task, state: &state, limits: RunLimits(saveDirectory: dir), recorder: recorder)
    #expect(state.stoppedEarly && state.epochsCompleted == 4 && state.bestEpoch == 2)
    #expect(
      report.stoppedEarly == "early stopping: validation loss has not improved for 2 epochs; the best was epoch 2")
    // The run is over: the best (epoch 2's) parameters stay.
    #expect(task.w == (try ToyTask.read(dir + "/best.safetensors")).w)
    #expect(task.w != (try ToyTask.read(dir + "/last.safetensors")).w)
  }

  /// Stopped after 13 batches and resumed from its last checkpoint, a run with NT-ASGD and a
  /// plateau decay ends as the uninterrupted run does, bit for bit.
  @Test func resumedRunEndsAsTheWholeRun() throws {
    var o = ToyOptions()
    (o.epochs, o.averaging, o.nonmono, o.learningRateDecay) = (4, true, 0, 2)
    let scores: [Double] = [5, 6, 4, 4.5]
    let whole = try ToyTask(options: o, clock: FakeClock())
    whole.validScores = scores
    var wholeState = Self.fresh(o)
    _ = try Self.fit(whole, state: &wholeState)
    #expect(wholeState.averagedSteps == 20)  // began after epoch 2

    let dir = try DataTests.temporaryDirectory()
    let first = try ToyTask(options: o, clock: FakeClock())
    first.validScores = scores
    var firstState = Self.fresh(o)
    _ = try Self.fit(first, state: &firstState, limits: RunLimits(maxBatches: 23, saveDirectory: dir))
    let (second, state) = try ToyTask.resuming(dir + "/last.safetensors", options: o, clock: FakeClock())
    #expect(state.batchesInEpoch == 3 && state.epochsCompleted == 2 && state.averagedSteps == 3)
    second.validScores = scores
    var secondState = state
    _ = try Self.fit(second, state: &secondState)
    #expect(second.w == whole.w && second.average!.values.array == whole.average!.values.array)
    #expect(secondState.learningRate == wholeState.learningRate && secondState.history == wholeState.history)
  }

  /// A stop request (what Ctrl-C does) ends the run after the batch, saves where it stood and
  /// still tests.
  @Test func stopRequestSavesAndTests() throws {
    let o = ToyOptions()
    let task = try ToyTask(options: o, clock: FakeClock())
    var state = Self.fresh(o)
    let dir = try DataTests.temporaryDirectory()
    var asked = 0
    let recorder = Recorder()
    let report = try Self.fit(
      task, state: &state, limits: RunLimits(saveDirectory: dir), recorder: recorder,
      stop: {
        asked += 1
        return asked == 4
      })
    #expect(report.stoppedEarly == "stop requested" && task.batchesRun == 4 && report.test.score.isFinite)
    #expect(try ToyTask.read(dir + "/last.safetensors").state.batchesInEpoch == 4)
    #expect(recorder.notes.contains { $0.hasPrefix("stopped: stop requested; saved \(dir)/last.safetensors") })
  }

  /// A diverging batch ends the run with an error naming the last good checkpoint, untouched.
  @Test func divergenceNamesTheLastGoodCheckpoint() throws {
    let o = ToyOptions()
    let task = try ToyTask(options: o, clock: FakeClock())
    task.nanAtBatch = 14
    var state = Self.fresh(o)
    let dir = try DataTests.temporaryDirectory()
    do {
      _ = try Self.fit(task, state: &state, limits: RunLimits(saveDirectory: dir))
      Issue.record("a NaN loss did not stop the run")
    } catch let TrainingError.diverged(epoch, batch, loss, kept) {
      #expect(epoch == 2 && batch == 4 && loss.isNaN && kept == dir + "/last.safetensors")
    }
    #expect(try ToyTask.read(dir + "/last.safetensors").state.epochsCompleted == 1)
  }

  /// Batches of varying steps read exactly an epoch's steps, the first batch of each epoch
  /// included, and take a rate in proportion to their steps.
  @Test func variableStepsCoverEachEpochExactly() throws {
    let o = ToyOptions()
    let task = try ToyTask(options: o, clock: FakeClock())
    task.variableSteps = true
    var state = Self.fresh(o)
    _ = try Self.fit(task, state: &state)
    // 3 + 5 + 3 + … over 40 steps an epoch: 10 batches (3, 5, …, 3, 5), 40 steps, three times.
    #expect(task.stepsSeen.count == 30 && task.stepsSeen.reduce(0, +) == 3 * 40)
    #expect(state.stepsInEpoch == nil && state.epochsCompleted == 3)
  }

  /// A run resumed on other data — another number of training examples, or as many with other
  /// contents — is refused; the data's directory is saved with the run.
  @Test func otherDataIsRefused() throws {
    let o = ToyOptions()
    let task = try ToyTask(options: o, clock: FakeClock())
    var state = Self.fresh(o)
    var limits = RunLimits(maxBatches: 3)
    limits.dataDirectory = "toy/data"
    _ = try Self.fit(task, state: &state, limits: limits)
    #expect(state.dataFingerprint == "toy" && state.trainingExamples == 40)
    #expect(state.dataDirectory == FileManager.default.currentDirectoryPath + "/toy/data")
    var other = state
    other.trainingExamples = 41
    #expect(throws: TrainingError.self) { try Self.fit(task, state: &other) }
    task.dataFingerprint = "other"
    var changed = state
    do {
      _ = try Self.fit(task, state: &changed)
      Issue.record("other contents were accepted")
    } catch let error as TrainingError {
      #expect(error.description.contains("other examples than these data's"))
    }
  }

  /// `checkpointMinutes` writes `last.safetensors` in the middle of an epoch once that long has
  /// passed since the last save (an epoch end's included), and a run killed at any moment resumes
  /// from a checkpoint at most that old, exactly.
  @Test func checkpointsInTheMiddleOfAnEpoch() throws {
    var o = ToyOptions()
    o.epochs = 2
    let task = try ToyTask(options: o, clock: FakeClock())
    var state = Self.fresh(o)
    let dir = try DataTests.temporaryDirectory()
    var limits = RunLimits(saveDirectory: dir)
    limits.checkpointMinutes = 0.1  // 6 s of the fake clock, 6 batches
    _ = try Self.fit(task, state: &state, limits: limits)
    // Batch 6 (6 s), the epoch end at 10, batch 16 (6 s after it), the epoch end at 20.
    #expect(task.lastSaves == [6, 10, 16, 20])

    // Stopped after batch 8 with a save at 6: the checkpoint holds batch 6 and resumes from it as
    // the whole run would have gone on.
    let whole = try ToyTask(options: o, clock: FakeClock())
    var wholeState = Self.fresh(o)
    _ = try Self.fit(whole, state: &wholeState)
    let killed = try ToyTask(options: o, clock: FakeClock())
    var killedState = Self.fresh(o)
    let dir2 = try DataTests.temporaryDirectory()
    var limits2 = RunLimits(saveDirectory: dir2)
    limits2.checkpointMinutes = 0.1
    killed.nanAtBatch = 9  // the run dies in batch 9; its last checkpoint is batch 6's
    #expect(throws: TrainingError.self) { try Self.fit(killed, state: &killedState, limits: limits2) }
    let (resumed, saved) = try ToyTask.resuming(dir2 + "/last.safetensors", options: o, clock: FakeClock())
    #expect(saved.batchesInEpoch == 6)
    var resumedState = saved
    _ = try Self.fit(resumed, state: &resumedState)
    #expect(resumed.w == whole.w && resumedState.history == wholeState.history)
  }
}
