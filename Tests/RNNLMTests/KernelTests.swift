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

  /// The float LSTM step kernels agree with the double ones (which the gradient checks cover).
  @Test func floatLSTMKernelsMatchDouble() {
    var g = SeededGenerator(seed: 3)
    let (n, h) = (3, 5)
    let a = randomArray(n * 4 * h, scale: 3, &g)
    let cPrev = randomArray(n * h, &g)
    var ad = a
    var cd = [Double](repeating: 0, count: n * h)
    var td = cd
    var hd = cd
    var af = a.map(Float.init)
    var cf = [Float](repeating: 0, count: n * h)
    var tf = cf
    var hf = cf
    rl_lstm_forward_step_d(Int32(n), Int32(h), &ad, cPrev, &cd, &td, &hd)
    rl_lstm_forward_step_f(Int32(n), Int32(h), &af, cPrev.map(Float.init), &cf, &tf, &hf)
    expectClose(af, ad.map(Float.init), tolerance: 2e-6, "gate activations")
    expectClose(hf, hd.map(Float.init), tolerance: 2e-6, "h")
    expectClose(cf, cd.map(Float.init), tolerance: 4e-6, "c")

    let dhOut = randomArray(n * h, &g)
    let dhRec = randomArray(n * h, &g)
    let dc0 = randomArray(n * h, &g)
    var dcd = dc0
    var dad = [Double](repeating: 0, count: n * 4 * h)
    var dcf = dc0.map(Float.init)
    var daf = [Float](repeating: 0, count: n * 4 * h)
    rl_lstm_backward_step_d(Int32(n), Int32(h), ad, cPrev, td, dhOut, dhRec, &dcd, &dad)
    rl_lstm_backward_step_f(
      Int32(n), Int32(h), af, cPrev.map(Float.init), tf, dhOut.map(Float.init), dhRec.map(Float.init), &dcf, &daf)
    expectClose(daf, dad.map(Float.init), tolerance: 1e-5, "dA")
    expectClose(dcf, dcd.map(Float.init), tolerance: 1e-5, "dc")
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
