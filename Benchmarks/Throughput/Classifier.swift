import AllocationCounter
import ArgumentParser
import Foundation
import RNNLM
import RNNLMCommandLine

/// Training speed of a text classifier on the project's generated sentiment corpus: texts/s,
/// real tokens/s, achieved GFLOP/s of the recurrent products against the sgemm rate of the same
/// shapes in the same run, padding, and heap allocations per step after warm-up.
struct ClassifierThroughput: ParsableCommand {
  static let configuration = CommandConfiguration(
    commandName: "classifier",
    abstract: "Texts/s and achieved GFLOP/s of a text classifier's training steps against sgemm, in one run.",
    discussion: """
      The texts are the generated sentiment corpus (rnnlm make-data sentiment), or the training texts of --data (labelled texts in either layout train-classifier reads, SST-2's say), batched by length as train-classifier batches them. FLOPs count the recurrent layers' products (3 × forward) over every step a batch runs, padded steps included; the embedding, pooling and output layer are not counted. Prediction: class probabilities of the training texts, dropout off, in batches of similar lengths as train-classifier evaluates.

      Examples:
        throughput-bench classifier
        throughput-bench classifier --cell gru --nhid 256 --batch-size 64
        throughput-bench classifier --data ../shared/corpora/sst2 --nhid 64
      """)

  @Option(help: "Recurrent cell.") var cell: RecurrentCell = .lstm
  @Option(help: "Embedding size D.") var emsize = 64
  @Option(help: "Hidden size H.") var nhid = 128
  @Option(help: "Recurrent layers.") var nlayers = 1
  @Option(name: .customLong("batch-size"), help: "Texts per batch N.") var batchSize = 32
  @Option(name: .customLong("repeat-text"), help: "Join this many generated reviews into one text (longer texts).")
  var repeatText = 1
  @Option(help: "Optimizer.") var optimizer: OptimizerKind = .adam
  @Option(name: .customLong("steps"), help: "Training steps per repeat.") var measuredSteps = 30
  @Option(help: "Warm-up steps.") var warmup = 5
  @Option(help: "Repeats (medians are reported).") var repeats = 5
  @Option(help: "Compute threads (default: OPENBLAS_NUM_THREADS, else the number of CPUs).") var threads: Int?
  @Option(help: "Labelled texts to time on instead of the generated corpus (its training texts).") var data: String?

