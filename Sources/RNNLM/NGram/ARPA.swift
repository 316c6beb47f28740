import Foundation

/// The ARPA back-off format that n-gram tools share (SRILM, KenLM, …): a `\data\` section with
/// the number of n-grams of each order, then for each order k a `\k-grams:` section of lines
/// `log10 p(w | h)  h w  [log10 γ(h w)]`, then `\end\`. An n-gram not listed has probability
/// γ(h) · p(w | h′); a context not listed has γ = 1.
extension NGramModel {
  /// Sentence markers that ARPA readers such as KenLM require. This model reads one stream
  /// with `<eos>` and never predicts them, so they are written with log10 p = −99 (the value
  /// SRILM gives `<s>`) and skipped on reading.
  static let sentenceMarkers = ["<s>", "</s>"]

  /// The model as an ARPA file: unigrams in vocabulary order, then each order's n-grams.
  public func writeARPA(to path: String) throws {
    guard FileManager.default.createFile(atPath: path, contents: nil),
      let handle = FileHandle(forWritingAtPath: path)
    else {
      throw FileError(path: path, reason: "cannot be written: \(fileProblem(path) ?? "cannot be created")")
    }
    defer { try? handle.close() }
    var buffer = ""
    func flush(_ force: Bool = false) {
      if force || buffer.utf8.count > 1 << 20 {
        handle.write(Data(buffer.utf8))
        buffer = ""
      }
    }
    // log10 as the shortest decimal that reads back as the same Float (7 to 9 digits, ARPA's
    // usual precision); String(format:) took three times as long.
    func number(_ lnValue: Double) -> String { Float(lnValue / M_LN10).description }
    let markers = Self.sentenceMarkers.filter { vocabulary.id(of: $0) == nil }
    buffer += "\\data\\\n"
    for (k, count) in counts.enumerated() { buffer += "ngram \(k + 1)=\(count + (k == 0 ? markers.count : 0))\n" }
    // The words of every n-gram: its prefix id one order down and its last word.
    var prefix: [[Int32]] = [[]]
    var last: [[Int32]] = [vocabulary.words.indices.map { Int32($0) }]
    for k in 1..<order {
      var p = [Int32](repeating: 0, count: counts[k])
      var w = p
      for (key, id) in levels[k].index {
        p[Int(id)] = Int32(truncatingIfNeeded: key >> 32)
        w[Int(id)] = Int32(truncatingIfNeeded: key & 0xFFFF_FFFF)
      }
      prefix.append(p)
      last.append(w)
    }
    func words(_ k: Int, _ id: Int32) -> String {
      k == 0
        ? vocabulary.words[Int(id)] : words(k - 1, prefix[k][Int(id)]) + " " + vocabulary.words[Int(last[k][Int(id)])]
    }
    for k in 0..<order {
      buffer += "\n\\\(k + 1)-grams:\n"
      if k == 0 { for m in markers { buffer += "-99\t\(m)\(order > 1 ? "\t0" : "")\n" } }
      for id in 0..<counts[k] {
        buffer += number(levels[k].logProbability[id]) + "\t" + words(k, Int32(id))
        if k < order - 1 { buffer += "\t" + number(levels[k].logBackoff[id]) }
        buffer += "\n"
        flush()
      }
    }
    buffer += "\n\\end\\\n"
    flush(true)
  }

