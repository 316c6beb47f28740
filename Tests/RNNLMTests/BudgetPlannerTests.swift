import Foundation
import Testing

@testable import RNNLM

/// The budget planner's arithmetic, alone: plans, re-plans both ways, and the anchored cosine.
@Suite struct BudgetPlannerTests {
  /// The budget plan: the most steps whose training, one epoch end per epoch begun and the
  /// final test fit in 98% of the time left, worked out by hand (costs in seconds).
  @Test func budgetPlanArithmetic() {
    func plan(_ remaining: Double, _ perStep: Double, done: Int, max: Int = 1_000_000, end: Double, final: Double)
      -> Int
    {
      BudgetPlanner.plannedSteps(
        remainingSeconds: remaining, secondsPerStep: perStep, stepsDone: done, stepsPerEpoch: 1000, maxSteps: max,
        secondsPerEpochEnd: end, finalSeconds: final)
    }
    // Before any epoch has ended, an evaluation token is estimated at 0.4 · 0.02 / 20 = 0.0004 s.
    #expect(
      abs(
        BudgetPlanner.estimatedEvaluationSeconds(examples: 9000, secondsPerStep: 0.02, trainExamplesPerStep: 20) - 3.6)
        < 1e-12)
    // No evaluation: 98 s at 0.01 s a step.
    #expect(plan(100, 0.01, done: 0, end: 0, final: 0) == 9800)
    // 4000 steps cost 80 + 4 · 3.6 + 0.4 = 94.8 s; one step more begins a fifth epoch whose
    // end no longer fits (98.42 s), so the plan ends at the epoch boundary.
    #expect(plan(100, 0.02, done: 0, end: 3.6, final: 0.4) == 4000)
    // From step 500 at 0.03 s a step: 2518 more steps end in the fourth epoch at
    // 75.54 + 4 · 5.46 + 0.6 = 97.98 s; 2519 would cost 98.01.
    #expect(plan(100, 0.03, done: 500, end: 5.46, final: 0.6) == 500 + 2518)
    // The run's epochs bound the plan, and a spent budget still plans one step.
    #expect(plan(100, 0.01, done: 0, max: 1500, end: 0, final: 0) == 1500)
    #expect(plan(0, 0.01, done: 300, end: 3.6, final: 0.4) == 301)
  }

  /// A plan is kept while its rest fits 98% of the time left, shortened to fit 95% when measured
  /// costs say it no longer does, and lengthened to fit 98% when even 95% would hold more than 1%
  /// more steps, until the plan's last tenth (worked out by hand, 1000 steps an epoch).
  @Test func budgetPlanIsReplannedFromMeasuredCosts() {
    func replan(
      _ planned: Int, _ remaining: Double, _ perStep: Double, done: Int, max: Int = 1_000_000, end: Double,
      final: Double
    ) -> Int? {
      BudgetPlanner.replannedSteps(
        planned: planned, remainingSeconds: remaining, secondsPerStep: perStep, stepsDone: done,
        stepsPerEpoch: 1000, maxSteps: max, secondsPerEpochEnd: end, finalSeconds: final)
    }
    // 80 + 4 · 3.6 + 0.4 = 94.8 s fits in 98, and in 98% of 97 s (95.06) too.
    #expect(replan(4000, 100, 0.02, done: 0, end: 3.6, final: 0.4) == nil)
    #expect(replan(4000, 97, 0.02, done: 0, end: 3.6, final: 0.4) == nil)
    // Epoch ends measured at 5 s: 80 + 20 + 0.41 = 100.41 s does not fit; in 95 s, 3729 steps
    // cost 74.58 + 20.41 = 94.99 s, 3730 would cost 95.01.
    #expect(replan(4000, 100, 0.02, done: 0, end: 5, final: 0.41) == 3729)
    // Half-way with 40.5 s left: the rest costs 40 + 7.6 = 47.6 s, more than 39.69; in 38.475 s
    // the two epoch ends and the test leave 30.875 s, so 1543 more steps (30.86 s) fit and 1544
    // (30.88 s) do not.
    #expect(replan(4000, 40.5, 0.02, done: 2000, end: 3.6, final: 0.4) == 2000 + 1543)
    // A plan more than 1% short of the 4000 steps that fit 95 s (94.8 s; a fifth epoch's
    // first step would cost 98.42) is lengthened to those that fit 98 s (also 4000); one within
    // 1% is kept, and so is the shortened plan of 3729 above (it is the 95% plan).
    #expect(replan(3950, 100, 0.02, done: 0, end: 3.6, final: 0.4) == 4000)
    #expect(replan(3980, 100, 0.02, done: 0, end: 3.6, final: 0.4) == nil)
    #expect(replan(3729, 100, 0.02, done: 0, end: 5, final: 0.41) == nil)
    // A much faster run: from step 50, 88,950 more steps cost 88.95 + 89 · 0.1 + 0.1 = 97.95 s,
    // one more begins a 90th epoch (98.051 s). The run's epochs bound it (5000 steps).
    #expect(replan(1000, 100, 0.001, done: 50, end: 0.1, final: 0.1) == 89_000)
    #expect(replan(1000, 100, 0.001, done: 99, max: 5000, end: 0.1, final: 0.1) == 5000)
    // Late in a plan too (done 850 of 1000): the rest, 150 steps, leaves time unused, so the
    // plan is lengthened to the run's epochs; in its last tenth (done 900) it is kept, and a plan
    // already reached is left alone.
    #expect(replan(1000, 100, 0.001, done: 850, max: 5000, end: 0.1, final: 0.1) == 5000)
    #expect(replan(1000, 100, 0.001, done: 900, max: 5000, end: 0.1, final: 0.1) == nil)
    #expect(replan(1000, 0, 0.02, done: 1000, end: 3.6, final: 0.4) == nil)
  }

  /// A re-planned cosine continues from the fraction it had reached: a plan never re-planned
  /// runs steps / planned; after a re-plan the fraction is continuous at the re-plan, reaches 1
  /// at the new end, and the rate never rises across a longer plan, a shorter one and another
  /// longer one (worked out by hand).
  @Test func replannedCosineContinuesWhereItStood() {
    func fraction(_ steps: Int, _ planned: Int, _ anchor: PlanAnchor?) -> Double {
      BudgetPlanner.cosineFraction(steps: steps, planned: planned, anchor: anchor)
    }
    #expect(fraction(250, 1000, nil) == 0.25 && fraction(1000, 1000, nil) == 1)
    // Planned 1000; at step 300 (0.3 done) lengthened to 2000: the other 0.7 over 1700 steps.
    let first = PlanAnchor(steps: 300, fraction: fraction(300, 1000, nil))
    #expect(first.fraction == 0.3 && fraction(300, 2000, first) == 0.3)
    #expect(abs(fraction(1150, 2000, first) - 0.65) < 1e-15 && abs(fraction(2000, 2000, first) - 1) < 1e-15)
    // The rate along plans changed at steps 300 (to 2000), 900 (to 1200) and 1100 (to 1300).
    var (planned, anchor): (Int, PlanAnchor?) = (1000, nil)
    var factors: [Double] = []
    for step in 0...1300 {
      if let next = [300: 2000, 900: 1200, 1100: 1300][step] {
        let before = LearningRateSchedule.cosineFactor(fraction(step, planned, anchor))
        anchor = PlanAnchor(steps: step, fraction: fraction(step, planned, anchor))
        planned = next
        #expect(abs(LearningRateSchedule.cosineFactor(fraction(step, planned, anchor)) - before) < 1e-15)
      }
      factors.append(LearningRateSchedule.cosineFactor(fraction(step, planned, anchor)))
    }
    #expect(zip(factors, factors.dropFirst()).allSatisfy { $0 >= $1 })
    #expect(factors.first == 1 && factors.last! < 1e-15)
  }
}
