#!/usr/bin/env python3
"""Feeds damaged copies of a checkpoint to the built `rnnlm info` and `rnnlm evaluate`.

Each case is a copy of CHECKPOINT with one kind of damage, drawn from --seed: bit flips
anywhere or in the header, truncation, appended bytes, a wrong header length, or an edit of the
JSON header (a tensor's offsets shifted or moved onto another tensor's bytes, its shape or dtype
changed, a tensor removed or added, extreme values in the config, training options or
vocabulary, garbled metadata). Every run must end within --timeout seconds either with status 0,
on a file that this script's own reading of the format finds sound, or with status 1 or 64 and
exactly one line on standard error, starting with "Error:". Anything else is counted as a crash
(a signal or another status), a hang (timed out), an unclean error (other output) or an
unsound acceptance, and makes the exit status 1.

Usage: fuzz_checkpoints.py CHECKPOINT TEXT --rnnlm PATH [--cases 300] [--seed 1] [--timeout 10]
"""
import argparse
import json
import os
import random
import struct
import subprocess
import sys
import tempfile


def split(data):
    (n,) = struct.unpack("<Q", data[:8])
    return n, json.loads(data[8 : 8 + n]), data[8 + n :]


def join(header, body):
    text = json.dumps(header, sort_keys=True).encode()
    text += b" " * ((-8 - len(text)) % 8)
    return struct.pack("<Q", len(text)) + text + body


def damage(data, rng):
    """A damaged copy of data and the kind of damage."""
    out = bytearray(data)
    n, header, body = split(data)
    kind = rng.randrange(5)
    if kind == 0:
        for _ in range(rng.randint(1, 4)):
            out[rng.randrange(len(out))] ^= 1 << rng.randrange(8)
        return "bit flips anywhere", bytes(out)
    if kind == 1:
        for _ in range(rng.randint(1, 3)):
            out[8 + rng.randrange(n)] ^= 1 << rng.randrange(8)
        return "bit flips in the header", bytes(out)
    if kind == 2:
        if rng.random() < 0.5:
            return "truncated", bytes(out[: rng.randrange(len(out))])
        return "bytes appended", bytes(out) + os.urandom(rng.randint(1, 16))
    if kind == 3:
        length = rng.choice([0, 1, n - 8, n + 8, 2**32 - 1, 2**63 - 1])
        return f"header length {length}", struct.pack("<Q", length) + bytes(out[8:])
    names = sorted(k for k in header if k != "__metadata__")
    name = rng.choice(names)
    entry = header[name]
    meta = header["__metadata__"]
    extremes = [0, -1, 1, 3, 10**9, 2**63 - 1, "x", None, 1.5]
    edit = rng.randrange(9)
    if edit == 0:
        shift = 4 * rng.randint(1, 4) * rng.choice([1, -1])
        entry["data_offsets"] = [o + shift for o in entry["data_offsets"]]
        what = f"{name} offsets shifted by {shift}"
    elif edit == 1:
        begin = header[rng.choice(names)]["data_offsets"][0]
        size = entry["data_offsets"][1] - entry["data_offsets"][0]
        entry["data_offsets"] = [begin, begin + size]
        what = f"{name} moved onto another tensor's bytes"
    elif edit == 2:
        shape = list(entry["shape"])
        choice = rng.randrange(3)
        if choice == 0 and shape:
            shape[rng.randrange(len(shape))] += rng.choice([1, -1])
        elif choice == 1:
            shape.reverse()
        else:
            shape.append(1)
        entry["shape"] = shape
        what = f"{name} shape changed"
    elif edit == 3:
        entry["dtype"] = rng.choice(["F16", "I32", "F64", "", 7])
        what = f"{name} dtype changed"
    elif edit == 4:
        if rng.random() < 0.5:
            del header[name]
            what = f"{name} removed"
        else:
            header["extra.weight"] = {"dtype": "F32", "shape": [0], "data_offsets": [0, 0]}
            what = "an empty tensor added"
    elif edit == 5:
        config = json.loads(meta["config"])
        field = rng.choice(["vocabularySize", "embeddingSize", "hiddenSize", "layers", "cell", "tied", "dropout"])
        if field == "cell":
            config[field] = rng.choice(["lstm", "gru", "rnn", "xyz"])
        elif field == "tied":
            config[field] = rng.random() < 0.5
        else:
            config[field] = rng.choice(extremes)
        meta["config"] = json.dumps(config)
        what = f"config {field} = {config[field]}"
    elif edit == 6:
        training = json.loads(meta["training"])
        field = rng.choice(sorted(training))
        training[field] = rng.choice(extremes)
        meta["training"] = json.dumps(training)
        what = f"training {field} = {training[field]}"
    elif edit == 7:
        words = json.loads(meta["vocabulary"])
        choice = rng.randrange(3)
        if choice == 0:
            words.pop()
        elif choice == 1:
            words[1] = words[0]
        else:
            words.append("zebra")
        meta["vocabulary"] = json.dumps(words)
        what = "vocabulary edited"
    else:
        field = rng.choice(["state", "format", "version", "config"])
        meta[field] = rng.choice(["", "{", "[]", "2"])
        what = f"metadata {field} garbled"
    return what, join(header, body)


