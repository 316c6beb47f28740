#!/usr/bin/env python3
"""Runs the SST-2 experiments with train-classifier and appends one row per finished run to
Benchmarks/results/sst2.csv; a row already there (same experiment, config, seed) is not run again,
so an interrupted session continues where it stopped.

  scripts/sst2_table.py run --experiment table [--seeds 1,2,3] [--threads 1]
  scripts/sst2_table.py run --experiment labels --lm runs/sst2-lm/best.safetensors
  scripts/sst2_table.py run --experiment vectors --lm runs/sst2-lm-256/best.safetensors --seeds 1,2,3,4,5,6
  scripts/sst2_table.py run --experiment tuned --lm runs/sst2-lm-256/best.safetensors \
      --whole-lm runs/sst2-lm-256-mx/best.safetensors --seeds 1,2,3,4,5,6
  scripts/sst2_table.py run --experiment ensemble --seeds 1,2,3,4,5,6
  scripts/sst2_table.py run --experiment ensemble --seeds 1,2,3 --recreate   # checkpoints again, rows kept
  scripts/sst2_table.py ensemble --configs gru,2-lstm --seeds 1,2,3,4,5,6   # their mean probabilities
  scripts/sst2_table.py summary            # markdown tables: mean ± sample sd over seeds
  scripts/sst2_table.py plot             # docs/sst2-label-efficiency.svg (the vectors experiment)

Experiments (flags beside --data ../shared/corpora/sst2 --save runs/sst2/...):
  tune    settings of the LSTM compared on validation accuracy (seed 1)
  table   each encoder with the settings chosen on validation, tested once per seed
  init    the LSTM started from a language model (--lm) against from scratch, all texts
  labels  500, 2,000 and all training texts, from scratch against --lm initialised
  vectors 500, 2,000 and all training texts, from scratch against the word vectors of --lm alone
          (--init-layers 0), read by the LSTM (last state) and by the bag of words, 256 wide
  ensemble the table's GRU and 2 × LSTM once per seed, kept for `rnnlm accuracy` to average
          (the ensemble command)
  pooling the GRU and LSTM, one and two directions, with max pooling (the table's settings)
  tuned   2,000 texts, a grid of learning rates and dropouts for each of four starts: from scratch
          (1 x 128 and 1 x 256), the word vectors of --lm, the whole encoder of --whole-lm (1 x 256);
          each start's best cell on validation is its result

Every run picks its best epoch by validation loss (the toolkit's early stopping), or by validation
accuracy where its flags say --monitor accuracy (init, labels, vectors, tuned), and reports the test
accuracy of that epoch's parameters only. Needs a release build (swift build -c release).
"""
import argparse
import csv
import datetime
import os
import re
import statistics
import subprocess
import sys
import time

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
CSV = os.path.join(ROOT, "Benchmarks", "results", "sst2.csv")
FIELDS = [
    "date", "experiment", "config", "flags", "seed", "train_texts", "best_valid_accuracy", "test_accuracy",
    "test_loss", "best_epoch", "epochs_run", "wall_s", "texts_per_s", "threads", "openblas_core",
]

# The settings every encoder of the table shares, chosen on validation accuracy by the tune
# experiment (seed 1): every training word rather than the 10,000 most frequent, and Adam at
# 0.002 (best validation accuracy, 83.83%, against 82.68% at 0.001).
COMMON = "--num-words 20000 --lr 0.002"

EXPERIMENTS = {
    "tune": [
        ("LSTM default", ""),
        ("LSTM all words", "--num-words 20000"),
        ("LSTM 128, dropout 0.5", "--num-words 20000 --emsize 128 --nhid 128 --dropout 0.5"),
        ("LSTM lr 0.002", "--num-words 20000 --lr 0.002"),
    ],
    "table": [
        ("bag of words", f"{COMMON} --bag-of-words"),
        ("LSTM", f"{COMMON} --cell lstm"),
        ("GRU", f"{COMMON} --cell gru"),
        ("RNN", f"{COMMON} --cell rnn"),
        ("bidirectional LSTM", f"{COMMON} --cell lstm --bidirectional"),
        ("2 × LSTM", f"{COMMON} --cell lstm --nlayers 2"),
        ("LSTM, mean pooling", f"{COMMON} --cell lstm --pooling mean"),
    ],
    "ensemble": [("GRU", f"{COMMON} --cell gru"), ("2 × LSTM", f"{COMMON} --cell lstm --nlayers 2")],
    "pooling": [
        ("GRU, max pooling", f"{COMMON} --cell gru --pooling max"),
        ("bidirectional GRU, max pooling", f"{COMMON} --cell gru --bidirectional --pooling max"),
        ("LSTM, max pooling", f"{COMMON} --cell lstm --pooling max"),
        ("bidirectional LSTM, max pooling", f"{COMMON} --cell lstm --bidirectional --pooling max"),
    ],
}


