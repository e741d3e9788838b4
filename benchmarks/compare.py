"""Regenerate the README comparison: every method on W1-W3, as Markdown, JSON and the W3 plot.

Usage (from the repository root; about 30 minutes on 2 cores for everything)::

    python benchmarks/compare.py                       # W1, W2, W3 -> benchmarks/results/
    python benchmarks/compare.py --workload W1         # one workload
    python benchmarks/compare.py --quick --out /tmp/c  # trimmed sizes, seconds
    python benchmarks/compare.py --published-w1        # W1 in Busch's protocol (Markdown)
    python benchmarks/compare.py --from-json benchmarks/results/compare.json  # redraw only

The same tables come from the CLI: ``superpose compare --workload all --markdown FILE
--plot FILE.png``. This script only adds timing and writes the three files together.
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

import numpy as np

from superpose.compare import (
    W1_WIDTHS,
    WorkloadResult,
    busch_class_errors,
    markdown,
    plot,
    run_workload,
)
from superpose.families import universal_and
from superpose.peers import UniversalAnd

# Busch, MSc thesis (AJB-ajb/SPNNArch, thesis.pdf), Fig. 21: 90% quantile of |error|, read by
# eye from a log plot (background/peers.md §7.1). Keys: (method, class) -> {width: value}.
PUBLISHED = {
    ("trained", "11"): {30: 0.7, 100: 0.7, 300: 0.4, 435: 0.22, 600: 0.10},
    ("trained", "01"): {435: 0.12},
    ("rademacher", "11"): {435: 0.67, 800: 0.48},
    ("rademacher", "00"): {435: 0.52, 800: 0.38},
    ("rademacher", "01"): {435: 0.6},
    ("gaussian", "11"): {435: 1.05, 800: 0.75},
    ("bernoulli", "11"): {435: 1.7, 800: 1.3},
}


def published_w1(seed: int, trained: bool, quick: bool) -> str:
    """W1 in Busch's protocol beside his published numbers, as a Markdown table."""
    task = universal_and(30, 5)
    widths = [30, 100, 435] if quick else W1_WIDTHS
    samples = 200 if quick else 1000
    found: dict[tuple[str, int], dict[str, dict[str, float]]] = {}
    for law in ("bernoulli", "rademacher", "gaussian"):
        for d in widths:
            net = UniversalAnd(law, d).build(task, np.random.default_rng([seed, 21, d]))
            found[(law, d)] = busch_class_errors(net, samples, np.random.default_rng([seed, 5, d]))
    if trained:
        from superpose.peers.trained import train_mlp

        nets = train_mlp(task, widths, steps=60 if quick else 600, seed=seed)
        for d, net in zip(widths, nets, strict=True):
            found[("trained", d)] = busch_class_errors(
                net, samples, np.random.default_rng([seed, 5, d])
            )
    lines = [
        "| method | d | q90 00 | q90 01 | q90 11 | mean err 00 | mean err 01 | mean err 11 |"
        " published q90 (Busch Fig. 21) |",
        "|---|---|---|---|---|---|---|---|---|",
    ]
    for (method, d), cls in found.items():
        pub = [
            f"{c}: ≈{PUBLISHED[(method, c)][d]}"
            for c in ("00", "01", "11")
            if d in PUBLISHED.get((method, c), {})
        ]
        lines.append(
            f"| {method} | {d} | "
            + " | ".join(f"{cls[c]['q90']:.3g}" for c in ("00", "01", "11"))
            + " | "
            + " | ".join(f"{cls[c]['mean']:+.3f}" for c in ("00", "01", "11"))
            + f" | {'; '.join(pub) or '—'} |"
        )
    return "\n".join(lines) + "\n"


def main(argv: list[str] | None = None) -> int:
    """Run the comparison and write ``compare.md``, ``compare.json`` and ``compare_w3.png``.

    Example: ``python benchmarks/compare.py --workload W1 --quick --out /tmp/cmp``
    """
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--workload", default="all", help="W1, W2, W3 or all (default)")
    ap.add_argument("--quick", action="store_true", help="trimmed sizes (seconds)")
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--no-trained", action="store_true", help="skip the torch baselines")
    ap.add_argument(
        "--published-w1",
        action="store_true",
        help="print W1 in Busch's protocol beside his numbers (Markdown) and exit",
    )
    ap.add_argument(
        "--from-json",
        type=Path,
        metavar="FILE",
        help="rewrite the Markdown and the plot from a saved compare*.json (no new run)",
    )
    ap.add_argument(
        "--out", type=Path, default=Path(__file__).parent / "results", help="output directory"
    )
    args = ap.parse_args(argv)
    start = time.perf_counter()
    if args.published_w1:
        print(published_w1(args.seed, not args.no_trained, args.quick))
        return 0

    if args.from_json is not None:
        saved = json.loads(args.from_json.read_text())
        result = WorkloadResult.from_dict(saved)
        stem = args.from_json.stem
        out = args.from_json.parent
        old = (out / f"{stem}.md").read_text() if (out / f"{stem}.md").exists() else ""
        header = old.split("\n", 1)[0] + "\n\n" if old.startswith("<!--") else ""
        (out / f"{stem}.md").write_text(header + markdown(result))
        if result.needs:
            plot(result, str(out / f"{stem}_w3.png"))
        print(f"rewrote {out / stem}.md and {stem}_w3.png from {args.from_json}")
        return 0

    def say(text: str) -> None:
        print(f"{time.perf_counter() - start:8.1f}s  {text}", file=sys.stderr, flush=True)

    result = run_workload(
        args.workload, quick=args.quick, seed=args.seed, trained=not args.no_trained, progress=say
    )
    args.out.mkdir(parents=True, exist_ok=True)
    stem = "compare" if args.workload.lower() == "all" else f"compare_{args.workload.upper()}"
    header = (
        f"<!-- generated by benchmarks/compare.py --workload {args.workload}"
        f"{' --quick' if args.quick else ''} --seed {args.seed}; "
        f"{time.perf_counter() - start:.0f} s -->\n\n"
    )
    (args.out / f"{stem}.md").write_text(header + markdown(result))
    (args.out / f"{stem}.json").write_text(json.dumps(result.to_dict(), indent=1, default=float))
    if result.needs:
        plot(result, str(args.out / f"{stem}_w3.png"))
    say(f"wrote {args.out / stem}.md/.json")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
