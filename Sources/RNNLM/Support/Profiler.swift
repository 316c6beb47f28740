import Foundation

/// Accumulates wall time per named part of a training step, for the benchmark's breakdown.
///
/// Layers time their parts only when a profiler is attached; otherwise the cost is one nil
/// check per part.
package final class Profiler {
  /// Seconds per part, and the order parts were first seen in.
  package private(set) var seconds: [String: Double] = [:]
  /// Parts in first-seen order.
  package private(set) var order: [String] = []

  /// An empty profile.
  package init() {}

  /// Runs `body`, adding its wall time to `part`.
  @inline(__always)
  package func time<R>(_ part: String, _ body: () throws -> R) rethrows -> R {
    let start = DispatchTime.now().uptimeNanoseconds
    defer {
      let elapsed = Double(DispatchTime.now().uptimeNanoseconds - start) * 1e-9
      if seconds[part] == nil { order.append(part) }
      seconds[part, default: 0] += elapsed
    }
    return try body()
  }

  /// Forgets all times.
  package func reset() {
    seconds = [:]
    order = []
  }
}

extension Optional where Wrapped == Profiler {
  /// Times `body` under `part` when a profiler is attached, else just runs it.
  @inline(__always)
  package func time<R>(_ part: String, _ body: () throws -> R) rethrows -> R {
    switch self {
    case .some(let p): return try p.time(part, body)
    case .none: return try body()
    }
  }
}
