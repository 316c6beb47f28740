import Foundation
import Testing

@testable import RNNLM

@Suite struct DataTests {
  /// A fresh directory for one test's files.
  static func temporaryDirectory() throws -> String {
    let dir = FileManager.default.temporaryDirectory.appendingPathComponent("rnnlm-\(UUID().uuidString)").path
    try FileManager.default.createDirectory(atPath: dir, withIntermediateDirectories: true)
    return dir
  }

  @Test func newlinesBecomeEndOfSentence() throws {
    var v = Vocabulary()
    let ids = try Corpus.tokenize(" a b \n\n c a\n", path: "t", vocabulary: &v, extend: true)
    #expect(v.words == ["a", "b", "<eos>", "c"])
    // The empty line is an empty sentence; the final newline adds none.
    #expect(ids.map { v.words[Int($0)] } == ["a", "b", "<eos>", "<eos>", "c", "a", "<eos>"])
    // Without a final newline the last line still ends in <eos>.
    var w = Vocabulary()
    #expect(try Corpus.tokenize("x y", path: "t", vocabulary: &w, extend: true).count == 3)
  }

  @Test func vocabularyIsInFirstSeenOrder() throws {
    var v = Vocabulary()
    _ = try Corpus.tokenize("zebra apple zebra mango\napple kiwi\n", path: "t", vocabulary: &v, extend: true)
    #expect(v.words == ["zebra", "apple", "mango", "<eos>", "kiwi"])
    #expect(v.id(of: "mango") == 2)
    #expect(throws: DataError.malformed("vocabulary lists \"a\" twice")) { try Vocabulary(words: ["a", "b", "a"]) }
  }

