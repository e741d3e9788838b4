"""Hostile inputs (issue 17): every malformed value that reaches a parser, loader or CLI option
is refused where it enters with one clear line (a SuperposeError; exit code 2 on the CLI),
never a traceback. Each test here failed on the code before its fix.
"""

from __future__ import annotations

import errno
import hashlib
import json
import sqlite3
from pathlib import Path

import numpy as np
import pytest
from helpers import assert_one_line_error, run
from safetensors.numpy import load as st_load
from safetensors.numpy import save as st_save

from superpose import SuperposeError, Task, build, families, load_network, save_network
from superpose.cli import main
from superpose.io import META_FILE, WEIGHTS_FILE

HUGE = "9" * 5000  # beyond Python's 4300-digit limit on int("...")


@pytest.fixture
def saved(tmp_path) -> Path:
    task = Task.from_gates(4, 2, [("and", [0, 1]), ("or", [2, 3])])
    return save_network(build(task, "naive"), tmp_path / "net")


def edit_meta_text(d: Path, old: str, new: str) -> None:
    """Replace text in network.json as written (so values json.dumps cannot make get in)."""
    p = d / META_FILE
    text = p.read_text()
    assert old in text, old
    p.write_text(text.replace(old, new, 1))


# --- class 1: integers beyond the 4300-digit limit --------------------------------------------


def test_huge_integer_in_a_task_file(tmp_path, capsys):
    task = tmp_path / "t.json"
    task.write_text(f'{{"features": {HUGE}, "sparsity": 2, "gates": []}}')
    code, _, err = run(capsys, "build", "--task", task, "--out", tmp_path / "o")
    assert_one_line_error(code, err, "t.json", "99999", "5000 digits")
    assert not (tmp_path / "o").exists()


def test_huge_integer_in_network_json(saved, capsys):
    edit_meta_text(saved, '"seed": 0', f'"seed": {HUGE}')
    with pytest.raises(SuperposeError, match="5000 digits"):
        load_network(saved)
    code, _, err = run(capsys, "info", saved)
    assert_one_line_error(code, err, "network.json", "5000 digits")


def test_huge_integer_in_a_capacity_header(tmp_path, capsys):
    header = json.dumps({"w": {"dtype": "F32", "shape": [1], "data_offsets": [0, 4]}})
    header = header.replace("[1]", f"[{HUGE}]")
    blob = header.encode()
    path = tmp_path / "m.safetensors"
    path.write_bytes(len(blob).to_bytes(8, "little") + blob + b"\0" * 4)
    code, _, err = run(capsys, "capacity", path, "--json")
    assert_one_line_error(code, err, "m.safetensors", "5000 digits")


def test_huge_integer_in_a_sweep_file(tmp_path, capsys):
    spec = tmp_path / "s.yaml"
    spec.write_text(f"grid: {{family: and2, outputs: {HUGE}, construction: naive}}\n")
    code, _, err = run(capsys, "sweep", spec, "--results", tmp_path / "r.sqlite", "--dry-run")
    assert_one_line_error(code, err, "s.yaml", "line 1", "5000 digits")


def test_huge_integer_in_a_param(tmp_path, capsys):
    code, _, err = run(
        capsys,
        "build",
        "--family",
        "and2",
        "--features",
        "20",
        "--outputs",
        "10",
        "--param",
        f"width_scale={HUGE}",
        "--out",
        tmp_path / "o",
    )
    assert_one_line_error(code, err, "--param width_scale", "5000 digits")


def test_huge_integer_in_a_results_row(tmp_path, capsys):
    spec = tmp_path / "s.yaml"
    spec.write_text(
        "grid: {family: and2, features: 20, outputs: 10, construction: naive}\n"
        "measure: {bounds: false}\n"
    )
    results = tmp_path / "r.sqlite"
    code, _, err = run(capsys, "sweep", spec, "--results", results, "--json")
    assert code == 0, err
    with sqlite3.connect(results) as conn:
        conn.execute("UPDATE points SET result = ?", (f'{{"x": {HUGE}}}',))
    conn.close()
    code, _, err = run(capsys, "report", results, "--out", tmp_path / "rep")
    assert_one_line_error(code, err, "results row", "column result", "5000 digits")


