"""Levels of a deep task: levelling with carries, sparsity bounds per stage, per-level checks.

* :func:`layout` splits a task into stages. A gate's level is one more than its deepest
  operand (inputs are level 0); stage L computes the gates of level L and carries forward
  (``copy``) every node that is read after level L or is an output but was made earlier, so
  that each stage reads only the stage before it. Only gates some output depends on are kept.
* :func:`active_bounds` bounds, for every stage, how many of its nodes can be true at once on
  an input with at most s active features. All ops map all-zero operands to 0, so a true node
  always has an active input in its backward cone; the *relaxed* circuit (``xor`` -> ``or``,
  ``andnot(a, b)`` -> ``copy(a)``) is monotone and true wherever the task is, so bounds for it
  hold for the task. Methods, tightest first:

  - ``exact`` (s <= 3): a set of inputs whose true set is more than the union of the true
    sets of its proper subsets must be the union of minimal supports of two operands of one
    AND gate ("candidate" sets). The true sets of every single input and of every candidate
    pair (and triple) are evaluated; every other set is bounded by the sums of single-input
    counts and pair surpluses. The result is a safe upper bound, tight up to overlaps.
  - ``cone``: the sum of the s largest forward cones (nodes reachable from one input) of the
    stage -- safe for any s, loose for deep circuits (cones roughly double per level).

  ``exact`` falls back to ``cone`` when the candidate sets exceed ``max_candidates``.

The per-level checks of a built ``circuit`` network (decode every stage, certify every stage)
live in :mod:`superpose.stage_check`: they rebuild networks, so they sit above the
constructions, while this module is read by them.
"""

from __future__ import annotations

import math
import weakref
from dataclasses import asdict, dataclass, field
from typing import Any

import numpy as np
from scipy import sparse

from superpose.errors import SuperposeError
from superpose.evaluation import evaluate_nodes
from superpose.task import OP_CODE, Task

DEFAULT_MAX_CANDIDATES = 3_000_000
"""Largest number of candidate input sets the ``exact`` bound evaluates before falling back."""


# --- levelling ---------------------------------------------------------------------------


@dataclass(frozen=True)
class Layout:
    """Stages of a deep task: stage L (1-based) computes ``gates[L-1]`` and carries ``carried[L-1]``."""

    depth: int
    gates: list[np.ndarray]  # gate indices computed at each stage
    carried: list[np.ndarray]  # node ids copied forward at each stage
    needed: np.ndarray  # per gate: some output depends on it
    last_use: np.ndarray  # per node: last stage that reads it (depth + 1 for outputs)

    def nodes(self, stage: int, features: int) -> np.ndarray:
        """Node ids held by stage ``stage`` (1-based): its gates, then its carries."""
        i = stage - 1
        return np.concatenate([features + self.gates[i], self.carried[i]]).astype(np.int64)

    @property
    def carries(self) -> list[int]:
        return [len(c) for c in self.carried]

    @property
    def total_carries(self) -> int:
        return int(sum(self.carries))


def needed_gates(task: Task) -> np.ndarray:
    """Per gate: whether some output depends on it."""
    needed = np.zeros(task.n_nodes, dtype=bool)
    needed[task.outputs] = True
    if task.depth > 1:
        # Level by level from the top: a needed gate needs its operands.
        level = task.gate_level
        for lev in range(task.depth, 0, -1):
            g = np.flatnonzero((level == lev) & needed[task.features :])
            if len(g):
                needed[task.operand_arrays(g)[1]] = True
    return needed[task.features :]


