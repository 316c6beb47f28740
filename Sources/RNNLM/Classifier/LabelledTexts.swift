import Foundation

/// What loading does with a text (or a sequence pair's source) that has no word or token: real
/// data sets have a few (SST-2's training phrases "(" and ")").
public enum EmptyTextPolicy: Sendable {
  /// Skip it and count it, keeping where the first was, for a warning.
  case skip
  /// Refuse the data, naming the text's file and line.
  case refuse
}

/// One labelled text: its words (see ``LabelledTexts/words(in:)``) and its class index.
public struct LabelledText: Sendable, Equatable {
  /// The words, in order.
  public var words: [String]
  /// Index into the data set's classes.
  public var label: Int
  /// Where the text came from ("train.tsv:12" or a file path), for messages.
  public var source: String

  /// A text of `words` in class `label`.
  public init(words: [String], label: Int, source: String = "") {
    self.words = words
    self.label = label
    self.source = source
  }
}

/// Labelled texts for classification, in one of the two layouts users have:
/// - class folders, as the IMDB data set: `DIR/train/<class>/*.txt` and `DIR/test/<class>/*.txt`
///   (optionally `DIR/valid/<class>/`), one text per file; the class names are the training
///   folders' names, sorted;
/// - `label<TAB>text` files: `DIR/train.tsv` and `DIR/test.tsv` (optionally `DIR/valid.tsv`), one
///   text per line; blank lines are skipped; the classes are the training labels, sorted.
public struct LabelledTexts: Sendable {
  /// Class names; a text's label indexes this.
  public var classes: [String]
  /// The training texts, in file order.
  public var train: [LabelledText]
  /// The validation texts when the data has its own (`valid/` or `valid.tsv`), else nil.
  public var valid: [LabelledText]?
  /// The test texts.
  public var test: [LabelledText]
  /// Which layout the data came in, for messages: "class folders" or "label<TAB>text files".
  public var layout: String
  /// Texts with no word by ``words(in:)`` (a line of only punctuation, say), which were skipped:
  /// how many, and where the first of them was ("train.tsv:4247"); zero and nil when none.
  public var skippedTexts = 0
  public var firstSkipped: String?

  /// The tokenisation rule, Keras' `Tokenizer` without its filter list: the text is lowercased;
  /// a word is a maximal run of letters, digits and apostrophes; everything else (spaces,
  /// punctuation, symbols) separates words and is dropped; apostrophes at a word's ends are
  /// dropped ("isn't" stays one word, "'cause" becomes "cause"), and so are the `<br />` line
  /// breaks of IMDB's files.
  public static func words(in text: String) -> [String] {
    var words: [String] = []
    var current = ""
    func flush() {
      let trimmed = current.trimmingCharacters(in: CharacterSet(charactersIn: "'"))
      if !trimmed.isEmpty && trimmed != "br" { words.append(trimmed) }
      current = ""
    }
    for ch in text.lowercased() {
      if ch.isLetter || ch.isNumber || ch == "'" { current.append(ch) } else { flush() }
    }
    flush()
    return words
  }

  /// Loads the data in `directory`, whichever of the two layouts it has. Texts with no word are
  /// skipped and counted, or refused (`emptyTexts`); malformed lines are always refused.
  public static func load(directory: String, emptyTexts: EmptyTextPolicy = .skip) throws -> LabelledTexts {
    if let problem = fileProblem(directory, expectDirectory: true) {
      throw DataError.unreadable(path: directory, reason: problem)
    }
    let fm = FileManager.default
    func join(_ name: String) -> String { (directory as NSString).appendingPathComponent(name) }
    var isDirectory: ObjCBool = false
    if fm.fileExists(atPath: join("train"), isDirectory: &isDirectory), isDirectory.boolValue {
      return try loadFolders(directory, emptyTexts: emptyTexts)
    }
    if fm.fileExists(atPath: join("train.tsv")) { return try loadTSV(directory, emptyTexts: emptyTexts) }
    throw DataError.notFound(
      what: "labelled texts", searched: [join("train") + "/<class>/*.txt", join("train.tsv")],
      hint: "Give a directory with train/ and test/ class folders, or train.tsv and test.tsv of label<TAB>text lines"
        + " (rnnlm make-data sentiment writes one)")
  }