# --- class 2: Infinity / 1e400 / NaN where a size is expected in network.json ---------------


@pytest.fixture
def saved_bloom(tmp_path) -> Path:
    """A superposed network: Bloom codes (with a slack) and a float32 step layer."""
    task = families.generate(
        "and2", np.random.default_rng(0), features=300, outputs=400, sparsity=2
    )
    net = build(task, "superposed")
    assert net.input_code.kind == "bloom"
    return save_network(net, tmp_path / "bloom")


def set_meta_token(d: Path, path: tuple[str | int, ...], token: str) -> None:
    """Set the value at ``path`` of network.json to the raw JSON text ``token``."""
    p = d / META_FILE
    meta = json.loads(p.read_text())
    node = meta
    for key in path[:-1]:
        node = node[key]
    node[path[-1]] = "@@TOKEN@@"
    p.write_text(json.dumps(meta, indent=1).replace('"@@TOKEN@@"', token))


SIZE_PATHS = {
    "task features": ("task", "features"),
    "task sparsity": ("task", "sparsity"),
    "layer rows": ("layers", 0, "shape", 0),
    "layer columns": ("layers", 0, "shape", 1),
    "input code width": ("input_code", "width"),
    "input code features": ("input_code", "n_features"),
    "output code width": ("output_code", "width"),
    "output code slack": ("output_code", "slack"),
}


@pytest.mark.parametrize("token", ["Infinity", "-Infinity", "1e400", "NaN", "2.5", '"200"'])
@pytest.mark.parametrize("where", sorted(SIZE_PATHS))
def test_non_integer_sizes_in_network_json(saved_bloom, where, token):
    set_meta_token(saved_bloom, SIZE_PATHS[where], token)
    with pytest.raises(SuperposeError, match="must be an integer") as info:
        load_network(saved_bloom)
    assert "network.json" in str(info.value) and "\n" not in str(info.value)


def test_infinite_size_on_the_cli(saved_bloom, capsys):
    set_meta_token(saved_bloom, ("layers", 0, "shape", 0), "1e400")
    code, _, err = run(capsys, "verify", saved_bloom)
    assert_one_line_error(code, err, "layers[0].shape", "inf")


# --- class 3: loader exceptions and the dtype of every tensor ---------------------------------


def write_tensor_file(d: Path, tensors: dict[str, np.ndarray], dtypes: dict[str, str]) -> None:
    """Write ``tensors`` as network.safetensors, with the header dtype of some tensors replaced
    (``dtypes``: name -> safetensors dtype of the same item size, e.g. BF16 for a uint16
    array), and re-sign network.json so that only the loader's validation can object."""
    blob = st_save(tensors, metadata={"format": "superpose-network"})
    n = int.from_bytes(blob[:8], "little")
    header = json.loads(blob[8 : 8 + n])
    for name, dtype in dtypes.items():
        header[name]["dtype"] = dtype
    raw = json.dumps(header, separators=(",", ":")).encode()
    raw += b" " * (-len(raw) % 8)
    blob = len(raw).to_bytes(8, "little") + raw + blob[8 + n :]
    (d / WEIGHTS_FILE).write_bytes(blob)
    meta = json.loads((d / META_FILE).read_text())
    meta["checksum"]["sha256"] = hashlib.sha256(blob).hexdigest()
    (d / META_FILE).write_text(json.dumps(meta))


def tensors_of(d: Path) -> dict[str, np.ndarray]:
    return dict(st_load((d / WEIGHTS_FILE).read_bytes()))


@pytest.mark.parametrize(
    ("dtype", "numpy_dtype"), [("BF16", np.uint16), ("F8_E4M3", np.uint8), ("F8_E5M2", np.uint8)]
)
def test_tensors_numpy_cannot_read(saved_bloom, capsys, dtype, numpy_dtype):
    t = tensors_of(saved_bloom)
    t["layers.0.data"] = np.zeros(t["layers.0.data"].shape, numpy_dtype)
    write_tensor_file(saved_bloom, t, {"layers.0.data": dtype})
    code, _, err = run(capsys, "verify", saved_bloom)
    assert_one_line_error(code, err, "layers.0.data", dtype)


