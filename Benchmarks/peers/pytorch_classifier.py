#!/usr/bin/env python3
"""The toolkit's text classifier in PyTorch, timed as `throughput-bench classifier` times it.

nn.Embedding(V, D, padding_idx=0) -> nn.LSTM/nn.GRU/nn.RNN(D, H, layers, batch_first) over a
pack_padded_sequence (so each text's last state is its own last word's, as the toolkit's "last"
pooling) -> dropout -> nn.Linear(H, 1) -> BCEWithLogitsLoss, torch.optim.Adam at 0.001: the
shape, loss and optimizer of `train-classifier` with its defaults. The texts are the training
texts of --data (label<TAB>text files), lower-cased and cut into words by the toolkit's rule
(letters, digits and apostrophes; apostrophes trimmed), the vocabulary the --num-words most
frequent words plus <pad> and <unk>; batches as the toolkit makes them (a seeded shuffle, groups
of 20 batches sorted by length). Prediction: eval mode under torch.no_grad, the texts sorted by
length in batches of N, sigmoid probabilities.

Prints, like throughput-bench: training texts/s and words/s, and prediction texts/s, medians over
--repeats repeats of --steps steps after --warmup warm-up steps.

Usage: pytorch_classifier.py --data ../shared/corpora/sst2 [--cell lstm] [--emsize 64] [--nhid 64]
                             [--nlayers 1] [--batch-size 32] [--threads 2]
Needs `pip install torch` (CPU is enough); not part of CI.
"""
import argparse
import collections
import os
import random
import statistics
import time

import torch
import torch.nn as nn
from torch.nn.utils.rnn import pack_padded_sequence


def words(text):
    out, current = [], []
    for ch in text.lower():
        if ch.isalnum() or ch == "'":
            current.append(ch)
        else:
            out.append("".join(current))
            current = []
    out.append("".join(current))
    return [w.strip("'") for w in out if w.strip("'") and w.strip("'") != "br"]


def read(directory):
    texts = []
    with open(os.path.join(directory, "train.tsv"), encoding="utf-8") as f:
        for line in f:
            label, _, text = line.rstrip("\n").partition("\t")
            w = words(text)
            if w:
                texts.append((w, label))
    return texts


class Classifier(nn.Module):
    def __init__(self, vocab, cell, d, h, layers, dropout):
        super().__init__()
        self.embedding = nn.Embedding(vocab, d, padding_idx=0)
        self.rnn = {"lstm": nn.LSTM, "gru": nn.GRU, "rnn": nn.RNN}[cell](d, h, layers, batch_first=True)
        self.drop = nn.Dropout(dropout)
        self.fc = nn.Linear(h, 1)

    def forward(self, ids, lengths):
        packed = pack_padded_sequence(self.embedding(ids), lengths, batch_first=True, enforce_sorted=False)
        _, state = self.rnn(packed)
        last = (state[0] if isinstance(state, tuple) else state)[-1]
        return self.fc(self.drop(last)).squeeze(1)


def main():
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--data", required=True)
    p.add_argument("--cell", default="lstm", choices=["lstm", "gru", "rnn"])
    p.add_argument("--emsize", type=int, default=64)
    p.add_argument("--nhid", type=int, default=64)
    p.add_argument("--nlayers", type=int, default=1)
    p.add_argument("--batch-size", type=int, default=32)
    p.add_argument("--num-words", type=int, default=10000)
    p.add_argument("--threads", type=int, default=2)
    p.add_argument("--steps", type=int, default=30)
    p.add_argument("--warmup", type=int, default=5)
    p.add_argument("--repeats", type=int, default=5)
    a = p.parse_args()
    torch.set_num_threads(a.threads)
    torch.manual_seed(1)
    texts = read(a.data)
    counts = collections.Counter(w for t, _ in texts for w in t)
    ids = {w: i + 2 for i, (w, _) in enumerate(sorted(counts.items(), key=lambda x: (-x[1], x[0]))[:a.num_words])}
    labels = sorted({l for _, l in texts})
    encoded = [([ids.get(w, 1) for w in t][-100:], labels.index(l)) for t, l in texts]
    rng = random.Random(1)
    order = list(range(len(encoded)))
    rng.shuffle(order)
    n = a.batch_size
    batches = []
    for s in range(0, len(order), 20 * n):
        group = sorted(order[s:s + 20 * n], key=lambda i: (len(encoded[i][0]), i))
        batches += [group[b:b + n] for b in range(0, len(group), n)]
    rng.shuffle(batches)

    def tensors(batch):
        lengths = torch.tensor([len(encoded[i][0]) for i in batch])
        x = torch.zeros(len(batch), int(lengths.max()), dtype=torch.long)
        for r, i in enumerate(batch):
            x[r, :lengths[r]] = torch.tensor(encoded[i][0])
        return x, lengths, torch.tensor([float(encoded[i][1]) for i in batch])

    prepared = [tensors(b) for b in batches[:a.warmup + a.steps * a.repeats]]
    model = Classifier(len(ids) + 2, a.cell, a.emsize, a.nhid, a.nlayers, 0.2)
    optimizer = torch.optim.Adam(model.parameters(), lr=0.001)
    loss_fn = nn.BCEWithLogitsLoss()
    step = 0

    def train_step():
        nonlocal step
        x, lengths, y = prepared[step % len(prepared)]
        step += 1
        optimizer.zero_grad()
        loss = loss_fn(model(x, lengths), y)
        loss.backward()
        optimizer.step()
        return len(y), int(lengths.sum())

    model.train()
    for _ in range(a.warmup):
        train_step()
    rates = []
    for _ in range(a.repeats):
        done = [0, 0]
        t0 = time.perf_counter()
        for _ in range(a.steps):
            t, w = train_step()
            done[0] += t
            done[1] += w
        s = time.perf_counter() - t0
        rates.append((done[0] / s, done[1] / s))

    # Prediction of as many texts as the training steps saw, sorted by length, in batches of N.
    predicted = sorted(order[:a.steps * n], key=lambda i: (len(encoded[i][0]), i))
    prediction_batches = [tensors(predicted[b:b + n]) for b in range(0, len(predicted), n)]
    model.eval()
    prediction_rates = []
    with torch.no_grad():
        for r in range(a.repeats + 1):
            t0 = time.perf_counter()
            for x, lengths, _ in prediction_batches:
                torch.sigmoid(model(x, lengths))
            if r > 0:
                prediction_rates.append(len(predicted) / (time.perf_counter() - t0))
    mean_words = statistics.mean(len(t) for t, _ in encoded)
    print(f"pytorch {torch.__version__} classifier: {a.nlayers} × {a.nhid} {a.cell.upper()}, last state, "
          f"V {len(ids) + 2}, D {a.emsize}; N {n}, {len(encoded)} texts of {mean_words:.1f} words on average; adam; "
          f"threads {torch.get_num_threads()}")
    print(f"training: {statistics.median(r[0] for r in rates):8.0f} texts/s | "
          f"{statistics.median(r[1] for r in rates):8.0f} words/s")
    print(f"prediction: {statistics.median(prediction_rates):8.0f} texts/s")
    print(f"medians over {a.repeats} repeats of {a.steps} steps after {a.warmup} warm-up steps")


if __name__ == "__main__":
    main()
