import Foundation

/// How far gradients travel back in time: the experiment that shows why gated cells exist.
///
/// Two measurements, each a curve of gradient norms against the number of steps back:
/// - ``stateGradientNorms(config:parameters:seed:corpus:steps:windows:)``: a language model of any
///   cell reads windows of real text; only the loss of the LAST step is backpropagated, and the
///   norm of ∂L/∂h_t of the top layer is recorded for every earlier step t. Computed in Double,
///   so that a gradient of 1e-40 is still a number, with the same layers and C loops as training.
/// - ``syntheticNorms(hiddenSize:steps:largestSingularValue:clip:seed:)``: the textbook's version,
///   a gradient multiplied by W_hhᵀ again and again (no nonlinearity): it explodes when W_hh's
///   largest singular value is above 1 and vanishes below, and clipping bounds the explosion.
public enum GradientFlow {
  /// One curve: `norms[k]` is the gradient norm k steps before the last.
  public struct Curve: Sendable {
    /// What the curve measures (the legend's text).
    public var label: String
    /// Gradient norms, k = 0 (the last step) first.
    public var norms: [Double]

    /// A curve of the given norms.
    public init(label: String, norms: [Double]) {
      self.label = label
      self.norms = norms
    }
  }

  /// Mean over `windows` windows of `corpus` of ‖∂L/∂h_t‖₂ for the top layer's h_t, where L is the
  /// cross-entropy of the last step's prediction alone, for t = T−1 (k = 0) down to 0 (k = T−1).
  ///
  /// - Parameters:
  ///   - config: the model's shape and cell.
  ///   - parameters: trained parameters in `config.parameterLayout` order, or nil for the
  ///     initial parameters drawn from `seed` as training draws them.
  ///   - seed: the generator seed for the initial parameters (unused when `parameters` is given).
  ///   - corpus: token ids; the windows start at evenly spaced positions, each from a zero state.
  ///   - steps: window length T.
  ///   - windows: how many windows (run as one batch).
  public static func stateGradientNorms(
    config: ModelConfig, parameters: [Float]?, seed: UInt64, corpus: [Int32], steps: Int, windows: Int
  ) throws -> [Double] {
    guard steps >= 1, windows >= 1 else {
      throw ConfigurationError("steps and windows must be at least 1, got \(steps) and \(windows)")
    }
    guard corpus.count >= steps + windows else {
      throw ConfigurationError("the text has \(corpus.count) tokens, too few for \(windows) windows of \(steps + 1)")
    }
    var g = SeededGenerator(seed: seed)
    let model = try LanguageModel<Double>(config: config, batchSize: windows, maxSteps: steps, generator: &g)
    if let parameters {
      guard parameters.count == model.parameters.count else {
        throw ConfigurationError(
          "\(parameters.count) parameters for a configuration of \(model.parameters.count)")
      }
      for i in parameters.indices { model.parameters.values.pointer[i] = Double(parameters[i]) }
    }
    model.setTraining(false)
    let (n, h) = (windows, config.hiddenSize)
    var inputs = [Int32](repeating: 0, count: steps * n)
    var targets = [Int32](repeating: 0, count: n)
    for i in 0..<n {
      let start = i * (corpus.count - steps - 1) / max(n - 1, 1)
      for t in 0..<steps { inputs[t * n + i] = corpus[start + t] }
      targets[i] = corpus[start + steps]
    }
    let recorded = try Buffer<Double>(count: steps * n * h)
    // Only the last step's loss: the other rows' output gradients are zero.
    let dTop = try Buffer<Double>(count: steps * n * h)
    inputs.withUnsafeBufferPointer { ip in
      model.resetState()
      let top = model.topLayerOutput(inputs: ip.baseAddress!, steps: steps)
      let last = (steps - 1) * n * h
      let (_, dLast) = targets.withUnsafeBufferPointer { tp in
        model.outputLoss(hidden: top + last, targets: tp.baseAddress!, rows: n, gradient: true)
      }
      (dTop.pointer + last).update(from: dLast!, count: n * h)
      // Dropout is off, so the output layer's input gradient is the top layer's output gradient.
      model.recurrentLayers.last!.backward(dOutput: dTop.pointer, stateGradients: recorded.pointer)
    }
    // The loss gradient was the batch mean; × N gives each window's own loss gradient.
    return (0..<steps).map { k in
      let t = steps - 1 - k
      var total = 0.0
      for i in 0..<n {
        let row = recorded.pointer + (t * n + i) * h
        total += (0..<h).reduce(0.0) { $0 + row[$1] * row[$1] }.squareRoot() * Double(n)
      }
      return total / Double(n)
    }
  }

  /// ‖dh_k‖ for k = 0 ..< steps, where dh_0 is a unit vector and dh_{k+1} = dh_k · W_hhᵀ for a random
  /// (H, H) matrix W_hh scaled so that its largest singular value is `largestSingularValue`. With
  /// `clip`, dh is rescaled to norm `clip` whenever it exceeds it (global-norm clipping).
  public static func syntheticNorms(
    hiddenSize h: Int, steps: Int, largestSingularValue: Double, clip: Double? = nil, seed: UInt64 = 1
  ) -> [Double] {
    var g = SeededGenerator(seed: seed)
    var w = (0..<(h * h)).map { _ in g.nextNormal() }
    // Largest singular value of W by power iteration on WᵀW.
    var x = [Double](repeating: 1 / Double(h).squareRoot(), count: h)
    var sigma = 0.0
    for _ in 0..<200 {
      let wx = (0..<h).map { i in (0..<h).reduce(0.0) { $0 + w[i * h + $1] * x[$1] } }
      let wtwx = (0..<h).map { j in (0..<h).reduce(0.0) { $0 + w[$1 * h + j] * wx[$1] } }
      let norm = wtwx.reduce(0.0) { $0 + $1 * $1 }.squareRoot()
      sigma = norm.squareRoot()
      x = wtwx.map { $0 / norm }
    }
    w = w.map { $0 * largestSingularValue / sigma }
    var dh = [Double](repeating: 1 / Double(h).squareRoot(), count: h)
    var norms: [Double] = []
    for k in 0..<steps {
      if k > 0 {
        // (dh · Wᵀ)_i = Σ_j dh_j W_ij
        dh = (0..<h).map { i in (0..<h).reduce(0.0) { $0 + dh[$1] * w[i * h + $1] } }
      }
      var norm = dh.reduce(0.0) { $0 + $1 * $1 }.squareRoot()
      if let clip, norm > clip {
        dh = dh.map { $0 * clip / norm }
        norm = clip
      }
      norms.append(norm)
    }
    return norms
  }

  /// The curves as CSV: `experiment,curve,steps_back,norm`, a row per point.
  public static func csv(_ curves: [(experiment: String, curve: Curve)]) -> String {
    var out = "experiment,curve,steps_back,norm\n"
    for (experiment, c) in curves {
      for (k, norm) in c.norms.enumerated() {
        out += "\(experiment),\"\(c.label)\",\(k),\(String(format: "%.6e", norm))\n"
      }
    }
    return out
  }

  /// The curves as an SVG chart: norm (log scale) against steps back.
  public static func svg(_ curves: [Curve], title: String) -> String {
    LinePlot(
      series: curves.enumerated().map { i, c in
        LinePlot.Series(
          label: c.label, color: LinePlot.colors[i % LinePlot.colors.count],
          points: c.norms.enumerated().map { (Double($0.offset), $0.element) })
      },
      xLabel: "steps back from the last step", yLabel: "gradient norm (log scale)", title: title
    ).svg()
  }
}
