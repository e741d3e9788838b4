"""``superpose.workflow.build_to_directory``: the library call behind ``superpose build``."""

from __future__ import annotations

from pathlib import Path

import pytest
import scipy.sparse as sp

from superpose import families, load_network
from superpose.cli import main
from superpose.errors import SuperposeError
from superpose.evaluation import evaluate
from superpose.io import META_FILE, WEIGHTS_FILE
from superpose.seeds import Seeds
from superpose.sparse_inputs import random_inputs
from superpose.workflow import build_to_directory


def _task(family: str = "and2"):
    return families.generate(family, Seeds(3).rng("task"), features=40, outputs=60)


def _files(d: Path) -> dict[str, bytes]:
    return {name: (d / name).read_bytes() for name in (META_FILE, WEIGHTS_FILE)}


@pytest.mark.parametrize("search", [False, True])
def test_same_bytes_as_the_command_line(tmp_path: Path, capsys, search: bool) -> None:
    """The library call writes the bytes ``superpose build`` writes for the same options."""
    argv = ["build", "--family", "and2", "--features", "40", "--outputs", "60", "--seed", "3"]
    argv += ["--search-width", "--search-samples", "200"] if search else []
    assert main([*argv, "--out", str(tmp_path / "cli")]) == 0
    capsys.readouterr()
    kwargs = {"search": True, "search_samples": 200} if search else {}
    done = build_to_directory(_task(), tmp_path / "lib", seed=3, **kwargs)
    assert _files(tmp_path / "lib") == _files(tmp_path / "cli")
    # ... and the network is the task's function (ground truth, not just equal files).
    net = load_network(tmp_path / "lib")
    for x in random_inputs(net.task, 300, Seeds(9).rng("check")):
        assert (net.predict(x) != evaluate(net.task, x).values).nnz == 0
    assert done.check is not None and done.check.passed and not done.failed
    assert done.network.construction == net.construction
    assert (done.search_record is not None) == search


def test_bad_input_leaves_the_old_network(tmp_path: Path) -> None:
    """Refusals raise SuperposeError before anything is written; the old files stay."""
    out = tmp_path / "net"
    build_to_directory(_task(), out, seed=3)
    before = _files(out)
    bad = [
        {"check_samples": 0},
        {"search": True, "check": False},
        {"search": True, "search_samples": 0},
        {"search_exhaustive": True},
        {"construction": "no-such-construction"},
    ]
    for kwargs in bad:
        with pytest.raises(SuperposeError):
            build_to_directory(_task(), out, seed=4, **kwargs)
        assert _files(out) == before, kwargs
    with pytest.raises(SuperposeError, match="is a file"):
        (tmp_path / "f").write_text("x")
        build_to_directory(_task(), tmp_path / "f" / "net")


def test_library_messages_name_parameters_not_flags(tmp_path: Path) -> None:
    with pytest.raises(SuperposeError) as info:
        build_to_directory(_task(), tmp_path / "n", check_samples=0)
    assert str(info.value).startswith("check_samples must be >= 1")
    assert info.value.for_command_line().endswith("(--check-samples)")


def test_compare_to_files_writes_what_it_returns(tmp_path: Path) -> None:
    """compare.json / compare.md / the Markdown file are the returned result, nothing else."""
    import json

    from superpose import Task
    from superpose.compare import markdown as to_markdown
    from superpose.workflow import compare_to_files

    task = Task.from_gates(12, 2, [("and", [0, 1]), ("and", [2, 3]), ("and", [1, 4])])
    out, md = tmp_path / "res", tmp_path / "t.md"
    result = compare_to_files(
        "W1", out=out, markdown=md, task=task, quick=True, trained=False, methods=["naive"]
    )
    naive = next(r for r in result.rows if r.method == "naive")
    assert naive.inputs_with_error == 0  # the explicit network is exact: a ground truth row
    assert json.loads((out / "compare.json").read_text())["rows"] == json.loads(
        json.dumps(result.to_dict()["rows"], default=str)
    )
    assert md.read_text() == to_markdown(result) == (out / "compare.md").read_text()


