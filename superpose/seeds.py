"""One seeding policy: every random stream of a run is a named child of one root seed.

A run (``superpose build --seed 7``, ``superpose.build(task, seed=7)``, a sweep point) draws
from several independent streams: the task generator, the construction, the verifier's inputs,
the check after building. Each is ``SeedSequence([root, number])`` with a fixed number per
name, so

* the CLI and the library give byte-identical networks for the same seed (they ask for the
  same named stream, never for ``default_rng(seed)`` in one place and a salted one in another);
* adding a new stream never shifts an existing one;
* a file records ``{"root": seed}`` and every stream can be recreated from it.

A run made of many runs (a sweep's points, the comparison's peer widths) gives each its own
``child(i, ...)``: the same names, ``SeedSequence([root, number, i, ..., len(path)])``,
independent of every sibling, recorded as ``{"root": seed, "path": [i, ...]}``.

Example:
    >>> a = Seeds(7).rng("build").integers(1000, size=3)
    >>> b = Seeds(7).rng("build").integers(1000, size=3)
    >>> bool((a == b).all()), bool((a == Seeds(7).rng("check").integers(1000, size=3)).all())
    (True, False)
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np

from superpose.errors import SuperposeError

STREAMS: dict[str, int] = {
    "task": 1,  # the task of a generated family instance
    "build": 2,  # every random choice of a construction (codes, unit assignment, repair)
    "inputs": 3,  # random / targeted inputs of the width search's probes
    "check": 4,  # sampled inputs of the check every build runs on itself
    "verify": 5,  # inputs of an explicit ``verify`` run
    "data": 6,  # dataset batches (superpose.data) and the trained baselines' training inputs
    "levels": 7,  # inputs of the per-level report (``superpose verify --levels``)
    "search": 8,  # the seed a sweep point hands to its width search
    "sample": 9,  # which outputs the comparison's peers are built for (a random sample)
}
"""Stream numbers; never renumber one (files record the root seed only)."""


@dataclass(frozen=True)
class Seeds:
    """Named, independent generators derived from one non-negative root seed."""

    root: int
    path: tuple[int, ...] = ()
    """Indices of a child run (``child``); empty for a plain run."""

    def __post_init__(self) -> None:
        if isinstance(self.root, bool) or not isinstance(self.root, (int, np.integer)):
            raise SuperposeError(f"seed must be an integer, got {self.root!r}")
        if self.root < 0:
            raise SuperposeError(f"seed must be >= 0, got {self.root}")
        if any(
            isinstance(i, bool) or not isinstance(i, (int, np.integer)) or i < 0 for i in self.path
        ):
            raise SuperposeError(f"seed path must hold integers >= 0, got {self.path!r}")

    def child(self, *index: int) -> Seeds:
        """The seeds of sub-run ``index`` (its streams are independent of this run's and of
        every other child's).

        >>> Seeds(7).child(3).record()
        {'root': 7, 'path': [3]}
        """
        return Seeds(self.root, self.path + tuple(int(i) for i in index))

    def sequence(self, name: str) -> np.random.SeedSequence:
        """The ``SeedSequence`` of stream ``name``."""
        if name not in STREAMS:
            raise SuperposeError(f"unknown random stream {name!r} (known: {', '.join(STREAMS)})")
        if not self.path:
            return np.random.SeedSequence([int(self.root), STREAMS[name]])
        # The length last: SeedSequence pads its entropy with zeros, so [root, n, 0] would be
        # the parent's stream [root, n] and child(1, 0) would be child(1).
        return np.random.SeedSequence([int(self.root), STREAMS[name], *self.path, len(self.path)])

    def rng(self, name: str) -> np.random.Generator:
        """A fresh generator for stream ``name`` (the same draws every time it is asked for)."""
        return np.random.default_rng(self.sequence(name))

    def record(self) -> dict[str, Any]:
        """What a file stores to recreate every stream."""
        if self.path:
            return {"root": int(self.root), "path": list(self.path)}
        return {"root": int(self.root)}
