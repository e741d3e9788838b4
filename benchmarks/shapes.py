"""The paper's two headline shapes, measured: representing vs computing, and capacity.

(a) **Representing vs computing.** For each m' (default 1e3, 3e3, 1e4, 3e4, 1e5; ``--sizes``
    adds e.g. 1e6) and s = 2:

    * representing m' features: the Bloom code width :func:`superpose.bounds.bloom_code_width`
      and the ±1 linear code width :func:`superpose.bounds.linear_code_width`, each built
      with a random code and checked (encode, decode, compare) on ``--samples`` random
      s-sparse inputs; the Bloom code also on ``--bloom-targeted`` targeted inputs (a
      feature absent, the s features whose codes cover most of its units, chosen greedily,
      present; each costs a pass over the whole code); the linear code on
      ``--linear-samples`` random inputs (every read costs m' dot products of length n).
      Beside them, the width any 0/1 layer needs to hold every <= s-sparse set
      (:func:`superpose.sbound.representation_width_lower_bound`).
    * computing m' 2-ANDs (m = m', uniform random pairs): the default build
      (``superpose.build(pairs(m', m', s=2))``, its own exact check included) and a sampled
      check of ``--samples`` random + ``--samples`` targeted inputs; beside it the counting
      bound (one weight layer, 1-bit parameters) and the s-aware bound.
    * reference curves c·log2 m' and c·√(m' log2 m'), anchored at the first measured point.

(b) **Capacity.** For each width n (default 500, 1000, 2000, 4000; ``--widths``), the most
    2-ANDs (m = m', s = 2) the default build computes with every layer at most n wide: the
    largest m' whose automatic widths (the construction's width rule, no search) fit in n,
    found by bisection, then built and checked like (a). Beside it the counting capacity
    :func:`superpose.bounds.capacity` (one weight layer of width n, 1-bit parameters, and2)
    and the reference curve c·n²/log2 n anchored at the first bound point.

A failed sampled check is shown in the table (column "wrong"), never dropped.

Usage::

    python benchmarks/shapes.py                       # both shapes, default sizes (~5 min)
    python benchmarks/shapes.py --sizes 1e3,1e4,1e5,1e6 --widths 500,1000,2000,4000,8000
    python benchmarks/shapes.py --quick               # smoke run

Writes ``benchmarks/out/shapes.json`` and ``docs/img/shapes_represent_compute.png``,
``docs/img/shapes_capacity.png`` (matplotlib Agg, log-log), and prints Markdown tables.
"""

from __future__ import annotations

import argparse
import datetime
import json
import math
import os
import platform
import sys
import time
from pathlib import Path
from typing import Any

for _var in ("OPENBLAS_NUM_THREADS", "OMP_NUM_THREADS", "MKL_NUM_THREADS"):
    os.environ.setdefault(_var, "1")

import numpy as np  # noqa: E402
from scipy import sparse  # noqa: E402

ROOT = Path(__file__).resolve().parent.parent
OUT = ROOT / "benchmarks" / "out" / "shapes.json"
IMG = ROOT / "docs" / "img"
DEFAULT_SIZES = (1_000, 3_000, 10_000, 30_000, 100_000)
DEFAULT_WIDTHS = (500, 1000, 2000, 4000)
SPARSITY = 2
LINEAR_CHUNK = 8192  # features per block of the linear code (memory: n x chunk float32)


def _ints(text: str) -> list[int]:
    return [int(float(x)) for x in text.split(",") if x.strip()]


def _log(msg: str) -> None:
    print(msg, file=sys.stderr, flush=True)


def _random_sets(m: int, s: int, count: int, rng: np.random.Generator) -> np.ndarray:
    """``count`` rows of s distinct features in range(m) (sorted)."""
    rows = np.empty((count, s), dtype=np.int64)
    for i in range(count):
        rows[i] = np.sort(rng.choice(m, s, replace=False))
    return rows


def _batch(rows: np.ndarray | list[np.ndarray], m: int) -> sparse.csr_array:
    rows = [np.asarray(r, dtype=np.int64) for r in rows]
    indptr = np.cumsum([0] + [len(r) for r in rows])
    idx = np.concatenate(rows) if rows else np.zeros(0, dtype=np.int64)
    return sparse.csr_array((np.ones(len(idx)), idx, indptr), shape=(len(rows), m))