def test_compare_to_files_refuses_bad_paths_before_running(tmp_path: Path) -> None:
    from superpose.workflow import compare_to_files

    with pytest.raises(SuperposeError, match=r"^plot must name a \.png file") as info:
        compare_to_files("W1", plot=tmp_path / "x.pdf", quick=True)
    assert info.value.for_command_line().endswith("(--plot)")
    (tmp_path / "f").write_text("keep")
    with pytest.raises(SuperposeError, match="exists and is not a directory"):
        compare_to_files("W1", out=tmp_path / "f", quick=True)
    assert (tmp_path / "f").read_text() == "keep"
    assert not (tmp_path / "x.pdf").exists()


# -- verify, info, bounds, sweep, task: each library call gives what its command prints ------


def _saved(tmp_path: Path, name: str = "net") -> Path:
    out = tmp_path / name
    build_to_directory(_task(), out, seed=3)
    return out


def _json_of(capsys, *argv: object) -> dict:
    import json

    code = main([str(a) for a in argv])
    out = capsys.readouterr().out
    assert code in (0, 1), out
    return json.loads(out)


def test_verify_directory_is_the_command_and_finds_a_planted_error(tmp_path: Path, capsys) -> None:
    """Same JSON as ``superpose verify --json``; a network broken on purpose fails with exactly
    the inputs brute force says are wrong."""
    from superpose.io import save_network
    from superpose.sparse_inputs import exhaustive_inputs
    from superpose.workflow import verify_directory

    good = _saved(tmp_path)
    done = verify_directory(good, "all", samples=300, seed=1)
    assert done.passed and done.report.inputs_checked > 0
    assert done.to_dict() == _json_of(
        capsys, "verify", good, "--samples", 300, "--seed", 1, "--json"
    )
    # Break output 0: its row of the last layer zeroed, it never turns on.
    net = load_network(good)
    w = net.layers[-1].weight
    w.data[w.indptr[0] : w.indptr[1]] = 0
    w.eliminate_zeros()
    bad = tmp_path / "bad"
    save_network(net, bad)
    found = verify_directory(bad, "exhaustive")
    inputs = sp.vstack(list(exhaustive_inputs(net.task.features, net.task.sparsity)))
    truth = evaluate(net.task, inputs).values.toarray()
    wrong = int(truth[:, 0].sum())  # inputs where output 0 is on, and now reads off
    assert not found.passed and found.report.inputs_with_error == wrong > 0
    assert found.report.false_negatives == wrong and found.report.false_positives == 0
    with pytest.raises(SuperposeError, match=r"^mode must be one of") as info:
        verify_directory(good, "brute")
    assert info.value.for_command_line().endswith("(--mode)")


def test_network_info_is_the_command(tmp_path: Path, capsys) -> None:
    from superpose.workflow import network_info

    d = _saved(tmp_path)
    info = network_info(d)
    assert info == _json_of(capsys, "info", d, "--json")
    net = load_network(d)
    assert info["check"]["passed"] is True and info["nonzero_parameters"] == sum(
        lay.weight.nnz + int((lay.bias != 0).sum()) for lay in net.layers
    )


def test_bounds_for_is_the_command(tmp_path: Path, capsys) -> None:
    from superpose.bounds import bounds_report, make_family
    from superpose.workflow import bounds_for

    d = _saved(tmp_path)
    png = tmp_path / "b.png"
    report = bounds_for(family="and2", features=2000, outputs=10_000, plot=png, networks=[d])
    argv = ["bounds", "--family", "and2", "--features", 2000, "--outputs", 10_000]
    assert report == _json_of(capsys, *argv, "--plot", png, "--network", d, "--json")
    assert png.read_bytes()[1:4] == b"PNG" and report["networks"][0]["outputs"] == 60
    direct = bounds_report(make_family("and2", features=2000, outputs=10_000), sparsity=2)
    assert {k: report[k] for k in direct} == direct  # ground truth: the bound itself
    with pytest.raises(SuperposeError, match="networks only add points"):
        bounds_for(family="and2", features=2000, outputs=10_000, networks=[d])


