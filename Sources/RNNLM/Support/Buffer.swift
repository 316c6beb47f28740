/// A fixed-size, zero-initialised array of `T` that the owning layer allocates once and reuses.
///
/// Layers hand raw pointers of these buffers to BLAS and the C kernels; the class keeps the
/// memory alive for as long as the layer that owns it.
package final class Buffer<T: BLASScalar> {
  /// First element.
  package let pointer: UnsafeMutablePointer<T>
  /// Number of elements.
  package let count: Int

  /// Allocates `count` zeroed elements.
  package init(count: Int) {
    precondition(count >= 0, "buffer size must not be negative")
    self.count = count
    pointer = .allocate(capacity: max(count, 1))
    pointer.initialize(repeating: 0, count: max(count, 1))
  }

  deinit { pointer.deallocate() }

  /// Sets every element to zero.
  package func zero() { pointer.update(repeating: 0, count: count) }

  /// The elements as an array (for tests and checkpoints, not the hot path).
  package var array: [T] { Array(UnsafeBufferPointer(start: pointer, count: count)) }
}
