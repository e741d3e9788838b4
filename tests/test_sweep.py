"""Sweeps (superpose.sweep, ``superpose sweep``): grid, seeds, store, resume, executors, kill."""

from __future__ import annotations

import json
import os
import signal
import sqlite3
import subprocess
import sys
import time

import numpy as np
import pytest
import yaml

from superpose import SuperposeError
from superpose.cli import main
from superpose.sweep import (
    SCHEMA_VERSION,
    ResultStore,
    SerialExecutor,
    SweepInterrupted,
    load_spec,
    parse_spec,
    read_results,
    result_table,
    run_point,
    run_sweep,
)


def spec_dict(**grid_overrides):
    grid = {
        "family": "and2",
        "outputs": [40, 60],
        "construction": "naive",
        "seeds": 2,
        **grid_overrides,
    }
    return {
        "name": "t",
        "root_seed": 11,
        "grid": grid,
        "measure": {"verify": {"mode": "random", "samples": 200}, "bounds": True},
    }


# --- the spec ---------------------------------------------------------------------------


def test_grid_order_seeds_and_keys():
    spec = parse_spec(spec_dict(construction=["naive", "superposed"]))
    assert len(spec.points) == 8
    order = [(p.params["construction"], p.params["outputs"], p.params["seed"]) for p in spec.points]
    assert order[:4] == [("naive", 40, 0), ("naive", 40, 1), ("naive", 60, 0), ("naive", 60, 1)]
    # One root SeedSequence, spawned once per point in grid order.
    root = np.random.SeedSequence(11).spawn(len(spec.points))
    for point, child in zip(spec.points, root, strict=True):
        assert (point.seed_root, point.seed_path) == (child.entropy, child.spawn_key)
    # Keys: stable across parses, distinct per point, and sensitive to measurements and seed.
    again = parse_spec(spec_dict(construction=["naive", "superposed"]))
    assert [p.key for p in again.points] == [p.key for p in spec.points]
    assert len({p.key for p in spec.points}) == 8
    other = spec_dict()
    other["measure"]["verify"]["samples"] = 201
    assert parse_spec(other).points[0].key != parse_spec(spec_dict()).points[0].key
    assert parse_spec({**spec_dict(), "root_seed": 12}).points[0].key != spec.points[0].key


def test_features_default_to_outputs_and_grids_union():
    data = spec_dict(features="same")
    data["grid"] = [data["grid"], {**data["grid"], "features": 100, "outputs": 40}]
    spec = parse_spec(data)
    sizes = [(p.params["features"], p.params["outputs"]) for p in spec.points]
    assert sizes == [(40, 40), (40, 40), (60, 60), (60, 60), (100, 40), (100, 40)]
    # The same point listed twice is run once.
    data["grid"].append(data["grid"][0])
    assert len(parse_spec(data).points) == 6


def test_construction_params_are_a_grid():
    spec = parse_spec(
        spec_dict(construction="superposed", params={"ell": [4, 5], "ell_out": 4}, seeds=1)
    )
    assert [(p.params["params"], p.params["outputs"]) for p in spec.points] == [
        ({"ell": 4, "ell_out": 4}, 40),
        ({"ell": 4, "ell_out": 4}, 60),
        ({"ell": 5, "ell_out": 4}, 40),
        ({"ell": 5, "ell_out": 4}, 60),
    ]


def test_yaml_scientific_notation_reads_as_numbers(tmp_path):
    """YAML 1.1 (safe_load) leaves 1e5 a string; sizes, counts and parameters accept it."""
    path = tmp_path / "sci.yaml"
    path.write_text(
        "grid: {family: and2, outputs: [1e3, 2000.0], construction: superposed,\n"
        "       params: {failure: 1e-6}}\n"
        "measure: {verify: {samples: 1e4}}\n"
        "description: 2024-01-01\n"
    )
    spec = load_spec(path)
    assert [p.params["outputs"] for p in spec.points] == [1000, 2000]
    assert spec.points[0].params["params"] == {"failure": 1e-6}
    assert spec.measure["verify"]["samples"] == 10_000


