"""The s-aware bounds against brute force on instances small enough to enumerate."""

from __future__ import annotations

import dataclasses
import itertools
import json
import math

import numpy as np
import pytest
from scipy import sparse

import superpose as sp
from superpose.bounds import Family, bounds_report, tightness
from superpose.errors import SuperposeError
from superpose.evaluation import evaluate
from superpose.sbound import (
    binary_layer_width,
    cover_free_length_lower_bound,
    log2_output_patterns_family,
    log2_output_patterns_task,
    log2_sum_comb,
    representation_width_lower_bound,
    sperner_width,
)
from superpose.task import Task


def _is_cover_free(family: tuple[int, ...], r: int) -> bool:
    """No member (a bit mask) inside the union of r others: brute force."""
    for i, a in enumerate(family):
        others = family[:i] + family[i + 1 :]
        for size in range(0, min(r, len(others)) + 1):
            for combo in itertools.combinations(others, size):
                union = 0
                for b in combo:
                    union |= b
                if a & ~union == 0:
                    return False
    return True


def _true_cover_free_length(n: int, r: int, max_d: int = 4) -> int | None:
    """Smallest t <= max_d with an r-cover-free family of n subsets of [t], else None."""
    for t in range(0, max_d + 1):
        if any(_is_cover_free(f, r) for f in itertools.combinations(range(1 << t), n)):
            return t
    return None


@pytest.mark.parametrize("r", [1, 2, 3])
def test_cover_free_bound_never_exceeds_the_brute_force_minimum(r: int) -> None:
    exact_seen = 0
    for n in range(1, 7):
        true = _true_cover_free_length(n, r)
        bound = cover_free_length_lower_bound(n, r)
        if true is None:  # needs more than 4 elements: the bound may say anything <= that
            continue
        assert bound <= true, (n, r, bound, true)
        exact_seen += bound == true
        if r == 1:  # Sperner: exact (a single member must still be non-empty)
            assert bound == true == max(1, sperner_width(n))
    assert exact_seen >= 2


def test_sperner_and_subset_counts_known_values() -> None:
    assert [sperner_width(n) for n in (1, 2, 3, 4, 6, 7, 10, 11, 20, 35, 36, 70, 71)] == [
        0, 2, 3, 4, 4, 5, 5, 6, 6, 7, 8, 8, 9,
    ]  # fmt: skip
    for n, r in ((10, 3), (50, 50), (200, 4), (1000, 2)):
        exact = math.log2(sum(math.comb(n, i) for i in range(min(n, r) + 1)))
        assert log2_sum_comb(n, r) == pytest.approx(exact, rel=1e-12)
    # representing 10^6 features, every <= 2-sparse set: at least log2(1 + m + C(m, 2)) units
    assert representation_width_lower_bound(10**6, 2) == math.ceil(
        math.log2(1 + 10**6 + math.comb(10**6, 2))
    )
    assert binary_layer_width(10.0) == 10 and binary_layer_width(10.0, 4) == 3
    assert binary_layer_width(0.0) == 0
    with pytest.raises(SuperposeError, match="bits per unit"):
        binary_layer_width(3.0, 0)
    with pytest.raises(SuperposeError, match="sparsity"):
        representation_width_lower_bound(10, -1)


def exhaustive_inputs(m: int, s: int) -> sparse.csr_array:
    """Every input with at most s active features, one per row."""
    rows = [c for k in range(s + 1) for c in itertools.combinations(range(m), k)]
    indptr = np.cumsum([0] + [len(r) for r in rows])
    idx = np.array([i for r in rows for i in r], dtype=np.int64)
    return sparse.csr_array((np.ones(len(idx)), idx, indptr), shape=(len(rows), m))


def _exact_patterns(task: Task, s: int) -> int:
    x = exhaustive_inputs(task.features, s)
    values = evaluate(task, x).values.toarray().astype(np.uint8)
    return len({row.tobytes() for row in values})


def _tasks() -> list[tuple[str, Task]]:
    rng = np.random.default_rng(5)
    out = [
        ("and2", sp.families.pairs(9, 14, rng, sparsity=2)),
        ("and2 s4", sp.families.pairs(10, 12, rng, sparsity=4)),
        ("and2 s5", sp.families.pairs(12, 9, rng, sparsity=5)),
        ("kand3 s6", sp.families.k_and(9, 8, 3, rng, sparsity=6)),
        ("or2", sp.families.pairs(8, 10, rng, op="or", sparsity=2)),
        ("xor2", sp.families.pairs(8, 10, rng, op="xor", sparsity=3)),
        ("perm", sp.families.permutation(7, rng, sparsity=3)),
        ("circuit", Task.from_gates(5, 3, [("and", [0, 1]), ("or", [5, 2]), ("xor", [6, 3])])),
    ]
    return out


