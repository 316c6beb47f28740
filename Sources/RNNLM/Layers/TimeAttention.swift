import Foundation

/// How an attention layer scores an encoder state h_s against a decoder state h_t.
public enum AttentionScore: String, Codable, Sendable, CaseIterable {
  /// No attention: the decoder sees the encoder only through its final state.
  case none
  /// Luong's dot score h_tᵀ h_s.
  case dot
  /// Luong's "general" score h_tᵀ W_a h_s, W_a (H, H) learnt.
  case general
}

/// Attention of every decoder step over every encoder step of the same sequence, for a
/// time-major batch: scores (dot or Luong's general), a softmax over each sequence's real source
/// steps (padded steps get weight 0, as a score of −∞ would give), and the context vector
/// c_t = Σ_s a_{t,s} h_s.
///
/// Scores, context and every gradient are matrix products per sequence n of the batch, reading
/// the time-major (T·N, H) buffers with a row stride of N·H: S_n = Q_n·K_nᵀ, C_n = A_n·V_n, and
/// backward dA_n = dC_n·V_nᵀ, dV_n = A_nᵀ·dC_n, dQ_n = dS_n·K_n, dK_n = dS_nᵀ·Q_n. For the general
/// score the keys are K = V·W_aᵀ, one product over all rows.
package final class TimeAttention<T: BLASScalar> {
  /// H, N, and the largest source and target step counts.
  package let hiddenSize: Int, batchSize: Int, maxSourceSteps: Int, maxTargetSteps: Int
  /// W_a (H, H) and its gradient for the general score; nil for dot.
  let weight: UnsafePointer<T>?, dWeight: UnsafeMutablePointer<T>?
  /// keys: (Ts·N, H): the encoder states (dot) or W_a applied to them (general).
  let keys: Buffer<T>
  /// weights: N blocks of (Tt, Ts) with this pass's Tt, Ts: the attention weights a_{t,s} of
  /// sequence n at offset n·Tt·Ts (row t, column s).
  package let weights: Buffer<T>
  /// context: (Tt·N, H), time-major.
  package let context: Buffer<T>
  /// dQuery: (Tt·N, H) and dSource: (Ts·N, H), written by ``backward(dContext:)``.
  package let dQuery: Buffer<T>, dSource: Buffer<T>
  /// dScores: N blocks of (Tt, Ts); dKeys: (Ts·N, H).
  let dScores: Buffer<T>, dKeys: Buffer<T>
  private var query: UnsafePointer<T>?, source: UnsafePointer<T>?
  private var lengths: [Int]
  private var (targetSteps, sourceSteps) = (0, 0)

  /// An attention layer of the given score (`weight`, `dWeight`: W_a and its gradient, (H, H),
  /// for the general score) with buffers for (N, maxSourceSteps) encoder and (N, maxTargetSteps)
  /// decoder states.
  package init(
    hiddenSize: Int, batchSize: Int, maxSourceSteps: Int, maxTargetSteps: Int,
    weight: UnsafePointer<T>? = nil, dWeight: UnsafeMutablePointer<T>? = nil
  ) throws {
    precondition((weight == nil) == (dWeight == nil), "W_a and its gradient come together")
    (self.hiddenSize, self.batchSize, self.maxSourceSteps, self.maxTargetSteps) = (
      hiddenSize, batchSize, maxSourceSteps, maxTargetSteps
    )
    (self.weight, self.dWeight) = (weight, dWeight)
    let (h, n) = (hiddenSize, batchSize)
    keys = try Buffer(count: weight == nil ? 0 : maxSourceSteps * n * h)
    weights = try Buffer(count: n * maxTargetSteps * maxSourceSteps)
    dScores = try Buffer(count: n * maxTargetSteps * maxSourceSteps)
    context = try Buffer(count: maxTargetSteps * n * h)
    dQuery = try Buffer(count: maxTargetSteps * n * h)
    dSource = try Buffer(count: maxSourceSteps * n * h)
    dKeys = try Buffer(count: maxSourceSteps * n * h)
    lengths = [Int](repeating: 1, count: n)
  }

  /// Attends from `query` (targetSteps·N, H) over `source` (sourceSteps·N, H), sequence n's real
  /// steps being 0..<sourceLengths[n]; writes ``weights`` and ``context``. Both inputs must stay
  /// unchanged until ``backward(dContext:)``.
  package func forward(
    query: UnsafePointer<T>, targetSteps: Int, source: UnsafePointer<T>, sourceSteps: Int, sourceLengths: [Int]
  ) {
    precondition(targetSteps >= 1 && targetSteps <= maxTargetSteps, "target steps \(targetSteps)")
    precondition(sourceSteps >= 1 && sourceSteps <= maxSourceSteps, "source steps \(sourceSteps)")
    precondition(sourceLengths.count == batchSize, "one source length per sequence")
    (self.query, self.source, self.targetSteps, self.sourceSteps) = (query, source, targetSteps, sourceSteps)
    for r in 0..<batchSize {
      precondition(sourceLengths[r] >= 1 && sourceLengths[r] <= sourceSteps, "source length \(sourceLengths[r])")
      lengths[r] = sourceLengths[r]
    }
    let (h, n, tt, ts) = (hiddenSize, batchSize, targetSteps, sourceSteps)
    let k = keyPointer()
    for r in 0..<n {
      let scores = weights.pointer + r * tt * ts
      gemm(
        transposeB: true, m: tt, n: ts, k: h, a: query + r * h, lda: n * h, b: k + r * h, ldb: n * h, c: scores,
        ldc: ts)
      // Softmax over the real source steps; the padded ones get weight 0.
      let len = lengths[r]
      for t in 0..<tt {
        let row = scores + t * ts
        var m = row[0]
        for s in 1..<len where row[s] > m { m = row[s] }
        var sum = 0.0
        for s in 0..<len {
          let e = Foundation.exp(Double(row[s] - m))
          row[s] = T(e)
          sum += e
        }
        let scale = T(1 / sum)
        for s in 0..<len { row[s] *= scale }
        for s in len..<ts { row[s] = 0 }
      }
      gemm(
        m: tt, n: h, k: ts, a: scores, lda: ts, b: source + r * h, ldb: n * h, c: context.pointer + r * h, ldc: n * h)
    }
  }

  /// The keys the scores use: W_a h_s (one product over all source rows) or h_s itself.
  private func keyPointer() -> UnsafePointer<T> {
    guard let weight, let source else { return source! }
    let (h, rows) = (hiddenSize, batchSize * sourceSteps)
    gemm(transposeB: true, m: rows, n: h, k: h, a: source, lda: h, b: weight, ldb: h, c: keys.pointer, ldc: h)
    return UnsafePointer(keys.pointer)
  }

  /// Backpropagates `dContext` (targetSteps·N, H): writes ``dQuery`` and ``dSource`` (zero at
  /// padded source steps) and adds into W_a's gradient.
  package func backward(dContext: UnsafePointer<T>) {
    guard let query, let source else { preconditionFailure("backward before forward") }
    let (h, n, tt, ts) = (hiddenSize, batchSize, targetSteps, sourceSteps)
    let k = weight == nil ? source : UnsafePointer(keys.pointer)
    let dK = weight == nil ? dSource.pointer : dKeys.pointer
    for r in 0..<n {
      let a = weights.pointer + r * tt * ts
      let ds = dScores.pointer + r * tt * ts
      let dc = dContext + r * h
      // dA = dC·Vᵀ, then the softmax's backward in place: dS = A ⊙ (dA − Σ_s A ⊙ dA).
      gemm(transposeB: true, m: tt, n: ts, k: h, a: dc, lda: n * h, b: source + r * h, ldb: n * h, c: ds, ldc: ts)
      for t in 0..<tt {
        var dot = T(0)
        for s in 0..<ts { dot += a[t * ts + s] * ds[t * ts + s] }
        for s in 0..<ts { ds[t * ts + s] = a[t * ts + s] * (ds[t * ts + s] - dot) }
      }
      gemm(m: tt, n: h, k: ts, a: ds, lda: ts, b: k + r * h, ldb: n * h, c: dQuery.pointer + r * h, ldc: n * h)
      // dK = dSᵀ·Q (into dSource itself for the dot score, whose keys are the values).
      gemm(
        transposeA: true, m: ts, n: h, k: tt, a: ds, lda: ts, b: query + r * h, ldb: n * h, c: dK + r * h, ldc: n * h)
    }
    if let weight, let dWeight {
      let rows = n * ts
      gemm(
        transposeA: true, m: h, n: h, k: rows, a: dKeys.pointer, lda: h, b: source, ldb: h, beta: 1, c: dWeight, ldc: h)
      gemm(m: rows, n: h, k: h, a: dKeys.pointer, lda: h, b: weight, ldb: h, c: dSource.pointer, ldc: h)
    }
    // dV = Aᵀ·dC, added to what the keys gave.
    for r in 0..<n {
      gemm(
        transposeA: true, m: ts, n: h, k: tt, a: weights.pointer + r * tt * ts, lda: ts, b: dContext + r * h,
        ldb: n * h, beta: 1, c: dSource.pointer + r * h, ldc: n * h)
    }
  }
}
