#!/usr/bin/env python3
"""Reads an RNNLM checkpoint with NumPy alone and recomputes its validation loss.

The checkpoint is a safetensors file: an 8-byte little-endian header length, a JSON header
(tensor name -> dtype, shape, byte offsets; "__metadata__" -> strings), then raw little-endian
float32 data. Tensor names and layouts are PyTorch's (nn.Embedding; nn.LSTM with gate order
i, f, g, o, nn.GRU with r, z, n, or nn.RNN with tanh, as the config's "cell" says, an LSTM when
it says nothing; nn.Linear), so PyTorch's modules' load_state_dict would take them too. The
formulas below are PyTorch's documented ones, not a transcription of the toolkit's kernels.

This script runs its own forward pass in float64 over a text file tokenised as the toolkit does
(whitespace-separated words, each line ending in <eos>), read as the toolkit's evaluation reads
it: N parallel streams of (len-1)//N tokens, the state carried through each stream. It compares
the mean loss with ln(best validation perplexity) stored in a best.safetensors checkpoint.

Usage: check_checkpoint.py CHECKPOINT TEXT [--tolerance 1e-4]
Exit status: 0 when the losses match within the tolerance, 1 otherwise.
"""
import argparse
import json
import struct
import sys

import numpy as np


def read_safetensors(path):
    with open(path, "rb") as f:
        data = f.read()
    (n,) = struct.unpack("<Q", data[:8])
    header = json.loads(data[8 : 8 + n])
    meta = header.pop("__metadata__")
    tensors = {}
    for name, entry in header.items():
        if entry["dtype"] != "F32":
            raise ValueError(f"{name}: dtype {entry['dtype']}, expected F32")
        begin, end = entry["data_offsets"]
        raw = np.frombuffer(data[8 + n + begin : 8 + n + end], dtype="<f4")
        tensors[name] = raw.reshape(entry["shape"]).astype(np.float64)
    return tensors, meta


def tokenize(path, vocabulary):
    ids = {w: i for i, w in enumerate(vocabulary)}
    out = []
    with open(path, encoding="utf-8") as f:
        for number, line in enumerate(f, 1):
            for word in line.split() + ["<eos>"]:
                if word not in ids:
                    sys.exit(f"{path}:{number}: word {word!r} is not in the checkpoint's vocabulary")
                out.append(ids[word])
    return np.array(out)


def sigmoid(x):
    return 1 / (1 + np.exp(-x))


def layer_step(cell, w_ih, w_hh, b_ih, b_hh, x, state):
    """One step of a layer as PyTorch documents nn.LSTM, nn.GRU and nn.RNN(tanh)."""
    if cell == "lstm":
        h, c = state
        i, f, g, o = np.split(x @ w_ih.T + b_ih + h @ w_hh.T + b_hh, 4, axis=1)
        c = sigmoid(f) * c + sigmoid(i) * np.tanh(g)
        h = sigmoid(o) * np.tanh(c)
        return h, (h, c)
    (h,) = state
    if cell == "gru":
        xr, xz, xn = np.split(x @ w_ih.T + b_ih, 3, axis=1)
        hr, hz, hn = np.split(h @ w_hh.T + b_hh, 3, axis=1)
        r = sigmoid(xr + hr)
        z = sigmoid(xz + hz)
        n = np.tanh(xn + r * hn)
        h = (1 - z) * n + z * h
        return h, (h,)
    if cell == "rnn":
        h = np.tanh(x @ w_ih.T + b_ih + h @ w_hh.T + b_hh)
        return h, (h,)
    sys.exit(f"unknown cell {cell!r}")


def stream_losses(t, config, inputs, targets):
    """Per-token losses of one batch of sequences: inputs/targets (N, T), from a zero state."""
    x = t["encoder.weight"][inputs]  # (N, T, D)
    n, steps = inputs.shape
    hidden = config["hiddenSize"]
    cell = config.get("cell", "lstm")
    for layer in range(config["layers"]):
        w_ih, w_hh = t[f"rnn.weight_ih_l{layer}"], t[f"rnn.weight_hh_l{layer}"]
        b_ih, b_hh = t[f"rnn.bias_ih_l{layer}"], t[f"rnn.bias_hh_l{layer}"]
        state = tuple(np.zeros((n, hidden)) for _ in range(2 if cell == "lstm" else 1))
        out = np.empty((n, steps, hidden))
        for s in range(steps):
            out[:, s], state = layer_step(cell, w_ih, w_hh, b_ih, b_hh, x[:, s], state)
        x = out
    decoder = t["encoder.weight"] if config["tied"] else t["decoder.weight"]
    scores = x @ decoder.T + t["decoder.bias"]  # (N, T, V)
    top = scores.max(axis=2, keepdims=True)
    log_z = np.log(np.exp(scores - top).sum(axis=2)) + top[..., 0]
    picked = np.take_along_axis(scores, targets[..., None], axis=2)[..., 0]
    return log_z - picked


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("checkpoint")
    parser.add_argument("text")
    parser.add_argument("--tolerance", type=float, default=1e-4)
    args = parser.parse_args()

    tensors, meta = read_safetensors(args.checkpoint)
    if meta.get("format") != "rnnlm-checkpoint":
        sys.exit(f"{args.checkpoint}: not an RNNLM checkpoint")
    config = json.loads(meta["config"])
    training = json.loads(meta["training"])
    state = json.loads(meta["state"])
    vocabulary = json.loads(meta["vocabulary"])
    if state.get("bestValidPerplexity") is None:
        sys.exit(f"{args.checkpoint}: holds no validation perplexity (use a best.safetensors)")

    corpus = tokenize(args.text, vocabulary)
    n = training["evalBatchSize"]
    jump = (len(corpus) - 1) // n
    starts = np.arange(n) * jump
    inputs = np.stack([corpus[s : s + jump] for s in starts])
    targets = np.stack([corpus[s + 1 : s + jump + 1] for s in starts])
    loss = stream_losses(tensors, config, inputs, targets).mean()
    expected = float(np.log(state["bestValidPerplexity"]))
    diff = abs(loss - expected)
    print(f"cell: {config.get('cell', 'lstm')}")
    print(f"parameters: {sum(v.size for k, v in tensors.items() if not k.startswith('state.'))} scalars in {len(tensors)} tensors")
    print(f"numpy loss {loss:.6f} nats/token over {n * jump} tokens; toolkit {expected:.6f}; difference {diff:.2e}")
    if not diff <= args.tolerance:
        print(f"MISMATCH: difference exceeds {args.tolerance}", file=sys.stderr)
        sys.exit(1)
    print("match")


if __name__ == "__main__":
    main()
