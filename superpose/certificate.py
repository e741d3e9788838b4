"""An exact certificate at s <= 2 for one-level networks: which outputs are wrong on *some* input.

A network of one step layer between a code and a code (what ``superposed`` builds for any op
mix and arity, private signed units included) is checked on every input with at most two
active features without running all C(m, <= 2) of them (5.0e9 at m = 10^5). The idea: list a
set X of inputs that provably contains every input on which some output is wrong, then run X
through the network and compare with the truth. X is small because a wrong pair must be
*explained* by the units that fire on it:

Let unit o fire on x iff ``w_o . z(x) + b_o >= 0`` (z(x) the OR of the active codes), and let
output g read units U_g and decode as on iff at least q_g of them fire. For a pair {a, b}:

* a unit that fires on {a, b} fires on {a} alone, on {b} alone, or *jointly*. A joint unit
  needs the positive parts of both codes: c+_o(a) + c+_o(b) >= -b_o with neither firing alone,
  so each of a, b brings at least -b_o - M_o (M_o: the most any non-firing feature brings)
  and one of them at least half of -b_o.
* so if {a, b} turns g on with neither feature doing it alone (n_g(f) = units of g that f
  fires alone, both below q_g), both features reach (fire alone or can join) at least
  q_g - N_g of g's units (N_g: the largest n_g below q_g), and one of them, the *leader*,
  fires or is heavy in at least half of q_g. :func:`_candidate_pairs` keeps each unit's
  "reach" and "lead" sets as bit rows over the features and finds, per output, the leaders
  and the reaching features with a bitwise "at least t of L" (:func:`_at_least`); X holds
  every (leader, reaching feature) pair.
* an output that a single feature turns on stays on when a second feature joins, unless a
  unit has negative weights the second feature reaches (a unit's only way to fire less on
  more input). X holds (fires-alone, reaches-a-negative-weight) pairs of every signed unit.
* pairs inside an output's own operands (a xor turning off, an and turning on) are listed.

Every other pair decodes every output exactly as one of its singles does, and truth agrees:
a gate reads only its operands, so adding a non-operand feature changes neither side. So the
outputs wrong on X are exactly the outputs wrong on some <= 2-sparse input, and the wrong
inputs of X are all of them. The verdict is exact: no sampling, no probability; the work is
the size of X (reported), not C(m, 2).

Memory: contributions are computed for a block of units at a time (features x block, dense),
so peak memory stays near ``BLOCK_BYTES`` plus X.

Example:
    >>> import numpy as np
    >>> from superpose import Task
    >>> from superpose.constructions import build
    >>> net = build(Task.from_gates(6, 2, [("and", [0, 1]), ("xor", [2, 3]), ("or", [4, 5])]), "naive")
    >>> unsupported(net, 2)
    'layers relu, linear: the certificate covers one step layer between two codes'
"""

from __future__ import annotations

import itertools
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import numpy as np
from scipy import sparse

from superpose.codes import BloomCode, ExplicitCode
from superpose.evaluate import evaluate
from superpose.network import Network
from superpose.task import n_sparse_inputs

BLOCK_BYTES = 2**24
"""Dense (features x units) contribution blocks are kept below this many bytes."""
MAX_CANDIDATES = 50_000_000
"""Above this many candidate inputs the certificate gives up (``complete=False``)."""
BATCH = 1 << 12
MAX_EXAMPLES = 100
MAX_EXTRA_PAIRS = 20_000_000
"""Most pairs run to count the wrong inputs exactly when single features are wrong."""

Progress = Callable[[int], None]


@dataclass(frozen=True)
class Certificate:
    """The verdict over every input with at most ``sparsity`` active features."""

    sparsity: int
    method: str
    complete: bool
    inputs_covered: int
    outputs_checked: int
    inputs_with_error: int
    wrong_outputs: np.ndarray
    false_positive_outputs: np.ndarray
    false_negative_outputs: np.ndarray
    examples: tuple[tuple[int, tuple[int, ...]], ...] = ()
    stats: dict[str, Any] = field(default_factory=dict)

    @property
    def passed(self) -> bool:
        return self.complete and len(self.wrong_outputs) == 0

    def to_dict(self) -> dict[str, Any]:
        return {
            "sparsity": self.sparsity,
            "method": self.method,
            "complete": self.complete,
            "inputs_covered": self.inputs_covered,
            "outputs_checked": self.outputs_checked,
            "inputs_with_error": self.inputs_with_error,
            "wrong_outputs": [int(g) for g in self.wrong_outputs],
            "false_positive_outputs": [int(g) for g in self.false_positive_outputs],
            "false_negative_outputs": [int(g) for g in self.false_negative_outputs],
            "examples": [[int(g), [int(v) for v in x]] for g, x in self.examples],
            "stats": dict(self.stats),
        }


