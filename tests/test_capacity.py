"""``superpose capacity`` on small synthetic safetensors models, and clean errors on bad files."""

from __future__ import annotations

import json
import math
from pathlib import Path

import numpy as np
import pytest
from safetensors.numpy import save_file

import superpose.capacity as cap_mod
from superpose.bounds import Family, bits_lower_bound, capacity_for_bits
from superpose.capacity import budget_bits, mlp_role, model_capacity, read_header
from superpose.cli import main
from superpose.errors import SuperposeError


def _with_zeros(shape: tuple[int, ...], zeros: int, rng: np.random.Generator, dtype=np.float32):
    a = rng.standard_normal(shape).astype(dtype)
    a[a == 0] = 1.0
    flat = a.reshape(-1)
    flat[rng.choice(flat.size, zeros, replace=False)] = 0.0
    return a


@pytest.fixture()
def llama_like(tmp_path: Path) -> tuple[Path, dict[str, np.ndarray]]:
    rng = np.random.default_rng(0)
    d, ff = 16, 48
    tensors: dict[str, np.ndarray] = {
        "model.embed_tokens.weight": _with_zeros((100, d), 0, rng),
        "model.norm.weight": np.ones(d, np.float32),
        "lm_head.weight": _with_zeros((100, d), 5, rng),
    }
    for i in range(2):
        p = f"model.layers.{i}."
        tensors[p + "mlp.gate_proj.weight"] = _with_zeros((ff, d), 10 * i, rng)
        tensors[p + "mlp.up_proj.weight"] = _with_zeros((ff, d), 7, rng)
        tensors[p + "mlp.down_proj.weight"] = _with_zeros((d, ff), 3, rng)
        tensors[p + "self_attn.q_proj.weight"] = _with_zeros((d, d), 0, rng)
        tensors[p + "input_layernorm.weight"] = np.ones(d, np.float32)
    tensors["conv.weight"] = np.ones((2, 2, 3, 3), np.float32)
    path = tmp_path / "model.safetensors"
    save_file(tensors, str(path))
    return path, tensors


def test_llama_like_grouping_and_counts(llama_like: tuple[Path, dict[str, np.ndarray]]) -> None:
    path, tensors = llama_like
    report = model_capacity(path, None)
    rows = {r["name"]: r for r in report["layers"]}
    assert rows["model.layers.0.mlp"]["kind"] == "mlp"
    assert rows["model.layers.1.mlp"]["kind"] == "mlp"
    assert rows["model.layers.0.self_attn.q_proj"]["kind"] == "matrix"
    assert "lm_head" in rows and "model.embed_tokens" in rows
    assert not any("norm" in name for name in rows)
    # 2 norms per layer (2) + final norm + conv kernel are skipped
    assert report["skipped_tensors"] == 4
    mlp1 = rows["model.layers.1.mlp"]
    names = [f"model.layers.1.mlp.{k}_proj.weight" for k in ("gate", "up", "down")]
    assert sorted(mlp1["tensors"]) == sorted(names)
    assert mlp1["parameters"] == sum(tensors[n].size for n in names)
    assert mlp1["nonzero_parameters"] == sum(int(np.count_nonzero(tensors[n])) for n in names)
    assert mlp1["nonzero_parameters"] == mlp1["parameters"] - 10 - 7 - 3
    # default b is the dtype width (32 bits for float32)
    assert mlp1["bits_per_parameter"] == 32.0
    budget = budget_bits(mlp1["parameters"], mlp1["nonzero_parameters"], 32.0)
    assert mlp1["budget_bits"] == budget
    assert mlp1["capacity_permutation"] == capacity_for_bits(budget, "permutation")
    assert mlp1["capacity_pairs"] == capacity_for_bits(budget, "and2")
    # the capacity is the largest m' whose bound fits
    c = mlp1["capacity_permutation"]
    assert bits_lower_bound(Family("permutation", outputs=c)) <= budget
    assert bits_lower_bound(Family("permutation", outputs=c + 1)) > budget
    total = report["total"]
    assert total["capacity_permutation"] == sum(r["capacity_permutation"] for r in report["layers"])
    assert total["nonzero_parameters"] == sum(r["nonzero_parameters"] for r in report["layers"])
    assert report["total_mlp"]["rows"] == 2
    json.dumps(report)


