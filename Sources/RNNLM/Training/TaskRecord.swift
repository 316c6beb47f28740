import Foundation

/// What one epoch of a task's run measured (a text classifier's, a sequence-to-sequence model's).
public struct TaskEpochRecord: Codable, Sendable, Equatable {
  /// 1-based epoch.
  public var epoch: Int
  /// Mean cross-entropy per example and accuracy over the epoch's training batches (dropout on;
  /// for sequence-to-sequence models the loss is per target token and the accuracy is per token,
  /// with teacher forcing).
  public var trainLoss: Double, trainAccuracy: Double
  /// Mean cross-entropy and accuracy on the validation split after the epoch (for
  /// sequence-to-sequence models: exact-match accuracy of greedy decoding).
  public var validLoss: Double, validAccuracy: Double
  /// Training examples per second during the epoch.
  public var sequencesPerSecond: Double
  /// Seconds of training since the run started (across resumptions).
  public var elapsedSeconds: Double
}

extension TaskEpochRecord: EpochRecordKind {
  public var validationScore: Double { validLoss }

  public static var stateKeys: LoopStateKeys {
    LoopStateKeys(
      bestScore: "bestValidLoss", trainedExamples: "trainedTexts", epochLossCount: "epochTexts",
      epochExamples: "epochExamples")
  }

  public static func csvHeader(_ labels: RunLabels) -> String {
    "epoch,batch,train_loss,train_accuracy,valid_loss,valid_accuracy,examples_per_s,elapsed_s"
  }

  public static func csvRow(_ p: BatchProgress, labels: RunLabels) -> String {
    String(
      format: "%d,%d,%.6f,%.6f,,,%.1f,%.2f", p.epoch, p.batch, p.intervalLoss, p.intervalAccuracy, p.tokensPerSecond,
      p.runSeconds)
  }

  public func csvRow(labels: RunLabels) -> String {
    String(
      format: "%d,end,%.6f,%.6f,%.6f,%.6f,%.1f,%.2f", epoch, trainLoss, trainAccuracy, validLoss, validAccuracy,
      sequencesPerSecond, elapsedSeconds)
  }

  public static func progressLine(_ p: BatchProgress, labels: RunLabels, terminal: Bool) -> String {
    if terminal {
      return progressBar(p)
        + String(
          format: " | lr %.3g | %7.1f ms/batch | %7.0f %@/s | loss %.4f | accuracy %.4f | ETA %@", p.learningRate,
          p.msPerBatch, p.tokensPerSecond, labels.unit, p.intervalLoss, p.intervalAccuracy, eta(p))
    }
    return String(
      format: "| epoch %3d | batch %5d/%d | lr %.3g | loss %.4f | accuracy %.4f | %8.0f %@/s |", p.epoch, p.batch,
      p.batchesPerEpoch, p.learningRate, p.intervalLoss, p.intervalAccuracy, p.tokensPerSecond, labels.unit)
  }

  public func summaryLine(improved: Bool, labels: RunLabels) -> String {
    String(
      format: "| end of epoch %3d | train loss %.4f accuracy %.4f | valid loss %.4f %@ %.4f | %.0f %@/s |%@", epoch,
      trainLoss, trainAccuracy, validLoss, labels.accuracyName, validAccuracy, sequencesPerSecond, labels.unit,
      improved ? " best so far" : " no better")
  }

  public static func curveSVG(_ records: [TaskEpochRecord], labels: RunLabels) -> String {
    taskCurveSVG(records, accuracyName: labels.accuracyName)
  }
}

/// Where a classifier's or sequence-to-sequence model's run stands.
public typealias TaskRunState = LoopState<TaskEpochRecord>

