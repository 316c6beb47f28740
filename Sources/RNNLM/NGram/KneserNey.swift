import Foundation

/// Why an n-gram model cannot be trained or read.
public struct NGramError: Error, CustomStringConvertible, Equatable {
  /// One line for the user.
  public let description: String
  /// An error saying `description`.
  public init(_ description: String) { self.description = description }
}

/// An interpolated modified Kneser-Ney n-gram language model (Chen & Goodman, "An Empirical Study
/// of Smoothing Techniques for Language Modeling", 1998), the statistical model that recurrent
/// language models are measured against.
///
/// It reads the corpus as the recurrent models do: one stream of tokens, `<eos>` after every
/// line, contexts running across line ends, over a fixed vocabulary. For order N and a context h
/// of k − 1 words (k ≤ N):
///
///     p_k(w | h) = max(a(h w) − D_k(a(h w)), 0) / a(h •)  +  γ(h) · p_{k−1}(w | h′)
///     γ(h)       = (D_k,1 · N₁(h •) + D_k,2 · N₂(h •) + D_k,3+ · N₃₊(h •)) / a(h •)
///
/// where h′ is h without its first word, a(h •) = Σ_w a(h w), and N_i(h •) counts the words w
/// with a(h w) = i (3 or more for N₃₊). The counts a are the raw counts at order N and, below
/// it, continuation counts: the number of distinct words seen before the n-gram, plus one for
/// the n-gram that starts the stream (which has nothing before it; the same rule KenLM applies
/// to n-grams that begin with `<s>`). A context never seen (a(h •) = 0) passes p_{k−1} through.
/// The unigrams interpolate with the uniform distribution: p_1(w) = max(a(w) − D, 0) / a(•) +
/// γ(ε) / V. Each order has three discounts from its counts of counts n₁…n₄:
///
///     Y = n₁ / (n₁ + 2 n₂),  D₁ = 1 − 2Y n₂/n₁,  D₂ = 2 − 3Y n₃/n₂,  D₃₊ = 3 − 4Y n₄/n₃
///
/// (A small corpus may lack the counts of counts an order needs; that order then takes
/// ``fallbackDiscounts``.)
///
/// The model is stored as ARPA stores it (``writeARPA(to:)``): the interpolated probability of
/// every n-gram seen and the back-off weight γ(h) of every context, so that an unseen n-gram is
/// γ(h) · p(w | h′). Probabilities are kept as natural logarithms in Double.
public struct NGramModel: Sendable {
  /// The highest order N.
  public let order: Int
  /// The words; ids are positions.
  public let vocabulary: Vocabulary
  /// D₁, D₂, D₃₊ of each order, unigrams first (empty for a model read from ARPA).
  public let discounts: [[Double]]
  /// For each order, why its discounts are ``fallbackDiscounts`` (its counts of counts could not
  /// give them: a small corpus), or nil when they were estimated.
  public let discountFallbacks: [String?]
  /// The discounts an order takes when its counts of counts cannot give them, as KenLM's
  /// `--discount_fallback` does: 0.5, 1 and 1.5.
  public static let fallbackDiscounts = [0.5, 1.0, 1.5]
  /// The n-grams of each order, unigrams first.
  var levels: [Level]

  /// The n-grams of one order k.
  struct Level: Sendable {
    /// (id of the first k − 1 words at order k − 1, last word) → id; unused for unigrams,
    /// whose ids are the word ids.
    var index: [UInt64: Int32] = [:]
    /// ln p(w | h) of each n-gram.
    var logProbability: [Double] = []
    /// ln γ of each n-gram as a context of order k + 1 (0 when nothing follows it).
    var logBackoff: [Double] = []
  }

  /// The number of n-grams of each order, unigrams first (the whole vocabulary at order 1).
  public var counts: [Int] { levels.map(\.logProbability.count) }

  static func key(_ prefix: Int32, _ word: Int32) -> UInt64 { UInt64(UInt32(prefix)) << 32 | UInt64(UInt32(word)) }

