import Foundation
import Testing

@testable import RNNLM

/// Several classifiers predicting together: the mean of their probabilities, their accuracy and
/// what they refuse.
@Suite struct ClassifierEnsembleTests {
  /// Two classifiers of the generated corpus, trained from different seeds and saved: their
  /// checkpoints' paths, and the corpus.
  static func twoClassifiers(in dir: String) throws -> (paths: [String], data: LabelledTexts) {
    let data = try ClassifierTests.corpus(train: 120, test: 30)
    var paths: [String] = []
    for seed: UInt64 in [1, 2] {
      let t = try ClassifierTests.trainer(data, cell: .gru, epochs: 1, seed: seed)
      let save = (dir as NSString).appendingPathComponent("seed-\(seed)")
      _ = try t.run(try t.splits(of: data), limits: RunLimits(saveDirectory: save))
      paths.append((save as NSString).appendingPathComponent("best.safetensors"))
    }
    return (paths, data)
  }

  /// Each text's ensemble probabilities are the mean of the members' (computed here from each
  /// member alone), and the accuracies are the share of texts each one's most probable class gets
  /// right.
  @Test func meanOfTheMembers() throws {
    let dir = FileManager.default.temporaryDirectory.appendingPathComponent("ensemble-\(UUID().uuidString)").path
    defer { try? FileManager.default.removeItem(atPath: dir) }
    let (paths, data) = try Self.twoClassifiers(in: dir)
    let ensemble = try ClassifierEnsemble(contentsOf: paths)
    let alone = try paths.map { try TrainedClassifier(contentsOf: $0) }
    let words = data.test.map(\.words)
    let each = alone.map { $0.probabilities(ofWords: words) }
    let together = ensemble.probabilities(ofWords: words)
    #expect(each[0].map { $0! } != each[1].map { $0! }, "two seeds gave the same classifier")
    for t in words.indices {
      let (a, b, m) = (each[0][t]!, each[1][t]!, together[t]!)
      for k in 0..<2 { #expect(abs(m[k] - (a[k] + b[k]) / 2) < 1e-6, "text \(t) class \(k)") }
    }
    func share(_ p: [[Float]?]) -> Double {
      let right = zip(data.test, p).filter { text, p in
        let best = p![1] > p![0] ? 1 : 0
        return data.classes[best] == data.classes[text.label]
      }.count
      return Double(right) / Double(data.test.count)
    }
    let accuracy = try ensemble.accuracy(on: data.test, names: data.classes)
    #expect(abs(accuracy.ensemble - share(together)) < 1e-12)
    #expect(abs(accuracy.members[0] - share(each[0])) < 1e-12 && abs(accuracy.members[1] - share(each[1])) < 1e-12)
    // A text with no words has no probabilities, and counts as wrong.
    #expect(ensemble.probabilities(of: ["!!!", "the plot was good"]).map { $0 == nil } == [true, false])
  }

  /// No members, or labels the classifiers do not know, are refused with a message.
  @Test func refusals() throws {
    #expect(throws: ConfigurationError.self) { try ClassifierEnsemble(members: []) }
    let dir = FileManager.default.temporaryDirectory.appendingPathComponent("ensemble-\(UUID().uuidString)").path
    defer { try? FileManager.default.removeItem(atPath: dir) }
    let (paths, data) = try Self.twoClassifiers(in: dir)
    let ensemble = try ClassifierEnsemble(contentsOf: paths)
    do {
      _ = try ensemble.accuracy(on: data.test, names: ["bad", "good"])
      Issue.record("labels the classifiers do not know were accepted")
    } catch { #expect("\(error)".contains("which the classifier does not know")) }
  }
}
