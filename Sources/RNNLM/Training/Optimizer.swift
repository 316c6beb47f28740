import Foundation

/// How the parameters are updated from their gradients. The formulas are PyTorch's
/// (`torch.optim.SGD`, `Adam`, `RMSprop` without momentum), with their default constants.
public enum OptimizerKind: String, Codable, CaseIterable, Sendable {
  /// θ −= lr · g.
  case sgd
  /// Adam with bias correction: β1 0.9, β2 0.999, ε 1e-8 (PyTorch's defaults; Keras uses ε 1e-7).
  case adam
  /// RMSprop: v = α v + (1 − α) g², θ −= lr · g / (√v + ε), α 0.99, ε 1e-8 (PyTorch's defaults;
  /// Keras uses α 0.9, its `rho`).
  case rmsprop

  /// The names of the optimizer's state tensors in checkpoints, each of the parameters' size.
  public var stateNames: [String] {
    switch self {
    case .sgd: []
    case .adam: ["optimizer.m", "optimizer.v"]
    case .rmsprop: ["optimizer.v"]
    }
  }

  /// The state tensors a run saves: ``stateNames``, then `asgd.average` once NT-ASGD has begun
  /// averaging.
  public func savedTensorNames(averaging: Bool) -> [String] { stateNames + (averaging ? ["asgd.average"] : []) }

  /// The learning rate a run with this optimizer starts from when none is given: the book's 20
  /// for SGD, 0.001 (PyTorch's and Keras' default) for the others.
  public var defaultLearningRate: Double { self == .sgd ? 20 : 0.001 }
}

/// The constants of one update (the C kernel's arguments).
package struct OptimizerRule {
  /// 0 SGD, 1 Adam, 2 RMSprop.
  var kind: Int32
  var learningRate, scale, weightDecay, beta1, beta2, epsilon, correction1, correction2: Double
}

/// An optimizer's state over a flat parameter buffer: Adam's first and second moments m and v,
/// RMSprop's v, nothing for SGD, and the number of updates made.
package final class OptimizerState<T: BLASScalar> {
  /// The update rule.
  package let kind: OptimizerKind
  /// Adam's m (first moment), one per parameter, or nil.
  package let m: Buffer<T>?
  /// Adam's and RMSprop's v (second moment), one per parameter, or nil.
  package let v: Buffer<T>?
  /// Updates made so far (Adam's t).
  package var steps = 0

  /// A fresh state (zero moments) for `count` parameters.
  package init(kind: OptimizerKind, count: Int) throws {
    self.kind = kind
    m = kind == .adam ? try Buffer(count: count) : nil
    v = kind == .sgd ? nil : try Buffer(count: count)
  }

  /// The state tensors in ``OptimizerKind/stateNames`` order.
  package var buffers: [Buffer<T>] { [m, v].compactMap { $0 } }

  /// The buffers a `last.safetensors` saves after the parameters, in
  /// ``OptimizerKind/savedTensorNames(averaging:)`` order: the moments, then NT-ASGD's `average`
  /// once `averaging` has begun.
  package func savedBuffers(average: ParameterAverage<T>?, averaging: Bool) -> [Buffer<T>] {
    buffers + (averaging ? average.map { [$0.values] } ?? [] : [])
  }
}

