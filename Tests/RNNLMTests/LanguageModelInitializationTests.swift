import Foundation
import Testing

@testable import RNNLM

/// A classifier that starts from a language model takes the rows of the words the language model
/// knows and its bottom recurrent layers, exactly, and nothing else; a model that does not fit
/// is refused with every difference named.
@Suite struct LanguageModelInitializationTests {
  static func languageModel(cell: RecurrentCell, d: Int, h: Int, layers: Int, words: [String]) throws -> Checkpoint {
    let config = ModelConfig(
      vocabularySize: words.count, embeddingSize: d, hiddenSize: h, layers: layers, cell: cell, tied: false,
      dropout: 0)
    var g = SeededGenerator(seed: 9)
    let parameters = (0..<config.parameterCount).map { _ in Float(g.nextUniform()) + 10 }
    return Checkpoint(
      config: config, training: TrainingOptions(), state: RunState(learningRate: 1, generator: g), vocabulary: words,
      parameters: parameters, recurrentStates: [])
  }

  /// Each of the classifier's embedding rows (width `d`) is the language model's row of the same
  /// word where it has one, and as it was (`before`) where it has none.
  static func expectEmbeddingRows(
    of trainer: ClassifierTrainer, vocabulary: ClassifierVocabulary, d: Int, before: [Float], lm: Checkpoint
  ) {
    let after = trainer.model.parameters
    let emb = after.view("embedding.weight")
    let lmEmbedding = ParameterStore<Float>.views(for: lm.config.parameterLayout).first { $0.name == "encoder.weight" }!
    for (id, word) in vocabulary.words.enumerated() {
      let row = Array(after.values.array[(emb.offset + d * id)..<(emb.offset + d * id + d)])
      if let j = lm.vocabulary.firstIndex(of: word) {
        let offset = lmEmbedding.offset + d * j
        #expect(row == Array(lm.parameters[offset..<(offset + d)]), "\(word)")
      } else {
        #expect(row == Array(before[(emb.offset + d * id)..<(emb.offset + d * id + d)]), "\(word)")
      }
    }
  }

