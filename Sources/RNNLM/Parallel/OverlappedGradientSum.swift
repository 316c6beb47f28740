import Foundation

/// Sums a step's gradient over the processes while backward goes on, as PyTorch's
/// DistributedDataParallel does with its buckets: each range a model announces as finished
/// (``ParameterStore/gradientsFinished``, a layer's gradient) is averaged by a communication
/// thread, in the order announced, while the main thread computes the layers below;
/// ``finish()`` averages what was not announced (a tied embedding, which backward finishes
/// last) and waits. Every process announces the same ranges in the same order, so their
/// collectives match.
///
/// Only the communication thread calls MPI between the first announcement and ``finish()``; MPI
/// must allow that (``ProcessGroup/threadsMayCommunicate``).
package final class OverlappedGradientSum: @unchecked Sendable {
  private let group: ProcessGroup
  /// values: the flat gradient buffer, `count` floats.
  private let values: UnsafeMutablePointer<Float>
  private let count: Int
  private let condition = NSCondition()
  /// Ranges waiting for the communication thread, and those announced this step.
  private var queue: [Range<Int>] = []
  private var announced: [Range<Int>] = []
  private var busy = false
  private var closing = false

  /// A communication thread for `group` averaging ranges of `gradients`.
  package init(group: ProcessGroup, gradients: Buffer<Float>) {
    (self.group, values, count) = (group, gradients.pointer, gradients.count)
    // The thread holds the object until close() ends it.
    let thread = Thread { [self] in self.serve() }
    thread.name = "gradient sum"
    thread.start()
  }

  /// Averages `range` of the gradients on the communication thread, soon.
  package func announce(_ range: Range<Int>) {
    guard !range.isEmpty else { return }
    condition.lock()
    queue.append(range)
    announced.append(range)
    condition.signal()
    condition.unlock()
  }

  /// Averages the ranges not announced this step, and returns when every range is averaged.
  package func finish() {
    condition.lock()
    var start = 0
    for range in announced.sorted(by: { $0.lowerBound < $1.lowerBound }) {
      if range.lowerBound > start { queue.append(start..<range.lowerBound) }
      start = max(start, range.upperBound)
    }
    if start < count { queue.append(start..<count) }
    announced = []
    condition.signal()
    while !queue.isEmpty || busy { condition.wait() }
    condition.unlock()
  }

  /// Ends the communication thread (after ``finish()``).
  package func close() {
    condition.lock()
    closing = true
    condition.signal()
    condition.unlock()
  }

  private func serve() {
    while true {
      condition.lock()
      while queue.isEmpty && !closing { condition.wait() }
      if queue.isEmpty {
        condition.unlock()
        return
      }
      let range = queue.removeFirst()
      busy = true
      condition.unlock()
      group.averageGradients(values + range.lowerBound, count: range.count)
      condition.lock()
      busy = false
      condition.broadcast()
      condition.unlock()
    }
  }
}
