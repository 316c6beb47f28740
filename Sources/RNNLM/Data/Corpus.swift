import Foundation

/// Problems with data files, each naming the file and what is wrong.
public enum DataError: Error, CustomStringConvertible, Equatable {
  /// The file does not exist or cannot be read.
  case unreadable(path: String, reason: String)
  /// The file is not UTF-8 text.
  case notText(path: String)
  /// The file has no words.
  case empty(path: String)
  /// A word that the vocabulary does not have.
  case unknownWord(word: String, path: String, line: Int)
  /// A file's SHA-256 differs from the published one.
  case checksumMismatch(path: String, expected: String, actual: String)
  /// The data could not be found; `searched` lists where the toolkit looked.
  case notFound(what: String, searched: [String], hint: String)
  /// Anything else that makes the data unusable.
  case malformed(String)

  /// A one-paragraph explanation for the user.
  public var description: String {
    switch self {
    case .unreadable(let path, let reason): return "cannot read \(path): \(reason)"
    case .notText(let path): return "\(path) is not UTF-8 text"
    case .empty(let path): return "\(path) contains no words"
    case .unknownWord(let word, let path, let line):
      return
        "\(path):\(line): word \"\(word)\" is not in the vocabulary built from the training file; --map-unknown reads such words as <unk> (and counts them)"
    case .checksumMismatch(let path, let expected, let actual):
      return
        "\(path) is damaged or not the expected file: SHA-256 \(actual), expected \(expected). Download it again (corpora/get-ptb.sh); for a corpus other than PTB, pass --no-verify."
    case .notFound(let what, let searched, let hint):
      return "\(what) not found (looked in: \(searched.joined(separator: "; "))). \(hint)"
    case .malformed(let message): return message
    }
  }
}

/// Word-level text corpora: whitespace-separated words, each line ending in `<eos>`.
public enum Corpus {
  /// Splits `text` into words line by line, appending ``Vocabulary/endOfSentence`` after
  /// every line that ends with a newline or holds words (so a file's final newline adds no
  /// empty sentence). Calls `body(word, lineNumber)` for each token, 1-based lines.
  public static func forEachToken(in text: String, _ body: (Substring, Int) throws -> Void) rethrows {
    var line = 1
    for rawLine in text.split(separator: "\n", omittingEmptySubsequences: false).dropLast(text.hasSuffix("\n") ? 1 : 0)
    {
      for word in rawLine.split(whereSeparator: { $0 == " " || $0 == "\t" || $0 == "\r" }) {
        try body(word, line)
      }
      try body(Substring(Vocabulary.endOfSentence), line)
      line += 1
    }
  }

  /// Reads a file's bytes; a missing or unreadable file is ``DataError/unreadable(path:reason:)``.
  public static func readData(at path: String) throws -> Data {
    do {
      return try Data(contentsOf: URL(fileURLWithPath: path))
    } catch {
      throw DataError.unreadable(path: path, reason: fileFailure(path, error: error))
    }
  }

  /// `data` as UTF-8 text; anything else is ``DataError/notText(path:)``.
  public static func text(_ data: Data, path: String) throws -> String {
    guard let text = String(data: data, encoding: .utf8) else { throw DataError.notText(path: path) }
    return text
  }

  /// Reads a text file as UTF-8.
  public static func readText(at path: String) throws -> String {
    try text(readData(at: path), path: path)
  }

  /// Token ids of `text`. With `extend`, new words are added to `vocabulary` (the training
  /// file); otherwise a new word is a ``DataError/unknownWord(word:path:line:)`` naming it
  /// and its line. An empty text is ``DataError/empty(path:)``.
  public static func tokenize(
    _ text: String, path: String, vocabulary: inout Vocabulary, extend: Bool
  ) throws -> [Int32] {
    try tokenize(text, path: path, vocabulary: &vocabulary, extend: extend, readingUnknownAs: nil).ids
  }

