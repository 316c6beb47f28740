import AllocationCounter
import ArgumentParser
import COpenBLAS
import Foundation
import RNNLM
import RNNLMCommandLine

/// Matrix-product FLOPs per token of the model, counted from its shapes.
///
/// Forward: each recurrent layer 2·(D_in + H)·G·H with G gate blocks (LSTM 4, GRU 3, RNN 1: the
/// input projection and the recurrent product), the output layer 2·H·V. Backward: every product
/// has two (one for the weight gradient, one for the input gradient), so training costs 3× the
/// forward FLOPs. Elementwise work (gates, softmax, dropout, SGD) is not counted: it is
/// memory-bound and small in FLOPs.
///
/// With the adaptive softmax the output layer is 2·H·(c₁ + k) for the head plus, for the fraction
/// fᵢ of tokens in tail cluster i, 2·hᵢ·(H + |cluster i|) (`clusterFractions`, from the corpus).
func forwardFLOPsPerToken(_ c: ModelConfig, clusterFractions: [Double] = []) -> Double {
  var f = 0.0
  for l in 0..<c.layers {
    f += c.cell.forwardFLOPsPerToken(inputSize: l == 0 ? c.embeddingSize : c.hiddenSize, hiddenSize: c.hiddenSize)
  }
  if let a = c.adaptiveShape { return f + 2 * a.multiplyAdds(inputSize: c.hiddenSize, fractions: clusterFractions) }
  return f + 2 * Double(c.hiddenSize) * Double(c.vocabularySize)
}

/// The fraction of `tokens` in each tail cluster of `shape`.
func clusterFractions(_ shape: AdaptiveSoftmaxShape, _ tokens: [Int32]) -> [Double] {
  var counts = [Int](repeating: 0, count: shape.clusters)
  for t in tokens { if let i = shape.cluster(of: Int(t)) { counts[i] += 1 } }
  return counts.map { Double($0) / Double(max(tokens.count, 1)) }
}

func median(_ xs: [Double]) -> Double {
  let s = xs.sorted()
  return s.count % 2 == 1 ? s[s.count / 2] : (s[s.count / 2 - 1] + s[s.count / 2]) / 2
}

func now() -> Double { Double(DispatchTime.now().uptimeNanoseconds) * 1e-9 }

/// Peak resident set size of this process so far, in MiB.
func peakResidentMB() -> Double {
  var usage = rusage()
  getrusage(__rusage_who_t(RUSAGE_SELF.rawValue), &usage)
  return Double(usage.ru_maxrss) / 1024  // Linux reports kilobytes
}

/// Median GFLOP/s of `call`, a product of `flops`, over `repeats` timings of about 0.2 s each.
func rate(flops: Double, repeats: Int, _ call: () -> Void) -> Double {
  call()
  let calls = max(1, Int(0.2 / max(flops / 50e9, 1e-7)))
  var rates: [Double] = []
  for _ in 0..<repeats {
    let t0 = now()
    for _ in 0..<calls { call() }
    rates.append(flops * Double(calls) / (now() - t0) / 1e9)
  }
  return median(rates)
}

/// Random (rows, cols) Float matrix.
func randomMatrix(_ count: Int, _ g: inout SeededGenerator) throws -> Buffer<Float> {
  let m = try Buffer<Float>(count: count)
  for i in 0..<count { m.pointer[i] = Float(g.nextNormal()) }
  return m
}

