import Foundation

/// What a new language-model run took from an earlier model (``Trainer/initialize(from:)``).
public struct LanguageModelContinuation: Sendable, Equatable {
  /// The new vocabulary's words whose rows came from the earlier model, matched by spelling,
  /// and all of them; the others are the words the vocabulary gained.
  public var matchedWords: Int, words: Int
  /// The words the vocabulary gained (``words`` − ``matchedWords``).
  public var newWords: Int { words - matchedWords }
}

extension Trainer {
  /// Starts this new run from an earlier language model of the same shape, on a corpus whose
  /// vocabulary may differ (continuing a PTB model on a task's own text, ULMFiT's second
  /// stage): every recurrent parameter is copied; the embedding row, output row and output bias
  /// of each word the earlier model knows come from it by spelling; a word it lacks starts at
  /// the mean of its rows and biases (Howard & Ruder's choice, so a new word begins as an
  /// average word rather than at random among trained ones). Needs the same cell, sizes,
  /// layers and tying, and a full softmax on both sides; throws ``ConfigurationError`` naming
  /// every difference.
  public func initialize(from earlier: Checkpoint) throws -> LanguageModelContinuation {
    guard state.epochsCompleted == 0, state.batchesInEpoch == 0 else {
      throw ConfigurationError("an earlier model can only start a new run, not one under way")
    }
    let old = earlier.config
    var differences: [String] = []
    if old.cell != config.cell { differences.append("cell \(old.cell.rawValue) against \(config.cell.rawValue)") }
    if old.embeddingSize != config.embeddingSize {
      differences.append("embedding size \(old.embeddingSize) against \(config.embeddingSize)")
    }
    if old.hiddenSize != config.hiddenSize {
      differences.append("hidden size \(old.hiddenSize) against \(config.hiddenSize)")
    }
    if old.layers != config.layers { differences.append("\(old.layers) layers against \(config.layers)") }
    if old.tied != config.tied { differences.append("tied \(old.tied) against \(config.tied)") }
    if old.adaptiveShape != nil || config.adaptiveShape != nil {
      differences.append("an adaptive softmax (only full-softmax models carry over to a new vocabulary)")
    }
    guard differences.isEmpty else {
      throw ConfigurationError("the earlier model does not fit this one: \(differences.joined(separator: ", "))")
    }
    let oldIDs = Dictionary(uniqueKeysWithValues: earlier.vocabulary.enumerated().map { ($1, $0) })
    let values = model.parameters.values.pointer
    var matched = 0
    for word in vocabulary where oldIDs[word] != nil { matched += 1 }
    for view in ParameterStore<Float>.views(for: config.parameterLayout) {
      let from = earlier.tensor(view.name)
      let perWord = ["encoder.weight", "decoder.weight", "decoder.bias"].contains(view.name)
      guard perWord else {
        for i in 0..<view.count { values[view.offset + i] = from[from.startIndex + i] }
        continue
      }
      // (V, width): a row per word.
      let width = view.count / config.vocabularySize
      var mean = [Double](repeating: 0, count: width)
      for row in 0..<old.vocabularySize {
        for j in 0..<width { mean[j] += Double(from[from.startIndex + row * width + j]) }
      }
      for (id, word) in vocabulary.enumerated() {
        let destination = values + view.offset + id * width
        if let row = oldIDs[word] {
          for j in 0..<width { destination[j] = from[from.startIndex + row * width + j] }
        } else {
          for j in 0..<width { destination[j] = Float(mean[j] / Double(old.vocabularySize)) }
        }
      }
    }
    return LanguageModelContinuation(matchedWords: matched, words: vocabulary.count)
  }
}
