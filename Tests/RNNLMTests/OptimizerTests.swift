import Foundation
import Testing

@testable import RNNLM

/// The update rules against their formulas, written out here step by step in Double.
@Suite struct OptimizerTests {
  /// Two parameters, two updates with the same gradient, clipping at 1 (the gradient's norm is
  /// 5, so it is scaled by 1/5) and weight decay 0.1.
  @Test(arguments: OptimizerKind.allCases)
  func updatesFollowTheirFormulas(kind: OptimizerKind) throws {
    let store = try ParameterStore<Double>(layout: [("w", [2])])
    store.values.pointer.update(from: [1, -2], count: 2)
    let state = try OptimizerState<Double>(kind: kind, count: 2)
    let (lr, wd, grad) = (0.1, 0.1, [3.0, 4.0])
    let scale = 1 / (5 + 1e-6)
    var theta = [1.0, -2.0]
    var m = [0.0, 0.0]
    var v = [0.0, 0.0]
    for t in 1...2 {
      store.gradients.pointer.update(from: grad, count: 2)
      let norm = Optimizer.step(store, state: state, learningRate: lr, maxNorm: 1, weightDecay: wd)
      #expect(abs(norm - 5) < 1e-12)
      for i in 0..<2 {
        let g = scale * grad[i] + wd * theta[i]
        switch kind {
        case .sgd:
          theta[i] -= lr * g
        case .adam:
          m[i] = 0.9 * m[i] + 0.1 * g
          v[i] = 0.999 * v[i] + 0.001 * g * g
          let mHat = m[i] / (1 - pow(0.9, Double(t)))
          let vHat = v[i] / (1 - pow(0.999, Double(t)))
          theta[i] -= lr * mHat / (vHat.squareRoot() + 1e-8)
        case .rmsprop:
          v[i] = 0.99 * v[i] + 0.01 * g * g
          theta[i] -= lr * g / (v[i].squareRoot() + 1e-8)
        }
      }
      for i in 0..<2 {
        #expect(abs(store.values.pointer[i] - theta[i]) < 1e-12, "\(kind), step \(t), parameter \(i)")
      }
    }
    #expect(state.steps == 2)
    if kind == .adam { #expect(zip(state.m!.array, m).allSatisfy { abs($0 - $1) < 1e-15 }) }
    if kind != .sgd { #expect(zip(state.v!.array, v).allSatisfy { abs($0 - $1) < 1e-15 }) }
    // The gradients themselves are left as they were (the clipping scale goes into the update).
    #expect(store.gradients.array == grad)
  }

  /// The float update on the team matches the double one for a vector long enough to be split.
  @Test(arguments: [OptimizerKind.adam, .rmsprop])
  func floatUpdateOnTheTeamMatchesDouble(kind: OptimizerKind) throws {
    let n = 200_003
    var g = SeededGenerator(seed: 3)
    let values = randomArray(n, &g)
    let grads = randomArray(n, &g)
    let f = try ParameterStore<Float>(layout: [("w", [n])])
    let d = try ParameterStore<Double>(layout: [("w", [n])])
    f.values.pointer.update(from: values.map(Float.init), count: n)
    d.values.pointer.update(from: values, count: n)
    let fs = try OptimizerState<Float>(kind: kind, count: n)
    let ds = try OptimizerState<Double>(kind: kind, count: n)
    for _ in 0..<3 {
      f.gradients.pointer.update(from: grads.map(Float.init), count: n)
      d.gradients.pointer.update(from: grads, count: n)
      Optimizer.step(f, state: fs, learningRate: 0.01, maxNorm: 0, weightDecay: 0.01)
      Optimizer.step(d, state: ds, learningRate: 0.01, maxNorm: 0, weightDecay: 0.01)
    }
    var worst = 0.0
    for i in 0..<n { worst = max(worst, abs(Double(f.values.pointer[i]) - d.values.pointer[i])) }
    #expect(worst < 1e-5, "largest difference \(worst)")
  }

  /// An untied language model tracks the embedding rows its batches write, and SGD over the
  /// tracked rows (clipping on, embedding dropout on) moves every parameter as the dense pass
  /// does; with weight decay or Adam the update stays dense and still agrees.
  @Test(arguments: [(OptimizerKind.sgd, 0.0), (.sgd, 0.01), (.adam, 0.0)])
  func trackedEmbeddingRowsUpdateAsTheDensePass(kind: OptimizerKind, weightDecay: Double) throws {
    let config = ModelConfig(
      vocabularySize: 40, embeddingSize: 3, hiddenSize: 4, layers: 2, embeddingDropout: 0.2,
      adaptiveCutoffs: [10, 25], adaptiveDivision: 2)
    let (n, t) = (3, 4)
    var g = SeededGenerator(seed: 8)
    let tracked = try LanguageModel<Double>(config: config, batchSize: n, maxSteps: t, generator: &g)
    let dense = try LanguageModel<Double>(
      config: config, parameters: ParameterStore(layout: config.parameterLayout), batchSize: n, maxSteps: t,
      generator: tracked.generator)
    dense.parameters.values.pointer.update(from: tracked.parameters.values.pointer, count: tracked.parameters.count)
    dense.parameters.stopTrackingRows()
    let rows = try #require(tracked.parameters.touchedRows)
    #expect(dense.parameters.touchedRows == nil)
    let states = try [tracked, dense].map { try OptimizerState<Double>(kind: kind, count: $0.parameters.count) }
    var data = SeededGenerator(seed: 9)
    for step in 0..<4 {
      // Words from the first half of the vocabulary only, so most rows are never written.
      let inputs = (0..<(n * t)).map { _ in Int32(data.next() % 20) }
      let targets = (0..<(n * t)).map { _ in Int32(data.next() % 40) }
      for (model, state) in zip([tracked, dense], states) {
        model.parameters.zeroGradients()
        _ = model.loss(inputs: inputs, targets: targets, steps: t, gradient: true)
        Optimizer.step(model.parameters, state: state, learningRate: 0.5, maxNorm: 0.05, weightDecay: weightDecay)
      }
      #expect(Set(rows.rows.map(Int.init)).isSubset(of: Set(inputs.map(Int.init))))
      #expect(!rows.rows.isEmpty)
      let gap = maxAbsoluteDifference(tracked.parameters.values.array, dense.parameters.values.array).value
      #expect(gap < 1e-12, "largest difference \(gap)")
      // The first step starts from the same parameters, so its gradients are the same bits. Later
      // ones start from parameters that may differ in the last bit: the clipping norm adds the
      // same squares in another grouping, and whether that rounds alike depends on the values
      // (it did on an Intel Xeon; on an AMD EPYC the gradients differed by 1.4e-17).
      let gradientGap = maxAbsoluteDifference(
        tracked.parameters.gradients.array, dense.parameters.gradients.array
      ).value
      #expect(step == 0 ? gradientGap == 0 : gradientGap < 1e-12, "step \(step): gradients differ by \(gradientGap)")
    }
    tracked.parameters.zeroGradients()
    #expect(tracked.parameters.gradients.array.allSatisfy { $0 == 0 })
    #expect(rows.rows.isEmpty)
  }

  /// NT-ASGD's average is the mean of the iterates added to it.
  @Test func averageIsTheMeanOfTheIterates() throws {
    var g = SeededGenerator(seed: 6)
    let iterates = (0..<7).map { _ in randomArray(5, &g) }
    let average = try ParameterAverage<Double>(count: 5)
    for (k, theta) in iterates.enumerated() {
      average.add(theta)
      let mean = (0..<5).map { i in iterates[...k].reduce(0.0) { $0 + $1[i] } / Double(k + 1) }
      #expect(zip(average.values.array, mean).allSatisfy { abs($0 - $1) < 1e-14 }, "after \(k + 1) iterates")
    }
    #expect(average.count == 7)
  }
}
