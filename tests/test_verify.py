"""The verifier: exact input counts, detection of broken networks, class labels, the bound."""

from __future__ import annotations

import math

import numpy as np
import pytest
from helpers import all_sparse_rows, as_sets, brute_outputs, n_sparse, rows_to_csr, tasks
from hypothesis import given
from hypothesis import strategies as st
from scipy import sparse, stats

from superpose import Layer, Network, SuperposeError, Task, build, families, verify
from superpose.verification import (
    VerificationReport,
    check_batch,
    class_label,
    clopper_pearson_upper,
    exhaustive_count,
    exhaustive_inputs,
    random_inputs,
    targeted_inputs,
)


def edited(net: Network, layer: int = 0, weights=(), biases=()) -> Network:
    """A copy of ``net`` with some weights ``(row, col, value)`` and biases ``(row, value)`` set."""
    layers = list(net.layers)
    lay = layers[layer]
    w = lay.weight.tolil(copy=True)
    for r, c, v in weights:
        w[r, c] = v
    b = lay.bias.copy()
    for r, v in biases:
        b[r] = v
    layers[layer] = Layer(sparse.csr_array(w), b, lay.activation)
    return Network(layers, net.input_code, net.output_code, net.task, net.construction, net.params)


def label_of(active: int, arity: int) -> str:
    return "0" * (arity - active) + "1" * active if arity <= 3 else f"{active}of{arity}"


# --- exhaustive inputs --------------------------------------------------------------------


@given(
    st.integers(1, 9).flatmap(
        lambda m: st.tuples(st.just(m), st.integers(1, m), st.integers(1, 50))
    )
)
def test_exhaustive_inputs_are_every_sparse_input_once(args):
    m, s, batch_size = args
    batches = list(exhaustive_inputs(m, s, batch_size))
    assert all(0 < b.shape[0] <= batch_size and b.shape[1] == m for b in batches)
    rows = [frozenset(r) for b in batches for r in as_sets(b)]
    assert len(rows) == n_sparse(m, s) == sum(math.comb(m, k) for k in range(s + 1))
    assert set(rows) == {frozenset(r) for r in all_sparse_rows(m, s)}
    assert all(len(r) <= s for r in rows)


def test_issue_instance_exhaustive():
    task = families.generate("and2", np.random.default_rng(0), features=40, outputs=200, sparsity=3)
    net = build(task, "naive")
    assert exhaustive_count(task) == 10701 == sum(math.comb(40, k) for k in range(4))
    report = verify(net, "exhaustive")
    assert report.inputs_checked == 10701
    assert report.inputs_with_error == report.false_positives == report.false_negatives == 0
    assert report.passed
    assert report.by_mode["exhaustive"]["inputs_checked"] == 10701
    # every (input, output) pair is counted in exactly one class
    assert sum(row["checked"] for row in report.by_class.values()) == 10701 * 200
    # class 11: the inputs holding both operands of a gate: sum_k<=1 C(38, k) per gate
    assert report.by_class["11"]["checked"] == 200 * (1 + 38)
    # class 01: exactly one operand: 2 * sum_k<=2 C(38, k) per gate
    assert report.by_class["01"]["checked"] == 200 * 2 * (1 + 38 + math.comb(38, 2))
    assert report.error_rate_upper_95 == pytest.approx(1 - 0.05 ** (1 / 10701))


# --- broken networks are caught -----------------------------------------------------------


@pytest.fixture(scope="module")
def and2_net():
    task = families.pairs(20, 40, np.random.default_rng(3), sparsity=3)
    return build(task, "naive")


def gate_unit_and_operands(net, gate):
    a, b = (int(v) for v in net.task.operands(gate))
    return gate, a, b  # the naive net has one unit per gate, in output order


def test_raised_bias_gives_false_positives_of_class_01(and2_net):
    m, s = 20, 3
    unit, a, b = gate_unit_and_operands(and2_net, 7)
    broken = edited(and2_net, biases=[(unit, 0.0)])  # ReLU(a + b): an OR, fires on one operand
    report = verify(broken, "exhaustive")
    want = 2 * sum(math.comb(m - 2, k) for k in range(s))  # exactly one of a, b; any s-1 others
    assert report.false_positives == want
    assert report.false_negatives == 0
    assert report.inputs_with_error == want
    assert report.by_class["01"]["false_positives"] == want
    assert report.by_class["11"]["false_positives"] == report.by_class["00"]["false_positives"] == 0
    assert not report.passed and report.error_rate_upper_95 > want / n_sparse(m, s)
    for row in report.failing_inputs:
        assert len({a, b} & set(row)) == 1


