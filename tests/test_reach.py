"""The certificate's fast paths against their general versions and against brute force.

``_reach._binary_sets`` (0/1 weights, bitwise counts over code rows) must give the same
reach / lead / alone sets as ``_reach._dense_sets`` (every feature-unit contribution), and
``certificate._meeting_by_pairs`` (pigeonhole over pairwise ANDs) the same (output, feature)
lists as ``certificate._meeting_by_counts`` (bitwise "at least t of L"). The certificate on
0/1-weight networks (thresholds shifted anywhere, including units that fire on any bit or
never) must equal running every <= 2-sparse input.
"""

from __future__ import annotations

import numpy as np
import pytest
from scipy import sparse
from test_certificate import _truth

from superpose import Task
from superpose._reach import _binary_sets, _dense_sets, input_membership
from superpose.certificate import _meeting_by_counts, _meeting_by_pairs, certify
from superpose.constructions import build
from superpose.network import Layer, Network


def _binary_net(seed: int) -> Network:
    """A monotone superposed build with 0/1 weights moved and thresholds shifted at random."""
    rng = np.random.default_rng(seed)
    m, n = int(rng.integers(12, 40)), int(rng.integers(20, 160))
    gates = []
    for _ in range(n):
        op = ("and", "or", "copy")[int(rng.integers(3))]
        k = 1 if op == "copy" else int(rng.integers(2, 5))
        gates.append((op, [int(v) for v in rng.choice(m, k, replace=False)]))
    task = Task.from_gates(m, 2, gates)
    net = build(task, "superposed", rng=rng, width_scale=float(rng.choice([0.2, 0.5, 1.0])))
    layer = net.layers[0]
    dense = layer.weight.toarray() != 0
    dense ^= rng.random(dense.shape) < 0.03  # add and drop a few 0/1 weights
    bias = np.minimum(layer.bias + rng.integers(-2, 3, len(layer.bias)), -1)
    bias[rng.random(len(bias)) < 0.05] = -50  # never fires
    bias[rng.random(len(bias)) < 0.05] = -1  # fires on any one bit
    weight = sparse.csr_array(dense.astype(np.float64))
    return Network([Layer(weight, bias, "step")], net.input_code, net.output_code, task)


def _sets(net: Network, method):
    w = sparse.csr_array(net.layers[0].weight, dtype=np.float32)
    bias = np.asarray(net.layers[0].bias, dtype=np.float64)
    return method(input_membership(net), w, bias, lambda: None, None)


@pytest.mark.parametrize("seed", range(8))
def test_binary_sets_equal_dense_sets(seed):
    net = _binary_net(seed)
    fast, slow = _sets(net, _binary_sets), _sets(net, _dense_sets)
    assert np.array_equal(fast.reach, slow.reach)
    assert np.array_equal(fast.lead, slow.lead)
    assert (fast.alone != slow.alone).nnz == 0
    assert slow.alone.nnz > 0 and fast.reach.any()  # the comparison is not vacuous


@pytest.mark.parametrize("seed", range(8))
def test_certificate_on_binary_networks_equals_brute_force(seed):
    net = _binary_net(100 + seed)
    cert = certify(net, 2)
    wrong, inputs = _truth(net)
    assert cert.stats["unit_sets"] == "binary"
    assert set(cert.wrong_outputs.tolist()) == wrong
    assert cert.inputs_with_error == inputs


@pytest.mark.parametrize("seed", range(6))
def test_meeting_by_pairs_equals_counts(seed):
    rng = np.random.default_rng(seed)
    m, units, n_rows, outputs = 300, 40, int(rng.integers(2, 8)), 50
    words = (m + 63) // 64
    density = float(rng.choice([0.1, 0.4, 0.8]))
    reach = np.packbits(rng.random((units, words * 64)) < density, axis=1, bitorder="little")
    reach = reach.view(np.uint64)
    lead = reach & np.packbits(
        rng.random((units, words * 64)) < 0.7, axis=1, bitorder="little"
    ).view(np.uint64)
    rows = np.stack([rng.choice(units, n_rows, replace=False) for _ in range(outputs)])
    half = rng.integers(1, n_rows + 1, outputs)
    for t in range(2, n_rows + 1):
        fast = _meeting_by_pairs(reach, lead, rows, t, half, m)
        slow = _meeting_by_counts(reach, lead, rows, t, half, m)
        for a, b in zip(fast, slow, strict=True):
            assert np.array_equal(a, b)
        assert len(slow[0]) > 0 or density < 0.5


