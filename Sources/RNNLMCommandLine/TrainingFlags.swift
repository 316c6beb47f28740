import ArgumentParser
import Foundation
import RNNLM

/// The flags of a training run, shared by `train-ptb` and the perplexity benchmark.
public struct TrainingFlags: ParsableArguments {
  public init() {}

  @Option(help: "Preset: \(Preset.all.map(\.name).joined(separator: ", ")).")
  public var preset = "small"
  @Option(help: "Directory holding ptb.train.txt, ptb.valid.txt and ptb.test.txt (or train.txt, valid.txt, test.txt).")
  public var data: String?
  @Flag(help: "Skip the SHA-256 check of files named like PTB's (for another corpus under those names).")
  public var noVerify = false
  @Flag(
    name: .customLong("map-unknown"),
    help: "Read validation and test words outside the training vocabulary as <unk> and count them.")
  public var mapUnknown = false

  @Option(
    name: .customLong("max-vocab"),
    help: ArgumentHelp(
      "Keep the N most frequent training words and read the others as <unk> (counted); the vocabulary is put in order of frequency.",
      valueName: "N"))
  public var maxVocab: Int?
  @Option(
    name: .customLong("init-from"),
    help: ArgumentHelp(
      "Start from an earlier language model (e.g. one trained on PTB) of the shape --preset and the flags give (cell, sizes, layers, tying; full softmax), on this data's vocabulary: the rows of the words it knows by spelling, new words at the mean of its rows; every recurrent layer as it was.",
      valueName: "checkpoint"))
  public var initFrom: String?

  @Option(help: "Embedding size D.") public var emsize: Int?
  @Option(help: "Hidden size H.") public var nhid: Int?
  @Option(help: "Recurrent cell: \(RecurrentCell.allCases.map(\.rawValue).joined(separator: ", ")) (default lstm).")
  public var cell: RecurrentCell?
  @Option(help: "Number of recurrent layers.") public var nlayers: Int?
  @Option(help: "Tie the output layer to the embedding (needs emsize = nhid): true or false.") public var tied: Bool?
  @Option(
    name: .customLong("adaptive-softmax"),
    help: ArgumentHelp(
      "Adaptive softmax instead of the full one, with these cutoffs (e.g. 2000,20000: a head over the 2000 most frequent words, tail clusters 2000..<20000 and 20000..<V). The vocabulary is put in order of frequency. Tied, the head's word rows are the embedding's.",
      valueName: "c1,c2,..."),
    transform: parseCutoffs)
  public var adaptiveSoftmax: [Int]?
  @Option(
    name: .customLong("adaptive-div"),
    help: "Each adaptive tail cluster projects H to H / div^(i+1) (default 4, PyTorch's div_value).")
  public var adaptiveDiv: Double?
  @Flag(
    name: .customLong("adaptive-tie-tails"),
    help:
      "Tied, with --adaptive-div 1: each tail cluster's output rows are the embedding's rows of its words too (by default only the head's are)."
  )
  public var adaptiveTieTails = false
  @Option(help: "Dropout rate in [0, 1).") public var dropout: Double?
  @Option(name: .customLong("dropout-input"), help: "Dropout rate after the embedding (default: --dropout).")
  public var dropoutInput: Double?
  @Option(name: .customLong("dropout-hidden"), help: "Dropout rate between recurrent layers (default: --dropout).")
  public var dropoutHidden: Double?
  @Option(name: .customLong("dropout-output"), help: "Dropout rate after the top layer (default: --dropout).")
  public var dropoutOutput: Double?
  @Flag(
    name: .customLong("locked-dropout"),
    help: "Variational dropout: one mask per sequence, the same at every time step.")
  public var lockedDropout = false
  @Option(
    name: .customLong("embedding-dropout"),
    help: "Drop whole words of the embedding with this probability per batch (default 0).")
  public var embeddingDropout: Double?
  @Option(
    name: .customLong("weight-drop"),
    help: "DropConnect on every layer's W_hh with this probability, one mask per batch (default 0).")
  public var weightDrop: Double?
  @Flag(
    name: .customLong("variable-bptt"),
    help: "Draw each window's length around --bptt (AWD-LSTM's rule) and scale its learning rate to match.")
  public var variableBPTT = false
  @Option(help: "Activation regularisation α on the top layer's output (default 0).") public var ar: Double?
  @Option(help: "Temporal activation regularisation β on the top layer's output (default 0).")
  public var tar: Double?
  @Option(help: "Initial learning rate (default: the preset's 20 for SGD, 0.001 for Adam and RMSprop).")
  public var lr: Double?
  @Option(
    help:
      "Update rule: \(OptimizerKind.allCases.map(\.rawValue).joined(separator: ", ")) (default sgd; PyTorch's formulas and constants)."
  )
  public var optimizer: OptimizerKind?
  @Option(name: .customLong("weight-decay"), help: "L2 weight decay added to every gradient (default 0).")
  public var weightDecay: Double?
  @Option(help: "Global gradient-norm clip; 0 disables it.") public var clip: Double?
  @Option(help: "Epochs of the whole run.") public var epochs: Int?
  @Option(name: .customLong("batch-size"), help: "Training batch size N.") public var batchSize: Int?
  @Option(help: "Truncated BPTT length T.") public var bptt: Int?
  @Option(name: .customLong("eval-batch-size"), help: "Streams for validation/test perplexity.")
  public var evalBatchSize: Int?
  @Option(name: .customLong("log-interval"), help: "Batches between log lines.") public var logInterval: Int?
  @Option(help: "Random seed.") public var seed: UInt64?

