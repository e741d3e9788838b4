"""Model estimate (planning only, nothing built): an exact-unit ``stream`` with one clean-up
block after level k, on the depth sweep's tasks (``benchmarks/stream_depth.py``).

A clean-up block is a non-residual block that re-encodes only the *live* nodes (inputs and
gates of levels <= k read by a later level, or outputs) into a fresh stream, one copy unit
each; later blocks then read a stream holding those codes plus what they write themselves,
instead of every code written so far. The estimate takes the plan's units per block and its
bounds on true nodes in the stream (``plan["on_bits"] / ell``), bounds the true live nodes
by s plus the level bounds of the levels they come from, and solves the plan's own condition
``sum_L units_L rho_L^ell + copies rho_k^ell + outputs rho_out^ell <= failure`` for d, for
every k and code length; it prints the plan without clean-up beside the best one.

Usage::

    python benchmarks/stream_cleanup_estimate.py 8 12 16   # depths (about 2 minutes)
"""

from __future__ import annotations

import json
import math
import sys
from pathlib import Path
from typing import Any

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))
OUT = Path(__file__).resolve().parent / "out"


def estimate(
    depth: int, features: int = 2_000, gates: int = 4_000, seed: int = 0
) -> dict[str, Any]:
    import stream_depth as sd

    from superpose.constructions._bloom import operand_matrix
    from superpose.constructions.stream import EXACT_ELL_GRID, Stream

    task = sd._task(features, gates, depth, seed, "last")
    plan = Stream().plan(task)
    ell0 = plan["ell"]
    t = [x / ell0 for x in plan["on_bits"]]  # true nodes in the stream block L reads, then out
    h, fail, s = plan["hidden"], plan["failure"], task.sparsity
    n_out = len(task.outputs)
    act = [lv["active"] for lv in plan["levels"]]
    g_of, op, _ = operand_matrix(task, np.arange(task.n_gates))
    reader, source = task.gate_level[g_of], task.node_level[op]
    out = np.asarray(task.outputs)
    best: dict[str, Any] | None = None
    for k in range(1, depth):
        live = np.union1d(
            np.unique(op[(reader > k) & (source <= k)]), out[task.node_level[out] <= k]
        )
        live_true = min(
            t[k], sum(s if j == 0 else act[j - 1] for j in np.unique(task.node_level[live]))
        )
        after = [x - t[k] + live_true for x in t[k:]]
        for ell in EXACT_ELL_GRID:
            c = sum(hh * (ell * tt) ** ell for hh, tt in zip(h[:k], t[:k], strict=True))
            c += len(live) * (ell * t[k]) ** ell
            c += sum(hh * (ell * tt) ** ell for hh, tt in zip(h[k:], after[:-1], strict=True))
            c += n_out * (ell * after[-1]) ** ell
            d = max((c / fail) ** (1 / ell), 2 * ell * s, ell + 1)
            n = math.ceil(d) + sum(h) + len(live)
            if best is None or n < best["neurons"]:
                best = {
                    "k": k,
                    "ell": ell,
                    "d": math.ceil(d),
                    "copies": int(len(live)),
                    "neurons": n,
                }
    return {
        "depth": depth,
        "none": {"ell": ell0, "d": plan["d"], "neurons": plan["neurons"]},
        "cleanup": best,
    }


def main(argv: list[str] | None = None) -> int:
    depths = [int(a) for a in (argv if argv is not None else sys.argv[1:])] or [8, 12, 16]
    rows = []
    print("| depth | neurons, no clean-up (d) | one clean-up after level k: neurons (d, copies) |")
    print("|---|---|---|")
    for depth in depths:
        r = estimate(depth)
        rows.append(r)
        c = r["cleanup"]
        cell = (
            "–"
            if c is None
            else f"{c['neurons']:,} (k = {c['k']}, d = {c['d']:,}, {c['copies']:,})"
        )
        print(f"| {depth} | {r['none']['neurons']:,} ({r['none']['d']:,}) | {cell} |", flush=True)
    OUT.mkdir(parents=True, exist_ok=True)
    (OUT / "stream_cleanup_estimate.json").write_text(json.dumps(rows, indent=1))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
