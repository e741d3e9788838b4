"""Small numeric helpers shared by several layers (one implementation each).

* :func:`ln_binom` -- ``ln C(n, k)`` by log-gamma, vectorised. The constructions' failure
  models, the description length of a network and the comparison harness all need it on
  floats; :func:`superpose.bounds.ln_comb` is the exact-integer variant the lower bounds use
  (it corrects the log-gamma rounding that matters for n in the billions).
* :func:`largest` -- bisection for the largest value a monotone test accepts (the sizing
  models' "largest fan-in / density that keeps the failure below its target").
* :func:`pyplot` -- matplotlib's ``pyplot`` on the non-interactive Agg backend, so plotting
  never needs a display (CI, servers) and never opens a window.

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


def pyplot() -> Any:
    """``matplotlib.pyplot`` on the Agg backend (imported lazily: plotting is optional)."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    return plt
