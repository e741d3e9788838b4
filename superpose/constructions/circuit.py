"""The ``circuit`` construction *(ours)*: deep tasks, one superposed threshold layer per level.

Levelling (:func:`superpose.levels.layout`): a gate's level is one more than its deepest
operand (inputs are level 0); only gates some output depends on are built. Layer L holds
*blocks*: a shared Bloom-code pool computing the level-L gates
(:func:`~superpose.constructions.superposed.threshold_stage`, influence channels included),
reading the previous layer's code, plus exact unit-by-unit copies (step units, weight 1,
threshold 1) of every earlier block that still holds a node read later or an output. Copies
never add errors, and a pool's units only see the true codes of the blocks they read, so each
pool is sized for the true gates of one level, not of all earlier levels. The last layer's
code, restricted to ``task.outputs``, is the network's output code. Every true node fires all
of its units, so monotone stages make false positives only, and only when a layer is too narrow.

**Sparsity through depth.** :func:`superpose.levels.active_bounds` bounds the true gates of
every level for s-sparse inputs (exact enumeration of single inputs and of the input pairs /
triples that meet at an AND gate; the cone bound as fallback). A level whose bound exceeds
``max_active`` is refused, naming the level, the bound and the width it would need.

**Sizing** (our model). A pool unit reading a fraction f of the previous layer fires falsely
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

**Mixed pools.** "Any present" parts (or, copy: threshold one code) and 2-ANDs (two codes) share
the pool's units: bits read by the former weigh 2. Separate pools per threshold would crowd the
codes of true gates (mostly ors) into one part of the layer, where the next level's units see
several times the on-bits the sizing assumes; mixed, they spread over the whole pool.

**Carries.** Nodes read more than one level later are copied unit by unit (``carries="copy"``)
or re-encoded into every pool as copy parts (``"encode"``); ``"auto"`` plans both and keeps the
narrower.

**XOR and ANDNOT** (2 inputs). The gate's main part sits in the pool like an OR (xor) or a copy
of a (andnot); a private *detector* unit fires when both operands are present. Readers give the
detector weight -k, k = the weight of the bits of the gate's code no other code they read
covers, so the gate counts as off exactly when it must be; carried xor / andnot nodes are
re-encoded one level later (copy parts with the same inhibition), and a last level with xor /
andnot outputs gets one more layer that resolves them (re-encoding every output, or only those
plus unit copies of the rest, whichever is narrower). A gate whose operands are never true
together on an s-sparse input (:func:`superpose.levels.operands_meet`, exact for s <= 2) is an
or / copy on every input that matters and gets no detector.

**Clean-up.** ``cleanup=k`` re-encodes every held node after every k-th level (copy parts: a
threshold layer that keeps only complete codes), in the spirit of the error-correction layers
of Hänni et al.; :func:`superpose.stage_check.level_report` measures what it costs and saves.
"""

from __future__ import annotations

import functools
import math
import weakref
from dataclasses import dataclass, field
from typing import Any, NamedTuple

import numpy as np
from scipy import sparse, special

from superpose._numeric import largest
from superpose.codes import BloomCode
from superpose.constructions._bloom import operand_matrix, read_sets, threshold_layer
from superpose.constructions.base import Capabilities, Construction
from superpose.constructions.superposed import (
    Parts,
    _Certified,
    input_code_for,
    threshold_stage,
)
from superpose.errors import SuperposeError
from superpose.levels import (
    DEFAULT_MAX_CANDIDATES,
    ActiveBounds,
    Layout,
    active_bounds,
    layout,
    operands_meet,
    width_needed,
)
from superpose.network import Layer, Network
from superpose.task import OP_CODE, Task, n_sparse_inputs

SIZINGS = ("bound", "sampled")
CARRIES = ("auto", "copy", "encode")
CIRCUIT_FAILURE = 1e-4
"""Target expected false parts, over all stages, for an input with the sized-for number of
true gates at every level (the worst case under ``sizing="bound"``). Typical inputs have far
fewer true gates, and the false-firing chance falls steeply with them, so the rate over
random inputs is orders of magnitude lower (0 wrong in 10^4 random + 10^4 targeted inputs on
the depth-4 benchmark; 1e-6 costs 18% more neurons there)."""
ELL_GRID = tuple(range(3, 11))
CERTIFIABLE = 200_000
MAX_DEPTH = 16
"""Most levels the width planner takes: its coordinate descent over one slack per stage grows
as depth^2-3 (20 features, one gate per level: 5 s at 10 levels, 21 s at 20, 55 s at 30).
Deeper tasks go to the explicit network, which builds any depth at once."""
"""Below this many <= s-sparse inputs the failure target is lowered so that the first widths
usually pass the exhaustive check that every build runs on itself."""


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


