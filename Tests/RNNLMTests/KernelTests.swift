import CKernels
import Foundation
import Testing

@testable import RNNLM

@Suite struct KernelTests {
  /// Inputs covering the whole float range the kernels see, plus the extremes.
  static let inputs: [Float] = {
    var xs: [Float] = [0, -0.0, 1e-30, -1e-30, 1e-7, -1e-7, 88.3, -87.3, 100, -100, 1e4, -1e4, .infinity, -.infinity]
    var x: Float = -90
    while x <= 90 {
      xs.append(x)
      x += 0.00731
    }
    return xs
  }()

  /// exp: relative error ≤ 4e-7 (about 3 ulp) on [-87.3, 88.3] against libm in double.
  @Test func expMatchesLibm() {
    let xs = Self.inputs.filter { $0 >= -87.3 && $0 <= 88.3 }
    var ys = [Float](repeating: 0, count: xs.count)
    rl_exp_f(xs.count, xs, &ys)
    var worst = 0.0
    for (x, y) in zip(xs, ys) {
      let exact = Foundation.exp(Double(x))
      worst = max(worst, abs(Double(y) - exact) / exact)
    }
    print("exp: largest relative error \(worst) over \(xs.count) inputs")
    #expect(worst <= 4e-7)
  }

  /// tanh and sigmoid: absolute error ≤ 1e-6 everywhere, exact saturation, NaN propagates.
  @Test func tanhAndSigmoidMatchLibm() {
    let xs = Self.inputs + [.nan]
    var t = [Float](repeating: 0, count: xs.count)
    var s = t
    rl_tanh_f(xs.count, xs, &t)
    rl_sigmoid_f(xs.count, xs, &s)
    var worstT = 0.0
    var worstS = 0.0
    for i in 0..<(xs.count - 1) {
      worstT = max(worstT, abs(Double(t[i]) - Foundation.tanh(Double(xs[i]))))
      worstS = max(worstS, abs(Double(s[i]) - 1 / (1 + Foundation.exp(-Double(xs[i])))))
    }
    print("tanh: largest absolute error \(worstT); sigmoid: \(worstS)")
    #expect(worstT <= 1e-6)
    #expect(worstS <= 1e-6)
    #expect(t.last!.isNaN && s.last!.isNaN, "NaN must propagate, got tanh \(t.last!) sigmoid \(s.last!)")
    var e: [Float] = [0]
    rl_exp_f(1, [Float.nan], &e)
    #expect(e[0].isNaN)
  }

