import Foundation
import Testing

@testable import RNNLM

@Suite struct EndToEndTests {
  /// Streams evaluation: N streams in windows with the state carried equals running each
  /// stream as one sequence, and every one of the N·⌊(len-1)/N⌋ tokens is counted once.
  @Test func perplexityCoversEveryStreamToken() throws {
    let config = ModelConfig(vocabularySize: 5, embeddingSize: 3, hiddenSize: 3)
    var g = SeededGenerator(seed: 41)
    let corpus = (0..<30).map { _ in Int32(g.next() % 5) }
    let windowed = try LanguageModel<Double>(config: config, batchSize: 3, maxSteps: 4, generator: &g)
    let result = perplexity(of: windowed, on: corpus, steps: 4)
    #expect(result.tokens == 3 * 9)
    let whole = try LanguageModel<Double>(config: config, parameters: windowed.parameters, batchSize: 1, maxSteps: 9)
    var total = 0.0
    for i in 0..<3 {
      whole.resetState()
      total += whole.loss(
        inputs: Array(corpus[(i * 9)..<(i * 9 + 9)]), targets: Array(corpus[(i * 9 + 1)..<(i * 9 + 10)]), steps: 9,
        gradient: false)
    }
    #expect(abs(result.meanLoss - total / 27) < 1e-12, "windowed \(result.meanLoss), whole streams \(total / 27)")
    #expect(abs(result.perplexity - Foundation.exp(total / 27)) < 1e-9)
  }

  /// A small model of each cell on the project's grammar corpus really learns: the loss falls far
  /// below ln V = 2.56 and below the unigram entropy 2.43, toward the corpus entropy 0.69.
  @Test(arguments: RecurrentCell.allCases)
  func smallModelLearnsGrammar(cell: RecurrentCell) throws {
    var vocabulary = Vocabulary()
    let train = try Corpus.tokenize(
      grammarText(sentences: 600, seed: 1), path: "train", vocabulary: &vocabulary, extend: true)
    let valid = try Corpus.tokenize(
      grammarText(sentences: 100, seed: 2), path: "valid", vocabulary: &vocabulary, extend: false)
    #expect(vocabulary.count == 13)
    var options = TrainingOptions()
    (options.batchSize, options.steps, options.learningRate, options.clip, options.epochs) = (8, 10, 2, 1, 6)
    options.evalBatchSize = 4
    options.logInterval = 1000
    let trainer = try Trainer(
      config: ModelConfig(vocabularySize: 13, embeddingSize: 16, hiddenSize: 16, cell: cell), options: options,
      vocabulary: vocabulary.words)
    let before = trainer.evaluate(valid)
    let dataset = Dataset(vocabulary: vocabulary, train: train, valid: valid, test: valid)
    let report = try trainer.run(dataset)
    let loss = Foundation.log(report.bestValidPerplexity!)
    print(
      "grammar corpus, \(cell): validation loss \(Foundation.log(before)) before, \(loss) after (ln V = \(Foundation.log(13.0)))"
    )
    #expect(Foundation.log(before) > 2.3, "an untrained model should be near uniform")
    #expect(loss < 1.0, "validation loss \(loss) nats/token: the model did not learn the grammar")
    // The test split here is the validation text: the best parameters must be the ones tested.
    #expect(abs(Foundation.log(report.testPerplexity) - loss) < 1e-9)
  }

  /// A learning rate that makes the loss overflow stops the run with a clear error.
  @Test func divergingRunStopsWithAnError() throws {
    var vocabulary = Vocabulary()
    let train = try Corpus.tokenize(
      grammarText(sentences: 100, seed: 3), path: "train", vocabulary: &vocabulary, extend: true)
    var options = TrainingOptions()
    (options.batchSize, options.steps, options.learningRate, options.clip, options.epochs) = (4, 5, 1e30, 0, 2)
    let trainer = try Trainer(
      config: ModelConfig(vocabularySize: 13, embeddingSize: 4, hiddenSize: 4), options: options,
      vocabulary: vocabulary.words)
    #expect(throws: TrainingError.self) {
      try trainer.run(Dataset(vocabulary: vocabulary, train: train, valid: train, test: train))
    }
  }

  @Test func invalidConfigurationsAreRefused() {
    #expect(throws: ConfigurationError.self) {
      try ModelConfig(vocabularySize: 10, embeddingSize: 4, hiddenSize: 5, tied: true).validate()
    }
    #expect(throws: ConfigurationError.self) {
      try ModelConfig(vocabularySize: 10, embeddingSize: 4, hiddenSize: 4, layers: 0).validate()
    }
    var options = TrainingOptions()
    options.learningRate = -1
    #expect(throws: ConfigurationError.self) { try options.validate() }
  }
}
