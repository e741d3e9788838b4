"""Depth sweep at fixed total gates (issue 13): the residual ``stream`` beside the MLP ``circuit``.

Task per depth D: a random layered circuit (``families.layered_circuit``) with ``--features``
inputs and ``--gates`` gates in total, ``gates // D`` per level (and / or / xor, a fifth of
the second operands read the inputs, ``--outputs`` last level or every gate), s = 2. Both
constructions are built raw with their default settings (one attempt at the automatic widths,
no check-and-grow, no fallback) from the same task and seed, then ``--samples`` random +
``--samples`` targeted inputs go through the verifier.

``stream`` uses its default unit design (``units="auto"``: the fewer planned neurons of exact
and pool units; the table's "units, ell" column says which). For ``stream`` the per-level
check (``verify --levels``) also runs on fresh ``--samples`` random + targeted inputs, beside
the plan's predicted false reads per block and at the output read (``--no-levels`` skips it).

Neurons: ``stream`` as a residual network (the stream once + every block's hidden units; the
identity rows of the residual connection count parameters, not neurons); ``circuit`` as the
MLP chain it is (every layer's units).

``--target``: the depth-16 target task of issue 13 instead of the sweep (m = 20 000,
16 x 5 000 gates, last level as outputs, ``stream`` only unless ``--with-circuit``).

Usage::

    python benchmarks/stream_depth.py                  # depths 1..16, m = 2 000, 4 000 gates
    python benchmarks/stream_depth.py --features 1000 --gates 2000 --samples 500   # quick
    python benchmarks/stream_depth.py --target         # depth 16, m = 20 000, 80 000 gates
    python benchmarks/stream_depth.py --plot-only      # redraw the plot from the JSON
    python benchmarks/stream_depth.py --depths 1 2 3 4 5 6 7 8 9 10  # the sweep in two parts
    python benchmarks/stream_depth.py --depths 11 12 13 14 15 16 --merge
    python benchmarks/stream_depth.py --checked --constructions circuit   # as superpose.build

``--checked`` builds as ``superpose.build`` does (check, grow the widths on an error, never
fall back to the explicit network) and writes ``stream_depth_checked.json``; ``[x1.25]``
beside a neuron count is the width scale the check grew it to.

Prints a Markdown table, writes JSON to ``benchmarks/out/stream_depth.json`` (or
``stream_depth_target.json``) and the plot to ``docs/img/stream_depth.png``. Every timing is
printed with the 1-minute load average (the machine is shared).
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

ROOT = Path(__file__).resolve().parent.parent
OUT = ROOT / "benchmarks" / "out"
PLOT = ROOT / "docs" / "img" / "stream_depth.png"
COLORS = {"stream": "tab:blue", "circuit": "tab:orange"}


def _load() -> float:
    return round(os.getloadavg()[0], 2)


def _task(features: int, gates: int, depth: int, seed: int, outputs: str) -> Any:
    from superpose import families
    from superpose.seeds import Seeds

    return families.layered_circuit(
        features,
        gates // depth,
        depth,
        Seeds(seed).rng("task"),
        ops=("and", "or", "xor"),
        input_fraction=0.2,
        sparsity=2,
        outputs=outputs,
    )


MODES = ("random", "targeted")


def _one(
    task: Any,
    name: str,
    samples: int,
    seed: int,
    checked: bool = False,
    params: dict[str, Any] | None = None,
    levels: bool = False,
    modes: tuple[str, ...] = ("random", "targeted"),
) -> dict[str, Any]:
    import superpose
    from superpose import verify
    from superpose.constructions import build
    from superpose.seeds import Seeds

    t0, load = time.perf_counter(), _load()
    try:
        if checked:  # the user-facing build: check, grow until the check passes, no fallback
            net = superpose.build(task, name, seed=seed, fallback=False, **(params or {}))
        else:
            net = build(task, name, seed=seed, **(params or {}))
    except Exception as exc:  # a refusal is a result of the sweep, not a crash
        return {"construction": name, "refused": str(exc)}
    row: dict[str, Any] = {
        "construction": name,
        "build_seconds": round(time.perf_counter() - t0, 2),
        "build_load": load,
        "params": dict(params or {}),
    }
    if checked:
        chk = net.extras.get("check", {})
        row["check"] = {k: chk.get(k) for k in ("kind", "passed", "inputs_checked")}
        row["width_scale"] = float(net.params.get("width_scale", 1.0))
    if name == "stream":
        res = net.extras["residual"]
        row["neurons"] = int(res["neurons"])
        row["stream_width"] = int(res["stream_width"])
        row["hidden_units"] = int(res["hidden_units"])
        row["nonzero_parameters"] = int(res["nonzero_parameters"])
        row["units"] = net.extras.get("units", "pool")
        row["ell"] = int(net.extras["ell"])
        row["failure_target"] = float(net.extras["failure_target"])
        if "predicted_errors" in net.extras:
            row["predicted_errors"] = [float(x) for x in net.extras["predicted_errors"]]
            row["predicted_output_errors"] = float(net.extras["predicted_output_errors"])
        # Every block in order (clean-ups included) with the plan's predicted false reads.
        row["blocks"] = [
            {
                "kind": b.get("kind", "block"),
                "level": int(b["level"]),
                "hidden_units": int(b["hidden_units"]),
                "predicted_error": b.get("predicted_error"),
            }
            for b in res["blocks"]
        ]
        row["cleanups"] = net.extras.get("cleanups", [])
        if "error_without_cleanup" in net.extras:
            row["error_without_cleanup"] = float(net.extras["error_without_cleanup"])
    else:
        counts = net.counts()
        row["neurons"] = int(counts["neurons"])
        row["nonzero_parameters"] = int(counts["nonzero_parameters"])
    rng = Seeds(seed).rng("verify")
    for mode in modes:
        t0, load = time.perf_counter(), _load()
        rep = verify(net, mode, samples, rng)
        row[mode] = {
            "inputs": rep.inputs_checked,
            "inputs_with_error": rep.inputs_with_error,
            "false_positives": rep.false_positives,
            "false_negatives": rep.false_negatives,
            "error_rate_upper_95": rep.error_rate_upper_95,
            "seconds": round(time.perf_counter() - t0, 2),
            "load": load,
        }
    if name == "stream" and levels:
        # Per level, measured: inputs on which a gate whose code the block completes decodes
        # wrong after it (verify --levels), on fresh random + targeted inputs.
        from superpose.stage_check import stream_level_report

        lrng = Seeds(seed).rng("levels")
        t0, load = time.perf_counter(), _load()
        wrong: list[int] = []
        checked = 0
        for mode in ("random", "targeted"):
            rep = stream_level_report(net, mode, samples, lrng)
            checked += rep.inputs_checked
            got = [int(r["wrong_end_to_end"]) for r in rep.stages]
            wrong = got if not wrong else [a + b for a, b in zip(wrong, got, strict=True)]
        row["levels"] = {
            "inputs": checked,
            "wrong_per_level": wrong,
            "seconds": round(time.perf_counter() - t0, 2),
            "load": load,
        }
    return row


def _errors(r: dict[str, Any]) -> str:
    if r.get("refused") == "not run":
        return "–"
    if "refused" in r:
        return "refused"
    # random + targeted ("–" for a mode not run: --modes random)
    return " + ".join(str(r[m]["inputs_with_error"]) if m in r else "–" for m in MODES)


def _neurons(r: dict[str, Any]) -> str:
    if "refused" in r:
        return "–"
    grown = f" [x{r['width_scale']:g}]" if r.get("width_scale", 1.0) != 1.0 else ""
    if "stream_width" in r:
        cl = r.get("cleanups") or []
        after = f" [clean-up after {', '.join(str(c['after_level']) for c in cl)}]" if cl else ""
        return f"{r['neurons']:,} ({r['stream_width']:,} + {r['hidden_units']:,}){grown}{after}"
    return f"{r['neurons']:,}{grown}"


def _predicted(st: dict[str, Any]) -> str:
    """The plan's predicted false reads: all blocks + the output read (max of one block)."""
    if "predicted_errors" not in st:
        return "–"
    per = st["predicted_errors"] + [c["predicted_error"] for c in st.get("cleanups", [])]
    total = sum(per) + st["predicted_output_errors"]
    return f"{total:.1e} ({max(per, default=0.0):.1e})"


