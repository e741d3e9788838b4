"""Pool benchmark: the width rule's predicted false gates per pool beside the measured ones.

A one-level task mixing 2-ANDs, 2-ORs and COPYs (uniform operands, s = 2) gets one pool per
threshold class (``constructions/params.py``: a unit's threshold is the smallest among its
gates, so ORs and COPYs, which fire on one code, must not share units with 2-ANDs). For each
``width_scale`` the default ``superposed`` network is built (no fallback) and, per pool, the
rule's expected false gates per uniform random s-sparse input (:func:`gate_failure` at the
pool's built fan-in and width) is printed beside the false gates measured on ``--samples``
such inputs. At scale 1 both should be ~0; narrower pools show whether the rule tracks the
errors it guards against (as ``test_conformance.py`` does for collisions).

Usage::

    python benchmarks/pools.py                       # m = 5000, scales 1 .. 0.15
    python benchmarks/pools.py --features 20000 --samples 50000

Prints a table and writes JSON to ``benchmarks/out/pools.json``.
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

import numpy as np
from scipy import sparse

from superpose import families
from superpose.constructions import build
from superpose.constructions.params import gate_classes, gate_failure
from superpose.evaluation import evaluate


def uniform_inputs(m: int, s: int, count: int, rng: np.random.Generator) -> sparse.csr_array:
    """``count`` inputs with exactly ``s`` distinct active features, uniform."""
    rows = rng.integers(0, m, (2 * count, s))
    rows = np.sort(rows, axis=1)
    ok = (np.diff(rows, axis=1) > 0).all(axis=1)
    rows = rows[ok][:count]
    data = np.ones(rows.size, dtype=np.int8)
    return sparse.csr_array((data, rows.ravel(), np.arange(0, rows.size + 1, s)), shape=(count, m))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--features", type=int, default=5000)
    parser.add_argument("--samples", type=int, default=20_000)
    parser.add_argument("--scales", type=float, nargs="+", default=[1.0, 0.5, 0.3, 0.2, 0.15])
    parser.add_argument("--out", type=Path, default=Path("benchmarks/out/pools.json"))
    args = parser.parse_args()
    m, s = args.features, 2
    task = families.stress(
        m,
        m,
        np.random.default_rng(0),
        sparsity=s,
        ops=("and", "or", "copy"),
        max_arity=2,
        influence="uniform",
    )
    cls = gate_classes(task)
    x = uniform_inputs(m, s, args.samples, np.random.default_rng(1))
    truth = sparse.csr_array(evaluate(task, x).values, dtype=bool)
    rows = []
    print(
        f"{'scale':>6} {'pool':>6} {'gates':>6} {'width':>6} {'fan-in':>7} {'predicted':>10} {'measured':>10} {'false gates':>12}"
    )
    for scale in args.scales:
        net = build(task, "superposed", rng=np.random.default_rng(0), width_scale=scale)
        p = net.extras["resolved"]
        stats = net.extras.get("pool_stats") or [dict(net.extras, need=p["pools"][0]["need"])]
        pred = sparse.csr_array(net.predict(x), dtype=bool)
        false = sparse.csr_array(pred > truth).tocoo()
        for pool, st in zip(p["pools"], stats, strict=False):
            need = pool["need"]
            gates = np.flatnonzero(cls == need)
            ops = int(task.arity[gates].sum())
            f = float(st["fan_in_fraction_mean"])
            predicted = gate_failure(
                f, p["ell"], p["ell_out"], need, s, ops / m, len(gates), p["n_in"], pool["width"]
            )
            measured = int(np.isin(false.coords[1], gates).sum())
            row = {
                "scale": scale,
                "need": need,
                "gates": len(gates),
                "width": pool["width"],
                "fan_in": round(f, 4),
                "predicted_per_input": predicted,
                "measured_per_input": measured / x.shape[0],
                "false_gates": measured,
                "inputs": int(x.shape[0]),
                "n_in": p["n_in"],
                "ell": p["ell"],
                "ell_out": p["ell_out"],
            }
            rows.append(row)
            name = "or" if need == 1 else f"{need}-and"
            print(
                f"{scale:>6} {name:>6} {len(gates):>6} {pool['width']:>6} {f:>7.3f} "
                f"{predicted:>10.3g} {measured / x.shape[0]:>10.3g} {measured:>12}"
            )
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(rows, indent=1))
    print(f"wrote {args.out}")


if __name__ == "__main__":
    main()
