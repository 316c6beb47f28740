import Foundation
import Testing

@testable import RNNLM

/// The many-to-one text classifier: gradients in Double, padding, early stopping, exact resume,
/// data loading and its errors, and learning the generated corpus.
@Suite struct ClassifierTests {
  /// The encoders checked: each cell with each pooling, two layers, and the bag of words; with
  /// 2 classes (sigmoid) and 3 (softmax).
  static let shapes:
    [(cell: RecurrentCell, layers: Int, pooling: ClassifierPooling, classes: Int, bidirectional: Bool)] = [
      (.lstm, 1, .last, 2, false), (.lstm, 2, .mean, 3, false), (.gru, 1, .last, 3, false), (.gru, 2, .mean, 2, false),
      (.rnn, 1, .last, 2, false), (.rnn, 1, .mean, 3, false), (.lstm, 0, .mean, 3, false), (.lstm, 0, .last, 2, false),
      (.lstm, 2, .last, 2, true), (.gru, 1, .mean, 3, true), (.rnn, 1, .last, 3, true), (.lstm, 1, .max, 2, false),
      (.gru, 2, .max, 3, true),
    ]

  /// Texts of random ids and lengths 1...maxLength, labels in 0..<classes.
  static func texts(_ count: Int, vocabulary v: Int, maxLength: Int, classes: Int, _ g: inout SeededGenerator)
    -> [EncodedText]
  {
    (0..<count).map { _ in
      let length = 1 + Int(g.next() % UInt64(maxLength))
      return EncodedText(
        ids: (0..<length).map { _ in Int32(2 + g.next() % UInt64(v - 2)) }, label: Int32(g.next() % UInt64(classes)))
    }
  }

  static func model(
    _ shape: (cell: RecurrentCell, layers: Int, pooling: ClassifierPooling, classes: Int, bidirectional: Bool),
    batchSize: Int, maxSteps: Int, dropout: Double = 0, embeddingDropout: Double = 0, seed: UInt64 = 5
  ) throws -> TextClassifier<Double> {
    let config = ClassifierConfig(
      vocabularySize: 9, embeddingSize: 3, hiddenSize: 4, layers: shape.layers, cell: shape.cell,
      classes: shape.classes, dropout: dropout, pooling: shape.pooling, bidirectional: shape.bidirectional,
      embeddingDropout: embeddingDropout)
    var g = SeededGenerator(seed: seed)
    let m = try TextClassifier<Double>(config: config, batchSize: batchSize, maxSteps: maxSteps, generator: &g)
    // Larger weights than the initialisation's, so every path carries gradient.
    for i in 0..<m.parameters.count { m.parameters.values.pointer[i] = g.nextNormal() * 0.5 }
    return m
  }

  /// Central differences of the mean loss of a padded batch (texts of different lengths and a
  /// filler row) against every parameter, for every encoder.
  @Test(arguments: 0..<shapes.count)
  func gradientOfEveryParameter(index: Int) throws {
    let shape = Self.shapes[index]
    var g = SeededGenerator(seed: UInt64(40 + index))
    let m = try Self.model(shape, batchSize: 4, maxSteps: 5)
    let texts = Self.texts(3, vocabulary: 9, maxLength: 5, classes: shape.classes, &g)
    var batch = ClassifierBatch(batchSize: 4, maxSteps: 5)
    batch.fill(from: texts, indices: 0..<3)
    m.training = false
    m.parameters.zeroGradients()
    let r = m.pass(batch, gradient: true)
    #expect(r.count == 3, "the filler row is not a text")
    let analytic = m.parameters.gradients.array
    expectGradient(
      "classifier \(shape)", analytic: analytic, at: m.parameters.values.pointer, count: m.parameters.count
    ) { m.pass(batch, gradient: false).lossSum / 3 }
    // The padding token's embedding row gets no gradient: padded steps contribute nothing.
    let d = m.config.embeddingSize
    #expect(analytic[0..<d].allSatisfy { $0 == 0 }, "\(shape): <pad>'s embedding received gradient")
  }

