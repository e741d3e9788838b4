"""Saving and loading network directories: round trips, determinism and every refusal."""

from __future__ import annotations

import hashlib
import json
import os
import pickle

import numpy as np
import pytest
from helpers import all_sparse_rows, rows_to_csr
from safetensors.numpy import load as st_load
from safetensors.numpy import save as st_save
from scipy import sparse

from superpose import (
    BloomCode,
    ExplicitCode,
    Layer,
    LinearCode,
    Network,
    SuperposeError,
    Task,
    build,
    families,
    load_network,
    save_network,
)
from superpose.io import FORMAT_VERSION, META_FILE, WEIGHTS_FILE, read_meta


def snapshot(directory) -> dict[str, bytes]:
    return {p.name: p.read_bytes() for p in sorted(directory.iterdir())}


def assert_same_network(a: Network, b: Network, rows) -> None:
    assert a.counts() == b.counts()
    assert a.construction == b.construction and a.params == b.params and a.seed == b.seed
    assert a.task.features == b.task.features and a.task.sparsity == b.task.sparsity
    np.testing.assert_array_equal(a.task.ops, b.task.ops)
    np.testing.assert_array_equal(a.task.gate_inputs, b.task.gate_inputs)
    np.testing.assert_array_equal(a.task.outputs, b.task.outputs)
    assert a.task.family == b.task.family
    for la, lb in zip(a.layers, b.layers, strict=True):
        assert la.activation == lb.activation
        assert (la.weight != lb.weight).nnz == 0
        np.testing.assert_array_equal(la.bias, lb.bias)
    x = rows_to_csr(rows, a.task.features)
    assert (a.predict(x) != b.predict(x)).nnz == 0


def bloom_network(seed: int = 0) -> Network:
    """A hand-made two-layer Bloom-coded network (one step layer) for 3 gates."""
    rng = np.random.default_rng(seed)
    task = Task.from_gates(6, 2, [("and", [0, 1]), ("and", [2, 3]), ("or", [4, 5])])
    code_in = BloomCode.random(6, 30, 3, rng)
    code_out = BloomCode.random(3, 12, 2, rng, slack=0)
    w = np.zeros((12, 30))
    b = np.full(12, -1.0)
    for g in range(3):
        ins = task.operands(g)
        need = 6 if task.op_name(g) == "and" else 3
        for unit in code_out.members(g):
            for f in ins:
                w[unit, code_in.members(int(f))] = 1.0
            b[unit] = -need
    layer = Layer(sparse.csr_array(w), b, "step")
    return Network(
        [layer], code_in, code_out, task, "handmade", {"note": "test"}, seed, {"k": [1, 2]}
    )


def linear_network() -> Network:
    task = Task.from_gates(4, 2, [("and", [0, 1])])
    code_in = LinearCode.random(4, 16, np.random.default_rng(0))
    layer = Layer(sparse.csr_array(np.ones((1, 16)) * 0.25), np.array([-0.5]), "relu")
    return Network([layer], code_in, ExplicitCode(1), task, "linear-test")


NETWORKS = {
    "naive_and2": lambda: build(
        families.pairs(40, 200, np.random.default_rng(7), sparsity=3), "naive"
    ),
    "naive_circuit": lambda: build(
        families.layered_circuit(10, 6, 3, np.random.default_rng(1)), "naive"
    ),
    "bloom": bloom_network,
    "linear": linear_network,
}


@pytest.mark.parametrize("name", sorted(NETWORKS))
def test_round_trip(tmp_path, name):
    net = NETWORKS[name]()
    d = save_network(net, tmp_path / "net")
    assert sorted(p.name for p in d.iterdir()) == sorted([WEIGHTS_FILE, META_FILE])
    again = load_network(d)
    rows = all_sparse_rows(net.task.features, min(net.task.sparsity, 2))
    assert_same_network(net, again, rows)
    assert type(again.input_code) is type(net.input_code)
    assert again.input_code.meta() == net.input_code.meta()
    assert again.output_code.meta() == net.output_code.meta()
    assert again.extras == json.loads(json.dumps(net.extras))
    meta = read_meta(d)
    assert meta["format_version"] == FORMAT_VERSION
    assert meta["counts"]["neurons"] == net.counts()["neurons"]
    assert meta["checksum"]["sha256"] == hashlib.sha256((d / WEIGHTS_FILE).read_bytes()).hexdigest()


