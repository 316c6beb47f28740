import ArgumentParser
import RNNLMCommandLine

struct TrainPTB: ParsableCommand {
  static let configuration = CommandConfiguration(
    commandName: "train-ptb",
    abstract: "Train a recurrent language model (LSTM, GRU or RNN) on Penn Treebank and report its test perplexity.",
    discussion: """
      PTB is found by --data, then $PTB_DIR, then corpora/ptb/, then ../shared/corpora/ptb/.
      A preset sets every hyper-parameter; the flags override single ones. After each epoch
      the validation perplexity decides: better, and best.safetensors is saved; not better,
      and the learning rate is divided by --lr-decay. Ctrl-C stops after the current batch,
      saves last.safetensors and still reports the test perplexity of the best parameters.

      Examples:
        train-ptb                                   # the book's small model, 4 epochs
        train-ptb --preset medium --max-minutes 90  # the better model, stopping cleanly after 90 min
        train-ptb --resume runs/medium-1/last.safetensors
        train-ptb --epochs 1 --nhid 200 --emsize 200 --threads 1
      """)

  @OptionGroup var flags: TrainingFlags

  func validate() throws { try flags.requireTimeBudget() }

  func run() throws {
    _ = try runTraining(flags)
  }
}

TrainPTB.mainWithOneLineErrors()
