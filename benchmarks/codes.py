"""Issue 15 ideas at s = 2: one row per idea, widths at m' = 1e3, 1e4, 1e5 (uniform 2-AND, m = m').

Each idea is a ``superposed`` build at a fixed width: the default width rule
(:func:`superpose.constructions.params.repair_params`) times a per-idea scale found by hand
(the smallest we measured to certify; a scale that fails is reported as failing, not
dropped). Every row is checked three ways: the build's s = 2 repair record
(``certified_s2``), the exact certificate (:func:`superpose.certificate.certify`, every
<= 2-sparse input) and ``--samples`` random + ``--samples`` targeted inputs.

Rows with scale None use the design's own width rule
(``repair_params(task, design)``, nothing given by hand); rows 10-11 move every output
threshold by one bit after the build; rows 12-15 use a skewed (zipf) task. Ideas not built
are listed with the reason (``NOT_BUILT``).

Usage::

    python benchmarks/codes.py                          # m' = 1e3, 1e4, 1e5 (every row)
    python benchmarks/codes.py --sizes 1e3,1e4          # quick
    python benchmarks/codes.py --sizes 1e5 --ideas 7,8,9 --merge benchmarks/results/codes.json

Prints a Markdown table (for the README) and writes ``benchmarks/out/codes.json``.
"""

from __future__ import annotations

import json
import os
import sys
import time
from pathlib import Path
from typing import Any

for _var in ("OPENBLAS_NUM_THREADS", "OMP_NUM_THREADS", "MKL_NUM_THREADS"):
    os.environ.setdefault(_var, "1")

import numpy as np  # noqa: E402

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _table import log as _log  # noqa: E402
from _table import picks, size_header, size_parser  # noqa: E402
from _table import sizes as parse_sizes  # noqa: E402

OUT = Path(__file__).resolve().parent / "out" / "codes.json"


def _shift_thresholds(delta: int) -> Any:
    """A benchmark-only variant: every output unit's threshold moved by ``delta`` bits."""

    def tweak(net: Any) -> None:
        layer = net.layers[0]
        layer.bias = (np.asarray(layer.bias) - delta).astype(np.asarray(layer.bias).dtype)

    return tweak


# (name, construction parameters, width scale on the default rule; None: the design's own
# width rule, repair_params(task, design), nothing given by hand)
IDEAS: list[tuple[str, dict[str, Any], float | None]] = [
    ("default (rule widths, random codes)", {}, 1.0),
    ("Reed-Solomon codes (overlap <= 1), same widths", {"code": "rs"}, 1.0),
    ("Reed-Solomon codes, 0.94 x", {"code": "rs", "repair_rounds": 40}, 0.94),
    ("more repair rounds (40), 0.94 x", {"repair_rounds": 40}, 0.94),
    (
        "certificate-driven repair (40 rounds), 0.90 x",
        {"repair_select": "certificate", "repair_rounds": 40},
        0.90,
    ),
    ("home units (l' = 6), 0.864 x", {"home": True, "ell_out": 6}, 0.864),
    (
        "home units + certificate-driven repair, 0.826 x",
        {"home": True, "ell_out": 6, "repair_select": "certificate", "repair_rounds": 40},
        0.826,
    ),
    # 7.. : the width rules of the winners (issue 15, item 7)
    (
        "RULE: certificate-driven repair (40 rounds)",
        {"repair_select": "certificate", "repair_rounds": 40},
        None,
    ),
    ("RULE: home units", {"home": True}, None),
    ("default build (home units where they pay)", {}, None),
    # 10.. : thresholds other than 2l (item 2), at the default rule's widths
    ("thresholds 2l - 1 (one bit of slack)", {"_tweak": _shift_thresholds(-1)}, 1.0),
    ("thresholds 2l + 1", {"_tweak": _shift_thresholds(+1)}, 1.0),
    # 12.. : a skewed task (zipf influence), each design's own rule (item 3)
    ("zipf task: default build (home units where they pay)", {"_influence": "zipf"}, None),
    (
        "zipf task: RULE certificate-driven repair (40 rounds)",
        {"_influence": "zipf", "repair_select": "certificate", "repair_rounds": 40},
        None,
    ),
    ("zipf task: RULE home units", {"_influence": "zipf", "home": True}, None),
    ("zipf task: random layout rule (home off)", {"_influence": "zipf", "home": False}, None),
]


