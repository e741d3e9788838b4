"""The ``stream`` construction *(ours)*: a deep task computed in a residual stream.

**Why.** The ``circuit`` construction is an MLP chain: level L's layer can only read level
L-1's layer, so every node read later (or an output) is copied unit by unit through every
layer in between, and a task with every gate an output pays for all of them. A residual
network has no such cost: every block reads the *stream* and writes back into it, and what was
written stays readable by every later block and at the output. Interpretability work on
superposition studies exactly this shape (a residual stream with features in superposition),
so it is also the ground truth such methods ask for.

**The stream.** One vector of d step neurons holds a Bloom code of every node: each input
feature and each computed gate owns ``ell`` of its d bits (codes overlap at random). Inputs
are written by the input code; block L computes the gates of level L and writes their codes.

**Block L** (one hidden layer, like a transformer MLP block):

* *read*: threshold units reading the stream. A shared pool (:func:`~superpose.constructions
  .superposed.threshold_stage`, mixed thresholds, heavy-feature channels) computes the and / or
  / copy gates (and every xor / andnot whose operands can never be true together on an
  s-sparse input: an or / copy there); each gate owns ``ell`` of the pool's units. A xor or
  andnot gate whose operands can meet gets exact private units instead: one "operand present"
  unit per distinct operand (shared by all such gates of the block) and one detector per gate
  ("both present"). A k-input xor (always private) gets a detector per subset S of >= 2
  operands ("all of S present") and writes ``sum_S (-2)^(|S|-1) [S present]`` (the singletons
  are the present units): inclusion-exclusion, 1 for an odd number of present operands, else
  0. Subsets larger than the most operands that can be true at once (s plus the levels'
  bounds) are left out when all subsets would exceed 64 units (:func:`_detectors`).
* *write*: the stream is a clamped OR: ``stream' = step(stream + W h - 1)``. Pool unit u
  writes one stream bit sigma(u) (sigma: a random injection of the pool into the stream, per
  block; a pool wider than the stream wraps around), so a gate's code is sigma of its pool
  units. A private gate writes its own ``ell`` random bits with ``a_present + b_present - 2
  both`` (xor) or ``a_present - both`` (andnot):
  0 or 1 on every input, never negative, so it cannot erase another code's bit.

Why a clamped OR and not an additive stream: a stream bit is shared by several codes; added,
a bit's value counts how many of them are on and the readers' thresholds (which count on-bits
of the codes they read) would have to be raised by the worst-case pile-up, or fire on it.
Clamped, every bit is 0/1 and a reader sees exactly what a fresh layer of the same codes would
show: the failure model of the MLP chain carries over unchanged. The clamp costs nothing in
the residual accounting (it is the stream's own activation).

**Exact units** (``units="exact"``; ``"auto"``, the default, plans them and the pools below
and keeps the fewer neurons -- exact units won on every task measured, e.g. 39 899 against
91 298 neurons at m = 20 000, depth 4, every gate an output). Every node owns ``ell`` random
bits of the stream. An and gate is one unit reading every bit of its operands (threshold: all
of them); a xor / andnot gate whose operands can meet gets a detector and shares the block's
"present" units (one per distinct operand), writing ``a + b - 2 both`` / ``a - both``; a
k-input xor gets a present unit per operand and the pool design's subset detectors (below),
writing the inclusion-exclusion sum into its own bits. An
or-like gate (or, copy, xor / andnot whose operands never meet) has no unit: the writer of
each operand (a unit, or the input embedding) also writes the gate's bits -- its *closure* --
so the gate's code is on exactly when one operand's is. A unit fires falsely, or an output
reads falsely, only if every bit of a false node's code is on: at most ``rho^ell`` with
``rho`` = on-bits / d, the on-bits bounded by ``ell`` (s + the most true gates among those
whose codes are written before the block: :func:`superpose.levels.column_bounds`). The
failure budget is split over the blocks and the outputs by that model: the plan takes the
``ell`` and the narrowest d with ``sum_L units_L rho_L^ell + outputs rho_out^ell <= failure``
and records each block's share (``extras["predicted_errors"]``).

**Clean-up blocks** (exact units; ``cleanup="auto"``, the default, ``"none"`` or the levels
to clean up after). A clean-up after level k erases the stream and writes back the *live*
nodes only (level <= k, read by a later gate or an output: :func:`_live_nodes`), so later
blocks and the output read a stream that holds those codes and what is written after them
instead of every code written so far. It stays a residual block (identity skip, the same
clamped write, :func:`_cleanup_block`): a "clear" unit writes -2 into every bit and a copy
unit per live node +3 into its code (and the or-like gates above k it feeds). Its hidden
units count as neurons. The plan bounds the true nodes in the stream for every (last
clean-up, block) pair in one pass, compares every placement of at most :data:`MAX_CLEANUPS`
clean-ups at the same failure budget and keeps the fewest neurons -- so a clean-up sits where
the stream without it would exceed the budget at the width the plan uses
(``extras["error_without_cleanup"]``). Pool units refuse a clean-up.

**Pool units** (``units="pool"``, the first version, described next).

**Faithful to the network.** A block is two plain step layers of the :class:`~superpose.
network.Network`: ``[stream copy (identity, threshold 1); hidden units]`` and then the write
``stream' = step(I stream + W h - 1)``. ``predict``, the exact evaluation, save / load and the
ReLU / torch exports therefore run it unchanged. The identity rows are the residual
connection: they count their parameters but no neurons. ``extras["residual"]`` holds the
residual accounting -- neurons = d (the stream, once) + every block's hidden units -- next to
the plain layer count of :meth:`~superpose.network.Network.counts` (which counts the stream
once per layer).

**Sizing** (the failure model of ``circuit``, adapted to where bits lie). ``a_L``: the bound
on true gates of level L (:func:`superpose.levels.active_bounds`), plus ``stray(a_L)`` codes'
worth of falsely firing units allowed per pool; ``own_L = ell (a_L + stray_L)`` on-bits. The
stream after level L holds at most ``B_L = ell s + sum_{j<=L} own_j`` on-bits, spread over d
(the *background*), but level j's own codes are confined to its pool's bits (sigma), where
they are dense: ``rho_j = own_j / pool_j + B / d``. With ``target = failure / (2 (D + 1))``:

* inputs decode: ``m (B_D / d)^ell <= target`` gives d's floor; level L decodes:
  ``parts_L rho_L^ell <= target`` gives pool L's floor;
* fan-in: a pool unit reads ``ell^2 reads_L / pool_L`` operand bits (each part owns ell units
  and reads ell bits per operand), those of level-j operands at density ``rho_j``, so its
  expected on-bits are ``lambda = ell^2 sum_j reads_Lj rho_j / pool_L``; a unit fires falsely
  with ``p = P(Poisson(lambda) >= ell)`` (ell more bits: what an AND part with one true
  operand still needs), and ``parts_L p^ell <= target`` and ``pool_L p <= ell stray_L``
  bound lambda, hence pool_L.

A wider stream lowers the background, so every pool narrows: d is the best of a geometric grid
above its floor, ell the best of a grid. Reads were first sized as if spread over the whole
stream: at m = 20 000 (depth 4, every gate an output) that cascaded into thousands of false
units on 2% of inputs; sized by region, the same task has no error on the sampled inputs. A
level above ``max_active`` true gates is refused for the pool units (naming the level and the
numbers); so is a stream whose floor exceeds ``max_stream``, or one too full for any width of
the grid.

**The real limit of exact units** is not a number of true gates per level: an exact unit reads
only its operands' own bits with threshold "all of them", so however many gates a level has
true, what matters is the stream's fill ``rho = ell * true nodes / d`` that every reader sees.
The exact plan sizes d from it and refuses a stream needing more than ``max_stream`` (naming
the first level whose codes alone would need it). ``max_active`` therefore no longer refuses
exact units (issue 13's depth-16 target: level bounds up to 527 at s = 2); when the pool plan
is refused by it and the exact plan by the stream, the ``max_active`` message is raised.

Example:
    >>> from superpose import Task, verify
    >>> from superpose.constructions import build
    >>> t = Task.from_gates(6, 2, [("and", [0, 1]), ("or", [6, 2]), ("xor", [7, 3])])
    >>> net = build(t, "stream")
    >>> verify(net, "exhaustive").inputs_with_error
    0
"""

from __future__ import annotations

import math
import weakref
from typing import Any, NoReturn

import numpy as np
from scipy import sparse, special

from superpose._numeric import largest
from superpose.codes import BloomCode, random_sets
from superpose.constructions._bloom import operand_matrix, read_sets
from superpose.constructions.base import Capabilities, Construction
from superpose.constructions.circuit import (
    CERTIFIABLE,
    CIRCUIT_FAILURE,
    ELL_GRID,
    _private_stage,
    stray,
)
from superpose.constructions.params import check_choice, check_deep_params
from superpose.constructions.superposed import Parts, threshold_stage
from superpose.errors import SuperposeError
from superpose.levels import (
    DEFAULT_MAX_CANDIDATES,
    active_bounds,
    column_bounds,
    layout,
    operands_meet,
)
from superpose.network import Layer, Network
from superpose.task import OP_CODE, OPS, Task, n_sparse_inputs

