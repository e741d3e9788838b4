"""The torch module and the ONNX model compute exactly ``Network.predict``, features to outputs.

Every comparison is against ``predict`` (and, for the networks that passed their check, the
ground truth), on random s-sparse inputs and on the verifier's targeted inputs.
"""

from __future__ import annotations

import json
import subprocess
import sys
from functools import cache

import numpy as np
import pytest
from helpers import assert_one_line_error, mixed_task, run
from scipy import sparse

from superpose import SuperposeError, build, evaluate, families, save_network
from superpose.verification import random_inputs, targeted_inputs

torch = pytest.importorskip("torch")
sptorch = pytest.importorskip("superpose.torch")


def _rng(seed: int = 0) -> np.random.Generator:
    return np.random.default_rng(seed)


def _uand():
    from superpose.peers.universal_and import UniversalAnd

    task = families.universal_and(12, sparsity=2)
    return UniversalAnd("gaussian", width=300, inputs="linear").build(task, _rng(3))


NETWORKS = {
    "naive-mixed": lambda: build(mixed_task(), "naive"),
    "superposed-and2": lambda: build(families.pairs(600, 600, _rng(1), sparsity=2), "superposed"),
    "superposed3-xor": lambda: build(
        families.pairs(400, 400, _rng(2), op="xor", sparsity=2),
        "superposed3",
        fallback=False,
        check=False,
    ),
    "superposed3-andnot": lambda: build(
        families.pairs(400, 400, _rng(4), op="andnot", sparsity=2),
        "superposed3",
        fallback=False,
        check=False,
    ),
    "circuit-depth3": lambda: build(
        families.layered_circuit(60, 40, 3, _rng(5), sparsity=2), "circuit"
    ),
    "uand-linear-code": _uand,
}


@cache
def network(name: str):
    return NETWORKS[name]()


@cache
def inputs(name: str) -> sparse.csr_array:
    net = network(name)
    parts = list(random_inputs(net.task, 300, _rng(10)))
    parts += list(targeted_inputs(net, 200, _rng(11)))
    return sparse.csr_array(sparse.vstack(parts, format="csr"))


def _dense(x: sparse.csr_array, dtype=np.float32):
    return torch.from_numpy(x.toarray().astype(dtype))


def _torch_sparse(x: sparse.csr_array):
    coo = x.tocoo()
    indices = np.vstack([coo.row, coo.col]).astype(np.int64)
    return torch.sparse_coo_tensor(
        torch.from_numpy(indices),
        torch.from_numpy(coo.data.astype(np.float32)),
        x.shape,
        check_invariants=True,
    ).to_sparse_csr()


@pytest.mark.parametrize("name", list(NETWORKS))
def test_module_equals_predict(name):
    net, x = network(name), inputs(name)
    want = net.predict(x).toarray()
    if name in ("naive-mixed", "superposed-and2", "circuit-depth3"):
        # built and checked: predict is the truth, so the comparison can fail on either side
        np.testing.assert_array_equal(want, evaluate(net.task, x).values.toarray())
    assert want.any() and not want.all()
    module = net.to_torch()
    got = module(_dense(x))
    assert got.dtype == torch.float32 and tuple(got.shape) == want.shape
    np.testing.assert_array_equal(got.numpy(), want.astype(np.float32))
    # sparse in, sparse out; every layer forced sparse; float64; integer inputs
    got_sparse = module(_torch_sparse(x), sparse_output=True)
    assert got_sparse.layout == torch.sparse_coo
    np.testing.assert_array_equal(got_sparse.to_dense().numpy(), want)
    sparse_module = net.to_torch(dense_weights=False)
    assert all(not layer.dense for layer in sparse_module.layers)
    assert all(layer.weight_t.layout == torch.sparse_csr for layer in sparse_module.layers)
    np.testing.assert_array_equal(sparse_module(_dense(x)).numpy(), want)
    np.testing.assert_array_equal(
        net.to_torch(dtype="float64")(_dense(x, np.float64)).numpy(), want
    )
    np.testing.assert_array_equal(module(_dense(x, np.int64)).numpy(), want)


