"""Exact certificates: which outputs are wrong on *some* input with at most s active features.

Three methods, all exact (no sampling):

* ``s2-candidates`` (below): one step layer between two codes (what ``superposed`` builds for
  any op mix and arity, private signed units included), s <= 2;
* ``s3-candidates`` (:func:`_candidate_triples`): the same networks without signed weights,
  s = 3: the pairs of ``s2-candidates`` plus the triples three nested pigeonholes allow;
* ``support`` (:func:`_support_certificate`): any network whose every output reads only its
  own gate's inputs (the explicit network, any depth): each output on its leaf subsets.

A one-level step network is checked on every input with at most two
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
  "reach" and "lead" sets as bit rows over the features (:mod:`superpose._reach`) and finds,
  per output, the leaders and the reaching features with a bitwise "at least t of L", or,
  when t is near L, from pairwise ANDs of rows (:func:`_meeting_by_pairs`); X holds every
  (leader, reaching feature) pair.
* an output that a single feature turns on stays on when a second feature joins, unless a
  unit has negative weights the second feature reaches (a unit's only way to fire less on
  more input) enough to undo the margin by which the first fires it. X holds the
  (fires-alone, can-kill) pairs of every signed unit (the kill rows of :mod:`superpose._reach`:
  a private xor / andnot detector sits L - 1 above its threshold, so only features covering
  L of its negative bits can kill it; counting every feature that touches one negative bit
  made X 400 times larger on the `all` stress mix).
* pairs inside an output's own operands (a xor turning off, an and turning on) are listed.

Every other pair decodes every output exactly as one of its singles does, and truth agrees:
a gate reads only its operands, so adding a non-operand feature changes neither side. So the
outputs wrong on X are exactly the outputs wrong on some <= 2-sparse input, and the wrong
inputs of X are all of them. The verdict is exact: no sampling, no probability; the work is
the size of X (reported), not C(m, 2).

Memory: the reach and lead rows (units x features bits: 2.6 GB at m' = 10^6) plus X; the
contributions behind them are computed a block at a time (:mod:`superpose._reach`).

Example:
    >>> import numpy as np
    >>> from superpose import Task
    >>> from superpose.constructions import build
    >>> task = Task.from_gates(6, 2, [("and", [0, 1]), ("xor", [2, 3]), ("or", [4, 5])])
    >>> certify(build(task, "superposed", rng=np.random.default_rng(0))).method
    's2-candidates'
    >>> certify(build(task, "naive")).method  # every output reads only its own operands
    'support'
"""

from __future__ import annotations

import itertools
import math
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from typing import Any

import numpy as np
from scipy import sparse

from superpose._numeric import in_sorted
from superpose._numeric import ranges as _ranges
from superpose._reach import (
    at_least,
    bit_at,
    input_membership,
    set_bits,
    unit_sets,
)
from superpose.codes import BloomCode, ExplicitCode
from superpose.evaluation import evaluate, values_at
from superpose.network import Network
from superpose.task import n_sparse_inputs

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
    if any(layer.resting for layer in net.layers):
        return "units that fire on an all-zero input (biases): the certificates need act(b) = 0"
    reason = _candidates_unsupported(net, sparsity)
    if reason is None or _private_supports(net) is not None:
        return None
    return reason


def _candidates_unsupported(net: Network, sparsity: int) -> str | None:
    """Why the candidate-input certificate (s <= 3, one step layer) does not apply."""
    if sparsity > 3:
        return f"s = {sparsity}: the exact certificate covers s <= 3"
    acts = [layer.activation for layer in net.layers]
    if acts != ["step"]:
        return f"layers {', '.join(acts)}: the certificate covers one step layer between two codes"
    if sparsity == 3:
        layer = net.layers[0]
        data = np.asarray(sparse.csr_array(layer.weight).data)
        if (data < 0).any():
            return "signed weights (xor / andnot units): the s = 3 certificate covers monotone networks"
        bias = np.asarray(layer.bias)
        if not (np.all(data == np.round(data)) and np.all(bias == np.round(bias))):
            return "non-integer weights: the s = 3 certificate counts integer contributions"
    if net.task.depth > 1:
        return f"a task of depth {net.task.depth}: the certificate covers one level"
    for which, code in (("input", net.input_code), ("output", net.output_code)):
        if not isinstance(code, BloomCode | ExplicitCode):
            return f"{which} code {code.kind!r}: the certificate reads Bloom or explicit codes"
    if isinstance(net.output_code, BloomCode) and net.output_code.width != net.layers[0].n_out:
        return "the output code does not read the step layer"
    return None


SUM_WORK = 20_000_000
NEVER = 1 << 40
"""Most (query, feature) entries one block of the s = 3 sum search holds."""
MAX_SUPPORT_ENTRIES = 100_000_000
"""Most (output, unit) entries the structural-support products may hold before merging."""
MAX_SUPPORT_INPUTS = 20_000_000
"""Most inputs the support certificate runs (sum over outputs of C(leaves, <= s))."""


def _private_supports(net: Network) -> list[np.ndarray] | None:
    """Each output's input leaves, when no weight path reaches an output from elsewhere.

    The structural support of output g (input features with a nonzero weight path to the
    units g is decoded from) is computed layer by layer on 0/1 patterns; None unless every
    support lies inside g's leaves (its operands, through every level).
    """
    from superpose.sparse_inputs import _Leaves

    code = net.output_code
    task = net.task
    outs = np.arange(task.n_outputs)
    if isinstance(code, BloomCode):
        v = sparse.csr_array(code.membership, dtype=np.float32)
    elif isinstance(code, ExplicitCode):
        v = sparse.eye_array(code.width, format="csr", dtype=np.float32)
    else:
        return None

    def spread(v: sparse.csr_array, w: sparse.csr_array) -> sparse.csr_array | None:
        # A private output reaches only its own cone, so a product that would hold more than
        # MAX_SUPPORT_ENTRIES entries (counted before merging) is no private network's; a
        # superposed one at m' = 10^5 would need 3·10^9 (25 GB).
        if float(np.diff(w.indptr)[v.indices].sum()) > MAX_SUPPORT_ENTRIES:
            return None
        out = sparse.csr_array(v @ w)
        out.data[:] = 1.0
        return out

    for layer in reversed(net.layers):
        w = sparse.csr_array(layer.weight, dtype=np.float32)
        w.data = (w.data != 0).astype(np.float32)
        v = spread(v, w)
        if v is None:
            return None
    if isinstance(net.input_code, BloomCode):
        v = spread(v, sparse.csr_array(net.input_code.membership.T, dtype=np.float32))
        if v is None:
            return None
    elif not isinstance(net.input_code, ExplicitCode):
        return None
    v.eliminate_zeros()
    leaves = _Leaves(task)
    out = []
    for g in outs:
        support = v.indices[v.indptr[g] : v.indptr[g + 1]]
        own = leaves(int(task.outputs[g]))
        if not np.isin(support, own).all():
            return None
        out.append(own)
    return out


