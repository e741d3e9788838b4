"""Export benchmark: the torch module and the ONNX model against ``Network.predict``.

For each m' (m = m' inputs, uniform random 2-ANDs, s = 2, the default construction: the
network ``superpose build --family and2 --features m' --outputs m' --seed 0`` writes) it
times, on the verifier's random inputs (best of ``--repeat``):

* ``predict`` (scipy, sparse in and out);
* ``net.to_torch()`` (the export itself, once);
* the module's forward pass with sparse input and sparse output (torch COO), and with dense
  [batch, m] float32 input and dense output where that fits under ``--dense-limit``;
* the same module with every W^T forced to torch sparse CSR (``dense_weights=False``);
* at ``--onnx-size`` the ONNX model under onnxruntime on ``--onnx-batch`` inputs (run in
  chunks of ``--onnx-chunk`` rows: the dense input and output of 10^4 x 10^5 are 4 GB each).

Every output is asserted equal to ``predict``'s. Networks are built once and kept under
``--cache`` (building m' = 10^6 takes about 15-20 minutes on 2 cores).

Usage::

    python benchmarks/export.py                          # m' = 1e4, 1e5; ONNX at 1e5
    python benchmarks/export.py --sizes 1e4,1e5,1e6      # the issue's full run
    python benchmarks/export.py --sizes 1e4 --onnx-size 1e4 --onnx-batch 2000   # quick

Prints a table and writes JSON to ``benchmarks/out/export.json``.
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

import numpy as np

HERE = Path(__file__).resolve().parent
OUT = HERE / "out" / "export.json"
CACHE = HERE / "out" / "export_networks"


def _sizes(text: str) -> list[int]:
    return [int(float(s)) for s in text.split(",") if s.strip()]


def network_for(size: int, cache: Path) -> Path:
    """The cached and2 network of ``size`` outputs, built with the CLI when missing."""
    directory = cache / f"and2-{size}"
    if not (directory / "network.json").exists():
        cmd = [sys.executable, "-c", "from superpose.cli import main; main()", "build"]
        cmd += ["--family", "and2", "--features", str(size), "--outputs", str(size)]
        cmd += ["--seed", "0", "--out", str(directory)]
        print(f"building m' = {size:,} ...", flush=True)
        subprocess.run(cmd, check=True)
    return directory


CPU: dict[str, float] = {}


def best(fn: Any, repeat: int, key: str | None = None) -> tuple[float, Any]:
    """Best wall time of ``repeat`` runs; the best CPU time (this process) goes to CPU[key]:
    on a shared machine the wall time also counts waiting for a core."""
    times, cpu, result = [], [], None
    for _ in range(repeat):
        start, start_cpu = time.perf_counter(), time.process_time()
        result = fn()
        times.append(time.perf_counter() - start)
        cpu.append(time.process_time() - start_cpu)
    if key:
        CPU[key] = min(cpu)
    return min(times), result


def inputs(net: Any, count: int, seed: int) -> Any:
    from scipy import sparse

    from superpose.verification import random_inputs

    rng = np.random.default_rng(seed)
    return sparse.csr_array(sparse.vstack(list(random_inputs(net.task, count, rng)), format="csr"))


def torch_sparse(x: Any) -> Any:
    import torch

    coo = x.tocoo()
    idx = torch.from_numpy(np.vstack([coo.row, coo.col]).astype(np.int64))
    values = torch.from_numpy(coo.data.astype(np.float32))
    return torch.sparse_coo_tensor(idx, values, x.shape, check_invariants=False).coalesce()


def same(got: Any, want: Any) -> bool:
    """Whether a torch/numpy 0/1 batch equals predict's (compared as sorted index pairs)."""
    import torch

    w = want.tocoo()
    want_keys = np.sort(w.row.astype(np.int64) * want.shape[1] + w.col)
    if isinstance(got, torch.Tensor) and got.layout == torch.sparse_coo:
        idx = got.coalesce().indices().numpy()
        keys = idx[0] * want.shape[1] + idx[1]
    else:
        arr = got.numpy() if isinstance(got, torch.Tensor) else np.asarray(got)
        if ((arr != 0) & (arr != 1)).any():
            return False
        r, c = np.nonzero(arr)
        keys = r.astype(np.int64) * want.shape[1] + c
    return bool(np.array_equal(np.sort(keys), want_keys))