@pytest.mark.parametrize("name", ["layers.0.indptr", "input_code.indptr", "task.gate_indptr"])
def test_uint64_index_arrays_beyond_int64(saved_bloom, capsys, name):
    t = tensors_of(saved_bloom)
    arr = t[name].astype(np.uint64)
    arr[1] = 2**63 + 5
    t[name] = arr
    write_tensor_file(saved_bloom, t, {})
    code, _, err = run(capsys, "verify", saved_bloom)
    assert_one_line_error(code, err, name, "U64")


@pytest.mark.parametrize("dtype", [np.float16, np.int64, np.bool_, np.complex64, np.float64])
def test_weights_of_another_dtype_than_recorded(saved_bloom, dtype):
    t = tensors_of(saved_bloom)
    for part in ("data", "bias"):
        t[f"layers.0.{part}"] = t[f"layers.0.{part}"].astype(dtype)
    write_tensor_file(saved_bloom, t, {})
    with pytest.raises(SuperposeError, match="expected F32") as info:
        load_network(saved_bloom)
    assert "\n" not in str(info.value)


def test_a_recorded_dtype_that_is_not_float32_or_float64(saved_bloom):
    t = tensors_of(saved_bloom)
    for part in ("data", "bias"):
        t[f"layers.0.{part}"] = t[f"layers.0.{part}"].astype(np.float16)
    write_tensor_file(saved_bloom, t, {})
    set_meta_token(saved_bloom, ("layers", 0, "dtype"), '"float16"')
    with pytest.raises(SuperposeError, match=r"layers\[0\]\.dtype"):
        load_network(saved_bloom)


def test_an_unexpected_tensor(saved_bloom):
    t = tensors_of(saved_bloom)
    t["layers.7.data"] = np.zeros(3, np.float32)
    write_tensor_file(saved_bloom, t, {})
    with pytest.raises(SuperposeError, match="unexpected tensor 'layers.7.data'"):
        load_network(saved_bloom)


@pytest.mark.parametrize("token", ["[1, 2]", '"and2"', "3"])
def test_family_that_is_not_an_object(saved, capsys, token):
    set_meta_token(saved, ("task", "family"), token)
    code, _, err = run(capsys, "verify", saved)
    assert_one_line_error(code, err, "task.family")


def failing_read(target: str):
    original = Path.read_bytes

    def read_bytes(self: Path) -> bytes:
        if self.name == target:
            raise OSError(errno.EIO, "Input/output error")
        return original(self)

    return read_bytes


@pytest.mark.parametrize("target", [META_FILE, WEIGHTS_FILE])
def test_read_errors_of_a_network(saved, capsys, monkeypatch, target):
    monkeypatch.setattr(Path, "read_bytes", failing_read(target))
    code, _, err = run(capsys, "verify", saved)
    assert_one_line_error(code, err, target, "cannot be read", "Input/output error")


def test_read_errors_of_task_and_sweep_files(tmp_path, capsys, monkeypatch):
    task = tmp_path / "t.json"
    task.write_text('{"features": 3, "sparsity": 2, "gates": []}')
    spec = tmp_path / "s.yaml"
    spec.write_text("grid: {family: and2, outputs: 5, construction: naive}\n")
    monkeypatch.setattr(Path, "read_bytes", failing_read("t.json"))
    code, _, err = run(capsys, "build", "--task", task, "--out", tmp_path / "o")
    assert_one_line_error(code, err, "t.json", "cannot be read")
    monkeypatch.setattr(Path, "read_bytes", failing_read("s.yaml"))
    code, _, err = run(capsys, "sweep", spec, "--results", tmp_path / "r.sqlite", "--dry-run")
    assert_one_line_error(code, err, "s.yaml", "cannot be read")


def test_read_errors_of_a_model_for_capacity(tmp_path, capsys, monkeypatch):
    import superpose.capacity as capacity

    path = tmp_path / "m.safetensors"
    path.write_bytes(st_save({"w": np.ones((2, 2), np.float32)}))

    def failing_open(*args, **kwargs):
        raise OSError(errno.EIO, "Input/output error")

    monkeypatch.setattr(capacity, "open", failing_open, raising=False)
    code, _, err = run(capsys, "capacity", path, "--json")
    assert_one_line_error(code, err, "m.safetensors", "cannot be read")