def test_round_trip_mixed_task(tmp_path, mixed_task):
    net = build(mixed_task, "naive", seed=5)
    again = load_network(save_network(net, tmp_path / "m"))
    assert_same_network(net, again, all_sparse_rows(8, 3))
    assert again.seed == 5


def test_same_seed_gives_byte_identical_files(tmp_path):
    for name in ("a", "b"):
        task = families.pairs(40, 200, np.random.default_rng(7), sparsity=3)
        save_network(build(task, "naive", seed=3), tmp_path / name)
    assert snapshot(tmp_path / "a") == snapshot(tmp_path / "b")
    for name in ("c", "d"):
        save_network(bloom_network(4), tmp_path / name)
    assert snapshot(tmp_path / "c") == snapshot(tmp_path / "d")
    save_network(bloom_network(5), tmp_path / "e")
    assert snapshot(tmp_path / "c")[WEIGHTS_FILE] != snapshot(tmp_path / "e")[WEIGHTS_FILE]


def test_saving_again_replaces_and_leaves_no_temporary_files(tmp_path):
    d = tmp_path / "net"
    save_network(bloom_network(1), d)
    save_network(bloom_network(2), d)
    assert sorted(p.name for p in d.iterdir()) == sorted([WEIGHTS_FILE, META_FILE])
    assert load_network(d).seed == 2


def test_save_onto_a_file_is_refused(tmp_path):
    target = tmp_path / "file"
    target.write_text("keep")
    with pytest.raises(SuperposeError, match="not a directory"):
        save_network(bloom_network(), target)
    assert target.read_text() == "keep"


# --- refusals -------------------------------------------------------------------------------


@pytest.fixture
def saved(tmp_path):
    return save_network(bloom_network(), tmp_path / "net")


def rewrite_tensors(d, change) -> None:
    """Change the tensors with ``change(dict)`` and re-sign them, so only validation can object."""
    tensors = dict(st_load((d / WEIGHTS_FILE).read_bytes()))
    change(tensors)
    blob = st_save(tensors, metadata={"format": "superpose-network"})
    (d / WEIGHTS_FILE).write_bytes(blob)
    meta = json.loads((d / META_FILE).read_text())
    meta["checksum"]["sha256"] = hashlib.sha256(blob).hexdigest()
    (d / META_FILE).write_text(json.dumps(meta))


def rewrite_meta(d, change) -> None:
    meta = json.loads((d / META_FILE).read_text())
    change(meta)
    (d / META_FILE).write_text(json.dumps(meta))


def test_corrupted_weights_fail_the_checksum(saved):
    blob = bytearray((saved / WEIGHTS_FILE).read_bytes())
    blob[-1] ^= 0xFF
    (saved / WEIGHTS_FILE).write_bytes(bytes(blob))
    with pytest.raises(SuperposeError, match="checksum mismatch"):
        load_network(saved)