@pytest.mark.parametrize(
    ("change", "message"),
    [
        ({"grdi": {}}, "unknown key 'grdi'.*did you mean 'grid'"),
        ({"grid": {"family": "and2", "outputs": "many"}}, "grid.outputs: expected a positive"),
        ({"grid": {"family": "and2", "outputs": []}}, "grid.outputs: an empty list"),
        ({"grid": {"family": "nand", "outputs": 5}}, "grid.family: expected one of"),
        ({"grid": {"outputs": 5}}, "missing key grid.family"),
        ({"grid": {"family": "and2"}}, "missing key grid.outputs"),
        ({"grid": {"family": "and2", "outputs": 9, "sparsity": 0}}, "grid.sparsity"),
        ({"grid": {"family": "and2", "outputs": 9, "construction": "magic"}}, "grid.construction"),
        ({"grid": {"family": "and2", "outputs": 9, "params": {"nope": 1}}}, "grid.params"),
        ({"grid": {"family": "and2", "outputs": 9, "params": {"ell": [[1]]}}}, "grid.params.ell"),
        ({"grid": {"family": "and2", "outputs": 9, "seeds": [1, 1]}}, "grid.seeds"),
        ({"grid": {"family": "and2", "outputs": 9, "influence": "lumpy"}}, "grid.influence"),
        ({"grid": {"family": "and2", "outputs": 9, "colour": 1}}, "unknown key grid.'colour'"),
        ({"grid": [{"family": "and2", "outputs": 9}, 3]}, r"grid\[1\]: expected a mapping"),
        ({"measure": {"verify": {"mode": "sideways"}}}, "measure.verify.mode"),
        ({"measure": {"verify": {"samples": -1}}}, "measure.verify.samples"),
        ({"measure": {"verify": {"sample": 5}}}, "unknown key measure.verify.'sample'"),
        ({"measure": {"width_search": {"min_scale": 2}}}, "measure.width_search"),
        ({"measure": {"width_search": {"tolerance": 0}}}, "measure.width_search.tolerance"),
        ({"measure": {"width_search": {"samples": 0}}}, "measure.width_search.samples"),
        ({"measure": {"bounds": "yes"}}, "measure.bounds"),
        ({"root_seed": -1}, "root_seed"),
        ({"memory_limit": "lots"}, "memory_limit"),
    ],
)
def test_validation_errors_name_the_key(change, message):
    data = {"grid": {"family": "and2", "outputs": 9}, **change}
    with pytest.raises(SuperposeError, match=message):
        parse_spec(data, "s.yaml")


def test_load_spec_file_errors(tmp_path):
    bad = tmp_path / "bad.yaml"
    bad.write_text("grid: {family: and2\n  outputs: [1, 2\n")
    with pytest.raises(SuperposeError, match=r"bad.yaml, line \d+: malformed YAML"):
        load_spec(bad)
    with pytest.raises(SuperposeError, match="no such sweep file"):
        load_spec(tmp_path / "missing.yaml")
    listy = tmp_path / "list.yaml"
    listy.write_text("- 1\n- 2\n")
    with pytest.raises(SuperposeError, match="must be a mapping"):
        load_spec(listy)
    # safe_load only: a Python tag is refused, not executed.
    evil = tmp_path / "evil.yaml"
    evil.write_text("grid: !!python/object/apply:os.system ['echo hacked']\n")
    with pytest.raises(SuperposeError, match="malformed YAML"):
        load_spec(evil)
    good = tmp_path / "named.yaml"
    good.write_text(yaml.safe_dump({"grid": {"family": "and2", "outputs": 9}}))
    assert load_spec(good).name == "named"


# --- running ---------------------------------------------------------------------------


def test_run_resume_and_exactly_once(tmp_path):
    db = tmp_path / "r.sqlite"
    spec = parse_spec(spec_dict())
    first = run_sweep(spec, db)
    assert (first.computed, first.skipped, first.errors) == (4, 0, 0)
    again = run_sweep(spec, db)
    assert (again.computed, again.skipped) == (0, 4)
    rows = read_results(db)
    assert sorted(r["key"] for r in rows) == sorted(p.key for p in spec.points)
    row = rows[0]
    assert row["status"] == "ok" and row["sweep"] == "t"
    assert row["result"]["verify"]["inputs_checked"] == 200
    assert row["result"]["counts"]["neurons"] == row["neurons"]
    assert "tightness" in row["result"]["bounds"]
    assert row["result"]["naive"]["neurons"] == row["result"]["counts"]["neurons"]
    assert {"build_seconds", "verify_seconds", "peak_rss_bytes", "worker"} <= set(row["meta"])
    # The row holds the seed: rerunning the point from it reproduces the result.
    out = run_point(row["params"], row["measure"], int(row["seed_root"]), row["seed_path"])
    assert out.ok and out.result == row["result"]
    # Growing the grid runs only the new points.
    bigger = parse_spec(spec_dict(outputs=[40, 60, 80]))
    summary = run_sweep(bigger, db)
    assert (summary.computed, summary.skipped) == (2, 4)
    with sqlite3.connect(db) as conn:
        assert conn.execute("PRAGMA journal_mode").fetchone()[0] == "wal"
        assert conn.execute("SELECT COUNT(*), COUNT(DISTINCT key) FROM points").fetchone() == (6, 6)


