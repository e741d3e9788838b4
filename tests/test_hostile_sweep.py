"""Hostile sweep files and results files (hardening issue, classes 7-9): deep nesting,
non-string parameter names, sizes beyond SQLite's integers, YAML alias bombs, and tampered or
foreign SQLite files. Each is refused where it enters with one short line naming the offending
value (exit code 2), in bounded time and memory, leaving existing files as they were. Each test
here failed on the code before its fix.
"""

from __future__ import annotations

import hashlib
import sqlite3
from pathlib import Path

import pytest
from helpers import assert_one_line_error, run

from superpose import SuperposeError
from superpose.cli import main
from superpose.sweep import load_spec, read_results

OK_GRID = "grid: {family: and2, features: 20, outputs: 10, construction: naive}\n"


def _one_line(code: int, err: str, *needles: str) -> None:
    assert_one_line_error(code, err, *needles, max_len=400)


def dry_run(capsys, tmp_path: Path, text: str) -> tuple[int, str, str]:
    spec = tmp_path / "s.yaml"
    spec.write_text(text)
    return run(capsys, "sweep", spec, "--dry-run", "--results", tmp_path / "r.sqlite")


def digest(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


# --- class 7: deep nesting, non-string keys, sizes beyond int64 ----------------------------

DEEP = 100_000


@pytest.mark.parametrize(
    "text",
    [
        "description: " + "[" * DEEP + "]" * DEEP + "\n" + OK_GRID,
        "description: " + "{a: " * DEEP + "1" + "}" * DEEP + "\n" + OK_GRID,
        "[" * DEEP,  # unbalanced too: the depth is refused before the syntax error is found
    ],
    ids=["lists", "mappings", "unclosed"],
)
def test_deeply_nested_sweep_file(tmp_path, capsys, text):
    code, _, err = dry_run(capsys, tmp_path, text)
    _one_line(code, err, "s.yaml", "line 1", "nested deeper than 32")
    # 30 levels in the description (32 in all) are fine
    (tmp_path / "s.yaml").write_text("description: " + "[" * 30 + "]" * 30 + "\n" + OK_GRID)
    assert len(load_spec(tmp_path / "s.yaml").points) == 1


@pytest.mark.parametrize("key", ["1", "true", "1.5", "null"])
def test_non_string_param_name(tmp_path, capsys, key):
    code, _, err = dry_run(
        capsys,
        tmp_path,
        f"grid: {{family: and2, outputs: 10, construction: naive, params: {{{key}: 2}}}}\n",
    )
    _one_line(code, err, "s.yaml", "grid.params", "parameter names must be text")


@pytest.mark.parametrize(
    "grid, needle",
    [
        ("outputs: 1e30", "grid.outputs"),
        ("outputs: 100000001", "grid.outputs"),
        ("outputs: 10, features: 1e30", "grid.features"),
        ("outputs: 10, seeds: [0, 1e30]", "grid.seeds"),
        ("family: permutation, outputs: 10, sparsity: 1e30", "grid.sparsity"),
        ("outputs: 10, family: kand, arity: 1e30", "grid.arity"),
        ("outputs: 10, family: circuit, depth: 1e30", "grid.depth"),
    ],
)
def test_sizes_beyond_their_limits_are_refused_before_running(tmp_path, capsys, grid, needle):
    spec = tmp_path / "s.yaml"
    text = f"grid: {{family: and2, construction: naive, {grid}}}\nmeasure: {{bounds: false}}\n"
    spec.write_text(text.replace("family: and2, ", "") if "family:" in grid else text)
    results = tmp_path / "r.sqlite"
    code, _, err = run(capsys, "sweep", spec, "--results", results)
    _one_line(code, err, "s.yaml", needle, "integer", "at most")
    assert not results.exists()


def test_measure_counts_beyond_int64_are_refused(tmp_path, capsys):
    code, _, err = dry_run(
        capsys, tmp_path, OK_GRID + "measure: {verify: {mode: random, samples: 1e30}}\n"
    )
    _one_line(code, err, "s.yaml", "measure.verify.samples")


# --- class 8: YAML aliases ------------------------------------------------------------------


def laughs(levels: int, name: bool = False) -> str:
    """The "billion laughs" file: each level a list of nine aliases of the one before."""
    lines = ["description:", "  l0: &l0 [lol, lol, lol, lol, lol, lol, lol, lol, lol]"]
    for i in range(1, levels):
        lines.append(f"  l{i}: &l{i} [" + ", ".join([f"*l{i - 1}"] * 9) + "]")
    lines.append(f"{'name' if name else '  all'}: *l{levels - 1}")
    return "\n".join(lines) + "\n" + OK_GRID


def test_alias_bomb_in_a_free_text_key(tmp_path, capsys):
    text = laughs(9)
    assert len(text.encode()) < 1000
    code, _, err = dry_run(capsys, tmp_path, text)
    _one_line(code, err, "s.yaml", "aliases", "100,000")
    # aliases that stay small still work: one parameter set shared by two grids
    spec = tmp_path / "s.yaml"
    spec.write_text(
        "grid:\n"
        "  - {family: and2, outputs: 50, construction: superposed, params: &p {ell: 6}}\n"
        "  - {family: or2, outputs: 50, construction: superposed, params: *p}\n"
        "description: [" + ", ".join(["*p"] * 50) + "]\n"
    )
    assert len(load_spec(spec).points) == 2


def test_alias_bomb_in_the_name_gives_a_short_line(tmp_path, capsys):
    code, _, err = dry_run(capsys, tmp_path, laughs(6, name=True))
    _one_line(code, err, "s.yaml", "aliases")


def test_recursive_alias_is_refused(tmp_path, capsys):
    code, _, err = dry_run(capsys, tmp_path, "description: &a [1, *a]\n" + OK_GRID)
    _one_line(code, err, "s.yaml", "line 1", "alias", "'a'")


def test_long_bad_values_are_cut_short_in_the_message(tmp_path, capsys):
    long = "y" * 100_000
    for text in (
        f"root_seed: {long}\n{OK_GRID}",
        f"? {long}\n: 1\n{OK_GRID}",  # a key longer than 1024 characters must be explicit
        f"grid: {{family: {long}, outputs: 10}}\n",
        f"grid: {{family: and2, outputs: 10, params: {{ell: [{long}]}}}}\n",
        f"{OK_GRID}measure: {{verify: {long}}}\n",
    ):
        code, _, err = dry_run(capsys, tmp_path, text)
        _one_line(code, err, "s.yaml", "yyyy", "…")


# --- class 9: tampered and foreign results files --------------------------------------------


@pytest.fixture(scope="module")
def good_results(tmp_path_factory) -> Path:
    d = tmp_path_factory.mktemp("good")
    spec = d / "s.yaml"
    spec.write_text(
        "grid: {family: and2, features: 20, outputs: [10, 12], construction: naive}\n"
        "measure: {bounds: true, verify: {mode: random, samples: 50}}\n"
    )
    assert main(["sweep", str(spec), "--results", str(d / "r.sqlite"), "--json"]) == 0
    return d / "r.sqlite"


@pytest.fixture
def results(good_results, tmp_path, capsys) -> Path:
    capsys.readouterr()
    path = tmp_path / "r.sqlite"
    with sqlite3.connect(good_results) as src, sqlite3.connect(path) as dst:
        src.backup(dst)
    src.close()
    dst.close()
    return path


def tamper(path: Path, sql: str, *args: object) -> None:
    conn = sqlite3.connect(path)
    with conn:
        conn.execute(sql, args)
    conn.close()


HUGE_INT = "9" * 4000  # within the digit limit, beyond any float


@pytest.mark.parametrize(
    "column, value, needle",
    [
        ("result", "{not json", "not valid JSON"),
        ("result", "[]", "a JSON object"),
        ("params", '"and2"', "a JSON object"),
        ("params", '{"family": "and2"}', "column params: construction"),
        ("seed_path", '{"a": 1}', "seed_path"),
        ("result", '{"task": {"outputs": "ten", "features": 20}, "counts": {}}', "task.outputs"),
        ("result", '{"task": {"outputs": 1e400, "features": 20}, "counts": {}}', "task.outputs"),
        (
            "result",
            f'{{"task": {{"outputs": 10, "features": 20}}, "counts": {{"neurons": {HUGE_INT}}}}}',
            "counts.neurons",
        ),
        (
            "result",
            '{"task": {"outputs": 10, "features": 20}, "counts": {"neurons": 3}, '
            '"verify": {"inputs_checked": "many", "inputs_with_error": 0}}',
            "verify.inputs_checked",
        ),
        (
            "result",
            '{"task": {"outputs": 10, "features": 20}, "counts": {}, "bounds": {"tightness": 5}}',
            "bounds.tightness",
        ),
        ("sweep", b"\x00\xff", "column sweep"),  # TEXT affinity keeps a blob
        ("result", 12, "column result"),
        ("result", "[" * 100_000 + "]" * 100_000, "column result"),
        ("status", "weird", "status"),
    ],
)
def test_tampered_results_row(results, tmp_path, capsys, column, value, needle):
    tamper(results, f"UPDATE points SET {column} = ? WHERE grid_index = 1", value)
    out = tmp_path / "rep"
    code, _, err = run(capsys, "report", results, "--out", out)
    _one_line(code, err, "r.sqlite", "row", needle)
    assert not out.exists()


def test_tampered_row_with_a_long_value_is_cut_short(results, capsys, tmp_path):
    # first the guard against over-eager checks: an intact file with a failed point reports
    tamper(
        results,
        "UPDATE points SET status = 'error', result = NULL, error = 'boom' WHERE grid_index = 1",
    )
    code, _, err = run(capsys, "report", results, "--out", tmp_path / "ok")
    assert code == 0, err
    assert "boom" in (tmp_path / "ok" / "report.md").read_text()
    assert [r["status"] for r in read_results(results, status=None)] == ["ok", "error"]
    tamper(results, "UPDATE points SET status = ? WHERE grid_index = 1", "z" * 100_000)
    code, _, err = run(capsys, "report", results, "--out", tmp_path / "rep")
    _one_line(code, err, "r.sqlite", "zzzz", "…")


def test_foreign_points_table(tmp_path, capsys):
    path = tmp_path / "r.sqlite"
    tamper(path, "CREATE TABLE points (a TEXT, b INTEGER)")
    tamper(path, "INSERT INTO points VALUES ('x', 1)")
    before = digest(path)
    code, _, err = run(capsys, "report", path, "--out", tmp_path / "rep")
    _one_line(code, err, "r.sqlite", "points", "not a superpose results file")
    spec = tmp_path / "s.yaml"
    spec.write_text(OK_GRID)
    for extra in ((), ("--dry-run",)):
        code, _, err = run(capsys, "sweep", spec, "--results", path, *extra)
        _one_line(code, err, "r.sqlite", "points", "not a superpose results file")
    assert digest(path) == before
    with pytest.raises(SuperposeError, match="not a superpose results file"):
        read_results(path)


def test_sweep_refuses_a_foreign_sqlite_file_before_touching_it(tmp_path, capsys):
    path = tmp_path / "people.sqlite"
    tamper(path, "CREATE TABLE people (name TEXT)")
    tamper(path, "INSERT INTO people VALUES ('ada')")
    before = digest(path)
    spec = tmp_path / "s.yaml"
    spec.write_text(OK_GRID + "measure: {bounds: false, verify: false}\n")
    code, _, err = run(capsys, "sweep", spec, "--results", path)
    _one_line(code, err, "people.sqlite", "people", "not a superpose results file")
    assert digest(path) == before
    assert sorted(p.name for p in tmp_path.iterdir()) == ["people.sqlite", "s.yaml"]


def test_sweep_on_a_results_file_with_a_broken_schema_version(results, tmp_path, capsys):
    tamper(results, "UPDATE info SET value = ? WHERE key = 'schema_version'", "v" * 100_000)
    spec = tmp_path / "s.yaml"
    spec.write_text(OK_GRID)
    code, _, err = run(capsys, "sweep", spec, "--results", results)
    _one_line(code, err, "r.sqlite", "schema version", "…")
