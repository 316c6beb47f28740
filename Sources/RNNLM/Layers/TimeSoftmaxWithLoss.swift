/// Softmax and cross-entropy fused, numerically stable (each row's maximum is subtracted).
///
/// It works in place on the scores buffer: with `gradient: true` the scores are replaced by
/// the gradient of the MEAN loss over the rows, `(softmax - onehot) / rows`, ready for the
/// output layer's backward pass. No buffer of its own is needed.
package enum TimeSoftmaxWithLoss {
  /// Returns the SUM over `rows` rows of -log softmax(scores[r])[targets[r]].
  /// - Parameters:
  ///   - scores: (rows, V), overwritten.
  ///   - targets: (rows) ids in 0..<V.
  ///   - gradient: whether to leave d(mean loss)/d(scores) in `scores`.
  package static func loss<T: BLASScalar>(
    scores: UnsafeMutablePointer<T>, targets: UnsafePointer<Int32>, rows: Int, classes: Int,
    gradient: Bool
  ) -> Double {
    for r in 0..<rows {
      precondition(targets[r] >= 0 && Int(targets[r]) < classes, "target \(targets[r]) outside 0..<\(classes)")
    }
    let scale: T = gradient ? 1 / T(rows) : 0
    return T._softmaxCrossEntropy(rows, classes, scores, targets, scale)
  }
}
