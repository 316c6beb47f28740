import Foundation

/// The sizes of an adaptive softmax: a head over the shortlist's words plus one entry per tail
/// cluster, and each cluster's projection.
public struct AdaptiveSoftmaxShape: Sendable, Equatable {
  /// Where each part begins, and V at the end: `[0, c₁, …, c_k, V]`; part 0 is the head's
  /// shortlist, part i + 1 is tail cluster i.
  public let bounds: [Int]
  /// Tail cluster i's projection size hᵢ = ⌊H / divⁱ⁺¹⌋.
  public let projections: [Int]

  /// The shape for `cutoffs` (increasing, each in 1 ..< V) over inputs of size `inputSize`.
  public init(cutoffs: [Int], vocabularySize: Int, inputSize: Int, division: Double) {
    bounds = [0] + cutoffs + [vocabularySize]
    projections = cutoffs.indices.map { i in
      Int((Double(inputSize) / Foundation.pow(division, Double(i + 1))).rounded(.down))
    }
  }

  /// The number of words the head scores directly, c₁.
  public var shortlist: Int { bounds[1] }
  /// The number of tail clusters k.
  public var clusters: Int { bounds.count - 2 }
  /// The head's width, c₁ + k.
  public var headSize: Int { shortlist + clusters }
  /// The number of words of tail cluster i.
  public func clusterSize(_ i: Int) -> Int { bounds[i + 2] - bounds[i + 1] }
  /// The tail cluster of `word`, or nil when the head scores it.
  @inline(__always)
  public func cluster(of word: Int) -> Int? {
    if word < bounds[1] { return nil }
    var i = 0
    while word >= bounds[i + 2] { i += 1 }
    return i
  }
  /// The rows of one tail chunk of cluster i: as many as keep its scores within `limit`
  /// elements, at most `maxRows`.
  public func chunkRows(_ i: Int, maxRows: Int, limit: Int = tailChunkLimit) -> Int {
    max(1, min(maxRows, limit / clusterSize(i)))
  }
  /// The largest number of scores a tail chunk holds, by default.
  public static let tailChunkLimit = 1 << 21
  /// What the tail chunks' buffers must hold for batches of up to `maxRows` rows: the most rows
  /// of any cluster's chunk, and the most scores (rows × cluster size) of any.
  public func tailChunkCapacity(maxRows: Int, limit: Int = tailChunkLimit) -> (rows: Int, scores: Int) {
    let rows = (0..<clusters).map { chunkRows($0, maxRows: maxRows, limit: limit) }
    return (rows.max() ?? 1, zip(rows, (0..<clusters).map(clusterSize)).map { $0 * $1 }.max() ?? 1)
  }
  /// Elements of the tail chunks' buffers (rows, their projections, their scores) for batches
  /// of up to `maxRows` rows.
  public func tailScratchElements(inputSize h: Int, maxRows: Int, limit: Int = tailChunkLimit) -> Int {
    let capacity = tailChunkCapacity(maxRows: maxRows, limit: limit)
    return capacity.rows * (h + (projections.max() ?? 1)) + capacity.scores
  }
  /// Multiply-adds per row of a forward pass when every row is scored by the head and a
  /// `fraction[i]` of the rows by tail cluster i.
  public func multiplyAdds(inputSize h: Int, fractions: [Double]) -> Double {
    var total = Double(headSize * h)
    for i in 0..<clusters {
      total += fractions[i] * Double(projections[i] * (h + clusterSize(i)))
    }
    return total
  }
}

