"""Sizing the ``circuit`` construction: how wide each pool must be (our model).

A pool unit reading a fraction f of the previous layer fires falsely
with probability p = P(Bin(on_bits, f) >= l_in) (on_bits: l_in bits per true code it can see,
plus allowed stray units); a part fails when all l of its units do. f is the largest fan-in
keeping the expected false parts per input below ``failure`` and the expected stray units below
``max(1, a/4)`` codes (stray units are copied forward and feed every later layer). Then
``pool_L * n_read >= l_in * l * operands_L / ln(1/(1 - f))`` (n_read: the width of the blocks
the pool reads, not of the copies beside them) and a decoding floor
``pool_L >= (a + strays) l / (target/parts)^(1/l)``. Every block has its own code length l
(one length for all first, then each block's by coordinate descent over a grid), and the
widths minimising the total are found by :func:`_chain_widths` (deterministic). ``a`` is the
worst-case bound (``sizing="bound"``, the default) or the most true gates seen on sampled inputs
(``sizing="sampled"``: narrower, no worst-case claim). A pool as wide as l private units per
part is built with private units (its l units fire together, so the layer before must keep
one unit's false firing below the target); a superposed input layer as wide as m is explicit
(inputs read later are then re-encoded).
"""

from __future__ import annotations

import functools
import math
import weakref
from dataclasses import dataclass
from typing import Any, NamedTuple

import numpy as np
from scipy import special

from superpose._numeric import largest
from superpose.constructions.circuit.plan import Stage, held_nodes
from superpose.levels import Layout
from superpose.task import OP_CODE, Task

CIRCUIT_FAILURE = 1e-4
"""Target expected false parts, over all stages, for an input with the sized-for number of
true gates at every level (the worst case under ``sizing="bound"``). Typical inputs have far
fewer true gates, and the false-firing chance falls steeply with them, so the rate over
random inputs is orders of magnitude lower (0 wrong in 10^4 random + 10^4 targeted inputs on
the depth-4 benchmark; 1e-6 costs 18% more neurons there)."""
ELL_GRID = tuple(range(3, 11))
"""Code lengths the sizing tries (unless ``ell`` fixes one)."""
CERTIFIABLE = 200_000
"""Below this many <= s-sparse inputs the failure target is lowered so that the first widths
usually pass the exhaustive check that every build runs on itself."""


def _resolve_width(
    n_parts: int, active: int, ell_in: int, ell: int, n_prev: int, target: float
) -> int:
    """Width of the last pool that re-encodes xor / andnot outputs (copy parts of codes of
    length ``ell_in``, new codes of length ``ell``)."""
    if n_parts == 0:
        return 6 * ell
    a = min(active, n_parts)
    f = fan_in_for(n_parts, ell_in * (a + stray(a)), ell_in, ell, target)
    cover = (target / n_parts) ** (1.0 / ell)
    need = max(
        ell_in * ell * n_parts / -math.log1p(-f) / max(n_prev, 1), (a + stray(a)) * ell / cover
    )
    return int(math.ceil(max(6 * ell, need)))


class _Spec(NamedTuple):
    """One stage as the sizing sees it."""

    n_parts: int
    n_ops: int  # operand reads of its parts
    on_bits: float  # bits of true (and stray) codes its units can see
    a_out: int  # its true codes, sized for
    a_in: int  # true codes it reads
    floor: float  # decoding floor of its pool
    need: int  # on bits that fire a unit ("any present": one input code)
    ell: int  # code length of its pool
    ell_read: int  # longest code it reads
    arity: int  # most operands of one gate


def _active_in(task: Task, nodes: np.ndarray, active: dict[int, int]) -> int:
    """True codes at most among ``nodes``: the sized-for count of every level they come from."""
    return int(sum(active.get(int(lv), 0) for lv in np.unique(task.node_level[nodes])))


def _best_resolve(
    n_parts: int, active: int, ell_in: int, n_prev: int, target: float, grid: list[int]
) -> tuple[int, int]:
    """(width, code length) of the narrowest resolve pool over the code lengths in ``grid``."""
    return min((_resolve_width(n_parts, active, ell_in, e, n_prev, target), e) for e in grid)


