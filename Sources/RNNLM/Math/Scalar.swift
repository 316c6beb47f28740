import CKernels
import COpenBLAS

/// A floating-point type the toolkit computes in.
///
/// `Float` is the training path. `Double` runs the very same layer code and exists so that
/// gradients can be checked against central differences without single-precision noise.
/// Every hot loop sits behind one of these requirements (BLAS or a C kernel), so generic
/// layer code adds only a call per kernel, never per element.
package protocol BLASScalar: BinaryFloatingPoint, Sendable {
  /// `C = alpha * op(A) * op(B) + beta * C`, row-major; see ``gemm(transposeA:transposeB:m:n:k:alpha:a:lda:b:ldb:beta:c:ldc:)``.
  static func _gemm(
    _ transA: Bool, _ transB: Bool, _ m: Int, _ n: Int, _ k: Int,
    _ alpha: Self, _ a: UnsafePointer<Self>, _ lda: Int,
    _ b: UnsafePointer<Self>, _ ldb: Int,
    _ beta: Self, _ c: UnsafeMutablePointer<Self>, _ ldc: Int)

  /// `y += alpha * x` over `n` elements.
  static func _axpy(_ n: Int, _ alpha: Self, _ x: UnsafePointer<Self>, _ y: UnsafeMutablePointer<Self>)

  /// `x *= alpha` over `n` elements.
  static func _scale(_ n: Int, _ alpha: Self, _ x: UnsafeMutablePointer<Self>)

  /// Sum of squares, accumulated in double.
  static func _sumOfSquares(_ n: Int, _ x: UnsafePointer<Self>) -> Double

  /// One update of `theta` from `grad` by the rule `rule` (see `rl_optimizer_update` in
  /// `CKernels.h`); `m` and `v` are the rule's state (nil where it has none).
  static func _optimizerUpdate(
    _ rule: OptimizerRule, n: Int, grad: UnsafePointer<Self>, m: UnsafeMutablePointer<Self>?,
    v: UnsafeMutablePointer<Self>?, theta: UnsafeMutablePointer<Self>)

  /// `out[j] += Σ_i x[i, j]` for a (rows, cols) matrix.
  static func _addColumnSums(_ rows: Int, _ cols: Int, _ x: UnsafePointer<Self>, _ out: UnsafeMutablePointer<Self>)

  /// An LSTM layer's forward time loop: per step `A_t += h_{t-1}·W_hhᵀ`, then the gate
  /// nonlinearities and cell update, on the thread team (see `rl_lstm_forward_loop_f` in `CKernels.h`).
  static func _lstmForwardLoop(
    _ steps: Int, _ n: Int, _ h: Int, _ wHH: UnsafePointer<Self>, _ gates: UnsafeMutablePointer<Self>,
    _ hs: UnsafeMutablePointer<Self>, _ cs: UnsafeMutablePointer<Self>, _ tanhC: UnsafeMutablePointer<Self>)

  /// Backward of ``_lstmForwardLoop(_:_:_:_:_:_:_:_:)``; `gates` holds the activations on entry and
  /// their gradients on return (see `rl_lstm_backward_loop_f` in `CKernels.h`).
  static func _lstmBackwardLoop(
    _ steps: Int, _ n: Int, _ h: Int, _ wHH: UnsafePointer<Self>, _ gates: UnsafeMutablePointer<Self>,
    _ cs: UnsafePointer<Self>, _ tanhC: UnsafePointer<Self>, _ dhOut: UnsafePointer<Self>,
    _ dcOut: UnsafePointer<Self>?, _ dh: UnsafeMutablePointer<Self>, _ dc: UnsafeMutablePointer<Self>,
    _ dhHistory: UnsafeMutablePointer<Self>?)

  /// A GRU layer's forward time loop (see `rl_gru_forward_loop_f` in `CKernels.h`).
  static func _gruForwardLoop(
    _ steps: Int, _ n: Int, _ h: Int, _ wHH: UnsafePointer<Self>, _ bHN: UnsafePointer<Self>,
    _ gates: UnsafeMutablePointer<Self>, _ un: UnsafeMutablePointer<Self>, _ hs: UnsafeMutablePointer<Self>)

  /// Backward of ``_gruForwardLoop(_:_:_:_:_:_:_:_:)`` (see `rl_gru_backward_loop_f` in `CKernels.h`).
  static func _gruBackwardLoop(
    _ steps: Int, _ n: Int, _ h: Int, _ wHH: UnsafePointer<Self>, _ gates: UnsafeMutablePointer<Self>,
    _ un: UnsafeMutablePointer<Self>, _ hs: UnsafePointer<Self>, _ dhOut: UnsafePointer<Self>,
    _ dh: UnsafeMutablePointer<Self>, _ dhHistory: UnsafeMutablePointer<Self>?)

  /// A plain RNN layer's forward time loop (see `rl_rnn_forward_loop_f` in `CKernels.h`).
  static func _rnnForwardLoop(
    _ steps: Int, _ n: Int, _ h: Int, _ wHH: UnsafePointer<Self>, _ gates: UnsafeMutablePointer<Self>,
    _ hs: UnsafeMutablePointer<Self>)

  /// Backward of ``_rnnForwardLoop(_:_:_:_:_:_:)`` (see `rl_rnn_backward_loop_f` in `CKernels.h`).
  static func _rnnBackwardLoop(
    _ steps: Int, _ n: Int, _ h: Int, _ wHH: UnsafePointer<Self>, _ gates: UnsafeMutablePointer<Self>,
    _ hs: UnsafePointer<Self>, _ dhOut: UnsafePointer<Self>, _ dh: UnsafeMutablePointer<Self>,
    _ dhHistory: UnsafeMutablePointer<Self>?)

  /// Inverted dropout: `mask = bits ≥ threshold ? scale : 0`, `out = x ⊙ mask` (see `CKernels.h`).
  static func _dropout(
    _ n: Int, _ x: UnsafePointer<Self>, _ bits: UnsafePointer<UInt32>, _ threshold: UInt32, _ scale: Self,
    _ mask: UnsafeMutablePointer<Self>, _ out: UnsafeMutablePointer<Self>)

  /// `out = a ⊙ b` over `n` elements.
  static func _multiply(_ n: Int, _ a: UnsafePointer<Self>, _ b: UnsafePointer<Self>, _ out: UnsafeMutablePointer<Self>)

  /// Fused, stable softmax + cross-entropy; returns the summed loss (see `CKernels.h`).
  static func _softmaxCrossEntropy(
    _ rows: Int, _ cols: Int, _ scores: UnsafeMutablePointer<Self>, _ targets: UnsafePointer<Int32>,
    _ gradScale: Self
  ) -> Double
}

