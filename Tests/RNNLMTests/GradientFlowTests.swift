import Foundation
import Testing

@testable import RNNLM

@Suite struct GradientFlowTests {
  /// ‖dh·Wᵀ‖ ≤ σ_max‖dh‖, so after k products ‖dh_k‖ ≤ σ^k: a W_hh scaled to a larger singular
  /// value than asked would break the bound. Clipping keeps every norm at or below the threshold.
  @Test(arguments: [0.5, 0.9, 1.5, 3.0])
  func syntheticNormsObeyTheSingularValue(sigma: Double) {
    let norms = GradientFlow.syntheticNorms(hiddenSize: 30, steps: 40, largestSingularValue: sigma, seed: 4)
    #expect(norms.count == 40 && abs(norms[0] - 1) < 1e-12)
    for (k, norm) in norms.enumerated() {
      #expect(norm <= pow(sigma, Double(k)) * (1 + 1e-9), "step \(k): \(norm) > σ^k = \(pow(sigma, Double(k)))")
    }
    // The largest singular value is reached: some unit vector grows by σ in one product; the
    // power iteration's own direction does, so a dh along it would. Here: the first product of a
    // random direction is at least a fair fraction of σ and never above it.
    #expect(norms[1] > 0.1 * sigma)
    let clipped = GradientFlow.syntheticNorms(hiddenSize: 30, steps: 40, largestSingularValue: sigma, clip: 2, seed: 4)
    #expect(clipped.allSatisfy { $0 <= 2 + 1e-12 })
    if norms.last! > 2 { #expect(clipped.last! == 2, "an exploding gradient must be held at the clip threshold") }
  }

  /// With random weights the gradient reaches every step. With the top layer's W_hh = 0 nothing
  /// flows back through an LSTM's or an RNN's h (the LSTM's c depends on h only through W_hh):
  /// the gradient reaches the last h and no earlier one. The GRU keeps its path h' = … + z ⊙ h,
  /// so there each step back multiplies the gradient by z ∈ (0, 1): smaller, never zero.
  @Test(arguments: RecurrentCell.allCases)
  func stateGradientNormsFollowTheRecurrence(cell: RecurrentCell) throws {
    let config = ModelConfig(vocabularySize: 9, embeddingSize: 5, hiddenSize: 6, layers: 2, cell: cell)
    var g = SeededGenerator(seed: 8)
    let corpus = (0..<200).map { _ in Int32(g.next() % 9) }
    let random = try GradientFlow.stateGradientNorms(
      config: config, parameters: nil, seed: 3, corpus: corpus, steps: 12, windows: 3)
    #expect(random.count == 12 && random.allSatisfy { $0 > 0 && $0.isFinite })

    var parameters = try LanguageModel<Float>(
      config: config, batchSize: 1, maxSteps: 1, generator: &g
    ).parameters.values.array
    for view in ParameterStore<Float>.views(for: config.parameterLayout) where view.name == "rnn.weight_hh_l1" {
      for i in view.offset..<(view.offset + view.count) { parameters[i] = 0 }
    }
    let cut = try GradientFlow.stateGradientNorms(
      config: config, parameters: parameters, seed: 3, corpus: corpus, steps: 12, windows: 3)
    #expect(cut[0] > 0)
    if cell == .gru {
      for k in 1..<cut.count { #expect(cut[k] > 0 && cut[k] < cut[k - 1], "GRU step \(k): \(cut)") }
    } else {
      #expect(cut.dropFirst().allSatisfy { $0 == 0 }, "\(cell): gradient crossed a zero W_hh: \(cut)")
    }
  }
}
