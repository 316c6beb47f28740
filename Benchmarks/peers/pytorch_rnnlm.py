#!/usr/bin/env python3
"""The toolkit's language models in PyTorch, timed as throughput-bench times the toolkit.

Plain nn.Embedding -> dropout -> nn.LSTM/nn.GRU/nn.RNN (dropout between layers) -> dropout ->
nn.Linear, the decoder tied to the embedding when the preset ties them; the presets' shapes,
the book's batches (N streams of PTB's training text, T steps, the hidden state carried and
detached between batches), mean cross-entropy, clip_grad_norm_ and a plain SGD step, on as many
threads as the toolkit uses. Evaluation: the same model in eval mode, forward and loss only,
under torch.no_grad, with the training batch shape.

Prints, like throughput-bench: training and evaluation tokens/s and ms/step, medians over
--repeats repeats of --steps steps after --warmup warm-up steps.

Usage: pytorch_rnnlm.py [--preset small|medium] [--cell lstm|gru|rnn] [--threads 2] [--data DIR]
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
        if c and os.path.exists(os.path.join(c, "ptb.train.txt")):
            return c
    raise SystemExit("PTB not found; pass --data DIR")


def read_ids(path):
    ids, vocabulary = [], {}
    with open(path, encoding="utf-8") as f:
        for line in f:
            for word in line.split() + ["<eos>"]:
                ids.append(vocabulary.setdefault(word, len(vocabulary)))
    return torch.tensor(ids, dtype=torch.long), len(vocabulary)


class Model(nn.Module):
    def __init__(self, cell, v, d, h, layers, tied, dropout):
        super().__init__()
        self.encoder = nn.Embedding(v, d)
        rnn = {"lstm": nn.LSTM, "gru": nn.GRU, "rnn": nn.RNN}[cell]
        self.rnn = rnn(d, h, layers, dropout=dropout if layers > 1 else 0.0)
        self.drop = nn.Dropout(dropout)
        self.decoder = nn.Linear(h, v)
        if tied:
            self.decoder.weight = self.encoder.weight

    def forward(self, x, state):
        out, state = self.rnn(self.drop(self.encoder(x)), state)
        return self.decoder(self.drop(out)), state


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
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    torch.manual_seed(1)
    d, h, layers, tied, dropout, n, t = PRESETS[args.preset]
    train, v = read_ids(os.path.join(find_ptb(args.data), "ptb.train.txt"))
    streams = train[: (len(train) // n) * n].view(n, -1).t().contiguous()  # (len/N, N), time-major
    model = Model(args.cell, v, d, h, layers, tied, dropout)
    optimizer = torch.optim.SGD(model.parameters(), lr=args.lr)
    loss_fn = nn.CrossEntropyLoss()
    position = 0

    def batch():
        nonlocal position
        if position + t + 1 > streams.size(0):
            position = 0
        x, y = streams[position : position + t], streams[position + 1 : position + t + 1]
        position += t
        return x, y.reshape(-1)

    def zero_state():
        z = torch.zeros(layers, n, h)
        return (z, z.clone()) if args.cell == "lstm" else z

    def detach(state):
        return tuple(s.detach() for s in state) if isinstance(state, tuple) else state.detach()

    state = zero_state()

    def train_step():
        nonlocal state
        x, y = batch()
        state = detach(state)
        optimizer.zero_grad()
        logits, state = model(x, state)
        loss = loss_fn(logits.view(-1, v), y)
        loss.backward()
        nn.utils.clip_grad_norm_(model.parameters(), args.clip)
        optimizer.step()

    def eval_step():
        nonlocal state
        x, y = batch()
        with torch.no_grad():
            logits, state = model(x, state)
            loss_fn(logits.view(-1, v), y)

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
    state = zero_state()
    eval_time = median_step_time(eval_step)
    print(f"pytorch {torch.__version__}, {args.preset} {args.cell}, threads {torch.get_num_threads()}, "
          f"CPU capability {torch.backends.cpu.get_cpu_capability()}")
    print(f"training  : {n * t / train_time:8.0f} tokens/s | {train_time * 1000:7.2f} ms/step")
    print(f"evaluation: {n * t / eval_time:8.0f} tokens/s | {eval_time * 1000:7.2f} ms/step")


if __name__ == "__main__":
    main()