extension Float: BLASScalar {
  package static func _gemm(
    _ transA: Bool, _ transB: Bool, _ m: Int, _ n: Int, _ k: Int,
    _ alpha: Float, _ a: UnsafePointer<Float>, _ lda: Int,
    _ b: UnsafePointer<Float>, _ ldb: Int,
    _ beta: Float, _ c: UnsafeMutablePointer<Float>, _ ldc: Int
  ) {
    rl_sgemm(
      transA ? 1 : 0, transB ? 1 : 0, Int32(m), Int32(n), Int32(k), alpha, a, Int32(lda), b, Int32(ldb), beta, c,
      Int32(ldc))
  }
  package static func _axpy(_ n: Int, _ alpha: Float, _ x: UnsafePointer<Float>, _ y: UnsafeMutablePointer<Float>) {
    rl_axpy_f(n, alpha, x, y)
  }
  package static func _scale(_ n: Int, _ alpha: Float, _ x: UnsafeMutablePointer<Float>) {
    cblas_sscal(Int32(n), alpha, x, 1)
  }
  package static func _optimizerUpdate(
    _ r: OptimizerRule, n: Int, grad: UnsafePointer<Float>, m: UnsafeMutablePointer<Float>?,
    v: UnsafeMutablePointer<Float>?, theta: UnsafeMutablePointer<Float>
  ) {
    var u = rl_optimizer_update(
      kind: r.kind, n: n, lr: Float(r.learningRate), scale: Float(r.scale), weight_decay: Float(r.weightDecay),
      beta1: Float(r.beta1), beta2: Float(r.beta2), eps: Float(r.epsilon), c1: Float(r.correction1),
      c2: Float(r.correction2), grad: grad, m: m, v: v, theta: theta)
    rl_optimizer_update_f(&u)
  }
  package static func _sumOfSquares(_ n: Int, _ x: UnsafePointer<Float>) -> Double {
    rl_sum_squares_f(n, x)
  }
  package static func _addColumnSums(
    _ rows: Int, _ cols: Int, _ x: UnsafePointer<Float>, _ out: UnsafeMutablePointer<Float>
  ) {
    rl_column_sums_add_f(Int32(rows), Int32(cols), x, out)
  }
  package static func _lstmForwardLoop(
    _ steps: Int, _ n: Int, _ h: Int, _ wHH: UnsafePointer<Float>, _ gates: UnsafeMutablePointer<Float>,
    _ hs: UnsafeMutablePointer<Float>, _ cs: UnsafeMutablePointer<Float>, _ tanhC: UnsafeMutablePointer<Float>
  ) {
    rl_lstm_forward_loop_f(Int32(steps), Int32(n), Int32(h), wHH, gates, hs, cs, tanhC)
  }
  package static func _lstmBackwardLoop(
    _ steps: Int, _ n: Int, _ h: Int, _ wHH: UnsafePointer<Float>, _ gates: UnsafeMutablePointer<Float>,
    _ cs: UnsafePointer<Float>, _ tanhC: UnsafePointer<Float>, _ dhOut: UnsafePointer<Float>,
    _ dcOut: UnsafePointer<Float>?, _ dh: UnsafeMutablePointer<Float>, _ dc: UnsafeMutablePointer<Float>,
    _ dhHistory: UnsafeMutablePointer<Float>?
  ) {
    rl_lstm_backward_loop_f(Int32(steps), Int32(n), Int32(h), wHH, gates, cs, tanhC, dhOut, dcOut, dh, dc, dhHistory)
  }
  package static func _gruForwardLoop(
    _ steps: Int, _ n: Int, _ h: Int, _ wHH: UnsafePointer<Float>, _ bHN: UnsafePointer<Float>,
    _ gates: UnsafeMutablePointer<Float>, _ un: UnsafeMutablePointer<Float>, _ hs: UnsafeMutablePointer<Float>
  ) {
    rl_gru_forward_loop_f(Int32(steps), Int32(n), Int32(h), wHH, bHN, gates, un, hs)
  }
  package static func _gruBackwardLoop(
    _ steps: Int, _ n: Int, _ h: Int, _ wHH: UnsafePointer<Float>, _ gates: UnsafeMutablePointer<Float>,
    _ un: UnsafeMutablePointer<Float>, _ hs: UnsafePointer<Float>, _ dhOut: UnsafePointer<Float>,
    _ dh: UnsafeMutablePointer<Float>, _ dhHistory: UnsafeMutablePointer<Float>?
  ) {
    rl_gru_backward_loop_f(Int32(steps), Int32(n), Int32(h), wHH, gates, un, hs, dhOut, dh, dhHistory)
  }
  package static func _rnnForwardLoop(
    _ steps: Int, _ n: Int, _ h: Int, _ wHH: UnsafePointer<Float>, _ gates: UnsafeMutablePointer<Float>,
    _ hs: UnsafeMutablePointer<Float>
  ) {
    rl_rnn_forward_loop_f(Int32(steps), Int32(n), Int32(h), wHH, gates, hs)
  }
  package static func _rnnBackwardLoop(
    _ steps: Int, _ n: Int, _ h: Int, _ wHH: UnsafePointer<Float>, _ gates: UnsafeMutablePointer<Float>,
    _ hs: UnsafePointer<Float>, _ dhOut: UnsafePointer<Float>, _ dh: UnsafeMutablePointer<Float>,
    _ dhHistory: UnsafeMutablePointer<Float>?
  ) {
    rl_rnn_backward_loop_f(Int32(steps), Int32(n), Int32(h), wHH, gates, hs, dhOut, dh, dhHistory)
  }
  package static func _dropout(
    _ n: Int, _ x: UnsafePointer<Float>, _ bits: UnsafePointer<UInt32>, _ threshold: UInt32, _ scale: Float,
    _ mask: UnsafeMutablePointer<Float>, _ out: UnsafeMutablePointer<Float>
  ) {
    rl_dropout_f(n, x, bits, threshold, scale, mask, out)
  }
  package static func _multiply(
    _ n: Int, _ a: UnsafePointer<Float>, _ b: UnsafePointer<Float>, _ out: UnsafeMutablePointer<Float>
  ) {
    rl_multiply_f(n, a, b, out)
  }
  package static func _softmaxCrossEntropy(
    _ rows: Int, _ cols: Int, _ scores: UnsafeMutablePointer<Float>, _ targets: UnsafePointer<Int32>,
    _ gradScale: Float
  ) -> Double {
    rl_softmax_xent_f(Int32(rows), Int32(cols), scores, targets, gradScale)
  }
}

