"""Networks: forward passes, compile_to_relu, exact counts, the zero-input invariant, torch export."""

from __future__ import annotations

import math

import numpy as np
import pytest
from helpers import all_sparse_rows, rows_to_csr
from hypothesis import given
from hypothesis import strategies as st
from hypothesis.extra.numpy import arrays
from scipy import sparse

from superpose import BloomCode, ExplicitCode, Layer, Network, SuperposeError, Task, build


def dummy_task(features: int, outputs: int, sparsity: int = 1) -> Task:
    """A task with the right sizes for a hand-made network (its gates do not matter here)."""
    return Task.from_gates(features, sparsity, [("copy", [0])] * outputs)


def make_net(layers, features, sparsity=1):
    out = layers[-1].n_out
    return Network(
        layers, ExplicitCode(features), ExplicitCode(out), dummy_task(features, out, sparsity)
    )


def dense(a):
    return a.toarray() if sparse.issparse(a) else np.asarray(a)


# --- a hand-computed example ------------------------------------------------------------

W0 = np.array([[1, 1, 0], [0, 1, 1], [1, 0, 1]], dtype=np.float64)
B0 = np.array([-2.0, -2.0, -2.0])
W1 = np.array([[1, 1, 0], [0, 0, 2]], dtype=np.float64)
B1 = np.array([0.0, -1.0])


def hand_net() -> Network:
    return make_net(
        [Layer(sparse.csr_array(W0), B0, "step"), Layer(sparse.csr_array(W1), B1, "relu")], 3, 3
    )


def hand_forward(x: np.ndarray) -> np.ndarray:
    h = (x @ W0.T + B0 >= 0).astype(float)
    return np.maximum(h @ W1.T + B1, 0)


def test_hand_example_forward():
    net = hand_net()
    rows = [[i for i in range(3) if mask >> i & 1] for mask in range(8)]
    x = rows_to_csr(rows, 3)
    want = hand_forward(x.toarray().astype(float))
    np.testing.assert_array_equal(dense(net.forward(net.encode(x))), want)
    np.testing.assert_array_equal(net.forward(x.toarray().astype(float)), want)
    # {0, 1} -> step units [1, 0, 0] -> relu [1, 0]; {0, 1, 2} -> [1, 1, 1] -> [2, 1]
    assert want[3].tolist() == [1.0, 0.0] and want[7].tolist() == [2.0, 1.0]
    layers = net.forward(net.encode(x), all_layers=True)
    assert len(layers) == 2
    np.testing.assert_array_equal(dense(layers[0]), (x.toarray() @ W0.T + B0 >= 0).astype(float))


def test_counts_is_a_frozen_record_whose_json_form_is_the_old_dict():
    import dataclasses
    import json

    c = hand_net().counts()
    with pytest.raises(dataclasses.FrozenInstanceError):
        c.neurons = 0
    d = c.to_dict()
    assert list(d) == [f.name for f in dataclasses.fields(c)]
    assert d["layer_widths"] == [3, 3, 2] and c.layer_widths == (3, 3, 2)
    assert d["activations"] == ["step", "relu"] and c["activations"] == ["step", "relu"]
    assert json.loads(json.dumps(d)) == d
    assert all(c[k] == v for k, v in d.items())
    with pytest.raises(KeyError):
        c["no such count"]


def test_hand_example_counts():
    c = hand_net().counts()
    assert c["layer_widths"] == [3, 3, 2]
    assert (c["input_neurons"], c["hidden_neurons"], c["output_neurons"]) == (3, 3, 2)
    assert c["neurons"] == 8
    assert c["step_units"] == 3
    assert c["relu_neurons"] == 11  # each step unit is two ReLUs
    assert c["weight_layers"] == 2
    assert c["activations"] == ["step", "relu"]
    assert c["nonzero_parameters"] == 6 + 3 + 3 + 1  # weights + non-zero biases
    assert c["dense_parameters"] == (3 * 3 + 3) + (3 * 2 + 2)
    # distinct non-zero values {-2, -1, 1, 2}: 2 bits each
    assert c["bits_per_parameter"] == 2
    positions = math.log2(math.comb(9, 6)) + math.log2(math.comb(6, 3))
    assert c["description_bits"] == pytest.approx(positions + 2 * 13, rel=1e-12)
    assert c["features_in"] == 3 and c["features_out"] == 2