def _support_certificate(
    net: Network,
    s: int,
    tick: Callable[[], None],
    progress: Progress | None,
    start: float,
) -> Certificate:
    """Exact when every output reads only its own leaves: output g on x equals g on x & leaves(g).

    So g is right on every <= s-sparse input iff it is right on every subset of its leaves of
    size <= s; those subsets (for all outputs, deduplicated) are the only inputs run. The
    wrong outputs are exact; the count of wrong inputs is the count among those run (a lower
    bound, exact when it is 0).
    """
    task = net.task
    m = task.features
    supports = _private_supports(net)
    assert supports is not None
    stats: dict[str, Any] = {}
    total = sum(sum(math.comb(len(ls), j) for j in range(min(s, len(ls)) + 1)) for ls in supports)
    empty = np.empty(0, np.int64)
    if total > MAX_SUPPORT_INPUTS:
        stats["stopped"] = f"{total:,} leaf subsets exceed {MAX_SUPPORT_INPUTS:,}"
        return Certificate(
            s, "support", False, 0, task.n_outputs, 0, empty, empty, empty, (), stats
        )
    width = max(1, s)
    rows = [np.full((1, width), -1, dtype=np.int64)]
    sizes = np.array([len(ls) for ls in supports], dtype=np.int64)
    for r in np.unique(sizes[sizes > 0]).tolist():  # outputs with r leaves, all at once
        table = np.sort(np.stack([supports[g] for g in np.flatnonzero(sizes == r).tolist()]))
        for j in range(1, min(s, r) + 1):
            picks = np.array(list(itertools.combinations(range(r), j)), dtype=np.int64)
            combos = table[:, picks].reshape(-1, j)
            rows.append(np.pad(combos, ((0, 0), (0, width - j)), constant_values=-1))
    allrows = np.unique(np.concatenate(rows), axis=0)
    try:
        wrong_inputs, _, wrong, fp, fn, examples = _run_rows(net, allrows, tick, progress)
    except _OutOfBudget as exc:
        stats["stopped"] = str(exc) or "time budget"
        return Certificate(
            s, "support", False, 0, task.n_outputs, 0, empty, empty, empty, (), stats
        )
    stats["inputs_run"] = int(len(allrows))
    stats["inputs_with_error_exact"] = wrong_inputs == 0
    stats["seconds"] = round(time.perf_counter() - start, 3)
    return Certificate(
        s,
        "support",
        True,
        n_sparse_inputs(m, s),
        task.n_outputs,
        wrong_inputs,
        wrong,
        fp,
        fn,
        examples,
        stats,
    )


class _Tally:
    """Wrong, false-positive and false-negative outputs and the first examples, as found."""

    def __init__(self, n_outputs: int) -> None:
        self.wrong = np.zeros(n_outputs, dtype=bool)
        self.fp = np.zeros(n_outputs, dtype=bool)
        self.fn = np.zeros(n_outputs, dtype=bool)
        self.examples: list[tuple[int, tuple[int, ...]]] = []

    def note(self, rows: np.ndarray, r: np.ndarray, c: np.ndarray, is_on: np.ndarray) -> None:
        """Output c[i] is wrong on input rows[r[i]] (it read on when ``is_on[i]``)."""
        self.wrong[c] = True
        self.fp[c[is_on]] = True
        self.fn[c[~is_on]] = True
        for ri, ci in zip(r[:MAX_EXAMPLES].tolist(), c[:MAX_EXAMPLES].tolist(), strict=True):
            if len(self.examples) < MAX_EXAMPLES:
                self.examples.append((int(ci), tuple(int(v) for v in rows[ri] if v >= 0)))

    def result(
        self, wrong_inputs: int, exact_count: bool
    ) -> tuple[
        int, bool, np.ndarray, np.ndarray, np.ndarray, tuple[tuple[int, tuple[int, ...]], ...]
    ]:
        return (
            wrong_inputs,
            exact_count,
            np.flatnonzero(self.wrong),
            np.flatnonzero(self.fp),
            np.flatnonzero(self.fn),
            tuple(self.examples),
        )


def _run_full(net: Network, rows: np.ndarray, tally: _Tally) -> np.ndarray:
    """Rows (active features, -1 = none) through the whole network; the wrong rows."""
    x = _batch(rows, net.task.features)
    pred = sparse.csr_array(net.predict(x), dtype=bool)
    diff = (pred != sparse.csr_array(evaluate(net.task, x).values, dtype=bool)).tocoo()
    if not diff.nnz:
        return np.empty(0, np.int64)
    r, c = diff.coords
    tally.note(rows, r, c, np.asarray(pred[r, c]).ravel().astype(bool))
    return np.unique(r)


def _run_rows(
    net: Network, rows: np.ndarray, tick: Callable[[], None], progress: Progress | None
) -> tuple[int, bool, np.ndarray, np.ndarray, np.ndarray, tuple[tuple[int, tuple[int, ...]], ...]]:
    """Every row (active features, -1 = none) through the whole network, against the truth."""
    tally = _Tally(net.task.n_outputs)
    bad_rows = 0
    for lo in range(0, len(rows), BATCH):
        tick()
        bad_rows += len(_run_full(net, rows[lo : lo + BATCH], tally))
        if progress is not None:
            progress(len(rows[lo : lo + BATCH]))
    return tally.result(bad_rows, bad_rows == 0)


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


class _OutOfBudget(Exception):
    pass


def certify(
    net: Network,
    sparsity: int | None = None,
    *,
    budget_seconds: float | None = None,
    progress: Progress | None = None,
) -> Certificate:
    """The exact verdict of ``net`` on every input with at most ``sparsity`` features.

    One-level step networks at s <= 3 get the candidate-input certificate (module doc);
    networks whose every output reads only its own gate's inputs (the explicit network, any
    depth) get the support certificate (:func:`_support_certificate`). Raises SuperposeError when :func:`unsupported` gives a reason. ``complete`` is False (and
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
    if _candidates_unsupported(net, s) is not None:
        return _support_certificate(net, s, tick, progress, start)
    method = "s3-candidates" if s == 3 else "s2-candidates"
    try:
        empty = (np.empty(0, np.int64), np.empty(0, np.int64))
        singles_on = None
        candidates = empty
        if s >= 2:
            *candidates, singles_on = _candidate_pairs(net, s, tick, stats, progress)
        triples = _candidate_triples(net, tick, stats) if s == 3 else empty
        result = _run_candidates(net, s, tuple(candidates), triples, tick, progress, singles_on)
    except _OutOfBudget as exc:
        stats["seconds"] = round(time.perf_counter() - start, 3)
        stats["stopped"] = str(exc) or "time budget"
        empty = np.empty(0, np.int64)
        return Certificate(s, method, False, 0, n_outputs, 0, empty, empty, empty, (), stats)
    wrong_inputs, exact_count, wrong, fp, fn, examples = result
    stats["seconds"] = round(time.perf_counter() - start, 3)
    stats["candidate_pairs"] = int(len(np.unique(candidates[0])))
    stats["candidate_pair_outputs"] = int(len(candidates[0]))
    if s == 3:
        stats["candidate_triples"] = int(len(np.unique(triples[0])))
    stats["inputs_with_error_exact"] = exact_count
    return Certificate(
        s,
        method,
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


def _products_within_groups(
    g1: np.ndarray, f1: np.ndarray, g2: np.ndarray, f2: np.ndarray
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Every (group, f1_i, f2_j) with g1_i == g2_j (both lists sorted by group)."""
    if len(g1) == 0 or len(g2) == 0:
        return np.empty(0, np.int64), np.empty(0, np.int64), np.empty(0, np.int64)
    start2 = np.searchsorted(g2, g1, side="left")
    stop2 = np.searchsorted(g2, g1, side="right")
    counts = stop2 - start2
    left = np.repeat(np.arange(len(g1)), counts)
    right = np.repeat(start2, counts) + _ranges(counts)
    return g1[left], f1[left], f2[right]