/// The adaptive softmax and its loss (Grave et al. 2017, "Efficient softmax approximation for
/// GPUs") as PyTorch's `nn.AdaptiveLogSoftmaxWithLoss(H, V, cutoffs, div_value, head_bias=True)`
/// defines it.
///
/// The head scores words 0 ..< c₁ and one entry per tail cluster; word w of cluster i has
/// `log p(w) = log softmax(head)[c₁ + i] + log softmax(tailᵢ)[w − cᵢ]`, with
/// `tailᵢ = (x · Pᵢᵀ) · Oᵢᵀ`. The probabilities are normalised exactly over all V words, so a
/// perplexity compares with the full softmax's.
///
/// Only the rows whose target falls in cluster i go through it: they are gathered, projected,
/// scored and their input gradients scattered back. A cluster's rows go in chunks small enough
/// that a chunk's scores stay within ``tailChunkElements`` elements, however large the cluster.
/// Forward and backward are one call, as for ``TimeSoftmaxWithLoss``: the layer ends the model.
package final class TimeAdaptiveSoftmax<T: BLASScalar> {
  /// The sizes.
  package let shape: AdaptiveSoftmaxShape
  /// Input size H.
  package let inputSize: Int
  /// Largest number of rows.
  package let maxRows: Int
  /// The most scores a tail chunk holds (rows × cluster size).
  package let tailChunkElements: Int

  /// The head's word rows (c₁, H) — the embedding's first c₁ rows when tied — its cluster rows
  /// (k, H) and its bias (c₁ + k); views into the parameter buffer, and their gradients.
  private let headWords, headClusters, headBias: UnsafeMutablePointer<T>
  private let dHeadWords, dHeadClusters, dHeadBias: UnsafeMutablePointer<T>
  /// Tail cluster i's projection Pᵢ (hᵢ, H) and output Oᵢ (|cluster i|, hᵢ) — with tied tails
  /// the embedding's rows cᵢ ..< cᵢ₊₁ — and their gradients.
  private let projections, outputs, dProjections, dOutputs: [UnsafeMutablePointer<T>]

  /// headScores: (rows, c₁ + k) the head's scores, replaced by their gradient in training.
  private let headScores: Buffer<T>
  /// dInput: (rows, H) the gradient of the mean loss with respect to the input, written by
  /// ``loss(input:targets:rows:gradient:)`` with `gradient`.
  package let dInput: Buffer<T>
  /// gathered: (chunk, H) a tail chunk's input rows, then their input gradient.
  private let gathered: Buffer<T>
  /// projected: (chunk, max hᵢ) a chunk's projections, then their gradient.
  private let projected: Buffer<T>
  /// tailScores: (chunk, |cluster i|) a chunk's scores, then their gradient.
  private let tailScores: Buffer<T>
  /// logProbabilities: (rows, V), allocated by the first ``logProbabilities(input:rows:)``.
  private var fullLogProbabilities: Buffer<T>?
  /// headTargets: (rows) each row's head entry (its word or its cluster's); rowOrder: (rows) the
  /// rows grouped by cluster; localTargets: (chunk) a chunk's words within their cluster.
  private var headTargets: [Int32], rowOrder: [Int32], localTargets: [Int32]
  /// clusterStarts: (k + 1) where each cluster's rows begin in rowOrder; clusterNext: (k + 1)
  /// the counting sort's cursors. Kept, so that a pass allocates nothing.
  private var clusterStarts: [Int], clusterNext: [Int]

  /// A layer for up to `maxRows` rows over the views of `parameters` that ``ModelConfig``'s
  /// layout names `decoder.*`; with `tied`, the head's word rows are `encoder.weight`'s first c₁
  /// rows, otherwise `decoder.head.weight`'s; with `tiedTails` (tied, every hᵢ = H), tail
  /// cluster i's output rows are `encoder.weight`'s rows cᵢ ..< cᵢ₊₁.
  package init(
    shape: AdaptiveSoftmaxShape, inputSize: Int, maxRows: Int, parameters p: ParameterStore<T>, tied: Bool,
    tiedTails: Bool = false, scratch: ScratchPool<T> = ScratchPool(),
    tailChunkElements: Int = AdaptiveSoftmaxShape.tailChunkLimit
  ) throws {
    self.shape = shape
    self.inputSize = inputSize
    self.maxRows = maxRows
    self.tailChunkElements = tailChunkElements
    let h = inputSize
    let words = tied ? "encoder.weight" : "decoder.head.weight"
    headWords = p.value(words)
    dHeadWords = p.gradient(words)
    headClusters = tied ? p.value("decoder.head_clusters.weight") : headWords + shape.shortlist * h
    dHeadClusters = tied ? p.gradient("decoder.head_clusters.weight") : dHeadWords + shape.shortlist * h
    headBias = p.value("decoder.head.bias")
    dHeadBias = p.gradient("decoder.head.bias")
    projections = (0..<shape.clusters).map { p.value("decoder.tail.\($0).0.weight") }
    dProjections = (0..<shape.clusters).map { p.gradient("decoder.tail.\($0).0.weight") }
    if tiedTails {
      precondition(tied && shape.projections.allSatisfy { $0 == h }, "tied tails need a tied model and hᵢ = H")
      outputs = (0..<shape.clusters).map { p.value("encoder.weight") + shape.bounds[$0 + 1] * h }
      dOutputs = (0..<shape.clusters).map { p.gradient("encoder.weight") + shape.bounds[$0 + 1] * h }
    } else {
      outputs = (0..<shape.clusters).map { p.value("decoder.tail.\($0).1.weight") }
      dOutputs = (0..<shape.clusters).map { p.gradient("decoder.tail.\($0).1.weight") }
    }
    let (chunk, widest) = shape.tailChunkCapacity(maxRows: maxRows, limit: tailChunkElements)
    headScores = try scratch.buffer("decoder.headScores", count: maxRows * shape.headSize)
    dInput = try scratch.buffer("decoder.dInput", count: maxRows * h)
    gathered = try scratch.buffer("decoder.gathered", count: chunk * h)
    projected = try scratch.buffer("decoder.projected", count: chunk * (shape.projections.max() ?? 1))
    tailScores = try scratch.buffer("decoder.tailScores", count: widest)
    headTargets = [Int32](repeating: 0, count: maxRows)
    rowOrder = [Int32](repeating: 0, count: maxRows)
    localTargets = [Int32](repeating: 0, count: chunk)
    clusterStarts = [Int](repeating: 0, count: shape.clusters + 1)
    clusterNext = clusterStarts
  }

  /// headScores = input · [headWords; headClusters]ᵀ + headBias for `rows` rows.
  private func scoreHead(_ x: UnsafePointer<T>, rows: Int) {
    let (h, c1, k, hs) = (inputSize, shape.shortlist, shape.clusters, shape.headSize)
    let s = headScores.pointer
    for r in 0..<rows { (s + r * hs).update(from: headBias, count: hs) }
    gemm(transposeB: true, m: rows, n: c1, k: h, a: x, lda: h, b: headWords, ldb: h, beta: 1, c: s, ldc: hs)
    gemm(transposeB: true, m: rows, n: k, k: h, a: x, lda: h, b: headClusters, ldb: h, beta: 1, c: s + c1, ldc: hs)
  }

  /// Returns the SUM over `rows` rows of −log p(targets[r] | input[r]) (natural log). With
  /// `gradient`, ADDS the gradients of the MEAN loss into the parameters' gradient buffer and
  /// writes the input's into ``dInput``.
  /// - Parameters:
  ///   - input: (rows, H), the top layer's output.
  ///   - targets: (rows) word ids in 0 ..< V, ordered by frequency.
  package func loss(input x: UnsafePointer<T>, targets: UnsafePointer<Int32>, rows: Int, gradient: Bool) -> Double {
    precondition(rows <= maxRows, "batch of \(rows) rows exceeds the \(maxRows) allocated")
    let (h, c1, k, hs) = (inputSize, shape.shortlist, shape.clusters, shape.headSize)
    let v = shape.bounds[k + 1]
    let scale: T = gradient ? 1 / T(rows) : 0
    scoreHead(x, rows: rows)
    // Each row's head entry, and the rows grouped by cluster (a counting sort).
    for i in 0...k { clusterStarts[i] = 0 }
    for r in 0..<rows {
      let t = Int(targets[r])
      precondition(t >= 0 && t < v, "target \(t) outside 0..<\(v)")
      if let i = shape.cluster(of: t) {
        headTargets[r] = Int32(c1 + i)
        clusterStarts[i + 1] += 1
      } else {
        headTargets[r] = Int32(t)
      }
    }
    for i in 0..<k { clusterStarts[i + 1] += clusterStarts[i] }
    for i in 0...k { clusterNext[i] = clusterStarts[i] }
    for r in 0..<rows where headTargets[r] >= c1 {
      let i = Int(headTargets[r]) - c1
      rowOrder[clusterNext[i]] = Int32(r)
      clusterNext[i] += 1
    }
    let s = headScores.pointer
    var total = headTargets.withUnsafeBufferPointer { T._softmaxCrossEntropy(rows, hs, s, $0.baseAddress!, scale) }
    if gradient {
      gemm(transposeA: true, m: c1, n: h, k: rows, a: s, lda: hs, b: x, ldb: h, beta: 1, c: dHeadWords, ldc: h)
      gemm(transposeA: true, m: k, n: h, k: rows, a: s + c1, lda: hs, b: x, ldb: h, beta: 1, c: dHeadClusters, ldc: h)
      T._addColumnSums(rows, hs, s, dHeadBias)
      gemm(m: rows, n: h, k: c1, a: s, lda: hs, b: headWords, ldb: h, c: dInput.pointer, ldc: h)
      gemm(m: rows, n: h, k: k, a: s + c1, lda: hs, b: headClusters, ldb: h, beta: 1, c: dInput.pointer, ldc: h)
    }
    for i in 0..<k {
      let (p, o, first) = (shape.projections[i], shape.clusterSize(i), shape.bounds[i + 1])
      let chunk = shape.chunkRows(i, maxRows: maxRows, limit: tailChunkElements)
      var begin = clusterStarts[i]
      while begin < clusterStarts[i + 1] {
        let n = min(chunk, clusterStarts[i + 1] - begin)
        for j in 0..<n {
          let r = Int(rowOrder[begin + j])
          (gathered.pointer + j * h).update(from: x + r * h, count: h)
          localTargets[j] = targets[r] - Int32(first)
        }
        total += tail(i, rows: n, projection: p, size: o, scale: scale, gradient: gradient)
        if gradient {
          for j in 0..<n {
            T._axpy(h, 1, gathered.pointer + j * h, dInput.pointer + Int(rowOrder[begin + j]) * h)
          }
        }
        begin += n
      }
    }
    return total
  }

  /// Cluster i's loss over the `rows` gathered rows (their targets in ``localTargets``); with
  /// `gradient`, adds Pᵢ's and Oᵢ's gradients and leaves the rows' input gradient in ``gathered``.
  private func tail(_ i: Int, rows n: Int, projection p: Int, size o: Int, scale: T, gradient: Bool) -> Double {
    let h = inputSize
    let (x, z, s) = (gathered.pointer, projected.pointer, tailScores.pointer)
    gemm(transposeB: true, m: n, n: p, k: h, a: x, lda: h, b: projections[i], ldb: h, c: z, ldc: p)
    gemm(transposeB: true, m: n, n: o, k: p, a: z, lda: p, b: outputs[i], ldb: p, c: s, ldc: o)
    let loss = localTargets.withUnsafeBufferPointer { T._softmaxCrossEntropy(n, o, s, $0.baseAddress!, scale) }
    guard gradient else { return loss }
    // dOᵢ += dSᵀ·z; dz = dS·Oᵢ (over z, used no more); dPᵢ += dzᵀ·x; dx = dz·Pᵢ (over x).
    gemm(transposeA: true, m: o, n: p, k: n, a: s, lda: o, b: z, ldb: p, beta: 1, c: dOutputs[i], ldc: p)
    gemm(m: n, n: p, k: o, a: s, lda: o, b: outputs[i], ldb: p, c: z, ldc: p)
    gemm(transposeA: true, m: p, n: h, k: n, a: z, lda: p, b: x, ldb: h, beta: 1, c: dProjections[i], ldc: h)
    gemm(m: n, n: h, k: p, a: z, lda: p, b: projections[i], ldb: h, c: x, ldc: h)
    return loss
  }

  /// The log-probability of every word for each of `rows` input rows: (rows, V), valid until the
  /// next call. Every row's exponentials add up to 1. For generation and checks: it computes
  /// every cluster for every row.
  package func logProbabilities(input x: UnsafePointer<T>, rows: Int) throws -> UnsafeMutablePointer<T> {
    precondition(rows <= maxRows, "batch of \(rows) rows exceeds the \(maxRows) allocated")
    let (h, c1, k, hs) = (inputSize, shape.shortlist, shape.clusters, shape.headSize)
    let v = shape.bounds[k + 1]
    if fullLogProbabilities == nil || fullLogProbabilities!.count < rows * v {
      fullLogProbabilities = try Buffer<T>(count: rows * v)
    }
    let out = fullLogProbabilities!.pointer
    scoreHead(x, rows: rows)
    let s = headScores.pointer
    for r in 0..<rows {
      logSoftmax(s + r * hs, count: hs)
      (out + r * v).update(from: s + r * hs, count: c1)
    }
    for i in 0..<k {
      let (p, o, first) = (shape.projections[i], shape.clusterSize(i), shape.bounds[i + 1])
      let chunk = shape.chunkRows(i, maxRows: maxRows, limit: tailChunkElements)
      var begin = 0
      while begin < rows {
        let n = min(chunk, rows - begin)
        gemm(
          transposeB: true, m: n, n: p, k: h, a: x + begin * h, lda: h, b: projections[i], ldb: h,
          c: projected.pointer, ldc: p)
        gemm(
          transposeB: true, m: n, n: o, k: p, a: projected.pointer, lda: p, b: outputs[i], ldb: p,
          c: tailScores.pointer, ldc: o)
        for j in 0..<n {
          let row = tailScores.pointer + j * o
          logSoftmax(row, count: o)
          let clusterLogProbability = s[(begin + j) * hs + c1 + i]
          let target = out + (begin + j) * v + first
          for w in 0..<o { target[w] = row[w] + clusterLogProbability }
        }
        begin += n
      }
    }
    return out
  }

  /// Replaces `count` scores by their log-softmax, accumulated in Double.
  private func logSoftmax(_ x: UnsafeMutablePointer<T>, count: Int) {
    var m = x[0]
    for j in 1..<count where x[j] > m { m = x[j] }
    var sum = 0.0
    for j in 0..<count { sum += Foundation.exp(Double(x[j] - m)) }
    let shift = m + T(Foundation.log(sum))
    for j in 0..<count { x[j] -= shift }
  }
}
