"""The import contract of pyproject.toml ([tool.importlinter]) holds: the tree follows the flow.

``lint-imports`` (import-linter, in the ``test`` extra) checks it in CI. The same layers are
also checked here by walking every ``import`` statement with :mod:`ast` -- module level and
inside functions alike, since a lazy import is still a dependency -- so the contract is
enforced even where import-linter is not installed, and a cycle between layers cannot creep
back in (``constructions -> circuit -> levels -> constructions`` was one).
"""

from __future__ import annotations

import ast
import shutil
import subprocess
import sys
import tomllib
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
PACKAGE = ROOT / "superpose"
CONFIG = tomllib.loads((ROOT / "pyproject.toml").read_text())["tool"]["importlinter"]
# The first contract is the package's layers; the others order the modules inside a sub-package
# (compare/, sweep/, constructions/circuit/) and are checked by ``lint-imports``.
CONTRACT = next(c for c in CONFIG["contracts"] if c["containers"] == ["superpose"])


def _module(path: Path) -> str:
    parts = list(path.relative_to(ROOT).with_suffix("").parts)
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def _imports(path: Path) -> list[tuple[str, int]]:
    """Every superpose module ``path`` imports (outside ``if TYPE_CHECKING:``), with its line."""
    tree = ast.parse(path.read_text())
    skip: set[int] = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.If) and "TYPE_CHECKING" in ast.unparse(node.test):
            skip.update(id(n) for child in node.body for n in ast.walk(child))
    found = []
    for node in ast.walk(tree):
        if id(node) in skip:
            continue
        if isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
            names = [node.module] + [f"{node.module}.{a.name}" for a in node.names]
        elif isinstance(node, ast.Import):
            names = [a.name for a in node.names]
        else:
            continue
        found += [(n, node.lineno) for n in names if n.startswith("superpose.")]
    return found


def _layer_of(module: str) -> int | None:
    """Index of the layer holding ``module`` (0 = top), None when it is in no layer."""
    parts = module.split(".")
    if len(parts) < 2:
        return None
    for i, layer in enumerate(CONTRACT["layers"]):
        names = [n.strip() for n in layer.replace("|", ":").split(":")]
        if parts[1] in names:
            return i
    return None


def _top(module: str) -> str:
    return ".".join(module.split(".")[:2])


def test_every_import_respects_the_layers():
    ignored = {tuple(s.split(" -> ")) for s in CONTRACT.get("ignore_imports", [])}
    modules = {_module(p) for p in PACKAGE.rglob("*.py")}
    broken = []
    for path in sorted(PACKAGE.rglob("*.py")):
        me = _module(path)
        mine = _layer_of(me)
        if mine is None:
            continue
        for target, line in _imports(path):
            if target not in modules:
                target = target.rsplit(".", 1)[0]  # a name imported from a module
                if target not in modules:
                    continue
            theirs = _layer_of(target)
            if theirs is not None and theirs < mine and (me, target) not in ignored:
                broken.append(f"{me} -> {target} (line {line})")
    assert broken == []


def test_every_module_is_in_a_layer():
    tops = {_top(_module(p)) for p in PACKAGE.rglob("*.py")} - {"superpose"}
    assert [t for t in sorted(tops) if _layer_of(t) is None] == []


def test_the_contract_catches_an_upward_import():
    """The check can fail: a core module importing the verifier is named."""
    assert _layer_of("superpose.levels") > _layer_of("superpose.check")
    assert _layer_of("superpose.constructions.circuit") > _layer_of("superpose.verification")


def test_lint_imports():
    exe = shutil.which("lint-imports") or shutil.which(
        "lint-imports", path=str(Path(sys.executable).parent)
    )
    if exe is None:
        pytest.skip("import-linter (test extra) is not installed")
    run = subprocess.run([exe], cwd=ROOT, capture_output=True, text=True, timeout=300)
    assert run.returncode == 0, run.stdout[-3000:]