def test_sweep_to_file_is_the_command(tmp_path: Path, capsys) -> None:
    """The plan and the rows written equal the command's; a rerun has nothing left to do."""
    import sqlite3

    from superpose.workflow import plan_sweep, sweep_to_file

    spec = tmp_path / "s.yaml"
    spec.write_text("grid: {family: and2, features: 30, outputs: [40, 50], construction: naive}")
    lib, cli = tmp_path / "lib.sqlite", tmp_path / "cli.sqlite"
    plan = plan_sweep(spec, lib)
    assert plan.to_dict() == _json_of(
        capsys, "sweep", spec, "--results", lib, "--dry-run", "--json"
    )
    assert len(plan.pending) == 2 and not lib.exists()
    events: list[dict] = []
    summary = sweep_to_file(spec, lib, progress=events.append)
    assert summary.computed == 2 and summary.errors == 0
    assert [e["event"] for e in events] == ["start", "point", "point"]
    assert main(["sweep", str(spec), "--results", str(cli)]) == 0
    capsys.readouterr()

    def rows(path: Path) -> list:
        with sqlite3.connect(path) as db:
            return db.execute(
                "SELECT key, status, neurons, inputs_with_error FROM points ORDER BY key"
            ).fetchall()

    assert rows(lib) == rows(cli) and len(rows(lib)) == 2
    assert plan_sweep(spec, lib).pending == frozenset()
    with pytest.raises(SuperposeError, match="executor must be one of"):
        sweep_to_file(spec, lib, executor="threads")


def test_task_from_options_matches_the_family_and_the_file(tmp_path: Path) -> None:
    from superpose.workflow import task_from_options

    task = task_from_options(family="and2", features=40, outputs=60, seed=3)
    assert gate_list_of(task) == gate_list_of(_task())
    task.save(tmp_path / "t.json")
    again = task_from_options(tmp_path / "t.json", sparsity=3)
    assert again.sparsity == 3 and gate_list_of(again) == gate_list_of(task)
    for kwargs, needle in (
        ({}, "exactly one of task_file or family"),
        ({"task_file": tmp_path / "t.json", "family": "and2"}, "exactly one of"),
        ({"task_file": tmp_path / "t.json", "sparsity": 41}, "sparsity 41 exceeds the 40"),
        ({"family": "and2", "features": 3, "outputs": 2, "sparsity": 4}, "sparsity 4 exceeds"),
    ):
        with pytest.raises(SuperposeError, match=needle):
            task_from_options(**kwargs)


def gate_list_of(task) -> list:
    from helpers import gate_list

    return gate_list(task)


def test_refusals_come_before_any_work(tmp_path: Path, capsys) -> None:
    """A dry run refuses what the run would; a missing task file or an unwritable markdown
    path is refused before the comparison runs or creates its output directory; an
    unwritable plot before the networks load."""
    from superpose.workflow import bounds_for, compare_to_files, plan_sweep

    spec = tmp_path / "s.yaml"
    spec.write_text("grid: {family: and2, features: 30, outputs: [40], construction: naive}")
    with pytest.raises(SuperposeError, match="executor must be one of"):
        plan_sweep(spec, tmp_path / "r.sqlite", executor="threads")
    with pytest.raises(SuperposeError, match="jobs must be >= 1"):
        plan_sweep(spec, tmp_path / "r.sqlite", jobs=0)
    code = main(["sweep", str(spec), "--dry-run", "--jobs", "0"])
    assert code == 2 and "(--jobs)" in capsys.readouterr().err
    out = tmp_path / "res"
    with pytest.raises(SuperposeError, match="missing.json"):
        compare_to_files("W1", out=out, task_file=tmp_path / "missing.json", quick=True)
    (tmp_path / "f").write_text("keep")
    with pytest.raises(SuperposeError, match="markdown"):
        compare_to_files("W1", out=out, markdown=tmp_path / "f" / "t.md", quick=True)
    assert not out.exists() and (tmp_path / "f").read_text() == "keep"
    with pytest.raises(SuperposeError, match="plot") as info:
        bounds_for(family="and2", features=100, outputs=100, plot=tmp_path / "f" / "b.png")
    with pytest.raises(SuperposeError) as info:
        bounds_for(family="and2", features=100, outputs=100, networks=[tmp_path])
    assert "--network needs --plot" in info.value.for_command_line()
