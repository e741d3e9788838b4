"""Memory estimates before a build, and the refusal check that keeps a run inside the machine.

A build is refused, before any array is allocated, when its estimated peak exceeds the limit
(by default 80% of physical memory), unless the user overrides the check. The estimate is a
linear model of the allocations a construction makes, with coefficients measured on this
code base (peak resident memory of ``superposed`` builds and verification at m' = 2·10⁴ …
3·10⁵, ℓ = ℓ' ∈ {4, 6}) and a safety factor of 1.25:

* the task: about 40 bytes per gate operand and gate;
* the construction's build: its own model, :meth:`Construction.memory_parts
  <superpose.constructions.base.Construction.memory_parts>` (a generic 2 KB per gate when it
  has none) -- today:
* ``superposed``: the weight matrix and its intermediates, about 16 bytes per unit of
  *load* (ℓ' · Σ operands · ℓ, the sum over output units of their read sets) plus about
  700 bytes per gate (codes, read sets, routing) and 24 bytes per input-code entry;
* ``superposed3``: the same for the hidden layer plus t · ℓ' per gate for the output layer;
* ``naive``: about 800 bytes per gate (per-gate lists during assembly);
* verification: about 700 bytes per gate (ground-truth structures) plus the batch, on top of
  the network;
* the process itself (interpreter, numpy, scipy): 150 MiB.

When ℓ or ℓ' is left to the automatic choice, the estimate assumes the largest value the
choice can make (10), so it errs high.

Example:
    >>> est = estimate_memory(100_000, 100_000, "superposed", ell=6, ell_out=6)
    >>> 100 * 2**20 < est.total_bytes < 2 * 2**30
    True
    >>> check_memory(est.total_bytes, limit_bytes=64 * 2**30, override=False)
"""

from __future__ import annotations

import math
import os
import re
from dataclasses import dataclass, field
from typing import Any

from superpose.errors import SuperposeError

SAFETY = 1.25
DEFAULT_FRACTION = 0.8
LIMIT_ENV = "SUPERPOSE_MEMORY_LIMIT"
"""Environment variable overriding the default limit (bytes, or a size such as ``12G``)."""

_FIXED = 150 * 2**20
_TASK_PER_GATE = 40
_TASK_PER_OPERAND = 16
_VERIFY_PER_GATE = 700
_VERIFY_BATCH_ENTRY = 64
_PER_FEATURE = 64
"""Per input feature: node levels, code tables and index arrays sized by m, whatever the gates."""


def format_bytes(n: float) -> str:
    """A byte count as a short human-readable size.

    Example:
        >>> format_bytes(3 * 2**30)
        '3.0 GiB'
    """
    n = float(n)
    for unit in ("B", "KiB", "MiB", "GiB", "TiB"):
        if abs(n) < 1024 or unit == "TiB":
            return f"{n:.0f} {unit}" if unit == "B" else f"{n:.1f} {unit}"
        n /= 1024
    return f"{n:.1f} TiB"  # pragma: no cover


def parse_bytes(text: str | int) -> int:
    """Parse a size such as ``"12G"``, ``"512MiB"`` or ``"1000000"`` into bytes.

    Example:
        >>> parse_bytes("1.5G"), parse_bytes("64 MiB"), parse_bytes(10)
        (1610612736, 67108864, 10)
    """
    if isinstance(text, int) and not isinstance(text, bool):
        if text < 0:
            raise SuperposeError(f"a memory size must be >= 0, got {text}")
        return text
    match = re.fullmatch(
        r"\s*([0-9]*\.?[0-9]+)\s*([kmgt]?)(i?b)?\s*", str(text), flags=re.IGNORECASE
    )
    if match is None:
        raise SuperposeError(f"not a memory size: {text!r} (examples: 8G, 512MiB, 1000000)")
    value, prefix = float(match.group(1)), match.group(2).lower()
    power = {"": 0, "k": 1, "m": 2, "g": 3, "t": 4}[prefix]
    return int(value * 1024**power)


