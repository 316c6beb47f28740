import Foundation

/// Plans a cosine schedule to end with a run's time budget (`--cosine-budget`), for any task.
///
/// After ``calibrationBatches`` batches at the full rate the run measures its speed and plans
/// the schedule over the schedule units (a language model's time steps per stream, a task's
/// batches) that fit the rest of the budget, evaluations included
/// (``plannedSteps(remainingSeconds:secondsPerStep:stepsDone:stepsPerEpoch:maxSteps:secondsPerEpochEnd:finalSeconds:)``).
/// While the run goes on, the call that planned it checks the plan against the measured speed
/// and epoch-end costs at every logged batch and epoch end, and lengthens (before its last
/// tenth) a plan that leaves time unused or shortens one that no longer fits
/// (``replannedSteps(planned:remainingSeconds:secondsPerStep:stepsDone:stepsPerEpoch:maxSteps:secondsPerEpochEnd:finalSeconds:)``).
/// A re-planned cosine continues from the fraction it had reached
/// (``cosineFraction(steps:planned:anchor:)``), so the rate never jumps or rises. The plan is
/// saved with the run (``LoopState/plannedSteps``, ``LoopState/planAnchor``), so a resumed run
/// follows it exactly; only the call that made a plan re-plans it.
public struct BudgetPlanner: Sendable {
  /// Batches at the full learning rate from which the speed is measured.
  public static let calibrationBatches = 20

  /// Evaluation's seconds per example as a share of training's: a forward pass is about a third
  /// of a training step's arithmetic; evaluation's smaller batches make it run slower than
  /// that, so the plan budgets 0.4 until the run has measured its own epoch ends.
  public static let evaluationCostShare = 0.4

  /// The estimated seconds of evaluating `examples` examples, at ``evaluationCostShare`` of
  /// training's cost per example (`secondsPerStep` trains `trainExamplesPerStep` examples).
  public static func estimatedEvaluationSeconds(examples: Int, secondsPerStep: Double, trainExamplesPerStep: Int)
    -> Double
  {
    evaluationCostShare * secondsPerStep / Double(max(trainExamplesPerStep, 1)) * Double(examples)
  }

  /// The share of the time left that a budget plan fills, and that a plan shortened by
  /// ``replannedSteps(planned:remainingSeconds:secondsPerStep:stepsDone:stepsPerEpoch:maxSteps:secondsPerEpochEnd:finalSeconds:)``
  /// fills (lower, so that a slow drift does not re-plan at every check).
  static let (planShare, replanShare) = (0.98, 0.95)

  /// The share of a budget plan during which its checks may also lengthen it. In its last tenth
  /// the cosine factor is below 0.025, so a longer plan would gain little, and a plan lengthened
  /// there would leave the run's last minutes only a 2% margin against a slowdown.
  static let lengtheningShare = 0.9

  /// The seconds a plan of `steps` more units costs from `stepsDone`: the steps, one epoch end
  /// (validation, checkpoints, progress files) per epoch begun, and the final test.
  static func plannedSeconds(
    _ steps: Int, secondsPerStep: Double, stepsDone: Int, stepsPerEpoch: Int, secondsPerEpochEnd: Double,
    finalSeconds: Double
  ) -> Double {
    let epochEnds = (stepsDone + steps + stepsPerEpoch - 1) / stepsPerEpoch - stepsDone / stepsPerEpoch
    return Double(steps) * secondsPerStep + Double(epochEnds) * secondsPerEpochEnd + finalSeconds
  }

  /// The end of a budget-planned cosine schedule, in units since the run began: the most units
  /// whose training at `secondsPerStep`, plus one epoch end (`secondsPerEpochEnd`: validation,
  /// checkpoints) per epoch begun and the final test (`finalSeconds`), fit in 98% of
  /// `remainingSeconds`; never more than `maxSteps` (the run's epochs) and never fewer than
  /// `stepsDone` + 1.
  public static func plannedSteps(
    remainingSeconds: Double, secondsPerStep: Double, stepsDone: Int, stepsPerEpoch: Int, maxSteps: Int,
    secondsPerEpochEnd: Double, finalSeconds: Double
  ) -> Int {
    plannedSteps(
      filling: planShare, of: remainingSeconds, secondsPerStep: secondsPerStep, stepsDone: stepsDone,
      stepsPerEpoch: stepsPerEpoch, maxSteps: maxSteps, secondsPerEpochEnd: secondsPerEpochEnd,
      finalSeconds: finalSeconds)
  }