def test_bits_per_parameter_option(llama_like: tuple[Path, dict[str, np.ndarray]]) -> None:
    path, _ = llama_like
    one = model_capacity(path, bits_per_parameter=1)
    full = model_capacity(path, None)
    for a, b in zip(one["layers"], full["layers"], strict=True):
        assert a["bits_per_parameter"] == 1.0
        assert a["capacity_permutation"] <= b["capacity_permutation"]
    assert one["total"]["capacity_pairs"] < full["total"]["capacity_pairs"]
    with pytest.raises(SuperposeError, match="^bits_per_parameter must be positive") as info:
        model_capacity(path, bits_per_parameter=0)
    assert "--" not in str(info.value)  # the library speaks Python; the CLI adds its flag
    assert info.value.for_command_line().endswith("(--bits-per-parameter)")


def test_sparse_budget_is_used_for_mostly_zero_weights(tmp_path: Path) -> None:
    w = np.zeros((256, 256), np.float32)
    w[0, :10] = 1.0
    path = tmp_path / "sparse.safetensors"
    save_file({"fc1.weight": w, "fc2.weight": w.T.copy()}, str(path))
    row = model_capacity(path, bits_per_parameter=8)["layers"][0]
    assert row["nonzero_parameters"] == 20
    assert row["budget_bits"] == pytest.approx(20 * (8 + math.log2(2 * 256 * 256)))


@pytest.mark.parametrize(
    "names,expect",
    [
        (("h.0.mlp.c_fc.weight", "h.0.mlp.c_proj.weight", "h.0.attn.c_proj.weight"), "h.0.mlp"),
        (("model.decoder.layers.3.fc1.weight", "model.decoder.layers.3.fc2.weight"), "model.decoder.layers.3"),
        (("layers.0.feed_forward.w1.weight", "layers.0.feed_forward.w2.weight", "layers.0.feed_forward.w3.weight"), "layers.0.feed_forward"),
        (("gpt_neox.layers.0.mlp.dense_h_to_4h.weight", "gpt_neox.layers.0.mlp.dense_4h_to_h.weight"), "gpt_neox.layers.0.mlp"),
        (("bert.encoder.layer.0.intermediate.dense.weight", "bert.encoder.layer.0.output.dense.weight", "bert.encoder.layer.0.attention.output.dense.weight"), "bert.encoder.layer.0"),
        (("encoder.block.0.layer.1.DenseReluDense.wi.weight", "encoder.block.0.layer.1.DenseReluDense.wo.weight"), "encoder.block.0.layer.1.DenseReluDense"),
    ],
)  # fmt: skip
def test_mlp_patterns(tmp_path: Path, names: tuple[str, ...], expect: str) -> None:
    rng = np.random.default_rng(1)
    tensors = {n: rng.standard_normal((6, 4)).astype(np.float32) for n in names}
    biases = {n.replace(".weight", ".bias"): np.ones(6, np.float32) for n in names}
    path = tmp_path / "m.safetensors"
    save_file({**tensors, **biases}, str(path))
    report = model_capacity(path, None)
    mlps = [r for r in report["layers"] if r["kind"] == "mlp"]
    assert [r["name"] for r in mlps] == [expect]
    # every matrix is reported exactly once, its bias with it
    listed = [t for r in report["layers"] for t in r["tensors"]]
    assert sorted(listed) == sorted([*tensors, *biases])
    assert report["skipped_tensors"] == 0
    assert sum(r["parameters"] for r in report["layers"]) == (6 * 4 + 6) * len(names)


