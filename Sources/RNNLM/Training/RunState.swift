import Foundation

/// What one epoch of a task's run measured, as that task reports it: a language model's
/// perplexities (``EpochRecord``), a classifier's or sequence-to-sequence model's losses and
/// accuracies (``TaskEpochRecord``). The run loop keeps one per completed epoch in
/// ``LoopState/history`` and asks the record type how to print and plot it.
public protocol EpochRecordKind: Codable, Sendable, Equatable {
  /// 1-based epoch.
  var epoch: Int { get }
  /// What validation decides on, lower being better: perplexity, or loss.
  var validationScore: Double { get }
  /// The names under which ``LoopState`` stores its fields that each kind of run has always
  /// called by its own name, so that every checkpoint written before the run loops were merged
  /// still loads.
  static var stateKeys: LoopStateKeys { get }
  /// `metrics.csv`'s header, a row for a logged batch, and a row for this epoch.
  static func csvHeader(_ labels: RunLabels) -> String
  static func csvRow(_ progress: BatchProgress, labels: RunLabels) -> String
  func csvRow(labels: RunLabels) -> String
  /// The progress line of a batch: in place on a terminal, else a plain line (at log lines).
  static func progressLine(_ progress: BatchProgress, labels: RunLabels, terminal: Bool) -> String
  /// The line that ends an epoch.
  func summaryLine(improved: Bool, labels: RunLabels) -> String
  /// `curve.svg` of the run's epochs.
  static func curveSVG(_ records: [Self], labels: RunLabels) -> String
}

/// Words a run's lines use for what it counts and measures.
public struct RunLabels: Sendable, Equatable {
  /// What an example is called in rates ("tok" for "tok/s", "texts") and in counts ("tokens",
  /// "texts").
  public var unit: String, examples: String
  /// What validation decides on ("perplexity", "loss") and what its accuracy measures
  /// ("accuracy", "exact match").
  public var scoreName: String, accuracyName: String

  /// Labels of a run.
  public init(unit: String, examples: String, scoreName: String, accuracyName: String) {
    (self.unit, self.examples, self.scoreName, self.accuracyName) = (unit, examples, scoreName, accuracyName)
  }

  /// A language model's: tokens and perplexity, no accuracy.
  public static let languageModel = RunLabels(
    unit: "tok", examples: "tokens", scoreName: "perplexity", accuracyName: "accuracy")
}

/// The JSON names of ``LoopState``'s fields that differ between the kinds of run (see
/// ``EpochRecordKind/stateKeys``).
public struct LoopStateKeys: Sendable {
  /// The best validation score (``LoopState/bestScore``).
  public var bestScore: String
  /// Examples trained in the run (``LoopState/trainedExamples``).
  public var trainedExamples: String
  /// What the epoch's loss sum is divided by (``LoopState/epochLossCount``).
  public var epochLossCount: String
  /// Examples trained in the epoch under way (``LoopState/epochExamples``).
  public var epochExamples: String

  /// Keys of a kind of run.
  public init(bestScore: String, trainedExamples: String, epochLossCount: String, epochExamples: String) {
    (self.bestScore, self.trainedExamples, self.epochLossCount, self.epochExamples) = (
      bestScore, trainedExamples, epochLossCount, epochExamples
    )
  }
}

