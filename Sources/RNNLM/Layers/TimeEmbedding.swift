/// Looks up a D-dimensional vector for each token of a (T, N) time-major batch.
///
/// Forward gathers rows of the embedding matrix; backward scatter-adds rows into its gradient.
/// With embedding dropout (rate p, in training), each pass drops every word of the vocabulary
/// with probability p, for all its occurrences in the batch, and scales the kept words' rows
/// by 1 / (1 − p): the same as dropping rows of the embedding matrix.
package final class TimeEmbedding<T: BLASScalar> {
  /// Vocabulary size V.
  package let vocabularySize: Int
  /// Embedding size D.
  package let dimension: Int
  /// Largest number of rows (N·T) a batch may have.
  package let maxRows: Int
  /// weight: (V, D), a view into the parameter buffer.
  let weight: UnsafeMutablePointer<T>
  /// dWeight: (V, D), same offset in the gradient buffer.
  let weightGradient: UnsafeMutablePointer<T>
  /// output: (N·T, D), row t·N + n for token (t, n).
  package let output: Buffer<T>
  /// The tokens of the last forward pass, kept for backward: (N·T).
  private let tokens: UnsafeMutablePointer<Int32>
  /// The probability of dropping a word in training.
  package let dropout: Double
  /// Whether embedding dropout applies (training) or not (evaluation).
  package var training = true
  /// wordScale: (V), each word's factor in the last training pass: 0 (dropped) or 1 / (1 − p).
  let wordScale: Buffer<T>
  private var dropped = false
  private var rows = 0
  /// Where backward notes the rows of ``weightGradient`` it writes, when the store tracks them.
  package var touchedRows: TouchedRows?

  /// An embedding over `weight` (V, D) with gradient `weightGradient`, for up to `maxRows` rows.
  package init(
    vocabularySize: Int, dimension: Int, maxRows: Int, dropout: Double = 0,
    weight: UnsafeMutablePointer<T>, weightGradient: UnsafeMutablePointer<T>,
    scratch: ScratchPool<T> = ScratchPool(), scratchName: String = "embedding"
  ) throws {
    precondition(dropout >= 0 && dropout < 1, "embedding dropout must be in [0, 1), got \(dropout)")
    self.dropout = dropout
    wordScale = try Buffer(count: dropout > 0 ? vocabularySize : 0)
    self.vocabularySize = vocabularySize
    self.dimension = dimension
    self.maxRows = maxRows
    self.weight = weight
    self.weightGradient = weightGradient
    output = try scratch.buffer("\(scratchName).output", count: maxRows * dimension)
    tokens = .allocate(capacity: maxRows)
  }

  deinit { tokens.deallocate() }

  /// output[r] = weight[tokens[r]] for r in 0..<rows (times the word's scale with embedding
  /// dropout in training, whose keep-or-drop draws, one per vocabulary word, come from
  /// `generator`).
  package func forward(tokens input: UnsafePointer<Int32>, rows: Int, generator: inout SeededGenerator) {
    precondition(rows <= maxRows, "batch of \(rows) rows exceeds the \(maxRows) allocated")
    self.rows = rows
    tokens.update(from: input, count: rows)
    dropped = training && dropout > 0
    if dropped {
      // One 32-bit word per vocabulary word, two from each 64-bit draw; keep when ≥ p · 2³².
      let threshold = SeededGenerator.dropThreshold(dropout)
      let keep = T(1 / (1 - dropout))
      var draw: UInt64 = 0
      for w in 0..<vocabularySize {
        if w % 2 == 0 { draw = generator.next() }
        let word = UInt32(truncatingIfNeeded: w % 2 == 0 ? draw : draw >> 32)
        wordScale.pointer[w] = word >= threshold ? keep : 0
      }
    }
    for r in 0..<rows {
      let token = Int(input[r])
      precondition(token >= 0 && token < vocabularySize, "token id \(token) outside 0..<\(vocabularySize)")
      let row = output.pointer + r * dimension
      row.update(from: weight + token * dimension, count: dimension)
      if dropped {
        let scale = wordScale.pointer[token]
        for j in 0..<dimension { row[j] *= scale }
      }
    }
  }

  /// dWeight[tokens[r]] += dOutput[r] (times the word's scale with embedding dropout): adds
  /// into the gradient buffer.
  /// - Parameter dOutput: (rows, D) gradient of ``output``.
  package func backward(dOutput: UnsafePointer<T>) {
    for r in 0..<rows {
      let token = Int(tokens[r])
      let scale = dropped ? wordScale.pointer[token] : 1
      if scale == 0 { continue }
      T._axpy(dimension, scale, dOutput + r * dimension, weightGradient + token * dimension)
      touchedRows?.mark(token)
    }
  }
}
