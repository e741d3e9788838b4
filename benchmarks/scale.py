"""Scale benchmark: build time, verification throughput, peak memory and sparse-vs-dense speed-up.

For each m' (m = m' inputs, uniform random 2-ANDs, s = 2) a fresh subprocess generates the
task, estimates memory (refusing sizes that would not fit), builds the network, verifies it on
random and targeted inputs, and times the forward pass (encode -> layers -> decode) of the
same weights as scipy sparse matrices and as dense numpy matrices (float32, only where the
dense matrices fit under ``--dense-limit``; BLAS limited to ``--blas-threads``, default 1,
since the sparse pass runs on one core; best of ``--repeat`` runs each). Peak memory is the subprocess's ``ru_maxrss``
after build + verification (before the dense comparison allocates anything) and again at the
end.

Usage::

    python benchmarks/scale.py                      # m' = 1e4, 1e5, 1e6
    python benchmarks/scale.py --max-size 100000    # skip 1e6
    python benchmarks/scale.py --sizes 20000 --random 2000 --targeted 200 --jobs 2
    python benchmarks/scale.py --random 100000 --targeted 10000   # the issue's full run

Prints a table and writes JSON to ``benchmarks/out/scale.json``. The construction is
``superposed`` when registered, else ``naive`` (``--construction`` to choose).
"""

from __future__ import annotations

import argparse
import datetime
import json
import os
import platform
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

DEFAULT_SIZES = (10_000, 100_000, 1_000_000)
OUT = Path(__file__).resolve().parent / "out" / "scale.json"


def _default_construction() -> str:
    from superpose.constructions import CONSTRUCTIONS

    return "superposed" if "superposed" in CONSTRUCTIONS else "naive"


def _parse_params(items: list[str]) -> dict[str, Any]:
    out: dict[str, Any] = {}
    for item in items:
        key, _, raw = item.partition("=")
        try:
            out[key] = json.loads(raw)
        except json.JSONDecodeError:
            out[key] = raw
    return out


# --------------------------------------------------------------------------------------
# one size (runs in its own process)
# --------------------------------------------------------------------------------------
def dense_forward_bytes(net: Any, batch: int) -> int:
    """Bytes of the float32 dense matrices (codes + layers) and activations for one batch."""
    from superpose.codes import BloomCode, ExplicitCode

    total = 0
    for code in (net.input_code, net.output_code):
        if isinstance(code, BloomCode):
            total += 4 * code.n_features * code.width
        elif isinstance(code, ExplicitCode):
            total += 4 * code.n_features * code.width if code is net.input_code else 0
        else:
            return -1
    total += sum(4 * lay.n_in * lay.n_out for lay in net.layers)
    widths = [net.task.features, net.input_code.width] + [lay.n_out for lay in net.layers]
    total += sum(4 * batch * w for w in widths) + 4 * batch * net.task.n_outputs
    return total


def _code_matrix(code: Any, output: bool) -> tuple[Any, Any]:
    """(features, width) float32 dense membership of a code and each feature's threshold.

    An explicit output code needs no matrix (``None``): it reads each unit at >= 1/2.
    """
    import numpy as np

    from superpose.codes import BloomCode

    if isinstance(code, BloomCode):
        dense = code.membership.astype(np.float32).toarray()
        return dense, (code.lengths - code.slack).astype(np.float32)
    if output:
        return None, None
    return np.eye(code.n_features, dtype=np.float32), None


def dense_predict(x: Any, enc: Any, layers: list[tuple[Any, Any, str]], dec: Any, thr: Any) -> Any:
    """The network on a dense 0/1 batch with dense numpy matrices: encode, layers, decode.

    Mirrors :class:`superpose.codes.BloomCode` (OR of the feature codes; a feature is read
    when its units that are on reach its threshold) and ``ExplicitCode`` (unit >= 1/2).
    """
    import numpy as np

    z = np.minimum(x @ enc, 1.0)
    for weight_t, bias, act in layers:
        p = z @ weight_t + bias
        if act == "relu":
            z = np.maximum(p, 0.0)
        elif act == "step":
            z = (p >= 0).astype(np.float32)
        else:
            z = p
    if dec is None:
        return z >= 0.5
    return ((z > 0.5).astype(np.float32) @ dec.T) >= thr


