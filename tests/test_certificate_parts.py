"""The small shared pieces of superpose.certificate against brute force (itertools, sets)."""

from __future__ import annotations

import itertools

import numpy as np
import pytest

import superpose.certificate as certificate
from superpose.certificate import (
    _blocks,
    _Candidates,
    _grown,
    _key,
    _operand_subsets,
    _OutOfBudget,
    _ragged,
    _unkey,
)


def test_key_and_unkey_are_inverse():
    rng = np.random.default_rng(0)
    m = 37
    rows = np.sort(rng.integers(0, m, size=(200, 3)), axis=1)
    keys = _key(rows, m)
    assert np.array_equal(_unkey(keys, m, 3), rows)
    order = np.lexsort(rows.T[::-1])  # keys order inputs as their sorted rows do
    assert np.array_equal(np.argsort(keys, kind="stable"), order)


@pytest.mark.parametrize("width", [1, 2])
def test_grown_is_every_input_with_one_more_feature(width):
    rng = np.random.default_rng(width)
    m = 9
    rows = np.array(sorted({tuple(sorted(rng.choice(m, width, replace=False))) for _ in range(6)}))
    truth = sorted({tuple(sorted({*r, f})) for r in rows.tolist() for f in range(m) if f not in r})
    assert _unkey(_grown(rows, m), m, width + 1).tolist() == [list(t) for t in truth]


def test_operand_subsets_are_every_k_subset():
    operands = [np.array([4, 1, 7]), np.array([2]), np.array([0, 3, 5, 6]), np.array([8, 9])]
    for k in (2, 3):
        rows, owners = _operand_subsets(operands, k)
        got = sorted((int(g), tuple(sorted(r))) for g, r in zip(owners, rows.tolist(), strict=True))
        truth = sorted(
            (g, tuple(sorted(c)))
            for g, ops in enumerate(operands)
            for c in itertools.combinations(ops.tolist(), k)
        )
        assert got == truth


def test_candidates_deduplicate_drop_repeats_and_keep_the_budget(monkeypatch):
    found = _Candidates(10, "candidate pairs")
    assert found.add(np.array([[3, 1], [1, 3], [2, 2]]), np.array([0, 0, 5])) == 2
    assert found.add(np.array([[4, 9]]), np.array([1]), counted=False) == 1
    keys, owners = found.result()
    assert list(zip(keys.tolist(), owners.tolist(), strict=True)) == [(13, 0), (49, 1)]
    assert found.total == 2
    monkeypatch.setattr(certificate, "MAX_CANDIDATES", 3)
    with pytest.raises(_OutOfBudget, match="candidate pairs"):
        found.add(np.array([[0, 1], [0, 2]]), np.array([2, 2]))


def test_blocks_cover_each_position_once_in_equal_groups():
    rng = np.random.default_rng(3)
    lengths, thresholds = rng.integers(1, 4, 50), rng.integers(1, 3, 50)
    seen = []
    for length, thr, part in _blocks(lengths, thresholds, lambda n, t: n + t):
        assert len(part) <= length + thr
        assert (lengths[part] == length).all() and (thresholds[part] == thr).all()
        seen += part.tolist()
    assert sorted(seen) == list(range(50))


def test_ragged_gathers_each_rows_values():
    indptr, values = np.array([0, 2, 2, 5]), np.array([10, 11, 20, 21, 22])
    i, v = _ragged(indptr, values, np.array([2, 0, 1]))
    assert list(zip(i.tolist(), v.tolist(), strict=True)) == [
        (0, 20),
        (0, 21),
        (0, 22),
        (1, 10),
        (1, 11),
    ]
