import ArgumentParser
import Foundation
import RNNLM

/// The flags of a text classifier's training run (`train-classifier`).
public struct ClassifierFlags: ParsableArguments {
  public init() {}

  @Option(
    help:
      "Directory of labelled texts: train/ and test/ class folders (IMDB's layout), or train.tsv and test.tsv of label<TAB>text lines; valid/ or valid.tsv is used when present."
  )
  public var data: String?
  @Option(
    help: "Recurrent cell: \(RecurrentCell.allCases.map(\.rawValue).joined(separator: ", ")) (default lstm).")
  public var cell: RecurrentCell?
  @Flag(name: .customLong("bag-of-words"), help: "The baseline: mean of the embeddings → affine, no recurrent layer.")
  public var bagOfWords = false
  @Option(help: "Embedding size D (default 64).") public var emsize: Int?
  @Option(help: "Hidden size H (default 64).") public var nhid: Int?
  @Option(help: "Number of recurrent layers (default 1).") public var nlayers: Int?
  @Option(help: "Dropout rate on the pooled features, in [0, 1) (default 0.2).") public var dropout: Double?
  @Option(
    name: .customLong("embedding-dropout"),
    help:
      "Drop whole words with this probability in each training batch, every occurrence at once, scaling the kept words' vectors by 1/(1-p) (default 0)."
  )
  public var embeddingDropout: Double?
  @Option(
    help:
      "Pooling: last (the state at each text's last word, default), mean or max (each feature's mean or largest value over its words)."
  )
  public var pooling: ClassifierPooling?
  @Flag(help: "Every recurrent layer also reads each text backwards (Keras' Bidirectional, PyTorch's bidirectional).")
  public var bidirectional = false
  @Option(name: .customLong("max-length"), help: "Cut texts to this many words (default 100).")
  public var maxLength: Int?
  @Option(help: "Which part of a longer text to keep: end (default, Keras' truncating='pre') or start.")
  public var truncate: Truncation?
  @Option(
    name: .customLong("freeze-encoder-epochs"),
    help:
      "Train only the output layer for this many epochs, then everything: with --init-from, the language model's layers are not disturbed while the output layer is still random (default 0)."
  )
  public var freezeEncoderEpochs: Int?
  @Option(
    name: .customLong("encoder-lr-factor"),
    help:
      "The embedding and recurrent layers learn at this factor times --lr, the output layer at --lr (discriminative fine-tuning; e.g. 0.3 with --init-from). In (0, 1], default 1."
  )
  public var encoderLRFactor: Double?
  @Option(
    name: .customLong("train-texts"),
    help:
      "Train on this many training texts, a seeded sample (after the validation texts are held out), to measure accuracy against labelled data (default: all)."
  )
  public var trainTexts: Int?
  @Option(name: .customLong("num-words"), help: "Vocabulary: the most frequent training words (default 10000).")
  public var numWords: Int?
  @Option(help: "Update rule: sgd, adam (default) or rmsprop, with PyTorch's constants.")
  public var optimizer: OptimizerKind?
  @Option(help: "Learning rate (default 0.001 for Adam and RMSprop, 0.1 for SGD).") public var lr: Double?
  @Option(help: "Global gradient-norm clip; 0 (default) disables it.") public var clip: Double?
  @Option(name: .customLong("weight-decay"), help: "L2 weight decay (default 0).") public var weightDecay: Double?
  @Option(name: .customLong("batch-size"), help: "Texts per batch (default 32).") public var batchSize: Int?
  @Option(help: "Epochs of the whole run (default 10).") public var epochs: Int?
  @Option(
    name: .customLong("validation-split"),
    help: "Fraction of the training texts held out for validation when the data has no valid split (default 0.1).")
  public var validationSplit: Double?
  @Option(name: .customLong("log-interval"), help: "Batches between log lines (default 50).") public var logInterval:
    Int?
  @Option(help: "Random seed (default 1).") public var seed: UInt64?

