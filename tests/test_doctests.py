"""Every docstring example in the package runs and gives what it shows.

One test per module, found with pkgutil so new modules are covered automatically. Modules
that need torch (an optional extra) are skipped when torch is not installed.
"""

from __future__ import annotations

import doctest
import importlib
import pkgutil

import pytest

import superpose

MODULES = sorted(
    {"superpose"}
    | {
        info.name
        for info in pkgutil.walk_packages(superpose.__path__, prefix="superpose.")
        if not info.name.endswith("__main__")
    }
)


def _import(name: str):
    try:
        return importlib.import_module(name)
    except ModuleNotFoundError as exc:
        if exc.name and exc.name.split(".")[0] == "torch":
            pytest.skip(f"{name} needs torch, which is not installed")
        raise


def test_modules_found():
    expected = {"superpose.task", "superpose.verification", "superpose.constructions.naive"}
    assert expected <= set(MODULES)


@pytest.mark.parametrize("name", MODULES)
def test_doctests(name, tmp_path, monkeypatch):
    module = _import(name)
    monkeypatch.chdir(tmp_path)  # examples that write files write them here
    finder = doctest.DocTestFinder(exclude_empty=True)
    runner = doctest.DocTestRunner(optionflags=doctest.ELLIPSIS | doctest.NORMALIZE_WHITESPACE)
    tests = finder.find(module, name, globs=vars(module).copy())
    failures: list[str] = []
    for test in tests:  # the finder keeps objects defined in this module only
        out: list[str] = []
        result = runner.run(test, out=out.append)
        if result.failed:
            failures.append("".join(out))
    assert not failures, "\n".join(failures)
