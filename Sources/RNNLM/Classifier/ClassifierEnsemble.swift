/// Several trained classifiers of the same classes that predict together: each text's class
/// probabilities are the mean of the members' (an ensemble of, say, the same configuration
/// trained from different seeds).
public final class ClassifierEnsemble {
  /// The members, in the order given.
  public let members: [TrainedClassifier]
  /// The classes, in the first member's order.
  public let classes: [String]

  /// An ensemble of `members` (at least one); their classes must be the same names. A member
  /// whose classes are in another order is read in the first member's order.
  public init(members: [TrainedClassifier]) throws {
    guard let first = members.first else { throw ConfigurationError("an ensemble needs at least one classifier") }
    for (i, m) in members.enumerated()
    where Set(m.classes) != Set(first.classes) || m.classes.count != first.classes.count {
      throw ConfigurationError(
        "classifier \(i + 1) has the classes \(m.classes.joined(separator: ", ")), the first has \(first.classes.joined(separator: ", ")): an ensemble's members must share their classes"
      )
    }
    self.members = members
    classes = first.classes
    // Where each member's class k sits in the first member's order.
    order = members.map { m in m.classes.map { first.classes.firstIndex(of: $0)! } }
  }

  /// order[m][k]: member m's class k in ``classes``' order.
  private let order: [[Int]]

  /// The classifiers saved at `paths`, as an ensemble.
  public convenience init(contentsOf paths: [String]) throws {
    try self.init(members: paths.map { try TrainedClassifier(contentsOf: $0) })
  }

  /// Each text's class probabilities (in ``classes``' order): the mean over the members; nil for
  /// a text with no words.
  public func probabilities(ofWords texts: [[String]]) -> [[Float]?] {
    probabilities(perMember: members.map { $0.probabilities(ofWords: texts) })
  }

  /// ``probabilities(ofWords:)`` for raw texts (tokenised by ``LabelledTexts/words(in:)``).
  public func probabilities(of texts: [String]) -> [[Float]?] {
    probabilities(ofWords: texts.map(LabelledTexts.words(in:)))
  }

  /// The mean of the members' probabilities, `each[m][text]` in member m's class order.
  private func probabilities(perMember each: [[[Float]?]]) -> [[Float]?] {
    let count = each.first?.count ?? 0
    return (0..<count).map { t in
      var sum = [Double](repeating: 0, count: classes.count)
      for (m, member) in each.enumerated() {
        guard let p = member[t] else { return nil }
        for (k, value) in p.enumerated() { sum[order[m][k]] += Double(value) }
      }
      return sum.map { Float($0 / Double(each.count)) }
    }
  }

  /// The share of `texts` whose most probable class is their label, for the ensemble and for each
  /// member alone; `names` are the labels' class names (``LabelledTexts/classes``). Texts with
  /// no word count as wrong.
  public func accuracy(on texts: [LabelledText], names: [String]) throws -> (ensemble: Double, members: [Double]) {
    for name in Set(texts.map { names[$0.label] }) where !classes.contains(name) {
      throw ConfigurationError(
        "the texts have the class '\(name)', which the classifier does not know (its classes: \(classes.joined(separator: ", ")))"
      )
    }
    guard !texts.isEmpty else { throw ConfigurationError("no texts to measure the accuracy on") }
    let words = texts.map(\.words)
    let each = members.map { $0.probabilities(ofWords: words) }
    func share(_ p: [[Float]?], classes: [String]) -> Double {
      var right = 0
      for (text, probabilities) in zip(texts, p) {
        guard let probabilities else { continue }
        let best = probabilities.indices.max { probabilities[$0] < probabilities[$1] }!
        if classes[best] == names[text.label] { right += 1 }
      }
      return Double(right) / Double(texts.count)
    }
    return (
      share(probabilities(perMember: each), classes: classes),
      zip(members, each).map { share($1, classes: $0.classes) }
    )
  }
}
