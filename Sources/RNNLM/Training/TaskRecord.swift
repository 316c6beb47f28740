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

/// Where a task's run stands, enough to continue it exactly.
public struct TaskRunState: Codable, Sendable, Equatable {
  /// Epochs completed, and batches done in the epoch under way.
  public var epochsCompleted = 0, batchesInEpoch = 0
  /// The epoch under way's summed loss, correct predictions and examples counted (texts, or
  /// target tokens).
  public var epochLossSum = 0.0, epochCorrect = 0, epochTexts = 0
  /// Examples (texts, sequence pairs) trained in the epoch under way.
  public var epochExamples = 0
  /// Seconds of training steps in the epoch under way and in the whole run.
  public var epochSeconds = 0.0, trainingSeconds = 0.0
  /// Examples trained so far.
  public var trainedTexts = 0
  /// The best validation loss and its epoch (nil before the first validation).
  public var bestValidLoss: Double?, bestEpoch: Int?
  /// Epochs since the best (early stopping counts these).
  public var epochsWithoutImprovement = 0
  /// Whether early stopping ended the run.
  public var stoppedEarly = false
  /// Updates the optimizer has made (Adam's t).
  public var optimizerSteps = 0
  /// The run generator's state, as decimal strings.
  public var generator: [String]
  /// One record per completed epoch.
  public var history: [TaskEpochRecord] = []
  /// Training examples of the run's data (set by its first epoch); a resumed run on other data
  /// is refused.
  public var trainingExamples: Int?

  /// A state at the start of a run.
  public init(generator: SeededGenerator) {
    self.generator = []
    setGenerator(generator)
  }

  /// Stores `g`'s state.
  public mutating func setGenerator(_ g: SeededGenerator) { generator = g.savedWords }

  /// The stored generator, or nil when malformed.
  public func restoredGenerator() -> SeededGenerator? { SeededGenerator(savedWords: generator) }

}

