"""Planning the ``circuit`` construction: levels, sparsity bounds, stages, detectors.

Levelling (:func:`superpose.levels.layout`): a gate's level is one more than its deepest
operand (inputs are level 0); only gates some output depends on are built. Every level becomes
one :class:`Stage` (one layer of the network), ``cleanup=k`` adds a clean-up stage after every
k-th level.

**Sparsity through depth.** :func:`superpose.levels.active_bounds` bounds the true gates of
every level for s-sparse inputs (exact enumeration of single inputs and of the input pairs /
triples that meet at an AND gate; the cone bound as fallback). A level whose bound exceeds
``max_active`` is refused, naming the level, the bound and the width it would need.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import numpy as np

from superpose.task import OP_CODE

SIZINGS = ("bound", "sampled")
CARRIES = ("auto", "copy", "encode")
MAX_DEPTH = 16
"""Most levels the width planner takes: its coordinate descent over one slack per stage grows
as depth^2-3 (20 features, one gate per level: 5 s at 10 levels, 21 s at 20, 55 s at 30).
Deeper tasks go to the explicit network, which builds any depth at once."""
INHIBITED_OPS = (OP_CODE["xor"], OP_CODE["andnot"])
"""Gates whose main part (xor: an or; andnot: a copy of a) needs a detector to turn it off."""


@dataclass
class Stage:
    """One layer of the deep network: a circuit level's gate pool plus copies, or a clean-up."""

    level: int
    kind: str  # "level" or "cleanup"
    gates: np.ndarray  # gate indices computed here
    reads: list[int]  # blocks (0 = inputs, j = level j) the pool reads
    bound: int = 0  # most of this level's gates true at once (upper bound)
    stage_bound: int = 0  # most nodes of the whole layer true at once (gates and carries)
    sized_for: int = 0  # the active count of this level the pool was sized for
    a_in: int = 0  # active codes the pool's units can see
    fan_in: float = 0.0
    pool: int = 0  # planned width of the gate pool
    private: bool = False  # each part owns l units (no sharing): when sharing would be wider
    ell: int = 0  # code length of the pool's parts
    stats: dict[str, Any] = field(default_factory=dict)