  @Test func embeddingRowsAndLayersAreCopied() throws {
    let texts = [
      LabelledText(words: ["good", "film"], label: 1), LabelledText(words: ["dull", "zebra"], label: 0),
    ]
    let vocabulary = ClassifierVocabulary(counting: texts, limit: 100)
    let config = ClassifierConfig(
      vocabularySize: vocabulary.count, embeddingSize: 4, hiddenSize: 3, layers: 1, cell: .gru, classes: 2,
      dropout: 0, pooling: .last)
    let trainer = try ClassifierTrainer(
      config: config, options: ClassifierTrainingOptions(), vocabulary: vocabulary, classes: ["neg", "pos"])
    let before = trainer.model.parameters.values.array
    let lm = try Self.languageModel(cell: .gru, d: 4, h: 3, layers: 2, words: ["<unk>", "film", "good", "the", "dull"])
    let taken = try trainer.initialize(from: lm)
    // <unk>, film, good, dull of the five words <unk>, dull, film, good, zebra.
    #expect(taken == LanguageModelInitialization(matchedWords: 4, words: 5, layers: 1))
    let lmViews = Dictionary(
      uniqueKeysWithValues: ParameterStore<Float>.views(for: lm.config.parameterLayout).map { ($0.name, $0) })
    Self.expectEmbeddingRows(of: trainer, vocabulary: vocabulary, d: 4, before: before, lm: lm)
    let after = trainer.model.parameters
    for view in after.views where view.name.hasPrefix("rnn.") {
      let v = lmViews[view.name]!
      #expect(
        Array(after.values.array[view.offset..<(view.offset + view.count)])
          == Array(lm.parameters[v.offset..<(v.offset + v.count)]))
    }
    let fc = after.view("fc.weight")
    #expect(
      Array(after.values.array[fc.offset..<(fc.offset + fc.count)]) == Array(before[fc.offset..<(fc.offset + fc.count)])
    )

    // Another cell, other sizes, fewer layers: every difference named.
    let other = try Self.languageModel(cell: .lstm, d: 5, h: 3, layers: 1, words: ["<unk>", "good"])
    let config2 = ClassifierConfig(
      vocabularySize: vocabulary.count, embeddingSize: 4, hiddenSize: 3, layers: 2, cell: .gru, classes: 2,
      dropout: 0, pooling: .last)
    let trainer2 = try ClassifierTrainer(
      config: config2, options: ClassifierTrainingOptions(), vocabulary: vocabulary, classes: ["neg", "pos"])
    #expect(
      throws: ConfigurationError(
        "the language model does not fit this classifier: embedding size 5 against --emsize 4, cell lstm against --cell gru, 1 layer against --nlayers 2"
      )
    ) { try trainer2.initialize(from: other) }
  }

  /// `maximumLayers: 0` takes the word vectors alone: a classifier of another cell and hidden
  /// size is accepted, its embedding rows are the language model's and every other parameter
  /// is as it was; the embedding size must still agree, and a limit above the language model's
  /// layers is named as such.
  @Test func theEmbeddingAloneFitsAnyEncoder() throws {
    let texts = [LabelledText(words: ["good", "film"], label: 1), LabelledText(words: ["dull", "zebra"], label: 0)]
    let vocabulary = ClassifierVocabulary(counting: texts, limit: 100)
    func trainer(d: Int, layers: Int = 2) throws -> ClassifierTrainer {
      let config = ClassifierConfig(
        vocabularySize: vocabulary.count, embeddingSize: d, hiddenSize: 5, layers: layers, cell: .lstm, classes: 2,
        dropout: 0, pooling: .last)
      return try ClassifierTrainer(
        config: config, options: ClassifierTrainingOptions(), vocabulary: vocabulary, classes: ["neg", "pos"])
    }
    let lm = try Self.languageModel(cell: .gru, d: 4, h: 3, layers: 1, words: ["<unk>", "film", "good", "dull"])
    let classifier = try trainer(d: 4)
    let before = classifier.model.parameters.values.array
    let taken = try classifier.initialize(from: lm, maximumLayers: 0)
    #expect(taken == LanguageModelInitialization(matchedWords: 4, words: 5, layers: 0))
    Self.expectEmbeddingRows(of: classifier, vocabulary: vocabulary, d: 4, before: before, lm: lm)
    let after = classifier.model.parameters
    for view in after.views where view.name != "embedding.weight" {
      #expect(
        Array(after.values.array[view.offset..<(view.offset + view.count)])
          == Array(before[view.offset..<(view.offset + view.count)]), "\(view.name)")
    }
    #expect(
      throws: ConfigurationError("the language model does not fit this classifier: embedding size 4 against --emsize 6")
    ) { try trainer(d: 6).initialize(from: lm, maximumLayers: 0) }
    let sameCell = try Self.languageModel(cell: .lstm, d: 4, h: 5, layers: 1, words: ["<unk>", "good"])
    #expect(try trainer(d: 4).initialize(from: sameCell, maximumLayers: 1).layers == 1)
    #expect(
      throws: ConfigurationError("the language model does not fit this classifier: 1 layer against --nlayers 2")
    ) { try trainer(d: 4).initialize(from: sameCell) }
    let deep = try trainer(d: 4, layers: 3)
    #expect(
      throws: ConfigurationError("the language model does not fit this classifier: 1 layer against --init-layers 2")
    ) { try deep.initialize(from: sameCell, maximumLayers: 2) }
  }
}

