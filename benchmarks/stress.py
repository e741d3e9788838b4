"""Stress benchmark: the default build on random task mixes nobody tuned for, checked afresh.

Each row draws a task from :func:`superpose.families.stress` (m features, m' = m gates, the
named op mix and influence profiles; ``issue12`` is the task that opened the trust issue,
scaled with m: at m = 30 000 it has 24 640 gates), runs the default build (``superpose.build``: choose,
build, check, grow, fall back) in a fresh subprocess, then checks the returned network again
on inputs the build never saw: ``--samples`` random and ``--samples`` targeted inputs from an
independent seed. A row passes when that fresh check finds 0 wrong inputs. Beside it: the
construction chosen (and why, when it fell back), neurons against the explicit network's
m + m', the kind of check the build recorded, seconds and peak memory.

Usage::

    python benchmarks/stress.py                                  # m = 3e4, 1e5; s = 2, 3
    python benchmarks/stress.py --sizes 30000 --sparsity 2       # one row per mix
    python benchmarks/stress.py --seed 909 --sizes 30000         # fresh mixes, untuned

Rows are written to ``benchmarks/out/stress.json`` as each finishes (an interrupted run keeps
the rows it has; rerunning skips them).
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
from pathlib import Path

MIXES = {
    # every op, every profile: hub features on ANDs and on ORs, a dense core, Zipf, uniform
    "all": ("and,or,copy,xor,andnot", "uniform+zipf+core+hub-and+hub-or"),
    # monotone ops (and/or/copy, arity <= 4): the exact certificate covers s = 3 too
    "monotone": ("and,or,copy", "uniform+zipf+core+hub-and"),
    # the task that opened the trust issue, scaled with m (2-input ANDs and ORs): a hub in
    # m / 5 ANDs, all pairs of 120 features, m / 3 Zipf pairs, m / 20 uniform ORs
    "issue12": ("and,or", "issue12"),
}

CHILD = r"""
import json, resource, sys, time
import numpy as np
from superpose import build, families
from superpose.verification import verify
m, s, ops, profile, samples, seed = (
    int(sys.argv[1]), int(sys.argv[2]), sys.argv[3], sys.argv[4], int(sys.argv[5]), int(sys.argv[6])
)
rng = np.random.default_rng(seed)


def issue12(m):
    from superpose import Task
    pairs = {(0, int(j)) for j in rng.choice(np.arange(1, m), m // 5, replace=False)}
    core = np.sort(rng.choice(np.arange(1, m), 120, replace=False)).tolist()
    pairs |= {(a, b) for i, a in enumerate(core) for b in core[i + 1 :]}
    weight = 1.0 / np.arange(1, m + 1)
    rank = rng.permutation(m)
    zipf = set()
    while len(zipf) < m // 3:
        a, b = rank[rng.choice(m, (m, 2), p=weight / weight.sum())].T
        for x, y in zip(a.tolist(), b.tolist()):
            if x != y and len(zipf) < m // 3 and (min(x, y), max(x, y)) not in pairs:
                zipf.add((min(x, y), max(x, y)))
    ors = set()
    while len(ors) < m // 20:
        x, y = sorted(rng.choice(m, 2, replace=False).tolist())
        ors.add((x, y))
    gates = [("and", list(p)) for p in sorted(pairs | zipf)] + [("or", list(p)) for p in sorted(ors)]
    return Task.from_gates(m, s, gates)


task = (
    issue12(m)
    if profile == "issue12"
    else families.stress(m, m, rng, sparsity=s, ops=tuple(ops.split(",")), influence=profile)
)
t0 = time.perf_counter()
net = build(task, seed=seed)
seconds = time.perf_counter() - t0
check = net.extras["check"]
fresh = {}
for mode in ("random", "targeted"):
    # fresh inputs, independent of the build's seed (7: the published rows' stream)
    r = verify(net, mode, samples=samples, rng=np.random.default_rng(7 if seed == 2026 else [seed, 7]))
    fresh[mode] = [r.inputs_checked, r.inputs_with_error]
counts = net.counts()
print(json.dumps({
    "seed": seed, "m": m, "gates": task.n_gates, "sparsity": s, "ops": task.op_counts(),
    "construction": net.construction, "fallback": net.extras.get("fallback"),
    "attempts": len(net.extras.get("check_attempts", [])) + 1,
    "neurons": int(counts["neurons"]), "explicit": m + task.n_gates,
    "check": {k: check.get(k) for k in ("kind", "inputs_checked", "inputs_with_error", "passed")},
    "fresh": fresh, "build_seconds": round(seconds, 1),
    "peak_rss_gb": round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 2**20, 2),
}))
"""


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sizes", type=int, nargs="+", default=[30_000, 100_000])
    parser.add_argument("--sparsity", type=int, nargs="+", default=[2, 3])
    parser.add_argument("--mixes", nargs="+", default=list(MIXES), choices=list(MIXES))
    parser.add_argument("--samples", type=int, default=10_000)
    parser.add_argument("--out", type=Path, default=Path("benchmarks/out/stress.json"))
    parser.add_argument(
        "--seed",
        type=int,
        default=2026,
        help="task, build and fresh-check seed (2026: the published rows; any other: a mix "
        "nobody tuned for)",
    )
    args = parser.parse_args()
    rows = json.loads(args.out.read_text()) if args.out.exists() else []
    done = {(r["mix"], r["m"], r["sparsity"], r.get("seed", 2026)) for r in rows}
    print(
        f"{'mix':>9} {'m':>7} {'s':>2} {'construction':>12} {'neurons':>8} {'m+gates':>8} "
        f"{'check':>10} {'fresh wrong':>12} {'seconds':>8} {'GB':>5}"
    )
    for mix in args.mixes:
        ops, profile = MIXES[mix]
        for m in args.sizes:
            for s in args.sparsity:
                if (mix, m, s, args.seed) in done:
                    continue
                out = subprocess.run(
                    [
                        *(sys.executable, "-c", CHILD, str(m), str(s), ops, profile),
                        *(str(args.samples), str(args.seed)),
                    ],
                    capture_output=True,
                    text=True,
                )
                if out.returncode != 0:
                    print(f"{mix:>9} {m:>7} {s:>2} failed: {out.stderr.strip()[-300:]}")
                    continue
                row = {"mix": mix, **json.loads(out.stdout.strip().splitlines()[-1])}
                rows.append(row)
                args.out.parent.mkdir(parents=True, exist_ok=True)
                args.out.write_text(json.dumps(rows, indent=2) + "\n")
                wrong = sum(v[1] for v in row["fresh"].values())
                checked = sum(v[0] for v in row["fresh"].values())
                print(
                    f"{mix:>9} {m:>7,} {s:>2} {row['construction']:>12} {row['neurons']:>8,} "
                    f"{row['explicit']:>8,} {row['check']['kind']:>10} "
                    f"{f'{wrong}/{checked}':>12} {row['build_seconds']:>8} {row['peak_rss_gb']:>5}",
                    flush=True,
                )
    print(f"wrote {args.out}")


if __name__ == "__main__":
    main()
