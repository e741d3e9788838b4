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
from typing import Any, NamedTuple

import numpy as np
from scipy import special

from superpose._numeric import largest
from superpose.task import Task

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
