import ArgumentParser
import Foundation
import RNNLM

/// The flags every training run shares (`train-ptb`, `ppl-bench`, `train-classifier`,
/// `train-seq2seq`): where to save, what to resume, the budgets and the thread count.
public struct RunFlags: ParsableArguments {
  public init() {}

  @Option(
    help:
      "Directory for best.safetensors, last.safetensors, metrics.csv, curve.svg (default: a new runs/<preset or task>-<n>; when resuming, the checkpoint's directory)."
  )
  public var save: String?
  @Option(
    help:
      "Continue the run saved in this checkpoint (its last.safetensors), on the data it was trained on unless --data is given."
  )
  public var resume: String?
  @Option(name: .customLong("max-minutes"), help: "Stop cleanly after this many minutes (resumable).")
  public var maxMinutes: Double?
  @Option(name: .customLong("max-epochs"), help: "Stop cleanly after this many epochs in this invocation (resumable).")
  public var maxEpochs: Int?
  @Option(
    name: .customLong("max-batches"), help: "Stop cleanly after this many batches in this invocation (resumable).")
  public var maxBatches: Int?
  @Option(
    name: .customLong("checkpoint-every"),
    help:
      "Also write last.safetensors in the middle of an epoch once this many minutes have passed since the last save, so that a killed run loses at most that much; 0 only at epoch ends and stops (default 5)."
  )
  public var checkpointEvery: Double?
  @Flag(
    name: .customLong("overlap-allreduce"),
    help:
      "Under mpirun: sum each layer's gradient over the processes while backward computes the layers below (a communication thread), instead of the whole gradient after backward. The same result; faster where a core is free for the thread and the links are slow against a step."
  )
  public var overlapAllreduce = false
  @Option(
    help:
      "Compute threads of this process (default: OPENBLAS_NUM_THREADS, else the number of CPUs; under mpirun, the CPUs shared among the machine's processes)."
  )
  public var threads: Int?

  public func validate() throws {
    if let threads, threads < 1 { throw ValidationError("--threads must be at least 1") }
    if let maxMinutes, !(maxMinutes > 0) { throw ValidationError("--max-minutes must be positive") }
    if let maxEpochs, maxEpochs < 1 { throw ValidationError("--max-epochs must be at least 1") }
    if let maxBatches, maxBatches < 1 { throw ValidationError("--max-batches must be at least 1") }
    if let checkpointEvery, !(checkpointEvery >= 0) || !checkpointEvery.isFinite {
      throw ValidationError("--checkpoint-every must be 0 (off) or a positive number of minutes")
    }
  }

  /// Refuses `shapeFlags` (the names of the given flags that change a model or its training)
  /// when resuming.
  func refuseChanges(_ shapeFlags: [String]) throws {
    if resume != nil, !shapeFlags.isEmpty {
      throw ValidationError(
        "\(shapeFlags.joined(separator: ", ")) cannot change a resumed run; it continues with its saved settings (only --epochs and the budgets may change)"
      )
    }
  }

  /// The run's directory: --save, else the resumed checkpoint's, else a new `runs/<task>-<n>`;
  /// checked, and for a new run (`fresh`) refused when it already holds a run's checkpoints.
  func runDirectory(task: String, fresh: Bool) throws -> String {
    let directory = save ?? resume.map { ($0 as NSString).deletingLastPathComponent } ?? freshRunDirectory(task)
    try checkRunDirectory(directory)
    if fresh {
      for file in ["best.safetensors", "last.safetensors"]
      where FileManager.default.fileExists(atPath: (directory as NSString).appendingPathComponent(file)) {
        throw RunFailure(
          "\(directory) already holds a run (\(file)); continue it with --resume \(directory)/last.safetensors or choose another --save directory"
        )
      }
    }
    return directory
  }

  /// The budgets as limits for a run saving into `directory`, its data read from `data`.
  func limits(saving directory: String, data: String) -> RunLimits {
    var limits = RunLimits(
      maxMinutes: maxMinutes, maxEpochs: maxEpochs, maxBatches: maxBatches, saveDirectory: directory)
    limits.dataDirectory = data
    let every = checkpointEvery ?? 5
    limits.checkpointMinutes = every > 0 ? every : nil
    limits.overlapGradientSum = overlapAllreduce
    return limits
  }

  /// The data directory of a run: `--data`, else the one a resumed run was trained on (saved
  /// with it), else nil.
  func dataDirectory(given: String?, saved: String?) -> String? { given ?? (resume != nil ? saved : nil) }

  /// ``dataDirectory(given:saved:)``, or a usage error: a new run needs `--data` (`howToMake`
  /// says how to write such data); a run resumed from a checkpoint saved before runs kept their
  /// data directory needs it again.
  func requireDataDirectory(given: String?, saved: String?, howToMake: String) throws -> String {
    guard let directory = dataDirectory(given: given, saved: saved) else {
      throw ValidationError(
        resume.map { "\($0) does not say where its data is (it was saved before runs kept that): give --data DIR" }
          ?? "give --data DIR (\(howToMake))")
    }
    return directory
  }
}

