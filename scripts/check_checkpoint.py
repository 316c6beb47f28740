#!/usr/bin/env python3
"""Reads a checkpoint of this toolkit with NumPy alone and recomputes what the toolkit computed.

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

A text classifier's checkpoint (format rnnlm-classifier) is checked against `rnnlm classify
--all`: TEXT is then a label<TAB>text file; each text is tokenised by the toolkit's documented
rule, run through embedding, recurrent layers, pooling (last real step, mean or max) and the output
layer (sigmoid for two classes, softmax otherwise), and its class probabilities are compared.

A sequence-to-sequence checkpoint (format rnnlm-seq2seq) is checked against `rnnlm translate
--scores`: TEXT is a source<TAB>target file; each source is encoded, the decoder started from the
encoder's final state, and greedy decoding (with the dot or general attention and the tanh
combination, the peeky input and the reversed source as the config says) must give the same
output and log-probability.

Usage: check_checkpoint.py CHECKPOINT TEXT [--tolerance 1e-4] [--rnnlm PATH]
Exit status: 0 when everything matches within the tolerance, 1 otherwise.
"""
import argparse
import json
import re
import struct
import subprocess
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
    x, _ = run_layers(t, "rnn.", config.get("cell", "lstm"), config["layers"], config["hiddenSize"], x)
    if config.get("adaptiveCutoffs"):
        return -adaptive_log_probabilities(t, config, x, targets)
    decoder = t["encoder.weight"] if config["tied"] else t["decoder.weight"]
    scores = x @ decoder.T + t["decoder.bias"]  # (N, T, V)
    return log_sum_exp(scores) - np.take_along_axis(scores, targets[..., None], axis=2)[..., 0]


def log_sum_exp(scores):
    """log Σ exp over the last axis, stably."""
    top = scores.max(axis=-1, keepdims=True)
    return np.log(np.exp(scores - top).sum(axis=-1)) + top[..., 0]


def adaptive_log_probabilities(t, config, x, targets):
    """log p(target) under the adaptive softmax as PyTorch documents nn.AdaptiveLogSoftmaxWithLoss
    (head_bias=True): the head scores words 0..c1-1 and one entry per tail cluster; a word of
    cluster i adds that cluster's own log-softmax over (x @ tail.i.0.weight.T) @ tail.i.1.weight.T.
    Tied, the head's word rows are the embedding's first c1 rows (decoder.head_clusters.weight
    holds the cluster rows); with adaptiveTiedTails, tail i's output rows are the embedding's rows
    of its words too."""
    cutoffs = config["adaptiveCutoffs"]
    bounds = [0] + cutoffs + [config["vocabularySize"]]
    shortlist = cutoffs[0]
    if config["tied"]:
        head = np.concatenate([t["encoder.weight"][:shortlist], t["decoder.head_clusters.weight"]])
    else:
        head = t["decoder.head.weight"]
    head_scores = x @ head.T + t["decoder.head.bias"]  # (N, T, c1 + k)
    head_log = head_scores - log_sum_exp(head_scores)[..., None]
    out = np.empty(targets.shape)
    for index in np.ndindex(targets.shape):
        w = int(targets[index])
        if w < shortlist:
            out[index] = head_log[index + (w,)]
            continue
        i = next(k for k in range(len(cutoffs)) if bounds[k + 1] <= w < bounds[k + 2])
        if config.get("adaptiveTiedTails"):
            output = t["encoder.weight"][bounds[i + 1] : bounds[i + 2]]
        else:
            output = t[f"decoder.tail.{i}.1.weight"]
        tail = (x[index] @ t[f"decoder.tail.{i}.0.weight"].T) @ output.T
        out[index] = head_log[index + (shortlist + i,)] + tail[w - bounds[i + 1]] - log_sum_exp(tail)
    return out