def format_problem(data):
    """This script's own reading of the format: what is wrong, or None for a sound file."""
    try:
        n, header, body = split(data)
        meta = header["__metadata__"]
        config = json.loads(meta["config"])
        training = json.loads(meta["training"])
        words = json.loads(meta["vocabulary"])
        v, d, h, layers = (config[k] for k in ("vocabularySize", "embeddingSize", "hiddenSize", "layers"))
        tied, batch = config["tied"], training["batchSize"]
    except Exception as e:  # any unreadable part
        return f"header unreadable ({e.__class__.__name__})"
    if not all(type(x) is int for x in (v, d, h, layers, batch)) or type(tied) is not bool:
        return "sizes are not integers"
    if v < 2 or d < 1 or h < 1 or not 1 <= layers < 100 or v * d > len(data):
        return "sizes"
    if len(words) != v or len(set(words)) != v:
        return "vocabulary"
    gates = {"lstm": 4, "gru": 3, "rnn": 1}.get(config.get("cell", "lstm"))
    if gates is None:
        return "cell"
    expected = {"encoder.weight": [v, d], "decoder.bias": [v]}
    if not tied:
        expected["decoder.weight"] = [v, h]
    for l in range(layers):
        expected[f"rnn.weight_ih_l{l}"] = [gates * h, d if l == 0 else h]
        expected[f"rnn.weight_hh_l{l}"] = [gates * h, h]
        expected[f"rnn.bias_ih_l{l}"] = [gates * h]
        expected[f"rnn.bias_hh_l{l}"] = [gates * h]
    cell = config.get("cell", "lstm")
    states = ["h", "c"] if cell == "lstm" else ["h"]
    # The optimizer's moments, each of the parameter count (one bias per layer unless GRU).
    parameters = v * d + v + (0 if tied else v * h)
    for l in range(layers):
        parameters += gates * h * ((d if l == 0 else h) + h + (2 if cell == "gru" else 1))
    moments = {"sgd": [], "adam": ["m", "v"], "rmsprop": ["v"]}.get(training.get("optimizer", "sgd"))
    if moments is None:
        return "optimizer"
    for m in moments:
        expected[f"optimizer.{m}"] = [parameters]
    try:
        if isinstance(json.loads(meta["state"]).get("averagedSteps"), int):
            expected["asgd.average"] = [parameters]
    except Exception:
        return "state unreadable"
    for l in range(layers):
        for s in states:
            expected[f"state.{s}_l{l}"] = [batch, h]
    ranges = []
    for name, e in header.items():
        if name == "__metadata__":
            continue
        if not isinstance(e, dict) or e.get("dtype") != "F32" or name not in expected:
            return f"{name}: not an expected float32 tensor"
        if e.get("shape") != expected[name]:
            return f"{name}: shape {e.get('shape')}"
        begin, end = e["data_offsets"]
        size = 4
        for x in e["shape"]:
            size *= x
        if end - begin != size:
            return f"{name}: size"
        ranges.append((begin, end))
    for name in expected:
        if name not in header and not name.startswith(("rnn.bias_hh", "state.", "optimizer.", "asgd.")):
            return f"{name} missing"
    position = 0
    for begin, end in sorted(ranges):
        if begin != position:
            return "ranges do not tile"
        position = end
    return None if position == len(body) else "data size"


def main():
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("checkpoint")
    parser.add_argument("text")
    parser.add_argument("--rnnlm", required=True)
    parser.add_argument("--cases", type=int, default=300)
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument("--timeout", type=float, default=10)
    args = parser.parse_args()
    with open(args.checkpoint, "rb") as f:
        original = f.read()
    if format_problem(original):
        sys.exit(f"{args.checkpoint}: the undamaged file fails this script's check: {format_problem(original)}")
    rng = random.Random(args.seed)
    counts = {"runs": 0, "clean errors": 0, "accepted and sound": 0, "accepted but unsound": 0,
              "unclean errors": 0, "crashes": 0, "hangs": 0}
    failures = []
    with tempfile.TemporaryDirectory() as work:
        for i in range(args.cases):
            what, data = damage(original, rng)
            path = os.path.join(work, f"case-{i}.safetensors")
            with open(path, "wb") as f:
                f.write(data)
            for command in (["info", path], ["evaluate", path, args.text]):
                counts["runs"] += 1
                try:
                    r = subprocess.run([args.rnnlm] + command, capture_output=True, text=True, timeout=args.timeout)
                except subprocess.TimeoutExpired:
                    counts["hangs"] += 1
                    failures.append(f"case {i} ({what}), {command[0]}: no answer after {args.timeout} s")
                    continue
                lines = r.stderr.strip().splitlines()
                if r.returncode == 0:
                    problem = format_problem(data)
                    if problem:
                        counts["accepted but unsound"] += 1
                        failures.append(f"case {i} ({what}), {command[0]}: accepted, but {problem}")
                    else:
                        counts["accepted and sound"] += 1
                elif r.returncode in (1, 64) and len(lines) == 1 and lines[0].startswith("Error: "):
                    counts["clean errors"] += 1
                elif r.returncode < 0 or r.returncode not in (1, 64):
                    counts["crashes"] += 1
                    failures.append(f"case {i} ({what}), {command[0]}: status {r.returncode}: {r.stderr[-300:]}")
                else:
                    counts["unclean errors"] += 1
                    failures.append(f"case {i} ({what}), {command[0]}: {len(lines)} lines: {r.stderr[:300]}")
    print(f"fuzz: {args.cases} damaged checkpoints, " + ", ".join(f"{v} {k}" for k, v in counts.items()))
    for line in failures[:20]:
        print("  " + line)
    sys.exit(1 if failures else 0)


if __name__ == "__main__":
    main()
