#!/usr/bin/env python3
"""The toolkit's language models in PyTorch, timed as throughput-bench times the toolkit.

Plain nn.Embedding -> dropout -> nn.LSTM/nn.GRU/nn.RNN (dropout between layers) -> dropout ->
nn.Linear, the decoder tied to the embedding when the preset ties them; the presets' shapes,
the book's batches (N streams of PTB's training text, T steps, the hidden state carried and
detached between batches), mean cross-entropy, clip_grad_norm_ and a plain SGD step, on as many
threads as the toolkit uses. Evaluation: the same model in eval mode, forward and loss only,
under torch.no_grad, with the training batch shape.

Prints, like throughput-bench: training and evaluation tokens/s and ms/step, medians over
--repeats repeats of --steps steps after --warmup warm-up steps (evaluation steps of
--eval-batch-size streams when given); with --eval-pass also the median over --repeats whole
evaluation passes over the validation text beside the training text (N = --eval-batch-size
streams, default the batch, as the toolkit's evaluation reads them).

With --adaptive c1,c2,... the output layer is nn.AdaptiveLogSoftmaxWithLoss(H, V, cutoffs,
div_value=--div, head_bias=True) over the vocabulary in order of training frequency (as the
toolkit orders it for its adaptive softmax); PyTorch's module cannot share the embedding, so use
--tied false on both sides. --data takes PTB's file names or train.txt (a directory written by
`rnnlm make-data zipf`, say).

Usage: pytorch_rnnlm.py [--preset small|medium] [--cell lstm|gru|rnn] [--threads 2] [--data DIR]
                        [--tied true|false] [--adaptive 2000,10000] [--div 4]
                        [--eval-pass] [--eval-batch-size N]
Needs `pip install torch` (CPU is enough); not part of CI.
"""
import argparse
import os
import statistics
import time

import torch
import torch.nn as nn

PRESETS = {  # embedding, hidden, layers, tied, dropout, batch, steps (as the toolkit's presets)
    "small": (100, 100, 1, False, 0.0, 20, 35),
    "medium": (650, 650, 2, True, 0.5, 20, 35),
    "large": (1500, 1500, 2, True, 0.65, 20, 35),
}


def find_ptb(explicit):
    here = os.path.dirname(os.path.abspath(__file__))
    candidates = [explicit] if explicit else [
        os.environ.get("PTB_DIR"), os.path.join(here, "../../corpora/ptb"), os.path.join(here, "../../../shared/corpora/ptb")]
    for c in candidates:
        for name in ("ptb.train.txt", "train.txt"):
            if c and os.path.exists(os.path.join(c, name)):
                return os.path.join(c, name)
    raise SystemExit("no training text found; pass --data DIR")


def read_ids(path, by_frequency=False):
    """Token ids in first-seen order, or (by_frequency) the most frequent word first, ties in
    first-seen order, as the toolkit orders a vocabulary for its adaptive softmax; the ids, V and
    the validation text beside the training text read with the same vocabulary (None if absent)."""
    ids, vocabulary = [], {}
    with open(path, encoding="utf-8") as f:
        for line in f:
            for word in line.split() + ["<eos>"]:
                ids.append(vocabulary.setdefault(word, len(vocabulary)))
    ids = torch.tensor(ids, dtype=torch.long)
    valid = None
    valid_path = path.replace("train.txt", "valid.txt")
    if os.path.exists(valid_path) and valid_path != path:
        with open(valid_path, encoding="utf-8") as f:
            valid = torch.tensor([vocabulary.get(w, vocabulary.get("<unk>", 0))
                                  for line in f for w in line.split() + ["<eos>"]], dtype=torch.long)
    if by_frequency:
        counts = torch.bincount(ids, minlength=len(vocabulary))
        order = sorted(range(len(vocabulary)), key=lambda i: (-int(counts[i]), i))
        new_id = torch.empty(len(vocabulary), dtype=torch.long)
        new_id[torch.tensor(order)] = torch.arange(len(vocabulary))
        ids = new_id[ids]
        valid = new_id[valid] if valid is not None else None
    return ids, len(vocabulary), valid


class Model(nn.Module):
    def __init__(self, cell, v, d, h, layers, tied, dropout, cutoffs=None, div=4.0):
        super().__init__()
        self.encoder = nn.Embedding(v, d)
        rnn = {"lstm": nn.LSTM, "gru": nn.GRU, "rnn": nn.RNN}[cell]
        self.rnn = rnn(d, h, layers, dropout=dropout if layers > 1 else 0.0)
        self.drop = nn.Dropout(dropout)
        self.v = v
        if cutoffs:
            self.decoder = nn.AdaptiveLogSoftmaxWithLoss(h, v, cutoffs, div_value=div, head_bias=True)
        else:
            self.decoder = nn.Linear(h, v)
            if tied:
                self.decoder.weight = self.encoder.weight
        self.loss_fn = nn.CrossEntropyLoss()

    def forward(self, x, state, targets):
        """The mean loss of the batch's targets (flattened time-major) and the next state."""
        out, state = self.rnn(self.drop(self.encoder(x)), state)
        hidden = self.drop(out).reshape(-1, out.size(-1))
        if isinstance(self.decoder, nn.AdaptiveLogSoftmaxWithLoss):
            return self.decoder(hidden, targets).loss, state
        return self.loss_fn(self.decoder(hidden), targets), state