# --- class 6: command-line values --------------------------------------------------------------

BUILD = ("build", "--family", "and2", "--features", "20", "--outputs", "10")

BAD_BUILD_OPTIONS = {
    "negative seed": (("--seed", "-1"), ("--seed", ">= 0", "-1")),
    "features 10^20": (("--features", str(10**20)), ("--features", str(10**20))),
    "circuit depth 0": (("--family", "circuit", "--depth", "0"), ("--depth", ">= 1")),
    "ell 1e400": (("--param", "ell=1e400"), ("--param ell", "finite", "inf")),
    "width_scale Infinity": (("--param", "width_scale=Infinity"), ("width_scale", "finite")),
    "width_scale NaN": (("--param", "width_scale=NaN"), ("width_scale", "finite", "nan")),
    "nested infinity": (("--param", "n_in=[1, -Infinity]"), ("n_in", "finite")),
    "param seed": (("--param", "seed=1"), ("--param seed", "not a construction parameter")),
    "param rng": (("--param", "rng=1"), ("--param rng", "not a construction parameter")),
    "param task": (("--param", "task=1"), ("--param task", "not a construction parameter")),
    "param construction": (("--param", "construction=1"), ("not a construction parameter",)),
}


@pytest.mark.parametrize("case", sorted(BAD_BUILD_OPTIONS))
def test_bad_build_options(tmp_path, capsys, case):
    extra, needles = BAD_BUILD_OPTIONS[case]
    code, _, err = run(capsys, *BUILD, *extra, "--out", tmp_path / "o")
    assert_one_line_error(code, err, *needles)
    assert not (tmp_path / "o").exists()


def test_negative_seed_in_every_command(saved, tmp_path, capsys):
    for argv in (
        ("verify", saved, "--seed", "-1"),
        ("demo", "--quick", "--seed", "-1", "--out", tmp_path / "demo"),
        ("compare", "--quick", "--seed", "-1"),
    ):
        code, _, err = run(capsys, *argv)
        assert_one_line_error(code, err, "--seed must be >= 0, got -1")
    assert not (tmp_path / "demo").exists()


def test_reserved_key_in_ours_param(capsys):
    code, _, err = run(capsys, "compare", "--quick", "--ours-param", "rng=1")
    assert_one_line_error(code, err, "--ours-param rng", "not a construction parameter")


def test_library_entry_points_refuse_the_same_values():
    rng = np.random.default_rng(0)
    with pytest.raises(SuperposeError, match="depth must be a positive integer"):
        families.generate("circuit", rng, features=20, outputs=10, depth=0)
    with pytest.raises(SuperposeError, match="features must be an integer in"):
        families.generate("and2", rng, features=10**20, outputs=10)
    task = Task.from_gates(4, 2, [("and", [0, 1])])
    with pytest.raises(SuperposeError, match="width_scale must be finite"):
        build(task, "superposed", width_scale=float("inf"))


# --- class 14: no wall-clock time in network.json, --search-width included ----------------------


def _keys(value) -> set[str]:
    if isinstance(value, dict):
        return set(value) | {k for v in value.values() for k in _keys(v)}
    if isinstance(value, list):
        return {k for v in value for k in _keys(v)}
    return set()


def test_search_width_writes_no_wall_clock_time(tmp_path, capsys):
    argv = (*BUILD[:3], "--features", "30", "--outputs", "40", "--search-width")
    argv += ("--search-samples", "200")
    for name in ("a", "b"):
        code, out, err = run(capsys, *argv, "--out", tmp_path / name)
        assert code == 0, err
        assert " s" in out  # the printed summary still says how long the search took
    meta = json.loads((tmp_path / "a" / META_FILE).read_text())
    record = meta["extras"]["width_search"]
    assert record["found"] and record["probes"]
    assert not {k for k in _keys(meta) if k.endswith("seconds")}
    assert (tmp_path / "a" / META_FILE).read_bytes() == (tmp_path / "b" / META_FILE).read_bytes()