def run_one(args: argparse.Namespace) -> dict[str, Any]:
    """Measure one m' in this process."""
    import numpy as np

    from superpose import families
    from superpose.constructions import build
    from superpose.memory import (
        check_memory,
        default_limit_bytes,
        estimate_task_memory,
        parse_bytes,
        peak_rss_bytes,
        peak_rss_children_bytes,
    )
    from superpose.parallel import verify_parallel
    from superpose.verification import random_inputs

    size = args.one
    params = _parse_params(args.param)
    out: dict[str, Any] = {"outputs": size, "features": size, "sparsity": 2}
    out["construction"] = args.construction
    out["params"] = params
    t = time.perf_counter()
    task = families.pairs(size, size, np.random.default_rng(args.seed), sparsity=2)
    out["task_seconds"] = time.perf_counter() - t
    est = estimate_task_memory(task, args.construction, **params)
    out["memory_estimate_bytes"] = est.total_bytes
    out["memory_limit_bytes"] = default_limit_bytes()
    check_memory(est, None, args.force_memory, what=f"m' = {size:,}")
    t = time.perf_counter()
    net = build(task, args.construction, rng=np.random.default_rng(args.seed + 1), **params)
    out["build_seconds"] = time.perf_counter() - t
    out["peak_rss_after_build_bytes"] = peak_rss_bytes()
    counts = net.counts()
    out["layer_widths"] = counts["layer_widths"]
    out["neurons"] = counts["neurons"]
    out["nonzero_parameters"] = counts["nonzero_parameters"]
    out["resolved"] = {k: v for k, v in (net.extras.get("resolved") or {}).items() if k != "auto"}
    for mode, samples in (("random", args.random), ("targeted", args.targeted)):
        if samples <= 0:
            continue
        t = time.perf_counter()
        rep = verify_parallel(net, mode, samples, args.seed + 2, args.jobs)
        sec = time.perf_counter() - t
        out[f"verify_{mode}"] = {
            "inputs": rep.inputs_checked,
            "seconds": sec,
            "inputs_per_second": rep.inputs_checked / sec if sec > 0 else None,
            "inputs_with_error": rep.inputs_with_error,
            "error_rate_upper_95": rep.error_rate_upper_95,
            "jobs": args.jobs,
        }
    out["peak_rss_bytes"] = peak_rss_bytes()
    out["peak_rss_worker_bytes"] = peak_rss_children_bytes()  # largest verification worker
    # Forward pass: the same batch through sparse and dense versions of the same weights.
    batch = next(random_inputs(task, args.batch, np.random.default_rng(args.seed + 3), args.batch))
    reps = max(1, args.repeat)
    net.predict(batch[:8])  # warm caches (transposes)
    sparse_sec = float("inf")
    for _ in range(reps):
        t = time.perf_counter()
        sparse_pred = net.predict(batch)
        sparse_sec = min(sparse_sec, time.perf_counter() - t)
    out["sparse_forward_inputs_per_second"] = batch.shape[0] / sparse_sec
    dense_batch = min(args.batch, args.dense_batch)
    need = dense_forward_bytes(net, dense_batch)
    limit = parse_bytes(args.dense_limit)
    out["dense_forward_bytes"] = need
    if need < 0 or need > limit:
        out["dense_forward"] = f"skipped: needs {need / 2**30:.1f} GiB > {limit / 2**30:.1f} GiB"
    else:
        enc, _ = _code_matrix(net.input_code, output=False)
        dec, thr = _code_matrix(net.output_code, output=True)
        layers = [
            (
                lay.weight.T.astype(np.float32).toarray(),
                lay.bias.astype(np.float32),
                lay.activation,
            )
            for lay in net.layers
        ]
        xb = batch[:dense_batch].astype(np.float32).toarray()
        dense_predict(xb[:2], enc, layers, dec, thr)  # warm up BLAS
        dense_sec = float("inf")
        for _ in range(reps):
            t = time.perf_counter()
            dense_pred = dense_predict(xb, enc, layers, dec, thr)
            dense_sec = min(dense_sec, time.perf_counter() - t)
        same = bool(np.array_equal(dense_pred, sparse_pred[:dense_batch].toarray()))
        out["dense_forward"] = {
            "batch": dense_batch,
            "seconds": dense_sec,
            "inputs_per_second": dense_batch / dense_sec,
            "same_outputs": same,
            "blas_threads": os.environ.get("OPENBLAS_NUM_THREADS"),
        }
        out["sparse_speedup"] = out["sparse_forward_inputs_per_second"] / (dense_batch / dense_sec)
    out["peak_rss_with_dense_bytes"] = peak_rss_bytes()
    return out


# --------------------------------------------------------------------------------------
# the driver
# --------------------------------------------------------------------------------------
def _fmt_rate(v: Any) -> str:
    return "–" if v is None else f"{v:,.0f}"


def _fmt_rss(r: dict[str, Any]) -> str:
    """Peak RSS of the benchmark process, and of its largest verification worker if any."""
    main = f"{r['peak_rss_bytes'] / 2**30:.2f}"
    jobs = max(r.get(f"verify_{m}", {}).get("jobs", 1) for m in ("random", "targeted"))
    worker = r.get("peak_rss_worker_bytes", 0)
    return f"{main} (worker {worker / 2**30:.2f})" if jobs > 1 and worker else main