def one_layer(t, prefix, name, cell, hidden, x, state=None):
    """One recurrent layer whose parameters are prefix + "weight_ih" + name ... over x (N, T, D),
    from `state` (zeros when None); returns its outputs (N, T, H) and its last state."""
    w_ih, w_hh = t[f"{prefix}weight_ih{name}"], t[f"{prefix}weight_hh{name}"]
    b_ih, b_hh = t[f"{prefix}bias_ih{name}"], t[f"{prefix}bias_hh{name}"]
    n, steps, _ = x.shape
    if state is None:
        state = tuple(np.zeros((n, hidden)) for _ in range(2 if cell == "lstm" else 1))
    out = np.empty((n, steps, hidden))
    for s in range(steps):
        out[:, s], state = layer_step(cell, w_ih, w_hh, b_ih, b_hh, x[:, s], state)
    return out, state


def run_layers(t, prefix, cell, layers, hidden, x, initial=None):
    """The recurrent layers named prefix + "weight_ih_l{k}" over x (N, T, D) from zero states (or
    `initial`, a state per layer); returns the top layer's outputs (N, T, H) and each layer's
    last state."""
    finals = []
    for layer in range(layers):
        x, state = one_layer(t, prefix, f"_l{layer}", cell, hidden, x, None if initial is None else initial[layer])
        finals.append(state)
    return x, finals


def words(text):
    """The classifier's documented tokenisation rule: maximal runs of letters, digits and
    apostrophes, lowercased, apostrophes at the ends dropped, "br" dropped (Python's idea of a
    letter or digit is Swift's for ASCII text)."""
    found = []
    for run in re.findall(r"(?:[^\W_]|')+", text.lower()):
        word = run.strip("'")
        if word and word != "br":
            found.append(word)
    return found


def check_classifier(args, t, meta):
    config, training = json.loads(meta["config"]), json.loads(meta["training"])
    vocabulary = {w: i for i, w in enumerate(json.loads(meta["vocabulary"]))}
    classes = json.loads(meta["classes"])
    texts = []
    with open(args.text, encoding="utf-8") as f:
        for line in f:
            if "\t" in line:
                texts.append(line.rstrip("\n").split("\t", 1)[1])
    texts = texts[: args.limit]
    probabilities = []
    for text in texts:
        ids = [vocabulary.get(w, 1) for w in words(text)]
        ids = ids[-training["maxLength"] :] if training["truncation"] == "end" else ids[: training["maxLength"]]
        x = t["embedding.weight"][np.array(ids)][None]  # (1, T, D)
        if config["layers"] == 0:
            feature = x[0].mean(axis=0)
        elif not config.get("bidirectional"):
            out, _ = run_layers(t, "rnn.", config["cell"], config["layers"], config["hiddenSize"], x)
            pooled = {"last": lambda o: o[-1], "mean": lambda o: o.mean(axis=0), "max": lambda o: o.max(axis=0)}
            feature = pooled[config["pooling"]](out[0])
        else:
            # PyTorch's bidirectional layers: each reads the layer below's [forward; backward]
            # states, the backward direction from the last word to the first.
            for layer in range(config["layers"]):
                forward, _ = one_layer(t, "rnn.", f"_l{layer}", config["cell"], config["hiddenSize"], x)
                backward, _ = one_layer(t, "rnn.", f"_l{layer}_reverse", config["cell"], config["hiddenSize"], x[:, ::-1])
                x = np.concatenate([forward, backward[:, ::-1]], axis=2)
            if config["pooling"] == "last":
                h = config["hiddenSize"]
                feature = np.concatenate([x[0, -1, :h], x[0, 0, h:]])
            elif config["pooling"] == "max":
                feature = x[0].max(axis=0)
            else:
                feature = x[0].mean(axis=0)
        logits = t["fc.weight"] @ feature + t["fc.bias"]
        if config["classes"] == 2:
            p1 = 1 / (1 + np.exp(-logits[0]))
            probabilities.append([1 - p1, p1])
        else:
            e = np.exp(logits - logits.max())
            probabilities.append(list(e / e.sum()))
    result = subprocess.run(
        [args.rnnlm, "classify", args.checkpoint, "--all"], input="\n".join(texts) + "\n", capture_output=True,
        text=True, check=True)
    worst = 0.0
    for number, (line, mine) in enumerate(zip(result.stdout.splitlines(), probabilities), 1):
        theirs = {k: float(v) for k, v in (item.split("=") for item in line.split("\t")[2].split(" "))}
        worst = max(worst, max(abs(theirs[c] - p) for c, p in zip(classes, mine)))
    print(f"classifier: {config['layers']} x {config['hiddenSize']} {config['cell']}, {len(texts)} texts")
    print(f"largest difference between NumPy's and rnnlm classify's probabilities: {worst:.2e}")
    return worst


