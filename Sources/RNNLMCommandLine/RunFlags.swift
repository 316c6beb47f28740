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
  @Option(help: "Continue the run saved in this checkpoint (its last.safetensors).") public var resume: String?
  @Option(name: .customLong("max-minutes"), help: "Stop cleanly after this many minutes (resumable).")
  public var maxMinutes: Double?
  @Option(name: .customLong("max-epochs"), help: "Stop cleanly after this many epochs in this invocation (resumable).")
  public var maxEpochs: Int?
  @Option(
    name: .customLong("max-batches"), help: "Stop cleanly after this many batches in this invocation (resumable).")
  public var maxBatches: Int?
  @Option(help: "Compute threads (default: OPENBLAS_NUM_THREADS, else the number of CPUs).") public var threads: Int?

  public func validate() throws {
    if let threads, threads < 1 { throw ValidationError("--threads must be at least 1") }
    if let maxMinutes, !(maxMinutes > 0) { throw ValidationError("--max-minutes must be positive") }
    if let maxEpochs, maxEpochs < 1 { throw ValidationError("--max-epochs must be at least 1") }
    if let maxBatches, maxBatches < 1 { throw ValidationError("--max-batches must be at least 1") }
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

  /// The budgets as limits for a run saving into `directory`.
  func limits(saving directory: String) -> RunLimits {
    RunLimits(maxMinutes: maxMinutes, maxEpochs: maxEpochs, maxBatches: maxBatches, saveDirectory: directory)
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
    throw RunFailure(error.description)
  } catch let error as AllocationError {
    throw RunFailure(error.description)
  } catch let error as FileError {
    throw RunFailure(error.description)
  } catch let error as ConfigurationError {
    throw ValidationError(error.description)
  }
}
