"""Ground truth: the value of every gate of a task on a batch of sparse Boolean inputs.

Work scales with the active part of each input: a gate can only be true if one of its
operands is active (every op maps all-zero to 0), so each level is one sparse product of the
batch's active nodes with a node-to-gate incidence matrix.
"""

from __future__ import annotations

import weakref
from dataclasses import dataclass

import numpy as np
from scipy import sparse

from superpose.errors import SuperposeError
from superpose.task import OP_CODE, Task


@dataclass(frozen=True)
class GroundTruth:
    """Truth for a batch: ``values[i, j]`` is output ``j`` on input ``i``.

    ``active_operands[i, j]`` counts how many operands of output gate ``j`` are active on
    input ``i`` (the class of that output on that input: "00", "01", "11" for 2-input gates).
    """

    values: sparse.csr_array
    active_operands: sparse.csr_array


@dataclass(frozen=True)
class _Level:
    gates: np.ndarray  # gate indices in this level
    reads: sparse.csr_array  # (n_nodes, len(gates)): 1 where the node is an operand
    first: np.ndarray  # each gate's first operand (the node an andnot needs on)
    ops: np.ndarray
    arity: np.ndarray


_LEVEL_CACHE: weakref.WeakKeyDictionary[Task, tuple[_Level, ...]] = weakref.WeakKeyDictionary()


def _levels(task: Task) -> tuple[_Level, ...]:
    cached = _LEVEL_CACHE.get(task)
    if cached is not None:
        return cached
    levels = []
    gate_level = task.gate_level
    for level in range(1, task.depth + 1):
        gates = np.flatnonzero(gate_level == level)
        arity = task.arity[gates]
        starts = task.gate_indptr[gates]
        cols, rows, _ = task.operand_arrays(gates)
        shape = (task.n_nodes, len(gates))
        reads = sparse.csr_array((np.ones(len(rows), dtype=np.int32), (rows, cols)), shape=shape)
        levels.append(_Level(gates, reads, task.gate_inputs[starts], task.ops[gates], arity))
    _LEVEL_CACHE[task] = tuple(levels)
    return _LEVEL_CACHE[task]


def _gate_truth(level: _Level, counts: sparse.coo_array, active: sparse.csr_array) -> np.ndarray:
    """Boolean truth for the (input, gate) entries listed in ``counts`` (COO order)."""
    c = counts.data
    g = counts.coords[1]
    op = level.ops[g]
    truth = np.zeros(len(c), dtype=bool)
    truth |= (op == OP_CODE["copy"]) & (c >= 1)
    truth |= (op == OP_CODE["or"]) & (c >= 1)
    truth |= (op == OP_CODE["and"]) & (c == level.arity[g])
    truth |= (op == OP_CODE["xor"]) & (c % 2 == 1)
    is_andnot = (op == OP_CODE["andnot"]) & (c == 1)
    if is_andnot.any():
        # the one active operand must be the first: look (input, first operand) up among the
        # batch's active (input, node) keys (a sorted search, not a per-entry row scan)
        n_nodes = active.shape[1]
        rows = np.repeat(np.arange(active.shape[0], dtype=np.int64), np.diff(active.indptr))
        keys = np.sort(rows * n_nodes + active.indices)
        want = counts.coords[0][is_andnot].astype(np.int64) * n_nodes + level.first[g[is_andnot]]
        at = np.minimum(np.searchsorted(keys, want), max(len(keys) - 1, 0))
        truth[is_andnot] = keys[at] == want if len(keys) else False
    return truth


def as_input_batch(x: sparse.sparray | np.ndarray, features: int) -> sparse.csr_array:
    """Coerce a batch of inputs to a 0/1 ``csr_array`` of shape (batch, features)."""
    batch = sparse.csr_array(x, dtype=np.int32)
    if batch.ndim != 2 or batch.shape[1] != features:
        raise SuperposeError(f"input batch has shape {batch.shape}; expected (batch, {features})")
    batch.data[:] = 1
    batch.eliminate_zeros()
    return batch


def evaluate_nodes(task: Task, x: sparse.sparray | np.ndarray) -> sparse.csr_array:
    """Value of every node (inputs then gates) on each input: a (batch, m + gates) 0/1 array.

    Example:
        >>> t = Task.from_gates(3, 2, [("and", [0, 1]), ("or", [3, 2])])
        >>> evaluate_nodes(t, np.array([[1, 1, 0]])).toarray().tolist()
        [[1, 1, 0, 1, 1]]
    """
    active, _ = _evaluate(task, x)
    return active


def _evaluate(task: Task, x: sparse.sparray | np.ndarray) -> tuple[sparse.csr_array, list]:
    xb = as_input_batch(x, task.features)
    n_batch = xb.shape[0]
    active = sparse.hstack(
        [xb, sparse.csr_array((n_batch, task.n_gates), dtype=np.int32)], format="csr"
    )
    per_level_counts = []
    for level in _levels(task):
        counts = (active @ level.reads).tocoo()
        truth = _gate_truth(level, counts, active)
        rows = counts.coords[0][truth]
        cols = task.features + level.gates[counts.coords[1][truth]]
        new = sparse.csr_array(
            (np.ones(len(rows), dtype=np.int32), (rows, cols)), shape=active.shape
        )
        active = active + new
        per_level_counts.append((level, counts))
    return active.tocsr(), per_level_counts


