"""Issue 15 at s = 3: uniform 2-AND widths against the rule's own prediction of wrong gates.

At s = 3 a 2-AND gate (a, c) with only a present misfires when two other active features
put l more bits into every one of its l' units' read sets. The default width rule
(:func:`superpose.constructions.params.auto_params`) keeps the union bound over all C(m, 2)
distractor pairs below ``ADVERSARIAL_TARGET`` = 1e-5 *per gate*
(:func:`superpose.constructions.params.adversarial_risk`), i.e. m' x 1e-5 expected open
gates in the whole layer. Each row here relaxes that budget: the smallest equal width n
(minimised over l in 4..14, l' in 3..10) at which the rule predicts at most ``budget``
open gates in all (m' x risk), then builds at that width and measures: the exact s = 3
certificate (:func:`superpose.certificate.certify`, every <= 3-sparse input) where it runs
(``--certificate-max``), and ``--samples`` random + ``--samples`` targeted inputs. The
certificate names the wrong outputs; ``superpose build`` patches such outputs with one
private unit each (:mod:`superpose.constructions.patch`), so "patched" = n + wrong outputs
(re-certified after patching where the certificate runs).

Usage::

    python benchmarks/s3.py                       # m' = 1e3, 1e4, 1e5
    python benchmarks/s3.py --sizes 1e3,1e4       # quick

Prints a Markdown table (for the README) and writes ``benchmarks/out/s3.json``.
"""

from __future__ import annotations

import json
import math
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

OUT = Path(__file__).resolve().parent / "out" / "s3.json"

# (row name, total predicted open gates in the layer as a multiple of m'; None = default rule)
DESIGNS: list[tuple[str, float | None]] = [
    ("default rule (1e-5 per gate)", None),
    ("rule at 1e-4 per gate + patch", 1e-4),
    ("rule at 1e-3 per gate + patch", 1e-3),
    ("rule at 1e-2 per gate + patch", 1e-2),
]


def _task(m: int, seed: int) -> Any:
    from superpose.families import pairs

    rng = np.random.default_rng(np.random.SeedSequence([seed, m, m, 3]))
    return pairs(m, m, rng, sparsity=3)


def predicted_open(n: int, ell: int, ell_out: int, m: int, gates: int) -> float:
    """The rule's expected number of gates some <= 3-sparse input fools, at equal widths n."""
    from superpose.constructions.params import adversarial_risk

    load = 2.0 * ell * ell_out * gates
    f = -math.expm1(-load / (n * n))
    return gates * adversarial_risk(f, ell, ell_out, 2, 3, m, n, 2.0 * gates / m, n)


def rule_width(m: int, gates: int, per_gate: float) -> tuple[int, int, int]:
    """(n, l, l'): the smallest equal width whose predicted open gates are <= per_gate x m'."""
    best: tuple[int, int, int] | None = None
    for ell in range(4, 15):
        for ell_out in range(3, 11):
            lo, hi = 4 * ell, 60 * int(math.sqrt(gates)) + 100
            if predicted_open(hi, ell, ell_out, m, gates) > per_gate * gates:
                continue
            while lo < hi:
                mid = (lo + hi) // 2
                if predicted_open(mid, ell, ell_out, m, gates) <= per_gate * gates:
                    hi = mid
                else:
                    lo = mid + 1
            if best is None or lo < best[0]:
                best = (lo, ell, ell_out)
    assert best is not None
    return best


