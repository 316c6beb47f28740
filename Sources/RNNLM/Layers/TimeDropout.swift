/// Inverted dropout over a (rows, width) activation: in training each element is kept with
/// probability 1 - rate and scaled by 1 / (1 - rate), so evaluation needs no rescaling.
///
/// The mask is drawn from the generator passed to ``forward(input:rows:generator:)`` (the
/// run's, so a seed reproduces it). The layer has its own ``training`` flag; when it is off or
/// the rate is 0 the layer passes its input through without copying.
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
  /// mask: (rows, width), 0 or 1 / (1 - rate).
  let mask: Buffer<T>
  /// bits: (rows, width) uniform random words, drawn from the run's generator per pass.
  private let bits: UnsafeMutablePointer<UInt32>
  private var rows = 0
  private var applied = false

  /// A dropout layer for up to `maxRows` rows of `width` elements.
  package init(
    rate: Double, width: Int, maxRows: Int, scratch: ScratchPool<T> = ScratchPool(), scratchName: String = "dropout"
  ) throws {
    precondition(rate >= 0 && rate < 1, "dropout rate must be in [0, 1), got \(rate)")
    self.rate = rate
    self.width = width
    self.maxRows = maxRows
    let size = rate > 0 ? maxRows * width : 0
    output = try scratch.buffer("\(scratchName).output", count: size)
    mask = try scratch.buffer("\(scratchName).mask", count: size)
    bits = .allocate(capacity: max(size, 1))
  }

  deinit { bits.deallocate() }

  /// Applies a fresh mask to `input` (rows, width) and returns the result: ``output``, or
  /// `input` itself when not training or the rate is 0.
  package func forward(input: UnsafePointer<T>, rows: Int, generator: inout SeededGenerator) -> UnsafePointer<T> {
    precondition(rows <= maxRows, "batch of \(rows) rows exceeds the \(maxRows) allocated")
    self.rows = rows
    applied = training && rate > 0
    guard applied else { return input }
    let count = rows * width
    // Two 32-bit words from each 64-bit draw, low half first; keep an element when its word is
    // at least rate · 2³².
    var i = 0
    while i < count {
      let draw = generator.next()
      bits[i] = UInt32(truncatingIfNeeded: draw)
      if i + 1 < count { bits[i + 1] = UInt32(truncatingIfNeeded: draw >> 32) }
      i += 2
    }
    let threshold = UInt32(min(rate * 4_294_967_296.0, 4_294_967_295.0))
    T._dropout(count, input, bits, threshold, T(1 / (1 - rate)), mask.pointer, output.pointer)
    return UnsafePointer(output.pointer)
  }

  /// Turns `dOutput` into the gradient of the input in place (dOutput ⊙ mask; nothing when the
  /// last forward pass passed its input through) and returns it.
  package func backward(dOutput: UnsafeMutablePointer<T>) -> UnsafeMutablePointer<T> {
    guard applied else { return dOutput }
    let m = mask.pointer
    for i in 0..<(rows * width) { dOutput[i] *= m[i] }
    return dOutput
  }
}