/// Where a run stands, enough to continue it exactly: what the run loop keeps for every task
/// (epochs, the schedule, the budget plan, early stopping, NT-ASGD, the generator) and saves in
/// every checkpoint as the `state` metadata. `Record` is the task's per-epoch record.
public struct LoopState<Record: EpochRecordKind>: Sendable, Equatable {
  /// Epochs completed.
  public var epochsCompleted = 0
  /// Batches done in the epoch under way (0 at an epoch boundary).
  public var batchesInEpoch = 0
  /// Schedule units (a language model's time steps per stream) done in the epoch under way, when
  /// a batch's units vary (variable BPTT); nil otherwise: then batchesInEpoch · units per batch.
  public var stepsInEpoch: Int?
  /// The epoch under way's summed loss, and what it is divided by for the epoch's training loss
  /// (a language model: batch means and batches; a task: example losses and examples or tokens).
  public var epochLossSum = 0.0
  public var epochLossCount = 0
  /// Correct predictions in the epoch under way (0 where there is no accuracy).
  public var epochCorrect = 0
  /// Examples (tokens, texts, pairs) trained in the epoch under way.
  public var epochExamples = 0
  /// Seconds of training steps in the epoch under way and in the whole run.
  public var epochSeconds = 0.0, trainingSeconds = 0.0
  /// Examples (tokens, texts, pairs) trained in the whole run.
  public var trainedExamples = 0
  /// The current learning rate (before a cosine's factor).
  public var learningRate: Double
  /// The best validation score so far (perplexity or loss), and its epoch; nil before the first
  /// validation.
  public var bestScore: Double?, bestEpoch: Int?
  /// Epochs since the best (early stopping counts these).
  public var epochsWithoutImprovement = 0
  /// Whether early stopping ended the run.
  public var stoppedEarly = false
  /// The run generator's state, as decimal strings (JSON numbers cannot hold 64 bits).
  public var generator: [String]
  /// Where the task's reader of training data stands (a language model's time index), carried
  /// across epochs.
  public var timeIndex = 0
  /// One record per completed epoch.
  public var history: [Record] = []
  /// Updates the optimizer has made (Adam's t); nil for a language model trained with SGD.
  public var optimizerSteps: Int?
  /// Iterates in NT-ASGD's average; nil until averaging began (and without averaging).
  public var averagedSteps: Int?
  /// Where a budget-planned cosine schedule ends, in schedule units since the run began; nil
  /// before it is planned (and without it). See ``BudgetPlanner``.
  public var plannedSteps: Int?
  /// Where the current plan took over from the one before it (a re-plan): the step, and the
  /// fraction of the cosine done there, which the new plan continues from (so the rate neither
  /// jumps nor rises). Nil for a plan never re-planned: then it runs from step 0, fraction 0.
  public var planAnchor: PlanAnchor?
  /// Training examples of the run's data (set by its first call), and a fingerprint of their
  /// contents (see ``DataFingerprint``); a resumed run on other data is refused.
  public var trainingExamples: Int?, dataFingerprint: String?
  /// The directory the run's data was read from, as an absolute path (so that a resumed run
  /// finds it without being told again); nil when the run was not told.
  public var dataDirectory: String?

  /// A state at the start of a run.
  public init(learningRate: Double, generator: SeededGenerator) {
    self.learningRate = learningRate
    self.generator = []
    setGenerator(generator)
  }

  /// Stores `g`'s state.
  public mutating func setGenerator(_ g: SeededGenerator) { generator = g.savedWords }

  /// The stored generator, or nil when the strings are not four 64-bit numbers.
  public func restoredGenerator() -> SeededGenerator? { SeededGenerator(savedWords: generator) }

  /// The schedule after a validation: a score below the best so far becomes the best;
  /// otherwise the learning rate is divided by `decay` (1 keeps it). Returns whether it improved.
  public mutating func recordValidation(_ score: Double, decay: Double) -> Bool {
    if let best = bestScore, !(score < best) {
      learningRate /= decay
      return false
    }
    bestScore = score
    return true
  }
}

extension LoopState: Codable {
  private struct Key: CodingKey {
    var stringValue: String
    var intValue: Int? { nil }
    init(_ name: String) { stringValue = name }
    init?(stringValue: String) { self.stringValue = stringValue }
    init?(intValue: Int) { nil }
  }

  /// Decodes a state; every field but the epochs, the generator and the history may be absent
  /// (checkpoints written before it existed), and takes its starting value then. A learning rate
  /// that is absent (a task's checkpoint before schedules) decodes as NaN: the checkpoint's
  /// reader replaces it with the options' rate.
  public init(from decoder: Decoder) throws {
    let c = try decoder.container(keyedBy: Key.self)
    let keys = Record.stateKeys
    func value<T: Decodable>(_ name: String, _ fallback: T) throws -> T {
      try c.decodeIfPresent(T.self, forKey: Key(name)) ?? fallback
    }
    epochsCompleted = try c.decode(Int.self, forKey: Key("epochsCompleted"))
    generator = try c.decode([String].self, forKey: Key("generator"))
    history = try c.decode([Record].self, forKey: Key("history"))
    batchesInEpoch = try value("batchesInEpoch", 0)
    stepsInEpoch = try value("stepsInEpoch", nil)
    epochLossSum = try value("epochLossSum", 0)
    epochLossCount = try value(keys.epochLossCount, batchesInEpoch)
    epochCorrect = try value("epochCorrect", 0)
    epochExamples = try value(keys.epochExamples, 0)
    epochSeconds = try value("epochSeconds", 0)
    trainingSeconds = try value("trainingSeconds", 0)
    trainedExamples = try value(keys.trainedExamples, 0)
    learningRate = try value("learningRate", Double.nan)
    bestScore = try value(keys.bestScore, nil)
    bestEpoch = try value("bestEpoch", nil)
    epochsWithoutImprovement = try value("epochsWithoutImprovement", 0)
    stoppedEarly = try value("stoppedEarly", false)
    timeIndex = try value("timeIndex", 0)
    optimizerSteps = try value("optimizerSteps", nil)
    averagedSteps = try value("averagedSteps", nil)
    plannedSteps = try value("plannedSteps", nil)
    planAnchor = try value("planAnchor", nil)
    trainingExamples = try value("trainingExamples", nil)
    dataFingerprint = try value("dataFingerprint", nil)
    dataDirectory = try value("dataDirectory", nil)
  }