def test_hand_example_compiles_to_relu():
    net = hand_net()
    relu = net.compile_to_relu()
    assert [lay.activation for lay in relu.layers] == ["relu", "relu"]
    c = relu.counts()
    assert c["layer_widths"] == [3, 6, 2]
    assert c["step_units"] == 0
    assert c["neurons"] == net.counts()["relu_neurons"] == 11
    np.testing.assert_array_equal(relu.layers[0].bias, [-1, -1, -1, -2, -2, -2])
    np.testing.assert_array_equal(relu.layers[1].weight.toarray(), np.hstack([W1, -W1]))
    x = rows_to_csr([[i for i in range(3) if mask >> i & 1] for mask in range(8)], 3)
    np.testing.assert_array_equal(
        dense(relu.forward(relu.encode(x))), dense(net.forward(net.encode(x)))
    )
    assert relu.params["compiled_to_relu"] is True


def test_step_at_the_end_gets_a_linear_read_out():
    net = make_net([Layer(sparse.csr_array(W0), B0, "step")], 3, 3)
    relu = net.compile_to_relu()
    assert [lay.activation for lay in relu.layers] == ["relu", "linear"]
    assert relu.counts()["layer_widths"] == [3, 6]  # the read-out adds no neurons
    x = rows_to_csr([[i for i in range(3) if mask >> i & 1] for mask in range(8)], 3)
    np.testing.assert_array_equal(
        dense(relu.forward(relu.encode(x))), dense(net.forward(net.encode(x)))
    )


def test_compile_refuses_non_integer_step_layers():
    net = make_net([Layer(sparse.csr_array(np.array([[0.5, 1.0]])), np.array([-1.0]), "step")], 2)
    with pytest.raises(SuperposeError, match="integer"):
        net.compile_to_relu()


# --- random step networks (hypothesis) ---------------------------------------------------


@st.composite
def integer_networks(draw, allow_linear: bool = True):
    m = draw(st.integers(1, 6))
    s = draw(st.integers(1, min(m, 3)))
    depth = draw(st.integers(1, 3))
    layers = []
    width = m
    for _ in range(depth):
        out = draw(st.integers(1, 5))
        act = draw(st.sampled_from(["step", "relu"]))
        w = draw(arrays(np.int64, (out, width), elements=st.integers(-2, 2)))
        b = draw(arrays(np.int64, out, elements=st.integers(-3, -1 if act == "step" else 0)))
        layers.append(Layer(sparse.csr_array(w.astype(np.float64)), b.astype(np.float64), act))
        width = out
    if allow_linear and draw(st.booleans()):
        out = draw(st.integers(1, 4))
        w = draw(arrays(np.int64, (out, width), elements=st.integers(-2, 2)))
        layers.append(Layer(sparse.csr_array(w.astype(np.float64)), np.zeros(out), "linear"))
    return make_net(layers, m, s)


def reference_forward(net: Network, x: np.ndarray) -> np.ndarray:
    z = x.astype(np.float64)
    for lay in net.layers:
        p = z @ lay.weight.toarray().T + lay.bias
        z = {"relu": np.maximum(p, 0), "step": (p >= 0).astype(float), "linear": p}[lay.activation]
    return z


@given(integer_networks())
def test_compile_to_relu_is_exact_on_sparse_inputs(net):
    rows = all_sparse_rows(net.task.features, net.task.sparsity)
    x = rows_to_csr(rows, net.task.features)
    relu = net.compile_to_relu()
    assert all(lay.activation in ("relu", "linear") for lay in relu.layers)
    want = reference_forward(net, x.toarray())
    np.testing.assert_array_equal(dense(net.forward(net.encode(x))), want)
    np.testing.assert_array_equal(dense(relu.forward(relu.encode(x))), want)
    assert relu.counts()["neurons"] == net.counts()["relu_neurons"]
    assert relu.counts()["step_units"] == 0


