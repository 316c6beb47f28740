#!/usr/bin/env python3
"""Loads a toolkit language model's adaptive softmax (an untied checkpoint's `decoder.*` tensors)
into PyTorch's nn.AdaptiveLogSoftmaxWithLoss with load_state_dict(strict=True) and compares its
log-probabilities with scripts/check_checkpoint.py's NumPy formula (the one CI checks against the
toolkit's loss) on random inputs, including each cluster's first and last word.

Usage: load_adaptive_in_pytorch.py CHECKPOINT
Needs `pip install torch`; not part of CI. Exit status 0 when they agree within 1e-9.
"""
import json
import os
import sys

import numpy as np
import torch
import torch.nn as nn

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "../../scripts"))
import check_checkpoint  # noqa: E402

tensors, meta = check_checkpoint.read_safetensors(sys.argv[1])
config = json.loads(meta["config"])
if not config.get("adaptiveCutoffs") or config["tied"]:
    sys.exit("needs an untied checkpoint with the adaptive softmax (PyTorch's module cannot share the embedding)")
h, v, cutoffs = config["hiddenSize"], config["vocabularySize"], config["adaptiveCutoffs"]
module = nn.AdaptiveLogSoftmaxWithLoss(h, v, cutoffs, div_value=config.get("adaptiveDivision", 4.0), head_bias=True)
module = module.double()
state = {name[len("decoder."):]: torch.from_numpy(np.array(a)) for name, a in tensors.items() if name.startswith("decoder.")}
print(module.load_state_dict(state, strict=True))
bounds = [0] + cutoffs + [v]
words = sorted({w for b in range(len(bounds) - 1) for w in (bounds[b], bounds[b + 1] - 1)})
x = np.random.default_rng(1).normal(size=(1, len(words), h))
ours = check_checkpoint.adaptive_log_probabilities(tensors, config, x, np.array([words]))[0]
theirs = module.log_prob(torch.from_numpy(x[0]))[np.arange(len(words)), words].detach().numpy()
difference = float(np.abs(ours - theirs).max())
print(f"{len(words)} words, largest difference {difference:.3g}")
sys.exit(0 if difference < 1e-9 else 1)
