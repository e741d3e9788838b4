"""Golden outputs: the small builds, checks and sweep of benchmarks/golden.py write the bytes
recorded in benchmarks/golden.json (a refactor must not move one output byte)."""

import importlib.util
from pathlib import Path

import pytest

_PATH = Path(__file__).resolve().parent.parent / "benchmarks" / "golden.py"
_spec = importlib.util.spec_from_file_location("_golden", _PATH)
golden = importlib.util.module_from_spec(_spec)
_spec.loader.exec_module(golden)

SMALL = [name for name, (size, _) in golden.CASES.items() if size == "small"]


@pytest.mark.parametrize("case", SMALL)
def test_small_golden_outputs_are_unchanged(case, tmp_path):
    _, runner = golden.CASES[case]
    found = {case: runner(tmp_path)}
    assert golden.compare(found) == []


def test_cli_and_library_give_the_same_network_for_a_task_file(tmp_path):
    _, runner = golden.CASES["cli-vs-lib-task-small"]
    assert runner(tmp_path)["cli_equals_api"] == "True"
