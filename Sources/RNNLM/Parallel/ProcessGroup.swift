import CCollectives
import COpenBLAS
import Foundation

/// Why the processes of a data-parallel run could not start together.
public struct ParallelError: Error, CustomStringConvertible {
  /// A one-line explanation.
  public let description: String
  init(_ description: String) { self.description = description }
}

/// The processes of a data-parallel run: every rank holds the whole model and trains on its
/// share of each batch, and after every backward pass the ranks sum their gradients, so that
/// every rank takes the same update and they stay identical.
///
/// Launched by `mpirun -np P …`, ``world()`` is the P processes mpirun started, talking over
/// MPI. Otherwise it is ``single``: one process, no MPI initialised at all, every operation here
/// doing nothing, so a run behaves exactly as it always has.
public final class ProcessGroup: @unchecked Sendable {
  /// This process's rank, 0..<size; rank 0 speaks for the run (prints, saves, writes metrics).
  public let rank: Int
  /// The number of processes.
  public let size: Int
  /// Processes of the run on this machine (for the default thread count).
  public let localSize: Int
  private let usesMPI: Bool
  /// Whether another thread than the one that started MPI may communicate (one at a time): what
  /// summing gradients during backward needs (``OverlappedGradientSum``).
  package private(set) var threadsMayCommunicate = false

  /// Whether this process speaks for the run.
  public var isRoot: Bool { rank == 0 }

  /// One process, without MPI.
  public static let single = ProcessGroup(rank: 0, size: 1, localSize: 1, usesMPI: false)

  private init(rank: Int, size: Int, localSize: Int, usesMPI: Bool) {
    (self.rank, self.size, self.localSize, self.usesMPI) = (rank, size, localSize, usesMPI)
  }

  /// Rank `rank` of `size` processes as far as shares go, in this one process: its collectives
  /// do nothing, so a test can compute each rank's share one after another and combine them.
  package static func simulated(rank: Int, of size: Int) -> ProcessGroup {
    ProcessGroup(rank: rank, size: size, localSize: 1, usesMPI: false)
  }

  /// Whether Open MPI's launcher (`mpirun`, `mpiexec`) started this process: it sets
  /// `OMPI_COMM_WORLD_SIZE` in every process it starts.
  public static var launchedByMPI: Bool { ProcessInfo.processInfo.environment["OMPI_COMM_WORLD_SIZE"] != nil }

  private static let launched: Result<ProcessGroup, ParallelError> = {
    guard launchedByMPI else { return .success(.single) }
    var rank: Int32 = 0
    var size: Int32 = 1
    var serialized: Int32 = 0
    let rc = rl_mpi_init(&rank, &size, &serialized)
    guard rc == 0 else { return .failure(ParallelError("MPI did not start: \(errorText(rc))")) }
    let local = Int(ProcessInfo.processInfo.environment["OMPI_COMM_WORLD_LOCAL_SIZE"] ?? "") ?? Int(size)
    let group = ProcessGroup(rank: Int(rank), size: Int(size), localSize: max(1, local), usesMPI: true)
    group.threadsMayCommunicate = serialized != 0
    if size > 1 {
      rl_end_on_termination(1)
      group.setTerminationNote(nil)
    }
    return .success(group)
  }()

  /// The processes of this run: those mpirun started (MPI is initialised on the first call), or
  /// ``single``.
  public static func world() throws -> ProcessGroup { try launched.get() }

  /// Ends MPI (every rank must call it, once, after the run); nothing without MPI.
  public func finish() {
    if usesMPI { _ = rl_mpi_finalize() }
  }

  /// Seconds spent summing gradients so far (``sumGradients(_:count:)``).
  package private(set) var gradientSumSeconds = 0.0

  // MARK: - Collectives

