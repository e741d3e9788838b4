"""Automatic parameters for the superposed constructions: code lengths, fan-in target, widths.

The reasoning (SPEC §4), for a unit that must see ``k`` full operand codes of ``l`` bits:

* A unit reading a fraction f of the input layer fires falsely when the active features that
  are *not* its gate's missing operands put enough bits inside its read set. With j operands
  of one of its gates present, the other s - j active features must supply k*l - j*l bits;
  each of their (s - j)*l bits lands inside with probability about f, so
  P(unit) = P(Bin((s - j) l, f) >= (k - j) l).
* A gate reads as true only if all l' of its units fire: P(gate) = P(unit)^l'.
* Per random input there are about s * (average influence) gates with j >= 1 operands
  present and m' gates with none; their sum must stay below the target failure probability.
* Adversarial inputs: for a gate with k - 1 operands present, the s - k + 1 other active
  features may be chosen by an adversary among all C(m, s - k + 1) sets; a union bound over
  them (with the shared-bits correction above) must stay below 1e-5 per gate, so that the
  verifier's targeted search, which scores every feature, finds nothing. A distractor that
  is an operand of another gate coded on one of the gate's units (a collision, probability
  about influence * l' / n per unit) fills that unit by itself and is counted too.
* The density of a pool of width n_out over an input layer of width n_in is
  f = 1 - exp(-load / (n_in n_out)) with load = sum over gates of l' * |read set|, so the
  largest safe f fixes n_in * n_out = load / ln(1/(1 - f)); equal widths minimise the sum.

(l, l') are chosen from a small grid to minimise total neurons. These are our constants, not
the paper's; the width search (:mod:`superpose.constructions.search`) finds the edge
empirically.
"""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass
from typing import Any

import numpy as np
from scipy import special

from superpose.task import OP_CODE, Task, n_sparse_inputs

ADVERSARIAL_TARGET = 1e-5
DEFAULT_FAILURE = 1e-6
CERTIFIABLE_INPUTS = 10**7
MIN_FAN_IN = 1e-4


@dataclass(frozen=True)
class AutoParams:
    """A parameter choice and the numbers behind it."""

    ell: int
    ell_out: int
    fan_in: float
    n_in: int
    n_out: int
    load: float
    predicted_failure: float
    feasible: bool = True
    """False when no fan-in met the failure and adversarial targets (see ``max_fan_in``)."""

    def as_dict(self) -> dict[str, Any]:
        return asdict(self)


def _shared_bits(bits: int, need: int, n_in: float) -> tuple[np.ndarray, np.ndarray]:
    """(v, log P(v)): how many of ``bits`` random input bits land in ``need`` given ones.

    Each bit lands there with probability need / n_in (binomial); v runs to min(bits, need).
    """
    q = min(1.0, need / max(n_in, 1.0))
    v = np.arange(0, min(bits, need) + 1)
    log_pmf = (
        special.gammaln(bits + 1)
        - special.gammaln(v + 1)
        - special.gammaln(bits - v + 1)
        + special.xlogy(v, q)
        + special.xlog1py(bits - v, -q)
    )
    return v, log_pmf


def gate_failure(
    f: float,
    ell: int,
    ell_out: int,
    k: int,
    s: int,
    per_active: float,
    n_gates: int,
    n_in: float,
    n_out: float | None = None,
) -> float:
    """Expected false gates per random s-sparse input at fan-in fraction ``f`` (see module doc).

    The bits an active feature shares with a gate's missing operands lie in the read set of
    *every* unit of that gate, so they are summed over first (v shared bits, binomial with
    per-bit probability (k - j) l / n_in) and the rest is independent per unit. A gate missing
    one operand also fails on a unit that hosts another gate of an active feature (a
    collision): that feature's whole code is then in the unit's read set. With influence
    ``per_active`` this happens with probability about (s - j) * per_active * l' / n_out per
    unit, which dominates when features are read by very many gates (universal AND).
    """
    n_out = n_in if n_out is None else n_out
    total = 0.0
    for j in range(0, min(k, s + 1)):
        others = s - j
        need = (k - j) * ell
        bits = others * ell
        if bits < need:
            continue
        v, log_pmf = _shared_bits(bits, need, n_in)
        # P(Bin(bits - v, f) >= need - v); certain once the shared bits alone reach `need`.
        p_unit = np.where(need - v > 0, special.bdtrc(need - v - 1, bits - v, f), 1.0)
        if k - j == 1:
            p_unit = np.minimum(1.0, p_unit + others * per_active * ell_out / max(n_out, 1.0))
        p_gate = float(np.sum(np.exp(log_pmf) * p_unit**ell_out))
        count = n_gates if j == 0 else s * per_active
        total += count * p_gate
    return total