D_GRID = 24
"""Stream widths tried per code length (geometric, from the floor up to 16 x the floor)."""
REGIONS = ("auto", "shared", "disjoint")
"""Where each level's codes live in the stream: spread over all of it (``shared``, the default),
in a region of their own (``disjoint``: no background from other levels, a stream as wide as
all regions; planned 6-9% fewer neurons at m = 20 000, measured 85 788 vs 91 298 with no error
on 2 000 + 2 000 inputs, but its plan is not yet trusted on small tasks -- 37 wrong inputs of
821 on a 40-input depth-3 mix -- so use it through the checked build), or whichever plan
needs fewer neurons (``auto``, same caveat)."""
UNITS = ("auto", "exact", "pool")
"""How blocks read the stream: ``exact`` units (one per and gate, one "present" unit per
operand of a xor / andnot whose operands can meet, one detector per such gate; or / copy gates
need none: their codes are written by whatever writes their operands), superposed ``pool``
units (the first version: a shared threshold pool per block, codes on its units), or whichever
plan needs fewer neurons (``auto``)."""
EXACT_ELL_GRID = tuple(range(3, 33))
"""Code lengths tried by the exact-units plan (a longer code buys a denser stream)."""
MAX_CLEANUPS = 3
"""Most clean-up blocks the ``"auto"`` exact plan places (it compares every placement)."""
MIN_POOL_UNITS = 6
"""A pool has at least this many times ell units (threshold_stage's own minimum)."""


_PLAN_MEMO: weakref.WeakKeyDictionary[Task, dict[tuple[Any, ...], dict[str, Any]]] = (
    weakref.WeakKeyDictionary()
)


def _mean_on_bits(parts: int, ell: int, target: float, cap: float) -> float:
    """Largest mean number of on-bits in a unit's read set (Poisson) such that a unit fires
    falsely (``>= ell`` on-bits) with probability p <= ``cap`` and ``parts * p^ell <= target``.

    Example:
        >>> 0.1 < _mean_on_bits(10_000, 6, 1e-6, 0.01) < 2.0
        True
    """

    def ok(lam: float) -> bool:
        p = float(special.gammainc(ell, lam))  # P(Poisson(lam) >= ell)
        return p <= cap and parts * p**ell <= target

    return largest(ok, 1e-9, float(ell), 60)


def _region_density(lv: dict[str, Any], own: float, ell: int, pool: int, region: float) -> float:
    """On-bits per bit of a level's region that a reader of one of its codes sees besides that
    code (which is either fully on or irrelevant). A private pool has no stray units: a falsely
    firing private part is a wrong gate, already in the failure target."""
    if pool >= ell * lv["pool_parts"]:
        own = ell * lv["active"]
    return max(0.0, own - ell) / max(region, 1.0)


def _private_ok(parts: int, ell: int, target: float, reads: float, load: float) -> bool:
    """Whether private pool units (each part alone on its ell units, which then fire
    together) stay within ``target``: a part reading ``reads`` operand codes at mean density
    ``load / reads`` sees ``ell * load / parts`` on-bits on average and fires falsely when
    ell of them are on."""
    lam = ell * load / max(parts, 1)
    return parts * float(special.gammainc(ell, lam)) <= target


def _live_nodes(task: Task, levels: list[dict[str, Any]], k: int) -> np.ndarray:
    """Nodes (inputs included) that a clean-up after level ``k`` must copy: those of level <= k
    read by a gate of a later level (an andnot computed as a copy reads its first operand
    only) or that are outputs."""
    later = [lv for lv in levels if lv["level"] > k]
    if not later:
        gates = np.zeros(0, dtype=np.int64)
        private = np.zeros(0, dtype=bool)
    else:
        gates = np.concatenate([lv["gates"] for lv in later])
        private = np.concatenate([lv["private"] for lv in later])
    g_of, operand, pos = operand_matrix(task, gates)
    keep = ~((task.ops[gates][g_of] == OP_CODE["andnot"]) & ~private[g_of] & (pos == 1))
    read = operand[keep]
    read = read[task.node_level[read] <= k]
    out = np.asarray(task.outputs, dtype=np.int64)
    return np.union1d(read, out[task.node_level[out] <= k]).astype(np.int64)


def _written_bounds(
    task: Task, levels: list[dict[str, Any]], con: Stream, cleanups: tuple[int, ...] = ()
) -> tuple[dict[tuple[int, int], int], dict[int, np.ndarray]]:
    """Bounds on the true gates whose codes are in the stream when block L reads it
    (L = 1..D; L = D + 1: the output read), for exact units, keyed ``(k, L)``: k = 0 without a
    clean-up before L, else the last clean-up before L sits after level k. Also the live nodes
    of each candidate clean-up (:func:`_live_nodes`).

    A real gate (and, a xor / andnot whose operands meet) is written by its own block; an
    or-like gate by the writers of its operands, so as soon as the earliest of them has run
    (its *write level*: the least write level of its operands; inputs: 0). After a clean-up
    after level k the stream holds the live nodes of levels <= k and what was written after
    them (an or-like gate above k is rewritten by the copies of its live operands)."""
    m = task.features
    wl = np.full(task.n_nodes, np.iinfo(np.int64).max, dtype=np.int64)
    wl[:m] = 0
    rows, cols = [], []
    for lv in levels:
        gates, level = lv["gates"], lv["level"]
        real = (task.ops[gates] == OP_CODE["and"]) | lv["private"]
        wl[m + gates[real]] = level
        like = gates[~real]
        if len(like):
            g_of, operand, pos = operand_matrix(task, like)
            keep = ~((task.ops[like][g_of] == OP_CODE["andnot"]) & (pos == 1))
            first = np.full(len(like), np.iinfo(np.int64).max, dtype=np.int64)
            np.minimum.at(first, g_of[keep], wl[operand[keep]])
            wl[m + like] = first
    needed = m + np.concatenate([lv["gates"] for lv in levels])
    depth = len(levels)
    keys: list[tuple[int, int]] = []
    live: dict[int, np.ndarray] = {}
    for k in (0, *cleanups):
        if k:
            live[k] = _live_nodes(task, levels, k)
            kept = needed[(task.node_level[needed] > k) | np.isin(needed, live[k])]
        else:
            kept = needed
        for col in range(k, depth + 1):
            sel = kept[wl[kept] < col + 1] if col < depth else kept
            rows.append(sel)
            cols.append(np.full(len(sel), len(keys), dtype=np.int64))
            keys.append((k, col + 1))
    r, c = np.concatenate(rows), np.concatenate(cols)
    member = sparse.csr_array(
        (np.ones(len(r), dtype=np.int64), (r, c)), shape=(task.n_nodes, len(keys))
    )
    bounds, _ = column_bounds(
        task, member, method=con.bound_method, max_candidates=con.max_candidates
    )
    total = sum(lv["active"] for lv in levels)
    return {key: min(int(b), total) for key, b in zip(keys, bounds, strict=True)}, live


def _check_ops(task: Task) -> None:
    ops = task.ops
    wide = (ops == OP_CODE["andnot"]) & (task.arity != 2)
    if wide.any():
        g = int(np.flatnonzero(wide)[0])
        raise SuperposeError(
            f"gate {g}: {OPS[int(ops[g])]!r} with {int(task.arity[g])} inputs; the 'stream' "
            "construction handles 2-input andnot only -- use the 'circuit' or 'naive' construction",
            cli="--construction circuit",
        )


MAX_XOR_DETECTORS = 4096
"""Most detector units one k-input xor gate may take (inclusion-exclusion over the subsets of
its operands that can be true together)."""
FULL_XOR_DETECTORS = 64
"""Below this many, a k-input xor gets a detector for *every* subset of >= 2 operands (exact
whatever number of operands read as present), not only up to the bound on true operands."""


