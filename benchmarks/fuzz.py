"""Fuzz benchmark: the hostile-input fuzz tests with a large, random search.

Runs every ``test_fuzz_*`` test of ``tests/test_reliability.py`` (task JSON, sweep YAML,
network directories, weights, capacity headers, and hostile tokens from each class of the
hardening issue in every file kind) with ``SUPERPOSE_FUZZ_EXAMPLES`` examples each and
``SUPERPOSE_FUZZ_RANDOM=1`` (new random cases every run, not the suite's fixed sequence),
then prints the number of cases tried per kind and exit code, and writes
``benchmarks/out/fuzz.json``. Every case must end with exit 0, 1 or 2, exactly one
``error:`` line on exit 2, no traceback, and no raw terminal escape in the output.

Usage::

    python benchmarks/fuzz.py                 # 1 100 examples per test: >= 10^4 cases
    python benchmarks/fuzz.py --examples 200  # a quicker look
"""

from __future__ import annotations

import argparse
import json
import os
import re
import subprocess
import sys
import time
from pathlib import Path


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--examples", type=int, default=1100)
    parser.add_argument("--out", type=Path, default=Path("benchmarks/out/fuzz.json"))
    args = parser.parse_args()
    env = {
        **os.environ,
        "SUPERPOSE_FUZZ_EXAMPLES": str(args.examples),
        "SUPERPOSE_FUZZ_RANDOM": "1",
    }
    start = time.perf_counter()
    run = subprocess.run(
        [
            sys.executable,
            *("-m", "pytest", "tests/test_reliability.py", "-k", "fuzz", "-n", "0"),
            *("-q", "-s", "-p", "no:cacheprovider"),
        ],
        env=env,
        capture_output=True,
        text=True,
    )
    seconds = time.perf_counter() - start
    total = re.search(r"fuzz cases tried: (\d+)", run.stdout)
    kinds = dict(
        (m.group(1), int(m.group(2))) for m in re.finditer(r"^  (.+): (\d+)$", run.stdout, re.M)
    )
    row = {
        "examples_per_test": args.examples,
        "cases": int(total.group(1)) if total else None,
        "passed": run.returncode == 0,
        "seconds": round(seconds, 1),
        "by_kind": kinds,
    }
    for kind, n in sorted(kinds.items()):
        print(f"{kind:>45} {n:>7,}")
    print(f"cases tried: {row['cases']}, all passed: {row['passed']}, {seconds:.0f} s")
    if run.returncode != 0:
        print(run.stdout[-3000:], run.stderr[-2000:], sep="\n")
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(row, indent=2) + "\n")
    print(f"wrote {args.out}")
    sys.exit(0 if run.returncode == 0 else 1)


if __name__ == "__main__":
    main()