def layout(task: Task) -> Layout:
    """Levels and carries of ``task`` (see the module docstring).

    Example:
        >>> t = Task.from_gates(4, 2, [("and", [0, 1]), ("or", [4, 2]), ("and", [5, 3])], [6, 4])
        >>> lay = layout(t)
        >>> lay.depth, [g.tolist() for g in lay.gates], lay.carries
        (3, [[0], [1], [2]], [2, 2, 1])
    """
    depth = max(task.depth, 1)
    levels = task.node_level
    needed = needed_gates(task)
    last_use = levels.astype(np.int64).copy()
    reader_level = np.repeat(task.gate_level, task.arity)
    keep = np.repeat(needed, task.arity)
    np.maximum.at(last_use, task.gate_inputs[keep], reader_level[keep])
    last_use[task.outputs] = depth + 1
    gates, carried = [], []
    for level in range(1, depth + 1):
        gates.append(np.flatnonzero((task.gate_level == level) & needed).astype(np.int64))
        carried.append(np.flatnonzero((levels < level) & (last_use > level)).astype(np.int64))
    return Layout(depth, gates, carried, needed, last_use)


def level_membership(task: Task, lay: Layout) -> sparse.csr_array:
    """(nodes, levels) 0/1: gate g (needed) sits in the column of its own level."""
    g = np.concatenate(lay.gates) if lay.gates else np.zeros(0, np.int64)
    lev = task.gate_level[g].astype(np.int64) - 1
    return sparse.csr_array(
        (np.ones(len(g), dtype=np.int64), (task.features + g, lev)),
        shape=(task.n_nodes, lay.depth),
    )


def stage_membership(task: Task, lay: Layout) -> sparse.csr_array:
    """(nodes, stages) 0/1: node v is held by stage L (as a gate of L or a carry)."""
    rows, cols = [], []
    for i in range(lay.depth):
        nodes = lay.nodes(i + 1, task.features)
        rows.append(nodes)
        cols.append(np.full(len(nodes), i, dtype=np.int64))
    r, c = np.concatenate(rows), np.concatenate(cols)
    return sparse.csr_array(
        (np.ones(len(r), dtype=np.int64), (r, c)), shape=(task.n_nodes, lay.depth)
    )


# --- sparsity bounds ---------------------------------------------------------------------


_RELAXED: weakref.WeakKeyDictionary[Task, Task] = weakref.WeakKeyDictionary()
_PAIR_TRUTHS: weakref.WeakKeyDictionary[Task, dict[int, Any]] = weakref.WeakKeyDictionary()
"""Per task: its relaxation, and per relaxation the true sets of every candidate pair. Planning
a deep task asks for bounds and for which operands meet several times (levels, the stream's
columns, operands_meet); each used to evaluate every candidate pair again (the depth-16
target: three passes of minutes each). Kept while the task lives."""


def relaxed(task: Task) -> Task:
    """The monotone relaxation: xor -> or, andnot(a, b) -> copy(a). True wherever ``task`` is
    (memoised per task: the same object is returned while ``task`` lives)."""
    got = _RELAXED.get(task)
    if got is None:
        got = _RELAXED[task] = _relaxed(task)
    return got


def _relaxed(task: Task) -> Task:
    ops = task.ops.copy()
    is_andnot = ops == OP_CODE["andnot"]
    ops[ops == OP_CODE["xor"]] = OP_CODE["or"]
    if not is_andnot.any():
        return Task(
            task.features, task.sparsity, ops, task.gate_indptr, task.gate_inputs, task.outputs
        )
    ops[is_andnot] = OP_CODE["copy"]
    arity = task.arity.copy()
    keep = np.ones(len(task.gate_inputs), dtype=bool)
    second = task.gate_indptr[:-1][is_andnot] + 1
    keep[second] = False
    arity[is_andnot] = 1
    indptr = np.zeros(task.n_gates + 1, dtype=np.int64)
    np.cumsum(arity, out=indptr[1:])
    return Task(task.features, task.sparsity, ops, indptr, task.gate_inputs[keep], task.outputs)