/// The carried-over encoder computes what the language model computed: for every cell, a
/// classifier started from a language model gives, for a text, sigmoid(fc · h + b) where h is the
/// language model's own top state after that text's words (read in the language model's ids).
@Suite struct LanguageModelEncoderTests {
  @Test(arguments: RecurrentCell.allCases) func theClassifierReadsTheLanguageModelsState(cell: RecurrentCell) throws {
    let lmWords = ["<unk>", "the", "film", "was", "good", "dull"]
    let (d, h) = (4, 3)
    let lmConfig = ModelConfig(
      vocabularySize: lmWords.count, embeddingSize: d, hiddenSize: h, layers: 2, cell: cell, tied: false, dropout: 0)
    var g = SeededGenerator(seed: 4)
    let values = (0..<lmConfig.parameterCount).map { _ in Float(g.nextUniform() * 1.6 - 0.8) }
    let lm = Checkpoint(
      config: lmConfig, training: TrainingOptions(), state: RunState(learningRate: 1, generator: g),
      vocabulary: lmWords, parameters: values, recurrentStates: [])
    let texts = [
      LabelledText(words: ["the", "film", "was", "good"], label: 1),
      LabelledText(words: ["dull", "film", "dull"], label: 0),
    ]
    let vocabulary = ClassifierVocabulary(counting: texts, limit: 100)
    let config = ClassifierConfig(
      vocabularySize: vocabulary.count, embeddingSize: d, hiddenSize: h, layers: 2, cell: cell, classes: 2,
      dropout: 0, pooling: .last)
    let trainer = try ClassifierTrainer(
      config: config, options: ClassifierTrainingOptions(), vocabulary: vocabulary, classes: ["neg", "pos"])
    #expect(try trainer.initialize(from: lm).layers == 2)
    let store = try ParameterStore<Float>(layout: lmConfig.parameterLayout)
    store.values.pointer.update(from: values, count: values.count)
    let p = trainer.model.parameters
    let fc = Array(UnsafeBufferPointer(start: p.values.pointer + p.view("fc.weight").offset, count: h))
    let bias = p.values.pointer[p.view("fc.bias").offset]
    for text in texts {
      let model = try LanguageModel<Float>(config: lmConfig, parameters: store, batchSize: 1, maxSteps: 8)
      model.setTraining(false)
      let ids = text.words.map { Int32(lmWords.firstIndex(of: $0)!) }
      let top = model.topLayerOutput(inputs: ids, steps: ids.count) + (ids.count - 1) * h
      let logit = (0..<h).reduce(Double(bias)) { $0 + Double(fc[$1]) * Double(top[$1]) }
      let probability = try #require(trainer.probabilities(of: [text.words.joined(separator: " ")])[0])
      // Two classes: (P(neg), P(pos)), the sigmoid's output being P(pos).
      #expect(abs(Double(probability[1]) - 1 / (1 + exp(-logit))) < 1e-5, "\(cell) \(text.words)")
    }
  }
}

/// `trainingTexts` trains on a seeded sample of the training texts, in file order, after the
/// validation texts are held out; the same seed gives the same sample.
@Suite struct TrainingSampleTests {
  @Test func aSeededSampleOfTheTrainingTexts() throws {
    let dir = try DataTests.temporaryDirectory()
    try SentimentCorpus.write(to: dir, trainCount: 200, testCount: 20, seed: 3)
    let data = try LabelledTexts.load(directory: dir)
    func splits(_ n: Int?, seed: UInt64 = 1) throws -> ClassifierSplits {
      var o = ClassifierTrainingOptions()
      (o.trainingTexts, o.seed) = (n, seed)
      let p = ClassifierTrainer.prepare(
        data: data, options: o, embeddingSize: 4, hiddenSize: 4, layers: 1, cell: .lstm, dropout: 0, pooling: .last)
      return try ClassifierTrainer(config: p.config, options: o, vocabulary: p.vocabulary, classes: data.classes)
        .splits(of: data)
    }
    let all = try splits(nil)
    let sample = try splits(30)
    #expect(all.train.count == 180 && sample.train.count == 30 && sample.valid == all.valid)
    // In file order, and a subset of all (each sampled text's position in all rises).
    var position = 0
    for text in sample.train {
      let i = try #require(all.train[position...].firstIndex(of: text))
      position = i + 1
    }
    let (again, other, more) = (try splits(30), try splits(30, seed: 2), try splits(1000))
    #expect(again.train == sample.train && other.train != sample.train)
    #expect(more.train == all.train)
  }
}

