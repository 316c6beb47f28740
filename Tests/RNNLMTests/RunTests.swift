import Foundation
import Testing

@testable import RNNLM

/// Checkpoints, resumption, budgets, the schedule and the files a run writes, on the project's
/// grammar corpus.
@Suite struct RunTests {
  static func dataset() throws -> Dataset {
    var v = Vocabulary()
    let train = try Corpus.tokenize(grammarText(sentences: 300, seed: 1), path: "train", vocabulary: &v, extend: true)
    let valid = try Corpus.tokenize(grammarText(sentences: 40, seed: 2), path: "valid", vocabulary: &v, extend: false)
    let test = try Corpus.tokenize(grammarText(sentences: 40, seed: 3), path: "test", vocabulary: &v, extend: false)
    return Dataset(vocabulary: v, train: train, valid: valid, test: test)
  }

  /// Two LSTM layers, tied, with dropout, so that resuming must restore the generator too.
  static let config = ModelConfig(
    vocabularySize: 13, embeddingSize: 6, hiddenSize: 6, layers: 2, tied: true, dropout: 0.3)

  static func options(epochs: Int = 3, optimizer: OptimizerKind = .sgd) -> TrainingOptions {
    var o = TrainingOptions()
    (o.batchSize, o.steps, o.learningRate, o.clip, o.epochs, o.evalBatchSize) = (4, 5, 1, 1, epochs, 3)
    o.seed = 77
    if optimizer != .sgd { (o.optimizer, o.learningRate, o.weightDecay) = (optimizer, 0.01, 1e-4) }
    return o
  }

  static func trainer(
    _ data: Dataset, epochs: Int = 3, cell: RecurrentCell = .lstm, optimizer: OptimizerKind = .sgd,
    adaptiveCutoffs: [Int]? = nil
  ) throws -> Trainer {
    var c = config
    c.cell = cell
    (c.adaptiveCutoffs, c.adaptiveDivision) = (adaptiveCutoffs, 2)
    return try Trainer(
      config: c, options: options(epochs: epochs, optimizer: optimizer), vocabulary: data.vocabulary.words)
  }

  static func directory() throws -> String { try DataTests.temporaryDirectory() }

  @Test func checkpointRoundTrip() throws {
    let data = try Self.dataset()
    let t = try Self.trainer(data)
    _ = try t.run(data, limits: RunLimits(maxBatches: 5))
    let original = t.checkpoint()
    let path = (try Self.directory() as NSString).appendingPathComponent("c.safetensors")
    try original.write(to: path)
    let read = try Checkpoint.read(from: path)
    #expect(read.config == original.config && read.training == original.training && read.state == original.state)
    #expect(read.vocabulary == data.vocabulary.words)
    #expect(read.parameters == original.parameters, "parameters must round-trip bit for bit")
    #expect(read.recurrentStates.count == 2 && read.recurrentStates[1] == original.recurrentStates[1])
    // The safetensors header: 8-byte little-endian length, JSON, data 8-byte aligned.
    let bytes = [UInt8](try Data(contentsOf: URL(fileURLWithPath: path)))
    let n = bytes[0..<8].enumerated().reduce(0) { $0 | Int($1.element) << (8 * $1.offset) }
    #expect((8 + n) % 8 == 0)
    let header = try JSONSerialization.jsonObject(with: Data(bytes[8..<(8 + n)])) as! [String: Any]
    let hh = header["rnn.bias_hh_l1"] as? [String: Any]
    #expect(hh?["shape"] as? [Int] == [24] && hh?["dtype"] as? String == "F32")
    #expect(header["decoder.weight"] == nil, "a tied checkpoint stores the shared matrix once, as encoder.weight")
  }

