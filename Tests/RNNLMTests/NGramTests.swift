import Foundation
import Testing

@testable import RNNLM

/// The Kneser-Ney n-gram model: a hand-worked example, normalisation over every context,
/// unknown words and the ARPA round trip.
@Suite struct NGramTests {
  /// Tokens and vocabulary of a text, words in first-seen order, `<eos>` after each line.
  static func tokens(_ text: String) throws -> (ids: [Int32], vocabulary: Vocabulary) {
    var v = Vocabulary()
    let ids = try Corpus.tokenize(text, path: "t", vocabulary: &v, extend: true)
    return (ids, v)
  }

  /// The stream a b a b a b a b c a c a c d a d b d e as a bigram model, worked by hand.
  ///
  /// Bigram counts: ab 4, ba 3, ca 2, ac 2, and bc cd da ad db bd de once each: n₁ = 7, n₂ = 2,
  /// n₃ = 1, n₄ = 1, so Y = 7/11, D₁ = 1 − 2Y·2/7 = 7/11, D₂ = 2 − 3Y·1/2 = 23/22,
  /// D₃₊ = 3 − 4Y = 5/11. Unigram continuation counts (distinct words before, plus one for the
  /// first token): a 3+1 = 4, b 2, c 2, d 3, e 1, total 12: n₁ = n₃ = n₄ = 1, n₂ = 2, Y = 1/5,
  /// D₁ = 0.2, D₂ = 1.7, D₃₊ = 2.2; γ(ε) = (0.2 + 2·1.7 + 2·2.2)/12 = 2/3, and
  /// p₁(b) = (2 − 1.7)/12 + (2/3)/5. After a: ab 4, ac 2, ad 1, a(a•) = 7,
  /// γ(a) = (7/11 + 23/22 + 5/11)/7 = 47/154, p(b | a) = (4 − 5/11)/7 + γ(a) p₁(b), and the unseen
  /// p(e | a) = γ(a) p₁(e) with p₁(e) = (1 − 0.2)/12 + (2/3)/5.
  @Test func handWorkedBigramModel() throws {
    let (ids, v) = try Self.tokens("a b a b a b a b c a c a c d a d b d e")
    // Drop the final <eos>, so the stream is exactly the 19 words.
    let stream = Array(ids.dropLast())
    let model = try NGramModel(training: stream, vocabulary: try Vocabulary(words: Array(v.words.prefix(5))), order: 2)
    #expect(model.counts == [5, 11])
    #expect(model.discountFallbacks == [nil, nil])
    let expected: [[Double]] = [[0.2, 1.7, 2.2], [7.0 / 11, 23.0 / 22, 5.0 / 11]]
    for k in 0..<2 {
      for i in 0..<3 { #expect(abs(model.discounts[k][i] - expected[k][i]) < 1e-12, "order \(k + 1) D\(i + 1)") }
    }
    let (a, b, c, d, e): (Int32, Int32, Int32, Int32, Int32) = (0, 1, 2, 3, 4)
    let unigram: [Int32: Double] = [
      a: (4 - 2.2) / 12 + 2.0 / 15, b: (2 - 1.7) / 12 + 2.0 / 15, c: (2 - 1.7) / 12 + 2.0 / 15,
      d: (3 - 2.2) / 12 + 2.0 / 15, e: (1 - 0.2) / 12 + 2.0 / 15,
    ]
    for (w, p) in unigram { #expect(abs(exp(model.logProbability(of: w, after: [])) - p) < 1e-12) }
    let pba = (4 - 5.0 / 11) / 7 + 47.0 / 154 * unigram[b]!
    #expect(abs(exp(model.logProbability(of: b, after: [a])) - pba) < 1e-12)
    #expect(abs(exp(model.logProbability(of: e, after: [a])) - 47.0 / 154 * unigram[e]!) < 1e-12)
    // Only the last word of a longer context counts in a bigram model.
    #expect(model.logProbability(of: b, after: [c, d, a]) == model.logProbability(of: b, after: [a]))
  }

  /// For every order and every context of up to N − 1 words over the vocabulary, seen or not,
  /// the probabilities of the next word sum to 1.
  @Test(arguments: [1, 2, 3, 4])
  func everyContextSumsToOne(order: Int) throws {
    let text = grammarText(sentences: 400, seed: 5) + "fish avoid cats\nbirds chase mice mice\n"
    let (ids, v) = try Self.tokens(text)
    let model = try NGramModel(training: ids, vocabulary: v, order: order)
    var contexts: [[Int32]] = [[]]
    var frontier: [[Int32]] = [[]]
    for _ in 0..<(order - 1) {
      frontier = frontier.flatMap { c in (0..<Int32(v.count)).map { c + [$0] } }
      contexts += frontier
    }
    var worst = 0.0
    for context in contexts {
      let sum = (0..<Int32(v.count)).reduce(0.0) { $0 + exp(model.logProbability(of: $1, after: context[...])) }
      worst = max(worst, abs(sum - 1))
    }
    #expect(worst < 1e-12, "order \(order): largest |Σ p − 1| = \(worst) over \(contexts.count) contexts")
  }

  /// A word of the vocabulary never seen in training still has a probability (γ(ε)/V), and an
  /// unknown word of a text is read as <unk>.
  @Test func unseenAndUnknownWords() throws {
    let text = grammarText(sentences: 300, seed: 2)
    let (ids, seen) = try Self.tokens(text)
    let v = try Vocabulary(words: seen.words + ["<unk>", "zebra"])
    let model = try NGramModel(training: ids, vocabulary: v, order: 3)
    let zebra = v.id(of: "zebra")!
    let p = model.logProbability(of: zebra, after: [0, 1])
    #expect(p.isFinite && p < log(1.0 / Double(v.count)))
    // A context with an unseen word backs off past it.
    #expect(model.logProbability(of: 1, after: [zebra, 0]) == model.logProbability(of: 1, after: [0]))
    let (textIDs, oov) = try Corpus.tokenize(
      "cats yodel\n", path: "t", vocabulary: v, readingUnknownAs: v.id(of: "<unk>"))
    #expect(oov == 1 && textIDs[1] == v.id(of: "<unk>"))
    #expect(model.perplexity(of: textIDs).perplexity.isFinite)
  }

  /// Too small a corpus for an order's discounts: that order takes the fallback discounts and
  /// says why; the model still sums to 1. Nothing to train on is an error.
  @Test func smallCorporaFallBack() throws {
    let (ids, v) = try Self.tokens("a b c a b\n")
    let model = try NGramModel(training: ids, vocabulary: v, order: 2)
    #expect(model.discounts == [NGramModel.fallbackDiscounts, NGramModel.fallbackDiscounts])
    #expect(model.discountFallbacks[1] == "no 2-gram has a count of exactly 3")
    for context: [Int32] in [[], [0], [1], [3]] {
      let sum = (0..<Int32(v.count)).reduce(0.0) { $0 + exp(model.logProbability(of: $1, after: context[...])) }
      #expect(abs(sum - 1) < 1e-12)
    }
    #expect(throws: NGramError.self) { try NGramModel(training: [], vocabulary: v, order: 2) }
    #expect(throws: NGramError.self) { try NGramModel(training: ids, vocabulary: v, order: 0) }
    #expect(throws: NGramError.self) { try NGramModel(training: [0, 9], vocabulary: v, order: 1) }
  }

  /// Written as ARPA and read back, the model gives the same probabilities (to ARPA's 7
  /// significant digits) for every context of up to N − 1 words, and the same perplexity.
  @Test func arpaRoundTrip() throws {
    let (ids, v) = try Self.tokens(grammarText(sentences: 400, seed: 7) + "fish avoid cats\n")
    let model = try NGramModel(training: ids, vocabulary: v, order: 3)
    let path = try DataTests.temporaryDirectory() + "/m.arpa"
    try model.writeARPA(to: path)
    let read = try NGramModel(arpa: path)
    #expect(read.order == 3 && read.vocabulary == v && read.counts == model.counts)
    var worst = 0.0
    for h1 in [nil] + (0..<Int32(v.count)).map(Optional.some) {
      for h2 in 0..<Int32(v.count) {
        let context: [Int32] = h1.map { [$0, h2] } ?? [h2]
        for w in 0..<Int32(v.count) {
          let a = model.logProbability(of: w, after: context[...])
          let b = read.logProbability(of: w, after: context[...])
          worst = max(worst, abs(a - b) / max(1, abs(a)))
        }
      }
    }
    #expect(worst < 1e-6, "largest relative difference \(worst)")
    let text = try Self.tokens(grammarText(sentences: 50, seed: 8)).ids
    #expect(abs(read.perplexity(of: text).perplexity / model.perplexity(of: text).perplexity - 1) < 1e-6)
    // The sentence markers other tools need are in the file, and are not read back as words.
    let arpa = try String(contentsOfFile: path, encoding: .utf8)
    #expect(arpa.contains("-99\t<s>\t0\n") && arpa.contains("ngram 1=\(v.count + 2)\n"))
  }

  /// Damaged ARPA files are errors naming the file and line.
  @Test func damagedARPAFilesAreNamed() throws {
    let dir = try DataTests.temporaryDirectory()
    let cases: [(String, String)] = [
      ("\\data\\\nngram 1=2\n\n\\1-grams:\n-1\ta\n\n\\end\\\n", "declares 2 1-grams, the file has 1"),
      (
        "\\data\\\nngram 1=1\nngram 2=1\n\n\\1-grams:\n-1\ta\t0\n\n\\2-grams:\n-1\tb a\n\n\\end\\\n", ":9: \"b\" is not"
      ),
      ("\\data\\\nngram 1=1\n\n\\1-grams:\nx\ta\n\n\\end\\\n", ":5: \"x\" is not a number"),
      ("\\data\\\nngram 1=1\n\n\\1-grams:\n-1\ta\n", "not an ARPA file"),
      ("hello\n", ":1: text outside"),
    ]
    for (i, (text, words)) in cases.enumerated() {
      let path = dir + "/\(i).arpa"
      try text.write(toFile: path, atomically: true, encoding: .utf8)
      let error = #expect(throws: NGramError.self) { try NGramModel(arpa: path) }
      #expect(error?.description.contains(words) == true, "\(i): \(error.map { "\($0)" } ?? "")")
    }
  }
}
