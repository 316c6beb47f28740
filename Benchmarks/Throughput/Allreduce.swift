import ArgumentParser
import Foundation
import RNNLM
import RNNLMCommandLine

/// The gradient sum of data-parallel training: how long the processes take to average a model's
/// gradient buffer, run under mpirun.
struct AllreduceThroughput: ParsableCommand {
  static let configuration = CommandConfiguration(
    commandName: "allreduce",
    abstract: "Time of the gradient average (one MPI allreduce and a scale) for presets' gradient buffers.",
    discussion: """
      Run under mpirun with two or more processes. For each preset (V 10,000, PTB's vocabulary) it averages a buffer of the model's parameter count over the processes, repeated, and rank 0 prints the median time (the slowest process's), the allreduce's share of it and the bandwidth that implies: 2 (P − 1) / P × bytes / time, what a ring allreduce moves per process.

      Example:
        mpirun -np 2 throughput-bench allreduce --presets small,medium,awd-medium
      """)

  @Option(help: "Presets, comma-separated.") var presets = "small,medium,awd-medium"
  @Option(help: "Repeats (medians are reported).") var repeats = 20
  @Option(help: "Warm-up repeats.") var warmup = 3

  func run() throws {
    let group = try ProcessGroup.world()
    guard group.size > 1 else {
      throw ValidationError("run it with mpirun -np 2 (or more): one process has nothing to sum with")
    }
    if group.isRoot {
      say("processes: \(group.size); times are medians of \(repeats) of the slowest process's")
      say("preset        parameters        MB   average ms   allreduce ms   GB/s (2(P-1)/P·bytes)")
    }
    for name in presets.split(separator: ",").map(String.init) {
      guard let preset = Preset.named(name) else { throw ValidationError("no preset named \(name)") }
      let count = preset.modelConfig(vocabularySize: 10_000).parameterCount
      let buffer = UnsafeMutablePointer<Float>.allocate(capacity: count)
      defer { buffer.deallocate() }
      buffer.initialize(repeating: 1, count: count)
      var totals: [Double] = []
      var sums: [Double] = []
      for r in 0..<(warmup + repeats) {
        group.barrier()
        let before = group.gradientSumSeconds
        let start = Date()
        group.averageGradients(buffer, count: count)
        var times = [Date().timeIntervalSince(start), group.gradientSumSeconds - before]
        // The slowest process's times: a step waits for it.
        let all = group.allGather(times.map(\.bitPattern))
        times = [0, 1].map { i in all.map { Double(bitPattern: $0[i]) }.max()! }
        if r >= warmup {
          totals.append(times[0])
          sums.append(times[1])
        }
      }
      let bytes = Double(count * 4)
      let p = Double(group.size)
      if group.isRoot {
        say(
          String(
            format: "%@ %11d %9.1f %12.2f %14.2f %12.2f", name.padding(toLength: 12, withPad: " ", startingAt: 0),
            count,
            bytes / 1e6, 1000 * median(totals), 1000 * median(sums), 2 * (p - 1) / p * bytes / median(sums) / 1e9))
      }
    }
  }
}