  /// Counts `tokens` and estimates the model.
  ///
  /// - Parameters:
  ///   - tokens: the training stream, ids of `vocabulary`.
  ///   - vocabulary: the words; every id in `tokens` must be below its count.
  ///   - order: N, from 1 up.
  /// - Throws: ``NGramError`` for an order below 1, an empty text or ids outside the vocabulary.
  ///   An order whose counts of counts cannot give its discounts (no n-gram seen exactly 1, 2,
  ///   3 or 4 times, or a discount outside 0…i) takes ``fallbackDiscounts`` and says why in
  ///   ``discountFallbacks``.
  public init(training tokens: [Int32], vocabulary: Vocabulary, order: Int) throws {
    guard order >= 1 else { throw NGramError("the order must be at least 1, got \(order)") }
    guard !tokens.isEmpty else { throw NGramError("the training text is empty") }
    let v = vocabulary.count
    guard v >= 1, tokens.allSatisfy({ $0 >= 0 && Int($0) < v }) else {
      throw NGramError("the training tokens are not ids of the vocabulary")
    }
    self.order = order
    self.vocabulary = vocabulary

    // 1. Every n-gram of every order in the stream, with its prefix and suffix n-grams, the raw
    // counts at order N and which n-grams start the stream.
    var index = [[UInt64: Int32]](repeating: [:], count: order)
    var prefix = [[Int32]](repeating: [], count: order)
    var suffix = [[Int32]](repeating: [], count: order)
    var adjusted = [[Double]](repeating: [], count: order)
    adjusted[0] = [Double](repeating: 0, count: v)
    var previous = [Int32](repeating: -1, count: order)  // ids of the k-grams ending one token back
    var current = previous
    for (i, w) in tokens.enumerated() {
      current[0] = w
      for k in stride(from: 2, through: min(order, i + 1), by: 1) {
        let p = previous[k - 2]
        let key = Self.key(p, w)
        if let id = index[k - 1][key] {
          current[k - 1] = id
        } else {
          let id = Int32(prefix[k - 1].count)
          index[k - 1][key] = id
          prefix[k - 1].append(p)
          suffix[k - 1].append(current[k - 2])
          adjusted[k - 1].append(0)
          current[k - 1] = id
        }
      }
      if i + 1 >= order { adjusted[order - 1][Int(current[order - 1])] += 1 }
      // The k-gram that starts the stream ends at token k − 1; below order N it counts once more.
      if i + 1 < order { adjusted[i][Int(current[i])] += 1 }
      swap(&previous, &current)
    }
    // 2. Continuation counts below order N: one per distinct n-gram one order up that ends in it.
    for k in stride(from: order - 1, through: 1, by: -1) {
      for s in suffix[k] { adjusted[k - 1][Int(s)] += 1 }
    }

    // 3. Discounts from the counts of counts of each order.
    var discounts: [[Double]] = []
    var fallbacks: [String?] = []
    for k in 0..<order {
      var n = [0.0, 0, 0, 0, 0]
      for a in adjusted[k] where a >= 1 && a <= 4 { n[Int(a)] += 1 }
      if let missing = (1...4).first(where: { n[$0] == 0 }) {
        discounts.append(Self.fallbackDiscounts)
        fallbacks.append("no \(k + 1)-gram has a count of exactly \(missing)")
        continue
      }
      let y = n[1] / (n[1] + 2 * n[2])
      let d = [1 - 2 * y * n[2] / n[1], 2 - 3 * y * n[3] / n[2], 3 - 4 * y * n[4] / n[3]]
      if let i = d.indices.first(where: { !(d[$0] >= 0 && d[$0] <= Double($0 + 1)) }) {
        discounts.append(Self.fallbackDiscounts)
        fallbacks.append("D\(i + 1) of order \(k + 1) would be \(d[i]), outside 0…\(i + 1)")
        continue
      }
      discounts.append(d)
      fallbacks.append(nil)
    }
    self.discounts = discounts
    self.discountFallbacks = fallbacks
    func discount(_ k: Int, _ a: Double) -> Double { a <= 0 ? 0 : discounts[k][min(Int(a), 3) - 1] }

    // 4. Probabilities, order by order: the lower order's are needed first.
    var levels = [Level](repeating: Level(), count: order)
    // Unigrams: the empty context holds every word.
    let total = adjusted[0].reduce(0, +)
    var mass = 0.0
    for a in adjusted[0] { mass += discount(0, a) }
    let gamma0 = mass / total
    levels[0].logProbability = adjusted[0].map { a in log(max(a - discount(0, a), 0) / total + gamma0 / Double(v)) }
    levels[0].logBackoff = [Double](repeating: 0, count: v)
    for k in 1..<order {
      let contexts = adjusted[k - 1].count
      var sum = [Double](repeating: 0, count: contexts)
      var held = [Double](repeating: 0, count: contexts)  // Σ of the discounts taken
      for (id, a) in adjusted[k].enumerated() {
        let p = Int(prefix[k][id])
        sum[p] += a
        held[p] += discount(k, a)
      }
      var logProbability = [Double](repeating: 0, count: adjusted[k].count)
      for (id, a) in adjusted[k].enumerated() {
        let p = Int(prefix[k][id])
        let lower = exp(levels[k - 1].logProbability[Int(suffix[k][id])])
        logProbability[id] = log((a - discount(k, a)) / sum[p] + held[p] / sum[p] * lower)
      }
      levels[k].logProbability = logProbability
      levels[k].index = index[k]
      levels[k].logBackoff = [Double](repeating: 0, count: adjusted[k].count)
      levels[k - 1].logBackoff = (0..<contexts).map { sum[$0] > 0 ? log(held[$0] / sum[$0]) : 0 }
    }
    self.levels = levels
  }

