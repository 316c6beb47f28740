import Foundation
import Testing

@testable import RNNLM

/// Data-parallel training's shares, computed in one process: for each task, the processes'
/// shares of a batch (simulated ranks, one after another) must add up to what one process
/// computes for the whole batch — the gradient (their mean), the loss and counts (their sum),
/// the dropout masks (each rank's rows of the whole batch's mask, the generator left where one
/// process leaves it) — and the same for evaluation. mpirun runs the real thing in CI.
@Suite struct DataParallelTests {
  /// The largest difference between `a` and `b`, relative to the largest magnitude of `a`.
  static func relativeDifference(_ a: [Float], _ b: [Float]) -> Double {
    let scale = max(a.map { Double(abs($0)) }.max() ?? 0, 1e-12)
    return zip(a, b).map { Double(abs($0 - $1)) }.max()! / scale
  }

  /// The mean of the ranks' gradients.
  static func mean(_ gradients: [[Float]]) -> [Float] {
    (0..<gradients[0].count).map { i in gradients.map { $0[i] }.reduce(0, +) / Float(gradients.count) }
  }

  @Test(arguments: [false, true])
  func dropoutShardsKeepTheirRowsOfTheWholeBatchsMask(locked: Bool) throws {
    let (n, width, steps) = (4, 3, 2)
    let input = [Float](repeating: 1, count: n * steps * width)
    let whole = try TimeDropout<Float>(rate: 0.5, width: width, maxRows: n * steps, lockedRows: locked ? n : nil)
    var g = SeededGenerator(seed: 9)
    let full = Array(
      UnsafeBufferPointer(start: whole.forward(input: input, rows: n * steps, generator: &g), count: input.count))
    for rank in 0..<2 {
      let shard = ProcessGroup.simulated(rank: rank, of: 2).share(of: n)
      let part = try TimeDropout<Float>(
        rate: 0.5, width: width, maxRows: shard.count * steps, lockedRows: locked ? shard.count : nil)
      part.setShard(shard)
      var h = SeededGenerator(seed: 9)
      let out = part.forward(input: input, rows: shard.count * steps, generator: &h)
      for t in 0..<steps {
        for r in 0..<shard.count {
          for j in 0..<width {
            #expect(out[(t * shard.count + r) * width + j] == full[(t * n + shard.first + r) * width + j])
          }
        }
      }
      #expect(h.state == g.state, "a share draws what the whole batch draws")
    }
    #expect(full.contains(0) && full.contains(2), "the mask drops some and keeps some")
  }

  /// Plain dropout; and AWD-LSTM's regularisers, whose masks and windows come from the generator.
  static let languageModels: [(ModelConfig, Bool)] = [
    (ModelConfig(vocabularySize: 13, embeddingSize: 6, hiddenSize: 6, layers: 2, tied: true, dropout: 0.3), false),
    (
      ModelConfig(
        vocabularySize: 13, embeddingSize: 6, hiddenSize: 6, layers: 2, cell: .gru, tied: true, dropout: 0.3,
        lockedDropout: true, embeddingDropout: 0.1, weightDrop: 0.2), true
    ),
  ]

  @Test(arguments: 0..<languageModels.count)
  func languageModelSharesAddUpToTheBatch(_ index: Int) throws {
    let (config, awd) = Self.languageModels[index]
    let data = try RunTests.dataset()
    var options = RunTests.options()
    options.evalBatchSize = 4
    if awd {
      (options.variableLength, options.activationRegularization, options.temporalActivationRegularization) = (
        true, 1, 1
      )
    }
    func trainer(_ group: ProcessGroup) throws -> Trainer {
      let t = try Trainer(config: config, options: options, vocabulary: data.vocabulary.words, group: group)
      try t.begin(data)
      return t
    }
    let single = try trainer(.single)
    let ranks = try (0..<2).map { try trainer(.simulated(rank: $0, of: 2)) }
    // Two batches: the second starts from the state the first carried.
    var stepsDone = 0
    for batch in 0..<2 {
      single.parameters.zeroGradients()
      let whole = single.trainingBatch(batch, stepsDone: stepsDone)
      var shares: [BatchResult] = []
      var gradients: [[Float]] = []
      for t in ranks {
        t.parameters.zeroGradients()
        let (r, steps) = t.trainingBatch(batch, stepsDone: stepsDone)
        #expect(steps == whole.steps)
        shares.append(r)
        gradients.append(t.parameters.gradients.array)
      }
      stepsDone += whole.steps
      #expect(Self.relativeDifference(single.parameters.gradients.array, Self.mean(gradients)) < 1e-5)
      #expect(abs(shares.map(\.lossSum).reduce(0, +) - whole.result.lossSum) < 1e-6 * abs(whole.result.lossSum))
      #expect(shares.map(\.count).reduce(0, +) == whole.result.count)
      #expect(shares.map(\.examples).reduce(0, +) == whole.result.examples)
      for t in ranks { #expect(t.model.generator.state == single.model.generator.state) }
    }
    // Evaluation: the ranks' loss sums and tokens add up to one process's.
    let whole = evaluationLoss(of: single.evaluator, on: data.valid, steps: options.steps, streams: .whole(4))
    let parts = ranks.map { t in
      evaluationLoss(of: t.evaluator, on: data.valid, steps: options.steps, streams: t.group.share(of: 4))
    }
    #expect(parts.map(\.tokens).reduce(0, +) == whole.tokens)
    #expect(abs(parts.map(\.lossSum).reduce(0, +) - whole.lossSum) < 1e-6 * whole.lossSum)
  }

  @Test func languageModelBatchMustDivide() throws {
    let data = try RunTests.dataset()
    var options = RunTests.options()
    options.batchSize = 5
    #expect(throws: ConfigurationError.self) {
      try Trainer(
        config: RunTests.config, options: options, vocabulary: data.vocabulary.words,
        group: .simulated(rank: 0, of: 2))
    }
  }