extension LoopState where Record == TaskEpochRecord {
  /// A state at the start of a task's run at learning rate `learningRate`.
  public init(generator: SeededGenerator, learningRate: Double) {
    self.init(learningRate: learningRate, generator: generator)
    optimizerSteps = 0
  }
  /// The validation loss of the best epoch (which the loss, or with ``RunOptions/monitorAccuracy``
  /// the accuracy, chose).
  public var bestValidLoss: Double? {
    guard let bestEpoch else { return nil }
    return history.first { $0.epoch == bestEpoch }?.validLoss
  }
  /// Examples trained so far (``LoopState/trainedExamples``).
  public var trainedTexts: Int {
    get { trainedExamples }
    set { trainedExamples = newValue }
  }
  /// Texts or target tokens the epoch's loss is summed over (``LoopState/epochLossCount``).
  public var epochTexts: Int {
    get { epochLossCount }
    set { epochLossCount = newValue }
  }
}

/// What a task's run (or one invocation of a resumed run) measured.
public struct TaskReport: Sendable {
  /// Every completed epoch of the run, resumed ones included.
  public var epochs: [TaskEpochRecord] = []
  /// Test loss and accuracy of the best parameters (by validation loss, or accuracy) at the end.
  public var testLoss = Double.nan, testAccuracy = Double.nan
  /// The epoch whose parameters were kept, and its validation loss.
  public var bestEpoch: Int?, bestValidLoss: Double?
  /// Training examples per second over the run's training steps.
  public var sequencesPerSecond = 0.0
  /// Wall time of this invocation, evaluations included.
  public var seconds = 0.0
  /// Why this invocation stopped before the run's last epoch (a budget, Ctrl-C or early
  /// stopping), or nil.
  public var stoppedEarly: String?
}

extension TaskReport {
  /// The report of a task's run, from the run loop's.
  init(_ r: RunReport<TaskEpochRecord>, state: TaskRunState) {
    self.init()
    epochs = r.epochs
    (testLoss, testAccuracy) = (r.test.score, r.test.accuracy)
    (bestEpoch, bestValidLoss) = (state.bestEpoch, state.bestValidLoss)
    sequencesPerSecond = r.examplesPerSecond
    seconds = r.seconds
    stoppedEarly = r.stoppedEarly
  }
}

/// An SVG of training and validation loss and accuracy against epochs (`accuracyName` labels
/// the validation accuracy).
public func taskCurveSVG(_ records: [TaskEpochRecord], accuracyName: String = "accuracy") -> String {
  func series(_ label: String, _ color: String, _ key: KeyPath<TaskEpochRecord, Double>) -> LinePlot.Series {
    LinePlot.Series(
      label: label, color: color, points: records.map { (Double($0.epoch), $0[keyPath: key]) }, markers: true)
  }
  return LinePlot(
    series: [
      series("training loss", "#1f77b4", \.trainLoss), series("validation loss", "#ff7f0e", \.validLoss),
      series("training accuracy", "#2ca02c", \.trainAccuracy),
      series("validation \(accuracyName)", "#d62728", \.validAccuracy),
    ], xLabel: "epoch", yLabel: "cross-entropy and accuracy (log scale)", integerTicks: true
  ).svg()
}

/// The batches of epoch `epoch` (1-based) of a task's `count` training examples, as index lists:
/// a shuffle seeded by the run's seed and the epoch, then groups of 20 batches' examples sorted
/// by `lengths` (so a batch holds examples of similar length and little padding), cut into
/// batches of `n`, in shuffled order. A function of (seed, epoch) alone, so a resumed run
/// replays it.
package func bucketedBatches(
  count: Int, batchSize n: Int, seed: UInt64, epoch: Int, lengths: (Int) -> (Int, Int)
) -> [ArraySlice<Int>] {
  var g = SeededGenerator(seed: seed &+ 0x9E37_79B9_7F4A_7C15 &* UInt64(epoch))
  var order = Array(0..<count)
  for i in stride(from: order.count - 1, to: 0, by: -1) { order.swapAt(i, Int(g.next() % UInt64(i + 1))) }
  var batches: [ArraySlice<Int>] = []
  for start in stride(from: 0, to: order.count, by: 20 * n) {
    let sorted = order[start..<min(start + 20 * n, order.count)].sorted {
      let (a, b) = (lengths($0), lengths($1))
      return (a.0, a.1, $0) < (b.0, b.1, $1)
    }
    for b in stride(from: 0, to: sorted.count, by: n) { batches.append(sorted[b..<min(b + n, sorted.count)]) }
  }
  for i in stride(from: batches.count - 1, to: 0, by: -1) { batches.swapAt(i, Int(g.next() % UInt64(i + 1))) }
  return batches
}