def test_failed_points_are_stored_and_retried(tmp_path):
    db = tmp_path / "r.sqlite"
    data = spec_dict(outputs=[40], seeds=1)
    data["memory_limit"] = "1K"  # every point is refused by the memory check
    spec = parse_spec(data)
    summary = run_sweep(spec, db)
    assert summary.errors == 1 and summary.computed == 0
    assert "memory limit" in summary.error_messages[0]
    (row,) = read_results(db, status="error")
    assert "estimated" in row["error"] and "override the check" in row["error"]
    # The next run retries it; the override lets it through; still one row.
    summary = run_sweep(spec, db, force_memory=True)
    assert summary.computed == 1
    assert [r["status"] for r in read_results(db, status=None)] == ["ok"]


def test_bad_point_does_not_stop_the_sweep(tmp_path):
    # 2000 distinct pairs do not exist among 40 features: that point fails, the other runs.
    spec = parse_spec(spec_dict(features=40, outputs=[40, 2000], seeds=1))
    summary = run_sweep(spec, tmp_path / "r.sqlite")
    assert (summary.computed, summary.errors) == (1, 1)
    assert "distinct pairs" in summary.error_messages[0]


def test_width_search_where_supported(tmp_path):
    data = spec_dict(construction=["superposed", "naive"], outputs=[150], seeds=1)
    data["measure"]["width_search"] = {"samples": 100, "tolerance": 0.2}
    spec = parse_spec(data)
    run_sweep(spec, tmp_path / "r.sqlite")
    rows = {r["params"]["construction"]: r["result"] for r in read_results(tmp_path / "r.sqlite")}
    search = rows["superposed"]["width_search"]
    assert search["supported"] and search["probes"]
    assert search["samples"] == 100
    if search["found"]:
        passing = [p for p in search["probes"] if p.get("passed")]
        assert min(p["scale"] for p in passing) == search["width_scale"]
        assert search["counts"]["neurons"] < rows["naive"]["counts"]["neurons"]
    # Wall-clock fields stay out of the result (they live in the row's meta).
    assert "seconds" not in json.dumps(search)
    assert rows["naive"]["width_search"] == {"supported": False}


def test_interrupt_keeps_finished_points(tmp_path):
    db = tmp_path / "r.sqlite"
    spec = parse_spec(spec_dict())
    seen = []

    def progress(point, outcome):
        seen.append(point.key)
        if len(seen) == 2:
            raise KeyboardInterrupt

    with pytest.raises(SweepInterrupted) as info:
        run_sweep(spec, db, progress=progress)
    assert info.value.summary.computed == 2
    assert sorted(r["key"] for r in read_results(db)) == sorted(seen)
    assert run_sweep(spec, db).computed == 2


def test_process_executor_matches_serial(tmp_path):
    spec = parse_spec(spec_dict())
    run_sweep(spec, tmp_path / "serial.sqlite")
    run_sweep(spec, tmp_path / "proc.sqlite", executor="process", jobs=2)
    assert result_table(tmp_path / "proc.sqlite") == result_table(tmp_path / "serial.sqlite")
    # Any concurrent.futures executor works too.
    run_sweep(spec, tmp_path / "custom.sqlite", executor=SerialExecutor())
    assert result_table(tmp_path / "custom.sqlite") == result_table(tmp_path / "serial.sqlite")


def test_serial_jobs_verify_in_parallel_with_the_same_result(tmp_path):
    spec = parse_spec(spec_dict(outputs=[60], seeds=1))
    run_sweep(spec, tmp_path / "a.sqlite", jobs=1)
    run_sweep(spec, tmp_path / "b.sqlite", jobs=2)
    assert result_table(tmp_path / "a.sqlite") == result_table(tmp_path / "b.sqlite")