extension Double: BLASScalar {
  package static func _gemm(
    _ transA: Bool, _ transB: Bool, _ m: Int, _ n: Int, _ k: Int,
    _ alpha: Double, _ a: UnsafePointer<Double>, _ lda: Int,
    _ b: UnsafePointer<Double>, _ ldb: Int,
    _ beta: Double, _ c: UnsafeMutablePointer<Double>, _ ldc: Int
  ) {
    rl_dgemm(
      transA ? 1 : 0, transB ? 1 : 0, Int32(m), Int32(n), Int32(k), alpha, a, Int32(lda), b, Int32(ldb), beta, c,
      Int32(ldc))
  }
  package static func _axpy(_ n: Int, _ alpha: Double, _ x: UnsafePointer<Double>, _ y: UnsafeMutablePointer<Double>) {
    cblas_daxpy(Int32(n), alpha, x, 1, y, 1)
  }
  package static func _scale(_ n: Int, _ alpha: Double, _ x: UnsafeMutablePointer<Double>) {
    cblas_dscal(Int32(n), alpha, x, 1)
  }
  package static func _optimizerUpdate(
    _ r: OptimizerRule, n: Int, grad: UnsafePointer<Double>, m: UnsafeMutablePointer<Double>?,
    v: UnsafeMutablePointer<Double>?, theta: UnsafeMutablePointer<Double>
  ) {
    var u = rl_optimizer_update_d_args(
      kind: r.kind, n: n, lr: r.learningRate, scale: r.scale, weight_decay: r.weightDecay, beta1: r.beta1,
      beta2: r.beta2, eps: r.epsilon, c1: r.correction1, c2: r.correction2, grad: grad, m: m, v: v, theta: theta)
    rl_optimizer_update_d(&u)
  }
  package static func _sumOfSquares(_ n: Int, _ x: UnsafePointer<Double>) -> Double {
    rl_sum_squares_d(n, x)
  }
  package static func _addColumnSums(
    _ rows: Int, _ cols: Int, _ x: UnsafePointer<Double>, _ out: UnsafeMutablePointer<Double>
  ) {
    rl_column_sums_add_d(Int32(rows), Int32(cols), x, out)
  }
  package static func _lstmForwardLoop(
    _ steps: Int, _ n: Int, _ h: Int, _ wHH: UnsafePointer<Double>, _ gates: UnsafeMutablePointer<Double>,
    _ hs: UnsafeMutablePointer<Double>, _ cs: UnsafeMutablePointer<Double>, _ tanhC: UnsafeMutablePointer<Double>
  ) {
    rl_lstm_forward_loop_d(Int32(steps), Int32(n), Int32(h), wHH, gates, hs, cs, tanhC)
  }
  package static func _lstmBackwardLoop(
    _ steps: Int, _ n: Int, _ h: Int, _ wHH: UnsafePointer<Double>, _ gates: UnsafeMutablePointer<Double>,
    _ cs: UnsafePointer<Double>, _ tanhC: UnsafePointer<Double>, _ dhOut: UnsafePointer<Double>,
    _ dcOut: UnsafePointer<Double>?, _ dh: UnsafeMutablePointer<Double>, _ dc: UnsafeMutablePointer<Double>,
    _ dhHistory: UnsafeMutablePointer<Double>?
  ) {
    rl_lstm_backward_loop_d(Int32(steps), Int32(n), Int32(h), wHH, gates, cs, tanhC, dhOut, dcOut, dh, dc, dhHistory)
  }
  package static func _gruForwardLoop(
    _ steps: Int, _ n: Int, _ h: Int, _ wHH: UnsafePointer<Double>, _ bHN: UnsafePointer<Double>,
    _ gates: UnsafeMutablePointer<Double>, _ un: UnsafeMutablePointer<Double>, _ hs: UnsafeMutablePointer<Double>
  ) {
    rl_gru_forward_loop_d(Int32(steps), Int32(n), Int32(h), wHH, bHN, gates, un, hs)
  }
  package static func _gruBackwardLoop(
    _ steps: Int, _ n: Int, _ h: Int, _ wHH: UnsafePointer<Double>, _ gates: UnsafeMutablePointer<Double>,
    _ un: UnsafeMutablePointer<Double>, _ hs: UnsafePointer<Double>, _ dhOut: UnsafePointer<Double>,
    _ dh: UnsafeMutablePointer<Double>, _ dhHistory: UnsafeMutablePointer<Double>?
  ) {
    rl_gru_backward_loop_d(Int32(steps), Int32(n), Int32(h), wHH, gates, un, hs, dhOut, dh, dhHistory)
  }
  package static func _rnnForwardLoop(
    _ steps: Int, _ n: Int, _ h: Int, _ wHH: UnsafePointer<Double>, _ gates: UnsafeMutablePointer<Double>,
    _ hs: UnsafeMutablePointer<Double>
  ) {
    rl_rnn_forward_loop_d(Int32(steps), Int32(n), Int32(h), wHH, gates, hs)
  }
  package static func _rnnBackwardLoop(
    _ steps: Int, _ n: Int, _ h: Int, _ wHH: UnsafePointer<Double>, _ gates: UnsafeMutablePointer<Double>,
    _ hs: UnsafePointer<Double>, _ dhOut: UnsafePointer<Double>, _ dh: UnsafeMutablePointer<Double>,
    _ dhHistory: UnsafeMutablePointer<Double>?
  ) {
    rl_rnn_backward_loop_d(Int32(steps), Int32(n), Int32(h), wHH, gates, hs, dhOut, dh, dhHistory)
  }
  package static func _dropout(
    _ n: Int, _ x: UnsafePointer<Double>, _ bits: UnsafePointer<UInt32>, _ threshold: UInt32, _ scale: Double,
    _ mask: UnsafeMutablePointer<Double>, _ out: UnsafeMutablePointer<Double>
  ) {
    rl_dropout_d(n, x, bits, threshold, scale, mask, out)
  }
  package static func _multiply(
    _ n: Int, _ a: UnsafePointer<Double>, _ b: UnsafePointer<Double>, _ out: UnsafeMutablePointer<Double>
  ) {
    rl_multiply_d(n, a, b, out)
  }
  package static func _softmaxCrossEntropy(
    _ rows: Int, _ cols: Int, _ scores: UnsafeMutablePointer<Double>, _ targets: UnsafePointer<Int32>,
    _ gradScale: Double
  ) -> Double {
    rl_softmax_xent_d(Int32(rows), Int32(cols), scores, targets, gradScale)
  }
}