/// `freezeEncoderEpochs`: for that many epochs only the output layer moves; then everything does.
@Suite struct FreezeEncoderTests {
  @Test func onlyTheOutputLayerMovesWhileFrozen() throws {
    let dir = try DataTests.temporaryDirectory()
    try SentimentCorpus.write(to: dir, trainCount: 120, testCount: 20, seed: 4)
    let data = try LabelledTexts.load(directory: dir)
    var o = ClassifierTrainingOptions()
    (o.freezeEncoderEpochs, o.epochs, o.patience, o.batchSize) = (1, 3, 0, 16)
    let p = ClassifierTrainer.prepare(
      data: data, options: o, embeddingSize: 4, hiddenSize: 4, layers: 1, cell: .gru, dropout: 0, pooling: .last)
    let trainer = try ClassifierTrainer(config: p.config, options: o, vocabulary: p.vocabulary, classes: data.classes)
    let splits = try trainer.splits(of: data)
    let fc = trainer.model.parameters.view("fc.weight").offset
    let start = trainer.model.parameters.values.array
    _ = try trainer.run(splits, limits: RunLimits(maxEpochs: 1))
    let afterOne = trainer.model.parameters.values.array
    #expect(Array(afterOne[..<fc]) == Array(start[..<fc]))
    #expect(Array(afterOne[fc...]) != Array(start[fc...]))
    _ = try trainer.run(splits, limits: RunLimits(maxEpochs: 1))
    let afterTwo = trainer.model.parameters.values.array
    #expect(Array(afterTwo[..<fc]) != Array(afterOne[..<fc]))
  }

  /// `encoderLearningRateFactor`: the same first step from the same start moves every encoder
  /// parameter by the factor times what one rate moves it (Adam's first step is lr · g / |g|, so
  /// the ratio is exact up to rounding) and the output layer by the same amount.
  @Test(arguments: [OptimizerKind.adam, .sgd]) func theEncoderLearnsAtItsFactor(optimizer: OptimizerKind) throws {
    let dir = try DataTests.temporaryDirectory()
    try SentimentCorpus.write(to: dir, trainCount: 60, testCount: 10, seed: 5)
    let data = try LabelledTexts.load(directory: dir)
    func stepped(factor: Double) throws -> (before: [Float], after: [Float], fc: Int) {
      var o = ClassifierTrainingOptions()
      (o.optimizer, o.learningRate, o.batchSize, o.encoderLearningRateFactor) = (optimizer, 0.01, 16, factor)
      let p = ClassifierTrainer.prepare(
        data: data, options: o, embeddingSize: 4, hiddenSize: 5, layers: 1, cell: .lstm, dropout: 0, pooling: .last)
      let trainer = try ClassifierTrainer(config: p.config, options: o, vocabulary: p.vocabulary, classes: data.classes)
      let splits = try trainer.splits(of: data)
      let before = trainer.model.parameters.values.array
      _ = trainer.trainingStep(splits.train, indices: Array(0..<16)[...])
      return (before, trainer.model.parameters.values.array, trainer.model.parameters.view("fc.weight").offset)
    }
    let one = try stepped(factor: 1)
    let slow = try stepped(factor: 0.25)
    #expect(one.before == slow.before)
    var moved = 0
    for i in one.before.indices {
      let full = Double(one.after[i] - one.before[i])
      let taken = Double(slow.after[i] - slow.before[i])
      let expected = i < one.fc ? 0.25 * full : full
      #expect(abs(taken - expected) <= 1e-6 + 1e-3 * abs(full), "parameter \(i): moved \(taken), expected \(expected)")
      if i < one.fc && full != 0 { moved += 1 }
    }
    #expect(moved > one.fc / 2)
    var bad = ClassifierTrainingOptions()
    for factor in [0, 1.5, -0.1, .nan] {
      bad.encoderLearningRateFactor = factor
      #expect(throws: ConfigurationError.self) { try bad.validate() }
    }
  }
}