  /// The most steps that fit in `share` of `remainingSeconds` (see the public overload).
  static func plannedSteps(
    filling share: Double, of remainingSeconds: Double, secondsPerStep: Double, stepsDone: Int,
    stepsPerEpoch: Int, maxSteps: Int, secondsPerEpochEnd: Double, finalSeconds: Double
  ) -> Int {
    func seconds(_ steps: Int) -> Double {
      plannedSeconds(
        steps, secondsPerStep: secondsPerStep, stepsDone: stepsDone, stepsPerEpoch: stepsPerEpoch,
        secondsPerEpochEnd: secondsPerEpochEnd, finalSeconds: finalSeconds)
    }
    let available = share * remainingSeconds
    // seconds(steps) grows with steps: the largest that fits, by bisection.
    var (low, high) = (0, max(0, min(maxSteps - stepsDone, Int(available / max(secondsPerStep, 1e-12)))))
    while low < high {
      let mid = (low + high + 1) / 2
      if seconds(mid) <= available { low = mid } else { high = mid - 1 }
    }
    return stepsDone + max(low, 1)
  }

  /// A budget plan checked against the run's measured costs: before the last tenth of the plan
  /// (`lengtheningShare`), if even the plan that fills 95% of `remainingSeconds` at these costs is
  /// more than 1% longer, the plan that fills 98%, of at most `maxSteps` (the run's epochs).
  /// Otherwise `nil` while the rest of `planned` still fits in 98% of `remainingSeconds`, else
  /// the shorter plan that fits in 95%. (The gap between the two shares keeps a slow drift or the
  /// noise of the measured speed from re-planning at every check, and a re-planned plan from
  /// being changed back at the next.) The first batches, which the first plan is made from, can
  /// run slower than the rest (measured: 12.0 ms per step against 9.3 over the whole run,
  /// `awd-medium-cosine` on PTB), and a machine can slow down for a while and recover
  /// (measured: one interval at 7.2 ms a step against 6.2–6.5, a 500-unit model on PTB): a plan
  /// follows both ways, and the loop continues the cosine from where it stood
  /// (``cosineFraction(steps:planned:anchor:)``), so a longer plan anneals more slowly from there
  /// instead of raising the rate.
  public static func replannedSteps(
    planned: Int, remainingSeconds: Double, secondsPerStep: Double, stepsDone: Int, stepsPerEpoch: Int,
    maxSteps: Int, secondsPerEpochEnd: Double, finalSeconds: Double
  ) -> Int? {
    guard planned > stepsDone else { return nil }
    func plan(filling share: Double, maxSteps: Int) -> Int {
      plannedSteps(
        filling: share, of: remainingSeconds, secondsPerStep: secondsPerStep, stepsDone: stepsDone,
        stepsPerEpoch: stepsPerEpoch, maxSteps: maxSteps, secondsPerEpochEnd: secondsPerEpochEnd,
        finalSeconds: finalSeconds)
    }
    if Double(stepsDone) < lengtheningShare * Double(planned),
      plan(filling: replanShare, maxSteps: maxSteps) > planned + planned / 100
    {
      return plan(filling: planShare, maxSteps: maxSteps)
    }
    let rest = plannedSeconds(
      planned - stepsDone, secondsPerStep: secondsPerStep, stepsDone: stepsDone, stepsPerEpoch: stepsPerEpoch,
      secondsPerEpochEnd: secondsPerEpochEnd, finalSeconds: finalSeconds)
    guard rest > planShare * remainingSeconds else { return nil }
    let shorter = plan(filling: replanShare, maxSteps: planned)
    return shorter < planned ? shorter : nil
  }

  /// The fraction of a budget-planned cosine done after `steps` units: `steps` / `planned` for a
  /// plan never re-planned (`anchor` nil); after a re-plan, the fraction reached at the anchor
  /// plus the rest in proportion to the steps since, so that it is continuous and
  /// non-decreasing across the re-plan and reaches 1 at `planned`.
  public static func cosineFraction(steps: Int, planned: Int, anchor: PlanAnchor?) -> Double {
    guard let anchor else { return Double(steps) / Double(planned) }
    let span = Double(max(planned - anchor.steps, 1))
    return anchor.fraction + (1 - anchor.fraction) * Double(steps - anchor.steps) / span
  }

  // MARK: One call's planning

  /// What the planner needs to know of the run: its units per epoch and in all its epochs, the
  /// examples a unit trains, and the examples of a validation and of the final test.
  package struct Run: Sendable {
    package var stepsPerEpoch: Int, maxSteps: Int, examplesPerStep: Int, validExamples: Int, testExamples: Int
  }

  /// The time budget in minutes, from `start`.
  let minutes: Double
  let start: Date
  let run: Run
  /// This call's measured speed after its first batch until the plan is made, then since
  /// (the first batches can run slower than the rest); and since the plan's last check (a
  /// machine that slows down shows there first).
  private var calibration = (seconds: 0.0, steps: 0), recent = (seconds: 0.0, steps: 0)
  /// The measured cost of this call's epoch ends (validation, checkpoints, progress files).
  private var epochEnds = (seconds: 0.0, count: 0)
  /// Whether this call made the plan: only that call checks it against its budget.
  private(set) var plannedThisCall = false