  /// The schedule and stopping rule, as every training command has them.
  @OptionGroup(title: "Schedule and stopping") public var schedule: ScheduleFlags
  /// Saving, resuming, the budgets and the thread count, as every training command has them.
  @OptionGroup(title: "Run") public var run: RunFlags

  /// The flags that change the model or its training, by name, when given.
  var shapeFlags: [String] {
    var given: [String] = []
    if cell != nil { given.append("--cell") }
    if emsize != nil { given.append("--emsize") }
    if nhid != nil { given.append("--nhid") }
    if nlayers != nil { given.append("--nlayers") }
    if tied != nil { given.append("--tied") }
    if maxVocab != nil { given.append("--max-vocab") }
    if initFrom != nil { given.append("--init-from") }
    if adaptiveSoftmax != nil { given.append("--adaptive-softmax") }
    if adaptiveDiv != nil { given.append("--adaptive-div") }
    if adaptiveTieTails { given.append("--adaptive-tie-tails") }
    if dropout != nil { given.append("--dropout") }
    if dropoutInput != nil { given.append("--dropout-input") }
    if dropoutHidden != nil { given.append("--dropout-hidden") }
    if dropoutOutput != nil { given.append("--dropout-output") }
    if lockedDropout { given.append("--locked-dropout") }
    if embeddingDropout != nil { given.append("--embedding-dropout") }
    if weightDrop != nil { given.append("--weight-drop") }
    if ar != nil { given.append("--ar") }
    if variableBPTT { given.append("--variable-bptt") }
    if tar != nil { given.append("--tar") }
    if lr != nil { given.append("--lr") }
    if optimizer != nil { given.append("--optimizer") }
    if weightDecay != nil { given.append("--weight-decay") }
    if clip != nil { given.append("--clip") }
    if batchSize != nil { given.append("--batch-size") }
    if bptt != nil { given.append("--bptt") }
    if evalBatchSize != nil { given.append("--eval-batch-size") }
    if seed != nil { given.append("--seed") }
    return given + schedule.given
  }

  public func validate() throws {
    try run.validate()
    try schedule.validate()
    if schedule.monitor == .accuracy {
      throw ValidationError(
        "a language model has no accuracy: --monitor accuracy is for train-classifier and train-seq2seq")
    }
    try run.refuseChanges(shapeFlags)
    guard run.resume == nil else { return }
    if let maxVocab, maxVocab < 2 { throw ValidationError("--max-vocab must be at least 2, got \(maxVocab)") }
    if adaptiveDiv != nil && adaptiveSoftmax == nil {
      throw ValidationError("--adaptive-div shapes the adaptive softmax: give --adaptive-softmax too")
    }
    if adaptiveTieTails && adaptiveSoftmax == nil {
      throw ValidationError("--adaptive-tie-tails ties the adaptive softmax's tails: give --adaptive-softmax too")
    }
    if let maxVocab, let last = adaptiveSoftmax?.last, last >= maxVocab {
      throw ValidationError("--adaptive-softmax's cutoffs must lie below --max-vocab \(maxVocab), got \(last)")
    }
    try resolvedPreset().validate()
  }

