#!/usr/bin/env python3
"""Runs throughput-bench and the PyTorch version of the same model back to back, alternating,
and prints the medians and their ratios.

Each round runs `throughput-bench --preset P --cell C` (release build) and then
`pytorch_rnnlm.py` with the same preset, cell and thread count; the table gives the median over
the rounds of each one's training and evaluation tokens/s, the toolkit's ratio to sgemm (as
throughput-bench measured it in the same run), and toolkit / PyTorch.

With --openblas both (the default) every round runs the toolkit twice: once with OpenBLAS
choosing its own kernels (OPENBLAS_CORETYPE and OPENBLAS_L2_SIZE removed from the environment)
and once held to its Haswell (AVX2) kernels (OPENBLAS_CORETYPE=Haswell OPENBLAS_L2_SIZE=512).

--vocab V runs both on a Zipf corpus of V words written by `rnnlm make-data zipf` (once, into
--corpora, default /tmp/rnnlm-zipf); --adaptive c1,c2,... gives both the adaptive softmax
(cutoffs at or above V are dropped), --tied true|false overrides the preset's tying (the
adaptive softmax needs false on PyTorch's side, so --adaptive sets it for both).

--eval-pass adds whole evaluation passes over the validation text on both sides (the toolkit's
evaluation computes the first layer's input projection once per distinct word of a pass, so a
pass shows what a handful of steps cannot); --eval-batch-size N sets their streams.

--classifier DIR times the text classifier instead (`throughput-bench classifier --data DIR`
against `pytorch_classifier.py --data DIR`, train-classifier's default shape unless --emsize,
--nhid, --batch-size say otherwise): training and prediction texts/s.

Usage: side_by_side.py [--preset small] [--cell lstm] [--rounds 3] [--threads 2]
                       [--openblas both|own|haswell] [--bench .build/release/throughput-bench]
                       [--vocab V] [--adaptive 2000,10000,50000] [--tied false]
                       [--eval-pass] [--eval-batch-size 10]
       side_by_side.py --classifier ../shared/corpora/sst2 [--emsize 64] [--nhid 64] [--batch-size 32]
Needs `pip install torch`; not part of CI.
"""
import argparse
import os
import re
import statistics
import subprocess
import sys

HERE = os.path.dirname(os.path.abspath(__file__))


def run(command, env):
    result = subprocess.run(command, capture_output=True, text=True, env=env)
    if result.returncode != 0:
        sys.exit(f"{' '.join(command)} failed:\n{result.stdout}\n{result.stderr}")
    return result.stdout


def figures(output, unit="tokens"):
    """tokens/s (texts/s) of training and evaluation (prediction), and ratios to sgemm when printed."""
    out = {}
    for kind, name in (("training", "training"), ("evaluation", "evaluation" if unit == "tokens" else "prediction")):
        m = re.search(rf"^{name}(?: \(N=\d+\))?\s*:\s*(\d+) {unit}/s(?:.*\| ([\d.]+) of (?:large-shape )?sgemm)?", output, re.M)
        if not m:
            sys.exit(f"no {kind} line in:\n{output}")
        out[kind] = float(m.group(1))
        if m.group(2):
            out[kind + " ratio"] = float(m.group(2))
    m = re.search(r"^evaluation pass\s*:\s*(\d+) tokens/s", output, re.M)
    if m:
        out["pass"] = float(m.group(1))
    core = re.search(r"OpenBLAS core (\S+)", output)
    out["core"] = core.group(1) if core else "?"
    return out