def test_dask_executors_match_serial(tmp_path):
    distributed = pytest.importorskip("distributed")
    data = spec_dict(construction=["naive", "superposed"], outputs=[60])
    data["measure"]["width_search"] = {"samples": 100, "tolerance": 0.2}
    spec = parse_spec(data)
    run_sweep(spec, tmp_path / "serial.sqlite")
    expected = result_table(tmp_path / "serial.sqlite")
    # In-process cluster (threads), reached through its address.
    with distributed.LocalCluster(
        n_workers=1, threads_per_worker=2, processes=False, dashboard_address=None
    ) as cluster:
        run_sweep(
            spec, tmp_path / "inproc.sqlite", executor="dask", address=cluster.scheduler_address
        )
    assert result_table(tmp_path / "inproc.sqlite") == expected
    # A two-worker cluster of separate processes, reached by its tcp:// address.
    with distributed.LocalCluster(
        n_workers=2, threads_per_worker=1, processes=True, dashboard_address=None
    ) as cluster:
        assert cluster.scheduler_address.startswith("tcp://")
        run_sweep(spec, tmp_path / "two.sqlite", executor="dask", address=cluster.scheduler_address)
        workers = {r["meta"]["worker"] for r in read_results(tmp_path / "two.sqlite")}
    assert result_table(tmp_path / "two.sqlite") == expected
    assert all(w.split(":")[1] != str(os.getpid()) for w in workers)


def test_executor_errors(tmp_path):
    spec = parse_spec(spec_dict())
    with pytest.raises(SuperposeError, match="unknown executor"):
        run_sweep(spec, tmp_path / "r.sqlite", executor="cloud")
    with pytest.raises(SuperposeError, match="address needs the dask executor"):
        run_sweep(spec, tmp_path / "r.sqlite", executor="process", address="tcp://x:1")
    with pytest.raises(SuperposeError, match="cannot reach the dask scheduler"):
        run_sweep(
            spec,
            tmp_path / "r.sqlite",
            executor="dask",
            address="tcp://127.0.0.1:9",
            connect_timeout=1,
        )


def test_results_file_errors(tmp_path):
    junk = tmp_path / "junk.sqlite"
    junk.write_bytes(b"this is not a database" * 100)
    with pytest.raises(SuperposeError, match="not a superpose results file"):
        ResultStore(junk)
    with pytest.raises(SuperposeError, match="no such results file"):
        read_results(tmp_path / "missing.sqlite")


# --- the command line ------------------------------------------------------------------


def write_spec(path, data):
    path.write_text(yaml.safe_dump(data))
    return path


def test_cli_sweep_json_and_dry_run(tmp_path, capsys):
    spec = write_spec(tmp_path / "s.yaml", spec_dict())
    db = tmp_path / "r.sqlite"
    assert main(["sweep", str(spec), "--results", str(db), "--dry-run", "--json"]) == 0
    plan = json.loads(capsys.readouterr().out)
    assert len(plan["points"]) == 4 and not any(p["done"] for p in plan["points"])
    assert main(["sweep", str(spec), "--results", str(db), "--json"]) == 0
    summary = json.loads(capsys.readouterr().out)
    assert summary["computed"] == 4
    assert main(["sweep", str(spec), "--results", str(db)]) == 0
    assert "4 already done" in capsys.readouterr().out
    assert main(["sweep", str(spec), "--executor", "cloud"]) == 2
    bad = write_spec(tmp_path / "bad.yaml", {"grid": {"family": "and2", "outputs": "x"}})
    assert main(["sweep", str(bad), "--results", str(db)]) == 2
    assert "grid.outputs" in capsys.readouterr().err


