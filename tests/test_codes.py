"""Codes: explicit, Bloom and linear encode -> decode, slack, and array round trips."""

from __future__ import annotations

import numpy as np
import pytest
from helpers import as_sets, rows_to_csr, sparse_rows
from hypothesis import given
from hypothesis import strategies as st
from scipy import sparse

from superpose import BloomCode, ExplicitCode, LinearCode, SuperposeError
from superpose.codes import code_from_arrays, random_sets

M = 60
BLOOM = BloomCode.random(M, 400, 6, np.random.default_rng(0))
LINEAR_G = LinearCode.random(M, 3000, np.random.default_rng(1), kind="gaussian")
LINEAR_R = LinearCode.random(M, 3000, np.random.default_rng(2), kind="rademacher")


def bloom_members(code: BloomCode) -> list[set[int]]:
    return as_sets(code.membership)


@given(sparse_rows(M, 3))
def test_explicit_round_trip(rows):
    code = ExplicitCode(M)
    x = rows_to_csr(rows, M)
    z = code.encode(x)
    assert as_sets(z) == [set(r) for r in rows]
    assert as_sets(code.decode(z)) == [set(r) for r in rows]
    assert as_sets(code.decode(z.toarray())) == [set(r) for r in rows]


def test_explicit_threshold_is_one_half():
    code = ExplicitCode(3)
    z = np.array([[0.49, 0.5, 2.0], [0.0, -1.0, 0.51]])
    assert as_sets(code.decode(z)) == [{1, 2}, {2}]
    assert as_sets(code.decode(sparse.csr_array(z))) == [{1, 2}, {2}]


def test_random_sets_shape():
    sets = random_sets(500, 50, 7, np.random.default_rng(0))
    assert sets.shape == (500, 50)
    assert (sets.sum(axis=1) == 7).all()  # distinct neurons: no duplicates collapsed
    assert set(np.unique(sets.toarray()).tolist()) == {0, 1}
    # length close to width takes the permutation path
    dense = random_sets(30, 10, 9, np.random.default_rng(0))
    assert (dense.sum(axis=1) == 9).all()
    with pytest.raises(SuperposeError, match="does not fit"):
        random_sets(3, 5, 6, np.random.default_rng(0))
    with pytest.raises(SuperposeError, match="does not fit"):
        random_sets(3, 5, 0, np.random.default_rng(0))
    again = random_sets(500, 50, 7, np.random.default_rng(0))
    assert (again != sets).nnz == 0


@given(sparse_rows(M, 4))
def test_bloom_encode_is_the_or_of_member_sets(rows):
    members = bloom_members(BLOOM)
    z = BLOOM.encode(rows_to_csr(rows, M))
    want = [set().union(*(members[f] for f in r)) for r in rows]
    assert as_sets(z) == want
    assert set(np.unique(z.toarray()).tolist()) <= {0.0, 1.0}


@given(sparse_rows(M, 4), st.integers(0, 3))
def test_bloom_decode_matches_its_definition(rows, slack):
    code = BloomCode(BLOOM.membership, slack=slack)
    members = bloom_members(code)
    z = code.encode(rows_to_csr(rows, M))
    on = as_sets(z)
    got = as_sets(code.decode(z))
    for r, row in enumerate(rows):
        want = {f for f in range(M) if len(members[f] & on[r]) >= len(members[f]) - slack}
        assert got[r] == want
        assert set(row) <= got[r]  # never a false negative


@given(sparse_rows(M, 3))
def test_bloom_round_trip_on_sparse_sets(rows):
    # 400 neurons, 6 per feature, at most 3 active: this code reads back exactly (checked
    # exhaustively below), so every sparse set round-trips
    x = rows_to_csr(rows, M)
    assert as_sets(BLOOM.decode(BLOOM.encode(x))) == [set(r) for r in rows]


def test_bloom_round_trip_exhaustive_pairs():
    from helpers import all_sparse_rows

    rows = all_sparse_rows(M, 2)
    got = as_sets(BLOOM.decode(BLOOM.encode(rows_to_csr(rows, M))))
    assert got == [set(r) for r in rows]


def test_bloom_disjoint_code_round_trips_everything():
    membership = sparse.csr_array(np.kron(np.eye(5), np.ones((1, 3))))  # feature f owns 3f..3f+2
    code = BloomCode(membership)
    rows = [[i for i in range(5) if mask >> i & 1] for mask in range(32)]
    assert as_sets(code.decode(code.encode(rows_to_csr(rows, 5)))) == [set(r) for r in rows]


