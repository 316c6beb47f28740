import Foundation

/// What is wrong with `path`, in plain words for an error line ("no such file or directory", "is
/// a directory", "permission denied", …), or nil when the file system shows nothing wrong. Asks
/// the file system itself, so that no Foundation error domain or code reaches the user.
///
/// `expectDirectory` is true when `path` should be a directory that can be written (a run
/// directory), false when it should be a readable file; `directoryName` names that directory in
/// the message for a file in its place.
package func fileProblem(_ path: String, expectDirectory: Bool = false, directoryName: String = "directory")
  -> String?
{
  var info = stat()
  if stat(path, &info) != 0 {
    // A missing parent, or a parent that is a file, shows here too.
    return String(cString: strerror(errno)).lowercased()
  }
  let isDirectory = (info.st_mode & S_IFMT) == S_IFDIR
  if isDirectory && !expectDirectory { return "is a directory" }
  if !isDirectory && expectDirectory { return "exists and is a file, not a \(directoryName)" }
  if access(path, expectDirectory ? W_OK | X_OK : R_OK) != 0 { return "permission denied" }
  return nil
}

/// Why an operation on `path` failed with `error`: ``fileProblem(_:expectDirectory:)``, else the
/// POSIX cause inside `error`, else "cannot be read or written".
package func fileFailure(_ path: String, error: Error, expectDirectory: Bool = false) -> String {
  if let problem = fileProblem(path, expectDirectory: expectDirectory) { return problem }
  let nsError = error as NSError
  let underlying = (nsError.userInfo[NSUnderlyingErrorKey] as? NSError) ?? nsError
  if underlying.domain == NSPOSIXErrorDomain, let code = Int32(exactly: underlying.code) {
    return String(cString: strerror(code)).lowercased()
  }
  return "cannot be read or written"
}

/// A file or directory the toolkit cannot use, and why, in plain words.
public struct FileError: Error, CustomStringConvertible, Equatable {
  /// The file or directory.
  public let path: String
  /// What is wrong with it.
  public let reason: String
  /// The error for `path`.
  public init(path: String, reason: String) {
    self.path = path
    self.reason = reason
  }
  /// One line for the user.
  public var description: String { "\(path): \(reason)" }
}

/// Writes `text` (UTF-8) to `path`, replacing the file whole; a ``FileError`` says what is wrong
/// with `path` itself where it exists (a directory, say), else with the directory it goes in.
package func writeTextFile(_ text: String, to path: String) throws {
  do { try text.write(toFile: path, atomically: true, encoding: .utf8) } catch {
    let directory = (path as NSString).deletingLastPathComponent
    let reason =
      FileManager.default.fileExists(atPath: path)
      ? (fileProblem(path) ?? fileFailure(path, error: error))
      : fileFailure(directory.isEmpty ? "." : directory, error: error, expectDirectory: true)
    throw FileError(path: path, reason: reason)
  }
}

/// Throws the ``FileError`` that names what keeps an existing `directory` from being a run
/// directory (a file in its place, no permission); nothing when it is one or does not exist yet.
package func checkRunDirectory(_ directory: String) throws {
  if FileManager.default.fileExists(atPath: directory),
    let problem = fileProblem(directory, expectDirectory: true, directoryName: "run directory")
  {
    throw FileError(path: directory, reason: problem)
  }
}

/// Makes sure `directory` is a directory a run can write (creating it and its parents), and
/// removes the temporary files (`.NAME.tmp-PID`) that a run killed while saving left there; a
/// temporary file of a process still running is kept.
package func prepareRunDirectory(_ directory: String) throws {
  try checkRunDirectory(directory)
  do {
    try FileManager.default.createDirectory(atPath: directory, withIntermediateDirectories: true)
  } catch {
    throw FileError(
      path: directory, reason: "cannot be created: \(fileFailure(directory, error: error, expectDirectory: true))")
  }
  for name in (try? FileManager.default.contentsOfDirectory(atPath: directory)) ?? [] {
    guard name.hasPrefix("."), let marker = name.range(of: ".tmp-", options: .backwards),
      let pid = Int32(name[marker.upperBound...]), pid != getpid()
    else { continue }
    // kill(pid, 0) fails with ESRCH when no such process exists.
    if kill(pid, 0) != 0 && errno == ESRCH {
      try? FileManager.default.removeItem(atPath: (directory as NSString).appendingPathComponent(name))
    }
  }
}

/// A configuration that cannot make a model or a run, with the reason.
public struct ConfigurationError: Error, CustomStringConvertible, Equatable {
  /// What is wrong.
  public let description: String
  /// An error saying `description`.
  public init(_ description: String) { self.description = description }
}