/// sgemm GFLOP/s for C (m, n) = A (m, k) · Bᵀ with B stored (n, k), as the layers call it.
/// `openBLASThreads` > 0: OpenBLAS's cblas_sgemm on its own pool of that many threads (how the
/// toolkit called it before it had a team); 0: the toolkit's `gemm`, which splits C over the team
/// and runs OpenBLAS single-threaded in each thread.
func sgemmRate(m: Int, n: Int, k: Int, repeats: Int, openBLASThreads: Int) throws -> Double {
  var g = SeededGenerator(seed: 1)
  let a = try randomMatrix(m * k, &g)
  let b = try randomMatrix(n * k, &g)
  let c = try Buffer<Float>(count: m * n)
  let flops = 2.0 * Double(m) * Double(n) * Double(k)
  if openBLASThreads > 0 {
    openblas_set_num_threads(Int32(openBLASThreads))
    defer {
      openblas_set_num_threads(1)
      // OpenBLAS's idle workers spin for up to 2^28 cycles before they sleep: let them.
      Thread.sleep(forTimeInterval: 0.5)
    }
    return rate(flops: flops, repeats: repeats) {
      cblas_sgemm(
        CblasRowMajor, CblasNoTrans, CblasTrans, Int32(m), Int32(n), Int32(k), 1, a.pointer, Int32(k), b.pointer,
        Int32(k), 0, c.pointer, Int32(n))
    }
  }
  return rate(flops: flops, repeats: repeats) {
    gemm(transposeB: true, m: m, n: n, k: k, a: a.pointer, lda: k, b: b.pointer, ldb: k, c: c.pointer, ldc: n)
  }
}

/// GFLOP/s of one layer's time loops (forward; backward) for batch n, hidden size h, `steps` steps,
/// counting only their products (2·n·h·G·h per step; backward has steps - 1), with the elementwise
/// kernels inside the time measured: a layer of `cell` (H inputs) runs forward and backward, and
/// its profiler's "recurrent loop" parts are read; medians.
func loopRates(cell: RecurrentCell, n: Int, h: Int, steps: Int, repeats: Int) throws -> (
  forward: Double, backward: Double
) {
  var g = SeededGenerator(seed: 2)
  let config = ModelConfig(vocabularySize: 2, embeddingSize: h, hiddenSize: h, layers: 1, cell: cell)
  let store = try ParameterStore<Float>(layout: config.parameterLayout)
  for i in 0..<store.count { store.values.pointer[i] = Float(g.nextNormal() * 0.05) }
  let layer = try cell.makeLayer(
    layer: 0, inputSize: h, hiddenSize: h, batchSize: n, maxSteps: steps, parameters: store, scratch: ScratchPool())
  let x = try randomMatrix(steps * n * h, &g)
  let dOut = try randomMatrix(steps * n * h, &g)
  let perStep = 2.0 * Double(n) * Double(h) * Double(cell.gateCount * h)
  var forward: [Double] = []
  var backward: [Double] = []
  for _ in 0..<(max(repeats, 1) * 10 + 1) {
    let profiler = Profiler()
    layer.profiler = profiler
    layer.resetState()
    layer.forward(input: x.pointer, steps: steps)
    layer.backward(dOutput: dOut.pointer)
    let loop = { (prefix: String) in
      profiler.seconds.first { $0.key.hasPrefix("\(cell.rawValue) \(prefix): recurrent loop") }?.value ?? .nan
    }
    forward.append(perStep * Double(steps) / loop("fwd") / 1e9)
    backward.append(perStep * Double(steps - 1) / loop("bwd") / 1e9)
  }
  return (median(Array(forward.dropFirst())), median(Array(backward.dropFirst())))
}

struct ThroughputBenchmark: ParsableCommand {
  static let configuration = CommandConfiguration(
    commandName: "throughput-bench",
    abstract: "Speed of training and evaluation steps against this machine's sgemm rate, measured in one run.",
    subcommands: [LanguageModelThroughput.self, ClassifierThroughput.self, AllreduceThroughput.self],
    defaultSubcommand: LanguageModelThroughput.self)
}