def test_bloom_slack_by_hand():
    membership = sparse.csr_array(np.array([[1, 1, 1, 0, 0], [0, 0, 1, 1, 1]]))
    strict, loose = BloomCode(membership), BloomCode(membership, slack=1)
    z = np.array([[1, 1, 0, 0, 0], [0, 0, 1, 1, 1], [0, 1, 0, 1, 0], [0, 0, 1, 0, 0]])
    assert as_sets(strict.decode(z)) == [set(), {1}, set(), set()]
    assert as_sets(loose.decode(z)) == [{0}, {1}, set(), set()]
    # slack 2: one neuron out of 3 is enough
    assert as_sets(BloomCode(membership, slack=2).decode(z)) == [{0}, {0, 1}, {0, 1}, {0, 1}]


def test_bloom_decode_reads_on_units_above_one_half():
    membership = sparse.csr_array(np.array([[1, 1, 0], [0, 1, 1]]))
    code = BloomCode(membership)
    assert as_sets(code.decode(np.array([[0.6, 3.0, 0.4]]))) == [{0}]


def test_bloom_validation():
    with pytest.raises(SuperposeError, match="0/1"):
        BloomCode(sparse.csr_array(np.array([[2, 0], [0, 1]])))
    with pytest.raises(SuperposeError, match="feature 1 owns no neurons"):
        BloomCode(sparse.csr_array(np.array([[1, 0], [0, 0]])))
    with pytest.raises(SuperposeError, match="slack"):
        BloomCode(sparse.csr_array(np.array([[1, 1], [0, 1]])), slack=1)
    with pytest.raises(SuperposeError, match="slack"):
        BloomCode(sparse.csr_array(np.array([[1, 1], [1, 1]])), slack=-1)


def test_bloom_members_and_meta():
    code = BloomCode.random(10, 40, 4, np.random.default_rng(3), slack=1)
    for f, members in enumerate(bloom_members(code)):
        assert sorted(code.members(f).tolist()) == sorted(members)
        assert len(members) == 4
    meta = code.meta()
    assert meta == {"kind": "bloom", "n_features": 10, "width": 40, "slack": 1, "mean_length": 4.0}


@pytest.mark.parametrize("code", [LINEAR_G, LINEAR_R], ids=["gaussian", "rademacher"])
@given(rows=sparse_rows(M, 3))
def test_linear_round_trip(code, rows):
    x = rows_to_csr(rows, M)
    z = code.encode(x)
    assert isinstance(z, np.ndarray) and z.shape == (len(rows), 3000)
    np.testing.assert_allclose(z, x.toarray() @ code.matrix.T)
    assert as_sets(code.decode(z)) == [set(r) for r in rows]
    np.testing.assert_allclose(code.read(z), z @ code.matrix)
    np.testing.assert_allclose(code.read(sparse.csr_array(z)), z @ code.matrix)


def test_linear_columns():
    assert set(np.unique(np.abs(LINEAR_R.matrix) * np.sqrt(3000)).round(12).tolist()) == {1.0}
    norms = np.linalg.norm(LINEAR_R.matrix, axis=0)
    np.testing.assert_allclose(norms, 1.0)
    g_norms = np.linalg.norm(LINEAR_G.matrix, axis=0)
    assert 0.9 < g_norms.min() and g_norms.max() < 1.1  # E|col|^2 = 1


def test_linear_threshold_by_hand():
    code = LinearCode(np.array([[1.0, 0.0, 0.5], [0.0, 1.0, 0.5]]), threshold=0.75)
    z = np.array([[1.0, 0.0], [0.5, 0.5], [1.0, 1.0]])
    # read-out: [1, 0, .5], [.5, .5, .5], [1, 1, 1]
    assert as_sets(code.decode(z)) == [{0}, set(), {0, 1, 2}]


def test_linear_errors():
    with pytest.raises(SuperposeError, match="distribution"):
        LinearCode.random(5, 5, np.random.default_rng(0), kind="uniform")
    with pytest.raises(SuperposeError, match="finite"):
        LinearCode(np.array([[np.nan]]))
    with pytest.raises(SuperposeError, match="too large"):
        LinearCode.random(10**6, 10**3, np.random.default_rng(0))


CODES = {
    "explicit": ExplicitCode(M),
    "bloom": BloomCode.random(M, 100, 5, np.random.default_rng(4), slack=1),
    "linear": LinearCode(LINEAR_R.matrix, "rademacher", threshold=0.6),
}


@pytest.mark.parametrize("name", sorted(CODES))
def test_arrays_round_trip(name):
    code = CODES[name]
    meta, arrays = code.meta(), code.to_arrays()
    again = code_from_arrays(meta, {k: np.array(v) for k, v in arrays.items()})
    assert type(again) is type(code)
    assert again.meta() == meta
    for key, value in arrays.items():
        np.testing.assert_array_equal(again.to_arrays()[key], value)
    rows = [[], [1], [2, 40], [0, 5, 59], list(range(10))]
    x = rows_to_csr(rows, M)
    z = code.encode(x)
    z2 = again.encode(x)
    np.testing.assert_array_equal(
        z.toarray() if sparse.issparse(z) else z, z2.toarray() if sparse.issparse(z2) else z2
    )
    assert as_sets(code.decode(z)) == as_sets(again.decode(z2))