@dataclass
class ActiveBounds:
    """Upper bounds on simultaneously true nodes per stage, for inputs with <= ``sparsity`` active."""

    sparsity: int
    method: str  # "exact" or "cone"
    bounds: list[int]  # per stage 1..depth (its gates and carries)
    cone: list[int]  # the cone bound, for comparison
    single_max: list[int]  # most nodes one input switches on, per stage
    level_bounds: list[int] = field(default_factory=list)  # per level: its own gates only
    level_cone: list[int] = field(default_factory=list)
    candidates: int = 0  # candidate input sets evaluated
    note: str = ""
    extra: dict[str, Any] = field(default_factory=dict)

    def as_dict(self) -> dict[str, Any]:
        return asdict(self)


def _top_sum(col: np.ndarray, k: int) -> int:
    if k <= 0 or len(col) == 0:
        return 0
    k = min(k, len(col))
    return int(np.partition(col, len(col) - k)[len(col) - k :].sum())


def _batches_of_sets(sets: np.ndarray, m: int, batch: int = 16384):
    """Yield (start, csr batch) for rows of input ids (-1 = unused slot)."""
    for start in range(0, len(sets), batch):
        part = sets[start : start + batch]
        r, c = np.nonzero(part >= 0)
        x = sparse.csr_array(
            (np.ones(len(r), dtype=np.int32), (r, part[r, c])), shape=(len(part), m)
        )
        yield start, x


def _factor(member: sparse.csr_array) -> tuple[sparse.csr_array, np.ndarray]:
    """``member = U @ R``: U one-hot (nodes x classes of identical rows), R the distinct rows
    (dense). Counting true nodes per column as ``(v @ U) @ R`` costs one term per true node
    instead of one per (true node, column): the stream's clean-up columns put a node in up to
    ~D^2 / 2 of them."""
    dense = sparse.csr_array(member, dtype=np.int64).toarray()
    rows, inverse = np.unique(dense, axis=0, return_inverse=True)
    inverse = np.asarray(inverse).ravel()
    n = dense.shape[0]
    u = sparse.csr_array(
        (np.ones(n, dtype=np.int64), (np.arange(n), inverse)), shape=(n, len(rows))
    )
    return u, rows


def _counts(v: sparse.csr_array, fac: tuple[sparse.csr_array, np.ndarray]) -> np.ndarray:
    """True nodes of each column for each row of ``v`` (dense, int64), via :func:`_factor`."""
    u, rows = fac
    return np.asarray(sparse.csr_array(v @ u, dtype=np.int64).toarray()) @ rows


def _stage_counts(task: Task, sets: np.ndarray, member: sparse.csr_array) -> np.ndarray:
    """(len(sets), stages): true nodes of each stage for each input set."""
    out = np.zeros((len(sets), member.shape[1]), dtype=np.int64)
    fac = _factor(member)
    for start, x in _batches_of_sets(sets, task.features):
        v = evaluate_nodes(task, x)
        out[start : start + x.shape[0]] = _counts(v, fac)
    return out


def _cone_counts(task: Task, member: sparse.csr_array) -> np.ndarray:
    """(features, stages): nodes of each stage in each input's forward cone."""
    m, n = task.features, task.n_nodes
    g_of = np.repeat(np.arange(task.n_gates), task.arity) + m
    reads = sparse.csr_array(
        (np.ones(len(g_of), dtype=np.int8), (task.gate_inputs, g_of)), shape=(n, n)
    )
    frontier = sparse.csr_array(
        (np.ones(m, dtype=np.int8), (np.arange(m), np.arange(m))), shape=(m, n)
    )
    reach = frontier.copy()
    for _ in range(max(task.depth, 1)):
        frontier = sparse.csr_array(frontier @ reads)
        frontier.data[:] = 1
        if frontier.nnz == 0:
            break
        reach = reach + frontier
    reach.data[:] = 1
    return _counts(sparse.csr_array(reach, dtype=np.int64), _factor(member))