  /// A failed collective cannot be retried (a rank is gone or the network failed): one line on
  /// standard error, then the process ends; mpirun ends the others.
  private func check(_ rc: Int32, _ operation: String) {
    guard rc != 0 else { return }
    FileHandle.standardError.write(
      Data(
        endedLine(
          "rank \(rank) of \(size): \(operation) failed (\(Self.errorText(rc))): another of its processes stopped or the network failed"
        ).utf8))
    exit(1)
  }

  private static func errorText(_ rc: Int32) -> String {
    var text = [CChar](repeating: 0, count: 512)
    rl_mpi_error_text(rc, &text, Int32(text.count))
    return String(decoding: text.prefix { $0 != 0 }.map { UInt8(bitPattern: $0) }, as: UTF8.self)
  }

  /// Sums `count` floats at `values` over the ranks, in place, then scales them by 1 / size: the
  /// ranks' shares of a gradient become the gradient of the whole batch.
  package func averageGradients(_ values: UnsafeMutablePointer<Float>, count: Int) {
    guard usesMPI, size > 1 else { return }
    let start = rl_mpi_wtime()
    check(rl_mpi_sum_floats(values, count), "summing the gradients")
    gradientSumSeconds += rl_mpi_wtime() - start
    let chunk = Int(Int32.max)
    for start in stride(from: 0, to: count, by: chunk) {
      cblas_sscal(Int32(min(chunk, count - start)), 1 / Float(size), values + start, 1)
    }
  }

  /// Sums `values` over the ranks, in place.
  package func sum(_ values: inout [Double]) {
    guard usesMPI, size > 1 else { return }
    check(rl_mpi_sum_doubles(&values, Int32(values.count)), "a sum")
  }

  /// Rank 0's `values` on every rank.
  package func broadcast(_ values: inout [Double]) {
    guard usesMPI, size > 1 else { return }
    check(rl_mpi_broadcast_doubles(&values, Int32(values.count)), "a broadcast")
  }

  /// Rank 0's `bytes` on every rank (any length).
  package func broadcast(_ bytes: inout [UInt8]) {
    guard usesMPI, size > 1 else { return }
    var length = [Double(bytes.count)]
    broadcast(&length)
    if bytes.count != Int(length[0]) { bytes = [UInt8](repeating: 0, count: Int(length[0])) }
    if bytes.isEmpty { return }
    check(rl_mpi_broadcast_bytes(&bytes, Int32(bytes.count)), "a broadcast")
  }

  /// Rank 0's `values` (nil or `count` floats) on every rank.
  package func broadcast(_ values: [Float]?, count: Int) -> [Float]? {
    guard usesMPI, size > 1 else { return values }
    var present = [values == nil ? 0.0 : 1.0]
    broadcast(&present)
    guard present[0] != 0 else { return nil }
    var all = values ?? [Float](repeating: 0, count: count)
    precondition(all.count == count && count * 4 < Int(Int32.max), "a broadcast of \(count) floats")
    all.withUnsafeMutableBytes { check(rl_mpi_broadcast_bytes($0.baseAddress!, Int32($0.count)), "a broadcast") }
    return all
  }

  /// Every rank's `words` (the same count on each), in rank order.
  package func allGather(_ words: [UInt64]) -> [[UInt64]] {
    guard usesMPI, size > 1 else { return [words] }
    var all = [UInt64](repeating: 0, count: words.count * size)
    check(rl_mpi_all_gather_u64(words, Int32(words.count), &all), "a gather")
    return (0..<size).map { Array(all[($0 * words.count)..<(($0 + 1) * words.count)]) }
  }

  /// Every rank's `values` (the same count on each) one after another, in rank order.
  package func allGather(_ values: [Float]) -> [Float] {
    guard usesMPI, size > 1 else { return values }
    var all = [Float](repeating: 0, count: values.count * size)
    check(rl_mpi_all_gather_floats(values, Int32(values.count), &all), "a gather")
    return all
  }

