"""Width against m' (1e3 ... 1e6) for each s = 2 design, beside the counting and s-aware bounds.

Reads the measured rows of ``benchmarks/codes.py`` (uniform 2-AND, m = m', s = 2; the
designs' own width rules, rows "default", "RULE: certificate-driven repair", "RULE: home
units") and the one-off m' = 1e6 run of this script, and draws the widest layer of each
design, its width rule's prediction at every m' (dashed), the 1-bit one-weight-layer
counting bound (:mod:`superpose.bounds`) and the s-aware 0/1-layer bound
(:mod:`superpose.sbound`).

Usage::

    python benchmarks/width_vs_m.py                 # plot from benchmarks/results/*.json
    python benchmarks/width_vs_m.py --run-1e6 home  # the m' = 1e6 row (one build, ~2 min)

``--run-1e6 DESIGN`` builds uniform 2-AND at m' = 1e6, s = 2 with DESIGN's rule (``default``:
the random layout of before issue 15, ``certificate`` or ``home``, which the default build
now takes at this size), times it, checks ``--samples`` random inputs (and the exact
certificate with ``--certify``) and writes ``benchmarks/out/width_1e6_DESIGN.json``; peak
RSS comes from the ``resource`` module. Writes ``docs/img/width_vs_m.png``.
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import sys
import time
from pathlib import Path
from typing import Any

for _var in ("OPENBLAS_NUM_THREADS", "OMP_NUM_THREADS", "MKL_NUM_THREADS"):
    os.environ.setdefault(_var, "1")

import numpy as np  # noqa: E402

HERE = Path(__file__).resolve().parent
RESULTS = HERE / "results"
OUT = HERE / "out"
PNG = HERE.parent / "docs" / "img" / "width_vs_m.png"

DESIGNS = {
    "default": ("default (rule widths, random codes)", {"home": False}),
    "certificate": (
        "RULE: certificate-driven repair (40 rounds)",
        {"repair_select": "certificate", "repair_rounds": 40},
    ),
    "home": ("RULE: home units", {"home": True}),
}
SIZES = [10**3, 10**4, 10**5, 10**6]
LABELS = {
    "default": "random layout (the default before)",
    "certificate": "certificate-driven repair",
    "home": "home units (the default from 1e4)",
}


def _log(msg: str) -> None:
    print(msg, file=sys.stderr, flush=True)


def bounds_at(m: int) -> tuple[int, int]:
    """(counting bound, s-aware bound) for uniform 2-AND with m = m' at s = 2."""
    from superpose import bounds
    from superpose.sbound import s_aware_family_report

    fam = bounds.make_family("and2", features=m, outputs=m)
    counting = bounds.neurons_lower_bound(bounds.bits_lower_bound(fam), layers=1)
    s_aware = s_aware_family_report(fam, 2)["s_aware_binary_layer_width_lower_bound"]
    return int(counting), int(s_aware or 0)


def _rule(m: int, design: str) -> Any:
    from superpose.constructions.params import repair_params
    from superpose.families import pairs

    return repair_params(pairs(m, m, np.random.default_rng(0)), design)


def rule_at(m: int, design: str) -> int:
    """The design's rule width at m' (the rule depends on m and m' only, not on the draw)."""
    return int(_rule(m, design).n_in)


def run_1e6(design: str, samples: int, certify_too: bool, seed: int) -> dict[str, Any]:
    from superpose.certificate import certify
    from superpose.constructions.superposed import Superposed
    from superpose.families import pairs
    from superpose.seeds import Seeds
    from superpose.verification import verify

    m = 10**6
    rng = np.random.default_rng(np.random.SeedSequence([seed, m, m, 2]))
    task = pairs(m, m, rng, sparsity=2)
    seeds = Seeds(seed)
    t0 = time.perf_counter()
    net = Superposed(**DESIGNS[design][1]).build(task, seeds.rng("build"))
    build_s = time.perf_counter() - t0
    rss_build = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 2**20
    rep = net.extras.get("repair", {})
    t0 = time.perf_counter()
    rnd = verify(net, "random", samples, seeds.rng("verify"))
    random_s = time.perf_counter() - t0
    row: dict[str, Any] = {
        "design": design,
        "m": m,
        "widths": [int(net.layers[0].n_in), int(net.layers[0].n_out)],
        "ell": int(net.extras["resolved"]["ell"]),
        "ell_out": int(net.extras["resolved"]["ell_out"]),
        "rule_width": rule_at(m, design),
        "predicted_share": _rule(m, design).predicted_failure,
        "build_s": round(build_s, 1),
        "peak_rss_gib_build": round(rss_build, 2),
        "repair_rounds": [r["vulnerable"] for r in rep.get("rounds", [])],
        "certified_s2": bool(rep.get("certified_s2", False)),
        "random_samples": samples,
        "random_wrong": int(rnd.inputs_with_error),
        "random_s": round(random_s, 1),
    }
    _log(json.dumps(row))
    if certify_too:
        t0 = time.perf_counter()
        cert = certify(net, 2, budget_seconds=600)
        row["certificate"] = {
            "passed": bool(cert.passed),
            "complete": bool(cert.complete),
            "inputs_with_error": int(cert.inputs_with_error),
            "seconds": round(time.perf_counter() - t0, 1),
        }
    row["peak_rss_gib"] = round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 2**20, 2)
    counting, s_aware = bounds_at(m)
    row.update({"counting_bound": counting, "s_aware_bound": s_aware})
    _log(json.dumps(row))
    return row


EARLIER = {("default", 10**6): 8887}
"""Measured before this benchmark: the random layout at m' = 1e6 (README, Results: 8887 per
layer, exact by repair and the certificate)."""


