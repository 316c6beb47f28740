import Foundation

/// What a classifier took from a language model (``ClassifierTrainer/initialize(from:maximumLayers:)``).
public struct LanguageModelInitialization: Sendable, Equatable {
  /// The classifier's words (`<unk>` included, `<pad>` not) whose embedding row came from the
  /// language model, matched by spelling, and all of them.
  public var matchedWords: Int, words: Int
  /// Recurrent layers copied (bottom first); a bidirectional classifier's reverse direction, and
  /// its layers above the first (which read 2H inputs), start as a new model's.
  public var layers: Int
}

extension ClassifierTrainer {
  /// Starts this new run from what a toolkit language model learned (Dai & Le's and ULMFiT's
  /// recipe): the embedding row of every classifier word the language model knows by spelling
  /// (`<unk>` included), and its bottom recurrent layers, which need the same cell, embedding
  /// and hidden sizes (the language model may have more layers). Words it lacks, a
  /// bidirectional classifier's reverse direction and the output layer keep a new model's
  /// initialisation. `maximumLayers` takes at most that many recurrent layers; 0 takes the
  /// embedding alone, which then needs only the same embedding size (the language model's word
  /// vectors, for a classifier of any cell and size). Throws ``ConfigurationError`` naming every
  /// difference.
  public func initialize(from languageModel: Checkpoint, maximumLayers: Int? = nil) throws
    -> LanguageModelInitialization
  {
    guard state.epochsCompleted == 0, state.batchesInEpoch == 0 else {
      throw ConfigurationError("a language model can only start a new run, not one under way")
    }
    let lm = languageModel.config
    var differences: [String] = []
    if lm.embeddingSize != config.embeddingSize {
      differences.append("embedding size \(lm.embeddingSize) against --emsize \(config.embeddingSize)")
    }
    let layerLimit = min(config.layers, maximumLayers ?? config.layers)
    if !config.isBagOfWords && layerLimit > 0 {
      if lm.cell != config.cell {
        differences.append("cell \(lm.cell.rawValue) against --cell \(config.cell.rawValue)")
      }
      if lm.hiddenSize != config.hiddenSize {
        differences.append("hidden size \(lm.hiddenSize) against --nhid \(config.hiddenSize)")
      }
      if lm.layers < layerLimit {
        differences.append(
          "\(lm.layers) layer\(lm.layers == 1 ? "" : "s") against "
            + (layerLimit < config.layers ? "--init-layers \(layerLimit)" : "--nlayers \(config.layers)"))
      }
    }
    guard differences.isEmpty else {
      throw ConfigurationError(
        "the language model does not fit this classifier: \(differences.joined(separator: ", "))")
    }
    let values = model.parameters.values.pointer
    /// Copies `count` values of `tensor` (one of ``Checkpoint/tensor(_:)``) from `offset` to `destination`.
    func copy(_ tensor: ArraySlice<Float>, from offset: Int = 0, count: Int? = nil, to destination: Int) {
      for i in 0..<(count ?? tensor.count) { values[destination + i] = tensor[tensor.startIndex + offset + i] }
    }
    let lmIDs = Dictionary(uniqueKeysWithValues: languageModel.vocabulary.enumerated().map { ($1, $0) })
    let lmEmbedding = languageModel.tensor("encoder.weight")
    let embedding = model.parameters.view("embedding.weight")
    let d = config.embeddingSize
    var matched = 0
    for (id, word) in vocabulary.words.enumerated().dropFirst() {
      guard let row = lmIDs[word] else { continue }
      copy(lmEmbedding, from: row * d, count: d, to: embedding.offset + id * d)
      matched += 1
    }
    // A layer whose input has the language model's size (above a bidirectional layer it is 2H).
    var layers = 0
    for l in 0..<layerLimit where config.inputSize(layer: l) == (l == 0 ? lm.embeddingSize : lm.hiddenSize) {
      for (name, _) in config.cell.parameterLayout(
        layer: l, inputSize: config.inputSize(layer: l), hiddenSize: config.hiddenSize)
      {
        copy(languageModel.tensor(name), to: model.parameters.view(name).offset)
      }
      layers += 1
    }
    return LanguageModelInitialization(matchedWords: matched, words: vocabulary.count - 1, layers: layers)
  }
}
