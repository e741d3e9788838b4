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

from superpose.constructions._bloom import operand_matrix
from superpose.errors import SuperposeError
from superpose.levels import ActiveBounds, Layout, operands_meet, width_needed
from superpose.task import OP_CODE, Task

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


def plan_stages(
    task: Task,
    lay: Layout,
    bnd: ActiveBounds,
    *,
    max_active: int,
    sizing: str,
    sample_inputs: int,
    cleanup: int,
    max_candidates: int,
) -> tuple[list[Stage], dict[str, Any]]:
    """The stages of ``task`` (levelled as ``lay``, bounded by ``bnd``) and what the sizing needs
    to know about them: how many true gates each level is sized for, which gates need a
    detector. Refuses a level that cannot stay sparse before anything is sized."""
    refuse_dense_levels(task, lay, bnd, max_active)
    sized = bnd.level_bounds if sizing == "bound" else sampled_active(task, lay, sample_inputs)
    sized = [max(1, min(a, b)) for a, b in zip(sized, bnd.level_bounds, strict=True)]
    stages = level_stages(task, lay, bnd, sized, cleanup)
    detect, skipped = needs_detector(task, lay, max_candidates)
    info = {
        "bounds": bnd.as_dict(),
        "sized_for": sized,
        "detect": detect,
        "detectors_skipped": skipped,
    }
    return stages, info


def refuse_dense_levels(task: Task, lay: Layout, bnd: ActiveBounds, max_active: int) -> None:
    """Refuse the first level with more than ``max_active`` gates possibly true at once: a
    superposed layer holding them would be wider than the explicit network, so the message
    names the level, its bound and the width it would need."""
    s = task.sparsity
    for level, b in enumerate(bnd.level_bounds, start=1):
        if b > max_active:
            n_gates = len(lay.gates[level - 1])
            raise SuperposeError(
                f"level {level} cannot stay sparse: up to {b} of its {n_gates} gates can be "
                f"true at once for {s}-sparse inputs ({bnd.method} bound), above "
                f"max_active={max_active}; a superposed layer holding them would need "
                f"about {width_needed(b, 6):,} neurons -- use the 'naive' construction",
                cli="--construction naive",
            )


def level_stages(
    task: Task, lay: Layout, bnd: ActiveBounds, sized: list[int], cleanup: int
) -> list[Stage]:
    """One stage per level (the blocks its gates read, its bounds, what it is sized for), and a
    clean-up stage after every ``cleanup``-th level but the last (0 = none)."""
    stages: list[Stage] = []
    level_of = task.node_level
    for level in range(1, lay.depth + 1):
        gates = lay.gates[level - 1]
        _, operand, _ = operand_matrix(task, gates)
        reads = sorted({int(v) for v in np.unique(level_of[operand])})
        st = Stage(level, "level", gates, reads)
        st.bound, st.stage_bound = bnd.level_bounds[level - 1], bnd.bounds[level - 1]
        st.sized_for = sized[level - 1]
        stages.append(st)
        if cleanup and level % cleanup == 0 and level < lay.depth:
            stages.append(Stage(level, "cleanup", gates[:0], []))
    return stages


def needs_detector(task: Task, lay: Layout, max_candidates: int) -> tuple[np.ndarray, int]:
    """Which gates get a detector unit (per gate), and how many xor / andnot gates do not.

    A xor / andnot gate whose operands are never true together on an s-sparse input is an
    or / copy there: it needs no detector (:func:`superpose.levels.operands_meet`)."""
    detect = np.zeros(task.n_gates, dtype=bool)
    inhibited = np.flatnonzero(np.isin(task.ops, INHIBITED_OPS) & lay.needed)
    detect[inhibited] = operands_meet(task, inhibited, max_candidates=max_candidates)
    return detect, int(len(inhibited) - detect.sum())


def sampled_active(task: Task, lay: Layout, n_inputs: int) -> list[int]:
    """Most true gates per level over ``n_inputs`` sampled s-sparse inputs (the verifier's
    random mix): what ``sizing="sampled"`` sizes for. A fixed sample (seed 12345), part of the
    sizing model, so the same task always gets the same widths."""
    from superpose.evaluation import evaluate_nodes
    from superpose.levels import level_membership, relaxed
    from superpose.sparse_inputs import random_inputs

    member = level_membership(task, lay)
    rng = np.random.default_rng(12345)
    best = np.zeros(lay.depth, dtype=np.int64)
    # The relaxed circuit: a xor whose operands are both on still lights its code.
    mono = relaxed(task)
    for batch in random_inputs(task, n_inputs, rng):
        counts = np.asarray((evaluate_nodes(mono, batch) @ member).toarray())
        best = np.maximum(best, counts.max(axis=0))
    return [int(b) for b in best]


def held_nodes(lay: Layout, task: Task, after: int) -> np.ndarray:
    """Node ids a layer holds after stage ``after`` (0 = the input layer): the nodes of levels
    up to ``after`` that some later level or output still reads (gates only if needed)."""
    m = task.features
    lev = task.node_level
    keep = lay.last_use > after
    keep &= lev <= after
    if after > 0:
        gate_ok = np.zeros(task.n_nodes, dtype=bool)
        gate_ok[:m] = True
        gate_ok[m:] = lay.needed
        keep &= gate_ok
    return np.flatnonzero(keep)
