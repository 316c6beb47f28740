import Foundation
import Testing

@testable import RNNLM

/// Attention and the encoder–decoder: gradients in Double, masking, decoding, learning.
@Suite struct Seq2SeqTests {
  /// TimeAttention's gradients with respect to the decoder states, the encoder states and W_a,
  /// with sources of different lengths in one batch; the padded source steps get no weight and
  /// no gradient.
  @Test(arguments: [AttentionScore.dot, .general])
  func attentionGradients(score: AttentionScore) throws {
    var g = SeededGenerator(seed: 21)
    let (n, tt, ts, h) = (3, 4, 5, 3)
    let lengths = [5, 2, 3]
    var wa = randomArray(h * h, scale: 0.5, &g)
    var dWa = [Double](repeating: 0, count: h * h)
    let query = UnsafeMutablePointer<Double>.allocate(capacity: tt * n * h)
    let source = UnsafeMutablePointer<Double>.allocate(capacity: ts * n * h)
    defer {
      query.deallocate()
      source.deallocate()
    }
    query.initialize(from: randomArray(tt * n * h, &g), count: tt * n * h)
    source.initialize(from: randomArray(ts * n * h, &g), count: ts * n * h)
    let w = randomArray(tt * n * h, &g)
    try wa.withUnsafeMutableBufferPointer { wp in
      try dWa.withUnsafeMutableBufferPointer { dwp in
        let attention = try TimeAttention<Double>(
          hiddenSize: h, batchSize: n, maxSourceSteps: ts, maxTargetSteps: tt,
          weight: score == .general ? UnsafePointer(wp.baseAddress!) : nil,
          dWeight: score == .general ? dwp.baseAddress! : nil)
        func loss() -> Double {
          attention.forward(query: query, targetSteps: tt, source: source, sourceSteps: ts, sourceLengths: lengths)
          return (0..<w.count).reduce(0.0) { $0 + w[$1] * attention.context.pointer[$1] }
        }
        _ = loss()
        // Each sequence's weights sum to 1 over its real steps and are 0 after them.
        for r in 0..<n {
          for t in 0..<tt {
            let row = Array(UnsafeBufferPointer(start: attention.weights.pointer + (r * tt + t) * ts, count: ts))
            #expect(abs(row[0..<lengths[r]].reduce(0, +) - 1) < 1e-12)
            #expect(row[lengths[r]...].allSatisfy { $0 == 0 })
          }
        }
        attention.backward(dContext: w)
        let dQuery = Array(attention.dQuery.array[0..<(tt * n * h)])
        let dSource = Array(attention.dSource.array[0..<(ts * n * h)])
        expectGradient("\(score) attention: decoder states", analytic: dQuery, at: query, count: tt * n * h, loss: loss)
        expectGradient(
          "\(score) attention: encoder states", analytic: dSource, at: source, count: ts * n * h, loss: loss)
        for r in 0..<n {
          for s in lengths[r]..<ts {
            #expect(
              dSource[((s * n) + r) * h..<((s * n) + r + 1) * h].allSatisfy { $0 == 0 }, "padded step \(s) of \(r)")
          }
        }
        if score == .general {
          expectGradient(
            "general attention: W_a", analytic: Array(dwp), at: wp.baseAddress!, count: wp.count, loss: loss)
        }
      }
    }
  }

  /// The encoder–decoder shapes checked: every cell, every attention score, reversed and peeky.
  static let shapes: [Seq2SeqConfig] = [
    Seq2SeqConfig(
      sourceVocabularySize: 9, targetVocabularySize: 8, embeddingSize: 3, hiddenSize: 4, layers: 2, cell: .lstm,
      attention: .dot, reverseSource: true, peeky: true),
    Seq2SeqConfig(
      sourceVocabularySize: 9, targetVocabularySize: 8, embeddingSize: 3, hiddenSize: 4, layers: 1, cell: .gru,
      attention: .general),
    Seq2SeqConfig(
      sourceVocabularySize: 9, targetVocabularySize: 8, embeddingSize: 3, hiddenSize: 4, layers: 2, cell: .rnn,
      attention: .none, peeky: true),
    Seq2SeqConfig(
      sourceVocabularySize: 9, targetVocabularySize: 8, embeddingSize: 3, hiddenSize: 4, layers: 1, cell: .lstm,
      attention: .none),
  ]

  static func pairs(_ count: Int, _ g: inout SeededGenerator) -> [EncodedPair] {
    (0..<count).map { _ in
      EncodedPair(
        source: (0..<(1 + Int(g.next() % 5))).map { _ in Int32(4 + g.next() % 5) },
        target: (0..<Int(g.next() % 4)).map { _ in Int32(4 + g.next() % 4) })
    }
  }

  static func model(_ config: Seq2SeqConfig, batchSize: Int) throws -> Seq2SeqModel<Double> {
    var g = SeededGenerator(seed: 8)
    let m = try Seq2SeqModel<Double>(
      config: config, batchSize: batchSize, maxSourceSteps: 5, maxTargetSteps: 4, generator: &g)
    for i in 0..<m.parameters.count { m.parameters.values.pointer[i] = g.nextNormal() * 0.3 }
    return m
  }

  /// Central differences of the mean loss of a padded batch (sources and targets of different
  /// lengths, a filler row) against every parameter of the encoder–decoder.
  @Test(arguments: 0..<shapes.count)
  func gradientOfEveryParameter(index: Int) throws {
    let config = Self.shapes[index]
    var g = SeededGenerator(seed: UInt64(90 + index))
    let m = try Self.model(config, batchSize: 4)
    m.training = false
    let pairs = Self.pairs(3, &g)
    var batch = Seq2SeqBatch(batchSize: 4, maxSourceSteps: 5, maxTargetSteps: 4)
    batch.fill(from: pairs, indices: 0..<3, reverse: config.reverseSource)
    m.parameters.zeroGradients()
    let r = m.pass(batch, gradient: true)
    #expect(r.examples == 3 && r.count == pairs.reduce(0) { $0 + $1.target.count + 1 })
    // Bound 1e-5: the worst entries are ~1e-4 of the largest, where the central difference's own
    // rounding (≈ 4e-11 absolute through this many operations) is ~1e-6 of their size; a wrong
    // gradient is off by far more.
    expectGradient(
      "seq2seq \(config.description)", analytic: m.parameters.gradients.array, at: m.parameters.values.pointer,
      count: m.parameters.count, bound: 1e-5
    ) { m.pass(batch, gradient: false).lossSum / Double(r.count) }
    for view in m.parameters.views where !view.name.contains("bias") {
      #expect(
        m.parameters.gradients.array[view.offset..<(view.offset + view.count)].contains { $0 != 0 },
        "\(view.name) has no gradient")
    }
  }

  /// Padding changes nothing: a batch's summed gradient is the sum of its pairs' gradients taken
  /// one at a time without padding, weighted by their share of the target tokens, and each pair's
  /// loss is the same.
  @Test(arguments: 0..<shapes.count)
  func paddingChangesNothing(index: Int) throws {
    let config = Self.shapes[index]
    var g = SeededGenerator(seed: UInt64(70 + index))
    let pairs = Self.pairs(5, &g)
    let together = try Self.model(config, batchSize: 6)
    together.training = false
    var batch = Seq2SeqBatch(batchSize: 6, maxSourceSteps: 5, maxTargetSteps: 4)
    batch.fill(from: pairs, indices: 0..<5, reverse: config.reverseSource)
    together.parameters.zeroGradients()
    let all = together.pass(batch, gradient: true)
    let alone = try Self.model(config, batchSize: 1)
    alone.training = false
    var sum = [Double](repeating: 0, count: alone.parameters.count)
    var lossSum = 0.0
    for i in 0..<5 {
      var b = Seq2SeqBatch(batchSize: 1, maxSourceSteps: 5, maxTargetSteps: 4)
      b.fill(from: pairs, indices: i..<(i + 1), reverse: config.reverseSource)
      alone.parameters.zeroGradients()
      let r = alone.pass(b, gradient: true)
      lossSum += r.lossSum
      for (j, v) in alone.parameters.gradients.array.enumerated() { sum[j] += v * Double(r.count) / Double(all.count) }
    }
    #expect(abs(lossSum - all.lossSum) < 1e-10, "summed loss \(all.lossSum) vs pairs alone \(lossSum)")
    expectClose(together.parameters.gradients.array, sum, tolerance: 1e-12, "\(config.description): padded vs alone")
  }

  /// Beam search of width 1 is greedy decoding, for every sequence of a batch; a wider beam's
  /// output is never less probable than greedy's.
  @Test(arguments: 0..<shapes.count)
  func beamOfOneIsGreedyAndWiderIsNoWorse(index: Int) throws {
    let config = Self.shapes[index]
    var g = SeededGenerator(seed: UInt64(50 + index))
    let pairs = Self.pairs(6, &g)
    let batched = try Self.model(config, batchSize: 6)
    var batch = Seq2SeqBatch(batchSize: 6, maxSourceSteps: 5, maxTargetSteps: 4)
    batch.fill(from: pairs, indices: 0..<6, reverse: config.reverseSource)
    let greedy = batched.greedyDecode(batch, maxLength: 6)
    let one = try Seq2SeqModel<Double>(
      config: config, parameters: batched.parameters, batchSize: 1, maxSourceSteps: 5, maxTargetSteps: 1)
    let three = try Seq2SeqModel<Double>(
      config: config, parameters: batched.parameters, batchSize: 3, maxSourceSteps: 5, maxTargetSteps: 1)
    for (i, pair) in pairs.enumerated() {
      let beam1 = one.beamSearch(source: pair.source, maxLength: 6)
      #expect(beam1.tokens == greedy[i].tokens, "pair \(i): beam 1 \(beam1.tokens), greedy \(greedy[i].tokens)")
      #expect(abs(beam1.logProbability - greedy[i].logProbability) < 1e-9)
      let beam3 = three.beamSearch(source: pair.source, maxLength: 6)
      #expect(beam3.logProbability >= greedy[i].logProbability - 1e-12, "pair \(i)")
    }
  }

  /// End to end in a debug build: an LSTM with attention learns 2-digit addition.
  @Test func learnsTwoDigitAddition() throws {
    let dir = FileManager.default.temporaryDirectory.appendingPathComponent("s2s-\(UUID().uuidString)").path
    defer { try? FileManager.default.removeItem(atPath: dir) }
    try Seq2SeqTasks.write(
      Seq2SeqTasks.addition(count: 4000, seed: 3, digits: 2), to: dir, validCount: 200, testCount: 300)
    let data = try SequencePairs.load(directory: dir)
    var o = Seq2SeqTrainingOptions()
    (o.epochs, o.batchSize, o.learningRate, o.patience) = (16, 32, 0.01, 0)
    let (source, target) = Seq2SeqTrainer.vocabularies(for: data, tokens: .characters)
    let config = Seq2SeqConfig(
      sourceVocabularySize: source.count, targetVocabularySize: target.count, embeddingSize: 16, hiddenSize: 64,
      attention: .dot, reverseSource: true)
    let t = try Seq2SeqTrainer(config: config, options: o, sourceVocabulary: source, targetVocabulary: target)
    let report = try t.run(try t.splits(of: data))
    print(
      "2-digit addition: test exact match \(report.testAccuracy) after \(report.epochs.count) epochs, \(report.seconds) s"
    )
    #expect(report.testAccuracy > 0.9, "\(report.epochs.map(\.validAccuracy))")
  }

  /// A run stopped inside an epoch and resumed from its last.safetensors ends with the same
  /// parameters and history as the uninterrupted run.
  @Test func resumeIsExact() throws {
    let dir = FileManager.default.temporaryDirectory.appendingPathComponent("s2s-resume-\(UUID().uuidString)").path
    defer { try? FileManager.default.removeItem(atPath: dir) }
    try Seq2SeqTasks.write(
      Seq2SeqTasks.addition(count: 400, seed: 4, digits: 2), to: dir + "/data", validCount: 40, testCount: 40)
    let data = try SequencePairs.load(directory: dir + "/data")
    func make() throws -> Seq2SeqTrainer {
      var o = Seq2SeqTrainingOptions()
      (o.epochs, o.batchSize, o.patience) = (2, 32, 0)
      let (source, target) = Seq2SeqTrainer.vocabularies(for: data, tokens: .characters)
      let config = Seq2SeqConfig(
        sourceVocabularySize: source.count, targetVocabularySize: target.count, embeddingSize: 8, hiddenSize: 8,
        cell: .lstm, attention: .general, peeky: true, dropout: 0.2)
      return try Seq2SeqTrainer(config: config, options: o, sourceVocabulary: source, targetVocabulary: target)
    }
    let whole = try make()
    _ = try whole.run(try whole.splits(of: data))
    let first = try make()
    // 320 training pairs in batches of 32: 10 per epoch, so 13 stop in the second epoch.
    _ = try first.run(try first.splits(of: data), limits: RunLimits(maxBatches: 13, saveDirectory: dir + "/run"))
    #expect(first.state.epochsCompleted == 1 && first.state.batchesInEpoch == 3)
    let second = try Seq2SeqTrainer(resuming: try Seq2SeqCheckpoint.read(from: dir + "/run/last.safetensors"))
    _ = try second.run(try second.splits(of: data), limits: RunLimits(saveDirectory: dir + "/run"))
    #expect(second.model.parameters.values.array == whole.model.parameters.values.array, "resumed parameters differ")
    #expect(second.state.history.map(\.validLoss) == whole.state.history.map(\.validLoss))
    // The best checkpoint translates; a classifier's reader refuses it by name.
    let trained = try TrainedSeq2Seq(contentsOf: dir + "/run/best.safetensors")
    _ = try trained.decode("12+34", beam: 2)
    do {
      _ = try ClassifierCheckpoint.read(from: dir + "/run/best.safetensors")
      Issue.record("a seq2seq checkpoint was read as a classifier's")
    } catch { #expect("\(error)".contains("is a sequence-to-sequence model's checkpoint, not a text classifier's")) }
  }

  /// Bad pair files: one error naming the file and line.
  @Test func badPairsAreNamed() throws {
    let root = FileManager.default.temporaryDirectory.appendingPathComponent("s2s-bad-\(UUID().uuidString)").path
    defer { try? FileManager.default.removeItem(atPath: root) }
    func write(_ path: String, _ text: String) throws {
      let full = root + "/" + path
      try FileManager.default.createDirectory(
        atPath: (full as NSString).deletingLastPathComponent, withIntermediateDirectories: true)
      try text.write(toFile: full, atomically: true, encoding: .utf8)
    }
    func expectError(_ dir: String, _ fragment: String, sourceLocation: SourceLocation = #_sourceLocation) {
      do {
        _ = try SequencePairs.load(directory: root + "/" + dir)
        Issue.record("\(dir) loaded", sourceLocation: sourceLocation)
      } catch { #expect("\(error)".contains(fragment), "\(error)", sourceLocation: sourceLocation) }
    }
    try write("notab/train.tsv", "1+1\t2\n2+2 4\n")
    try write("notab/test.tsv", "1+2\t3\n")
    expectError("notab", "train.tsv:2: no tab between the source and the target")
    try write("nosource/train.tsv", "1+1\t2\n\t4\n")
    try write("nosource/test.tsv", "1+2\t3\n")
    expectError("nosource", "train.tsv:2: the source before the tab is empty")
    try write("notest/train.tsv", "1+1\t2\n")
    expectError("notest", "test.tsv not found")
    try write("good/train.tsv", "1+1\t2\n" + String(repeating: "9", count: 200) + "\t1\n")
    try write("good/test.tsv", "1+2\t3\n")
    let data = try SequencePairs.load(directory: root + "/good")
    #expect(data.train.count == 2 && data.valid == nil)
    var o = Seq2SeqTrainingOptions()
    o.validationSplit = 0.5
    let (source, target) = Seq2SeqTrainer.vocabularies(for: data, tokens: .characters)
    let t = try Seq2SeqTrainer(
      config: Seq2SeqConfig(
        sourceVocabularySize: source.count, targetVocabularySize: target.count, embeddingSize: 4, hiddenSize: 4),
      options: o, sourceVocabulary: source, targetVocabulary: target)
    do {
      _ = try t.splits(of: data)
      Issue.record("a 200-character source was accepted with a maximum of 100")
    } catch { #expect("\(error)".contains("train.tsv:2: 200 source and 1 target tokens")) }
  }

  /// Characters and words as tokens, and back; the vocabulary puts the specials first and reads
  /// unknown tokens as <unk>.
  @Test func tokensAndVocabulary() throws {
    #expect(TokenLevel.characters.tokens("9/27 94") == ["9", "/", "2", "7", " ", "9", "4"])
    #expect(TokenLevel.words.tokens("  le  chat\tnoir ") == ["le", "chat", "noir"])
    #expect(TokenLevel.words.join(["le", "chat"]) == "le chat" && TokenLevel.characters.join(["4", "2"]) == "42")
    let v = Seq2SeqVocabulary(counting: [["b", "a", "b"], ["c"]])
    #expect(v.tokens == Seq2SeqVocabulary.specials + ["b", "a", "c"])
    #expect(v.ids(of: ["a", "zz"]) == [5, Seq2SeqVocabulary.unknownID])
    #expect(v.tokens(of: [Seq2SeqVocabulary.startID, 4, 6, Seq2SeqVocabulary.endID]) == ["b", "c"])
    #expect(throws: DataError.self) { try Seq2SeqVocabulary(tokens: ["a", "b"]) }
  }

  /// The generated tasks: distinct pairs, correct answers, every date format, ISO targets.
  @Test func generatedTasksAreRight() {
    let additions = Seq2SeqTasks.addition(count: 500, seed: 1)
    #expect(Set(additions.map(\.source)).count == 500)
    for (source, target) in additions {
      let parts = source.split(separator: "+").map { Int($0)! }
      #expect(parts.count == 2 && parts.allSatisfy { $0 < 1000 } && Int(target)! == parts[0] + parts[1])
    }
    let dates = Seq2SeqTasks.dates(count: 2000, seed: 1)
    #expect(Set(dates.map(\.source)).count == 2000)
    #expect(
      dates.allSatisfy {
        $0.target.range(of: #"^(19[5-9]\d|20[0-4]\d)-\d\d-\d\d$"#, options: .regularExpression) != nil
      })
    // 1994-09-27 was a Tuesday; each format writes it as its example says.
    let w = ((Seq2SeqTasks.daysSinceEpoch(1994, 9, 27) % 7) + 7 + 3) % 7
    for (example, format) in Seq2SeqTasks.dateFormats {
      #expect(format(1994, 9, 27, w).lowercased() == example.lowercased(), "\(example)")
    }
  }

  /// Damaged sequence-to-sequence checkpoints end in a CheckpointError (or an AllocationError for
  /// a header asking for more memory than there is) or in a file that loads, decodes and resumes
  /// (or refuses to resume with an error) without trapping.
  @Test(.timeLimit(.minutes(2))) func damagedCheckpointsAreRefusedOrUsable() throws {
    let dir = FileManager.default.temporaryDirectory.appendingPathComponent("s2s-fuzz-\(UUID().uuidString)").path
    defer { try? FileManager.default.removeItem(atPath: dir) }
    try Seq2SeqTasks.write(
      Seq2SeqTasks.addition(count: 200, seed: 5, digits: 2), to: dir + "/data", validCount: 20, testCount: 20)
    let data = try SequencePairs.load(directory: dir + "/data")
    var o = Seq2SeqTrainingOptions()
    (o.epochs, o.batchSize) = (1, 32)
    let (source, target) = Seq2SeqTrainer.vocabularies(for: data, tokens: .characters)
    let t = try Seq2SeqTrainer(
      config: Seq2SeqConfig(
        sourceVocabularySize: source.count, targetVocabularySize: target.count, embeddingSize: 4, hiddenSize: 6,
        cell: .lstm, attention: .general, peeky: true),
      options: o, sourceVocabulary: source, targetVocabulary: target)
    _ = try t.run(try t.splits(of: data), limits: RunLimits(saveDirectory: dir + "/run"))
    let original = [UInt8](try Data(contentsOf: URL(fileURLWithPath: dir + "/run/last.safetensors")))
    try expectDamagedCheckpointsRefusedOrUsable(original, cases: 150, seed: 78, directory: dir, what: "seq2seq") {
      path, accepted in
      let c = try Seq2SeqCheckpoint.read(from: path)
      _ = try Seq2SeqCheckpoint.Summary(contentsOf: path)
      accepted()
      _ = try TrainedSeq2Seq(contentsOf: path).decode("12+34", beam: 2, maxLength: 5)
      _ = try? Seq2SeqTrainer(resuming: c)
    }
  }
}