  /// Refuses a schedule that anneals to the end of the time budget (`--cosine-budget`, or a
  /// preset such as `awd-medium-budget`) when no `--max-minutes` is given. The commands that
  /// train call it from their `validate()`; `throughput-bench` times single steps, runs no
  /// schedule and so takes the budget presets without a budget.
  public func requireTimeBudget() throws {
    try schedule.requireTimeBudget(run)
    guard run.maxMinutes == nil, run.resume == nil, try resolvedPreset().training.cosineToBudget else { return }
    // Not from --cosine-budget (refused above): the preset's own schedule.
    throw ValidationError(
      "preset '\(preset)' anneals to the end of the time budget: give --max-minutes (or --cosine to anneal over --epochs)"
    )
  }

  /// `dataset` with its vocabulary in order of frequency and cut to `--max-vocab`, when `preset`
  /// (the flags applied) has the adaptive softmax or `--max-vocab` is given; nil when it stays as
  /// read.
  public func reorderedVocabulary(of dataset: Dataset, for preset: Preset) throws -> Dataset? {
    guard maxVocab != nil || preset.adaptiveCutoffs != nil else { return nil }
    return try dataset.orderedByFrequency(keeping: maxVocab)
  }

  /// The preset with the flags applied.
  public func resolvedPreset() throws -> Preset {
    guard var p = Preset.named(preset) else {
      throw ValidationError(
        "unknown preset '\(preset)'; choose one of \(Preset.all.map(\.name).joined(separator: ", "))")
    }
    if let cell { p.cell = cell }
    if let emsize { p.embeddingSize = emsize }
    if let nhid { p.hiddenSize = nhid }
    if let nlayers { p.layers = nlayers }
    if let tied { p.tied = tied }
    if let adaptiveSoftmax { p.adaptiveCutoffs = adaptiveSoftmax }
    if let adaptiveDiv { p.adaptiveDivision = adaptiveDiv }
    if adaptiveTieTails { p.adaptiveTiedTails = true }
    if let dropout { p.dropout = dropout }
    if let dropoutInput { p.inputDropout = dropoutInput }
    if let dropoutHidden { p.hiddenDropout = dropoutHidden }
    if let dropoutOutput { p.outputDropout = dropoutOutput }
    if lockedDropout { p.lockedDropout = true }
    if let embeddingDropout { p.embeddingDropout = embeddingDropout }
    if let weightDrop { p.weightDrop = weightDrop }
    if let ar { p.training.activationRegularization = ar }
    if variableBPTT { p.training.variableLength = true }
    // Each schedule flag replaces the preset's schedule (the two flags together were refused above).
    p.training = schedule.apply(to: p.training)
    if let tar { p.training.temporalActivationRegularization = tar }
    if let optimizer {
      p.training.optimizer = optimizer
      p.training.learningRate = optimizer.defaultLearningRate
    }
    if let lr { p.training.learningRate = lr }
    if let weightDecay { p.training.weightDecay = weightDecay }
    if let clip { p.training.clip = clip }
    if let epochs { p.training.epochs = epochs }
    if let batchSize { p.training.batchSize = batchSize }
    if let bptt { p.training.steps = bptt }
    if let evalBatchSize { p.training.evalBatchSize = evalBatchSize }
    if let logInterval { p.training.logInterval = logInterval }
    if let seed { p.training.seed = seed }
    do { try p.validate() } catch let error as ConfigurationError { throw ValidationError(error.description) }
    return p
  }
}

/// `2000,20000` as cutoffs.
func parseCutoffs(_ text: String) throws -> [Int] {
  let parts = text.split(separator: ",", omittingEmptySubsequences: false)
  let values = parts.compactMap { Int($0.trimmingCharacters(in: .whitespaces)) }
  guard values.count == parts.count, !values.isEmpty else {
    throw ValidationError(
      "--adaptive-softmax takes increasing word counts separated by commas, like 2000,20000; got '\(text)'")
  }
  return values
}

extension RecurrentCell: ExpressibleByArgument {}
extension OptimizerKind: ExpressibleByArgument {}

/// A run that cannot go on: ArgumentParser prints "Error: <description>" to standard error and
/// exits with status 1 (usage errors exit with 64).
public struct RunFailure: Error, CustomStringConvertible {
  public let description: String
  /// Whether every process of a data-parallel run meets this failure alike (see
  /// ``trainTogether(_:_:)``).
  let shared: Bool
  public init(_ description: String) { (self.description, shared) = (description, false) }
  init(_ description: String, shared: Bool) { (self.description, self.shared) = (description, shared) }
}

/// What ``runTraining(_:)`` ran and measured.
public struct CompletedRun {
  public let preset: String
  public let config: ModelConfig
  public let options: TrainingOptions
  public let report: TrainingReport
  public let saveDirectory: String
}

