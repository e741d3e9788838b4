"""Ground-truth mechanisms (superpose.mechanisms) against brute force on small networks.

Two independent checks: (1) zeroing every weight outside a gate's masks leaves the gate's
target units unchanged on every input inside its support; (2) per-weight gate counts (hence
the shared share) equal a dense per-gate path computation written from the definition.
"""

from __future__ import annotations

import itertools
import json

import numpy as np
import pytest
from scipy import sparse

import superpose as sp
from superpose.constructions import build as raw_build
from superpose.io import load_network, save_network
from superpose.mechanisms import code_units, of, stage_codes, supports
from superpose.network import Layer, Network
from tests.helpers import all_sparse_rows, rows_to_csr, run


def _nets() -> list[Network]:
    rng = np.random.default_rng(5)
    pairs = sp.families.pairs(30, 120, rng, sparsity=2)
    xor = sp.families.pairs(24, 60, np.random.default_rng(6), sparsity=2, op="xor")
    deep = sp.families.layered_circuit(40, 20, 3, np.random.default_rng(7), outputs="last")
    return [
        raw_build(pairs, "superposed"),
        raw_build(pairs, "naive"),
        raw_build(xor, "superposed"),
        raw_build(deep, "circuit"),
        raw_build(deep, "naive"),
    ]


NETS = _nets()


def _brute_support(task, g: int) -> set[int]:
    m = task.features
    out: set[int] = set()
    for v in task.operands(g).tolist():
        out |= {v} if v < m else _brute_support(task, v - m)
    return out


def _brute_masks(net: Network, mech) -> list[np.ndarray]:
    """Per layer, per non-zero weight: how many gates' paths use it (dense, gate by gate)."""
    dense = [lay.weight.toarray() != 0 for lay in net.layers]
    counts = [np.zeros(lay.weight.nnz, dtype=np.int64) for lay in net.layers]
    in_units = code_units(net.input_code).toarray() != 0
    for g in range(net.task.n_gates):
        level = int(mech.target_level[g])
        if level < 0:
            continue
        fwd = [in_units[sorted(_brute_support(net.task, g))].any(axis=0)]
        for w in dense[:level]:
            fwd.append((w[:, fwd[-1]]).any(axis=1))
        tg = mech.gate(g).targets
        back = [np.zeros(len(fwd[level]), dtype=bool)]
        back[0][tg] = True
        for w in reversed(dense[:level]):
            back.insert(0, w[back[0]].any(axis=0))
        on = [f & b for f, b in zip(fwd, back, strict=True)]
        for i in range(level):
            w = net.layers[i].weight
            rows = np.repeat(np.arange(w.shape[0]), np.diff(w.indptr))
            counts[i] += on[i + 1][rows] & on[i][w.indices]
    return counts


@pytest.mark.parametrize("k", range(len(NETS)))
def test_weight_users_equal_brute_force(k: int) -> None:
    net = NETS[k]
    mech = of(net)
    brute = _brute_masks(net, mech)
    for got, want in zip(mech.weight_users, brute, strict=True):
        np.testing.assert_array_equal(got, want)
    s = mech.summary()
    nz = sum(lay.weight.nnz for lay in net.layers)
    assert s["weights"] == nz
    assert s["weights_shared"] == sum(int((b >= 2).sum()) for b in brute)
    assert s["shared_weight_share"] == pytest.approx(s["weights_shared"] / nz)


def _masked(net: Network, g: int) -> Network:
    mech = of(net).gate(g)
    layers = [
        Layer(sparse.csr_array(lay.weight.multiply(mk)), lay.bias, lay.activation)
        for lay, mk in zip(net.layers, mech.masks, strict=True)
    ]
    return Network(layers, net.input_code, net.output_code, net.task)


@pytest.mark.parametrize("k", range(len(NETS)))
def test_zeroing_outside_the_mask_keeps_the_gate(k: int) -> None:
    net = NETS[k]
    mech = of(net)
    gates = np.flatnonzero(mech.target_level >= 0)
    for g in np.random.default_rng(k).choice(gates, size=min(12, len(gates)), replace=False):
        gm = mech.gate(int(g))
        sup = sorted(gm.support.tolist())
        rows = [c for r in range(len(sup) + 1) for c in itertools.combinations(sup, r)]
        x = np.zeros((len(rows), net.task.features))
        for i, r in enumerate(rows):
            x[i, list(r)] = 1
        lev = gm.target_level
        full = net.forward(net.encode(sparse.csr_array(x)), all_layers=True)[lev - 1]
        cut_net = _masked(net, int(g))
        cut = cut_net.forward(cut_net.encode(sparse.csr_array(x)), all_layers=True)[lev - 1]
        a = sparse.csr_array(full)[:, gm.targets].toarray()
        b = sparse.csr_array(cut)[:, gm.targets].toarray()
        np.testing.assert_array_equal(a, b)
        assert gm.n_weights() > 0
        # and the mask is needed: nothing outside the gate's layers above its level
        assert all(m.nnz == 0 for m in gm.masks[lev:])