struct LanguageModelThroughput: ParsableCommand {
  static let configuration = CommandConfiguration(
    commandName: "lm",
    abstract: "Tokens/s and achieved GFLOP/s of training and evaluation steps against this machine's sgemm rate.",
    discussion: """
      Measures, in one run: sgemm GFLOP/s for the model's large shapes and its per-step shape; then K training steps and K evaluation steps on real PTB batches after a warm-up, repeated; prints medians, FLOPs per token, achieved GFLOP/s and its ratio to the large-shape sgemm rate, peak resident memory and the thread count. Evaluation steps use the training batch N unless --eval-batch-size is given; they run as one evaluation pass does, the first layer's input projection computed once per distinct word and copied after. --eval-pass also times whole passes over the validation text. --breakdown times each part of a training step and of an evaluation step.

      Examples:
        throughput-bench --preset small
        throughput-bench --preset medium --steps 10 --breakdown
        throughput-bench --preset medium --eval-batch-size 80
      """)

  @OptionGroup var flags: TrainingFlags
  @Option(name: .customLong("steps"), help: "Training (and evaluation) steps per repeat.") var measuredSteps = 20
  @Option(help: "Warm-up steps.") var warmup = 3
  @Option(help: "Repeats (medians are reported).") var repeats = 5
  @Flag(help: "Time each part of a training step.") var breakdown = false
  @Flag(
    help: """
      Also time whole evaluation passes over the validation text, as train-ptb's validation and \
      rnnlm evaluate run them (--eval-batch-size streams, --bptt steps).
      """)
  var evalPass = false