@pytest.mark.parametrize(
    ("param", "name"),
    [
        ("ell=2.5", "ell"),
        ("ell_out=-3", "ell_out"),
        ("width_scale=-1", "width_scale"),
        ("failure=2", "failure"),
        ("heavy_share=0", "heavy_share"),
    ],
)
def test_construction_parameters_out_of_range(tmp_path, capsys, param, name):
    """A parameter outside its range: one line naming it, exit 2, nothing written."""
    out = tmp_path / "o"
    argv = ["build", "--family", "and2", "--features", "200", "--outputs", "200"]
    code, _, err = run(capsys, *argv, "--param", param, "--out", out)
    assert code == 2 and name in err and len(err.strip().splitlines()) == 1
    assert not out.exists()


# --- class 10: work that grows without bound --------------------------------------------------


def _pairwise_overlaps(codes, node, arity, influence):
    """The reference: every pair of operand positions of every gate (quadratic in arity)."""
    bad, victims, start = set(), set(), 0
    for g, k in enumerate(arity.tolist()):
        ops = node[start : start + k].tolist()
        for i in range(k):
            for j in range(i + 1, k):
                a, b = ops[i], ops[j]
                if set(codes[a].tolist()) & set(codes[b].tolist()):
                    bad.add(g)
                    victims.add(a if influence[a] <= influence[b] else b)
        start += k
    return bad, victims


@pytest.mark.parametrize("seed", range(6))
def test_operand_overlaps_equal_the_pairwise_reference(seed):
    from superpose.constructions._bloom import _overlapping

    rng = np.random.default_rng(seed)
    n_nodes, width, length = 40, 30, 4
    codes = np.stack([rng.choice(width, length, replace=False) for _ in range(n_nodes)])
    arity = rng.integers(1, 6, 25)
    node = np.concatenate([rng.choice(n_nodes, k, replace=False) for k in arity])
    influence = np.bincount(node, minlength=n_nodes)
    starts = np.cumsum(arity) - arity
    bad, victims = _overlapping(codes, node, starts, arity, influence)
    want_bad, want_victims = _pairwise_overlaps(codes, node, arity, influence)
    assert set(bad.tolist()) == want_bad
    # every redrawn operand is the lighter of a meeting pair; each overlapping gate loses one
    assert set(victims.tolist()) <= want_victims and (len(victims) > 0) == bool(want_bad)