  @Option(
    name: .customLong("init-from"),
    help:
      "Start from a toolkit language model's checkpoint (train-ptb's): its embedding rows for the words it knows by spelling and its bottom recurrent layers (same --cell, --emsize and --nhid; with --init-layers 0 only the embedding, same --emsize). Train it on the task's own text with rnnlm make-data corpus --from-tsv."
  )
  public var initFrom: String?
  @Option(
    name: .customLong("init-layers"),
    help:
      "With --init-from: take at most this many of its recurrent layers, bottom first (default: all the classifier has). 0 takes its word vectors alone, for a classifier of any --cell and --nhid (the same --emsize)."
  )
  public var initLayers: Int?
  @Option(
    help: ArgumentHelp(
      "Start the embedding from pretrained word vectors in the word2vec/GloVe text format (a word and D numbers per line, an optional 'count D' first line); --emsize must be D. Reports how many words it covers.",
      valueName: "file"))
  public var embeddings: String?
  @Flag(
    name: .customLong("freeze-embeddings"),
    help: "Keep the embedding as --embeddings or --init-from started it (no gradient) for the whole run.")
  public var freezeEmbeddings = false
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
      ("--cell", cell != nil), ("--bag-of-words", bagOfWords), ("--emsize", emsize != nil), ("--nhid", nhid != nil),
      ("--nlayers", nlayers != nil), ("--dropout", dropout != nil),
      ("--embedding-dropout", embeddingDropout != nil), ("--pooling", pooling != nil),
      ("--bidirectional", bidirectional), ("--init-from", initFrom != nil), ("--init-layers", initLayers != nil),
      ("--embeddings", embeddings != nil),
      ("--freeze-embeddings", freezeEmbeddings),
      ("--max-length", maxLength != nil), ("--truncate", truncate != nil), ("--num-words", numWords != nil),
      ("--train-texts", trainTexts != nil), ("--freeze-encoder-epochs", freezeEncoderEpochs != nil),
      ("--encoder-lr-factor", encoderLRFactor != nil),
      ("--optimizer", optimizer != nil), ("--lr", lr != nil), ("--clip", clip != nil),
      ("--weight-decay", weightDecay != nil), ("--batch-size", batchSize != nil),
      ("--validation-split", validationSplit != nil), ("--seed", seed != nil),
    ]
    return given.filter(\.1).map(\.0) + schedule.given
  }

  public func validate() throws {
    if bagOfWords && (cell != nil || nlayers != nil || nhid != nil || pooling != nil || bidirectional) {
      throw ValidationError(
        "--bag-of-words has no recurrent layer: drop --cell, --nlayers, --nhid, --pooling and --bidirectional")
    }
    try schedule.validate()
    try schedule.requireTimeBudget(run)
    try run.refuseChanges(shapeFlags)
    if embeddings != nil && initFrom != nil {
      throw ValidationError("--embeddings and --init-from both set the embedding: give one")
    }
    if let n = initLayers {
      guard initFrom != nil else {
        throw ValidationError("--init-layers says how much of --init-from to take: give --init-from")
      }
      guard n >= 0 else { throw ValidationError("--init-layers must be 0 or more, got \(n)") }
    }
    if freezeEmbeddings && embeddings == nil && initFrom == nil {
      throw ValidationError("--freeze-embeddings keeps pretrained vectors: give --embeddings FILE or --init-from")
    }
    if run.resume == nil {
      do {
        try options().validate()
        try config(vocabularySize: 3, classes: 2).validate()
      } catch let error as ConfigurationError { throw ValidationError(error.description) }
      if let nlayers, nlayers < 1 { throw ValidationError("--nlayers must be at least 1 (or use --bag-of-words)") }
    }
  }

  /// The training options the flags give.
  public func options() -> ClassifierTrainingOptions {
    var o = ClassifierTrainingOptions()
    if let optimizer {
      o.optimizer = optimizer
      o.learningRate = optimizer == .sgd ? 0.1 : 0.001
    }
    if let lr { o.learningRate = lr }
    if let clip { o.clip = clip }
    if let weightDecay { o.weightDecay = weightDecay }
    if let batchSize { o.batchSize = batchSize }
    if let epochs { o.epochs = epochs }
    if let validationSplit { o.validationSplit = validationSplit }
    if let maxLength { o.maxLength = maxLength }
    if let truncate { o.truncation = truncate }
    if let numWords { o.numWords = numWords }
    if let trainTexts { o.trainingTexts = trainTexts }
    if let freezeEncoderEpochs { o.freezeEncoderEpochs = freezeEncoderEpochs }
    if let encoderLRFactor { o.encoderLearningRateFactor = encoderLRFactor }
    o.freezeEmbeddings = freezeEmbeddings
    if let logInterval { o.logInterval = logInterval }
    if let seed { o.seed = seed }
    return schedule.apply(to: o)
  }

  /// The model configuration the flags give, for a vocabulary and class count from the data.
  public func config(vocabularySize: Int, classes: Int) -> ClassifierConfig {
    ClassifierConfig(
      vocabularySize: vocabularySize, embeddingSize: emsize ?? 64, hiddenSize: nhid ?? 64,
      layers: bagOfWords ? 0 : nlayers ?? 1, cell: cell ?? .lstm, classes: classes, dropout: dropout ?? 0.2,
      pooling: pooling ?? .last, bidirectional: bidirectional, embeddingDropout: embeddingDropout ?? 0)
  }
}

extension ClassifierPooling: ExpressibleByArgument {}
extension Truncation: ExpressibleByArgument {}