  /// The class-folder layout.
  static func loadFolders(_ directory: String, emptyTexts: EmptyTextPolicy) throws -> LabelledTexts {
    var skipped = (count: 0, first: String?.none)
    let fm = FileManager.default
    func join(_ a: String, _ b: String) -> String { (a as NSString).appendingPathComponent(b) }
    func subdirectories(_ path: String) throws -> [String] {
      guard let names = try? fm.contentsOfDirectory(atPath: path) else {
        throw DataError.unreadable(path: path, reason: fileProblem(path, expectDirectory: true) ?? "cannot be listed")
      }
      return names.filter { name in
        var isDirectory: ObjCBool = false
        return !name.hasPrefix(".") && fm.fileExists(atPath: join(path, name), isDirectory: &isDirectory)
          && isDirectory.boolValue
      }.sorted()
    }
    let trainDir = join(directory, "train")
    let classes = try subdirectories(trainDir)
    guard classes.count >= 2 else {
      throw DataError.malformed(
        "\(trainDir) has \(classes.count) class folder\(classes.count == 1 ? "" : "s") (\(classes.joined(separator: ", "))); a classifier needs at least 2"
      )
    }
    func split(_ name: String, required: Bool) throws -> [LabelledText]? {
      let dir = join(directory, name)
      var isDirectory: ObjCBool = false
      guard fm.fileExists(atPath: dir, isDirectory: &isDirectory), isDirectory.boolValue else {
        if required {
          throw DataError.notFound(
            what: "the \(name) split", searched: [dir], hint: "Class folders need \(name)/<class>/*.txt")
        }
        return nil
      }
      var texts: [LabelledText] = []
      for folder in try subdirectories(dir) {
        guard let label = classes.firstIndex(of: folder) else {
          throw DataError.malformed(
            "\(join(dir, folder)): class \"\(folder)\" is not one of the training classes (\(classes.joined(separator: ", ")))"
          )
        }
        let folderPath = join(dir, folder)
        let files = ((try? fm.contentsOfDirectory(atPath: folderPath)) ?? []).filter { !$0.hasPrefix(".") }.sorted()
        for file in files {
          let path = join(folderPath, file)
          let text = try Corpus.readText(at: path)
          let words = Self.words(in: text)
          if words.isEmpty {
            if emptyTexts == .refuse { throw DataError.empty(path: path) }
            skipped = (skipped.count + 1, skipped.first ?? path)
            continue
          }
          texts.append(LabelledText(words: words, label: label, source: path))
        }
      }
      return texts
    }
    var data = LabelledTexts(
      classes: classes, train: try split("train", required: true)!, valid: try split("valid", required: false),
      test: try split("test", required: true)!, layout: "class folders")
    (data.skippedTexts, data.firstSkipped) = skipped
    try data.checkClasses(trainPath: trainDir)
    return data
  }

  /// The `label<TAB>text` layout.
  static func loadTSV(_ directory: String, emptyTexts: EmptyTextPolicy) throws -> LabelledTexts {
    var skipped = (count: 0, first: String?.none)
    func join(_ name: String) -> String { (directory as NSString).appendingPathComponent(name) }
    func lines(_ path: String) throws -> [(label: String, words: [String], source: String)] {
      let text = try Corpus.readText(at: path)
      var rows: [(label: String, words: [String], source: String)] = []
      for (i, line) in text.split(separator: "\n", omittingEmptySubsequences: false).enumerated() {
        let source = "\(path):\(i + 1)"
        if line.allSatisfy({ $0.isWhitespace }) { continue }
        guard let tab = line.firstIndex(of: "\t") else {
          throw DataError.malformed("\(source): no tab between the label and the text (lines are label<TAB>text)")
        }
        let label = line[..<tab].trimmingCharacters(in: .whitespaces)
        if label.isEmpty { throw DataError.malformed("\(source): the label before the tab is empty") }
        let words = Self.words(in: String(line[line.index(after: tab)...]))
        if words.isEmpty {
          if emptyTexts == .refuse { throw DataError.malformed("\(source): the text has no words") }
          skipped = (skipped.count + 1, skipped.first ?? source)
          continue
        }
        rows.append((label, words, source))
      }
      if rows.isEmpty { throw DataError.empty(path: path) }
      return rows
    }
    let trainPath = join("train.tsv")
    let train = try lines(trainPath)
    let classes = Set(train.map(\.label)).sorted()
    guard classes.count >= 2 else {
      throw DataError.malformed(
        "\(trainPath) has \(classes.count) label (\(classes.joined())); a classifier needs at least 2")
    }
    func labelled(_ rows: [(label: String, words: [String], source: String)]) throws -> [LabelledText] {
      try rows.map { row in
        guard let label = classes.firstIndex(of: row.label) else {
          throw DataError.malformed(
            "\(row.source): label \"\(row.label)\" is not one of the training labels (\(classes.joined(separator: ", ")))"
          )
        }
        return LabelledText(words: row.words, label: label, source: row.source)
      }
    }
    let testPath = join("test.tsv")
    guard FileManager.default.fileExists(atPath: testPath) else {
      throw DataError.notFound(what: "the test split", searched: [testPath], hint: "Give test.tsv beside train.tsv")
    }
    let validPath = join("valid.tsv")
    let valid = FileManager.default.fileExists(atPath: validPath) ? try labelled(try lines(validPath)) : nil
    var data = LabelledTexts(
      classes: classes, train: try labelled(train), valid: valid, test: try labelled(try lines(testPath)),
      layout: "label<TAB>text files")
    (data.skippedTexts, data.firstSkipped) = skipped
    try data.checkClasses(trainPath: trainPath)
    return data
  }