/// The examples held out for validation: the last `fraction` of `count` after a shuffle seeded
/// by `seed`, and the rest in their order; nil when that holds none or all of them.
package func heldOutSplit(count: Int, fraction: Double, seed: UInt64) -> (train: [Int], held: [Int])? {
  let held = Int((Double(count) * fraction).rounded())
  guard held >= 1, held < count else { return nil }
  var g = SeededGenerator(seed: seed ^ 0x5EED_0F5A_11D5)
  var order = Array(0..<count)
  for i in stride(from: order.count - 1, to: 0, by: -1) { order.swapAt(i, Int(g.next() % UInt64(i + 1))) }
  return (order.prefix(count - held).sorted(), Array(order.suffix(held)))
}

/// Checks the options every task's run has; throws ``ConfigurationError`` naming the first bad one.
package func validateTaskOptions(
  batchSize: Int, epochs: Int, learningRate: Double, clip: Double, weightDecay: Double, patience: Int,
  validationSplit: Double, logInterval: Int
) throws {
  if batchSize < 1 { throw ConfigurationError("batch size must be at least 1, got \(batchSize)") }
  if epochs < 1 { throw ConfigurationError("epochs must be at least 1, got \(epochs)") }
  if !(learningRate > 0) || !learningRate.isFinite {
    throw ConfigurationError("learning rate must be a positive number, got \(learningRate)")
  }
  if !(clip >= 0) || !clip.isFinite { throw ConfigurationError("clip must be 0 (off) or positive, got \(clip)") }
  if !(weightDecay >= 0) || !weightDecay.isFinite {
    throw ConfigurationError("weight decay must be 0 (off) or positive, got \(weightDecay)")
  }
  if patience < 0 { throw ConfigurationError("patience must be 0 (off) or more, got \(patience)") }
  if !(validationSplit >= 0 && validationSplit < 1) {
    throw ConfigurationError("validation split must be in [0, 1), got \(validationSplit)")
  }
  if logInterval < 1 { throw ConfigurationError("log interval must be at least 1, got \(logInterval)") }
}

/// The number of batches ``bucketedBatches(count:batchSize:seed:epoch:lengths:)`` cuts `count`
/// examples into: the same in every epoch.
package func bucketedBatchCount(count: Int, batchSize n: Int) -> Int {
  stride(from: 0, to: count, by: 20 * n).reduce(0) { $0 + (min(20 * n, count - $1) + n - 1) / n }
}

extension TaskEpochRecord {
  /// The record of epoch `epoch` from the state before its end and its validation.
  init(state: TaskRunState, epoch: Int, valid: Evaluation) {
    let count = Double(max(state.epochLossCount, 1))
    self.init(
      epoch: epoch, trainLoss: state.epochLossSum / count, trainAccuracy: Double(state.epochCorrect) / count,
      validLoss: valid.score, validAccuracy: valid.accuracy,
      sequencesPerSecond: Double(state.epochExamples) / max(state.epochSeconds, 1e-9),
      elapsedSeconds: state.trainingSeconds)
  }
}

