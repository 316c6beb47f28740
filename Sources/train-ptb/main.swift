import ArgumentParser
import RNNLMCommandLine

struct TrainPTB: ParsableCommand {
  static let configuration = CommandConfiguration(
    commandName: "train-ptb",
    abstract: "Train a recurrent language model (LSTM, GRU or RNN) on Penn Treebank and report its test perplexity.",
    discussion: """
      PTB is found by --data, then $PTB_DIR, then corpora/ptb/, then ../shared/corpora/ptb/. A preset sets every hyper-parameter; the flags override single ones. After each epoch the validation perplexity decides: better, and best.safetensors is saved; not better, and the learning rate is divided by --lr-decay. Ctrl-C stops after the current batch, saves last.safetensors and still reports the test perplexity of the best parameters. Every schedule and stopping rule works as for every model of the toolkit: --lr-decay, --cosine, --cosine-budget (with --max-minutes), --asgd, --patience; and so do the budgets --max-minutes, --max-epochs and --max-batches. --resume alone continues a run on the data it was trained on. Under mpirun the processes train data-parallel, each on an equal share of the N streams, with the result of one process (kill -USR1 on mpirun stops them cleanly).

      Examples:
        train-ptb                                   # the book's small model, 4 epochs
        train-ptb --preset medium --max-minutes 90  # the better model, 90 minutes
        train-ptb --resume runs/medium-1/last.safetensors
        train-ptb --epochs 1 --nhid 200 --emsize 200 --threads 1
        train-ptb --preset medium --epochs 39 --patience 5
        mpirun -np 2 train-ptb --preset medium --max-minutes 5
        train-ptb --data data/sst2-text --map-unknown --nlayers 1 --emsize 128 --nhid 128 --tied true \\
            --init-from runs/ptb-128/best.safetensors   # continue a PTB model on a task's text
      """)

  @OptionGroup var flags: TrainingFlags

  func validate() throws { try flags.requireTimeBudget() }

  func run() throws {
    _ = try runTraining(flags)
  }
}

TrainPTB.mainWithOneLineErrors()