def _and_operand_pairs(task: Task) -> tuple[np.ndarray, np.ndarray]:
    """(a, b): every pair of distinct operands of every AND gate."""
    is_and = np.flatnonzero(task.ops == OP_CODE["and"])
    if len(is_and) == 0:
        return np.zeros(0, np.int64), np.zeros(0, np.int64)
    arity = task.arity[is_and]
    a_list, b_list = [], []
    for i in range(int(arity.max())):
        for j in range(i + 1, int(arity.max())):
            g = is_and[arity > j]
            a_list.append(task.gate_inputs[task.gate_indptr[g] + i])
            b_list.append(task.gate_inputs[task.gate_indptr[g] + j])
    return np.concatenate(a_list), np.concatenate(b_list)


def _cross(sup_a: list[np.ndarray], sup_b: list[np.ndarray], size: int, limit: int) -> np.ndarray:
    """Unions of one row of ``sup_a[k]`` and one of ``sup_b[k]`` with exactly ``size`` members."""
    out = []
    total = 0
    for sa, sb in zip(sup_a, sup_b, strict=True):
        if len(sa) == 0 or len(sb) == 0:
            continue
        total += len(sa) * len(sb)
        if total > limit:
            raise _TooMany
        ra = np.repeat(sa, len(sb), axis=0)
        rb = np.tile(sb, (len(sa), 1))
        out.append(np.concatenate([ra, rb], axis=1))
    if not out:
        return np.zeros((0, size), dtype=np.int64)
    rows = np.sort(np.concatenate(out), axis=1)
    # Collapse repeats within a row (-1 marks a removed slot), keep rows of `size` distinct ids.
    dup = np.zeros(rows.shape, dtype=bool)
    dup[:, 1:] = rows[:, 1:] == rows[:, :-1]
    rows = np.where(dup | (rows < 0), np.iinfo(np.int64).max, rows)
    rows = np.sort(rows, axis=1)
    distinct = (rows < np.iinfo(np.int64).max).sum(axis=1)
    rows = rows[distinct == size][:, :size]
    if len(rows) == 0:
        return np.zeros((0, size), dtype=np.int64)
    return np.unique(rows, axis=0)


class _TooMany(Exception):
    pass


def _supports_of(node_ids: np.ndarray, sets: np.ndarray, new: sparse.csc_array) -> list[np.ndarray]:
    """For each node, the input sets (rows of ``sets``) on which it is newly true."""
    return [sets[new.indices[new.indptr[v] : new.indptr[v + 1]]] for v in node_ids]


def active_bounds(
    task: Task,
    sparsity: int | None = None,
    lay: Layout | None = None,
    method: str = "auto",
    max_candidates: int = DEFAULT_MAX_CANDIDATES,
) -> ActiveBounds:
    """Upper bound on true nodes per stage for inputs with at most ``sparsity`` active features.

    Example:
        >>> t = Task.from_gates(4, 2, [("and", [0, 1]), ("or", [4, 2]), ("or", [5, 3])])
        >>> b = active_bounds(t)
        >>> b.method, b.bounds, b.cone
        ('exact', [2, 2, 3], [2, 4, 6])
    """
    s = task.sparsity if sparsity is None else int(sparsity)
    if s < 1:
        raise SuperposeError(f"sparsity must be >= 1, got {s}")
    if method not in ("auto", "exact", "cone"):
        raise SuperposeError(f"unknown bound method {method!r} (known: auto, exact, cone)")
    lay = lay if lay is not None else layout(task)
    mono = relaxed(task)
    # Columns: stages 1..D (gates and carries), then levels 1..D (own gates only).
    member = sparse.csr_array(
        sparse.hstack([stage_membership(task, lay), level_membership(task, lay)], format="csr")
    )
    m, depth = task.features, lay.depth
    s = min(s, m)
    cols = 2 * depth
    cones = _cone_counts(mono, member)
    cone = [_top_sum(cones[:, c], s) for c in range(cols)]
    ids = np.arange(m, dtype=np.int64)[:, None]
    single = _stage_counts(mono, ids, member)
    single_max = [int(single[:, c].max(initial=0)) for c in range(cols)]

    def result(method: str, bounds: list[int], **kw: Any) -> ActiveBounds:
        b = [int(min(x, y)) for x, y in zip(bounds, cone, strict=True)]
        return ActiveBounds(
            s, method, b[:depth], cone[:depth], single_max[:depth], b[depth:], cone[depth:], **kw
        )

    if method == "cone" or s > 3:
        note = "exact bounds are implemented for s <= 3; cone bound used" if s > 3 else ""
        return result("cone", cone, note=note)
    if s == 1:
        return result("exact", single_max)
    try:
        bounds, n_cand, extra = _exact_bounds(mono, s, member, single, max_candidates)
    except _TooMany:
        return result(
            "cone", cone, note=f"more than {max_candidates:,} candidate input sets; cone bound used"
        )
    return result("exact", bounds, candidates=n_cand, extra=extra)