def run_size(size: int, args: argparse.Namespace) -> dict[str, Any]:
    import torch

    from superpose import load_network

    net = load_network(network_for(size, Path(args.cache)))
    x = inputs(net, args.batch, seed=1)
    row: dict[str, Any] = {
        "outputs": size,
        "features": net.task.features,
        "batch": args.batch,
        "widths": net.counts()["layer_widths"],
        "nonzero_weights": int(sum(lay.weight.nnz for lay in net.layers)),
    }
    net.predict(x[:16])  # warm the cached forms, as for the module below
    row["predict_s"], want = best(lambda: net.predict(x), args.repeat, "predict")

    start = time.perf_counter()
    module = net.to_torch()
    row["export_s"] = time.perf_counter() - start
    row["dtype"] = module.parts.dtype
    row["dense_layers"] = [bool(layer.dense) for layer in module.layers]
    xs = torch_sparse(x)
    module(torch_sparse(x[:16]), sparse_output=True)  # warm-up
    row["torch_sparse_io_s"], got = best(
        lambda: module(xs, sparse_output=True), args.repeat, "torch"
    )
    assert same(got, want), f"m'={size}: torch (sparse io) differs from predict"
    dense_bytes = args.batch * (net.task.features + net.task.n_outputs) * 4
    if dense_bytes <= args.dense_limit:
        xd = torch.from_numpy(x.toarray().astype(np.float32))
        row["torch_dense_io_s"], got = best(lambda: module(xd), args.repeat)
        assert same(got, want), f"m'={size}: torch (dense io) differs from predict"
        del xd, got
    else:
        row["torch_dense_io_s"] = None
    sparse_module = net.to_torch(dense_weights=False)
    row["torch_sparse_weights_s"], got = best(
        lambda: sparse_module(xs, sparse_output=True), args.repeat
    )
    assert same(got, want), f"m'={size}: torch (sparse CSR weights) differs from predict"
    row["ratio_sparse_io"] = row["torch_sparse_io_s"] / row["predict_s"]
    row["predict_cpu_s"], row["torch_sparse_io_cpu_s"] = CPU["predict"], CPU["torch"]
    row["ratio_cpu"] = CPU["torch"] / CPU["predict"]
    return row


