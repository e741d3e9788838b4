"""One seeding policy: every random stream of a run is a named child of one root seed.

A run (``superpose build --seed 7``, ``superpose.build(task, seed=7)``, a sweep point) draws
from several independent streams: the task generator, the construction, the verifier's inputs,
the check after building. Each is ``SeedSequence([root, number])`` with a fixed number per
name, so

* the CLI and the library give byte-identical networks for the same seed (they ask for the
  same named stream, never for ``default_rng(seed)`` in one place and a salted one in another);
* adding a new stream never shifts an existing one;
* a file records ``{"root": seed}`` and every stream can be recreated from it.

Example:
    >>> a = Seeds(7).rng("build").integers(1000, size=3)
    >>> b = Seeds(7).rng("build").integers(1000, size=3)
    >>> bool((a == b).all()), bool((a == Seeds(7).rng("check").integers(1000, size=3)).all())
    (True, False)
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from superpose.errors import SuperposeError

STREAMS: dict[str, int] = {
    "task": 1,  # the task of a generated family instance
    "build": 2,  # every random choice of a construction (codes, unit assignment, repair)
    "inputs": 3,  # random / targeted inputs of the width search's probes
    "check": 4,  # sampled inputs of the check every build runs on itself
    "verify": 5,  # inputs of an explicit ``verify`` run
    "data": 6,  # dataset batches (superpose.data) and the trained baselines' training inputs
}
"""Stream numbers; never renumber one (files record the root seed only)."""


@dataclass(frozen=True)
class Seeds:
    """Named, independent generators derived from one non-negative root seed."""

    root: int

    def __post_init__(self) -> None:
        if isinstance(self.root, bool) or not isinstance(self.root, (int, np.integer)):
            raise SuperposeError(f"seed must be an integer, got {self.root!r}")
        if self.root < 0:
            raise SuperposeError(f"seed must be >= 0, got {self.root}")

    def sequence(self, name: str) -> np.random.SeedSequence:
        """The ``SeedSequence`` of stream ``name``."""
        if name not in STREAMS:
            raise SuperposeError(f"unknown random stream {name!r} (known: {', '.join(STREAMS)})")
        return np.random.SeedSequence([int(self.root), STREAMS[name]])

    def rng(self, name: str) -> np.random.Generator:
        """A fresh generator for stream ``name`` (the same draws every time it is asked for)."""
        return np.random.default_rng(self.sequence(name))

    def record(self) -> dict[str, int]:
        """What a file stores to recreate every stream."""
        return {"root": int(self.root)}