  func run() throws {
    if let threads = flags.run.threads { ComputeThreads.set(threads) }
    let preset = try flags.resolvedPreset()
    var dataset = try PTB.load(directory: try PTB.locate(explicit: flags.data), verify: !flags.noVerify)
    // As train-ptb does: the adaptive softmax's clusters need the vocabulary in order of frequency.
    if let reordered = try flags.reorderedVocabulary(of: dataset, for: preset) { dataset = reordered }
    let config = preset.modelConfig(vocabularySize: dataset.vocabulary.count)
    try config.validate()
    let t = preset.training
    let trainer = try Trainer(config: config, options: t, vocabulary: dataset.vocabulary.words)
    let model = trainer.model
    let n = t.batchSize
    let steps = t.steps
    let rows = n * steps
    let h = config.hiddenSize
    let v = config.vocabularySize

    say(
      "preset \(preset.name): \(config.cell), V \(v), D \(config.embeddingSize), H \(h), layers \(config.layers), tied \(config.tied), dropout \(config.dropout), \(outputLayer(config)); N \(n), T \(steps)"
    )
    let fractions = config.adaptiveShape.map { clusterFractions($0, dataset.train) } ?? []
    if !fractions.isEmpty {
      say(
        "training tokens in each tail cluster: "
          + fractions.map { String(format: "%.1f%%", 100 * $0) }.joined(separator: ", "))
    }
    say(
      "cores \(ProcessInfo.processInfo.activeProcessorCount), threads \(ComputeThreads.count), kernels \(KernelInfo.variant), OpenBLAS core \(BLASInfo.coreName)"
    )
    if let note = BLASInfo.narrowerKernelsNote { say(note) }

    var batches = try TrainingBatches(corpus: dataset.train, batchSize: n, steps: steps)
    var inputs = [Int32](repeating: 0, count: rows)
    var targets = inputs
    // The trainer's own step (zero, forward, backward, clip, SGD), as training runs it.
    func trainStep() {
      inputs.withUnsafeMutableBufferPointer { ip in
        targets.withUnsafeMutableBufferPointer { tp in
          batches.next(inputs: ip.baseAddress!, targets: tp.baseAddress!)
          _ = trainer.trainingStep(inputs: ip.baseAddress!, targets: tp.baseAddress!)
        }
      }
    }
    /// Median seconds per step over the repeats, after the warm-up.
    func medianStepTime(_ step: () -> Void) -> Double {
      for _ in 0..<warmup { step() }
      var times: [Double] = []
      for _ in 0..<repeats {
        let t0 = now()
        for _ in 0..<measuredSteps { step() }
        times.append((now() - t0) / Double(measuredSteps))
      }
      return median(times)
    }
    let trainTime = medianStepTime(trainStep)
    // Heap allocations inside training steps after the warm-up (malloc and friends are counted).
    // First make sure the counter counts: an array of 1000 integers is one allocation at least.
    let probe = rl_allocation_count()
    withExtendedLifetime([Int](repeating: 7, count: 1000)) {}
    guard rl_allocation_count() > probe else { throw RunFailure("the allocation counter does not count") }
    let allocationsBefore = rl_allocation_count()
    for _ in 0..<measuredSteps { trainStep() }
    let stepAllocations = Double(rl_allocation_count() - allocationsBefore) / Double(measuredSteps)

    // Evaluation: forward only, dropout off, sharing the training model's scratch buffers as the
    // trainer's evaluator does; with the training batch shape unless --eval-batch-size is given
    // (the trainer's own default, 10 streams, is not used here so that the two lines compare).
    let evalN = flags.evalBatchSize ?? n
    let evalRows = evalN * steps
    var evalBatches = try TrainingBatches(corpus: dataset.train, batchSize: evalN, steps: steps)
    var evalInputs = [Int32](repeating: 0, count: evalRows)
    var evalTargets = evalInputs
    let evaluator = try LanguageModel<Float>(
      config: config, parameters: model.parameters, batchSize: evalN, maxSteps: steps, scratch: model.scratch)
    evaluator.setTraining(false)
    func evalStep() {
      evalInputs.withUnsafeMutableBufferPointer { ip in
        evalTargets.withUnsafeMutableBufferPointer { tp in
          evalBatches.next(inputs: ip.baseAddress!, targets: tp.baseAddress!)
          _ = evaluator.loss(inputs: ip.baseAddress!, targets: tp.baseAddress!, steps: steps, gradient: false)
        }
      }
    }
    let evalTime = evaluator.withWordProjections { medianStepTime(evalStep) }
    // Whole passes: each starts from a zero state and an empty word-projection table.
    var passTimes: [Double] = []
    var passTokens = 0
    if evalPass {
      for _ in 0..<max(1, repeats) {
        let t0 = now()
        passTokens = evaluationLoss(of: evaluator, on: dataset.valid, steps: steps, streams: .whole(evalN)).tokens
        passTimes.append(now() - t0)
      }
    }
    // The footprint of training and evaluation, before the sgemm measurements allocate theirs.
    let peakMB = peakResidentMB()

    let threads = ComputeThreads.count
    let gates = config.cell.gateCount * h
    let ownGates = try sgemmRate(m: rows, n: gates, k: h, repeats: repeats, openBLASThreads: threads)
    let ownOutput = try sgemmRate(m: rows, n: v, k: h, repeats: repeats, openBLASThreads: threads)
    let ownStep = try sgemmRate(m: n, n: gates, k: h, repeats: repeats, openBLASThreads: threads)
    let teamGates = try sgemmRate(m: rows, n: gates, k: h, repeats: repeats, openBLASThreads: 0)
    let teamOutput = try sgemmRate(m: rows, n: v, k: h, repeats: repeats, openBLASThreads: 0)
    let loops = try loopRates(cell: config.cell, n: n, h: h, steps: steps, repeats: repeats)
    let large = max(ownGates, ownOutput, teamGates, teamOutput)
    say(
      String(
        format:
          "sgemm, OpenBLAS on its own %d threads: (N·T=%d, H=%d)·(H, G·H=%d) %6.1f | (N·T, H)·(H, V=%d) %6.1f | per step (N=%d, H)·(H, G·H) %6.1f GFLOP/s",
        threads, rows, h, gates, ownGates, v, ownOutput, n, ownStep))
    say(
      String(
        format: "sgemm, split over the toolkit's %d threads:   (N·T, H)·(H, G·H) %6.1f | (N·T, H)·(H, V) %6.1f GFLOP/s",
        threads, teamGates, teamOutput))
    say(
      String(
        format: "%@ time loops (products + gate kernels):  forward %6.1f | backward %6.1f GFLOP/s",
        config.cell.description, loops.forward,
        loops.backward))
    say(String(format: "large-shape sgemm rate (the largest above):  %6.1f GFLOP/s", large))

    let forward = forwardFLOPsPerToken(config, clusterFractions: fractions)
    func report(_ name: String, _ stepSeconds: Double, _ flopsPerToken: Double, rows: Int) {
      let gflops = flopsPerToken * Double(rows) / stepSeconds / 1e9
      say(
        String(
          format: "%@: %8.0f tokens/s | %7.2f ms/step | %6.2f MFLOP/token | %6.1f GFLOP/s | %.2f of large-shape sgemm",
          name, Double(rows) / stepSeconds, 1000 * stepSeconds, flopsPerToken / 1e6, gflops, gflops / large))
    }
    report("training  ", trainTime, 3 * forward, rows: rows)
    report(evalN == n ? "evaluation" : "evaluation (N=\(evalN))", evalTime, forward, rows: evalRows)
    if !passTimes.isEmpty {
      let seconds = median(passTimes)
      say(
        String(
          format: "evaluation pass: %8.0f tokens/s | %7.2f s/pass | the validation text's %d tokens, N=%d, T=%d",
          Double(passTokens) / seconds, seconds, passTokens, evalN, steps))
    }
    say(
      "(evaluation's FLOPs are the model's; it computes the first layer's input projection once per distinct word of the pass and copies it after)"
    )
    say(
      String(
        format:
          "peak resident memory of training and evaluation: %.0f MiB (parameters + gradients: %.0f MiB; the memory pre-check's estimate for the training model: %.0f MiB)",
        peakMB, Double(2 * 4 * config.parameterCount) / 1_048_576,
        config.bytesNeeded(batchSize: n, steps: steps) / 1_048_576))
    say(String(format: "heap allocations per training step after warm-up: %.2f", stepAllocations))
    say("medians over \(repeats) repeats of \(measuredSteps) steps after \(warmup) warm-up steps")

    if breakdown {
      printBreakdown(of: "a training step", model: model, trainStep)
      evaluator.withWordProjections {
        printBreakdown(of: "an evaluation step (N=\(evalN))", model: evaluator, evalStep)
      }
      if evalPass {
        printBreakdown(of: "a whole evaluation pass", model: evaluator, count: 1, unit: "pass") {
          _ = evaluationLoss(of: evaluator, on: dataset.valid, steps: steps, streams: .whole(evalN))
        }
      }
    }
  }