def _detectors(
    task: Task, priv: np.ndarray, level_bounds: list[int]
) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """The detector units of private xor / andnot gates: ``(gate, sign, entry_detector,
    entry_operand)`` -- per detector, the (local) gate it writes to and the sign of its write;
    per (detector, operand) entry, the detector and the operand node it reads.

    A gate's write is an inclusion-exclusion over its operands' "present" units P_i and the
    detectors D_S ("every operand of S present", |S| >= 2): xor of k operands is
    ``sum_S (-2)^(|S|-1) D_S`` (with D_{i} = P_i), which is 1 for an odd number of present
    operands and 0 otherwise; andnot(a, b) is ``P_a - D_{a,b}``. Subsets larger than the most
    operands that can be true at once (the inputs' sparsity plus each level's bound on true
    gates, over the levels the operands come from) are never all present on a correct
    stream, so they are left out unless every subset fits in :data:`FULL_XOR_DETECTORS`.

    Example:
        >>> t = Task.from_gates(4, 2, [("xor", [0, 1, 2, 3]), ("andnot", [0, 1])])
        >>> gate, sign, _, _ = _detectors(t, np.array([0, 1]), [1])
        >>> gate.tolist(), sign.tolist()
        ([0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 1], [-2.0, -2.0, -2.0, -2.0, -2.0, -2.0, 4.0, 4.0, 4.0, 4.0, -8.0, -1.0])
    """
    from itertools import combinations

    bound_of_level = [int(task.sparsity), *[int(b) for b in level_bounds]]
    gate_l, sign_l, e_det, e_op = [], [], [], []
    for j, g in enumerate(np.asarray(priv, dtype=np.int64).tolist()):
        ops = [int(v) for v in task.operands(g)]
        k = len(ops)
        if task.ops[g] != OP_CODE["xor"]:
            subsets: list[tuple[int, ...]] = [(0, 1)]
            signs = [-1.0]
        else:
            full = 2**k - 1 - k
            top = k
            if full > FULL_XOR_DETECTORS:
                lv = np.bincount(task.node_level[ops], minlength=len(bound_of_level))
                top = min(k, sum(min(int(c), bound_of_level[i]) for i, c in enumerate(lv)))
            n = sum(math.comb(k, r) for r in range(2, top + 1))
            if n > MAX_XOR_DETECTORS:
                raise SuperposeError(
                    f"gate {g}: a {k}-input xor whose operands can be true {top} at a time "
                    f"needs {n:,} detector units, above {MAX_XOR_DETECTORS:,} -- use the "
                    "'circuit' or 'naive' construction",
                    cli="--construction circuit",
                )
            subsets = [c for r in range(2, top + 1) for c in combinations(range(k), r)]
            signs = [float((-2) ** (len(c) - 1)) for c in subsets]
        for c, sg in zip(subsets, signs, strict=True):
            det = len(gate_l)
            gate_l.append(j)
            sign_l.append(sg)
            e_det += [det] * len(c)
            e_op += [ops[i] for i in c]
    return (
        np.asarray(gate_l, dtype=np.int64),
        np.asarray(sign_l, dtype=np.float32),
        np.asarray(e_det, dtype=np.int64),
        np.asarray(e_op, dtype=np.int64),
    )


class _PrivateUnits:
    """The private units of one block's xor / andnot gates, for both unit designs: a "present"
    unit per distinct operand (every gate reading it positively: xor, andnot's first operand)
    and the detectors of :func:`_detectors`; ``reads`` / ``biases`` are their rows of the
    block's read layer (present units, then detectors), :meth:`writes` their columns of the
    write layer given each gate's stream bits.

    ``rows[node]`` is the node's row of ``code`` (pool units: the stream code grows level by
    level; exact units: every node's own code, rows = node ids)."""

    def __init__(
        self,
        task: Task,
        priv: np.ndarray,
        code: BloomCode,
        rows: np.ndarray,
        level_bounds: list[int],
    ) -> None:
        g_of, operand, pos = operand_matrix(task, priv)
        is_xor = task.ops[priv] == OP_CODE["xor"]
        positive = is_xor[g_of] | (pos == 0)
        present = np.unique(operand[positive])
        pres_w = sparse.csr_array(code.membership[rows[present]], dtype=np.float32)
        pres_b = -code.lengths[rows[present]].astype(np.float32)
        det_gate, det_sign, e_det, e_op = _detectors(task, priv, level_bounds)
        det_w = sparse.csr_array(
            read_sets(code, e_det, rows[e_op], len(det_gate)), dtype=np.float32
        )
        det_b = -np.diff(det_w.indptr).astype(np.float32)
        self.n_present, self.n_detectors = len(present), len(det_gate)
        self.reads = [pres_w, det_w]
        self.biases = [pres_b, det_b]
        pres_idx = np.searchsorted(present, operand[positive])
        self.pres_to_gate = sparse.csr_array(
            (np.ones(int(positive.sum()), np.float32), (pres_idx, g_of[positive])),
            shape=(self.n_present, len(priv)),
        )
        self.det_to_gate = sparse.csr_array(
            (det_sign, (np.arange(self.n_detectors), det_gate)),
            shape=(self.n_detectors, len(priv)),
        )

    def writes(self, gate_bits: sparse.csr_array) -> tuple[sparse.csr_array, sparse.csr_array]:
        """Write-layer columns (stream bits x units) of the present units and detectors:
        each adds its signed share to the bits of every gate it serves."""
        return (
            sparse.csr_array(self.pres_to_gate @ gate_bits).T,
            sparse.csr_array(self.det_to_gate @ gate_bits).T,
        )


def _private_mask(task: Task, gates: np.ndarray, max_candidates: int) -> np.ndarray:
    """Per gate: xor / andnot whose operands can be true together (needs private units)."""
    inhibited = np.isin(task.ops[gates], [OP_CODE["xor"], OP_CODE["andnot"]])
    wide = inhibited & (task.arity[gates] != 2)
    mask = wide.copy()  # a k-input xor is always computed exactly (private units)
    two = inhibited & ~wide
    if two.any():
        sel = gates[two]
        mask[two] = operands_meet(task, sel, max_candidates=max_candidates)
    return mask


def _pool_parts(task: Task, gates: np.ndarray, row_of: np.ndarray) -> Parts:
    """One threshold part per pool gate: and = all operands, or / copy / lone xor = any,
    lone andnot = its first operand."""
    ops = task.ops[gates]
    gate_of, operand, pos = operand_matrix(task, gates)
    keep = ~((ops[gate_of] == OP_CODE["andnot"]) & (pos == 1))
    gate_of, operand = gate_of[keep], operand[keep]
    rows = row_of[operand]
    if (rows < 0).any():
        raise SuperposeError("internal: an operand has no code in the stream")
    need = np.where(ops == OP_CODE["and"], task.arity[gates], 1).astype(np.int64)
    n = len(gates)
    return Parts(np.arange(n), np.ones(n, np.int8), need, gate_of.astype(np.int64), rows)