/// Pretrained word vectors: the text format read with and without its header, one error line per
/// problem naming the file and line, rows copied for the words found, and a frozen embedding.
@Suite struct WordVectorTests {
  static func write(_ text: String) throws -> String {
    let path = try DataTests.temporaryDirectory() + "/vectors.txt"
    try text.write(toFile: path, atomically: true, encoding: .utf8)
    return path
  }

  static func trainer(d: Int, freeze: Bool = false) throws -> (ClassifierTrainer, ClassifierVocabulary) {
    let texts = [
      LabelledText(words: ["good", "film"], label: 1), LabelledText(words: ["dull", "zebra"], label: 0),
    ]
    let vocabulary = ClassifierVocabulary(counting: texts, limit: 100)
    let config = ClassifierConfig(
      vocabularySize: vocabulary.count, embeddingSize: d, hiddenSize: 3, layers: 1, cell: .lstm, classes: 2,
      dropout: 0, pooling: .last)
    var o = ClassifierTrainingOptions()
    o.freezeEmbeddings = freeze
    return (
      try ClassifierTrainer(config: config, options: o, vocabulary: vocabulary, classes: ["neg", "pos"]), vocabulary
    )
  }

  @Test func rowsOfTheWordsFoundAreCopied() throws {
    // word2vec's header; "the" is not a classifier word, "good" is listed twice (the first counts).
    let path = try Self.write("4 3\ngood 1 2 3\nthe 0 0 0\nfilm -1.5 0.25 4e-1\ngood 9 9 9\n")
    let (trainer, vocabulary) = try Self.trainer(d: 3)
    let before = trainer.model.parameters.values.array
    let vectors = try WordVectors.read(path: path, keeping: Set(vocabulary.words))
    #expect(vectors.dimension == 3 && vectors.lines == 4 && vectors.vectors.count == 2)
    let taken = try trainer.initialize(from: vectors, path: path)
    #expect(taken == WordVectorInitialization(matchedWords: 2, words: vocabulary.count - 1))
    let emb = trainer.model.parameters.view("embedding.weight")
    let after = trainer.model.parameters.values.array
    for (id, word) in vocabulary.words.enumerated() {
      let row = Array(after[(emb.offset + 3 * id)..<(emb.offset + 3 * id + 3)])
      let old = Array(before[(emb.offset + 3 * id)..<(emb.offset + 3 * id + 3)])
      switch word {
      case "good": #expect(row == [1, 2, 3])
      case "film": #expect(row == [-1.5, 0.25, 0.4])
      default: #expect(row == old, "\(word) keeps its initialisation")
      }
    }
    // GloVe's layout, no header.
    let glove = try WordVectors.read(path: try Self.write("film 1 2\ndull 3 4\n"), keeping: ["dull"])
    #expect(glove.dimension == 2 && glove.vectors == ["dull": [3, 4]])
  }

