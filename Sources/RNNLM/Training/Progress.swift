import Foundation

/// Prints a run's progress: on a terminal one line per epoch that updates in place (progress
/// bar, batch/total, ms/batch, tokens/s, running perplexity, ETA); otherwise a plain log line
/// every log interval, so that files and CI logs stay readable.
public final class ConsoleProgress: TrainingObserver {
  /// Whether to draw the updating line.
  public let isTerminal: Bool
  private let write: (String) -> Void
  private var lineOpen = false

  /// Progress to standard output; `isTerminal` defaults to whether it is a terminal.
  public init(isTerminal: Bool = isatty(STDOUT_FILENO) != 0, write: @escaping (String) -> Void = ConsoleProgress.stdout)
  {
    self.isTerminal = isTerminal
    self.write = write
  }

  /// Writes text to standard output unbuffered, so lines appear as they are made.
  public static func stdout(_ text: String) { FileHandle.standardOutput.write(Data(text.utf8)) }

  public func batchFinished(_ p: BatchProgress) {
    if isTerminal {
      let width = 24
      let filled = width * p.batch / p.batchesPerEpoch
      let bar = String(repeating: "=", count: filled) + String(repeating: " ", count: width - filled)
      let eta = Double(p.batchesPerEpoch - p.batch) * p.epochSeconds / Double(p.batch)
      write(
        String(
          format: "\r\u{1B}[2K| epoch %3d [%@] %5d/%d | lr %6.3f | %7.1f ms/batch | %7.0f tok/s | ppl %8.2f | ETA %@",
          p.epoch, bar, p.batch, p.batchesPerEpoch, p.learningRate, p.msPerBatch, p.tokensPerSecond,
          exp(p.intervalLoss), Self.duration(eta)))
      lineOpen = true
    } else if p.logLine {
      write(
        String(
          format: "| epoch %3d | batch %5d/%d | lr %6.3f | %7.1f ms/batch | %8.0f tok/s | loss %6.3f | ppl %9.2f |\n",
          p.epoch, p.batch, p.batchesPerEpoch, p.learningRate, p.msPerBatch, p.tokensPerSecond, p.intervalLoss,
          exp(p.intervalLoss)))
    }
  }

  public func epochFinished(_ r: EpochRecord, improved: Bool) {
    closeLine()
    write(
      String(
        format: "| end of epoch %3d | %7.1f tok/s | train ppl %8.2f | valid ppl %8.2f |%@\n", r.epoch,
        r.tokensPerSecond, r.trainPerplexity, r.validPerplexity, improved ? " best so far" : " no better"))
  }

  public func note(_ message: String) {
    closeLine()
    write(message + "\n")
  }

  private func closeLine() {
    if lineOpen { write("\n") }
    lineOpen = false
  }

  /// "1h02m", "3m05s", "42s".
  static func duration(_ seconds: Double) -> String {
    let s = Int(seconds.rounded())
    if s >= 3600 { return String(format: "%dh%02dm", s / 3600, (s % 3600) / 60) }
    if s >= 60 { return String(format: "%dm%02ds", s / 60, s % 60) }
    return "\(s)s"
  }
}

/// Writes a run's metrics next to its checkpoints: `metrics.csv` (a row every log interval and
/// every epoch: epoch, batch, lr, train ppl, valid ppl, tokens/s, elapsed training seconds) and
/// `curve.svg` (training and validation perplexity against epochs, for a browser).
public final class MetricsWriter: TrainingObserver {
  /// The CSV file and the SVG file.
  public let csvPath: String, svgPath: String
  private var records: [EpochRecord]

  /// Metrics in `directory`, continuing `history` (the epochs of a resumed run).
  public init(directory: String, history: [EpochRecord] = []) throws {
    csvPath = (directory as NSString).appendingPathComponent("metrics.csv")
    svgPath = (directory as NSString).appendingPathComponent("curve.svg")
    records = history
    try prepareRunDirectory(directory)
    if !FileManager.default.fileExists(atPath: csvPath) {
      do {
        try "epoch,batch,lr,train_ppl,valid_ppl,tokens_per_s,elapsed_s\n".write(
          toFile: csvPath, atomically: true, encoding: .utf8)
      } catch {
        throw FileError(
          path: csvPath, reason: "cannot be written: \(fileFailure(directory, error: error, expectDirectory: true))")
      }
    }
  }

  private func append(_ row: String) {
    guard let handle = FileHandle(forWritingAtPath: csvPath) else { return }
    handle.seekToEndOfFile()
    handle.write(Data((row + "\n").utf8))
    try? handle.close()
  }

  public func batchFinished(_ p: BatchProgress) {
    guard p.logLine else { return }
    append(
      String(
        format: "%d,%d,%g,%.4f,,%.1f,%.2f", p.epoch, p.batch, p.learningRate, exp(p.intervalLoss), p.tokensPerSecond,
        p.runSeconds))
  }

  public func epochFinished(_ r: EpochRecord, improved: Bool) {
    append(
      String(
        format: "%d,end,%g,%.4f,%.4f,%.1f,%.2f", r.epoch, r.learningRate, r.trainPerplexity, r.validPerplexity,
        r.tokensPerSecond, r.elapsedSeconds))
    records.append(r)
    try? Self.svg(records).write(toFile: svgPath, atomically: true, encoding: .utf8)
  }

  public func note(_ message: String) {}

  /// An SVG line chart of training and validation perplexity (log scale) against epochs.
  public static func svg(_ records: [EpochRecord]) -> String {
    func series(_ label: String, _ color: String, _ key: KeyPath<EpochRecord, Double>) -> LinePlot.Series {
      LinePlot.Series(
        label: label, color: color, points: records.map { (Double($0.epoch), $0[keyPath: key]) }, markers: true)
    }
    return LinePlot(
      series: [series("training", "#1f77b4", \.trainPerplexity), series("validation", "#ff7f0e", \.validPerplexity)],
      xLabel: "epoch", yLabel: "perplexity (log scale)", integerTicks: true
    ).svg()
  }
}