def unsupported(net: Network, sparsity: int) -> str | None:
    """Why no exact certificate applies to ``net`` at ``sparsity`` (None when one does)."""
    if sparsity > 2:
        return f"s = {sparsity}: the exact certificate covers s <= 2"
    acts = [layer.activation for layer in net.layers]
    if acts != ["step"]:
        return f"layers {', '.join(acts)}: the certificate covers one step layer between two codes"
    if net.task.depth > 1:
        return f"a task of depth {net.task.depth}: the certificate covers one level"
    for which, code in (("input", net.input_code), ("output", net.output_code)):
        if not isinstance(code, BloomCode | ExplicitCode):
            return f"{which} code {code.kind!r}: the certificate reads Bloom or explicit codes"
    if isinstance(net.output_code, BloomCode) and net.output_code.width != net.layers[0].n_out:
        return "the output code does not read the step layer"
    return None


def _input_membership(net: Network) -> sparse.csr_array:
    code = net.input_code
    if isinstance(code, BloomCode):
        return sparse.csr_array(code.membership, dtype=np.float32)
    return sparse.eye_array(net.task.features, format="csr", dtype=np.float32)


def _output_membership(net: Network) -> tuple[sparse.csr_array, np.ndarray]:
    code = net.output_code
    if isinstance(code, BloomCode):
        return sparse.csr_array(code.membership, dtype=np.int32), code.required().astype(np.int64)
    n = net.layers[0].n_out
    return sparse.eye_array(n, format="csr", dtype=np.int32), np.ones(n, dtype=np.int64)


def _output_operands(net: Network) -> list[np.ndarray]:
    """The input features each output reads (an input listed as an output reads itself)."""
    task = net.task
    out = []
    for node in task.outputs.tolist():
        if node < task.features:
            out.append(np.array([node], dtype=np.int64))
        else:
            out.append(task.operands(node - task.features).astype(np.int64))
    return out


def _pair_keys(a: np.ndarray, b: np.ndarray, m: int) -> np.ndarray:
    lo, hi = np.minimum(a, b), np.maximum(a, b)
    keep = lo != hi
    return lo[keep].astype(np.int64) * m + hi[keep]


class _OutOfBudget(Exception):
    pass


def certify(
    net: Network,
    sparsity: int | None = None,
    *,
    budget_seconds: float | None = None,
    progress: Progress | None = None,
) -> Certificate:
    """The exact verdict of ``net`` on every input with at most ``sparsity`` (<= 2) features.

    Raises SuperposeError when :func:`unsupported` gives a reason. ``complete`` is False (and
    nothing is claimed) when ``budget_seconds`` runs out or the candidate set exceeds
    ``MAX_CANDIDATES``.
    """
    from superpose.errors import SuperposeError

    s = net.task.sparsity if sparsity is None else int(sparsity)
    reason = unsupported(net, s)
    if reason is not None:
        raise SuperposeError(f"no exact certificate: {reason}")
    start = time.perf_counter()
    task = net.task
    m = task.features
    n_outputs = len(task.outputs)

    def tick() -> None:
        if budget_seconds is not None and time.perf_counter() - start > budget_seconds:
            raise _OutOfBudget

    stats: dict[str, Any] = {}
    try:
        keys = _candidate_pairs(net, s, tick, stats, progress) if s == 2 else np.empty(0, np.int64)
        result = _run_candidates(net, s, keys, tick, progress)
    except _OutOfBudget as exc:
        stats["seconds"] = round(time.perf_counter() - start, 3)
        stats["stopped"] = str(exc) or "time budget"
        empty = np.empty(0, np.int64)
        return Certificate(
            s, "s2-candidates", False, 0, n_outputs, 0, empty, empty, empty, (), stats
        )
    wrong_inputs, exact_count, wrong, fp, fn, examples = result
    stats["seconds"] = round(time.perf_counter() - start, 3)
    stats["candidate_pairs"] = int(len(keys))
    stats["inputs_with_error_exact"] = exact_count
    return Certificate(
        s,
        "s2-candidates",
        True,
        n_sparse_inputs(m, s),
        n_outputs,
        wrong_inputs,
        wrong,
        fp,
        fn,
        examples,
        stats,
    )


