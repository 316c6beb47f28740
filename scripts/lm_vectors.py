#!/usr/bin/env python3
"""Writes the word vectors of several toolkit language models (their embedding rows, matched by
spelling), combined, in the word2vec text format that `train-classifier --embeddings` reads. One
model's vectors, exactly, are `rnnlm vectors LM --output OUT.vec`.

  scripts/lm_vectors.py OUT.vec FORWARD.safetensors BACKWARD.safetensors --combine mean

With several models, only the words all of them know are written, each with the mean of its rows
(--combine mean, the models must have the same width) or its rows side by side (--combine concat).
"""
import argparse
import json
import os
import sys

import numpy as np

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from check_checkpoint import read_safetensors  # noqa: E402


def main():
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("output")
    p.add_argument("models", nargs="+")
    p.add_argument("--combine", choices=["mean", "concat"], default="mean")
    args = p.parse_args()
    if len(args.models) < 2:
        sys.exit("Error: one model's vectors are `rnnlm vectors LM --output OUT.vec` (exact); this script combines two or more")
    models = []
    for path in args.models:
        try:
            tensors, meta = read_safetensors(path)
        except (OSError, ValueError, KeyError) as e:
            sys.exit(f"Error: {path} cannot be read as a safetensors checkpoint ({e})")
        if meta.get("format") != "rnnlm-checkpoint" or "encoder.weight" not in tensors:
            sys.exit(f"Error: {path} is not a language-model checkpoint of this toolkit")
        vocabulary = json.loads(meta["vocabulary"])
        models.append(({w: i for i, w in enumerate(vocabulary)}, vocabulary, tensors["encoder.weight"]))
    widths = {m[2].shape[1] for m in models}
    if args.combine == "mean" and len(widths) > 1:
        sys.exit(f"Error: --combine mean needs models of one width; these have {sorted(widths)}")
    words = [w for w in models[0][1] if all(w in m[0] for m in models[1:])]
    with open(args.output, "w") as f:
        rows = [[m[2][m[0][w]] for m in models] for w in words]
        vectors = [np.mean(r, axis=0) if args.combine == "mean" else np.concatenate(r) for r in rows]
        f.write(f"{len(words)} {len(vectors[0])}\n")
        for w, v in zip(words, vectors):
            f.write(w + " " + " ".join(f"{x:.6g}" for x in v) + "\n")
    print(f"wrote {args.output}: {len(words)} words, {len(vectors[0])} numbers each")


if __name__ == "__main__":
    main()
