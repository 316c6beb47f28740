import Foundation
import RNNLM
import RNNLMCommandLine
import Testing

/// The shared training flags applied to presets.
struct FlagTests {
  /// A schedule flag replaces the preset's schedule instead of being refused beside it; the two
  /// schedule flags together are still refused.
  @Test func scheduleFlagReplacesThePresetsSchedule() throws {
    let budget = try TrainingFlags.parse(["--preset", "awd-medium-cosine", "--cosine-budget", "--max-minutes", "150"])
    let preset = try budget.resolvedPreset()
    #expect(preset.training.cosineToBudget && !preset.training.cosineSchedule)
    #expect(preset.training.epochs == 50 && !preset.training.averaging)
    #expect(throws: (any Error).self) {
      try TrainingFlags.parse(["--preset", "awd-medium-cosine", "--cosine", "--cosine-budget", "--max-minutes", "9"])
    }
    #expect(throws: (any Error).self) {
      try TrainingFlags.parse(["--preset", "awd-medium", "--cosine-budget"]).requireTimeBudget()
    }
  }

  /// The budget preset anneals to the end of the time budget, so training it needs one;
  /// `--cosine` replaces its schedule with one over its epochs, which needs none. Parsing alone
  /// (what throughput-bench does, timing single steps) takes it without a budget.
  @Test func budgetPresetNeedsATimeBudget() throws {
    let flags = try TrainingFlags.parse(["--preset", "awd-medium-budget", "--max-minutes", "150"])
    try flags.requireTimeBudget()
    let budget = try flags.resolvedPreset()
    #expect(budget.training.cosineToBudget && !budget.training.cosineSchedule)
    let unbudgeted = try TrainingFlags.parse(["--preset", "awd-medium-budget"])
    #expect(throws: (any Error).self) { try unbudgeted.requireTimeBudget() }
    #expect(throws: (any Error).self) { try TrainingFlags.parse(["--cosine-budget"]).requireTimeBudget() }
    let epochs = try TrainingFlags.parse(["--preset", "awd-medium-budget", "--cosine"]).resolvedPreset()
    #expect(epochs.training.cosineSchedule && !epochs.training.cosineToBudget)
  }
}

/// `--embedding-dropout` reaches the classifier's configuration and its checkpoint; a
/// configuration written before it existed reads as none, and a rate outside [0, 1) is refused.
struct ClassifierEmbeddingDropoutFlagTests {
  @Test func theRateReachesTheConfigurationAndItsJSON() throws {
    let flags = try ClassifierFlags.parse(["--embedding-dropout", "0.25", "--cell", "gru"])
    let config = flags.config(vocabularySize: 50, classes: 2)
    #expect(config.embeddingDropout == 0.25 && config.cell == .gru)
    #expect(try ClassifierFlags.parse([]).config(vocabularySize: 50, classes: 2).embeddingDropout == 0)
    let json = try JSONEncoder().encode(config)
    #expect(try JSONDecoder().decode(ClassifierConfig.self, from: json) == config)
    var old = try #require(try JSONSerialization.jsonObject(with: json) as? [String: Any])
    #expect(old.removeValue(forKey: "embeddingDropout") as? Double == 0.25)
    let before = try JSONDecoder().decode(ClassifierConfig.self, from: JSONSerialization.data(withJSONObject: old))
    #expect(before.embeddingDropout == 0 && before.cell == .gru && before.vocabularySize == 50)
    var bad = config
    bad.embeddingDropout = 1
    #expect(throws: ConfigurationError.self) { try bad.validate() }
  }
}
