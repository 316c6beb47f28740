/// Where one named parameter lives in the flat parameter buffer.
public struct ParameterView: Sendable, Equatable {
  /// Name, as written in checkpoints (PyTorch-style, e.g. `lstm.weight_ih_l0`).
  public let name: String
  /// Offset of the first element in the flat buffer.
  public let offset: Int
  /// Row-major shape.
  public let shape: [Int]
  /// Number of elements.
  public var count: Int { shape.reduce(1, *) }
}

/// All parameters of a model in one flat buffer, and all gradients in a second buffer of the
/// same layout.
///
/// Layers hold views (pointers at an offset), so SGD, clipping and checkpointing are each one
/// pass over one buffer.
public final class ParameterStore<T: BLASScalar> {
  /// The named parameters in buffer order.
  public let views: [ParameterView]
  /// Parameter values, ``count`` elements.
  public let values: Buffer<T>
  /// Gradients, same layout as ``values``.
  public let gradients: Buffer<T>

  /// Total number of scalars.
  public var count: Int { values.count }

  /// Lays out the given (name, shape) pairs one after another and allocates both buffers.
  public init(layout: [(name: String, shape: [Int])]) {
    views = Self.views(for: layout)
    let count = views.last.map { $0.offset + $0.count } ?? 0
    values = Buffer(count: count)
    gradients = Buffer(count: count)
  }

  /// The views a store with this layout has, without allocating it.
  public static func views(for layout: [(name: String, shape: [Int])]) -> [ParameterView] {
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
  public func view(_ name: String) -> ParameterView {
    guard let v = views.first(where: { $0.name == name }) else {
      preconditionFailure("no parameter named \(name)")
    }
    return v
  }

  /// Pointer to the values of `name`.
  public func value(_ name: String) -> UnsafeMutablePointer<T> { values.pointer + view(name).offset }

  /// Pointer to the gradient of `name`.
  public func gradient(_ name: String) -> UnsafeMutablePointer<T> {
    gradients.pointer + view(name).offset
  }

  /// Sets all gradients to zero: one call per training step.
  public func zeroGradients() { gradients.zero() }
}