def test_output_gate_prediction_survives_masking() -> None:
    net = NETS[0]
    g = 7
    cut = _masked(net, g)
    sup = of(net).gate(g).support.tolist()
    x = np.zeros((4, net.task.features))
    x[1, sup[0]] = x[2, sup[1]] = 1
    x[3, sup] = 1
    assert net.predict(x)[:, [g]].toarray().tolist() == cut.predict(x)[:, [g]].toarray().tolist()
    assert cut.predict(x)[:, [g]].toarray().ravel().tolist() == [0, 0, 0, 1]  # an AND


def test_supports_of_a_deep_task() -> None:
    task = NETS[3].task
    s = supports(task)
    for g in range(0, task.n_gates, 7):
        assert set(s[[g]].indices.tolist()) == _brute_support(task, g)


def test_gate_mechanism_parts() -> None:
    net = NETS[0]
    gm = of(net).gate(3)
    assert gm.op == "and" and gm.node == net.task.features + 3
    assert set(gm.units[0].tolist()) <= set(code_units(net.input_code)[gm.support].indices.tolist())
    for mk, sh, pr in zip(gm.masks, gm.shared, gm.private, strict=True):
        assert (mk - sh - pr).nnz == 0 or not (mk - sh - pr).toarray().any()
    assert "GateMechanism(gate=3" in repr(gm)
    with pytest.raises(sp.SuperposeError, match="gate 999 does not exist"):
        of(net).gate(999)


def test_stage_codes_saved_and_loaded(tmp_path) -> None:
    net = NETS[3]
    d = save_network(net, tmp_path / "n")
    meta = json.loads((d / "network.json").read_text())
    assert meta["stage_codes"] == len(net.layers)
    back = load_network(d)
    assert len(back.stage_codes) == len(net.stage_codes)
    for (n1, c1, i1), (n2, c2, i2) in zip(net.stage_codes, back.stage_codes, strict=True):
        np.testing.assert_array_equal(n1, n2)
        np.testing.assert_array_equal(i1, i2)
        assert (c1.membership != c2.membership).nnz == 0
    assert of(back).summary() == of(net).summary()


def test_network_without_stage_codes_still_loads(tmp_path) -> None:
    net = raw_build(NETS[3].task, "circuit")
    del net.stage_codes  # as written before stage codes were saved
    d = save_network(net, tmp_path / "old")
    assert "stage_codes" not in json.loads((d / "network.json").read_text())
    back = load_network(d)
    assert not hasattr(back, "stage_codes")
    codes = stage_codes(back)  # rebuilt from task, params, seed
    assert len(codes) == len(back.layers)
    assert of(back).summary() == of(NETS[3]).summary()
    assert stage_codes(NETS[0]) is None  # a one-level network has no stages


def test_info_shows_shared_weights(tmp_path, capsys) -> None:
    d = save_network(NETS[0], tmp_path / "n")
    code, out, _ = run(capsys, "info", d, "--json")
    assert code == 0
    mech = json.loads(out)["mechanisms"]
    assert mech["weights_shared"] == of(NETS[0]).summary()["weights_shared"]
    code, out, _ = run(capsys, "info", d)
    assert "serve two or more gates" in " ".join(out.split())


def test_additive_split_is_a_sum_of_gates_and_computes_the_same(tmp_path, capsys):
    """mechanisms.additive: every weight serves one gate (W = sum of the gates' masks, each
    weight 1), and the outputs equal the original network's and the ground truth on every
    input with <= 2 active features; networks it does not cover are refused."""
    from superpose.mechanisms import additive

    task = sp.families.pairs(40, 160, np.random.default_rng(8), sparsity=2)
    net = sp.build(task, "superposed", seed=1)
    assert of(net).summary()["weights_shared"] > 0
    add = additive(net)
    mech = of(add)
    assert mech.summary()["weights_shared"] == 0
    assert (mech.weight_users[0] == 1).all() and (add.layers[0].weight.data == 1).all()
    total = sum(
        (mech.gate(g).masks[0] for g in range(task.n_gates)),
        sparse.csr_array(add.layers[0].weight.shape),
    )
    assert (sparse.csr_array(total) != add.layers[0].weight).nnz == 0
    assert add.layers[0].n_out > net.layers[0].n_out
    assert add.extras["additive"]["width"] == add.layers[0].n_out
    x = rows_to_csr(all_sparse_rows(task.features, 2), task.features)
    want = sp.evaluate(task, x).values.toarray()
    np.testing.assert_array_equal(net.predict(x).toarray(), want)
    np.testing.assert_array_equal(add.predict(x).toarray(), want)
    back = load_network(save_network(add, tmp_path / "add"))
    np.testing.assert_array_equal(back.predict(x).toarray(), want)
    code, out, _ = run(capsys, "info", tmp_path / "add")
    assert code == 0 and "derived with superpose.mechanisms.additive" in " ".join(out.split())
    for other in (raw_build(task, "naive"), NETS[2], NETS[3]):
        with pytest.raises(sp.SuperposeError, match="additive decomposition needs"):
            additive(other)