@pytest.mark.parametrize("name,task", _tasks(), ids=[n for n, _ in _tasks()])
def test_output_patterns_never_exceed_the_exact_count(name: str, task: Task) -> None:
    s = int(task.sparsity)
    exact = _exact_patterns(task, s)
    low = log2_output_patterns_task(task)
    assert 2.0**low <= exact * (1 + 1e-12), (name, 2.0**low, exact)
    fam_low = log2_output_patterns_family(sp.bounds.family_of_task(task), s)
    if fam_low is not None:
        assert 2.0**fam_low <= exact * (1 + 1e-12)
    if name in ("and2", "perm"):  # exact there: 1 + m' at s = 2; all <= s output sets
        assert 2.0**low == pytest.approx(exact)
        assert 2.0**fam_low == pytest.approx(exact)


def test_universal_and_family_count_is_exact() -> None:
    m, s = 7, 3
    task = sp.families.universal_and(m, sparsity=s)
    exact = _exact_patterns(task, s)
    fam = Family("uand", outputs=math.comb(m, 2), features=m)
    assert 2.0 ** log2_output_patterns_family(fam, s) == pytest.approx(exact)
    assert exact == 1 + math.comb(m, 2) + math.comb(m, 3)
    assert 2.0 ** log2_output_patterns_task(task) == pytest.approx(exact)
    # a task that only claims to be universal AND gets no credit for the claim
    fake = Task.from_gates(7, 3, [("and", [0, 1]), ("and", [2, 3])])
    fake = dataclasses.replace(fake, family={"name": "uand"})
    assert 2.0 ** log2_output_patterns_task(fake) <= _exact_patterns(fake, 3)


def test_a_built_network_has_at_least_as_many_layer_states_as_output_patterns() -> None:
    task = sp.families.pairs(24, 60, np.random.default_rng(2), sparsity=2)
    net = sp.build(task, "superposed", fallback=False)
    x = exhaustive_inputs(task.features, 2)
    exact = _exact_patterns(task, 2)
    layers = [net.encode(x), *net.forward(net.encode(x), all_layers=True)]
    for z in layers:
        dense = np.asarray(z.toarray() if hasattr(z, "toarray") else z) > 0
        states = len({row.tobytes() for row in np.packbits(dense, axis=1)})
        assert states >= exact
        assert dense.shape[1] >= math.ceil(math.log2(states))
    t = tightness(net)
    assert t["s_aware_binary_layer_width_lower_bound"] == math.ceil(math.log2(exact))
    assert t["s_aware_narrowest_ratio"] >= 1.0
    json.dumps(t)


def test_reports_carry_the_s_aware_fields_and_keep_the_old_ones() -> None:
    r = bounds_report(Family("and2", outputs=100_000, features=100_000))
    assert r["neurons_lower_bound"] == 1306  # unchanged counting bound
    assert r["s_aware_binary_layer_width_lower_bound"] == 17  # ceil log2(1 + 10^5)
    assert r["representation_width_lower_bound"] == 33
    assert r["s_aware_binary_layer_width_lower_bound"] < r["neurons_lower_bound"]
    r = bounds_report(Family("or2", outputs=100, features=100))
    assert r["s_aware_binary_layer_width_lower_bound"] is None
    json.dumps(r)


def test_a_correct_monotone_network_has_a_cover_free_input_code() -> None:
    """The theorem behind the monotone bound, checked on built (correct) networks."""
    from superpose.sbound import is_monotone_on_bloom_inputs, monotone_input_code_width_lower_bound

    for s in (2, 3):
        task = sp.families.pairs(20, 40, np.random.default_rng(s), sparsity=s)
        net = sp.build(task, "superposed", fallback=False)
        assert net.extras["check"]["passed"]
        assert is_monotone_on_bloom_inputs(net)
        memb = net.input_code.membership.toarray().astype(bool)
        operands = np.unique(task.gate_inputs)
        for c in operands.tolist():
            others = [f for f in range(task.features) if f != c]
            for ys in itertools.combinations(others, s - 1):
                assert not (memb[c] & ~memb[list(ys)].any(axis=0)).sum() == 0, (c, ys)
        bound = monotone_input_code_width_lower_bound(task)
        assert bound == cover_free_length_lower_bound(len(operands), s - 1)
        assert net.input_code.width >= bound
        assert tightness(net)["monotone_input_code_width_lower_bound"] == bound
    # outside the class or the task shape: no claim
    naive = sp.build(sp.families.pairs(20, 40, np.random.default_rng(0)), "naive")
    assert not is_monotone_on_bloom_inputs(naive)
    xor = sp.families.pairs(20, 40, np.random.default_rng(0), op="xor")
    assert monotone_input_code_width_lower_bound(xor) is None
