import Foundation
import Testing

@testable import RNNLM

/// Using a trained model: generation, evaluation of any text, and every bad input.
@Suite struct UsageTests {
  /// A small model trained briefly on the grammar corpus plus a line with `<unk>`, so that the
  /// vocabulary has it.
  static let model: TrainedModel = {
    var v = Vocabulary()
    let text = grammarText(sentences: 300, seed: 1) + "cats chase <unk>\n"
    let train = try! Corpus.tokenize(text, path: "train", vocabulary: &v, extend: true)
    var o = TrainingOptions()
    (o.batchSize, o.steps, o.learningRate, o.clip, o.epochs, o.evalBatchSize) = (4, 8, 2, 1, 2, 2)
    let t = try! Trainer(
      config: ModelConfig(vocabularySize: v.count, embeddingSize: 12, hiddenSize: 12), options: o, vocabulary: v.words)
    _ = try! t.run(Dataset(vocabulary: v, train: train, valid: train, test: train))
    return try! TrainedModel(trainer: t)
  }()

  @Test func badGenerationInputsAreRefused() {
    let m = Self.model
    #expect(throws: UsageError.emptyPrompt) { try m.generate(prompt: [], count: 3) }
    #expect(throws: UsageError.onlyUnknownPromptWords(["zebras", "yodel"])) {
      try m.generate(prompt: ["zebras", "yodel"], count: 3)
    }
    #expect(throws: UsageError.onlyUnknownPromptWords(["zebras"])) {
      try m.generate(prompt: ["zebras"], count: 3, mapUnknown: true)
    }
    #expect(throws: UsageError.unknownPromptWords(["yodel"])) { try m.generate(prompt: ["cats", "yodel"], count: 3) }
    #expect(throws: UsageError.temperature(-0.5)) { try m.generate(prompt: nil, count: 3, temperature: -0.5) }
    #expect(throws: UsageError.temperature(.infinity)) { try m.generate(prompt: nil, count: 3, temperature: .infinity) }
    let v = m.config.vocabularySize
    #expect(throws: UsageError.topK(0, vocabularySize: v)) { try m.generate(prompt: nil, count: 3, topK: 0) }
    #expect(throws: UsageError.topK(v + 1, vocabularySize: v)) { try m.generate(prompt: nil, count: 3, topK: v + 1) }
    #expect(throws: UsageError.wordCount(-1)) { try m.generate(prompt: nil, count: -1) }
  }

  @Test func generationFollowsSeedAndTemperature() throws {
    let m = Self.model
    let a = try m.generate(prompt: ["cats"], count: 30, temperature: 1, seed: 5)
    #expect(a.count == 30 && a.allSatisfy { m.vocabulary.id(of: $0) != nil })
    #expect(try m.generate(prompt: ["cats"], count: 30, temperature: 1, seed: 5) == a)
    #expect(try m.generate(prompt: ["cats"], count: 30, temperature: 1, seed: 6) != a)
    // Greedy decoding is argmax: top-k 1 at any temperature gives the same words, and the seed
    // does not matter.
    let greedy = try m.generate(prompt: ["dogs"], count: 12, temperature: 0, seed: 1)
    #expect(try m.generate(prompt: ["dogs"], count: 12, temperature: 0, seed: 99) == greedy)
    #expect(try m.generate(prompt: ["dogs"], count: 12, temperature: 3, topK: 1, seed: 4) == greedy)
    // The trained model knows the grammar: "dogs" is followed by its own verb.
    #expect(greedy.first == "guard", "greedy continuation of 'dogs': \(greedy)")
    var streamed: [String] = []
    let out = try m.generate(prompt: nil, count: 8, seed: 2) { streamed.append($0) }
    #expect(streamed == out)
    // Unknown prompt words read as <unk> when asked.
    #expect(try m.generate(prompt: ["cats", "yodel"], count: 2, mapUnknown: true).count == 2)
  }

  /// Frequencies of sampled ids match softmax(logits / T) within 5 standard deviations; top-k
  /// never samples outside the k largest.
  @Test func samplingDistribution() {
    let logits: [Float] = [Float(Foundation.log(0.5)), Float(Foundation.log(0.3)), Float(Foundation.log(0.2))]
    var scratch = [Double](repeating: 0, count: 3)
    var g = SeededGenerator(seed: 3)
    let draws = 20000
    func frequencies(temperature: Double, topK: Int?) -> [Double] {
      var counts = [0, 0, 0]
      logits.withUnsafeBufferPointer { l in
        for _ in 0..<draws {
          counts[
            Int(TrainedModel.sample(logits: l, temperature: temperature, topK: topK, scratch: &scratch, generator: &g))] +=
            1
        }
      }
      return counts.map { Double($0) / Double(draws) }
    }
    for (temperature, expected) in [(1.0, [0.5, 0.3, 0.2]), (2.0, [0.5, 0.3, 0.2].map { $0.squareRoot() })] {
      let total = expected.reduce(0, +)
      let f = frequencies(temperature: temperature, topK: nil)
      for i in 0..<3 {
        let p = expected[i] / total
        #expect(
          abs(f[i] - p) < 5 * (p * (1 - p) / Double(draws)).squareRoot(), "T=\(temperature) id \(i): \(f[i]) vs \(p)")
      }
    }
    let top2 = frequencies(temperature: 1, topK: 2)
    #expect(top2[2] == 0 && abs(top2[0] - 0.625) < 0.02)
  }

  @Test func evaluationOfAnyText() throws {
    let m = Self.model
    let r = try m.evaluate(text: grammarText(sentences: 50, seed: 9) + "cats chase zebras\n", batchSize: 3, steps: 7)
    #expect(r.outOfVocabulary == 1 && r.tokens == 50 * 4 + 4)
    #expect(r.evaluatedTokens == 3 * ((r.tokens - 1) / 3))
    #expect(abs(Foundation.exp(r.meanLoss) - r.perplexity) < 1e-9 && r.perplexity < 4)
    #expect(throws: DataError.empty(path: "blank.txt")) { try m.evaluate(text: "\n\n", path: "blank.txt") }
    #expect(throws: UsageError.textTooShort(tokens: 4, streams: 10)) { try m.evaluate(text: "cats chase mice\n") }
  }

  /// A vocabulary without <unk>: an unknown word is an error naming the word and its line.
  @Test func evaluationWithoutUnknownToken() throws {
    var v = Vocabulary()
    _ = try Corpus.tokenize("a b\n", path: "t", vocabulary: &v, extend: true)
    let t = try Trainer(
      config: ModelConfig(vocabularySize: 3, embeddingSize: 2, hiddenSize: 2), options: TrainingOptions(),
      vocabulary: v.words)
    let m = try TrainedModel(trainer: t)
    #expect(throws: DataError.unknownWord(word: "c", path: "x.txt", line: 2)) {
      try m.evaluate(text: "a b\nb c\n", path: "x.txt", batchSize: 1)
    }
  }

  @Test func savedModelLoadsAndSummarises() throws {
    let dir = try DataTests.temporaryDirectory()
    let path = dir + "/model.safetensors"
    try Self.model.save(to: path)
    let loaded = try TrainedModel(contentsOf: path)
    #expect(loaded.vocabulary == Self.model.vocabulary)
    #expect(loaded.parameters.values.array == Self.model.parameters.values.array)
    let s = try CheckpointSummary(contentsOf: path)
    #expect(s.config == Self.model.config && s.vocabularySize == Self.model.vocabulary.count)
    #expect(s.tensors.map(\.name).contains("rnn.weight_hh_l0"))
    #expect(throws: CheckpointError.io(path: dir + "/missing", reason: "no such file or directory")) {
      try TrainedModel(contentsOf: dir + "/missing")
    }
    #expect(throws: CheckpointError.io(path: dir + "/missing", reason: "no such file or directory")) {
      try CheckpointSummary(contentsOf: dir + "/missing")
    }
    // A truncated file: the summary (header only) and the full read both name it.
    let bytes = try Data(contentsOf: URL(fileURLWithPath: path))
    try bytes.prefix(30).write(to: URL(fileURLWithPath: dir + "/cut.safetensors"))
    #expect(throws: CheckpointError.truncated(path: dir + "/cut.safetensors")) {
      try CheckpointSummary(contentsOf: dir + "/cut.safetensors")
    }
    #expect(throws: CheckpointError.truncated(path: dir + "/cut.safetensors")) {
      try TrainedModel(contentsOf: dir + "/cut.safetensors")
    }
  }
}