/// The regularisers in use beyond plain dropout, for the "model:" line ("" when none).
public func regularisers(_ c: ModelConfig, _ t: TrainingOptions) -> String {
  var parts: [String] = []
  if c.inputDropout != nil || c.hiddenDropout != nil || c.outputDropout != nil {
    parts.append("input/hidden/output \((0...c.layers).map { "\(c.dropoutRate(at: $0))" }.joined(separator: "/"))")
  }
  if c.lockedDropout { parts.append("locked") }
  if c.embeddingDropout > 0 { parts.append("embedding dropout \(c.embeddingDropout)") }
  if c.weightDrop > 0 { parts.append("weight drop \(c.weightDrop)") }
  if t.activationRegularization > 0 { parts.append("AR \(t.activationRegularization)") }
  if t.temporalActivationRegularization > 0 { parts.append("TAR \(t.temporalActivationRegularization)") }
  if t.averaging { parts.append("NT-ASGD, nonmono \(t.nonmono)") }
  if t.variableLength { parts.append("variable BPTT") }
  if t.cosineSchedule { parts.append("cosine schedule") }
  if t.cosineToBudget { parts.append("cosine schedule to the time budget") }
  return parts.isEmpty ? "" : " (" + parts.joined(separator: ", ") + ")"
}

/// The output layer for the "model:" line: "full softmax", or the adaptive softmax's clusters.
public func outputLayer(_ c: ModelConfig) -> String {
  guard let a = c.adaptiveShape else { return "full softmax" }
  let clusters = (0..<a.clusters).map { "\(a.bounds[$0 + 1])..<\(a.bounds[$0 + 2]) via \(a.projections[$0])" }
  let tails = c.adaptiveTiedTails ? ", tails tied to the embedding" : ""
  return
    "adaptive softmax (head \(a.shortlist) words + \(a.clusters), clusters \(clusters.joined(separator: ", "))\(tails))"
}

/// The schedule and stopping rule of a run's options for its "training:" line: ", lr decay 4.0,
/// cosine schedule, patience 3" and the like ("" for a constant rate without early stopping).
public func schedule(_ o: some RunOptions) -> String {
  var parts: [String] = []
  if o.learningRateDecay != 1 { parts.append("lr decay \(o.learningRateDecay)") }
  if o.cosineSchedule { parts.append("cosine schedule") }
  if o.cosineToBudget { parts.append("cosine schedule to the time budget") }
  if o.averaging { parts.append("NT-ASGD, nonmono \(o.nonmono)") }
  if o.patience > 0 { parts.append("patience \(o.patience)") }
  return parts.map { ", " + $0 }.joined()
}

/// Writes one line to standard output at once.
public func say(_ line: String) { ConsoleProgress.stdout(line + "\n") }

/// The first `runs/<name>-<n>` that does not exist yet, so no earlier run is overwritten.
func freshRunDirectory(_ name: String) -> String {
  var n = 1
  while FileManager.default.fileExists(atPath: "runs/\(name)-\(n)") { n += 1 }
  return "runs/\(name)-\(n)"
}

