"""The exact s <= 2 certificate (superpose.certificate) against brute force over every input.

Networks are built by ``superposed`` on random op mixes (and/or/copy/xor/andnot, arity up to
4, outputs that are inputs), some far too narrow, and then have weights and thresholds
perturbed at random (signed weights anywhere): the set of wrong outputs and the number of
wrong inputs must equal what running every <= 2-sparse input finds.
"""

from __future__ import annotations

import numpy as np
import pytest
from scipy import sparse

from superpose import SuperposeError, Task
from superpose.certificate import certify, unsupported
from superpose.check import check_network
from superpose.constructions import build
from superpose.evaluation import evaluate
from superpose.network import Layer, Network
from superpose.verification import exhaustive_inputs

OPS = ("and", "or", "copy", "xor", "andnot")


def _truth(net: Network, sparsity: int = 2) -> tuple[set[int], int]:
    wrong: set[int] = set()
    inputs = 0
    for x in exhaustive_inputs(net.task.features, sparsity):
        diff = (net.predict(x) != evaluate(net.task, x).values).tocoo()
        wrong |= set(diff.coords[1].tolist())
        inputs += len(np.unique(diff.coords[0]))
    return wrong, inputs


def _task(rng: np.random.Generator, outputs: bool) -> Task:
    m, n = int(rng.integers(15, 45)), int(rng.integers(20, 200))
    gates = []
    for _ in range(n):
        op = OPS[int(rng.integers(len(OPS)))]
        k = {"copy": 1, "andnot": 2}.get(op, int(rng.integers(2, 5)))
        gates.append((op, [int(v) for v in rng.choice(m, k, replace=False)]))
    outs = [int(v) for v in rng.choice(m + n, n // 2, replace=False)] if outputs else None
    return Task.from_gates(m, 2, gates, outputs=outs)


def _perturbed(net: Network, rng: np.random.Generator) -> Network:
    layer = net.layers[0]
    w = layer.weight.tocoo()
    data = w.data.copy()
    flip = rng.random(len(data)) < 0.05
    data[flip] = rng.integers(-3, 4, size=int(flip.sum()))
    extra = max(1, int(w.nnz * 0.02))
    rows = np.concatenate([w.coords[0], rng.integers(0, layer.n_out, extra)])
    cols = np.concatenate([w.coords[1], rng.integers(0, layer.n_in, extra)])
    vals = np.concatenate([data, rng.integers(-2, 3, extra).astype(float)])
    bias = np.minimum(layer.bias + rng.integers(-1, 2, len(layer.bias)), -1)
    weight = sparse.csr_array((vals, (rows, cols)), shape=w.shape)
    return Network([Layer(weight, bias, "step")], net.input_code, net.output_code, net.task)


@pytest.mark.parametrize("seed", range(12))
def test_certificate_equals_brute_force(seed):
    rng = np.random.default_rng(seed)
    task = _task(rng, outputs=seed % 3 == 0)
    net = build(
        task, "superposed", rng=np.random.default_rng(seed), width_scale=[0.2, 1.0][seed % 2]
    )
    for candidate in (net, _perturbed(net, rng)):
        cert = certify(candidate, 2)
        wrong, inputs = _truth(candidate)
        assert cert.complete
        assert set(cert.wrong_outputs.tolist()) == wrong
        assert cert.inputs_with_error == inputs
        assert set(cert.false_positive_outputs) | set(cert.false_negative_outputs) == wrong
        for g, x in cert.examples:  # every example is a real wrong output
            row = np.zeros((1, task.features))
            row[0, list(x)] = 1
            assert net.task is candidate.task
            got = candidate.predict(row).toarray()[0, g]
            assert got != evaluate(task, row).values.toarray()[0, g]


@pytest.mark.parametrize("seed", range(4))
def test_singles_read_from_the_unit_sets_equal_brute_force(seed, monkeypatch):
    """Past the first batch, singles are read off the exact unit sets instead of the layer;
    a batch of 5 makes most singles take that path (perturbed networks: wrong singles)."""
    import superpose.certificate as certificate

    monkeypatch.setattr(certificate, "BATCH", 5)
    rng = np.random.default_rng(200 + seed)
    task = _task(rng, outputs=seed % 2 == 0)
    net = build(task, "superposed", rng=np.random.default_rng(seed), width_scale=0.3)
    for candidate in (net, _perturbed(net, rng), _perturbed(net, rng)):
        cert = certify(candidate, 2)
        wrong, inputs = _truth(candidate)
        assert cert.complete
        assert set(cert.wrong_outputs.tolist()) == wrong
        assert cert.inputs_with_error == inputs


@pytest.mark.parametrize("seed", range(6))
def test_kills_of_crowded_detectors_equal_brute_force(seed):
    """xor / andnot detectors on few, crowded code bits: partners that cover L negative bits
    kill a detector, partners touching fewer do not; the certificate's kill rows keep only
    the first kind and must still find every wrong input."""
    rng = np.random.default_rng(100 + seed)
    m = int(rng.integers(12, 24))
    gates = [
        (["xor", "andnot"][int(rng.integers(2))], [int(v) for v in rng.choice(m, 2, replace=False)])
        for _ in range(int(rng.integers(30, 80)))
    ]
    task = Task.from_gates(m, 2, gates)
    net = build(task, "superposed", rng=np.random.default_rng(seed), width_scale=0.1)
    cert = certify(net, 2)
    wrong, inputs = _truth(net)
    assert cert.complete and set(cert.wrong_outputs.tolist()) == wrong
    assert cert.inputs_with_error == inputs


def test_explicit_input_code_is_certified():
    task = _task(np.random.default_rng(40), outputs=False)
    net = build(task, "superposed", rng=np.random.default_rng(0), explicit_inputs=True)
    cert = certify(net, 2)
    wrong, _ = _truth(net)
    assert set(cert.wrong_outputs.tolist()) == wrong


def test_unsupported_networks_say_why():
    task = Task.from_gates(6, 2, [("and", [0, 1]), ("xor", [2, 3])])
    assert "step layer" in unsupported(build(task, "superposed3", rng=np.random.default_rng(0)), 2)
    net = build(task, "superposed", rng=np.random.default_rng(0))
    assert unsupported(net, 2) is None and "signed weights" in unsupported(net, 3)
    assert "s = 4" in unsupported(net, 4)
    with pytest.raises(SuperposeError, match="no exact certificate"):
        certify(net, 3)


def test_budget_exhaustion_claims_nothing():
    task = _task(np.random.default_rng(41), outputs=False)
    net = build(task, "superposed", rng=np.random.default_rng(0))
    cert = certify(net, 2, budget_seconds=0.0)
    assert not cert.complete and not cert.passed and cert.inputs_covered == 0


def test_check_network_uses_the_certificate():
    task = _task(np.random.default_rng(42), outputs=False)
    net = build(task, "superposed", rng=np.random.default_rng(0), width_scale=0.2)
    check = check_network(net)
    wrong, inputs = _truth(net)
    assert check.kind == "exact" and check.inputs_with_error == inputs
    assert check.outputs_with_error == len(wrong)


def _monotone_task(rng: np.random.Generator) -> Task:
    m, n = int(rng.integers(12, 30)), int(rng.integers(20, 150))
    gates = []
    for _ in range(n):
        op = ("and", "or", "copy")[int(rng.integers(3))]
        k = 1 if op == "copy" else int(rng.integers(2, 5))
        gates.append((op, [int(v) for v in rng.choice(m, k, replace=False)]))
    outs = (
        [int(v) for v in rng.choice(m + n, n // 2, replace=False)] if rng.random() < 0.5 else None
    )
    # built for s = 2 half the time: right on pairs, wrong on triples no pair explains
    return Task.from_gates(m, int(rng.choice([2, 3])), gates, outputs=outs)


def _perturbed_monotone(net: Network, rng: np.random.Generator) -> Network:
    layer = net.layers[0]
    w = layer.weight.tocoo()
    data = w.data.copy()
    flip = rng.random(len(data)) < 0.05
    data[flip] = rng.integers(0, 4, size=int(flip.sum()))
    extra = max(1, int(w.nnz * 0.02))
    rows = np.concatenate([w.coords[0], rng.integers(0, layer.n_out, extra)])
    cols = np.concatenate([w.coords[1], rng.integers(0, layer.n_in, extra)])
    vals = np.concatenate([data, rng.integers(0, 3, extra).astype(float)])
    bias = np.minimum(layer.bias + rng.integers(-1, 2, len(layer.bias)), -1)
    weight = sparse.csr_array((vals, (rows, cols)), shape=w.shape)
    return Network([Layer(weight, bias, "step")], net.input_code, net.output_code, net.task)


@pytest.mark.parametrize("seed", range(10))
def test_s3_certificate_equals_brute_force(seed):
    """Monotone networks (and/or/copy, arity <= 4) at s = 3: built, narrow, perturbed."""
    rng = np.random.default_rng(500 + seed)
    task = _monotone_task(rng)
    net = build(
        task,
        "superposed",
        rng=rng,
        width_scale=float(rng.choice([0.2, 0.5, 1.0])),
        explicit_inputs=seed % 5 == 0,
    )
    for candidate in (net, _perturbed_monotone(net, rng)):
        cert = certify(candidate, 3)
        wrong, inputs = _truth(candidate, 3)
        assert cert.complete and cert.method == "s3-candidates"
        assert set(cert.wrong_outputs.tolist()) == wrong
        assert cert.inputs_with_error == inputs
        for g, x in cert.examples:
            row = np.zeros((1, task.features))
            row[0, list(x)] = 1
            assert (
                candidate.predict(row).toarray()[0, g] != evaluate(task, row).values.toarray()[0, g]
            )


def test_s3_finds_triples_no_pair_explains():
    """A network right on every pair and wrong on some triple: only new triples show it."""
    for seed in range(40):
        rng = np.random.default_rng(900 + seed)
        task = _monotone_task(rng).with_sparsity(2)
        net = build(task, "superposed", rng=rng)
        if certify(net, 2).passed:
            wrong, inputs = _truth(net, 3)
            if wrong:
                break
    else:
        pytest.skip("no pair-correct, triple-wrong network in 40 draws")
    cert = certify(net, 3)
    assert cert.complete and set(cert.wrong_outputs.tolist()) == wrong
    assert cert.inputs_with_error == inputs


@pytest.mark.parametrize("seed", range(4))
def test_support_certificate_equals_brute_force(seed):
    """The explicit network (any depth): exact through its outputs' own leaves, also broken."""
    rng = np.random.default_rng(700 + seed)
    if seed % 2:
        from superpose import families

        task = families.layered_circuit(14, 12, 3, rng, sparsity=2)
    else:
        task = _task(rng, outputs=True)
    net = build(task, "naive")
    cert = certify(net, 2)
    assert cert.method == "support" and cert.passed
    assert _truth(net) == (set(), 0)
    # silence one unit (negated weights): the certificate must name exactly what brute force finds
    first = net.layers[0]
    weight = sparse.csr_array(first.weight, copy=True)
    row = int(rng.integers(first.n_out))
    weight.data[weight.indptr[row] : weight.indptr[row + 1]] *= -1.0
    broken = Network(
        [Layer(weight, first.bias, first.activation), *net.layers[1:]],
        net.input_code,
        net.output_code,
        task,
    )
    cert = certify(broken, 2)
    wrong, inputs = _truth(broken)
    assert wrong and set(cert.wrong_outputs.tolist()) == wrong
    assert 0 < cert.inputs_with_error <= inputs


def test_structural_support_stops_before_a_product_too_large(monkeypatch):
    """A shared network's outputs reach most features; the support test refuses the product
    up front (it would need 25 GB at m' = 10^5) instead of running out of memory, while the
    explicit network of the same task is still certified by its supports."""
    import superpose.certificate as module

    task = _task(np.random.default_rng(43), outputs=False)
    shared = build(task, "superposed", rng=np.random.default_rng(0))
    naive = build(task, "naive")
    entries = int(sum(np.diff(layer.weight.indptr).sum() for layer in naive.layers))
    monkeypatch.setattr(module, "MAX_SUPPORT_ENTRIES", 4 * entries + 4 * task.n_outputs)
    calls = []
    real = module.sparse.csr_array.__matmul__
    monkeypatch.setattr(
        module.sparse.csr_array, "__matmul__", lambda a, b: calls.append(a.shape) or real(a, b)
    )
    assert module._private_supports(shared) is None
    assert not calls  # refused before any product
    assert module._private_supports(naive) is not None
    assert certify(naive, 2).method == "support"