def test_from_arrays_rejects_inconsistent_data():
    code = CODES["bloom"]
    meta, arrays = code.meta(), code.to_arrays()
    with pytest.raises(SuperposeError, match="unknown code kind"):
        code_from_arrays({**meta, "kind": "hash"}, arrays)
    with pytest.raises(SuperposeError, match="unknown code kind"):
        code_from_arrays({}, arrays)
    with pytest.raises(SuperposeError, match="number of features"):
        code_from_arrays({**meta, "n_features": M + 1}, arrays)
    bad = dict(arrays, indices=arrays["indices"].copy())
    bad["indices"][3] = 100  # outside the width of 100
    with pytest.raises(SuperposeError, match="outside its width"):
        code_from_arrays(meta, bad)
    bad = dict(arrays, indptr=arrays["indptr"][::-1].copy())
    with pytest.raises(SuperposeError):
        code_from_arrays(meta, bad)
    lin = CODES["linear"]
    with pytest.raises(SuperposeError, match="shape"):
        code_from_arrays({**lin.meta(), "width": 10}, lin.to_arrays())


@given(
    st.integers(1, 40),
    st.integers(2, 30),
    st.integers(1, 5),
    st.integers(0, 3),
    st.lists(st.sets(st.integers(0, 29)), min_size=1, max_size=12),
    st.integers(0, 2**31),
)
def test_bloom_decode_of_any_on_set_matches_its_definition(n, width, length, slack, on, seed):
    # Arbitrary on-sets (not only encodings), sparse and nearly full rows, uneven lengths:
    # both decoding methods (anchored candidates, counted product) against the definition.
    length = min(length, width)
    members = BloomCode.random(n, width, length, np.random.default_rng(seed)).membership
    lengths = np.random.default_rng(seed + 1).integers(1, length + 1, n)
    dense_m = members.toarray().astype(bool)
    for f in range(n):
        cols = np.flatnonzero(dense_m[f])[: lengths[f]]
        dense_m[f] = False
        dense_m[f, cols] = True
    slack = min(slack, int(dense_m.sum(axis=1).min()) - 1)
    code = BloomCode(sparse.csr_array(dense_m.astype(np.int8)), slack=slack)
    rows = [{u for u in r if u < width} for r in on]
    z = rows_to_csr(rows, width).astype(np.float64)
    sets = bloom_members(code)
    want = [{f for f in range(n) if len(sets[f] & r) >= len(sets[f]) - slack} for r in rows]
    assert as_sets(code.decode(z)) == want
    assert as_sets(code.decode(z.toarray())) == want
    assert as_sets(code._decode_counted(sparse.csr_array(z))) == want


def test_rs_codes_overlap_at_most_one_unit_by_brute_force():
    from superpose.codes import rs_code_rows

    rows, spare = rs_code_rows(300, 120, 5, np.random.default_rng(3), spare=40)
    allrows = np.concatenate([rows, spare])
    assert allrows.shape == (340, 5)
    sets = [set(r.tolist()) for r in allrows]
    assert all(len(s) == 5 for s in sets)
    inter = [len(a & b) for i, a in enumerate(sets) for b in sets[:i]]
    assert max(inter) == 1, "some pair should meet in one unit (else the test is vacuous)"
    # Block structure: one unit in each block of q.
    q = 23  # largest prime <= 120 // 5
    assert (allrows // q == np.arange(5)).all()
    # Random codes of the same size do overlap more (the guarantee is not automatic).
    from superpose.codes import random_sets

    rnd = random_sets(340, 115, 5, np.random.default_rng(4)).indices.reshape(340, 5)
    rsets = [set(r.tolist()) for r in rnd]
    assert max(len(a & b) for i, a in enumerate(rsets) for b in rsets[:i]) > 1


def test_rs_codes_refuse_too_many_features():
    from superpose.codes import rs_code_rows
    from superpose.errors import SuperposeError

    with pytest.raises(SuperposeError, match="hold at most"):
        rs_code_rows(600, 120, 5, np.random.default_rng(0))


def test_superposed_with_rs_codes_is_exhaustively_right_and_recorded():
    from superpose import families, verify
    from superpose.constructions import build

    task = families.pairs(200, 500, np.random.default_rng(6), sparsity=2)
    net = build(task, "superposed", n_in=160, n_out=160, ell=5, ell_out=5, code="rs")
    codes = net.input_code.membership.indices.reshape(200, 5)
    sets = [set(r.tolist()) for r in codes]
    assert max(len(a & b) for i, a in enumerate(sets) for b in sets[:i]) <= 1
    assert net.params["code"] == "rs"
    assert net.extras["repair"]["certified_s2"]
    assert verify(net, "exhaustive").inputs_with_error == 0
    plain = build(task, "superposed", n_in=160, n_out=160, ell=5, ell_out=5)
    assert "code" not in plain.params and "repair_select" not in plain.params