def column_bounds(
    task: Task,
    member: sparse.csr_array,
    sparsity: int | None = None,
    method: str = "auto",
    max_candidates: int = DEFAULT_MAX_CANDIDATES,
) -> tuple[list[int], str]:
    """Upper bounds on the true nodes of each column of ``member`` (nodes x k, 0/1) at once,
    for inputs with at most ``sparsity`` active features: the methods of
    :func:`active_bounds` for any sets of nodes. Returns (bounds, method).

    Example:
        >>> t = Task.from_gates(4, 2, [("and", [0, 1]), ("or", [4, 2]), ("or", [5, 3])])
        >>> every_gate = sparse.csr_array(np.array([[0]] * 4 + [[1]] * 3))
        >>> column_bounds(t, every_gate)
        ([3], 'exact')
    """
    s = task.sparsity if sparsity is None else int(sparsity)
    if s < 1:
        raise SuperposeError(f"sparsity must be >= 1, got {s}")
    mono = relaxed(task)
    member = sparse.csr_array(member, dtype=np.int64)
    k = member.shape[1]
    s = min(s, task.features)
    cones = _cone_counts(mono, member)
    cone = [_top_sum(cones[:, c], s) for c in range(k)]
    if method == "cone" or s > 3:
        return cone, "cone"
    single = _stage_counts(mono, np.arange(task.features, dtype=np.int64)[:, None], member)
    if s == 1:
        return [min(c, int(single[:, i].max(initial=0))) for i, c in enumerate(cone)], "exact"
    try:
        bounds, _, _ = _exact_bounds(mono, s, member, single, max_candidates)
    except _TooMany:
        return cone, "cone"
    return [int(min(c, b)) for c, b in zip(cone, bounds, strict=True)], "exact"


def _candidate_pairs(
    mono: Task, limit: int
) -> tuple[sparse.csr_array, list[np.ndarray], np.ndarray]:
    """True nodes of every single input, each node's single supports, and the candidate pairs
    (the input pairs that meet at an AND gate: the only pairs that make a node newly true)."""
    m = mono.features
    ids = np.arange(m, dtype=np.int64)
    v1 = evaluate_nodes(
        mono, sparse.csr_array((np.ones(m, dtype=np.int32), (ids, ids)), shape=(m, m))
    )
    sup1 = _supports_of(np.arange(mono.n_nodes), ids[:, None], sparse.csc_array(v1))
    a_ops, b_ops = _and_operand_pairs(mono)
    pairs = _cross([sup1[a] for a in a_ops], [sup1[b] for b in b_ops], 2, limit)
    return v1, sup1, pairs


