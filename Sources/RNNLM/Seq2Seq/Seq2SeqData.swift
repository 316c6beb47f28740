import Foundation

/// How source and target texts become tokens.
public enum TokenLevel: String, Codable, Sendable, CaseIterable {
  /// Every character is a token (spaces included).
  case characters
  /// Whitespace-separated words.
  case words

  /// The tokens of `text`.
  public func tokens(_ text: String) -> [String] {
    switch self {
    case .characters: return text.map { String($0) }
    case .words: return text.split(whereSeparator: { $0.isWhitespace }).map(String.init)
    }
  }

  /// Tokens back to text.
  public func join(_ tokens: [String]) -> String { tokens.joined(separator: self == .characters ? "" : " ") }
}

/// The tokens one side of a sequence-to-sequence model knows: `<pad>` 0, `<unk>` 1, `<sos>` 2,
/// `<eos>` 3, then the training tokens, most frequent first (ties in order of the token).
public struct Seq2SeqVocabulary: Sendable, Equatable {
  /// The special tokens, in id order.
  public static let specials = ["<pad>", "<unk>", "<sos>", "<eos>"]
  /// Their ids.
  public static let padID: Int32 = 0, unknownID: Int32 = 1, startID: Int32 = 2, endID: Int32 = 3
  /// Tokens by id.
  public let tokens: [String]
  private let ids: [String: Int32]

  /// The specials and every token of `sequences`.
  public init(counting sequences: [[String]]) {
    var counts: [String: Int] = [:]
    for s in sequences { for t in s { counts[t, default: 0] += 1 } }
    let ranked = counts.sorted { $0.value != $1.value ? $0.value > $1.value : $0.key < $1.key }.map(\.key)
    try! self.init(tokens: Self.specials + ranked.filter { !Self.specials.contains($0) })
  }

  /// A vocabulary of exactly these tokens (as a checkpoint stores them): the specials first, no
  /// token twice.
  public init(tokens: [String]) throws {
    guard tokens.count > Self.specials.count, Array(tokens.prefix(Self.specials.count)) == Self.specials else {
      throw DataError.malformed(
        "a sequence vocabulary starts with \(Self.specials.joined(separator: " ")) and has a token")
    }
    var ids: [String: Int32] = [:]
    for (i, t) in tokens.enumerated() {
      if ids[t] != nil { throw DataError.malformed("the vocabulary lists \"\(t)\" twice") }
      ids[t] = Int32(i)
    }
    self.tokens = tokens
    self.ids = ids
  }

  /// Number of ids.
  public var count: Int { tokens.count }

  /// The ids of `tokens`, `<unk>` for unknown ones.
  public func ids(of tokens: [String]) -> [Int32] { tokens.map { ids[$0] ?? Self.unknownID } }

  /// The tokens of `ids`, without specials.
  public func tokens(of ids: [Int32]) -> [String] {
    ids.filter { $0 >= Int32(Self.specials.count) && Int($0) < tokens.count }.map { tokens[Int($0)] }
  }
}

/// Pairs of texts for a sequence-to-sequence model: `source<TAB>target` lines in `DIR/train.tsv`,
/// `DIR/test.tsv` and optionally `DIR/valid.tsv`.
public struct SequencePairs: Sendable {
  /// One pair: its texts and where it came from ("train.tsv:12").
  public struct Pair: Sendable, Equatable {
    public var source: String, target: String, origin: String
  }
  /// The splits; valid is nil when the data has no validation file.
  public var train: [Pair], valid: [Pair]?, test: [Pair]

