import CKernels
import Foundation
import Testing

@testable import RNNLM

/// The C time loops of every cell: the double loop against a plain Swift reference step, the float
/// loops in every variant this CPU runs (portable, AVX2, AVX-512) against the double loop, and the
/// same bits on one and two threads. (The gradient checks cover the double backward loops.)
@Suite struct CellLoopTests {
  /// One loop's inputs: W_hh (G·h, h), the GRU's b_hn (h), the input projection A (steps·n, G·h),
  /// the carried state (h, and the LSTM's c), the output gradient (steps·n, h).
  struct Case {
    let cell: RecurrentCell
    let steps: Int, n: Int, h: Int
    let w: [Double], bHN: [Double], a: [Double], state: [[Double]], dhOut: [Double]

    init(_ cell: RecurrentCell, steps: Int, n: Int, h: Int, seed: UInt64) {
      var g = SeededGenerator(seed: seed)
      let gh = cell.gateCount * h
      (self.cell, self.steps, self.n, self.h) = (cell, steps, n, h)
      w = randomArray(gh * h, scale: 0.3, &g)
      bHN = randomArray(h, scale: 0.5, &g)
      a = randomArray(steps * n * gh, &g)
      state = cell.stateNames.map { _ in randomArray(n * h, &g) }
      dhOut = randomArray(steps * n * h, &g)
    }
  }

  static func sigmoid(_ x: Double) -> Double { 1 / (1 + Foundation.exp(-x)) }

  /// h_0 ... h_{T-1} ((steps·n, h)) computed from the formulas, one element at a time.
  static func reference(_ c: Case) -> [Double] {
    let (n, h, gh) = (c.n, c.h, c.cell.gateCount * c.h)
    var hPrev = c.state[0]
    var cPrev = c.cell == .lstm ? c.state[1] : []
    var out: [Double] = []
    for t in 0..<c.steps {
      var hNext = hPrev
      var cNext = cPrev
      for r in 0..<n {
        let a = Array(c.a[((t * n + r) * gh)..<((t * n + r + 1) * gh)])
        let u = (0..<gh).map { k in (0..<h).reduce(0.0) { $0 + c.w[k * h + $1] * hPrev[r * h + $1] } }
        for j in 0..<h {
          let o = r * h + j
          switch c.cell {
          case .lstm:
            let i = sigmoid(a[j] + u[j])
            let f = sigmoid(a[h + j] + u[h + j])
            let gg = Foundation.tanh(a[2 * h + j] + u[2 * h + j])
            let og = sigmoid(a[3 * h + j] + u[3 * h + j])
            cNext[o] = f * cPrev[o] + i * gg
            hNext[o] = og * Foundation.tanh(cNext[o])
          case .gru:
            let rg = sigmoid(a[j] + u[j])
            let z = sigmoid(a[h + j] + u[h + j])
            let nn = Foundation.tanh(a[2 * h + j] + rg * (u[2 * h + j] + c.bHN[j]))
            hNext[o] = (1 - z) * nn + z * hPrev[o]
          case .rnn:
            hNext[o] = Foundation.tanh(a[j] + u[j])
          }
        }
      }
      out += hNext
      (hPrev, cPrev) = (hNext, cNext)
    }
    return out
  }

  /// The double loops: (h outputs, every array the forward and backward loops wrote).
  static func runDouble(_ c: Case) -> (outputs: [Double], arrays: [[Double]]) {
    let (steps, n, h) = (Int32(c.steps), Int32(c.n), Int32(c.h))
    let slots = [Double](repeating: 0, count: c.steps * c.n * c.h)
    var hs = c.state[0] + slots
    var gates = c.a
    var dh = [Double](repeating: 0, count: c.n * c.h)
    switch c.cell {
    case .lstm:
      var cs = c.state[1] + slots
      var tanhC = slots
      rl_lstm_forward_loop_d(steps, n, h, c.w, &gates, &hs, &cs, &tanhC)
      let forward = [gates, hs, cs, tanhC]
      var dc = dh
      rl_lstm_backward_loop_d(steps, n, h, c.w, &gates, cs, tanhC, c.dhOut, nil, &dh, &dc, nil)
      return (Array(hs[(c.n * c.h)...]), forward + [gates, dc])
    case .gru:
      var un = slots
      rl_gru_forward_loop_d(steps, n, h, c.w, c.bHN, &gates, &un, &hs)
      let forward = [gates, un, hs]
      rl_gru_backward_loop_d(steps, n, h, c.w, &gates, &un, hs, c.dhOut, &dh, nil)
      return (Array(hs[(c.n * c.h)...]), forward + [gates, un, dh])
    case .rnn:
      rl_rnn_forward_loop_d(steps, n, h, c.w, &gates, &hs)
      let forward = [gates, hs]
      rl_rnn_backward_loop_d(steps, n, h, c.w, &gates, hs, c.dhOut, &dh, nil)
      return (Array(hs[(c.n * c.h)...]), forward + [gates, dh])
    }
  }