class Stream(Construction):
    """Residual-stream network for deep tasks (module docstring)."""

    name = "stream"
    capabilities = Capabilities(
        max_arity=(("andnot", 2),), tags=frozenset({"superposed", "deep", "residual"})
    )

    def __init__(
        self,
        max_active: int = 256,
        failure: float | None = None,
        heavy_share: float = 0.3,
        width_scale: float = 1.0,
        ell: int | None = None,
        stream_width: int | None = None,
        max_stream: int = 10_000_000,
        regions: str = "shared",
        units: str = "auto",
        bound_method: str = "auto",
        max_candidates: int = DEFAULT_MAX_CANDIDATES,
        cleanup: str | int | tuple[int, ...] | list[int] = "auto",
    ) -> None:
        if isinstance(cleanup, int) and not isinstance(cleanup, bool):
            cleanup = (cleanup,)
        if isinstance(cleanup, str):
            if cleanup not in ("auto", "none"):
                raise SuperposeError(
                    f"cleanup must be 'auto', 'none' or levels to clean up after, got {cleanup!r}"
                )
        elif not all(isinstance(k, int) and not isinstance(k, bool) for k in cleanup):
            raise SuperposeError(f"cleanup levels must be integers, got {cleanup!r}")
        else:
            cleanup = tuple(int(k) for k in cleanup)
        check_deep_params(max_active, ell)
        if stream_width is not None and (
            not isinstance(stream_width, int) or isinstance(stream_width, bool) or stream_width < 1
        ):
            raise SuperposeError(f"stream_width must be a positive integer, got {stream_width!r}")
        if failure is not None and not 0 < failure < 1:
            raise SuperposeError(f"failure must be in (0, 1), got {failure!r}")
        check_choice("regions", regions, REGIONS)
        check_choice("units", units, UNITS)
        if not width_scale > 0:
            raise SuperposeError(f"width_scale must be > 0, got {width_scale!r}")
        self.max_active = max_active
        self.failure = failure
        self.heavy_share = heavy_share
        self.width_scale = width_scale
        self.ell = ell
        self.stream_width = stream_width
        self.max_stream = max_stream
        self.regions = regions
        self.units = units
        self.bound_method = bound_method
        self.max_candidates = max_candidates
        self.cleanup = cleanup

    def get_params(self) -> dict[str, Any]:
        """As recorded in network.json; ``cleanup`` only when not the default (networks
        built before clean-ups existed keep their bytes)."""
        params = super().get_params()
        if params.get("cleanup") == "auto":
            del params["cleanup"]
        else:
            params["cleanup"] = (
                params["cleanup"] if isinstance(params["cleanup"], str) else list(params["cleanup"])
            )
        return params

    @classmethod
    def _unsupported(cls, task: Task) -> str | None:
        """Why ``stream`` cannot build ``task`` (None when it can)."""
        try:
            _check_ops(task)
        except SuperposeError as exc:
            return str(exc)
        return None

    def _failure(self, task: Task) -> float:
        """``failure`` if given, else CIRCUIT_FAILURE, lowered to 0.1 / inputs for tasks small
        enough to be checked exhaustively (as ``circuit`` does)."""
        if self.failure is not None:
            return float(self.failure)
        total = n_sparse_inputs(task.features, task.sparsity)
        return min(CIRCUIT_FAILURE, 0.1 / total) if total <= CERTIFIABLE else CIRCUIT_FAILURE

    # planning ---------------------------------------------------------------------------
    def plan(self, task: Task) -> dict[str, Any]:
        """Levels, bounds, private gates and the widths (d, pools) minimising the neurons
        (memoised per task and parameters: the default build plans before it builds)."""
        memo = _PLAN_MEMO.setdefault(task, {})
        key = tuple(
            sorted((k, repr(v)) for k, v in self.get_params().items() if k != "width_scale")
        )
        if key not in memo:
            memo[key] = self._plan(task)
        return memo[key]

    def _plan(self, task: Task) -> dict[str, Any]:
        _check_ops(task)
        s = task.sparsity
        lay = layout(task)
        bnd = active_bounds(
            task, lay=lay, method=self.bound_method, max_candidates=self.max_candidates
        )
        # max_active limits the superposed pools (a pool sized for a level's true gates); exact
        # units have no per-level limit: their real limit is the stream's fill (every true
        # node's ell bits on at once), which the exact plan checks against max_stream and
        # refuses naming the level and the numbers.
        too_dense: SuperposeError | None = None
        for level, b in enumerate(bnd.level_bounds, start=1):
            if b > self.max_active:
                too_dense = SuperposeError(
                    f"level {level} cannot stay sparse: up to {b} of its "
                    f"{len(lay.gates[level - 1])} gates can be true at once for {s}-sparse "
                    f"inputs ({bnd.method} bound), above max_active={self.max_active} -- use "
                    "the 'naive' construction",
                    cli="--construction naive",
                )
                break
        if too_dense is not None and self.units == "pool":
            raise too_dense
        levels = []
        # One pass over the candidate input sets for every level's xor / andnot gates (per
        # level, it evaluated every candidate pair once per level: the depth-16 target's
        # planning spent most of its time there).
        sizes = [len(g) for g in lay.gates]
        all_gates = np.concatenate([np.asarray(g, dtype=np.int64) for g in lay.gates])
        masks = np.split(_private_mask(task, all_gates, self.max_candidates), np.cumsum(sizes)[:-1])
        for i, gates in enumerate(lay.gates):
            private = masks[i]
            pool_gates = gates[~private]
            _, pool_ops, pool_pos = operand_matrix(task, pool_gates)
            read = ~((task.ops[pool_gates][_] == OP_CODE["andnot"]) & (pool_pos == 1))
            n_ops = int(read.sum())
            # Operand reads per source level (0 = inputs): where a unit's read bits lie.
            by_level = np.bincount(task.node_level[pool_ops[read]], minlength=i + 1)
            priv = gates[private]
            g_of, operand, pos = operand_matrix(task, priv)
            positive = (task.ops[priv][g_of] == OP_CODE["xor"]) | (pos == 0)
            levels.append(
                {
                    "level": i + 1,
                    "gates": gates,
                    "private": private,
                    "pool_parts": int(len(pool_gates)),
                    "pool_reads": n_ops,
                    "reads_by_level": [int(x) for x in by_level[: i + 1]],
                    "present_units": int(len(np.unique(operand[positive]))),
                    "detector_units": int(len(_detectors(task, priv, bnd.level_bounds)[0])),
                    "and_units": int(np.count_nonzero(task.ops[gates] == OP_CODE["and"])),
                    "active": max(1, int(bnd.level_bounds[i])) if len(gates) else 0,
                }
            )
        failure = self._failure(task)
        cands: list[dict[str, Any]] = []
        refused: SuperposeError | None = None
        if self.units in ("auto", "exact"):
            try:
                cands.append(self._exact_widths(task, levels, failure))
            except SuperposeError as exc:
                refused = exc
        forced = not isinstance(self.cleanup, str) and len(self.cleanup) > 0
        if forced and self.units == "pool":
            raise SuperposeError(
                "clean-up blocks are built for exact units only: a pool unit's code lives on "
                "shared pool units whose writes another level reuses, so a block cannot copy "
                "one node's code alone -- use units='exact' (or 'auto')"
            )
        if forced:
            pass  # a clean-up asked for: exact units only
        elif self.units in ("auto", "pool") and too_dense is not None:
            refused = too_dense if refused is None else refused
        elif self.units in ("auto", "pool"):
            try:
                cands.append(self._pool_plan(task, levels, failure))
            except SuperposeError as exc:
                refused = exc if refused is None or self.units == "pool" else refused
        if not cands:
            assert refused is not None
            raise too_dense or refused
        best = min(cands, key=lambda c: c["neurons"])
        return {"layout": lay, "bounds": bnd, "levels": levels, "failure": failure, **best}

    def _exact_widths(
        self, task: Task, levels: list[dict[str, Any]], failure: float
    ) -> dict[str, Any]:
        """Stream width and code length for exact units (module docstring, "Exact units").

        Every true node writes exactly its own ``ell`` bits, so after the last block at most
        ``B = ell (s + sum_L a_L)`` stream bits are on (a_L: the bound on true gates of level
        L). An exact unit (and, present, detector) fires falsely, and an output decodes
        falsely, only when every bit of a false node's code is on: probability at most
        ``rho^ell`` with ``rho = B / d``. The failure budget is split over the levels in
        proportion to their units (each unit carries the same risk): ``N rho^ell <= failure``
        with N = all units + all outputs. The code length minimising d wins.

        A k-input xor (k > 2) is one present unit per operand and one detector per subset of
        >= 2 operands that can be true together (:func:`_detectors`); each is an exact unit
        with the same false-read risk, so the model is unchanged."""
        s = task.sparsity
        hidden = [lv["and_units"] + lv["present_units"] + lv["detector_units"] for lv in levels]
        n_out = len(task.outputs)
        events = sum(hidden) + n_out
        depth = len(levels)
        schedules = self._cleanup_schedules(depth)
        cands = tuple(sorted({k for sched in schedules for k in sched}))
        bounds, live = _written_bounds(task, levels, self, cands)
        t_of = {key: s + b for key, b in bounds.items()}
        true_at = [t_of[(0, col)] for col in range(1, depth + 2)]
        grid = [self.ell] if self.ell else list(EXACT_ELL_GRID)

        def terms(sched: tuple[int, ...]) -> list[tuple[int, int]]:
            """(units, true nodes in the stream they read): every block, each clean-up's
            copies (reading the stream after its level), then the output reads."""
            out, prev = [], 0
            for level in range(1, depth + 1):
                out.append((hidden[level - 1], t_of[(prev, level)]))
                if level in sched:
                    out.append((len(live[level]), t_of[(prev, level + 1)]))
                    prev = level
            out.append((n_out, t_of[(prev, depth + 1)]))
            return out

        def errors(ts: list[tuple[int, int]], ell: int, d: float) -> list[float]:
            """Expected false units per term (block, clean-up) and false output reads."""
            return [h * min(1.0, ell * t / d) ** ell for h, t in ts]

        def widest(ts: list[tuple[int, int]]) -> dict[str, Any] | None:
            best: dict[str, Any] | None = None
            for ell in grid:
                if self.stream_width is not None:
                    d = float(self.stream_width)
                else:
                    # sum_L h_L (ell t_L / d)^ell + n_out (ell t / d)^ell = failure, for d.
                    c = sum(h * (ell * t) ** ell for h, t in ts)
                    d = (c / failure) ** (1.0 / ell)
                    d = max(d, 2.0 * ell * s, float(ell + 1))
                if sum(errors(ts, ell, d)) > failure * (1 + 1e-9) or ell >= d:
                    continue
                width = int(math.ceil(d))
                if best is None or width < best["d"]:
                    best = {"ell": ell, "d": width, "on": float(ell * ts[-1][1])}
            return best

        best, chosen = None, ()
        for sched in schedules:
            got = widest(terms(sched))
            if got is None:
                continue
            got["neurons"] = got["d"] + sum(hidden) + sum(len(live[k]) + 1 for k in sched)
            if best is None or got["neurons"] < best["neurons"]:
                best, chosen = got, sched
        if best is None:
            _refuse_unreadable(levels, true_at, events, failure, grid[0], self.stream_width)
        ell = best["ell"]
        if best["d"] > self.max_stream:
            _refuse_too_wide(levels, true_at, events, failure, ell, best["on"], self.max_stream)
        ts = terms(chosen)
        per = errors(ts, ell, float(best["d"]))
        block_err, cleanups, reads = _split_terms(per, ts, chosen, depth, ell, t_of, live)
        without = sum(errors(terms(()), ell, float(best["d"])))
        return {
            "mode": "exact",
            "ell": ell,
            "d": best["d"],
            "d_floor": best["d"],
            "pools": [0] * len(levels),
            "hidden": hidden,
            "mean_on_bits": [],
            # On-bits of the stream as block L reads it (L = 1..D), then at the output.
            "on_bits": reads,
            "predicted_errors": block_err,
            "predicted_output_errors": per[-1],
            "cleanups": cleanups,
            # The model's error at this width without any clean-up (above the budget when a
            # clean-up was placed: that is why it is there).
            "error_without_cleanup": float(without),
            "neurons": int(best["neurons"]),
        }

    def _cleanup_schedules(self, depth: int) -> list[tuple[int, ...]]:
        """The clean-up placements the exact plan compares: none first, then (``"auto"``)
        every set of at most :data:`MAX_CLEANUPS` levels 1..D-1 (a clean-up after level k),
        or the levels given."""
        from itertools import combinations

        if self.cleanup == "none" or depth < 2:
            return [()]
        if self.cleanup == "auto":
            ks = range(1, depth)
            return [c for r in range(MAX_CLEANUPS + 1) for c in combinations(ks, r)]
        bad = [k for k in self.cleanup if not 1 <= k < depth]
        if bad:
            raise SuperposeError(
                f"a clean-up sits after a level 1..{depth - 1} (before another block); got "
                f"{bad} for a task of depth {depth}"
            )
        return [tuple(sorted(set(self.cleanup)))]

    def _pool_plan(
        self, task: Task, levels: list[dict[str, Any]], failure: float
    ) -> dict[str, Any]:
        """The cheapest superposed-pool plan (shared and / or disjoint regions)."""
        grid = [self.ell] if self.ell else list(ELL_GRID)
        best, refused = None, None
        modes = ("shared", "disjoint") if self.regions == "auto" else (self.regions,)
        if self.stream_width is not None:
            modes = ("shared",)
        for ell in grid:
            for mode in modes:
                try:
                    if mode == "shared":
                        cand = self._widths(task, levels, ell, failure)
                    else:
                        cand = self._disjoint_widths(task, levels, ell, failure)
                except SuperposeError as exc:
                    refused = exc
                    continue
                if best is None or cand["neurons"] < best["neurons"]:
                    best = cand
        if best is None:
            assert refused is not None
            raise refused
        return best

    def _widths(
        self, task: Task, levels: list[dict[str, Any]], ell: int, failure: float
    ) -> dict[str, Any]:
        """Stream width and pool widths for code length ``ell`` (module docstring)."""
        s, m = task.sparsity, task.features
        depth = max(len(levels), 1)
        target = failure / (2 * (depth + 1))
        own = [ell * (lv["active"] + stray(lv["active"])) if lv["active"] else 0.0 for lv in levels]
        on_bits = list(np.cumsum([ell * float(s), *own]))
        total = on_bits[-1]
        # Inputs: their codes are spread over the whole stream.
        d_floor = total / (target / m) ** (1.0 / ell)
        d_floor = max(d_floor, 2.0 * ell * s, float(MIN_POOL_UNITS * ell))
        if d_floor > self.max_stream:
            raise SuperposeError(
                f"the stream would be too full to read: {total:.0f} on-bits after level "
                f"{len(levels)} need a stream of {d_floor:,.0f} neurons (ell={ell}), above "
                f"max_stream={self.max_stream:,}"
            )
        if self.stream_width is not None:
            d_grid = [float(self.stream_width)]
        else:
            d_grid = [d_floor * 16 ** (k / (D_GRID - 1)) for k in range(D_GRID)]
        best: dict[str, Any] | None = None
        for d in d_grid:
            pools, fans, feasible = [], [], True
            region_density: list[float] = []
            for i, lv in enumerate(levels):
                n = lv["pool_parts"]
                if n == 0:
                    pools.append(0)
                    fans.append(0.0)
                    region_density.append(0.0)
                    continue
                # Decoding: a level's codes live on its pool's bits (sigma), where its own
                # true codes are dense and every other code adds total / d.
                cover = (target / n) ** (1.0 / ell) - (total - own[i]) / d
                if cover <= 0:
                    feasible = False
                    break
                floor = max(float(MIN_POOL_UNITS * ell), own[i] / cover)
                if floor > d:
                    feasible = False  # the level's codes would crowd the whole stream
                    break
                # Fan-in: a unit hosting parts of this pool reads ell^2 bits per operand read
                # / pool; reads of level-j codes land in pool j's bits, where level j's true
                # codes are dense (plus the background of every code written so far).
                background = on_bits[i] / d
                load = sum(
                    k * (background + (region_density[j - 1] if j else 0.0))
                    for j, k in enumerate(lv["reads_by_level"])
                )
                pool = floor
                lam = 0.0
                for _ in range(3):
                    cap = min(1.0, stray(lv["active"]) * ell / max(pool, 1.0))
                    lam = _mean_on_bits(n, ell, target, cap)
                    pool = max(floor, ell * ell * load / lam)
                f = lam
                # A pool at least as wide as ell private units per part is built that way.
                pools.append(int(math.ceil(min(pool, ell * n))))
                fans.append(f)
                region_density.append(own[i] / min(pools[-1], d))
            if not feasible:
                continue
            width = int(math.ceil(d))
            private = sum(lv["present_units"] + lv["detector_units"] for lv in levels)
            neurons = width + sum(pools) + private
            if best is None or neurons < best["neurons"]:
                best = {
                    "mode": "shared",
                    "ell": ell,
                    "d": width,
                    "d_floor": int(math.ceil(d_floor)),
                    "pools": pools,
                    "mean_on_bits": fans,
                    "on_bits": [float(x) for x in on_bits],
                    "neurons": int(neurons),
                }
        if best is None:
            raise SuperposeError(
                f"the stream would be too full to read at ell={ell}: {total:.0f} on-bits after "
                f"level {len(levels)}; no stream width up to {d_grid[-1]:,.0f} keeps every code "
                "readable -- pass a larger stream_width"
            )
        return best

    def _disjoint_widths(
        self, task: Task, levels: list[dict[str, Any]], ell: int, failure: float
    ) -> dict[str, Any]:
        """Widths when every level writes into a region of the stream of its own (and the
        inputs into theirs): no background from other levels, at the price of a stream as
        wide as all regions together."""
        s, m = task.sparsity, task.features
        depth = max(len(levels), 1)
        target = failure / (2 * (depth + 1))
        own = [ell * (lv["active"] + stray(lv["active"])) if lv["active"] else 0.0 for lv in levels]
        # The input region holds the s input codes only (written exactly, no strays).
        r0 = max(2.0 * ell * s, ell * s / (target / m) ** (1.0 / ell))
        regions, pools, lams = [], [], []
        density = [ell * s / r0]
        for i, lv in enumerate(levels):
            n_all = len(lv["gates"])
            floor = max(float(ell), own[i] / (target / max(n_all, 1)) ** (1.0 / ell))
            n = lv["pool_parts"]
            pool, lam = 0.0, 0.0
            if n:
                load = sum(k * density[j] for j, k in enumerate(lv["reads_by_level"]))
                pool = float(MIN_POOL_UNITS * ell)
                for _ in range(3):
                    cap = min(1.0, stray(lv["active"]) * ell / max(pool, 1.0))
                    lam = _mean_on_bits(n, ell, target, cap)
                    pool = max(float(MIN_POOL_UNITS * ell), ell * ell * load / lam)
                if pool >= ell * n and not _private_ok(n, ell, target, lv["pool_reads"], load):
                    raise SuperposeError(
                        f"level {lv['level']}: its operands' regions are too dense for private "
                        f"units at ell={ell}"
                    )
                pool = min(pool, ell * n)
            region = max(pool, floor)
            regions.append(int(math.ceil(region)))
            pools.append(int(math.ceil(pool)))
            lams.append(lam)
            density.append(_region_density(lv, own[i], ell, pools[-1], region))
        d = int(math.ceil(r0)) + sum(regions)
        if d > self.max_stream:
            raise SuperposeError(
                f"the stream would be too full to read: its regions need {d:,} neurons "
                f"(ell={ell}), above max_stream={self.max_stream:,}"
            )
        private = sum(lv["present_units"] + lv["detector_units"] for lv in levels)
        return {
            "mode": "disjoint",
            "ell": ell,
            "d": d,
            "d_floor": d,
            "input_region": int(math.ceil(r0)),
            "regions": regions,
            "pools": pools,
            "mean_on_bits": lams,
            "on_bits": [float(x) for x in np.cumsum([ell * float(s), *own])],
            "neurons": int(d + sum(pools) + private),
        }

    def plan_neurons(self, task: Task) -> tuple[int, bool] | None:
        """Planned residual neurons (stream once + hidden units) at the automatic widths."""
        if self.ell is not None or self.stream_width is not None:
            return None
        return int(self.plan(task)["neurons"]), True

    # building ---------------------------------------------------------------------------
    def build(self, task: Task, rng: np.random.Generator) -> Network:
        plan = self.plan(task)
        if plan["mode"] == "exact":
            return self._build_exact(task, plan, rng)
        ell, m = int(plan["ell"]), task.features
        disjoint = plan["mode"] == "disjoint"
        pools, r0, regions, offsets, d = _pool_regions(
            plan, float(self.width_scale), ell, task.sparsity
        )
        # Every node's code: (n_nodes, d) rows, filled level by level.
        first = random_sets(m, r0, ell, rng)
        code_rows: list[sparse.csr_array] = [
            sparse.csr_array((first.data, first.indices, first.indptr), shape=(m, d))
        ]
        row_of = np.full(task.n_nodes, -1, dtype=np.int64)
        row_of[:m] = np.arange(m)
        n_rows = m
        layers: list[Layer] = []
        blocks: list[dict[str, Any]] = []
        eye = sparse.eye_array(d, dtype=np.float32, format="csr")
        for lv, pool_w, region, off in zip(plan["levels"], pools, regions, offsets, strict=True):
            gates = lv["gates"]
            if len(gates) == 0:
                continue
            stream_code = BloomCode(sparse.vstack(code_rows, format="csr"))
            private = lv["private"]
            pool_gates, priv = gates[~private], gates[private]
            p, sigma, stats, pool_codes, pool_w_mat, pool_bias = _pool_block(
                task,
                int(lv["level"]),
                pool_gates,
                row_of,
                stream_code,
                (pool_w, region, off, d, ell),
                self.heavy_share,
                disjoint,
                rng,
            )
            # Private xor / andnot: "present" units per operand, a detector per gate.
            pu = _PrivateUnits(task, priv, stream_code, row_of, plan["bounds"].level_bounds)
            pc0 = random_sets(len(priv), region, ell, rng)
            priv_codes = sparse.csr_array(
                (pc0.data, pc0.indices + off, pc0.indptr), shape=(len(priv), d)
            )
            n_pres, n_det = pu.n_present, pu.n_detectors
            hidden = p + n_pres + n_det
            read = Layer(
                sparse.vstack([eye, pool_w_mat, *pu.reads], format="csr"),
                np.concatenate([-np.ones(d, np.float32), pool_bias, *pu.biases]),
                "step",
            )
            # Write: identity (residual) + sigma for the pool + signed private writes.
            pc = priv_codes.tocoo()
            gate_bits = sparse.csr_array(
                (np.ones(pc.nnz, np.float32), (pc.coords[0], pc.coords[1])), shape=(len(priv), d)
            )
            write_pres, write_det = pu.writes(gate_bits)
            write_pool = sparse.csr_array(
                (np.ones(p, np.float32), (sigma, np.arange(p))), shape=(d, p)
            )
            write = Layer(
                sparse.hstack([eye, write_pool, write_pres, write_det], format="csr"),
                -np.ones(d, np.float32),
                "step",
            )
            layers += [read, write]
            new_rows = np.concatenate([m + pool_gates, m + priv])
            code_rows += [sparse.csr_array(pool_codes), sparse.csr_array(priv_codes)]
            row_of[new_rows] = n_rows + np.arange(len(new_rows))
            n_rows += len(new_rows)
            blocks.append(
                {
                    "level": int(lv["level"]),
                    "gates": int(len(gates)),
                    "active_bound": int(lv["active"]),
                    "pool_units": int(p),
                    "present_units": int(n_pres),
                    "detector_units": int(n_det),
                    "hidden_units": int(hidden),
                    "fan_in_fraction_max": float(stats.get("fan_in_fraction_max", 0.0)),
                    "nonzero_parameters": read.nonzero_parameters() + write.nonzero_parameters(),
                    "identity_parameters": 2 * d,
                }
            )
        if not layers:
            raise SuperposeError("the task has no gate to compute")
        codes = BloomCode(sparse.vstack(code_rows, format="csr"))
        out_rows = row_of[task.outputs]
        if (out_rows < 0).any():
            raise SuperposeError("internal: an output has no code in the stream")
        input_code = BloomCode(code_rows[0])
        output_code = BloomCode(sparse.csr_array(codes.membership[out_rows]))
        extras = {
            "residual": _residual(d, blocks, sum(b["nonzero_parameters"] for b in blocks)),
            "ell": ell,
            "stream_floor": int(plan["d_floor"]),
            "regions": plan["mode"],
            "region_widths": [int(r0)] + [int(r) for r in regions] if disjoint else [],
            "planned_neurons": int(plan["neurons"]),
            "planned_stream_on_bits": [float(x) for x in plan["on_bits"]],
            **_plan_record(task, plan),
        }
        return self._network(task, layers, input_code, output_code, extras, (row_of, codes))

    def _network(
        self,
        task: Task,
        layers: list[Layer],
        input_code: BloomCode,
        output_code: BloomCode,
        extras: dict[str, Any],
        stream_codes: tuple[np.ndarray, BloomCode],
    ) -> Network:
        """The built network, carrying its stream codes (:func:`superpose.stage_check.stream_codes`
        reads them; a saved network does not store them)."""
        net = Network(
            layers, input_code, output_code, task, self.name, self.get_params(), extras=extras
        )
        net.stream_codes = stream_codes  # type: ignore[attr-defined]
        return net

    def _build_exact(self, task: Task, plan: dict[str, Any], rng: np.random.Generator) -> Network:
        """Exact units (module docstring): every node has its own ``ell`` random stream bits;
        or-like gates (or, copy, xor / andnot whose operands never meet) get no unit -- the
        writer of each operand also writes their bits (the *closure* of the writer)."""
        ell = int(plan["ell"])
        m, s, n_nodes = task.features, task.sparsity, task.n_nodes
        d = max(int(round(plan["d"] * self.width_scale)), 2 * ell * s, ell + 1)
        lay: Any = plan["layout"]
        own = random_sets(n_nodes, d, ell, rng)
        code = BloomCode(sparse.csr_array(own, dtype=np.int8))
        real, write_rows, cleanup_at, post = _closure(task, plan, own)
        input_code = BloomCode(sparse.csr_array(write_rows[:m], dtype=np.int8))
        layers: list[Layer] = []
        blocks: list[dict[str, Any]] = []
        eye = sparse.eye_array(d, dtype=np.float32, format="csr")
        ident = np.arange(n_nodes, dtype=np.int64)
        for lv in plan["levels"]:
            gates = lv["gates"]
            ands = gates[task.ops[gates] == OP_CODE["and"]]
            priv = gates[lv["private"]]
            # A level of or-like gates only keeps its (empty) block: one block per level.
            # And units: every bit of every operand (threshold: all of them).
            a_of, a_op, _ = operand_matrix(task, ands)
            and_w = sparse.csr_array(read_sets(code, a_of, a_op, len(ands)), dtype=np.float32)
            and_b = -np.diff(and_w.indptr).astype(np.float32)
            # Xor / andnot whose operands can meet: present units (one per distinct operand)
            # and detectors (one per gate; a k-input xor one per subset of >= 2 operands that
            # can be true together: inclusion-exclusion, :func:`_detectors`).
            pu = _PrivateUnits(task, priv, code, ident, plan["bounds"].level_bounds)
            n_and, n_pres, n_det = len(ands), pu.n_present, pu.n_detectors
            hidden = n_and + n_pres + n_det
            read = Layer(
                sparse.vstack([eye, and_w, *pu.reads], format="csr"),
                np.concatenate([-np.ones(d, np.float32), and_b, *pu.biases]),
                "step",
            )
            write_pres, write_det = pu.writes(sparse.csr_array(write_rows[m + priv]))
            write = Layer(
                sparse.hstack(
                    [eye, sparse.csr_array(write_rows[m + ands]).T, write_pres, write_det],
                    format="csr",
                ),
                -np.ones(d, np.float32),
                "step",
            )
            layers += [read, write]
            i = int(lv["level"]) - 1
            blocks.append(
                {
                    "level": int(lv["level"]),
                    "gates": int(len(gates)),
                    "active_bound": int(lv["active"]),
                    "pool_units": 0,
                    "and_units": int(n_and),
                    "present_units": int(n_pres),
                    "detector_units": int(n_det),
                    "hidden_units": int(hidden),
                    "or_like_gates": int(len(gates) - n_and - len(priv)),
                    "predicted_error": float(plan["predicted_errors"][i]),
                    "nonzero_parameters": read.nonzero_parameters() + write.nonzero_parameters(),
                    "identity_parameters": 2 * d,
                }
            )
            if int(lv["level"]) in cleanup_at:
                c = cleanup_at[int(lv["level"])]
                layers += _cleanup_block(code, post[int(lv["level"])], c["nodes"], eye)
                blocks.append(
                    {
                        "level": int(lv["level"]),
                        "kind": "cleanup",
                        "copy_units": int(len(c["nodes"])),
                        "hidden_units": int(len(c["nodes"]) + 1),
                        "predicted_error": float(c["predicted_error"]),
                        "nonzero_parameters": layers[-2].nonzero_parameters()
                        + layers[-1].nonzero_parameters(),
                        "identity_parameters": 2 * d,
                    }
                )
        output_code = BloomCode(sparse.csr_array(code.membership[task.outputs]))
        extras = {
            "residual": _residual(d, blocks, sum(lay_.nonzero_parameters() for lay_ in layers)),
            "units": "exact",
            "ell": ell,
            "stream_floor": int(plan["d_floor"]),
            "regions": "shared",
            "region_widths": [],
            "planned_neurons": int(plan["neurons"]),
            "planned_stream_on_bits": [float(x) for x in plan["on_bits"]],
            "predicted_errors": [float(x) for x in plan["predicted_errors"]],
            "predicted_output_errors": float(plan["predicted_output_errors"]),
            **(
                {
                    "cleanups": [
                        {k: v for k, v in c.items() if k != "nodes"} for c in plan["cleanups"]
                    ],
                    "error_without_cleanup": float(plan["error_without_cleanup"]),
                }
                if plan.get("cleanups")
                else {}
            ),
            **_plan_record(task, plan),
        }
        row_of = np.arange(n_nodes, dtype=np.int64)
        net = self._network(task, layers, input_code, output_code, extras, (row_of, code))
        net.stream_writes = _exact_writes(task, lay, real, write_rows, blocks, cleanup_at, post)  # type: ignore[attr-defined]
        return net