/// Global-norm clipping and the update over the flat buffers.
package enum Optimizer {
  /// One update with global-norm clipping: the gradient g is scaled by min(1, maxNorm / (norm +
  /// 1e-6)) (the scale goes into the update; the gradients stay as they are), weight decay adds
  /// weightDecay · θ, then the rule of `state.kind` updates the values. `maxNorm` 0 does not clip.
  /// With `slowerPrefix`, the store's first `count` values take `factor` × `learningRate` (two
  /// parameter groups, as PyTorch's optimizers take them; the rule is elementwise, so the two
  /// ranges are one update each). Returns the norm, or 0 when not clipping. A pass for the norm
  /// and one for the update.
  @discardableResult
  package static func step<T: BLASScalar>(
    _ store: ParameterStore<T>, state: OptimizerState<T>, learningRate: Double, maxNorm: Double,
    weightDecay: Double = 0, slowerPrefix: (count: Int, factor: Double)? = nil
  ) -> Double {
    // Rows without gradient stay where they are under SGD without weight decay: with a tracked
    // parameter, only its written rows are visited (the same update, element for element).
    let sparse = state.kind == .sgd && weightDecay == 0 && slowerPrefix == nil ? store.touchedRows : nil
    var scale = 1.0
    var norm = 0.0
    if maxNorm > 0 {
      norm =
        (sparse.map { squaresOfWrittenGradients(store, $0) }
        ?? T._sumOfSquares(store.count, store.gradients.pointer)).squareRoot()
      scale = min(1, maxNorm / (norm + 1e-6))
    }
    state.steps += 1
    let t = Double(state.steps)
    var rule = OptimizerRule(
      kind: 0, learningRate: learningRate, scale: scale, weightDecay: weightDecay, beta1: 0, beta2: 0, epsilon: 0,
      correction1: 1, correction2: 1)
    switch state.kind {
    case .sgd: break
    case .adam:
      (rule.kind, rule.beta1, rule.beta2, rule.epsilon) = (1, 0.9, 0.999, 1e-8)
      rule.correction1 = 1 - Foundation.pow(0.9, t)
      rule.correction2 = 1 - Foundation.pow(0.999, t)
    case .rmsprop:
      (rule.kind, rule.beta2, rule.epsilon) = (2, 0.99, 1e-8)
    }
    if let sparse {
      updateWrittenRows(store, sparse, rule: rule)
      return norm
    }
    var start = 0
    if let (count, factor) = slowerPrefix, factor != 1 {
      var slow = rule
      slow.learningRate *= factor
      T._optimizerUpdate(
        slow, n: count, grad: store.gradients.pointer, m: state.m?.pointer, v: state.v?.pointer,
        theta: store.values.pointer)
      start = count
    }
    T._optimizerUpdate(
      rule, n: store.count - start, grad: store.gradients.pointer + start, m: state.m.map { $0.pointer + start },
      v: state.v.map { $0.pointer + start }, theta: store.values.pointer + start)
    return norm
  }
}

extension Optimizer {
  /// The sum of the squared gradients of a store with ``ParameterStore/touchedRows``: the other
  /// parameters and the written rows (the same squares as the dense pass, in another grouping, so
  /// the sum may differ in its last bits).
  fileprivate static func squaresOfWrittenGradients<T: BLASScalar>(
    _ store: ParameterStore<T>, _ touched: TouchedRows
  ) -> Double {
    let (g, d, low, high) = (
      store.gradients.pointer, touched.rowLength, touched.range.lowerBound, touched.range.upperBound
    )
    var squares = T._sumOfSquares(low, g) + T._sumOfSquares(store.count - high, g + high)
    for row in touched.rows { squares += T._sumOfSquares(d, g + low + Int(row) * d) }
    return squares
  }

  /// `rule` (stateless: SGD) over the other parameters and the written rows of a store with
  /// ``ParameterStore/touchedRows``.
  fileprivate static func updateWrittenRows<T: BLASScalar>(
    _ store: ParameterStore<T>, _ touched: TouchedRows, rule: OptimizerRule
  ) {
    let (g, theta, d) = (store.gradients.pointer, store.values.pointer, touched.rowLength)
    let (low, high) = (touched.range.lowerBound, touched.range.upperBound)
    T._optimizerUpdate(rule, n: low, grad: g, m: nil, v: nil, theta: theta)
    for row in touched.rows {
      let offset = low + Int(row) * d
      T._optimizerUpdate(rule, n: d, grad: g + offset, m: nil, v: nil, theta: theta + offset)
    }
    T._optimizerUpdate(rule, n: store.count - high, grad: g + high, m: nil, v: nil, theta: theta + high)
  }
}

/// The running mean of the parameters over the updates since averaging began: NT-ASGD's
/// average (Merity et al. 2017; `torch.optim.ASGD` with t0 = 0, λ = 0). After the k-th update,
/// average = (θ_1 + … + θ_k) / k.
package final class ParameterAverage<T: BLASScalar> {
  /// The average, one per parameter.
  package let values: Buffer<T>
  /// Iterates averaged so far (k).
  package var count = 0

  /// An empty average for `count` parameters.
  package init(count: Int) throws { values = try Buffer(count: count) }

  /// Adds the iterate θ: average += (θ − average) / k.
  package func add(_ theta: UnsafePointer<T>) {
    count += 1
    let n = values.count
    if count == 1 {
      values.pointer.update(from: theta, count: n)
      return
    }
    let k = Double(count)
    T._scale(n, T(1 - 1 / k), values.pointer)
    T._axpy(n, T(1 / k), theta, values.pointer)
  }
}
