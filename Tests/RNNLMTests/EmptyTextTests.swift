import Foundation
import Testing

@testable import RNNLM

/// Real files as they come: a text with no word (SST-2 has two training phrases, "(" and ")") is
/// skipped and counted with the first one's place, or refused on request; malformed lines stay
/// errors.
@Suite struct EmptyTextTests {
  static func write(_ files: [String: String]) throws -> String {
    let dir = try DataTests.temporaryDirectory()
    for (name, text) in files { try text.write(toFile: dir + "/" + name, atomically: true, encoding: .utf8) }
    return dir
  }

  @Test func textsWithNoWordsAreSkippedOrRefused() throws {
    let dir = try Self.write([
      "train.tsv": "pos\tgood film\nneg\t( \nneg\tdull film\npos\t) ...\n",
      "test.tsv": "pos\tgood\nneg\t--\n",
    ])
    let data = try LabelledTexts.load(directory: dir)
    #expect(data.train.map(\.words) == [["good", "film"], ["dull", "film"]])
    #expect(data.test.count == 1)
    #expect(data.skippedTexts == 3 && data.firstSkipped == dir + "/train.tsv:2")
    #expect(throws: DataError.malformed("\(dir)/train.tsv:2: the text has no words")) {
      try LabelledTexts.load(directory: dir, emptyTexts: .refuse)
    }
    // A line without a tab is still an error, whatever the policy.
    let bad = try Self.write(["train.tsv": "pos\tgood\nneg bad\n", "test.tsv": "pos\tgood\n"])
    #expect(throws: DataError.self) { try LabelledTexts.load(directory: bad) }
  }

  @Test func classFolderTextsWithNoWordsAreSkipped() throws {
    let dir = try DataTests.temporaryDirectory()
    for (split, cls, name, text) in [
      ("train", "neg", "1.txt", "dull"), ("train", "neg", "2.txt", "?!"), ("train", "pos", "1.txt", "good"),
      ("test", "neg", "1.txt", "bad"), ("test", "pos", "1.txt", "fine"),
    ] {
      try FileManager.default.createDirectory(atPath: "\(dir)/\(split)/\(cls)", withIntermediateDirectories: true)
      try text.write(toFile: "\(dir)/\(split)/\(cls)/\(name)", atomically: true, encoding: .utf8)
    }
    let data = try LabelledTexts.load(directory: dir)
    #expect(data.train.count == 2 && data.skippedTexts == 1 && data.firstSkipped == "\(dir)/train/neg/2.txt")
    #expect(throws: DataError.empty(path: "\(dir)/train/neg/2.txt")) {
      try LabelledTexts.load(directory: dir, emptyTexts: .refuse)
    }
  }

  @Test func pairsWhoseSourceHasNoTokensAreSkippedOrRefused() throws {
    let dir = try Self.write([
      "train.tsv": "a b\tx\n   \ty\nc d\tz\ne\tw\n", "valid.tsv": "a\tx\n", "test.tsv": "b\ty\n",
    ])
    let data = try SequencePairs.load(directory: dir)
    var o = Seq2SeqTrainingOptions()
    o.tokens = .words
    let (source, target) = Seq2SeqTrainer.vocabularies(for: data, tokens: .words)
    let config = Seq2SeqConfig(
      sourceVocabularySize: source.count, targetVocabularySize: target.count, embeddingSize: 4, hiddenSize: 4,
      layers: 1, cell: .lstm, attention: .dot, reverseSource: false, peeky: false, dropout: 0)
    let trainer = try Seq2SeqTrainer(config: config, options: o, sourceVocabulary: source, targetVocabulary: target)
    let splits = try trainer.splits(of: data)
    #expect(splits.train.count == 3 && splits.skippedPairs == 1 && splits.firstSkipped == dir + "/train.tsv:2")
    #expect(throws: DataError.malformed("\(dir)/train.tsv:2: the source has no words")) {
      try trainer.splits(of: data, emptySources: .refuse)
    }
  }
}
