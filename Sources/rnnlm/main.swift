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
  }
}

struct RNNLMTool: ParsableCommand {
  static let configuration = CommandConfiguration(
    commandName: "rnnlm",
    abstract: "Use a trained recurrent language model: generate text, measure perplexity, inspect a checkpoint.",
    discussion: "Checkpoints come from train-ptb (runs/<preset>-<n>/best.safetensors).",
    subcommands: [Generate.self, Evaluate.self, Info.self])
}

struct Generate: ParsableCommand {
  static let configuration = CommandConfiguration(
    abstract: "Sample words from a model, streaming them as they are produced.",
    discussion: """
      <eos> is printed as a line break. Temperature 0 picks the most likely word each time
      (greedy); higher temperatures sample more freely. The same seed gives the same text.

      Examples:
        rnnlm generate runs/small-1/best.safetensors
        rnnlm generate runs/medium-1/best.safetensors --prompt "the company said" --words 40 --temperature 0.8 --top-k 50
        rnnlm generate model.safetensors --prompt "the zyzzyva" --map-unknown --temperature 0
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
      Words outside the vocabulary are read as <unk> and counted. The text is read as
      --batch-size parallel streams in windows of --bptt steps, the state carried.

      Examples:
        rnnlm evaluate runs/small-1/best.safetensors ../shared/corpora/ptb/ptb.test.txt
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

struct Info: ParsableCommand {
  static let configuration = CommandConfiguration(
    abstract: "What a checkpoint holds, read from its header without loading the weights.",
    discussion: """
      Example:
        rnnlm info runs/medium-1/last.safetensors
      """)

  @Argument(help: "The checkpoint.") var checkpoint: String
  @Flag(help: "List every tensor with its shape.") var tensors = false

  func run() throws {
    try reporting {
      let s = try CheckpointSummary(contentsOf: checkpoint)
      let c = s.config
      let t = s.training
      let st = s.state
      say("checkpoint: \(checkpoint) (\(s.fileSize) bytes, format version \(Checkpoint.formatVersion))")
      say(
        "model: \(c.cell), V \(c.vocabularySize), D \(c.embeddingSize), H \(c.hiddenSize), layers \(c.layers), tied \(c.tied), dropout \(c.dropout)"
      )
      say("parameters: \(c.parameterCount)")
      say("vocabulary: \(s.vocabularySize) words")
      say(
        "training: N \(t.batchSize), T \(t.steps), lr \(t.learningRate) (now \(st.learningRate)), decay \(t.learningRateDecay), clip \(t.clip), epochs \(t.epochs), seed \(t.seed)"
      )
      say(
        "trained: \(st.epochsCompleted) epochs" + (st.batchesInEpoch > 0 ? " and \(st.batchesInEpoch) batches" : "")
          + ", \(st.trainedTokens) tokens, \(String(format: "%.0f", st.trainingSeconds)) s")
      say("best validation perplexity: " + (st.bestValidPerplexity.map { String(format: "%.2f", $0) } ?? "none yet"))
      if tensors {
        for (name, shape) in s.tensors { say("  \(name) \(shape)") }
      }
    }
  }
}

RNNLMTool.main()
