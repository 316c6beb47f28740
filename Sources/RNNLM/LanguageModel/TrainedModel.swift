import Foundation

/// Input a trained model cannot use, each case saying what is wrong.
public enum UsageError: Error, CustomStringConvertible, Equatable {
  /// The prompt has no words.
  case emptyPrompt
  /// The prompt has words outside the vocabulary (and mapping them to `<unk>` was not asked).
  case unknownPromptWords([String])
  /// Every word of the prompt is outside the vocabulary.
  case onlyUnknownPromptWords([String])
  /// A negative or non-finite temperature.
  case temperature(Double)
  /// A top-k outside 1...V.
  case topK(Int, vocabularySize: Int)
  /// A number of words to generate below 0.
  case wordCount(Int)
  /// Too little text for the requested evaluation streams.
  case textTooShort(tokens: Int, streams: Int)

  /// One line for the user.
  public var description: String {
    switch self {
    case .emptyPrompt: return "the prompt is empty; give some words, or leave --prompt out to start a new sentence"
    case .unknownPromptWords(let w):
      return
        "the prompt has words outside the vocabulary: \(w.joined(separator: ", ")) (use --map-unknown to read them as <unk>)"
    case .onlyUnknownPromptWords(let w):
      return "every word of the prompt is outside the vocabulary: \(w.joined(separator: ", "))"
    case .temperature(let t): return "temperature must be 0 (greedy) or positive, got \(t)"
    case .topK(let k, let v): return "top-k must be between 1 and the vocabulary size \(v), got \(k)"
    case .wordCount(let n): return "the number of words must be 0 or more, got \(n)"
    case .textTooShort(let tokens, let streams):
      return "the text has \(tokens) tokens, too few for \(streams) streams; lower --batch-size"
    }
  }
}

/// The perplexity of a text under a model.
public struct EvaluationResult: Sendable, Equatable {
  /// exp(mean loss).
  public var perplexity: Double
  /// Mean cross-entropy per evaluated token, in nats.
  public var meanLoss: Double
  /// Tokens in the text (words and `<eos>`), and tokens whose loss was evaluated.
  public var tokens: Int, evaluatedTokens: Int
  /// Words of the text outside the vocabulary (read as `<unk>`).
  public var outOfVocabulary: Int
}

/// A trained language model, ready to evaluate text and generate it.
///
/// ```swift
/// let model = try TrainedModel(contentsOf: "runs/small-1/best.safetensors")
/// let result = try model.evaluate(text: "the company said it expects a loss\n")
/// let words = try model.generate(prompt: ["the", "company"], count: 20, temperature: 0.8, seed: 7)
/// ```
///
/// It may be used from several threads at once: its parameters are only read after it is made,
/// and every call works in buffers of its own.
public final class TrainedModel: @unchecked Sendable {
  /// The model's shape.
  public let config: ModelConfig
  /// Its words.
  public let vocabulary: Vocabulary
  let parameters: ParameterStore<Float>

  /// The model in `checkpoint`.
  public init(checkpoint: Checkpoint) throws {
    try checkpoint.config.validate()
    config = checkpoint.config
    vocabulary = try Vocabulary(words: checkpoint.vocabulary)
    try checkpoint.config.checkMemory(batchSize: 1, steps: 1)
    parameters = try ParameterStore(layout: checkpoint.config.parameterLayout)
    guard checkpoint.parameters.count == parameters.count else {
      throw ConfigurationError(
        "the checkpoint has \(checkpoint.parameters.count) parameters, its configuration \(parameters.count)")
    }
    parameters.values.pointer.update(from: checkpoint.parameters, count: parameters.count)
  }

  /// The model in the checkpoint file at `path` (`best.safetensors` or `last.safetensors`).
  public convenience init(contentsOf path: String) throws {
    try self.init(checkpoint: Checkpoint.read(from: path))
  }

  /// The model a trainer holds now (its parameters are copied).
  public convenience init(trainer: Trainer) throws {
    try self.init(checkpoint: trainer.checkpoint(includingCarriedState: false))
  }

  /// Ids of `words`; with `mapUnknown`, words outside the vocabulary become `<unk>` (when the
  /// vocabulary has it). Returns the ids and the words that were unknown.
  func ids(of words: [String], mapUnknown: Bool) -> (ids: [Int32], unknown: [String]) {
    let unk = mapUnknown ? vocabulary.id(of: Vocabulary.unknownWord) : nil
    var ids: [Int32] = []
    var unknown: [String] = []
    for w in words {
      if let id = vocabulary.id(of: w) {
        ids.append(id)
      } else {
        unknown.append(w)
        if let unk { ids.append(unk) }
      }
    }
    return (ids, unknown)
  }

