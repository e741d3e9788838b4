"""The s = 2 certificate matches exhaustive verification, and repair makes it clean."""

from __future__ import annotations

import numpy as np
from hypothesis import given, settings
from hypothesis import strategies as st
from scipy import sparse

from superpose import evaluate, families, verify
from superpose.constructions import build
from superpose.constructions.certify import PairLayout, contained_sets, repair, vulnerable_pairs
from superpose.verification import exhaustive_inputs


def _misfiring_gates(net) -> set[int]:
    """Gates that read true on some <= 2-sparse input where they are false (brute force)."""
    bad: set[int] = set()
    for batch in exhaustive_inputs(net.task.features, net.task.sparsity):
        pred = sparse.csr_array(net.predict(batch), dtype=np.int8)
        truth = sparse.csr_array(evaluate(net.task, batch).values, dtype=np.int8)
        diff = sparse.csr_array(pred - truth).tocoo()
        bad.update(diff.coords[1][diff.data > 0].tolist())
    return bad


def _layout(net) -> tuple[PairLayout, np.ndarray]:
    code = net.input_code
    units = net.output_code.membership
    n = units.shape[0]
    layout = PairLayout(
        codes=code.membership.indices.reshape(code.n_features, -1).astype(np.int64),
        pairs=net.task.gate_inputs.reshape(-1, 2),
        units=units.indices.reshape(n, -1).astype(np.int64),
        pool_start=np.zeros(n, dtype=np.int64),
        pool_size=np.full(n, units.shape[1]),
        n_in=code.width,
        n_out=units.shape[1],
    )
    read = net.layers[0].weight.toarray() > 0
    return layout, read


def test_certificate_equals_exhaustive_check():
    task = families.pairs(120, 600, np.random.default_rng(3), sparsity=2)
    # Narrow on purpose, without repair, so that some gates are vulnerable.
    net = build(task, "superposed", repair=False, n_in=70, n_out=70, ell=3, ell_out=3)
    layout, read = _layout(net)
    gates, _ = vulnerable_pairs(layout, read)
    certified = set(np.unique(gates).tolist())
    assert certified, "the narrow network should have vulnerable gates"
    misfiring = _misfiring_gates(net)
    assert misfiring, "the narrow network should misfire somewhere"
    # The certificate is conservative: every gate that misfires is flagged (a flagged gate
    # may still be safe when the covering feature's code overlaps an operand's).
    assert misfiring <= certified


def test_repair_certifies_every_two_sparse_input():
    task = families.pairs(300, 900, np.random.default_rng(4), sparsity=2)
    net = build(task, "superposed")
    record = net.extras["repair"]
    assert record["certified_s2"]
    assert record["rounds"][-1]["vulnerable"] == 0
    report = verify(net, "exhaustive")
    assert report.inputs_checked == 1 + 300 + 300 * 299 // 2
    assert report.inputs_with_error == 0


def test_repair_only_for_two_input_and_at_s2():
    task = families.pairs(300, 900, np.random.default_rng(5), sparsity=3)
    net = build(task, "superposed")
    assert "repair" not in net.extras


def _random_layout(rng: np.random.Generator, m: int, g: int, n: int, ell: int, ell_out: int):
    codes = np.sort(np.stack([rng.choice(n, ell, replace=False) for _ in range(m)]), axis=1)
    pairs = np.stack([rng.choice(m, 2, replace=False) for _ in range(g)])
    units = np.sort(np.stack([rng.choice(n, ell_out, replace=False) for _ in range(g)]), axis=1)
    layout = PairLayout(codes, pairs, units, np.zeros(g, np.int64), np.full(g, n), n, n)
    return layout


def _brute_vulnerable(layout: PairLayout, read: np.ndarray) -> set[tuple[int, int]]:
    """(gate, feature) with the feature's code inside every unit's read set (plain loops)."""
    out = set()
    for k in range(len(layout.pairs)):
        common = np.logical_and.reduce(read[layout.units[k]], axis=0)
        for b in range(len(layout.codes)):
            if b not in layout.pairs[k] and common[layout.codes[b]].all():
                out.add((k, b))
    return out