  /// Token ids of `text` with a fixed `vocabulary`, words outside it read as `unknown` (when
  /// given) and counted; without `unknown` they are an error as in
  /// ``tokenize(_:path:vocabulary:extend:)``.
  public static func tokenize(_ text: String, path: String, vocabulary: Vocabulary, readingUnknownAs unknown: Int32?)
    throws -> (ids: [Int32], outOfVocabulary: Int)
  {
    var fixed = vocabulary
    return try tokenize(text, path: path, vocabulary: &fixed, extend: false, readingUnknownAs: unknown)
  }

  private static func tokenize(
    _ text: String, path: String, vocabulary: inout Vocabulary, extend: Bool, readingUnknownAs unknown: Int32?
  ) throws -> (ids: [Int32], outOfVocabulary: Int) {
    var ids: [Int32] = []
    var outOfVocabulary = 0
    var sawWord = false
    try forEachToken(in: text) { word, line in
      let w = String(word)
      if w != Vocabulary.endOfSentence { sawWord = true }
      if extend {
        ids.append(vocabulary.add(w))
      } else if let id = vocabulary.id(of: w) {
        ids.append(id)
      } else if let unknown {
        ids.append(unknown)
        outOfVocabulary += 1
      } else {
        throw DataError.unknownWord(word: w, path: path, line: line)
      }
    }
    if !sawWord { throw DataError.empty(path: path) }
    return (ids, outOfVocabulary)
  }

  /// ``tokenize(_:path:vocabulary:extend:)`` of the file at `path`.
  public static func load(path: String, vocabulary: inout Vocabulary, extend: Bool) throws -> [Int32] {
    try tokenize(readText(at: path), path: path, vocabulary: &vocabulary, extend: extend)
  }
}

/// A train/validation/test split tokenised with one vocabulary built from the training file.
public struct Dataset: Sendable {
  /// The vocabulary, first-seen order in the training file.
  public let vocabulary: Vocabulary
  /// Token ids of each split.
  public let train: [Int32], valid: [Int32], test: [Int32]

  /// Validation and test words outside the training vocabulary that were read as `<unk>`
  /// (only with `mapUnknown`; otherwise such a word is an error).
  public let outOfVocabulary: (valid: Int, test: Int)
  /// Tokens of each split read as `<unk>` because ``orderedByFrequency(keeping:)`` left their
  /// word out of the vocabulary.
  public private(set) var leftOut: (train: Int, valid: Int, test: Int) = (0, 0, 0)

  /// A dataset from splits already tokenised with `vocabulary`.
  public init(vocabulary: Vocabulary, train: [Int32], valid: [Int32], test: [Int32]) {
    self.vocabulary = vocabulary
    self.train = train
    self.valid = valid
    self.test = test
    outOfVocabulary = (0, 0)
  }

  /// Loads `train`, then maps `valid` and `test` with its vocabulary.
  public init(trainPath: String, validPath: String, testPath: String) throws {
    try self.init(
      train: (trainPath, Corpus.readText(at: trainPath)), valid: (validPath, Corpus.readText(at: validPath)),
      test: (testPath, Corpus.readText(at: testPath)))
  }

  /// Tokenises texts already read (each with the path that names it in errors): the vocabulary
  /// from `train`, then `valid` and `test` mapped with it.
  ///
  /// A word of `valid` or `test` that `train` lacks is an error naming it and its line, unless
  /// `mapUnknown` is set: then it is read as `<unk>` and counted in ``outOfVocabulary``, for
  /// corpora whose splits are not closed over the training vocabulary. `<unk>` is added to the
  /// vocabulary, as its last word, only when the training text does not have it.
  public init(
    train: (path: String, text: String), valid: (path: String, text: String), test: (path: String, text: String),
    mapUnknown: Bool = false
  )
    throws
  {
    var vocabulary = Vocabulary()
    self.train = try Corpus.tokenize(train.text, path: train.path, vocabulary: &vocabulary, extend: true)
    var unknown: Int32?
    if mapUnknown { unknown = vocabulary.add(Vocabulary.unknownWord) }
    let valid = try Corpus.tokenize(valid.text, path: valid.path, vocabulary: vocabulary, readingUnknownAs: unknown)
    let test = try Corpus.tokenize(test.text, path: test.path, vocabulary: vocabulary, readingUnknownAs: unknown)
    self.valid = valid.ids
    self.test = test.ids
    outOfVocabulary = (valid.outOfVocabulary, test.outOfVocabulary)
    self.vocabulary = vocabulary
  }