  @Test func problemsNameTheFileAndLine() throws {
    func message(_ text: String) throws -> String {
      let path = try Self.write(text)
      do {
        _ = try WordVectors.read(path: path, keeping: ["good"])
        return "accepted"
      } catch let error as DataError { return error.description.replacingOccurrences(of: path, with: "F") }
    }
    #expect(try message("good 1 2 3\nfilm 1 2\n") == "F:2: 2 numbers, expected 3 as on the lines before")
    #expect(try message("2 3\ngood 1 2\n") == "F:2: 2 numbers, expected 3 as on the lines before")
    #expect(try message("film 1 2\ngood 1 x\n") == "F:2: 'x' is not a number")
    #expect(try message("\n\n") == "F holds no word vectors")
    let (trainer, vocabulary) = try Self.trainer(d: 4)
    let path = try Self.write("good 1 2 3\n")
    let wrongSize = try WordVectors.read(path: path, keeping: Set(vocabulary.words))
    #expect(throws: ConfigurationError.self) { try trainer.initialize(from: wrongSize, path: path) }
    let (small, words) = try Self.trainer(d: 2)
    let none = try WordVectors.read(path: try Self.write("the 1 2\n"), keeping: Set(words.words))
    let error = #expect(throws: ConfigurationError.self) { try small.initialize(from: none, path: "F") }
    #expect(error?.description.contains("none of the classifier's") == true)
  }

  /// A language model's vectors written as text read back as its embedding rows exactly (magnitudes
  /// from about 1e-7 to 50, both signs), and start a classifier exactly as `--init-from` with no
  /// recurrent layer does; a file that cannot be written is named with its reason.
  @Test func aLanguageModelsVectorsReadBackExactly() throws {
    let words = ["<unk>", "film", "good", "dull", "<eos>"]
    let config = ModelConfig(
      vocabularySize: words.count, embeddingSize: 3, hiddenSize: 2, layers: 1, cell: .gru, tied: false, dropout: 0)
    var g = SeededGenerator(seed: 4)
    let parameters = (0..<config.parameterCount).map { i in
      Float(g.nextUniform() - 0.5) * powf(10, Float(i % 9 - 6))
    }
    let lm = Checkpoint(
      config: config, training: TrainingOptions(), state: RunState(learningRate: 1, generator: g), vocabulary: words,
      parameters: parameters, recurrentStates: [])
    let path = try DataTests.temporaryDirectory() + "/lm.vec"
    try WordVectors.write(of: lm, to: path)
    let vectors = try WordVectors.read(path: path, keeping: Set(words))
    #expect(vectors.dimension == 3 && vectors.lines == words.count)
    let embedding = ParameterStore<Float>.views(for: config.parameterLayout).first { $0.name == "encoder.weight" }!
    for (j, word) in words.enumerated() {
      let offset = embedding.offset + 3 * j
      #expect(vectors.vectors[word] == Array(parameters[offset..<(offset + 3)]), "\(word)")
    }
    let (fromFile, _) = try Self.trainer(d: 3)
    let (fromModel, _) = try Self.trainer(d: 3)
    let before = fromFile.model.parameters.values.array
    _ = try fromFile.initialize(from: vectors, path: path)
    #expect(fromFile.model.parameters.values.array != before)
    _ = try fromModel.initialize(from: lm, maximumLayers: 0)
    #expect(fromFile.model.parameters.values.array == fromModel.model.parameters.values.array)
    #expect(throws: FileError(path: "/no-such-directory/lm.vec", reason: "no such file or directory")) {
      try WordVectors.write(of: lm, to: "/no-such-directory/lm.vec")
    }
    let directory = try DataTests.temporaryDirectory()
    #expect(throws: FileError(path: directory, reason: "is a directory")) {
      try WordVectors.write(of: lm, to: directory)
    }
  }

  @Test func aFrozenEmbeddingDoesNotMove() throws {
    let dir = try DataTests.temporaryDirectory()
    try SentimentCorpus.write(to: dir, trainCount: 60, testCount: 20, seed: 4)
    let data = try LabelledTexts.load(directory: dir)
    for freeze in [true, false] {
      var o = ClassifierTrainingOptions()
      (o.freezeEmbeddings, o.epochs, o.batchSize) = (freeze, 1, 16)
      let p = ClassifierTrainer.prepare(
        data: data, options: o, embeddingSize: 4, hiddenSize: 4, layers: 1, cell: .lstm, dropout: 0, pooling: .last)
      let trainer = try ClassifierTrainer(config: p.config, options: o, vocabulary: p.vocabulary, classes: data.classes)
      let emb = trainer.model.parameters.view("embedding.weight")
      let range = emb.offset..<(emb.offset + emb.count)
      let start = trainer.model.parameters.values.array
      _ = try trainer.run(try trainer.splits(of: data), limits: RunLimits(maxEpochs: 1))
      let after = trainer.model.parameters.values.array
      #expect((Array(after[range]) == Array(start[range])) == freeze, "frozen \(freeze)")
      #expect(Array(after[range.upperBound...]) != Array(start[range.upperBound...]), "the rest trains")
    }
  }
}

