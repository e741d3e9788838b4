"""Bring your own model: torch MLPs with arbitrary biases, verified against brute force;
capacity pairing of Sequential / TransformerLens / Hugging Face names; the 1-bit default."""

from __future__ import annotations

import itertools
import json

import numpy as np
import pytest
from safetensors.numpy import save_file
from scipy import sparse

import superpose as sp
from superpose.bounds import tightness
from superpose.capacity import model_capacity
from superpose.io import load_network, save_network
from superpose.network import Layer
from superpose.own import from_state_dict, from_torch
from tests.helpers import all_sparse_rows, brute_outputs, run

torch = pytest.importorskip("torch")


def _task() -> sp.Task:
    return sp.families.pairs(10, 16, np.random.default_rng(3), sparsity=2)


def _mlp(seed: int, widths: list[int]) -> torch.nn.Sequential:
    torch.manual_seed(seed)
    mods: list[torch.nn.Module] = []
    for a, b in itertools.pairwise(widths):
        mods += [torch.nn.Linear(a, b), torch.nn.ReLU()]
    mlp = torch.nn.Sequential(*mods[:-1]).double()
    with torch.no_grad():
        for mod in mlp:
            if isinstance(mod, torch.nn.Linear):
                mod.bias.uniform_(-0.5, 1.0)  # many positive biases: units fire at rest
    return mlp


def _brute_errors(mlp, task: sp.Task, threshold: float) -> int:
    """Inputs (<= s active) on which the thresholded torch forward differs from the task."""
    rows = all_sparse_rows(task.features, task.sparsity)
    x = np.zeros((len(rows), task.features))
    for i, r in enumerate(rows):
        x[i, list(r)] = 1
    with torch.no_grad():
        got = (mlp(torch.from_numpy(x)) >= threshold).numpy().astype(int)
    wrong = 0
    for i, r in enumerate(rows):
        want = brute_outputs(task, r)[0]
        wrong += int(got[i].tolist() != want)
    return wrong


@pytest.mark.parametrize(("seed", "threshold"), [(0, 0.5), (1, 0.0), (2, 0.3)])
def test_torch_mlp_with_biases_verifies_like_brute_force(seed: int, threshold: float) -> None:
    task = _task()
    mlp = _mlp(seed, [10, 24, 12, 16])
    net = from_torch(mlp, task, threshold=threshold)
    assert any(lay.resting for lay in net.layers)  # some unit fires on the zero input
    rep = sp.verify(net, "exhaustive")
    assert rep.inputs_with_error == _brute_errors(mlp, task, threshold)
    # predictions equal the torch forward on random dense-ish 0/1 inputs too
    x = (np.random.default_rng(seed).random((50, 10)) < 0.3).astype(float)
    with torch.no_grad():
        want = (mlp(torch.from_numpy(x)) >= threshold).numpy()
    np.testing.assert_array_equal(net.predict(x).toarray(), want)
    assert sp.check_network(net).kind == "exhaustive"  # certificates step aside, with a reason
    t = tightness(net, bits_per_parameter=1)
    assert t["bits_per_parameter"] == 1.0 and t["bits_ratio"] > 0


def test_hand_written_and_with_positive_bias_is_correct() -> None:
    task = sp.Task.from_gates(2, 2, [("and", [0, 1])])
    mlp = torch.nn.Sequential(torch.nn.Linear(2, 1), torch.nn.ReLU(), torch.nn.Linear(1, 1))
    with torch.no_grad():
        mlp[0].weight.fill_(1.0)
        mlp[0].bias.fill_(0.5)
        mlp[2].weight.fill_(1.0)
        mlp[2].bias.fill_(-2.0)
    net = from_torch(mlp, task)
    assert sp.verify(net, "exhaustive").inputs_with_error == 0
    broken = from_torch(mlp, task, threshold=-2.0)  # everything reads as on, even zero
    assert sp.verify(broken, "exhaustive").inputs_with_error == 3


