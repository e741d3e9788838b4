"""Training time and quality of the trained baselines at m' = 5 000 and 10 000 (random pairs, s = 2).

Usage (from the repository root)::

    python benchmarks/trained.py                                  # the README table
    python benchmarks/trained.py --mprime 5000 --steps 200        # a shorter run
    python benchmarks/trained.py --full-steps 0                   # skip the full-loss timing

For each m' it trains ``train_mlp(task, widths, steps=STEPS)`` with the default sampled
read-off loss (``sampled_outputs="auto"``) and reports the wall time and, per width, the
inputs with a wrong output among 2 000 verifier inputs. The full (dense) loss, the only one
before the sampled loss existed, is timed on ``--full-steps`` steps and extrapolated to
STEPS (running it to the end takes about 20 minutes per m' on 2 cores). One torch thread
(the library default). Wall and CPU seconds (the CPU time is the better measure on a shared
machine; the JSON records the load average). Prints a table; writes ``benchmarks/out/trained.json``.
"""

from __future__ import annotations

import argparse
import json
import os
import time
from pathlib import Path

import numpy as np
from scipy import sparse

from superpose import families
from superpose.peers.trained import train_mlp
from superpose.verification import check_batch, random_inputs


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--mprime", type=int, nargs="+", default=[5000, 10_000])
    parser.add_argument("--widths", default="561,1122")
    parser.add_argument("--steps", type=int, default=2000)
    parser.add_argument("--full-steps", type=int, default=20)
    parser.add_argument("--inputs", type=int, default=2000)
    parser.add_argument("--out", type=Path, default=Path("benchmarks/out/trained.json"))
    args = parser.parse_args()
    widths = [int(w) for w in args.widths.split(",")]
    rows = []
    for mp in args.mprime:
        task = families.pairs(min(mp, 10_000), mp, np.random.default_rng(0), sparsity=2)
        x = sparse.csr_array(
            sparse.vstack(
                list(random_inputs(task, args.inputs, np.random.default_rng(9))), format="csr"
            )
        )
        full_per_step = None
        if args.full_steps:
            train_mlp(task, widths, steps=1, sampled_outputs=False)  # warm-up: imports, caches
            t0, c0 = time.perf_counter(), time.process_time()
            train_mlp(task, widths, steps=args.full_steps, sampled_outputs=False)
            full_per_step = (time.perf_counter() - t0) / args.full_steps
            full_cpu_per_step = (time.process_time() - c0) / args.full_steps
        t0, c0 = time.perf_counter(), time.process_time()
        nets = train_mlp(task, widths, steps=args.steps)
        seconds, cpu = time.perf_counter() - t0, time.process_time() - c0
        for w, net in zip(widths, nets, strict=True):
            rep = check_batch(net, x)
            rows.append(
                {
                    "m'": mp,
                    "m": task.features,
                    "width": w,
                    "steps": args.steps,
                    "sampled_seconds": round(seconds, 1),
                    "sampled_cpu_seconds": round(cpu, 1),
                    "full_seconds_extrapolated": None
                    if full_per_step is None
                    else round(full_per_step * args.steps, 1),
                    "full_cpu_seconds_extrapolated": None
                    if full_per_step is None
                    else round(full_cpu_per_step * args.steps, 1),
                    "load_average_1min": round(os.getloadavg()[0], 1),
                    "inputs": args.inputs,
                    "inputs_wrong": rep.inputs_with_error,
                    "false_positives": rep.false_positives,
                    "false_negatives": rep.false_negatives,
                    "final_loss": round(float(net.extras["final_loss"]), 5),
                }
            )
            print(json.dumps(rows[-1]), flush=True)
    header = (
        "| m' | d | steps | sampled loss: wall / CPU s | full loss (extrapolated): wall / CPU s "
        "| inputs wrong | FP / FN |"
    )
    print(header)
    print("|---:|---:|---:|---:|---:|---:|---:|")
    for r in rows:
        full = (
            "—"
            if r["full_seconds_extrapolated"] is None
            else f"{r['full_seconds_extrapolated']} / {r['full_cpu_seconds_extrapolated']}"
        )
        mp = r["m'"]
        print(
            f"| {mp:,} | {r['width']} | {r['steps']} | {r['sampled_seconds']} / {r['sampled_cpu_seconds']} | {full} | "
            f"{r['inputs_wrong']} of {r['inputs']} | {r['false_positives']} / {r['false_negatives']} |"
        )
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(rows, indent=1) + "\n")


if __name__ == "__main__":
    main()