NOT_BUILT = [
    (
        "signed (inhibitory) weights",
        "not built: at s = 2 with threshold 2l a unit misfires only when both active codes lie "
        "inside its read set, so a negative weight outside it never sees an active bit and one "
        "inside it breaks the gate that put the bit there (README)",
    ),
    (
        "per-feature code lengths by influence",
        "not built: the repair and its s = 2 certificate take one code length; on the zipf "
        "task the widest layer is the output layer (heavy features' blocks, the zipf rows), "
        "which input code lengths do not touch, and the load model favours longer codes for "
        "light features (load l' l_p d_p), the opposite of the idea (README)",
    ),
]


def _task(m: int, seed: int, influence: str = "uniform") -> Any:
    from superpose.families import pairs

    rng = np.random.default_rng(np.random.SeedSequence([seed, m, m, 2]))
    return pairs(m, m, rng, sparsity=2, influence=influence)


def run_one(name: str, params: dict[str, Any], scale: float, m: int, args: Any) -> dict[str, Any]:
    from superpose import bounds
    from superpose.certificate import certify
    from superpose.constructions.params import repair_params
    from superpose.constructions.superposed import Superposed
    from superpose.seeds import Seeds
    from superpose.verification import verify

    tweak = params.pop("_tweak", None)
    influence = params.pop("_influence", "uniform")
    task = _task(m, args.seed, influence)
    seeds = Seeds(args.seed)
    t0 = time.perf_counter()
    if scale is None:
        # The design's own width rule: nothing given by hand.
        con = Superposed(**params)
        rule = repair_params(task, con._design(task))
        net = con.build(task, seeds.rng("build"))
        res = net.extras["resolved"]
        ell, ell_out = int(res["ell"]), int(res["ell_out"])
    else:
        rule = repair_params(task)
        n = max(4 * rule.ell, round(rule.n_in * scale))
        ell = int(params.pop("ell", rule.ell))
        ell_out = int(params.pop("ell_out", rule.ell_out))
        net = Superposed(ell=ell, ell_out=ell_out, n_in=n, n_out=n, **params).build(
            task, seeds.rng("build")
        )
    build_s = time.perf_counter() - t0
    if tweak is not None:
        tweak(net)
    rep = net.extras.get("repair", {})
    t0 = time.perf_counter()
    cert = certify(net, 2)
    cert_s = time.perf_counter() - t0
    vrng = seeds.rng("verify")
    rnd = verify(net, "random", args.samples, vrng)
    tgt = verify(net, "targeted", args.samples, vrng)
    fam = bounds.family_of_task(task)
    counting = bounds.neurons_lower_bound(bounds.bits_lower_bound(fam), layers=1)
    saware = int(bounds.tightness(net).get("s_aware_binary_layer_width_lower_bound", 0))
    widest = max(net.layers[0].n_in, net.layers[0].n_out)
    row = {
        "idea": name,
        "m": m,
        "ell": ell,
        "ell_out": ell_out,
        "scale": scale,
        "widths": [int(net.layers[0].n_in), int(net.layers[0].n_out)],
        "widest": int(widest),
        "counting_bound": int(counting),
        "s_aware_bound": saware,
        "ratio_counting": widest / counting,
        "ratio_s_aware": widest / max(saware, 1),
        "repair_rounds": [r["vulnerable"] for r in rep.get("rounds", [])],
        "rule": rule.as_dict(),
        "predicted_share": float(rule.predicted_failure) if scale is None else None,
        "measured_share": (rep["rounds"][0]["vulnerable"] / task.n_gates)
        if rep.get("rounds")
        else None,
        "certified_s2": bool(rep.get("certified_s2", False)),
        "certificate": {
            "passed": bool(cert.passed),
            "complete": bool(cert.complete),
            "inputs": int(cert.inputs_covered),
            "inputs_with_error": int(cert.inputs_with_error),
        },
        "random_wrong": int(rnd.inputs_with_error),
        "targeted_wrong": int(tgt.inputs_with_error),
        "samples": args.samples,
        "build_s": round(build_s, 1),
        "certificate_s": round(cert_s, 1),
    }
    _log(json.dumps({k: row[k] for k in ("idea", "m", "widths", "certified_s2", "build_s")}))
    _log(f"  certificate {row['certificate']}, wrong {row['random_wrong']}/{row['targeted_wrong']}")
    return row


