import ArgumentParser
import Foundation
import RNNLM
import RNNLMCommandLine

/// Runs `body`, turning the library's errors into one line on standard error ("Error: …") and
/// an exit status: 64 for bad arguments (EX_USAGE), 1 for bad files or data.
func reporting<R>(_ body: () throws -> R) throws -> R {
  func fail(_ message: String, _ status: Int32) -> ExitCode {
    FileHandle.standardError.write(Data("Error: \(message)\n".utf8))
    return ExitCode(status)
  }
  do {
    return try body()
  } catch let e as UsageError {
    throw fail(e.description, 64)
  } catch let e as ConfigurationError {
    throw fail(e.description, 64)
  } catch let e as CheckpointError {
    throw fail(e.description, 1)
  } catch let e as DataError {
    throw fail(e.description, 1)
  } catch let e as AllocationError {
    throw fail(e.description, 1)
  } catch let e as FileError {
    throw fail(e.description, 1)
  } catch let e as NGramError {
    throw fail(e.description, 1)
  }
}

struct RNNLMTool: ParsableCommand {
  static let configuration = CommandConfiguration(
    commandName: "rnnlm",
    abstract:
      "Use trained recurrent models: generate text, measure perplexity, classify and translate, inspect a checkpoint.",
    discussion:
      "Checkpoints come from train-ptb (runs/<preset>-<n>/best.safetensors), train-classifier and train-seq2seq.",
    subcommands: [
      Generate.self, Evaluate.self, Info.self, Vectors.self, Classify.self, Accuracy.self, Translate.self,
      MakeData.self,
      GradientFlowCommand.self,
      NGramCommand.self,
    ])
}

struct Generate: ParsableCommand {
  static let configuration = CommandConfiguration(
    abstract: "Sample words from a model, streaming them as they are produced.",
    discussion: """
      <eos> is printed as a line break. Temperature 0 picks the most likely word each time (greedy); higher temperatures sample more freely. The same seed gives the same text.

      Examples:
        rnnlm generate runs/small-1/best.safetensors
        rnnlm generate runs/medium-1/best.safetensors --prompt "the company said" \\
            --words 40 --temperature 0.8 --top-k 50
        rnnlm generate model.safetensors --prompt "the zyzzyva" --map-unknown \\
            --temperature 0
      """)

  @Argument(help: "The checkpoint.") var checkpoint: String
  @Option(help: "Words to continue (default: start a new sentence).") var prompt: String?
  @Option(help: "Number of words to generate.") var words = 50
  @Option(help: "Sampling temperature; 0 is greedy.") var temperature = 1.0
  @Option(name: .customLong("top-k"), help: "Sample among the k most likely words only (1...V).") var topK: Int?
  @Option(help: "Seed of the sampler.") var seed: UInt64 = 1
  @Flag(name: .customLong("map-unknown"), help: "Read prompt words outside the vocabulary as <unk>.")
  var mapUnknown = false

  func run() throws {
    try reporting {
      let model = try TrainedModel(contentsOf: checkpoint)
      let promptWords = prompt.map { $0.split(whereSeparator: \.isWhitespace).map(String.init) }
      if let promptWords, !promptWords.isEmpty {
        ConsoleProgress.stdout(promptWords.joined(separator: " "))
      }
      var atLineStart = promptWords?.isEmpty ?? true
      _ = try model.generate(
        prompt: promptWords, count: words, temperature: temperature, topK: topK, seed: seed, mapUnknown: mapUnknown
      ) { word in
        if word == Vocabulary.endOfSentence {
          ConsoleProgress.stdout("\n")
          atLineStart = true
        } else {
          ConsoleProgress.stdout(atLineStart ? word : " " + word)
          atLineStart = false
        }
      }
      if !atLineStart { ConsoleProgress.stdout("\n") }
    }
  }
}