/// A language model continued on another vocabulary (`train-ptb --init-from`): rows follow the
/// words by spelling, new words start at the mean of the earlier rows, the recurrent layers are
/// copied whole, and a model of another shape is refused naming every difference.
@Suite struct LanguageModelContinuationTests {
  static func trainer(_ words: [String], tied: Bool = false, cell: RecurrentCell = .gru, hidden: Int = 4, seed: UInt64)
    throws -> Trainer
  {
    var o = TrainingOptions()
    (o.batchSize, o.steps, o.evalBatchSize, o.seed) = (2, 3, 2, seed)
    let config = ModelConfig(
      vocabularySize: words.count, embeddingSize: 4, hiddenSize: hidden, layers: 2, cell: cell, tied: tied)
    return try Trainer(config: config, options: o, vocabulary: words, group: .single)
  }

  @Test(arguments: [false, true]) func rowsFollowTheirWordsAndNewWordsStartAtTheMean(tied: Bool) throws {
    let earlier = try Self.trainer(["<unk>", "the", "cat", "sat"], tied: tied, seed: 3).checkpoint()
    let next = try Self.trainer(["<unk>", "dog", "sat", "the", "film"], tied: tied, seed: 9)
    let taken = try next.initialize(from: earlier)
    #expect(taken == LanguageModelContinuation(matchedWords: 3, words: 5) && taken.newWords == 2)
    let old = Dictionary(
      uniqueKeysWithValues: ParameterStore<Float>.views(for: earlier.config.parameterLayout).map { ($0.name, $0) })
    let p = next.model.parameters
    for view in ParameterStore<Float>.views(for: next.config.parameterLayout) {
      let from = old[view.name]!
      let new = Array(UnsafeBufferPointer(start: p.values.pointer + view.offset, count: view.count))
      let was = Array(earlier.parameters[from.offset..<(from.offset + from.count)])
      guard view.name.hasPrefix("encoder.") || view.name.hasPrefix("decoder.") else {
        #expect(new == was, "\(view.name) copied whole")
        continue
      }
      let width = view.count / 5
      // New id → earlier id: <unk> 0, sat 3, the 1; dog and film are new.
      for (id, oldID) in [(0, 0), (2, 3), (3, 1)] {
        #expect(Array(new[(id * width)..<((id + 1) * width)]) == Array(was[(oldID * width)..<((oldID + 1) * width)]))
      }
      for id in [1, 4] {
        for j in 0..<width {
          let mean = (0..<4).map { Double(was[$0 * width + j]) }.reduce(0, +) / 4
          #expect(abs(Double(new[id * width + j]) - mean) < 1e-6, "\(view.name) row \(id) at the mean")
        }
      }
    }
  }

  @Test func anotherShapeIsRefusedNamingEveryDifference() throws {
    let earlier = try Self.trainer(["<unk>", "a"], cell: .lstm, hidden: 4, seed: 1).checkpoint()
    let next = try Self.trainer(["<unk>", "a"], cell: .gru, hidden: 6, seed: 1)
    let error = #expect(throws: ConfigurationError.self) { try next.initialize(from: earlier) }
    #expect(error?.description.contains("cell lstm against gru") == true)
    #expect(error?.description.contains("hidden size 4 against 6") == true)
  }
}
