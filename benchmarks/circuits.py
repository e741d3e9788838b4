"""Deep circuits benchmark (issue 5): random layered circuits built by the ``circuit`` construction.

Default run -- the issue's target: a random layered circuit of depth 4, m = 20 000 inputs,
10 000 gates per level (40 000 gates, and/or mix, 20% of the non-first operands read the
inputs directly, every gate an output), s = 2. For each sizing (``bound``: every stage sized
for the worst-case number of true gates; ``sampled``: for the most seen on sampled inputs):

1. build (timed), with the per-level sparsity bounds, widths (pools and copies) and ``l``;
2. the naive network's neurons (``superpose.build(task, "naive")``), and m + gates;
3. ``--samples`` random + ``--samples`` targeted inputs through the verifier (timed);
4. a per-level report (:func:`superpose.stage_check.level_report`) on ``--level-samples`` random
   inputs: errors per stage, true nodes and units on per stage.

``--depth-sweep``: depths 1..8 at a fixed total number of gates (``--sweep-gates`` spread
evenly over the levels, ``--sweep-features`` inputs): neurons, naive neurons, end-to-end errors
on random + targeted inputs, per-level error rates and bounds; writes a PNG plot.
``--cleanup K`` adds a run with a clean-up re-encoding after every K-th level.

Usage::

    python benchmarks/circuits.py                      # depth 4, 20k inputs, 40k gates, s = 2
    python benchmarks/circuits.py --sparsity 3
    python benchmarks/circuits.py --depth-sweep        # depths 1..8, table + plot
    python benchmarks/circuits.py --quick              # smoke run (small sizes)

Prints Markdown tables (for the README) and writes JSON (and the PNG) to ``benchmarks/results/circuits*``.
Every timing is printed with the 1-minute load average (the machine is shared).
"""

from __future__ import annotations

import argparse
import datetime
import json
import os
import platform
import sys
import time
from pathlib import Path
from typing import Any

for _var in ("OPENBLAS_NUM_THREADS", "OMP_NUM_THREADS", "MKL_NUM_THREADS"):
    os.environ.setdefault(_var, "1")

import numpy as np  # noqa: E402

OUT = Path(__file__).resolve().parent / "results"


def _load() -> float:
    return round(os.getloadavg()[0], 2)


def _task(
    features: int,
    per_level: int,
    depth: int,
    sparsity: int,
    seed: int,
    outputs: str,
    ops: tuple[str, ...],
):
    from superpose import families

    return families.layered_circuit(
        features,
        per_level,
        depth,
        np.random.default_rng(seed),
        ops=ops,
        sparsity=sparsity,
        outputs=outputs,
    )


def run_one(
    task: Any,
    sizing: str,
    samples: int,
    level_samples: int,
    seed: int,
    cleanup: int = 0,
    max_active: int = 256,
    width_scale: float = 1.0,
) -> dict[str, Any]:
    """Build, count, verify and check per level one circuit network."""
    from superpose import build, verify
    from superpose.constructions.circuit import Circuit
    from superpose.stage_check import level_report

    con = Circuit(
        sizing=sizing,
        cleanup=cleanup,
        max_active=max_active,
        width_scale=width_scale,
        certify=width_scale == 1.0,
    )
    t0, load0 = time.perf_counter(), _load()
    net = build(task, con, seed=seed)
    build_s = time.perf_counter() - t0
    counts = net.counts()
    row: dict[str, Any] = {
        "sizing": sizing,
        "cleanup": cleanup,
        "width_scale": width_scale,
        "features": task.features,
        "gates": task.n_gates,
        "depth": task.depth,
        "sparsity": task.sparsity,
        "outputs": task.n_outputs,
        "ops": task.op_counts(),
        "neurons": counts["neurons"],
        "layer_widths": counts["layer_widths"],
        "nonzero_parameters": counts["nonzero_parameters"],
        "m_plus_gates": task.features + task.n_gates,
        "ell": net.extras["ells"],
        "active_bounds": net.extras["active_bounds"],
        "stage_active_bounds": net.extras["stage_active_bounds"],
        "cone_bounds": net.extras["cone_bounds"],
        "bound_method": net.extras["bound_method"],
        "sized_for": net.extras["sized_for"],
        "pool_widths": net.extras["pool_widths"],
        "copy_widths": net.extras["copy_widths"],
        "build_seconds": round(build_s, 2),
        "build_load": load0,
    }
    for mode in ("random", "targeted"):
        if samples <= 0:
            continue
        t0, load0 = time.perf_counter(), _load()
        rep = verify(net, mode, samples, np.random.default_rng(seed + 100))
        row[mode] = {
            "inputs": rep.inputs_checked,
            "inputs_with_error": rep.inputs_with_error,
            "false_positives": rep.false_positives,
            "false_negatives": rep.false_negatives,
            "error_rate_upper_95": rep.error_rate_upper_95,
            "seconds": round(time.perf_counter() - t0, 2),
            "load": load0,
        }
    if level_samples > 0:
        lev = level_report(net, "random", level_samples, np.random.default_rng(seed + 200))
        row["levels"] = lev.to_dict()
    return row