def adversarial_risk(
    f: float,
    ell: int,
    ell_out: int,
    k: int,
    s: int,
    m: int,
    n_in: float,
    per_active: float = 2.0,
    n_out: float | None = None,
) -> float:
    """Chance that some set of distractors fools a gate that misses one operand (union bound).

    With k - 1 operands present, r = s - k + 1 distractors chosen among all C(m, r) sets must
    put l bits into every unit of the gate; bits they share with the missing operand's code
    count in all units at once (v shared bits), the rest land in a unit with probability f.
    """
    r = s - k + 1
    if r < 1:
        return 0.0
    bits = r * ell
    v, log_pmf = _shared_bits(bits, ell, n_in)
    p_unit = np.where(ell - v > 0, special.bdtrc(ell - v - 1, bits - v, f), 1.0)
    # Collisions: a distractor that is itself an operand of a gate coded on the unit puts its
    # whole code there; each of the r distractors is one with probability ~ influence l' / n.
    hosted = min(1.0, r * per_active * ell_out / max(n_in if n_out is None else n_out, 1.0))
    p_unit = np.minimum(1.0, p_unit + hosted)
    p_gate = float(np.sum(np.exp(log_pmf) * p_unit**ell_out))
    log_sets = special.gammaln(m + 1) - special.gammaln(r + 1) - special.gammaln(max(m - r, 0) + 1)
    return float(np.exp(log_sets) * p_gate)


def max_fan_in(
    ell: int,
    ell_out: int,
    k: int,
    s: int,
    per_active: float,
    n_gates: int,
    m: int,
    failure: float,
    load: float,
    explicit_inputs: bool = False,
) -> float:
    """Largest fan-in fraction f meeting the failure target and the adversarial target.

    The widths follow from f as in :func:`auto_params`: equal widths sqrt(load / ln(1/(1-f)));
    with explicit inputs n_in = m and n_out = load / (m ln(1/(1-f))), and no bits shared
    between codes (n_in = inf in the shared-bit terms). Returns the smallest fraction tried
    (1e-4) when none meets them; ``auto_params`` then marks its choice infeasible.
    """
    lo, hi = MIN_FAN_IN, 0.95

    def ok(f: float) -> bool:
        if explicit_inputs:
            n_out = load / (m * -math.log1p(-f))
            # Explicit codes share no bits (n_in = inf: no shared-bit term).
            return (
                gate_failure(f, ell, ell_out, k, s, per_active, n_gates, math.inf, n_out) <= failure
                and adversarial_risk(f, ell, ell_out, k, s, m, math.inf, per_active, n_out)
                <= ADVERSARIAL_TARGET
            )
        n_in = math.sqrt(load / -math.log1p(-f))
        return (
            gate_failure(f, ell, ell_out, k, s, per_active, n_gates, n_in) <= failure
            and adversarial_risk(f, ell, ell_out, k, s, m, n_in, per_active) <= ADVERSARIAL_TARGET
        )

    if not ok(lo):
        return lo
    for _ in range(40):
        mid = (lo + hi) / 2
        lo, hi = (mid, hi) if ok(mid) else (lo, mid)
    return lo


def task_shape(task: Task) -> tuple[int, float]:
    """(largest number of full codes a unit must see, mean operand count) of a one-level task."""
    k = 1
    and_like = (
        (task.ops == OP_CODE["and"])
        | (task.ops == OP_CODE["xor"])
        | (task.ops == OP_CODE["andnot"])
    )
    if and_like.any():
        k = int(task.arity[and_like].max())
    return k, float(task.arity.mean()) if task.n_gates else 1.0


