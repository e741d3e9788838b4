"""The evaluator against an independent brute-force loop over gates (tests/helpers.py)."""

from __future__ import annotations

import numpy as np
import pytest
from helpers import all_sparse_rows, brute_node_values, brute_outputs, gate_list, rows_to_csr, tasks
from hypothesis import given
from hypothesis import strategies as st
from scipy import sparse

from superpose import SuperposeError, Task, evaluate, families
from superpose.evaluation import as_input_batch, evaluate_nodes, values_at


def check_against_brute_force(task, rows):
    x = rows_to_csr(rows, task.features)
    truth = evaluate(task, x)
    assert truth.values.shape == (len(rows), task.n_outputs)
    assert truth.active_operands.shape == (len(rows), task.n_outputs)
    assert sparse.issparse(truth.values) and sparse.issparse(truth.active_operands)
    values = truth.values.toarray().astype(int)
    counts = truth.active_operands.toarray()
    nodes = evaluate_nodes(task, x).toarray()
    gates = gate_list(task)
    for r, row in enumerate(rows):
        want_values, want_counts = brute_outputs(task, row)
        assert values[r].tolist() == want_values, (row, gates)
        assert counts[r].tolist() == want_counts, (row, gates)
        node_values = brute_node_values(task.features, gates, row)
        assert nodes[r].tolist() == [node_values[i] for i in range(task.n_nodes)]


@st.composite
def task_and_rows(draw, **kwargs):
    task = draw(tasks(**kwargs))
    rows = draw(
        st.lists(
            st.sets(st.integers(0, task.features - 1), max_size=task.sparsity),
            min_size=1,
            max_size=12,
        )
    )
    return task, rows


@given(task_and_rows(max_features=8, max_gates=12))
def test_random_tasks_match_brute_force(case):
    check_against_brute_force(*case)


@given(task_and_rows(max_features=6, max_gates=20, max_arity=5))
def test_deep_circuits_match_brute_force(case):
    check_against_brute_force(*case)


@pytest.mark.parametrize("op", ["copy", "and", "or", "xor", "andnot"])
@given(data=st.data())
def test_single_op_tasks_match_brute_force(op, data):
    case = data.draw(task_and_rows(max_features=7, max_gates=10, ops=(op,)))
    check_against_brute_force(*case)


def test_every_input_of_the_mixed_task(mixed_task):
    check_against_brute_force(mixed_task, all_sparse_rows(mixed_task.features, mixed_task.sparsity))


def test_dense_inputs_beyond_sparsity(mixed_task):
    # the evaluator does not depend on sparsity: all 2^8 inputs
    rows = [[i for i in range(8) if mask >> i & 1] for mask in range(256)]
    check_against_brute_force(mixed_task, rows)


@pytest.mark.parametrize(
    ("op", "truth"),
    [
        ("and", [0, 0, 0, 1]),
        ("or", [0, 1, 1, 1]),
        ("xor", [0, 1, 1, 0]),
        ("andnot", [0, 1, 0, 0]),  # a and not b: rows are (a, b) = 00, 10, 01, 11
    ],
)
def test_truth_tables(op, truth):
    task = Task.from_gates(2, 2, [(op, [0, 1])])
    x = np.array([[0, 0], [1, 0], [0, 1], [1, 1]])
    got = evaluate(task, x)
    assert got.values.toarray().ravel().astype(int).tolist() == truth
    assert got.active_operands.toarray().ravel().tolist() == [0, 1, 1, 2]


def test_andnot_operand_order_matters():
    task = Task.from_gates(3, 2, [("andnot", [2, 0]), ("andnot", [0, 2])])
    got = evaluate(task, np.array([[0, 0, 1], [1, 0, 0], [1, 0, 1]])).values.toarray().astype(int)
    assert got.tolist() == [[1, 0], [0, 1], [0, 0]]