def evaluate(task: Task, x: sparse.sparray | np.ndarray) -> GroundTruth:
    """Compute every output of ``task`` on a batch of 0/1 inputs (rows of ``x``).

    Example:
        >>> t = Task.from_gates(3, 2, [("and", [0, 1]), ("xor", [1, 2])])
        >>> evaluate(t, np.array([[1, 1, 0], [0, 1, 1]])).values.toarray().astype(int).tolist()
        [[1, 1], [0, 0]]
    """
    active, per_level = _evaluate(task, x)
    n_batch = active.shape[0]
    # Active-operand counts per (input, gate), then selected for the output columns.
    rows, cols, data = [], [], []
    for level, counts in per_level:
        rows.append(counts.coords[0])
        cols.append(level.gates[counts.coords[1]])
        data.append(counts.data)
    if rows:
        gate_counts = sparse.csr_array(
            (np.concatenate(data), (np.concatenate(rows), np.concatenate(cols))),
            shape=(n_batch, task.n_gates),
        )
    else:
        gate_counts = sparse.csr_array((n_batch, task.n_gates), dtype=np.int32)
    if task.n_gates and np.array_equal(task.outputs, np.arange(task.features, task.n_nodes)):
        # The common case (every gate an output, in order): no column indexing over m' columns.
        gate_values = sparse.csr_array(active[:, task.features :])
        return GroundTruth(
            values=sparse.csr_array(gate_values, dtype=bool),
            active_operands=sparse.csr_array(gate_counts, dtype=np.int32),
        )
    values = active[:, task.outputs]
    # An output that is an input feature reads itself: one operand, active iff it is on.
    node_counts = sparse.hstack(
        [sparse.csr_array(active[:, : task.features], dtype=np.int32), gate_counts],
        format="csr",
    )
    operand_counts = node_counts[:, task.outputs]
    return GroundTruth(
        values=sparse.csr_array(values, dtype=bool),
        active_operands=sparse.csr_array(operand_counts, dtype=np.int32),
    )


def values_at(task: Task, rows: np.ndarray, outputs: np.ndarray) -> np.ndarray:
    """Output ``outputs[i]`` of ``task`` on the input whose active features are ``rows[i]``.

    ``rows`` is an (n, k) array of distinct features, -1 for none. The work is per pair, not
    per output: a checker asking for one output of each input (the certificate's candidate
    pairs) pays O(n k) lookups instead of evaluating every gate of every input. Outputs that
    read gates (depth > 1) are evaluated in full.

    Example:
        >>> t = Task.from_gates(4, 2, [("and", [0, 1]), ("andnot", [2, 3])])
        >>> values_at(t, np.array([[0, 1], [3, 2], [2, -1]]), np.array([0, 1, 1])).tolist()
        [True, False, True]
    """
    rows = np.asarray(rows, dtype=np.int64).reshape(len(rows), -1)
    outputs = np.asarray(outputs, dtype=np.int64)
    nodes = task.outputs[outputs]
    out = np.zeros(len(rows), dtype=bool)
    is_feature = nodes < task.features
    out[is_feature] = (rows[is_feature] == nodes[is_feature, None]).any(axis=1)
    gates = nodes - task.features
    levels = _levels(task)
    level_of = np.zeros(len(nodes), dtype=np.int64)
    level_of[~is_feature] = task.gate_level[gates[~is_feature]]
    is_first = level_of == 1
    deep = np.flatnonzero(~is_feature & ~is_first)
    if len(deep):
        on = rows[deep] >= 0
        indptr = np.concatenate([[0], np.cumsum(on.sum(axis=1))])
        x = sparse.csr_array(
            (np.ones(int(on.sum()), dtype=np.int32), rows[deep][on], indptr),
            shape=(len(deep), task.features),
        )
        active = evaluate_nodes(task, x)
        out[deep] = np.asarray(active[np.arange(len(deep)), nodes[deep]]).ravel() > 0
    pick = np.flatnonzero(is_first)
    if len(pick):
        level = levels[0]
        local = np.searchsorted(level.gates, gates[pick])
        sub = rows[pick]
        valid = sub >= 0
        reads = level.reads[np.where(valid, sub, 0).ravel(), np.repeat(local, sub.shape[1])]
        counts = (np.asarray(reads).reshape(sub.shape) * valid).sum(axis=1)
        r = np.repeat(np.arange(len(pick)), valid.sum(axis=1))
        active = sparse.csr_array(
            (np.ones(len(r), dtype=np.int32), (r, sub[valid])), shape=(len(pick), task.n_nodes)
        )
        coo = sparse.coo_array(
            (counts, (np.arange(len(pick)), local)), shape=(len(pick), len(level.gates))
        )
        out[pick] = _gate_truth(level, coo, active)
    return out