def _wrong_rows(decoded: sparse.csr_array, x: sparse.csr_array) -> int:
    diff = sparse.csr_array(decoded != (x > 0))
    return int((np.diff(diff.indptr) > 0).sum())


# --------------------------------------------------------------------------------------
# (a) representing
# --------------------------------------------------------------------------------------
def check_bloom(m: int, s: int, samples: int, seed: int, targeted: int) -> dict[str, Any]:
    """Build a random Bloom code at the rule's width and read back random + targeted inputs."""
    from superpose.bounds import bloom_code_width
    from superpose.codes import BloomCode

    t0 = time.perf_counter()
    bw = bloom_code_width(m, s)
    rng = np.random.default_rng(np.random.SeedSequence([seed, m, s, 1]))
    code = BloomCode.random(m, bw.width, bw.code_size, rng)
    x = _batch(list(_random_sets(m, s, samples, rng)), m)
    wrong_random = _wrong_rows(code.decode(code.encode(x)), x)
    # targeted: feature f absent, the s features covering most of its units present
    memb = code.membership
    memb_f = sparse.csr_array(memb, dtype=np.float64)  # (features, units)
    targets = rng.choice(m, min(targeted, m), replace=False)
    rows = []
    for f in targets.tolist():
        left = set(memb.indices[memb.indptr[f] : memb.indptr[f + 1]].tolist())
        chosen: list[int] = []
        for _ in range(s):
            if left:
                v = np.zeros(code.width)
                v[sorted(left)] = 1.0
                score = np.rint(memb_f @ v).astype(np.int64)  # units of f's code still open
                score[[f, *chosen]] = -1
                g = int(np.argmax(score))
            else:
                g = int(rng.integers(m))
            while g == f or g in chosen:
                g = int(rng.integers(m))
            chosen.append(g)
            left -= set(memb.indices[memb.indptr[g] : memb.indptr[g + 1]].tolist())
        rows.append(np.array(sorted(chosen)))
    xt = _batch(rows, m)
    wrong_targeted = _wrong_rows(code.decode(code.encode(xt)), xt)
    return {
        "width": bw.width,
        "code_size": bw.code_size,
        "random_inputs": samples,
        "random_wrong": wrong_random,
        "targeted_inputs": len(rows),
        "targeted_wrong": wrong_targeted,
        "seconds": round(time.perf_counter() - t0, 2),
    }


def check_linear(m: int, s: int, samples: int, seed: int) -> dict[str, Any]:
    """A random ±1/√n linear code at the rule's width, read as E^T z >= 1/2 (``LinearCode``'s
    read-out), generated in blocks of features so that 10^6 features fit in memory."""
    from superpose.bounds import linear_code_width

    t0 = time.perf_counter()
    n = linear_code_width(m, s)
    rng = np.random.default_rng(np.random.SeedSequence([seed, m, s, 2]))
    sets = _random_sets(m, s, samples, rng)
    scale = 1.0 / math.sqrt(n)

    def block(c: int) -> np.ndarray:
        lo, hi = c * LINEAR_CHUNK, min(m, (c + 1) * LINEAR_CHUNK)
        r = np.random.default_rng(np.random.SeedSequence([seed, m, s, 3, c]))
        e = r.integers(0, 2, size=(n, hi - lo), dtype=np.int8) * 2 - 1
        return e.astype(np.float32) * np.float32(scale)

    chunks = (m + LINEAR_CHUNK - 1) // LINEAR_CHUNK
    z = np.zeros((samples, n), dtype=np.float32)
    for c in range(chunks):  # pass 1: the encoded inputs
        lo = c * LINEAR_CHUNK
        rows, cols = np.nonzero((sets >= lo) & (sets < lo + LINEAR_CHUNK))
        if len(rows):
            e = block(c)
            np.add.at(z, rows, e[:, sets[rows, cols] - lo].T)
    wrong = np.zeros(samples, dtype=bool)
    for c in range(chunks):  # pass 2: read every feature back
        lo = c * LINEAR_CHUNK
        read = z @ block(c) >= 0.5
        width = read.shape[1]
        truth = np.zeros_like(read)
        rows, cols = np.nonzero((sets >= lo) & (sets < lo + width))
        truth[rows, sets[rows, cols] - lo] = True
        wrong |= (read != truth).any(axis=1)
    return {
        "width": n,
        "random_inputs": samples,
        "random_wrong": int(wrong.sum()),
        "seconds": round(time.perf_counter() - t0, 2),
    }


