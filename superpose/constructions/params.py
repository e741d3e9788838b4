"""Automatic parameters for the superposed constructions: code lengths, fan-in target, widths.

The reasoning (docs/DESIGN.md, Constructions), for a unit that must see ``k`` full operand codes of ``l`` bits:

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
the paper's; the width search (:mod:`superpose.search`) finds the edge
empirically.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import asdict, dataclass
from typing import Any, NamedTuple

import numpy as np
from scipy import special

from superpose._numeric import ln_binom
from superpose.errors import SuperposeError
from superpose.task import OP_CODE, Task, n_sparse_inputs

ADVERSARIAL_TARGET = 1e-5
DEFAULT_FAILURE = 1e-6
CERTIFIABLE_INPUTS = 10**7
MIN_FAN_IN = 1e-4


def check_choice(name: str, value: object, choices: Sequence[str]) -> None:
    """Refuse a parameter that is not one of ``choices`` (the message lists them).

    Example:
        >>> check_choice("units", "pool", ("auto", "pool", "exact"))
        >>> check_choice("units", "mine", ("auto", "pool", "exact"))
        Traceback (most recent call last):
        superpose.errors.SuperposeError: units must be one of auto, pool, exact, got 'mine'
    """
    if value not in choices:
        raise SuperposeError(f"{name} must be one of {', '.join(choices)}, got {value!r}")


def check_deep_params(max_active: object, ell: object) -> None:
    """The parameter checks the deep constructions (``circuit``, ``stream``) share:
    ``max_active`` (the most true nodes a level is sized for) a positive integer, ``ell``
    (a fixed code length) unset or an integer in 2..32."""
    if isinstance(max_active, bool) or not isinstance(max_active, int) or max_active < 1:
        raise SuperposeError(f"max_active must be a positive integer, got {max_active!r}")
    if ell is not None and (not isinstance(ell, int) or not 2 <= ell <= 32):
        raise SuperposeError(f"ell must be an integer in 2..32, got {ell!r}")


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
    log_pmf = ln_binom(bits, v) + special.xlogy(v, q) + special.xlog1py(bits - v, -q)
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
    log_sets = ln_binom(m, r)
    return float(np.exp(log_sets) * p_gate)


def hub_width(top: float, ell_out: int, gates: int, target: float = ADVERSARIAL_TARGET) -> int:
    """Pool width at which the heaviest active features fool fewer than ``target`` gates.

    A feature that is an operand of I gates of a pool has its whole code in the read set of
    every unit hosting one of them, about a share 1 - exp(-I l' / W) of the pool's W units
    (each gate is coded on l' units). A gate of the pool that misses one operand fires on
    each of its l' units with that probability when such a feature is active, so the input
    made of the r = s - k + 1 heaviest features (``top``: their summed influence in the pool)
    fools about gates x (1 - exp(-top l' / W))^l' gates. Averages hide this: one hub read by
    a thousand ORs turns on a large share of a pool sized for the mean influence (the stress
    suite's hub-or profile). Solving gates x p^l' <= target for W:

        >>> hub_width(1000, 5, 8000), hub_width(2, 5, 8000)
        (299202, 599)
    """
    if top <= 0 or gates <= 0:
        return 0
    p = (target / gates) ** (1.0 / ell_out)
    if p >= 1.0:
        return 0
    return math.ceil(top * ell_out / -math.log1p(-p))


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


HOME_CALIBRATION = 1.3
"""Measured ratio of vulnerable gates to :func:`home_vulnerable_share` at m' = 1e5 (l' = 6)."""
CERTIFICATE_REPAIRABLE_SHARE = 0.2
"""Vulnerable share the certificate-driven repair (40 rounds) clears: measured 20-22% at its
edge at m' = 1e3, 1e4 and 1e5 (README, "Closer to the limit")."""


def home_vulnerable_share(n: int, ell: int, ell_out: int, m: int, n_gates: int) -> float:
    """Expected share of 2-AND gates open to some 2-sparse input with home units, widths n.

    Each feature writes its code once into its l'/2 home units and each gate (a, c) writes
    code(c) into a's home units and code(a) into c's, so the load is l l' (m' + m/2), not
    2 l l' m' (x 3/4 for m = m'). Two ways a gate (a, c) is open: (1) as in
    :func:`vulnerable_share`, some code lies in the bits all l' units read; (2) a neighbour p
    of a (a gate (a, p)) has its code in all of a's home units already, so it only needs its
    l bits in the l'/2 home units of c by chance: 2 d (f^(l'/2))^l with d = 2m'/m gates per
    feature. Term (2) does not shrink with m, which is why small m' needs relatively wider
    layers. ``HOME_CALIBRATION`` is fitted at m' = 1e5; at 1e3 and 1e4 the measured share is
    larger (README table), which the build's repair and check absorb.
    """
    f = -math.expm1(-ell * ell_out * (n_gates + m / 2) / (n * n))
    inside = 2 * ell + f**ell_out * (n - 2 * ell)
    degree = 2 * n_gates / max(m, 1)
    neighbour = 2 * degree * (f ** (ell_out / 2)) ** ell
    return min(1.0, HOME_CALIBRATION * (m * (inside / n) ** ell + neighbour))


REPAIR_DESIGNS = ("default", "certificate", "home")

HOME_DEGREES = (1.5, 2.5)
"""Gates per feature d = 2 m' / m where the home rule was measured to certify (README,
"Closer to the limit"): at d = 4 .. 6.7 it is wrong on hundreds to ~5e4 inputs, at d = 0.4 it
is wider than the default rule."""
HOME_MIN_GATES = 10_000
"""Below this the home rule's share model underestimates (x 5 at m' = 1e3) and one of three
seeds at m' = 1e3 stayed wrong on 5 inputs."""


def home_pays(task: Task) -> bool:
    """Whether the default build of a 2-AND task at s <= 2 uses home units: inside the
    measured domain (:data:`HOME_DEGREES`, :data:`HOME_MIN_GATES`) and narrower by the rules.

    Example:
        >>> import numpy as np
        >>> from superpose.families import pairs
        >>> [home_pays(pairs(m, m, np.random.default_rng(0))) for m in (1000, 20_000)]
        [False, True]
    """
    degree = 2 * task.n_gates / max(task.features, 1)
    if not (HOME_DEGREES[0] <= degree <= HOME_DEGREES[1] and task.n_gates >= HOME_MIN_GATES):
        return False
    return repair_params(task, "home").n_in < repair_params(task).n_in


def repair_params(task: Task, design: str = "default") -> AutoParams:
    """Widths for a 2-AND task at s = 2 whose few vulnerable gates are repaired afterwards.

    Repair (see :mod:`superpose.constructions.certify`) converges when at most about 1% of
    the gates start out vulnerable, so the smallest equal width n with that share is chosen,
    minimised over l in 4..7 and l' in 5..8. ``design`` follows the issue-15 winners:
    ``"certificate"`` (certificate-driven repair, which clears a share of
    :data:`CERTIFICATE_REPAIRABLE_SHARE`; l in 5..7) and ``"home"`` (home units: l' in 4, 6,
    8 and the share of :func:`home_vulnerable_share`).

    Example:
        >>> import numpy as np
        >>> from superpose.families import pairs
        >>> t = pairs(100_000, 100_000, np.random.default_rng(0))
        >>> [repair_params(t, d).n_in for d in REPAIR_DESIGNS]
        [2664, 2417, 2303]
    """
    check_choice("design", design, REPAIR_DESIGNS)
    m, g = task.features, task.n_gates
    share_of = home_vulnerable_share if design == "home" else vulnerable_share
    target = CERTIFICATE_REPAIRABLE_SHARE if design == "certificate" else REPAIRABLE_SHARE
    ell_outs = (4, 6, 8) if design == "home" else range(5, 9)
    # l = 4 stalls the certificate-driven repair: at m' = 1e5 the rule's (4, 6) at 2407 left
    # one vulnerable gate after 40 rounds (README, "Closer to the limit"); l >= 5 converges.
    ells = range(5, 8) if design == "certificate" else range(4, 8)
    best: AutoParams | None = None
    for ell in ells:
        for ell_out in ell_outs:
            lo, hi = 4 * ell, 4 * int(math.sqrt(2 * ell * ell_out * g)) + 8 * ell
            while lo < hi:
                mid = (lo + hi) // 2
                if share_of(mid, ell, ell_out, m, g) <= target:
                    hi = mid
                else:
                    lo = mid + 1
            n = lo
            load = (ell * ell_out * (g + m / 2)) if design == "home" else 2.0 * ell * ell_out * g
            f = -math.expm1(-load / (n * n))
            cand = AutoParams(ell, ell_out, f, n, n, load, share_of(n, ell, ell_out, m, g))
            if best is None or cand.n_in < best.n_in:
                best = cand
    assert best is not None
    return best


# --- several pools: one per threshold class ---------------------------------------------------

DEAD, PRIVATE = 0, -1
"""Pool class codes besides k >= 1 (full operand codes a unit needs): k-ANDs with k > s can
never be true on an s-sparse input (class DEAD: one silent unit for all of them); xor and
andnot are not monotone and get private units (class PRIVATE, see
:func:`superpose.constructions.superposed.private_units`)."""


def gate_classes(task: Task) -> np.ndarray:
    """Per gate of a one-level task: the pool class (``k`` full codes, ``DEAD`` or ``PRIVATE``).

    Example:
        >>> t = Task.from_gates(8, 2, [("and", [0, 1]), ("or", [2, 3, 4]), ("copy", [5]),
        ...                            ("and", [0, 2, 4]), ("xor", [6, 7])])
        >>> gate_classes(t).tolist()
        [2, 1, 1, 0, -1]
    """
    ops, arity, s = task.ops, task.arity, task.sparsity
    cls = np.where(ops == OP_CODE["and"], arity, 1).astype(np.int64)
    cls[(ops == OP_CODE["and"]) & (arity > s)] = DEAD
    cls[(ops == OP_CODE["xor"]) | (ops == OP_CODE["andnot"])] = PRIVATE
    return cls


def collision_share(exposed: float, ell_out: int, target: float = ADVERSARIAL_TARGET) -> float:
    """Largest share of a pool's units one shared feature may sit in (through its gates).

    A feature in a share q of the units lies in all l' units of another gate with probability
    about q^l'; ``exposed`` gates face that risk on one input (every gate of an OR/COPY pool,
    which a single present feature can fool; for k-ANDs the gates that already see k - 1
    operands). Keeping exposed * q^l' below ``target`` gives q; features read by more gates
    of the pool move to a private block (influence channels).

    Example:
        >>> round(collision_share(1500, 6), 3)
        0.043
    """
    return float((target / max(exposed, 1.0)) ** (1.0 / ell_out))


@dataclass(frozen=True)
class PoolPlan:
    """The planned shared pool of one threshold class and the failure the rule predicts."""

    need: int  # full operand codes a unit needs (1: or/copy, k: k-AND)
    gates: int
    operands: int
    fan_in: float
    width: int
    heavy_share: float
    predicted_failure: float  # expected false gates per random s-sparse input
    predicted_adversarial: float  # union bound: chance some input fools a gate missing one operand
    hub_width: int = 0  # the width the heaviest features alone call for (:func:`hub_width`)

    def as_dict(self) -> dict[str, Any]:
        return asdict(self)


@dataclass(frozen=True)
class LayerParams:
    """Code lengths, the input width and one pool per threshold class (see :func:`layer_params`)."""

    ell: int
    ell_out: int
    n_in: int
    pools: tuple[PoolPlan, ...]
    private_units: int
    dead_units: int
    feasible: bool

    @property
    def n_out(self) -> int:
        return sum(p.width for p in self.pools) + self.private_units + self.dead_units

    @property
    def predicted_failure(self) -> float:
        return float(sum(p.predicted_failure for p in self.pools))

    def as_dict(self) -> dict[str, Any]:
        out = asdict(self)
        out["pools"] = [p.as_dict() for p in self.pools]
        out["n_out"] = self.n_out
        out["predicted_failure"] = self.predicted_failure
        return out


def _pool_fan_in(
    ell: int,
    ell_out: int,
    need: int,
    s: int,
    per_active: float,
    gates: int,
    m: int,
    failure: float,
    n_in: float,
    load: float,
    explicit_inputs: bool,
) -> float:
    """Largest fan-in fraction of one pool meeting its share of the failure targets, with the
    input width fixed (several pools share it); the pool's width follows from the fan-in."""
    bits_over = math.inf if explicit_inputs else n_in
    lo, hi = MIN_FAN_IN, 0.95

    def ok(f: float) -> bool:
        n_out = load / (n_in * -math.log1p(-f))
        return (
            gate_failure(f, ell, ell_out, need, s, per_active, gates, bits_over, n_out) <= failure
            and adversarial_risk(f, ell, ell_out, need, s, m, bits_over, per_active, n_out)
            <= ADVERSARIAL_TARGET
        )

    if not ok(lo):
        return lo
    for _ in range(30):
        mid = (lo + hi) / 2
        lo, hi = (mid, hi) if ok(mid) else (lo, mid)
    return lo


def cover_free_width(ell: int, s: int, m: int, operands: int) -> float:
    """Input width at which no s active features cover another operand's code (union bound).

    A private unit (xor / andnot) reads an operand as present when all l bits of its code are
    on; s other active features light about s l bits, covering a given code with probability
    about (s l / n)^l. Over the ``operands`` codes such units read and the C(m, s) inputs this
    must stay below the adversarial target: n >= s l / (target / (C(m, s) operands))^(1/l).

    Example:
        >>> 1000 < cover_free_width(10, 2, 100_000, 20_000) < 2500
        True
    """
    if operands == 0:
        return 0.0
    log_sets = float(ln_binom(m, s))
    log_q = (math.log(ADVERSARIAL_TARGET) - log_sets - math.log(operands)) / ell
    return s * ell / math.exp(min(log_q, 0.0))


def layer_params(
    task: Task,
    failure: float = DEFAULT_FAILURE,
    ell: int | None = None,
    ell_out: int | None = None,
    explicit_inputs: bool = False,
    private_units: int = 0,
) -> LayerParams:
    """Widths for a one-level task whose gates need different thresholds: one pool per class.

    A unit's threshold is the smallest among the gates it hosts, so gates of different
    classes must not share units: an OR (threshold l) hosted beside a 2-AND (2l) would make
    the AND fire on one operand. Each class therefore gets its own pool, sized by the failure
    rule for *its* threshold (:func:`gate_failure` with k = the class): an OR/COPY unit fires
    when any one code lies inside its read set, so its pool needs a far lower fan-in than a
    2-AND pool on the same input layer. The pools share the input layer; for fan-ins f_c and
    loads L_c (l' x read-set bits of the class) pool c needs L_c / (n_in ln(1/(1-f_c))) units,
    and n_in = sqrt(sum_c L_c / ln(1/(1-f_c))) minimises the total. The failure target is
    split across classes by their share of the gates. k-ANDs with k > s are never true on an
    s-sparse input and cost one silent unit; xor/andnot gates cost ``private_units``, and
    their operands' codes must not be covered by the other active features
    (:func:`cover_free_width` bounds n_in from below).

    Example:
        >>> import numpy as np
        >>> t = Task.from_gates(400, 2, [("and", [i, i + 1]) for i in range(0, 300, 2)]
        ...                     + [("or", [i, i + 2]) for i in range(1, 301, 2)])
        >>> p = layer_params(t)
        >>> [(pool.need, pool.fan_in < 0.5) for pool in p.pools]
        [(1, True), (2, False)]
    """
    m = task.features
    inputs = n_sparse_inputs(m, task.sparsity)
    if inputs <= CERTIFIABLE_INPUTS:
        failure = min(failure, 0.1 / inputs)
    classes = _gate_class_counts(task)
    ells = [1] if explicit_inputs else ([ell] if ell else list(range(4, 15)))
    ell_outs = [ell_out] if ell_out else list(range(3, 11))
    best: LayerParams | None = None
    best_key: tuple[bool, int] | None = None
    for e in ells:
        for eo in ell_outs:
            cand = _layer_candidate(task, classes, e, eo, failure, explicit_inputs, private_units)
            key = (not cand.feasible, cand.n_in + cand.n_out)
            if best_key is None or key < best_key:
                best, best_key = cand, key
    assert best is not None
    return best


class _ClassCounts(NamedTuple):
    """A one-level task's gates by threshold class (:func:`gate_classes`), as the pool sizing
    needs them: the classes present, live gates, a dead unit or not, operand reads and gates
    per class, the OR / COPY class's operand influences (heaviest first), and the operands
    of the gates that get private units."""

    needs: list[int]
    n_live: int
    dead: int
    ops_of: dict[int, int]
    gates_of: dict[int, int]
    infl_of: dict[int, np.ndarray]
    private_operands: int


def _gate_class_counts(task: Task) -> _ClassCounts:
    """Count the task's gates by threshold class (see :class:`_ClassCounts`)."""
    m = task.features
    cls = gate_classes(task)
    needs = sorted(int(c) for c in np.unique(cls[cls > 0]))
    n_live = int((cls > 0).sum())
    dead = 1 if (cls == DEAD).any() else 0
    ops_of = {c: int(task.arity[cls == c].sum()) for c in needs}
    # Each class's operand influences, heaviest first: the OR / COPY pool's hub term
    # (hub_width) counts the s heaviest that stay in the shared pool (the heavier ones get
    # blocks of their own, sized by the build for their own hubs).
    infl_of: dict[int, np.ndarray] = {c: np.zeros(0) for c in needs}
    for c in needs[:1] if needs and needs[0] == 1 else []:
        gates_c = np.flatnonzero(cls == c)
        _, flat, _ = task.operand_arrays(gates_c)
        infl = np.bincount(flat[flat < m], minlength=m) if len(flat) else np.zeros(1)
        infl_of[c] = np.sort(infl)[::-1]
    private_operands = int(task.arity[cls == PRIVATE].sum())
    gates_of = {c: int((cls == c).sum()) for c in needs}
    return _ClassCounts(needs, n_live, dead, ops_of, gates_of, infl_of, private_operands)


def _layer_candidate(
    task: Task,
    classes: _ClassCounts,
    e: int,
    eo: int,
    failure: float,
    explicit_inputs: bool,
    private_units: int,
) -> LayerParams:
    """The layer for input code length ``e`` and output code length ``eo``: the input width
    and fan-ins that meet every class's failure share, then each class's pool; feasible when
    every pool meets its share and the adversarial target."""
    m, s = task.features, task.sparsity
    loads = {c: eo * e * classes.ops_of[c] for c in classes.needs}
    n_in, fans = _input_width_and_fans(task, classes, e, eo, loads, failure, explicit_inputs)
    cover = 0.0 if explicit_inputs else cover_free_width(e, s, m, classes.private_operands)
    n_in_int = m if explicit_inputs else max(math.ceil(max(n_in, cover)), 4 * e * s)
    pools = []
    feasible = True
    bits_over = math.inf if explicit_inputs else n_in_int
    for c in classes.needs:
        pool = _pool_plan(task, classes, c, fans[c], e, eo, loads[c], n_in_int, bits_over)
        share = failure * classes.gates_of[c] / max(classes.n_live, 1)
        feasible &= (
            pool.predicted_failure <= share * 1.0001
            and pool.predicted_adversarial <= ADVERSARIAL_TARGET * 1.0001
        )
        pools.append(pool)
    return LayerParams(e, eo, n_in_int, tuple(pools), private_units, classes.dead, bool(feasible))


def _input_width_and_fans(
    task: Task,
    classes: _ClassCounts,
    e: int,
    eo: int,
    loads: dict[int, int],
    failure: float,
    explicit_inputs: bool,
) -> tuple[float, dict[int, float]]:
    """Input width and each class's fan-in, found together: each fan-in depends on the input
    width, and n_in = sqrt(sum_c L_c / ln(1/(1-f_c))) minimises the total for given fan-ins.
    Starts from equal widths for the whole load, then refines n_in twice."""
    m, s = task.features, task.sparsity
    n_in = float(m) if explicit_inputs else math.sqrt(sum(loads.values()) / 0.7) + 1.0
    fans: dict[int, float] = {}
    for _ in range(3):
        for c in classes.needs:
            share = failure * classes.gates_of[c] / max(classes.n_live, 1)
            fans[c] = _pool_fan_in(
                e,
                eo,
                c,
                s,
                classes.ops_of[c] / max(m, 1),
                classes.gates_of[c],
                m,
                share,
                n_in,
                loads[c],
                explicit_inputs,
            )
        if explicit_inputs:
            break
        n_in = math.sqrt(sum(loads[c] / -math.log1p(-fans[c]) for c in classes.needs))
    return n_in, fans


def _pool_plan(
    task: Task,
    classes: _ClassCounts,
    c: int,
    f: float,
    e: int,
    eo: int,
    load: int,
    n_in_int: int,
    bits_over: float,
) -> PoolPlan:
    """Class c's pool: wide enough for its load at fan-in ``f`` and for the hub term of its
    light operands (heavier ones get blocks of their own), with its predicted and
    adversarial failure."""
    m, s = task.features, task.sparsity
    gates = classes.gates_of[c]
    width = max(6 * eo, math.ceil(load / (n_in_int * -math.log1p(-f))))
    per_active = classes.ops_of[c] / max(m, 1)
    exposed = gates if c == 1 else max(1.0, s * per_active)
    cutoff = collision_share(exposed, eo) * width / eo  # heavier: a block
    infl = classes.infl_of[c]
    light = infl[infl <= cutoff][: max(s - c + 1, 0)]
    hub = hub_width(float(light.sum()), eo, gates)
    width = max(width, hub)
    pred = gate_failure(f, e, eo, c, s, per_active, gates, bits_over, width)
    adv = adversarial_risk(f, e, eo, c, s, m, bits_over, per_active, width)
    return PoolPlan(
        c, gates, classes.ops_of[c], f, width, collision_share(exposed, eo), pred, adv, hub
    )