@pytest.mark.parametrize("value", [0.0, -1.0])
def test_removed_or_flipped_weight_gives_false_negatives_of_class_11(and2_net, value):
    m, s = 20, 3
    unit, a, b = gate_unit_and_operands(and2_net, 11)
    broken = edited(
        and2_net, weights=[(unit, b, value)]
    )  # ReLU(a - 1) or ReLU(a - b - 1): never fires
    report = verify(broken, "exhaustive")
    want = sum(math.comb(m - 2, k) for k in range(s - 1))  # both a, b; any s-2 others
    assert report.false_negatives == want
    assert report.false_positives == 0
    assert report.by_class["11"]["false_negatives"] == want
    assert report.by_class["01"]["false_negatives"] == report.by_class["00"]["false_negatives"] == 0
    for row in report.failing_inputs:
        assert {a, b} <= set(row)


def test_both_kinds_at_once_and_failing_inputs_are_real(and2_net):
    u1, a1, b1 = gate_unit_and_operands(and2_net, 2)
    u2, a2, b2 = gate_unit_and_operands(and2_net, 30)
    broken = edited(and2_net, weights=[(u2, a2, 0.0)], biases=[(u1, 0.0)])
    report = verify(broken, "exhaustive")
    assert report.false_positives > 0 and report.false_negatives > 0
    assert report.by_class["01"]["false_positives"] == report.false_positives
    assert report.by_class["11"]["false_negatives"] == report.false_negatives
    # inputs with any error: union of the two sets, counted by brute force
    rows = all_sparse_rows(20, 3)
    wrong = [r for r in rows if len({a1, b1} & set(r)) == 1 or {a2, b2} <= set(r)]
    assert report.inputs_with_error == len(wrong)
    assert 0 < len(report.failing_inputs) <= 10
    x = rows_to_csr(report.failing_inputs, 20)
    pred = broken.predict(x).toarray().astype(int)
    for r, row in enumerate(report.failing_inputs):
        truth, _ = brute_outputs(broken.task, row)
        assert pred[r].tolist() != truth


def test_random_and_targeted_modes_also_catch_it(and2_net):
    unit, _, _ = gate_unit_and_operands(and2_net, 5)
    broken = edited(and2_net, biases=[(unit, 0.0)])
    for mode in ("random", "targeted"):
        report = verify(broken, mode, samples=600, rng=np.random.default_rng(0))
        assert report.inputs_checked == 600
        assert report.false_positives > 0, mode
        assert report.by_class["01"]["false_positives"] == report.false_positives


def test_correct_network_passes_every_mode(and2_net):
    report = verify(and2_net, "all", samples=300, rng=np.random.default_rng(1))
    assert report.passed
    assert set(report.by_mode) == {"exhaustive", "random", "targeted"}
    assert report.inputs_checked == n_sparse(20, 3) + 600
    assert [report.by_mode[k]["inputs_checked"] for k in ("exhaustive", "random", "targeted")] == [
        n_sparse(20, 3),
        300,
        300,
    ]


def test_planted_distractor_is_found_by_targeted_inputs():
    task = Task.from_gates(10, 3, [("and", [0, 1]), ("and", [2, 3])])
    net = build(task, "naive")
    # unit 0 also listens to feature 7: ReLU(x0 + x1 + x7 - 1) fires on {0, 7}
    broken = edited(net, weights=[(0, 7, 1.0)])
    report = verify(broken, "targeted", samples=30, rng=np.random.default_rng(0))
    assert report.false_positives > 0
    assert all(7 in row for row in report.failing_inputs)
    exhaustive = verify(broken, "exhaustive")
    # {0 or 1, 7} plus any third feature except the other operand: 2 * (1 + 7)
    assert exhaustive.false_positives == 2 * (1 + 7)


# --- class labels on random tasks -----------------------------------------------------------


@given(tasks(max_features=7, max_gates=8))
def test_by_class_counts_match_brute_force(task):
    net = build(task, "naive")
    rows = all_sparse_rows(task.features, task.sparsity)
    report = check_batch(net, rows_to_csr(rows, task.features))
    assert report.inputs_checked == len(rows)
    assert report.passed
    arity = [
        1 if node < task.features else len(task.operands(node - task.features))
        for node in task.outputs.tolist()
    ]
    want: dict[str, int] = {}
    for row in rows:
        _, counts = brute_outputs(task, row)
        for c, k in zip(counts, arity, strict=True):
            label = label_of(c, k)
            want[label] = want.get(label, 0) + 1
    assert {k: v["checked"] for k, v in report.by_class.items() if v["checked"]} == want


