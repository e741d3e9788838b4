"""Golden outputs: the bytes a fixed list of builds, checks and a tiny sweep write.

A refactor that moves code must not move a single output byte. This script builds a fixed
list of networks (library ``superpose.build`` and the ``superpose build`` command, small and
medium sizes, every construction family), hashes what they write (``network.json``,
``network.safetensors``), the ``verify --json`` and ``bounds --json`` reports, and the rows a
tiny sweep stores in SQLite (without its wall-clock columns), and compares them with the
hashes recorded in ``benchmarks/golden.json``.

    python benchmarks/golden.py            # check every case (small and medium), print a table
    python benchmarks/golden.py --small    # the small cases only (what tests/test_golden.py runs)
    python benchmarks/golden.py --record   # rewrite benchmarks/golden.json from this code

A case whose hash changes on purpose (a bug fixed) is re-recorded with ``--record`` and the
reason is written in the commit and in ``benchmarks/golden.md``.
"""

from __future__ import annotations

import argparse
import contextlib
import hashlib
import io
import json
import sqlite3
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

import numpy as np

HERE = Path(__file__).resolve().parent
GOLDEN = HERE / "golden.json"

SWEEP_YAML = """\
name: golden
root_seed: 0
grid:
  - family: and2
    outputs: [300]
    features: same
    sparsity: 2
    construction: superposed
    seeds: 2
  - family: xor2
    outputs: [200]
    construction: superposed3
    seeds: 1
  - family: and2
    outputs: [300]
    construction: naive
    seeds: 1
measure:
  bounds: true
  verify: {mode: all, samples: 200, max_exhaustive: 0}
"""

_VOLATILE_COLUMNS = {"meta", "finished_at", "updated_at", "source"}
"""Wall-clock times, worker names and file paths: not part of what a sweep computes."""