@given(integer_networks(), st.data())
def test_forward_sparse_equals_dense(net, data):
    m = net.task.features
    rows = data.draw(st.lists(st.sets(st.integers(0, m - 1)), min_size=1, max_size=10))
    x = rows_to_csr(rows, m)
    sparse_out = dense(net.forward(net.encode(x)))
    dense_out = net.forward(x.toarray().astype(np.float64))
    np.testing.assert_array_equal(sparse_out, dense_out)
    np.testing.assert_array_equal(dense_out, reference_forward(net, x.toarray()))


@given(
    arrays(np.float64, (4, 5), elements=st.floats(-2, 2, allow_nan=False)),
    arrays(np.float64, 4, elements=st.floats(-2, 0, allow_nan=False)),
    st.lists(st.sets(st.integers(0, 4)), min_size=1, max_size=8),
)
def test_float_relu_layer_sparse_equals_dense(w, b, rows):
    lay = Layer(sparse.csr_array(w), b, "relu")
    x = rows_to_csr(rows, 5).astype(np.float64)
    np.testing.assert_allclose(
        dense(lay.apply(x)), np.maximum(x.toarray() @ w.T + b, 0), atol=1e-12
    )
    np.testing.assert_allclose(
        lay.apply(x.toarray()), np.maximum(x.toarray() @ w.T + b, 0), atol=1e-12
    )


def test_sparse_forward_drops_zeros():
    lay = Layer(
        sparse.csr_array(np.array([[1.0, -1.0], [1.0, 0.0]])), np.array([0.0, -1.0]), "relu"
    )
    out = lay.apply(sparse.csr_array(np.array([[1.0, 1.0]])))
    assert out.nnz == 0  # both pre-activations are 0: nothing stored


# --- the zero-input invariant and shape checks -------------------------------------------


@pytest.mark.parametrize(
    ("activation", "bias"),
    [("relu", 0.5), ("relu", 1.0), ("step", 0.0), ("step", 2.0), ("linear", 1.0), ("linear", -1.0)],
)
def test_unit_firing_on_zero_input_is_refused(activation, bias):
    with pytest.raises(SuperposeError, match="unit 1 .*all-zero input"):
        Layer(
            sparse.csr_array(np.ones((2, 2))),
            np.array([-1.0 if activation == "step" else 0.0, bias]),
            activation,
        )


@pytest.mark.parametrize(
    ("activation", "bias"), [("relu", 0.0), ("relu", -3.0), ("step", -0.5), ("linear", 0.0)]
)
def test_unit_silent_on_zero_input_is_accepted(activation, bias):
    lay = Layer(sparse.csr_array(np.ones((1, 2))), np.array([bias]), activation)
    assert dense(lay.apply(sparse.csr_array((1, 2)))).tolist() == [[0.0]]


def test_layer_validation():
    with pytest.raises(SuperposeError, match="unknown activation"):
        Layer(sparse.csr_array(np.ones((1, 2))), np.zeros(1), "tanh")
    with pytest.raises(SuperposeError, match="does not match"):
        Layer(sparse.csr_array(np.ones((2, 2))), np.zeros(3), "relu")
    with pytest.raises(SuperposeError, match="finite"):
        Layer(sparse.csr_array(np.array([[np.inf, 1.0]])), np.zeros(1), "relu")
    with pytest.raises(SuperposeError, match="finite"):
        Layer(sparse.csr_array(np.ones((1, 2))), np.array([-np.nan]), "relu")


