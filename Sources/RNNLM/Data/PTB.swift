import Foundation

/// Finding, verifying and loading the Penn Treebank (Mikolov's 10k-word version).
public enum PTB {
  /// The three files.
  public static let fileNames = (train: "ptb.train.txt", valid: "ptb.valid.txt", test: "ptb.test.txt")

  /// Published SHA-256 sums of the three files (also in `corpora/SHA256SUMS`).
  public static let checksums: [String: String] = [
    "ptb.train.txt": "fcea919f6cf83f35d4d00c6cbf08040d13d4155226340912e2fef9c9c4102cbf",
    "ptb.valid.txt": "c9fe6985fe0d4ccb578183407d7668fc6066c20700cb4cf87d8ff1cc34df1bf2",
    "ptb.test.txt": "dd65dff31e70846b2a6030a87482edcd5d199130cdcfa1f3dccbb033728deee0",
  ]

  /// The environment variable naming PTB's directory.
  public static let environmentVariable = "PTB_DIR"

  /// What to do when PTB is missing.
  public static let howToGet =
    "Get PTB with `corpora/get-ptb.sh` (downloads the three files into corpora/ptb/ and checks their SHA-256), or pass --data DIR / set PTB_DIR to a directory holding ptb.train.txt, ptb.valid.txt and ptb.test.txt."

  /// The directory holding PTB: `explicit` (a `--data` flag) if given, else `$PTB_DIR`, else
  /// `corpora/ptb/`, else `../shared/corpora/ptb/` (both relative to `workingDirectory`).
  /// An explicit directory or `$PTB_DIR` that lacks the files is an error, not skipped.
  public static func locate(
    explicit: String?, environment: [String: String] = ProcessInfo.processInfo.environment,
    workingDirectory: String = FileManager.default.currentDirectoryPath
  ) throws -> String {
    func complete(_ dir: String) -> Bool {
      [fileNames.train, fileNames.valid, fileNames.test].allSatisfy {
        FileManager.default.fileExists(atPath: (dir as NSString).appendingPathComponent($0))
      }
    }
    if let explicit {
      if complete(explicit) { return explicit }
      throw DataError.notFound(what: "PTB (--data \(explicit))", searched: [explicit], hint: howToGet)
    }
    if let env = environment[environmentVariable], !env.isEmpty {
      if complete(env) { return env }
      throw DataError.notFound(what: "PTB ($\(environmentVariable)=\(env))", searched: [env], hint: howToGet)
    }
    let candidates = ["corpora/ptb", "../shared/corpora/ptb"].map {
      (workingDirectory as NSString).appendingPathComponent($0)
    }
    if let found = candidates.first(where: complete) { return found }
    throw DataError.notFound(
      what: "PTB", searched: ["--data (not given)", "$\(environmentVariable) (not set)"] + candidates, hint: howToGet)
  }

  /// Loads the three files of `directory`. With `verify`, each file's SHA-256 must match
  /// ``checksums`` first, so that a truncated or altered download is named, not trained on.
  public static func load(directory: String, verify: Bool = true) throws -> Dataset {
    let path = { (name: String) in (directory as NSString).appendingPathComponent(name) }
    if verify {
      for name in [fileNames.train, fileNames.valid, fileNames.test] {
        let file = path(name)
        let data: Data
        do { data = try Data(contentsOf: URL(fileURLWithPath: file)) } catch {
          throw DataError.unreadable(path: file, reason: error.localizedDescription)
        }
        let actual = SHA256.hexDigest(data)
        if let expected = checksums[name], actual != expected {
          throw DataError.checksumMismatch(path: file, expected: expected, actual: actual)
        }
      }
    }
    return try Dataset(
      trainPath: path(fileNames.train), validPath: path(fileNames.valid), testPath: path(fileNames.test))
  }
}
