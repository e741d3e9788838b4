"""Additive decomposition: what it costs to make every weight serve one gate.

For random 2-ANDs (m = m', s = 2, the default ``superposed`` construction) it measures:

* the superposed network: layer width, neurons, non-zero weights, the share of weights that
  serve two or more gates (``superpose.mechanisms.of(net).summary()``);
* **count weights**: the same units with each weight set to the number of gates using it
  (``W = sum_g mask_g``, literally additive), thresholds unchanged: the share of wrong
  inputs among ``--samples`` random and targeted inputs (the verifier's);
* **split units** (``superpose.mechanisms.additive``): each output unit split into copies
  whose gates read disjoint input units: width, neurons, weights, shared weights (0) and the
  exact certificate's verdict;
* the naive network's neurons (m + m': one unit per gate) for scale.

Usage::

    python benchmarks/additive.py                     # m' = 1e3, 3e3, 1e4
    python benchmarks/additive.py --sizes 1e3         # quick

Prints a table and writes JSON to ``benchmarks/out/additive.json``.
"""

from __future__ import annotations

import argparse
import json
import time
from pathlib import Path
from typing import Any

HERE = Path(__file__).resolve().parent
OUT = HERE / "out" / "additive.json"


def _sizes(text: str) -> list[int]:
    return [int(float(s)) for s in text.split(",") if s.strip()]


def wrong_inputs(net: Any) -> int:
    from superpose.check import exact_check

    check, why = exact_check(net)
    if check is None:
        raise SystemExit(f"no exact check: {why}")
    return int(check.inputs_with_error)


def run_size(size: int, seed: int, samples: int) -> dict[str, Any]:
    from superpose import Network, build, families, verify
    from superpose import mechanisms as mech
    from superpose.network import Layer
    from superpose.seeds import Seeds

    task = families.pairs(size, size, Seeds(seed).rng("task"), sparsity=2)
    net = build(task, "superposed", seed=seed)
    lay = net.layers[0]
    summary = mech.of(net).summary()
    # count weights: W[o, u] = how many of o's gates read input unit u
    counts = mech.code_units(net.output_code).T @ mech._bool(
        mech.supports(task) @ mech.code_units(net.input_code)
    )
    counted = Network(
        [Layer(counts.astype(lay.weight.dtype), lay.bias, "step")],
        net.input_code,
        net.output_code,
        task,
        net.construction,
        net.params,
        net.seed,
    )
    sampled = {
        mode: verify(counted, mode, samples, Seeds(seed + (mode == "targeted")).rng("verify"))
        for mode in ("random", "targeted")
    }
    start = time.perf_counter()
    split = mech.additive(net)
    split_s = time.perf_counter() - start
    split_summary = mech.of(split).summary()
    return {
        "m_prime": size,
        "width": int(lay.n_out),
        "input_width": int(net.input_code.width),
        "neurons": int(net.input_code.width + lay.n_out),
        "weights": int(lay.weight.nnz),
        "shared_weights": int(summary["weights_shared"]),
        "shared_share": float(summary["shared_weight_share"]),
        "count_weights_max": int(counts.data.max()),
        "count_weights_wrong": {
            mode: [int(r.inputs_with_error), int(r.inputs_checked)] for mode, r in sampled.items()
        },
        "split_width": int(split.layers[0].n_out),
        "split_neurons": int(net.input_code.width + split.layers[0].n_out),
        "split_weights": int(split.layers[0].weight.nnz),
        "split_shared_weights": int(split_summary["weights_shared"]),
        "split_wrong_inputs": wrong_inputs(split),
        "split_s": split_s,
        "naive_neurons": int(task.features + task.n_outputs),
    }


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--sizes", type=_sizes, default=[1000, 3000, 10000])
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--samples", type=int, default=2000, help="count weights: inputs per mode")
    parser.add_argument("--out", default=str(OUT))
    args = parser.parse_args(argv)
    rows = [run_size(size, args.seed, args.samples) for size in args.sizes]
    print(
        f"{'m_prime':>8} {'width':>6} {'neurons':>8} {'weights':>9} {'shared':>7} "
        f"{'count W: wrong rnd/tgt':>22} {'split width':>11} {'split neurons':>13} {'x':>5} "
        f"{'split wrong':>11} {'naive neurons':>13}"
    )
    for r in rows:
        rnd, tgt = r["count_weights_wrong"]["random"], r["count_weights_wrong"]["targeted"]
        wrong = f"{rnd[0] / rnd[1]:.1%} / {tgt[0] / tgt[1]:.1%}"
        print(
            f"{r['m_prime']:>8,} {r['width']:>6,} {r['neurons']:>8,} {r['weights']:>9,} "
            f"{r['shared_share']:>7.1%} {wrong:>22} "
            f"{r['split_width']:>11,} {r['split_neurons']:>13,} "
            f"{r['split_neurons'] / r['neurons']:>5.2f} {r['split_wrong_inputs']:>11,} "
            f"{r['naive_neurons']:>13,}"
        )
    out = Path(args.out)
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps({"args": vars(args), "rows": rows}, indent=2) + "\n")
    print(f"\nwrote {out}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