def naive_neurons(task: Any) -> int:
    from superpose import build

    return int(build(task, "naive").counts()["neurons"])


def _fmt_errors(row: dict[str, Any]) -> str:
    parts = []
    for mode in ("random", "targeted"):
        if mode in row:
            r = row[mode]
            parts.append(f"{r['inputs_with_error']}/{r['inputs']:,}")
    return " + ".join(parts) if parts else "-"


def table_main(rows: list[dict[str, Any]]) -> str:
    head = (
        "| s | sizing | l | true gates per level (bound) | widths (input, then per level) "
        "| neurons | naive network | m + gates | inputs with error (random + targeted) "
        "| build s | verify s (load) |\n|---|---|---|---|---|---|---|---|---|---|---|\n"
    )
    lines = []
    for r in rows:
        verify_s = sum(r[m]["seconds"] for m in ("random", "targeted") if m in r)
        load = r.get("random", {}).get("load", r["build_load"])
        lines.append(
            f"| {r['sparsity']} | {r['sizing']} | {r['ell']} | {r['active_bounds'][1:]} "
            f"| {r['layer_widths']} | {r['neurons']:,} | {r['naive_neurons']:,} "
            f"| {r['m_plus_gates']:,} | {_fmt_errors(r)} | {r['build_seconds']} "
            f"| {verify_s:.0f} ({load}) |"
        )
    return head + "\n".join(lines)


def table_levels(row: dict[str, Any]) -> str:
    lev = row.get("levels")
    if not lev:
        return ""
    head = (
        f"Per level ({lev['inputs_checked']:,} random inputs, s = {row['sparsity']}, "
        f"sizing {row['sizing']}):\n\n"
        "| layer | level | nodes held | width | wrong (end to end) | first wrong here "
        "| wrong with a clean input | true nodes mean / max | units on mean / max |\n"
        "|---|---|---|---|---|---|---|---|---|\n"
    )
    lines = [
        f"| {s['stage']} | {s['level']}{' (clean-up)' if s['kind'] == 'cleanup' else ''} "
        f"| {s['nodes']:,} | {s['width']:,} | {s['wrong_end_to_end']} | {s['first_wrong']} "
        f"| {s['wrong_clean_input']} | {s['true_nodes_mean']:.2f} / {s['true_nodes_max']} "
        f"| {s['units_on_mean']:.1f} / {s['units_on_max']} |"
        for s in lev["stages"]
    ]
    return head + "\n".join(lines)


def table_sweep(rows: list[dict[str, Any]]) -> str:
    head = (
        "| depth | gates per level | true gates per level (max bound) | neurons | naive network "
        "| m + gates | inputs with error (random + targeted) | worst per-level error rate "
        "| build s (load) |\n|---|---|---|---|---|---|---|---|---|\n"
    )
    lines = []
    for r in rows:
        worst = max((s["error_rate"] for s in r.get("levels", {}).get("stages", [])), default=0)
        label = f"{r['depth']}" + (f" (clean-up every {r['cleanup']})" if r["cleanup"] else "")
        lines.append(
            f"| {label} | {r['gates'] // r['depth']:,} | {max(r['active_bounds'][1:])} "
            f"| {r['neurons']:,} | {r['naive_neurons']:,} | {r['m_plus_gates']:,} "
            f"| {_fmt_errors(r)} | {worst:.2g} | {r['build_seconds']} ({r['build_load']}) |"
        )
    return head + "\n".join(lines)