# --------------------------------------------------------------------------------------
# computing
# --------------------------------------------------------------------------------------
def _task(mp: int, seed: int) -> Any:
    from superpose.families import pairs

    rng = np.random.default_rng(np.random.SeedSequence([seed, mp, mp, SPARSITY]))
    return pairs(mp, mp, rng, sparsity=SPARSITY)


def build_and_check(mp: int, samples: int, seed: int) -> dict[str, Any]:
    """The default build for m' uniform 2-ANDs (m = m', s = 2), its check and a sampled one."""
    import superpose as sp
    from superpose import bounds, sbound

    task = _task(mp, seed)
    t0 = time.perf_counter()
    net = sp.build(task, seed=seed)
    built = time.perf_counter() - t0
    counts = net.counts()
    check = net.extras.get("check", {})
    t1 = time.perf_counter()
    wrong, checked = 0, 0
    for i, mode in enumerate(("random", "targeted")):
        rep = sp.verify(net, mode, samples, np.random.default_rng([seed, mp, 7, i]))
        wrong += rep.inputs_with_error
        checked += rep.inputs_checked
    fam = bounds.family_of_task(task)
    bits = bounds.bits_lower_bound(fam)
    st = sbound.s_aware_tightness(net)
    return {
        "outputs": mp,
        "construction": net.construction,
        "fallback": net.extras.get("fallback"),
        "layer_widths": [int(w) for w in counts["layer_widths"]],
        "widest_layer": int(max(counts["layer_widths"])),
        "neurons": int(counts["neurons"]),
        "build_check": {"kind": check.get("kind"), "passed": check.get("passed")},
        "sampled_inputs": checked,
        "sampled_wrong": wrong,
        "counting_neurons_per_layer_bound": bounds.neurons_lower_bound(bits, layers=1),
        "s_aware_layer_bound": st["s_aware_binary_layer_width_lower_bound"],
        "build_seconds": round(built, 2),
        "check_seconds": round(time.perf_counter() - t1, 2),
    }


def planned_widest(mp: int, seed: int) -> int:
    """Widest layer the default build's width rule plans for m' uniform 2-ANDs (no build)."""
    from superpose.constructions.superposed import Superposed

    p = Superposed().resolved(_task(mp, seed))
    return max(int(p["n_in"]), int(p["n_out"]))


def construction_capacity(n: int, seed: int) -> int:
    """Largest m' whose planned widest layer is <= n (bisection; the rule grows with m')."""
    lo, hi = 8, 16
    if planned_widest(lo, seed) > n:
        return 0
    while planned_widest(hi, seed) <= n:
        lo, hi = hi, hi * 2
    while hi - lo > 1:
        mid = (lo + hi) // 2
        if planned_widest(mid, seed) <= n:
            lo = mid
        else:
            hi = mid
    return lo


# --------------------------------------------------------------------------------------
# plots and tables
# --------------------------------------------------------------------------------------
def _fmt(x: float) -> str:
    return f"{x:,.0f}".replace(",", " ")


def plot_represent_compute(rows: list[dict[str, Any]], path: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    mp = np.array([r["outputs"] for r in rows], dtype=float)
    fig, ax = plt.subplots(figsize=(6.4, 5.6), dpi=100)
    comp = np.array([r["compute"]["widest_layer"] for r in rows], dtype=float)
    bloom = np.array([r["bloom"]["width"] for r in rows], dtype=float)
    ax.plot(mp, comp, "o-", color="C3", label="compute m' 2-ANDs: default build, widest layer")
    ax.plot(
        mp,
        [r["compute"]["counting_neurons_per_layer_bound"] for r in rows],
        "s--",
        color="C3",
        alpha=0.6,
        label="compute: counting lower bound (1 weight layer, 1 bit)",
    )
    ax.plot(
        mp,
        [r["compute"]["s_aware_layer_bound"] for r in rows],
        "d--",
        color="C3",
        alpha=0.35,
        label="compute: s-aware lower bound, any 0/1 layer",
    )
    ax.plot(mp, bloom, "o-", color="C0", label="represent: Bloom code width (checked)")
    ax.plot(
        mp,
        [r["linear"]["width"] for r in rows],
        "^-",
        color="C2",
        label="represent: ±1 linear code width (checked)",
    )
    ax.plot(
        mp,
        [r["representation_lower_bound"] for r in rows],
        "v--",
        color="C0",
        alpha=0.6,
        label="represent: lower bound, any 0/1 layer",
    )
    grid = np.geomspace(mp[0], mp[-1], 50)
    ax.plot(
        grid,
        bloom[0] * np.log2(grid) / math.log2(mp[0]),
        ":",
        color="k",
        label="∝ log m'",
    )
    ref = np.sqrt(grid * np.log2(grid))
    ax.plot(grid, comp[0] * ref / ref[0], "-.", color="k", label="∝ √(m' log m')")
    ax.set_xscale("log")
    ax.set_yscale("log")
    ax.set_xlabel("m' (features represented / 2-ANDs computed), s = 2")
    ax.set_ylabel("neurons per layer")
    ax.set_title("Representing vs computing (s = 2)")
    ax.legend(fontsize=7, loc="upper center", bbox_to_anchor=(0.5, -0.14), ncol=2)
    ax.grid(True, which="both", alpha=0.2)
    fig.tight_layout()
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path)
    plt.close(fig)