  /// The float loops in variant `level` on at most `threads` threads: the same arrays as
  /// ``runDouble(_:)``, and the fewest threads either loop ran on.
  static func runFloat(_ c: Case, level: Int32, threads: Int32) -> (ran: Int32, arrays: [[Float]]) {
    let (steps, n, h) = (Int32(c.steps), Int32(c.n), Int32(c.h))
    let w = c.w.map(Float.init)
    let dhOut = c.dhOut.map(Float.init)
    let slots = [Float](repeating: 0, count: c.steps * c.n * c.h)
    var hs = c.state[0].map(Float.init) + slots
    var gates = c.a.map(Float.init)
    var dh = [Float](repeating: 0, count: c.n * c.h)
    switch c.cell {
    case .lstm:
      var cs = c.state[1].map(Float.init) + slots
      var tanhC = slots
      let ranF = rl_test_lstm_forward_loop_f(level, threads, steps, n, h, w, &gates, &hs, &cs, &tanhC)
      let forward = [gates, hs, cs, tanhC]
      var dc = dh
      let ranB = rl_test_lstm_backward_loop_f(level, threads, steps, n, h, w, &gates, cs, tanhC, dhOut, &dh, &dc)
      return (min(ranF, ranB), forward + [gates, dc])
    case .gru:
      var un = slots
      let ranF = rl_test_gru_forward_loop_f(level, threads, steps, n, h, w, c.bHN.map(Float.init), &gates, &un, &hs)
      let forward = [gates, un, hs]
      let ranB = rl_test_gru_backward_loop_f(level, threads, steps, n, h, w, &gates, &un, hs, dhOut, &dh)
      return (min(ranF, ranB), forward + [gates, un, dh])
    case .rnn:
      let ranF = rl_test_rnn_forward_loop_f(level, threads, steps, n, h, w, &gates, &hs)
      let forward = [gates, hs]
      let ranB = rl_test_rnn_backward_loop_f(level, threads, steps, n, h, w, &gates, hs, dhOut, &dh)
      return (min(ranF, ranB), forward + [gates, dh])
    }
  }

  /// The double loop computes what the formulas say; every float variant agrees with it. h = 37
  /// has remainder columns and k-tails in every variant's blocking.
  @Test(arguments: RecurrentCell.allCases)
  func loopsMatchReference(cell: RecurrentCell) {
    let c = Case(cell, steps: 4, n: 3, h: 37, seed: 3)
    let double = Self.runDouble(c)
    expectClose(double.outputs, Self.reference(c), tolerance: 1e-12, "\(cell) double loop vs reference")
    for level in 0...rl_kernels_level() {
      let float = Self.runFloat(c, level: level, threads: 2)
      #expect(float.arrays.count == double.arrays.count)
      for (i, (f, d)) in zip(float.arrays, double.arrays).enumerated() {
        // Relative to each array's scale: gradients grow through the steps.
        let scale = max(d.map(abs).max() ?? 1, 1)
        expectClose(
          f.map { Double($0) / scale }, d.map { $0 / scale }, tolerance: 2e-5, "\(cell) array \(i), level \(level)")
      }
    }
  }

  /// Splitting the hidden units between threads changes nothing: two threads give the bits one gives.
  @Test(arguments: RecurrentCell.allCases)
  func loopsDoNotDependOnThreadCount(cell: RecurrentCell) throws {
    if rl_threads() < 2 { rl_set_threads(2) }
    let c = Case(cell, steps: 5, n: 4, h: 53, seed: 11)
    let level = rl_kernels_level()
    let one = Self.runFloat(c, level: level, threads: 1)
    // Other tests may hold the team for a moment; then a loop runs alone and says so.
    var two = Self.runFloat(c, level: level, threads: 2)
    var attempts = 1
    while two.ran < 2 && attempts < 500 {
      Thread.sleep(forTimeInterval: 0.002)
      two = Self.runFloat(c, level: level, threads: 2)
      attempts += 1
    }
    try #require(two.ran == 2, "never got two threads in \(attempts) attempts")
    for (x, y) in zip(one.arrays, two.arrays) {
      #expect(x.map(\.bitPattern) == y.map(\.bitPattern), "\(cell): results differ between 1 and 2 threads")
    }
  }
}