def table_cleanup(rows: list[dict[str, Any]]) -> str:
    head = (
        "| width scale | clean-up | layers | neurons | inputs with error (random + targeted) "
        "| wrong per layer (random, end to end) |\n|---|---|---|---|---|---|\n"
    )
    lines = []
    for r in rows:
        per = [s["wrong_end_to_end"] for s in r.get("levels", {}).get("stages", [])]
        label = f"every {r['cleanup']} levels" if r["cleanup"] else "none"
        lines.append(
            f"| {r['width_scale']} | {label} | {len(r['layer_widths']) - 1} | {r['neurons']:,} "
            f"| {_fmt_errors(r)} | {per} |"
        )
    return head + "\n".join(lines)


def plot_sweep(rows: list[dict[str, Any]], path: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    plain = [r for r in rows if not r["cleanup"]]
    depths = [r["depth"] for r in plain]
    fig, (ax1, ax2) = plt.subplots(1, 2, figsize=(10, 4))
    ax1.plot(depths, [r["neurons"] for r in plain], "o-", label="circuit (superposed)")
    ax1.plot(depths, [r["naive_neurons"] for r in plain], "s--", label="naive network")
    ax1.plot(depths, [r["m_plus_gates"] for r in plain], ":", label="m + gates")
    ax1.set_xlabel("depth (levels)")
    ax1.set_ylabel("neurons")
    ax1.set_title(f"width vs depth ({plain[0]['gates']:,} gates in total)")
    ax1.legend()
    for mode, marker in (("random", "o-"), ("targeted", "s-")):
        ax2.plot(
            depths,
            [r[mode]["error_rate_upper_95"] if mode in r else np.nan for r in plain],
            marker,
            label=f"{mode}: 95% upper bound on error rate",
        )
        ax2.plot(
            depths,
            [
                r[mode]["inputs_with_error"] / r[mode]["inputs"] if mode in r else np.nan
                for r in plain
            ],
            marker[0] + ":",
            label=f"{mode}: measured error rate",
        )
    ax2.plot(
        depths,
        [
            max((s["error_rate"] for s in r.get("levels", {}).get("stages", [])), default=0)
            for r in plain
        ],
        "^-",
        label="per-level check (random): worst stage's error rate",
    )
    ax2.set_yscale("symlog", linthresh=1e-4)
    ax2.set_xlabel("depth (levels)")
    ax2.set_ylabel("fraction of inputs with a wrong output")
    ax2.set_title("end-to-end error vs depth")
    ax2.legend(fontsize=7)
    fig.tight_layout()
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, dpi=120)
    plt.close(fig)


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--features", type=int, default=20_000)
    p.add_argument("--per-level", type=int, default=10_000)
    p.add_argument("--depth", type=int, default=4)
    p.add_argument("--sparsity", type=int, nargs="+", default=[2])
    p.add_argument("--sizings", nargs="+", default=["bound", "sampled"])
    p.add_argument("--outputs", default="all", choices=["all", "last"])
    p.add_argument("--samples", type=int, default=10_000)
    p.add_argument("--level-samples", type=int, default=2_000)
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--max-active", type=int, default=256)
    p.add_argument("--depth-sweep", action="store_true")
    p.add_argument("--sweep-features", type=int, default=4_000)
    p.add_argument("--sweep-gates", type=int, default=8_000)
    p.add_argument("--sweep-depths", type=int, nargs="+", default=list(range(1, 9)))
    p.add_argument("--sweep-samples", type=int, default=2_000)
    p.add_argument("--cleanup", type=int, default=0, help="also run with a clean-up every K levels")
    p.add_argument(
        "--cleanup-study",
        action="store_true",
        help="errors and neurons with / without clean-up layers at reduced widths",
    )
    p.add_argument("--study-scales", type=float, nargs="+", default=[1.0, 0.8, 0.65, 0.5])
    p.add_argument("--plot-only", action="store_true", help="redraw the depth plot from its JSON")
    p.add_argument("--ops", nargs="+", default=["and", "or"], help="gate ops of the circuit")
    p.add_argument("--quick", action="store_true")
    args = p.parse_args(argv)
    ops = tuple(args.ops)
    suffix = "" if ops == ("and", "or") else "-" + "-".join(ops)
    if args.quick:
        args.features, args.per_level, args.samples, args.level_samples = 2000, 1000, 500, 300
        args.sweep_features, args.sweep_gates, args.sweep_samples = 1000, 1600, 300
        args.sweep_depths = [1, 2, 4]
    meta = {
        "date": datetime.datetime.now(datetime.UTC).isoformat(timespec="seconds"),
        "python": sys.version.split()[0],
        "platform": platform.platform(),
        "cpus": os.cpu_count(),
        "args": vars(args),
    }
    OUT.mkdir(parents=True, exist_ok=True)
    if args.plot_only:
        rows = json.loads((OUT / "circuits-depth.json").read_text())["rows"]
        plot_sweep(rows, OUT / "circuits-depth.png")
        print(table_sweep(rows))
        return 0
    if args.cleanup_study:
        depth = 6
        task = _task(
            args.sweep_features, args.sweep_gates // depth, depth, 2, args.seed, "all", ops
        )
        rows = []
        for scale in args.study_scales:
            for cleanup in (0, args.cleanup or 2):
                row = run_one(
                    task,
                    "bound",
                    args.sweep_samples,
                    args.sweep_samples,
                    args.seed,
                    cleanup,
                    args.max_active,
                    scale,
                )
                rows.append(row)
                print(
                    json.dumps({k: row[k] for k in ("width_scale", "cleanup", "neurons")}),
                    flush=True,
                )
        (OUT / "circuits-cleanup.json").write_text(
            json.dumps({"meta": meta, "rows": rows}, indent=1)
        )
        print(table_cleanup(rows))
        return 0
    if args.depth_sweep:
        rows = []
        for depth in args.sweep_depths:
            per_level = args.sweep_gates // depth
            task = _task(
                args.sweep_features, per_level, depth, args.sparsity[0], args.seed, "all", ops
            )
            naive = naive_neurons(task)
            for cleanup in sorted({0, args.cleanup}):
                if cleanup and depth <= cleanup:
                    continue
                row = run_one(
                    task,
                    args.sizings[0],
                    args.sweep_samples,
                    args.sweep_samples,
                    args.seed,
                    cleanup,
                    args.max_active,
                )
                row["naive_neurons"] = naive
                rows.append(row)
                print(json.dumps({k: row[k] for k in ("depth", "cleanup", "neurons")}), flush=True)
        plot = OUT / "circuits-depth.png"
        plot_sweep(rows, plot)
        (OUT / "circuits-depth.json").write_text(json.dumps({"meta": meta, "rows": rows}, indent=1))
        print(table_sweep(rows))
        print(f"\nplot: {plot}")
        return 0
    rows = []
    for s in args.sparsity:
        task = _task(args.features, args.per_level, args.depth, s, args.seed, args.outputs, ops)
        naive = naive_neurons(task)
        for sizing in args.sizings:
            for cleanup in sorted({0, args.cleanup}):
                row = run_one(
                    task,
                    sizing,
                    args.samples,
                    args.level_samples,
                    args.seed,
                    cleanup,
                    args.max_active,
                )
                row["naive_neurons"] = naive
                rows.append(row)
                print(
                    json.dumps({k: row[k] for k in ("sparsity", "sizing", "neurons")}), flush=True
                )
    name = ("circuits" if args.outputs == "all" else "circuits-last") + suffix + ".json"
    (OUT / name).write_text(json.dumps({"meta": meta, "rows": rows}, indent=1))
    print(table_main(rows))
    for row in rows:
        print()
        print(table_levels(row))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