/// What ``runClassifierTraining(_:)`` ran and measured.
public struct CompletedClassifierRun {
  public let config: ClassifierConfig
  public let options: ClassifierTrainingOptions
  public let report: TaskReport
  public let saveDirectory: String
}

/// Loads the labelled texts, builds or resumes the classifier's trainer, trains with console
/// progress and metrics, and returns the report. Errors come back as one-line ``RunFailure``s
/// or `ValidationError`s.
public func runClassifierTraining(_ flags: ClassifierFlags) throws -> CompletedClassifierRun {
  let group = try startProcesses(flags.run)
  let (trainer, splits, saveDirectory, dataDirectory) = try startTogether(group) {
    var checkpoint: ClassifierCheckpoint?
    if let resume = flags.run.resume {
      checkpoint = try ClassifierCheckpoint.read(from: resume)
      if let epochs = flags.epochs { checkpoint!.training.epochs = epochs }
      if let logInterval = flags.logInterval { checkpoint!.training.logInterval = logInterval }
      try checkpoint!.training.validate()
    }
    let dataDirectory = try flags.run.requireDataDirectory(
      given: flags.data, saved: checkpoint?.state.dataDirectory,
      howToMake: "rnnlm make-data sentiment --output DIR writes the project's corpus")
    let saveDirectory = try flags.run.runDirectory(task: "classifier", fresh: checkpoint == nil)
    let data = try LabelledTexts.load(directory: dataDirectory, emptyTexts: flags.refuseEmptyTexts ? .refuse : .skip)
    warnOfSkippedTexts(data.skippedTexts, first: data.firstSkipped, what: "texts with no words")
    let trainer: ClassifierTrainer
    if let checkpoint {
      trainer = try ClassifierTrainer(resuming: checkpoint, group: group)
      say(
        "resuming \(flags.run.resume!) after epoch \(checkpoint.state.epochsCompleted), batch \(checkpoint.state.batchesInEpoch)"
      )
    } else {
      let options = flags.options()
      let prepared = ClassifierTrainer.prepare(
        data: data, options: options, shape: flags.config(vocabularySize: 3, classes: data.classes.count))
      trainer = try ClassifierTrainer(
        config: prepared.config, options: options, vocabulary: prepared.vocabulary, classes: data.classes,
        group: group)
      if let initFrom = flags.initFrom {
        try initialize(from: initFrom) { lm in
          let taken = try trainer.initialize(from: lm, maximumLayers: flags.initLayers)
          return String(
            format: "embedding rows of %d of %d words (%.1f%%) matched by spelling, %d recurrent layer%@",
            taken.matchedWords, taken.words, 100 * Double(taken.matchedWords) / Double(max(taken.words, 1)),
            taken.layers, taken.layers == 1 ? "" : "s")
        }
      }
      if let path = flags.embeddings {
        do {
          let vectors = try WordVectors.read(path: path, keeping: Set(prepared.vocabulary.words))
          let taken = try trainer.initialize(from: vectors, path: path)
          say(
            String(
              format: "embedding from %@: %d of %d words (%.1f%%) have a vector (%d vectors of %d numbers)%@", path,
              taken.matchedWords, taken.words, 100 * Double(taken.matchedWords) / Double(max(taken.words, 1)),
              vectors.lines, vectors.dimension, flags.freezeEmbeddings ? ", frozen" : ""))
        } catch let error as ConfigurationError {
          throw RunFailure("--embeddings: \(error.description)")
        } catch let error as DataError {
          throw RunFailure("--embeddings: \(error.description)")
        }
      }
    }
    let splits = try trainer.splits(of: data)
    let c = trainer.config
    let o = trainer.options
    say(
      "read \(data.layout) in \(dataDirectory): \(data.classes.count) classes (\(data.classes.joined(separator: ", "))); "
        + "texts: train \(splits.train.count), valid \(splits.valid.count) (\(splits.validationSource)), test \(splits.test.count)"
    )
    say(
      "model: \(c.summary), \(c.parameterCount) parameters")
    say(
      "training: \(o.optimizer), lr \(o.learningRate)"
        + (o.encoderLearningRateFactor == 1 ? "" : " (encoder × \(o.encoderLearningRateFactor))")
        + ", clip \(o.clip), N \(o.batchSize), max length \(o.maxLength) "
        + "(keep the \(o.truncation.rawValue)), epochs \(o.epochs)\(schedule(o)), seed \(o.seed), "
        + "\(processes(group, batch: o.batchSize, "texts"))threads \(ComputeThreads.count), "
        + "OpenBLAS kernels \(BLASInfo.coreName)")
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
  return CompletedClassifierRun(
    config: trainer.config, options: trainer.options, report: report, saveDirectory: saveDirectory)
}
