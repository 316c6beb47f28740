import Foundation
import Testing

@testable import RNNLM

/// Checkpoints written by the toolkit before its run loops were merged into one (commit 4edc37c,
/// `scripts/make-fixtures.sh`) still resume exactly: each `mid.safetensors` (a run stopped in the
/// middle of an epoch), resumed for five batches with today's code, must give the parameters,
/// optimizer moments, carried state and run state of the `end.safetensors` the earlier code wrote
/// from it. Counts, the random generator and the configuration must match bit for bit; floats
/// match to within the rounding of a different summation order, because OpenBLAS's kernels (and
/// so the order of a product's sums) depend on the processor the test runs on: the tolerance is
/// a small fraction of what the five batches moved the parameters, so a resume that lost any
/// part of the state (moments, carried state, the generator's position, the schedule) fails.
/// Times are not compared (they are measured).
@Suite struct FixtureTests {
  /// `Tests/Fixtures/<name>/<file>`.
  static func fixture(_ name: String, _ file: String) -> String {
    URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent()
      .appendingPathComponent("Fixtures/\(name)/\(file)").path
  }

  /// The repository's tiny corpus.
  static var tinyCorpus: String {
    URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent()
      .deletingLastPathComponent().appendingPathComponent("corpora/tiny").path
  }

  /// `state` without what is measured in seconds (and the rates derived from them) and, for a
  /// language model (`languageModel`), without the two counts its state did not keep before
  /// (the epoch's tokens and the data's size).
  static func untimed<R>(_ state: LoopState<R>, languageModel: Bool = false) -> LoopState<R> {
    var s = state
    (s.epochSeconds, s.trainingSeconds) = (0, 0)
    s.history = []
    (s.dataFingerprint, s.dataDirectory) = (nil, nil)  // new: not kept before
    if languageModel { (s.epochExamples, s.trainingExamples) = (0, nil) }
    return s
  }

  /// What a different summation order may leave after five batches of these tiny runs (up to
  /// 2.2e-7 measured with OpenBLAS's Prescott, Haswell and Cooperlake kernels on one Intel Xeon).
  static let rounding = 1e-5