def _residual(d: int, blocks: list[dict[str, Any]], nonzero: int) -> dict[str, Any]:
    """The ``residual`` record of a stream network: the stream width, the hidden units of
    its blocks and the neurons in all, its non-zero parameters and the blocks."""
    hidden_total = sum(b["hidden_units"] for b in blocks)
    return {
        "stream_width": int(d),
        "hidden_units": int(hidden_total),
        "neurons": int(d + hidden_total),
        "nonzero_parameters": int(nonzero),
        "blocks": blocks,
    }


def _plan_record(task: Task, plan: dict[str, Any]) -> dict[str, Any]:
    """What the extras of both unit kinds end with: the active bound of the input and of
    every level, how the bounds were found, the failure target the plan met and the explicit
    network's neurons (the comparison)."""
    return {
        "active_bounds": [int(task.sparsity)] + [int(lv["active"]) for lv in plan["levels"]],
        "bound_method": plan["bounds"].method,
        "failure_target": float(plan["failure"]),
        "explicit_neurons": int(task.features + task.n_gates),
    }


def _cleanup_block(
    code: BloomCode, post: sparse.csr_array, nodes: np.ndarray, eye: sparse.csr_array
) -> list[Layer]:
    """A clean-up block: erase the stream and write back the codes of ``nodes`` only.

    Hidden units: one "clear" unit (reads every stream bit, threshold 1: on whenever the
    stream holds anything, which is whenever there is something to erase -- a unit that
    fires on the all-zero input is not allowed) and one copy unit per node
    (reads every bit of its own code, threshold all of them -- an exact unit, with the same
    false-read risk). Write, still ``stream' = step(stream + W h - 1)``: the clear unit adds
    -2 to every bit, a copy unit +3 to each bit of its node's code and of the or-like gates
    above the clean-up it feeds (``post``): a bit ends on iff some copy writes it, whatever
    it was (s + 3c - 3 >= 0 iff c >= 1 for s in {0, 1}). So it is a residual block like any
    other (identity skip, same width, the torch export keeps it), whose write overwrites."""
    d = code.width
    copy_w = sparse.csr_array(code.membership[nodes], dtype=np.float32)
    read = Layer(
        sparse.vstack([eye, sparse.csr_array(np.ones((1, d), np.float32)), copy_w], format="csr"),
        np.concatenate(
            [
                -np.ones(d, np.float32),
                -np.ones(1, np.float32),
                -code.lengths[nodes].astype(np.float32),
            ]
        ),
        "step",
    )
    copies = sparse.csr_array(post[nodes], dtype=np.float32).T * np.float32(3)
    clear = sparse.csr_array(np.full((d, 1), -2.0, dtype=np.float32))
    write = Layer(
        sparse.hstack([eye, clear, sparse.csr_array(copies)], format="csr"),
        -np.ones(d, np.float32),
        "step",
    )
    return [read, write]


