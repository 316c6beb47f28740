import Foundation
import Testing

@testable import RNNLM

/// Attention and the encoder–decoder: gradients in Double, masking, decoding, learning.
@Suite struct Seq2SeqTests {
  /// TimeAttention's gradients with respect to the decoder states, the encoder states and W_a,
  /// with sources of different lengths in one batch; the padded source steps get no weight and
  /// no gradient.
  @Test(arguments: [AttentionScore.dot, .general])
  func attentionGradients(score: AttentionScore) throws {
    var g = SeededGenerator(seed: 21)
    let (n, tt, ts, h) = (3, 4, 5, 3)
    let lengths = [5, 2, 3]
    var wa = randomArray(h * h, scale: 0.5, &g)
    var dWa = [Double](repeating: 0, count: h * h)
    let query = UnsafeMutablePointer<Double>.allocate(capacity: tt * n * h)
    let source = UnsafeMutablePointer<Double>.allocate(capacity: ts * n * h)
    defer { (query.deallocate(), source.deallocate()) }
    query.initialize(from: randomArray(tt * n * h, &g), count: tt * n * h)
    source.initialize(from: randomArray(ts * n * h, &g), count: ts * n * h)
    let w = randomArray(tt * n * h, &g)
    try wa.withUnsafeMutableBufferPointer { wp in
      try dWa.withUnsafeMutableBufferPointer { dwp in
        let attention = try TimeAttention<Double>(
          hiddenSize: h, batchSize: n, maxSourceSteps: ts, maxTargetSteps: tt,
          weight: score == .general ? UnsafePointer(wp.baseAddress!) : nil,
          dWeight: score == .general ? dwp.baseAddress! : nil)
        func loss() -> Double {
          attention.forward(query: query, targetSteps: tt, source: source, sourceSteps: ts, sourceLengths: lengths)
          return (0..<w.count).reduce(0.0) { $0 + w[$1] * attention.context.pointer[$1] }
        }
        _ = loss()
        // Each sequence's weights sum to 1 over its real steps and are 0 after them.
        for r in 0..<n {
          for t in 0..<tt {
            let row = Array(UnsafeBufferPointer(start: attention.weights.pointer + (r * tt + t) * ts, count: ts))
            #expect(abs(row[0..<lengths[r]].reduce(0, +) - 1) < 1e-12)
            #expect(row[lengths[r]...].allSatisfy { $0 == 0 })
          }
        }
        attention.backward(dContext: w)
        let dQuery = Array(attention.dQuery.array[0..<(tt * n * h)])
        let dSource = Array(attention.dSource.array[0..<(ts * n * h)])
        expectGradient("\(score) attention: decoder states", analytic: dQuery, at: query, count: tt * n * h, loss: loss)
        expectGradient(
          "\(score) attention: encoder states", analytic: dSource, at: source, count: ts * n * h, loss: loss)
        for r in 0..<n {
          for s in lengths[r]..<ts {
            #expect(
              dSource[((s * n) + r) * h..<((s * n) + r + 1) * h].allSatisfy { $0 == 0 }, "padded step \(s) of \(r)")
          }
        }
        if score == .general {
          expectGradient(
            "general attention: W_a", analytic: Array(dwp), at: wp.baseAddress!, count: wp.count, loss: loss)
        }
      }
    }
  }
}
