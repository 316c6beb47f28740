import Foundation

/// The options of a run that the run loop reads, whatever the task: its epochs, the update rule
/// and the learning-rate schedule, NT-ASGD, early stopping and logging. Each task's options
/// (``TrainingOptions``, ``ClassifierTrainingOptions``, ``Seq2SeqTrainingOptions``) conform.
public protocol RunOptions: Codable, Sendable {
  /// Epochs of the whole run.
  var epochs: Int { get }
  /// The update rule and its starting learning rate.
  var optimizer: OptimizerKind { get }
  var learningRate: Double { get }
  /// The learning rate is divided by this whenever validation does not improve (1 keeps it).
  var learningRateDecay: Double { get set }
  /// Global gradient-norm bound (0: off), and L2 weight decay (0: off).
  var clip: Double { get }
  var weightDecay: Double { get }
  /// Cosine annealing over the run's epochs.
  var cosineSchedule: Bool { get set }
  /// Cosine annealing planned to end with the time budget (see ``BudgetPlanner``).
  var cosineToBudget: Bool { get set }
  /// NT-ASGD: once validation has not improved on the best of all but the last ``nonmono``
  /// epochs, the parameters are averaged over every update from then on, and validation, test
  /// and best.safetensors use the average.
  var averaging: Bool { get set }
  var nonmono: Int { get set }
  /// Early stopping after this many epochs without improvement; 0 never.
  var patience: Int { get set }
  /// Whether validation accuracy (higher is better) rather than the validation loss decides
  /// which epoch is best, improvement for patience and the learning-rate decay (Keras'
  /// `monitor='val_accuracy'`); for tasks that measure an accuracy.
  var monitorAccuracy: Bool { get set }
  /// Batches between log lines.
  var logInterval: Int { get }
}

/// The JSON names of the schedule's options, the same in every task's options.
private enum ScheduleKey: String, CodingKey {
  case learningRateDecay, cosineSchedule, cosineToBudget, averaging, nonmono, patience, monitorAccuracy
}

extension RunOptions {
  /// Reads the schedule's options from `decoder` (every task's options call it from their
  /// `init(from:)`); one that is absent — options saved before it existed — keeps the value it
  /// has, the default.
  mutating func decodeSchedule(from decoder: Decoder) throws {
    let c = try decoder.container(keyedBy: ScheduleKey.self)
    learningRateDecay = try c.decodeIfPresent(Double.self, forKey: .learningRateDecay) ?? learningRateDecay
    cosineSchedule = try c.decodeIfPresent(Bool.self, forKey: .cosineSchedule) ?? cosineSchedule
    cosineToBudget = try c.decodeIfPresent(Bool.self, forKey: .cosineToBudget) ?? cosineToBudget
    averaging = try c.decodeIfPresent(Bool.self, forKey: .averaging) ?? averaging
    nonmono = try c.decodeIfPresent(Int.self, forKey: .nonmono) ?? nonmono
    patience = try c.decodeIfPresent(Int.self, forKey: .patience) ?? patience
    monitorAccuracy = try c.decodeIfPresent(Bool.self, forKey: .monitorAccuracy) ?? monitorAccuracy
  }
}

/// The learning rate the run loop uses for each update: the state's rate (which a validation
/// that does not improve divides by the decay, see ``LoopState/recordValidation(_:decay:)``)
/// times a cosine's factor — over the epochs (`cosineSchedule`), over the budget plan
/// (`cosineToBudget`, at the full rate until it is planned), or 1.
public enum LearningRateSchedule {
  /// The cosine schedule's factor after `fraction` (0…1) of the run: ½ (1 + cos(π · fraction)).
  public static func cosineFactor(_ fraction: Double) -> Double {
    0.5 * (1 + Foundation.cos(Double.pi * min(max(fraction, 0), 1)))
  }

  /// The factor of the update after `stepsDone` schedule units of a run of `totalSteps` units
  /// (its epochs), given the run's state (its budget plan).
  public static func factor<R>(
    _ options: some RunOptions, state: LoopState<R>, stepsDone: Int, totalSteps: Int
  ) -> Double {
    if options.cosineSchedule { return cosineFactor(Double(stepsDone) / Double(totalSteps)) }
    if options.cosineToBudget, let planned = state.plannedSteps {
      return cosineFactor(BudgetPlanner.cosineFraction(steps: stepsDone, planned: planned, anchor: state.planAnchor))
    }
    return 1
  }

  /// Checks the schedule options every task shares; throws ``ConfigurationError`` naming the
  /// first bad one.
  package static func validate(_ options: some RunOptions) throws {
    if !(options.learningRateDecay >= 1) || !options.learningRateDecay.isFinite {
      throw ConfigurationError("learning-rate decay factor must be at least 1, got \(options.learningRateDecay)")
    }
    if options.cosineSchedule && options.cosineToBudget {
      throw ConfigurationError("choose one cosine schedule: over the epochs or over the time budget")
    }
    if options.nonmono < 0 { throw ConfigurationError("nonmono must be 0 or more, got \(options.nonmono)") }
    if options.patience < 0 { throw ConfigurationError("patience must be 0 (off) or more, got \(options.patience)") }
  }
}
