"""Certificate benchmark: time and peak memory of the exact certificate at s = 2 and s = 3.

For each m' (m = m' inputs, uniform random 2-ANDs, s = 2 or 3) a fresh subprocess builds the
default ``superposed`` network (one attempt, automatic widths) and runs
:func:`superpose.certificate.certify` on it; the row holds the widths, the verdict, the
candidate inputs run (instead of all C(m, <= 2)), the seconds and the subprocess's peak RSS.

Usage::

    python benchmarks/certificate.py                    # m' = 1e4, 1e5 at s = 2
    python benchmarks/certificate.py --sizes 1000000    # the 10^6 row (minutes)
    python benchmarks/certificate.py --sparsity 3       # s = 3 (monotone networks)

Prints a table and writes JSON to ``benchmarks/out/certificate.json``.
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
from pathlib import Path

CHILD = r"""
import json, resource, sys, time
import numpy as np
from superpose import families
from superpose.certificate import certify
from superpose.constructions import build
from superpose.task import n_sparse_inputs
n, s = int(sys.argv[1]), int(sys.argv[2])
task = families.pairs(n, n, np.random.default_rng(0), sparsity=s)
t0 = time.perf_counter()
net = build(task, "superposed", rng=np.random.default_rng(0))
built = time.perf_counter() - t0
t0 = time.perf_counter()
cert = certify(net, s)
seconds = time.perf_counter() - t0
print(json.dumps({
    "outputs": n, "sparsity": s, "widths": net.counts()["layer_widths"], "build_seconds": round(built, 2),
    "complete": cert.complete, "wrong_outputs": int(len(cert.wrong_outputs)),
    "inputs_run": int(cert.stats.get("candidate_pairs", 0))
    + int(cert.stats.get("candidate_triples", 0)) + n + 1,
    "inputs_covered": n_sparse_inputs(n, s), "certificate_seconds": round(seconds, 2),
    "peak_rss_gb": round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 2**20, 2),
}))
"""


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sizes", type=int, nargs="+", default=[10_000, 100_000])
    parser.add_argument("--sparsity", type=int, default=2, choices=(2, 3))
    parser.add_argument("--out", type=Path, default=None)
    args = parser.parse_args()
    if args.out is None:
        name = "certificate" if args.sparsity == 2 else f"certificate-s{args.sparsity}"
        args.out = Path(f"benchmarks/out/{name}.json")
    previous = json.loads(args.out.read_text()) if args.out.exists() else []
    rows = [r for r in previous if r["outputs"] not in args.sizes]
    print(
        f"{'m_prime':>9} {'widths':>16} {'verdict':>8} {'inputs run':>12} {'of':>14} {'s':>8} {'GB':>6}"
    )
    for n in args.sizes:
        out = subprocess.run(
            [sys.executable, "-c", CHILD, str(n), str(args.sparsity)],
            capture_output=True,
            text=True,
            check=True,
        )
        row = json.loads(out.stdout.strip().splitlines()[-1])
        rows.append(row)
        verdict = "wrong" if row["wrong_outputs"] else ("exact" if row["complete"] else "gave up")
        print(
            f"{n:>9,} {str(row['widths']):>16} {verdict:>8} {row['inputs_run']:>12,} "
            f"{row['inputs_covered']:>14.3g} {row['certificate_seconds']:>8} {row['peak_rss_gb']:>6}"
        )
    args.out.parent.mkdir(parents=True, exist_ok=True)
    rows.sort(key=lambda r: r["outputs"])
    args.out.write_text(json.dumps(rows, indent=2) + "\n")
    print(f"wrote {args.out}")


if __name__ == "__main__":
    main()
