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
    try FileManager.default.createDirectory(atPath: directory, withIntermediateDirectories: true)
    if !FileManager.default.fileExists(atPath: csvPath) {
      try "epoch,batch,lr,train_ppl,valid_ppl,tokens_per_s,elapsed_s\n".write(
        toFile: csvPath, atomically: true, encoding: .utf8)
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
    let (w, h, left, right, top, bottom) = (640.0, 400.0, 70.0, 20.0, 30.0, 50.0)
    let values = records.flatMap { [$0.trainPerplexity, $0.validPerplexity] }.filter { $0.isFinite && $0 > 0 }
    let lo = log10(max((values.min() ?? 10) * 0.9, 1))
    let hi = log10((values.max() ?? 1000) * 1.1)
    let last = Double(max(records.last?.epoch ?? 1, 2))
    let first = Double(records.first?.epoch ?? 1)
    func x(_ e: Double) -> Double { left + (w - left - right) * (e - first) / max(last - first, 1) }
    func y(_ v: Double) -> Double { top + (h - top - bottom) * (1 - (log10(v) - lo) / max(hi - lo, 1e-9)) }
    func line(_ key: KeyPath<EpochRecord, Double>, _ color: String) -> String {
      let points = records.map { String(format: "%.1f,%.1f", x(Double($0.epoch)), y($0[keyPath: key])) }
      let dots = records.map {
        String(
          format: "<circle cx=\"%.1f\" cy=\"%.1f\" r=\"3\" fill=\"%@\"/>", x(Double($0.epoch)), y($0[keyPath: key]),
          color)
      }
      return
        "<polyline fill=\"none\" stroke=\"\(color)\" stroke-width=\"2\" points=\"\(points.joined(separator: " "))\"/>"
        + dots.joined()
    }
    var ticks = ""
    var decade = pow(10, floor(lo))
    while log10(decade) <= hi {
      // 1-2-5 per decade; a range narrower than a decade gets every integer multiple.
      let multiples = hi - lo < 1 ? [1.0, 1.5, 2, 3, 4, 5, 6, 7, 8, 9] : [1.0, 2, 5]
      for m in multiples where log10(decade * m) >= lo && log10(decade * m) <= hi {
        let v = decade * m
        ticks += String(
          format:
            "<line x1=\"%.0f\" x2=\"%.0f\" y1=\"%.1f\" y2=\"%.1f\" stroke=\"#ddd\"/><text x=\"%.0f\" y=\"%.1f\" text-anchor=\"end\" font-size=\"12\">%g</text>",
          left, w - right, y(v), y(v), left - 6, y(v) + 4, v)
      }
      decade *= 10
    }
    for r in records {
      ticks += String(
        format: "<text x=\"%.1f\" y=\"%.0f\" text-anchor=\"middle\" font-size=\"12\">%d</text>", x(Double(r.epoch)),
        h - bottom + 18, r.epoch)
    }
    return """
      <svg xmlns="http://www.w3.org/2000/svg" width="\(Int(w))" height="\(Int(h))" font-family="sans-serif">
      <rect width="100%" height="100%" fill="white"/>
      \(ticks)
      <line x1="\(left)" y1="\(h - bottom)" x2="\(w - right)" y2="\(h - bottom)" stroke="black"/>
      <line x1="\(left)" y1="\(top)" x2="\(left)" y2="\(h - bottom)" stroke="black"/>
      <text x="\((w + left) / 2)" y="\(h - 10)" text-anchor="middle" font-size="13">epoch</text>
      <text x="16" y="\((h - bottom + top) / 2)" text-anchor="middle" font-size="13" transform="rotate(-90 16 \((h - bottom + top) / 2))">perplexity (log scale)</text>
      \(line(\.trainPerplexity, "#1f77b4"))
      \(line(\.validPerplexity, "#ff7f0e"))
      <text x="\(w - right - 150)" y="\(top)" font-size="13" fill="#1f77b4">— training</text>
      <text x="\(w - right - 70)" y="\(top)" font-size="13" fill="#ff7f0e">— validation</text>
      </svg>

      """
  }
}