@pytest.mark.parametrize("name", ["circuit-depth3", "uand-linear-code"])
def test_every_layer_and_hooks(name):
    net, x = network(name), inputs(name)
    z = net.encode(x)
    want = net.forward(z, all_layers=True)
    module = net.to_torch(output="all")
    seen = {}
    handles = [
        layer.hook_post.register_forward_hook(
            lambda _m, _i, out, i=i: seen.__setitem__(i, out.clone())
        )
        for i, layer in enumerate(module.layers)
    ]
    got = module(_dense(x))
    for h in handles:
        h.remove()
    assert list(got) == ["input"] + [f"layers.{i}" for i in range(len(net.layers))] + ["outputs"]

    def arr(a):
        return a.toarray() if sparse.issparse(a) else np.asarray(a)

    # integer weights: exact; the real-valued peer computes in float64 where predict uses
    # its weights' float32, so its activations agree to float32 rounding
    tol = 0 if module.parts.dtype == "float32" else 1e-5
    np.testing.assert_allclose(got["input"].numpy(), arr(z), rtol=tol, atol=tol)
    for i, layer in enumerate(want):
        np.testing.assert_allclose(got[f"layers.{i}"].numpy(), arr(layer), rtol=tol, atol=tol)
        torch.testing.assert_close(seen[i], got[f"layers.{i}"], rtol=0, atol=0)
    np.testing.assert_array_equal(got["outputs"].numpy(), net.predict(x).toarray())
    last = module(_dense(x), output="last")
    torch.testing.assert_close(last, got[f"layers.{len(want) - 1}"], rtol=0, atol=0)
    names = dict(module.named_modules())
    assert {"encoder", "decoder", "layers.0.hook_pre", "layers.0.hook_post"} <= set(names)


def test_dtype_is_exact_by_default():
    assert network("superposed-and2").to_torch().parts.dtype == "float32"
    assert network("uand-linear-code").to_torch().parts.dtype == "float64"


@pytest.mark.parametrize("name", ["superposed-and2", "circuit-depth3", "uand-linear-code"])
def test_save_load_round_trip(tmp_path, name):
    net, x = network(name), inputs(name)
    module = net.to_torch()
    path = sptorch.save(module, tmp_path / "export")
    assert sorted(p.name for p in path.iterdir()) == ["config.json", "model.safetensors"]
    config = json.loads((path / "config.json").read_text())
    assert config["format"] == "superpose-torch" and len(config["layers"]) == len(net.layers)
    loaded = sptorch.load(path)
    torch.testing.assert_close(loaded(_dense(x)), module(_dense(x)), rtol=0, atol=0)
    np.testing.assert_array_equal(loaded(_dense(x)).numpy(), net.predict(x).toarray())


def test_load_refuses_what_is_not_an_export(tmp_path):
    with pytest.raises(SuperposeError, match="no config.json"):
        sptorch.load(tmp_path)
    path = sptorch.save(network("naive-mixed"), tmp_path / "e")
    config = json.loads((path / "config.json").read_text())
    (path / "config.json").write_text(json.dumps({**config, "format": "other"}))
    with pytest.raises(SuperposeError, match="not a superpose torch export"):
        sptorch.load(path)
    (path / "config.json").write_text(json.dumps(config))
    (path / "model.safetensors").write_bytes(b"\x00" * 16)
    with pytest.raises(SuperposeError, match="safetensors"):
        sptorch.load(path)


def test_bad_forward_input_is_one_clear_error():
    module = network("naive-mixed").to_torch()
    with pytest.raises(SuperposeError, match=r"expected \(batch, 8\)"):
        module(torch.zeros(2, 7))
    with pytest.raises(SuperposeError, match="output must be one of"):
        module(torch.zeros(2, 8), output="hidden")
    assert tuple(module(torch.zeros(0, 8)).shape) == (0, 6)


@pytest.mark.parametrize("name", list(NETWORKS))
def test_onnx_equals_predict(tmp_path, name):
    ort = pytest.importorskip("onnxruntime")
    pytest.importorskip("onnx")
    net, x = network(name), inputs(name)
    path = sptorch.export_onnx(net, tmp_path / "model.onnx")
    session = ort.InferenceSession(str(path))
    assert [i.name for i in session.get_inputs()] == ["features"]
    assert [o.name for o in session.get_outputs()] == ["outputs"]
    got = session.run(None, {"features": x.toarray().astype(np.float32)})[0]
    assert got.dtype == np.float32
    np.testing.assert_array_equal(got, net.predict(x).toarray().astype(np.float32))
    # a batch of one and an all-zero batch
    np.testing.assert_array_equal(
        session.run(None, {"features": x[:1].toarray().astype(np.float32)})[0],
        net.predict(x[:1]).toarray(),
    )
    zero = np.zeros((3, net.task.features), np.float32)
    assert not session.run(None, {"features": zero})[0].any()


