"""superpose: explicit ReLU networks that compute many Boolean features in superposition.

The public API is a handful of verbs:

>>> import numpy as np
>>> import superpose as sp
>>> task = sp.families.pairs(40, 200, np.random.default_rng(0), sparsity=2)
>>> net = sp.build(task, "naive")
>>> net.extras["check"]["kind"], net.extras["check"]["passed"]
('exact', True)
>>> sp.verify(net, mode="random", samples=200, rng=np.random.default_rng(1)).inputs_with_error
0

``build`` checks every network it returns (an exact certificate where one exists, else every
<= s-sparse input, else random + targeted samples), grows the widths when the check fails and
falls back to the explicit network when nothing passes; see :mod:`superpose.pipeline`.

Importing the package loads nothing else: each public name is imported on first use.
"""

from __future__ import annotations

import importlib as _importlib
from typing import TYPE_CHECKING, Any

__version__ = "0.1.0"

# Public name -> the module that defines it. Loaded on first use (PEP 562), so that
# ``import superpose`` (and the ``superpose`` command's launcher, which must install its
# Ctrl-C guard before numpy and scipy load) has no side effects and costs nothing.
_EXPORTS: dict[str, str] = {
    "data": "superpose.data",
    "families": "superpose.families",
    "mechanisms": "superpose.mechanisms",
    "Check": "superpose.check",
    "check_network": "superpose.check",
    "BloomCode": "superpose.codes",
    "ExplicitCode": "superpose.codes",
    "LinearCode": "superpose.codes",
    "CONSTRUCTIONS": "superpose.constructions",
    "SuperposeError": "superpose.errors",
    "evaluate": "superpose.evaluation",
    "load_network": "superpose.io",
    "save_network": "superpose.io",
    "Layer": "superpose.network",
    "Network": "superpose.network",
    "build": "superpose.pipeline",
    "Seeds": "superpose.seeds",
    "Task": "superpose.task",
    "load_task": "superpose.task",
    "VerificationReport": "superpose.verification",
    "verify": "superpose.verification",
}

if TYPE_CHECKING:  # pragma: no cover - for type checkers and IDEs only
    from superpose import data, families, mechanisms
    from superpose.check import Check, check_network
    from superpose.codes import BloomCode, ExplicitCode, LinearCode
    from superpose.constructions import CONSTRUCTIONS
    from superpose.errors import SuperposeError
    from superpose.evaluation import evaluate
    from superpose.io import load_network, save_network
    from superpose.network import Layer, Network
    from superpose.pipeline import build
    from superpose.seeds import Seeds
    from superpose.task import Task, load_task
    from superpose.verification import VerificationReport, verify


def __getattr__(name: str) -> Any:
    module = _EXPORTS.get(name)
    if module is None:
        raise AttributeError(f"module 'superpose' has no attribute {name!r}")
    loaded = _importlib.import_module(module)
    value = loaded if module == f"superpose.{name}" else getattr(loaded, name)
    globals()[name] = value
    return value


def __dir__() -> list[str]:
    return sorted({*globals(), *_EXPORTS})


__all__ = [
    "CONSTRUCTIONS",
    "BloomCode",
    "Check",
    "ExplicitCode",
    "Layer",
    "LinearCode",
    "Network",
    "Seeds",
    "SuperposeError",
    "Task",
    "VerificationReport",
    "build",
    "check_network",
    "data",
    "evaluate",
    "families",
    "load_network",
    "load_task",
    "mechanisms",
    "save_network",
    "verify",
]
