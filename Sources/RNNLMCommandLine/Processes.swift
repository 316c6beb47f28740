import ArgumentParser
import Foundation
import RNNLM

/// The processes of this run (``ProcessGroup/world()``: those mpirun started, or this one) with
/// the compute threads set: `--threads`, else the CPUs shared among the processes on this
/// machine. Only rank 0 writes to the console.
func startProcesses(_ run: RunFlags) throws -> ProcessGroup {
  let group: ProcessGroup
  do { group = try ProcessGroup.world() } catch let error as ParallelError { throw RunFailure(error.description) }
  if let threads = run.threads {
    ComputeThreads.set(threads)
  } else if group.localSize > 1 {
    ComputeThreads.set(max(1, ProcessInfo.processInfo.activeProcessorCount / group.localSize))
  }
  if !group.isRoot { muteConsole() }
  return group
}

/// A failure every process of a data-parallel run met alike (the run diverged, the processes
/// disagree): rank 0 reports it, the others end quietly.
struct SharedFailure: Error { let error: Error }
/// A failure of one process of a data-parallel run when starting, which that process reports
/// ("rank 2 of 4: …"); the others end quietly.
struct RankFailure: Error { let rank: Int, size: Int, error: Error }
/// Another process reports the failure.
struct QuietFailure: Error {}

/// Sets up a run on every process (`setup`: reading data, building the trainer) and makes sure
/// all of them did before any trains: when some failed, one line reports it — rank 0's when
/// every process failed alike, else the first failed rank's — and every process ends.
func startTogether<T>(_ group: ProcessGroup, _ setup: () throws -> T) throws -> T {
  let result = Result { try reportingRunErrors(setup) }
  var text: String?
  if case .failure(let error) = result { text = String(describing: error) }
  let (failed, alike) = group.failuresAtStart(text)
  guard let first = failed.first else { return try result.get() }
  guard case .failure(let error) = result else { throw QuietFailure() }
  if alike { throw group.isRoot ? SharedFailure(error: error) : QuietFailure() }
  throw group.rank == first ? RankFailure(rank: group.rank, size: group.size, error: error) : QuietFailure()
}

/// Trains (`body`: the trainer's run) on every process: a failure every process meets alike
/// (``TrainingError``: divergence, processes that disagree, a resume refused) is reported by
/// rank 0 alone.
func trainTogether<T>(_ group: ProcessGroup, _ body: () throws -> T) throws -> T {
  do {
    return try reportingRunErrors(body)
  } catch let error as RunFailure where error.shared && group.size > 1 {
    throw group.isRoot ? SharedFailure(error: error) : QuietFailure()
  }
}