  func run() throws {
    if let threads { ComputeThreads.set(threads) }
    let dir = FileManager.default.temporaryDirectory.appendingPathComponent("classifier-bench-\(getpid())").path
    defer { try? FileManager.default.removeItem(atPath: dir) }
    var data: LabelledTexts
    if let path = self.data {
      data = try LabelledTexts.load(directory: path)
    } else {
      try SentimentCorpus.write(to: dir, trainCount: 4000 * repeatText, testCount: 10, seed: 1)
      data = try LabelledTexts.load(directory: dir)
    }
    if repeatText > 1 {
      data.train = stride(from: 0, to: data.train.count - repeatText + 1, by: repeatText).map { i in
        LabelledText(
          words: data.train[i..<(i + repeatText)].flatMap(\.words), label: data.train[i + repeatText - 1].label)
      }
    }
    var options = ClassifierTrainingOptions()
    (options.batchSize, options.optimizer, options.validationSplit) = (batchSize, optimizer, 0.1)
    // Long enough that no text is cut.
    options.maxLength = data.train.map(\.words.count).max()!
    options.learningRate = optimizer == .sgd ? 0.1 : 0.001
    let prepared = ClassifierTrainer.prepare(
      data: data, options: options, embeddingSize: emsize, hiddenSize: nhid, layers: nlayers, cell: cell, dropout: 0.2,
      pooling: .last)
    let config = prepared.config
    let trainer = try ClassifierTrainer(
      config: config, options: options, vocabulary: prepared.vocabulary, classes: data.classes)
    let splits = try trainer.splits(of: data)
    let texts = splits.train
    let batches = ClassifierTrainer.epochBatches(texts: texts, batchSize: batchSize, seed: 1, epoch: 1)
    let steps = batches.map { b in b.map { texts[$0].ids.count }.max()! }
    let real = batches.map { b in b.reduce(0) { $0 + texts[$1].ids.count } }
    let meanSteps = Double(steps.reduce(0, +)) / Double(steps.count)
    say(
      "classifier: \(config.encoderDescription), V \(config.vocabularySize), D \(emsize); N \(batchSize), \(texts.count) texts of \(String(format: "%.1f", Double(real.reduce(0, +)) / Double(texts.count))) words on average, batches of \(String(format: "%.1f", meanSteps)) steps on average; \(optimizer)"
    )
    say(
      "cores \(ProcessInfo.processInfo.activeProcessorCount), threads \(ComputeThreads.count), kernels \(KernelInfo.variant), OpenBLAS core \(BLASInfo.coreName)"
    )
    if let note = BLASInfo.narrowerKernelsNote { say(note) }

    var next = 0
    var done = (texts: 0, real: 0, padded: 0)
    func trainStep() {
      let b = next % batches.count
      _ = trainer.trainingStep(texts, indices: batches[b])
      done.texts += batches[b].count
      done.real += real[b]
      done.padded += steps[b] * batchSize
      next += 1
    }
    for _ in 0..<warmup { trainStep() }
    var rates: [(texts: Double, real: Double, padded: Double)] = []
    for _ in 0..<repeats {
      done = (0, 0, 0)
      let t0 = now()
      for _ in 0..<measuredSteps { trainStep() }
      let s = now() - t0
      rates.append((Double(done.texts) / s, Double(done.real) / s, Double(done.padded) / s))
    }
    let probe = rl_allocation_count()
    withExtendedLifetime([Int](repeating: 7, count: 1000)) {}
    guard rl_allocation_count() > probe else { throw RunFailure("the allocation counter does not count") }
    let before = rl_allocation_count()
    for _ in 0..<measuredSteps { trainStep() }
    let allocations = Double(rl_allocation_count() - before) / Double(measuredSteps)

    // Prediction: as many texts as the measured training steps saw, in evaluation's batches.
    let predicted = Array(texts.prefix(measuredSteps * batchSize))
    _ = trainer.evaluate(predicted)
    var predictionRates: [Double] = []
    for _ in 0..<repeats {
      let t0 = now()
      _ = trainer.evaluate(predicted)
      predictionRates.append(Double(predicted.count) / (now() - t0))
    }

    let rows = Int((meanSteps * Double(batchSize)).rounded())
    let gates = config.cell.gateCount * nhid
    let team = try sgemmRate(m: rows, n: gates, k: nhid, repeats: repeats, openBLASThreads: 0)
    let own = try sgemmRate(m: rows, n: gates, k: nhid, repeats: repeats, openBLASThreads: ComputeThreads.count)
    let large = max(team, own)
    say(
      String(
        format:
          "sgemm (N·T=%d, H=%d)·(H, G·H=%d): %.1f GFLOP/s split over the team, %.1f on OpenBLAS's own threads",
        rows, nhid, gates, team, own))
    let textsPerSecond = median(rates.map(\.texts))
    let realPerSecond = median(rates.map(\.real))
    let paddedPerSecond = median(rates.map(\.padded))
    let gflops = config.trainingFLOPsPerToken * paddedPerSecond / 1e9
    say(
      String(
        format:
          "training: %8.0f texts/s | %8.0f words/s | %.1f%% of the steps run are padding | %.3f MFLOP/step-row | %6.1f GFLOP/s | %.2f of sgemm",
        textsPerSecond, realPerSecond, 100 * (1 - realPerSecond / paddedPerSecond),
        config.trainingFLOPsPerToken / 1e6, gflops, gflops / large))
    say(String(format: "prediction: %8.0f texts/s", median(predictionRates)))
    say(String(format: "heap allocations per training step after warm-up: %.2f", allocations))
    say(String(format: "peak resident memory: %.0f MiB", peakResidentMB()))
    say("medians over \(repeats) repeats of \(measuredSteps) steps after \(warmup) warm-up steps")
  }
}