def _measured_levels(st: dict[str, Any]) -> str:
    lv = st.get("levels")
    if not lv:
        return "–"
    return f"{sum(1 for w in lv['wrong_per_level'] if w)} of {len(lv['wrong_per_level'])}"


def table(rows: list[dict[str, Any]]) -> str:
    head = (
        "| depth | gates per level | m + gates | stream units, ell | stream neurons (d + hidden) "
        "| stream errors | predicted (max block) | levels with a wrong gate "
        "| circuit neurons | circuit errors | build s stream / circuit (load) |\n"
        "|---|---|---|---|---|---|---|---|---|---|---|\n"
    )
    lines = []
    for r in rows:
        st = r.get("stream", {"refused": "not run"})
        ci = r.get("circuit", {"refused": "not run"})
        secs = f"{st.get('build_seconds', '–')} / {ci.get('build_seconds', '–')}"
        units = f"{st['units']}, {st['ell']}" if "units" in st else "–"
        lines.append(
            f"| {r['depth']} | {r['gates_per_level']:,} | {r['m_plus_gates']:,} | {units} "
            f"| {_neurons(st)} | {_errors(st)} | {_predicted(st)} | {_measured_levels(st)} "
            f"| {_neurons(ci)} | {_errors(ci)} | {secs} ({st.get('build_load', '–')}) |"
        )
    return head + "\n".join(lines)


