/// Global-norm gradient clipping and plain SGD, each one pass over the flat buffers.
package enum Optimizer {
  /// Scales all gradients by `maxNorm / norm` when their global L2 norm exceeds `maxNorm`
  /// (the book's `clip_grads`, with the same 1e-6 guard). Returns the norm before clipping.
  @discardableResult
  package static func clipGlobalNorm<T: BLASScalar>(_ store: ParameterStore<T>, maxNorm: Double) -> Double {
    let norm = T._sumOfSquares(store.count, store.gradients.pointer).squareRoot()
    let rate = maxNorm / (norm + 1e-6)
    if rate < 1 { T._scale(store.count, T(rate), store.gradients.pointer) }
    return norm
  }

  /// values -= learningRate · gradients.
  package static func sgdStep<T: BLASScalar>(_ store: ParameterStore<T>, learningRate: Double) {
    T._axpy(store.count, T(-learningRate), store.gradients.pointer, store.values.pointer)
  }
}