struct Evaluate: ParsableCommand {
  static let configuration = CommandConfiguration(
    abstract: "Perplexity of a model on a text file, tokenised as PTB (words, each line ending in <eos>).",
    discussion: """
      Words outside the vocabulary are read as <unk> and counted. The text is read as --batch-size parallel streams in windows of --bptt steps, the state carried.

      Examples:
        rnnlm evaluate runs/small-1/best.safetensors \\
            ../shared/corpora/ptb/ptb.test.txt
        rnnlm evaluate model.safetensors my-text.txt --batch-size 1 --bptt 100
      """)

  @Argument(help: "The checkpoint.") var checkpoint: String
  @Argument(help: "The text file.") var text: String
  @Option(name: .customLong("batch-size"), help: "Parallel streams.") var batchSize = 10
  @Option(help: "Window length in time steps.") var bptt = 35

  func run() throws {
    try reporting {
      let model = try TrainedModel(contentsOf: checkpoint)
      let r = try model.evaluate(text: try Corpus.readText(at: text), path: text, batchSize: batchSize, steps: bptt)
      say("file: \(text)")
      say("tokens: \(r.tokens) (evaluated \(r.evaluatedTokens)), out of vocabulary: \(r.outOfVocabulary)")
      say(String(format: "loss: %.4f nats/token", r.meanLoss))
      say(String(format: "perplexity: %.2f", r.perplexity))
    }
  }
}

struct Vectors: ParsableCommand {
  static let configuration = CommandConfiguration(
    abstract: "A language model's word vectors (its embedding rows) in the word2vec text format.",
    discussion: """
      One 'count D' line, then each vocabulary word and its D numbers. train-classifier --embeddings reads the file (the same start as --init-from with --init-layers 0), and so do other tools that read word2vec's text format (gensim's load_word2vec_format, for one).

      Examples:
        rnnlm vectors runs/sst2-lm/best.safetensors --output sst2-lm.vec
        rnnlm vectors runs/small-1/best.safetensors | head -3
      """)

  @Argument(help: "The language model's checkpoint.") var checkpoint: String
  @Option(help: "The file to write (default: standard output).") var output: String?

  func run() throws {
    try reporting {
      let model = try Checkpoint.read(from: checkpoint)
      if let output {
        try WordVectors.write(of: model, to: output)
        say("wrote \(output): \(model.vocabulary.count) words, \(model.config.embeddingSize) numbers each")
      } else {
        FileHandle.standardOutput.write(Data(WordVectors.text(of: model).utf8))
      }
    }
  }
}

struct Info: ParsableCommand {
  static let configuration = CommandConfiguration(
    abstract: "What a checkpoint holds, read from its header without loading the weights.",
    discussion: """
      Language models and text classifiers alike.

      Example:
        rnnlm info runs/medium-1/last.safetensors
      """)

  @Argument(help: "The checkpoint.") var checkpoint: String
  @Flag(help: "List every tensor with its shape.") var tensors = false

  func run() throws {
    try reporting {
      switch SafeTensors.formatTag(of: checkpoint) {
      case ClassifierCheckpoint.formatTag: return try classifierInfo(checkpoint, tensors: tensors)
      case Seq2SeqCheckpoint.formatTag: return try seq2seqInfo(checkpoint, tensors: tensors)
      default: break
      }
      let s = try CheckpointSummary(contentsOf: checkpoint)
      let c = s.config
      let t = s.training
      let st = s.state
      say("checkpoint: \(checkpoint) (\(s.fileSize) bytes, format version \(Checkpoint.formatVersion))")
      say(
        "model: \(c.cell), V \(c.vocabularySize), D \(c.embeddingSize), H \(c.hiddenSize), layers \(c.layers), tied \(c.tied), dropout \(c.dropout)\(regularisers(c, t)), \(outputLayer(c))"
      )
      say("parameters: \(c.parameterCount)")
      say("vocabulary: \(s.vocabularySize) words")
      say(
        "training: \(t.optimizer)\(t.weightDecay > 0 ? " (weight decay \(t.weightDecay))" : ""), N \(t.batchSize), T \(t.steps), lr \(t.learningRate) (now \(st.learningRate)), decay \(t.learningRateDecay), clip \(t.clip), epochs \(t.epochs), seed \(t.seed)"
      )
      say(
        "trained: \(st.epochsCompleted) epochs" + (st.batchesInEpoch > 0 ? " and \(st.batchesInEpoch) batches" : "")
          + ", \(st.trainedTokens) tokens, \(String(format: "%.0f", st.trainingSeconds)) s")
      if let planned = st.plannedSteps {
        say(
          "cosine schedule planned to end after \(planned) steps per stream"
            + (st.planAnchor.map {
              String(format: " (last re-planned at step %d, %.3f of the cosine done)", $0.steps, $0.fraction)
            } ?? ""))
      }
      say("best validation perplexity: " + (st.bestValidPerplexity.map { String(format: "%.2f", $0) } ?? "none yet"))
      if tensors {
        for (name, shape) in s.tensors { say("  \(name) \(shape)") }
      }
    }
  }
}