/// What a task's run (or one invocation of a resumed run) measured.
public struct TaskReport: Sendable {
  /// Every completed epoch of the run, resumed ones included.
  public var epochs: [TaskEpochRecord] = []
  /// Test loss and accuracy of the best parameters (by validation loss) at the end.
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

/// What one training or evaluation pass over a batch measured.
package struct BatchResult {
  /// Sum of the losses (natural log) of what the batch counts, filler rows excluded.
  package var lossSum: Double
  /// Correct predictions among them.
  package var correct: Int
  /// What was counted: texts, or target tokens.
  package var count: Int
  /// Examples (texts, sequence pairs) in the batch, filler rows excluded.
  package var examples: Int
}

/// A model that ``runEpochs(_:state:limits:stopRequested:log:)`` trains: shuffled batches of
/// examples, an optimizer step each, validation after every epoch, early stopping on validation
/// loss with the best parameters restored, checkpoints for exact resumption.
package protocol EpochTask: AnyObject {
  /// Epochs of the whole run, early-stopping patience (0: never), batches between log lines.
  var epochs: Int { get }
  var patience: Int { get }
  var logInterval: Int { get }
  /// The parameters trained.
  var parameters: ParameterStore<Float> { get }
  /// What an example is called in log lines: "texts", "pairs".
  var exampleName: String { get }
  /// The number of training examples.
  var trainingCount: Int { get }
  /// What the accuracy in log lines measures: "accuracy", "exact match".
  var accuracyName: String { get }
  /// The batches of epoch `epoch` (1-based) as index lists into the training examples; a function
  /// of the run's seed and the epoch alone, so that a resumed run replays them.
  func batches(epoch: Int) -> [ArraySlice<Int>]
  /// One optimizer step on the examples at `indices`; a non-finite loss leaves the parameters.
  func trainingStep(_ indices: ArraySlice<Int>) -> BatchResult
  /// Mean loss and accuracy on the validation split, and on the test split.
  func validate() -> (loss: Double, accuracy: Double)
  func test() -> (loss: Double, accuracy: Double)
  /// Writes the current parameters to `path` with `state` (and the optimizer's moments unless
  /// `best`).
  func save(to path: String, best: Bool, state: TaskRunState) throws
  /// The parameters saved in the `best.safetensors` at `path`.
  func bestParameters(at path: String) throws -> [Float]
}

/// Trains `task` until its epochs are done, early stopping ends the run, or a limit of `limits`
/// is reached; then restores the best parameters (by validation loss) and reports their test
/// loss and accuracy. With a save directory, `best.safetensors`, `last.safetensors`,
/// `metrics.csv` and `curve.svg` are written there. `state` is the run's, updated as it goes.
package func runEpochs(
  _ task: some EpochTask, state: inout TaskRunState, limits: RunLimits, stopRequested: () -> Bool,
  log: (String) -> Void
) throws -> TaskReport {
  let start = Date()
  let paths = limits.saveDirectory.map { dir in
    (
      best: (dir as NSString).appendingPathComponent("best.safetensors"),
      last: (dir as NSString).appendingPathComponent("last.safetensors"),
      csv: (dir as NSString).appendingPathComponent("metrics.csv"),
      svg: (dir as NSString).appendingPathComponent("curve.svg")
    )
  }
  if let dir = limits.saveDirectory { try prepareRunDirectory(dir) }
  if let paths, !FileManager.default.fileExists(atPath: paths.csv) {
    try appendLine(
      "epoch,batch,train_loss,train_accuracy,valid_loss,valid_accuracy,examples_per_s,elapsed_s", to: paths.csv,
      create: true)
  }
  func lastGood() -> String? { paths.flatMap { FileManager.default.fileExists(atPath: $0.last) ? $0.last : nil } }
  var epochsThisCall = 0
  var batchesThisCall = 0
  var stopReason: String?
  var bestInMemory: [Float]?
  let (unit, accuracyName) = (task.exampleName, task.accuracyName)
  if let trained = state.trainingExamples, trained != task.trainingCount {
    throw TrainingError.incompatibleResume(
      "the run was trained on \(trained) training \(unit); these data have \(task.trainingCount)")
  }
  state.trainingExamples = task.trainingCount

  training: while state.epochsCompleted < task.epochs && !state.stoppedEarly {
    let epoch = state.epochsCompleted + 1
    let batches = task.batches(epoch: epoch)
    var interval = (loss: 0.0, correct: 0, count: 0, examples: 0, start: Date())
    while state.batchesInEpoch < batches.count {
      let b = state.batchesInEpoch
      let stepStart = Date()
      let r = task.trainingStep(batches[b])
      guard r.lossSum.isFinite else {
        throw TrainingError.diverged(epoch: epoch, batch: b + 1, loss: r.lossSum, kept: lastGood())
      }
      let seconds = Date().timeIntervalSince(stepStart)
      state.epochSeconds += seconds
      state.trainingSeconds += seconds
      state.trainedTexts += r.examples
      state.batchesInEpoch = b + 1
      state.epochLossSum += r.lossSum
      state.epochCorrect += r.correct
      state.epochTexts += r.count
      state.epochExamples += r.examples
      interval.loss += r.lossSum
      interval.correct += r.correct
      interval.count += r.count
      interval.examples += r.examples
      batchesThisCall += 1
      let epochDone = state.batchesInEpoch == batches.count
      if state.batchesInEpoch % task.logInterval == 0 || epochDone {
        let rate = Double(interval.examples) / max(Date().timeIntervalSince(interval.start), 1e-9)
        let loss = interval.loss / Double(max(interval.count, 1))
        let accuracy = Double(interval.correct) / Double(max(interval.count, 1))
        log(
          String(
            format: "| epoch %3d | batch %5d/%d | loss %.4f | %@ %.4f | %8.0f %@/s |\n", epoch, state.batchesInEpoch,
            batches.count, loss, "accuracy", accuracy, rate, unit))
        if let paths {
          try appendLine(
            String(
              format: "%d,%d,%.6f,%.6f,,,%.1f,%.2f", epoch, state.batchesInEpoch, loss, accuracy, rate,
              state.trainingSeconds), to: paths.csv)
        }
        interval = (0, 0, 0, 0, Date())
      }
      stopReason = limits.stopReasonAfterBatch(
        start: start, batchesThisCall: batchesThisCall, epochDone: epochDone, stopRequested: stopRequested)
      if stopReason != nil { break training }
    }

    // End of epoch: validate, keep the best, count epochs without improvement.
    let valid = task.validate()
    guard valid.loss.isFinite else {
      throw TrainingError.diverged(epoch: epoch, batch: batches.count, loss: valid.loss, kept: lastGood())
    }
    let record = TaskEpochRecord(
      epoch: epoch, trainLoss: state.epochLossSum / Double(max(state.epochTexts, 1)),
      trainAccuracy: Double(state.epochCorrect) / Double(max(state.epochTexts, 1)), validLoss: valid.loss,
      validAccuracy: valid.accuracy, sequencesPerSecond: Double(state.epochExamples) / max(state.epochSeconds, 1e-9),
      elapsedSeconds: state.trainingSeconds)
    state.history.append(record)
    state.epochsCompleted = epoch
    (state.batchesInEpoch, state.epochLossSum, state.epochCorrect, state.epochTexts, state.epochExamples) = (
      0, 0, 0, 0, 0
    )
    state.epochSeconds = 0
    let improved = state.bestValidLoss.map { valid.loss < $0 } ?? true
    if improved {
      (state.bestValidLoss, state.bestEpoch, state.epochsWithoutImprovement) = (valid.loss, epoch, 0)
      if let paths {
        try task.save(to: paths.best, best: true, state: state)
      } else {
        bestInMemory = task.parameters.values.array
      }
    } else {
      state.epochsWithoutImprovement += 1
    }
    log(
      String(
        format: "| end of epoch %3d | train loss %.4f accuracy %.4f | valid loss %.4f %@ %.4f | %.0f %@/s |%@\n",
        epoch, record.trainLoss, record.trainAccuracy, record.validLoss, accuracyName, record.validAccuracy,
        record.sequencesPerSecond, unit, improved ? " best so far" : " no better"))
    if task.patience > 0 && state.epochsWithoutImprovement >= task.patience && epoch < task.epochs {
      state.stoppedEarly = true
      stopReason =
        "early stopping: validation loss has not improved for \(task.patience) epoch\(task.patience == 1 ? "" : "s"); the best was epoch \(state.bestEpoch!)"
    }
    if let paths {
      try appendLine(
        String(
          format: "%d,end,%.6f,%.6f,%.6f,%.6f,%.1f,%.2f", epoch, record.trainLoss, record.trainAccuracy,
          record.validLoss, record.validAccuracy, record.sequencesPerSecond, record.elapsedSeconds), to: paths.csv)
      try? taskCurveSVG(state.history, accuracyName: accuracyName).write(
        toFile: paths.svg, atomically: true, encoding: .utf8)
      try task.save(to: paths.last, best: false, state: state)
    }
    if state.stoppedEarly { break }
    epochsThisCall += 1
    if state.epochsCompleted < task.epochs,
      let reason = limits.stopReasonAfterEpoch(start: start, epochsThisCall: epochsThisCall)
    {
      stopReason = reason
      break
    }
  }

  if let stopReason, !state.stoppedEarly, let paths {
    if state.batchesInEpoch > 0 { try task.save(to: paths.last, best: false, state: state) }
    log("stopped: \(stopReason); saved \(paths.last) (resume with --resume \(paths.last))\n")
  } else if let stopReason {
    log("stopped: \(stopReason)\n")
  }

  // Restore the best parameters (Keras' restore_best_weights) and test them; the current ones
  // come back afterwards unless the run is over, so a resumed run continues from them.
  var best = bestInMemory
  if best == nil, let paths, FileManager.default.fileExists(atPath: paths.best) {
    best = try task.bestParameters(at: paths.best)
  }
  let values = task.parameters.values
  let current = values.array
  if let best { values.pointer.update(from: best, count: best.count) }
  let test = task.test()
  let finished = state.epochsCompleted >= task.epochs || state.stoppedEarly
  if !finished { values.pointer.update(from: current, count: current.count) }
  var report = TaskReport()
  report.epochs = state.history
  (report.testLoss, report.testAccuracy) = test
  (report.bestEpoch, report.bestValidLoss) = (state.bestEpoch, state.bestValidLoss)
  report.sequencesPerSecond = Double(state.trainedTexts) / max(state.trainingSeconds, 1e-9)
  report.seconds = Date().timeIntervalSince(start)
  report.stoppedEarly = stopReason
  log(
    String(
      format: "| end of training | test loss %.4f | test %@ %.4f (%@) | %.0f %@/s | %.1f s |\n", test.loss,
      accuracyName, test.accuracy, best == nil ? "current parameters" : "best epoch \(state.bestEpoch ?? 0)",
      report.sequencesPerSecond, unit, report.seconds))
  return report
}

/// Appends `line` to the file at `path` (creating it when `create`).
private func appendLine(_ line: String, to path: String, create: Bool = false) throws {
  if create {
    do { try (line + "\n").write(toFile: path, atomically: true, encoding: .utf8) } catch {
      throw FileError(path: path, reason: "cannot be written: \(fileFailure(path, error: error))")
    }
    return
  }
  guard let handle = FileHandle(forWritingAtPath: path) else {
    throw FileError(path: path, reason: fileProblem(path) ?? "cannot be opened for writing")
  }
  defer { try? handle.close() }
  handle.seekToEndOfFile()
  handle.write(Data((line + "\n").utf8))
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
