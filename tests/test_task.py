"""Task JSON: loading, validation of every rule of docs/DESIGN.md, Tasks, and every bad-input path."""

from __future__ import annotations

import json

import numpy as np
import pytest
from helpers import gate_list, task_specs
from hypothesis import given

from superpose import SuperposeError, Task, load_task
from superpose.task import n_sparse_inputs, task_from_dict


def write(tmp_path, data, name="task.json"):
    path = tmp_path / name
    path.write_text(data if isinstance(data, str) else json.dumps(data))
    return path


def test_load_every_op_and_k_input(tmp_path):
    data = {
        "features": 6,
        "sparsity": 2,
        "gates": [
            {"op": "copy", "inputs": [5]},
            {"op": "and", "inputs": [0, 1]},
            {"op": "or", "inputs": [1, 2]},
            {"op": "xor", "inputs": [2, 3]},
            {"op": "andnot", "inputs": [3, 4]},
            {"op": "and", "inputs": [0, 2, 4]},
            {"op": "or", "inputs": [1, 3, 5, 0]},
        ],
    }
    task = load_task(write(tmp_path, data))
    assert task.features == 6 and task.sparsity == 2 and task.n_gates == 7
    assert gate_list(task) == [(g["op"], g["inputs"]) for g in data["gates"]]
    assert task.outputs.tolist() == list(range(6, 13))
    assert task.arity.tolist() == [1, 2, 2, 2, 2, 3, 4]
    assert task.depth == 1
    assert task.op_counts() == {"copy": 1, "and": 2, "or": 2, "xor": 1, "andnot": 1}
    assert task.influence.tolist() == [3, 3, 3, 3, 2, 2]


def test_gates_reading_gates_and_outputs(tmp_path):
    data = {
        "features": 3,
        "sparsity": 2,
        "gates": [
            {"op": "and", "inputs": [0, 1]},  # 3, level 1
            {"op": "or", "inputs": [3, 2]},  # 4, level 2
            {"op": "xor", "inputs": [4, 0]},  # 5, level 3
            {"op": "copy", "inputs": [1]},  # 6, level 1
        ],
        "outputs": [5, 1, 3],
    }
    task = load_task(write(tmp_path, data))
    assert task.outputs.tolist() == [5, 1, 3]
    assert task.n_outputs == 3
    assert task.node_level.tolist() == [0, 0, 0, 1, 2, 3, 1]
    assert task.depth == 3
    # influence counts direct reads of input features only
    assert task.influence.tolist() == [2, 2, 1]


@given(task_specs(max_features=10, max_gates=12))
def test_json_round_trip(tmp_path_factory, spec):
    m, s, gates, outputs = spec
    data = {"features": m, "sparsity": s, "gates": [{"op": o, "inputs": i} for o, i in gates]}
    if outputs is not None:
        data["outputs"] = outputs
    path = tmp_path_factory.mktemp("rt") / "t.json"
    path.write_text(json.dumps(data))
    task = load_task(path)
    assert gate_list(task) == gates
    want_outputs = outputs if outputs is not None else list(range(m, m + len(gates)))
    assert task.outputs.tolist() == want_outputs
    # save -> load reproduces the same task; to_dict omits the default outputs list
    out = path.with_name("saved.json")
    task.save(out)
    again = load_task(out)
    assert gate_list(again) == gates
    assert again.outputs.tolist() == want_outputs
    assert ("outputs" in json.loads(out.read_text())) == (
        want_outputs != list(range(m, m + len(gates)))
    )
    # levels: inputs 0, gates 1 + deepest operand (computed independently)
    level = [0] * m
    for _, ins in gates:
        level.append(1 + max(level[i] for i in ins))
    assert task.node_level.tolist() == level
    assert task.depth == max(level[m:], default=0)


def test_family_field_kept(tmp_path):
    data = {
        "features": 2,
        "sparsity": 1,
        "gates": [{"op": "and", "inputs": [0, 1]}],
        "family": {"name": "mine"},
    }
    task = load_task(write(tmp_path, data))
    assert task.family == {"name": "mine"}
    assert task.to_dict()["family"] == {"name": "mine"}


