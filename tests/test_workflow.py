"""``superpose.workflow.build_to_directory``: the library call behind ``superpose build``."""

from __future__ import annotations

from pathlib import Path

import pytest

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