def physical_memory_bytes() -> int:
    """Physical memory of this machine in bytes (``/proc/meminfo``, else ``os.sysconf``).

    Example:
        >>> physical_memory_bytes() > 0
        True
    """
    try:
        with open("/proc/meminfo", encoding="ascii") as handle:
            for line in handle:
                if line.startswith("MemTotal:"):
                    return int(line.split()[1]) * 1024
    except (OSError, ValueError, IndexError):
        pass
    try:
        return int(os.sysconf("SC_PAGE_SIZE")) * int(os.sysconf("SC_PHYS_PAGES"))
    except (ValueError, OSError, AttributeError):  # pragma: no cover - exotic platforms
        return 8 * 2**30


def default_limit_bytes(fraction: float = DEFAULT_FRACTION) -> int:
    """The memory limit: ``$SUPERPOSE_MEMORY_LIMIT`` if set, else ``fraction`` of physical memory.

    Example:
        >>> default_limit_bytes(0.5) <= physical_memory_bytes()
        True
    """
    env = os.environ.get(LIMIT_ENV)
    if env:
        return parse_bytes(env)
    if not 0 < fraction <= 1:
        raise SuperposeError(f"memory fraction must be in (0, 1], got {fraction}")
    return int(physical_memory_bytes() * fraction)


@dataclass(frozen=True)
class MemoryEstimate:
    """An estimated peak (bytes) with its parts and the assumptions behind it."""

    total_bytes: int
    parts: dict[str, int] = field(default_factory=dict)
    assumptions: list[str] = field(default_factory=list)

    def to_dict(self) -> dict[str, Any]:
        return {
            "total_bytes": self.total_bytes,
            "parts": dict(self.parts),
            "assumptions": list(self.assumptions),
        }

    def __str__(self) -> str:
        parts = ", ".join(f"{k} {format_bytes(v)}" for k, v in self.parts.items())
        return f"about {format_bytes(self.total_bytes)} ({parts})"


def _positive(name: str, value: Any) -> int:
    if isinstance(value, bool) or not isinstance(value, int) or value < 1:
        raise SuperposeError(f"memory estimate: {name} must be a positive integer, got {value!r}")
    return value


def estimate_memory(
    features: int,
    outputs: int,
    construction: str = "superposed",
    *,
    sparsity: int = 2,
    arity: float = 2.0,
    verify: bool = True,
    batch_size: int = 2048,
    **params: Any,
) -> MemoryEstimate:
    """Estimated peak memory of building (and verifying) a network for m features, m' outputs.

    ``params`` are the construction's parameters (``ell``, ``ell_out``, ``t``, ...); unknown
    ones are ignored. ``arity`` is the mean number of operands per gate.

    Example:
        >>> e = estimate_memory(10**6, 10**6, "superposed", ell=6, ell_out=6)
        >>> 2 * 2**30 < e.total_bytes < 8 * 2**30
        True
    """
    m, n_gates = _positive("features", features), _positive("outputs", outputs)
    _positive("sparsity", sparsity)
    operands = arity * n_gates
    parts: dict[str, int] = {"process": _FIXED}
    notes: list[str] = []
    parts["task"] = int(_TASK_PER_GATE * n_gates + _TASK_PER_OPERAND * operands)
    parts["features"] = int(_PER_FEATURE * m)
    from superpose.constructions import CONSTRUCTIONS

    # The construction's own model (superposed, superposed3, naive); a generic one otherwise.
    cls = CONSTRUCTIONS.get(construction)
    model = cls.memory_parts if cls is not None else _generic(construction)
    built, notes = model(m, n_gates, operands, params)
    parts.update(built)
    if verify:
        parts["verify"] = int(
            _VERIFY_PER_GATE * n_gates + _VERIFY_BATCH_ENTRY * batch_size * 8 * sparsity
        )
    raw = sum(parts.values())
    notes.append(f"safety factor {SAFETY}")
    return MemoryEstimate(int(math.ceil(raw * SAFETY)), parts, notes)


def _generic(construction: str):
    """The base class's generic model, named after an unregistered construction."""
    from superpose.constructions.base import Construction

    return type("_Unknown", (Construction,), {"name": construction}).memory_parts


