#!/usr/bin/env python3
"""Perplexity of a text under an ARPA file, computed by KenLM's Python module (`pip install
kenlm`), to compare with `rnnlm ngram evaluate` on the same file. Optional: CI does not need it.

The text is read as the toolkit reads it: one stream of words, "<eos>" after every line,
contexts running across line ends (KenLM is asked for no <s> and no </s>), and every token after
the first is predicted.

Usage: compare_kenlm.py MODEL.arpa TEXT
"""
import sys
import time

import kenlm


def main():
    if len(sys.argv) != 3:
        sys.exit(__doc__)
    arpa, text = sys.argv[1], sys.argv[2]
    start = time.time()
    model = kenlm.Model(arpa)
    loaded = time.time() - start
    words = []
    with open(text, encoding="utf-8") as f:
        for line in f:
            words += line.split() + ["<eos>"]
    scores = [s for s, _, _ in model.full_scores(" ".join(words), bos=False, eos=False)]
    if len(scores) != len(words):
        sys.exit(f"KenLM scored {len(scores)} tokens of {len(words)}")
    log10 = scores[1:]
    print(f"kenlm: {arpa} loaded in {loaded:.1f} s; {len(log10)} tokens predicted; "
          f"perplexity {10 ** (-sum(log10) / len(log10)):.4f}")


if __name__ == "__main__":
    main()