def _pair_truths(
    mono: Task, limit: int
) -> tuple[sparse.csr_array, list[np.ndarray], np.ndarray, sparse.csr_array | None]:
    """:func:`_candidate_pairs` plus ``new2`` (candidate pairs x nodes: newly true on the pair,
    i.e. true there but on neither single input), evaluated once per relaxed task and limit."""
    memo = _PAIR_TRUTHS.setdefault(mono, {})
    if limit in memo:
        return memo[limit]
    v1, sup1, pairs = _candidate_pairs(mono, limit)
    new2 = None
    if len(pairs):
        m, n = mono.features, mono.n_nodes
        new_rows, new_cols = [], []
        for start, x in _batches_of_sets(pairs, m):
            v = evaluate_nodes(mono, x)
            union = sparse.csr_array(x @ v1)
            union.data[:] = 1
            new = sparse.csr_array(v - union.astype(v.dtype))
            new.eliminate_zeros()
            coo = new.tocoo()
            keep = coo.data > 0
            new_rows.append(coo.coords[0][keep] + start)
            new_cols.append(coo.coords[1][keep])
        r, c = np.concatenate(new_rows), np.concatenate(new_cols)
        new2 = sparse.csr_array((np.ones(len(r), dtype=np.int64), (r, c)), shape=(len(pairs), n))
    memo[limit] = (v1, sup1, pairs, new2)
    return memo[limit]


def _pair_batches(mono: Task, v1: sparse.csr_array, pairs: np.ndarray, new2: sparse.csr_array):
    """Yield (start, true nodes of each pair of the batch) from the stored truths: the union
    of the two single inputs' true sets plus what is newly true on the pair (the relaxed
    circuit is monotone, so that is every true node)."""
    for start, x in _batches_of_sets(pairs, mono.features):
        union = sparse.csr_array(x @ v1, dtype=np.int64)
        union.data[:] = 1
        yield start, sparse.csr_array(union + new2[start : start + x.shape[0]])


def operands_meet(
    task: Task,
    gates: np.ndarray,
    sparsity: int | None = None,
    max_candidates: int = DEFAULT_MAX_CANDIDATES,
) -> np.ndarray:
    """For each 2-input gate, whether both operands can be true at once on an input with at
    most s active features (``False`` is a proof; ``True`` may be conservative).

    A ``xor`` or ``andnot`` gate whose operands never meet computes ``or`` / ``copy`` on every
    s-sparse input. Exact for s <= 2 on the relaxed (monotone) circuit: there, both operands
    are true on a set iff it holds a support of each, so either both have a single-input
    support, or both are true on one single input or one candidate pair. Conservative (all
    ``True``) for s >= 3 or when the candidate pairs exceed ``max_candidates``.

    Example:
        >>> t = Task.from_gates(4, 2, [("and", [0, 1]), ("and", [2, 3]), ("xor", [4, 5]), ("xor", [0, 4])])
        >>> operands_meet(t, np.array([2, 3])).tolist()
        [False, True]
    """
    s = task.sparsity if sparsity is None else int(sparsity)
    gates = np.asarray(gates, dtype=np.int64)
    meet = np.ones(len(gates), dtype=bool)
    if len(gates) == 0 or s >= 3:
        return meet
    if (task.arity[gates] != 2).any():
        raise SuperposeError("operands_meet: every gate must have exactly 2 operands")
    a, b = task.operand_table(gates, 2).T
    mono = relaxed(task)
    try:
        v1_rows, sup1, pairs, new2 = _pair_truths(mono, max_candidates)
    except _TooMany:
        return meet
    v1 = sparse.csc_array(v1_rows, dtype=np.int32)
    together = np.asarray((v1[:, a].multiply(v1[:, b])).sum(axis=0)).ravel() > 0
    if s >= 2:
        single = np.array([len(x) > 0 for x in sup1])
        together |= single[a] & single[b]
        if new2 is not None:
            for _, v in _pair_batches(mono, v1_rows, pairs, new2):
                v = sparse.csc_array(v, dtype=np.int32)
                together |= np.asarray((v[:, a].multiply(v[:, b])).sum(axis=0)).ravel() > 0
    return together


