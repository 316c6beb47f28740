/// Global-norm gradient clipping and plain SGD over the flat buffers.
package enum Optimizer {
  /// One SGD step with global-norm clipping: values −= learningRate · min(1, maxNorm / (norm +
  /// 1e-6)) · gradients, a pass for the norm and a pass for the update (the gradients are not
  /// rescaled in place: the scale goes into the step). `maxNorm` 0 does not clip. Returns the
  /// norm, or 0 when not clipping.
  @discardableResult
  package static func clippedSGDStep<T: BLASScalar>(
    _ store: ParameterStore<T>, learningRate: Double, maxNorm: Double
  ) -> Double {
    var rate = 1.0
    var norm = 0.0
    if maxNorm > 0 {
      norm = T._sumOfSquares(store.count, store.gradients.pointer).squareRoot()
      rate = min(1, maxNorm / (norm + 1e-6))
    }
    T._axpy(store.count, T(-learningRate * rate), store.gradients.pointer, store.values.pointer)
    return norm
  }
}
