"""A ``stream`` network exports as the residual model it is (blocks with a skip connection)
and computes exactly ``predict``: torch module, save / load, ONNX, ``superpose export``."""

from __future__ import annotations

from functools import cache

import numpy as np
import pytest
from helpers import all_sparse_rows, rows_to_csr, run
from scipy import sparse

from superpose import SuperposeError, evaluate, families, save_network
from superpose.constructions import build
from superpose.seeds import Seeds
from superpose.verification import random_inputs, targeted_inputs

torch = pytest.importorskip("torch")
sptorch = pytest.importorskip("superpose.torch")


@cache
def _net(depth: int = 3):
    task = families.layered_circuit(
        40, 20, depth, Seeds(depth).rng("task"), ops=("and", "or", "xor", "andnot"), sparsity=2
    )
    return build(task, "stream", seed=1)


@cache
def _inputs(depth: int = 3) -> sparse.csr_array:
    net = _net(depth)
    rng = Seeds(0).rng("inputs")
    parts = list(random_inputs(net.task, 400, rng)) + list(targeted_inputs(net, 400, rng))
    return sparse.csr_array(sparse.vstack(parts, format="csr"))


def _dense(x: sparse.csr_array) -> torch.Tensor:
    return torch.from_numpy(x.toarray().astype(np.float32))


@pytest.mark.parametrize("depth", [2, 3])
def test_residual_module_equals_predict_and_truth(depth):
    net, x = _net(depth), _inputs(depth)
    want = net.predict(x).toarray()
    np.testing.assert_array_equal(want, evaluate(net.task, x).values.toarray())
    assert want.any() and not want.all()
    module = net.to_torch()
    assert type(module).__name__ == "ResidualModule"
    assert len(module.blocks) == depth and not hasattr(module, "layers")
    np.testing.assert_array_equal(module(_dense(x)).numpy(), want.astype(np.float32))
    # the plain chain it is stored as gives the same outputs
    plain = net.to_torch(residual=False)
    assert type(plain).__name__ == "SuperposeModule"
    np.testing.assert_array_equal(plain(_dense(x)).numpy(), want.astype(np.float32))
    # forced sparse weights; small row blocks (several blocks of rows per batch)
    sparse_module = net.to_torch(dense_weights=False)
    np.testing.assert_array_equal(sparse_module(_dense(x)).numpy(), want)


def test_every_input_of_a_small_task():
    task = families.layered_circuit(12, 6, 4, Seeds(5).rng("task"), sparsity=2)
    net = build(task, "stream", seed=0)
    x = rows_to_csr(all_sparse_rows(task.features, task.sparsity), task.features)
    want = evaluate(task, x).values.toarray()
    np.testing.assert_array_equal(net.predict(x).toarray(), want)
    np.testing.assert_array_equal(net.to_torch()(_dense(x)).numpy(), want)


def test_blocks_and_hooks_match_the_network_layers():
    net, x = _net(3), _inputs(3)
    d = net.input_code.width
    acts = net.forward(net.encode(x), all_layers=True)
    module = net.to_torch(output="all")
    seen: dict[str, torch.Tensor] = {}
    for i, block in enumerate(module.blocks):
        for name in ("hook_resid_pre", "hook_resid_post"):
            getattr(block, name).register_forward_hook(
                lambda _m, _i, out, key=f"{i}.{name}": seen.__setitem__(key, out.clone())
            )
        block.hidden.hook_post.register_forward_hook(
            lambda _m, _i, out, key=f"{i}.hidden": seen.__setitem__(key, out.clone())
        )
    out = module(_dense(x))
    assert list(out) == [
        "input",
        *[f"blocks.{i}.{k}" for i in range(3) for k in ("hidden", "stream")],
        "outputs",
    ]
    np.testing.assert_array_equal(out["input"].numpy(), net.encode(x).toarray())
    for i in range(3):
        read, stream = acts[2 * i].toarray(), acts[2 * i + 1].toarray()
        # the read layer is [identity; hidden]: the stream passes through, the hidden units fire
        np.testing.assert_array_equal(out[f"blocks.{i}.hidden"].numpy(), read[:, d:])
        np.testing.assert_array_equal(out[f"blocks.{i}.stream"].numpy(), stream)
        np.testing.assert_array_equal(seen[f"{i}.hidden"].numpy(), read[:, d:])
        np.testing.assert_array_equal(seen[f"{i}.hook_resid_post"].numpy(), stream)
        before = out["input"] if i == 0 else out[f"blocks.{i - 1}.stream"]
        np.testing.assert_array_equal(seen[f"{i}.hook_resid_pre"].numpy(), before.numpy())
        # the skip connection: what was on stays on (a clamped OR)
        assert bool((out[f"blocks.{i}.stream"] >= before).all())
    last = net.to_torch(output="last")(_dense(x))
    np.testing.assert_array_equal(last.numpy(), acts[-1].toarray())


def test_a_hook_can_change_the_stream():
    # Zeroing block 0's write through its hook changes the outputs: the module really runs
    # its blocks (a test against predict that a fake "residual" wrapper would fail).
    net, x = _net(2), _inputs(2)
    module = net.to_torch()
    module.blocks[0].write.hook_post.register_forward_hook(lambda _m, _i, out: out * 0)
    got = module(_dense(x)).numpy()
    want = net.predict(x).toarray()
    assert (got != want).any()


def test_save_load_and_residual_refusal(tmp_path):
    net, x = _net(3), _inputs(3)
    want = net.predict(x).toarray()
    path = sptorch.save(net.to_torch(), tmp_path / "exp")
    back = sptorch.load(path)
    assert type(back).__name__ == "ResidualModule"
    np.testing.assert_array_equal(back(_dense(x)).numpy(), want)
    circuit = build(families.layered_circuit(12, 6, 2, Seeds(0).rng("task")), "circuit")
    with pytest.raises(SuperposeError, match="not residual blocks"):
        circuit.to_torch(residual=True)
    assert type(circuit.to_torch()).__name__ == "SuperposeModule"


def test_onnx_and_cli_export(tmp_path, capsys):
    ort = pytest.importorskip("onnxruntime")
    onnx = pytest.importorskip("onnx")
    net, x = _net(3), _inputs(3)
    want = net.predict(x).toarray().astype(np.float32)
    save_network(net, tmp_path / "net")
    code, _, _ = run(
        capsys, "export", tmp_path / "net", "--format", "onnx", "--out", tmp_path / "m.onnx"
    )
    assert code == 0
    model = onnx.load(str(tmp_path / "m.onnx"))
    resid = [n for n in model.graph.node if n.op_type == "Add" and "resid" in n.output[0]]
    assert len(resid) == 3  # one skip connection per block
    session = ort.InferenceSession(str(tmp_path / "m.onnx"))
    got = session.run(None, {"features": x.toarray().astype(np.float32)})[0]
    np.testing.assert_array_equal(got, want)
    code, _, _ = run(
        capsys, "export", tmp_path / "net", "--format", "torch", "--out", tmp_path / "t"
    )
    assert code == 0
    module = sptorch.load(tmp_path / "t")
    assert type(module).__name__ == "ResidualModule" and len(module.blocks) == 3
    np.testing.assert_array_equal(module(_dense(x)).numpy(), want)
