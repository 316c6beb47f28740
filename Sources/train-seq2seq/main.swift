import ArgumentParser
import RNNLMCommandLine

struct TrainSeq2Seq: ParsableCommand {
  static let configuration = CommandConfiguration(
    commandName: "train-seq2seq",
    abstract: "Train an encoder–decoder (with or without attention) on source<TAB>target pairs.",
    discussion: """
      The decoder is trained with teacher forcing; after each epoch the validation loss and the exact-match accuracy of greedy decoding are measured; --patience epochs without a better validation loss end the run, and the best parameters are restored and tested. Ctrl-C stops after the current batch and saves last.safetensors for --resume. Every schedule and stopping rule works as for every model of the toolkit: --lr-decay, --cosine, --cosine-budget (with --max-minutes), --asgd, --patience; and so do the budgets --max-minutes, --max-epochs and --max-batches. --resume alone continues a run on the data it was trained on.

      Examples:
        rnnlm make-data dates --output data/dates
        train-seq2seq --data data/dates
        train-seq2seq --data data/dates --attention none
        rnnlm make-data addition --output data/addition
        train-seq2seq --data data/addition --reverse --peeky --attention none
        train-seq2seq --data data/dates --patience 3 --cosine
      """)

  @OptionGroup var flags: Seq2SeqFlags

  func run() throws {
    _ = try runSeq2SeqTraining(flags)
  }
}

TrainSeq2Seq.mainWithOneLineErrors()