@settings(max_examples=25, deadline=None)
@given(
    seed=st.integers(0, 2**32 - 1),
    m=st.integers(3, 140),
    n=st.integers(12, 90),
    ell=st.integers(1, 4),
    ell_out=st.integers(1, 6),
    density=st.floats(0.05, 0.9),
)
def test_vulnerable_pairs_match_brute_force(seed, m, n, ell, ell_out, density):
    rng = np.random.default_rng(seed)
    layout = _random_layout(rng, m, 40, n, ell, ell_out)
    # Any read matrix (not only the one the codes imply), to exercise the bit sets fully.
    read = rng.random((n, n)) < density
    read |= layout.counts() > 0
    expected = _brute_vulnerable(layout, read)
    k, b = vulnerable_pairs(layout, read)
    assert set(zip(k.tolist(), b.tolist(), strict=True)) == expected
    assert len(k) == len(expected)  # no pair reported twice
    sub = np.sort(rng.choice(len(layout.pairs), 13, replace=False))
    k, b = vulnerable_pairs(layout, read, sub, batch=3)
    assert set(zip(k.tolist(), b.tolist(), strict=True)) == {
        p for p in expected if p[0] in set(sub.tolist())
    }


@settings(max_examples=25, deadline=None)
@given(seed=st.integers(0, 2**32 - 1), m=st.integers(1, 300), n=st.integers(4, 150))
def test_contained_sets_match_brute_force(seed, m, n):
    rng = np.random.default_rng(seed)
    ell = int(rng.integers(1, min(n, 5) + 1))
    codes = np.sort(np.stack([rng.choice(n, ell, replace=False) for _ in range(m)]), axis=1)
    read = rng.random((n, n)) < rng.uniform(0.1, 0.95)
    units = rng.choice(n, int(rng.integers(1, n + 1)), replace=False)
    got = contained_sets(read, codes, units, chunk=int(rng.integers(1, 40)))
    bits = np.unpackbits(got.view(np.uint8), axis=1, bitorder="little")
    expected = read[units][:, codes].all(axis=2)
    assert (bits[:, :m] == expected).all()
    assert not bits[:, m:].any()


def test_repair_leaves_no_vulnerable_gate_by_full_check():
    """The incremental rechecks of repair agree with a full check and with brute force."""
    rng = np.random.default_rng(7)
    layout = _random_layout(rng, 400, 900, 230, 4, 5)
    read = layout.counts() > 0
    assert len(_brute_vulnerable(layout, read)) > 0, "the layout should start vulnerable"
    record = repair(layout, np.random.default_rng(8), rounds=30)
    assert record["certified_s2"]
    # Later rounds recheck only some gates (the incremental path is exercised).
    assert len(record["rounds"]) > 2
    assert min(r["checked"] for r in record["rounds"]) < 900
    read = layout.counts() > 0
    assert _brute_vulnerable(layout, read) == set()
    # Repair kept every gate's units distinct and inside its pool.
    assert (np.diff(layout.units, axis=1) > 0).all()
    assert layout.units.min() >= 0 and layout.units.max() < 230


def test_hidden_repair_of_superposed3_is_not_a_network_certificate():
    """superposed3's s = 2 repair clears its hidden layer only; the output layer may still
    misfire, so the network must not claim the s = 2 certificate."""
    task = families.pairs(300, 900, np.random.default_rng(4), sparsity=2)
    net = build(task, "superposed3")
    assert "repair" not in net.extras
    assert net.extras["hidden_repair"]["certified_s2"] in (True, False)
    from superpose.search import _certificate

    assert _certificate(net) is None


def test_certificate_driven_repair_leaves_no_vulnerable_gate_by_brute_force():
    """repair(select="certificate") ends clean by the brute-force vulnerable check."""
    rng = np.random.default_rng(7)
    layout = _random_layout(rng, 400, 900, 230, 4, 5)
    read = layout.counts() > 0
    assert len(_brute_vulnerable(layout, read)) > 0, "the layout should start vulnerable"
    record = repair(layout, np.random.default_rng(18), rounds=40, select="certificate")
    assert record["certified_s2"]
    read = layout.counts() > 0
    assert _brute_vulnerable(layout, read) == set()
    assert (np.diff(layout.units, axis=1) > 0).all()