  /// The same splits over a vocabulary in order of training frequency, the most frequent word
  /// first (ties keep their first-seen order), as the adaptive softmax's clusters need; with
  /// `maxWords`, only that many words are kept and the others' tokens are read as `<unk>` (which is
  /// added, as one of the `maxWords`, when the training text lacks it) and counted in ``leftOut``.
  /// `<unk>` takes the place its count, with the tokens it stands for, gives it.
  public func orderedByFrequency(keeping maxWords: Int? = nil) throws -> Dataset {
    let v = vocabulary.count
    if let maxWords, maxWords < 2 { throw ConfigurationError("a vocabulary keeps at least 2 words, got \(maxWords)") }
    var counts = [Int](repeating: 0, count: v)
    for id in train { counts[Int(id)] += 1 }
    let byCount = (0..<v).sorted { counts[$0] != counts[$1] ? counts[$0] > counts[$1] : $0 < $1 }
    var words = vocabulary.words
    var kept = byCount
    var unknownID: Int?
    if let maxWords, maxWords < v {
      unknownID = vocabulary.id(of: Vocabulary.unknownWord).map(Int.init)
      if unknownID == nil {
        unknownID = words.count
        words.append(Vocabulary.unknownWord)
        counts.append(0)
      }
      kept = Array(byCount.lazy.filter { $0 != unknownID }.prefix(maxWords - 1)) + [unknownID!]
      let keptSet = Set(kept)
      for id in 0..<v where !keptSet.contains(id) { counts[unknownID!] += counts[id] }
      kept.sort { counts[$0] != counts[$1] ? counts[$0] > counts[$1] : $0 < $1 }
    }
    var newID = [Int32](repeating: -1, count: words.count)
    for (i, old) in kept.enumerated() { newID[old] = Int32(i) }
    let unknownNew = unknownID.map { newID[$0] }
    func map(_ ids: [Int32]) -> (ids: [Int32], leftOut: Int) {
      var leftOut = 0
      let mapped = ids.map { id -> Int32 in
        let n = newID[Int(id)]
        if n >= 0 { return n }
        leftOut += 1
        return unknownNew!
      }
      return (mapped, leftOut)
    }
    let (t, vd, ts) = (map(train), map(valid), map(test))
    var result = Dataset(
      vocabulary: try Vocabulary(words: kept.map { words[$0] }), train: t.ids, valid: vd.ids, test: ts.ids,
      outOfVocabulary: outOfVocabulary)
    result.leftOut = (t.leftOut, vd.leftOut, ts.leftOut)
    return result
  }

  /// This data over `words`, the vocabulary a model was trained with: itself when its vocabulary
  /// is `words`; else ``orderedByFrequency(keeping:)`` with as many words, when that gives `words`
  /// (a model trained with the adaptive softmax or `--max-vocab`); nil otherwise.
  public func matching(vocabulary words: [String]) throws -> Dataset? {
    if vocabulary.words == words { return self }
    guard words.count >= 2 else { return nil }
    let ordered = try orderedByFrequency(keeping: words.count)
    return ordered.vocabulary.words == words ? ordered : nil
  }

  private init(vocabulary: Vocabulary, train: [Int32], valid: [Int32], test: [Int32], outOfVocabulary: (Int, Int)) {
    self.vocabulary = vocabulary
    self.train = train
    self.valid = valid
    self.test = test
    self.outOfVocabulary = outOfVocabulary
  }
}
