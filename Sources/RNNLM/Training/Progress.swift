import Foundation
import Synchronization

/// Prints a run's progress for any task: on a terminal one line per epoch that updates in place
/// (progress bar, batch/total, learning rate, ms/batch, examples/s, running loss, ETA); otherwise
/// a plain log line every log interval, so that files and CI logs stay readable. `Record` is the
/// task's per-epoch record, which words the lines.
public final class ProgressPrinter<Record: EpochRecordKind>: TrainingObserver {
  /// Whether to draw the updating line.
  public let isTerminal: Bool
  /// What the lines call the run's examples and accuracy.
  public let labels: RunLabels
  private let write: (String) -> Void
  private var lineOpen = false

  /// Progress to `write` (standard output by default); `isTerminal` defaults to whether
  /// standard output is a terminal.
  public init(
    labels: RunLabels = .languageModel, isTerminal: Bool = stdoutIsTerminal,
    write: @escaping (String) -> Void = stdoutWrite
  ) {
    self.labels = labels
    self.isTerminal = isTerminal
    self.write = write
  }

  /// Writes text to standard output unbuffered, so lines appear as they are made.
  public static func stdout(_ text: String) { stdoutWrite(text) }

  public func batchFinished(_ p: BatchProgress) {
    if isTerminal {
      write("\r\u{1B}[2K" + Record.progressLine(p, labels: labels, terminal: true))
      lineOpen = true
    } else if p.logLine {
      write(Record.progressLine(p, labels: labels, terminal: false) + "\n")
    }
  }

  public func epochFinished(_ r: Record, improved: Bool) {
    closeLine()
    write(r.summaryLine(improved: improved, labels: labels) + "\n")
  }

  public func note(_ message: String) {
    closeLine()
    write(message + "\n")
  }

  private func closeLine() {
    if lineOpen { write("\n") }
    lineOpen = false
  }
}

/// A language model's progress printer (the name it has always had).
public typealias ConsoleProgress = ProgressPrinter<EpochRecord>

/// Writes text to standard output unbuffered.
public func stdoutWrite(_ text: String) {
  if !consoleMuted.load(ordering: .relaxed) { FileHandle.standardOutput.write(Data(text.utf8)) }
}

/// Whether standard output is a terminal where progress can update one line in place: not
/// under mpirun, which passes the processes' output on line by line.
public var stdoutIsTerminal: Bool { isatty(STDOUT_FILENO) != 0 && !ProcessGroup.launchedByMPI }

/// Set on the processes of a data-parallel run other than rank 0, which speaks for the run.
private let consoleMuted = Atomic<Bool>(false)
/// Silences ``stdoutWrite(_:)`` (and the command-line tools' warnings) in this process.
package func muteConsole() { consoleMuted.store(true, ordering: .relaxed) }
/// Whether ``muteConsole()`` was called.
package var consoleIsMuted: Bool { consoleMuted.load(ordering: .relaxed) }

/// The progress bar, batch/total and ETA that start a terminal's progress line.
func progressBar(_ p: BatchProgress) -> String {
  let width = 24
  let filled = width * p.batch / p.batchesPerEpoch
  let bar = String(repeating: "=", count: filled) + String(repeating: " ", count: width - filled)
  return String(format: "| epoch %3d [%@] %5d/%d", p.epoch, bar, p.batch, p.batchesPerEpoch)
}

/// The time left of an epoch at `p`, as "1h02m", "3m05s", "42s".
func eta(_ p: BatchProgress) -> String {
  duration(Double(p.batchesPerEpoch - p.batch) * p.epochSeconds / Double(p.batch))
}

/// "1h02m", "3m05s", "42s".
func duration(_ seconds: Double) -> String {
  let s = Int(seconds.rounded())
  if s >= 3600 { return String(format: "%dh%02dm", s / 3600, (s % 3600) / 60) }
  if s >= 60 { return String(format: "%dm%02ds", s / 60, s % 60) }
  return "\(s)s"
}

/// Writes a run's metrics next to its checkpoints, for any task: `metrics.csv` (a row every log
/// interval and every epoch; the columns are the record type's) and `curve.svg` (the epochs'
/// figures, for a browser). The run loop adds one whenever a run saves.
public final class MetricsFiles<Record: EpochRecordKind>: TrainingObserver {
  /// The CSV file and the SVG file.
  public let csvPath: String, svgPath: String
  /// What the files call the run's examples and accuracy.
  public let labels: RunLabels
  private var records: [Record]

  /// The path of `metrics.csv` in `directory`.
  static func csvPath(in directory: String) -> String {
    (directory as NSString).appendingPathComponent("metrics.csv")
  }

  /// Metrics in `directory`, continuing `history` (the epochs of a resumed run).
  public init(directory: String, history: [Record] = [], labels: RunLabels = .languageModel) throws {
    csvPath = Self.csvPath(in: directory)
    svgPath = (directory as NSString).appendingPathComponent("curve.svg")
    records = history
    self.labels = labels
    try prepareRunDirectory(directory)
    if !FileManager.default.fileExists(atPath: csvPath) {
      do {
        try (Record.csvHeader(labels) + "\n").write(toFile: csvPath, atomically: true, encoding: .utf8)
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
    if p.logLine { append(Record.csvRow(p, labels: labels)) }
  }

  public func epochFinished(_ r: Record, improved: Bool) {
    append(r.csvRow(labels: labels))
    records.append(r)
    try? Record.curveSVG(records, labels: labels).write(toFile: svgPath, atomically: true, encoding: .utf8)
  }

  public func note(_ message: String) {}
}

/// A language model's metrics files (the name they have always had).
public typealias MetricsWriter = MetricsFiles<EpochRecord>