def run_onnx(size: int, args: argparse.Namespace) -> dict[str, Any]:
    import tempfile

    import onnxruntime as ort

    from superpose import load_network
    from superpose.torch import export_onnx

    net = load_network(network_for(size, Path(args.cache)))
    x = inputs(net, args.onnx_batch, seed=2)
    with tempfile.TemporaryDirectory() as tmp:
        start = time.perf_counter()
        path = export_onnx(net, Path(tmp) / "model.onnx")
        export_s = time.perf_counter() - start
        model_bytes = path.stat().st_size
        options = ort.SessionOptions()
        options.intra_op_num_threads = args.threads  # as torch: predict runs on one core
        options.inter_op_num_threads = 1
        session = ort.InferenceSession(str(path), options, providers=["CPUExecutionProvider"])
    start, start_cpu = time.perf_counter(), time.process_time()
    want = net.predict(x)
    predict_s, predict_cpu = time.perf_counter() - start, time.process_time() - start_cpu
    run_s = run_cpu = 0.0
    for lo in range(0, x.shape[0], args.onnx_chunk):
        chunk = x[lo : lo + args.onnx_chunk]
        dense = chunk.toarray().astype(np.float32)
        start, start_cpu = time.perf_counter(), time.process_time()
        got = session.run(None, {"features": dense})[0]
        run_s += time.perf_counter() - start
        run_cpu += time.process_time() - start_cpu
        assert same(got, want[lo : lo + args.onnx_chunk]), f"ONNX differs at rows {lo}.."
    return {
        "outputs": size,
        "batch": args.onnx_batch,
        "model_bytes": model_bytes,
        "export_s": export_s,
        "onnx_s": run_s,
        "onnx_cpu_s": run_cpu,
        "predict_s": predict_s,
        "predict_cpu_s": predict_cpu,
        "identical": True,
    }


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--sizes", type=_sizes, default=[10_000, 100_000])
    parser.add_argument("--batch", type=int, default=4096)
    parser.add_argument("--repeat", type=int, default=3)
    parser.add_argument("--onnx-size", type=lambda s: int(float(s)), default=100_000)
    parser.add_argument("--onnx-batch", type=int, default=10_000)
    parser.add_argument("--onnx-chunk", type=int, default=2_000)
    parser.add_argument("--no-onnx", action="store_true")
    parser.add_argument("--dense-limit", type=float, default=4 * 2**30)
    parser.add_argument("--cache", default=str(CACHE))
    parser.add_argument(
        "--threads", type=int, default=1, help="torch threads (predict runs on one core)"
    )
    parser.add_argument("--out", default=str(OUT))
    args = parser.parse_args(argv)

    import torch

    torch.set_num_threads(args.threads)
    rows = []
    for size in args.sizes:
        rows.append(run_size(size, args))
        r = rows[-1]
        print(f"m'={size:,}: predict {r['predict_s']:.3f}s, torch {r['torch_sparse_io_s']:.3f}s")
    onnx = None if args.no_onnx else run_onnx(args.onnx_size, args)

    header = (
        f"{'m_prime':>9} {'widths':>14} {'nnz W':>11} {'predict':>8} {'export':>7} "
        f"{'torch sp':>9} {'ratio':>6} {'cpu ratio':>9} {'torch dense':>11} {'CSR W':>8}"
    )
    print(
        f"\nforward on {args.batch:,} random inputs (seconds, best of {args.repeat}); "
        f"torch threads {torch.get_num_threads()}"
    )
    print(header)
    for r in rows:
        dense = "-" if r["torch_dense_io_s"] is None else f"{r['torch_dense_io_s']:.3f}"
        print(
            f"{r['outputs']:>9,} {'x'.join(map(str, r['widths'])):>14} "
            f"{r['nonzero_weights']:>11,} {r['predict_s']:>8.3f} {r['export_s']:>7.2f} "
            f"{r['torch_sparse_io_s']:>9.3f} {r['ratio_sparse_io']:>6.2f} {r['ratio_cpu']:>9.2f} "
            f"{dense:>11} "
            f"{r['torch_sparse_weights_s']:>8.3f}"
        )
    if onnx:
        print(
            f"\nONNX at m'={onnx['outputs']:,} on {onnx['batch']:,} inputs: identical to predict; "
            f"model {onnx['model_bytes'] / 2**20:.0f} MiB, export {onnx['export_s']:.1f}s, "
            f"onnxruntime {onnx['onnx_s']:.1f}s (CPU {onnx['onnx_cpu_s']:.1f}s), "
            f"predict {onnx['predict_s']:.2f}s (CPU {onnx['predict_cpu_s']:.2f}s)"
        )
    result = {
        "when": datetime.datetime.now(datetime.UTC).isoformat(timespec="seconds"),
        "machine": {
            "python": platform.python_version(),
            "cpus": os.cpu_count(),
            "torch": torch.__version__,
            "torch_threads": torch.get_num_threads(),
        },
        "args": {k: v for k, v in vars(args).items()},
        "torch": rows,
        "onnx": onnx,
    }
    out = Path(args.out)
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps(result, indent=2) + "\n")
    print(f"\nwrote {out}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