def estimate_task_memory(
    task: Any, construction: str = "superposed", *, verify: bool = True, **params: Any
) -> MemoryEstimate:
    """:func:`estimate_memory` for a :class:`~superpose.task.Task` (its real operand count).

    Example:
        >>> import numpy as np
        >>> from superpose.families import pairs
        >>> estimate_task_memory(pairs(100, 200, np.random.default_rng(0)), "naive").total_bytes > 0
        True
    """
    arity = float(len(task.gate_inputs)) / max(task.n_gates, 1)
    return estimate_memory(
        task.features,
        max(task.n_gates, 1),
        construction,
        sparsity=task.sparsity,
        arity=max(arity, 1.0),
        verify=verify,
        **params,
    )


def check_memory(
    estimate_bytes: int | MemoryEstimate,
    limit_bytes: int | None = None,
    override: bool = False,
    *,
    what: str = "this build",
) -> None:
    """Refuse (raise :class:`SuperposeError`) when the estimate exceeds the limit, unless overridden.

    ``limit_bytes`` defaults to :func:`default_limit_bytes` (80% of physical memory or
    ``$SUPERPOSE_MEMORY_LIMIT``). The message states both numbers and what to do.

    Example:
        >>> check_memory(2**40, limit_bytes=2**30, override=False)
        Traceback (most recent call last):
        ...
        superpose.errors.SuperposeError: this build needs about 1.0 TiB (estimated), above the memory limit of 1.0 GiB; use fewer outputs or shorter codes (ell, ell_out), raise the limit with SUPERPOSE_MEMORY_LIMIT, or override the check
        >>> check_memory(2**40, limit_bytes=2**30, override=True)
    """
    estimate = (
        estimate_bytes.total_bytes if isinstance(estimate_bytes, MemoryEstimate) else estimate_bytes
    )
    if override:
        return
    limit = default_limit_bytes() if limit_bytes is None else int(limit_bytes)
    if estimate <= limit:
        return
    source = ""
    if limit_bytes is None:
        if os.environ.get(LIMIT_ENV):
            source = f" (from {LIMIT_ENV})"
        else:
            source = (
                f" ({DEFAULT_FRACTION:.0%} of {format_bytes(physical_memory_bytes())} "
                "physical memory)"
            )
    advice = "use fewer outputs or shorter codes (ell, ell_out)"
    parts = estimate_bytes.parts if isinstance(estimate_bytes, MemoryEstimate) else {}
    if parts and max(parts, key=parts.__getitem__) == "verify":
        advice = (
            f"most of it ({format_bytes(parts['verify'])}) is the check's batches of s-sparse "
            "inputs: use a smaller sparsity or fewer outputs"
        )
    raise SuperposeError(
        f"{what} needs about {format_bytes(estimate)} (estimated), above the memory limit of "
        f"{format_bytes(limit)}{source}; {advice}, "
        f"raise the limit with {LIMIT_ENV}, or override the check",
        cli="--force-memory",
    )


def peak_rss_bytes() -> int:
    """Peak resident memory of this process so far, in bytes (``ru_maxrss``).

    Example:
        >>> peak_rss_bytes() > 0
        True
    """
    import resource
    import sys

    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    return int(peak if sys.platform == "darwin" else peak * 1024)


def peak_rss_children_bytes() -> int:
    """Largest peak resident memory of any finished child process (``RUSAGE_CHILDREN``).

    Forked workers share the parent's pages until they write them, so this counts shared
    pages too: add it to :func:`peak_rss_bytes` only as an upper bound.

    Example:
        >>> peak_rss_children_bytes() >= 0
        True
    """
    import resource
    import sys

    peak = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss
    return int(peak if sys.platform == "darwin" else peak * 1024)


__all__ = [
    "LIMIT_ENV",
    "MemoryEstimate",
    "check_memory",
    "default_limit_bytes",
    "estimate_memory",
    "estimate_task_memory",
    "format_bytes",
    "parse_bytes",
    "peak_rss_bytes",
    "peak_rss_children_bytes",
    "physical_memory_bytes",
]