  /// Encodes the state under the names its kind of run has always used.
  public func encode(to encoder: Encoder) throws {
    var c = encoder.container(keyedBy: Key.self)
    let keys = Record.stateKeys
    try c.encode(epochsCompleted, forKey: Key("epochsCompleted"))
    try c.encode(batchesInEpoch, forKey: Key("batchesInEpoch"))
    try c.encodeIfPresent(stepsInEpoch, forKey: Key("stepsInEpoch"))
    try c.encode(epochLossSum, forKey: Key("epochLossSum"))
    try c.encode(epochLossCount, forKey: Key(keys.epochLossCount))
    try c.encode(epochCorrect, forKey: Key("epochCorrect"))
    try c.encode(epochExamples, forKey: Key(keys.epochExamples))
    try c.encode(epochSeconds, forKey: Key("epochSeconds"))
    try c.encode(trainingSeconds, forKey: Key("trainingSeconds"))
    try c.encode(trainedExamples, forKey: Key(keys.trainedExamples))
    try c.encode(learningRate, forKey: Key("learningRate"))
    try c.encodeIfPresent(bestScore, forKey: Key(keys.bestScore))
    try c.encodeIfPresent(bestEpoch, forKey: Key("bestEpoch"))
    try c.encode(epochsWithoutImprovement, forKey: Key("epochsWithoutImprovement"))
    try c.encode(stoppedEarly, forKey: Key("stoppedEarly"))
    try c.encode(generator, forKey: Key("generator"))
    try c.encode(timeIndex, forKey: Key("timeIndex"))
    try c.encode(history, forKey: Key("history"))
    try c.encodeIfPresent(optimizerSteps, forKey: Key("optimizerSteps"))
    try c.encodeIfPresent(averagedSteps, forKey: Key("averagedSteps"))
    try c.encodeIfPresent(plannedSteps, forKey: Key("plannedSteps"))
    try c.encodeIfPresent(planAnchor, forKey: Key("planAnchor"))
    try c.encodeIfPresent(trainingExamples, forKey: Key("trainingExamples"))
    try c.encodeIfPresent(dataFingerprint, forKey: Key("dataFingerprint"))
    try c.encodeIfPresent(dataDirectory, forKey: Key("dataDirectory"))
  }
}

/// Where a re-planned cosine schedule continues from: see ``LoopState/planAnchor``.
public struct PlanAnchor: Codable, Sendable, Equatable {
  /// Schedule units since the run began at the re-plan.
  public var steps: Int
  /// The fraction (0…1) of the cosine done at `steps`.
  public var fraction: Double

  /// An anchor at `steps`, `fraction` of the cosine done.
  public init(steps: Int, fraction: Double) {
    self.steps = steps
    self.fraction = fraction
  }
}

/// A 64-bit FNV-1a hash of a run's training data (token ids and labels in order), as 16 hex
/// digits: a resumed run checks that its data is the data it was trained on. (Swift's `Hasher`
/// is seeded anew in every process, so it cannot be saved.)
public struct DataFingerprint {
  /// The FNV-1a hash so far.
  package private(set) var hash: UInt64 = 0xcbf2_9ce4_8422_2325

  /// An empty fingerprint.
  public init() {}

  /// Adds `values` in order, and their count (so that [1, 2] + [3] differs from [1] + [2, 3]).
  public mutating func add(_ values: some Collection<Int32>) {
    add(UInt32(truncatingIfNeeded: values.count))
    for v in values { add(UInt32(bitPattern: v)) }
  }

  /// Adds one 32-bit value, byte by byte.
  public mutating func add(_ value: UInt32) {
    for shift in stride(from: 0, to: 32, by: 8) {
      hash = (hash ^ UInt64((value >> UInt32(shift)) & 0xff)) &* 0x100_0000_01b3
    }
  }

  /// Adds raw bytes (a buffer of parameters, say) in order.
  package mutating func add(_ bytes: UnsafeRawBufferPointer) {
    for byte in bytes { hash = (hash ^ UInt64(byte)) &* 0x100_0000_01b3 }
  }

  /// The hash as 16 hexadecimal digits.
  public var value: String {
    let hex = String(hash, radix: 16)
    return String(repeating: "0", count: 16 - hex.count) + hex
  }
}
