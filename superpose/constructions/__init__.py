"""Constructions: each turns a task into a network (``build(task, rng) -> Network``)."""

from __future__ import annotations

import math
from typing import Any

import numpy as np

from superpose.constructions.base import Construction
from superpose.constructions.circuit import Circuit
from superpose.constructions.naive import Naive
from superpose.constructions.stream import Stream
from superpose.constructions.superposed import Superposed, Superposed3
from superpose.errors import SuperposeError
from superpose.network import Network
from superpose.seeds import Seeds
from superpose.task import Task

CONSTRUCTIONS: dict[str, type[Construction]] = {
    c.name: c for c in (Superposed, Superposed3, Naive, Circuit, Stream)
}
DEFAULT_CONSTRUCTION = "superposed"


def register(cls: type[Construction]) -> type[Construction]:
    """Add a construction class to the registry under ``cls.name``."""
    CONSTRUCTIONS[cls.name] = cls
    return cls


def make_construction(name: str, **params: Any) -> Construction:
    """The construction called ``name``, created with ``params``."""
    if name not in CONSTRUCTIONS:
        raise SuperposeError(
            f"unknown construction {name!r} (known: {', '.join(sorted(CONSTRUCTIONS))})"
        )
    for key, value in params.items():
        if isinstance(value, float) and not math.isfinite(value):
            raise SuperposeError(f"construction {name!r}: {key} must be finite, got {value}")
    try:
        return CONSTRUCTIONS[name](**params)
    except TypeError as exc:
        raise SuperposeError(f"construction {name!r}: {exc}") from None


def default_construction(task: Task) -> str:
    """``circuit`` for a task whose gates read other gates, else ``DEFAULT_CONSTRUCTION``."""
    return "circuit" if task.depth > 1 else DEFAULT_CONSTRUCTION


def build(
    task: Task,
    construction: str | Construction | None = None,
    *,
    seed: int | None = 0,
    rng: np.random.Generator | None = None,
    **params: Any,
) -> Network:
    """Build the construction's network for ``task``: one attempt, no check, no fallback.

    This is the raw design (used by the width search, benchmarks and the conformance suite);
    :func:`superpose.build` is the checked build every user-facing path goes through. The
    random choices come from ``rng``, or from the ``build`` stream of ``Seeds(seed)``.

    Example:
        >>> from superpose import Task
        >>> net = build(Task.from_gates(2, 2, [("and", [0, 1])]), "naive")
        >>> net.counts().neurons
        3
    """
    if construction is None:
        construction = default_construction(task)
    con = (
        construction
        if isinstance(construction, Construction)
        else make_construction(construction, **params)
    )
    if rng is None:
        rng = Seeds(0 if seed is None else seed).rng("build")
    net = con.build(task, rng)
    net.seed = seed
    return net


__all__ = [
    "CONSTRUCTIONS",
    "Construction",
    "DEFAULT_CONSTRUCTION",
    "build",
    "default_construction",
    "make_construction",
    "register",
]