/// The learning-rate schedule and the stopping rule, as every training command has them
/// (`train-ptb`, `ppl-bench`, `train-classifier`, `train-seq2seq`).
public struct ScheduleFlags: ParsableArguments {
  public init() {}

  @Option(
    name: .customLong("lr-decay"),
    help:
      "Divide the learning rate by this whenever validation does not improve; 1 never (default: a language model's preset's, 4 for small and medium; 1 for classifiers and seq2seq)."
  )
  public var lrDecay: Double?
  @Flag(
    help:
      "Cosine annealing of the learning rate to 0 at the end of --epochs (choose --epochs to fit a budget). Replaces a preset's schedule."
  )
  public var cosine = false
  @Flag(
    name: .customLong("cosine-budget"),
    help:
      "Cosine annealing to 0 at the end of --max-minutes: planned from the first batches' speed, evaluations included, and re-planned from the measured speed, longer or shorter, the cosine continuing from where it stood; the run ends there. Replaces a preset's schedule."
  )
  public var cosineBudget = false
  @Flag(
    name: .customLong("asgd"),
    help: "NT-ASGD: average the parameters once validation stalls (see --nonmono); evaluate and save the average.")
  public var asgd = false
  @Option(help: "NT-ASGD's non-monotone interval in epochs (default 5).") public var nonmono: Int?
  @Option(
    help:
      "Stop when validation has not improved for this many epochs; 0 never (default 0 for language models, 3 for classifiers and seq2seq). The best parameters are tested either way."
  )
  public var patience: Int?
  @Option(
    help:
      "What decides the best epoch, patience and --lr-decay: the validation loss (default) or accuracy (classifiers' accuracy, seq2seq's exact match; Keras' monitor='val_accuracy')."
  )
  public var monitor: Monitor?

  /// The validation figure a run watches.
  public enum Monitor: String, ExpressibleByArgument, CaseIterable { case loss, accuracy }

  /// The names of the given flags (they change a run, so a resumed run refuses them).
  var given: [String] {
    [
      ("--lr-decay", lrDecay != nil), ("--cosine", cosine), ("--cosine-budget", cosineBudget), ("--asgd", asgd),
      ("--nonmono", nonmono != nil), ("--patience", patience != nil), ("--monitor", monitor != nil),
    ].filter(\.1).map(\.0)
  }

  public func validate() throws {
    if cosineBudget && cosine { throw ValidationError("--cosine and --cosine-budget are two schedules: choose one") }
  }

  /// `options` with the given flags applied; a schedule flag replaces the options' schedule.
  public func apply<O: RunOptions>(to options: O) -> O {
    var o = options
    if let lrDecay { o.learningRateDecay = lrDecay }
    if cosine { (o.cosineSchedule, o.cosineToBudget) = (true, false) }
    if cosineBudget { (o.cosineSchedule, o.cosineToBudget) = (false, true) }
    if asgd { o.averaging = true }
    if let nonmono { o.nonmono = nonmono }
    if let patience { o.patience = patience }
    if let monitor { o.monitorAccuracy = monitor == .accuracy }
    return o
  }

  /// Refuses `--cosine-budget` without `--max-minutes` in a new run.
  func requireTimeBudget(_ run: RunFlags) throws {
    if cosineBudget, run.maxMinutes == nil, run.resume == nil {
      throw ValidationError("--cosine-budget anneals to the end of the time budget: give --max-minutes")
    }
  }
}

/// Runs `body`, turning the library's errors into one-line ``RunFailure``s (bad files, data,
/// runs) or `ValidationError`s (bad configurations), as the training executables report them.
func reportingRunErrors<R>(_ body: () throws -> R) throws -> R {
  do {
    return try body()
  } catch let error as DataError {
    throw RunFailure(error.description)
  } catch let error as CheckpointError {
    throw RunFailure(error.description)
  } catch let error as TrainingError {
    throw RunFailure(error.description, shared: true)
  } catch let error as AllocationError {
    throw RunFailure(error.description)
  } catch let error as FileError {
    throw RunFailure(error.description)
  } catch let error as ConfigurationError {
    throw ValidationError(error.description)
  }
}

/// Writes to standard error how many texts (`what`: "texts with no words") were skipped, and where
/// the first was; nothing when none were.
func warnOfSkippedTexts(_ count: Int, first: String?, what: String) {
  guard count > 0, let first, !consoleIsMuted else { return }
  FileHandle.standardError.write(
    Data("warning: skipped \(count) \(what) (the first: \(first)); --refuse-empty-texts makes this an error\n".utf8))
}
