"""Cost of superpose.mechanisms.of and the shared-weight share, on raw superposed 2-AND builds.

Prints a table and writes benchmarks/out/mechanisms.json. Usage:
    python benchmarks/mechanisms.py [--large]
"""

from __future__ import annotations

import json
import sys
import time
from pathlib import Path

import numpy as np

import superpose as sp
from superpose.constructions import build as raw_build
from superpose.mechanisms import of


def main() -> None:
    sizes = [(1000, 5000), (3000, 20000)]
    if "--large" in sys.argv:
        sizes.append((10000, 100000))
    rows = []
    for m, n in sizes:
        task = sp.families.pairs(m, n, np.random.default_rng(0), sparsity=2)
        t0 = time.perf_counter()
        net = raw_build(task, "superposed")
        t1 = time.perf_counter()
        summary = of(net).summary()
        t2 = time.perf_counter()
        rows.append(
            {
                "features": m,
                "gates": n,
                "weights": summary["weights"],
                "shared_weight_share": summary["shared_weight_share"],
                "mean_mask_weights": summary["mean_mask_weights"],
                "build_seconds": t1 - t0,
                "mechanisms_seconds": t2 - t1,
            }
        )
    print(
        f"{'m':>7} {'gates':>8} {'weights':>10} {'shared':>7} {'mask':>6} {'build s':>8} {'mech s':>7}"
    )
    for r in rows:
        print(
            f"{r['features']:>7} {r['gates']:>8} {r['weights']:>10} "
            f"{r['shared_weight_share']:>7.1%} {r['mean_mask_weights']:>6.1f} "
            f"{r['build_seconds']:>8.2f} {r['mechanisms_seconds']:>7.2f}"
        )
    out = Path(__file__).parent / "out"
    out.mkdir(exist_ok=True)
    (out / "mechanisms.json").write_text(json.dumps(rows, indent=1))


if __name__ == "__main__":
    main()
