"""Hostile inputs (issue 17): every malformed value that reaches a parser, loader or CLI option
is refused where it enters with one clear line (a SuperposeError; exit code 2 on the CLI),
never a traceback. Each test here failed on the code before its fix.
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from superpose import SuperposeError, Task, build, load_network, save_network
from superpose.cli import main
from superpose.io import META_FILE

HUGE = "9" * 5000  # beyond Python's 4300-digit limit on int("...")


def run(capsys, *argv: str) -> tuple[int, str, str]:
    code = main([str(a) for a in argv])
    out, err = capsys.readouterr()
    return code, out, err


def assert_one_line_error(code: int, err: str, *needles: str) -> None:
    text = err.strip()
    assert code == 2, err
    assert text.startswith("error:"), err
    assert "\n" not in text, err
    assert "Traceback" not in err
    for needle in needles:
        assert needle in text, (needle, text)


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