def plot_capacity(rows: list[dict[str, Any]], path: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    n = np.array([r["width"] for r in rows], dtype=float)
    fig, ax = plt.subplots(figsize=(6.4, 5.6), dpi=100)
    ours = [r["construction_capacity"] for r in rows]
    bound = np.array([r["bound_capacity"] for r in rows], dtype=float)
    ax.plot(n, bound, "s--", color="C3", label="counting bound: most 2-ANDs any n×n layer holds")
    ax.plot(n, ours, "o-", color="C0", label="our default build (width rule), checked")
    bad = [
        r for r in rows if r["check"]["sampled_wrong"] or r["check"]["widest_layer"] > r["width"]
    ]
    if bad:
        ax.plot(
            [r["width"] for r in bad],
            [r["construction_capacity"] for r in bad],
            "x",
            color="r",
            ms=10,
            label="check failed / widths grew",
        )
    grid = np.geomspace(n[0], n[-1], 50)
    ref = grid**2 / np.log2(grid)
    ax.plot(grid, bound[0] * ref / ref[0], ":", color="k", label="∝ n² / log n")
    ax.set_xscale("log")
    ax.set_yscale("log")
    ax.set_xlabel("neurons per layer n")
    ax.set_ylabel("2-ANDs computed (m = m', s = 2)")
    ax.set_title("Capacity")
    ax.legend(fontsize=7, loc="upper center", bbox_to_anchor=(0.5, -0.14), ncol=2)
    ax.grid(True, which="both", alpha=0.2)
    fig.tight_layout()
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path)
    plt.close(fig)


def table_a(rows: list[dict[str, Any]]) -> str:
    head = (
        "| m′ | rep. bound (0/1 layer) | Bloom n (ℓ) | Bloom wrong | linear n | linear wrong "
        "| compute: widest layer | compute wrong (sampled) | counting bound | s-aware bound "
        "| widest / counting | widest / s-aware |\n|" + "---|" * 12
    )
    lines = [head]
    for r in rows:
        b, li, c = r["bloom"], r["linear"], r["compute"]
        lines.append(
            f"| {_fmt(r['outputs'])} | {r['representation_lower_bound']} "
            f"| {b['width']} ({b['code_size']}) "
            f"| {b['random_wrong']} / {_fmt(b['random_inputs'])} + "
            f"{b['targeted_wrong']} / {_fmt(b['targeted_inputs'])} "
            f"| {li['width']} | {li['random_wrong']} / {_fmt(li['random_inputs'])} "
            f"| {c['widest_layer']} | {c['sampled_wrong']} / {_fmt(c['sampled_inputs'])} "
            f"({c['build_check']['kind']}: {'pass' if c['build_check']['passed'] else 'FAIL'}) "
            f"| {c['counting_neurons_per_layer_bound']} | {c['s_aware_layer_bound']} "
            f"| {c['widest_layer'] / c['counting_neurons_per_layer_bound']:.2f} "
            f"| {c['widest_layer'] / c['s_aware_layer_bound']:.0f} |"
        )
    return "\n".join(lines)