struct GradientFlowCommand: ParsableCommand {
  static let configuration = CommandConfiguration(
    commandName: "gradient-flow",
    abstract: "How far gradients travel back in time through an RNN, a GRU and an LSTM.",
    discussion: """
      On windows of the validation text, each model backpropagates the loss of the last step only; the norm of the gradient reaching the top layer's hidden state k steps earlier is printed and plotted (untrained models of each cell, and any --checkpoint). Then the textbook's synthetic version: a gradient multiplied by W_hhᵀ again and again, for a W_hh whose largest singular value is above and below 1, and the exploding case with clipping. Writes gradient-flow.csv, gradient-flow.svg and gradient-flow-synthetic.svg to --output.

      Examples:
        rnnlm gradient-flow
        rnnlm gradient-flow --checkpoint runs/small-1/best.safetensors \\
            --checkpoint runs/small-2/best.safetensors
      """)

  @Option(help: "Directory of the corpus (as train-ptb finds it).") var data: String?
  @Flag(help: "Skip the SHA-256 check of files named like PTB's.") var noVerify = false
  @Option(help: "Trained models to measure too (repeat the flag).") var checkpoint: [String] = []
  @Option(
    help: "Cells of the untrained models: \(RecurrentCell.allCases.map(\.rawValue).joined(separator: ",")) or none.")
  var cells = "lstm,gru,rnn"
  @Option(help: "Embedding and hidden size of the untrained models.") var size = 100
  @Option(help: "Window length T: how many steps back the gradient is followed.") var steps = 100
  @Option(help: "Windows (averaged).") var windows = 20
  @Option(help: "Seed of the untrained models' weights and of the synthetic W_hh.") var seed: UInt64 = 1
  @Option(help: "Hidden size of the synthetic experiment.") var syntheticSize = 100
  @Option(help: "Largest singular value of the synthetic W_hh that makes the gradient vanish (below 1).")
  var vanishingSigma = 0.8
  @Option(
    help:
      "Largest singular value of the synthetic W_hh that makes it explode: a random matrix's growth rate is its spectral radius, about half its largest singular value at H = 100."
  )
  var explodingSigma = 3.0
  @Option(help: "Clip threshold of the synthetic exploding case.") var clip = 10.0
  @Option(help: "Directory for the CSV and the plots.") var output = "gradient-flow"

  func validate() throws {
    if steps < 2 { throw ValidationError("--steps must be at least 2") }
    if windows < 1 { throw ValidationError("--windows must be at least 1") }
    if size < 1 || syntheticSize < 1 { throw ValidationError("--size and --synthetic-size must be at least 1") }
    if !(clip > 0) { throw ValidationError("--clip must be positive") }
    if !(vanishingSigma > 0) || !(explodingSigma > 0) {
      throw ValidationError("--vanishing-sigma and --exploding-sigma must be positive")
    }
    _ = try untrainedCells()
  }

  func untrainedCells() throws -> [RecurrentCell] {
    if cells == "none" { return [] }
    return try cells.split(separator: ",").map {
      guard let c = RecurrentCell(rawValue: String($0)) else {
        throw ValidationError("unknown cell '\($0)' in --cells")
      }
      return c
    }
  }

