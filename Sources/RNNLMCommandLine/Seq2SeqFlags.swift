import ArgumentParser
import Foundation
import RNNLM

/// The flags of a sequence-to-sequence training run (`train-seq2seq`).
public struct Seq2SeqFlags: ParsableArguments {
  public init() {}

  @Option(help: "Directory with train.tsv and test.tsv (and optionally valid.tsv) of source<TAB>target lines.")
  public var data: String?
  @Option(help: "Tokens: characters (default) or words.") public var tokens: TokenLevel?
  @Option(help: "Recurrent cell of encoder and decoder (default lstm).") public var cell: RecurrentCell?
  @Option(help: "Embedding size D (default 32).") public var emsize: Int?
  @Option(help: "Hidden size H (default 128).") public var nhid: Int?
  @Option(help: "Recurrent layers of encoder and decoder (default 1).") public var nlayers: Int?
  @Option(help: "Attention: dot (default), general (Luong's bilinear score) or none.")
  public var attention: AttentionScore?
  @Flag(help: "The encoder reads each source backwards.") public var reverse = false
  @Flag(help: "Feed the encoder's summary to the decoder at every step.") public var peeky = false
  @Option(help: "Dropout before the output layer (default 0).") public var dropout: Double?
  @Option(help: "Update rule (default adam).") public var optimizer: OptimizerKind?
  @Option(help: "Learning rate (default 0.001 for Adam and RMSprop, 0.1 for SGD).") public var lr: Double?
  @Option(help: "Global gradient-norm clip; 0 disables it (default 5).") public var clip: Double?
  @Option(name: .customLong("batch-size"), help: "Pairs per batch (default 64).") public var batchSize: Int?
  @Option(help: "Epochs of the whole run (default 20).") public var epochs: Int?
  @Option(
    name: .customLong("validation-split"), help: "Fraction of training pairs held out when there is no valid.tsv (0.1)."
  )
  public var validationSplit: Double?
  @Option(name: .customLong("max-source-length"), help: "Longest source in tokens (default 100).")
  public var maxSourceLength: Int?
  @Option(name: .customLong("max-target-length"), help: "Longest target in tokens (default 100).")
  public var maxTargetLength: Int?
  @Option(name: .customLong("log-interval"), help: "Batches between log lines (default 100).") public var logInterval:
    Int?
  @Option(help: "Random seed (default 1).") public var seed: UInt64?

  @Flag(
    name: .customLong("refuse-empty-texts"),
    help:
      "Refuse data in which a text (a pair's source) has no word, naming its file and line, instead of skipping such texts with a warning."
  )
  public var refuseEmptyTexts = false

  @OptionGroup(title: "Schedule and stopping") public var schedule: ScheduleFlags
  @OptionGroup(title: "Run") public var run: RunFlags

  /// The flags that change the model or its training, by name, when given.
  var shapeFlags: [String] {
    let given: [(String, Bool)] = [
      ("--tokens", tokens != nil), ("--cell", cell != nil), ("--emsize", emsize != nil), ("--nhid", nhid != nil),
      ("--nlayers", nlayers != nil), ("--attention", attention != nil), ("--reverse", reverse), ("--peeky", peeky),
      ("--dropout", dropout != nil), ("--optimizer", optimizer != nil), ("--lr", lr != nil), ("--clip", clip != nil),
      ("--batch-size", batchSize != nil),
      ("--validation-split", validationSplit != nil), ("--max-source-length", maxSourceLength != nil),
      ("--max-target-length", maxTargetLength != nil), ("--seed", seed != nil),
    ]
    return given.filter(\.1).map(\.0) + schedule.given
  }

  public func validate() throws {
    try schedule.validate()
    try schedule.requireTimeBudget(run)
    try run.refuseChanges(shapeFlags)
    if run.resume == nil {
      do {
        try options().validate()
        try config(sourceVocabularySize: 5, targetVocabularySize: 5).validate()
      } catch let error as ConfigurationError { throw ValidationError(error.description) }
    }
  }

  /// The training options the flags give.
  public func options() -> Seq2SeqTrainingOptions {
    var o = Seq2SeqTrainingOptions()
    if let optimizer {
      o.optimizer = optimizer
      o.learningRate = optimizer == .sgd ? 0.1 : 0.001
    }
    if let lr { o.learningRate = lr }
    if let clip { o.clip = clip }
    if let batchSize { o.batchSize = batchSize }
    if let epochs { o.epochs = epochs }
    if let validationSplit { o.validationSplit = validationSplit }
    if let maxSourceLength { o.maxSourceLength = maxSourceLength }
    if let maxTargetLength { o.maxTargetLength = maxTargetLength }
    if let tokens { o.tokens = tokens }
    if let logInterval { o.logInterval = logInterval }
    if let seed { o.seed = seed }
    return schedule.apply(to: o)
  }

