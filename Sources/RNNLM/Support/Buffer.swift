import Foundation

/// A fixed-size, zero-initialised array of `T` that the owning layer allocates once and reuses.
///
/// Layers hand raw pointers of these buffers to BLAS and the C kernels; the class keeps the
/// memory alive for as long as the layer that owns it. Buffers of 1 MB and more are fresh
/// anonymous mappings: the system supplies their zero pages when they are first written, so a
/// buffer a model never writes (an evaluation model's gradient buffers) costs no memory.
package final class Buffer<T: BLASScalar> {
  /// First element.
  package let pointer: UnsafeMutablePointer<T>
  /// Number of elements.
  package let count: Int
  /// Bytes mapped, or 0 when the buffer came from the allocator.
  private let mappedBytes: Int

  /// Allocates `count` zeroed elements; throws ``AllocationError`` when the system refuses the
  /// mapping.
  package init(count: Int) throws {
    precondition(count >= 0, "buffer size must not be negative")
    self.count = count
    let bytes = max(count, 1) * MemoryLayout<T>.stride
    if bytes >= 1 << 20 {
      let raw = mmap(nil, bytes, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0)
      guard let raw, raw != MAP_FAILED else {
        throw AllocationError(
          "cannot allocate \(Memory.describe(Double(bytes))) for a layer buffer: \(String(cString: strerror(errno)))")
      }
      pointer = raw.bindMemory(to: T.self, capacity: max(count, 1))
      mappedBytes = bytes
    } else {
      pointer = .allocate(capacity: max(count, 1))
      pointer.initialize(repeating: 0, count: max(count, 1))
      mappedBytes = 0
    }
  }

  deinit {
    if mappedBytes > 0 { munmap(pointer, mappedBytes) } else { pointer.deallocate() }
  }

  /// Sets every element to zero.
  package func zero() { pointer.update(repeating: 0, count: count) }

  /// The elements as an array (for tests and checkpoints, not the hot path).
  package var array: [T] { Array(bufferPointer) }

  /// The values in place.
  package var bufferPointer: UnsafeBufferPointer<T> { UnsafeBufferPointer(start: pointer, count: count) }
}

/// Scratch buffers shared by models that never run interleaved: a training model and the
/// evaluation model the trainer runs between its steps. Every layer buffer is scratch except
/// the carried recurrent state; a forward pass rewrites what it reads before reading it.
package final class ScratchPool<T: BLASScalar> {
  private var buffers: [String: Buffer<T>] = [:]

  /// An empty pool.
  package init() {}

  /// Elements held by the pool's buffers.
  package var elementCount: Int { buffers.values.reduce(0) { $0 + $1.count } }

  /// The pool's buffer called `name` when it holds at least `count` elements, else a new one,
  /// which the pool keeps for the next model that asks.
  package func buffer(_ name: String, count: Int) throws -> Buffer<T> {
    if let b = buffers[name], b.count >= count { return b }
    let b = try Buffer<T>(count: count)
    buffers[name] = b
    return b
  }
}