  /// A model of the given parts (read from ARPA).
  init(order: Int, vocabulary: Vocabulary, levels: [Level]) {
    self.order = order
    self.vocabulary = vocabulary
    self.discounts = []
    self.discountFallbacks = []
    self.levels = levels
  }

  /// The id at order `words.count` of the n-gram `words`, or nil when it was never seen.
  func id(of words: ArraySlice<Int32>) -> Int32? { Self.id(of: words, in: levels) }

  /// ``id(of:)`` in the given levels.
  static func id(of words: ArraySlice<Int32>, in levels: [Level]) -> Int32? {
    guard var id = words.first, words.count <= levels.count else { return nil }
    for (k, w) in words.dropFirst().enumerated() {
      guard let next = levels[k + 1].index[key(id, w)] else { return nil }
      id = next
    }
    return id
  }

  /// ln p(`word` | the last N − 1 words of `context`), by back-off from the longest n-gram seen.
  public func logProbability(of word: Int32, after context: ArraySlice<Int32>) -> Double {
    var backoff = 0.0
    for j in stride(from: min(order - 1, context.count), through: 1, by: -1) {
      let words = context.suffix(j)
      guard let h = id(of: words) else { continue }  // an unseen context weighs 1
      if let e = levels[j].index[Self.key(h, word)] { return backoff + levels[j].logProbability[Int(e)] }
      backoff += levels[j - 1].logBackoff[Int(h)]
    }
    return backoff + levels[0].logProbability[Int(word)]
  }

  /// Perplexity of a token stream as the recurrent models measure it: exp of the mean −ln p of
  /// every token after the first, each given the tokens before it (up to N − 1).
  public func perplexity(of tokens: [Int32]) -> (perplexity: Double, meanLoss: Double, tokens: Int) {
    guard tokens.count >= 2 else { return (.nan, .nan, 0) }
    var loss = 0.0
    for i in 1..<tokens.count {
      loss -= logProbability(of: tokens[i], after: tokens[max(0, i - order + 1)..<i])
    }
    let mean = loss / Double(tokens.count - 1)
    return (exp(mean), mean, tokens.count - 1)
  }
}