@pytest.mark.parametrize("seed", range(6))
def test_s3_certificate_on_binary_networks_equals_brute_force(seed):
    """The s = 3 certificate on 0/1 networks against every <= 3-sparse input."""
    net = _binary_net(200 + seed)
    cert = certify(net, 3)
    wrong, inputs = _truth(net, 3)
    assert cert.complete and set(cert.wrong_outputs.tolist()) == wrong
    assert cert.inputs_with_error == inputs


def _signed_net(seed: int) -> Network:
    """A superposed build on every op (private xor / andnot detectors with signed weights),
    its integer weights and thresholds perturbed at random, negative weights anywhere."""
    rng = np.random.default_rng(seed)
    m, n = int(rng.integers(12, 40)), int(rng.integers(20, 160))
    gates = []
    for _ in range(n):
        op = ("and", "or", "copy", "xor", "andnot")[int(rng.integers(5))]
        k = {"copy": 1, "xor": 2, "andnot": 2}.get(op, int(rng.integers(2, 5)))
        gates.append((op, [int(v) for v in rng.choice(m, k, replace=False)]))
    task = Task.from_gates(m, 2, gates)
    net = build(task, "superposed", rng=rng, width_scale=float(rng.choice([0.2, 0.5, 1.0])))
    w = net.layers[0].weight.tocoo()
    data = w.data.copy()
    flip = rng.random(len(data)) < 0.05
    data[flip] = rng.integers(-3, 4, size=int(flip.sum()))
    weight = sparse.csr_array((data, w.coords), shape=w.shape)
    bias = np.minimum(net.layers[0].bias + rng.integers(-1, 2, len(net.layers[0].bias)), -1)
    return Network([Layer(weight, bias, "step")], net.input_code, net.output_code, task)


@pytest.mark.parametrize("seed", range(8))
def test_sparse_blocks_equal_dense_blocks(seed, monkeypatch):
    """Units reading few features take one sparse product instead of a dense block: every
    row (reach, lead, kill, alone) must be the same as the dense computation's."""
    import superpose._reach as module

    net = _signed_net(seed)
    monkeypatch.setattr(module, "SPARSE_SHARE", -1.0)  # every unit dense
    slow = _sets(net, _dense_sets)
    monkeypatch.setattr(module, "SPARSE_SHARE", 10.0)  # every unit sparse
    monkeypatch.setattr(module, "SPARSE_BLOCK_ENTRIES", 50)  # and many small blocks
    fast = _sets(net, _dense_sets)
    assert np.array_equal(fast.reach, slow.reach)
    assert np.array_equal(fast.lead, slow.lead)
    assert np.array_equal(fast.kill, slow.kill)
    assert (fast.alone != slow.alone).nnz == 0
    assert slow.kill.any() and slow.alone.nnz > 0  # the comparison is not vacuous


@pytest.mark.parametrize("seed", range(6))
def test_split_sets_equal_dense_sets(seed):
    """A network mixing 0/1 pools with signed detectors: the 0/1 units by the binary method,
    the rest by the general one, every row back in its place."""
    from superpose._reach import _binary_units, _split_sets

    net = _signed_net(seed)
    w = sparse.csr_array(net.layers[0].weight, dtype=np.float32)
    ones = _binary_units(w)
    assert ones.any() and (~ones).any()
    bias = np.asarray(net.layers[0].bias, dtype=np.float64)
    e = input_membership(net)
    fast = _split_sets(e, w, bias, ones, lambda: None, None)
    slow = _dense_sets(e, w, bias, lambda: None, None)
    assert np.array_equal(fast.reach, slow.reach)
    assert np.array_equal(fast.lead, slow.lead)
    assert np.array_equal(fast.kill, slow.kill)
    assert np.array_equal(fast.signed, slow.signed)
    assert (fast.alone != slow.alone).nnz == 0


@pytest.mark.parametrize(("features", "units"), [(1, 1), (7, 200), (64, 64), (65, 130), (300, 75)])
def test_bit_row_transpose_equals_the_plain_transpose(features, units):
    """_transpose (8 x 8 bit blocks) against unpacking every bit and transposing the bytes."""
    from superpose._reach import _transpose

    rng = np.random.default_rng(features * 1000 + units)
    words = (units + 63) // 64
    bits = rng.integers(0, 2, (features, words * 64), dtype=np.uint8)
    rows = np.packbits(bits, axis=1, bitorder="little").view(np.uint64)
    want = np.zeros((units, (features + 63) // 64 * 64), dtype=np.uint8)
    want[:, :features] = bits[:, :units].T
    got = np.unpackbits(_transpose(rows, units).view(np.uint8), axis=1, bitorder="little")
    assert np.array_equal(got, want)