  /// Whether every rank holds the same `values` (each rank hashes its own; the hashes are
  /// compared): a check that the ranks of a run have stayed identical.
  package func agree(on values: UnsafeBufferPointer<Float>) -> Bool {
    guard usesMPI, size > 1 else { return true }
    var f = DataFingerprint()
    f.add(UnsafeRawBufferPointer(values))
    let all = allGather([f.hash])
    return all.allSatisfy { $0 == all[0] }
  }

  // MARK: - Shares

  /// The rows of a batch of `total` (per time step) this rank holds: a contiguous block of
  /// total / size. Callers check that `total` divides (``requireDivisible(_:what:)``).
  package func share(of total: Int) -> RowShard {
    let count = total / size
    return RowShard(total: total, first: rank * count, count: count)
  }

  /// Refuses a batch of `total` that does not divide over the ranks; `what` names it ("the
  /// batch of 20 streams (--batch-size)").
  package func requireDivisible(_ total: Int, what: String) throws {
    guard total % size != 0 else { return }
    throw ConfigurationError(
      "\(what) does not divide over \(size) processes: each process takes an equal share of every batch; "
        + "choose a number of processes that divides it")
  }

  // MARK: - Failing together

  /// Which processes failed to start the run: every process says whether it failed (and with
  /// what `failure` text) and learns the others'. Returns the ranks that failed, and whether
  /// they all failed alike.
  package func failuresAtStart(_ failure: String?) -> (ranks: [Int], alike: Bool) {
    guard usesMPI, size > 1 else { return (failure == nil ? [] : [rank], true) }
    var f = DataFingerprint()
    if let failure { Data(failure.utf8).withUnsafeBytes { f.add($0) } }
    let all = allGather([failure == nil ? 0 : 1, f.hash])
    let failed = all.indices.filter { all[$0][0] == 1 }
    return (failed, failed.count == size && all.allSatisfy { $0[1] == all[0][1] })
  }

  /// Waits until every process arrives (after rank 0 has reported a failure they share, so
  /// that its line is written before any process ends).
  package func barrier() {
    guard usesMPI, size > 1 else { return }
    check(rl_mpi_barrier(), "a barrier")
  }

  /// Rank 0 reports a failure itself: nothing more to say should mpirun end it meanwhile.
  package func silenceTermination() {
    if usesMPI, size > 1 { rl_set_termination_message("") }
  }

  // MARK: - Ending from outside

  /// What rank 0 writes when mpirun ends the run (another rank failed or was killed, or mpirun
  /// was interrupted): that, and the last checkpoint (`checkpoint`, a description such as "runs/x/last.safetensors,
  /// saved after epoch 2, batch 300"), which is intact. The other ranks end silently.
  package func setTerminationNote(_ checkpoint: String?) {
    guard usesMPI, size > 1 else { return }
    lastCheckpoint = checkpoint
    rl_set_termination_message(
      isRoot
        ? endedLine(
          "mpirun ended the run: another of its \(size) processes stopped (mpirun's notice names its rank) or mpirun was interrupted"
        ) : "")
  }

  /// The last checkpoint saved, as ``setTerminationNote(_:)`` describes it.
  private var lastCheckpoint: String?

  /// "Error: `what`; the last checkpoint … is intact: continue with --resume", a line.
  private func endedLine(_ what: String) -> String {
    let saved = lastCheckpoint.map { "; \($0), is intact: continue with --resume" } ?? "; nothing had been saved yet"
    return "Error: \(what)\(saved)\n"
  }
}

/// The rows of a batch one rank of a data-parallel run holds: rows `first..<first + count` of
/// the `total` rows of every time step.
package struct RowShard: Sendable, Equatable {
  /// Rows of a time step in the whole batch, the first this rank holds, and how many.
  package var total: Int, first: Int, count: Int
  /// All rows: one process.
  package static func whole(_ total: Int) -> RowShard { RowShard(total: total, first: 0, count: total) }
  /// Whether this is the whole batch.
  package var isWhole: Bool { count == total }
  /// The rows, as a range.
  package var range: Range<Int> { first..<(first + count) }
}
