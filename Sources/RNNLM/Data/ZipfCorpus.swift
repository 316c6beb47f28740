import Foundation

/// A corpus of the project's own with a vocabulary of any size, for measuring how a language
/// model's cost grows with V: words `w0`, `w1`, … drawn independently with Zipf's law
/// (p(rank r) ∝ 1 / (r + 1)^s, s = 1 as in natural text), sentences of geometric length with
/// mean ``meanSentenceLength`` (about PTB's).
///
/// Every word occurs in the training text at least once (the words a draw of that length missed
/// are written, in rank order, as sentences of ``meanSentenceLength`` at its end), so the
/// training vocabulary has exactly V words with `<eos>`, and validation and test (drawn from the
/// same law) hold no word outside it. Word ids read from it are in order of frequency apart from
/// ties among the rarest words.
public enum ZipfCorpus {
  /// Words per sentence on average (PTB has about 21).
  public static let meanSentenceLength = 20

  /// The token counts of the three files (train has the missed words on top of `tokens`).
  public struct Written: Sendable {
    /// Tokens (words and `<eos>`) of train.txt, valid.txt and test.txt.
    public let train: Int, valid: Int, test: Int
    /// Words appended to train.txt because the draw missed them.
    public let appended: Int
  }

  /// Writes train.txt (`tokens` drawn tokens, plus the missed words), valid.txt and test.txt
  /// (each a tenth of `tokens`) into `directory`, from `seed`; V counts `<eos>`.
  public static func write(
    to directory: String, vocabularySize v: Int, tokens: Int, exponent s: Double = 1, seed: UInt64
  ) throws -> Written {
    guard v >= 2 else { throw ConfigurationError("a Zipf corpus needs a vocabulary of at least 2, got \(v)") }
    guard tokens >= 100 else { throw ConfigurationError("a Zipf corpus needs at least 100 tokens, got \(tokens)") }
    do {
      try FileManager.default.createDirectory(atPath: directory, withIntermediateDirectories: true)
    } catch {
      throw FileError(path: directory, reason: fileFailure(directory, error: error, expectDirectory: true))
    }
    let words = v - 1  // <eos> is the V-th
    // The cumulative distribution over ranks, for inverse-CDF draws by binary search.
    var cumulative = [Double](repeating: 0, count: words)
    var total = 0.0
    for r in 0..<words {
      total += 1 / Foundation.pow(Double(r + 1), s)
      cumulative[r] = total
    }
    var g = SeededGenerator(seed: seed)
    func draw() -> Int {
      let u = g.nextUniform() * total
      var (lo, hi) = (0, words - 1)
      while lo < hi {
        let mid = (lo + hi) / 2
        if cumulative[mid] > u { hi = mid } else { lo = mid + 1 }
      }
      return lo
    }
    // After the first word each token ends the sentence with this probability: mean length L.
    let endProbability = 1 / Double(meanSentenceLength)
    /// A text of about `count` tokens, each line a sentence of at least one word; `seen` marks
    /// the ranks drawn.
    func text(_ count: Int, seen: inout [Bool]) -> (text: String, tokens: Int) {
      var out = ""
      out.reserveCapacity(count * 7)
      var (inSentence, written) = (0, 0)
      while written < count || inSentence > 0 {
        if inSentence > 0 && (written >= count - 1 || g.nextUniform() < endProbability) {
          out += "\n"
          inSentence = 0
        } else {
          let r = draw()
          seen[r] = true
          out += inSentence == 0 ? "w\(r)" : " w\(r)"
          inSentence += 1
        }
        written += 1
      }
      return (out, written)
    }
    var seen = [Bool](repeating: false, count: words)
    var (train, trainTokens) = text(tokens, seen: &seen)
    let missed = (0..<words).filter { !seen[$0] }
    var index = 0
    while index < missed.count {
      let line = missed[index..<min(index + meanSentenceLength, missed.count)]
      train += line.map { "w\($0)" }.joined(separator: " ") + "\n"
      trainTokens += line.count + 1
      index += line.count
    }
    var unused = seen
    let valid = text(max(tokens / 10, 10), seen: &unused)
    let test = text(max(tokens / 10, 10), seen: &unused)
    for (name, contents) in [("train.txt", train), ("valid.txt", valid.text), ("test.txt", test.text)] {
      let path = (directory as NSString).appendingPathComponent(name)
      try writeTextFile(contents, to: path)
    }
    return Written(train: trainTokens, valid: valid.tokens, test: test.tokens, appended: missed.count)
  }
}
