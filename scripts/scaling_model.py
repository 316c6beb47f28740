#!/usr/bin/env python3
"""The data-parallel scaling model of Benchmarks/README.md, as a Markdown table.

A step on P processes takes its compute C / P plus the gradient allreduce: a ring allreduce
moves 2 (P - 1) / P of the gradient's bytes B over each process's link of bandwidth beta and
waits 2 (P - 1) message latencies alpha:

    step(P) = C / P + 2 (P - 1) / P * B / beta + 2 (P - 1) * alpha

Speedup is C / step(P). With the allreduce overlapped with the backward pass (about 2/3 of C,
layer by layer as PyTorch's DDP buckets it), only the part after backward stays exposed: at least
the allreduce of the gradient finished last (`--last-bytes`, a tied embedding's), at least the
allreduce's excess over the backward pass.

    scripts/scaling_model.py --name medium --compute-ms 1100 --bytes 53.1e6 --last-bytes 26e6
"""
import argparse


def allreduce_seconds(p, nbytes, bandwidth, latency):
    if p == 1:
        return 0.0
    return 2 * (p - 1) / p * nbytes / bandwidth + 2 * (p - 1) * latency


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--name", required=True)
    parser.add_argument("--compute-ms", type=float, required=True, help="one process's step, milliseconds")
    parser.add_argument("--bytes", type=float, required=True, help="the gradient buffer's bytes")
    parser.add_argument("--last-bytes", type=float, default=0.0,
                        help="bytes of the gradients backward finishes last (cannot overlap)")
    parser.add_argument("--latency-us", type=float, default=50.0, help="per message, microseconds")
    parser.add_argument("--links", default="1,10,25,100", help="link speeds, Gb/s")
    parser.add_argument("--processes", default="1,2,4,8,16")
    args = parser.parse_args()
    c = args.compute_ms / 1000
    alpha = args.latency_us / 1e6
    links = [float(x) for x in args.links.split(",")]
    ps = [int(x) for x in args.processes.split(",")]
    print(f"{args.name}: C = {args.compute_ms:g} ms, B = {args.bytes / 1e6:.1f} MB; "
          "speedup over one process (with overlap in brackets)")
    print()
    print("| P | " + " | ".join(f"{g:g} Gb/s" for g in links) + " |")
    print("|---|" + "---|" * len(links))
    for p in ps:
        cells = []
        for g in links:
            beta = g * 1e9 / 8
            ar = allreduce_seconds(p, args.bytes, beta, alpha)
            plain = c / (c / p + ar)
            exposed = max(allreduce_seconds(p, args.last_bytes, beta, alpha), ar - 2 / 3 * c / p)
            overlapped = c / (c / p + exposed)
            cells.append(f"{plain:.2f} ({overlapped:.2f})")
        print(f"| {p} | " + " | ".join(cells) + " |")


if __name__ == "__main__":
    main()