  /// In training with embedding dropout, the gradient (with the same masks) is the central
  /// differences', a dropped word's row gets none, and the kept words' vectors are scaled by
  /// 1 / (1 − p): the LSTM, and the bag of words that reads the embeddings directly.
  @Test(arguments: [0, 6])
  func gradientWithEmbeddingDropout(index: Int) throws {
    let shape = Self.shapes[index]
    var g = SeededGenerator(seed: UInt64(80 + index))
    let m = try Self.model(shape, batchSize: 4, maxSteps: 5, dropout: 0.3, embeddingDropout: 0.4)
    let texts = Self.texts(4, vocabulary: 9, maxLength: 5, classes: shape.classes, &g)
    var batch = ClassifierBatch(batchSize: 4, maxSteps: 5)
    batch.fill(from: texts, indices: 0..<4)
    m.training = true
    let masks = SeededGenerator(seed: 17)
    m.generator = masks
    m.parameters.zeroGradients()
    _ = m.pass(batch, gradient: true)
    let analytic = m.parameters.gradients.array
    let scale = m.embedding.wordScale.array
    try #require(scale.count == m.config.vocabularySize, "the embedding has no dropout")
    expectGradient(
      "classifier \(shape), embedding dropout", analytic: analytic, at: m.parameters.values.pointer,
      count: m.parameters.count
    ) {
      m.generator = masks
      return m.pass(batch, gradient: false).lossSum / 4
    }
    let used = Set(texts.flatMap(\.ids).map(Int.init))
    let dropped = used.filter { scale[$0] == 0 }
    let kept = used.filter { scale[$0] != 0 }
    #expect(!dropped.isEmpty && !kept.isEmpty, "the batch must have dropped and kept words: \(scale)")
    #expect(kept.allSatisfy { abs(scale[$0] - 1 / 0.6) < 1e-12 })
    let d = m.config.embeddingSize
    for word in dropped { #expect(analytic[(word * d)..<(word * d + d)].allSatisfy { $0 == 0 }, "word \(word)") }
    for word in kept { #expect(analytic[(word * d)..<(word * d + d)].contains { $0 != 0 }, "word \(word)") }
  }

  /// A padded batch's gradient is the mean of its texts' gradients taken one at a time without
  /// padding, and each text's probabilities are the same in any batch.
  @Test(arguments: 0..<shapes.count)
  func paddingChangesNothing(index: Int) throws {
    let shape = Self.shapes[index]
    var g = SeededGenerator(seed: UInt64(60 + index))
    let texts = Self.texts(5, vocabulary: 9, maxLength: 7, classes: shape.classes, &g)
    let batched = try Self.model(shape, batchSize: 6, maxSteps: 7)
    var batch = ClassifierBatch(batchSize: 6, maxSteps: 7)
    batch.fill(from: texts, indices: 0..<5)
    batched.training = false
    batched.parameters.zeroGradients()
    _ = batched.pass(batch, gradient: true)
    let together = batched.parameters.gradients.array
    let probabilities = Array(batched.probabilities.array[0..<(5 * shape.classes)])

    let single = try Self.model(shape, batchSize: 1, maxSteps: 7)
    single.training = false
    var sum = [Double](repeating: 0, count: single.parameters.count)
    var alone: [Double] = []
    for i in 0..<5 {
      var b = ClassifierBatch(batchSize: 1, maxSteps: 7)
      b.fill(from: texts, indices: i..<(i + 1))
      #expect(b.steps == texts[i].ids.count, "a text alone is not padded")
      single.parameters.zeroGradients()
      _ = single.pass(b, gradient: true)
      for (j, v) in single.parameters.gradients.array.enumerated() { sum[j] += v / 5 }
      alone += single.probabilities.array
    }
    expectClose(together, sum, tolerance: 1e-12, "\(shape): padded batch gradient vs texts alone")
    expectClose(probabilities, alone, tolerance: 1e-12, "\(shape): probabilities in a batch vs alone")
  }

  /// The bucketed epoch order covers every text once, in batches of similar lengths, and
  /// depends on the seed and the epoch only.
  @Test func epochOrderIsAPermutationBucketedByLength() {
    var g = SeededGenerator(seed: 3)
    let texts = Self.texts(1000, vocabulary: 9, maxLength: 60, classes: 2, &g)
    let batches = ClassifierTrainer.epochBatches(texts: texts, batchSize: 10, seed: 1, epoch: 1)
    #expect(batches.flatMap { $0 }.sorted() == Array(0..<1000))
    let padding = batches.reduce(0) { total, b in
      let longest = b.map { texts[$0].ids.count }.max()!
      return total + b.reduce(0) { $0 + longest - texts[$1].ids.count }
    }
    let real = texts.reduce(0) { $0 + $1.ids.count }
    #expect(Double(padding) < 0.1 * Double(real), "bucketing leaves \(padding) padded steps for \(real) real ones")
    #expect(
      batches.map(Array.init)
        == ClassifierTrainer.epochBatches(texts: texts, batchSize: 10, seed: 1, epoch: 1)
        .map(Array.init))
    #expect(
      batches.map(Array.init)
        != ClassifierTrainer.epochBatches(texts: texts, batchSize: 10, seed: 1, epoch: 2)
        .map(Array.init))
  }