@pytest.mark.parametrize(
    ("active", "arity", "label"),
    [(0, 2, "00"), (1, 2, "01"), (2, 2, "11"), (1, 1, "1"), (2, 3, "011"), (3, 5, "3of5")],
)
def test_class_label(active, arity, label):
    assert class_label(active, arity) == label


# --- the Clopper-Pearson bound ---------------------------------------------------------------


@given(st.integers(1, 3000).flatmap(lambda n: st.tuples(st.integers(0, n), st.just(n))))
def test_clopper_pearson_matches_scipy(args):
    k, n = args
    want = stats.binomtest(k, n, alternative="less").proportion_ci(confidence_level=0.95).high
    assert clopper_pearson_upper(k, n) == pytest.approx(want, rel=1e-9, abs=1e-12)
    assert k / n <= clopper_pearson_upper(k, n) <= 1.0


def test_clopper_pearson_edges():
    assert clopper_pearson_upper(0, 0) == 1.0
    assert clopper_pearson_upper(5, 5) == 1.0
    assert clopper_pearson_upper(0, 1000) == pytest.approx(1 - 0.05 ** (1 / 1000))
    assert clopper_pearson_upper(0, 1000, 0.99) > clopper_pearson_upper(0, 1000)
    report = VerificationReport("x", inputs_checked=200, inputs_with_error=3)
    assert report.error_rate_upper_95 == clopper_pearson_upper(3, 200)


# --- limits and bad requests ---------------------------------------------------------------------


def test_exhaustive_refused_above_the_limit(and2_net):
    total = n_sparse(20, 3)
    with pytest.raises(SuperposeError) as info:
        verify(and2_net, "exhaustive", max_exhaustive=total - 1)
    message = str(info.value)
    assert f"{total:,}" in message or str(total) in message
    assert f"{total - 1:,}" in message or str(total - 1) in message
    # at the limit it runs
    assert verify(and2_net, "exhaustive", max_exhaustive=total).inputs_checked == total
    # 'all' skips the exhaustive part instead of refusing
    report = verify(and2_net, "all", samples=10, max_exhaustive=total - 1)
    assert "exhaustive" not in report.by_mode and report.inputs_checked == 20


def test_bad_mode_and_samples(and2_net):
    with pytest.raises(SuperposeError, match="unknown verification mode 'brute'"):
        verify(and2_net, "brute")
    with pytest.raises(SuperposeError, match="samples"):
        verify(and2_net, "random", samples=-1)


# --- sampled inputs ------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "make",
    [
        lambda: families.pairs(30, 60, np.random.default_rng(0), sparsity=3),
        lambda: families.pairs(30, 60, np.random.default_rng(0), sparsity=2, influence="star"),
        lambda: families.k_and(12, 20, 4, np.random.default_rng(0), sparsity=3),
        lambda: families.layered_circuit(15, 8, 3, np.random.default_rng(0), sparsity=3),
        lambda: families.permutation(10, np.random.default_rng(0), sparsity=1),
    ],
)
def test_sampled_inputs_have_at_most_s_active(make):
    task = make()
    net = build(task, "naive")
    s = task.sparsity
    for batches in (
        random_inputs(task, 301, np.random.default_rng(1), batch_size=64),
        targeted_inputs(net, 301, np.random.default_rng(2), batch_size=64),
    ):
        rows = [r for b in batches for r in as_sets(b)]
        assert len(rows) == 301
        assert all(1 <= len(r) <= s for r in rows)
        assert all(max(r) < task.features for r in rows)


def test_random_inputs_half_hold_a_full_gate():
    task = families.pairs(30, 60, np.random.default_rng(0), sparsity=3)
    gates = [set(task.operands(g).tolist()) for g in range(60)]
    rows = [r for b in random_inputs(task, 400, np.random.default_rng(5)) for r in as_sets(b)]
    assert all(len(r) == 3 for r in rows)  # filled up to s
    assert all(any(g <= r for g in gates) for r in rows[::2])  # even rows: a full gate
    # odd rows hold part of a gate; a full one only by chance
    full_odd = sum(any(g <= r for g in gates) for r in rows[1::2])
    assert full_odd < 0.5 * len(rows[1::2])