def table(rows: list[dict[str, Any]]) -> str:
    """A Markdown table of the results (what the README quotes)."""
    head = (
        "| m' | construction | widths | build (s) | verify random (inputs/s) | "
        "verify targeted (inputs/s) | errors (random / targeted) | peak RSS (GiB) | "
        "sparse forward (inputs/s) | dense forward (inputs/s) | sparse speed-up |\n"
        "|---:|---|---|---:|---:|---:|---:|---:|---:|---:|---:|"
    )
    lines = [head]
    for r in rows:
        if "error" in r:
            lines.append(f"| {r['outputs']:,} | {r.get('construction')} | {r['error']} |")
            continue
        vr, vt = r.get("verify_random", {}), r.get("verify_targeted", {})
        dense = r.get("dense_forward")
        dense_rate = dense.get("inputs_per_second") if isinstance(dense, dict) else None
        speed = r.get("sparse_speedup")
        errors = f"{vr.get('inputs_with_error', '–')} / {vt.get('inputs_with_error', '–')}"
        lines.append(
            f"| {r['outputs']:,} | {r['construction']} | {r['layer_widths']} | "
            f"{r['build_seconds']:.1f} | {_fmt_rate(vr.get('inputs_per_second'))} | "
            f"{_fmt_rate(vt.get('inputs_per_second'))} | {errors} | "
            f"{_fmt_rss(r)} | "
            f"{_fmt_rate(r['sparse_forward_inputs_per_second'])} | "
            f"{_fmt_rate(dense_rate) if dense_rate else 'does not fit'} | "
            f"{f'{speed:,.0f}x' if speed else '–'} |"
        )
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sizes", default=",".join(str(s) for s in DEFAULT_SIZES))
    parser.add_argument("--max-size", type=float, default=None, help="skip sizes above this")
    parser.add_argument("--construction", default=None)
    parser.add_argument("--param", action="append", default=[], help="KEY=VALUE (repeatable)")
    parser.add_argument("--random", type=int, default=20_000, help="random inputs to verify")
    parser.add_argument("--targeted", type=int, default=2_000, help="targeted inputs to verify")
    parser.add_argument("--jobs", type=int, default=1, help="verification processes")
    parser.add_argument("--batch", type=int, default=2048, help="forward-pass batch (sparse)")
    parser.add_argument("--dense-batch", type=int, default=128, help="batch for dense numpy")
    parser.add_argument("--repeat", type=int, default=3, help="sparse forward repetitions")
    parser.add_argument("--dense-limit", default="4G", help="largest dense comparison (bytes)")
    parser.add_argument(
        "--blas-threads",
        type=int,
        default=1,
        help="BLAS threads for the dense comparison (the sparse pass uses one core)",
    )
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--force-memory", action="store_true")
    parser.add_argument("--out", type=Path, default=OUT)
    parser.add_argument("--one", type=int, default=None, help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.construction is None:
        args.construction = _default_construction()
    if args.one is not None:
        print(json.dumps(run_one(args)))
        return 0
    sizes = [int(float(s)) for s in args.sizes.split(",") if s.strip()]
    if args.max_size is not None:
        sizes = [s for s in sizes if s <= args.max_size]
    rows: list[dict[str, Any]] = []
    for size in sizes:
        cmd = [sys.executable, __file__, "--one", str(size)]
        for key in ("construction", "random", "targeted", "jobs", "batch", "dense_batch"):
            cmd += [f"--{key.replace('_', '-')}", str(getattr(args, key))]
        cmd += ["--repeat", str(args.repeat), "--dense-limit", args.dense_limit]
        cmd += ["--seed", str(args.seed)] + [f"--param={p}" for p in args.param]
        if args.force_memory:
            cmd.append("--force-memory")
        print(f"m' = {size:,}: running ...", file=sys.stderr, flush=True)
        t = time.perf_counter()
        env = dict(os.environ)
        for var in ("OPENBLAS_NUM_THREADS", "OMP_NUM_THREADS", "MKL_NUM_THREADS"):
            env[var] = str(args.blas_threads)
        proc = subprocess.run(cmd, capture_output=True, text=True, env=env)
        if proc.returncode != 0:
            last = (proc.stderr.strip().splitlines() or ["failed"])[-1]
            rows.append({"outputs": size, "construction": args.construction, "error": last})
            print(f"  failed: {last}", file=sys.stderr)
            continue
        row = json.loads(proc.stdout.strip().splitlines()[-1])
        row["wall_seconds"] = time.perf_counter() - t
        rows.append(row)
        print(f"  done in {row['wall_seconds']:.0f} s", file=sys.stderr, flush=True)
    print(table(rows))
    from superpose._atomic import write_text
    from superpose.memory import physical_memory_bytes

    report = {
        "benchmark": "scale",
        "date": datetime.datetime.now(datetime.UTC).isoformat(timespec="seconds"),
        "machine": {
            "cpus": os.cpu_count(),
            "physical_memory_bytes": physical_memory_bytes(),
            "python": platform.python_version(),
            "platform": platform.platform(),
        },
        "settings": {k: v for k, v in vars(args).items() if k not in ("one", "out")},
        "results": rows,
        "table_markdown": table(rows),
    }
    write_text(args.out, json.dumps(report, indent=1, default=str))
    print(f"wrote {args.out}", file=sys.stderr)
    return 0 if all("error" not in r for r in rows) else 1


if __name__ == "__main__":
    sys.exit(main())