def _at_least(rows: np.ndarray, t: int) -> np.ndarray:
    """Bitwise "at least ``t`` of the L rows": rows (G, L, W) uint64 -> (G, W)."""
    g, n_rows, w = rows.shape
    if t <= 1:
        return np.bitwise_or.reduce(rows, axis=1)
    if t >= n_rows:
        return np.bitwise_and.reduce(rows, axis=1)
    ones = np.full((g, w), np.iinfo(np.uint64).max, dtype=np.uint64)
    level = [ones] + [np.zeros((g, w), dtype=np.uint64) for _ in range(t)]
    for r in range(n_rows):
        x = rows[:, r, :]
        for k in range(min(t, r + 1), 0, -1):
            level[k] |= level[k - 1] & x
    return level[t]


def _set_bits(words: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """(row, bit index) of every set bit of a (G, W) uint64 array, bit b of word w = 64 w + b."""
    r, wi = np.nonzero(words)
    if len(r) == 0:
        return np.empty(0, np.int64), np.empty(0, np.int64)
    bits = np.unpackbits(words[r, wi].view(np.uint8).reshape(-1, 8), axis=1, bitorder="little")
    rr, b = np.nonzero(bits)
    return r[rr].astype(np.int64), wi[rr].astype(np.int64) * 64 + b


def _bit_rows(columns: np.ndarray, pad: int) -> np.ndarray:
    """(features, units) booleans -> (units, words) uint64 bit rows (bit f of row o)."""
    rows = np.pad(columns, ((0, pad), (0, 0)))
    packed = np.packbits(np.ascontiguousarray(rows.T), axis=1, bitorder="little")
    return np.ascontiguousarray(packed).view(np.uint64)


def _products_within_groups(
    g1: np.ndarray, f1: np.ndarray, g2: np.ndarray, f2: np.ndarray
) -> tuple[np.ndarray, np.ndarray]:
    """Every (f1_i, f2_j) with g1_i == g2_j (both lists sorted by group)."""
    if len(g1) == 0 or len(g2) == 0:
        return np.empty(0, np.int64), np.empty(0, np.int64)
    start2 = np.searchsorted(g2, g1, side="left")
    stop2 = np.searchsorted(g2, g1, side="right")
    counts = stop2 - start2
    total = int(counts.sum())
    left = np.repeat(np.arange(len(g1)), counts)
    right = np.repeat(start2, counts) + (
        np.arange(total) - np.repeat(np.cumsum(counts) - counts, counts)
    )
    return f1[left], f2[right]


def _candidate_pairs(
    net: Network, s: int, tick: Callable[[], None], stats: dict[str, Any], progress: Progress | None
) -> np.ndarray:
    """Keys a * m + b (a < b) of every pair that may be wrong somewhere (see the module doc).

    Per unit o (threshold T_o = -b_o): S_o, the features firing it alone (exact), and P_o, the
    features that can take part in firing it jointly: positive part c+_o(f) > 0 and at least
    T_o - M_o, where M_o is the most any feature outside S_o brings. Both are bit rows over the
    features. For output g (units U_g, need q_g), n_g(f) = |S(f) & U_g|; a pair that turns g
    on with neither feature doing it alone has both features in at least q_g - N_g of the rows
    S_o | P_o (N_g: the largest n_g below q_g), found by bitwise "at least t of L" per output.
    """
    task = net.task
    m = task.features
    layer = net.layers[0]
    w = sparse.csr_array(layer.weight, dtype=np.float32)
    bias = np.asarray(layer.bias, dtype=np.float64)
    wpos = w.copy()
    wpos.data = np.maximum(wpos.data, 0)
    signed = np.asarray((w < 0).sum(axis=1)).ravel() > 0
    e = _input_membership(net)
    n_units = w.shape[0]
    words = (m + 63) // 64
    reach = np.zeros((n_units, words), dtype=np.uint64)  # S_o | P_o as bit rows
    lead = np.zeros((n_units, words), dtype=np.uint64)  # S_o | heavy partials (>= T_o / 2)
    block = max(1, min(n_units, BLOCK_BYTES // max(8 * m, 1)))
    parts: list[np.ndarray] = []
    alone_units: list[np.ndarray] = []
    alone_feats: list[np.ndarray] = []
    signed_pairs = 0
    pad = words * 64 - m
    for lo in range(0, n_units, block):
        tick()
        hi = min(n_units, lo + block)
        cpos = (e @ sparse.csr_array(wpos[lo:hi].T)).toarray()  # (m, units) positive parts
        full = (e @ sparse.csr_array(w[lo:hi].T)).toarray() if signed[lo:hi].any() else cpos
        need = -bias[lo:hi]
        fires = full >= need  # exact for one code: a code is a set
        outside = np.where(fires, 0.0, cpos)
        most = outside.max(axis=0) if m else np.zeros(hi - lo)
        joins = (cpos > 0) & (cpos >= need - most) & ~fires
        heavy = (cpos > 0) & (2 * cpos >= need) & ~fires
        reach[lo:hi] = _bit_rows(fires | joins, pad)
        lead[lo:hi] = _bit_rows(fires | heavy, pad)
        u, f = np.nonzero(fires.T)
        alone_units.append(u + lo)
        alone_feats.append(f)
        for j in np.flatnonzero(signed[lo:hi]):
            ones = np.flatnonzero(fires[:, j])
            neg = np.flatnonzero(full[:, j] < cpos[:, j])  # reaches a negative weight
            if len(ones) and len(neg):
                parts.append(_pair_keys(np.repeat(ones, len(neg)), np.tile(neg, len(ones)), m))
                signed_pairs += len(ones) * len(neg)
        if progress is not None:
            progress(hi - lo)
    stats["signed_pairs"] = int(signed_pairs)
    units = np.concatenate(alone_units).astype(np.int64)
    feats = np.concatenate(alone_feats).astype(np.int64)
    alone = sparse.csr_array(
        (np.ones(len(units), dtype=np.int32), (units, feats)), shape=(n_units, m)
    )
    u, q = _output_membership(net)
    counts = sparse.csr_array(u @ alone)  # (outputs, m): n_g(f)
    # N_g: the largest n_g(f) below q_g (0 if none).
    below = counts.data < np.repeat(q, np.diff(counts.indptr))
    data = np.where(below, counts.data, 0)
    n_max = np.zeros(len(q), dtype=np.int64)
    rows_nz = np.flatnonzero(np.diff(counts.indptr))
    if len(rows_nz):
        n_max[rows_nz] = np.maximum.reduceat(data, counts.indptr[rows_nz])
    t = np.maximum(q - n_max, 1)
    alone_on = counts.data >= np.repeat(q, np.diff(counts.indptr))
    rows_of = np.repeat(np.arange(len(q), dtype=np.int64), np.diff(counts.indptr))
    on_alone_keys = np.sort(rows_of[alone_on] * m + counts.indices[alone_on].astype(np.int64))
    lengths = np.diff(u.indptr)
    chunk = max(1, 2**26 // max(8 * words * max(int(lengths.max(initial=1)), 1), 1))
    joint = 0
    for length in np.unique(lengths):
        outs_l = np.flatnonzero(lengths == length)
        if length == 0:
            continue
        members = u.indices[(u.indptr[outs_l][:, None] + np.arange(length)).ravel()].reshape(
            -1, length
        )
        for thr in np.unique(t[outs_l]):
            sel = np.flatnonzero(t[outs_l] == thr)
            for lo in range(0, len(sel), chunk):
                tick()
                part = sel[lo : lo + chunk]
                z = _at_least(reach[members[part]], int(thr))
                z_g, z_f = _set_bits(z)
                keep = z_f < m
                z_g, z_f = z_g[keep], z_f[keep]
                half = (q[outs_l[part]] + 1) // 2
                leaders = np.zeros_like(z)
                for h in np.unique(half):
                    rows_h = np.flatnonzero(half == h)
                    leaders[rows_h] = _at_least(lead[members[part[rows_h]]], int(h)) & z[rows_h]
                l_g, l_f = _set_bits(leaders)
                keep = l_f < m
                l_g, l_f = l_g[keep], l_f[keep]
                # a feature that turns the output on alone is no leader (its pairs follow it)
                drop = np.isin(outs_l[part][l_g] * m + l_f, on_alone_keys)
                l_g, l_f = l_g[~drop], l_f[~drop]
                n_z = np.bincount(z_g, minlength=len(part))
                n_l = np.bincount(l_g, minlength=len(part))
                if joint + signed_pairs + int((n_z * n_l).sum()) > MAX_CANDIDATES:
                    raise _OutOfBudget(f"more than {MAX_CANDIDATES:,} candidate pairs")
                a, b = _products_within_groups(l_g, l_f, z_g, z_f)
                if len(a):
                    parts.append(_pair_keys(a, b, m))
                    joint += len(a)
    stats["reach_pairs"] = int(joint)
    # Pairs inside each output's operands.
    within = 0
    for ops in _output_operands(net):
        if len(ops) > 1:
            a, b = zip(*itertools.combinations(ops.tolist(), 2), strict=True)
            parts.append(_pair_keys(np.array(a), np.array(b), m))
            within += len(a)
    stats["operand_pairs"] = int(within)
    return np.unique(np.concatenate(parts)) if parts else np.empty(0, np.int64)


def _run_candidates(
    net: Network, s: int, keys: np.ndarray, tick: Callable[[], None], progress: Progress | None
) -> tuple[int, bool, np.ndarray, np.ndarray, np.ndarray, tuple[tuple[int, tuple[int, ...]], ...]]:
    """Run the empty input, every single and every candidate pair; compare with the truth.

    A feature wrong on its own makes most pairs holding it wrong too (every pair outside the
    candidates decodes each output as one of its singles does), so when there are few such
    features all their pairs are run as well and the count of wrong inputs is exact; with more
    than ``MAX_EXTRA_PAIRS`` of them the count is a lower bound (the wrong outputs stay exact).
    """
    m = net.task.features
    n_out = len(net.task.outputs)
    wrong = np.zeros(n_out, dtype=bool)
    fp = np.zeros(n_out, dtype=bool)
    fn = np.zeros(n_out, dtype=bool)
    examples: list[tuple[int, tuple[int, ...]]] = []
    wrong_inputs = 0
    bad_singles: list[int] = []

    def run(rows: np.ndarray) -> None:
        """Rows of an (n, k) array of active features (-1 = none)."""
        nonlocal wrong_inputs
        tick()
        on = rows >= 0
        indptr = np.concatenate([[0], np.cumsum(on.sum(axis=1))])
        x = sparse.csr_array(
            (np.ones(int(on.sum())), rows[on].astype(np.int64), indptr), shape=(len(rows), m)
        )
        pred = sparse.csr_array(net.predict(x), dtype=bool)
        truth = sparse.csr_array(evaluate(net.task, x).values, dtype=bool)
        diff = (pred != truth).tocoo()
        if diff.nnz:
            r, c = diff.coords
            wrong[c] = True
            is_on = np.asarray(pred[r, c]).ravel().astype(bool)
            fp[c[is_on]] = True
            fn[c[~is_on]] = True
            bad = np.unique(r)
            wrong_inputs += len(bad)
            if rows.shape[1] == 1:
                bad_singles.extend(int(v) for v in rows[bad, 0] if v >= 0)
            for ri, ci in zip(r[:MAX_EXAMPLES].tolist(), c[:MAX_EXAMPLES].tolist(), strict=True):
                if len(examples) < MAX_EXAMPLES:
                    examples.append((int(ci), tuple(int(v) for v in rows[ri] if v >= 0)))
        if progress is not None:
            progress(len(rows))

    run(np.full((1, 1), -1, dtype=np.int64))
    if s >= 1:
        for lo in range(0, m, BATCH):
            run(np.arange(lo, min(m, lo + BATCH), dtype=np.int64)[:, None])
    exact_count = True
    if s >= 2 and bad_singles:
        if len(bad_singles) * m <= MAX_EXTRA_PAIRS:
            a = np.repeat(np.array(bad_singles, dtype=np.int64), m)
            b = np.tile(np.arange(m, dtype=np.int64), len(bad_singles))
            keys = np.union1d(keys, _pair_keys(a, b, m))
        else:
            exact_count = False
    for lo in range(0, len(keys), BATCH):
        a, b = np.divmod(keys[lo : lo + BATCH], m)
        run(np.stack([a, b], axis=1))
    return (
        wrong_inputs,
        exact_count,
        np.flatnonzero(wrong),
        np.flatnonzero(fp),
        np.flatnonzero(fn),
        tuple(examples),
    )


__all__ = ["Certificate", "certify", "unsupported"]