def _sha(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def _cli(argv: list[str]) -> str:
    """Run the ``superpose`` command in this process; its standard output."""
    from superpose.cli import main

    out = io.StringIO()
    with contextlib.redirect_stdout(out), contextlib.redirect_stderr(io.StringIO()):
        code = main(argv)
    if code != 0:
        raise RuntimeError(f"superpose {' '.join(argv)} exited {code}")
    return out.getvalue()


def _net_hashes(directory: Path) -> dict[str, str]:
    return {
        name: _sha((directory / name).read_bytes())
        for name in ("network.json", "network.safetensors")
    }


def _verify_and_bounds(directory: Path, mode: str) -> dict[str, str]:
    verify = _cli(["verify", str(directory), "--mode", mode, "--samples", "300", "--json"])
    report = json.loads(verify)
    for key in ("seconds", "inputs_per_second"):  # wall-clock, not results
        report.pop(key, None)
    from superpose import load_network
    from superpose.bounds import tightness

    net = load_network(directory)
    net.task.save(directory.parent / "bounds-task.json")
    bounds = json.loads(
        _cli(["bounds", "--task", str(directory.parent / "bounds-task.json"), "--json"])
    )
    bounds.pop("task", None)  # the temporary file's path
    bounds["tightness"] = tightness(net)
    return {
        "verify": _sha(json.dumps(report, sort_keys=True).encode()),
        "bounds": _sha(json.dumps(bounds, sort_keys=True, default=str).encode()),
    }


def _library(task_fn: Callable[[], object], construction: str | None, seed: int, **params):
    def run(tmp: Path) -> dict[str, str]:
        import superpose

        net = superpose.build(task_fn(), construction, seed=seed, **params)
        superpose.save_network(net, tmp / "net")
        return _net_hashes(tmp / "net")

    return run


def _command(args: list[str], mode: str = "all"):
    def run(tmp: Path) -> dict[str, str]:
        _cli(["build", *args, "--out", str(tmp / "net"), "--json"])
        return {**_net_hashes(tmp / "net"), **_verify_and_bounds(tmp / "net", mode)}

    return run


def _task_file(task_fn: Callable[[], object], extra: list[str]):
    """``superpose build --task FILE`` next to ``superpose.build(load_task(FILE))``."""

    def run(tmp: Path) -> dict[str, str]:
        import superpose

        task_fn().save(tmp / "t.json")
        _cli(["build", "--task", str(tmp / "t.json"), *extra, "--out", str(tmp / "cli")])
        seed = int(extra[extra.index("--seed") + 1]) if "--seed" in extra else 0
        net = superpose.build(superpose.load_task(tmp / "t.json"), seed=seed)
        superpose.save_network(net, tmp / "api")
        cli, api = _net_hashes(tmp / "cli"), _net_hashes(tmp / "api")
        return {
            **{f"cli_{k}": v for k, v in cli.items()},
            **{f"api_{k}": v for k, v in api.items()},
            "cli_equals_api": str(cli == api),
        }

    return run


def _sweep(tmp: Path) -> dict[str, str]:
    spec = tmp / "s.yaml"
    spec.write_text(SWEEP_YAML)
    _cli(["sweep", str(spec), "--results", str(tmp / "s.sqlite")])
    conn = sqlite3.connect(tmp / "s.sqlite")
    try:
        out: dict[str, str] = {}
        for table, order in (("points", "key"), ("sweeps", "name"), ("info", "key")):
            cur = conn.execute(f"SELECT * FROM {table} ORDER BY {order}")
            cols = [d[0] for d in cur.description]
            rows = [
                {c: v for c, v in zip(cols, row, strict=True) if c not in _VOLATILE_COLUMNS}
                for row in cur.fetchall()
            ]
            out[table] = _sha(json.dumps(rows, sort_keys=True).encode())
    finally:
        conn.close()
    return out


def _pairs(m: int, n: int, seed: int, s: int = 2):
    def make():
        from superpose import families

        return families.pairs(m, n, np.random.default_rng(seed), sparsity=s)

    return make


def _family(name: str, seed: int, **kw):
    def make():
        from superpose import families

        return families.generate(name, np.random.default_rng(seed), **kw)

    return make


def _mixed(m: int, seed: int):
    """A one-level task with every op: and, or, xor, andnot (superposed3's hard case)."""

    def make():
        from superpose import Task

        rng = np.random.default_rng(seed)
        gates = []
        for g in range(m):
            a, b = rng.choice(m, 2, replace=False).tolist()
            gates.append((("and", "or", "xor", "andnot")[g % 4], [a, b]))
        return Task.from_gates(m, 2, gates)

    return make


CASES: dict[str, tuple[str, Callable[[Path], dict[str, str]]]] = {
    # name: (size, runner)
    "lib-naive-small": ("small", _library(_pairs(60, 120, 0), "naive", 0)),
    "lib-superposed-small": ("small", _library(_pairs(200, 600, 1), "superposed", 0)),
    "lib-superposed3-xor-andnot-small": ("small", _library(_mixed(80, 2), "superposed3", 1)),
    "lib-circuit-d3-small": (
        "small",
        _library(
            _family("circuit", 3, features=60, outputs=120, sparsity=2, depth=3), "circuit", 0
        ),
    ),
    "lib-deep-default-small": (
        "small",
        _library(_family("circuit", 3, features=60, outputs=120, sparsity=2, depth=3), None, 0),
    ),
    "lib-stress-small": (
        "small",
        _library(_family("stress", 4, features=200, outputs=800, sparsity=2), None, 0),
    ),
    "cli-superposed-small": (
        "small",
        _command(["--family", "and2", "--features", "300", "--outputs", "600", "--seed", "2"]),
    ),
    "cli-circuit-d3-small": (
        "small",
        _command(
            [
                "--family",
                "circuit",
                "--features",
                "40",
                "--outputs",
                "90",
                "--depth",
                "3",
                "--construction",
                "circuit",
            ],
            mode="all",
        ),
    ),
    "cli-vs-lib-task-small": ("small", _task_file(_pairs(300, 2000, 2), ["--seed", "3"])),
    "sweep-small": ("small", _sweep),
    "lib-naive-medium": ("medium", _library(_pairs(3000, 20000, 5), "naive", 0)),
    "lib-superposed-medium": ("medium", _library(_pairs(3000, 30000, 5), "superposed", 0)),
    "lib-superposed3-xor-medium": (
        "medium",
        _library(_family("xor2", 6, features=2000, outputs=6000, sparsity=2), "superposed3", 0),
    ),
    "lib-circuit-d3-medium": (
        "medium",
        _library(
            _family("circuit", 3, features=500, outputs=3000, sparsity=2, depth=3), "circuit", 0
        ),
    ),
    "cli-stress-medium": (
        "medium",
        _command(
            ["--family", "stress", "--features", "1000", "--outputs", "3000", "--seed", "1"],
            mode="random",
        ),
    ),
    "cli-vs-lib-task-medium": (
        "medium",
        _task_file(_pairs(3000, 30000, 5), ["--seed", "0"]),
    ),
    "cli-vs-lib-stress-medium": (
        "medium",
        _task_file(_family("stress", 7, features=1000, outputs=4000, sparsity=2), ["--seed", "0"]),
    ),
}


def run_cases(sizes: tuple[str, ...]) -> dict[str, dict[str, str]]:
    """Every case of the given sizes: name -> {output: sha256}."""
    out: dict[str, dict[str, str]] = {}
    for name, (size, runner) in CASES.items():
        if size not in sizes:
            continue
        with tempfile.TemporaryDirectory() as tmp:
            start = time.perf_counter()
            out[name] = runner(Path(tmp))
            print(f"{name:40s} {time.perf_counter() - start:6.1f} s", file=sys.stderr)
    return out


def compare(found: dict[str, dict[str, str]]) -> list[str]:
    """The outputs that differ from the recorded ones (``case/output``)."""
    recorded = json.loads(GOLDEN.read_text())
    return [
        f"{case}/{key}"
        for case, hashes in found.items()
        for key, value in hashes.items()
        if recorded.get(case, {}).get(key) != value
    ]


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--record", action="store_true", help="rewrite golden.json")
    parser.add_argument("--small", action="store_true", help="small cases only")
    args = parser.parse_args()
    sizes = ("small",) if args.small else ("small", "medium")
    found = run_cases(sizes)
    if args.record:
        old = json.loads(GOLDEN.read_text()) if GOLDEN.exists() else {}
        GOLDEN.write_text(json.dumps({**old, **found}, indent=1, sort_keys=True) + "\n")
        print(f"recorded {len(found)} cases in {GOLDEN}")
        return 0
    changed = compare(found)
    for case, hashes in found.items():
        bad = [k for k in hashes if f"{case}/{k}" in changed]
        print(f"{case:40s} {'CHANGED: ' + ', '.join(bad) if bad else 'identical'}")
    out = HERE / "out"
    out.mkdir(exist_ok=True)
    (out / "golden.json").write_text(json.dumps({"found": found, "changed": changed}, indent=1))
    return 1 if changed else 0


if __name__ == "__main__":
    sys.exit(main())