  /// 18 training texts in batches of 4: the epoch's last batch holds 2, all of them rank 0's.
  @Test func classifierSharesAddUpToTheBatch() throws {
    var g = SeededGenerator(seed: 4)
    let texts = ClassifierTests.texts(30, vocabulary: 9, maxLength: 6, classes: 2, &g)
    let splits = ClassifierSplits(
      classes: ["neg", "pos"], train: Array(texts[0..<18]), valid: Array(texts[18..<24]), test: Array(texts[24...]),
      validationSource: "test")
    let config = ClassifierConfig(
      vocabularySize: 9, embeddingSize: 3, hiddenSize: 4, layers: 1, cell: .lstm, classes: 2, dropout: 0.4,
      pooling: .last, bidirectional: true)
    var options = ClassifierTrainingOptions()
    (options.batchSize, options.maxLength) = (4, 6)
    let vocabulary = try ClassifierVocabulary(words: ["<pad>", "<unk>"] + (2..<9).map { "w\($0)" })
    func trainer(_ group: ProcessGroup) throws -> ClassifierTrainer {
      let t = try ClassifierTrainer(
        config: config, options: options, vocabulary: vocabulary, classes: ["neg", "pos"], group: group)
      t.splits = splits
      t.beginEpoch(1)
      return t
    }
    let single = try trainer(.single)
    let ranks = try (0..<2).map { try trainer(.simulated(rank: $0, of: 2)) }
    for batch in 0..<single.batchesPerEpoch {
      single.parameters.zeroGradients()
      let whole = single.trainingBatch(batch, stepsDone: batch).result
      var shares: [BatchResult] = []
      var gradients: [[Float]] = []
      for t in ranks {
        t.parameters.zeroGradients()
        shares.append(t.trainingBatch(batch, stepsDone: batch).result)
        gradients.append(t.parameters.gradients.array)
      }
      #expect(Self.relativeDifference(single.parameters.gradients.array, Self.mean(gradients)) < 1e-5, "batch \(batch)")
      #expect(abs(shares.map(\.lossSum).reduce(0, +) - whole.lossSum) < 1e-5)
      #expect(shares.map(\.count).reduce(0, +) == whole.count)
      #expect(shares.map(\.correct).reduce(0, +) == whole.correct)
      for t in ranks { #expect(t.model.generator.state == single.model.generator.state) }
    }
    let batches = ClassifierTrainer.epochBatches(texts: splits.train, batchSize: 4, seed: options.seed, epoch: 1)
    #expect(batches.contains { ranks[1].share(of: $0).isEmpty }, "a batch of 2 is rank 0's alone")
    let whole = single.evaluate(splits.valid)
    let parts = ranks.map { $0.evaluate(splits.valid) }
    #expect(abs(parts.map(\.loss).reduce(0, +) - whole.loss) < 1e-6)
    #expect(abs(parts.map(\.accuracy).reduce(0, +) - whole.accuracy) < 1e-9)
  }

  @Test func seq2seqSharesAddUpToTheBatch() throws {
    var g = SeededGenerator(seed: 6)
    let pairs = Seq2SeqTests.pairs(30, &g)
    let splits = Seq2SeqSplits(
      train: Array(pairs[0..<18]), valid: Array(pairs[18..<24]), test: Array(pairs[24...]), validationSource: "test")
    let config = Seq2SeqConfig(
      sourceVocabularySize: 9, targetVocabularySize: 8, embeddingSize: 3, hiddenSize: 4, layers: 1, cell: .lstm,
      attention: .dot, reverseSource: true, peeky: true, dropout: 0.4)
    var options = Seq2SeqTrainingOptions()
    (options.batchSize, options.maxSourceLength, options.maxTargetLength) = (4, 5, 4)
    let source = try Seq2SeqVocabulary(tokens: Seq2SeqVocabulary.specials + (4..<9).map { "s\($0)" })
    let target = try Seq2SeqVocabulary(tokens: Seq2SeqVocabulary.specials + (4..<8).map { "t\($0)" })
    func trainer(_ group: ProcessGroup) throws -> Seq2SeqTrainer {
      let t = try Seq2SeqTrainer(
        config: config, options: options, sourceVocabulary: source, targetVocabulary: target, group: group)
      t.splits = splits
      t.beginEpoch(1)
      return t
    }
    let single = try trainer(.single)
    let ranks = try (0..<2).map { try trainer(.simulated(rank: $0, of: 2)) }
    for batch in 0..<single.batchesPerEpoch {
      single.parameters.zeroGradients()
      let whole = single.trainingBatch(batch, stepsDone: batch).result
      var shares: [BatchResult] = []
      var gradients: [[Float]] = []
      for t in ranks {
        t.parameters.zeroGradients()
        shares.append(t.trainingBatch(batch, stepsDone: batch).result)
        gradients.append(t.parameters.gradients.array)
      }
      #expect(Self.relativeDifference(single.parameters.gradients.array, Self.mean(gradients)) < 1e-5, "batch \(batch)")
      #expect(abs(shares.map(\.lossSum).reduce(0, +) - whole.lossSum) < 1e-5)
      #expect(shares.map(\.count).reduce(0, +) == whole.count)
      for t in ranks { #expect(t.model.generator.state == single.model.generator.state) }
    }
    let whole = single.evaluate(splits.valid)
    let parts = ranks.map { $0.evaluate(splits.valid) }
    #expect(abs(parts.map(\.accuracy).reduce(0, +) - whole.accuracy) < 1e-9)
  }
}

/// What a language model's backward announces for data-parallel training to sum early.
@Suite struct GradientAnnouncementTests {
  /// Each announced range is final when announced (the rest of backward leaves it alone), the
  /// output layer's comes first and the layers' follow top down; a tied embedding, which backward
  /// finishes last, is never announced.
  @Test(arguments: [(true, RecurrentCell.lstm), (false, .gru), (true, .rnn)])
  func announcedGradientsAreFinal(tied: Bool, cell: RecurrentCell) throws {
    let config = ModelConfig(
      vocabularySize: 11, embeddingSize: 6, hiddenSize: 6, layers: 3, cell: cell, tied: tied, dropout: 0.2,
      weightDrop: 0.3)
    var g = SeededGenerator(seed: 3)
    let model = try LanguageModel<Float>(config: config, batchSize: 2, maxSteps: 4, generator: &g)
    var announced: [(range: Range<Int>, values: [Float])] = []
    let gradients = model.parameters.gradients
    model.parameters.gradientsFinished = { range in
      announced.append(
        (range, Array(UnsafeBufferPointer(start: gradients.pointer + range.lowerBound, count: range.count))))
    }
    let inputs: [Int32] = (0..<8).map { Int32($0 % 11) }
    let targets: [Int32] = (0..<8).map { Int32(($0 * 3 + 1) % 11) }
    model.parameters.zeroGradients()
    _ = model.loss(inputs: inputs, targets: targets, steps: 4, gradient: true)
    let p = model.parameters
    let layers = (0..<3).map { l in p.range { $0.hasPrefix("rnn.") && $0.hasSuffix("_l\(l)") } }
    #expect(announced.map(\.range) == [p.range { $0.hasPrefix("decoder.") }, layers[2], layers[1], layers[0]])
    for (range, values) in announced {
      #expect(Array(UnsafeBufferPointer(start: gradients.pointer + range.lowerBound, count: range.count)) == values)
      #expect(values.contains { $0 != 0 })
    }
    let embedding = p.view("encoder.weight")
    #expect(!announced.contains { $0.range.overlaps(embedding.offset..<(embedding.offset + embedding.count)) })
  }
}
