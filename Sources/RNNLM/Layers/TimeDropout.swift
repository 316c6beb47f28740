/// Inverted dropout over a (rows, width) activation: in training each element is kept with
/// probability 1 - rate and scaled by 1 / (1 - rate), so evaluation needs no rescaling.
///
/// The mask is drawn from the generator passed to ``forward(input:rows:generator:)`` (the
/// run's, so a seed reproduces it). With `lockedRows` N (variational dropout) one mask of
/// (N, width) is drawn per pass and applied at every time step of the (T·N, width) batch, so each
/// sequence loses the same units all along. The layer has its own ``training`` flag; when it is off or
/// the rate is 0 the layer passes its input through without copying.
///
/// In a data-parallel run (``shard``) the layer holds some rows of every time step; it draws the
/// mask of the whole batch, as one process would, and keeps its rows, so every row gets the
/// mask it gets in one process.
package final class TimeDropout<T: BLASScalar> {
  /// Probability of dropping an element, in [0, 1).
  package let rate: Double
  /// Whether masks are applied (training) or the input passes through (evaluation).
  package var training = true
  /// Elements per row.
  package let width: Int
  /// Largest number of rows.
  package let maxRows: Int
  /// output: (rows, width), the masked input (training only).
  package let output: Buffer<T>
  /// mask: (rows, width), 0 or 1 / (1 - rate); locked: (N, width), the first N rows.
  let mask: Buffer<T>
  /// N, the rows of one time step, when the mask is locked across time steps; nil otherwise.
  package let lockedRows: Int?
  /// bits: (rows, width) uniform random words, drawn from the run's generator per pass.
  private let bits: UnsafeMutablePointer<UInt32>
  private var rows = 0
  private var applied = false
  /// The rows of every time step this layer holds in a data-parallel run; nil: all of them.
  package private(set) var shard: RowShard?
  /// allBits: (steps, total rows, width) the whole batch's words, drawn before this layer's rows
  /// are picked out (with a shard only).
  private var allBits: UnsafeMutablePointer<UInt32>?
  private var allBitsCapacity = 0

  /// A dropout layer for up to `maxRows` rows of `width` elements.
  package init(
    rate: Double, width: Int, maxRows: Int, lockedRows: Int? = nil, scratch: ScratchPool<T> = ScratchPool(),
    scratchName: String = "dropout"
  ) throws {
    precondition(rate >= 0 && rate < 1, "dropout rate must be in [0, 1), got \(rate)")
    precondition(lockedRows.map { $0 >= 1 && maxRows % $0 == 0 } ?? true, "locked rows must divide the rows")
    self.rate = rate
    self.lockedRows = lockedRows
    self.width = width
    self.maxRows = maxRows
    let size = rate > 0 ? maxRows * width : 0
    output = try scratch.buffer("\(scratchName).output", count: size)
    mask = try scratch.buffer("\(scratchName).mask", count: size)
    bits = .allocate(capacity: max(size, 1))
  }

  deinit {
    bits.deallocate()
    allBits?.deallocate()
  }

  /// Makes the layer hold rows `shard.range` of every time step's `shard.total` (its rows per
  /// step: the locked rows, or the rows of a pass divided by its steps).
  package func setShard(_ shard: RowShard) {
    precondition(lockedRows.map { $0 == shard.count } ?? true, "the locked rows are the shard's")
    guard !shard.isWhole, rate > 0 else {
      self.shard = nil
      return
    }
    self.shard = shard
    let capacity = (maxRows / shard.count) * shard.total * width
    if capacity > allBitsCapacity {
      allBits?.deallocate()
      allBits = .allocate(capacity: capacity)
      allBitsCapacity = capacity
    }
  }

  /// Applies a fresh mask to `input` (rows, width) and returns the result: ``output``, or
  /// `input` itself when not training or the rate is 0.
  package func forward(input: UnsafePointer<T>, rows: Int, generator: inout SeededGenerator) -> UnsafePointer<T> {
    precondition(rows <= maxRows, "batch of \(rows) rows exceeds the \(maxRows) allocated")
    self.rows = rows
    applied = training && rate > 0
    guard applied else { return input }
    precondition(lockedRows.map { rows % $0 == 0 } ?? true, "rows must be whole time steps")
    // Locked: the mask of the first time step's rows, reused for the others.
    let count = (lockedRows ?? rows) * width
    if let shard, let allBits {
      // The whole batch's words, as one process draws them; then this layer's rows of each step.
      precondition(count % (shard.count * width) == 0, "rows must be whole time steps")
      let steps = count / (shard.count * width)
      generator.fill(allBits, count: steps * shard.total * width)
      for t in 0..<steps {
        (bits + t * shard.count * width).update(
          from: allBits + (t * shard.total + shard.first) * width, count: shard.count * width)
      }
    } else {
      generator.fill(bits, count: count)
    }
    T._dropout(
      count, input, bits, SeededGenerator.dropThreshold(rate), T(1 / (1 - rate)), mask.pointer, output.pointer)
    for start in stride(from: count, to: rows * width, by: count) {
      T._multiply(count, input + start, mask.pointer, output.pointer + start)
    }
    return UnsafePointer(output.pointer)
  }

  /// Turns `dOutput` into the gradient of the input in place (dOutput ⊙ mask; nothing when the
  /// last forward pass passed its input through) and returns it.
  package func backward(dOutput: UnsafeMutablePointer<T>) -> UnsafeMutablePointer<T> {
    guard applied else { return dOutput }
    let m = mask.pointer
    let count = (lockedRows ?? rows) * width
    for start in stride(from: 0, to: rows * width, by: count) {
      for i in 0..<count { dOutput[start + i] *= m[i] }
    }
    return dOutput
  }
}