def auto_params(
    task: Task,
    failure: float = DEFAULT_FAILURE,
    ell: int | None = None,
    ell_out: int | None = None,
    explicit_inputs: bool = False,
) -> AutoParams:
    """Choose l, l', the fan-in target and equal widths for a one-level task.

    Example:
        >>> import numpy as np
        >>> from superpose.families import pairs
        >>> p = auto_params(pairs(100_000, 100_000, np.random.default_rng(0)))
        >>> 2000 < p.n_in < 3500 and p.ell >= 4
        True
    """
    m, n_gates, s = task.features, task.n_gates, task.sparsity
    inputs = n_sparse_inputs(m, s)
    if inputs <= CERTIFIABLE_INPUTS:
        # Small enough to verify every input: aim for every input correct (union bound).
        failure = min(failure, 0.1 / inputs)
    k, mean_arity = task_shape(task)
    per_active = mean_arity * n_gates / max(m, 1)
    ells = [1] if explicit_inputs else ([ell] if ell else list(range(4, 15)))
    ell_outs = [ell_out] if ell_out else list(range(3, 11))
    best: AutoParams | None = None
    for e in ells:
        for eo in ell_outs:
            load = eo * mean_arity * e * n_gates
            f = max_fan_in(e, eo, k, s, per_active, n_gates, m, failure, load, explicit_inputs)
            if explicit_inputs:
                n_in = m
                n_out = math.ceil(load / (n_in * -math.log1p(-f)))
            else:
                n_in = n_out = math.ceil(math.sqrt(load / -math.log1p(-f)))
                n_in = max(n_in, 4 * e * s)
            n_out = max(n_out, 2 * eo)
            shared_bits_over = math.inf if explicit_inputs else n_in  # explicit: none shared
            predicted = gate_failure(f, e, eo, k, s, per_active, n_gates, shared_bits_over, n_out)
            adversarial = adversarial_risk(f, e, eo, k, s, m, shared_bits_over, per_active, n_out)
            feasible = predicted <= failure and adversarial <= ADVERSARIAL_TARGET
            cand = AutoParams(e, eo, f, n_in, n_out, load, predicted, feasible)
            # Feasible choices first, then the fewest neurons.
            key = (not cand.feasible, cand.n_in + cand.n_out)
            if best is None or key < (not best.feasible, best.n_in + best.n_out):
                best = cand
    assert best is not None
    return best


REPAIR_CALIBRATION = {3: 3.0, 4: 1.7, 5: 1.5}
"""Measured ratio of vulnerable gates to the independence estimate, by l' (>= 6: 1.3)."""
REPAIRABLE_SHARE = 0.01


def vulnerable_share(n: int, ell: int, ell_out: int, m: int, n_gates: int) -> float:
    """Expected share of 2-AND gates open to some 2-sparse input, at equal widths n.

    A gate is vulnerable when some other feature's code lies inside I_k, the input units read
    by all l' of its units: |I_k| ~ 2l + f^l' (n - 2l) with f = 1 - exp(-2 l l' m' / n^2), and
    about m (|I_k| / n)^l features fit. The constant was fitted on prototypes (m' = 1e3..1e5).
    """
    f = -math.expm1(-2 * ell * ell_out * n_gates / (n * n))
    inside = 2 * ell + f**ell_out * (n - 2 * ell)
    cal = REPAIR_CALIBRATION.get(ell_out, 1.3)
    return min(1.0, cal * m * (inside / n) ** ell)


def repair_params(task: Task) -> AutoParams:
    """Widths for a 2-AND task at s = 2 whose few vulnerable gates are repaired afterwards.

    Repair (see :mod:`superpose.constructions.certify`) converges when at most about 1% of
    the gates start out vulnerable, so the smallest equal width n with that share is chosen,
    minimised over l in 4..7 and l' in 5..8.

    Example:
        >>> import numpy as np
        >>> from superpose.families import pairs
        >>> repair_params(pairs(100_000, 100_000, np.random.default_rng(0))).n_in < 2800
        True
    """
    m, g = task.features, task.n_gates
    best: AutoParams | None = None
    for ell in range(4, 8):
        for ell_out in range(5, 9):
            lo, hi = 4 * ell, 4 * int(math.sqrt(2 * ell * ell_out * g)) + 8 * ell
            while lo < hi:
                mid = (lo + hi) // 2
                if vulnerable_share(mid, ell, ell_out, m, g) <= REPAIRABLE_SHARE:
                    hi = mid
                else:
                    lo = mid + 1
            n = lo
            load = 2.0 * ell * ell_out * g
            f = -math.expm1(-load / (n * n))
            cand = AutoParams(ell, ell_out, f, n, n, load, vulnerable_share(n, ell, ell_out, m, g))
            if best is None or cand.n_in < best.n_in:
                best = cand
    assert best is not None
    return best
