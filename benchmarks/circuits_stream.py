"""Residual stream vs MLP chain on deep circuits (issue 13): ``stream`` beside ``circuit``.

Task: a random layered circuit (``families.layered_circuit``) of depth 4 with m inputs and
m / 2 gates per level (and / or / xor mix, 20% of the non-first operands read the inputs,
**every gate an output**), s = 2. For each m, both constructions are built raw (one attempt
at their automatic widths, no check-and-grow, no fallback) from the same task and seed, then
``--samples`` random + ``--samples`` targeted inputs go through the verifier.

Neurons: ``stream`` is counted as a residual network -- the stream once (d) plus every block's
hidden units (the identity rows of the residual connection count their parameters, no
neurons); ``circuit`` as the MLP chain it is (every layer's units); the explicit network needs
m + gates.

Usage::

    python benchmarks/circuits_stream.py                 # m = 2 000 and 20 000
    python benchmarks/circuits_stream.py --features 2000 --samples 500   # quick
    python benchmarks/circuits_stream.py --features 20000 --ops and,or --name circuits_stream_and_or
    python benchmarks/circuits_stream.py --target depth16   # issue 13's depth-16 target
    python benchmarks/circuits_stream.py --target s3        # depth 4, m = 20 000, s = 3

Prints a Markdown table and writes JSON to ``benchmarks/out/circuits_stream.json``. Every
timing is printed with the 1-minute load average (the machine is shared).
"""

from __future__ import annotations

import argparse
import json
import os
import time
from pathlib import Path
from typing import Any

for _var in ("OPENBLAS_NUM_THREADS", "OMP_NUM_THREADS", "MKL_NUM_THREADS"):
    os.environ.setdefault(_var, "1")

import numpy as np  # noqa: E402

OUT = Path(__file__).resolve().parent / "out"


def _load() -> float:
    return round(os.getloadavg()[0], 2)


def _check(net: Any, samples: int, seed: int) -> dict[str, Any]:
    from superpose import verify

    out: dict[str, Any] = {}
    for mode in ("random", "targeted"):
        t0, load = time.perf_counter(), _load()
        rep = verify(net, mode, samples, np.random.default_rng(seed + 100))
        out[mode] = {
            "inputs": rep.inputs_checked,
            "inputs_with_error": rep.inputs_with_error,
            "false_positives": rep.false_positives,
            "false_negatives": rep.false_negatives,
            "seconds": round(time.perf_counter() - t0, 2),
            "load": load,
        }
    return out


def level_errors(net: Any, samples: int, seed: int) -> list[dict[str, Any]]:
    """Per block: inputs (of ``samples`` random s-sparse ones) with a wrong gate of its level
    in the stream right after the block (decoded with the gates' codes), beside the plan's
    predicted error for the block."""
    from scipy import sparse

    from superpose.evaluation import evaluate_nodes

    task = net.task
    rng = np.random.default_rng(seed + 200)
    rows = np.argsort(rng.random((samples, task.features)), axis=1)[:, : task.sparsity]
    x = sparse.csr_array(
        (np.ones(rows.size, np.int8), (np.repeat(np.arange(samples), task.sparsity), rows.ravel())),
        shape=(samples, task.features),
    )
    truth = evaluate_nodes(task, x).toarray().astype(bool)
    row_of, codes = net.stream_codes
    streams = net.forward(net.encode(x), all_layers=True)[1::2]
    out = []
    for block, z in zip(net.extras["residual"]["blocks"], streams, strict=True):
        gates = task.features + np.flatnonzero(task.gate_level == block["level"])
        gates = gates[row_of[gates] >= 0]
        got = codes.decode(z)[:, row_of[gates]].toarray().astype(bool)
        wrong = (got != truth[:, gates]).any(axis=1)
        out.append(
            {
                "level": block["level"],
                "inputs": samples,
                "inputs_with_wrong_gate": int(wrong.sum()),
                "predicted_error": block.get("predicted_error"),
            }
        )
    return out


def run(
    features: int,
    depth: int,
    sparsity: int,
    samples: int,
    seed: int,
    ops: tuple[str, ...],
    regions: str = "shared",
    names: tuple[str, ...] = ("stream", "circuit"),
    units: str = "auto",
) -> dict[str, Any]:
    from superpose import families
    from superpose.constructions import build

    task = families.layered_circuit(
        features, features // 2, depth, np.random.default_rng(seed), sparsity=sparsity, ops=ops
    )
    row: dict[str, Any] = {
        "features": features,
        "gates": task.n_gates,
        "depth": task.depth,
        "sparsity": sparsity,
        "ops": task.op_counts(),
        "m_plus_gates": features + task.n_gates,
    }
    for name in names:
        t0, load = time.perf_counter(), _load()
        params = {"regions": regions, "units": units} if name == "stream" else {}
        net = build(task, name, seed=seed, **params)
        entry: dict[str, Any] = {
            "build_seconds": round(time.perf_counter() - t0, 2),
            "build_load": load,
        }
        if name == "stream":
            res = net.extras["residual"]
            entry |= {
                "neurons": res["neurons"],
                "stream_width": res["stream_width"],
                "stream_floor": net.extras["stream_floor"],
                "regions": net.extras["regions"],
                "region_widths": net.extras["region_widths"],
                "ell": net.extras["ell"],
                "active_bounds": net.extras["active_bounds"],
                "units": net.extras.get("units", "pool"),
                "blocks": [
                    {
                        k: b[k]
                        for k in (
                            "level",
                            "pool_units",
                            "and_units",
                            "present_units",
                            "detector_units",
                            "hidden_units",
                            "predicted_error",
                        )
                        if k in b
                    }
                    for b in res["blocks"]
                ],
                "predicted_output_errors": net.extras.get("predicted_output_errors"),
                "nonzero_parameters": res["nonzero_parameters"],
                "layered_neurons": net.counts()["neurons"],
            }
        else:
            c = net.counts()
            entry |= {
                "neurons": c["neurons"],
                "layer_widths": c["layer_widths"],
                "nonzero_parameters": c["nonzero_parameters"],
            }
        entry |= _check(net, samples, seed)
        if name == "stream":
            entry["levels"] = level_errors(net, min(samples, 2000), seed)
        row[name] = entry
        print(f"  {name}: {entry['neurons']:,} neurons", flush=True)
    return row