# Every experiment, in the order the summary prints them: those above, and the four whose
# configurations are built from a language model (lm_configs, vector_configs, tuned_configs).
EXPERIMENT_NAMES = ("tune", "table", "init", "labels", "vectors", "ensemble", "pooling", "tuned")

# The two readings of the vectors experiment, each with its from-scratch control of the same width:
# 256-wide word vectors (a 1 x 256 language model's) under dropout 0.5, chosen at 2,000 texts.
READINGS = [
    ("LSTM", "--emsize 256 --nhid 128 --dropout 0.5 --monitor accuracy --epochs 20"),
    ("bag of words", "--emsize 256 --dropout 0.5 --bag-of-words --monitor accuracy --epochs 20"),
]


def lm_configs(lm, sizes, shape, fine_tuning, prefix="", start="LM init"):
    """From scratch against language-model initialised (same shape), at each count of training texts;
    the names begin with `prefix`, the initialised ones' start is called `start`."""
    out = []
    for n in sizes:
        texts = "" if n is None else f" --train-texts {n}"
        label = "all" if n is None else str(n)
        out.append((f"{prefix}scratch, {label} texts", f"{COMMON} {shape}{texts}"))
        out.append((f"{prefix}{start}, {label} texts", f"{COMMON} {shape}{texts} --init-from {lm} {fine_tuning}"))
    return out


def vector_configs(lm, sizes):
    """From scratch against the language model's word vectors alone, per reading and count of texts."""
    return [c for reading, shape in READINGS
            for c in lm_configs(lm, sizes, shape, "--init-layers 0", prefix=f"{reading}, ", start="LM vectors")]


def tuned_configs(lm, whole_lm):
    """The tuned experiment's grid, as it grew (each step declared before its runs, in
    Benchmarks/results/sst2-tuned-gain-2026-12-07.log): lr 0.001-0.004 for scratch and the vectors,
    then 0.0005 for both, with scratch 256 and the whole encoder at 0.0005-0.002, then 0.004 for the
    whole encoder; dropout 0.3, 0.5 and 0.7 throughout."""
    base = "--num-words 20000 --emsize 256 --monitor accuracy --epochs 20 --train-texts 2000"
    starts = [
        ("scratch", "--nhid 128", ["0.0005", "0.001", "0.002", "0.004"]),
        ("scratch 256", "--nhid 256", ["0.0005", "0.001", "0.002"]),
        ("LM vectors", f"--nhid 128 --init-from {lm} --init-layers 0", ["0.0005", "0.001", "0.002", "0.004"]),
        ("LM whole encoder", f"--nhid 256 --init-from {whole_lm}", ["0.0005", "0.001", "0.002", "0.004"]),
    ]
    return [(f"{start}, lr {lr}, dropout {d}", f"{base} {flags} --lr {lr} --dropout {d}")
            for start, flags, rates in starts for lr in rates for d in ("0.3", "0.5", "0.7")]


def read_rows():
    if not os.path.exists(CSV):
        return []
    with open(CSV, newline="") as f:
        return list(csv.DictReader(f))


def append_row(row):
    new = not os.path.exists(CSV)
    with open(CSV, "a", newline="") as f:
        w = csv.DictWriter(f, fieldnames=FIELDS)
        if new:
            w.writeheader()
        w.writerow(row)


