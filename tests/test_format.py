"""docs/FORMAT.md is enough to run a network: a loader written from it alone (safetensors, json,
numpy; nothing from superpose) predicts what ``Network.predict`` predicts. And readable reprs."""

from __future__ import annotations

import functools
import hashlib
import json
from pathlib import Path

import numpy as np
import pytest
from safetensors.numpy import load as st_load

import superpose as sp
from superpose.constructions import build as raw_build
from superpose.io import save_network

# ---- a loader written from docs/FORMAT.md only ------------------------------------------


def _csr_matmul(z: np.ndarray, data, indices, indptr, shape) -> np.ndarray:
    """z @ W.T for the CSR matrix W, with numpy only."""
    rows = np.repeat(np.arange(shape[0]), np.diff(indptr))
    w = np.zeros(shape)
    w[rows, indices] = data
    return z @ w.T


def _members(t: dict, prefix: str, n: int) -> list[np.ndarray]:
    ptr, idx = t[f"{prefix}.indptr"], t[f"{prefix}.indices"]
    return [idx[ptr[f] : ptr[f + 1]] for f in range(n)]


def plain_predict(directory: Path, x: np.ndarray) -> np.ndarray:
    blob = (directory / "network.safetensors").read_bytes()
    meta = json.loads((directory / "network.json").read_text())
    assert meta["format"] == "superpose-network" and meta["format_version"] == 1
    assert hashlib.sha256(blob).hexdigest() == meta["checksum"]["sha256"]
    t = st_load(blob)
    ic, oc = meta["input_code"], meta["output_code"]
    if ic["kind"] == "explicit":
        z = x.astype(float)
    elif ic["kind"] == "bloom":
        z = np.zeros((len(x), ic["width"]))
        for f, units in enumerate(_members(t, "input_code", ic["n_features"])):
            z[np.ix_(x[:, f] > 0.5, units)] = 1
    else:
        z = x @ t["input_code.matrix"].T
    for i, layer in enumerate(meta["layers"]):
        p = _csr_matmul(
            z,
            t[f"layers.{i}.data"],
            t[f"layers.{i}.indices"],
            t[f"layers.{i}.indptr"],
            layer["shape"],
        )
        p = p + t[f"layers.{i}.bias"]
        act = layer["activation"]
        z = np.maximum(p, 0) if act == "relu" else (p >= 0).astype(float) if act == "step" else p
    if oc["kind"] == "explicit":
        return z >= 0.5
    if oc["kind"] == "linear":
        return z @ t["output_code.matrix"] >= oc["threshold"]
    members = _members(t, "output_code", oc["n_features"])
    lengths = np.array([len(u) for u in members])
    need = t["output_code.need"] if "output_code.need" in t else lengths - oc["slack"]
    on = z > 0.5
    return np.stack([on[:, u].sum(axis=1) >= need[o] for o, u in enumerate(members)], axis=1)


# ---- the networks ------------------------------------------------------------------------


@functools.cache
def _nets() -> dict[str, sp.Network]:
    pairs = sp.families.pairs(40, 150, np.random.default_rng(1), sparsity=2)
    xor = sp.families.pairs(30, 60, np.random.default_rng(2), sparsity=2, op="xor")
    deep = sp.families.layered_circuit(40, 20, 3, np.random.default_rng(3), outputs="last")
    nets = {
        "superposed": raw_build(pairs, "superposed"),
        "xor": raw_build(xor, "superposed"),
        "naive-deep": raw_build(deep, "naive"),
        "circuit": raw_build(deep, "circuit"),
        "relu": raw_build(pairs, "superposed").compile_to_relu(),
    }
    torch = pytest.importorskip("torch")
    from superpose.own import from_torch

    torch.manual_seed(0)
    mlp = torch.nn.Sequential(torch.nn.Linear(40, 32), torch.nn.ReLU(), torch.nn.Linear(32, 150))
    nets["own"] = from_torch(mlp, pairs, threshold=0.1)
    return nets


@pytest.mark.parametrize("name", ["superposed", "xor", "naive-deep", "circuit", "relu", "own"])
def test_plain_loader_predicts_like_superpose(name: str, tmp_path: Path) -> None:
    net = _nets()[name]
    d = save_network(net, tmp_path / name)
    m = net.task.features
    rng = np.random.default_rng(0)
    x = np.zeros((60, m))
    for row in x:
        row[rng.choice(m, size=rng.integers(0, 4), replace=False)] = 1
    # plus rows holding each of a few gates' operands (where outputs are on)
    for k, g in enumerate(range(0, min(net.task.n_gates, 20))):
        ops = net.task.operands(g)
        x[k, ops[ops < m]] = 1
    got = plain_predict(d, x)
    want = net.predict(x).toarray()
    np.testing.assert_array_equal(got, want)
    assert want.any()


def test_format_doc_lists_every_tensor_and_key(tmp_path: Path) -> None:
    doc = (Path(__file__).parent.parent / "docs" / "FORMAT.md").read_text()
    checked = sp.build(sp.families.pairs(20, 40, np.random.default_rng(4)), "superposed")
    assert "check" in checked.extras
    for name, net in {**_nets(), "checked": checked}.items():
        d = save_network(net, tmp_path / name)
        meta = json.loads((d / "network.json").read_text())
        for key in meta:
            assert f"`{key}`" in doc, key
        for key in meta["extras"].get("check", {}):
            assert f"`{key}`" in doc or key in ("inputs_run", "levels"), key
        for key in meta["counts"]:
            assert f"`{key}`" in doc, key
        for tensor in st_load((d / "network.safetensors").read_bytes()):
            generic = ".".join("{i}" if p.isdigit() else p for p in tensor.split("."))
            generic = generic.replace("stages.{i}", "stages.{k}")
            assert f"`{generic}`" in doc, tensor


# ---- reprs -------------------------------------------------------------------------------


def test_reprs_show_shapes_and_counts_never_arrays() -> None:
    big = sp.families.pairs(2000, 20000, np.random.default_rng(0), sparsity=2)
    net = raw_build(big, "naive")
    for obj, start in ((big, "Task("), (net, "Network("), (net.layers[0], "Layer(")):
        text = repr(obj)
        assert text.startswith(start) and len(text) < 200 and "\n" not in text, text
        assert "array" not in text and "..." not in text
    assert "features=2000" in repr(big) and "gates=20000 (and 20000)" in repr(big)
    assert "widths [2000, 20000]" in repr(net) and "nnz=40000" in repr(net)
    assert repr(net.layers[0]) == "Layer(20000x2000 relu, nnz=40000, float64, bias nonzero=20000)"
