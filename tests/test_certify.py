"""The s = 2 certificate matches exhaustive verification, and repair makes it clean."""

from __future__ import annotations

import numpy as np
from scipy import sparse

from superpose import build, evaluate, families, verify
from superpose.constructions.certify import PairLayout, vulnerable_pairs
from superpose.verify import exhaustive_inputs


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
    net = build(
        task, "superposed", repair=False, certify=False, n_in=70, n_out=70, ell=3, ell_out=3
    )
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
    assert net.extras["certificate"]["kind"] == "s2-repair"
    record = net.extras["repair"]
    assert record["certified_s2"]
    assert record["rounds"][-1]["vulnerable"] == 0
    report = verify(net, "exhaustive")
    assert report.inputs_checked == 1 + 300 + 300 * 299 // 2
    assert report.inputs_with_error == 0


def test_repair_only_for_two_input_and_at_s2():
    task = families.pairs(300, 900, np.random.default_rng(5), sparsity=3)
    net = build(task, "superposed", certify=False)
    assert "repair" not in net.extras