  @Test func damagedCheckpointsAreNamed() throws {
    let dir = try Self.directory()
    let data = try Self.dataset()
    let good = (dir as NSString).appendingPathComponent("good.safetensors")
    try Self.trainer(data).checkpoint().write(to: good)
    let bytes = try Data(contentsOf: URL(fileURLWithPath: good))

    #expect(throws: CheckpointError.io(path: dir + "/none", reason: "no such file or directory")) {
      try Checkpoint.read(from: dir + "/none")
    }
    func expectError(_ contents: Data, _ check: (CheckpointError) -> Bool, _ what: String) {
      do {
        _ = try Checkpoint.decode(contents, path: "x")
        Issue.record("\(what) was accepted")
      } catch let error as CheckpointError {
        #expect(check(error), "\(what): \(error)")
        #expect(error.description.hasPrefix("x"), "the message must name the file: \(error)")
      } catch { Issue.record("\(what): unexpected \(error)") }
    }
    expectError(
      Data("hello, this is text and not a checkpoint".utf8),
      {
        if case .notACheckpoint = $0 { return true } else { return false }
      }, "text")
    expectError(bytes.prefix(bytes.count - 10), { $0 == .truncated(path: "x") }, "a truncated file")
    expectError(bytes.prefix(40), { $0 == .truncated(path: "x") }, "a file cut inside its header")
    // The same file with its version field changed byte for byte.
    var newer = bytes
    let tag = Data("\"version\":\"1\"".utf8)
    let found = try #require(newer.range(of: tag))
    newer[found.upperBound - 2] = UInt8(ascii: "9")
    expectError(newer, { $0 == .incompatibleVersion(path: "x", found: "9") }, "a version-9 file")
    // A header that lies about a tensor (negative shape, reversed offsets) is refused, not trusted.
    var lying = bytes
    let bias = try #require(lying.range(of: Data("\"decoder.bias\":{\"data_offsets\":[".utf8)))
    let rest = lying[bias.upperBound...]
    let close = try #require(rest.firstIndex(of: UInt8(ascii: "}")))
    let entry = "\"decoder.bias\":{\"data_offsets\":[8,0],\"dtype\":\"F32\",\"shape\":[-2]"
    var patched = Data(entry.utf8)
    // Keep the header length: pad the entry with spaces after its closing brace.
    let original = lying[bias.lowerBound..<close]
    #expect(patched.count <= original.count)
    patched.append(contentsOf: [UInt8](repeating: 0x20, count: original.count - patched.count))
    lying.replaceSubrange(bias.lowerBound..<close, with: patched)
    expectError(
      lying,
      {
        if case .notACheckpoint(_, let reason) = $0 { return reason.contains("decoder.bias") } else { return false }
      }, "a negative shape")
  }

  /// A failed save leaves the previous file as it was and no temporary file behind.
  @Test func savingIsAtomic() throws {
    let dir = try Self.directory()
    let data = try Self.dataset()
    let t = try Self.trainer(data)
    let path = (dir as NSString).appendingPathComponent("last.safetensors")
    try t.checkpoint().write(to: path)
    let before = try Data(contentsOf: URL(fileURLWithPath: path))
    // The destination's directory replaced by a file: the temporary file cannot be created.
    let blocked = (dir as NSString).appendingPathComponent("blocked")
    try Data("x".utf8).write(to: URL(fileURLWithPath: blocked))
    #expect(throws: CheckpointError.self) { try t.checkpoint().write(to: blocked + "/last.safetensors") }
    // Overwriting a directory fails at the rename: the directory and its content survive.
    let occupied = (dir as NSString).appendingPathComponent("occupied")
    try FileManager.default.createDirectory(atPath: occupied, withIntermediateDirectories: true)
    try Data("keep".utf8).write(to: URL(fileURLWithPath: occupied + "/file"))
    #expect(throws: CheckpointError.self) { try t.checkpoint().write(to: occupied) }
    #expect(try String(contentsOfFile: occupied + "/file", encoding: .utf8) == "keep")
    #expect(try Data(contentsOf: URL(fileURLWithPath: path)) == before)
    let leftovers = try FileManager.default.contentsOfDirectory(atPath: dir).filter { $0.contains(".tmp-") }
    #expect(leftovers.isEmpty, "temporary files left: \(leftovers)")
  }

  /// Stopping after epoch 1, then in the middle of epoch 2, and resuming each time gives the
  /// same perplexities, bit for bit, as the run that was never interrupted, for every cell.
  @Test(arguments: RecurrentCell.allCases)
  func resumingIsExact(cell: RecurrentCell) throws {
    let data = try Self.dataset()
    let whole = try Self.trainer(data, cell: cell).run(data, limits: RunLimits(saveDirectory: try Self.directory()))

    let dir = try Self.directory()
    let last = (dir as NSString).appendingPathComponent("last.safetensors")
    let first = try Self.trainer(data, cell: cell).run(data, limits: RunLimits(maxEpochs: 1, saveDirectory: dir))
    #expect(first.epochs.count == 1 && first.stoppedEarly != nil)
    let second = try Trainer(resuming: Checkpoint.read(from: last)).run(
      data, limits: RunLimits(maxBatches: 7, saveDirectory: dir))
    #expect(second.epochs.count == 1 && second.stoppedEarly != nil)
    #expect(try Checkpoint.read(from: last).state.batchesInEpoch == 7)
    let resumed = try Trainer(resuming: Checkpoint.read(from: last)).run(data, limits: RunLimits(saveDirectory: dir))

    #expect(resumed.stoppedEarly == nil && resumed.epochs.count == 3)
    for (a, b) in zip(whole.epochs, resumed.epochs) {
      #expect(a.trainPerplexity == b.trainPerplexity, "epoch \(a.epoch) training perplexity")
      #expect(a.validPerplexity == b.validPerplexity, "epoch \(a.epoch) validation perplexity")
      #expect(a.learningRate == b.learningRate)
    }
    #expect(whole.testPerplexity == resumed.testPerplexity)
    #expect(whole.bestValidPerplexity == resumed.bestValidPerplexity)
  }

  /// With Adam or RMSprop (and weight decay) the optimizer's moments and step count travel in
  /// last.safetensors: a run stopped in the middle of an epoch and resumed equals the run that
  /// was never stopped, bit for bit.
  @Test(arguments: [OptimizerKind.adam, .rmsprop])
  func resumingWithOptimizerStateIsExact(optimizer: OptimizerKind) throws {
    let data = try Self.dataset()
    let whole = try Self.trainer(data, epochs: 2, optimizer: optimizer).run(data)
    let dir = try Self.directory()
    let last = (dir as NSString).appendingPathComponent("last.safetensors")
    _ = try Self.trainer(data, epochs: 2, optimizer: optimizer).run(
      data, limits: RunLimits(maxBatches: 9, saveDirectory: dir))
    let saved = try Checkpoint.read(from: last)
    #expect(saved.optimizerState.count == optimizer.stateNames.count && saved.state.optimizerSteps == 9)
    #expect(saved.training.optimizer == optimizer)
    let resumed = try Trainer(resuming: saved)
    #expect(resumed.resumedWithCarriedState)
    let report = try resumed.run(data, limits: RunLimits(saveDirectory: dir))
    for (a, b) in zip(whole.epochs, report.epochs) {
      #expect(a.trainPerplexity == b.trainPerplexity && a.validPerplexity == b.validPerplexity, "epoch \(a.epoch)")
    }
    #expect(whole.testPerplexity == report.testPerplexity)
    // best.safetensors has no moments: resuming from it starts them again, and says so.
    let best = try Checkpoint.read(from: (dir as NSString).appendingPathComponent("best.safetensors"))
    #expect(best.optimizerState.isEmpty)
    #expect(try !Trainer(resuming: best).resumedWithCarriedState)
  }

  /// NT-ASGD: once validation stalls the run averages the parameters; the average travels in
  /// last.safetensors with its count, and a run stopped and resumed while averaging equals the
  /// uninterrupted one bit for bit.
  @Test func averagingTriggersAndResumesExactly() throws {
    let data = try Self.dataset()
    func trainer() throws -> Trainer {
      var o = Self.options(epochs: 5)
      (o.averaging, o.nonmono, o.learningRate, o.learningRateDecay) = (true, 0, 6, 1)
      return try Trainer(config: Self.config, options: o, vocabulary: data.vocabulary.words)
    }
    let whole = try trainer()
    let wholeReport = try whole.run(data)
    let started = try #require(
      whole.state.averagedSteps, "validation never stalled: \(wholeReport.epochs.map(\.validPerplexity))")
    #expect(started > 0 && whole.average!.count == started)

    let dir = try Self.directory()
    let last = (dir as NSString).appendingPathComponent("last.safetensors")
    let perEpoch = try TrainingBatches(corpus: data.train, batchSize: 4, steps: 5).batchesPerEpoch
    // Stop a few batches before the end, while averaging.
    _ = try trainer().run(data, limits: RunLimits(maxBatches: 5 * perEpoch - 3, saveDirectory: dir))
    let saved = try Checkpoint.read(from: last)
    #expect(saved.state.averagedSteps != nil && saved.optimizerState.count == 1)
    let resumed = try Trainer(resuming: saved)
    #expect(resumed.resumedWithCarriedState)
    let report = try resumed.run(data, limits: RunLimits(saveDirectory: dir))
    #expect(report.epochs.map(\.validPerplexity) == wholeReport.epochs.map(\.validPerplexity))
    #expect(report.testPerplexity == wholeReport.testPerplexity)
    #expect(resumed.average!.values.array == whole.average!.values.array)
  }

  /// The cosine schedule's factor: 1 at the start, ½ halfway, 0 at the end, and a run with it
  /// trains differently from one without (the factor reaches the update).
  @Test func cosineSchedule() throws {
    #expect(LearningRateSchedule.cosineFactor(0) == 1)
    #expect(abs(LearningRateSchedule.cosineFactor(0.5) - 0.5) < 1e-15)
    #expect(abs(LearningRateSchedule.cosineFactor(1)) < 1e-15)
    #expect(LearningRateSchedule.cosineFactor(1.5) == LearningRateSchedule.cosineFactor(1))
    let data = try Self.dataset()
    var o = Self.options(epochs: 2)
    let plain = try Trainer(config: Self.config, options: o, vocabulary: data.vocabulary.words).run(data)
    o.cosineSchedule = true
    let annealed = try Trainer(config: Self.config, options: o, vocabulary: data.vocabulary.words).run(data)
    #expect(plain.epochs[0].trainPerplexity != annealed.epochs[0].trainPerplexity)
  }

  /// Every preset is a valid run under a unique name, and the long-run preset anneals over its
  /// epochs without NT-ASGD (the two would average iterates taken at very different rates) while
  /// keeping awd-medium's model and regularisers.
  @Test func presetsAreValidAndDistinct() throws {
    for p in Preset.all { try p.validate() }
    #expect(Set(Preset.all.map(\.name)).count == Preset.all.count)
    let (awd, long) = (Preset.awdMedium, try #require(Preset.named("awd-medium-cosine")))
    #expect(long.training.cosineSchedule && !long.training.averaging && !long.training.cosineToBudget)
    #expect(long.modelConfig(vocabularySize: 10_000) == awd.modelConfig(vocabularySize: 10_000))
    #expect(long.training.variableLength && long.training.weightDecay == awd.training.weightDecay)
    // The budget preset: the same model shape and training rules, lighter dropout and weight
    // drop, the cosine planned to the time budget.
    let budget = try #require(Preset.named("awd-medium-budget"))
    #expect(budget.training.cosineToBudget && !budget.training.cosineSchedule && !budget.training.averaging)
    let (b, a) = (budget.modelConfig(vocabularySize: 10_000), awd.modelConfig(vocabularySize: 10_000))
    #expect(b.embeddingSize == a.embeddingSize && b.hiddenSize == a.hiddenSize && b.layers == a.layers && b.tied)
    #expect(b.lockedDropout && b.embeddingDropout == a.embeddingDropout && b.weightDrop < a.weightDrop)
    #expect(budget.training.variableLength && budget.training.epochs == long.training.epochs)
  }

  /// A budget-planned schedule needs a budget, and is one schedule or the other.
  @Test func budgetPlannedCosineNeedsABudget() throws {
    let data = try Self.dataset()
    var o = Self.options()
    o.cosineToBudget = true
    let t = try Trainer(config: Self.config, options: o, vocabulary: data.vocabulary.words)
    #expect(throws: ConfigurationError.self) { try t.run(data, limits: RunLimits(maxBatches: 3)) }
    o.cosineSchedule = true
    #expect(throws: ConfigurationError.self) { try o.validate() }
  }

  /// A budget-planned schedule: planned after the calibration batches and saved; the run ends
  /// where the plan ends, in the middle of an epoch, with that epoch validated and the rate
  /// annealed to almost 0; stopped and resumed on the way, it ends with the same bits.
  @Test func budgetPlannedCosineEndsAtItsPlanAndResumesExactly() throws {
    let data = try Self.dataset()
    var o = Self.options(epochs: 50)
    o.cosineToBudget = true
    let first = try Self.directory()
    // A generous budget: the plan is bounded by the 50 epochs.
    _ = try Trainer(config: Self.config, options: o, vocabulary: data.vocabulary.words).run(
      data,
      limits: RunLimits(maxMinutes: 30, maxBatches: BudgetPlanner.calibrationBatches, saveDirectory: first))
    var calibrated = try Checkpoint.read(from: first + "/last.safetensors")
    let perEpoch = try TrainingBatches(corpus: data.train, batchSize: o.batchSize, steps: o.steps).stepsPerEpoch
    #expect(calibrated.state.plannedSteps == 50 * perEpoch)
    // A plan that ends in the middle of the third epoch, on a window's end, re-planned where the
    // calibration ended with a quarter of its cosine done.
    let planned = (2 * perEpoch + perEpoch / 2) / o.steps * o.steps
    calibrated.state.plannedSteps = planned
    let calibration = BudgetPlanner.calibrationBatches * o.steps
    calibrated.state.planAnchor = PlanAnchor(steps: calibration, fraction: 0.25)

    final class Rates: TrainingObserver {
      var rates: [Double] = []
      func batchFinished(_ p: BatchProgress) { rates.append(p.learningRate) }
      func epochFinished(_ record: EpochRecord, improved: Bool) {}
      func note(_ message: String) {}
    }
    let whole = try Trainer(resuming: calibrated)
    let rates = Rates()
    whole.observers = [rates]
    let wholeReport = try whole.run(data)
    #expect(wholeReport.stoppedEarly == nil && wholeReport.epochs.count == 3)
    #expect(whole.state.epochsCompleted == 3)
    let batchesRun = (planned - calibration) / o.steps
    #expect(rates.rates.count == batchesRun, "\(rates.rates.count) batches for a plan of \(batchesRun)")
    #expect(abs(rates.rates.first! - o.learningRate * LearningRateSchedule.cosineFactor(0.25)) < 1e-12)
    #expect(zip(rates.rates, rates.rates.dropFirst()).allSatisfy { $0 > $1 })
    #expect(rates.rates.last! < 0.001 * o.learningRate && rates.rates.last! > 0)

    let second = try Self.directory()
    _ = try Trainer(resuming: calibrated).run(data, limits: RunLimits(maxBatches: 37, saveDirectory: second))
    #expect(try Checkpoint.read(from: second + "/last.safetensors").state.planAnchor == calibrated.state.planAnchor)
    let resumed = try Trainer(resuming: try Checkpoint.read(from: second + "/last.safetensors"))
    let resumedReport = try resumed.run(data)
    #expect(resumedReport.epochs.map(\.validPerplexity) == wholeReport.epochs.map(\.validPerplexity))
    #expect(resumedReport.testPerplexity == wholeReport.testPerplexity)
    #expect(resumed.checkpoint().parameters == whole.checkpoint().parameters)
  }

  /// Variable BPTT: window lengths follow the documented rule (T with probability 0.95, else
  /// T/2, ± a normal of σ 5, at least 5, at most T + 20), and an epoch of such windows reads
  /// exactly the tokens a fixed-length epoch reads, each once.
  @Test func variableWindowsFollowTheRuleAndCoverTheEpoch() throws {
    let corpus = (0..<5000).map { Int32($0 % 97) }
    var g = SeededGenerator(seed: 12)
    let rule = try TrainingBatches(corpus: corpus, batchSize: 2, steps: 70)
    let lengths = (0..<20000).map { _ in rule.windowLength(variable: true, stepsDone: 0, generator: &g) }
    #expect(lengths.allSatisfy { (5...90).contains($0) })
    let halves = Double(lengths.filter { $0 < 52 }.count) / Double(lengths.count)  // T/2 + 3.4σ
    #expect(abs(halves - 0.05) < 5 * (0.05 * 0.95 / 20000).squareRoot(), "share of T/2 windows \(halves)")
    let long = lengths.filter { $0 >= 52 }.map(Double.init)
    let mean = long.reduce(0, +) / Double(long.count)
    let sd = (long.map { ($0 - mean) * ($0 - mean) }.reduce(0, +) / Double(long.count)).squareRoot()
    // Truncation toward zero lowers the mean by about 0.5.
    #expect(abs(mean - 69.5) < 0.2 && abs(sd - 5) < 0.2, "mean \(mean), sd \(sd)")

    // One epoch of each kind over the same text: the same (stream, target) pairs, once each.
    func epoch(variable: Bool) throws -> [Int32] {
      var b = try TrainingBatches(corpus: corpus, batchSize: 3, steps: 8)
      var g = SeededGenerator(seed: 13)
      var targets: [Int32] = []
      var done = 0
      var inputs = [Int32](repeating: 0, count: 3 * b.maxWindow)
      var out = inputs
      while done < b.stepsPerEpoch {
        let w = b.windowLength(variable: variable, stepsDone: done, generator: &g)
        b.next(inputs: &inputs, targets: &out, steps: w)
        targets += out[..<(3 * w)]
        done += w
      }
      #expect(done == b.stepsPerEpoch)
      return targets
    }
    let fixed = try epoch(variable: false)
    let variable = try epoch(variable: true)
    // Time-major (t, stream) order: regroup by stream to compare the streams' sequences.
    func byStream(_ t: [Int32]) -> [[Int32]] { (0..<3).map { s in stride(from: s, to: t.count, by: 3).map { t[$0] } } }
    #expect(byStream(fixed) == byStream(variable))
  }

  /// A variable-BPTT run with the cosine schedule, stopped in the middle of an epoch and resumed,
  /// equals the run that was never stopped, bit for bit (the window lengths come from the run's
  /// saved generator, the schedule from the steps done).
  @Test func variableBPTTResumesExactly() throws {
    let data = try Self.dataset()
    func trainer() throws -> Trainer {
      var o = Self.options(epochs: 2)
      (o.variableLength, o.cosineSchedule) = (true, true)
      return try Trainer(config: Self.config, options: o, vocabulary: data.vocabulary.words)
    }
    let whole = try trainer().run(data)
    let dir = try Self.directory()
    _ = try trainer().run(data, limits: RunLimits(maxBatches: 11, saveDirectory: dir))
    let saved = try Checkpoint.read(from: (dir as NSString).appendingPathComponent("last.safetensors"))
    #expect(saved.state.stepsInEpoch != nil && saved.state.batchesInEpoch == 11)
    let report = try Trainer(resuming: saved).run(data, limits: RunLimits(saveDirectory: dir))
    #expect(report.epochs.map(\.validPerplexity) == whole.epochs.map(\.validPerplexity))
    #expect(report.epochs.map(\.trainPerplexity) == whole.epochs.map(\.trainPerplexity))
    #expect(report.testPerplexity == whole.testPerplexity)
  }

  /// best.safetensors carries no recurrent state: resuming from it works and says it is not exact;
  /// a carried state of the wrong shape is refused rather than dropped.
  @Test func carriedStateOnResume() throws {
    let data = try Self.dataset()
    let dir = try Self.directory()
    _ = try Self.trainer(data).run(data, limits: RunLimits(maxEpochs: 1, saveDirectory: dir))
    let best = try Checkpoint.read(from: dir + "/best.safetensors")
    #expect(best.recurrentStates.isEmpty)
    #expect(try !Trainer(resuming: best).resumedWithCarriedState)
    var last = try Checkpoint.read(from: dir + "/last.safetensors")
    #expect(try Trainer(resuming: last).resumedWithCarriedState)
    last.recurrentStates.removeLast()
    #expect(throws: ConfigurationError.self) { try Trainer(resuming: last) }
  }

  /// A GRU checkpoint holds what nn.GRU loads: (3H, ·) weights, its own recurrent bias (not
  /// zeros, not folded), and one carried state tensor per layer; it round-trips bit for bit.
  @Test func gruCheckpointLayout() throws {
    let data = try Self.dataset()
    let t = try Self.trainer(data, cell: .gru)
    _ = try t.run(data, limits: RunLimits(maxBatches: 5))
    let original = t.checkpoint()
    let path = (try Self.directory() as NSString).appendingPathComponent("gru.safetensors")
    try original.write(to: path)
    let read = try Checkpoint.read(from: path)
    #expect(read.config.cell == .gru && read.parameters == original.parameters)
    #expect(read.recurrentStates.count == 2 && read.recurrentStates.allSatisfy { $0.count == 1 })
    #expect(read.recurrentStates == original.recurrentStates)
    let summary = try CheckpointSummary(contentsOf: path)
    let shapes = Dictionary(uniqueKeysWithValues: summary.tensors.map { ($0.name, $0.shape) })
    #expect(shapes["rnn.weight_ih_l0"] == [18, 6] && shapes["rnn.weight_hh_l1"] == [18, 6])
    #expect(shapes["rnn.bias_hh_l0"] == [18] && shapes["state.h_l1"] == [4, 6] && shapes["state.c_l0"] == nil)
    let view = ParameterStore<Float>.views(for: read.config.parameterLayout).first { $0.name == "rnn.bias_hh_l0" }!
    #expect(read.parameters[view.offset..<(view.offset + view.count)].contains { $0 != 0 }, "b_hh was trained")
  }

  /// A checkpoint whose configuration names another cell than its tensors were made by is
  /// refused with the tensor that does not fit, and train-ptb's flags cannot change a resumed
  /// run's cell (see TrainingFlags).
  @Test func checkpointOfAnotherCellIsRefused() throws {
    let data = try Self.dataset()
    let dir = try Self.directory()
    let path = dir + "/gru.safetensors"
    try Self.trainer(data, cell: .gru).checkpoint().write(to: path)
    try rewriteConfig(at: path, to: dir + "/as-lstm.safetensors") {
      $0.replacingOccurrences(of: "\"gru\"", with: "\"lstm\"")
    }
    let error = #expect(throws: CheckpointError.self) {
      try Trainer(resuming: Checkpoint.read(from: dir + "/as-lstm.safetensors"))
    }
    #expect("\(error.map { "\($0)" } ?? "")".contains("rnn.bias_hh_l0 has shape [18], expected [24]"))
  }

  /// A checkpoint written before there was a choice of cell (no `cell` in its configuration)
  /// is an LSTM, and evaluates to the same perplexity as the file it was made from.
  @Test func checkpointsWithoutCellAreLSTMs() throws {
    let data = try Self.dataset()
    let dir = try Self.directory()
    let t = try Self.trainer(data)
    _ = try t.run(data, limits: RunLimits(maxBatches: 5))
    try t.checkpoint().write(to: dir + "/new.safetensors")
    try rewriteConfig(at: dir + "/new.safetensors", to: dir + "/old.safetensors") {
      $0.replacingOccurrences(of: "\"cell\":\"lstm\",", with: "")
    }
    let oldHeader = try String(contentsOfFile: dir + "/old.safetensors", encoding: .isoLatin1)
    #expect(!oldHeader.contains("\"cell\""), "the rewritten file still names its cell")
    let old = try TrainedModel(contentsOf: dir + "/old.safetensors")
    #expect(old.config.cell == .lstm)
    let text = grammarText(sentences: 30, seed: 9)
    let a = try old.evaluate(text: text, batchSize: 2, steps: 5)
    let b = try TrainedModel(contentsOf: dir + "/new.safetensors").evaluate(text: text, batchSize: 2, steps: 5)
    #expect(a.perplexity == b.perplexity)
  }

  /// The header alone decides: tensors whose bytes overlap (a damaged file that would evaluate to
  /// another perplexity), bytes no tensor covers, and a configuration too large for the file are
  /// refused by the reader and by the header-only summary, before anything of the model's size
  /// is built.
  @Test func headerIsCheckedBeforeAnythingIsLoaded() throws {
    let data = try Self.dataset()
    let dir = try Self.directory()
    let good = dir + "/good.safetensors"
    try Self.trainer(data).checkpoint().write(to: good)
    func offsets(_ header: [String: Any], _ name: String) -> [Int] {
      (header[name] as! [String: Any])["data_offsets"] as! [Int]
    }
    func setOffsets(_ header: inout [String: Any], _ name: String, _ value: [Int]) {
      var entry = header[name] as! [String: Any]
      entry["data_offsets"] = value
      header[name] = entry
    }
    // decoder.bias (13 floats) moved onto the first bytes of encoder.weight: same size, overlapping.
    try rewriteHeader(at: good, to: dir + "/overlap.safetensors") { header in
      setOffsets(&header, "decoder.bias", [0, 52])
    }
    // The last tensor moved 4 bytes later, and 4 bytes appended: a gap before it, no overlap.
    try rewriteHeader(at: good, to: dir + "/gap.safetensors") { header in
      let last = header.keys.filter { $0 != "__metadata__" }.max { offsets(header, $0)[0] < offsets(header, $1)[0] }!
      let o = offsets(header, last)
      setOffsets(&header, last, [o[0] + 4, o[1] + 4])
    }
    let gap = try FileHandle(forWritingTo: URL(fileURLWithPath: dir + "/gap.safetensors"))
    try gap.seekToEnd()
    try gap.write(contentsOf: Data(count: 4))
    try gap.close()
    try rewriteConfig(at: good, to: dir + "/huge.safetensors") {
      $0.replacingOccurrences(
        of: "\"embeddingSize\":6,\"hiddenSize\":6", with: "\"embeddingSize\":100000000,\"hiddenSize\":100000000")
    }
    try rewriteConfig(at: good, to: dir + "/layers.safetensors") {
      $0.replacingOccurrences(of: "\"layers\":2", with: "\"layers\":100000000")
    }
    try rewriteConfig(at: good, to: dir + "/limit.safetensors") {
      $0.replacingOccurrences(of: "\"layers\":2", with: "\"layers\":9000000000")
    }
    for (file, words) in [
      ("overlap", "overlap"), ("gap", "unused bytes"), ("huge", "needs at least"), ("layers", "needs at least"),
      ("limit", "layers must be at most"),
    ] {
      let path = dir + "/\(file).safetensors"
      for read in [{ _ = try Checkpoint.read(from: path) }, { _ = try CheckpointSummary(contentsOf: path) }] {
        let error = #expect(throws: CheckpointError.self, "\(file)") { try read() }
        if case .mismatch(let p, let reason)? = error {
          #expect(p == path && reason.contains(words), "\(file): \(reason)")
        } else if let error {
          Issue.record("\(file): \(error)")
        }
      }
    }
    // The untouched file still loads.
    #expect(try Checkpoint.read(from: good).parameters.count == Self.config.parameterCount)
  }

  /// A stop request (what Ctrl-C does) ends the run after the current batch, saves a resumable
  /// checkpoint and still reports a test perplexity.
  @Test func stopRequestSavesAndEvaluates() throws {
    let data = try Self.dataset()
    let dir = try Self.directory()
    let t = try Self.trainer(data)
    t.requestStop()
    let report = try t.run(data, limits: RunLimits(saveDirectory: dir))
    #expect(report.stoppedEarly == "stop requested")
    #expect(report.testPerplexity.isFinite)
    let saved = try Checkpoint.read(from: dir + "/last.safetensors")
    #expect(saved.state.batchesInEpoch == 1 && saved.state.epochsCompleted == 0)
  }

  /// A diverging run names the last good checkpoint and leaves it untouched.
  @Test func divergenceKeepsLastGoodCheckpoint() throws {
    let data = try Self.dataset()
    let dir = try Self.directory()
    _ = try Self.trainer(data).run(data, limits: RunLimits(maxEpochs: 1, saveDirectory: dir))
    let path = dir + "/last.safetensors"
    let before = try Data(contentsOf: URL(fileURLWithPath: path))
    var o = Self.options()
    (o.learningRate, o.clip) = (1e30, 0)
    let t = try Trainer(config: Self.config, options: o, vocabulary: data.vocabulary.words)
    do {
      _ = try t.run(data, limits: RunLimits(saveDirectory: dir))
      Issue.record("a learning rate of 1e30 did not diverge")
    } catch let TrainingError.diverged(_, _, loss, kept) {
      #expect(!loss.isFinite)
      #expect(kept == path)
    }
    #expect(try Data(contentsOf: URL(fileURLWithPath: path)) == before)
  }

  @Test func scheduleKeepsBestAndDividesLearningRate() {
    var s = RunState(learningRate: 20, generator: SeededGenerator(seed: 1))
    #expect(s.recordValidation(150, decay: 4) && s.bestValidPerplexity == 150 && s.learningRate == 20)
    #expect(s.recordValidation(140, decay: 4) && s.learningRate == 20)
    #expect(!s.recordValidation(140, decay: 4) && s.learningRate == 5 && s.bestValidPerplexity == 140)
    #expect(!s.recordValidation(.nan, decay: 4) && s.learningRate == 1.25)
    #expect(s.recordValidation(139, decay: 4) && s.learningRate == 1.25)
  }

  /// metrics.csv gets a row per log line and per epoch; curve.svg plots every epoch.
  @Test func metricsFilesAreWritten() throws {
    let data = try Self.dataset()
    let dir = try Self.directory()
    var o = Self.options(epochs: 2)
    o.logInterval = 20
    let t = try Trainer(config: Self.config, options: o, vocabulary: data.vocabulary.words)
    t.observers = [try MetricsWriter(directory: dir)]
    let report = try t.run(data, limits: RunLimits(saveDirectory: dir))
    let perEpoch = try TrainingBatches(corpus: data.train, batchSize: 4, steps: 5).batchesPerEpoch
    let rows = try String(contentsOfFile: dir + "/metrics.csv", encoding: .utf8).split(separator: "\n")
    let logLines = perEpoch / 20 + (perEpoch % 20 == 0 ? 0 : 1)
    #expect(rows.count == 1 + 2 * (logLines + 1))
    #expect(rows.filter { $0.contains(",end,") }.count == 2)
    let valid = String(format: "%.4f", report.epochs[1].validPerplexity)
    #expect(rows.last!.contains(valid))
    let svg = try String(contentsOfFile: dir + "/curve.svg", encoding: .utf8)
    #expect(svg.hasPrefix("<svg") && svg.components(separatedBy: "<polyline").count == 3)
    #expect(svg.components(separatedBy: "<circle").count == 1 + 2 * 2)
  }
}

