#!/usr/bin/env python3
"""Compares two checkpoints tensor by tensor: the same names and shapes, and values within a
tolerance (relative to each tensor's largest magnitude). A data-parallel run and a run of one
process over the same global batch must agree this way; their sums are taken in another order,
so bit equality is not expected.

    scripts/compare_checkpoints.py A.safetensors B.safetensors [--tolerance 1e-3] [--state-fields NAME ...]

--state-fields NAME ... also requires these fields of the two run states to be equal (the
epochs, the position in the data, the generator: where the run stands).
"""
import argparse
import json
import sys

import numpy as np

from check_checkpoint import read_safetensors


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("a")
    parser.add_argument("b")
    parser.add_argument("--tolerance", type=float, default=1e-3)
    parser.add_argument("--state-fields", nargs="*", default=[],
                        help="fields of the metadata's run state that must be equal")
    args = parser.parse_args()
    ta, ma = read_safetensors(args.a)
    tb, mb = read_safetensors(args.b)
    if sorted(ta) != sorted(tb):
        sys.exit(f"FAILED: the tensors differ: {sorted(set(ta) ^ set(tb))}")
    worst = (0.0, "")
    for name in sorted(ta):
        a, b = ta[name], tb[name]
        if a.shape != b.shape:
            sys.exit(f"FAILED: {name} has shape {a.shape} and {b.shape}")
        scale = max(float(np.max(np.abs(a))) if a.size else 0.0, 1e-6)
        difference = float(np.max(np.abs(a.astype(np.float64) - b))) / scale if a.size else 0.0
        worst = max(worst, (difference, name))
    sa, sb = json.loads(ma.get("state", "{}")), json.loads(mb.get("state", "{}"))
    for field in args.state_fields:
        if sa.get(field) != sb.get(field):
            sys.exit(f"FAILED: the run state's {field} differs: {sa.get(field)} and {sb.get(field)}")
    print(f"{len(ta)} tensors; largest difference {worst[0]:.2e} of the tensor's largest value ({worst[1]})")
    if worst[0] > args.tolerance:
        sys.exit(f"FAILED: {worst[1]} differs by {worst[0]:.2e} (tolerance {args.tolerance:g})")


if __name__ == "__main__":
    main()
