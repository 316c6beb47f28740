/// Where one named parameter lives in the flat parameter buffer.
package struct ParameterView: Sendable, Equatable {
  /// Name, as written in checkpoints (PyTorch-style, e.g. `lstm.weight_ih_l0`).
  package let name: String
  /// Offset of the first element in the flat buffer.
  package let offset: Int
  /// Row-major shape.
  package let shape: [Int]
  /// Number of elements.
  package var count: Int { shape.reduce(1, *) }
}

/// All parameters of a model in one flat buffer, and all gradients in a second buffer of the
/// same layout.
///
/// Layers hold views (pointers at an offset), so SGD, clipping and checkpointing are each one
/// pass over one buffer.
package final class ParameterStore<T: BLASScalar> {
  /// The named parameters in buffer order.
  package let views: [ParameterView]
  /// Parameter values, ``count`` elements.
  package let values: Buffer<T>
  /// Gradients, same layout as ``values``.
  package let gradients: Buffer<T>

  /// Total number of scalars.
  package var count: Int { values.count }

  /// Lays out the given (name, shape) pairs one after another and allocates both buffers.
  package init(layout: [(name: String, shape: [Int])]) throws {
    views = Self.views(for: layout)
    let count = views.last.map { $0.offset + $0.count } ?? 0
    values = try Buffer(count: count)
    gradients = try Buffer(count: count)
  }

  /// The views a store with this layout has, without allocating it.
  package static func views(for layout: [(name: String, shape: [Int])]) -> [ParameterView] {
    var offset = 0
    var views: [ParameterView] = []
    for (name, shape) in layout {
      precondition(!views.contains { $0.name == name }, "duplicate parameter \(name)")
      let view = ParameterView(name: name, offset: offset, shape: shape)
      views.append(view)
      offset += view.count
    }
    return views
  }

  /// The view called `name`; a missing name is a programming error.
  package func view(_ name: String) -> ParameterView {
    guard let v = views.first(where: { $0.name == name }) else {
      preconditionFailure("no parameter named \(name)")
    }
    return v
  }

  /// Pointer to the values of `name`.
  package func value(_ name: String) -> UnsafeMutablePointer<T> { values.pointer + view(name).offset }

  /// Pointer to the gradient of `name`.
  package func gradient(_ name: String) -> UnsafeMutablePointer<T> {
    gradients.pointer + view(name).offset
  }

  /// Sets all gradients to zero: one call per training step. With ``touchedRows``, only the
  /// rows written since the last call are cleared in that parameter (the others are zero).
  package func zeroGradients() {
    guard let touched = touchedRows else {
      gradients.zero()
      return
    }
    let g = gradients.pointer
    g.update(repeating: 0, count: touched.range.lowerBound)
    g.advanced(by: touched.range.upperBound).update(repeating: 0, count: count - touched.range.upperBound)
    for row in touched.rows {
      (g + touched.range.lowerBound + Int(row) * touched.rowLength).update(repeating: 0, count: touched.rowLength)
    }
    touched.clear()
  }

  /// The parameter whose gradient only has the rows the last backward pass wrote (an untied
  /// embedding's: the rows of the batch's words), or nil. While set, ``zeroGradients()`` clears
  /// only those rows and ``Optimizer/step(_:state:learningRate:maxNorm:weightDecay:slowerPrefix:)``
  /// updates only those rows where a row without gradient would not move (SGD without weight
  /// decay), which at a large vocabulary saves passes over the whole (V, D) matrix.
  package private(set) var touchedRows: TouchedRows?

  /// Starts tracking the written rows of the (rows, D) parameter `name` (see ``touchedRows``);
  /// its gradient is zeroed now. Every writer of that gradient must then ``TouchedRows/mark(_:)``
  /// the rows it writes. Asking again for the same parameter returns the same tracker; after
  /// ``stopTrackingRows()`` the answer is nil.
  package func trackRows(of name: String) -> TouchedRows? {
    let v = view(name)
    if rowTrackingStopped { return nil }
    if let touchedRows {
      precondition(touchedRows.range.lowerBound == v.offset, "rows of one parameter are tracked")
      return touchedRows
    }
    let tracker = TouchedRows(range: v.offset..<(v.offset + v.count), rowLength: v.shape.last ?? 1)
    (gradients.pointer + v.offset).update(repeating: 0, count: v.count)
    touchedRows = tracker
    return tracker
  }

  /// Stops tracking rows (for writers that do not mark them, such as a sum of the gradients over
  /// data-parallel processes): from now on every gradient pass and update is dense.
  package func stopTrackingRows() {
    touchedRows?.isEnabled = false
    touchedRows = nil
    rowTrackingStopped = true
  }
  private var rowTrackingStopped = false

  /// Told, during a backward pass, of a range of ``gradients`` the pass will not change again
  /// (a layer's whole gradient), so that data-parallel training can start summing it over the
  /// processes while backward goes on; nil when nobody listens.
  package var gradientsFinished: ((Range<Int>) -> Void)?

  /// The range of the buffer the views whose names satisfy `isIncluded` cover (contiguous).
  package func range(where isIncluded: (String) -> Bool) -> Range<Int> {
    let chosen = views.filter { isIncluded($0.name) }
    guard let first = chosen.first, let last = chosen.last else { return 0..<0 }
    precondition(
      chosen.reduce(0) { $0 + $1.count } == last.offset + last.count - first.offset, "the views are contiguous")
    return first.offset..<(last.offset + last.count)
  }
}

/// The rows of one (rows, D) parameter whose gradient a backward pass wrote since the gradients
/// were last zeroed (see ``ParameterStore/touchedRows``).
package final class TouchedRows {
  /// The parameter's elements in the flat buffers.
  package let range: Range<Int>
  /// Elements per row (D).
  package let rowLength: Int
  /// The rows written since the last clearing, in the order first written.
  package private(set) var rows: [Int32] = []
  /// written: (rows), whether each row is in ``rows``.
  private var written: [Bool]
  /// False once the store stopped tracking: marks are then ignored.
  package fileprivate(set) var isEnabled = true

  init(range: Range<Int>, rowLength: Int) {
    self.range = range
    self.rowLength = rowLength
    written = [Bool](repeating: false, count: range.count / rowLength)
  }

  /// Notes that the gradient of `row` was written.
  package func mark(_ row: Int) {
    guard isEnabled, !written[row] else { return }
    written[row] = true
    rows.append(Int32(row))
  }

  /// Forgets the written rows (their gradients were zeroed).
  fileprivate func clear() {
    for row in rows { written[Int(row)] = false }
    rows.removeAll(keepingCapacity: true)
  }
}