  /// Writes the texts as a language-model corpus in pytorch/examples' layout — `train.txt`,
  /// `valid.txt`, `test.txt` in `directory`, one text a line, its words as ``words(in:)`` gives
  /// them — so that a language model learns the text a classifier will read. The validation
  /// texts are the data's own, or the last `validationFraction` of the training texts after a
  /// shuffle seeded by `seed`. With `dropSpans`, a training text that is a shorter word span of
  /// another training text is left out (see ``withoutSpans(_:)``). Returns the texts written to
  /// each file and the training texts left out as spans.
  public func writeCorpus(
    to directory: String, validationFraction: Double = 0.1, seed: UInt64 = 1, dropSpans: Bool = false
  ) throws -> (train: Int, valid: Int, test: Int, spans: Int) {
    var (train, valid) = (self.train, self.valid ?? [])
    if self.valid == nil {
      guard let split = heldOutSplit(count: train.count, fraction: validationFraction, seed: seed) else {
        throw ConfigurationError(
          "a validation fraction of \(validationFraction) of \(train.count) texts holds none or all")
      }
      valid = split.held.map { train[$0] }
      train = split.train.map { train[$0] }
    }
    let all = train.count
    if dropSpans { train = Self.withoutSpans(train) }
    do { try FileManager.default.createDirectory(atPath: directory, withIntermediateDirectories: true) } catch {
      throw FileError(path: directory, reason: fileFailure(directory, error: error, expectDirectory: true))
    }
    for (name, texts) in [("train.txt", train), ("valid.txt", valid), ("test.txt", test)] {
      let path = (directory as NSString).appendingPathComponent(name)
      let text = texts.map { $0.words.joined(separator: " ") + "\n" }.joined()
      try writeTextFile(text, to: path)
    }
    return (train.count, valid.count, test.count, all - train.count)
  }

