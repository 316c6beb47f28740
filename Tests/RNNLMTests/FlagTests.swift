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
    #expect(throws: (any Error).self) { try TrainingFlags.parse(["--preset", "awd-medium", "--cosine-budget"]) }
  }

  /// The budget preset anneals to the end of the time budget, so it needs one; `--cosine`
  /// replaces its schedule with one over its epochs, which needs none.
  @Test func budgetPresetNeedsATimeBudget() throws {
    let budget = try TrainingFlags.parse(["--preset", "awd-medium-budget", "--max-minutes", "150"]).resolvedPreset()
    #expect(budget.training.cosineToBudget && !budget.training.cosineSchedule)
    #expect(throws: (any Error).self) { try TrainingFlags.parse(["--preset", "awd-medium-budget"]) }
    let epochs = try TrainingFlags.parse(["--preset", "awd-medium-budget", "--cosine"]).resolvedPreset()
    #expect(epochs.training.cosineSchedule && !epochs.training.cosineToBudget)
  }
}
