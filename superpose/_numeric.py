"""Small numeric helpers shared by several layers (one implementation each).

* :func:`ln_binom` -- ``ln C(n, k)`` by log-gamma, vectorised. The constructions' failure
  models, the description length of a network and the comparison harness all need it on
  floats; :func:`superpose.bounds.ln_comb` is the exact-integer variant the lower bounds use
  (it corrects the log-gamma rounding that matters for n in the billions).
* :func:`largest` -- bisection for the largest value a monotone test accepts (the sizing
  models' "largest fan-in / density that keeps the failure below its target").
* :func:`pyplot` -- matplotlib's ``pyplot`` on the non-interactive Agg backend, so plotting
  never needs a display (CI, servers) and never opens a window.
* :func:`json_default` / :func:`jsonable` -- numpy scalars and arrays as plain JSON values
  (``json.dumps(..., default=json_default)``; ``jsonable`` also turns keys into text and
  tuples into lists, for metadata written with ``sort_keys``).

Example:
    >>> round(float(ln_binom(5, 2)), 12) == round(math.log(10), 12)
    True
"""

from __future__ import annotations

import math  # noqa: F401 - used by the doctest
from collections.abc import Callable
from typing import Any

import numpy as np
from scipy import special


def ln_binom(n: Any, k: Any) -> Any:
    """``ln C(n, k)`` (natural log) for scalars or arrays; ``n - k`` is clipped at 0."""
    return (
        special.gammaln(n + 1) - special.gammaln(k + 1) - special.gammaln(np.maximum(n - k, 0) + 1)
    )


def ranges(lengths: np.ndarray) -> np.ndarray:
    """Concatenated ``arange(n)`` for each n in ``lengths`` (the positions inside CSR rows).

    >>> ranges(np.array([2, 0, 3])).tolist()
    [0, 1, 0, 1, 2]
    """
    total = int(lengths.sum())
    return np.arange(total) - np.repeat(np.cumsum(lengths) - lengths, lengths)


def largest(ok: Callable[[float], bool], lo: float, hi: float, steps: int) -> float:
    """The largest x in [lo, hi] with ``ok(x)`` (``ok`` true below some point, false above),
    to ``steps`` halvings; ``lo`` when even ``lo`` fails.

    >>> round(largest(lambda x: x * x <= 2, 0.0, 2.0, 40), 6)
    1.414214
    """
    if not ok(lo):
        return lo
    for _ in range(steps):
        mid = (lo + hi) / 2
        lo, hi = (mid, hi) if ok(mid) else (lo, mid)
    return lo


def in_sorted(values: np.ndarray, keys: np.ndarray) -> np.ndarray:
    """``np.isin(values, keys)`` for sorted ``keys``: a binary search per value, no hashing of
    both arrays (``isin`` hashed a 10^5-output certificate's keys for 13 s).

    >>> in_sorted(np.array([3, 4, 9]), np.array([1, 3, 9])).tolist()
    [True, False, True]
    """
    if len(keys) == 0:
        return np.zeros(len(values), dtype=bool)
    pos = np.minimum(np.searchsorted(keys, values), len(keys) - 1)
    return keys[pos] == values


def json_default(value: Any) -> Any:
    """A numpy scalar or array as a plain JSON value (``json.dumps(..., default=json_default)``).

    >>> import json
    >>> json.dumps({"n": np.int64(3), "x": np.float32(0.5), "ok": np.bool_(True)}, default=json_default)
    '{"n": 3, "x": 0.5, "ok": true}'
    """
    if isinstance(value, np.integer):
        return int(value)
    if isinstance(value, np.floating):
        return float(value)
    if isinstance(value, np.bool_):
        return bool(value)
    if isinstance(value, np.ndarray):
        return value.tolist()
    raise TypeError(f"not JSON serialisable: {type(value).__name__}")


def jsonable(value: Any) -> Any:
    """``value`` with numpy values made plain, dict keys made text and tuples made lists
    (recursively); anything else is returned as it is.

    >>> jsonable({1: (np.int8(2), np.arange(2))})
    {'1': [2, [0, 1]]}
    """
    if isinstance(value, dict):
        return {str(k): jsonable(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [jsonable(v) for v in value]
    try:
        return json_default(value)
    except TypeError:
        return value


def pyplot() -> Any:
    """``matplotlib.pyplot`` on the Agg backend (imported lazily: plotting is optional)."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    return plt