  /// Runs `step` `count` times (measuredSteps when nil) with a profiler on `model` and prints
  /// where the time went.
  func printBreakdown(
    of what: String, model: LanguageModel<Float>, count: Int? = nil, unit: String = "steps", _ step: () -> Void
  ) {
    let measuredSteps = count ?? measuredSteps
    let profiler = Profiler()
    model.profiler = profiler
    let t0 = now()
    for _ in 0..<measuredSteps { step() }
    let total = now() - t0
    model.profiler = nil
    say(
      "breakdown of \(what) (mean over \(measuredSteps) \(unit), \(String(format: "%.2f", 1000 * total / Double(measuredSteps))) ms):"
    )
    // Padded in Swift: Foundation's `%-44@` does not pad on Linux.
    func line(_ name: String, _ seconds: Double) -> String {
      "  " + name.padding(toLength: max(44, name.count), withPad: " ", startingAt: 0)
        + String(format: " %8.3f ms  %5.1f%%", 1000 * seconds / Double(measuredSteps), 100 * seconds / total)
    }
    var accounted = 0.0
    for part in profiler.order {
      let s = profiler.seconds[part]!
      accounted += s
      say(line(part, s))
    }
    say(line("other (batching, bookkeeping)", total - accounted))
  }
}

ThroughputBenchmark.mainWithOneLineErrors()