def run_one(experiment, name, flags, seed, args):
    slug = re.sub(r"[^a-z0-9]+", "-", name.lower()).strip("-")
    save = os.path.join(args.runs, f"{experiment}-{slug}-s{seed}")
    cmd = [os.path.join(args.bin, "train-classifier"), "--data", args.data, "--save", save, "--seed", str(seed),
           "--threads", str(args.threads), "--log-interval", "1000000"] + flags.split()
    if os.path.exists(os.path.join(save, "last.safetensors")):
        subprocess.run(["rm", "-rf", save], check=True)
    start = time.time()
    p = subprocess.run(cmd, capture_output=True, text=True)
    wall = time.time() - start
    log = p.stdout + p.stderr
    with open(save + ".log", "w") as f:
        f.write(" ".join(cmd) + "\n" + log)
    end = re.search(r"test loss ([0-9.]+) \| test accuracy ([0-9.]+) \(best epoch (\d+)\) \| (\d+) texts/s", log)
    if p.returncode != 0 or not end:
        sys.exit(f"Error: {name} seed {seed} failed (log {save}.log): {log.strip().splitlines()[-1:]}")
    best = int(end.group(3))
    valid = re.search(rf"end of epoch +{best} \|.*valid loss [0-9.]+ accuracy ([0-9.]+)", log)
    trained = re.search(r"texts: train (\d+)", log)
    return {
        "date": datetime.date.today().isoformat(), "experiment": experiment, "config": name, "flags": flags,
        "seed": seed, "train_texts": trained.group(1) if trained else "", "best_valid_accuracy": valid.group(1),
        "test_accuracy": end.group(2), "test_loss": end.group(1), "best_epoch": best,
        "epochs_run": len(re.findall(r"end of epoch", log)), "wall_s": f"{wall:.1f}", "texts_per_s": end.group(4),
        "threads": re.search(r"threads (\d+)", log).group(1),
        "openblas_core": re.search(r"OpenBLAS kernels (\w+)", log).group(1),
    }


def command_run(args):
    if args.experiment in ("init", "labels", "vectors", "tuned") and not args.lm:
        sys.exit(f"Error: --experiment {args.experiment} needs --lm CHECKPOINT")
    if args.experiment == "tuned":
        if not args.whole_lm:
            sys.exit("Error: --experiment tuned needs --whole-lm CHECKPOINT too")
        configs = tuned_configs(args.lm, args.whole_lm)
    elif args.experiment == "vectors":
        configs = vector_configs(args.lm, [500, 2000, None])
    elif args.experiment in ("init", "labels"):
        configs = lm_configs(args.lm, [None] if args.experiment == "init" else [500, 2000, None], args.shape,
                             args.fine_tuning)
    else:
        configs = EXPERIMENTS[args.experiment]
    seeds = [1] if args.experiment == "tune" else [int(s) for s in args.seeds.split(",")]
    if args.configs_with:
        configs = [c for c in configs if args.configs_with in c[0]]
    if args.starts != "both":
        configs = [c for c in configs if ("scratch" in c[0]) == (args.starts == "scratch")]
    done = {(r["experiment"], r["config"], r["seed"]): r for r in read_rows()}
    for name, flags in configs:
        for seed in seeds:
            old = done.get((args.experiment, name, str(seed)))
            if args.recreate:
                if not old:
                    continue
                row = run_one(args.experiment, name, flags, seed, args)
                same = all(str(row[k]) == old[k] for k in ("best_valid_accuracy", "test_accuracy", "best_epoch"))
                print(f"{name:28} seed {seed}: {'the same as' if same else 'DIFFERS from'} its row "
                      f"(valid {row['best_valid_accuracy']} / {old['best_valid_accuracy']}, test "
                      f"{row['test_accuracy']} / {old['test_accuracy']})", flush=True)
                continue
            if old:
                continue
            row = run_one(args.experiment, name, flags, seed, args)
            append_row(row)
            print(f"{name:28} seed {seed}: valid {row['best_valid_accuracy']} test {row['test_accuracy']} "
                  f"(epoch {row['best_epoch']} of {row['epochs_run']}, {row['wall_s']} s)", flush=True)


def groups(rows, experiment):
    out = {}
    for r in rows:
        if r["experiment"] == experiment:
            out.setdefault(r["config"], []).append(r)
    return out


def mean_sd(values):
    m = statistics.mean(values)
    return m, (statistics.stdev(values) if len(values) > 1 else 0.0)