def test_attention_projections_are_not_mlps() -> None:
    assert mlp_role("h.0.attn.c_proj.weight") is None
    assert mlp_role("layers.0.attention.wo.weight") is None
    assert mlp_role("layers.0.attention.w1.weight") is None
    assert mlp_role("bert.encoder.layer.0.attention.output.dense.weight") is None
    assert mlp_role("model.layers.0.mlp.up_proj.weight") == ("model.layers.0.mlp.", "up")


def _raw_safetensors(path: Path, entries: dict[str, tuple[str, list[int], bytes]]) -> None:
    header, blobs, offset = {}, [], 0
    for name, (dtype, shape, data) in entries.items():
        header[name] = {
            "dtype": dtype,
            "shape": shape,
            "data_offsets": [offset, offset + len(data)],
        }
        blobs.append(data)
        offset += len(data)
    raw = json.dumps(header).encode()
    raw += b" " * (-len(raw) % 8)
    path.write_bytes(len(raw).to_bytes(8, "little") + raw + b"".join(blobs))


def test_bf16_counts_by_bit_pattern(tmp_path: Path) -> None:
    # bf16: 0x0000 = +0, 0x8000 = -0 (both zero), 0x3f80 = 1.0, 0x0001 = tiny denormal
    up = np.array([0x0000, 0x8000, 0x3F80, 0x0001, 0xBF80, 0x0000], dtype="<u2")
    down = np.array([0x3F80] * 6, dtype="<u2")
    path = tmp_path / "bf.safetensors"
    _raw_safetensors(
        path,
        {
            "mlp.up_proj.weight": ("BF16", [3, 2], up.tobytes()),
            "mlp.down_proj.weight": ("BF16", [2, 3], down.tobytes()),
        },
    )
    row = model_capacity(path, None)["layers"][0]
    assert row["nonzero_parameters"] == 3 + 6
    assert row["bits_per_parameter"] == 16.0
    assert row["dtypes"] == ["BF16"]


def test_chunked_reading_gives_the_same_counts(
    monkeypatch: pytest.MonkeyPatch, llama_like: tuple[Path, dict[str, np.ndarray]]
) -> None:
    path, _ = llama_like
    whole = model_capacity(path, None)
    monkeypatch.setattr(cap_mod, "CHUNK_BYTES", 40)  # a few rows (or elements) at a time
    chunked = model_capacity(path, None)
    assert chunked == whole
    bf = np.arange(1000, dtype="<u2") % 7  # 1000 bf16 values, zero every 7th
    raw = tmp = path.parent / "bf.safetensors"
    _raw_safetensors(tmp, {"w": ("BF16", [10, 100], bf.tobytes())})
    assert model_capacity(raw, None)["layers"][0]["nonzero_parameters"] == int(np.count_nonzero(bf))


def test_directory_of_shards(tmp_path: Path) -> None:
    rng = np.random.default_rng(2)
    save_file({"a.mlp.up_proj.weight": rng.standard_normal((8, 4)).astype(np.float16)},
              str(tmp_path / "model-00001-of-00002.safetensors"))  # fmt: skip
    save_file({"a.mlp.down_proj.weight": rng.standard_normal((4, 8)).astype(np.float16)},
              str(tmp_path / "model-00002-of-00002.safetensors"))  # fmt: skip
    report = model_capacity(tmp_path, None)
    assert len(report["files"]) == 2
    assert [r["kind"] for r in report["layers"]] == ["mlp"]
    assert report["layers"][0]["bits_per_parameter"] == 16.0
    with pytest.raises(SuperposeError, match="no such file"):
        model_capacity(tmp_path / "empty_dir_missing", None)
    (tmp_path / "empty").mkdir()
    with pytest.raises(SuperposeError, match="holds no .safetensors"):
        model_capacity(tmp_path / "empty", None)