def main():
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--preset", default="small", choices=PRESETS)
    parser.add_argument("--cell", default="lstm", choices=["lstm", "gru", "rnn"])
    parser.add_argument("--threads", type=int, default=os.cpu_count())
    parser.add_argument("--data")
    parser.add_argument("--steps", type=int, default=20)
    parser.add_argument("--warmup", type=int, default=3)
    parser.add_argument("--repeats", type=int, default=5)
    parser.add_argument("--lr", type=float, default=20.0)
    parser.add_argument("--clip", type=float, default=0.25)
    parser.add_argument("--tied", choices=["true", "false"])
    parser.add_argument("--adaptive", help="adaptive softmax cutoffs, e.g. 2000,10000")
    parser.add_argument("--div", type=float, default=4.0)
    parser.add_argument("--eval-pass", action="store_true",
                        help="also time whole evaluation passes over the validation text")
    parser.add_argument("--eval-batch-size", type=int, help="streams of evaluation steps and passes (default: the batch)")
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    torch.manual_seed(1)
    d, h, layers, tied, dropout, n, t = PRESETS[args.preset]
    if args.tied:
        tied = args.tied == "true"
    cutoffs = [int(c) for c in args.adaptive.split(",")] if args.adaptive else None
    if cutoffs and tied:
        raise SystemExit("nn.AdaptiveLogSoftmaxWithLoss cannot share the embedding: add --tied false")
    train, v, valid = read_ids(find_ptb(args.data), by_frequency=bool(cutoffs))
    def stream_view(count):  # (len/count, count), time-major
        return train[: (len(train) // count) * count].view(count, -1).t().contiguous()

    streams = stream_view(n)
    model = Model(args.cell, v, d, h, layers, tied, dropout, cutoffs, args.div)
    optimizer = torch.optim.SGD(model.parameters(), lr=args.lr)
    position = 0

    def batch():
        nonlocal position
        if position + t + 1 > streams.size(0):
            position = 0
        x, y = streams[position : position + t], streams[position + 1 : position + t + 1]
        position += t
        return x, y.reshape(-1)

    def zero_state(rows=n):
        z = torch.zeros(layers, rows, h)
        return (z, z.clone()) if args.cell == "lstm" else z

    def detach(state):
        return tuple(s.detach() for s in state) if isinstance(state, tuple) else state.detach()

    state = zero_state()

    def train_step():
        nonlocal state
        x, y = batch()
        state = detach(state)
        optimizer.zero_grad()
        loss, state = model(x, state, y)
        loss.backward()
        nn.utils.clip_grad_norm_(model.parameters(), args.clip)
        optimizer.step()

    def eval_step():
        nonlocal state
        x, y = batch()
        with torch.no_grad():
            _, state = model(x, state, y)

    def median_step_time(step):
        for _ in range(args.warmup):
            step()
        times = []
        for _ in range(args.repeats):
            t0 = time.perf_counter()
            for _ in range(args.steps):
                step()
            times.append((time.perf_counter() - t0) / args.steps)
        return statistics.median(times)

    model.train()
    train_time = median_step_time(train_step)
    model.eval()
    # Evaluation steps read --eval-batch-size streams when given, as throughput-bench's do.
    en = args.eval_batch_size or n
    streams, position = stream_view(en), 0
    state = zero_state(en)
    eval_time = median_step_time(eval_step)
    pass_line = ""
    if args.eval_pass:
        if valid is None:
            raise SystemExit("--eval-pass needs a validation text beside the training text")
        # As the toolkit evaluates: N streams of (len - 1) // N tokens, windows of T steps, the
        # state carried from window to window, every target counted.
        jump = (len(valid) - 1) // en
        inputs = valid[: en * jump].view(en, jump).t().contiguous()
        targets = valid[1 : en * jump + 1].view(en, jump).t().contiguous()

        def eval_pass():
            total, s = 0.0, None
            with torch.no_grad():
                for start in range(0, jump, t):
                    x, y = inputs[start : start + t], targets[start : start + t].reshape(-1)
                    loss, s = model(x, s, y)
                    total += float(loss) * y.numel()
            return total

        times = []
        for _ in range(max(1, args.repeats)):
            t0 = time.perf_counter()
            eval_pass()
            times.append(time.perf_counter() - t0)
        seconds = statistics.median(times)
        pass_line = (f"\nevaluation pass: {en * jump / seconds:8.0f} tokens/s | {seconds:7.2f} s/pass | "
                     f"the validation text's {en * jump} tokens, N={en}, T={t}")
    output = f"adaptive softmax {cutoffs}" if cutoffs else "full softmax"
    print(f"pytorch {torch.__version__}, {args.preset} {args.cell}, V {v}, tied {tied}, {output}, "
          f"threads {torch.get_num_threads()}, "
          f"CPU capability {torch.backends.cpu.get_cpu_capability()}")
    print(f"training  : {n * t / train_time:8.0f} tokens/s | {train_time * 1000:7.2f} ms/step")
    print(f"evaluation: {en * t / eval_time:8.0f} tokens/s | {eval_time * 1000:7.2f} ms/step{pass_line}")


if __name__ == "__main__":
    main()