/// Finds and loads the data, builds or resumes the trainer, trains with console progress and
/// metrics, and returns the report. Errors come back as one-line ``RunFailure``s or
/// `ValidationError`s.
public func runTraining(_ flags: TrainingFlags) throws -> CompletedRun {
  let group = try startProcesses(flags.run)
  let (trainer, dataset, name, saveDirectory, directory) = try startTogether(group) {
    var checkpoint: Checkpoint?
    if let resume = flags.run.resume {
      checkpoint = try Checkpoint.read(from: resume)
      if let epochs = flags.epochs { checkpoint!.training.epochs = epochs }
      if let logInterval = flags.logInterval { checkpoint!.training.logInterval = logInterval }
      try checkpoint!.training.validate()
    }
    let preset = checkpoint == nil ? try flags.resolvedPreset() : nil
    let name = preset?.name ?? "resumed"
    let saveDirectory = try flags.run.runDirectory(task: name, fresh: checkpoint == nil)
    let directory = try PTB.locate(
      explicit: flags.run.dataDirectory(given: flags.data, saved: checkpoint?.state.dataDirectory))
    var dataset = try PTB.load(directory: directory, verify: !flags.noVerify, mapUnknown: flags.mapUnknown)
    say("read \(PTB.describe(directory: directory, verified: !flags.noVerify))")
    if flags.mapUnknown {
      say(
        "read as <unk>: \(dataset.outOfVocabulary.valid) validation and \(dataset.outOfVocabulary.test) test words "
          + "outside the training vocabulary")
    }
    if let preset, let reordered = try flags.reorderedVocabulary(of: dataset, for: preset) {
      let words = dataset.vocabulary.count
      dataset = reordered
      let kept = dataset.vocabulary.count
      say(
        "vocabulary: \(kept < words ? "the \(kept) most frequent of \(words) training words" : "\(kept) words"), "
          + "in order of frequency"
          + (kept < words
            ? "; read as <unk>: \(dataset.leftOut.train) training, \(dataset.leftOut.valid) validation and "
              + "\(dataset.leftOut.test) test tokens" : ""))
    }

    let trainer: Trainer
    if let checkpoint {
      guard let same = try dataset.matching(vocabulary: checkpoint.vocabulary) else {
        throw RunFailure("\(flags.run.resume!) was trained on another vocabulary than the data in \(directory)")
      }
      dataset = same
      trainer = try Trainer(resuming: checkpoint, group: group)
      say(
        "resuming \(flags.run.resume!) after epoch \(checkpoint.state.epochsCompleted), batch \(checkpoint.state.batchesInEpoch)"
      )
      if !trainer.resumedWithCarriedState {
        say(
          "note: this checkpoint holds no carried recurrent state (a best.safetensors?); training continues from a zero state, not exactly as the original run would"
        )
      }
    } else {
      trainer = try Trainer(
        config: preset!.modelConfig(vocabularySize: dataset.vocabulary.count), options: preset!.training,
        vocabulary: dataset.vocabulary.words, group: group)
      if let initFrom = flags.initFrom {
        try initialize(from: initFrom) { earlier in
          let taken = try trainer.initialize(from: earlier)
          return String(
            format: "%d of %d words (%.1f%%) known by spelling; %d new words start at the mean of its rows",
            taken.matchedWords, taken.words, 100 * Double(taken.matchedWords) / Double(max(taken.words, 1)),
            taken.newWords)
        }
      }
    }
    let c = trainer.config
    let t = trainer.options
    say(
      "model: \(c.cell), V \(c.vocabularySize), D \(c.embeddingSize), H \(c.hiddenSize), layers \(c.layers), tied \(c.tied), "
        + "dropout \(c.dropout)\(regularisers(c, t)), \(outputLayer(c)), \(c.parameterCount) parameters")
    say(
      "training: \(t.optimizer)\(t.weightDecay > 0 ? " (weight decay \(t.weightDecay))" : ""), "
        + "N \(t.batchSize), T \(t.steps), lr \(trainer.state.learningRate), decay \(t.learningRateDecay), "
        + "clip \(t.clip), epochs \(t.epochs), seed \(t.seed), \(processes(group, batch: t.batchSize, "streams"))"
        + "threads \(ComputeThreads.count), "
        + "OpenBLAS kernels \(BLASInfo.coreName); "
        + "tokens: train \(dataset.train.count), valid \(dataset.valid.count), test \(dataset.test.count)")
    if let note = BLASInfo.narrowerKernelsNote { say(note) }
    say("saving to \(saveDirectory)/ (best.safetensors, last.safetensors, metrics.csv, curve.svg)")
    return (trainer, dataset, name, saveDirectory, directory)
  }
  trainer.observers = [ConsoleProgress()]
  RunLoop.stopOnInterrupt()
  let report = try trainTogether(group) {
    try trainer.run(dataset, limits: flags.run.limits(saving: saveDirectory, data: directory))
  }
  return CompletedRun(
    preset: name, config: trainer.config, options: trainer.options, report: report, saveDirectory: saveDirectory)
}

/// `--init-from PATH`: reads the language model at `path` and hands it to `take`, which starts
/// the new run from it and describes what it took; says "initialised from PATH: <that>". A
/// damaged file or a model that does not fit is one ``RunFailure`` naming the flag and file.
func initialize(from path: String, _ take: (Checkpoint) throws -> String) throws {
  let earlier: Checkpoint
  do { earlier = try Checkpoint.read(from: path) } catch let error as CheckpointError {
    throw RunFailure("--init-from: \(error.description)")
  }
  do { say("initialised from \(path): \(try take(earlier))") } catch let error as ConfigurationError {
    throw RunFailure("--init-from \(path): \(error.description)")
  }
}

/// "2 processes (10 streams each), " for a data-parallel run's "training:" line; "" for one.
func processes(_ group: ProcessGroup, batch: Int, _ rows: String) -> String {
  group.size > 1 ? "\(group.size) processes (\(batch / group.size) \(rows) each), " : ""
}
