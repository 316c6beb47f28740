import ArgumentParser
import Foundation
import RNNLM
import RNNLMCommandLine

/// Runs a preset (or any flags) for a budget, prints a result row and appends it to a CSV file.
struct PerplexityBenchmark: ParsableCommand {
  static let configuration = CommandConfiguration(
    commandName: "ppl-bench",
    abstract: "Train a preset for a budget and record perplexity, speed and the exact command.",
    discussion: """
      Takes every train-ptb flag. The row: date, preset, cell, parameters, epochs completed, wall seconds, training tokens/s, best validation and test perplexity, cores, compute threads, the OpenBLAS kernels used, the command.

      Examples:
        ppl-bench --preset small
        ppl-bench --preset medium --max-minutes 85
      """)

  @OptionGroup var flags: TrainingFlags
  @Option(help: "CSV file the result row is appended to.") var results = "Benchmarks/results/perplexity.csv"

  func validate() throws { try flags.requireTimeBudget() }

  func run() throws {
    let run = try runTraining(flags)
    let r = run.report
    // The kernels OpenBLAS ran, and whether the environment chose them (OPENBLAS_CORETYPE).
    let forced = ProcessInfo.processInfo.environment["OPENBLAS_CORETYPE"].map { " (OPENBLAS_CORETYPE=\($0))" } ?? ""
    let openBLASCore = BLASInfo.coreName + forced
    let command = (["ppl-bench"] + CommandLine.arguments.dropFirst()).joined(separator: " ")
    let row = [
      ISO8601DateFormatter().string(from: Date()), run.preset, run.config.cell.rawValue,
      String(run.config.parameterCount),
      String(r.epochs.count), String(format: "%.0f", r.seconds), String(format: "%.0f", r.tokensPerSecond),
      r.bestValidPerplexity.map { String(format: "%.2f", $0) } ?? "", String(format: "%.2f", r.testPerplexity),
      String(ProcessInfo.processInfo.activeProcessorCount), String(ComputeThreads.count), openBLASCore,
      "\"\(command)\"",
    ].joined(separator: ",")
    let header =
      "date,preset,cell,parameters,epochs,wall_s,train_tok_s,best_valid_ppl,test_ppl,cores,threads,openblas_core,command\n"
    try FileManager.default.createDirectory(
      atPath: (results as NSString).deletingLastPathComponent, withIntermediateDirectories: true)
    if !FileManager.default.fileExists(atPath: results) {
      try header.write(toFile: results, atomically: true, encoding: .utf8)
    }
    let handle = try FileHandle(forWritingTo: URL(fileURLWithPath: results))
    handle.seekToEndOfFile()
    handle.write(Data((row + "\n").utf8))
    try handle.close()
    say(header.trimmingCharacters(in: .newlines))
    say(row)
  }
}

PerplexityBenchmark.mainWithOneLineErrors()