def table_b(rows: list[dict[str, Any]]) -> str:
    head = (
        "| n | our m′ (width rule) | built widths | wrong (sampled) | bound m′ (counting) "
        "| bound / ours |\n|" + "---|" * 6
    )
    lines = [head]
    for r in rows:
        c = r["check"]
        widths = " × ".join(str(w) for w in c["layer_widths"])
        grew = " (grew past n)" if c["widest_layer"] > r["width"] else ""
        lines.append(
            f"| {_fmt(r['width'])} | {_fmt(r['construction_capacity'])} | {widths}{grew} "
            f"| {c['sampled_wrong']} / {_fmt(c['sampled_inputs'])} "
            f"({c['build_check']['kind']}: {'pass' if c['build_check']['passed'] else 'FAIL'}) "
            f"| {_fmt(r['bound_capacity'])} "
            f"| {r['bound_capacity'] / r['construction_capacity']:.1f} |"
        )
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--sizes", type=_ints, default=list(DEFAULT_SIZES))
    ap.add_argument("--widths", type=_ints, default=list(DEFAULT_WIDTHS))
    ap.add_argument("--samples", type=int, default=2000)
    ap.add_argument("--linear-samples", type=int, default=200)
    ap.add_argument("--bloom-targeted", type=int, default=300)
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--only", choices=("a", "b"), default=None)
    ap.add_argument("--quick", action="store_true", help="m' = 1e3, 3e3; n = 300, 500")
    ap.add_argument("--no-plots", action="store_true")
    ap.add_argument(
        "--replot", action="store_true", help="redraw the plots from benchmarks/out/shapes.json"
    )
    args = ap.parse_args(argv)
    if args.quick:
        args.sizes, args.widths, args.samples, args.linear_samples = (
            [1000, 3000],
            [300, 500],
            200,
            50,
        )
        args.bloom_targeted = 50
    if args.replot:
        saved = json.loads(OUT.read_text())
        if "represent_compute" in saved:
            plot_represent_compute(saved["represent_compute"], IMG / "shapes_represent_compute.png")
        if "capacity" in saved:
            plot_capacity(saved["capacity"], IMG / "shapes_capacity.png")
        return 0
    from superpose import bounds, sbound

    result: dict[str, Any] = {
        "date": datetime.datetime.now(datetime.UTC).isoformat(timespec="seconds"),
        "machine": {"python": platform.python_version(), "cpus": os.cpu_count()},
        "sparsity": SPARSITY,
        "seed": args.seed,
        "samples": args.samples,
    }
    if args.only in (None, "a"):
        rows_a = []
        for mp in args.sizes:
            _log(f"(a) m' = {mp}: Bloom ...")
            row: dict[str, Any] = {"outputs": mp}
            row["representation_lower_bound"] = sbound.representation_width_lower_bound(
                mp, SPARSITY
            )
            row["bloom"] = check_bloom(mp, SPARSITY, args.samples, args.seed, args.bloom_targeted)
            _log(f"    Bloom {row['bloom']}; linear ...")
            row["linear"] = check_linear(mp, SPARSITY, args.linear_samples, args.seed)
            _log(f"    linear {row['linear']}; build ...")
            row["compute"] = build_and_check(mp, args.samples, args.seed)
            _log(f"    compute {row['compute']}")
            rows_a.append(row)
        result["represent_compute"] = rows_a
        print("### (a) representing vs computing, s = 2\n")
        print(table_a(rows_a) + "\n")
        if not args.no_plots:
            plot_represent_compute(rows_a, IMG / "shapes_represent_compute.png")
    if args.only in (None, "b"):
        rows_b = []
        for n in args.widths:
            _log(f"(b) n = {n}: bisection on the width rule ...")
            t0 = time.perf_counter()
            mp = construction_capacity(n, args.seed)
            row = {
                "width": n,
                "construction_capacity": mp,
                "planned_widest": planned_widest(mp, args.seed),
                "search_seconds": round(time.perf_counter() - t0, 2),
                "bound_capacity": bounds.capacity(n, layers=1, bits_per_parameter=1, family="and2"),
            }
            _log(f"    m' = {mp}; build and check ...")
            row["check"] = build_and_check(mp, args.samples, args.seed)
            _log(f"    {row}")
            rows_b.append(row)
        result["capacity"] = rows_b
        print("### (b) capacity, s = 2\n")
        print(table_b(rows_b) + "\n")
        if not args.no_plots:
            plot_capacity(rows_b, IMG / "shapes_capacity.png")
    OUT.parent.mkdir(parents=True, exist_ok=True)
    OUT.write_text(json.dumps(result, indent=1))
    _log(f"wrote {OUT}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