  static func corpus(train: Int, test: Int, seed: UInt64 = 1) throws -> LabelledTexts {
    let dir = FileManager.default.temporaryDirectory.appendingPathComponent("cls-\(UUID().uuidString)").path
    defer { try? FileManager.default.removeItem(atPath: dir) }
    try SentimentCorpus.write(to: dir, trainCount: train, testCount: test, seed: seed)
    return try LabelledTexts.load(directory: dir)
  }

  static func trainer(
    _ data: LabelledTexts, layers: Int = 1, cell: RecurrentCell = .lstm, epochs: Int, patience: Int = 3,
    learningRate: Double = 0.003, seed: UInt64 = 1
  ) throws -> ClassifierTrainer {
    var o = ClassifierTrainingOptions()
    (o.epochs, o.patience, o.learningRate, o.batchSize, o.seed, o.validationSplit) = (
      epochs, patience, learningRate, 16, seed, 0.2
    )
    let p = ClassifierTrainer.prepare(
      data: data, options: o, embeddingSize: 16, hiddenSize: 24, layers: layers, cell: cell, dropout: 0.1,
      pooling: .last)
    return try ClassifierTrainer(config: p.config, options: o, vocabulary: p.vocabulary, classes: data.classes)
  }

  /// Every cell learns the generated corpus, where word order decides, well above the bag of
  /// words, which sees the same words in either order.
  @Test func recurrentEncodersBeatTheBagOfWords() throws {
    let data = try Self.corpus(train: 1500, test: 400)
    var accuracy: [String: Double] = [:]
    for (name, layers, cell, epochs) in [
      ("LSTM", 1, RecurrentCell.lstm, 6), ("GRU", 1, .gru, 6), ("bag of words", 0, .lstm, 6),
    ] {
      let t = try Self.trainer(data, layers: layers, cell: cell, epochs: epochs, patience: 0, learningRate: 0.01)
      let report = try t.run(try t.splits(of: data))
      accuracy[name] = report.testAccuracy
    }
    print("classifier test accuracy: \(accuracy)")
    #expect(accuracy["LSTM"]! > 0.9, "LSTM: \(accuracy)")
    #expect(accuracy["GRU"]! > 0.9, "GRU: \(accuracy)")
    #expect(accuracy["bag of words"]! < 0.75, "bag of words: \(accuracy)")
  }