  @Test func unknownWordIsReportedWithItsLine() throws {
    var v = Vocabulary()
    _ = try Corpus.tokenize("the cat\nthe dog\n", path: "train", vocabulary: &v, extend: true)
    #expect(throws: DataError.unknownWord(word: "bird", path: "valid.txt", line: 3)) {
      try Corpus.tokenize("the cat\n\nthe bird dog\n", path: "valid.txt", vocabulary: &v, extend: false)
    }
    #expect(v.count == 4, "mapping must not grow the vocabulary")
  }

  @Test func emptyAndMissingFilesAreNamed() throws {
    var v = Vocabulary()
    #expect(throws: DataError.empty(path: "e")) {
      try Corpus.tokenize("\n \n", path: "e", vocabulary: &v, extend: true)
    }
    #expect(throws: DataError.unreadable(path: "/no/such/file.txt", reason: "no such file or directory")) {
      try Corpus.load(path: "/no/such/file.txt", vocabulary: &v, extend: true)
    }
    let dir = try Self.temporaryDirectory()
    let binary = (dir as NSString).appendingPathComponent("bin.txt")
    try Data([0xff, 0xfe, 0x00, 0x80]).write(to: URL(fileURLWithPath: binary))
    #expect(throws: DataError.notText(path: binary)) { try Corpus.load(path: binary, vocabulary: &v, extend: true) }
  }

  /// Published FIPS 180-4 test vectors.
  @Test func sha256MatchesPublishedVectors() {
    #expect(SHA256.hexDigest(Array("".utf8)) == "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855")
    #expect(SHA256.hexDigest(Array("abc".utf8)) == "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad")
    #expect(
      SHA256.hexDigest(Array("abcdbcdecdefdefgefghfghighijhijkijkljklmklmnlmnomnopnopq".utf8))
        == "248d6a61d20638b8e5c026930c3e6039a33ce45964ff2167f6ecedd419db06c1")
  }

  /// --data, then $PTB_DIR, then corpora/ptb, then ../shared/corpora/ptb; errors list where it looked.
  @Test func locatesPTBInOrderAndExplainsFailure() throws {
    let root = try Self.temporaryDirectory()
    let work = (root as NSString).appendingPathComponent("work")
    let shared = (root as NSString).appendingPathComponent("shared/corpora/ptb")
    let local = (work as NSString).appendingPathComponent("corpora/ptb")
    for dir in [shared, local] {
      try FileManager.default.createDirectory(atPath: dir, withIntermediateDirectories: true)
    }
    func fill(_ dir: String) throws {
      for name in ["ptb.train.txt", "ptb.valid.txt", "ptb.test.txt"] {
        try "a b\n".write(toFile: (dir as NSString).appendingPathComponent(name), atomically: true, encoding: .utf8)
      }
    }
    #expect(throws: DataError.self) { try PTB.locate(explicit: nil, environment: [:], workingDirectory: work) }
    do {
      _ = try PTB.locate(explicit: nil, environment: [:], workingDirectory: work)
    } catch let error as DataError {
      #expect(error.description.contains("corpora/get-ptb.sh") && error.description.contains(local))
    }
    try fill(shared)
    #expect(try PTB.locate(explicit: nil, environment: [:], workingDirectory: work).hasSuffix("../shared/corpora/ptb"))
    try fill(local)
    #expect(try PTB.locate(explicit: nil, environment: [:], workingDirectory: work) == local)
    #expect(try PTB.locate(explicit: nil, environment: ["PTB_DIR": shared], workingDirectory: work) == shared)
    #expect(try PTB.locate(explicit: local, environment: ["PTB_DIR": shared], workingDirectory: work) == local)
    // An explicit directory without the files is an error, not a silent fallback.
    #expect(throws: DataError.self) { try PTB.locate(explicit: root, environment: [:], workingDirectory: work) }
    #expect(throws: DataError.self) {
      try PTB.locate(explicit: nil, environment: ["PTB_DIR": root], workingDirectory: work)
    }
  }

  /// Files that are not the published PTB are named as damaged before any training.
  @Test func damagedPTBIsRejected() throws {
    let dir = try Self.temporaryDirectory()
    for name in ["ptb.train.txt", "ptb.valid.txt", "ptb.test.txt"] {
      try " a b\n".write(toFile: (dir as NSString).appendingPathComponent(name), atomically: true, encoding: .utf8)
    }
    do {
      _ = try PTB.load(directory: dir)
      Issue.record("a file with the wrong checksum was accepted")
    } catch let error as DataError {
      guard case .checksumMismatch(let path, let expected, _) = error else {
        Issue.record("unexpected error \(error)")
        return
      }
      #expect(path.hasSuffix("ptb.train.txt") && expected == PTB.checksums["ptb.train.txt"])
    }
    // Verification off: the same files load as an ordinary corpus.
    #expect(try PTB.load(directory: dir, verify: false).vocabulary.words == ["a", "b", "<eos>"])
  }

  /// Any corpus in the plain layout (train.txt, valid.txt, test.txt) loads without a checksum;
  /// PTB's names win when both are present; neither is an error naming the directory.
  @Test func plainLayoutAndPreference() throws {
    let dir = try Self.temporaryDirectory()
    for name in ["train.txt", "valid.txt", "test.txt"] {
      try "x y\n".write(toFile: (dir as NSString).appendingPathComponent(name), atomically: true, encoding: .utf8)
    }
    #expect(PTB.files(in: dir)?.isPTB == false)
    #expect(try PTB.load(directory: dir).vocabulary.words == ["x", "y", "<eos>"])
    #expect(try PTB.locate(explicit: dir, environment: [:]) == dir)
    for name in ["ptb.train.txt", "ptb.valid.txt", "ptb.test.txt"] {
      try "z\n".write(toFile: (dir as NSString).appendingPathComponent(name), atomically: true, encoding: .utf8)
    }
    #expect(PTB.files(in: dir)?.isPTB == true)
    #expect(throws: DataError.self) { try PTB.load(directory: dir) }  // PTB's names: checksums apply
    #expect(try PTB.load(directory: dir, verify: false).vocabulary.words == ["z", "<eos>"])
    let empty = try Self.temporaryDirectory()
    #expect(throws: DataError.self) { try PTB.load(directory: empty) }
  }

  /// The book's batches: stream i reads (i·jump + k) mod len, continuing across calls.
  @Test func trainingBatchesFollowTheBook() throws {
    let corpus = (0..<23).map(Int32.init)
    var batches = try TrainingBatches(corpus: corpus, batchSize: 2, steps: 3)
    #expect(batches.batchesPerEpoch == 22 / 6)
    var inputs = [Int32](repeating: -1, count: 6)
    var targets = inputs
    for call in 0..<5 {
      batches.next(inputs: &inputs, targets: &targets)
      for t in 0..<3 {
        for i in 0..<2 {
          let position = (i * 11 + call * 3 + t) % 22
          #expect(inputs[t * 2 + i] == Int32(position) && targets[t * 2 + i] == Int32(position + 1))
        }
      }
    }
    #expect(throws: ConfigurationError.self) { try TrainingBatches(corpus: [1, 2, 3], batchSize: 2, steps: 3) }
  }

  /// The vocabulary in order of training frequency, and `--max-vocab`'s <unk>, counted by hand.
  @Test func frequencyOrderAndMaxVocabulary() throws {
    // Training counts: a 1, b 3, c 2, <eos> 2 (first seen a, b, <eos>, c).
    let data = try Dataset(
      train: ("train", "a b b\nc b c\n"), valid: ("valid", "c a b\n"), test: ("test", "a a\n"))
    #expect(data.vocabulary.words == ["a", "b", "<eos>", "c"])
    let ordered = try data.orderedByFrequency()
    #expect(ordered.vocabulary.words == ["b", "<eos>", "c", "a"])
    #expect(ordered.train == [3, 0, 0, 1, 2, 0, 2, 1] && ordered.valid == [2, 3, 0, 1] && ordered.test == [3, 3, 1])
    #expect(ordered.leftOut == (0, 0, 0))
    // Three words: b, then <unk> (standing for a and c: 3 tokens) ahead of <eos> (2).
    let three = try data.orderedByFrequency(keeping: 3)
    #expect(three.vocabulary.words == ["b", "<unk>", "<eos>"])
    #expect(three.train == [1, 0, 0, 2, 1, 0, 1, 2] && three.valid == [1, 1, 0, 2] && three.test == [1, 1, 2])
    #expect(three.leftOut == (3, 2, 2))
    #expect(try data.matching(vocabulary: three.vocabulary.words)?.train == three.train)
    #expect(try data.matching(vocabulary: ["x", "y"]) == nil)
    #expect(throws: ConfigurationError.self) { try data.orderedByFrequency(keeping: 1) }
  }

  /// The Zipf corpus has exactly V words with <eos>, closed held-out splits, and Zipf's law's
  /// first ratios (rank 1 twice as frequent as rank 2, three times rank 3).
  @Test func zipfCorpus() throws {
    let dir = try Self.temporaryDirectory()
    let written = try ZipfCorpus.write(to: dir, vocabularySize: 3000, tokens: 30_000, seed: 4)
    let data = try Dataset(trainPath: dir + "/train.txt", validPath: dir + "/valid.txt", testPath: dir + "/test.txt")
    #expect(data.vocabulary.count == 3000)
    #expect(data.train.count == written.train && data.valid.count == written.valid && data.test.count == written.test)
    #expect(written.appended > 0 && written.appended < 1000, "\(written.appended)")
    var counts: [String: Int] = [:]
    for id in data.train { counts[data.vocabulary.words[Int(id)], default: 0] += 1 }
    let (c0, c1, c2) = (Double(counts["w0"]!), Double(counts["w1"]!), Double(counts["w2"]!))
    #expect(abs(c0 / c1 - 2) < 0.25 && abs(c0 / c2 - 3) < 0.4, "w0 \(c0), w1 \(c1), w2 \(c2)")
    // About one <eos> per 21 tokens.
    let sentences = Double(counts[Vocabulary.endOfSentence]!)
    #expect(abs(Double(data.train.count) / sentences - 21) < 2)
    #expect(throws: ConfigurationError.self) { try ZipfCorpus.write(to: dir, vocabularySize: 1, tokens: 1000, seed: 1) }
  }
}