def test_k_input_xor_is_parity():
    task = Task.from_gates(4, 4, [("xor", [0, 1, 2, 3])])
    for mask in range(16):
        row = [i for i in range(4) if mask >> i & 1]
        got = evaluate(task, rows_to_csr([row], 4)).values.toarray()[0, 0]
        assert int(got) == len(row) % 2


def test_outputs_that_are_inputs():
    task = Task.from_gates(4, 2, [("and", [0, 1])], outputs=[2, 4, 0])
    got = evaluate(task, rows_to_csr([[0, 1], [2], [0, 2], []], 4))
    assert got.values.toarray().astype(int).tolist() == [[0, 1, 1], [1, 0, 0], [1, 0, 1], [0, 0, 0]]
    assert got.active_operands.toarray().tolist() == [[0, 2, 1], [1, 0, 0], [1, 1, 1], [0, 0, 0]]


def test_input_coercion():
    x = np.array([[0, 3, 0], [2, 0, -1]])  # any non-zero counts as active
    batch = as_input_batch(x, 3)
    assert batch.toarray().tolist() == [[0, 1, 0], [1, 0, 1]]
    with pytest.raises(SuperposeError, match="expected"):
        as_input_batch(np.zeros((2, 4)), 3)
    task = Task.from_gates(3, 2, [("and", [0, 1])])
    dense = evaluate(task, np.array([[1, 1, 0], [1, 0, 0]]))
    sp = evaluate(task, sparse.csr_array(np.array([[1, 1, 0], [1, 0, 0]])))
    assert (dense.values != sp.values).nnz == 0


def test_empty_batch():
    task = Task.from_gates(3, 2, [("and", [0, 1])])
    got = evaluate(task, sparse.csr_array((0, 3)))
    assert got.values.shape == (0, 1)


def test_large_task_stays_sparse():
    # 200k gates: the truth of a small batch is computed without any (batch x m') dense array
    task = families.pairs(20_000, 200_000, np.random.default_rng(0), sparsity=2)
    a, b = (int(v) for v in task.operands(123))
    rows = [[a, b], [a], []]
    got = evaluate(task, rows_to_csr(rows, task.features))
    assert sparse.issparse(got.values)
    values = got.values.toarray()
    assert values[0, 123] and values.sum() == 1 + 0  # exactly the one gate (pairs are distinct)
    assert not values[1].any() and not values[2].any()
    # the classes: gate 123 has 2 active operands on row 0, every gate reading a has 1 on row 1
    counts = got.active_operands
    assert counts[0, 123] == 2
    assert counts[[1]].sum() == task.influence[a]


def test_evaluate_is_deterministic_per_task_object():
    # the level cache is keyed by task object; a second task with the same arrays agrees
    t1 = Task.from_gates(4, 2, [("and", [0, 1]), ("or", [4, 2])])
    t2 = Task.from_gates(4, 2, [("and", [0, 1]), ("xor", [4, 2])])
    x = rows_to_csr([[0, 1, 2]], 4)
    assert evaluate(t1, x).values.toarray().astype(int).tolist() == [[1, 1]]
    assert evaluate(t2, x).values.toarray().astype(int).tolist() == [[1, 0]]


@given(task_and_rows(max_features=7, max_gates=14, max_arity=4), st.data())
def test_values_at_matches_brute_force(case, data):
    """values_at: one output per input (one-level outputs by lookup, deeper ones in full)."""
    task, rows = case
    width = max([len(r) for r in rows] + [1])
    table = np.full((len(rows), width), -1, dtype=np.int64)
    for i, r in enumerate(rows):
        table[i, : len(r)] = sorted(r)
    outs = np.array(
        data.draw(
            st.lists(st.integers(0, task.n_outputs - 1), min_size=len(rows), max_size=len(rows))
        )
    )
    want = [brute_outputs(task, r)[0][g] for r, g in zip(rows, outs.tolist(), strict=True)]
    assert values_at(task, table, outs).astype(int).tolist() == want
