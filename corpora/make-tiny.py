#!/usr/bin/env python3
"""Writes corpora/tiny/: a small corpus this project makes itself, in the plain layout
(train.txt, valid.txt, test.txt) that `train-ptb --data corpora/tiny` reads, so that the
command line runs end to end in seconds.

The grammar: "<subject> <its verb> [the] <adjective?> <object>", with fixed choices, so the
text is learnable and its entropy is far below ln V. Deterministic: same files every run.
"""
import os
import random

SUBJECTS = ["cats", "dogs", "birds", "fish", "kids", "farmers"]
VERBS = ["chase", "guard", "watch", "avoid", "paint", "build"]
ADJECTIVES = ["", "red ", "old ", "small "]
OBJECTS = ["mice", "houses", "trees", "boats", "fences", "kites"]


def sentences(count, seed):
    rng = random.Random(seed)
    for _ in range(count):
        s = rng.randrange(len(SUBJECTS))
        yield f"{SUBJECTS[s]} {VERBS[s]} the {rng.choice(ADJECTIVES)}{rng.choice(OBJECTS)}"


def main():
    out = os.path.join(os.path.dirname(os.path.abspath(__file__)), "tiny")
    os.makedirs(out, exist_ok=True)
    for name, count, seed in [("train", 2000, 1), ("valid", 200, 2), ("test", 200, 3)]:
        with open(os.path.join(out, f"{name}.txt"), "w") as f:
            for line in sentences(count, seed):
                f.write(f" {line} \n")


if __name__ == "__main__":
    main()