def test_state_dict_names_all_load_the_same_function() -> None:
    task = _task()
    mlp = _mlp(4, [10, 20, 16]).float()
    sd = {k: v.numpy() for k, v in mlp.state_dict().items()}
    w1, b1, w2, b2 = sd["0.weight"], sd["0.bias"], sd["2.weight"], sd["2.bias"]
    x = (np.random.default_rng(0).random((40, 10)) < 0.25).astype(float)
    want = from_torch(mlp, task).predict(x).toarray()
    variants = [
        mlp.state_dict(),
        {"net.0.weight": w1, "net.0.bias": b1, "net.2.weight": w2, "net.2.bias": b2},
        {"mlp.fc2.weight": w2, "mlp.fc2.bias": b2, "mlp.fc1.weight": w1, "mlp.fc1.bias": b1},
        {
            "mlp.down_proj.weight": w2,
            "mlp.down_proj.bias": b2,
            "mlp.up_proj.weight": w1,
            "mlp.up_proj.bias": b1,
        },
        {
            "h.0.mlp.c_fc.weight": w1.T,
            "h.0.mlp.c_fc.bias": b1,
            "h.0.mlp.c_proj.weight": w2.T,
            "h.0.mlp.c_proj.bias": b2,
        },
        {
            "blocks.0.mlp.W_in": w1.T,
            "blocks.0.mlp.b_in": b1,
            "blocks.0.mlp.W_out": w2.T,
            "blocks.0.mlp.b_out": b2,
        },
    ]
    for sd_ in variants:
        np.testing.assert_array_equal(from_state_dict(sd_, task).predict(x).toarray(), want)


def test_bad_models_are_one_clear_error() -> None:
    task = _task()
    with pytest.raises(sp.SuperposeError, match=r"'0.weight' has shape \[20, 9\]"):
        from_state_dict({"0.weight": np.ones((20, 9)), "2.weight": np.ones((16, 20))}, task)
    with pytest.raises(sp.SuperposeError, match="the model has 15 outputs; the task has 16"):
        from_state_dict({"0.weight": np.ones((20, 10)), "2.weight": np.ones((15, 20))}, task)
    gelu = torch.nn.Sequential(torch.nn.Linear(10, 4), torch.nn.GELU(), torch.nn.Linear(4, 16))
    with pytest.raises(sp.SuperposeError, match="GELU"):
        from_torch(gelu, task)
    with pytest.raises(sp.SuperposeError, match="gate_proj"):
        from_state_dict(
            {
                "mlp.gate_proj.weight": np.ones((4, 10)),
                "mlp.up_proj.weight": np.ones((4, 10)),
                "mlp.down_proj.weight": np.ones((16, 4)),
            },
            task,
        )


def test_layer_refusal_names_the_way_out_and_resting_layers_run_dense() -> None:
    w = sparse.csr_array(np.array([[1.0, 0.0], [0.0, 1.0]]))
    with pytest.raises(sp.SuperposeError, match="unit 1 .*all-zero input.*resting=True"):
        Layer(w, np.array([0.0, 0.5]), "relu")
    lay = Layer(w, np.array([0.0, 0.5]), "relu", resting=True)
    z = sparse.csr_array(np.array([[0.0, 0.0], [1.0, 0.0]]))
    assert lay.apply(z).toarray().tolist() == [[0.0, 0.5], [1.0, 0.5]]
    assert not Layer(w, np.array([0.0, -0.5]), "relu", resting=True).resting  # nothing fires


def test_own_network_saves_and_loads(tmp_path, capsys) -> None:
    task = _task()
    net = from_torch(_mlp(5, [10, 12, 16]), task, threshold=0.2)
    d = save_network(net, tmp_path / "own")
    back = load_network(d)
    x = (np.random.default_rng(1).random((30, 10)) < 0.3).astype(float)
    assert (back.predict(x) != net.predict(x)).nnz == 0
    assert [lay.resting for lay in back.layers] == [lay.resting for lay in net.layers]
    code, out, _ = run(capsys, "info", d, "--json")
    info = json.loads(out)
    assert code == 0 and "mechanisms" not in info
    assert info["check"]["kind"] == "none" and "loaded model" in info["check"]["why"]
    code, out, _ = run(capsys, "info", d)
    assert code == 0
    line = " ".join(out.split())  # rich may wrap
    assert "check: none recorded (a loaded model (superpose.own): nothing has checked it)" in line
    assert f"superpose verify {d}" in line
    with pytest.raises(sp.SuperposeError, match="fire on an all-zero input"):
        sp.mechanisms.of(net)