  /// Perplexity of `text`, tokenised as the training data was (each line ends in `<eos>`),
  /// read as `batchSize` parallel streams in windows of `steps` with the state carried.
  /// Words outside the vocabulary are read as `<unk>` and counted; without `<unk>` in the
  /// vocabulary they are a ``DataError/unknownWord(word:path:line:)``.
  public func evaluate(text: String, path: String = "text", batchSize: Int = 10, steps: Int = 35) throws
    -> EvaluationResult
  {
    guard batchSize >= 1, steps >= 1 else {
      throw ConfigurationError("--batch-size and --bptt must be at least 1, got \(batchSize) and \(steps)")
    }
    let (ids, oov) = try Corpus.tokenize(
      text, path: path, vocabulary: vocabulary, readingUnknownAs: vocabulary.id(of: Vocabulary.unknownWord))
    guard (ids.count - 1) / batchSize >= 1 else { throw UsageError.textTooShort(tokens: ids.count, streams: batchSize) }
    let model = try LanguageModel<Float>(config: config, parameters: parameters, batchSize: batchSize, maxSteps: steps)
    model.setTraining(false)
    let r = perplexity(of: model, on: ids, steps: steps)
    return EvaluationResult(
      perplexity: r.perplexity, meanLoss: r.meanLoss, tokens: ids.count, evaluatedTokens: r.tokens,
      outOfVocabulary: oov)
  }

  /// Samples `count` words after `prompt`.
  ///
  /// - Parameters:
  ///   - prompt: the words to continue; nil starts a new sentence (after `<eos>`).
  ///   - count: how many words to generate (0 or more).
  ///   - temperature: 0 picks the most likely word (greedy); above 0 samples from
  ///     softmax(logits / temperature).
  ///   - topK: sample only among the k most likely words (1...V); nil for all.
  ///   - seed: the sampling generator's seed: the same seed gives the same text.
  ///   - mapUnknown: read prompt words outside the vocabulary as `<unk>` instead of failing.
  ///   - onWord: called with each word as it is produced (`<eos>` included), for streaming.
  /// - Returns: the generated words.
  public func generate(
    prompt: [String]?, count: Int, temperature: Double = 1, topK: Int? = nil, seed: UInt64 = 1,
    mapUnknown: Bool = false, onWord: (String) -> Void = { _ in }
  ) throws -> [String] {
    guard count >= 0 else { throw UsageError.wordCount(count) }
    guard temperature >= 0, temperature.isFinite else { throw UsageError.temperature(temperature) }
    if let topK, !(1...config.vocabularySize).contains(topK) {
      throw UsageError.topK(topK, vocabularySize: config.vocabularySize)
    }
    var context: [Int32]
    if let prompt {
      guard !prompt.isEmpty else { throw UsageError.emptyPrompt }
      let mapped = ids(of: prompt, mapUnknown: mapUnknown)
      if mapped.unknown.count == prompt.count { throw UsageError.onlyUnknownPromptWords(mapped.unknown) }
      if !mapped.unknown.isEmpty && mapped.ids.count != prompt.count {
        throw UsageError.unknownPromptWords(mapped.unknown)
      }
      context = mapped.ids
    } else {
      guard let eos = vocabulary.id(of: Vocabulary.endOfSentence) else {
        throw ConfigurationError("the vocabulary has no \(Vocabulary.endOfSentence) to start a sentence from")
      }
      context = [eos]
    }

    let model = try LanguageModel<Float>(config: config, parameters: parameters, batchSize: 1, maxSteps: 1)
    model.setTraining(false)
    var generator = SeededGenerator(seed: seed)
    // The context is never empty: the logits after its last token predict the first word.
    var logits = try context.withUnsafeBufferPointer { c in
      // Only the last token's scores are needed: the others just carry the state on.
      for i in 0..<(c.count - 1) { _ = model.topLayerOutput(inputs: c.baseAddress! + i, steps: 1) }
      return try model.logits(inputs: c.baseAddress! + (c.count - 1), steps: 1)
    }
    let v = config.vocabularySize
    var probabilities = [Double](repeating: 0, count: v)
    var words: [String] = []
    for _ in 0..<count {
      let next = Self.sample(
        logits: UnsafeBufferPointer(start: logits, count: v), temperature: temperature, topK: topK,
        scratch: &probabilities, generator: &generator)
      let word = vocabulary.words[Int(next)]
      words.append(word)
      onWord(word)
      logits = try withUnsafePointer(to: next) { try model.logits(inputs: $0, steps: 1) }
    }
    return words
  }

  /// The id drawn from `logits`: argmax at temperature 0, else from the (top-k) softmax of
  /// logits / temperature.
  static func sample(
    logits: UnsafeBufferPointer<Float>, temperature: Double, topK: Int?, scratch p: inout [Double],
    generator: inout SeededGenerator
  ) -> Int32 {
    var best = 0
    for i in 1..<logits.count where logits[i] > logits[best] { best = i }
    if temperature == 0 { return Int32(best) }
    // Logits below the k-th largest are left out.
    var cutoff = -Float.infinity
    if let k = topK, k < logits.count { cutoff = logits.sorted(by: >)[k - 1] }
    let top = Double(logits[best])
    var total = 0.0
    for i in 0..<logits.count {
      p[i] = logits[i] >= cutoff ? Foundation.exp((Double(logits[i]) - top) / temperature) : 0
      total += p[i]
    }
    var u = generator.nextUniform() * total
    for i in 0..<logits.count where p[i] > 0 {
      u -= p[i]
      if u < 0 { return Int32(i) }
    }
    return Int32(best)
  }

  /// Writes the model as a checkpoint (without a training run's state) to `path`, atomically.
  public func save(to path: String, training: TrainingOptions = TrainingOptions()) throws {
    try Checkpoint(
      config: config, training: training,
      state: RunState(learningRate: training.learningRate, generator: SeededGenerator(seed: training.seed)),
      vocabulary: vocabulary.words, parameters: parameters.values.array, recurrentStates: []
    ).write(to: path)
  }
}
