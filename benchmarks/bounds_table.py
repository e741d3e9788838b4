"""Bounds table (docs/DESIGN.md, Bounds) and the cost of ``superpose capacity`` on a synthetic model.

Run: ``python benchmarks/bounds_table.py [--model-mb 300]``. Prints, for m' = 10³…10⁹, the
exact log2 counts, the bit/neuron lower bounds, the capacity of n neurons and the
representation-only widths; then writes a llama-shaped float32 safetensors model of about
``--model-mb`` MB to a temporary directory and runs ``superpose capacity`` on it in a child
process, reporting wall time and the child's peak resident memory.
"""

from __future__ import annotations

import argparse
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

from superpose.bounds import (
    Family,
    bits_lower_bound,
    bloom_code_width,
    capacity,
    linear_code_width,
    log2_instances,
    neurons_lower_bound,
    total_neurons_lower_bound,
)


def bounds_table() -> None:
    print(
        f"{'m_out':>12} {'log2 perm':>14} {'log2 and2 m=m':>14} {'width L=1':>10} "
        f"{'total':>8} {'bloom':>6} {'linear':>7}"
    )
    for e in range(3, 10):
        mp = 10**e
        perm = log2_instances(Family("permutation", outputs=mp))
        pairs = bits_lower_bound(Family("and2", outputs=mp, features=mp))
        print(
            f"{mp:>12,} {perm:>14.6e} {pairs:>14.6e} {neurons_lower_bound(pairs):>10,} "
            f"{total_neurons_lower_bound(pairs):>8,} {bloom_code_width(mp, 2).width:>6} "
            f"{linear_code_width(mp, 2):>7}"
        )
    print()
    print(
        f"{'n':>8} {'L':>2} {'b':>3} {'capacity perm':>14} {'capacity and2':>14} {'n^2/log2 n':>12}"
    )
    for n in (512, 1000, 1024, 4096, 12288, 16384):
        for layers, b in ((1, 1), (2, 1), (1, 8)):
            print(
                f"{n:>8,} {layers:>2} {b:>3} {capacity(n, layers, b):>14,} "
                f"{capacity(n, layers, b, 'and2'):>14,} {n * n / np.log2(n):>12.4g}"
            )


def synthetic_model(directory: Path, megabytes: int) -> Path:
    """A llama-shaped float32 model (d = 1024, d_ff = 2816) of about ``megabytes`` MB."""
    from safetensors.numpy import save_file

    d, ff = 1024, 2816
    per_layer = 4 * (3 * d * ff + 4 * d * d)
    layers = max(1, megabytes * 2**20 // per_layer)
    rng = np.random.default_rng(0)
    tensors: dict[str, np.ndarray] = {}
    for i in range(layers):
        p = f"model.layers.{i}."
        for name, shape in (
            ("mlp.gate_proj", (ff, d)),
            ("mlp.up_proj", (ff, d)),
            ("mlp.down_proj", (d, ff)),
            ("self_attn.q_proj", (d, d)),
            ("self_attn.k_proj", (d, d)),
            ("self_attn.v_proj", (d, d)),
            ("self_attn.o_proj", (d, d)),
        ):
            w = rng.standard_normal(shape, dtype=np.float32)
            w[w < -2.5] = 0.0  # a few zeros
            tensors[p + name + ".weight"] = w
        tensors[p + "input_layernorm.weight"] = np.ones(d, np.float32)
    path = directory / "model.safetensors"
    save_file(tensors, str(path))
    return path


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--model-mb", type=int, default=300)
    parser.add_argument("--write-model", type=Path, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.write_model is not None:
        synthetic_model(args.write_model, args.model_mb)
        return
    bounds_table()
    with tempfile.TemporaryDirectory() as tmp:
        # Written by a child process, so this process stays small: a spawned child's peak
        # RSS (ru_maxrss) includes the parent's resident memory at spawn time.
        subprocess.run(
            [sys.executable, __file__, "--model-mb", str(args.model_mb), "--write-model", tmp],
            check=True,
        )
        path = Path(tmp) / "model.safetensors"
        size = path.stat().st_size / 2**20
        child = (
            "import resource, sys\n"
            "from superpose.cli import main\n"
            "code = main(sys.argv[1:])\n"
            "rss = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss\n"
            "sys.stderr.write(f'MAXRSS_KB {rss}\\n')\n"
            "sys.exit(code)\n"
        )
        start = time.perf_counter()
        out = subprocess.run(
            [sys.executable, "-c", child, "capacity", str(path), "--json"],
            capture_output=True,
            text=True,
            check=False,
        )
        wall = time.perf_counter() - start
        if out.returncode != 0:
            print(out.stderr)
            raise SystemExit(out.returncode)
        peak_kb = int(out.stderr.rsplit("MAXRSS_KB", 1)[1].split()[0])
        print()
        print(
            f"capacity of a {size:.0f} MB synthetic model: {wall:.2f} s wall "
            f"(including ~3 s of imports), peak RSS {peak_kb / 1024:.0f} MB"
        )
        import json

        report = json.loads(out.stdout)
        total = report["total"]
        print(
            f"  {len(report['layers'])} rows, {total['nonzero_parameters']:,} non-zero parameters, "
            f"capacity (sum of rows): {total['capacity_permutation']:,} permutation, "
            f"{total['capacity_pairs']:,} pairs"
        )


if __name__ == "__main__":
    main()