  /// `resumed` matches `end` to within rounding, array by array, while `mid` (five batches
  /// earlier) is far from it: some value moved by more than 20 × rounding × (1 + its size), so
  /// the check can tell a run that resumed from one that merely ran.
  static func expectResumed(
    _ resumed: [[Float]], _ end: [[Float]], mid: [[Float]], _ what: String,
    sourceLocation: SourceLocation = #_sourceLocation
  ) {
    #expect(
      resumed.count == end.count && mid.count == end.count, "\(what): array counts", sourceLocation: sourceLocation)
    for (r, e) in zip(resumed, end) {
      expectClose(r, e, tolerance: rounding, what, sourceLocation: sourceLocation)
    }
    let (flatMid, flatEnd) = (mid.flatMap { $0 }, end.flatMap { $0 })
    let size = Double(flatEnd.map(abs).max() ?? 0)
    #expect(
      flatMid.count == flatEnd.count && maxAbsoluteDifference(flatMid, flatEnd).value > 20 * rounding * (1 + size),
      "\(what): five batches moved too little", sourceLocation: sourceLocation)
  }

  /// A run state's float sums compared to within rounding, everything else exactly.
  static func expectSameState<R: Equatable>(
    _ resumed: LoopState<R>, _ end: LoopState<R>, sourceLocation: SourceLocation = #_sourceLocation
  ) {
    var (r, e) = (resumed, end)
    let sums = (r.epochLossSum, e.epochLossSum)
    #expect(abs(sums.0 - sums.1) <= rounding * (1 + abs(sums.1)), sourceLocation: sourceLocation)
    r.epochLossSum = e.epochLossSum
    #expect(r == e, sourceLocation: sourceLocation)
  }

  @Test(arguments: ["lm-sgd", "lm-adam", "lm-awd", "lm-budget"])
  func languageModelFixturesResumeExactly(name: String) throws {
    let mid = try Checkpoint.read(from: Self.fixture(name, "mid.safetensors"))
    let end = try Checkpoint.read(from: Self.fixture(name, "end.safetensors"))
    #expect(mid.state.batchesInEpoch > 0 && end.state.batchesInEpoch == mid.state.batchesInEpoch + 5)
    if name == "lm-budget" { #expect(mid.state.plannedSteps != nil && mid.state.planAnchor != nil) }
    if name == "lm-adam" { #expect(!mid.optimizerState.isEmpty) }
    let data = try PTB.load(directory: Self.tinyCorpus, verify: false)
    let trainer = try Trainer(resuming: mid)
    #expect(trainer.resumedWithCarriedState)
    let dir = try DataTests.temporaryDirectory()
    let report = try trainer.run(data, limits: RunLimits(maxBatches: 5, saveDirectory: dir))
    #expect(report.stoppedEarly == "batch budget of 5 reached")
    let resumed = try Checkpoint.read(from: dir + "/last.safetensors")
    Self.expectResumed([resumed.parameters], [end.parameters], mid: [mid.parameters], "parameters")
    #expect(resumed.optimizerState.count == end.optimizerState.count)
    for (r, e) in zip(resumed.optimizerState, end.optimizerState) {
      expectClose(r, e, tolerance: Self.rounding, "optimizer moments")
    }
    Self.expectResumed(
      resumed.recurrentStates.flatMap { $0 }, end.recurrentStates.flatMap { $0 },
      mid: mid.recurrentStates.flatMap { $0 }, "carried states")
    Self.expectSameState(Self.untimed(resumed.state, languageModel: true), Self.untimed(end.state, languageModel: true))
    #expect(resumed.training == end.training && resumed.config == end.config)
  }

  @Test func classifierFixtureResumesExactly() throws {
    let data = try DataTests.temporaryDirectory()
    try SentimentCorpus.write(to: data, trainCount: 300, testCount: 60, seed: 5)
    let mid = try ClassifierCheckpoint.read(from: Self.fixture("classifier", "mid.safetensors"))
    let end = try ClassifierCheckpoint.read(from: Self.fixture("classifier", "end.safetensors"))
    // Written before schedules reached the classifier: the options' constant rate is the state's.
    #expect(mid.state.learningRate == mid.training.learningRate)
    let trainer = try ClassifierTrainer(resuming: mid)
    let dir = try DataTests.temporaryDirectory()
    let splits = try trainer.splits(of: try LabelledTexts.load(directory: data))
    let report = try trainer.run(splits, limits: RunLimits(maxBatches: 5, saveDirectory: dir))
    #expect(report.stoppedEarly == "batch budget of 5 reached")
    let resumed = try ClassifierCheckpoint.read(from: dir + "/last.safetensors")
    Self.expectResumed([resumed.parameters], [end.parameters], mid: [mid.parameters], "parameters")
    #expect(!end.optimizerState.isEmpty)
    Self.expectResumed(resumed.optimizerState, end.optimizerState, mid: mid.optimizerState, "optimizer moments")
    Self.expectSameState(Self.untimed(resumed.state), Self.untimed(end.state))
  }

  @Test func seq2seqFixtureResumesExactly() throws {
    let data = try DataTests.temporaryDirectory()
    try Seq2SeqTasks.write(
      Seq2SeqTasks.addition(count: 400, seed: 5, digits: 2), to: data, validCount: 40, testCount: 40)
    let mid = try Seq2SeqCheckpoint.read(from: Self.fixture("seq2seq", "mid.safetensors"))
    let end = try Seq2SeqCheckpoint.read(from: Self.fixture("seq2seq", "end.safetensors"))
    let trainer = try Seq2SeqTrainer(resuming: mid)
    let dir = try DataTests.temporaryDirectory()
    let splits = try trainer.splits(of: try SequencePairs.load(directory: data))
    let report = try trainer.run(splits, limits: RunLimits(maxBatches: 5, saveDirectory: dir))
    #expect(report.stoppedEarly == "batch budget of 5 reached")
    let resumed = try Seq2SeqCheckpoint.read(from: dir + "/last.safetensors")
    Self.expectResumed([resumed.parameters], [end.parameters], mid: [mid.parameters], "parameters")
    #expect(!end.optimizerState.isEmpty)
    Self.expectResumed(resumed.optimizerState, end.optimizerState, mid: mid.optimizerState, "optimizer moments")
    Self.expectSameState(Self.untimed(resumed.state), Self.untimed(end.state))
  }
}