def test_sampling_is_deterministic(and2_net):
    a = verify(and2_net, "all", samples=100, rng=np.random.default_rng(9), max_exhaustive=0)
    b = verify(and2_net, "all", samples=100, rng=np.random.default_rng(9), max_exhaustive=0)
    assert a.to_dict() == b.to_dict()
    r1 = [as_sets(x) for x in random_inputs(and2_net.task, 50, np.random.default_rng(3))]
    r2 = [as_sets(x) for x in random_inputs(and2_net.task, 50, np.random.default_rng(3))]
    assert r1 == r2


def test_progress_is_reported(and2_net):
    seen: list[int] = []
    report = verify(and2_net, "all", samples=50, progress=seen.append, batch_size=500)
    assert sum(seen) == report.inputs_checked == n_sparse(20, 3) + 100


# --- report plumbing -------------------------------------------------------------------------------


def test_report_dict_and_merge():
    a = VerificationReport(
        "random",
        10,
        2,
        3,
        1,
        {"01": {"checked": 5, "false_positives": 3, "false_negatives": 0}},
        [[1]],
    )
    b = VerificationReport(
        "random",
        5,
        1,
        0,
        2,
        {"11": {"checked": 4, "false_positives": 0, "false_negatives": 2}},
        [[2]],
    )
    a.merge(b)
    d = a.to_dict()
    for key in (
        "inputs_checked",
        "inputs_with_error",
        "false_positives",
        "false_negatives",
        "error_rate_upper_95",
        "by_class",
        "passed",
    ):
        assert key in d
    assert (
        d["inputs_checked"],
        d["inputs_with_error"],
        d["false_positives"],
        d["false_negatives"],
    ) == (15, 3, 3, 3)
    assert d["by_class"] == {
        "01": {"checked": 5, "false_positives": 3, "false_negatives": 0},
        "11": {"checked": 4, "false_positives": 0, "false_negatives": 2},
    }
    assert d["failing_inputs"] == [[1], [2]]
    assert d["passed"] is False
    assert d["error_rate_upper_95"] == clopper_pearson_upper(3, 15)


def test_check_batch_empty(and2_net):
    report = check_batch(and2_net, sparse.csr_array((0, 20)))
    assert report.inputs_checked == 0 and report.passed


# --- error accounting on randomly broken networks -------------------------------------------


@given(tasks(max_features=7, max_gates=8), st.data())
def test_errors_by_class_match_brute_force_on_broken_networks(task, data):
    # Break a naive network at random (weights and biases redrawn in a few units) and compare
    # every count of the report with a brute-force comparison of its predictions to the truth.
    net = build(task, "naive")
    layers = list(net.layers)
    k = data.draw(st.integers(0, len(layers) - 1))
    lay = layers[k]
    w = lay.weight.toarray()
    b = lay.bias.copy()
    for _ in range(data.draw(st.integers(1, 4))):
        r = data.draw(st.integers(0, w.shape[0] - 1))
        c = data.draw(st.integers(0, w.shape[1] - 1))
        w[r, c] = data.draw(st.sampled_from([-1.0, 0.0, 1.0, 2.0]))
        if lay.activation != "step":
            b[r] = data.draw(st.sampled_from([0.0, -1.0, -2.0]))
    layers[k] = Layer(sparse.csr_array(w), b, lay.activation)
    broken = Network(layers, net.input_code, net.output_code, task)
    rows = all_sparse_rows(task.features, task.sparsity)
    x = rows_to_csr(rows, task.features)
    report = check_batch(broken, x)
    pred = broken.predict(x).toarray().astype(int)
    arity = [
        1 if node < task.features else len(task.operands(node - task.features))
        for node in task.outputs.tolist()
    ]
    fp = fn = 0
    bad: list[int] = []
    by: dict[str, list[int]] = {}
    for i, row in enumerate(rows):
        truth, counts = brute_outputs(task, row)
        for j, (t, c) in enumerate(zip(truth, counts, strict=True)):
            if pred[i, j] != t:
                slot = by.setdefault(label_of(c, arity[j]), [0, 0])
                slot[0 if pred[i, j] else 1] += 1
        if pred[i].tolist() != truth:
            bad.append(i)
        fp += int(((pred[i] == 1) & (np.array(truth) == 0)).sum())
        fn += int(((pred[i] == 0) & (np.array(truth) == 1)).sum())
    assert (report.false_positives, report.false_negatives) == (fp, fn)
    assert report.inputs_with_error == len(bad)
    got = {
        label: [v["false_positives"], v["false_negatives"]]
        for label, v in report.by_class.items()
        if v["false_positives"] or v["false_negatives"]
    }
    assert got == by
    assert report.failing_inputs == [list(rows[i]) for i in bad[:10]]