def _meeting_by_counts(
    reach: np.ndarray, lead: np.ndarray, rows: np.ndarray, t: int, half: np.ndarray, m: int
) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """(output, feature) in at least t of its reach rows, and those also in half its lead rows."""
    z = at_least(reach[rows], t)
    z_g, z_f = set_bits(z)
    keep = z_f < m
    leaders = np.zeros_like(z)
    for h in np.unique(half).tolist():
        sel = np.flatnonzero(half == h)
        leaders[sel] = at_least(lead[rows[sel]], int(h)) & z[sel]
    l_g, l_f = set_bits(leaders)
    keep_l = l_f < m
    return z_g[keep], z_f[keep], l_g[keep_l], l_f[keep_l]


def _pair_candidates(table: np.ndarray, rows: np.ndarray, t: int, m: int):
    """Features that may be in at least t >= 2 of each query's rows (a superset, by pigeonhole:
    missing at most L - t rows, a feature meets two of any L - t + 2), as (query, feature)."""
    n_rows = rows.shape[1]
    if t >= n_rows:  # in every row: AND them all, one row at a time
        cand = table[rows[:, 0]]
        for i in range(1, n_rows):
            cand &= table[rows[:, i]]
    else:
        cand = np.zeros((rows.shape[0], table.shape[1]), dtype=np.uint64)
        for i, j in itertools.combinations(range(n_rows - t + 2), 2):
            cand |= table[rows[:, i]] & table[rows[:, j]]
    c_g, c_f = set_bits(cand)
    keep = c_f < m
    return c_g[keep], c_f[keep]


def _by_pairs(n_rows: int, t: int) -> bool:
    """Whether the pigeonhole candidates cost less than bitwise counting."""
    p = n_rows - t + 2
    return t >= 2 and p * (p - 1) <= 2 * n_rows * t


def _row_counts(table: np.ndarray, rows: np.ndarray, g: np.ndarray, f: np.ndarray) -> np.ndarray:
    """How many of query g[i]'s rows hold feature f[i]."""
    counts = np.zeros(len(g), dtype=np.int64)
    for i in range(rows.shape[1]):
        counts += bit_at(table, rows[g, i], f)
    return counts


def _meeting_by_pairs(
    reach: np.ndarray, lead: np.ndarray, rows: np.ndarray, t: int, half: np.ndarray, m: int
) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """What :func:`_meeting_by_counts` returns, from :func:`_pair_candidates` (t >= 2)."""
    c_g, c_f = _pair_candidates(reach, rows, t, m)
    z = _row_counts(reach, rows, c_g, c_f) >= t
    leader = z & (_row_counts(lead, rows, c_g, c_f) >= half[c_g])
    return c_g[z], c_f[z], c_g[leader], c_f[leader]


def _ragged(
    indptr: np.ndarray, values: np.ndarray, rows: np.ndarray
) -> tuple[np.ndarray, np.ndarray]:
    """(i, v) for every value v of row ``rows[i]`` of a CSR-style list (``indptr``, ``values``):
    the units of chosen outputs, or their operands, as flat (query, entry) lists."""
    n = indptr[rows + 1] - indptr[rows]
    return np.repeat(np.arange(len(rows)), n), values[np.repeat(indptr[rows], n) + _ranges(n)]


def _blocks(
    lengths: np.ndarray, thresholds: np.ndarray, size: Callable[[int, int], int]
) -> Iterator[tuple[int, int, np.ndarray]]:
    """Positions with equal (length, threshold), in increasing order, ``size(length,
    threshold)`` at a time: the bitwise "at least t of L" runs on a (block, L) table of rows."""
    for length in np.unique(lengths).tolist():
        same = np.flatnonzero(lengths == length)
        for thr in np.unique(thresholds[same]).tolist():
            sel = same[thresholds[same] == thr]
            step = size(length, thr)
            for lo in range(0, len(sel), step):
                yield length, thr, sel[lo : lo + step]


def _key(rows: np.ndarray, m: int) -> np.ndarray:
    """Rows of sorted features as one integer each, in base m (the inverse of :func:`_unkey`)."""
    key = np.zeros(len(rows), dtype=np.int64)
    for column in rows.astype(np.int64).T:
        key = key * m + column
    return key


class _Candidates:
    """(input, output) candidates gathered part by part: each input as the key of its sorted
    features (:func:`_key`), beside the one output it may be wrong on.

    The pair and triple searches stop (``_OutOfBudget``) once more than ``MAX_CANDIDATES``
    counted candidates are held; the deduplicated set is what :meth:`result` returns.
    """

    def __init__(self, m: int, what: str) -> None:
        self.m, self.what = m, what
        self.keys: list[np.ndarray] = []
        self.owners: list[np.ndarray] = []
        self.total = 0

    def add(self, rows: np.ndarray, owners: np.ndarray, counted: bool = True) -> int:
        """Inputs ``rows`` (features, any order) that may be wrong on ``owners``; an input that
        names a feature twice is no input of its size and is dropped. How many were kept."""
        rows = np.sort(rows, axis=1)
        keep = (rows[:, 1:] != rows[:, :-1]).all(axis=1)
        self.keys.append(_key(rows[keep], self.m))
        self.owners.append(owners[keep].astype(np.int64))
        kept = int(keep.sum())
        if counted:
            self.total += kept
            if self.total > MAX_CANDIDATES:
                raise _OutOfBudget(f"more than {MAX_CANDIDATES:,} {self.what}")
        return kept

    def result(self) -> tuple[np.ndarray, np.ndarray]:
        """The distinct (key, output) candidates, sorted by key then output."""
        if not self.keys:
            return np.empty(0, np.int64), np.empty(0, np.int64)
        both = np.stack([np.concatenate(self.keys), np.concatenate(self.owners)], axis=1)
        both = np.unique(both, axis=0)
        return both[:, 0], both[:, 1]