BASE = {"features": 5, "sparsity": 2, "gates": [{"op": "and", "inputs": [0, 1]}]}


def variant(**changes):
    data = json.loads(json.dumps(BASE))
    data.update(changes)
    return data


# (task data, substrings every message must contain)
BAD_TASKS = {
    "unknown op": (
        variant(gates=[{"op": "and", "inputs": [0, 1]}, {"op": "nand", "inputs": [0, 1]}]),
        ["gate 1", "unknown op", "nand"],
    ),
    "id not existing yet": (
        variant(gates=[{"op": "and", "inputs": [0, 5]}]),
        ["gate 0", "5", "does not exist yet"],
    ),
    "reads itself": (
        variant(gates=[{"op": "and", "inputs": [0, 1]}, {"op": "or", "inputs": [6, 0]}]),
        ["gate 1", "6", "does not exist yet"],
    ),
    "reads later gate": (
        variant(gates=[{"op": "and", "inputs": [0, 6]}, {"op": "or", "inputs": [1, 2]}]),
        ["gate 0", "6"],
    ),
    "negative id": (variant(gates=[{"op": "and", "inputs": [-1, 0]}]), ["gate 0", "-1"]),
    "duplicate operand": (
        variant(gates=[{"op": "and", "inputs": [1, 2]}, {"op": "and", "inputs": [3, 3]}]),
        ["gate 1", "twice"],
    ),
    "sparsity zero": (variant(sparsity=0), ["sparsity", "0"]),
    "sparsity negative": (variant(sparsity=-2), ["sparsity", "-2"]),
    "sparsity above features": (variant(sparsity=6), ["sparsity 6", "5"]),
    "sparsity not int": (variant(sparsity=2.5), ["sparsity"]),
    "sparsity bool": (variant(sparsity=True), ["sparsity"]),
    "features zero": (variant(features=0), ["features"]),
    "features string": (variant(features="5"), ["features"]),
    "copy with two": (
        variant(gates=[{"op": "copy", "inputs": [0, 1]}]),
        ["gate 0", "copy", "exactly 1"],
    ),
    "and with one": (
        variant(gates=[{"op": "and", "inputs": [0]}]),
        ["gate 0", "and", "at least 2"],
    ),
    "or with one": (variant(gates=[{"op": "or", "inputs": [0]}]), ["gate 0", "or", "at least 2"]),
    "xor with none": (variant(gates=[{"op": "xor", "inputs": []}]), ["gate 0", "xor"]),
    "andnot with three": (
        variant(gates=[{"op": "andnot", "inputs": [0, 1, 2]}]),
        ["gate 0", "andnot", "exactly 2"],
    ),
    "unknown top key": (variant(outputz=[5]), ["unknown key", "outputz"]),
    "unknown gate key": (variant(gates=[{"op": "and", "inputs": [0, 1], "weight": 2}]), ["gate 0"]),
    "missing gates": ({"features": 5, "sparsity": 2}, ["missing key", "gates"]),
    "missing features": ({"sparsity": 2, "gates": []}, ["missing key", "features"]),
    "gates not list": (variant(gates={"op": "and"}), ["gates"]),
    "gate not object": (variant(gates=[[0, 1]]), ["gate 0"]),
    "inputs not ints": (variant(gates=[{"op": "and", "inputs": [0, "1"]}]), ["gate 0", "inputs"]),
    "inputs missing": (variant(gates=[{"op": "and"}]), ["gate 0", "inputs"]),
    "op not string": (variant(gates=[{"op": 3, "inputs": [0, 1]}]), ["gate 0", "unknown op"]),
    "output not existing": (variant(outputs=[5, 9]), ["output id 9"]),
    "output negative": (variant(outputs=[-1]), ["output id -1"]),
    "outputs empty": (variant(outputs=[]), ["outputs"]),
    "outputs twice": (variant(outputs=[5, 5]), ["outputs", "twice"]),
    "outputs not list": (variant(outputs=5), ["outputs"]),
    "no gates, no outputs": (variant(gates=[]), ["outputs"]),
    "family not object": (variant(family="and2"), ["family"]),
    "top level list": ([1, 2, 3], ["JSON object"]),
}