def run_one(name: str, per_gate: float | None, m: int, args: Any) -> dict[str, Any]:
    from superpose import bounds
    from superpose.certificate import certify
    from superpose.constructions.params import auto_params
    from superpose.constructions.patch import patch_outputs
    from superpose.constructions.superposed import Superposed
    from superpose.seeds import Seeds
    from superpose.verification import verify

    task = _task(m, args.seed)
    if per_gate is None:
        auto = auto_params(task)
        n, ell, ell_out = auto.n_in, auto.ell, auto.ell_out
    else:
        n, ell, ell_out = rule_width(m, task.n_gates, per_gate)
    predicted = predicted_open(n, ell, ell_out, m, task.n_gates)
    seeds = Seeds(args.seed)
    t0 = time.perf_counter()
    net = Superposed(ell=ell, ell_out=ell_out, n_in=n, n_out=n).build(task, seeds.rng("build"))
    build_s = time.perf_counter() - t0
    row: dict[str, Any] = {
        "design": name,
        "per_gate": per_gate,
        "m": m,
        "n": n,
        "ell": ell,
        "ell_out": ell_out,
        "predicted_open": predicted,
        "build_s": round(build_s, 1),
    }
    fam = bounds.family_of_task(task)
    row["counting_bound"] = int(bounds.neurons_lower_bound(bounds.bits_lower_bound(fam), layers=1))
    if m <= args.certificate_max:
        t0 = time.perf_counter()
        cert = certify(net, 3)
        row["certificate_s"] = round(time.perf_counter() - t0, 1)
        wrong = np.asarray(cert.wrong_outputs, dtype=np.int64)
        row["certificate"] = {"complete": bool(cert.complete), "wrong_outputs": int(len(wrong))}
        if len(wrong):
            patched = patch_outputs(net, wrong)
            again = certify(patched, 3)
            row["patched_widths"] = [int(patched.layers[0].n_in), int(patched.layers[0].n_out)]
            row["patched_certificate"] = {
                "complete": bool(again.complete),
                "wrong_outputs": int(len(again.wrong_outputs)),
            }
            net = patched  # the network `superpose build` would deliver
    vrng = seeds.rng("verify")
    row["random_wrong"] = int(verify(net, "random", args.samples, vrng).inputs_with_error)
    row["targeted_wrong"] = int(verify(net, "targeted", args.samples, vrng).inputs_with_error)
    row["samples"] = args.samples
    _log(json.dumps(row))
    return row


def markdown(rows: list[dict[str, Any]], sizes: list[int]) -> str:
    head = size_header("design", sizes)
    head += " | check: wrong outputs by certificate (→ after patch) / random / targeted |\n"
    head += "|---|" + "---|" * len(sizes) + "---|\n"
    lines = []
    for name in dict.fromkeys(r["design"] for r in rows):
        cells, checks = [], []
        for m in sizes:
            r = next((x for x in rows if x["design"] == name and x["m"] == m), None)
            if r is None:
                cells.append("—")
                checks.append("—")
                continue
            widest = max(r.get("patched_widths", [r["n"], r["n"]]))
            cell = f"{r['n']}"
            if "patched_widths" in r:
                cell += f" → {widest} patched"
            cell += (
                f" ({widest / r['counting_bound']:.2f}×; l={r['ell']}, l'={r['ell_out']}; "
                f"predicted open {r['predicted_open']:.3g})"
            )
            cells.append(cell)
            if "certificate" in r:
                c = f"exact {r['certificate']['wrong_outputs']}"
                if "patched_certificate" in r:
                    c += f" → {r['patched_certificate']['wrong_outputs']}"
            else:
                c = "sampled"
            checks.append(f"{c} / {r['random_wrong']} / {r['targeted_wrong']}")
        lines.append(f"| {name} | " + " | ".join(cells) + " | " + "; ".join(checks) + " |")
    return head + "\n".join(lines) + "\n"


def main(argv: list[str] | None = None) -> int:
    ap = size_parser(__doc__.split("\n\n")[0])
    ap.add_argument("--designs", default="", help="comma-separated row numbers (0-based)")
    ap.add_argument(
        "--certificate-max", type=int, default=10_000, help="largest m' to certify exactly"
    )
    ap.add_argument("--out", type=Path, default=OUT)
    args = ap.parse_args(argv)
    sizes = parse_sizes(args.sizes)
    pick = picks(args.designs, len(DESIGNS))
    old = json.loads(args.out.read_text())["rows"] if args.out.exists() else []
    names = {DESIGNS[i][0] for i in pick}
    rows = [r for r in old if r["m"] not in sizes or r["design"] not in names]
    for m in sizes:
        for i in pick:
            name, per_gate = DESIGNS[i]
            rows.append(run_one(name, per_gate, m, args))
            args.out.parent.mkdir(parents=True, exist_ok=True)
            args.out.write_text(json.dumps({"rows": rows}, indent=1))
    order = {name: i for i, (name, _) in enumerate(DESIGNS)}
    rows.sort(key=lambda r: (r["m"], order.get(r["design"], len(order))))
    args.out.write_text(json.dumps({"rows": rows}, indent=1))
    every = sorted({r["m"] for r in rows})
    print(markdown(rows, every))
    return 0


if __name__ == "__main__":
    sys.exit(main())