  /// Reads an ARPA file (this toolkit's or another tool's). Its unigrams, in file order, are
  /// the vocabulary, apart from the sentence markers `<s>` and `</s>` when they have log10 p ≤ −99.
  public init(arpa path: String) throws {
    // Read as bytes, not as a Swift String split into Characters: a 5-gram ARPA file of PTB
    // has 2.5 million lines, and Character-wise splitting took 17 s of the 20.
    let bytes = [UInt8](try Corpus.readData(at: path))
    func fail(_ line: Int, _ what: String) -> NGramError { NGramError("\(path):\(line): \(what)") }
    var declared: [Int] = []
    var section = 0  // 0: before \data\, -1: in \data\, k: in \k-grams:, -2: after \end\
    var vocabulary = Vocabulary()
    var levels: [Level] = []
    var skippedMarkers = 0
    var lineNumber = 0
    var start = 0
    var fields: [Range<Int>] = []
    var ids: [Int32] = []
    func text(_ r: Range<Int>) -> String { String(decoding: bytes[r], as: UTF8.self) }
    var scratch = [CChar](repeating: 0, count: 64)
    func parseNumber(_ r: Range<Int>) throws -> Double {
      let value: Double? =
        r.count >= scratch.count
        ? nil
        : scratch.withUnsafeMutableBufferPointer { buffer in
          for (j, i) in r.enumerated() { buffer[j] = CChar(bitPattern: bytes[i]) }
          buffer[r.count] = 0
          var end: UnsafeMutablePointer<CChar>?
          let x = strtod(buffer.baseAddress!, &end)
          return end == buffer.baseAddress! + r.count ? x : nil
        }
      guard let x = value, x.isFinite || x == -.infinity else {
        throw fail(lineNumber, "\"\(text(r))\" is not a number")
      }
      return x * M_LN10
    }
    lines: while start < bytes.count {
      var end = start
      while end < bytes.count && bytes[end] != 10 { end += 1 }
      lineNumber += 1
      defer { start = end + 1 }
      // Fields: runs of bytes other than space, tab and carriage return.
      fields.removeAll(keepingCapacity: true)
      var i = start
      while i < end {
        while i < end && (bytes[i] == 32 || bytes[i] == 9 || bytes[i] == 13) { i += 1 }
        let f = i
        while i < end && bytes[i] != 32 && bytes[i] != 9 && bytes[i] != 13 { i += 1 }
        if i > f { fields.append(f..<i) }
      }
      if fields.isEmpty { continue }
      if bytes[fields[0].lowerBound] == 92 {  // a line starting with a backslash
        let line = fields.map(text).joined(separator: " ")
        if line == "\\data\\" {
          section = -1
        } else if line == "\\end\\" {
          section = -2
          break lines
        } else if line.hasSuffix("-grams:"), let k = Int(line.dropFirst().dropLast("-grams:".count)),
          k == levels.count + 1, k <= declared.count
        {
          levels.append(Level())
          section = k
        } else {
          throw fail(lineNumber, "unexpected section \(line)")
        }
        continue
      }
      switch section {
      case -1:
        let line = fields.map(text).joined(separator: " ")
        let parts = line.split(separator: "=")
        guard line.hasPrefix("ngram "), parts.count == 2,
          let k = Int(parts[0].dropFirst(6).trimmingCharacters(in: .whitespaces)), k == declared.count + 1,
          let count = Int(parts[1].trimmingCharacters(in: .whitespaces)), count >= 0
        else { throw fail(lineNumber, "expected \"ngram \(declared.count + 1)=COUNT\"") }
        declared.append(count)
      case 1...:
        let k = section
        guard fields.count == k + 1 || (k < declared.count && fields.count == k + 2) else {
          throw fail(
            lineNumber, "expected a log10 probability, \(k) word\(k == 1 ? "" : "s") and an optional back-off weight")
        }
        let logP = try parseNumber(fields[0])
        let backoff = fields.count == k + 2 ? try parseNumber(fields[k + 1]) : 0
        if k == 1 {
          let word = text(fields[1])
          if Self.sentenceMarkers.contains(word) && logP <= -99 * M_LN10 {
            skippedMarkers += 1
            continue
          }
          guard vocabulary.id(of: word) == nil else { throw fail(lineNumber, "unigram \"\(word)\" listed twice") }
          vocabulary.add(word)
          levels[0].logProbability.append(logP)
          levels[0].logBackoff.append(backoff)
          continue
        }
        ids.removeAll(keepingCapacity: true)
        for f in fields[1...k] {
          guard let id = vocabulary.id(of: text(f)) else {
            throw fail(lineNumber, "\"\(text(f))\" is not among the unigrams")
          }
          ids.append(id)
        }
        guard let h = Self.id(of: ids.dropLast()[...], in: levels) else {
          throw fail(
            lineNumber,
            "the context \"\(fields[1..<k].map(text).joined(separator: " "))\" is not a \(k - 1)-gram of the file")
        }
        let key = Self.key(h, ids[k - 1])
        guard levels[k - 1].index[key] == nil else { throw fail(lineNumber, "n-gram listed twice") }
        levels[k - 1].index[key] = Int32(levels[k - 1].logProbability.count)
        levels[k - 1].logProbability.append(logP)
        levels[k - 1].logBackoff.append(backoff)
      default:
        throw fail(lineNumber, "text outside the \\data\\ and n-gram sections")
      }
    }
    guard section == -2 else { throw NGramError("\(path): not an ARPA file (no \\data\\ … \\end\\)") }
    guard !declared.isEmpty, levels.count == declared.count else {
      throw NGramError("\(path): \\data\\ declares \(declared.count) orders, the file has \(levels.count)")
    }
    for (k, level) in levels.enumerated() {
      let found = level.logProbability.count + (k == 0 ? skippedMarkers : 0)
      guard found == declared[k] else {
        throw NGramError("\(path): \\data\\ declares \(declared[k]) \(k + 1)-grams, the file has \(found)")
      }
    }
    self.init(order: levels.count, vocabulary: vocabulary, levels: levels)
  }
}