def _parts(task: Task, gates: np.ndarray, carried: np.ndarray, row_of: np.ndarray) -> Parts:
    """Threshold parts: one per gate (and: need = arity; or/copy: 1), one copy part per carry."""
    ops = task.ops[gates]
    arity = task.arity[gates]
    gate_of, operand, pos = operand_matrix(task, gates)
    # ANDNOT's part is "a present"; "b present" is its detector unit (see _detectors).
    keep = ~((ops[gate_of] == OP_CODE["andnot"]) & (pos == 1))
    gate_of, operand = gate_of[keep], operand[keep]
    g_of = np.concatenate([gate_of, len(gates) + np.arange(len(carried))]).astype(np.int64)
    nodes_in = np.concatenate([operand, carried]).astype(np.int64)
    rows = row_of[nodes_in]
    if (rows < 0).any():
        raise SuperposeError("internal: an operand is not held by the previous layer")
    need = np.concatenate(
        [np.where(ops == OP_CODE["and"], arity, 1), np.ones(len(carried), np.int64)]
    ).astype(np.int64)
    n = len(gates) + len(carried)
    return Parts(np.arange(n), np.ones(n, np.int8), need, g_of, rows)


INHIBITED_OPS = (OP_CODE["xor"], OP_CODE["andnot"])


def _detectors(
    task: Task, gates: np.ndarray, detect: np.ndarray, row_of: np.ndarray, operand_code: BloomCode
) -> tuple[np.ndarray, sparse.csr_array, np.ndarray, tuple[np.ndarray, np.ndarray]]:
    """One private detector unit per xor / andnot gate whose operands can meet (``detect``):
    it fires when the gate must be off although its main part is on (both operands present).
    Returns the gates, their read sets over the previous layer, their thresholds and their
    (detector, row) reads."""
    sel = gates[detect[gates]]
    if len(sel) == 0:
        empty = np.zeros(0, np.int64)
        reads = sparse.csr_array((0, operand_code.width), dtype=np.int32)
        return sel, reads, np.zeros(0), (empty, empty)
    # Both kinds fire when both operands are present: then the main part (xor's OR,
    # andnot's "a present") is on and must be cancelled.
    gate_of, operand, _ = operand_matrix(task, sel)
    rows = row_of[operand]
    reads = read_sets(operand_code, gate_of, rows, len(sel))
    return sel, reads, np.diff(reads.indptr).astype(np.float64), (gate_of, rows)


def _inhibit(
    hosts: sparse.csr_array,
    rows: tuple[np.ndarray, np.ndarray],
    inhib: np.ndarray,
    code: BloomCode,
    width: int,
    weights: sparse.csr_array | None = None,
) -> sparse.csr_array:
    """Inhibitory weights for reads of unresolved xor / andnot nodes.

    Unit u reads row r (a node whose detector ``inhib[r]`` says "must be off"): it gets weight
    -k on that detector, k = the weight u gives the bits of r's code that no other row read
    by u covers (``weights``: u's weights on the previous layer; 1 when omitted). When the
    detector fires, r's code is fully on and adds exactly those k bits beyond what the other
    rows cover, so u counts as if r were off; every other part of u keeps its own bits, so
    no false negative can arise (shared bits stay counted). ``hosts`` is (units, parts);
    ``rows`` = (part, row) for every read."""
    n_units = hosts.shape[0]
    if not (inhib >= 0).any():
        return sparse.csr_array((n_units, width), dtype=np.float32)
    part_of, row = rows
    reads = sparse.csr_array(
        (np.ones(len(row), dtype=np.int32), (part_of, row)), shape=(hosts.shape[1], len(inhib))
    )
    reads.data[:] = 1
    a = sparse.csr_array(hosts.astype(np.int32) @ reads)
    a.data[:] = 1
    member = sparse.csr_array(code.membership, dtype=np.int32)
    cover = sparse.csr_array(a @ member)  # (units, width): rows of u covering each bit
    cover.data = (cover.data == 1).astype(np.int32)
    cover.eliminate_zeros()
    if weights is not None:
        cover = sparse.csr_array(cover.multiply(sparse.csr_array(weights).astype(np.int32)))
    bad = np.flatnonzero(inhib >= 0)
    uniq = sparse.csr_array(cover @ sparse.csr_array(member[bad]).T)  # (units, bad rows)
    uniq = uniq.multiply(sparse.csr_array(a[:, bad])).tocoo()
    keep = uniq.data > 0
    return sparse.csr_array(
        (
            -uniq.data[keep].astype(np.float32),
            (uniq.coords[0][keep], inhib[bad[uniq.coords[1][keep]]]),
        ),
        shape=(n_units, width),
    )


