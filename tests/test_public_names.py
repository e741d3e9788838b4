"""Public names do not hide their modules: ``superpose.verify`` is the function and no module
``superpose/verify.py`` exists to be shadowed by it."""

import importlib
import pkgutil
import types

import superpose


def test_no_public_name_shadows_a_submodule():
    submodules = {info.name for info in pkgutil.iter_modules(superpose.__path__)}
    for name in superpose.__all__:
        value = getattr(superpose, name)
        if name in submodules:
            assert value is importlib.import_module(f"superpose.{name}"), name
        else:
            assert not isinstance(value, types.ModuleType) or value.__name__.endswith(name)


def test_verify_and_evaluate_are_the_functions():
    assert callable(superpose.verify) and not isinstance(superpose.verify, types.ModuleType)
    assert callable(superpose.evaluate) and not isinstance(superpose.evaluate, types.ModuleType)
    submodules = {info.name for info in pkgutil.iter_modules(superpose.__path__)}
    assert "verify" not in submodules and "evaluate" not in submodules
    assert {"verification", "evaluation"} <= submodules


def test_every_public_name_is_listed_and_loads():
    assert sorted(superpose.__all__) == sorted(set(superpose.__all__))
    for name in superpose.__all__:
        assert name in dir(superpose)
        assert getattr(superpose, name) is not None
