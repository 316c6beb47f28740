import Foundation
import Testing

@testable import RNNLM

/// The largest |a - b| and where it is; counts are compared first.
func maxAbsoluteDifference<T: BinaryFloatingPoint>(_ a: [T], _ b: [T]) -> (value: Double, index: Int) {
  precondition(a.count == b.count, "compared arrays differ in length: \(a.count) vs \(b.count)")
  var worst = (value: 0.0, index: -1)
  for i in a.indices {
    let d = abs(Double(a[i]) - Double(b[i]))
    if d > worst.value || d.isNaN { worst = (d.isNaN ? .infinity : d, i) }
  }
  return worst
}

/// Expects `actual` to match `expected` element by element within `tolerance`, reporting the
/// counts first and then the largest difference.
func expectClose<T: BinaryFloatingPoint>(
  _ actual: [T], _ expected: [T], tolerance: Double, _ what: String,
  sourceLocation: SourceLocation = #_sourceLocation
) {
  #expect(
    actual.count == expected.count, "\(what): \(actual.count) values, expected \(expected.count)",
    sourceLocation: sourceLocation)
  guard actual.count == expected.count else { return }
  let worst = maxAbsoluteDifference(actual, expected)
  #expect(
    worst.value <= tolerance,
    "\(what): largest difference \(worst.value) at \(worst.index) (\(actual[max(worst.index, 0)]) vs \(expected[max(worst.index, 0)])), tolerance \(tolerance)",
    sourceLocation: sourceLocation)
}

/// Central differences of `loss` with respect to each of `count` scalars at `x`, in Double.
func numericGradient(
  at x: UnsafeMutablePointer<Double>, count: Int, epsilon: Double = 1e-5, loss: () -> Double
) -> [Double] {
  (0..<count).map { i in
    let saved = x[i]
    x[i] = saved + epsilon
    let plus = loss()
    x[i] = saved - epsilon
    let minus = loss()
    x[i] = saved
    return (plus - minus) / (2 * epsilon)
  }
}

/// The largest relative error |a - n| / max(|a| + |n|, floor) over two gradients.
///
/// The floor is 1e-4 of the largest analytic entry: a central difference in Double carries a
/// rounding error of about ε·|L|/h ≈ 1e-11 whatever the entry, so entries millions of times
/// smaller than the largest are compared at that scale instead of against their own size.
func maxRelativeError(_ analytic: [Double], _ numeric: [Double]) -> (value: Double, index: Int) {
  precondition(analytic.count == numeric.count, "gradient lengths differ: \(analytic.count) vs \(numeric.count)")
  let floor = max(1e-4 * (analytic.map(abs).max() ?? 0), 1e-12)
  var worst = (value: 0.0, index: -1)
  for i in analytic.indices {
    let e = abs(analytic[i] - numeric[i]) / max(abs(analytic[i]) + abs(numeric[i]), floor)
    if e > worst.value || e.isNaN { worst = (e.isNaN ? .infinity : e, i) }
  }
  return worst
}

/// Checks an analytic gradient against central differences, printing and bounding the
/// largest relative error.
func expectGradient(
  _ what: String, analytic: [Double], at x: UnsafeMutablePointer<Double>, count: Int,
  bound: Double = 1e-6, loss: () -> Double, sourceLocation: SourceLocation = #_sourceLocation
) {
  let numeric = numericGradient(at: x, count: count, loss: loss)
  let worst = maxRelativeError(analytic, numeric)
  print("gradient check \(what): \(count) values, largest relative error \(worst.value)")
  #expect(analytic.contains { $0 != 0 }, "\(what): the analytic gradient is all zero", sourceLocation: sourceLocation)
  #expect(
    worst.value <= bound,
    "\(what): relative error \(worst.value) at \(worst.index): analytic \(analytic[max(worst.index, 0)]), numeric \(numeric[max(worst.index, 0)])",
    sourceLocation: sourceLocation)
}

/// Random normal values scaled by `scale`.
func randomArray(_ count: Int, scale: Double = 1, _ g: inout SeededGenerator) -> [Double] {
  (0..<count).map { _ in g.nextNormal() * scale }
}

/// A text from a small grammar, written by this project for tests: each sentence is a subject
/// (one of 4), the subject's own verb (determined by the subject), an object (one of 4) and
/// `<eos>`. Its entropy is 2·ln 4 nats per 4 tokens = 0.693 nats/token; the unigram entropy is
/// 2.43 nats/token and ln V = ln 13 = 2.56.
func grammarText(sentences: Int, seed: UInt64) -> String {
  let subjects = ["cats", "dogs", "birds", "fish"]
  let verbs = ["chase", "guard", "watch", "avoid"]
  let objects = ["mice", "houses", "trees", "boats"]
  var g = SeededGenerator(seed: seed)
  var lines: [String] = []
  for _ in 0..<sentences {
    let s = Int(g.next() % 4)
    lines.append("\(subjects[s]) \(verbs[s]) \(objects[Int(g.next() % 4)])")
  }
  return lines.joined(separator: "\n") + "\n"
}

/// Runs one evaluation batch of 6 streams through `model` (batch size 6) the way an evaluation
/// pass does, so that the buffers evaluation makes (its word-projection table) exist.
func evaluateOneBatch(_ model: LanguageModel<Double>) {
  model.setTraining(false)
  let tokens = (0..<6).map { Int32($0) }
  _ = model.withWordProjections { model.loss(inputs: tokens, targets: tokens, steps: 1, gradient: false) }
  #expect(model.wordProjectionElements > 0, "the evaluation pass made its table")
}