# --- capacity -----------------------------------------------------------------------------


def test_capacity_pairs_sequential_tl_and_hf_names_and_keeps_biases(tmp_path) -> None:
    f32 = np.float32
    files = {
        "seq": {
            "0.weight": np.ones((8, 4), f32),
            "0.bias": np.ones(8, f32),
            "2.weight": np.ones((4, 8), f32),
            "2.bias": np.ones(4, f32),
        },
        "tl": {
            "blocks.0.mlp.W_in": np.ones((4, 8), f32),
            "blocks.0.mlp.b_in": np.ones(8, f32),
            "blocks.0.mlp.W_out": np.ones((8, 4), f32),
            "blocks.0.mlp.b_out": np.ones(4, f32),
        },
        "hf": {
            "h.0.mlp.c_fc.weight": np.ones((4, 8), f32),
            "h.0.mlp.c_fc.bias": np.ones(8, f32),
            "h.0.mlp.c_proj.weight": np.ones((8, 4), f32),
            "h.0.mlp.c_proj.bias": np.ones(4, f32),
        },
        "fc": {
            "m.mlp.fc1.weight": np.ones((8, 4), f32),
            "m.mlp.fc1.bias": np.ones(8, f32),
            "m.mlp.fc2.weight": np.ones((4, 8), f32),
            "m.mlp.fc2.bias": np.ones(4, f32),
        },
    }
    for name, tensors in files.items():
        path = tmp_path / f"{name}.safetensors"
        save_file(tensors, str(path))
        report = model_capacity(path)
        assert len(report["layers"]) == 1, (name, report["layers"])
        row = report["layers"][0]
        assert row["kind"] == "mlp", name
        assert sorted(row["tensors"]) == sorted(tensors), name  # biases kept
        assert row["parameters"] == 32 + 32 + 8 + 4
        assert row["bits_per_parameter"] == 1.0
        assert report["skipped_tensors"] == 0


def test_capacity_default_is_one_bit_and_says_so(tmp_path, capsys) -> None:
    path = tmp_path / "m.safetensors"
    save_file(
        {
            "mlp.fc1.weight": np.ones((64, 16), np.float32),
            "mlp.fc2.weight": np.ones((16, 64), np.float32),
        },
        str(path),
    )
    one = model_capacity(path)
    dtype = model_capacity(path, None)
    assert one["bits_per_parameter"] == 1.0 and "default" in one["bits_per_parameter_note"]
    assert dtype["layers"][0]["bits_per_parameter"] == 32.0
    assert one["total"]["budget_bits"] * 32 == dtype["total"]["budget_bits"]
    code, out, _ = run(capsys, "capacity", path)
    assert code == 0 and "1 bit per parameter (default" in " ".join(out.split())
    code, out, _ = run(capsys, "capacity", path, "--dtype-bits", "--json")
    assert code == 0 and json.loads(out)["layers"][0]["bits_per_parameter"] == 32.0


def test_info_of_an_older_file_says_no_check_was_recorded(tmp_path, capsys) -> None:
    """A network.json written before builds recorded their check: info says so, never
    silence, and the JSON holds kind "none"; the same file with its check says it."""
    net = sp.build(_task(), "naive")
    d = save_network(net, tmp_path / "net")
    code, out, _ = run(capsys, "info", d)
    assert code == 0 and "none recorded" not in out and "check:" in out
    meta = json.loads((d / "network.json").read_text())
    assert "check" in meta["extras"]
    del meta["extras"]["check"]
    (d / "network.json").write_text(json.dumps(meta))
    code, out, _ = run(capsys, "info", d)
    line = " ".join(out.split())
    assert code == 0
    assert "check: none recorded (older file: written before builds recorded their check)" in line
    code, out, _ = run(capsys, "info", d, "--json")
    assert json.loads(out)["check"] == {
        "kind": "none",
        "passed": None,
        "why": "older file: written before builds recorded their check",
    }