  func run() throws {
    try reporting {
      let directory = try PTB.locate(explicit: data)
      let dataset = try PTB.load(directory: directory, verify: !noVerify)
      say(
        "text: the validation split of \(directory) (\(dataset.valid.count) tokens), \(windows) windows of \(steps) steps"
      )
      // Each model reads the text with its own word ids (a frequency-ordered vocabulary has others).
      var models: [(label: String, config: ModelConfig, parameters: [Float]?, text: [Int32])] = try untrainedCells()
        .map { cell in
          let config = ModelConfig(
            vocabularySize: dataset.vocabulary.count, embeddingSize: size, hiddenSize: size, layers: 1, cell: cell)
          return ("\(cell), untrained", config, nil, dataset.valid)
        }
      for path in checkpoint {
        let c = try Checkpoint.read(from: path)
        guard let data = try dataset.matching(vocabulary: c.vocabulary) else {
          throw DataError.malformed("\(path): its vocabulary is not the one of \(directory)")
        }
        let ppl = c.state.bestValidPerplexity.map { String(format: ", valid ppl %.0f", $0) } ?? ""
        models.append(("\(c.config.cell) H \(c.config.hiddenSize), trained\(ppl)", c.config, c.parameters, data.valid))
      }
      var real: [GradientFlow.Curve] = []
      for m in models {
        let norms = try GradientFlow.stateGradientNorms(
          config: m.config, parameters: m.parameters, seed: seed, corpus: m.text, steps: steps, windows: windows)
        real.append(GradientFlow.Curve(label: m.label, norms: norms))
      }
      func synthetic(_ sigma: Double, clip: Double? = nil) -> GradientFlow.Curve {
        let clipped = clip.map { String(format: ", clipped at %g", $0) } ?? ""
        return GradientFlow.Curve(
          label: String(format: "σ_max(W_hh) = %g", sigma) + clipped,
          norms: GradientFlow.syntheticNorms(
            hiddenSize: syntheticSize, steps: steps, largestSingularValue: sigma, clip: clip, seed: seed))
      }
      let synthetic = [synthetic(explodingSigma), synthetic(vanishingSigma), synthetic(explodingSigma, clip: clip)]
      let shown = [0, 1, 5, 10, 20, 50, steps - 1].filter { $0 < steps }
      func table(_ title: String, _ curves: [GradientFlow.Curve]) {
        say(title)
        say(
          "  " + "steps back".padding(toLength: 44, withPad: " ", startingAt: 0)
            + shown.map { String(format: "%10d", $0) }.joined())
        for c in curves {
          say(
            "  " + c.label.padding(toLength: 44, withPad: " ", startingAt: 0)
              + shown.map { String(format: "%10.2e", c.norms[$0]) }.joined())
        }
      }
      table("‖∂L/∂h_t‖ of the top layer, L = loss of the last step only:", real)
      table("synthetic: ‖dh‖ after multiplying by W_hhᵀ again and again:", synthetic)
      do {
        try FileManager.default.createDirectory(atPath: output, withIntermediateDirectories: true)
        let csv = GradientFlow.csv(real.map { ("ptb", $0) } + synthetic.map { ("synthetic", $0) })
        try csv.write(toFile: output + "/gradient-flow.csv", atomically: true, encoding: .utf8)
        try GradientFlow.svg(real, title: "Gradient reaching h_t from the last step's loss (validation text)")
          .write(toFile: output + "/gradient-flow.svg", atomically: true, encoding: .utf8)
        try GradientFlow.svg(synthetic, title: "dh multiplied by W_hhᵀ, H = \(syntheticSize)")
          .write(toFile: output + "/gradient-flow-synthetic.svg", atomically: true, encoding: .utf8)
      } catch {
        throw DataError.malformed("cannot write the results to \(output): it is not a directory this user can write to")
      }
      say("wrote \(output)/gradient-flow.csv, \(output)/gradient-flow.svg, \(output)/gradient-flow-synthetic.svg")
    }
  }
}

RNNLMTool.mainWithOneLineErrors()
