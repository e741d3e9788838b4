"""Sweep reports (superpose.report, ``superpose report``): Markdown, PNG and CSV beside each."""

from __future__ import annotations

import csv
import json

import pytest

from superpose import SuperposeError
from superpose.cli import main
from superpose.report import FIGURES, write_report
from superpose.sweep import ResultStore, parse_spec, read_results, run_sweep

PNG_MAGIC = b"\x89PNG\r\n\x1a\n"


@pytest.fixture(scope="module")
def results(tmp_path_factory):
    """A results file: naive (two seeds) and superposed 2-AND at two sizes, one failed point."""
    db = tmp_path_factory.mktemp("rep") / "r.sqlite"
    spec = parse_spec(
        {
            "name": "rep",
            "grid": [
                {"family": "and2", "outputs": [120, 240], "construction": "naive", "seeds": 2},
                {"family": "and2", "outputs": [120, 240], "construction": "superposed"},
                # 500 distinct pairs do not exist among 20 features: a failed point.
                {"family": "and2", "features": 20, "outputs": 500, "construction": "naive"},
            ],
            "measure": {
                "verify": {"mode": "random", "samples": 300},
                "width_search": {"samples": 100, "tolerance": 0.2},
            },
        }
    )
    summary = run_sweep(spec, db)
    assert summary.computed == 6 and summary.errors == 1
    return db


@pytest.fixture(scope="module")
def report(results, tmp_path_factory):
    """The report of :func:`results` (written once for the module)."""
    return write_report(results, tmp_path_factory.mktemp("out") / "out")


def read_csv(path):
    with open(path, newline="") as handle:
        return list(csv.DictReader(handle))


def test_every_figure_has_png_and_csv(report):
    files = report
    for name in FIGURES:
        png = files[f"{name}.png"].read_bytes()
        assert png.startswith(PNG_MAGIC) and len(png) > 5000
        rows = read_csv(files[f"{name}.csv"])
        assert rows and set(rows[0]) == {
            "series",
            "kind",
            "outputs",
            "value",
            "min",
            "max",
            "replicates",
        }
    md = files["report.md"].read_text()
    for name in FIGURES:
        assert f"({name}.png)" in md and f"({name}.csv)" in md
    assert "## Failed points" in md and "distinct pairs" in md
    assert "6 finished points, 1 failed" in md
    # Written atomically: no temporary files left behind.
    assert sorted(p.name for p in files["report.md"].parent.iterdir()) == sorted(files)


def test_csv_holds_the_plotted_numbers(results, report):
    files = report
    neurons = read_csv(files["neurons.csv"])
    by_kind = {}
    for row in neurons:
        by_kind.setdefault(row["kind"], []).append(row)
    assert {"network", "bound", "naive"} <= set(by_kind)
    # Network lines: the mean over seeds of the stored neuron counts.
    stored = {}
    for r in read_results(results):
        key = (r["params"]["construction"], r["result"]["task"]["outputs"])
        stored.setdefault(key, []).append(r["result"]["counts"]["neurons"])
    for row in by_kind["network"]:
        con = row["series"].split("(")[0].split(" ")[0]
        values = stored[(con, int(row["outputs"]))]
        assert float(row["value"]) == pytest.approx(sum(values) / len(values))
        assert int(row["replicates"]) == len(values)
        assert float(row["min"]) == min(values) and float(row["max"]) == max(values)
    # The naive line is m + m', the bound line is below every network at every m'.
    for row in by_kind["naive"]:
        assert float(row["value"]) == 2 * int(row["outputs"])
    bound = {int(r["outputs"]): float(r["value"]) for r in by_kind["bound"]}
    assert sorted(bound) == [120, 240]
    for row in by_kind["network"]:
        assert float(row["value"]) > bound[int(row["outputs"])]
    # Error rates: observed values and a 95% upper bound per setting and m'.
    errors = read_csv(files["errors.csv"])
    assert {r["kind"] for r in errors} == {"observed", "upper_95"}
    assert all(0 <= float(r["value"]) <= 1 for r in errors)
    params = read_csv(files["parameters.csv"])
    assert {"dense", "nonzero", "bound", "naive", "naive_nonzero"} <= {r["kind"] for r in params}
    tight = read_csv(files["tightness.csv"])
    assert {r["kind"] for r in tight} == {"neurons_ratio", "bits_ratio"}
    assert all(float(r["value"]) > 0 for r in tight)
    searched = [r for r in neurons if r["kind"] == "searched"]
    assert all("[searched width]" in r["series"] for r in searched)


def test_report_is_reproducible_and_overwrites(results, report):
    before = {name: path.read_bytes() for name, path in report.items()}
    again = write_report(results, report["report.md"].parent)  # over the same files
    assert {name: path.read_bytes() for name, path in again.items()} == before


def test_report_errors(tmp_path):
    with pytest.raises(SuperposeError, match="no such results file"):
        write_report(tmp_path / "missing.sqlite", tmp_path / "out")
    empty = tmp_path / "empty.sqlite"
    ResultStore(empty).close()
    with pytest.raises(SuperposeError, match="no finished points"):
        write_report(empty, tmp_path / "out")
    (tmp_path / "file").write_text("x")
    with pytest.raises(SuperposeError, match="not a directory"):
        write_report(empty, tmp_path / "file")


def test_cli_report(results, tmp_path, capsys):
    out = tmp_path / "cli"
    assert main(["report", str(results), "--out", str(out), "--json", "--title", "T"]) == 0
    files = json.loads(capsys.readouterr().out)
    assert set(files) >= {"report.md", "neurons.png", "neurons.csv"}
    assert (out / "report.md").read_text().startswith("# T")
    assert main(["report", str(tmp_path / "nope.sqlite"), "--out", str(out)]) == 2