def _exact_writes(
    task: Task,
    lay: Any,
    real: np.ndarray,
    write_rows: sparse.csr_array,
    blocks: list[dict[str, Any]] | None = None,
    cleanup_at: dict[int, dict[str, Any]] | None = None,
    post: dict[int, sparse.csr_array] | None = None,
) -> dict[str, Any]:
    """Who writes what into an exact-unit stream, for the per-level check.

    ``writers``: the inputs and the real gates (node ids), ``rows``: the stream bits each
    writes (its own code and its closure), ``write_level``: the block that writes it (0: the
    input embedding). ``complete_level`` per node: the block after which its code is
    complete -- an input 0, a real gate its level, an or-like gate the latest complete level
    of the operands it passes on (it is written by each of their writers)."""
    m = task.features
    real_gates = np.flatnonzero(real)
    writers = np.concatenate([np.arange(m, dtype=np.int64), m + real_gates])
    write_level = np.concatenate(
        [np.zeros(m, dtype=np.int64), task.gate_level[real_gates].astype(np.int64)]
    )
    complete = np.full(task.n_nodes, -1, dtype=np.int64)
    complete[:m] = 0
    complete[m + real_gates] = task.gate_level[real_gates]
    for level in range(1, lay.depth + 1):
        gates = np.asarray(lay.gates[level - 1], dtype=np.int64)
        like = gates[~real[gates]]
        if not len(like):
            continue
        g_of, operand, pos = operand_matrix(task, like)
        keep = ~((task.ops[like][g_of] == OP_CODE["andnot"]) & (pos == 1))
        last = np.zeros(len(like), dtype=np.int64)
        np.maximum.at(last, g_of[keep], complete[operand[keep]])
        complete[m + like] = last
    out: dict[str, Any] = {
        "writers": writers,
        "rows": sparse.csr_array(write_rows[writers]),
        "write_level": write_level,
        "complete_level": complete,
    }
    if not cleanup_at:
        return out
    # With clean-ups: which block writes each writer (-1: the embedding), the copies each
    # clean-up block writes (as extra writers), which blocks erase, and what is left at the end.
    assert blocks is not None and post is not None
    block_of = {int(b["level"]): i for i, b in enumerate(blocks) if b.get("kind") != "cleanup"}
    write_block = np.where(write_level == 0, -1, 0)
    write_block[write_level > 0] = [block_of[int(x)] for x in write_level[write_level > 0]]
    rows = [out["rows"]]
    w_all, wl_all, wb_all = [writers], [write_level], [write_block]
    erase, nodes_of = [False] * len(blocks), [None] * len(blocks)
    alive = np.ones(task.n_nodes, dtype=bool)
    for i, b in enumerate(blocks):
        if b.get("kind") != "cleanup":
            continue
        k, nodes = int(b["level"]), np.asarray(cleanup_at[int(b["level"])]["nodes"])
        erase[i], nodes_of[i] = True, nodes
        w_all.append(nodes)
        rows.append(sparse.csr_array(post[k][nodes]))
        wl_all.append(np.full(len(nodes), k, dtype=np.int64))
        wb_all.append(np.full(len(nodes), i, dtype=np.int64))
        alive = (task.node_level > k) | np.isin(np.arange(task.n_nodes), nodes)
    out.update(
        writers=np.concatenate(w_all),
        rows=sparse.csr_array(sparse.vstack(rows, format="csr")),
        write_level=np.concatenate(wl_all),
        write_block=np.concatenate(wb_all),
        erase_blocks=np.asarray(erase, dtype=bool),
        block_nodes=nodes_of,
        alive_at_end=alive,
    )
    return out