  /// Reads `label<TAB>text`-style lines: `source<TAB>target`, blank lines skipped. A line without
  /// a tab or with an empty source is an error naming the file and line.
  public static func read(_ path: String) throws -> [Pair] {
    let text = try Corpus.readText(at: path)
    var pairs: [Pair] = []
    for (i, line) in text.split(separator: "\n", omittingEmptySubsequences: false).enumerated() {
      if line.allSatisfy({ $0.isWhitespace }) { continue }
      let origin = "\(path):\(i + 1)"
      guard let tab = line.firstIndex(of: "\t") else {
        throw DataError.malformed("\(origin): no tab between the source and the target (lines are source<TAB>target)")
      }
      let source = String(line[..<tab])
      let target = String(line[line.index(after: tab)...]).trimmingCharacters(in: CharacterSet(charactersIn: "\r"))
      if source.isEmpty { throw DataError.malformed("\(origin): the source before the tab is empty") }
      pairs.append(Pair(source: source, target: target, origin: origin))
    }
    if pairs.isEmpty { throw DataError.empty(path: path) }
    return pairs
  }

  /// Loads `directory`'s train.tsv, test.tsv and valid.tsv (when present).
  public static func load(directory: String) throws -> SequencePairs {
    if let problem = fileProblem(directory, expectDirectory: true) {
      throw DataError.unreadable(path: directory, reason: problem)
    }
    func join(_ name: String) -> String { (directory as NSString).appendingPathComponent(name) }
    for name in ["train.tsv", "test.tsv"] where !FileManager.default.fileExists(atPath: join(name)) {
      throw DataError.notFound(
        what: name, searched: [join(name)],
        hint:
          "Give a directory with train.tsv and test.tsv of source<TAB>target lines (rnnlm make-data addition|dates writes one)"
      )
    }
    let valid = FileManager.default.fileExists(atPath: join("valid.tsv")) ? try read(join("valid.tsv")) : nil
    return SequencePairs(train: try read(join("train.tsv")), valid: valid, test: try read(join("test.tsv")))
  }
}

/// The project's own sequence-to-sequence tasks, generated with a fixed seed (nothing is
/// downloaded): addition and date normalisation, as `source<TAB>target` lines.
public enum Seq2SeqTasks {
  /// `count` distinct additions "a+b" → the sum, for a, b of up to `digits` digits (0...999 by
  /// default), drawn with `seed`.
  public static func addition(count: Int, seed: UInt64, digits: Int = 3) -> [(source: String, target: String)] {
    var g = SeededGenerator(seed: seed)
    var seen = Set<Int>()
    var pairs: [(String, String)] = []
    let limit = Int(pow(10, Double(digits)))
    precondition(count <= limit * limit, "there are \(limit * limit) additions of numbers below \(limit)")
    while pairs.count < count {
      let (a, b) = (Int(g.next() % UInt64(limit)), Int(g.next() % UInt64(limit)))
      guard seen.insert(a * limit + b).inserted else { continue }
      pairs.append(("\(a)+\(b)", "\(a + b)"))
    }
    return pairs
  }

  static let months = [
    "january", "february", "march", "april", "may", "june", "july", "august", "september", "october", "november",
    "december",
  ]
  static let weekdays = ["monday", "tuesday", "wednesday", "thursday", "friday", "saturday", "sunday"]

  /// The date formats, each a function of (year, month 1...12, day, weekday 0 = Monday).
  static let dateFormats: [(String, @Sendable (Int, Int, Int, Int) -> String)] = {
    @Sendable func name(_ m: Int) -> String { months[m - 1] }
    @Sendable func abbreviation(_ m: Int) -> String { String(months[m - 1].prefix(3)) }
    @Sendable func two(_ x: Int) -> String { x < 10 ? "0\(x)" : "\(x)" }
    @Sendable func ordinal(_ d: Int) -> String {
      let suffix =
        (11...13).contains(d % 100) ? "th" : ["th", "st", "nd", "rd", "th", "th", "th", "th", "th", "th"][d % 10]
      return "\(d)\(suffix)"
    }
    return [
      ("september 27, 1994", { y, m, d, _ in "\(name(m)) \(d), \(y)" }),
      ("27 SEP 1994", { y, m, d, _ in "\(d) \(abbreviation(m).uppercased()) \(y)" }),
      ("9/27/94", { y, m, d, _ in "\(m)/\(d)/\(two(y % 100))" }),
      (
        "Tuesday, September 27, 1994",
        { y, m, d, w in
          "\(weekdays[w].capitalized), \(name(m).capitalized) \(d), \(y)"
        }
      ),
      ("1994.09.27", { y, m, d, _ in "\(y).\(two(m)).\(two(d))" }),
      ("27.09.1994", { y, m, d, _ in "\(two(d)).\(two(m)).\(y)" }),
      ("Sep 27 1994", { y, m, d, _ in "\(abbreviation(m).capitalized) \(d) \(y)" }),
      ("27 september 1994", { y, m, d, _ in "\(d) \(name(m)) \(y)" }),
      ("September 27th, 1994", { y, m, d, _ in "\(name(m).capitalized) \(ordinal(d)), \(y)" }),
      ("27/09/1994", { y, m, d, _ in "\(two(d))/\(two(m))/\(y)" }),
      ("tue 27 sep 1994", { y, m, d, w in "\(weekdays[w].prefix(3)) \(d) \(abbreviation(m)) \(y)" }),
      ("19940927", { y, m, d, _ in "\(y)\(two(m))\(two(d))" }),
    ]
  }()