def _private_stage(
    parts: Parts, operand_code: BloomCode, ell: int
) -> tuple[Layer, sparse.csr_array, dict[str, Any]]:
    """Every part owns ``ell`` units that read only its own operands (no sharing)."""
    n = len(parts)
    reads = read_sets(operand_code, parts.g_of, parts.node, n)
    min_len = np.full(n, np.iinfo(np.int64).max)
    np.minimum.at(min_len, parts.g_of, operand_code.lengths[parts.node])
    theta = np.where(parts.need == 1, min_len, np.diff(reads.indptr))
    units = sparse.csr_array(
        (
            np.ones(n * ell, dtype=np.int8),
            np.arange(n * ell, dtype=np.int32),
            np.arange(0, n * ell + 1, ell, dtype=np.int64),
        ),
        shape=(n, n * ell),
    )
    layer, fan_in = threshold_layer(units, reads, theta)
    frac = float(fan_in.max() / operand_code.width) if len(fan_in) else 0.0
    return layer, units, {"fan_in_fraction_max": frac}


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


class Circuit(_Certified):
    """Deep superposed network: one Bloom-coded threshold layer per circuit level (copy/and/or).

    Example:
        >>> from superpose import families
        >>> from superpose.verification import verify
        >>> task = families.layered_circuit(20, 10, 3, np.random.default_rng(0), ops=("and", "or"))
        >>> net = Circuit().build(task, np.random.default_rng(1))
        >>> len(net.layers), verify(net, "exhaustive").inputs_with_error
        (3, 0)
    """

    name = "circuit"
    capabilities = Capabilities(
        max_arity=(("xor", 2),), max_depth=MAX_DEPTH, tags=frozenset({"superposed", "deep"})
    )

    def __init__(
        self,
        max_active: int = 256,
        failure: float | None = None,
        heavy_share: float = 0.3,
        width_scale: float = 1.0,
        sizing: str = "bound",
        cleanup: int = 0,
        ell: int | None = None,
        bound_method: str = "auto",
        max_candidates: int = DEFAULT_MAX_CANDIDATES,
        sample_inputs: int = 4096,
        carries: str = "auto",
    ) -> None:
        if carries not in CARRIES:
            raise SuperposeError(f"carries must be one of {', '.join(CARRIES)}, got {carries!r}")
        if sizing not in SIZINGS:
            raise SuperposeError(f"sizing must be one of {', '.join(SIZINGS)}, got {sizing!r}")
        if isinstance(cleanup, bool) or not isinstance(cleanup, int) or cleanup < 0:
            raise SuperposeError(f"cleanup must be an integer >= 0 (0 = off), got {cleanup!r}")
        if isinstance(max_active, bool) or not isinstance(max_active, int) or max_active < 1:
            raise SuperposeError(f"max_active must be a positive integer, got {max_active!r}")
        if ell is not None and (not isinstance(ell, int) or not 2 <= ell <= 32):
            raise SuperposeError(f"ell must be an integer in 2..32, got {ell!r}")
        self.max_active = max_active
        self.failure = failure
        self.heavy_share = heavy_share
        self.width_scale = width_scale
        self.sizing = sizing
        self.cleanup = cleanup
        self.ell = ell
        self.bound_method = bound_method
        self.max_candidates = max_candidates
        self.sample_inputs = sample_inputs
        self.carries = carries

    def _failure(self, task: Task) -> float:
        """The failure target: ``failure`` if given; else CIRCUIT_FAILURE, lowered to 0.1 /
        (number of inputs) when few enough inputs exist to check every one for a certificate
        (so that the first widths usually pass it). It depends on the task only, so a network
        rebuilt from its saved parameters gets the same widths."""
        if self.failure is not None:
            return float(self.failure)
        total = n_sparse_inputs(task.features, task.sparsity)
        if total <= CERTIFIABLE:
            return min(CIRCUIT_FAILURE, 0.1 / total)
        return CIRCUIT_FAILURE

    def build(self, task: Task, rng: np.random.Generator) -> Network:
        """One build at ``width_scale`` (checking and growing is the build pipeline's job).

        The deep construction has its own explicit / private fallbacks (module docstring).
        """
        if not self.width_scale > 0:
            raise SuperposeError(f"width_scale must be > 0, got {self.width_scale!r}")
        return self.build_once(task, rng)

    @classmethod
    def memory_parts(
        cls, features: int, n_gates: int, operands: float, params: dict[str, Any]
    ) -> tuple[dict[str, int], list[str]]:
        """No model of its own yet (not the one-level superposed model): the generic one."""
        return Construction.memory_parts.__func__(cls, features, n_gates, operands, params)  # type: ignore[attr-defined]

    def plan_neurons(self, task: Task) -> None:
        """No pre-build comparison with the explicit network: the sizing itself already picks
        explicit or private blocks where superposition does not pay (module docstring)."""
        return None

    def _memo_key(self, explicit: bool) -> tuple[Any, ...]:
        """The parameters the sizing depends on (not ``width_scale``: attempts share it)."""
        params = {k: v for k, v in self.get_params().items() if k != "width_scale"}
        return (explicit, tuple(sorted((k, repr(v)) for k, v in params.items())))

    def _cheapest(self, task: Task, explicit: bool) -> tuple[Any, ...]:
        """The sized plan with the fewest planned neurons: one code length for all blocks
        first, then each block's own (coordinate descent over neighbouring lengths).
        Returns (layout, stages, info, planned total, code lengths, input width, encode)."""
        memo = _SIZING_MEMO.setdefault(task, {})
        key = self._memo_key(explicit)
        if key in memo:
            return memo[key]
        lay, stages, info = self.plan(task)
        detect = info["detect"]
        modes = {"auto": (False, True), "copy": (False,), "encode": (True,)}[self.carries]
        grid = [self.ell] if self.ell else list(ELL_GRID)
        best = None
        for enc in modes:
            for e in grid:
                ells = [e] * (len(stages) + 1)
                total, w0, _ = self._size(task, lay, stages, ells, detect, explicit, enc)
                if best is None or total < best[0]:
                    best = (total, ells, w0, enc)
        assert best is not None
        total, ells, w0, enc = best
        for _ in range(2 if len(grid) > 1 else 0):
            improved = False
            for j in range(1 if explicit else 0, len(ells)):
                for e in (ells[j] - 2, ells[j] - 1, ells[j] + 1, ells[j] + 2):
                    if e not in grid:
                        continue
                    trial = [*ells[:j], e, *ells[j + 1 :]]
                    t, w, _ = self._size(task, lay, stages, trial, detect, explicit, enc)
                    if t < total * (1 - 1e-9):
                        total, ells, w0, improved = t, trial, w, True
            if not improved:
                break
        # Leave the chosen plan in `stages`.
        self._size(task, lay, stages, ells, detect, explicit, enc)
        result = (lay, stages, info, total, ells, w0, enc)
        memo[key] = result
        return result

    # planning ---------------------------------------------------------------------------
    @classmethod
    def _unsupported(cls, task: Task) -> str | None:
        """Why ``circuit`` cannot build ``task`` (None when it can)."""
        if task.depth > MAX_DEPTH:
            return (
                f"the task has {task.depth} levels, more than the {MAX_DEPTH} the circuit "
                "planner takes (its width search grows as depth^2-3; the explicit network, "
                "'naive', builds any depth)"
            )
        bad = (task.ops == OP_CODE["xor"]) & (task.arity > 2)
        if bad.any():
            g = int(np.flatnonzero(bad)[0])
            return f"gate {g} (id {g + task.features}): xor of {int(task.arity[g])} inputs"
        return None

    def _check_ops(self, task: Task) -> None:
        if task.depth > MAX_DEPTH:
            raise SuperposeError(self.supports(task)[1])
        bad = (task.ops == OP_CODE["xor"]) & (task.arity > 2)
        if bad.any():
            g = int(np.flatnonzero(bad)[0])
            raise SuperposeError(
                f"gate {g} (id {g + task.features}): xor of {int(task.arity[g])} inputs; "
                "'circuit' handles 2-input xor only -- use the 'naive' construction",
                cli="--construction naive",
            )

    def bounds(self, task: Task, lay: Layout | None = None) -> ActiveBounds:
        """Per-stage upper bounds on true nodes (see :func:`superpose.levels.active_bounds`)."""
        return active_bounds(
            task, lay=lay, method=self.bound_method, max_candidates=self.max_candidates
        )

    def _sampled_active(self, task: Task, lay: Layout) -> list[int]:
        """Most true gates per level over sampled s-sparse inputs (the verifier's random mix)."""
        from superpose.evaluation import evaluate_nodes
        from superpose.levels import level_membership, relaxed
        from superpose.sparse_inputs import random_inputs

        member = level_membership(task, lay)
        rng = np.random.default_rng(12345)
        best = np.zeros(lay.depth, dtype=np.int64)
        # The relaxed circuit: a xor whose operands are both on still lights its code.
        mono = relaxed(task)
        for batch in random_inputs(task, self.sample_inputs, rng):
            counts = np.asarray((evaluate_nodes(mono, batch) @ member).toarray())
            best = np.maximum(best, counts.max(axis=0))
        return [int(b) for b in best]

    def plan(self, task: Task) -> tuple[Layout, list[Stage], dict[str, Any]]:
        """Levels, carries, sparsity bounds and the sizing of every stage (module docstring)."""
        self._check_ops(task)
        s = task.sparsity
        lay = layout(task)
        bnd = self.bounds(task, lay)
        for level, b in enumerate(bnd.level_bounds, start=1):
            if b > self.max_active:
                n_gates = len(lay.gates[level - 1])
                raise SuperposeError(
                    f"level {level} cannot stay sparse: up to {b} of its {n_gates} gates can be "
                    f"true at once for {s}-sparse inputs ({bnd.method} bound), above "
                    f"max_active={self.max_active}; a superposed layer holding them would need "
                    f"about {width_needed(b, 6):,} neurons -- use the 'naive' construction",
                    cli="--construction naive",
                )
        sized = bnd.level_bounds if self.sizing == "bound" else self._sampled_active(task, lay)
        sized = [max(1, min(a, b)) for a, b in zip(sized, bnd.level_bounds, strict=True)]
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
            if self.cleanup and level % self.cleanup == 0 and level < lay.depth:
                stages.append(Stage(level, "cleanup", gates[:0], []))
        # A xor / andnot gate whose operands are never true together on an s-sparse input is
        # an or / copy there: it needs no detector.
        detect = np.zeros(task.n_gates, dtype=bool)
        inhibited = np.flatnonzero(np.isin(task.ops, INHIBITED_OPS) & lay.needed)
        detect[inhibited] = operands_meet(task, inhibited, max_candidates=self.max_candidates)
        info = {
            "bounds": bnd.as_dict(),
            "sized_for": sized,
            "detect": detect,
            "detectors_skipped": int(len(inhibited) - detect.sum()),
        }
        return lay, stages, info

    def _held(self, lay: Layout, task: Task, after: int) -> np.ndarray:
        """Node ids a layer holds after stage ``after`` (0 = the input layer)."""
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

    def _size(
        self,
        task: Task,
        lay: Layout,
        stages: list[Stage],
        ells: list[int],
        detect: np.ndarray,
        explicit_in: bool = False,
        encode: bool = False,
    ) -> tuple[float, int, list[int]]:
        """Planned total neurons, input width and pool widths for code lengths ``ells``.

        Blocks: 0 = the input code, i + 1 = the pool of stage i; ``ells[b]`` is block b's code
        length. Layer i holds its own pool and copies of the earlier blocks that still hold a
        needed node. Each stage's pool needs ``n_{i-1} * pool_i >= K_i`` (fan-in rule) and
        ``pool_i >= floor_i`` (decoding); :func:`_chain_widths` minimises the total.
        """
        s = task.sparsity
        target = self._failure(task) / (2 * len(stages))
        level_active = {0: s}
        for st in stages:
            if st.kind == "level":
                level_active[st.level] = st.sized_for
        # Which nodes each block codes, and which blocks each layer holds.
        block_nodes: list[np.ndarray] = [np.arange(task.features)]
        layer_blocks: list[list[int]] = []
        current = [0]
        specs = []
        held_before = np.arange(task.features)
        level_ell = {0: 1 if explicit_in else ells[0]}  # code length where a level's nodes live
        level_block = {0: 0}  # the block that holds a level's nodes
        read_blocks: list[list[int]] = []
        for i, st in enumerate(stages):
            held_after = self._held(lay, task, st.level)
            ell = ells[i + 1]
            if st.kind == "level":
                n_parts = len(st.gates)
                n_ops = int(task.arity[st.gates].sum())
                blocks = st.reads
                a_out = st.sized_for
                is_and = task.ops[st.gates] == OP_CODE["and"]
                k_min = (
                    1 if (~is_and).any() or not len(st.gates) else int(task.arity[st.gates].min())
                )
                block_nodes.append(task.features + st.gates)
                keep = [b for b in current if np.isin(block_nodes[b], held_after).any()]
                prev = lay.gates[st.level - 2] if st.level >= 2 else np.zeros(0, np.int64)
                prev = task.features + prev[detect[prev]]
                pending = int(np.isin(prev, held_after).sum())
                if pending:
                    # Unresolved xor / andnot nodes of the level before are re-encoded here.
                    n_parts += pending
                    n_ops += pending
                    a_out += min(pending, level_active.get(st.level - 1, 0))
                    k_min = 1
                if (explicit_in and i == 0) or encode:
                    # Nodes carried past this level are re-encoded into its pool (copy parts).
                    carried = held_after[~np.isin(held_after, task.features + st.gates)]
                    carried = carried[~np.isin(carried, prev)]
                    n_parts += len(carried)
                    n_ops += len(carried)
                    a_out += _active_in(task, carried, level_active)
                    keep = []
                    k_min = 1 if len(carried) else k_min
                    if encode:
                        blocks = sorted({int(v) for v in np.unique(task.node_level[held_before])})
                current = [i + 1, *keep]
            else:
                n_parts = n_ops = len(held_after)
                k_min = 1
                blocks = sorted({int(v) for v in np.unique(task.node_level[held_after])})
                a_out = sum(level_active.get(b, 0) for b in blocks)
                block_nodes.append(held_after)
                current = [i + 1]
            layer_blocks.append(list(current))
            read_blocks.append(sorted({level_block[b] for b in blocks}) or [0])
            held_before = held_after
            a_in = sum(level_active.get(b, 0) for b in blocks)
            ell_in = min((level_ell[b] for b in blocks), default=ell)
            ell_read = max((level_ell[b] for b in blocks), default=ell)
            if ell_read == 1:
                on_bits = float(s)  # an explicit input layer has no stray units
            else:
                on_bits = sum(
                    level_ell[b] * (level_active.get(b, 0) + stray(level_active.get(b, 0)))
                    for b in blocks
                )
            cover = (target / max(n_parts, 1)) ** (1.0 / ell)
            floor = max(6.0 * ell, (a_out + stray(a_out)) * ell / cover)
            arity = int(task.arity[st.gates].max()) if len(st.gates) else 1
            specs.append(
                _Spec(
                    n_parts,
                    n_ops,
                    on_bits,
                    a_out,
                    a_in,
                    floor,
                    ell_in * k_min,
                    ell,
                    ell_read,
                    arity,
                )
            )
            # Where each level's nodes live from now on.
            if st.kind == "level" and not (encode or (explicit_in and i == 0)):
                level_ell[st.level] = ell
                level_block[st.level] = i + 1
            else:
                level_ell = {lv: ell for lv in level_ell} | {st.level: ell}
                level_block = {lv: i + 1 for lv in level_ell}
        ell0 = ells[0]
        floor0 = max(4.0 * ell0 * s, (s + 1) * ell0 / (target / task.features) ** (1.0 / ell0))
        floors = np.array(
            [float(task.features) if explicit_in else floor0] + [sp.floor for sp in specs]
        )
        width = floors.copy()
        products = np.zeros(len(stages))
        fans = [0.0] * len(stages)
        private = [False] * len(stages)
        ceilings = np.full(len(floors), np.inf)
        for _round in range(4):
            for i, (n_parts, n_ops, on_bits, a_out, _, _, need, ell, e_in, arity) in enumerate(
                specs
            ):
                cap = stray(a_out) * ell / max(width[i + 1], 1.0)
                if private[i]:
                    # A part's l private units read the same bits and fire together: one unit's
                    # false-firing chance is the part's. It reads ~arity codes of the layer
                    # before, which must be wide enough for that.
                    floors[i + 1] = ceilings[i + 1] = max(ell * n_parts, 1)
                    fans[i] = fan_in_for(n_parts, on_bits, need, 1, target)
                    products[i] = floors[i + 1] * arity * e_in / fans[i]
                else:
                    fans[i] = fan_in_for(n_parts, on_bits, need, ell, target, cap)
                    products[i] = ell * e_in * n_ops / -math.log1p(-fans[i])
            width = np.array(
                _chain_widths(
                    [float(f) for f in floors],
                    [float(k) for k in products],
                    layer_blocks,
                    fixed_input=explicit_in,
                    ceilings=[float(c) for c in ceilings],
                    read_blocks=read_blocks,
                )
            )
            # A pool at least as wide as l private units per part is built that way instead.
            grew = False
            for i, sp in enumerate(specs):
                if not private[i] and width[i + 1] >= sp.ell * sp.n_parts:
                    private[i], grew = True, True
            if not grew and _round >= 2:
                break
        for i, st in enumerate(stages):
            st.fan_in, st.a_in, st.pool = fans[i], specs[i].a_in, int(math.ceil(width[i + 1]))
            st.private, st.ell = private[i], specs[i].ell
            if st.private:
                st.pool = specs[i].ell * specs[i].n_parts
        planned = width[0] + sum(sum(width[b] for b in layer_blocks[i]) for i in range(len(stages)))
        last = lay.gates[-1]
        if np.isin(task.features + last[detect[last]], task.outputs).any():
            # xor / andnot outputs need a resolve layer; it re-encodes every output (its width
            # depends on the last pool's code length, so it is part of the plan).
            n_out = len(task.outputs)
            a_all = _active_in(task, task.outputs, level_active)
            last_width = sum(width[b] for b in layer_blocks[-1])
            planned += _best_resolve(
                n_out, a_all, specs[-1].ell, int(last_width), target, list(ELL_GRID)
            )[0]
        return float(planned), int(math.ceil(width[0])), [st.pool for st in stages]

    # building ---------------------------------------------------------------------------
    def build_once(self, task: Task, rng: np.random.Generator) -> Network:
        m = task.features
        scale = self.width_scale
        lay, stages, info, planned_total, ells, w0, encode = self._cheapest(task, False)
        explicit_in = max(4 * ells[0] * task.sparsity, round(w0 * scale)) >= m
        if explicit_in:
            # A superposed input layer would be no narrower than one neuron per feature.
            lay, stages, info, planned_total, ells, w0, encode = self._cheapest(task, True)
        ell = ells[0]
        n_in = m if explicit_in else max(4 * ell * task.sparsity, round(w0 * scale))
        input_code, first_code, overlaps = input_code_for(
            task, stages[0].gates, n_in, ell, explicit_in, rng
        )
        # The current layer: which nodes it holds and each node's units in it.
        held = np.arange(m, dtype=np.int64)
        held_units = sparse.csr_array(first_code.membership, dtype=np.int8)
        inhib = np.full(m, -1, dtype=np.int64)  # per held row: its unresolved detector unit
        width = n_in
        target = self._failure(task) / (2 * len(stages))
        resolve = Stage(lay.depth, "resolve", np.zeros(0, np.int64), [lay.depth])
        todo = list(stages)
        layers: list[Layer] = []
        stage_codes: list[tuple[np.ndarray, BloomCode]] = []
        stage_stats = []
        while todo:
            st = todo.pop(0)
            ell = st.ell
            row_of = np.full(task.n_nodes, -1, dtype=np.int64)
            row_of[held] = np.arange(len(held))
            operand_code = BloomCode(held_units)
            after = st.level
            keep = self._held(lay, task, after)
            if st.kind == "level" and (encode or (explicit_in and st is stages[0])):
                # Every carried node is re-encoded into the pool (copy parts; unresolved xor /
                # andnot nodes with their inhibition). Explicit inputs always are, so every
                # later code has l bits.
                carried = keep[~np.isin(keep, m + st.gates)]
                parts = _parts(task, st.gates, carried, row_of)
                new_nodes = np.concatenate([m + st.gates, carried]).astype(np.int64)
                carry = np.zeros(0, np.int64)
                n_carried = len(carried)
            elif st.kind in ("level", "resolve"):
                carry = keep[~np.isin(keep, m + st.gates)]
                n_carried = len(carry)
                # Unresolved xor / andnot nodes are re-encoded (copy parts with inhibition).
                pending = carry[inhib[row_of[carry]] >= 0]
                carry = carry[inhib[row_of[carry]] < 0]
                if st.kind == "resolve":
                    # Either re-encode the pending nodes and copy the rest unit by unit, or
                    # re-encode every node the last layer holds: whichever is narrower.
                    a_pending = stages[-1].sized_for
                    copied_units = len(np.unique(held_units[row_of[carry]].indices))
                    grid = [self.ell] if self.ell else list(ELL_GRID)
                    ell_in = stages[-1].ell
                    narrow = _best_resolve(len(pending), a_pending, ell_in, width, target, grid)
                    sized = {0: task.sparsity} | dict(enumerate(info["sized_for"], start=1))
                    a_all = _active_in(task, keep, sized)
                    whole = _best_resolve(len(keep), a_all, ell_in, width, target, grid)
                    if whole[0] < narrow[0] + copied_units:
                        pending, carry = keep, np.zeros(0, np.int64)
                        st.pool, ell = whole
                    else:
                        st.pool, ell = narrow
                    st.ell = ell
                    st.private = st.pool >= ell * len(pending)
                parts = _parts(task, st.gates, pending, row_of)
                new_nodes = np.concatenate([m + st.gates, pending]).astype(np.int64)
            else:
                carry_nodes = keep
                parts = _parts(task, st.gates[:0], carry_nodes, row_of)
                new_nodes = carry_nodes
                carry = np.zeros(0, np.int64)
                n_carried = 0
            if st.private:
                pool_layer, pool_units, stats = _private_stage(parts, operand_code, ell)
            else:
                pool_w = max(6 * ell, round(st.pool * scale))
                pool_layer, pool_units, stats = threshold_stage(
                    parts, operand_code, pool_w, ell, self.heavy_share, rng, mix=True
                )
            hosts = sparse.csr_array(pool_units.T)
            pool_weight = sparse.csr_array(
                pool_layer.weight
                + _inhibit(
                    hosts,
                    (parts.g_of, parts.node),
                    inhib,
                    operand_code,
                    width,
                    pool_layer.weight,
                )
            )
            det_gates, det_reads, det_theta, det_rows = _detectors(
                task, st.gates, info["detect"], row_of, operand_code
            )
            n_det = len(det_gates)
            det_weight = sparse.csr_array(
                det_reads.astype(np.float32)
                + _inhibit(
                    sparse.csr_array(sparse.eye_array(n_det, dtype=np.int8, format="csr")),
                    det_rows,
                    inhib,
                    operand_code,
                    width,
                )
            )
            # Copy units: every unit of the current layer some carried node's code uses.
            carry_rows = row_of[carry]
            sub = sparse.csr_array(held_units[carry_rows]) if len(carry) else None
            copied = np.unique(sub.indices) if sub is not None else np.zeros(0, np.int64)
            n_copy = len(copied)
            copy_w = sparse.csr_array(
                (np.ones(n_copy, dtype=np.float32), (np.arange(n_copy), copied)),
                shape=(n_copy, width),
            )
            dtype = pool_layer.weight.dtype
            weight = sparse.vstack(
                [pool_weight.astype(dtype), copy_w.astype(dtype), det_weight.astype(dtype)],
                format="csr",
            )
            bias = np.concatenate(
                [
                    pool_layer.bias,
                    -np.ones(n_copy, dtype=pool_layer.bias.dtype),
                    -det_theta.astype(pool_layer.bias.dtype),
                ]
            )
            weight.eliminate_zeros()
            layer = Layer(sparse.csr_array(weight), bias, "step")
            layers.append(layer)
            new_width = pool_units.shape[1] + n_copy + n_det
            # Node -> units in the new layer: pool units for new nodes, shifted copies for carries.
            col_map = np.full(width, -1, dtype=np.int64)
            col_map[copied] = pool_units.shape[1] + np.arange(n_copy)
            blocks = [sparse.csr_array(pool_units, dtype=np.int8).tocoo()]
            rows_list = [blocks[0].coords[0]]
            cols_list = [blocks[0].coords[1]]
            if sub is not None:
                c = sub.tocoo()
                rows_list.append(c.coords[0] + len(new_nodes))
                cols_list.append(col_map[c.coords[1]])
            r, c2 = np.concatenate(rows_list), np.concatenate(cols_list)
            held = np.concatenate([new_nodes, carry]).astype(np.int64)
            held_units = sparse.csr_array(
                (np.ones(len(r), dtype=np.int8), (r, c2)), shape=(len(held), new_width)
            )
            inhib = np.full(len(held), -1, dtype=np.int64)
            det_row = np.full(task.n_nodes, -1, dtype=np.int64)
            det_row[m + det_gates] = pool_units.shape[1] + n_copy + np.arange(n_det)
            inhib[: len(new_nodes)] = det_row[new_nodes]
            width = new_width
            stage_codes.append((held.copy(), BloomCode(held_units), inhib.copy()))
            if not todo and st.kind != "resolve" and (inhib >= 0).any():
                todo.append(resolve)  # xor / andnot outputs need one more layer
            stage_stats.append(
                {
                    "level": st.level,
                    "kind": st.kind,
                    "gates": int(len(st.gates)),
                    "carries": int(n_carried),
                    "nodes": int(len(held)),
                    "reads_blocks": st.reads,
                    "active_bound": int(st.bound),
                    "stage_active_bound": int(st.stage_bound),
                    "sized_for": int(st.sized_for),
                    "active_in": int(st.a_in),
                    "pool_width": int(pool_units.shape[1]),
                    "detector_units": int(n_det),
                    "private": bool(st.private),
                    "copy_width": int(n_copy),
                    "width": int(new_width),
                    "ell": int(ell),
                    "fan_in_target": float(st.fan_in),
                    "fan_in_fraction_max": stats["fan_in_fraction_max"],
                }
            )
        row = np.full(task.n_nodes, -1, dtype=np.int64)
        row[held] = np.arange(len(held))
        out_rows = row[task.outputs]
        if (out_rows < 0).any():
            raise SuperposeError("internal: an output is not held by the last layer")
        if (inhib[out_rows] >= 0).any():
            raise SuperposeError("internal: an output is still waiting for its detector")
        output_code = BloomCode(sparse.csr_array(held_units[out_rows]))
        levels_only = [x for x in stage_stats if x["kind"] == "level"]
        extras = {
            "levels": len(levels_only),
            "stages_total": len(stage_stats),
            "cleanup_stages": len(stage_stats) - len(levels_only),
            "sizing": self.sizing,
            "ell": int(ells[0]),
            "ells": [int(ells[0])] + [int(x["ell"]) for x in stage_stats],
            "widths": [int(input_code.width)] + [x["width"] for x in stage_stats],
            "pool_widths": [x["pool_width"] for x in stage_stats],
            "copy_widths": [x["copy_width"] for x in stage_stats],
            "carries": [x["carries"] for x in levels_only],
            "total_carries": int(sum(x["carries"] for x in levels_only)),
            "active_bounds": [int(task.sparsity)] + [x["active_bound"] for x in levels_only],
            "stage_active_bounds": [int(task.sparsity)]
            + [x["stage_active_bound"] for x in levels_only],
            "bound_method": info["bounds"]["method"],
            "cone_bounds": [int(task.sparsity)] + list(info["bounds"]["level_cone"]),
            "sized_for": [int(task.sparsity)] + [int(a) for a in info["sized_for"]],
            "planned_neurons": int(round(planned_total)),
            "detectors_skipped": info["detectors_skipped"],
            "carry_mode": "encode" if encode else "copy",
            "stages": stage_stats,
            "overlapping_gates": overlaps,
        }
        net = Network(
            layers, input_code, output_code, task, self.name, self.get_params(), extras=extras
        )
        # Per-stage codes, for per-level verification (kept in memory; rebuilt after loading).
        net.stage_codes = stage_codes  # type: ignore[attr-defined]
        return net