  /// A planner for a call with `minutes` of budget that began at `start`.
  package init(minutes: Double, start: Date, run: Run) {
    (self.minutes, self.start, self.run) = (minutes, start, run)
  }

  /// Counts a training step of `steps` units that took `seconds` (not the call's first).
  package mutating func recordStep(seconds: Double, steps: Int) {
    calibration = (calibration.seconds + seconds, calibration.steps + steps)
    recent = (recent.seconds + seconds, recent.steps + steps)
  }

  /// Counts an epoch end that took `seconds`.
  package mutating func recordEpochEnd(seconds: Double) {
    epochEnds = (epochEnds.seconds + seconds, epochEnds.count + 1)
  }

  /// A plan's costs: an epoch end's and the final test's, measured once an epoch has ended in
  /// this call, estimated from the training speed before.
  private func costs(secondsPerStep: Double) -> (epochEnd: Double, final: Double) {
    func estimate(_ examples: Int) -> Double {
      Self.estimatedEvaluationSeconds(
        examples: examples, secondsPerStep: secondsPerStep, trainExamplesPerStep: run.examplesPerStep)
    }
    guard epochEnds.count > 0 else { return (estimate(run.validExamples), estimate(run.testExamples)) }
    let epochEnd = epochEnds.seconds / Double(epochEnds.count)
    return (epochEnd, epochEnd * max(1, Double(run.testExamples) / Double(max(run.validExamples, 1))))
  }

  /// The seconds left of the budget at `now`.
  private func secondsLeft(_ now: Date) -> Double { 60 * minutes - now.timeIntervalSince(start) }

  /// Makes the plan once ``calibrationBatches`` batches of the run are done (`batchesDone`) and
  /// this call has measured a step; `stepsDone` units of the run are done. Returns the line
  /// that announces it, or nil when no plan was made.
  package mutating func planIfDue<R>(_ state: inout LoopState<R>, batchesDone: Int, stepsDone: Int, now: Date)
    -> String?
  {
    guard state.plannedSteps == nil, calibration.steps > 0, batchesDone >= Self.calibrationBatches else {
      return nil
    }
    let secondsPerStep = calibration.seconds / Double(calibration.steps)
    let c = costs(secondsPerStep: secondsPerStep)
    let planned = Self.plannedSteps(
      remainingSeconds: secondsLeft(now), secondsPerStep: secondsPerStep, stepsDone: stepsDone,
      stepsPerEpoch: run.stepsPerEpoch, maxSteps: run.maxSteps, secondsPerEpochEnd: c.epochEnd, finalSeconds: c.final)
    state.plannedSteps = planned
    plannedThisCall = true
    (calibration, recent) = ((0, 0), (0, 0))
    return String(
      format:
        "cosine schedule planned to end after %d %@ (%.2f epochs), at %.1f ms per %@, within the %g-minute budget",
      planned, unitNames.plural, Double(planned) / Double(run.stepsPerEpoch), 1000 * secondsPerStep, unitNames.one,
      minutes)
  }

  /// Re-plans this call's plan: shorter if it no longer fits the time left, longer (before its
  /// last tenth) if it leaves time unused; the cosine continues from the fraction it had reached.
  /// Returns the line that says so, or nil when the plan stands.
  package mutating func check<R>(_ state: inout LoopState<R>, stepsDone: Int, now: Date) -> String? {
    guard plannedThisCall, let planned = state.plannedSteps, calibration.steps > 0 else { return nil }
    // The slower of the call's mean speed and the speed since the last check.
    var secondsPerStep = calibration.seconds / Double(calibration.steps)
    if recent.steps > 0 { secondsPerStep = max(secondsPerStep, recent.seconds / Double(recent.steps)) }
    recent = (0, 0)
    let c = costs(secondsPerStep: secondsPerStep)
    guard
      let replanned = Self.replannedSteps(
        planned: planned, remainingSeconds: secondsLeft(now), secondsPerStep: secondsPerStep, stepsDone: stepsDone,
        stepsPerEpoch: run.stepsPerEpoch, maxSteps: run.maxSteps, secondsPerEpochEnd: c.epochEnd,
        finalSeconds: c.final)
    else { return nil }
    let fraction = Self.cosineFraction(steps: stepsDone, planned: planned, anchor: state.planAnchor)
    state.planAnchor = PlanAnchor(steps: stepsDone, fraction: fraction)
    state.plannedSteps = replanned
    return String(
      format:
        "cosine schedule re-planned to end after %d %@ (%.2f epochs): at %.1f ms per %@ and %.2f s per epoch end the plan of %d ",
      replanned, unitNames.plural, Double(replanned) / Double(run.stepsPerEpoch), 1000 * secondsPerStep,
      unitNames.one, c.epochEnd, planned)
      + (replanned > planned ? "left time unused" : "no longer fit the budget")
  }

  /// What a unit is called in the plan's lines: a language model's "steps per stream", a
  /// task's "batches".
  package var unitNames: (one: String, plural: String) = ("step", "steps per stream")
}
