import ArgumentParser
import RNNLMCommandLine

struct TrainClassifier: ParsableCommand {
  static let configuration = CommandConfiguration(
    commandName: "train-classifier",
    abstract: "Train a many-to-one text classifier (LSTM, GRU, RNN or bag of words) and report its test accuracy.",
    discussion: """
      Texts are lowercased and split into words (letters, digits, apostrophes), cut to --max-length words and batched by length. After each epoch the validation loss decides: better, and best.safetensors is saved; --patience epochs without improvement end the run. The best parameters are restored and tested at the end. Ctrl-C stops after the current batch and saves last.safetensors for --resume. Every schedule and stopping rule works as for every model of the toolkit: --lr-decay, --cosine, --cosine-budget (with --max-minutes), --asgd, --patience; and so do the budgets --max-minutes, --max-epochs and --max-batches. --resume alone continues a run on the data it was trained on.

      Examples:
        rnnlm make-data sentiment --output data/sentiment
        train-classifier --data data/sentiment
        train-classifier --data data/sentiment --bag-of-words
        train-classifier --data aclImdb --max-length 200 --num-words 20000 \\
            --cell gru --epochs 5
        train-classifier --data data/sentiment --cosine-budget --max-minutes 5
        train-classifier --data ../shared/corpora/sst2 --emsize 300 --embeddings vectors.txt --freeze-embeddings
        train-classifier --data ../shared/corpora/sst2 --emsize 128 --nhid 128 \\
            --init-from runs/sst2-lm/best.safetensors --freeze-encoder-epochs 1 --encoder-lr-factor 0.3
        train-classifier --data ../shared/corpora/sst2 --emsize 128 --dropout 0.5 \\
            --init-from runs/sst2-lm/best.safetensors --init-layers 0
        train-classifier --data ../shared/corpora/sst2 --train-texts 2000 --dropout 0.5 --embedding-dropout 0.1
        train-classifier --resume runs/classifier-1/last.safetensors
      """)

  @OptionGroup var flags: ClassifierFlags

  func run() throws {
    _ = try runClassifierTraining(flags)
  }
}

TrainClassifier.mainWithOneLineErrors()
