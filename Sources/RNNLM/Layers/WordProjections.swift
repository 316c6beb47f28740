/// The first recurrent layer's input projection looked up per word, for evaluation passes.
///
/// Without dropout the first layer's input is the embedding row of each token, so its input
/// projection E[w]·W_ihᵀ + b depends on the word alone. Within one evaluation pass (weights
/// fixed) the table computes it once per distinct word, as one product over the batch's words
/// it has not met before, and fills each token's row of the layer's gate buffer by copying.
/// A PTB validation pass (73,760 tokens at N = 10, 6,022 distinct words) then does about a
/// twelfth of the first layer's input-projection FLOPs. Perplexity changes within float rounding
/// only: each row is the same dot product, computed by the same sgemm in a product of fewer rows.
///
/// The table holds at most ``capacity`` words; a batch with more new words than the room left
/// is projected directly, as without the table.
package final class WordProjections<T: BLASScalar> {
  /// Vocabulary size V.
  package let vocabularySize: Int
  /// Embedding size D.
  package let embeddingSize: Int
  /// The width G·H of a projection row.
  package let width: Int
  /// The most words the table holds.
  package let capacity: Int
  /// How many words the table holds now.
  package private(set) var count = 0
  /// slots: (V): each word's row in ``rows``, or −1 while it has none.
  private let slots: UnsafeMutablePointer<Int32>
  /// rows: (capacity, G·H): E[w]·W_ihᵀ + b of the words met so far, in the order they were met.
  private let rows: Buffer<T>
  /// gathered: (maxRows, D): the embedding rows of a batch's new words, the product's input.
  private let gathered: Buffer<T>

  /// Elements the table holds: its projection rows and the batch's gathered embedding rows.
  package var elementCount: Int { rows.count + gathered.count }

  /// A table for a layer whose projection rows are `width` wide, over batches of at most `maxRows`
  /// tokens, holding `capacity` words (by default ``wordProjectionCapacity(vocabularySize:width:scalarBytes:)``).
  package init(vocabularySize: Int, embeddingSize: Int, width: Int, maxRows: Int, capacity: Int? = nil) throws {
    self.vocabularySize = vocabularySize
    self.embeddingSize = embeddingSize
    self.width = width
    self.capacity = min(
      vocabularySize,
      max(
        1,
        capacity
          ?? wordProjectionCapacity(vocabularySize: vocabularySize, width: width, scalarBytes: MemoryLayout<T>.stride)))
    rows = try Buffer(count: self.capacity * width)
    gathered = try Buffer(count: maxRows * embeddingSize)
    slots = .allocate(capacity: vocabularySize)
    slots.initialize(repeating: -1, count: vocabularySize)
  }

  deinit {
    slots.deallocate()
  }

  /// Forgets every word: the next pass projects them again (call it when the weights changed).
  package func reset() {
    slots.update(repeating: -1, count: vocabularySize)
    count = 0
  }

  /// Runs `layer` over `steps` steps of `tokens` (`rows` = steps·N ids, time-major), whose
  /// embedding rows `embedded` (rows, D) are its input: the projections of the words the table
  /// holds are copied, the others computed once from `embedding` (V, D) and added to the table.
  package func forward(
    _ layer: any RecurrentLayer<T>, tokens: UnsafePointer<Int32>, rows tokenCount: Int, steps: Int,
    embedded: UnsafePointer<T>, embedding: UnsafePointer<T>
  ) {
    precondition(layer.projectionWidth == width && layer.inputSize == embeddingSize, "the table is another layer's")
    precondition(tokenCount * embeddingSize <= gathered.count, "batch of \(tokenCount) rows exceeds the table's")
    var added = 0
    for r in 0..<tokenCount {
      let w = Int(tokens[r])
      guard slots[w] < 0 else { continue }
      guard count + added < capacity else {
        // No room: undo this batch's slots (those from `count` on) and project it as the layer would.
        for j in 0..<r where slots[Int(tokens[j])] >= count { slots[Int(tokens[j])] = -1 }
        layer.forward(input: embedded, steps: steps)
        return
      }
      slots[w] = Int32(count + added)
      (gathered.pointer + added * embeddingSize).update(from: embedding + w * embeddingSize, count: embeddingSize)
      added += 1
    }
    let (width, table, slots) = (width, rows.pointer, slots)
    layer.forward(steps: steps) { gates in
      if added > 0 { layer.projectInput(gathered.pointer, rows: added, into: table + count * width) }
      count += added
      for r in 0..<tokenCount {
        (gates + r * width).update(from: table + Int(slots[Int(tokens[r])]) * width, count: width)
      }
    }
  }
}

/// The words a ``WordProjections`` table holds unless told otherwise: min(V, what fits 256 MiB of
/// `width`-wide rows of `scalarBytes`-byte numbers). At V = 10,000 and G·H = 2,600 that is every
/// word, 104 MB, of which a pass touches the pages of the words it meets.
package func wordProjectionCapacity(vocabularySize: Int, width: Int, scalarBytes: Int) -> Int {
  min(vocabularySize, max(1, (256 << 20) / (width * scalarBytes)))
}
