"""Where the default s = 2 build of uniform 2-AND spends its time, phase by phase.

Builds ``superposed`` (all parameters automatic: home units and the certificate-driven repair
at these sizes) for ``pairs(m', m')`` at s = 2, the task and build seed the constructions
benchmark uses, and times the build's phases by wrapping the functions that implement them
(inclusive times; a nested phase is also counted in its parent). The build itself is not
changed: the wrappers only read the clock.

    python benchmarks/build_phases.py                    # m' = 1e5
    python benchmarks/build_phases.py --sizes 1e5,1e6    # (1e6: ~3 GB, minutes)
    python benchmarks/build_phases.py --label after      # tag the rows (before/after a change)

To time an older version of the library with this script, put that version first on
PYTHONPATH (phases it does not have show 0 calls).

Wall-clock and CPU (process) seconds are both recorded: on a shared machine the CPU seconds
are the comparable ones (the share column is of the build's CPU seconds). Prints a table and
writes JSON to ``benchmarks/out/build_phases.json`` (rows of earlier runs
with other labels or sizes are kept).
"""

from __future__ import annotations

import argparse
import functools
import json
import resource
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

OUT = Path(__file__).resolve().parent / "out" / "build_phases.json"

# (module, function, depth in the table): the phases, in call order.
PHASES = (
    ("superpose.constructions.superposed", "input_code_for", 0),
    ("superpose.constructions._bloom", "_overlapping", 1),
    ("superpose.constructions.superposed", "threshold_stage", 0),
    ("superpose.constructions.superposed", "read_sets", 1),
    ("superpose.constructions.superposed", "assign_units", 1),
    ("superpose.constructions.superposed", "home_units", 1),
    ("superpose.constructions.superposed", "_repair_units", 1),
    ("superpose.constructions.certify", "contained_sets", 2),
    ("superpose.constructions.certify", "vulnerable_pairs", 2),
    ("superpose.constructions.certify", "_draw_units", 2),
    ("superpose.constructions.certify", "_widened", 2),
    ("superpose.constructions.certify", "_recheck", 2),
    ("superpose.constructions.certify", "_fresh", 3),
    ("superpose.constructions.superposed", "threshold_layer", 1),
)


def _ints(text: str) -> list[int]:
    return [int(float(x)) for x in text.split(",") if x.strip()]


def _wrap(
    times: dict[str, float], cpu: dict[str, float], calls: dict[str, int], name: str, fn: Callable
) -> Callable:
    @functools.wraps(fn)
    def timed(*args: Any, **kwargs: Any) -> Any:
        t, c = time.perf_counter(), time.process_time()
        try:
            return fn(*args, **kwargs)
        finally:
            times[name] += time.perf_counter() - t
            cpu[name] += time.process_time() - c
            calls[name] += 1

    return timed


def run(mp: int, seed: int) -> dict[str, Any]:
    import importlib

    sys.path.insert(0, str(Path(__file__).resolve().parent))
    from constructions import _task

    from superpose.constructions import make_construction
    from superpose.seeds import Seeds

    times = {name: 0.0 for _, name, _ in PHASES}
    cpu = {name: 0.0 for _, name, _ in PHASES}
    calls = {name: 0 for _, name, _ in PHASES}
    saved = []
    for mod_name, name, _ in PHASES:
        mod = importlib.import_module(mod_name)
        if hasattr(mod, name):  # (a phase the measured version lacks shows 0 calls)
            saved.append((mod, name, getattr(mod, name)))
            setattr(mod, name, _wrap(times, cpu, calls, name, getattr(mod, name)))
    try:
        t = time.perf_counter()
        task = _task(mp, mp, 2, seed)
        task_seconds = time.perf_counter() - t
        t, c = time.perf_counter(), time.process_time()
        net = make_construction("superposed").build(task, Seeds(seed).rng("build"))
        build_seconds = time.perf_counter() - t
        build_cpu = time.process_time() - c
    finally:
        for mod, name, fn in saved:
            setattr(mod, name, fn)
    stats = net.extras.get("layers", net.extras)
    return {
        "outputs": mp,
        "features": mp,
        "sparsity": 2,
        "seed": seed,
        "task_seconds": round(task_seconds, 3),
        "build_seconds": round(build_seconds, 3),
        "build_cpu_seconds": round(build_cpu, 3),
        "phases": {
            name: {
                "seconds": round(times[name], 3),
                "cpu_seconds": round(cpu[name], 3),
                "calls": calls[name],
                "depth": d,
            }
            for _, name, d in PHASES
        },
        "layer_widths": [int(w) for w in net.counts()["layer_widths"]],
        "peak_rss_gib": round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 2**20, 3),
        "repair": _find(stats, "repair"),
    }


def _find(obj: Any, key: str) -> Any:
    """The first value under ``key`` anywhere in nested dicts / lists (the repair record)."""
    if isinstance(obj, dict):
        if key in obj:
            return obj[key]
        obj = list(obj.values())
    if isinstance(obj, list):
        for v in obj:
            got = _find(v, key)
            if got is not None:
                return got
    return None


def table(row: dict[str, Any]) -> str:
    lines = [
        f"m' = {row['outputs']:,} ({row['label']}): build {row['build_seconds']:.1f} s "
        f"({row['build_cpu_seconds']:.1f} s CPU), widths {row['layer_widths']}, "
        f"peak RSS {row['peak_rss_gib']:.2f} GiB",
        f"  {'phase':<28} {'calls':>6} {'seconds':>9} {'CPU s':>9} {'share':>7}",
    ]
    total = row["build_cpu_seconds"]
    for name, p in row["phases"].items():
        label = "  " * p["depth"] + name
        lines.append(
            f"  {label:<28} {p['calls']:>6} {p['seconds']:>9.2f} {p['cpu_seconds']:>9.2f} "
            f"{p['cpu_seconds'] / total:>7.1%}"
        )
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--sizes", type=_ints, default=[100_000], help="m' values, e.g. 1e5,1e6")
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--label", default="current", help="tag for the rows (e.g. before, after)")
    ap.add_argument("--out", type=Path, default=OUT)
    args = ap.parse_args(argv)
    old = json.loads(args.out.read_text())["rows"] if args.out.exists() else []
    rows = []
    for mp in args.sizes:
        row = {"label": args.label, **run(mp, args.seed)}
        print(table(row), flush=True)
        rows.append(row)
    fresh = {(r["label"], r["outputs"], r["seed"]) for r in rows}
    keep = [r for r in old if (r["label"], r["outputs"], r["seed"]) not in fresh]
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps({"rows": keep + rows}, indent=1) + "\n")
    print(f"wrote {args.out}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