  /// Early stopping ends the run after `patience` epochs without a better validation loss, and
  /// the parameters at the end are those of the best epoch (Keras' restore_best_weights).
  @Test func earlyStoppingRestoresTheBestEpoch() throws {
    let data = try Self.corpus(train: 300, test: 100)
    // A learning rate this high makes validation loss go up and down.
    let t = try Self.trainer(data, epochs: 30, patience: 2, learningRate: 0.05)
    let splits = try t.splits(of: data)
    let report = try t.run(splits)
    let losses = report.epochs.map(\.validLoss)
    let best = losses.indices.min { losses[$0] < losses[$1] }!
    #expect(report.bestEpoch == best + 1)
    #expect(report.epochs.count < 30, "the run never stopped early: \(losses)")
    #expect(report.epochs.count == best + 1 + 2, "stopped after \(report.epochs.count) epochs; best \(best + 1)")
    #expect(report.stoppedEarly?.hasPrefix("early stopping") == true)
    #expect(abs(t.evaluate(splits.valid).loss - losses[best]) < 1e-9, "the parameters are not the best epoch's")
  }

  /// A run stopped inside an epoch and resumed from its last.safetensors (Adam's moments, the
  /// generator and the position) ends with the same parameters as the uninterrupted run.
  @Test(arguments: [OptimizerKind.adam, .rmsprop])
  func resumeIsExact(optimizer: OptimizerKind) throws {
    let data = try Self.corpus(train: 200, test: 50)
    func make() throws -> ClassifierTrainer {
      var o = ClassifierTrainingOptions()
      (o.epochs, o.batchSize, o.optimizer, o.patience) = (3, 16, optimizer, 0)
      let p = ClassifierTrainer.prepare(
        data: data, options: o, embeddingSize: 8, hiddenSize: 8, layers: 1, cell: .gru, dropout: 0.3, pooling: .last)
      return try ClassifierTrainer(config: p.config, options: o, vocabulary: p.vocabulary, classes: data.classes)
    }
    let whole = try make()
    _ = try whole.run(try whole.splits(of: data))

    let dir = FileManager.default.temporaryDirectory.appendingPathComponent("cls-resume-\(UUID().uuidString)").path
    defer { try? FileManager.default.removeItem(atPath: dir) }
    let first = try make()
    _ = try first.run(try first.splits(of: data), limits: RunLimits(maxBatches: 13, saveDirectory: dir))
    // 180 training texts in batches of 16: 12 per epoch, so the 13th is the second epoch's first.
    #expect(first.state.epochsCompleted == 1 && first.state.batchesInEpoch == 1)
    let last = try ClassifierCheckpoint.read(from: (dir as NSString).appendingPathComponent("last.safetensors"))
    #expect(last.optimizerState.count == optimizer.stateNames.count)
    let second = try ClassifierTrainer(resuming: last)
    _ = try second.run(try second.splits(of: data), limits: RunLimits(saveDirectory: dir))
    func losses(_ t: ClassifierTrainer) -> [[Double]] {
      t.state.history.map { [$0.trainLoss, $0.trainAccuracy, $0.validLoss, $0.validAccuracy] }
    }
    #expect(losses(second) == losses(whole))
    #expect(second.model.parameters.values.array == whole.model.parameters.values.array, "resumed parameters differ")
  }

