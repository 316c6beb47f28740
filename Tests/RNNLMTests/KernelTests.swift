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

  /// The float LSTM time loops, in every variant this CPU runs (portable, AVX2, AVX-512), agree
  /// with the double loop (which the gradient checks cover). h = 37 has remainder columns and k-tails.
  @Test func floatLSTMLoopsMatchDouble() {
    var g = SeededGenerator(seed: 3)
    let (steps, n, h) = (4, 3, 37)
    let w = randomArray(4 * h * h, scale: 0.3, &g)
    let a0 = randomArray(steps * n * 4 * h, &g)
    let h0 = randomArray(n * h, &g) + [Double](repeating: 0, count: steps * n * h)
    let c0 = randomArray(n * h, &g) + [Double](repeating: 0, count: steps * n * h)
    let dhOut = randomArray(steps * n * h, &g)
    var ad = a0
    var hd = h0
    var cd = c0
    var td = [Double](repeating: 0, count: steps * n * h)
    rl_lstm_forward_loop_d(Int32(steps), Int32(n), Int32(h), w, &ad, &hd, &cd, &td)
    var dhd = [Double](repeating: 0, count: n * h)
    var dcd = dhd
    var dad = ad
    rl_lstm_backward_loop_d(Int32(steps), Int32(n), Int32(h), w, &dad, cd, td, dhOut, &dhd, &dcd)

    for level in 0...rl_kernels_level() {
      var af = a0.map(Float.init)
      var hf = h0.map(Float.init)
      var cf = c0.map(Float.init)
      var tf = [Float](repeating: 0, count: steps * n * h)
      let wf = w.map(Float.init)
      _ = rl_test_lstm_forward_loop_f(level, 2, Int32(steps), Int32(n), Int32(h), wf, &af, &hf, &cf, &tf)
      expectClose(af, ad.map(Float.init), tolerance: 1e-5, "gate activations, level \(level)")
      expectClose(hf, hd.map(Float.init), tolerance: 1e-5, "h, level \(level)")
      expectClose(cf, cd.map(Float.init), tolerance: 2e-5, "c, level \(level)")
      var dhf = [Float](repeating: 0, count: n * h)
      var dcf = dhf
      var daf = af
      _ = rl_test_lstm_backward_loop_f(
        level, 2, Int32(steps), Int32(n), Int32(h), wf, &daf, cf, tf, dhOut.map(Float.init), &dhf, &dcf)
      expectClose(daf, dad.map(Float.init), tolerance: 5e-5, "dA, level \(level)")
      expectClose(dcf, dcd.map(Float.init), tolerance: 5e-5, "dc, level \(level)")
    }
  }

  /// The loops' matrix products in every variant against the naive product, on shapes with
  /// remainder rows, remainder columns and k-tails, with padded leading dimensions; the "set"
  /// product must ignore what C held (NaN here).
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
    for level in 0...rl_kernels_level() {
      var nt = c0
      rl_test_small_gemm_nt_add_f(level, Int32(m), Int32(n), Int32(k), a, Int32(lda), bT, Int32(ldb), &nt, Int32(ldc))
      var nn = c0
      for i in 0..<m { for j in 0..<n { nn[i * ldc + j] = .nan } }
      rl_test_small_gemm_nn_f(level, Int32(m), Int32(n), Int32(k), a, Int32(lda), b, Int32(ldb), &nn, Int32(ldc))
      let scale = Double(k).squareRoot()
      expectClose(
        nt.map { Double($0) / scale }, ntExpected.map { Double($0) / scale }, tolerance: 1e-5, "nt level \(level)")
      expectClose(
        nn.map { Double($0) / scale }, nnExpected.map { Double($0) / scale }, tolerance: 1e-5, "nn level \(level)")
      // Padding columns of C stay untouched.
      for i in 0..<m {
        for j in n..<ldc {
          #expect(nt[i * ldc + j] == c0[i * ldc + j] && nn[i * ldc + j] == c0[i * ldc + j], "padding written")
        }
      }
    }
  }

  /// Splitting the hidden units between threads changes nothing: the loops' results on two
  /// threads are bit for bit those on one.
  @Test func loopsDoNotDependOnThreadCount() throws {
    if rl_threads() < 2 { rl_set_threads(2) }
    var g = SeededGenerator(seed: 11)
    let (steps, n, h) = (5, 4, 53)
    let w = randomArray(4 * h * h, scale: 0.3, &g).map(Float.init)
    let a0 = randomArray(steps * n * 4 * h, &g).map(Float.init)
    let h0 = randomArray(n * h, &g).map(Float.init) + [Float](repeating: 0, count: steps * n * h)
    let c0 = randomArray(n * h, &g).map(Float.init) + [Float](repeating: 0, count: steps * n * h)
    let dhOut = randomArray(steps * n * h, &g).map(Float.init)
    let level = rl_kernels_level()
    func run(threads: Int32) -> (ran: Int32, results: [[Float]]) {
      var a = a0
      var hs = h0
      var cs = c0
      var tanhC = [Float](repeating: 0, count: steps * n * h)
      let ranForward = rl_test_lstm_forward_loop_f(
        level, threads, Int32(steps), Int32(n), Int32(h), w, &a, &hs, &cs, &tanhC)
      var dh = [Float](repeating: 0, count: n * h)
      var dc = dh
      var da = a
      let ranBackward = rl_test_lstm_backward_loop_f(
        level, threads, Int32(steps), Int32(n), Int32(h), w, &da, cs, tanhC, dhOut, &dh, &dc)
      return (min(ranForward, ranBackward), [a, hs, cs, tanhC, dc, da])
    }
    let one = run(threads: 1)
    // Other tests may hold the team for a moment; then a loop runs alone and says so.
    var two = run(threads: 2)
    var attempts = 1
    while two.ran < 2 && attempts < 500 {
      Thread.sleep(forTimeInterval: 0.002)
      two = run(threads: 2)
      attempts += 1
    }
    try #require(two.ran == 2, "never got two threads in \(attempts) attempts")
    for (x, y) in zip(one.results, two.results) {
      #expect(x.map(\.bitPattern) == y.map(\.bitPattern))
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
}