def test_network_shape_checks():
    ok = Layer(sparse.csr_array(np.ones((2, 3))), np.zeros(2), "relu")
    task = dummy_task(3, 2)
    with pytest.raises(SuperposeError, match="at least one layer"):
        Network([], ExplicitCode(3), ExplicitCode(2), task)
    with pytest.raises(SuperposeError, match="input code covers 4"):
        Network([ok], ExplicitCode(4), ExplicitCode(2), task)
    with pytest.raises(SuperposeError, match="output code covers 3"):
        Network([ok], ExplicitCode(3), ExplicitCode(3), task)
    wrong_in = Layer(sparse.csr_array(np.ones((2, 4))), np.zeros(2), "relu")
    with pytest.raises(SuperposeError, match="layer 0 reads 4"):
        Network([wrong_in], ExplicitCode(3), ExplicitCode(2), task)
    with pytest.raises(SuperposeError, match="last layer has 2 units"):
        Network([ok], ExplicitCode(3), BloomCode(sparse.csr_array(np.ones((2, 3)))), task)
    linear = Layer(sparse.csr_array(np.ones((2, 2))), np.zeros(2), "linear")
    with pytest.raises(SuperposeError, match="only the last layer may be linear"):
        Network(
            [Layer(sparse.csr_array(np.ones((2, 3))), np.zeros(2), "linear"), linear],
            ExplicitCode(3),
            ExplicitCode(2),
            task,
        )


# --- the naive construction, counted by hand ---------------------------------------------


def test_naive_counts_and2(small_and2):
    net = build(small_and2, "naive")
    c = net.counts()
    assert c["layer_widths"] == [40, 200]
    assert c["neurons"] == c["relu_neurons"] == 240
    assert c["nonzero_parameters"] == 200 * 3  # two weights and a bias -1 per gate
    assert c["dense_parameters"] == 40 * 200 + 200
    assert c["bits_per_parameter"] == 1  # values {1, -1}: one bit
    positions = (math.lgamma(8001) - math.lgamma(401) - math.lgamma(7601)) / math.log(2)
    assert c["description_bits"] == pytest.approx(positions + 600, rel=1e-9)
    w = net.layers[0].weight.toarray()
    for g in range(200):
        a, b = small_and2.operands(g)
        assert w[g].tolist() == [1.0 if i in (a, b) else 0.0 for i in range(40)]
    assert net.layers[0].bias.tolist() == [-1.0] * 200


@pytest.mark.parametrize(
    ("op", "widths", "nonzero", "dense_params"),
    [
        ("and", [3, 1], 3, 3 + 1),  # ReLU(a + b - 1)
        ("or", [3, 1], 2, 3 + 1),  # ReLU(a + b), read at 1/2
        ("andnot", [3, 1], 2, 3 + 1),  # ReLU(a - b)
        (
            "xor",
            [3, 2],
            4 + 1 + 2,
            (3 * 2 + 2) + (2 + 1),
        ),  # ReLU(c) - 2 ReLU(c - 1), linear read-out
    ],
)
def test_naive_counts_single_gate(op, widths, nonzero, dense_params):
    net = build(Task.from_gates(3, 2, [(op, [0, 2])]), "naive")
    c = net.counts()
    assert c["layer_widths"] == widths
    assert c["nonzero_parameters"] == nonzero
    assert c["dense_parameters"] == dense_params


def test_naive_skips_gates_no_output_needs():
    task = Task.from_gates(4, 2, [("and", [0, 1]), ("and", [2, 3]), ("or", [4, 0])], outputs=[6])
    c = build(task, "naive").counts()
    # gate 5 is never read; level 1: gate 4 + a carried copy of feature 0; level 2: one OR unit
    assert c["layer_widths"] == [4, 2, 1]


# --- torch export --------------------------------------------------------------------------


@given(integer_networks())
def test_to_torch_equal_outputs(net):
    torch = pytest.importorskip("torch")
    module = net.to_torch()
    x = rows_to_csr(all_sparse_rows(net.task.features, net.task.sparsity), net.task.features)
    got = module(torch.from_numpy(x.toarray().astype(np.float32)), output="last").numpy()
    np.testing.assert_allclose(got, reference_forward(net, x.toarray()), atol=1e-9)
    np.testing.assert_array_equal(
        module(torch.from_numpy(x.toarray().astype(np.float32))).numpy(),
        dense(net.predict(x)),
    )