/// Restores a task's optimizer moments and NT-ASGD average from a checkpoint's `saved` tensors
/// (none in a `best.safetensors`: then they start again from zero).
func restoreOptimizer(
  _ saved: [[Float]], state: TaskRunState, optimizer: OptimizerState<Float>, average: ParameterAverage<Float>?
) {
  for (buffer, values) in zip(optimizer.savedBuffers(average: average, averaging: state.averagedSteps != nil), saved) {
    buffer.pointer.update(from: values, count: values.count)
  }
  optimizer.steps = saved.isEmpty ? 0 : state.optimizerSteps ?? 0
  average?.count = saved.isEmpty ? 0 : state.averagedSteps ?? 0
}

/// A task of independent examples — a classifier's texts, a sequence-to-sequence model's pairs —
/// trained in shuffled batches bucketed by length, one schedule step a batch, keeping the best
/// parameters when the run ends. Such a task says only its batches, its pass, its evaluation and
/// its checkpoint; the rest of ``TrainingTask`` is this extension's.
package protocol ExampleTask: TrainingTask where Record == TaskEpochRecord {
  /// The examples of the training, validation and test splits of the run under way.
  var splitSizes: (train: Int, valid: Int, test: Int) { get }
}

extension ExampleTask {
  package var profiler: Profiler? { nil }
  package var batchesPerEpoch: Int { bucketedBatchCount(count: splitSizes.train, batchSize: examplesPerStep) }
  package var stepsPerEpoch: Int { batchesPerEpoch }
  package var stepsPerBatch: Int { 1 }
  package var variableSteps: Bool { false }
  package var evaluationExamples: (valid: Int, test: Int) { (splitSizes.valid, splitSizes.test) }
  package var trainingExamples: Int { splitSizes.train }
  package var dataPosition: Int {
    get { 0 }
    set {}
  }
  package var restoresBestWhenFinished: Bool { true }

  /// This process's rows of a batch of examples at `indices` (all of them, but with several
  /// processes: its block of the batch's ``examplesPerStep`` rows, which may hold fewer
  /// examples or none in an epoch's last batch).
  package func share(of indices: ArraySlice<Int>) -> ArraySlice<Int> {
    let rows = group.share(of: examplesPerStep).range
    let start = min(indices.startIndex + rows.lowerBound, indices.endIndex)
    return indices[start..<min(indices.startIndex + rows.upperBound, indices.endIndex)]
  }

  /// What a process's share of a batch's gradient is the mean over: the batch's `count` (texts,
  /// target tokens) over the processes, so that the processes' mean is the batch's gradient.
  package func gradientDivisor(_ count: Int) -> Double { Double(count) / Double(group.size) }

  package func record(epoch: Int, state: TaskRunState, stepsDone: Int, valid: Evaluation) -> TaskEpochRecord {
    TaskEpochRecord(state: state, epoch: epoch, valid: valid)
  }

  package func finalLine(test: Evaluation, usedBest: Bool, state: TaskRunState, seconds: Double) -> String {
    String(
      format: "| end of training | test loss %.4f | test %@ %.4f (%@) | %.0f %@/s | %.1f s |", test.score,
      labels.accuracyName, test.accuracy, usedBest ? "best epoch \(state.bestEpoch ?? 0)" : "current parameters",
      Double(state.trainedExamples) / max(state.trainingSeconds, 1e-9), labels.unit, seconds)
  }

  /// Runs the one loop over this task from `state` (the task's own, updated as it goes): the
  /// task's log lines go to `log` (in place when `logIsTerminal`), and to `observers`.
  func fitExamples(
    state: inout TaskRunState, limits: RunLimits, log: @escaping (String) -> Void, logIsTerminal: Bool,
    observers: [any TrainingObserver<TaskEpochRecord>], stopRequested: () -> Bool
  ) throws -> TaskReport {
    let r = try RunLoop.fit(
      self, state: &state, limits: limits,
      observers: [ProgressPrinter(labels: labels, isTerminal: logIsTerminal, write: log)] + observers,
      stopRequested: stopRequested)
    return TaskReport(r, state: state)
  }
}