  /// The loops' matrix products in every variant against the naive product, on shapes with
  /// remainder rows, remainder columns and k-tails, with padded leading dimensions; the "set"
  /// product must ignore what C held (NaN here), the "add" product add to it.
  @Test(arguments: [(1, 1, 1), (5, 16, 16), (7, 37, 45), (20, 70, 130), (11, 129, 33)])
  func smallGemmsMatchNaive(shape: (Int, Int, Int)) {
    let (m, n, k) = shape
    var g = SeededGenerator(seed: UInt64(m * 1000 + n * 10 + k))
    let (lda, ldb, ldc) = (k + 3, max(n, k) + 5, n + 2)
    let a = randomArray(m * lda, &g).map(Float.init)
    let bT = randomArray(n * ldb, &g).map(Float.init)  // (n, k) for nt
    let b = randomArray(k * ldb, &g).map(Float.init)  // (k, n) for nn
    let c0 = randomArray(m * ldc, &g).map(Float.init)
    var ntExpected = c0
    naiveGemm(
      transposeB: true, m: m, n: n, k: k, a: a, lda: lda, b: bT, ldb: ldb, beta: 1, c: &ntExpected, ldc: ldc)
    var nnExpected = c0
    naiveGemm(m: m, n: n, k: k, a: a, lda: lda, b: b, ldb: ldb, c: &nnExpected, ldc: ldc)
    var nnAddExpected = c0
    naiveGemm(m: m, n: n, k: k, a: a, lda: lda, b: b, ldb: ldb, beta: 1, c: &nnAddExpected, ldc: ldc)
    for level in 0...rl_kernels_level() {
      var nt = c0
      rl_test_small_gemm_nt_add_f(level, Int32(m), Int32(n), Int32(k), a, Int32(lda), bT, Int32(ldb), &nt, Int32(ldc))
      var nn = c0
      for i in 0..<m { for j in 0..<n { nn[i * ldc + j] = .nan } }
      rl_test_small_gemm_nn_f(level, 0, Int32(m), Int32(n), Int32(k), a, Int32(lda), b, Int32(ldb), &nn, Int32(ldc))
      var nnAdd = c0
      rl_test_small_gemm_nn_f(level, 1, Int32(m), Int32(n), Int32(k), a, Int32(lda), b, Int32(ldb), &nnAdd, Int32(ldc))
      let scale = Double(k).squareRoot()
      expectClose(
        nt.map { Double($0) / scale }, ntExpected.map { Double($0) / scale }, tolerance: 1e-5, "nt level \(level)")
      expectClose(
        nn.map { Double($0) / scale }, nnExpected.map { Double($0) / scale }, tolerance: 1e-5, "nn level \(level)")
      expectClose(
        nnAdd.map { Double($0) / scale }, nnAddExpected.map { Double($0) / scale }, tolerance: 1e-5,
        "nn add level \(level)")
      // Padding columns of C stay untouched.
      for i in 0..<m {
        for j in n..<ldc {
          #expect(
            nt[i * ldc + j] == c0[i * ldc + j] && nn[i * ldc + j] == c0[i * ldc + j]
              && nnAdd[i * ldc + j] == c0[i * ldc + j], "padding written")
        }
      }
    }
  }

  /// Huge logits: the loss stays finite and equals the exact value; the gradient is finite.
  @Test func softmaxIsStableForLargeLogits() {
    var scores: [Float] = [1e4, 0, -1e4, 1e4 - 1, 5e3, -5e3]
    let targets: [Int32] = [1, 0]
    let total = scores.withUnsafeMutableBufferPointer { s in
      TimeSoftmaxWithLoss.loss(scores: s.baseAddress!, targets: targets, rows: 2, classes: 3, gradient: true)
    }
    // Row 0: -log softmax[1] = 1e4 (exactly, up to e^-1e4). Row 1: -log softmax[0] = log(1 + e^-(1e4-1-5e3) + ...) ≈ 0.
    #expect(total.isFinite)
    #expect(abs(total - 1e4) < 1e-2, "summed loss \(total), expected 1e4")
    #expect(scores.allSatisfy { $0.isFinite }, "gradient \(scores)")
    // Gradient rows sum to zero and equal (softmax - onehot)/2.
    #expect(abs(scores[0] - 0.5) < 1e-6 && abs(scores[1] + 0.5) < 1e-6 && abs(scores[2]) < 1e-6)
  }

  /// Softmax with loss against a direct double computation, several rows of odd length.
  @Test func softmaxMatchesDirectComputation() {
    var g = SeededGenerator(seed: 5)
    let (rows, v) = (4, 13)
    let x = randomArray(rows * v, scale: 4, &g)
    let targets: [Int32] = [0, 12, 5, 7]
    var expectedLoss = 0.0
    var expectedGrad = [Double](repeating: 0, count: rows * v)
    for r in 0..<rows {
      let row = x[(r * v)..<((r + 1) * v)]
      let z = row.map { Foundation.exp($0) }.reduce(0, +)
      expectedLoss += Foundation.log(z) - x[r * v + Int(targets[r])]
      for j in 0..<v {
        expectedGrad[r * v + j] = (Foundation.exp(x[r * v + j]) / z - (j == Int(targets[r]) ? 1 : 0)) / Double(rows)
      }
    }
    var xf = x.map(Float.init)
    let loss = xf.withUnsafeMutableBufferPointer {
      TimeSoftmaxWithLoss.loss(scores: $0.baseAddress!, targets: targets, rows: rows, classes: v, gradient: true)
    }
    #expect(abs(loss - expectedLoss) < 1e-4 * expectedLoss, "loss \(loss) vs \(expectedLoss)")
    expectClose(xf, expectedGrad.map(Float.init), tolerance: 1e-6, "softmax gradient")
  }

  @Test func sumOfSquaresAndColumnSums() {
    let x: [Float] = (0..<37).map { Float($0) - 18 }
    let expected = x.reduce(0.0) { $0 + Double($1) * Double($1) }
    #expect(rl_sum_squares_f(37, x) == expected)
    var out: [Float] = [1, 2, 3]
    rl_column_sums_add_f(2, 3, [1, 2, 3, 4, 5, 6], &out)
    #expect(out == [6, 9, 12])
  }

  /// The passes split over the team (softmax rows, bias-gradient columns, blocks of the
  /// sum of squares and of the SGD step) against plain loops, at sizes with remainders in every
  /// split, so that a row, column or block processed twice or not at all shows.
  @Test func teamPassesMatchPlainLoops() {
    var g = SeededGenerator(seed: 9)
    let (rows, v) = (1003, 517)
    let x = randomArray(rows * v, scale: 3, &g)
    let targets = (0..<rows).map { Int32($0 * 7 % v) }
    var expectedLoss = 0.0
    var expectedGrad = [Double](repeating: 0, count: rows * v)
    var columns = [Double](repeating: 0, count: v)
    for r in 0..<rows {
      let row = x[(r * v)..<((r + 1) * v)]
      let m = row.max()!
      let z = row.map { Foundation.exp($0 - m) }.reduce(0, +)
      expectedLoss += Foundation.log(z) + m - x[r * v + Int(targets[r])]
      for j in 0..<v {
        let d = Foundation.exp(x[r * v + j] - m) / z - (j == Int(targets[r]) ? 1 : 0)
        expectedGrad[r * v + j] = d / Double(rows)
        columns[j] += d / Double(rows)
      }
    }
    var xf = x.map(Float.init)
    let loss = xf.withUnsafeMutableBufferPointer {
      TimeSoftmaxWithLoss.loss(scores: $0.baseAddress!, targets: targets, rows: rows, classes: v, gradient: true)
    }
    #expect(abs(loss - expectedLoss) < 1e-5 * expectedLoss, "loss \(loss) vs \(expectedLoss)")
    expectClose(xf, expectedGrad.map(Float.init), tolerance: 1e-7, "softmax gradient")
    var sums = [Float](repeating: 1, count: v)
    rl_column_sums_add_f(Int32(rows), Int32(v), xf, &sums)
    expectClose(sums, columns.map { Float($0 + 1) }, tolerance: 1e-5, "column sums")

    let n = 300_007
    let a = randomArray(n, &g).map(Float.init)
    var b = randomArray(n, &g).map(Float.init)
    let squares = a.reduce(0.0) { $0 + Double($1) * Double($1) }
    #expect(abs(rl_sum_squares_f(n, a) - squares) < 1e-9 * squares)
    let expected = zip(a, b).map { Double($1) - 0.37 * Double($0) }
    rl_axpy_f(n, -0.37, a, &b)
    let worst = zip(b, expected).reduce(0.0) { max($0, abs(Double($1.0) - $1.1)) }
    #expect(worst < 1e-6, "axpy: largest difference \(worst)")
  }
}
