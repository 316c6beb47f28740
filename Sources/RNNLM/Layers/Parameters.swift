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

  /// Sets all gradients to zero: one call per training step.
  package func zeroGradients() { gradients.zero() }

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
