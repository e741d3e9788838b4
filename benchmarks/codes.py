"""Issue 15 ideas at s = 2: one row per idea, widths at m' = 1e3, 1e4, 1e5 (uniform 2-AND, m = m').

Each idea is a ``superposed`` build at a fixed width: the default width rule
(:func:`superpose.constructions.params.repair_params`) times a per-idea scale found by hand
(the smallest we measured to certify; a scale that fails is reported as failing, not
dropped). Every row is checked three ways: the build's s = 2 repair record
(``certified_s2``), the exact certificate (:func:`superpose.certificate.certify`, every
<= 2-sparse input) and ``--samples`` random + ``--samples`` targeted inputs.

Usage::

    python benchmarks/codes.py                          # m' = 1e3, 1e4, 1e5
    python benchmarks/codes.py --sizes 1e3,1e4          # quick

Prints a Markdown table (for the README) and writes ``benchmarks/out/codes.json``.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import time
from pathlib import Path
from typing import Any

for _var in ("OPENBLAS_NUM_THREADS", "OMP_NUM_THREADS", "MKL_NUM_THREADS"):
    os.environ.setdefault(_var, "1")

import numpy as np  # noqa: E402

OUT = Path(__file__).resolve().parent / "out" / "codes.json"

# (name, construction parameters, width scale on the default rule, ell_out override)
IDEAS: list[tuple[str, dict[str, Any], float]] = [
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
]


def _log(msg: str) -> None:
    print(msg, file=sys.stderr, flush=True)


def _task(m: int, seed: int) -> Any:
    from superpose.families import pairs

    rng = np.random.default_rng(np.random.SeedSequence([seed, m, m, 2]))
    return pairs(m, m, rng, sparsity=2)


def run_one(name: str, params: dict[str, Any], scale: float, m: int, args: Any) -> dict[str, Any]:
    from superpose import bounds
    from superpose.certificate import certify
    from superpose.constructions.params import repair_params
    from superpose.constructions.superposed import Superposed
    from superpose.seeds import Seeds
    from superpose.verification import verify

    task = _task(m, args.seed)
    rule = repair_params(task)
    n = max(4 * rule.ell, round(rule.n_in * scale))
    ell = int(params.pop("ell", rule.ell))
    ell_out = int(params.pop("ell_out", rule.ell_out))
    seeds = Seeds(args.seed)
    t0 = time.perf_counter()
    net = Superposed(ell=ell, ell_out=ell_out, n_in=n, n_out=n, **params).build(
        task, seeds.rng("build")
    )
    build_s = time.perf_counter() - t0
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
    head = "| idea | " + " | ".join(f"m' = {m:.0e}".replace("+0", "") for m in sizes)
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
    return head + "\n".join(lines) + "\n"


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--sizes", default="1e3,1e4,1e5")
    ap.add_argument("--samples", type=int, default=10_000)
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--ideas", default="", help="comma-separated row numbers (0-based)")
    ap.add_argument("--out", type=Path, default=OUT)
    args = ap.parse_args(argv)
    sizes = [int(float(x)) for x in args.sizes.split(",") if x.strip()]
    pick = [int(x) for x in args.ideas.split(",") if x.strip()] or list(range(len(IDEAS)))
    rows = []
    for m in sizes:
        for i in pick:
            name, params, scale = IDEAS[i]
            rows.append(run_one(name, dict(params), scale, m, args))
            args.out.parent.mkdir(parents=True, exist_ok=True)
            args.out.write_text(json.dumps({"rows": rows}, indent=1))
    print(markdown(rows, sizes))
    return 0


if __name__ == "__main__":
    sys.exit(main())
