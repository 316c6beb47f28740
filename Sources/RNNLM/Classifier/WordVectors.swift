import Foundation

/// Pretrained word vectors in the word2vec/GloVe text format: each line a word and D numbers
/// separated by spaces, with an optional first line `count D` (word2vec's); only the words asked
/// for are kept.
public struct WordVectors: Sendable {
  /// The vectors' size D.
  public let dimension: Int
  /// The vector of each word kept, D numbers.
  public let vectors: [String: [Float]]
  /// Vectors in the file (lines read, the header not counted).
  public let lines: Int

  /// Reads `path`, keeping the vectors of `words`. A line whose count of numbers differs from the
  /// first vector's (or the header's D), a number that does not parse, or a file with no vector
  /// is a ``DataError`` naming the file and the line. A word listed twice keeps its first vector.
  public static func read(path: String, keeping words: Set<String>) throws -> WordVectors {
    let text = try Corpus.text(Corpus.readData(at: path), path: path)
    var dimension: Int?
    var vectors: [String: [Float]] = [:]
    var lines = 0
    var number = 0
    for line in text.split(separator: "\n", omittingEmptySubsequences: false) {
      number += 1
      let fields = line.split(whereSeparator: { $0 == " " || $0 == "\t" || $0 == "\r" })
      if fields.isEmpty { continue }
      if number == 1 && fields.count == 2, Int(fields[0]) != nil, let d = Int(fields[1]) {
        guard d >= 1 else { throw DataError.malformed("\(path):1: the header gives a dimension of \(d)") }
        dimension = d
        continue
      }
      let count = fields.count - 1
      guard count >= 1 else { throw DataError.malformed("\(path):\(number): a word with no numbers") }
      if let d = dimension, count != d {
        throw DataError.malformed(
          "\(path):\(number): \(count) number\(count == 1 ? "" : "s"), expected \(d) as on the lines before")
      }
      dimension = count
      lines += 1
      let word = String(fields[0])
      guard words.contains(word), vectors[word] == nil else { continue }
      var vector = [Float](repeating: 0, count: count)
      for i in 0..<count {
        guard let x = Float(fields[i + 1]), x.isFinite else {
          throw DataError.malformed("\(path):\(number): '\(fields[i + 1])' is not a number")
        }
        vector[i] = x
      }
      vectors[word] = vector
    }
    guard let dimension, lines > 0 else { throw DataError.malformed("\(path) holds no word vectors") }
    return WordVectors(dimension: dimension, vectors: vectors, lines: lines)
  }

  /// A language model's word vectors in the format ``read(path:keeping:)`` reads: a `count D` line
  /// (word2vec's header), then each vocabulary word in the model's order with its embedding row,
  /// every number written so that it reads back as the same `Float`.
  public static func text(of languageModel: Checkpoint) -> String {
    let d = languageModel.config.embeddingSize
    let embedding = languageModel.tensor("encoder.weight")
    var text = "\(languageModel.vocabulary.count) \(d)\n"
    for (row, word) in languageModel.vocabulary.enumerated() {
      text += word
      let start = embedding.startIndex + row * d
      for x in embedding[start..<(start + d)] { text += " \(x)" }
      text += "\n"
    }
    return text
  }

  /// Writes ``text(of:)`` to `path`; a file that cannot be written is a ``FileError``.
  public static func write(of languageModel: Checkpoint, to path: String) throws {
    try writeTextFile(text(of: languageModel), to: path)
  }
}

/// What a classifier took from word vectors (``ClassifierTrainer/initialize(from:path:)``).
public struct WordVectorInitialization: Sendable, Equatable {
  /// The classifier's words (`<pad>` not counted) whose embedding row came from the file, and all
  /// of them.
  public var matchedWords: Int, words: Int
}

extension ClassifierTrainer {
  /// Starts this new run's embedding from pretrained vectors: the row of every classifier word
  /// the file has (exactly as spelled) is its vector; the others keep a new model's
  /// initialisation. Throws ``ConfigurationError`` when the vectors' size is not the embedding's
  /// or no word matches.
  public func initialize(from vectors: WordVectors, path: String) throws -> WordVectorInitialization {
    guard state.epochsCompleted == 0, state.batchesInEpoch == 0 else {
      throw ConfigurationError("word vectors can only start a new run, not one under way")
    }
    let d = config.embeddingSize
    guard vectors.dimension == d else {
      throw ConfigurationError(
        "\(path) holds vectors of \(vectors.dimension) numbers; give --emsize \(vectors.dimension)")
    }
    let embedding = model.parameters.view("embedding.weight")
    let values = model.parameters.values.pointer + embedding.offset
    var matched = 0
    for (id, word) in vocabulary.words.enumerated().dropFirst() {
      guard let v = vectors.vectors[word] else { continue }
      for j in 0..<d { values[id * d + j] = v[j] }
      matched += 1
    }
    guard matched > 0 else {
      throw ConfigurationError(
        "none of the classifier's \(vocabulary.count - 1) words is in \(path) (\(vectors.lines) vectors)")
    }
    return WordVectorInitialization(matchedWords: matched, words: vocabulary.count - 1)
  }
}