def _lexsort_overlaps(codes, node, arity, influence):
    """The two-key np.lexsort version _overlapping used before its one-key sort."""
    length = codes.shape[1]
    gate = np.repeat(np.repeat(np.arange(len(arity)), arity), length)
    bit = codes[node].ravel()
    order = np.lexsort((bit, gate))
    meet = (gate[order][1:] == gate[order][:-1]) & (bit[order][1:] == bit[order][:-1])
    if not meet.any():
        return np.zeros(0, dtype=np.int64), np.zeros(0, dtype=np.int64)
    a = node[order[:-1][meet] // length]
    b = node[order[1:][meet] // length]
    lighter = np.where(influence[a] <= influence[b], a, b)
    return np.unique(gate[order[:-1][meet]]), lighter


@pytest.mark.parametrize("seed", range(8))
def test_operand_overlaps_equal_the_lexsort_version_exactly(seed):
    """Same gates and the same victims in the same order (the build draws from them)."""
    from superpose.constructions._bloom import _overlapping

    rng = np.random.default_rng(seed)
    n_nodes = int(rng.integers(2, 300))
    length = int(rng.integers(1, 6))
    width = int(rng.integers(2 * length, 60))
    codes = np.stack([rng.choice(width, length, replace=False) for _ in range(n_nodes)])
    arity = rng.integers(1, min(n_nodes, 7) + 1, int(rng.integers(1, 400)))
    node = np.concatenate([rng.choice(n_nodes, k, replace=False) for k in arity])
    influence = np.bincount(node, minlength=n_nodes)
    starts = np.cumsum(arity) - arity
    bad, victims = _overlapping(codes, node, starts, arity, influence)
    want_bad, want_victims = _lexsort_overlaps(codes, node, arity, influence)
    np.testing.assert_array_equal(bad, want_bad)
    np.testing.assert_array_equal(victims, want_victims)


def test_one_and_over_a_thousand_inputs_builds_right(tmp_path, capsys):
    """Quadratic in arity before (over 120 s): now one pass; the network is certified right."""
    task = {"features": 1200, "sparsity": 2, "gates": [{"op": "and", "inputs": list(range(1000))}]}
    (tmp_path / "t.json").write_text(json.dumps(task))
    code, out, err = run(capsys, "build", "--task", tmp_path / "t.json", "--out", tmp_path / "n")
    assert code == 0, err
    net = load_network(tmp_path / "n")
    assert net.extras["check"]["kind"] == "exact" and net.extras["check"]["inputs_with_error"] == 0


def test_counting_sparse_inputs_is_exact_at_any_sparsity():
    import math

    from superpose.task import n_sparse_inputs

    for m, s in [(1, 1), (9, 4), (9, 5), (10, 5), (10, 6), (200, 3), (200, 150), (300, 299)]:
        assert n_sparse_inputs(m, s) == sum(math.comb(m, k) for k in range(s + 1)), (m, s)
    assert n_sparse_inputs(60_000, 50_000) == 2**60_000 - n_sparse_inputs(60_000, 9_999)


def test_huge_sparsity_is_refused_up_front_naming_it(tmp_path, capsys):
    task = {"features": 60_000, "sparsity": 50_000, "gates": [{"op": "and", "inputs": [0, 1]}]}
    (tmp_path / "t.json").write_text(json.dumps(task))
    code, _, err = run(capsys, "build", "--task", tmp_path / "t.json", "--out", tmp_path / "n")
    assert_one_line_error(code, err, "s-sparse inputs", "smaller sparsity")
    assert not (tmp_path / "n").exists()


def test_circuits_deeper_than_the_planner_takes(tmp_path, capsys):
    from superpose.constructions.circuit import MAX_DEPTH

    task = families.layered_circuit(20, 1, MAX_DEPTH + 4, np.random.default_rng(0))
    # The default build: 'circuit' cannot plan it, 'stream' plans more than the explicit
    # network, so the explicit network is built, saying why.
    net = build(task, seed=0)
    assert net.construction == "naive" and "m + m' = 40" in net.extras["fallback"]
    assert net.extras["check"]["passed"]
    save_network(task_net := net, tmp_path / "n")
    assert task_net.task.depth == MAX_DEPTH + 4
    code, _, err = run(
        capsys,
        *("build", "--family", "circuit", "--depth", MAX_DEPTH + 4, "--features", 20),
        *("--outputs", MAX_DEPTH + 4, "--construction", "circuit", "--out", tmp_path / "c"),
    )
    assert_one_line_error(code, err, f"{MAX_DEPTH + 4} levels", f"more than the {MAX_DEPTH}")
    assert not (tmp_path / "c").exists()


# --- class 4: text from files and paths is never markup or terminal control ----------------


def test_markup_in_network_json_is_shown_as_text(saved, capsys):
    edit_meta_text(saved, '"construction": "naive"', '"construction": "[/]x[bold]"')
    code, out, err = run(capsys, "info", saved)
    assert code == 0, err
    assert "[/]x[bold]" in out
    code, out, err = run(capsys, "verify", saved, "--mode", "random", "--samples", "50")
    assert code == 0 and "Traceback" not in err, err


def _model(path: Path, names: list[str]) -> Path:
    path.write_bytes(st_save({n: np.ones((4, 8), dtype=np.float32) for n in names}))
    return path


@pytest.mark.parametrize(
    "name",
    [
        "x[/]y.weight",
        "a[link=http://evil]b.weight",
        "w\x1b]8;;http://evil\x07link\x1b]8;;\x07.weight",
    ],
)
def test_markup_and_escapes_in_tensor_names(tmp_path, capsys, name):
    path = _model(tmp_path / "m.safetensors", [name, "ok.weight"])
    code, out, err = run(capsys, "capacity", path)
    assert code == 0, err
    assert "\x1b" not in out and "\x07" not in out  # no raw terminal control reaches the user
    shown = name.replace("\x1b", "\\x1b").replace("\x07", "\\x07")
    assert shown[:4] in out  # shown as text (the table may wrap the rest)


def test_markup_in_a_sweep_name_and_an_out_path(tmp_path, capsys):
    spec = tmp_path / "s.yaml"
    spec.write_text('name: "[/]odd[red]"\ngrid: {family: and2, outputs: 10, construction: naive}\n')
    code, out, err = run(capsys, "sweep", spec, "--results", tmp_path / "r.sqlite")
    assert code == 0, err
    assert "[/]odd[red]" in out
    out_dir = tmp_path / "a[/]b"
    code, out, err = run(
        capsys, "build", "--family", "and2", "--features", 20, "--outputs", 20, "--out", out_dir
    )
    assert code == 0, err
    assert "a[/]b" in out and load_network(out_dir).task.n_gates == 20


def test_escape_bytes_in_an_error_message_are_shown_not_sent(tmp_path, capsys):
    path = tmp_path / "t\x1b[2Jx.json"
    path.write_text("{not json")
    code, _, err = run(capsys, "build", "--task", path, "--out", tmp_path / "n")
    assert_one_line_error(code, err, "\\x1b[2Jx.json")
    assert "\x1b" not in err


# --- class 11: Ctrl-C of a parallel verification -------------------------------------------


def test_terminating_a_pool_retires_its_manager_thread():
    """Left running, the thread is woken at exit through a pipe it may be closing: Python 3.11
    prints a 17-line "Exception ignored ... Bad file descriptor" after our message."""
    import multiprocessing
    from concurrent.futures import ProcessPoolExecutor
    from concurrent.futures import process as futures_process

    from superpose.parallel import terminate_pool

    pool = ProcessPoolExecutor(2, mp_context=multiprocessing.get_context("fork"))
    futures = [pool.submit(sum, range(10**6)) for _ in range(4)]
    futures[0].result()
    manager = pool._executor_manager_thread
    terminate_pool(pool)
    assert not manager.is_alive()
    assert manager not in futures_process._threads_wakeups


def test_ctrl_c_of_verify_with_two_jobs_says_one_thing(tmp_path):
    import os
    import signal
    import subprocess
    import sys
    import time

    net = tmp_path / "n"
    assert main(["build", "--family", "and2", "--features", "2000", "--outputs", "2000",
                 "--out", str(net), "--json"]) == 0  # fmt: skip
    for pause in (2.0, 3.5):
        proc = subprocess.Popen(
            [sys.executable, "-c", "from superpose.cli import main; print('ready', flush=True); main()",
             "verify", str(net), "--mode", "random", "--samples", "100000000", "--jobs", "2"],
            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, start_new_session=True,
        )  # fmt: skip
        assert proc.stdout.readline().strip() == "ready"
        time.sleep(pause)
        os.killpg(proc.pid, signal.SIGINT)  # what Ctrl-C sends: the whole process group
        _, err = proc.communicate(timeout=60)
        assert proc.returncode == 130, err
        assert "Exception ignored" not in err and "Traceback" not in err, err
        assert err.strip().splitlines()[-1].startswith("interrupted:")


# --- decided: a key given twice is refused, not silently overwritten -------------------------


def test_duplicate_keys_in_json_and_yaml_are_refused(tmp_path, saved, capsys):
    task = tmp_path / "t.json"
    task.write_text('{"features": 4, "sparsity": 2, "sparsity": 3, "gates": []}')
    code, _, err = run(capsys, "build", "--task", task, "--out", tmp_path / "n")
    assert_one_line_error(code, err, "t.json", "'sparsity' is given twice")
    edit_meta_text(saved, '"construction": "naive"', '"construction": "naive", "construction": "x"')
    code, _, err = run(capsys, "info", saved)
    assert_one_line_error(code, err, "'construction' is given twice")
    spec = tmp_path / "s.yaml"
    spec.write_text("grid: {family: and2, outputs: 10, outputs: 20, construction: naive}\n")
    code, _, err = run(capsys, "sweep", spec, "--dry-run", "--results", tmp_path / "r.sqlite")
    assert_one_line_error(code, err, "s.yaml", "line 1", "'outputs' is given twice")
