import Foundation

/// The project's own labelled corpus for sentiment classification, generated from a small
/// grammar with a fixed seed (no data set is downloaded or copied).
///
/// Each review is made of clauses like "the plot was not very clever"; negators ("not",
/// "hardly", "never", "far from") flip an adjective's polarity, and in the reviews of two clauses
/// word order decides the label: after "but" and in the main clause after "although" the second
/// clause counts, before ", even if" the first does. A bag of words sees the same words in both
/// orders and cannot tell "good, but boring" from "boring, but good", nor "not good" from "not
/// bad" by the words alone; a recurrent encoder can. About a third of the reviews have one
/// clause. Neutral sentences ("we went with friends .") vary the lengths.
public enum SentimentCorpus {
  static let subjects = [
    "the film", "this movie", "the plot", "the acting", "the story", "the script", "the cast", "the ending",
    "the soundtrack", "the direction", "the dialogue", "the pacing", "the photography", "the lead",
  ]
  static let positive = [
    "good", "great", "brilliant", "moving", "funny", "clever", "charming", "superb", "gripping", "delightful",
  ]
  static let negative = [
    "bad", "dull", "boring", "awful", "weak", "tedious", "clumsy", "bland", "dreadful", "forgettable",
  ]
  static let verbs = ["is", "was", "felt", "seemed"]
  static let intensifiers = ["", "", "very", "really", "truly", "quite", "rather"]
  static let negators = ["not", "hardly", "never", "far from"]
  static let openings = [
    "", "", "", "i saw it on friday .", "we went with friends .", "honestly ,", "to be fair ,",
    "my sister picked this one .", "it was a long evening .",
  ]
  static let closings = [
    "", "", "", "overall .", "that is my view .", "would i watch it again ?", "make of that what you will .",
  ]

  /// `count` reviews, half positive, drawn with `seed`: (label "pos" or "neg", text).
  public static func generate(count: Int, seed: UInt64) -> [(label: String, text: String)] {
    var g = SeededGenerator(seed: seed)
    func pick<C: Collection>(_ c: C) -> C.Element where C.Index == Int {
      c[c.startIndex + Int(g.next() % UInt64(c.count))]
    }
    func clause(_ good: Bool) -> String {
      let negate = g.nextUniform() < 0.4
      let adjective = pick((good != negate) ? positive : negative)
      let words = [pick(subjects), pick(verbs), negate ? pick(negators) : "", pick(intensifiers), adjective]
      return words.filter { !$0.isEmpty }.joined(separator: " ")
    }
    var reviews: [(label: String, text: String)] = []
    for i in 0..<count {
      let good = i % 2 == 0
      let form = g.nextUniform()
      let body: String
      if form < 0.3 {
        body = clause(good)
      } else if form < 0.6 {
        body = "\(clause(!good)) , but \(clause(good))"
      } else if form < 0.75 {
        body = "although \(clause(!good)) , \(clause(good))"
      } else if form < 0.9 {
        body = "\(clause(good)) and \(clause(good))"
      } else {
        body = "\(clause(good)) , even if \(clause(!good))"
      }
      let text = [pick(openings), body + " .", pick(closings)].filter { !$0.isEmpty }.joined(separator: " ")
      reviews.append((good ? "pos" : "neg", text))
    }
    // Shuffle so the labels do not alternate (Fisher–Yates with the same generator).
    for i in stride(from: reviews.count - 1, to: 0, by: -1) { reviews.swapAt(i, Int(g.next() % UInt64(i + 1))) }
    return reviews
  }

  /// Writes `train.tsv` and `test.tsv` (`label<TAB>text` lines) into `directory`, created when
  /// missing: `trainCount` and `testCount` reviews drawn with `seed` (the test reviews from a
  /// stream of their own, so the splits share no draws).
  public static func write(to directory: String, trainCount: Int, testCount: Int, seed: UInt64) throws {
    do {
      try FileManager.default.createDirectory(atPath: directory, withIntermediateDirectories: true)
    } catch {
      throw FileError(path: directory, reason: fileFailure(directory, error: error, expectDirectory: true))
    }
    for (name, count, s) in [("train.tsv", trainCount, seed), ("test.tsv", testCount, seed &+ 0x9E37_79B9)] {
      let path = (directory as NSString).appendingPathComponent(name)
      let text = generate(count: count, seed: s).map { "\($0.label)\t\($0.text)\n" }.joined()
      try writeTextFile(text, to: path)
    }
  }
}