def measured(design: str) -> dict[int, int]:
    """m' -> widest layer measured for ``design`` (codes.json rows, 1e6 runs, ``EARLIER``)."""
    out: dict[int, int] = {m: w for (d, m), w in EARLIER.items() if d == design}
    path = RESULTS / "codes.json"
    if path.exists():
        name = DESIGNS[design][0]
        for r in json.loads(path.read_text())["rows"]:
            if r["idea"] == name and r["certificate"]["passed"]:
                out[int(r["m"])] = int(r["widest"])
    big = RESULTS / f"width_1e6_{design}.json"
    if big.exists():
        r = json.loads(big.read_text())
        if r.get("random_wrong", 1) == 0:
            out[int(r["m"])] = max(r["widths"])
    return out


def plot(png: Path) -> list[str]:
    from superpose._numeric import pyplot

    plt = pyplot()
    fig, ax = plt.subplots(figsize=(7, 4.5))
    lines = ["| m' | counting bound | s-aware bound | " + " | ".join(DESIGNS) + " |"]
    lines.append("|---|---|---|" + "---|" * len(DESIGNS))
    cb = [bounds_at(m) for m in SIZES]
    rules = {d: [rule_at(m, d) for m in SIZES] for d in DESIGNS}
    meas = {d: measured(d) for d in DESIGNS}
    for d, color in zip(DESIGNS, ("C0", "C1", "C2"), strict=True):
        xs = sorted(meas[d])
        ax.plot(SIZES, rules[d], "--", color=color, alpha=0.6, label=f"{LABELS[d]}: rule")
        if xs:
            ax.plot(xs, [meas[d][x] for x in xs], "o-", color=color, label=f"{LABELS[d]}: measured")
    ax.plot(SIZES, [c for c, _ in cb], "k-", label="counting bound (1 bit/weight)")
    ax.plot(SIZES, [1.5 * c for c, _ in cb], "k:", label="1.5 x counting (issue target)")
    ax.plot(SIZES, [s for _, s in cb], "k-.", label="s-aware 0/1-layer bound")
    ax.set_xscale("log")
    ax.set_yscale("log")
    ax.set_xlabel("m' = m (uniform 2-AND, s = 2)")
    ax.set_ylabel("widest layer (neurons)")
    ax.set_title("Width against m' per design (measured = exact certificate)")
    ax.legend(fontsize=7)
    fig.tight_layout()
    png.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(png, dpi=110)
    plt.close(fig)
    for m, (c, s) in zip(SIZES, cb, strict=True):
        cells = []
        for d in DESIGNS:
            got = meas[d].get(m)
            rule = rules[d][SIZES.index(m)]
            cells.append(f"{got if got else '—'} (rule {rule})")
        lines.append(f"| {m:.0e} | {c} | {s} | " + " | ".join(cells) + " |")
    return lines


RULE_ROWS = {
    "RULE: certificate-driven repair (40 rounds)": "certificate",
    "RULE: home units": "home",
    "default build (home units where they pay)": "default build",
}


def rule_table() -> list[str]:
    """The rules' predictions beside the measurements (codes.json rows and the 1e6 run)."""
    lines = [
        "| design | m′ | rule: ℓ, ℓ′, width | predicted share | measured share | repair rounds "
        "| exact certificate | build s |",
        "|---|---|---|---|---|---|---|---|",
    ]
    path = RESULTS / "codes.json"
    rows = json.loads(path.read_text())["rows"] if path.exists() else []
    for name, design in RULE_ROWS.items():
        for r in sorted((x for x in rows if x["idea"] == name), key=lambda x: x["m"]):
            cert = r["certificate"]
            verdict = "pass" if cert["passed"] else f"FAIL ({cert['inputs_with_error']} wrong)"
            rule = r["rule"]
            lines.append(
                f"| {design} | {r['m']:.0e} | {r['ell']}, {r['ell_out']}, {r['widest']} | "
                f"{100 * rule['predicted_failure']:.2f} % | {100 * r['measured_share']:.2f} % | "
                f"{len(r['repair_rounds']) - 1} | {verdict} ({cert['inputs']:.1e} inputs) | "
                f"{r['build_s']} |"
            )
    for design in DESIGNS:
        big = RESULTS / f"width_1e6_{design}.json"
        if not big.exists():
            continue
        r = json.loads(big.read_text())
        cert = r.get("certificate", {})
        verdict = ("pass" if cert.get("passed") else "FAIL") if cert else "not run"
        share = r["repair_rounds"][0] / r["m"] if r["repair_rounds"] else float("nan")
        lines.append(
            f"| {design} | 1e+06 | {r['ell']}, {r['ell_out']}, {max(r['widths'])} | "
            f"{100 * r.get('predicted_share', float('nan')):.2f} % | {100 * share:.2f} % | "
            f"{len(r['repair_rounds']) - 1} | {verdict} (5.0e+11 inputs) | {r['build_s']} |"
        )
    return lines


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--run-1e6", choices=list(DESIGNS), default=None)
    ap.add_argument("--samples", type=int, default=100_000)
    ap.add_argument("--certify", action="store_true")
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--png", type=Path, default=PNG)
    args = ap.parse_args(argv)
    if args.run_1e6:
        row = run_1e6(args.run_1e6, args.samples, args.certify, args.seed)
        OUT.mkdir(parents=True, exist_ok=True)
        (OUT / f"width_1e6_{args.run_1e6}.json").write_text(json.dumps(row, indent=1))
        return 0
    print("\n".join(plot(args.png)))
    print()
    print("\n".join(rule_table()))
    return 0


if __name__ == "__main__":
    sys.exit(main())