def test_onnx_weights_are_dense_only_where_no_larger(tmp_path):
    """A layer's weights are one dense W^T (a MatMul) only where that is at most twice its
    CSR bytes, as in the torch module and predict; forced sparse, every initializer is
    O(non-zeros) (ELL) and the model still equals predict."""
    onnx = pytest.importorskip("onnx")
    ort = pytest.importorskip("onnxruntime")
    from superpose.torch._parts import Parts

    net, x = network("superposed-and2"), inputs("superposed-and2")
    parts = Parts.from_network(net)
    assert any(parts.dense)
    model = onnx.load(str(sptorch.export_onnx(parts, tmp_path / "m.onnx")))
    sizes = {t.name: int(np.prod(t.dims)) for t in model.graph.initializer}
    for i, lay in enumerate(net.layers):
        dense = [v for k, v in sizes.items() if k.startswith(f"layer{i}_weight_t")]
        assert dense == ([lay.n_in * lay.n_out] if parts.dense[i] else [])
        if parts.dense[i]:
            assert lay.n_in * lay.n_out * 4 <= 2 * (lay.weight.nnz * 8 + 8 * (lay.n_in + 1))
    sparse_parts = Parts.from_network(net, dense_weights=False)
    path = sptorch.export_onnx(sparse_parts, tmp_path / "s.onnx")
    model = onnx.load(str(path))
    sizes = [int(np.prod(t.dims)) for t in model.graph.initializer]
    assert max(sizes) < 2 * max(lay.weight.nnz for lay in net.layers) + 1
    got = ort.InferenceSession(str(path)).run(None, {"features": x.toarray().astype(np.float32)})
    np.testing.assert_array_equal(got[0], net.predict(x).toarray())


def test_cli_export_onnx_and_torch(tmp_path, capsys):
    ort = pytest.importorskip("onnxruntime")
    net, x = network("circuit-depth3"), inputs("circuit-depth3")
    directory = save_network(net, tmp_path / "net")
    code, out, err = run(capsys, "export", directory, "--out", tmp_path / "m.onnx")
    assert code == 0, err
    assert "m.onnx" in out
    session = ort.InferenceSession(str(tmp_path / "m.onnx"))
    got = session.run(None, {"features": x.toarray().astype(np.float32)})[0]
    np.testing.assert_array_equal(got, net.predict(x).toarray())
    code, out, err = run(
        capsys, "export", directory, "--format", "torch", "--out", tmp_path / "t", "--json"
    )
    assert code == 0, err
    assert json.loads(out)["format"] == "torch"
    loaded = sptorch.load(tmp_path / "t")
    np.testing.assert_array_equal(loaded(_dense(x)).numpy(), net.predict(x).toarray())


def test_cli_export_bad_input_leaves_files_intact(tmp_path, capsys):
    directory = save_network(network("naive-mixed"), tmp_path / "net")
    keep = tmp_path / "keep.onnx"
    keep.write_bytes(b"old")
    code, _, err = run(capsys, "export", directory, "--format", "tf", "--out", keep)
    assert_one_line_error(code, err, "--format", "'tf'")
    code, _, err = run(capsys, "export", directory, "--dtype", "float16", "--out", keep)
    assert_one_line_error(code, err, "--dtype", "float16")
    code, _, err = run(capsys, "export", tmp_path / "missing", "--out", keep)
    assert_one_line_error(code, err, "missing")
    code, _, err = run(capsys, "export", directory, "--out", directory)
    assert_one_line_error(code, err, "--out")
    assert keep.read_bytes() == b"old"
    assert sorted(p.name for p in directory.iterdir()) == ["network.json", "network.safetensors"]


def test_import_superpose_does_not_import_torch_or_onnx():
    code = (
        "import sys, superpose, superpose.torch, superpose.cli; "
        "bad = [m for m in ('torch', 'onnx', 'onnxruntime') if m in sys.modules]; "
        "assert not bad, bad"
    )
    subprocess.run([sys.executable, "-c", code], check=True)


@pytest.mark.parametrize("name", ["superposed-and2", "circuit-depth3", "naive-mixed"])
def test_outputs_in_blocks_with_and_without_hooks(name):
    """Without hooks the blocks run as sparse entries; a hook switches to the dense layers and
    sees (and may replace) every block's activations: both equal predict."""
    net, x = network(name), inputs(name)
    want = net.predict(x).toarray()
    module = sptorch.to_module(net)
    module.block_rows = 37
    np.testing.assert_array_equal(module(_dense(x)).numpy(), want)
    seen = []
    last = module.layers[-1].hook_post
    handle = last.register_forward_hook(lambda _m, _i, out: seen.append(out.shape[0]))
    np.testing.assert_array_equal(module(_torch_sparse(x), sparse_output=True).to_dense(), want)
    handle.remove()
    assert sum(seen) == x.shape[0] and max(seen) == 37
    handle = last.register_forward_hook(lambda _m, _i, out: torch.zeros_like(out))
    patched = module(_dense(x)).numpy()
    handle.remove()
    zero_out = net.output_code.decode(np.zeros((1, net.output_code.width)))
    assert not patched.any() and not zero_out.toarray().any()
    np.testing.assert_array_equal(module(_dense(x)).numpy(), want)


@pytest.mark.parametrize("size", [10, 2**16 + 5, 2**18 + 8])
def test_flat_nonzero_equals_torch_nonzero(size):
    from superpose.torch._module import _flat_nonzero

    gen = torch.Generator().manual_seed(size)
    for share in (0.0, 0.001, 0.3, 1.0):
        on = torch.rand(size, generator=gen) < share
        torch.testing.assert_close(_flat_nonzero(on), torch.nonzero(on).squeeze(1))