  /// `texts` in their order without each text whose words are a shorter contiguous run of another
  /// text's words ("good film" of "a good film"; "goo" is no span of "good"); texts that are equal
  /// stay. SST's phrases are the spans of its sentences' parse trees, so this keeps about one text
  /// per sentence: a language model of them reads each sentence once, not once per span.
  public static func withoutSpans(_ texts: [LabelledText]) -> [LabelledText] {
    // Enumerating every span of every text would cost the cube of a text's length (documents of
    // thousands of words); instead each position of a text is tried only with the lengths of the
    // texts that start with its word, each span compared by a rolling hash, then word by word.
    var wordIDs: [String: Int] = [:]
    let distinct = Array(Set(texts.map(\.words)))
    let encoded = distinct.map { words in
      words.map { word in
        if let id = wordIDs[word] { return id }
        wordIDs[word] = wordIDs.count
        return wordIDs.count - 1
      }
    }
    // prefix[i][k]: the hash of text i's first k words.
    let base: UInt64 = 0x9E37_79B9_7F4A_7C15
    let prefix = encoded.map { ids in
      var h: [UInt64] = [0]
      for id in ids { h.append(h.last! &* base &+ UInt64(id + 1)) }
      return h
    }
    let longest = encoded.map(\.count).max() ?? 0
    var power: [UInt64] = [1]
    for _ in 0..<longest { power.append(power.last! &* base) }
    var byHash: [UInt64: [Int]] = [:]
    var lengthsByFirstWord: [Int: Set<Int>] = [:]
    for (index, ids) in encoded.enumerated() where !ids.isEmpty {
      byHash[prefix[index].last!, default: []].append(index)
      lengthsByFirstWord[ids[0], default: []].insert(ids.count)
    }
    var isSpan = [Bool](repeating: false, count: encoded.count)
    for (ids, h) in zip(encoded, prefix) where ids.count > 1 {
      for start in ids.indices {
        for length in lengthsByFirstWord[ids[start]] ?? [] where length < ids.count && start + length <= ids.count {
          let spanHash = h[start + length] &- h[start] &* power[length]
          for candidate in byHash[spanHash] ?? [] where !isSpan[candidate] {
            if encoded[candidate].count == length && encoded[candidate][...] == ids[start..<(start + length)] {
              isSpan[candidate] = true
            }
          }
        }
      }
    }
    let spans = Set(zip(distinct, isSpan).filter(\.1).map(\.0))
    return texts.filter { !spans.contains($0.words) }
  }

  /// Every class has training texts.
  private func checkClasses(trainPath: String) throws {
    var counts = [Int](repeating: 0, count: classes.count)
    for t in train { counts[t.label] += 1 }
    if let empty = counts.firstIndex(of: 0) {
      throw DataError.malformed("\(trainPath): class \"\(classes[empty])\" has no training texts")
    }
  }
}

/// The words a classifier knows: `<pad>` (id 0), `<unk>` (id 1), then the most frequent
/// training words, most frequent first (ties in alphabetical order).
public struct ClassifierVocabulary: Sendable, Equatable {
  /// The padding token, id 0.
  public static let padding = "<pad>"
  /// Id 0 and 1.
  public static let paddingID: Int32 = 0
  public static let unknownID: Int32 = 1
  /// Words by id.
  public let words: [String]
  private let ids: [String: Int32]

  /// The `limit` most frequent words of `texts` (all of them when fewer), after `<pad>` and `<unk>`.
  public init(counting texts: [LabelledText], limit: Int) {
    var counts: [String: Int] = [:]
    for t in texts { for w in t.words { counts[w, default: 0] += 1 } }
    let ranked = counts.sorted { $0.value != $1.value ? $0.value > $1.value : $0.key < $1.key }.prefix(max(limit, 0))
    try! self.init(words: [Self.padding, Vocabulary.unknownWord] + ranked.map(\.key))
  }

  /// A vocabulary of exactly these words (as a checkpoint stores them); the first two must be
  /// `<pad>` and `<unk>` and no word may repeat.
  public init(words: [String]) throws {
    guard words.count >= 3, words[0] == Self.padding, words[1] == Vocabulary.unknownWord else {
      throw DataError.malformed("a classifier's vocabulary starts with <pad> and <unk> and has at least one word")
    }
    var ids: [String: Int32] = [:]
    for (i, w) in words.enumerated() {
      if ids[w] != nil { throw DataError.malformed("the vocabulary lists \"\(w)\" twice") }
      ids[w] = Int32(i)
    }
    self.words = words
    self.ids = ids
  }

  /// Number of ids V.
  public var count: Int { words.count }

  /// The ids of `words` (`<unk>` for unknown words), cut to at most `maxLength` by ``Truncation``.
  public func ids(of words: [String], maxLength: Int, truncation: Truncation) -> [Int32] {
    let all = words.map { ids[$0] ?? Self.unknownID }
    guard all.count > maxLength else { return all }
    return truncation == .keepEnd ? Array(all.suffix(maxLength)) : Array(all.prefix(maxLength))
  }
}

/// Which part of a text longer than the maximum length is kept.
public enum Truncation: String, Codable, Sendable, CaseIterable {
  /// The last tokens (Keras' `pad_sequences(truncating='pre')`, its default).
  case keepEnd = "end"
  /// The first tokens (`truncating='post'`).
  case keepStart = "start"
}