def test_truncated_weights(saved):
    blob = (saved / WEIGHTS_FILE).read_bytes()
    (saved / WEIGHTS_FILE).write_bytes(blob[: len(blob) // 2])
    with pytest.raises(SuperposeError, match="checksum mismatch"):
        load_network(saved)
    # truncated and re-signed: the parser itself must refuse it
    (saved / WEIGHTS_FILE).write_bytes(blob[:40])
    rewrite_meta(
        saved, lambda m: m["checksum"].update(sha256=hashlib.sha256(blob[:40]).hexdigest())
    )
    with pytest.raises(SuperposeError, match="not a valid safetensors file"):
        load_network(saved)


def test_truncated_and_empty_meta(saved):
    text = (saved / META_FILE).read_text()
    (saved / META_FILE).write_text(text[: len(text) // 2])
    with pytest.raises(SuperposeError, match="not valid JSON"):
        load_network(saved)
    (saved / META_FILE).write_text("")
    with pytest.raises(SuperposeError, match="not valid JSON"):
        load_network(saved)


class _Exploit:
    def __init__(self, marker: str) -> None:
        self.marker = marker

    def __reduce__(self):
        return (open, (self.marker, "w"))


@pytest.mark.parametrize("re_sign", [False, True])
def test_pickle_payload_is_never_executed(tmp_path, saved, re_sign):
    marker = tmp_path / "PWNED"
    payload = pickle.dumps({"weights": _Exploit(str(marker))})
    # the payload is real: unpickling it would create the marker
    pickle.loads(payload)
    assert marker.exists()
    marker.unlink()
    (saved / WEIGHTS_FILE).write_bytes(payload)
    if re_sign:  # even with a matching checksum the file is parsed as data only
        rewrite_meta(
            saved, lambda m: m["checksum"].update(sha256=hashlib.sha256(payload).hexdigest())
        )
    with pytest.raises(SuperposeError) as info:
        load_network(saved)
    assert ("checksum mismatch" in str(info.value)) != re_sign
    assert not marker.exists()


def test_pickle_payload_as_meta_is_refused(tmp_path, saved):
    marker = tmp_path / "PWNED2"
    (saved / META_FILE).write_bytes(pickle.dumps(_Exploit(str(marker))))
    with pytest.raises(SuperposeError):
        load_network(saved)
    assert not marker.exists()


@pytest.mark.parametrize("version", [2, 0, "1", None])
def test_foreign_format_version_names_both_versions(saved, version):
    rewrite_meta(saved, lambda m: m.update(format_version=version))
    with pytest.raises(SuperposeError) as info:
        load_network(saved)
    message = str(info.value)
    assert f"format version {version!r}" in message
    assert f"reads version {FORMAT_VERSION}" in message


def test_foreign_format_is_refused(saved):
    rewrite_meta(saved, lambda m: m.update(format="onnx"))
    with pytest.raises(SuperposeError, match="not a superpose-network file"):
        load_network(saved)
    (saved / META_FILE).write_text("[1, 2]")
    with pytest.raises(SuperposeError, match="not a superpose-network file"):
        load_network(saved)


@pytest.mark.parametrize("key", ["layers", "task", "input_code", "output_code", "checksum"])
def test_missing_meta_sections(saved, key):
    rewrite_meta(saved, lambda m: m.pop(key))
    with pytest.raises(SuperposeError, match=key):
        load_network(saved)


def test_missing_files_and_directories(tmp_path, saved):
    with pytest.raises(SuperposeError, match="not a network directory"):
        load_network(tmp_path / "nowhere")
    (saved / WEIGHTS_FILE).unlink()
    with pytest.raises(SuperposeError, match="missing"):
        load_network(saved)
    (saved / META_FILE).unlink()
    with pytest.raises(SuperposeError, match="missing"):
        load_network(saved)


def _set(key, value):
    def change(t):
        t[key] = value

    return change


def _pop(key):
    return lambda t: t.pop(key)


TAMPERED_TENSORS = {
    "missing layer tensor": _pop("layers.0.bias"),
    "index out of range": lambda t: t["layers.0.indices"].__setitem__(0, 999),
    "indptr wrong length": lambda t: t.__setitem__(
        "layers.0.indptr", t["layers.0.indptr"][:-1].copy()
    ),
    "non-finite weight": lambda t: t["layers.0.data"].__setitem__(0, np.inf),
    "unit firing on zero": lambda t: t["layers.0.bias"].__setitem__(0, 1.0),
    "task reads the future": lambda t: t["task.gate_inputs"].__setitem__(0, 50),
    "output code index": lambda t: t["output_code.indices"].__setitem__(0, 10_000),
    "code indptr": lambda t: t.__setitem__(
        "input_code.indptr", t["input_code.indptr"][::-1].copy()
    ),
}


@pytest.mark.parametrize("name", sorted(TAMPERED_TENSORS))
def test_tampered_but_signed_tensors_are_refused(saved, name):
    rewrite_tensors(saved, TAMPERED_TENSORS[name])
    with pytest.raises(SuperposeError) as info:
        load_network(saved)
    assert str(saved) in str(info.value)
    assert "\n" not in str(info.value)


TAMPERED_META = {
    "shape disagrees": lambda m: m["layers"][0].update(shape=[13, 30]),
    "bad shape value": lambda m: m["layers"][0].update(shape=["x", 30]),
    "unknown activation": lambda m: m["layers"][0].update(activation="gelu"),
    "extra layer": lambda m: m["layers"].append(m["layers"][0]),
    "features disagree": lambda m: m["task"].update(features=7),
    "sparsity too big": lambda m: m["task"].update(sparsity=99),
    "code kind": lambda m: m["input_code"].update(kind="pickle"),
    "code width": lambda m: m["output_code"].update(width=5),
}


@pytest.mark.parametrize("name", sorted(TAMPERED_META))
def test_tampered_meta_is_refused(saved, name):
    rewrite_meta(saved, TAMPERED_META[name])
    with pytest.raises(SuperposeError):
        load_network(saved)


def test_huge_meta_is_refused_before_parsing(saved, monkeypatch):
    import superpose.io as io_mod

    monkeypatch.setattr(io_mod, "MAX_META_BYTES", 100)
    with pytest.raises(SuperposeError, match="too large"):
        load_network(saved)


def test_load_does_not_write(saved):
    before = snapshot(saved)
    mtimes = {p.name: os.stat(p).st_mtime_ns for p in saved.iterdir()}
    load_network(saved)
    assert snapshot(saved) == before
    assert mtimes == {p.name: os.stat(p).st_mtime_ns for p in saved.iterdir()}


def test_atomic_write_failure_keeps_the_old_file(tmp_path):
    from superpose._atomic import atomic_path, write_text

    target = tmp_path / "f.txt"
    write_text(target, "old")
    with pytest.raises(RuntimeError), atomic_path(target) as tmp:
        tmp.write_text("half")
        raise RuntimeError("crash while writing")
    assert target.read_text() == "old"
    assert [p.name for p in tmp_path.iterdir()] == ["f.txt"]  # no temporary file left
    write_text(tmp_path / "sub" / "g.txt", "new")  # parents are created
    assert (tmp_path / "sub" / "g.txt").read_text() == "new"


def test_a_dead_writers_temporary_files_are_removed_and_a_live_ones_kept(tmp_path):
    import subprocess
    import sys

    from superpose._atomic import write_files

    dead = subprocess.Popen([sys.executable, "-c", "pass"])
    dead.wait()
    live = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(60)"])
    try:
        stale = tmp_path / f".network.json.{dead.pid}.abc123.tmp"
        busy = tmp_path / f".network.json.{live.pid}.def456.tmp"
        other = tmp_path / f".notes.txt.{dead.pid}.ghi789.tmp"  # another file's: not ours
        # a writer of "network.json.1" (a dead pid in its name's place): not ours either
        sibling = tmp_path / f".network.json.{dead.pid}.{live.pid}.jkl012.tmp"
        for p in (stale, busy, other, sibling):
            p.write_text("partial")
        write_files({tmp_path / "network.json": b"{}"})
        assert not stale.exists()
        assert busy.read_text() == "partial" and other.exists() and sibling.exists()
        assert (tmp_path / "network.json").read_bytes() == b"{}"
    finally:
        live.kill()
        live.wait()


@pytest.mark.parametrize(
    "construction", ["naive", "superposed", "superposed3", "stream", "circuit"]
)
def test_typed_extras_match_what_builds_write_and_round_trip_to_the_same_bytes(
    tmp_path, construction
):
    """Every declared ``Extras`` key a build writes has its declared JSON type, and a loaded
    network saves the same network.json bytes (extras included)."""
    from superpose.network import extras_problems
    from superpose.search import search_width

    rng = np.random.default_rng(3)
    if construction in ("stream", "circuit"):
        task = families.generate("circuit", rng, features=40, outputs=90, depth=3)
    else:
        task = families.pairs(60, 150, rng)
    net = build(task, construction, rng=np.random.default_rng(0))
    if construction == "superposed":
        net, _ = search_width(task, samples=50)
    assert extras_problems(net.extras) == []
    first = save_network(net, tmp_path / "a") / META_FILE
    again = save_network(load_network(tmp_path / "a"), tmp_path / "b") / META_FILE
    assert again.read_bytes() == first.read_bytes()
    assert "check" in json.loads(first.read_text())["extras"]


@pytest.mark.parametrize(
    "key, value", [("check", 5), ("fallback", ["x"]), ("residual", "wide"), ("p", True)]
)
def test_extras_of_the_wrong_type_are_refused_on_load(saved, key, value):
    rewrite_meta(saved, lambda m: m.setdefault("extras", {}).update({key: value}))
    with pytest.raises(SuperposeError, match=f"extras.{key}: expected"):
        load_network(saved)