def level_table(row: dict[str, Any]) -> str:
    """Per level of one depth: the plan's predicted false reads beside the measured wrong
    inputs (verify --levels on random + targeted inputs)."""
    st = row.get("stream", {})
    per = st.get("predicted_errors")
    if not per:
        return ""
    lv = st.get("levels", {})
    blocks = st.get("blocks") or [
        {"kind": "block", "level": i, "predicted_error": p} for i, p in enumerate(per, start=1)
    ]
    wrong = lv.get("wrong_per_level", [None] * len(blocks))
    n = lv.get("inputs", 0)
    lines = [
        f"Depth {row['depth']}: per level, predicted false reads (plan) vs measured "
        f"(inputs with a wrong gate after its block, of {n:,}); failure target "
        f"{st['failure_target']:.0e}",
        "",
        "| level | predicted | measured |",
        "|---|---|---|",
    ]
    for b, w in zip(blocks, wrong, strict=True):
        name = f"clean-up after {b['level']}" if b["kind"] == "cleanup" else str(b["level"])
        lines.append(f"| {name} | {b['predicted_error']:.1e} | {'–' if w is None else w} |")
    lines.append(f"| output read | {st['predicted_output_errors']:.1e} | {_errors(st)} |")
    return "\n".join(lines)


def plot(rows: list[dict[str, Any]], path: Path) -> None:
    import numpy as np

    from superpose._numeric import pyplot

    plt = pyplot()
    depths = [r["depth"] for r in rows]
    fig, (ax1, ax2) = plt.subplots(1, 2, figsize=(10, 4))
    for name, marker in (("stream", "o-"), ("circuit", "s-")):
        ax1.plot(
            depths,
            [r[name].get("neurons", np.nan) if name in r else np.nan for r in rows],
            marker,
            color=COLORS[name],
            label=name,
        )
    ax1.plot(depths, [r["m_plus_gates"] for r in rows], ":", color="gray", label="m + gates")
    ax1.set_xlabel("depth (levels)")
    ax1.set_ylabel("neurons")
    ax1.set_title(f"neurons vs depth ({rows[0]['gates']:,} gates, m = {rows[0]['features']:,})")
    ax1.legend()
    for name, marker in (("stream", "o-"), ("circuit", "s-")):
        rates = []
        for r in rows:
            c = r.get(name, {})
            if "random" not in c:
                rates.append(np.nan)
                continue
            bad = c["random"]["inputs_with_error"] + c["targeted"]["inputs_with_error"]
            rates.append(bad / (c["random"]["inputs"] + c["targeted"]["inputs"]))
        ax2.plot(depths, rates, marker, color=COLORS[name], label=f"{name}: measured")
        if name == "stream":
            pred = [
                sum(r[name]["predicted_errors"]) + r[name]["predicted_output_errors"]
                if "predicted_errors" in r.get(name, {})
                else np.nan
                for r in rows
            ]
            ax2.plot(depths, pred, ":", color=COLORS[name], label="stream: predicted (plan, bound)")
    ax2.set_yscale("symlog", linthresh=1e-4)
    ax2.set_ylim(bottom=0)
    ax2.set_xlabel("depth (levels)")
    ax2.set_ylabel("fraction of inputs with a wrong output")
    ax2.set_title("error vs depth (random + targeted inputs)")
    ax2.legend(fontsize=8)
    fig.tight_layout()
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, dpi=110)
    plt.close(fig)


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--features", type=int, default=2_000)
    p.add_argument("--gates", type=int, default=4_000, help="total gates (split over levels)")
    p.add_argument("--depths", type=int, nargs="+", default=list(range(1, 17)))
    p.add_argument("--outputs", default="last", choices=["last", "all"])
    p.add_argument("--samples", type=int, default=5_000, help="random and targeted (each)")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--target", action="store_true", help="the depth-16 target task only")
    p.add_argument("--with-circuit", action="store_true", help="--target: also build circuit")
    p.add_argument("--plot-only", action="store_true")
    p.add_argument(
        "--cleanup",
        default=None,
        help="stream clean-up placement: auto (the default), none, or levels like 4,9",
    )
    p.add_argument("--tag", default="", help="suffix of the JSON name (keep runs apart)")
    p.add_argument(
        "--checked",
        action="store_true",
        help="build as superpose.build does (check, grow on error, no fallback) instead of raw",
    )
    p.add_argument("--constructions", nargs="+", default=["stream", "circuit"])
    p.add_argument(
        "--modes",
        nargs="+",
        default=list(MODES),
        choices=MODES,
        help="verification inputs (random alone where targeted tracing is too slow)",
    )
    p.add_argument(
        "--no-levels",
        action="store_true",
        help="skip the per-level check of stream (verify --levels on the same sample sizes)",
    )
    p.add_argument(
        "--merge",
        action="store_true",
        help="keep the rows of other depths already in the JSON (run the sweep in parts)",
    )
    p.add_argument(
        "--max-active",
        type=int,
        default=None,
        help="max_active for both constructions (default: theirs, 256)",
    )
    args = p.parse_args(argv)
    OUT.mkdir(parents=True, exist_ok=True)
    if args.target:
        args.features, args.gates, args.depths = 20_000, 80_000, [16]
    name = "stream_depth_target" if args.target else "stream_depth"
    name += f"_{args.tag}" if args.tag else ""
    name += "_checked.json" if args.checked else ".json"
    if args.plot_only:
        rows = json.loads((OUT / name).read_text())["rows"]
        if not args.target and not args.checked and not args.tag:
            plot(rows, PLOT)
        print(table(rows))
        print()
        print(level_table(rows[-1]))
        return 0
    names = tuple(args.constructions)
    if args.target and not args.with_circuit:
        names = ("stream",)
    rows = []
    if args.merge and (OUT / name).exists():
        rows = [
            r for r in json.loads((OUT / name).read_text())["rows"] if r["depth"] not in args.depths
        ]
    for depth in args.depths:
        task = _task(args.features, args.gates, depth, args.seed, args.outputs)
        row: dict[str, Any] = {
            "depth": depth,
            "features": task.features,
            "gates": task.n_gates,
            "gates_per_level": task.n_gates // depth,
            "outputs": task.n_outputs,
            "m_plus_gates": task.features + task.n_gates,
        }
        for con in names:
            extra = {} if args.max_active is None else {"max_active": args.max_active}
            if con == "stream" and args.cleanup is not None:
                cl = args.cleanup
                extra["cleanup"] = cl if cl in ("auto", "none") else [int(k) for k in cl.split(",")]
            levels = con == "stream" and not args.no_levels
            row[con] = _one(
                task, con, args.samples, args.seed, args.checked, extra, levels, tuple(args.modes)
            )
            print(
                json.dumps({"depth": depth, con: _neurons(row[con]), "errors": _errors(row[con])}),
                flush=True,
            )
        rows.append(row)
        rows.sort(key=lambda r: r["depth"])
        (OUT / name).write_text(json.dumps({"args": vars(args), "rows": rows}, indent=1))
    if not args.target and not args.checked and not args.tag:
        plot(rows, PLOT)
    print(table(rows))
    print()
    print(level_table(rows[-1]))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