  /// The tokenisation rule.
  @Test func wordsAreLowercasedRunsOfLettersDigitsAndApostrophes() {
    #expect(
      LabelledTexts.words(in: "It isn't GOOD!<br /><br />'Cause 2 stars...  Rock-solid?")
        == ["it", "isn't", "good", "cause", "2", "stars", "rock", "solid"])
    #expect(LabelledTexts.words(in: " ... !! ").isEmpty)
  }

  /// The vocabulary: <pad>, <unk>, then by frequency (ties alphabetical); cutting keeps the end
  /// or the start.
  @Test func vocabularyAndTruncation() throws {
    let texts = [
      LabelledText(words: ["b", "a", "c", "a"], label: 0), LabelledText(words: ["c", "d", "a"], label: 1),
    ]
    let v = ClassifierVocabulary(counting: texts, limit: 2)
    #expect(v.words == ["<pad>", "<unk>", "a", "c"])
    #expect(v.ids(of: ["a", "b", "c", "a", "x"], maxLength: 3, truncation: .keepEnd) == [3, 2, 1])
    #expect(v.ids(of: ["a", "b", "c", "a", "x"], maxLength: 3, truncation: .keepStart) == [2, 1, 3])
  }

  /// Both layouts load the same texts; each bad input is one error naming the file (and line).
  @Test func layoutsAndTheirErrors() throws {
    let root = FileManager.default.temporaryDirectory.appendingPathComponent("cls-data-\(UUID().uuidString)").path
    defer { try? FileManager.default.removeItem(atPath: root) }
    func write(_ path: String, _ text: String) throws {
      let full = (root as NSString).appendingPathComponent(path)
      try FileManager.default.createDirectory(
        atPath: (full as NSString).deletingLastPathComponent, withIntermediateDirectories: true)
      try text.write(toFile: full, atomically: true, encoding: .utf8)
    }
    try write("folders/train/pos/1.txt", "Great film!")
    try write("folders/train/neg/1.txt", "Dull.")
    try write("folders/train/neg/2.txt", "Not good")
    try write("folders/test/pos/1.txt", "good")
    let folders = try LabelledTexts.load(directory: root + "/folders")
    #expect(folders.classes == ["neg", "pos"] && folders.layout == "class folders")
    #expect(folders.train.map(\.words) == [["dull"], ["not", "good"], ["great", "film"]])
    #expect(folders.train.map(\.label) == [0, 0, 1] && folders.test.map(\.label) == [1])

    try write("tsv/train.tsv", "pos\tGreat film!\n\nneg\tDull.\n")
    try write("tsv/test.tsv", "neg\tbad\n")
    let tsv = try LabelledTexts.load(directory: root + "/tsv")
    #expect(tsv.classes == ["neg", "pos"] && tsv.train.map(\.label) == [1, 0] && tsv.valid == nil)

    func expectError(_ directory: String, _ fragment: String, sourceLocation: SourceLocation = #_sourceLocation) {
      do {
        _ = try LabelledTexts.load(directory: root + "/" + directory)
        Issue.record("\(directory) loaded; expected an error with \(fragment)", sourceLocation: sourceLocation)
      } catch {
        #expect("\(error)".contains(fragment), "\(error)", sourceLocation: sourceLocation)
      }
    }
    try write("notab/train.tsv", "pos\tgood\nneg bad\n")
    try write("notab/test.tsv", "pos\tgood\n")
    expectError("notab", "train.tsv:2: no tab")
    // A text with no words is skipped (see EmptyTextTests); here it leaves one class only.
    try write("emptytext/train.tsv", "pos\tgood\nneg\t ... \n")
    try write("emptytext/test.tsv", "pos\tgood\n")
    expectError("emptytext", "train.tsv has 1 label (pos); a classifier needs at least 2")
    try write("unknownlabel/train.tsv", "pos\tgood\nneg\tbad\n")
    try write("unknownlabel/test.tsv", "pos\tgood\nmeh\tso so\n")
    expectError("unknownlabel", "test.tsv:2: label \"meh\" is not one of the training labels")
    try write("oneclass/train.tsv", "pos\tgood\npos\tfine\n")
    try write("oneclass/test.tsv", "pos\tgood\n")
    expectError("oneclass", "a classifier needs at least 2")
    try write("notest/train.tsv", "pos\tgood\nneg\tbad\n")
    expectError("notest", "test split not found")
    try write("emptyclass/train/pos/1.txt", "good")
    try FileManager.default.createDirectory(atPath: root + "/emptyclass/train/neg", withIntermediateDirectories: true)
    try write("emptyclass/test/pos/1.txt", "good")
    expectError("emptyclass", "class \"neg\" has no training texts")
    try write("strayclass/train/pos/1.txt", "good")
    try write("strayclass/train/neg/1.txt", "bad")
    try write("strayclass/test/meh/1.txt", "so so")
    expectError("strayclass", "class \"meh\" is not one of the training classes")
    let bytes = Data([0x70, 0x6F, 0x73, 0x09, 0xFF, 0xFE, 0x0A])
    try FileManager.default.createDirectory(atPath: root + "/binary", withIntermediateDirectories: true)
    try bytes.write(to: URL(fileURLWithPath: root + "/binary/train.tsv"))
    try write("binary/test.tsv", "pos\tgood\n")
    expectError("binary", "train.tsv is not UTF-8 text")
    expectError("missing", "no such file or directory")
    try FileManager.default.createDirectory(atPath: root + "/nothing", withIntermediateDirectories: true)
    expectError("nothing", "labelled texts not found")
  }

  /// The texts as a language-model corpus, one text a line; with `dropSpans`, a training text
  /// that is a shorter run of another's words is left out, and the validation and test texts are
  /// all kept.
  @Test func aCorpusOfTheTextsWithAndWithoutSpans() throws {
    let root = FileManager.default.temporaryDirectory.appendingPathComponent("cls-corpus-\(UUID().uuidString)").path
    defer { try? FileManager.default.removeItem(atPath: root) }
    try FileManager.default.createDirectory(atPath: root + "/sst", withIntermediateDirectories: true)
    let train = [
      "pos\tA good film.", "pos\tgood film", "neg\tfilm", "pos\tA good film", "neg\tgoo", "neg\tThe end, the end.",
      "neg\tend the", "neg\tthe end the end", "pos\t\"Good\"",
    ]
    try (train.joined(separator: "\n") + "\n").write(toFile: root + "/sst/train.tsv", atomically: true, encoding: .utf8)
    try "pos\tgood film\n".write(toFile: root + "/sst/valid.tsv", atomically: true, encoding: .utf8)
    try "neg\tfilm\n".write(toFile: root + "/sst/test.tsv", atomically: true, encoding: .utf8)
    let data = try LabelledTexts.load(directory: root + "/sst")
    func lines(_ directory: String, _ file: String) throws -> [String] {
      try String(contentsOfFile: "\(root)/\(directory)/\(file)", encoding: .utf8).split(separator: "\n").map(
        String.init)
    }

    let all = try data.writeCorpus(to: root + "/all")
    #expect(all == (train: 9, valid: 1, test: 1, spans: 0))
    #expect(
      try lines("all", "train.txt") == [
        "a good film", "good film", "film", "a good film", "goo", "the end the end", "end the", "the end the end",
        "good",
      ])

    let sentences = try data.writeCorpus(to: root + "/sentences", dropSpans: true)
    #expect(sentences == (train: 5, valid: 1, test: 1, spans: 4))
    // "goo" is no run of words of "good"; equal texts stay; "end the" is a run inside "the end the end".
    #expect(
      try lines("sentences", "train.txt") == [
        "a good film", "a good film", "goo", "the end the end", "the end the end",
      ])
    #expect(try lines("sentences", "valid.txt") == ["good film"] && lines("sentences", "test.txt") == ["film"])
  }

  /// On random texts of few words (many spans, many texts of each length), `withoutSpans` leaves
  /// out exactly the texts that some longer text holds as a run of words, compared pair by pair.
  @Test func spansAreFoundAsPairByPairComparisonFindsThem() {
    var g = SeededGenerator(seed: 11)
    let words = ["a", "b", "c"]
    var texts: [[String]] = (0..<150).map { _ in (0..<(1 + Int(g.next() % 9))).map { _ in words[Int(g.next() % 3)] } }
    for i in 0..<50 {  // spans of the texts above, so that every length has some
      let t = texts[i]
      let start = Int(g.next() % UInt64(t.count))
      texts.append(Array(t[start..<(start + 1 + Int(g.next() % UInt64(t.count - start)))]))
    }
    func isRun(_ s: [String], of t: [String]) -> Bool {
      s.count < t.count && (0...(t.count - s.count)).contains { Array(t[$0..<($0 + s.count)]) == s }
    }
    let expected = texts.filter { s in !texts.contains { isRun(s, of: $0) } }
    let kept = LabelledTexts.withoutSpans(texts.map { LabelledText(words: $0, label: 0) }).map(\.words)
    #expect(kept == expected)
    #expect(expected.count > 10 && expected.count < texts.count - 50)
  }

  /// A classifier's checkpoint round-trips; a language model's reader refuses it and the other
  /// way round, naming what the file is; a damaged one is refused.
  @Test func checkpointsKnowTheirKind() throws {
    let data = try Self.corpus(train: 100, test: 20)
    let t = try Self.trainer(data, epochs: 1)
    let dir = FileManager.default.temporaryDirectory.appendingPathComponent("cls-ckpt-\(UUID().uuidString)").path
    defer { try? FileManager.default.removeItem(atPath: dir) }
    _ = try t.run(try t.splits(of: data), limits: RunLimits(saveDirectory: dir))
    let path = (dir as NSString).appendingPathComponent("last.safetensors")
    let c = try ClassifierCheckpoint.read(from: path)
    #expect(c.parameters == t.model.parameters.values.array && c.classes == ["neg", "pos"])
    #expect(c.optimizerState.map(\.count) == [c.parameters.count, c.parameters.count])
    #expect(throws: CheckpointError.self) { try Checkpoint.read(from: path) }
    do { _ = try Checkpoint.read(from: path) } catch { #expect("\(error)".contains("text classifier's checkpoint")) }

    let lmPath = (dir as NSString).appendingPathComponent("lm.safetensors")
    let config = ModelConfig(vocabularySize: 5, embeddingSize: 2, hiddenSize: 2)
    try Checkpoint(
      config: config, training: TrainingOptions(),
      state: RunState(learningRate: 1, generator: SeededGenerator(seed: 1)),
      vocabulary: ["a", "b", "c", "d", "e"], parameters: [Float](repeating: 0, count: config.parameterCount),
      recurrentStates: []
    ).write(to: lmPath)
    do {
      _ = try ClassifierCheckpoint.read(from: lmPath)
      Issue.record("a language model's checkpoint was read as a classifier's")
    } catch { #expect("\(error)".contains("language model's checkpoint")) }

    var bytes = [UInt8](try Data(contentsOf: URL(fileURLWithPath: path)))
    bytes.removeLast(4)
    try Data(bytes).write(to: URL(fileURLWithPath: path))
    #expect(throws: CheckpointError.self) { try ClassifierCheckpoint.read(from: path) }
    let predictor = try TrainedClassifier(contentsOf: (dir as NSString).appendingPathComponent("best.safetensors"))
    let p = predictor.probabilities(of: ["the plot was good", "!!!"])
    #expect(p[0].map { abs($0.reduce(0, +) - 1) < 1e-5 } == true && p[1] == nil)
  }

  /// Damaged classifier checkpoints (the language-model fuzz test's damage: bit flips,
  /// truncations, header edits) end in a CheckpointError or in a file that loads, predicts and
  /// resumes (or refuses to resume with an error) without trapping.
  @Test(.timeLimit(.minutes(2))) func damagedCheckpointsAreRefusedOrUsable() throws {
    let data = try Self.corpus(train: 100, test: 20)
    let t = try Self.trainer(data, cell: .gru, epochs: 1)
    let dir = FileManager.default.temporaryDirectory.appendingPathComponent("cls-fuzz-\(UUID().uuidString)").path
    defer { try? FileManager.default.removeItem(atPath: dir) }
    _ = try t.run(try t.splits(of: data), limits: RunLimits(saveDirectory: dir))
    let original = [UInt8](try Data(contentsOf: URL(fileURLWithPath: dir + "/last.safetensors")))
    try expectDamagedCheckpointsRefusedOrUsable(original, cases: 150, seed: 77, directory: dir, what: "classifier") {
      path, accepted in
      let c = try ClassifierCheckpoint.read(from: path)
      _ = try ClassifierCheckpoint.Summary(contentsOf: path)
      accepted()
      let predictor = try TrainedClassifier(contentsOf: path, batchSize: 4)
      _ = predictor.probabilities(of: ["the plot was good", "the film is not bad"])
      _ = try? ClassifierTrainer(resuming: c)
    }
  }
}
