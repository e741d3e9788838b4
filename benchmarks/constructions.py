"""Constructions benchmark: searched widths, neurons, parameters and lower bounds for 2-AND.

For 2-AND with uniform random pairs, m = m', each sparsity s and size m', and each
construction (``superposed``, ``superposed3``):

1. the width search (:func:`superpose.search.search_width`, ``--search-samples``
   random + targeted inputs per probe, build seed fixed) finds the smallest ``width_scale``
   that passes;
2. the network found is verified again on ``--samples`` fresh random + ``--samples`` fresh
   targeted inputs (timed);
3. its widths, total neurons and non-zero parameters are set beside the naive network
   (m + m' neurons) and the counting lower bounds of :mod:`superpose.bounds`: bits =
   log2 |F| for the task's family; per-layer width for a network with the same number L of
   weight layers, ``neurons_lower_bound(bits, layers=L, b=1)``; the one-weight-layer 1-bit
   bound ``neurons_lower_bound(bits, layers=1, b=1)``; total neurons
   ``total_neurons_lower_bound``; parameters ``parameters_lower_bound(bits, 1)``.

``--certificate`` adds the issue's exhaustive certificate: m = 150, m' = 1500 random pairs,
s = 3: the width search (random + targeted), then every <= 3-sparse input (~5.6e5) of the
network it found; if that finds an error, a second search verifies every probe exhaustively
(starting at the first search's scale) and its network is reported as the certified one.

Each search is capped (``--max-search-seconds`` of probing, ``--build-timeout`` per build),
so a construction that needs far larger widths at some size cannot run forever; a capped or
failed search is reported as such.

Usage::

    python benchmarks/constructions.py                 # m' = 1e3, 1e4, 1e5; s = 2, 3
    python benchmarks/constructions.py --quick         # smoke run (m' = 1e3, few samples)
    python benchmarks/constructions.py --certificate   # also the m = 150, s = 3 certificate
    python benchmarks/constructions.py --certificate-only   # only the certificate
    python benchmarks/constructions.py --sizes 1e4 --sparsity 2 --constructions superposed

Prints a Markdown table (for the README) and writes JSON to
``benchmarks/out/constructions.json``.
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

OUT = Path(__file__).resolve().parent / "out" / "constructions.json"
DEFAULT_SIZES = (1_000, 10_000, 100_000)
DEFAULT_SPARSITY = (2, 3)
DEFAULT_CONSTRUCTIONS = ("superposed", "superposed3")
CERT_M, CERT_MP, CERT_S = 150, 1500, 3


def _ints(text: str) -> list[int]:
    return [int(float(x)) for x in text.split(",") if x.strip()]


def _log(msg: str) -> None:
    print(msg, file=sys.stderr, flush=True)


def _task(m: int, mp: int, s: int, seed: int) -> Any:
    from superpose.families import pairs

    rng = np.random.default_rng(np.random.SeedSequence([seed, m, mp, s]))
    return pairs(m, mp, rng, sparsity=s)


def _bounds(task: Any, net: Any) -> dict[str, Any]:
    """Counting lower bounds for the task's family, at the network's depth."""
    from superpose import bounds

    fam = bounds.family_of_task(task)
    bits = bounds.bits_lower_bound(fam)
    counts = net.counts()
    layers = max(1, int(counts["weight_layers"]))
    return {
        "family": fam.name,
        "log2_instances": bounds.log2_instances(fam),
        "bits_lower_bound": bits,
        "weight_layers": layers,
        "neurons_per_layer_lower_bound": bounds.neurons_lower_bound(bits, layers=layers),
        "neurons_per_layer_lower_bound_one_layer": bounds.neurons_lower_bound(bits, layers=1),
        "total_neurons_lower_bound": bounds.total_neurons_lower_bound(bits),
        "parameters_lower_bound": bounds.parameters_lower_bound(bits, 1.0),
        "tightness": bounds.tightness(net),
    }


def _final_verify(net: Any, samples: int, seed: int) -> dict[str, Any]:
    """``samples`` fresh random and ``samples`` fresh targeted inputs (timed)."""
    from superpose.verification import verify

    rand_ss, targ_ss = np.random.SeedSequence([seed, 99]).spawn(2)
    out: dict[str, Any] = {"samples": samples}
    t0 = time.perf_counter()
    for mode, ss in (("random", rand_ss), ("targeted", targ_ss)):
        t = time.perf_counter()
        rep = verify(net, mode, samples, np.random.default_rng(ss))
        out[mode] = {
            "inputs_checked": rep.inputs_checked,
            "inputs_with_error": rep.inputs_with_error,
            "false_positives": rep.false_positives,
            "false_negatives": rep.false_negatives,
            "error_rate_upper_95": rep.error_rate_upper_95,
            "seconds": round(time.perf_counter() - t, 3),
        }
    out["inputs_checked"] = out["random"]["inputs_checked"] + out["targeted"]["inputs_checked"]
    out["inputs_with_error"] = (
        out["random"]["inputs_with_error"] + out["targeted"]["inputs_with_error"]
    )
    out["seconds"] = round(time.perf_counter() - t0, 3)
    return out


def _strip_probe(p: dict[str, Any]) -> dict[str, Any]:
    return {k: v for k, v in p.items() if k != "example_failing_input"}


def run_one(construction: str, m: int, mp: int, s: int, args: argparse.Namespace) -> dict[str, Any]:
    """Search, verify and measure one (construction, size, sparsity) point."""
    from superpose.search import WidthSearchError, search_width

    task = _task(m, mp, s, args.seed)
    row: dict[str, Any] = {
        "construction": construction,
        "features": m,
        "outputs": mp,
        "sparsity": s,
        "naive_neurons": m + mp,
    }

    def show(event: dict[str, Any]) -> None:
        if event["event"] == "result":
            p = event["probe"]
            verdict = "pass" if p["passed"] else f"FAIL ({p.get('failed_on')})"
            _log(
                f"    scale {p['scale']:.3f} {p.get('widths', '-')}: {verdict}, "
                f"build {p.get('build_seconds', 0):.1f} s, verify {p.get('verify_seconds', 0):.1f} s"
            )

    t0 = time.perf_counter()
    try:
        net, rec = search_width(
            task,
            construction,
            samples=args.search_samples,
            seed=args.seed,
            params=args.params.get(construction),
            max_scale=args.max_scale,
            max_seconds=args.max_search_seconds,
            build_timeout=args.build_timeout,
            progress=show,
        )
    except WidthSearchError as exc:
        row.update(
            found=False,
            error=str(exc),
            search={**exc.record, "probes": [_strip_probe(p) for p in exc.record["probes"]]},
            search_seconds=round(time.perf_counter() - t0, 3),
        )
        return row
    row["search_seconds"] = round(time.perf_counter() - t0, 3)
    counts = net.counts()
    chosen = next(p for p in rec["probes"] if p["scale"] == rec["width_scale"])
    row.update(
        found=True,
        width_scale=rec["width_scale"],
        last_failing_scale=rec["last_failing_scale"],
        search_stopped=rec["stopped"],
        layer_widths=counts["layer_widths"],
        neurons=counts["neurons"],
        nonzero_parameters=counts["nonzero_parameters"],
        dense_parameters=counts["dense_parameters"],
        bits_per_parameter=counts["bits_per_parameter"],
        build_seconds=chosen["build_seconds"],
        certificate=chosen.get("certificate"),
        resolved={k: v for k, v in net.extras.get("resolved", {}).items() if k != "auto"},
        search={
            **{k: v for k, v in rec.items() if k != "probes"},
            "probes": [_strip_probe(p) for p in rec["probes"]],
        },
    )
    row["bounds"] = _bounds(task, net)
    b = row["bounds"]
    row["ratios"] = {
        "neurons_vs_naive": counts["neurons"] / (m + mp),
        "widest_layer_vs_per_layer_bound": max(counts["layer_widths"])
        / b["neurons_per_layer_lower_bound"],
        "widest_layer_vs_one_layer_bound": max(counts["layer_widths"])
        / b["neurons_per_layer_lower_bound_one_layer"],
        "neurons_vs_total_bound": counts["neurons"] / b["total_neurons_lower_bound"],
        "nonzero_parameters_vs_parameter_bound": counts["nonzero_parameters"]
        / b["parameters_lower_bound"],
    }
    _log(f"    final verification: {args.samples} random + {args.samples} targeted ...")
    row["verify"] = _final_verify(net, args.samples, args.seed)
    row["verify_seconds"] = row["verify"]["seconds"]
    return row


def run_certificate(construction: str, args: argparse.Namespace) -> dict[str, Any]:
    """The issue's certificate: search, then every <= 3-sparse input of m = 150, m' = 1500."""
    from superpose.search import WidthSearchError, search_width
    from superpose.verification import verify

    task = _task(CERT_M, CERT_MP, CERT_S, args.seed)
    out: dict[str, Any] = {
        "features": CERT_M,
        "outputs": CERT_MP,
        "sparsity": CERT_S,
        "naive_neurons": CERT_M + CERT_MP,
        "construction": construction,
        "certified": None,
    }
    common = {
        "samples": args.search_samples,
        "seed": args.seed,
        "params": args.params.get(construction),
        "build_timeout": args.build_timeout,
        "max_seconds": args.max_search_seconds,
    }
    t0 = time.perf_counter()
    try:
        net, rec = search_width(task, construction, max_scale=args.max_scale, **common)
    except WidthSearchError as exc:
        out["error"] = str(exc)
        out["search"] = {"probes": [_strip_probe(p) for p in exc.record["probes"]]}
        out["seconds"] = round(time.perf_counter() - t0, 3)
        return out
    out["search"] = {
        "width_scale": rec["width_scale"],
        "last_failing_scale": rec["last_failing_scale"],
        "layer_widths": rec["widths"],
        "neurons": rec["neurons"],
        "probes": len(rec["probes"]),
        "seconds": round(time.perf_counter() - t0, 3),
    }
    _log(f"  certificate: search found scale {rec['width_scale']} {rec['widths']}; exhaustive ...")
    t = time.perf_counter()
    rep = verify(net, "exhaustive", max_exhaustive=10**7)
    out["exhaustive"] = {
        "inputs_checked": rep.inputs_checked,
        "inputs_with_error": rep.inputs_with_error,
        "false_positives": rep.false_positives,
        "false_negatives": rep.false_negatives,
        "seconds": round(time.perf_counter() - t, 3),
    }
    certified = net
    if not rep.passed:
        _log("  certificate: errors found; searching with exhaustive verification of every probe")
        t = time.perf_counter()
        try:
            certified, rec2 = search_width(
                task,
                construction,
                exhaustive=True,
                max_exhaustive=10**7,
                start_scale=rec["width_scale"],
                max_scale=max(args.max_scale, rec["width_scale"]),
                **common,
            )
        except WidthSearchError as exc:
            out["error"] = f"exhaustive search: {exc}"
            out["exhaustive_search"] = {
                "probes": [_strip_probe(p) for p in exc.record["probes"]],
                "seconds": round(time.perf_counter() - t, 3),
            }
            out["seconds"] = round(time.perf_counter() - t0, 3)
            return out
        out["exhaustive_search"] = {
            "width_scale": rec2["width_scale"],
            "last_failing_scale": rec2["last_failing_scale"],
            "layer_widths": rec2["widths"],
            "neurons": rec2["neurons"],
            "probes": len(rec2["probes"]),
            "seconds": round(time.perf_counter() - t, 3),
        }
        final = verify(certified, "exhaustive", max_exhaustive=10**7)
    else:
        final = rep
    counts = certified.counts()
    out["certified"] = {
        "layer_widths": counts["layer_widths"],
        "neurons": counts["neurons"],
        "nonzero_parameters": counts["nonzero_parameters"],
        "inputs_checked": final.inputs_checked,
        "inputs_with_error": final.inputs_with_error,
        "neurons_vs_naive": counts["neurons"] / (CERT_M + CERT_MP),
    }
    out["seconds"] = round(time.perf_counter() - t0, 3)
    return out


def _fmt_int(x: Any) -> str:
    return f"{x:,}" if isinstance(x, int) else "–"


def markdown(rows: list[dict[str, Any]], certs: list[dict[str, Any]], args: Any) -> str:
    """The README table."""
    lines = [
        f"2-AND, uniform random pairs, m = m'; width search on {args.search_samples:,} random + "
        f"{args.search_samples:,} targeted inputs per probe; final check on {args.samples:,} + "
        f"{args.samples:,} fresh ones. Bounds: 1-bit counting bounds (`superpose.bounds`).",
        "",
        "| construction | s | m' | widths (searched) | neurons | naive | neurons / naive "
        "| width LB/layer (L layers; L=1) | widest / LB | non-zero params | param LB "
        "| params / LB | scale (last fail) | build s | verify s | wrong (final) |",
        "|---|---|---|---|---|---|---|---|---|---|---|---|---|---|---|---|",
    ]
    for r in rows:
        head = f"| {r['construction']} | {r['sparsity']} | {r['outputs']:,} "
        if not r.get("found"):
            probes = r.get("search", {}).get("probes", [])
            tried = ", ".join(f"{p['scale']:.2f}" for p in probes)
            lines.append(
                head + f"| **none passed** (scales tried: {tried}) | – | {r['naive_neurons']:,} "
                "| – | – | – | – | – | – | – | – | – | – |"
            )
            continue
        b, q, v = r["bounds"], r["ratios"], r["verify"]
        widths = "×".join(str(w) for w in r["layer_widths"])
        last = r["last_failing_scale"]
        scale = f"{r['width_scale']:.3f} ({last:.3f})" if last else f"{r['width_scale']:.3f} (–)"
        if r.get("search_stopped"):
            scale += f" [{r['search_stopped']}]"
        cert = " ✓s≤2 cert." if (r.get("certificate") or {}).get("passed") else ""
        lines.append(
            head + f"| {widths} | {r['neurons']:,} | {r['naive_neurons']:,} "
            f"| {q['neurons_vs_naive']:.3f} "
            f"| {b['neurons_per_layer_lower_bound']:,} (L={b['weight_layers']}); "
            f"{b['neurons_per_layer_lower_bound_one_layer']:,} "
            f"| {q['widest_layer_vs_per_layer_bound']:.2f} "
            f"| {r['nonzero_parameters']:,} | {b['parameters_lower_bound']:,} "
            f"| {q['nonzero_parameters_vs_parameter_bound']:.1f} | {scale} "
            f"| {r['build_seconds']:.1f} | {r['verify_seconds']:.1f} "
            f"| {v['inputs_with_error']} / {v['inputs_checked']:,}{cert} |"
        )
    for c in certs:
        head = (
            f"Exhaustive certificate, {c['construction']}: m = {c['features']}, "
            f"m' = {c['outputs']:,} random pairs, s = {c['sparsity']} "
            f"(naive: {c['naive_neurons']:,} neurons): "
        )
        s = c.get("search") or {}
        if "layer_widths" not in s:
            tried = ", ".join(f"{p['scale']:.2f}" for p in s.get("probes", []))
            lines += ["", head + f"**no network passed the width search** (scales {tried})."]
            continue
        e = c["exhaustive"]
        text = (
            head + f"the search found {'×'.join(map(str, s['layer_widths']))} = "
            f"{s['neurons']:,} neurons (scale {s['width_scale']:.3f}); exhaustive check of "
            f"{e['inputs_checked']:,} inputs: {e['inputs_with_error']} wrong."
        )
        x = c.get("exhaustive_search")
        if x is not None and "layer_widths" in x:
            text += (
                f" Search verifying every probe exhaustively: "
                f"{'×'.join(map(str, x['layer_widths']))} = {x['neurons']:,} neurons "
                f"(scale {x['width_scale']:.3f})."
            )
        elif x is not None:
            text += " Search verifying every probe exhaustively: **nothing passed**."
        cert = c.get("certified")
        if cert is not None:
            text += (
                f" Certified: {'×'.join(map(str, cert['layer_widths']))} = "
                f"{cert['neurons']:,} neurons ({cert['neurons_vs_naive']:.2f}× naive), "
                f"{cert['inputs_with_error']} wrong in all {cert['inputs_checked']:,} inputs."
            )
        lines += ["", text]
    return "\n".join(lines)


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument(
        "--sizes", type=_ints, default=list(DEFAULT_SIZES), help="m' values, e.g. 1e3,1e4"
    )
    ap.add_argument("--sparsity", type=_ints, default=list(DEFAULT_SPARSITY), help="s values")
    ap.add_argument(
        "--constructions", default=",".join(DEFAULT_CONSTRUCTIONS), help="comma-separated names"
    )
    ap.add_argument(
        "--samples", type=int, default=10_000, help="final check: random and targeted (each)"
    )
    ap.add_argument(
        "--search-samples", type=int, default=2000, help="per probe: random and targeted (each)"
    )
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--max-scale", type=float, default=6.0, help="largest width_scale tried")
    ap.add_argument(
        "--max-search-seconds",
        type=float,
        default=300.0,
        help="stop a search's probing after this long (keeps the best passing probe)",
    )
    ap.add_argument(
        "--build-timeout",
        type=float,
        default=150.0,
        help="a probe whose build takes longer counts as failed (0: no limit)",
    )
    ap.add_argument(
        "--param",
        action="append",
        default=[],
        help="construction parameter NAME:KEY=VALUE (repeatable), e.g. superposed:repair=false",
    )
    ap.add_argument("--certificate", action="store_true", help="also the m=150, s=3 certificate")
    ap.add_argument(
        "--certificate-only",
        action="store_true",
        help="only the m=150, s=3 certificate (no table rows; same as --sizes '' --certificate)",
    )
    ap.add_argument(
        "--certificate-constructions",
        default="",
        help="constructions for --certificate (default: --constructions)",
    )
    ap.add_argument("--quick", action="store_true", help="smoke run: m' = 1e3, few samples")
    ap.add_argument("--out", type=Path, default=OUT)
    args = ap.parse_args(argv)
    if args.quick:
        args.sizes = [1000]
        args.samples = min(args.samples, 500)
        args.search_samples = min(args.search_samples, 300)
    if args.certificate_only:
        args.certificate = True
        args.sizes = []
    args.build_timeout = args.build_timeout or None
    params: dict[str, dict[str, Any]] = {}
    for item in args.param:
        name, _, kv = item.partition(":")
        key, _, raw = kv.partition("=")
        if not key:
            ap.error(f"--param expects NAME:KEY=VALUE, got {item!r}")
        try:
            value = json.loads(raw)
        except json.JSONDecodeError:
            value = raw
        params.setdefault(name, {})[key] = value
    # This benchmark measures the superposed design itself: never the explicit network that
    # `superposed` falls back to when superposition does not pay (override with
    # --param superposed:fallback=true).
    params.setdefault("superposed", {}).setdefault("fallback", False)
    args.params = params
    args.constructions = [c for c in args.constructions.split(",") if c]
    args.certificate_constructions = [c for c in args.certificate_constructions.split(",") if c]
    return args


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    t0 = time.perf_counter()
    rows = []
    for s in args.sparsity:
        for mp in args.sizes:
            for con in args.constructions:
                _log(f"{con}: m = m' = {mp:,}, s = {s}")
                row = run_one(con, mp, mp, s, args)
                rows.append(row)
                if row.get("found"):
                    _log(
                        f"  -> {row['layer_widths']} = {row['neurons']:,} neurons "
                        f"(naive {row['naive_neurons']:,}); final check "
                        f"{row['verify']['inputs_with_error']} wrong in "
                        f"{row['verify']['inputs_checked']:,}; search {row['search_seconds']:.0f} s"
                    )
                else:
                    _log(f"  -> no passing network: {row.get('error')}")
    certs = []
    if args.certificate:
        for con in args.certificate_constructions or args.constructions:
            _log(f"certificate: {con}, m = {CERT_M}, m' = {CERT_MP}, s = {CERT_S}")
            certs.append(run_certificate(con, args))
    table = markdown(rows, certs, args)
    print(table)
    result = {
        "benchmark": "constructions",
        "created": datetime.datetime.now(datetime.UTC).isoformat(timespec="seconds"),
        "command": " ".join(
            [Path(sys.argv[0]).name, *(argv if argv is not None else sys.argv[1:])]
        ),
        "machine": {"platform": platform.platform(), "cpus": os.cpu_count()},
        "settings": {
            "sizes": args.sizes,
            "sparsity": args.sparsity,
            "constructions": args.constructions,
            "samples": args.samples,
            "search_samples": args.search_samples,
            "seed": args.seed,
            "max_scale": args.max_scale,
            "max_search_seconds": args.max_search_seconds,
            "build_timeout": args.build_timeout,
            "params": args.params,
        },
        "rows": rows,
        "certificates": certs,
        "markdown": table,
        "seconds": round(time.perf_counter() - t0, 3),
    }
    from superpose.io import _jsonable

    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(_jsonable(result), indent=1) + "\n")
    _log(f"wrote {args.out} ({result['seconds']:.0f} s)")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