@pytest.mark.parametrize(
    "content,needle",
    [
        (b"", "only 0 bytes"),
        (b"hello world, this is not a model" * 4, "header length"),
        ((10).to_bytes(8, "little") + b"\xff\xfe{not json", "not UTF-8 JSON"),
        ((2).to_bytes(8, "little") + b"[]", "not a JSON object"),
        ((10**12).to_bytes(8, "little") + b"{}", "header length"),
    ],
)
def test_garbage_files_give_clean_errors(tmp_path: Path, content: bytes, needle: str) -> None:
    path = tmp_path / "bad.safetensors"
    path.write_bytes(content)
    with pytest.raises(SuperposeError, match=needle) as info:
        model_capacity(path, None)
    assert str(path) in str(info.value)


def test_inconsistent_headers(tmp_path: Path) -> None:
    path = tmp_path / "h.safetensors"
    _raw_safetensors(path, {"w": ("F32", [4, 4], b"\x00" * 60)})
    with pytest.raises(SuperposeError, match="should take 64 bytes"):
        read_header(path)
    _raw_safetensors(path, {"w": ("Q4", [4, 4], b"\x00" * 8)})
    with pytest.raises(SuperposeError, match="dtype 'Q4'"):
        read_header(path)
    _raw_safetensors(path, {"w": ("F32", [4, 4], b"\x00" * 64)})
    path.write_bytes(path.read_bytes()[:-10])  # truncated data
    with pytest.raises(SuperposeError, match="outside the file"):
        read_header(path)
    _raw_safetensors(path, {"w": ("F32", [4, "x"], b"\x00" * 64)})
    with pytest.raises(SuperposeError, match="malformed"):
        read_header(path)


def test_cli_capacity(capsys: pytest.CaptureFixture[str], llama_like, tmp_path: Path) -> None:
    path, _ = llama_like
    code = main(["capacity", str(path), "--json", "--bits-per-parameter", "2"])
    out = capsys.readouterr().out
    assert code == 0
    data = json.loads(out)
    assert data == json.loads(json.dumps(model_capacity(path, 2)))
    code = main(["capacity", str(path)])
    out = capsys.readouterr().out
    assert code == 0 and "mlp" in out and "total" in out and "pooled" in out
    bad = tmp_path / "garbage.bin"
    bad.write_bytes(b"\x00\x01garbage" * 100)
    code = main(["capacity", str(bad)])
    err = capsys.readouterr().err
    assert code == 2
    assert "not a safetensors file" in err


@pytest.mark.parametrize(
    "dtype", [np.float64, np.float32, np.float16, np.int64, np.int32, np.int8, np.uint8, np.bool_]
)
def test_nonzero_counts_for_every_numpy_dtype(tmp_path: Path, dtype) -> None:
    rng = np.random.default_rng(4)
    w = (rng.integers(-2, 3, size=(9, 7))).astype(dtype)
    if np.issubdtype(dtype, np.floating):
        w[0, :3] = [-0.0, np.nan, np.inf]
    path = tmp_path / "d.safetensors"
    save_file({"w.weight": w}, str(path))
    row = model_capacity(path, None)["layers"][0]
    assert row["nonzero_parameters"] == int(np.count_nonzero(w))
    assert row["bits_per_parameter"] == 8 * np.dtype(dtype).itemsize


def test_progress_covers_exactly_the_tensors_read(tmp_path: Path) -> None:
    """``start`` announces the bytes of the counted matrices and biases (a 3-D tensor is
    skipped unread), and the ``progress`` calls add up to exactly that."""
    path = tmp_path / "m.safetensors"
    save_file(
        {
            "fc1.weight": np.ones((64, 16), np.float16),
            "fc1.bias": np.ones(64, np.float32),
            "conv.weight": np.ones((4, 4, 4), np.float32),
        },
        str(path),
    )
    announced: list[int] = []
    read: list[int] = []
    report = model_capacity(path, None, progress=read.append, start=announced.append)
    assert announced == [64 * 16 * 2 + 64 * 4] == [sum(read)]
    assert report["skipped_tensors"] == 1