def command_ensemble(args):
    """`rnnlm accuracy` over the ensemble experiment's runs of --configs (gru, 2-lstm) and --seeds, on
    validation and test."""
    paths = [os.path.join(args.runs, f"ensemble-{config}-s{seed}", "best.safetensors")
             for config in args.configs.split(",") for seed in args.seeds.split(",")]
    for path in paths:
        if not os.path.exists(path):
            sys.exit(f"Error: {path} is missing: run `scripts/sst2_table.py run --experiment ensemble --seeds ...` first")
    for split in ("valid", "test"):
        cmd = [os.path.join(args.bin, "rnnlm"), "accuracy"] + paths + ["--data", args.data, "--split", split]
        print(f"$ {' '.join(cmd)}", flush=True)
        subprocess.run(cmd, check=True)


def command_summary(args):
    rows = read_rows()
    for experiment in EXPERIMENT_NAMES:
        g = groups(rows, experiment)
        if not g:
            continue
        print(f"\n{experiment}\n")
        print("| configuration | seeds | valid accuracy | test accuracy | best epoch | wall time | texts/s |")
        print("|---|---|---|---|---|---|---|")
        for name, rs in g.items():
            v = mean_sd([100 * float(r["best_valid_accuracy"]) for r in rs])
            t = mean_sd([100 * float(r["test_accuracy"]) for r in rs])
            print(f"| {name} | {len(rs)} | {v[0]:.2f} ± {v[1]:.2f} | {t[0]:.2f} ± {t[1]:.2f} | "
                  f"{statistics.median(int(r['best_epoch']) for r in rs):g} | "
                  f"{statistics.median(float(r['wall_s']) for r in rs):.0f} s | "
                  f"{statistics.median(int(r['texts_per_s']) for r in rs):,.0f} |")