def _operand_subsets(operands: list[np.ndarray], k: int) -> tuple[np.ndarray, np.ndarray]:
    """Every k-subset of each output's operands, as (rows of k features, output): inputs on
    which an output may change without any feature outside its operands (listed outright)."""
    arity = np.array([len(ops) for ops in operands], dtype=np.int64)
    rows = [np.empty((0, k), dtype=np.int64)]
    owners = [np.empty(0, dtype=np.int64)]
    for r in np.unique(arity[arity >= k]).tolist():  # outputs of arity r, all at once
        outs = np.flatnonzero(arity == r)
        table = np.stack([operands[g] for g in outs.tolist()])
        picks = np.array(list(itertools.combinations(range(r), k)), dtype=np.int64)
        rows.append(table[:, picks].reshape(-1, k))
        owners.append(np.repeat(outs, len(picks)))
    return np.concatenate(rows), np.concatenate(owners)


def _block_sizes(words: int, lengths: np.ndarray) -> tuple[int, int]:
    """Outputs per block for bitwise counting (L rows of ``words`` words each) and for the
    pigeonhole (three rows at a time), both about 64 MB of bit rows."""
    longest = max(int(lengths.max(initial=1)), 1)
    return max(1, 2**26 // max(8 * words * longest, 1)), max(1, 2**26 // (8 * words * 3))


def _turned_on_alone(
    counts: sparse.csr_array, q: np.ndarray
) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """From n_g(f) (``counts``: units of g that f fires alone), the (g, f, n_g(f)) of every
    single f that turns output g on alone, and t_g = q_g - N_g (at least 1; N_g the largest
    n_g below q_g, 0 if none): how many of g's units both features of a joint pair reach."""
    per_row = np.diff(counts.indptr)
    need = np.repeat(q, per_row)
    below = np.where(counts.data < need, counts.data, 0)
    n_max = np.zeros(len(q), dtype=np.int64)
    rows_nz = np.flatnonzero(per_row)
    if len(rows_nz):
        n_max[rows_nz] = np.maximum.reduceat(below, counts.indptr[rows_nz])
    on = counts.data >= need
    g = np.repeat(np.arange(len(q), dtype=np.int64), per_row)[on]
    f = counts.indices[on].astype(np.int64)
    return g, f, counts.data[on].astype(np.int64), np.maximum(q - n_max, 1)


def _reach_pairs(
    sets: Any,
    u: sparse.csr_array,
    q: np.ndarray,
    t: np.ndarray,
    on_alone_keys: np.ndarray,
    found: _Candidates,
    tick: Callable[[], None],
) -> int:
    """Pairs that may turn output g on with neither feature doing it alone (module doc): per
    block of outputs with equal (units, t_g), the leaders (reaching t_g rows and leading half
    of q_g, not on alone) times the features reaching t_g rows. How many were added."""
    m = found.m
    lengths = np.diff(u.indptr)
    chunk, chunk_pairs = _block_sizes(sets.reach.shape[1], lengths)
    outs = np.flatnonzero(lengths > 0)
    added = 0
    # "at least thr of L" either by bit counting over all L rows, or (cheaper when thr is
    # near L) by pigeonhole: a feature missing at most L - thr rows meets two of any
    # L - thr + 2 of them, so pairwise ANDs of those rows hold every answer and a lookup per
    # candidate counts exactly.
    for length, thr, part in _blocks(
        lengths[outs], t[outs], lambda n, thr: chunk_pairs if _by_pairs(n, thr) else chunk
    ):
        tick()
        g = outs[part]
        rows = _ragged(u.indptr, u.indices, g)[1].reshape(-1, length)
        meeting = _meeting_by_pairs if _by_pairs(length, thr) else _meeting_by_counts
        z_g, z_f, l_g, l_f = meeting(sets.reach, sets.lead, rows, thr, (q[g] + 1) // 2, m)
        # a feature that turns the output on alone is no leader (its pairs follow it)
        drop = in_sorted(g[l_g] * m + l_f, on_alone_keys)
        grp, a, b = _products_within_groups(l_g[~drop], l_f[~drop], z_g, z_f)
        if len(a):
            added += found.add(np.stack([a, b], axis=1), g[grp])
    return added


def _kill_pairs(
    sets: Any,
    u: sparse.csr_array,
    on: tuple[np.ndarray, np.ndarray, np.ndarray],
    q: np.ndarray,
    found: _Candidates,
    tick: Callable[[], None],
) -> int:
    """Pairs (a, b) that may turn output g off although a alone turns it on: b reaches the
    negative weights (kill rows) of at least n_g(a) - q_g + 1 of the units of g that a fires
    (only outputs with a signed unit). How many were added."""
    m = found.m
    kill, signed = sets.kill, sets.signed
    signed_index = np.cumsum(signed) - 1  # row of unit o in `kill` (signed units only)
    lengths = np.diff(u.indptr)
    chunk = _block_sizes(sets.reach.shape[1], lengths)[0]
    on_g, on_a, on_count = on
    has_signed = np.asarray(u @ signed.astype(np.int64)).ravel() > 0
    sel = np.flatnonzero(has_signed[on_g])
    on_g, on_a, on_need = on_g[sel], on_a[sel], (on_count - q[on_g] + 1)[sel]
    alone_t = sparse.csr_array(sets.alone.T)  # (m, units)
    added = 0
    for length, thr, part in _blocks(lengths[on_g], on_need, lambda n, thr: chunk):
        tick()
        g, a = on_g[part], on_a[part]
        members = _ragged(u.indptr, u.indices, g)[1].reshape(-1, length)
        fired = np.asarray(alone_t[np.repeat(a, length), members.ravel()]).reshape(-1, length)
        row = np.where((fired > 0) & signed[members], signed_index[members], len(kill) - 1)
        z_g, z_f = set_bits(at_least(kill[row], thr))
        keep = z_f < m
        if keep.any():
            added += found.add(np.stack([a[z_g[keep]], z_f[keep]], axis=1), g[z_g[keep]])
    return added


def _candidate_pairs(
    net: Network, s: int, tick: Callable[[], None], stats: dict[str, Any], progress: Progress | None
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Every (pair, output) that may be wrong without a wrong single explaining it.

    Returns keys a * m + b (a < b) and, beside each, the output it may be wrong on (see the
    module doc); third, the sorted keys g * m + f of the outputs g each single f turns on
    (from the exact sets S_o, so the singles need not run through the layer again). Per unit o
    (threshold T_o = -b_o): S_o, the features firing it alone (exact), and P_o, the features
    that can take part in firing it jointly: positive part c+_o(f) > 0 and at least T_o - M_o,
    where M_o is the most any feature outside S_o brings. Both are bit rows over the features.
    For output g (units U_g, need q_g), n_g(f) = |S(f) & U_g|; a pair that turns g on with
    neither feature doing it alone has both features in at least q_g - N_g of the rows
    S_o | P_o (N_g: the largest n_g below q_g), found by bitwise "at least t of L" per output
    (:func:`_reach_pairs`). A pair that turns g *off* although feature a alone turns it on
    must kill n_g(a) - q_g + 1 of the units a fires: its other feature can kill that many of
    them (bit rows K_o of the signed units, :mod:`superpose._reach`; :func:`_kill_pairs`).
    """
    m = net.task.features
    sets = unit_sets(net, tick, progress)
    stats["unit_sets"] = sets.method
    u, q = _output_membership(net)
    on_g, on_a, on_count, t = _turned_on_alone(sparse.csr_array(u @ sets.alone), q)
    on_alone_keys = np.sort(on_g * m + on_a)
    found = _Candidates(m, "candidate pairs")
    stats["reach_pairs"] = _reach_pairs(sets, u, q, t, on_alone_keys, found, tick)
    stats["kill_pairs"] = _kill_pairs(sets, u, (on_g, on_a, on_count), q, found, tick)
    stats["operand_pairs"] = found.add(*_operand_subsets(_output_operands(net), 2))
    keys, owners = found.result()
    return keys, owners, on_alone_keys


def _smallest_sums(values: np.ndarray, query: np.ndarray, n: int, k: np.ndarray) -> np.ndarray:
    """Per query i, the sum of its ``k[i]`` smallest ``values`` (entries grouped by ``query``)."""
    order = np.lexsort((values, query))
    v, qv = values[order], query[order]
    first = np.searchsorted(qv, np.arange(n))
    rank = np.arange(len(v)) - first[qv]
    return np.bincount(qv, weights=np.where(rank < k[qv], v, 0), minlength=n).astype(np.int64)


def _features_summing(
    w: sparse.csr_array,
    members: sparse.csr_array,
    codes: np.ndarray,
    query_of: np.ndarray,
    units: np.ndarray,
    need: np.ndarray,
    tick: Callable[[], None],
) -> tuple[np.ndarray, np.ndarray]:
    """(query, feature) for every feature f with sum over the query's units o of c_o(f) >=
    ``need[query]`` (at least 1), where c_o(f) = w_o . code(f) (non-negative integer weights).

    Exact, without touching every feature: P[q, b] = the query's weights on input bit b
    summed, and the feature's sum is P[q, code(f)] summed over its k bits. A feature with at
    most j - 1 bits at h or above sums to at most (j - 1) max P + (k - j + 1)(h - 1), below
    need for h = (need - 1 - (j - 1) max P) // (k - j + 1) + 1; so only features with j bits
    at that h are summed (j chosen per query for the highest h: fewest bits to look up),
    found by one sparse product of the "high" bits with ``members`` (input bits x features),
    a block of at most SUM_WORK entries at a time.
    """
    n_in = w.shape[1]
    k = codes.shape[1]
    n = len(need)
    deg = np.diff(members.indptr).astype(np.float64)  # codes holding each input bit
    out_q: list[np.ndarray] = []
    out_f: list[np.ndarray] = []
    order = np.argsort(query_of, kind="stable")
    query_of, units = query_of[order], units[order]
    starts = np.searchsorted(query_of, np.arange(n + 1))
    step = max(1, min(4096, 2**26 // (n_in + 1)))
    js = np.arange(1, k + 1)
    for lo in range(0, n, step):
        tick()
        hi = min(n, lo + step)
        a, b = starts[lo], starts[hi]
        pick = sparse.csr_array(
            (np.ones(b - a), (query_of[a:b] - lo, units[a:b])), shape=(hi - lo, w.shape[0])
        )
        p = np.zeros((hi - lo, n_in + 1), dtype=np.float32)  # column n_in: padding, 0
        p[:, :n_in] = sparse.csr_array(pick @ w).toarray()
        nd = need[lo:hi].astype(np.float64)
        top = p.max(axis=1).astype(np.float64)
        num = nd[:, None] - 1 - (js[None, :] - 1) * top[:, None]
        hj = np.where(num >= 0, num // (k - js[None, :] + 1) + 1, -1)
        j = k - np.argmax(hj[:, ::-1], axis=1)  # the highest h, the larger j on ties
        h = np.maximum(hj[np.arange(hi - lo), j - 1], 1)
        high = sparse.csr_array(p[:, :n_in] >= h[:, None], dtype=np.int32)
        work = np.cumsum(high @ deg)
        r0 = 0
        while r0 < hi - lo:
            tick()
            base = work[r0 - 1] if r0 else 0.0
            r1 = max(r0 + 1, int(np.searchsorted(work, base + SUM_WORK, side="right")))
            cnt = sparse.csr_array(high[r0:r1] @ members)  # (queries, features): high bits
            qi = np.repeat(np.arange(r0, r1), np.diff(cnt.indptr))
            ok = cnt.data >= j[qi]
            qi, f = qi[ok], cnt.indices[ok].astype(np.int64)
            del cnt
            for c0 in range(0, len(qi), SUM_WORK // k):
                q_, f_ = qi[c0 : c0 + SUM_WORK // k], f[c0 : c0 + SUM_WORK // k]
                keep = p[q_[:, None], codes[f_]].sum(axis=1) >= nd[q_] - 0.5
                out_q.append(q_[keep] + lo)
                out_f.append(f_[keep])
            r0 = r1
    if not out_q:
        return np.empty(0, np.int64), np.empty(0, np.int64)
    q_all, f_all = np.concatenate(out_q), np.concatenate(out_f)
    both = np.unique(np.stack([q_all, f_all], axis=1), axis=0)
    return both[:, 0], both[:, 1]


class _SumSearch:
    """Contributions c_o(f) (unit o's integer weights over feature f's code) of a monotone
    one-level step network, and the sum tests of :func:`_candidate_triples` on them.

    Queries are outputs (one per pair or triple being extended); their units come as flat
    (query, unit) lists (:func:`_ragged`), each with what is still missing at that unit.
    """

    def __init__(self, net: Network, tick: Callable[[], None]) -> None:
        layer = net.layers[0]
        self.w = sparse.csr_array(layer.weight, dtype=np.float64)
        self.w.eliminate_zeros()
        self.need_units = np.round(-np.asarray(layer.bias, dtype=np.float64)).astype(np.int64)
        self.members = sparse.csr_array(input_membership(net).T)  # (input bits, features)
        self.outputs = _Outputs(net)
        self.codes = self.outputs.bits  # (m + 1, k), padded with the empty bit w.shape[1]
        self.u, self.q = _output_membership(net)
        self.lengths = np.diff(self.u.indptr)
        self.tick = tick

    def unit_lists(self, g: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """(query index, unit) for every unit of output g[i]."""
        return _ragged(self.u.indptr, self.u.indices, g)

    def contributions(self, f: np.ndarray, units: np.ndarray) -> np.ndarray:
        """c[f_i, units_i]: unit units_i's weights over f_i's code bits."""
        if len(f) == 0:
            return np.zeros(0, dtype=np.int64)
        c = self.outputs._weights(units[:, None], self.codes[f]).sum(axis=1)
        return np.round(c).astype(np.int64)

    def alone_on(self, g: np.ndarray, f: np.ndarray) -> np.ndarray:
        """Whether feature f[i] alone turns output g[i] on."""
        qi, units = self.unit_lists(g)
        fires = self.contributions(f[qi], units) >= self.need_units[units]
        return np.bincount(qi, weights=fires, minlength=len(g)) >= self.q[g]

    def level(
        self, g: np.ndarray, qi: np.ndarray, units: np.ndarray, r: np.ndarray, halves: int
    ) -> tuple[tuple[np.ndarray, np.ndarray], np.ndarray]:
        """Features whose summed contribution at the open units (r > 0) reaches 1 / halves
        of the smallest q_g - (units already fired) of r; also returns how many fired."""
        q = self.q
        fired = np.bincount(qi, weights=r <= 0, minlength=len(g)).astype(np.int64)
        open_ = r > 0
        k_open = q[g] - fired
        n_open = np.bincount(qi[open_], minlength=len(g))
        total = _smallest_sums(r[open_], qi[open_], len(g), np.maximum(k_open, 0))
        # a query whose open units cannot make q_g is never on: a need no feature meets
        need = np.where((k_open > 0) & (n_open >= k_open), -(-total // halves), NEVER)
        found = _features_summing(
            self.w, self.members, self.codes, qi[open_], units[open_], need, self.tick
        )
        return found, fired


def _leader_pairs(
    search: _SumSearch, stats: dict[str, Any]
) -> tuple[tuple[np.ndarray, np.ndarray], tuple[np.ndarray, np.ndarray, np.ndarray]]:
    """Levels 1 and 2 of :func:`_candidate_triples`: the (g, a) whose a turns g on alone, and
    the leader pairs (g, a, b), a the leader and b a second, neither on alone."""
    need_units, q, lengths = search.need_units, search.q, search.lengths
    # An output on at every input (its always-firing units meet its need) has no new triple.
    constant = np.asarray(search.u @ (need_units <= 0).astype(np.int64)).ravel() >= q
    outs = np.flatnonzero(~constant & (lengths > 0)).astype(np.int64)
    # Level 1: leaders (and, among the candidates, every feature that turns g on alone).
    qi, units = search.unit_lists(outs)
    (g1, a1), _ = search.level(outs, qi, units, np.maximum(need_units[units], 0), 3)
    g1 = outs[g1]
    alone = search.alone_on(g1, a1)
    on_g, on_a = g1[alone], a1[alone]
    g1, a1 = g1[~alone], a1[~alone]
    stats["leaders"] = int(len(g1))
    # Level 2: given (g, a), seconds b.
    qi, units = search.unit_lists(g1)
    r2 = need_units[units] - search.contributions(a1[qi], units)
    (p2, b2), _ = search.level(g1, qi, units, r2, 2)
    g2, a2 = g1[p2], a1[p2]
    keep = (b2 != a2) & ~search.alone_on(g2, b2)
    g2, a2, b2 = g2[keep], a2[keep], b2[keep]
    stats["leader_pairs"] = int(len(g2))
    if len(g2) > MAX_CANDIDATES:
        raise _OutOfBudget(f"more than {MAX_CANDIDATES:,} leader pairs")
    return (on_g, on_a), (g2, a2, b2)


def _thirds(
    search: _SumSearch,
    operands: tuple[np.ndarray, np.ndarray],
    g: np.ndarray,
    a: np.ndarray,
    b: np.ndarray,
) -> tuple[np.ndarray, np.ndarray]:
    """Level 3 of :func:`_candidate_triples` for a block of leader pairs: (i, c) for every
    third c that may complete a wrong triple with (a[i], b[i]) on g[i].

    A pair that turns g on explains its triples, except with one of g's operands (listed from
    ``operands``, g's operands as (indptr, features)); for the others, c must bring the pair's
    exact shortfall (codes may overlap) at enough of the units it leaves open.
    """
    q = search.q
    margin, real = search.outputs.margins(np.stack([a, b], axis=1), g)
    on = ((margin >= 0) & real).sum(axis=1) >= q[g]
    rest = np.flatnonzero(~on)
    qi, units = search.unit_lists(g[rest])
    r3 = np.round(-margin[rest][real[rest]]).astype(np.int64)
    (p3, c3), fired = search.level(g[rest], qi, units, r3, 1)
    # exactly: c brings r3 at enough of the units the pair leaves open
    first = np.searchsorted(qi, np.arange(len(rest) + 1))
    n_u = first[p3 + 1] - first[p3]
    at = np.repeat(first[p3], n_u) + _ranges(n_u)
    hit = (r3[at] > 0) & (search.contributions(np.repeat(c3, n_u), units[at]) >= r3[at])
    reach = np.bincount(np.repeat(np.arange(len(p3)), n_u), weights=hit, minlength=len(p3))
    good = reach + fired[p3] >= q[g[rest][p3]]
    explained = np.flatnonzero(on)
    at_op, c_ops = _ragged(*operands, g[explained])
    return np.concatenate([rest[p3[good]], explained[at_op]]), np.concatenate([c3[good], c_ops])


def _operand_triples(
    operands: list[np.ndarray], on_g: np.ndarray, on_a: np.ndarray, found: _Candidates
) -> int:
    """Triples inside an output's operands, and (a, x, y) for every feature a that turns g on
    alone and pair x, y of g's operands: the triples no leader explains. How many were added
    (listed outright, not counted against ``MAX_CANDIDATES``)."""
    added = found.add(*_operand_subsets(operands, 3), counted=False)
    rows, owners = _operand_subsets(operands, 2)
    order = np.argsort(owners, kind="stable")
    grp, a, pair = _products_within_groups(on_g, on_a, owners[order], order)
    trip = np.concatenate([a[:, None], rows[pair]], axis=1)
    return added + found.add(trip, grp, counted=False)


def _candidate_triples(
    net: Network, tick: Callable[[], None], stats: dict[str, Any]
) -> tuple[np.ndarray, np.ndarray]:
    """Every (triple, output) of a monotone network that may be wrong with no wrong pair or
    single explaining it: keys (a m + b) m + c (a < b < c) and the output beside each.

    With non-negative integer weights, unit o fires on x only if the contributions c_o(f)
    (weights over f's code) of x's features sum to at least T_o (the union of the codes
    brings no more than the sum). Output g turns on at a triple only if a set S of q_g of
    its units fires, so summed over S the three features bring sum_S T_o; capping each
    c_o(f) at T_o keeps that true. Three nested pigeonholes on these *sums* (not on unit
    counts: a feature often reaches a third of a threshold at a third of the units, rarely a
    third of their total; 42 against 2 candidates per output on the 10^5 monotone stress
    network) find every such triple:

    1. the *leader* a (the largest capped sum over S) brings at least a third of sum_S T_o,
       so sum over all of g's units of c_o(a) >= (the q_g smallest T_o) / 3;
    2. given a, with r_o = T_o - c_o(a) at the units a does not fire alone (at least
       q_g - fired_a of them in S), the larger of the other two (capped at r_o) brings half
       their sum: sum over those units of c_o(b) >= (the q_g - fired_a smallest r_o) / 2;
    3. given a and b, the third brings the pair's exact shortfall (the union of their codes)
       at enough units to make q_g; candidates from the same sum test, then counted exactly.

    Each level is :func:`_features_summing` (levels 1-2: :func:`_leader_pairs`, level 3:
    :func:`_thirds`). A feature that turns g on alone explains every triple it is in except
    those whose other two features are g's operands (listed), as are triples inside g's
    operands (:func:`_operand_triples`); a pair that turns g on explains its triples except
    with one of g's operands (listed).
    """
    search = _SumSearch(net, tick)
    (on_g, on_a), (g2, a2, b2) = _leader_pairs(search, stats)
    operands = _output_operands(net)
    op_ptr = np.concatenate([[0], np.cumsum([len(ops) for ops in operands])]).astype(np.int64)
    op_flat = np.concatenate(operands) if operands else np.empty(0, np.int64)
    found = _Candidates(net.task.features, "candidate triples")
    step = 1 << 16
    for lo in range(0, len(g2), step):
        tick()
        g, a, b = g2[lo : lo + step], a2[lo : lo + step], b2[lo : lo + step]
        p, c = _thirds(search, (op_ptr, op_flat), g, a, b)
        found.add(np.stack([a[p], b[p], c], axis=1), g[p])
    stats["reach_triples"] = found.total
    stats["operand_triples"] = _operand_triples(operands, on_g, on_a, found)
    return found.result()


class _Outputs:
    """Decode chosen outputs on chosen inputs, reading only those outputs' units.

    For a one-level step network the value of output g on input x needs only the units U_g:
    unit o fires iff w_o . z(x) >= -b_o, z(x) the union of the active codes' bits. Weights are
    looked up per (unit, bit), in a dense copy of the layer when it is small enough, else by
    binary search in the sparse one.
    """

    DENSE_LIMIT = 200_000_000

    def __init__(self, net: Network) -> None:
        layer = net.layers[0]
        w = sparse.csr_array(layer.weight, dtype=np.float32)
        w.sort_indices()
        self.n_units, self.n_in = w.shape
        self.bias = np.asarray(layer.bias, dtype=np.float64)
        self.dense: np.ndarray | None = None
        if self.n_units * (self.n_in + 1) <= self.DENSE_LIMIT:
            self.dense = np.zeros((self.n_units, self.n_in + 1), dtype=np.float32)
            self.dense[:, : self.n_in] = w.toarray()
        else:
            rows = np.repeat(np.arange(self.n_units, dtype=np.int64), np.diff(w.indptr))
            self.keys = rows * (self.n_in + 1) + w.indices
            self.values = w.data
        e = sparse.csr_array(input_membership(net))
        width = int(np.diff(e.indptr).max(initial=1))
        self.bits = np.full((e.shape[0] + 1, width), self.n_in, dtype=np.int64)  # row m: none
        lens = np.diff(e.indptr)
        self.bits[np.repeat(np.arange(e.shape[0]), lens), _ranges(lens)] = e.indices
        u, q = _output_membership(net)
        length = int(np.diff(u.indptr).max(initial=1))
        self.units = np.full((u.shape[0], max(length, 1)), -1, dtype=np.int64)
        lens = np.diff(u.indptr)
        self.units[np.repeat(np.arange(u.shape[0]), lens), _ranges(lens)] = u.indices
        self.need = q
        self.task = net.task

    def _weights(self, units: np.ndarray, bits: np.ndarray) -> np.ndarray:
        if self.dense is not None:
            return self.dense[units, bits]
        query = units * (self.n_in + 1) + bits
        pos = np.minimum(np.searchsorted(self.keys, query), len(self.keys) - 1)
        return np.where(self.keys[pos] == query, self.values[pos], 0.0)

    def margins(self, rows: np.ndarray, outs: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """w_o . z + b_o for each unit o of output ``outs[i]`` on input ``rows[i]`` (-1: no
        feature), as (B, L), and which of the L slots are real units."""
        feats = np.where(rows >= 0, rows, self.bits.shape[0] - 1)
        bits = np.sort(self.bits[feats].reshape(len(rows), -1), axis=1)
        bits[:, 1:][bits[:, 1:] == bits[:, :-1]] = self.n_in  # the union: each bit once
        units = self.units[outs]  # (B, L)
        real = units >= 0
        safe = np.where(real, units, 0)
        pre = self._weights(safe[:, :, None], bits[:, None, :]).sum(axis=2)
        return pre + self.bias[safe], real

    def decode(self, rows: np.ndarray, outs: np.ndarray) -> np.ndarray:
        """Output ``outs[i]`` on the input whose active features are ``rows[i]`` (-1: none)."""
        margin, real = self.margins(rows, outs)
        return ((margin >= 0) & real).sum(axis=1) >= self.need[outs]

    def truth(self, rows: np.ndarray, outs: np.ndarray) -> np.ndarray:
        """The task's value of output ``outs[i]`` on input ``rows[i]``."""
        return values_at(self.task, rows, outs)


def _singles_from_sets(
    net: Network, singles_on: np.ndarray, tick: Callable[[], None]
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """The wrong (output, single, read on) triples when output g reads on for single f
    exactly at the keys ``singles_on`` (g * m + f), against the task's truth."""
    task = net.task
    m = task.features
    truth: list[np.ndarray] = []
    for lo in range(0, m, BATCH):
        tick()
        hi = min(m, lo + BATCH)
        values = sparse.coo_array(
            evaluate(task, sparse.eye_array(hi - lo, m, k=lo, format="csr")).values
        )
        truth.append(values.coords[1].astype(np.int64) * m + values.coords[0] + lo)
    true_keys = np.concatenate(truth) if truth else np.empty(0, np.int64)
    wrong = np.setxor1d(true_keys, singles_on)
    g, f = np.divmod(wrong, m)
    return g, f, in_sorted(wrong, singles_on)


def _unkey(keys: np.ndarray, m: int, width: int) -> np.ndarray:
    """Input keys (sorted features in base m) back to rows of ``width`` features."""
    cols = []
    for _ in range(width):
        keys, low = np.divmod(keys, m)
        cols.append(low)
    return np.stack(cols[::-1], axis=1)


def _batch(rows: np.ndarray, m: int) -> sparse.csr_array:
    on = rows >= 0
    indptr = np.concatenate([[0], np.cumsum(on.sum(axis=1))])
    return sparse.csr_array(
        (np.ones(int(on.sum())), rows[on].astype(np.int64), indptr), shape=(len(rows), m)
    )


class _Checker:
    """Inputs against the truth, every wrong output noted in one :class:`_Tally`.

    Whole inputs run through the network (:meth:`rows`, :meth:`keys`); a candidate (input,
    output) runs through its output's units only (:meth:`owned`). Each batch ticks the time
    budget and reports its size to ``progress``.
    """

    def __init__(self, net: Network, tick: Callable[[], None], progress: Progress | None) -> None:
        self.net, self.tick, self.progress = net, tick, progress
        self.m = net.task.features
        self.tally = _Tally(len(net.task.outputs))
        self.outputs: _Outputs | None = None

    def rows(self, rows: np.ndarray) -> np.ndarray:
        """Rows of an (n, k) array of active features (-1 = none), every output; wrong rows."""
        self.tick()
        bad = _run_full(self.net, rows, self.tally)
        if self.progress is not None:
            self.progress(len(rows))
        return bad

    def keys(self, keys: np.ndarray, width: int) -> list[np.ndarray]:
        """Inputs (keys of ``width`` features) through the whole network; the wrong keys."""
        found = []
        for lo in range(0, len(keys), BATCH):
            part = keys[lo : lo + BATCH]
            found.append(part[self.rows(_unkey(part, self.m, width))])
        return found

    def owned(self, keys: np.ndarray, owners: np.ndarray, width: int) -> list[np.ndarray]:
        """Candidates (input key, output) through their outputs' units; the wrong keys."""
        if self.outputs is None:
            self.outputs = _Outputs(self.net)
        found: list[np.ndarray] = []
        for lo in range(0, len(keys), BATCH):
            self.tick()
            rows = _unkey(keys[lo : lo + BATCH], self.m, width)
            outs = owners[lo : lo + BATCH]
            on = self.outputs.decode(rows, outs)
            bad = np.flatnonzero(on != self.outputs.truth(rows, outs))
            if len(bad):
                self.tally.note(rows, bad, outs[bad], on[bad])
                found.append(keys[lo : lo + BATCH][bad])
            if self.progress is not None:
                self.progress(len(rows))
        return found


def _wrong_singles(check: _Checker, singles_on: np.ndarray | None) -> list[int]:
    """The singles wrong on some output, each wrong output noted.

    With ``singles_on`` (module doc of :func:`_run_candidates`) they are read off the unit
    sets, and only the first ``BATCH`` run through ``predict``, which must agree; else every
    single runs through the network.
    """
    m = check.m
    if singles_on is None:
        bad_singles: list[int] = []
        for lo in range(0, m, BATCH):
            rows = np.arange(lo, min(m, lo + BATCH), dtype=np.int64)[:, None]
            bad_singles.extend(int(v) for v in rows[check.rows(rows), 0])
        return bad_singles
    g, f, is_on = _singles_from_sets(check.net, singles_on, check.tick)
    first = np.arange(min(m, BATCH), dtype=np.int64)[:, None]
    ran = np.zeros(len(first), dtype=bool)
    ran[check.rows(first)] = True
    if not np.array_equal(ran, np.isin(first[:, 0], f)):
        raise RuntimeError("certificate: the unit sets disagree with predict on singles")
    rest = f >= len(first)  # the first batch was noted by ``check.rows``
    if rest.any():
        check.tally.note(np.arange(m, dtype=np.int64)[:, None], f[rest], g[rest], is_on[rest])
    if check.progress is not None:
        check.progress(m - len(first))
    return np.unique(f).tolist()


def _grown(rows: np.ndarray, m: int) -> np.ndarray:
    """Sorted keys of every input that adds one feature to one of ``rows`` (n, k features):
    the pairs of the wrong singles, the triples of the wrong pairs."""
    more = np.tile(np.arange(m, dtype=np.int64), len(rows))[:, None]
    grown = np.sort(np.concatenate([np.repeat(rows, m, axis=0), more], axis=1), axis=1)
    distinct = (grown[:, 1:] != grown[:, :-1]).all(axis=1)
    return np.unique(_key(grown[distinct], m))


def _run_candidates(
    net: Network,
    s: int,
    candidates: tuple[np.ndarray, np.ndarray],
    triples: tuple[np.ndarray, np.ndarray],
    tick: Callable[[], None],
    progress: Progress | None,
    singles_on: np.ndarray | None = None,
) -> tuple[int, bool, np.ndarray, np.ndarray, np.ndarray, tuple[tuple[int, tuple[int, ...]], ...]]:
    """Run the empty input and every single through the network, each candidate (pair, output)
    through its output's units; compare with the truth.

    ``singles_on`` (sorted keys g * m + f: output g on for single f, from the exact unit sets)
    stands for running the singles through the layer, which at m = 10^5 costs more than the
    rest of the certificate; the first ``BATCH`` singles still run through ``predict``, which
    must find the same wrong singles (an internal error otherwise).

    A feature wrong on its own makes most pairs holding it wrong too (every pair outside the
    candidates decodes each output as one of its singles does), so when there are few such
    features all their pairs are run as well and the count of wrong inputs is exact; with more
    than ``MAX_EXTRA_PAIRS`` of them the count is a lower bound (the wrong outputs stay exact).
    """
    m = net.task.features
    check = _Checker(net, tick, progress)
    wrong_small = len(check.rows(np.full((1, 1), -1, dtype=np.int64)))
    bad_singles = _wrong_singles(check, singles_on) if s >= 1 else []
    wrong_small += len(bad_singles)
    exact_count = True
    wrong_keys: list[np.ndarray] = []
    if s >= 2:
        wrong_keys += check.owned(*candidates, 2)
        if bad_singles and len(bad_singles) * m <= MAX_EXTRA_PAIRS:
            wrong_keys += check.keys(_grown(np.array(bad_singles, dtype=np.int64)[:, None], m), 2)
        elif bad_singles:
            exact_count = False
    pairs = np.unique(np.concatenate(wrong_keys)) if wrong_keys else np.empty(0, np.int64)
    wrong_inputs = wrong_small + len(pairs)
    if s >= 3:
        found = check.owned(*triples, 3)
        # Every other wrong triple holds a wrong pair (module doc): run all of theirs.
        if exact_count and len(pairs) * m <= MAX_EXTRA_PAIRS:
            found += check.keys(_grown(_unkey(pairs, m, 2), m), 3)
        else:
            exact_count = False
        wrong_inputs += len(np.unique(np.concatenate(found))) if found else 0
    return check.tally.result(wrong_inputs, exact_count)


__all__ = ["Certificate", "certify", "unsupported"]