def residual_counts(net: Network) -> dict[str, Any]:
    """The residual accounting of a ``stream`` network: stream width, hidden units per block,
    neurons (stream once + hidden units) and non-zero parameters (identities included).

    Example:
        >>> from superpose import Task
        >>> from superpose.constructions import build
        >>> net = build(Task.from_gates(4, 2, [("and", [0, 1]), ("or", [4, 2])]), "stream")
        >>> c = residual_counts(net)
        >>> c["neurons"] == c["stream_width"] + sum(b["hidden_units"] for b in c["blocks"])
        True
    """
    res = net.extras.get("residual")
    if net.construction != "stream" or not isinstance(res, dict):
        raise SuperposeError(
            f"residual counts need a 'stream' network; this one was built by {net.construction!r}"
        )
    return res


def _pool_regions(
    plan: dict[str, Any], scale: float, ell: int, s: int
) -> tuple[list[int], int, list[int], list[int], int]:
    """The pool design's widths at ``scale``: each level's pool, the input region ``r0``, each
    level's region of stream bits and its offset, and the stream width ``d``.

    Shared regions: every level writes anywhere in one stream of width ``d`` (at least two
    codes' worth per active input). Disjoint regions: the input codes, then each level, own a
    slice of the stream (at least the level's pool and one code wide)."""
    pools = [max(1, round(p * scale)) if p else 0 for p in plan["pools"]]
    if plan["mode"] == "disjoint":
        r0 = max(int(round(plan["input_region"] * scale)), 2 * ell * s)
        regions = [
            max(round(r * scale), p, ell) for r, p in zip(plan["regions"], pools, strict=True)
        ]
        offsets = list(np.cumsum([r0, *regions])[:-1])
        return pools, r0, regions, offsets, r0 + sum(regions)
    d = max(int(round(plan["d"] * scale)), 2 * ell * s)
    return pools, d, [d] * len(pools), [0] * len(pools), d