def test_killed_sweep_resumes_with_every_point_exactly_once(tmp_path):
    """SIGKILL a running `superpose sweep` after its first row; the rerun completes the rest."""
    data = {
        "name": "kill",
        "grid": [
            {"family": "and2", "outputs": 30, "construction": "naive"},
            {"family": "and2", "outputs": [3000, 40, 50], "construction": "naive"},
        ],
        # The second point verifies 5000 inputs (seconds), so the kill lands before it ends.
        "measure": {"verify": {"mode": "random", "samples": 5000}, "bounds": False},
    }
    spec_path = write_spec(tmp_path / "kill.yaml", data)
    db = tmp_path / "kill.sqlite"
    cmd = [sys.executable, "-c", "from superpose.cli import main; main()", "sweep", str(spec_path)]
    cmd += ["--results", str(db)]
    proc = subprocess.Popen(cmd, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    deadline = time.monotonic() + 120
    rows = 0
    try:
        while proc.poll() is None and time.monotonic() < deadline:
            if db.exists():
                try:
                    with sqlite3.connect(db, timeout=5) as conn:
                        rows = conn.execute("SELECT COUNT(*) FROM points").fetchone()[0]
                except sqlite3.OperationalError:  # table not created yet
                    rows = 0
                if rows >= 1:
                    os.kill(proc.pid, signal.SIGKILL)
                    break
            time.sleep(0.01)
    finally:
        if proc.poll() is None:
            proc.kill()
        proc.wait()
    assert proc.returncode == -signal.SIGKILL, proc.stderr.read().decode()
    before = {r["key"]: r for r in read_results(db)}
    total = len(load_spec(spec_path).points)
    assert 1 <= len(before) < total
    with sqlite3.connect(db) as conn:
        assert conn.execute("PRAGMA integrity_check").fetchone()[0] == "ok"
    # Rerun to completion.
    done = subprocess.run(cmd + ["--json"], capture_output=True, timeout=300)
    assert done.returncode == 0, done.stderr.decode()
    summary = json.loads(done.stdout)
    assert summary["skipped"] == len(before)
    assert summary["computed"] == total - len(before)
    after = read_results(db, status=None)
    assert sorted(r["key"] for r in after) == sorted(p.key for p in load_spec(spec_path).points)
    for r in after:  # rows saved before the kill were kept, not recomputed
        if r["key"] in before:
            assert r["meta"] == before[r["key"]]["meta"]


def test_example_sweep_file_is_valid():
    path = os.path.join(os.path.dirname(__file__), "..", "examples", "sweep-small.yaml")
    spec = load_spec(path)
    assert spec.name == "sweep-small" and len(spec.points) >= 6
    assert spec.measure["width_search"] is not None


def _as_version_1(db):
    """Rewrite a results file the way schema version 1 laid it out (the old seed column names)."""
    with sqlite3.connect(db) as conn:
        conn.execute("ALTER TABLE points RENAME COLUMN seed_root TO seed_entropy")
        conn.execute("ALTER TABLE points RENAME COLUMN seed_path TO seed_spawn_key")
        conn.execute("UPDATE info SET value = '1' WHERE key = 'schema_version'")
    conn.close()


def test_a_version_1_results_file_is_read_and_resumed_without_losing_rows(tmp_path):
    """Schema 2 renamed the seed columns to Seeds.record()'s names (root, path): a version-1
    file reads the same, and a resumed sweep migrates it, keeps every row and reruns none."""
    db = tmp_path / "r.sqlite"
    spec = parse_spec(spec_dict())
    run_sweep(spec, db)
    before = result_table(db)
    _as_version_1(db)
    with sqlite3.connect(db) as conn:
        cols = [r[1] for r in conn.execute("PRAGMA table_info(points)")]
    conn.close()
    assert "seed_entropy" in cols and "seed_root" not in cols
    assert result_table(db) == before  # read as it is (read-only, no migration)
    bigger = parse_spec(spec_dict(outputs=[40, 60, 80]))
    summary = run_sweep(bigger, db)
    assert (summary.computed, summary.skipped) == (2, 4)
    with sqlite3.connect(db) as conn:
        cols = [r[1] for r in conn.execute("PRAGMA table_info(points)")]
        version = conn.execute("SELECT value FROM info WHERE key='schema_version'").fetchone()
    conn.close()
    assert {"seed_root", "seed_path"} <= set(cols) and "seed_entropy" not in cols
    assert version == (str(SCHEMA_VERSION),) == ("2",)
    after = {r["key"]: r for r in result_table(db)}
    assert all(after[r["key"]] == r for r in before)  # every old row, unchanged
    assert len(after) == 6
    # the stored seed reproduces the point
    row = read_results(db)[0]
    out = run_point(row["params"], row["measure"], int(row["seed_root"]), row["seed_path"])
    assert out.ok and out.result == row["result"]