  /// The model configuration the flags give, for vocabularies of the given sizes.
  public func config(sourceVocabularySize: Int, targetVocabularySize: Int) -> Seq2SeqConfig {
    Seq2SeqConfig(
      sourceVocabularySize: sourceVocabularySize, targetVocabularySize: targetVocabularySize,
      embeddingSize: emsize ?? 32, hiddenSize: nhid ?? 128, layers: nlayers ?? 1, cell: cell ?? .lstm,
      attention: attention ?? .dot, reverseSource: reverse, peeky: peeky, dropout: dropout ?? 0)
  }
}

extension AttentionScore: ExpressibleByArgument {}
extension TokenLevel: ExpressibleByArgument {}

/// Loads the pairs, builds or resumes the trainer, trains with console progress and metrics,
/// and returns the report and where it saved.
public func runSeq2SeqTraining(_ flags: Seq2SeqFlags) throws -> (report: TaskReport, saveDirectory: String) {
  let group = try startProcesses(flags.run)
  let (trainer, splits, saveDirectory, dataDirectory) = try startTogether(group) {
    var checkpoint: Seq2SeqCheckpoint?
    if let resume = flags.run.resume {
      checkpoint = try Seq2SeqCheckpoint.read(from: resume)
      if let epochs = flags.epochs { checkpoint!.training.epochs = epochs }
      if let logInterval = flags.logInterval { checkpoint!.training.logInterval = logInterval }
      try checkpoint!.training.validate()
    }
    let dataDirectory = try flags.run.requireDataDirectory(
      given: flags.data, saved: checkpoint?.state.dataDirectory,
      howToMake: "rnnlm make-data addition|dates --output DIR writes the project's tasks")
    let saveDirectory = try flags.run.runDirectory(task: "seq2seq", fresh: checkpoint == nil)
    let data = try SequencePairs.load(directory: dataDirectory)
    let trainer: Seq2SeqTrainer
    if let checkpoint {
      trainer = try Seq2SeqTrainer(resuming: checkpoint, group: group)
      say(
        "resuming \(flags.run.resume!) after epoch \(checkpoint.state.epochsCompleted), batch \(checkpoint.state.batchesInEpoch)"
      )
    } else {
      let options = flags.options()
      let (source, target) = Seq2SeqTrainer.vocabularies(for: data, tokens: options.tokens)
      trainer = try Seq2SeqTrainer(
        config: flags.config(sourceVocabularySize: source.count, targetVocabularySize: target.count),
        options: options, sourceVocabulary: source, targetVocabulary: target, group: group)
    }
    let splits = try trainer.splits(of: data, emptySources: flags.refuseEmptyTexts ? .refuse : .skip)
    warnOfSkippedTexts(splits.skippedPairs, first: splits.firstSkipped, what: "pairs whose source has no tokens")
    let (c, o) = (trainer.config, trainer.options)
    say(
      "read source<TAB>target pairs in \(dataDirectory) as \(o.tokens.rawValue): train \(splits.train.count), valid \(splits.valid.count) (\(splits.validationSource)), test \(splits.test.count); vocabularies: source \(c.sourceVocabularySize), target \(c.targetVocabularySize)"
    )
    say("model: \(c.description), D \(c.embeddingSize), dropout \(c.dropout), \(c.parameterCount) parameters")
    say(
      "training: \(o.optimizer), lr \(o.learningRate), clip \(o.clip), N \(o.batchSize), epochs \(o.epochs)\(schedule(o)), seed \(o.seed), \(processes(group, batch: o.batchSize, "pairs"))threads \(ComputeThreads.count), OpenBLAS kernels \(BLASInfo.coreName)"
    )
    if let note = BLASInfo.narrowerKernelsNote { say(note) }
    say("saving to \(saveDirectory)/ (best.safetensors, last.safetensors, metrics.csv, curve.svg)")
    return (trainer, splits, saveDirectory, dataDirectory)
  }
  trainer.log = ConsoleProgress.stdout
  trainer.logIsTerminal = stdoutIsTerminal
  RunLoop.stopOnInterrupt()
  let report = try trainTogether(group) {
    try trainer.run(splits, limits: flags.run.limits(saving: saveDirectory, data: dataDirectory))
  }
  return (report, saveDirectory)
}