def _pool_block(
    task: Task,
    level: int,
    pool_gates: np.ndarray,
    row_of: np.ndarray,
    stream_code: BloomCode,
    widths: tuple[int, int, int, int, int],
    heavy_share: float,
    disjoint: bool,
    rng: np.random.Generator,
) -> tuple[int, np.ndarray, dict[str, Any], sparse.csr_array, sparse.csr_array, np.ndarray]:
    """One level's pool: and / or / copy parts, each on ``ell`` units of a threshold stage
    (private units when the pool is as wide as that), written to the stream by ``sigma``.

    ``widths`` is (pool width, region, offset, stream width d, ell). Returns the pool's units
    ``p``, ``sigma`` (unit -> stream bit), the stage statistics, the gates' stream codes and
    the read layer's rows (weights, biases). Refused when disjoint regions cannot hold it."""
    pool_w, region, off, d, ell = widths
    if not len(pool_gates):
        return (
            0,
            np.zeros(0, np.int64),
            {},
            sparse.csr_array((0, d), dtype=np.int8),
            sparse.csr_array((0, d), dtype=np.float32),
            np.zeros(0, np.float32),
        )
    parts = _pool_parts(task, pool_gates, row_of)
    if pool_w >= ell * len(parts):
        pool_layer, units, stats = _private_stage(parts, stream_code, ell)
    else:
        pool_layer, units, stats = threshold_stage(
            parts, stream_code, pool_w, ell, heavy_share, rng, mix=True
        )
        if units.shape[1] >= ell * len(parts):
            if disjoint:
                raise SuperposeError(
                    f"level {level}: the pool's blocks need {units.shape[1]} "
                    f"units, no fewer than private ones ({ell * len(parts)}), which "
                    "the region plan did not size for -- use regions='shared'"
                )
            # Its blocks' minimum sizes made it wider than private units.
            pool_layer, units, stats = _private_stage(parts, stream_code, ell)
    p = units.shape[1]
    if disjoint and p > region:
        raise SuperposeError(
            f"level {level}: the pool has {p} units, more than its region of "
            f"{region} stream bits -- use regions='shared'"
        )
    # sigma: an injection of the pool into the stream; a pool wider than the stream wraps
    # around (a few codes then lose a bit to a collision).
    perms = [rng.permutation(region) for _ in range(-(-p // region))]
    sigma = off + np.concatenate(perms)[:p]
    pool_codes = sparse.csr_array(
        (np.ones(units.nnz, np.int8), sigma[units.indices], units.indptr),
        shape=(len(pool_gates), d),
    )
    pool_codes.sum_duplicates()
    pool_codes.data[:] = 1
    return p, sigma, stats, pool_codes, pool_layer.weight, pool_layer.bias


def _closure(
    task: Task, plan: dict[str, Any], own: sparse.csr_array
) -> tuple[np.ndarray, sparse.csr_array, dict[int, dict[str, Any]], dict[int, sparse.csr_array]]:
    """What each node's writer writes under exact units: its own bits and, through every
    or-like gate that reads it (or, copy, an and-not's first operand, a xor / and-not whose
    operands never meet), that gate's bits too -- the closure, computed top level first.

    Returns which gates get units of their own (``real``), the closure's write rows (nodes x
    d, 0/1), the planned clean-ups by level, and per clean-up level the write rows a copy
    made there uses (passing on only to the or-like gates above it)."""
    m, n_nodes, lay = task.features, task.n_nodes, plan["layout"]
    # Or-like gates and the operands they pass on (andnot-as-copy: its first operand).
    needed = np.zeros(task.n_gates, dtype=bool)
    needed[np.concatenate(lay.gates)] = True
    real = np.zeros(task.n_gates, dtype=bool)
    for lv in plan["levels"]:
        g = lv["gates"]
        real[g[task.ops[g] == OP_CODE["and"]]] = True
        real[g[lv["private"]]] = True
    orlike = np.flatnonzero(needed & ~real)
    # Closure: W[v] = own[v] OR the W of every or-like gate reading v (top level first).
    write_rows = sparse.csr_array(own, dtype=np.float32)
    cleanup_at = {int(c["after_level"]): c for c in plan.get("cleanups", [])}
    post: dict[int, sparse.csr_array] = {}
    if len(orlike):
        g_of, operand, pos = operand_matrix(task, orlike)
        keep = ~((task.ops[orlike][g_of] == OP_CODE["andnot"]) & (pos == 1))
        g_of, operand = g_of[keep], operand[keep]
        lev = task.gate_level[orlike][g_of]
        for level in range(lay.depth, 0, -1):
            if level in cleanup_at:
                # A copy after this level passes on to the or-like gates above it only.
                post[level] = sparse.csr_array(write_rows, copy=True)
                post[level].data[:] = 1
            sel = lev == level
            if not sel.any():
                continue
            pass_on = sparse.csr_array(
                (np.ones(int(sel.sum()), np.float32), (operand[sel], m + orlike[g_of[sel]])),
                shape=(n_nodes, n_nodes),
            )
            write_rows = sparse.csr_array(write_rows + pass_on @ write_rows)
            write_rows.data[:] = 1
    write_rows = sparse.csr_array(write_rows)
    write_rows.data[:] = 1
    for level in cleanup_at:
        post.setdefault(level, sparse.csr_array(write_rows))
    return real, write_rows, cleanup_at, post


def _refuse_unreadable(
    levels: list[dict[str, Any]],
    true_at: list[int],
    events: int,
    failure: float,
    ell: int,
    stream_width: int | None,
) -> NoReturn:
    """No code length keeps a stream of ``stream_width`` readable: name the first level whose
    true nodes alone leave more false reads than the failure budget."""
    d = float(stream_width or 1)
    level, true = len(levels), true_at[-1]
    for lv, t_l in zip(levels, true_at[1:], strict=False):
        if events * min(1.0, ell * t_l / d) ** ell > failure:
            level, true = lv["level"], t_l
            break
    raise SuperposeError(
        f"level {level}: the stream would be too full to read at ell={ell}: "
        f"{ell * true:.0f} on-bits after level {level} ({true} true nodes at most) "
        f"leave more than the failure budget {failure:.2g} of false reads in a stream "
        f"of {stream_width:,} neurons -- pass a larger stream_width"
    )


def _refuse_too_wide(
    levels: list[dict[str, Any]],
    true_at: list[int],
    events: int,
    failure: float,
    ell: int,
    on: float,
    max_stream: int,
) -> NoReturn:
    """The best stream is wider than ``max_stream``: name the first level whose codes alone
    already need a wider stream (``on``: the on-bits at the output, when none does)."""
    share = (failure / max(events, 1)) ** (1.0 / ell)
    level = len(levels)
    for lv, t_l in zip(levels, true_at[1:], strict=False):
        on_l = ell * t_l
        if on_l / share > max_stream:
            level, on = lv["level"], on_l
            break
    raise SuperposeError(
        f"level {level}: the stream would be too full to read: {on:.0f} on-bits "
        f"after level {level} (ell={ell}, at most {on / ell:.0f} true nodes) need a "
        f"stream of {on / share:,.0f} neurons to keep false reads within the failure "
        f"budget {failure:.2g}, above max_stream={max_stream:,}"
    )


def _split_terms(
    per: list[float],
    ts: list[tuple[int, int]],
    chosen: tuple[int, ...],
    depth: int,
    ell: int,
    t_of: dict[tuple[int, int], int],
    live: dict[int, Any],
) -> tuple[list[float], list[dict[str, Any]], list[float]]:
    """The exact plan's per-term errors (blocks, clean-ups, in ``terms`` order) split into the
    blocks' predicted errors, one record per clean-up, and the on-bits each block (then the
    output read) sees."""
    block_err: list[float] = []
    cleanups: list[dict[str, Any]] = []
    reads: list[float] = []
    i = prev = 0
    for level in range(1, depth + 1):
        block_err.append(per[i])
        reads.append(float(ell * ts[i][1]))
        i += 1
        if level in chosen:
            cleanups.append(
                {
                    "after_level": level,
                    "copies": int(len(live[level])),
                    "predicted_error": per[i],
                    "on_bits_read": float(ell * ts[i][1]),
                    "on_bits_after": float(ell * t_of[(level, level + 1)]),
                    "on_bits_without": float(ell * t_of[(prev, level + 1)]),
                    "nodes": live[level],
                }
            )
            prev = level
            i += 1
    reads.append(float(ell * ts[-1][1]))
    return block_err, cleanups, reads
