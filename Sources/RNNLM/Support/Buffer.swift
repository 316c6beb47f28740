/// A fixed-size, zero-initialised array of `T` that the owning layer allocates once and reuses.
///
/// Layers hand raw pointers of these buffers to BLAS and the C kernels; the class keeps the
/// memory alive for as long as the layer that owns it.
public final class Buffer<T: BLASScalar> {
  /// First element.
  public let pointer: UnsafeMutablePointer<T>
  /// Number of elements.
  public let count: Int

  /// Allocates `count` zeroed elements.
  public init(count: Int) {
    precondition(count >= 0, "buffer size must not be negative")
    self.count = count
    pointer = .allocate(capacity: max(count, 1))
    pointer.initialize(repeating: 0, count: max(count, 1))
  }

  deinit { pointer.deallocate() }

  /// Sets every element to zero.
  public func zero() { pointer.update(repeating: 0, count: count) }

  /// The elements as an array (for tests and checkpoints, not the hot path).
  public var array: [T] { Array(UnsafeBufferPointer(start: pointer, count: count)) }
}