@pytest.mark.parametrize("name", sorted(BAD_TASKS))
def test_bad_task_is_rejected_naming_the_problem(tmp_path, name):
    data, needles = BAD_TASKS[name]
    path = write(tmp_path, data)
    with pytest.raises(SuperposeError) as info:
        load_task(path)
    message = str(info.value)
    assert "\n" not in message
    assert str(path) in message
    for needle in needles:
        assert needle in message, (needle, message)


@pytest.mark.parametrize(
    ("text", "line"),
    [
        ('{"features": 3,\n "sparsity": 2\n "gates": []}', 3),
        ('{"features": 3, "sparsity": 2, "gates": [\n{"op": "and", "inputs": [0, 1]},\n]}', 3),
        ("", 1),
        ("{\n\n\n", 4),
    ],
)
def test_malformed_json_names_the_line(tmp_path, text, line):
    path = write(tmp_path, text)
    with pytest.raises(SuperposeError) as info:
        load_task(path)
    message = str(info.value)
    assert f"line {line}" in message and "malformed JSON" in message and str(path) in message


def test_missing_file_and_binary_file(tmp_path):
    with pytest.raises(SuperposeError, match="no such task file"):
        load_task(tmp_path / "absent.json")
    with pytest.raises(SuperposeError, match="no such task file"):
        load_task(tmp_path)  # a directory is not a task file
    path = tmp_path / "bin.json"
    path.write_bytes(b"\xff\xfe\x00garbage")
    with pytest.raises(SuperposeError, match="UTF-8"):
        load_task(path)


def test_deeply_nested_json_is_an_error_not_a_crash(tmp_path):
    path = write(tmp_path, "[" * 100_000 + "]" * 100_000)
    with pytest.raises(SuperposeError):
        load_task(path)


def test_from_gates_and_constructor_validate():
    with pytest.raises(SuperposeError, match="gate 0: unknown op 'nand'"):
        Task.from_gates(3, 1, [("nand", [0, 1])])
    with pytest.raises(SuperposeError, match="gate 1"):
        Task.from_gates(3, 1, [("and", [0, 1]), ("and", [2, 4])])
    with pytest.raises(SuperposeError, match="sparsity 4 exceeds"):
        Task.from_gates(3, 4, [("and", [0, 1])])
    with pytest.raises(SuperposeError, match="malformed"):
        Task(3, 1, np.array([1], np.int8), np.array([0, 3]), np.array([0, 1]), np.array([3]))
    with pytest.raises(SuperposeError, match="unknown op code 9"):
        Task(3, 1, np.array([9], np.int8), np.array([0, 2]), np.array([0, 1]), np.array([3]))


def test_task_from_dict_matches_load_task(tmp_path):
    data = variant(gates=[{"op": "xor", "inputs": [0, 1, 2]}], outputs=[5, 0])
    a = task_from_dict(data)
    b = load_task(write(tmp_path, data))
    assert gate_list(a) == gate_list(b) == [("xor", [0, 1, 2])]
    assert a.outputs.tolist() == b.outputs.tolist() == [5, 0]


def test_with_sparsity_revalidates():
    task = Task.from_gates(4, 2, [("and", [0, 1])])
    assert task.with_sparsity(4).sparsity == 4
    with pytest.raises(SuperposeError):
        task.with_sparsity(5)
    with pytest.raises(SuperposeError):
        task.with_sparsity(0)


@pytest.mark.parametrize(
    ("m", "s", "want"), [(1, 1, 2), (5, 2, 16), (40, 3, 10701), (10, 10, 1024)]
)
def test_n_sparse_inputs(m, s, want):
    assert n_sparse_inputs(m, s) == want


def test_pairwise_constructor():
    task = Task.pairwise(5, 2, np.array([[0, 1], [3, 4]]), op="xor")
    assert gate_list(task) == [("xor", [0, 1]), ("xor", [3, 4])]
    with pytest.raises(SuperposeError, match="twice"):
        Task.pairwise(5, 2, np.array([[2, 2]]))