/// Copies the checkpoint at `path` to `destination` with its JSON header changed by `edit`; the
/// header length is rewritten, the data kept.
func rewriteHeader(at path: String, to destination: String, _ edit: (inout [String: Any]) -> Void) throws {
  let bytes = [UInt8](try Data(contentsOf: URL(fileURLWithPath: path)))
  let n = bytes[0..<8].enumerated().reduce(0) { $0 | Int($1.element) << (8 * $1.offset) }
  var header = try JSONSerialization.jsonObject(with: Data(bytes[8..<(8 + n)])) as! [String: Any]
  edit(&header)
  var json = try JSONSerialization.data(withJSONObject: header, options: [.sortedKeys])
  while (8 + json.count) % 8 != 0 { json.append(0x20) }
  var out = Data()
  withUnsafeBytes(of: UInt64(json.count).littleEndian) { out.append(contentsOf: $0) }
  out.append(json)
  out.append(contentsOf: bytes[(8 + n)...])
  try out.write(to: URL(fileURLWithPath: destination))
}

/// ``rewriteHeader(at:to:_:)`` for the `config` metadata (a JSON string inside the JSON header).
func rewriteConfig(at path: String, to destination: String, _ edit: (String) -> String) throws {
  try rewriteHeader(at: path, to: destination) { header in
    var meta = header["__metadata__"] as! [String: String]
    meta["config"] = edit(meta["config"]!)
    header["__metadata__"] = meta
  }
}