def markdown(rows: list[dict[str, Any]], sizes: list[int]) -> str:
    head = size_header("idea", sizes)
    head += " | check (all sizes) | wrong: certificate / random / targeted |\n"
    head += "|---|" + "---|" * len(sizes) + "---|---|\n"
    lines = []
    for idea in dict.fromkeys(r["idea"] for r in rows):
        cells, checks, wrong = [], [], []
        for m in sizes:
            r = next((x for x in rows if x["idea"] == idea and x["m"] == m), None)
            if r is None:
                cells.append("—")
                continue
            cells.append(
                f"{r['widest']} ({r['ratio_counting']:.2f}× counting, "
                f"{r['ratio_s_aware']:.0f}× s-aware)"
            )
            checks.append("exact pass" if r["certificate"]["passed"] else "exact FAIL")
            wrong.append(
                f"{r['certificate']['inputs_with_error']} / {r['random_wrong']} / "
                f"{r['targeted_wrong']}"
            )
        lines.append(
            f"| {idea} | "
            + " | ".join(cells)
            + f" | {', '.join(checks)} | "
            + "; ".join(wrong)
            + " |"
        )
    for idea, why in NOT_BUILT:
        lines.append(f"| {idea} | " + " | ".join("—" for _ in sizes) + f" | {why} | — |")
    return head + "\n".join(lines) + "\n"


def main(argv: list[str] | None = None) -> int:
    ap = size_parser(__doc__.split("\n\n")[0])
    ap.add_argument("--ideas", default="", help="comma-separated row numbers (0-based)")
    ap.add_argument("--out", type=Path, default=OUT)
    ap.add_argument(
        "--merge",
        type=Path,
        default=None,
        help="an earlier codes.json: its rows are kept unless this run measures the same (idea, m)",
    )
    ap.add_argument("--table-only", action="store_true", help="print the table of --merge")
    args = ap.parse_args(argv)
    sizes = parse_sizes(args.sizes)
    pick = picks(args.ideas, len(IDEAS))
    rows: list[dict[str, Any]] = []
    if args.merge is not None:
        rows = json.loads(args.merge.read_text())["rows"]
    if args.table_only:
        order = [name for name, _, _ in IDEAS]
        rows.sort(key=lambda r: order.index(r["idea"]) if r["idea"] in order else len(order))
        print(markdown(rows, sorted({int(r["m"]) for r in rows})))
        return 0
    for m in sizes:
        for i in pick:
            name, params, scale = IDEAS[i]
            row = run_one(name, dict(params), scale, m, args)
            rows = [r for r in rows if (r["idea"], r["m"]) != (name, m)] + [row]
            args.out.parent.mkdir(parents=True, exist_ok=True)
            args.out.write_text(json.dumps({"rows": rows}, indent=1))
    order = [name for name, _, _ in IDEAS]
    rows.sort(key=lambda r: order.index(r["idea"]) if r["idea"] in order else len(order))
    args.out.write_text(json.dumps({"rows": rows}, indent=1))
    print(markdown(rows, sorted({int(r["m"]) for r in rows})))
    return 0


if __name__ == "__main__":
    sys.exit(main())