def _errors(entry: dict[str, Any]) -> str:
    return " + ".join(
        f"{entry[m]['inputs_with_error']}/{entry[m]['inputs']}" for m in ("random", "targeted")
    )


def table(rows: list[dict[str, Any]]) -> str:
    head = (
        "| m | gates | m + gates | stream neurons (d + hidden) | stream errors "
        "(random + targeted) | circuit neurons | circuit errors | build s stream / circuit "
        "(load) |\n|---|---|---|---|---|---|---|---|\n"
    )
    lines = []
    for r in rows:
        st = r["stream"]
        ci = r.get("circuit", {"neurons": 0, "build_seconds": 0.0, "random": None})
        if ci["random"] is None:
            ci = {
                **ci,
                **{m: {"inputs_with_error": "-", "inputs": "-"} for m in ("random", "targeted")},
            }
        hidden = st["neurons"] - st["stream_width"]
        lines.append(
            f"| {r['features']:,} | {r['gates']:,} | {r['m_plus_gates']:,} "
            f"| {st['neurons']:,} ({st['stream_width']:,} + {hidden:,}) | {_errors(st)} "
            f"| {ci['neurons']:,} | {_errors(ci)} "
            f"| {st['build_seconds']:.0f} / {ci['build_seconds']:.0f} ({st['build_load']}) |"
        )
    levels = [
        f"| {r['features']:,} | {lv['level']} | "
        + ("-" if lv["predicted_error"] is None else f"{lv['predicted_error']:.2g}")
        + f" | {lv['inputs_with_wrong_gate']}/{lv['inputs']} |"
        for r in rows
        for lv in r["stream"].get("levels", [])
    ]
    per_level = (
        "\n\nper level (stream): predicted error (expected false units per worst-case input) "
        "and random inputs with a wrong gate of the level right after its block\n\n"
        "| m | level | predicted | measured |\n|---|---|---|---|\n" + "\n".join(levels)
    )
    return head + "\n".join(lines) + per_level


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--features", default="2000,20000", help="comma-separated m values")
    p.add_argument("--depth", type=int, default=4)
    p.add_argument("--sparsity", type=int, default=2)
    p.add_argument("--samples", type=int, default=2000)
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--ops", default="and,or,xor", help="comma-separated gate ops")
    p.add_argument("--regions", default="shared", help="stream regions: shared or disjoint")
    p.add_argument("--units", default="auto", help="stream units: auto, exact or pool")
    p.add_argument("--skip-circuit", action="store_true", help="build the stream network only")
    p.add_argument("--name", default="circuits_stream", help="JSON file name (no suffix)")
    p.add_argument(
        "--target",
        choices=["depth16", "s3"],
        help="issue 13 targets: depth16 (m = 20 000, 16 x 5 000 gates, last level as outputs, "
        "s = 2; runs benchmarks/stream_depth.py --target) or s3 (depth 4, m = 20 000, "
        "4 x 10 000 gates, every gate an output, s = 3, 10 000 + 10 000 inputs)",
    )
    args = p.parse_args(argv)
    if args.target == "depth16":
        import sys

        sys.path.insert(0, str(Path(__file__).resolve().parent))
        import stream_depth

        return stream_depth.main(["--target", "--seed", str(args.seed)])
    if args.target == "s3":
        args.features, args.sparsity, args.depth = "20000", 3, 4
        args.samples, args.name = 10_000, "circuits_stream_s3"
    rows = []
    for m in [int(x) for x in args.features.split(",")]:
        print(f"m = {m:,}", flush=True)
        ops = tuple(args.ops.split(","))
        names = ("stream",) if args.skip_circuit else ("stream", "circuit")
        rows.append(
            run(
                m,
                args.depth,
                args.sparsity,
                args.samples,
                args.seed,
                ops,
                args.regions,
                names,
                args.units,
            )
        )
    print(table(rows))
    OUT.mkdir(parents=True, exist_ok=True)
    path = OUT / f"{args.name}.json"
    path.write_text(json.dumps({"rows": rows, "argv": vars(args)}, indent=1))
    print(f"wrote {path}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
