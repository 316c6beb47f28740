import Foundation

/// Finding, verifying and loading the Penn Treebank (Mikolov's 10k-word version).
public enum PTB {
  /// The three files of PTB.
  public static let fileNames = (train: "ptb.train.txt", valid: "ptb.valid.txt", test: "ptb.test.txt")

  /// What the corpus in `directory` is, for messages: "PTB" only for PTB's file names with
  /// their checksums verified, else the names of its files.
  public static func describe(directory: String, verified: Bool) -> String {
    guard let files = files(in: directory) else { return "no corpus in \(directory)" }
    if files.isPTB {
      return verified ? "PTB from \(directory)" : "ptb.*.txt from \(directory) (checksums not verified)"
    }
    return "the corpus in \(directory) (train.txt, valid.txt, test.txt)"
  }

  /// The three files of any other corpus (pytorch/examples' word_language_model layout).
  public static let plainFileNames = (train: "train.txt", valid: "valid.txt", test: "test.txt")

  /// The split files in `directory`: PTB's names if all three exist, else the plain names if all
  /// three exist, else nil. The second value says whether they are PTB's.
  public static func files(in directory: String) -> (train: String, valid: String, test: String, isPTB: Bool)? {
    for (names, isPTB) in [(fileNames, true), (plainFileNames, false)] {
      let paths = [names.train, names.valid, names.test].map { (directory as NSString).appendingPathComponent($0) }
      if paths.allSatisfy({ FileManager.default.fileExists(atPath: $0) }) {
        return (paths[0], paths[1], paths[2], isPTB)
      }
    }
    return nil
  }

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
    "Get PTB with `corpora/get-ptb.sh` (downloads the three files into corpora/ptb/ and checks their SHA-256), or pass --data DIR / set PTB_DIR to a directory holding ptb.train.txt, ptb.valid.txt and ptb.test.txt (or, for another corpus, train.txt, valid.txt and test.txt)."

  /// The directory holding PTB: `explicit` (a `--data` flag) if given, else `$PTB_DIR`, else
  /// `corpora/ptb/`, else `../shared/corpora/ptb/` (both relative to `workingDirectory`).
  /// An explicit directory or `$PTB_DIR` that lacks the files is an error, not skipped.
  public static func locate(
    explicit: String?, environment: [String: String] = ProcessInfo.processInfo.environment,
    workingDirectory: String = FileManager.default.currentDirectoryPath
  ) throws -> String {
    func complete(_ dir: String) -> Bool { files(in: dir) != nil }
    if let explicit {
      if complete(explicit) { return explicit }
      throw DataError.notFound(what: "a corpus (--data \(explicit))", searched: [explicit], hint: howToGet)
    }
    if let env = environment[environmentVariable], !env.isEmpty {
      if complete(env) { return env }
      throw DataError.notFound(what: "a corpus ($\(environmentVariable)=\(env))", searched: [env], hint: howToGet)
    }
    let candidates = ["corpora/ptb", "../shared/corpora/ptb"].map {
      (workingDirectory as NSString).appendingPathComponent($0)
    }
    if let found = candidates.first(where: complete) { return found }
    throw DataError.notFound(
      what: "PTB", searched: ["--data (not given)", "$\(environmentVariable) (not set)"] + candidates, hint: howToGet)
  }

  /// Loads the three files of `directory` (see ``files(in:)``). With `verify`, PTB's files must
  /// match ``checksums`` first, so that a truncated or altered download is named, not trained on;
  /// a corpus in the plain layout has no published sums to check.
  ///
  /// `mapUnknown` reads validation and test words outside the training vocabulary as `<unk>`
  /// (see ``Dataset/init(train:valid:test:mapUnknown:)``).
  public static func load(directory: String, verify: Bool = true, mapUnknown: Bool = false) throws -> Dataset {
    guard let files = files(in: directory) else {
      throw DataError.notFound(what: "a corpus in \(directory)", searched: [directory], hint: howToGet)
    }
    // Each file is read once: the bytes that are verified are the bytes that are tokenised.
    func read(_ file: String) throws -> (path: String, text: String) {
      let data = try Corpus.readData(at: file)
      if verify && files.isPTB, let expected = checksums[(file as NSString).lastPathComponent] {
        let actual = SHA256.hexDigest(data)
        if actual != expected { throw DataError.checksumMismatch(path: file, expected: expected, actual: actual) }
      }
      return (file, try Corpus.text(data, path: file))
    }
    return try Dataset(
      train: read(files.train), valid: read(files.valid), test: read(files.test), mapUnknown: mapUnknown)
  }
}