  /// Days from 1970-01-01 to the civil date (proleptic Gregorian).
  static func daysSinceEpoch(_ y: Int, _ m: Int, _ d: Int) -> Int {
    let yy = m <= 2 ? y - 1 : y
    let era = (yy >= 0 ? yy : yy - 399) / 400
    let yoe = yy - era * 400
    let doy = (153 * (m + (m > 2 ? -3 : 9)) + 2) / 5 + d - 1
    let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy
    return era * 146_097 + doe - 719_468
  }

  /// `count` dates between 1950-01-01 and 2049-12-31 (so a two-digit year is unambiguous), each
  /// written in one of 12 formats (chosen uniformly; see `rnnlm make-data --help`), → ISO "1994-09-27"; distinct
  /// sources, drawn with `seed`.
  public static func dates(count: Int, seed: UInt64) -> [(source: String, target: String)] {
    var g = SeededGenerator(seed: seed)
    let lengths = [31, 28, 31, 30, 31, 30, 31, 31, 30, 31, 30, 31]
    var seen = Set<String>()
    var pairs: [(String, String)] = []
    while pairs.count < count {
      let y = 1950 + Int(g.next() % 100)
      let m = 1 + Int(g.next() % 12)
      let leap = y % 4 == 0 && (y % 100 != 0 || y % 400 == 0)
      let d = 1 + Int(g.next() % UInt64(lengths[m - 1] + (m == 2 && leap ? 1 : 0)))
      // 1970-01-01 was a Thursday (3 with Monday 0).
      let w = ((daysSinceEpoch(y, m, d) % 7) + 7 + 3) % 7
      let source = dateFormats[Int(g.next() % UInt64(dateFormats.count))].1(y, m, d, w)
      guard seen.insert(source).inserted else { continue }
      pairs.append((source, String(format: "%04d-%02d-%02d", y, m, d)))
    }
    return pairs
  }

  /// Writes `pairs` (shuffled by the generator that made them) as train.tsv, valid.tsv and
  /// test.tsv into `directory`: `validCount` and `testCount` pairs, the rest for training.
  public static func write(
    _ pairs: [(source: String, target: String)], to directory: String, validCount: Int, testCount: Int
  ) throws {
    precondition(validCount + testCount < pairs.count, "no pairs left for training")
    do { try FileManager.default.createDirectory(atPath: directory, withIntermediateDirectories: true) } catch {
      throw FileError(path: directory, reason: fileFailure(directory, error: error, expectDirectory: true))
    }
    let splits = [
      ("test.tsv", pairs[0..<testCount]), ("valid.tsv", pairs[testCount..<(testCount + validCount)]),
      ("train.tsv", pairs[(testCount + validCount)...]),
    ]
    for (name, part) in splits {
      let path = (directory as NSString).appendingPathComponent(name)
      try writeTextFile(part.map { "\($0.source)\t\($0.target)\n" }.joined(), to: path)
    }
  }
}
