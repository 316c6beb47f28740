/// Looks up a D-dimensional vector for each token of a (T, N) time-major batch.
///
/// Forward gathers rows of the embedding matrix; backward scatter-adds rows into its gradient.
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
  private var rows = 0

  /// An embedding over `weight` (V, D) with gradient `weightGradient`, for up to `maxRows` rows.
  package init(
    vocabularySize: Int, dimension: Int, maxRows: Int,
    weight: UnsafeMutablePointer<T>, weightGradient: UnsafeMutablePointer<T>,
    scratch: ScratchPool<T> = ScratchPool(), scratchName: String = "embedding"
  ) throws {
    self.vocabularySize = vocabularySize
    self.dimension = dimension
    self.maxRows = maxRows
    self.weight = weight
    self.weightGradient = weightGradient
    output = try scratch.buffer("\(scratchName).output", count: maxRows * dimension)
    tokens = .allocate(capacity: maxRows)
  }

  deinit { tokens.deallocate() }

  /// output[r] = weight[tokens[r]] for r in 0..<rows.
  package func forward(tokens input: UnsafePointer<Int32>, rows: Int) {
    precondition(rows <= maxRows, "batch of \(rows) rows exceeds the \(maxRows) allocated")
    self.rows = rows
    tokens.update(from: input, count: rows)
    for r in 0..<rows {
      let token = Int(input[r])
      precondition(token >= 0 && token < vocabularySize, "token id \(token) outside 0..<\(vocabularySize)")
      (output.pointer + r * dimension).update(from: weight + token * dimension, count: dimension)
    }
  }

  /// dWeight[tokens[r]] += dOutput[r]: adds into the gradient buffer.
  /// - Parameter dOutput: (rows, D) gradient of ``output``.
  package func backward(dOutput: UnsafePointer<T>) {
    for r in 0..<rows {
      T._axpy(dimension, 1, dOutput + r * dimension, weightGradient + Int(tokens[r]) * dimension)
    }
  }
}
