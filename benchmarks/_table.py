"""Shapes shared by the size-sweep benchmarks (``s3.py``, ``codes.py``): their common flags,
the ``--sizes`` parser, the ``m' = 1e3 | ...`` table header and the stderr progress log."""

from __future__ import annotations

import argparse
import sys


def log(msg: str) -> None:
    """A progress line on stderr (stdout keeps only the table)."""
    print(msg, file=sys.stderr, flush=True)


def size_parser(description: str) -> argparse.ArgumentParser:
    """The flags every size sweep takes first: ``--sizes``, ``--samples``, ``--seed`` (the
    script adds its row picker, ``--out`` and its own flags after them)."""
    ap = argparse.ArgumentParser(description=description)
    ap.add_argument("--sizes", default="1e3,1e4,1e5")
    ap.add_argument("--samples", type=int, default=10_000)
    ap.add_argument("--seed", type=int, default=0)
    return ap


def sizes(text: str) -> list[int]:
    """``"1e3,1e4"`` -> ``[1000, 10000]``."""
    return [int(float(x)) for x in text.split(",") if x.strip()]


def picks(text: str, count: int) -> list[int]:
    """Comma-separated 0-based row numbers; empty = every row."""
    return [int(x) for x in text.split(",") if x.strip()] or list(range(count))


def size_header(first: str, sizes: list[int]) -> str:
    """``| first | m' = 1e3 | m' = 1e4`` (no closing bar: the script adds its last columns)."""
    return f"| {first} | " + " | ".join(f"m' = {m:.0e}".replace("+0", "") for m in sizes)