def _exact_bounds(
    mono: Task, s: int, member: sparse.csr_array, single: np.ndarray, limit: int
) -> tuple[list[int], int, dict[str, Any]]:
    """The ``exact`` method for s in {2, 3} (see the module docstring)."""
    m, depth = mono.features, member.shape[1]
    n = mono.n_nodes
    v1, sup1, pairs, new2 = _pair_truths(mono, limit)
    a_ops, b_ops = _and_operand_pairs(mono)
    n_cand = len(pairs)
    top = lambda k: [_top_sum(single[:, L], k) for L in range(depth)]  # noqa: E731
    m2 = top(2)
    surplus2 = [0] * depth
    new2_csc = None
    if new2 is not None:
        # Column maxima batch by batch (a pairs x columns table was the memory peak).
        counts_max = np.zeros(depth, dtype=np.int64)
        surplus_max = np.zeros(depth, dtype=np.int64)
        fac = _factor(member)
        for start, v in _pair_batches(mono, v1, pairs, new2):
            counts = _counts(v, fac)
            np.maximum(counts_max, counts.max(axis=0, initial=0), out=counts_max)
            part = _counts(new2[start : start + v.shape[0]], fac)
            np.maximum(surplus_max, part.max(axis=0, initial=0), out=surplus_max)
        surplus2 = [int(x) for x in surplus_max]
        if s == 3:
            surplus = _counts(new2, fac)
        m2 = [max(m2[L], int(counts_max[L])) for L in range(depth)]
        new2_csc = sparse.csc_array(new2)
    extra: dict[str, Any] = {"candidate_pairs": int(len(pairs)), "pair_surplus_max": surplus2}
    if s == 2:
        return m2, n_cand, extra
    # s = 3: a set without a triple interaction is the union of its pairs' true sets:
    # no candidate pair among them -> three singles; one -> that pair plus a single; two or
    # three sharing input i -> |T_i| + two (|T_j| + surplus_ij) + at most one more surplus.
    m3 = [max(t3, c2 + t1) for t3, c2, t1 in zip(top(3), m2, top(1), strict=True)]
    if len(pairs):
        for L in range(depth):
            ii = np.concatenate([pairs[:, 0], pairs[:, 1]])
            jj = np.concatenate([pairs[:, 1], pairs[:, 0]])
            w = single[jj, L] + np.concatenate([surplus[:, L], surplus[:, L]])
            order = np.lexsort((-w, ii))
            ii, w = ii[order], w[order]
            first = np.r_[True, ii[1:] != ii[:-1]]
            rank = np.arange(len(ii)) - np.maximum.accumulate(
                np.where(first, np.arange(len(ii)), 0)
            )
            top2 = np.bincount(ii[rank < 2], weights=w[rank < 2], minlength=m)
            best = int((single[:, L] + top2).max()) + surplus2[L]
            m3[L] = max(m3[L], best)
    if (mono.arity[mono.ops == OP_CODE["and"]] > 2).any():
        raise _TooMany  # k-ary ANDs can join three singles at once; not enumerated
    sup2 = (
        _supports_of(np.arange(n), pairs, new2_csc)
        if new2_csc is not None
        else [np.zeros((0, 2), np.int64)] * n
    )
    pad1 = [np.concatenate([s1, np.full((len(s1), 1), -1)], axis=1) for s1 in sup1]
    sup12 = [np.concatenate([p1, p2]) if len(p2) else p1 for p1, p2 in zip(pad1, sup2, strict=True)]
    triples = _cross([sup12[a] for a in a_ops], [sup12[b] for b in b_ops], 3, limit - n_cand)
    n_cand += len(triples)
    extra["candidate_triples"] = int(len(triples))
    if len(triples):
        counts3 = _stage_counts(mono, triples, member)
        m3 = [max(m3[L], int(counts3[:, L].max())) for L in range(depth)]
    return m3, n_cand, extra


def width_needed(active: int, code_length: int, density: float = 0.1) -> int:
    """Width keeping ``active`` codes of ``code_length`` neurons below ``density`` of a layer on."""
    return math.ceil(active * code_length / -math.log1p(-density))