def command_plot(args):
    """Test accuracy against labelled texts, one line per configuration of --experiment (labels or vectors)
    without its count of texts, mean ± sd over seeds."""
    series = {}
    for name, rs in groups(read_rows(), args.experiment).items():
        kind = name.rsplit(", ", 1)[0]
        n = int(statistics.median(int(r["train_texts"]) for r in rs))
        series.setdefault(kind, []).append((n, *mean_sd([100 * float(r["test_accuracy"]) for r in rs])))
    if not series:
        sys.exit(f"Error: no {args.experiment} rows in " + CSV)
    for s in series.values():
        s.sort()
    width, height, left, right, top, bottom = 560, 380, 60, 20, 30, 50
    xs = [p[0] for s in series.values() for p in s]
    ys = [p[1] + d * p[2] for s in series.values() for p in s for d in (-1, 1)]
    import math
    x0, x1 = math.log10(min(xs)) - 0.1, math.log10(max(xs)) + 0.1
    y0, y1 = math.floor(min(ys) - 1), math.ceil(max(ys) + 1)

    def px(n):
        return left + (math.log10(n) - x0) / (x1 - x0) * (width - left - right)

    def py(a):
        return height - bottom - (a - y0) / (y1 - y0) * (height - top - bottom)

    parts = [f'<svg xmlns="http://www.w3.org/2000/svg" width="{width}" height="{height}" font-family="sans-serif" '
             f'font-size="12"><rect width="100%" height="100%" fill="white"/>',
             f'<text x="{width / 2}" y="18" text-anchor="middle">SST-2 test accuracy against labelled training '
             f'texts (mean ± sd of seeds)</text>']
    for y in range(int(y0), int(y1) + 1, max(1, int((y1 - y0) // 8))):
        parts.append(f'<line x1="{left}" x2="{width - right}" y1="{py(y):.1f}" y2="{py(y):.1f}" stroke="#ddd"/>'
                     f'<text x="{left - 6}" y="{py(y) + 4:.1f}" text-anchor="end">{y}%</text>')
    for n in sorted(set(xs)):
        parts.append(f'<text x="{px(n):.1f}" y="{height - bottom + 16}" text-anchor="middle">{n:,}</text>')
    parts.append(f'<text x="{width / 2}" y="{height - 10}" text-anchor="middle">training texts (log scale)</text>')
    # One colour per reading (the name before its start), dashed from scratch, solid started from the LM.
    readings = sorted({kind.rsplit(", ", 1)[0] for kind in series})
    colours = ("#1f77b4", "#d62728", "#2ca02c", "#ff7f0e")
    for i, (kind, s) in enumerate(sorted(series.items())):
        colour = colours[readings.index(kind.rsplit(", ", 1)[0]) % len(colours)]
        dash = ' stroke-dasharray="5,3"' if "scratch" in kind else ""
        pts = " ".join(f"{px(n):.1f},{py(m):.1f}" for n, m, _ in s)
        parts.append(f'<polyline points="{pts}" fill="none" stroke="{colour}" stroke-width="2"{dash}/>')
        for n, m, d in s:
            parts.append(f'<line x1="{px(n):.1f}" x2="{px(n):.1f}" y1="{py(m - d):.1f}" y2="{py(m + d):.1f}" '
                         f'stroke="{colour}"/><circle cx="{px(n):.1f}" cy="{py(m):.1f}" r="3" fill="{colour}"/>')
        y = top + 16 + 16 * i
        parts.append(f'<line x1="{left + 10}" x2="{left + 34}" y1="{y - 4}" y2="{y - 4}" stroke="{colour}" '
                     f'stroke-width="2"{dash}/><text x="{left + 40}" y="{y}" fill="{colour}">{kind}</text>')
    parts.append("</svg>\n")
    os.makedirs(os.path.dirname(os.path.abspath(args.output)), exist_ok=True)
    with open(args.output, "w") as f:
        f.write("\n".join(parts))
    print(f"wrote {args.output}")


def main():
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    sub = p.add_subparsers(dest="command", required=True)
    r = sub.add_parser("run")
    r.add_argument("--experiment", required=True, choices=EXPERIMENT_NAMES)
    r.add_argument("--seeds", default="1,2,3")
    r.add_argument("--threads", type=int, default=1)
    r.add_argument("--configs-with", metavar="TEXT",
                   help="run only the configurations whose name contains TEXT (to split an experiment between "
                        "processes)")
    r.add_argument("--recreate", action="store_true",
                   help="train again only the runs that already have a row (their checkpoints were lost), say "
                        "whether each matches its row, and append nothing")
    r.add_argument("--lm", help="language-model checkpoint for init, labels, vectors and tuned")
    r.add_argument("--whole-lm", help="tuned: the 1 x 256 language model whose whole encoder starts a classifier")
    r.add_argument("--shape", default="--emsize 128 --nhid 128 --monitor accuracy --epochs 20",
                   help="the classifier's shape (the language model's) and selection in init and labels, for both "
                        "starts (default %(default)s)")
    r.add_argument("--starts", default="both", choices=["both", "scratch", "lm"],
                   help="init, labels, vectors and tuned: run only the from-scratch or only the LM-initialised "
                        "configurations")
    r.add_argument("--fine-tuning", default="--freeze-encoder-epochs 1 --encoder-lr-factor 0.3",
                   help="how the LM-initialised classifier trains (default %(default)s)")
    r.add_argument("--data", default=os.path.join(os.path.dirname(ROOT), "shared", "corpora", "sst2"))
    r.add_argument("--bin", default=os.path.join(ROOT, ".build", "release"))
    r.add_argument("--runs", default=os.path.join(ROOT, "runs", "sst2"))
    e = sub.add_parser("ensemble")
    e.add_argument("--seeds", default="1,2,3,4,5")
    e.add_argument("--configs", default="gru", help="gru, 2-lstm or both, comma-separated")
    e.add_argument("--data", default=os.path.join(os.path.dirname(ROOT), "shared", "corpora", "sst2"))
    e.add_argument("--bin", default=os.path.join(ROOT, ".build", "release"))
    e.add_argument("--runs", default=os.path.join(ROOT, "runs", "sst2"))
    sub.add_parser("summary")
    pl = sub.add_parser("plot")
    pl.add_argument("--experiment", default="vectors", choices=["labels", "vectors"])
    pl.add_argument("--output", default=os.path.join(ROOT, "docs", "sst2-label-efficiency.svg"))
    args = p.parse_args()
    {"run": command_run, "ensemble": command_ensemble, "summary": command_summary, "plot": command_plot}[args.command](args)


if __name__ == "__main__":
    main()