@functools.lru_cache(maxsize=1 << 16)
def fan_in_for(
    parts: int, on_bits: float, need: int, ell_out: int, target: float, unit_cap: float = 1.0
) -> float:
    """Largest fan-in fraction f with ``parts * p^ell_out <= target`` and ``p <= unit_cap``,
    where p = P(Bin(on_bits, f) >= need) is the chance a unit fires falsely.

    Example:
        >>> 0.01 < fan_in_for(10_000, 60, 6, 6, 1e-7) < 0.1
        True
    """
    bits = int(math.ceil(on_bits))
    if bits < need:
        return 0.9

    def ok(f: float) -> bool:
        p = float(special.bdtrc(need - 1, bits, f))
        return p <= unit_cap and parts * p**ell_out <= target

    return largest(ok, 1e-6, 0.9, 50)


STRAY_SHARE = 0.25
"""Falsely firing units allowed per pool (expected), as a share of its true codes' units."""


def stray(active: float) -> float:
    """Stray codes' worth of falsely firing units allowed in a pool holding ``active`` true codes."""
    return max(1.0, STRAY_SHARE * active)


def _chain_widths(
    floors: list[float],
    products: list[float],
    layer_blocks: list[list[int]],
    fixed_input: bool = False,
    ceilings: list[float] | None = None,
    read_blocks: list[list[int]] | None = None,
) -> list[float]:
    """Block widths minimising the total neurons of a chain of layers.

    Block 0 is the input layer, block i + 1 the pool of stage i; layer i holds the blocks
    ``layer_blocks[i]``. Stage i needs ``(width of the blocks it reads) * pool_i >= products[i]``
    (``read_blocks[i]``; default: the whole layer before) and every block its floor. Each
    pool is written as ``max(floor, t * product / read width)``
    with a slack t >= 1 (the input as ``max(floor, t * sqrt(products[0]))``), so every choice of
    slacks meets the products; a block above its ceiling (a private pool has a fixed width)
    is charged a large penalty, so the descent widens the layer before it instead. The
    slacks are set by coordinate descent on a log grid. Element-wise arithmetic only (no
    BLAS), so the result does not depend on BLAS threads (SLSQP's did).

    Example:
        >>> [round(w) for w in _chain_widths([10.0, 10.0, 10.0], [1e4, 1e4], [[1], [2]])]
        [71, 141, 71]
    """
    n = len(floors)
    lo = np.asarray(floors, dtype=np.float64)
    caps = np.asarray(ceilings if ceilings is not None else [math.inf] * n, dtype=np.float64)
    k = np.asarray(products, dtype=np.float64)
    member = np.zeros((len(layer_blocks), n))
    for i, blocks in enumerate(layer_blocks):
        member[i, blocks] = 1.0
    # The blocks each stage's units read (default: the whole layer before).
    reads = read_blocks if read_blocks is not None else [[0], *layer_blocks[:-1]]
    read_member = np.zeros((len(reads), n))
    for i, blocks in enumerate(reads):
        read_member[i, blocks] = 1.0

    def widths(t: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """Widths and penalised totals for a batch of slack vectors t (rows)."""
        w = np.zeros_like(t)
        w[:, 0] = lo[0] if fixed_input else np.maximum(lo[0], t[:, 0] * math.sqrt(k[0]))
        excess = np.zeros(len(t))
        for i in range(n - 1):
            prev = (w * read_member[i]).sum(axis=1)
            w[:, i + 1] = np.maximum(lo[i + 1], t[:, i + 1] * k[i] / prev)
            excess += np.maximum(w[:, i + 1] - caps[i + 1], 0.0)
            w[:, i + 1] = np.minimum(w[:, i + 1], caps[i + 1])
        total = w[:, 0] + (w * member.sum(axis=0)).sum(axis=1)
        return w, total + 1e3 * excess

    steps = np.asarray(STEPS)
    # The input width is searched on a grid (the total is not convex in it: a narrow input
    # layer makes the first pool wide but every copy of the inputs cheap); coordinate descent
    # from every start at once.
    starts = [1.0] if fixed_input else [2.0 ** (x / 2) for x in range(-8, 5)]
    t = np.ones((len(starts), n))
    t[:, 0] = starts
    best = widths(t)[1]
    for _ in range(100):
        improved = False
        for j in range(1, n):
            trials = np.repeat(t[:, None, :], len(steps), axis=1)
            trials[:, :, j] = np.maximum(1.0, t[:, j : j + 1] * steps[None, :])
            totals = widths(trials.reshape(-1, n))[1].reshape(len(starts), len(steps))
            pick = np.argmin(totals, axis=1)
            value = totals[np.arange(len(starts)), pick]
            better = value < best * (1 - 1e-12)
            if better.any():
                improved = True
                t[better] = trials[np.flatnonzero(better), pick[better]]
                best = np.where(better, value, best)
        if not improved:
            break
    t = t[int(np.argmin(best))]
    return [float(x) for x in widths(t[None, :])[0][0]]


STEPS = tuple(2.0 ** (k / 16) for k in (-16, -8, -4, -2, -1, 1, 2, 4, 8, 16))

_SIZING_MEMO: weakref.WeakKeyDictionary[Task, dict[tuple[Any, ...], Any]] = (
    weakref.WeakKeyDictionary()
)
"""Sized plans per task and parameters: the build pipeline's attempts (wider widths, same
sizing) and planning before building reuse them."""


def size_plan(
    task: Task,
    lay: Layout,
    stages: list[Stage],
    ells: list[int],
    detect: np.ndarray,
    failure: float,
    explicit_in: bool = False,
    encode: bool = False,
) -> tuple[float, int, list[int]]:
    """Planned total neurons, input width and pool widths for code lengths ``ells``; the
    stages are left holding their sized pools (width, code length, fan-in, private or not).

    Blocks: 0 = the input code, i + 1 = the pool of stage i; ``ells[b]`` is block b's code
    length. Layer i holds its own pool and copies of the earlier blocks that still hold a
    needed node. Each stage's pool needs ``n_{i-1} * pool_i >= K_i`` (fan-in rule) and
    ``pool_i >= floor_i`` (decoding); :func:`_chain_widths` minimises the total. ``failure``
    is shared equally by the two halves (false parts, strays) of every stage.
    """
    target = failure / (2 * len(stages))
    level_active = {0: task.sparsity} | {
        st.level: st.sized_for for st in stages if st.kind == "level"
    }
    specs, walk = _stage_specs(
        task, lay, stages, ells, detect, level_active, target, explicit_in, encode
    )
    floors = np.array(
        [float(task.features) if explicit_in else _input_floor(task, ells[0], target)]
        + [sp.floor for sp in specs]
    )
    width, fans, private = _fit_widths(specs, floors, walk, target, explicit_in)
    for i, st in enumerate(stages):
        st.fan_in, st.a_in, st.pool = fans[i], specs[i].a_in, int(math.ceil(width[i + 1]))
        st.private, st.ell = private[i], specs[i].ell
        if st.private:
            st.pool = specs[i].ell * specs[i].n_parts
    planned = width[0] + sum(
        sum(width[b] for b in walk.layer_blocks[i]) for i in range(len(stages))
    )
    last = lay.gates[-1]
    if np.isin(task.features + last[detect[last]], task.outputs).any():
        planned += _resolve_cost(task, level_active, specs[-1].ell, width, walk, target)
    return float(planned), int(math.ceil(width[0])), [st.pool for st in stages]


@dataclass
class _Walk:
    """Where the nodes live as the stages are walked in order: which nodes each block codes,
    the blocks of the layer being built, the nodes the layer before holds, and the block and
    code length each level's nodes now live in. Collects which blocks each layer holds and
    which blocks each stage reads (the shape :func:`_chain_widths` needs)."""

    block_nodes: list[np.ndarray]
    current: list[int]
    held_before: np.ndarray
    level_ell: dict[int, int]
    level_block: dict[int, int]
    layer_blocks: list[list[int]]
    read_blocks: list[list[int]]


class _Count(NamedTuple):
    """What one stage's pool computes: parts, operand reads, true codes it is sized for, the
    fewest on codes that fire one of its parts, and the levels (blocks) its units read."""

    n_parts: int
    n_ops: int
    a_out: int
    k_min: int
    blocks: list[int]


def _stage_specs(
    task: Task,
    lay: Layout,
    stages: list[Stage],
    ells: list[int],
    detect: np.ndarray,
    level_active: dict[int, int],
    target: float,
    explicit_in: bool,
    encode: bool,
) -> tuple[list[_Spec], _Walk]:
    """Every stage as the sizing sees it (:class:`_Spec`), walking the stages in order since
    what a stage reads depends on where the stages before it left each level's nodes."""
    m = task.features
    walk = _Walk(
        [np.arange(m)], [0], np.arange(m), {0: 1 if explicit_in else ells[0]}, {0: 0}, [], []
    )
    specs = []
    for i, st in enumerate(stages):
        held_after = held_nodes(lay, task, st.level)
        ell = ells[i + 1]
        re_encode = encode or (explicit_in and i == 0)
        if st.kind == "level":
            count = _level_count(
                task, lay, st, i, held_after, detect, level_active, walk, re_encode, encode
            )
        else:
            count = _cleanup_count(task, i, held_after, level_active, walk)
        walk.layer_blocks.append(list(walk.current))
        walk.read_blocks.append(sorted({walk.level_block[b] for b in count.blocks}) or [0])
        walk.held_before = held_after
        specs.append(_spec(task, st, count, ell, level_active, walk.level_ell, target))
        # Where each level's nodes live from now on.
        if st.kind == "level" and not re_encode:
            walk.level_ell[st.level] = ell
            walk.level_block[st.level] = i + 1
        else:
            walk.level_ell = {lv: ell for lv in walk.level_ell} | {st.level: ell}
            walk.level_block = {lv: i + 1 for lv in walk.level_ell}
    return specs, walk


def _level_count(
    task: Task,
    lay: Layout,
    st: Stage,
    i: int,
    held_after: np.ndarray,
    detect: np.ndarray,
    level_active: dict[int, int],
    walk: _Walk,
    re_encode: bool,
    encode: bool,
) -> _Count:
    """A level stage's pool: its gates, plus the unresolved xor / andnot nodes of the level
    before (re-encoded here so their detectors can act), plus -- when carries are re-encoded
    (``re_encode``) -- every node carried past this level. Advances ``walk``: the new layer
    holds the pool and the earlier blocks that still hold a node read later."""
    m = task.features
    n_parts = len(st.gates)
    n_ops = int(task.arity[st.gates].sum())
    blocks = st.reads
    a_out = st.sized_for
    is_and = task.ops[st.gates] == OP_CODE["and"]
    k_min = 1 if (~is_and).any() or not len(st.gates) else int(task.arity[st.gates].min())
    walk.block_nodes.append(m + st.gates)
    keep = [b for b in walk.current if np.isin(walk.block_nodes[b], held_after).any()]
    prev = lay.gates[st.level - 2] if st.level >= 2 else np.zeros(0, np.int64)
    prev = m + prev[detect[prev]]
    pending = int(np.isin(prev, held_after).sum())
    if pending:
        # Unresolved xor / andnot nodes of the level before are re-encoded here.
        n_parts += pending
        n_ops += pending
        a_out += min(pending, level_active.get(st.level - 1, 0))
        k_min = 1
    if re_encode:
        # Nodes carried past this level are re-encoded into its pool (copy parts).
        carried = held_after[~np.isin(held_after, m + st.gates)]
        carried = carried[~np.isin(carried, prev)]
        n_parts += len(carried)
        n_ops += len(carried)
        a_out += _active_in(task, carried, level_active)
        keep = []
        k_min = 1 if len(carried) else k_min
        if encode:
            blocks = sorted({int(v) for v in np.unique(task.node_level[walk.held_before])})
    walk.current = [i + 1, *keep]
    return _Count(n_parts, n_ops, a_out, k_min, blocks)


def _cleanup_count(
    task: Task, i: int, held_after: np.ndarray, level_active: dict[int, int], walk: _Walk
) -> _Count:
    """A clean-up stage's pool: one copy part per held node, reading every level still held.
    Advances ``walk``: the new layer holds that pool only."""
    blocks = sorted({int(v) for v in np.unique(task.node_level[held_after])})
    a_out = sum(level_active.get(b, 0) for b in blocks)
    walk.block_nodes.append(held_after)
    walk.current = [i + 1]
    return _Count(len(held_after), len(held_after), a_out, 1, blocks)


def _spec(
    task: Task,
    st: Stage,
    count: _Count,
    ell: int,
    level_active: dict[int, int],
    level_ell: dict[int, int],
    target: float,
) -> _Spec:
    """The on bits a stage's units can see (true and stray codes of the levels it reads, at
    their code lengths) and its pool's decoding floor: what :func:`fan_in_for` and
    :func:`_chain_widths` need of it."""
    blocks = count.blocks
    a_in = sum(level_active.get(b, 0) for b in blocks)
    ell_in = min((level_ell[b] for b in blocks), default=ell)
    ell_read = max((level_ell[b] for b in blocks), default=ell)
    if ell_read == 1:
        on_bits = float(task.sparsity)  # an explicit input layer has no stray units
    else:
        on_bits = sum(
            level_ell[b] * (level_active.get(b, 0) + stray(level_active.get(b, 0))) for b in blocks
        )
    cover = (target / max(count.n_parts, 1)) ** (1.0 / ell)
    floor = max(6.0 * ell, (count.a_out + stray(count.a_out)) * ell / cover)
    arity = int(task.arity[st.gates].max()) if len(st.gates) else 1
    return _Spec(
        count.n_parts,
        count.n_ops,
        on_bits,
        count.a_out,
        a_in,
        floor,
        ell_in * count.k_min,
        ell,
        ell_read,
        arity,
    )


def _input_floor(task: Task, ell0: int, target: float) -> float:
    """Decoding floor of a superposed input code of length ``ell0`` (s true features, one
    stray): at least 4 l s, and wide enough that a false feature is rarely fully covered."""
    s = task.sparsity
    return max(4.0 * ell0 * s, (s + 1) * ell0 / (target / task.features) ** (1.0 / ell0))


def _fit_widths(
    specs: list[_Spec], floors: np.ndarray, walk: _Walk, target: float, explicit_in: bool
) -> tuple[np.ndarray, list[float], list[bool]]:
    """Block widths, fan-in fractions and private flags, alternating the two until they agree:
    a fan-in depends on the pool's width (the stray cap), the widths on the fan-ins, and a pool
    that comes out at least as wide as l private units per part is built private instead
    (then its width is fixed). ``floors`` is updated for the private pools."""
    n = len(specs)
    width = floors.copy()
    products = np.zeros(n)
    fans = [0.0] * n
    private = [False] * n
    ceilings = np.full(len(floors), np.inf)
    for _round in range(4):
        for i, sp in enumerate(specs):
            fans[i], products[i] = _fan_in(
                sp, width[i + 1], private[i], floors, ceilings, i, target
            )
        width = np.array(
            _chain_widths(
                [float(f) for f in floors],
                [float(k) for k in products],
                walk.layer_blocks,
                fixed_input=explicit_in,
                ceilings=[float(c) for c in ceilings],
                read_blocks=walk.read_blocks,
            )
        )
        # A pool at least as wide as l private units per part is built that way instead.
        grew = False
        for i, sp in enumerate(specs):
            if not private[i] and width[i + 1] >= sp.ell * sp.n_parts:
                private[i], grew = True, True
        if not grew and _round >= 2:
            break
    return width, fans, private


def _fan_in(
    sp: _Spec,
    pool: float,
    private: bool,
    floors: np.ndarray,
    ceilings: np.ndarray,
    i: int,
    target: float,
) -> tuple[float, float]:
    """Stage i's fan-in fraction and the product (pool width times the width it reads) the
    fan-in rule asks of it, for a pool currently ``pool`` wide. A private pool's width is
    fixed (its floor and ceiling are set here)."""
    cap = stray(sp.a_out) * sp.ell / max(pool, 1.0)
    if private:
        # A part's l private units read the same bits and fire together: one unit's
        # false-firing chance is the part's. It reads ~arity codes of the layer
        # before, which must be wide enough for that.
        floors[i + 1] = ceilings[i + 1] = max(sp.ell * sp.n_parts, 1)
        fan = fan_in_for(sp.n_parts, sp.on_bits, sp.need, 1, target)
        return fan, floors[i + 1] * sp.arity * sp.ell_read / fan
    fan = fan_in_for(sp.n_parts, sp.on_bits, sp.need, sp.ell, target, cap)
    return fan, sp.ell * sp.ell_read * sp.n_ops / -math.log1p(-fan)


def _resolve_cost(
    task: Task,
    level_active: dict[int, int],
    last_ell: int,
    width: np.ndarray,
    walk: _Walk,
    target: float,
) -> int:
    """Width of the resolve layer that xor / andnot outputs need: it re-encodes every output,
    and its width depends on the last pool's code length, so it is part of the plan."""
    n_out = len(task.outputs)
    a_all = _active_in(task, task.outputs, level_active)
    last_width = sum(width[b] for b in walk.layer_blocks[-1])
    return _best_resolve(n_out, a_all, last_ell, int(last_width), target, list(ELL_GRID))[0]