def test_to_torch_naive_and_mixed(mixed_task):
    torch = pytest.importorskip("torch")
    net = build(mixed_task, "naive")
    x = rows_to_csr(all_sparse_rows(mixed_task.features, mixed_task.sparsity), mixed_task.features)
    got = net.to_torch()(torch.from_numpy(x.toarray().astype(np.float32))).numpy()
    np.testing.assert_array_equal(got, dense(net.predict(x)))


def test_to_torch_without_torch_says_how_to_install(monkeypatch):
    import builtins

    real_import = builtins.__import__

    def fake_import(name, *args, **kwargs):
        if name == "torch" or name.startswith("torch."):
            raise ImportError("no torch")
        return real_import(name, *args, **kwargs)

    monkeypatch.setattr(builtins, "__import__", fake_import)
    with pytest.raises(SuperposeError, match=r"superpose\[torch\]"):
        hand_net().to_torch()


def test_predict_uses_the_codes(small_and2):
    net = build(small_and2, "naive")
    a, b = (int(v) for v in small_and2.operands(5))
    got = net.predict(rows_to_csr([[a, b]], 40)).toarray()
    assert got[0, 5]
    assert net.predict(np.zeros((1, 40))).nnz == 0


@pytest.mark.parametrize("bias", [-1.5, -300.0])
def test_bias_is_never_silently_changed_by_the_weight_dtype(bias):
    # compact integer weights must not round or wrap a bias: refuse it or keep it exactly
    w = sparse.csr_array(np.array([[1, 1]], dtype=np.int8))
    try:
        lay = Layer(w, np.array([bias]), "step")
    except SuperposeError:
        return
    assert float(lay.bias[0]) == bias
    x = np.array([[1.0, 0.0], [1.0, 1.0]])
    want = (x @ np.array([1.0, 1.0]) + bias >= 0).astype(float).reshape(-1, 1)
    np.testing.assert_array_equal(lay.apply(x), want)
    np.testing.assert_array_equal(dense(lay.apply(sparse.csr_array(x))), want)


@given(integer_networks(), st.data())
def test_dense_and_sparse_forward_paths_agree(net, data):
    # The cached dense W^T path (integer weights) and the sparse product give the same output.
    m = net.task.features
    rows = data.draw(st.lists(st.sets(st.integers(0, m - 1)), min_size=1, max_size=10))
    x = rows_to_csr(rows, m)
    fast = dense(net.forward(net.encode(x)))
    plain = [Layer(lay.weight, lay.bias, lay.activation) for lay in net.layers]
    for lay in plain:
        lay._dense_bound = -1.0  # refuse the dense path
    z = net.encode(x)
    for lay in plain:
        z = lay.apply(z)
    np.testing.assert_array_equal(fast, dense(z))
    np.testing.assert_array_equal(fast, reference_forward(net, x.toarray()))


def test_half_full_integer_layer_uses_the_dense_path():
    rng = np.random.default_rng(0)
    w = (rng.random((40, 30)) < 0.5).astype(np.float32)
    lay = Layer(sparse.csr_array(w), np.full(40, -2.0, dtype=np.float32), "step")
    x = sparse.csr_array((rng.random((25, 30)) < 0.1).astype(np.float32))
    out = lay.apply(x)
    assert lay._dense_t is not None and lay._weight_t is None
    np.testing.assert_array_equal(dense(out), (x.toarray() @ w.T - 2 >= 0).astype(np.float32))
    assert out.nnz == int(np.count_nonzero(dense(out)))  # no stored zeros
    # non-integer activations fall back to the sparse product
    half = sparse.csr_array(x * 0.5)
    np.testing.assert_array_equal(dense(lay.apply(half)), (half.toarray() @ w.T - 2 >= 0))