def check_seq2seq(args, t, meta):
    config, training = json.loads(meta["config"]), json.loads(meta["training"])
    source_vocabulary = {w: i for i, w in enumerate(json.loads(meta["sourceVocabulary"]))}
    target_tokens = json.loads(meta["targetVocabulary"])
    characters = training["tokens"] == "characters"
    cell, layers, hidden = config["cell"], config["layers"], config["hiddenSize"]
    sources = []
    with open(args.text, encoding="utf-8") as f:
        for line in f:
            if "\t" in line:
                sources.append(line.rstrip("\n").split("\t", 1)[0])
    sources = sources[: args.limit]
    outputs = []
    for source in sources:
        tokens = list(source) if characters else source.split()
        ids = [source_vocabulary.get(w, 1) for w in tokens]
        if config["reverseSource"]:
            ids = ids[::-1]
        x = t["encoder.embedding.weight"][np.array(ids)][None]
        encoded, finals = run_layers(t, "encoder.rnn.", cell, layers, hidden, x)
        states, token, score, out = finals, 2, 0.0, []  # 2 = <sos>
        for _ in range(training["maxTargetLength"] + 1):
            y = t["decoder.embedding.weight"][[token]][None]  # (1, 1, D)
            if config["peeky"]:
                y = np.concatenate([y, finals[-1][0][:, None]], axis=2)
            top, states = run_layers(t, "decoder.rnn.", cell, layers, hidden, y, initial=states)
            h = top[0, 0]
            if config["attention"] != "none":
                keys = encoded[0] @ t["attention.weight"].T if config["attention"] == "general" else encoded[0]
                scores = keys @ h
                a = np.exp(scores - scores.max())
                a /= a.sum()
                context = a @ encoded[0]
                h = np.tanh(t["attention.combine.weight"] @ np.concatenate([context, h]) + t["attention.combine.bias"])
            logits = t["output.weight"] @ h + t["output.bias"]
            log_p = logits - logits.max() - np.log(np.exp(logits - logits.max()).sum())
            token = int(np.argmax(log_p))
            score += log_p[token]
            if token == 3 or len(out) == training["maxTargetLength"]:  # 3 = <eos>
                break
            out.append(target_tokens[token])
        outputs.append(("" if characters else " ").join(out) + f"\t{score:.6f}")
    result = subprocess.run(
        [args.rnnlm, "translate", args.checkpoint, "--scores"], input="\n".join(sources) + "\n", capture_output=True,
        text=True, check=True)
    theirs = result.stdout.splitlines()
    same_text = sum(a.split("\t")[0] == b.split("\t")[0] for a, b in zip(outputs, theirs))
    worst = max(abs(float(a.split("\t")[1]) - float(b.split("\t")[1])) for a, b in zip(outputs, theirs))
    print(f"seq2seq: {config['layers']} x {hidden} {cell}, attention {config['attention']}, {len(sources)} sources")
    print(f"same output for {same_text} of {len(sources)}; largest log-probability difference {worst:.2e}")
    return worst if same_text == len(sources) and len(theirs) == len(sources) else float("inf")


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("checkpoint")
    parser.add_argument("text")
    parser.add_argument("--tolerance", type=float, default=1e-4)
    parser.add_argument("--rnnlm", default=".build/debug/rnnlm", help="the rnnlm executable (classifiers, seq2seq)")
    parser.add_argument("--limit", type=int, default=200, help="texts or sources checked (classifiers, seq2seq)")
    args = parser.parse_args()

    tensors, meta = read_safetensors(args.checkpoint)
    kind = meta.get("format")
    if kind in ("rnnlm-classifier", "rnnlm-seq2seq"):
        worst = (check_classifier if kind == "rnnlm-classifier" else check_seq2seq)(args, tensors, meta)
        if not worst <= args.tolerance:
            print(f"MISMATCH: difference exceeds {args.tolerance}", file=sys.stderr)
            sys.exit(1)
        print("match")
        return
    if kind != "rnnlm-checkpoint":
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
