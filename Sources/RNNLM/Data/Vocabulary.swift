/// Words and their ids, in first-seen order.
public struct Vocabulary: Sendable, Equatable {
  /// The end-of-sentence token each newline becomes.
  public static let endOfSentence = "<eos>"
  /// The token that stands for words outside the vocabulary (PTB's own, and WikiText's).
  public static let unknownWord = "<unk>"

  /// Word for each id.
  public private(set) var words: [String] = []
  private var ids: [String: Int32] = [:]

  /// An empty vocabulary.
  public init() {}

  /// A vocabulary with exactly these words, ids in order; duplicates are an error.
  public init(words: [String]) throws {
    for w in words {
      guard id(of: w) == nil else { throw DataError.malformed("vocabulary lists \"\(w)\" twice") }
      add(w)
    }
  }

  /// Number of words V.
  public var count: Int { words.count }

  /// The id of `word`, or nil.
  public func id(of word: String) -> Int32? { ids[word] }

  /// The id of `word`, adding it at the end when new.
  @discardableResult
  public mutating func add(_ word: String) -> Int32 {
    if let id = ids[word] { return id }
    let id = Int32(words.count)
    words.append(word)
    ids[word] = id
    return id
  }
}