def main():
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--preset", default="small")
    parser.add_argument("--cell", default="lstm")
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--openblas", default="both", choices=["both", "own", "haswell"])
    parser.add_argument("--bench", default=os.path.join(HERE, "../../.build/release/throughput-bench"))
    parser.add_argument("--steps", type=int)
    parser.add_argument("--repeats", type=int)
    parser.add_argument("--warmup", type=int, default=3)
    parser.add_argument("--vocab", type=int)
    parser.add_argument("--adaptive")
    parser.add_argument("--tied", choices=["true", "false"])
    parser.add_argument("--corpora", default="/tmp/rnnlm-zipf")
    parser.add_argument("--rnnlm", default=os.path.join(HERE, "../../.build/release/rnnlm"))
    parser.add_argument("--eval-pass", action="store_true")
    parser.add_argument("--eval-batch-size", type=int)
    parser.add_argument("--classifier", metavar="DIR")
    parser.add_argument("--emsize", type=int, default=64)
    parser.add_argument("--nhid", type=int, default=64)
    parser.add_argument("--batch-size", type=int, default=32)
    args = parser.parse_args()
    if args.classifier:
        return classifier(args)
    steps = args.steps or (20 if args.preset == "small" else 5)
    repeats = args.repeats or (5 if args.preset == "small" else 3)
    common = ["--preset", args.preset, "--cell", args.cell, "--threads", str(args.threads),
              "--steps", str(steps), "--repeats", str(repeats), "--warmup", str(args.warmup)]
    toolkit_only, torch_only = [], []
    if args.vocab:
        data = os.path.join(args.corpora, f"zipf-{args.vocab}")
        if not os.path.exists(os.path.join(data, "test.txt")):
            run([args.rnnlm, "make-data", "zipf", "--vocab", str(args.vocab), "--output", data], dict(os.environ))
        common += ["--data", data]
    if args.eval_pass:
        common += ["--eval-pass"]
    if args.eval_batch_size:
        common += ["--eval-batch-size", str(args.eval_batch_size)]
    tied = "false" if args.adaptive else args.tied
    if tied:
        common += ["--tied", tied]
    if args.adaptive:
        limit = args.vocab or 10000
        cutoffs = ",".join(c for c in args.adaptive.split(",") if int(c) < limit)
        toolkit_only += ["--adaptive-softmax", cutoffs]
        torch_only += ["--adaptive", cutoffs]
    settings, med = alternate(args, [args.bench] + common + toolkit_only,
                              [sys.executable, os.path.join(HERE, "pytorch_rnnlm.py")] + common + torch_only)

    torch_train, torch_eval = med("pytorch", "training"), med("pytorch", "evaluation")
    shape = f", V {args.vocab} (Zipf)" if args.vocab else ""
    shape += f", adaptive softmax {args.adaptive}" if args.adaptive else ""
    shape += f", tied {tied}" if tied else ""
    print(f"\n{args.preset} {args.cell}{shape}, {args.threads} threads, medians of {args.rounds} rounds "
          f"(each of {repeats} repeats of {steps} steps)")
    print("| | OpenBLAS kernels | training tokens/s | of sgemm | vs PyTorch | evaluation tokens/s | of sgemm | vs PyTorch |")
    print("|---|---|---|---|---|---|---|---|")
    for name, _ in settings:
        t, e = med(name, "training"), med(name, "evaluation")
        print(f"| toolkit | {name} ({med(name, 'core')}) | {t:,.0f} | {med(name, 'training ratio'):.2f} | "
              f"{t / torch_train:.2f}× | {e:,.0f} | {med(name, 'evaluation ratio'):.2f} | {e / torch_eval:.2f}× |")
    print(f"| PyTorch | MKL | {torch_train:,.0f} | | | {torch_eval:,.0f} | | |")
    if args.eval_pass:
        torch_pass = med("pytorch", "pass")
        print("\nwhole evaluation passes over the validation text")
        print("| | OpenBLAS kernels | evaluation pass tokens/s | vs PyTorch |")
        print("|---|---|---|---|")
        for name, _ in settings:
            print(f"| toolkit | {name} ({med(name, 'core')}) | {med(name, 'pass'):,.0f} | "
                  f"{med(name, 'pass') / torch_pass:.2f}× |")
        print(f"| PyTorch | MKL | {torch_pass:,.0f} | |")


def alternate(args, toolkit, torch_command, unit="tokens"):
    """Runs the toolkit in each OpenBLAS setting, then PyTorch, --rounds times; returns the
    settings and med(name, key): the median of a figure over the rounds (name "pytorch" for
    PyTorch's; key "core" gives the OpenBLAS core the toolkit reported)."""
    own, settings = environments(args.openblas)
    results = {name: [] for name, _ in settings}
    results["pytorch"] = []
    for r in range(args.rounds):
        for name, env in settings:
            results[name].append(figures(run(toolkit, env), unit))
        results["pytorch"].append(figures(run(torch_command, own), unit))
        print(f"round {r + 1}: " + "; ".join(
            f"{k} {v[-1]['training']:.0f}/{v[-1]['evaluation']:.0f}"
            + (f"/{v[-1]['pass']:.0f}" if "pass" in v[-1] else "") for k, v in results.items()), flush=True)

    def med(name, key):
        if key == "core":
            return results[name][0]["core"]
        values = [x[key] for x in results[name] if key in x]
        return statistics.median(values) if values else float("nan")

    return settings, med


def environments(choice):
    own = {k: v for k, v in os.environ.items() if k not in ("OPENBLAS_CORETYPE", "OPENBLAS_L2_SIZE")}
    haswell = dict(own, OPENBLAS_CORETYPE="Haswell", OPENBLAS_L2_SIZE="512")
    return own, {"own": [("own choice", own)], "haswell": [("Haswell", haswell)],
                 "both": [("own choice", own), ("Haswell", haswell)]}[choice]


def classifier(args):
    """The text classifier side by side: training and prediction texts/s."""
    steps, repeats = args.steps or 100, args.repeats or 5
    common = ["--data", args.classifier, "--cell", args.cell, "--emsize", str(args.emsize), "--nhid", str(args.nhid),
              "--batch-size", str(args.batch_size), "--threads", str(args.threads), "--steps", str(steps),
              "--repeats", str(repeats), "--warmup", str(args.warmup)]
    settings, med = alternate(args, [args.bench, "classifier"] + common,
                              [sys.executable, os.path.join(HERE, "pytorch_classifier.py")] + common, "texts")

    torch_train, torch_predict = med("pytorch", "training"), med("pytorch", "evaluation")
    print(f"\nclassifier 1 × {args.nhid} {args.cell}, D {args.emsize}, N {args.batch_size}, texts of "
          f"{args.classifier}, {args.threads} threads, medians of {args.rounds} rounds "
          f"(each of {repeats} repeats of {steps} steps)")
    print("| | OpenBLAS kernels | training texts/s | of sgemm | vs PyTorch | prediction texts/s | vs PyTorch |")
    print("|---|---|---|---|---|---|---|")
    for name, _ in settings:
        t, e = med(name, "training"), med(name, "evaluation")
        print(f"| toolkit | {name} ({med(name, 'core')}) | {t:,.0f} | {med(name, 'training ratio'):.2f} | "
              f"{t / torch_train:.2f}× | {e:,.0f} | {e / torch_predict:.2f}× |")
    print(f"| PyTorch | MKL | {torch_train:,.0f} | | | {torch_predict:,.0f} | |")


if __name__ == "__main__":
    main()