def test_candidate_vulnerability_counts_match_brute_force():
    """_vulnerable_counts counts the features (not the gate's own) inside every candidate
    code's common read set, as a direct set computation does."""
    from superpose.constructions.certify import _vulnerable_counts

    rng = np.random.default_rng(21)
    layout = _random_layout(rng, 200, 500, 120, 3, 4)
    read = layout.counts() > 0
    cont = contained_sets(read, layout.codes)
    gates = np.arange(0, 500, 37)
    cand = np.array([[np.sort(rng.choice(120, 4, replace=False)) for _ in range(5)] for _ in gates])
    got = _vulnerable_counts(cont, cand, layout.pairs[gates])
    for gi, k in enumerate(gates):
        for c in range(5):
            common = np.logical_and.reduce(read[cand[gi, c]], axis=0)
            inside = [
                b for b in range(200) if b not in layout.pairs[k] and common[layout.codes[b]].all()
            ]
            assert got[gi, c] == len(inside)
    assert got.max() > 0, "some candidate should hold a feature (the test could not fail)"


def test_repair_select_certificate_network_is_exhaustively_right():
    task = families.pairs(250, 700, np.random.default_rng(5), sparsity=2)
    net = build(
        task,
        "superposed",
        n_in=170,
        n_out=170,
        ell=4,
        ell_out=5,
        repair_select="certificate",
        repair_rounds=40,
    )
    assert net.extras["repair"]["rounds"][0]["vulnerable"] > 0, "too wide to need repair"
    assert net.extras["repair"]["certified_s2"]
    assert net.params["repair_select"] == "certificate"
    assert verify(net, "exhaustive").inputs_with_error == 0


@settings(max_examples=40, deadline=None)
@given(
    seed=st.integers(0, 2**32 - 1),
    m=st.integers(3, 160),
    n=st.integers(12, 90),
    ell=st.integers(1, 4),
    ell_out=st.integers(1, 5),
    density=st.floats(0.1, 0.9),
    flips=st.floats(0.0, 0.3),
)
def test_incremental_recheck_equals_the_full_check(seed, m, n, ell, ell_out, density, flips):
    """_recheck finds exactly the gates a full vulnerable_pairs check finds (ground truth),
    after any change of the read sets (bits gained and lost), when every gate not redrawn was
    clean before; and counts the gates to re-check (redrawn or I_k grown) exactly."""
    from superpose.constructions.certify import _recheck, feature_index

    rng = np.random.default_rng(seed)
    g = 50
    layout = _random_layout(rng, m, g, n, ell, ell_out)
    before = (rng.random((n, n)) < density) | (layout.counts() > 0)
    k0, _ = vulnerable_pairs(layout, before)
    # The vulnerable gates must be redrawn (the others are clean at `before`); some more too.
    redrawn = np.union1d(k0, rng.choice(g, int(rng.integers(0, 6)), replace=False))
    for k in redrawn:
        layout.units[k] = np.sort(rng.choice(n, ell_out, replace=False))
    after = before ^ (rng.random((n, n)) < flips)
    truth, _ = vulnerable_pairs(layout, after)
    index = feature_index(layout.codes, n)
    first = feature_index(layout.codes, n, first=True)
    small = int(rng.integers(1, 50))  # small chunks and groups exercise the splitting
    checked, bad = _recheck(
        layout, before, after, redrawn, index, first, chunk_words=small, budget=small
    )
    assert bad.tolist() == np.unique(truth).tolist()
    grew = [
        k
        for k in range(g)
        if (
            np.logical_and.reduce(after[layout.units[k]], axis=0)
            & ~np.logical_and.reduce(before[layout.units[k]], axis=0)
        ).any()
    ]
    assert checked == len(set(grew) | set(redrawn.tolist()))


def test_repair_with_incremental_rechecks_equals_repair_with_full_checks(monkeypatch):
    """The repair redraws the same gates, draws the same codes and ends in the same layout
    whether later rounds re-check incrementally or check every gate in full."""
    from superpose.constructions import certify

    def full(layout, before, after, redrawn, *args, **kwargs):
        k, _ = vulnerable_pairs(layout, after)
        return len(layout.pairs), np.unique(k)

    rng = np.random.default_rng(11)
    layout = _random_layout(rng, 500, 1200, 260, 4, 5)
    ref = _random_layout(np.random.default_rng(11), 500, 1200, 260, 4, 5)
    got = repair(layout, np.random.default_rng(12), rounds=30)
    monkeypatch.setattr(certify, "_recheck", full)
    expected = repair(ref, np.random.default_rng(12), rounds=30)
    assert len(got["rounds"]) > 2, "the repair should need several rounds"
    assert [r["vulnerable"] for r in got["rounds"]] == [r["vulnerable"] for r in expected["rounds"]]
    assert got["certified_s2"] == expected["certified_s2"]
    assert np.array_equal(layout.units, ref.units)
