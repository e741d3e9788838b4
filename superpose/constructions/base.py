"""What every construction is, and what it tells others without being built.

A construction stores its parameters at creation and does all its work in ``build``. Other
parts of the library -- the build pipeline, the memory check, the width search, sweeps --
need to know things about a construction *before* building: which tasks it handles, which
parameters it takes (can its widths grow?), what it will cost in memory. They ask the class,
through this protocol, instead of reading ``__init__`` signatures or branching on names:

* :meth:`Construction.supports` -- ``(True, "")`` or ``(False, reason)`` for a task;
* :meth:`Construction.parameters` / :meth:`Construction.grows` -- the parameter names, and
  whether ``width_scale`` is one of them (the pipeline's grow step and the width search);
* :meth:`Construction.memory_parts` / :meth:`Construction.memory_estimate` -- the bytes its
  build allocates beyond the task (:mod:`superpose.memory` adds the process, the task and the
  check, and the safety factor);
* :attr:`Construction.capabilities` -- descriptive tags (ops, arities, depth, sparsity).

``build`` must not change the construction's parameters (``get_params()`` is the same before
and after; ``tests/test_conformance.py`` checks every registered construction), so one
construction object can build many tasks and records what it was asked for.

Example:
    >>> from superpose.constructions import CONSTRUCTIONS
    >>> from superpose import Task
    >>> deep = Task.from_gates(3, 2, [("and", [0, 1]), ("or", [3, 2])])
    >>> CONSTRUCTIONS["superposed"].supports(deep)
    (False, "the task has 2 levels; 'superposed' builds one level")
    >>> CONSTRUCTIONS["circuit"].supports(deep), CONSTRUCTIONS["naive"].grows()
    ((True, ''), False)
"""

from __future__ import annotations

import functools
import inspect
import math
from dataclasses import dataclass
from typing import Any, ClassVar

import numpy as np

from superpose.errors import SuperposeError
from superpose.network import Network
from superpose.task import OPS, Task

GENERIC_PER_GATE = 2000
"""Bytes per gate assumed for a construction without a memory model of its own."""


@dataclass(frozen=True)
class Capabilities:
    """What a construction builds, as tags (descriptive; :meth:`Construction.supports` decides).

    ``ops``: the gate ops it builds; ``max_arity``: per op, the most operands it takes (absent:
    any); ``max_depth``: the most circuit levels (None: any); ``max_sparsity``: the largest s
    it is designed for (None: any); ``tags``: free-form properties such as ``"explicit"``
    (one unit per gate), ``"superposed"``, ``"certified"`` (can prove itself exact).
    """

    ops: frozenset[str] = frozenset(OPS)
    max_arity: tuple[tuple[str, int], ...] = ()
    max_depth: int | None = None
    max_sparsity: int | None = None
    tags: frozenset[str] = frozenset()

    def to_dict(self) -> dict[str, Any]:
        return {
            "ops": sorted(self.ops),
            "max_arity": dict(self.max_arity),
            "max_depth": self.max_depth,
            "max_sparsity": self.max_sparsity,
            "tags": sorted(self.tags),
        }


class Construction:
    """Base class: subclasses store their parameters in ``__init__`` and build in ``build``.

    ``build(task, rng)`` returns a :class:`~superpose.network.Network` that carries its input
    and output codes, so the shared verifier checks every construction the same way.
    """

    name: ClassVar[str]
    capabilities: ClassVar[Capabilities] = Capabilities()

    def get_params(self) -> dict[str, Any]:
        """The parameters this construction was created with (recorded in network.json)."""
        return {k: v for k, v in vars(self).items() if not k.startswith("_")}

    def build(self, task: Task, rng: np.random.Generator) -> Network:
        raise NotImplementedError

    # what others may ask before building ----------------------------------------------------
    @classmethod
    def supports(cls, task: Task) -> tuple[bool, str]:
        """``(True, "")`` when this construction can build ``task``, else ``(False, why)``."""
        reason = cls._unsupported(task)
        return (True, "") if reason is None else (False, reason)

    @classmethod
    def _unsupported(cls, task: Task) -> str | None:
        """Why ``task`` cannot be built (None when it can); subclasses refine this."""
        return None

    @classmethod
    def parameters(cls) -> frozenset[str]:
        """The names of the parameters ``__init__`` accepts."""
        return _init_parameters(cls)

    @classmethod
    def grows(cls) -> bool:
        """Whether the widths can be scaled (a ``width_scale`` parameter)."""
        return "width_scale" in cls.parameters()

    @classmethod
    def memory_parts(
        cls, features: int, n_gates: int, operands: float, params: dict[str, Any]
    ) -> tuple[dict[str, int], list[str]]:
        """Bytes the build allocates beyond the task (by part), and the assumptions made.

        ``operands`` is the total number of gate operands; ``params`` the construction's
        parameters (unknown ones ignored). The default is a generic 2 KB per gate.
        """
        return (
            {"weights": int(GENERIC_PER_GATE * n_gates + 24 * operands)},
            [f"no model for construction {cls.name!r}: generic 2 KB per gate"],
        )

    def memory_estimate(self, task: Task) -> tuple[dict[str, int], list[str]]:
        """:meth:`memory_parts` for ``task`` with this construction's parameters."""
        return type(self).memory_parts(
            task.features, max(task.n_gates, 1), float(len(task.gate_inputs)), self.get_params()
        )

    def __repr__(self) -> str:
        args = ", ".join(f"{k}={v!r}" for k, v in self.get_params().items())
        return f"{type(self).__name__}({args})"


@functools.cache
def _init_parameters(cls: type) -> frozenset[str]:
    """The one place that reads a constructor's signature (cached per class)."""
    names = inspect.signature(cls.__init__).parameters
    return frozenset(n for n, p in names.items() if n != "self" and p.kind is not p.VAR_KEYWORD)


def positive_param(params: dict[str, Any], key: str, default: int) -> tuple[int, bool]:
    """``params[key]`` as a positive int, or ``default`` when absent; and whether it was absent."""
    value = params.get(key)
    if value is None:
        return default, True
    if (
        isinstance(value, bool)
        or not isinstance(value, (int, float))
        or not math.isfinite(value)
        or value < 1
    ):
        raise SuperposeError(f"memory estimate: {key} must be a positive number, got {value!r}")
    return int(value), False
