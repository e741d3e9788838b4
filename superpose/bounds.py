"""The counting limit every network is measured against (docs/DESIGN.md, Bounds).

Everything here follows one argument (paper-notes §5): the input and output codes are fixed
before the instance is chosen, so a network that computes every instance of a family 𝓕 must
be able to tell |𝓕| instances apart and therefore needs at least log2|𝓕| description bits.
Bits turn into parameters (b bits each) and parameters into neurons (a weight layer between
widths n_in and n_out holds n_in·n_out + n_out parameters).

All counts are exact: log-gamma differences arranged so that nothing cancels (see
:func:`ln_comb`), valid from m' = 1 to well beyond 10⁹ and for C(m, k) far beyond the float
range. Nothing is taken from an O(·) form.

Example:
    >>> fam = Family("and2", features=100_000, outputs=100_000)
    >>> round(log2_instances(fam))
    1705221
    >>> neurons_lower_bound(bits_lower_bound(fam), layers=1, bits_per_parameter=1)
    1306
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, NamedTuple

import numpy as np
from scipy.special import gammaln

from superpose.errors import SuperposeError

if TYPE_CHECKING:  # pragma: no cover
    from superpose.network import Network
    from superpose.task import Task

LN2 = math.log(2.0)
_HALF_LN_2PI = 0.5 * math.log(2.0 * math.pi)

PAIR_OPS = {"and2": "and", "or2": "or", "xor2": "xor", "andnot2": "andnot"}
"""Pair families: instances are m' distinct operand pairs, counted the same for every op."""

FAMILY_NAMES = ("permutation", *PAIR_OPS, "kand", "uand", "circuit", "maps")
"""Family names understood by :class:`Family` (``maps``: copy gates that may repeat an input)."""

CAPACITY_FAMILIES = ("permutation", *PAIR_OPS, "kand")


# --------------------------------------------------------------------------------------
# exact log counts
# --------------------------------------------------------------------------------------
def _stirling_eps(z: int) -> float:
    """ε(z) = lnΓ(z) − [(z − ½) ln z − z + ½ ln 2π] for an integer z ≥ 1 (the Stirling tail)."""
    if z < 16:
        zf = float(z)
        return float(gammaln(zf)) - ((zf - 0.5) * math.log(zf) - zf + _HALF_LN_2PI)
    if z > 10**100:
        return 0.0
    zf = float(z)
    r = 1.0 / zf
    r2 = r * r
    # Asymptotic series; for z >= 16 the first omitted term is < 691/(360360 z^11) < 1e-16.
    return r * (1 / 12 - r2 * (1 / 360 - r2 * (1 / 1260 - r2 * (1 / 1680 - r2 / 1188))))


def _int_arg(name: str, value: Any) -> int:
    if isinstance(value, bool) or not isinstance(value, (int, np.integer)):
        if isinstance(value, float) and value.is_integer():
            return int(value)
        raise SuperposeError(f"{name} must be an integer, got {value!r}")
    return int(value)


def ln_comb(n: int, k: int) -> float:
    """Natural log of the binomial coefficient C(n, k), exact to ~1e-14 relative for any size.

    ``n`` may be a Python integer far beyond the float range (e.g. C(10⁹, 40)). For k ≤ 16 the
    coefficient is computed exactly as an integer. Otherwise, with k ≤ n/2 (by symmetry),
    a = n + 1, b = n − k + 1 and x = k/a,

        ln C(n, k) = k ln a − k + (1 − x)·k·g(x) + ½ ln(1 − x) + ε(a) − ε(b) − lnΓ(k + 1),

    where g(x) = −ln(1 − x)/x and ε is the Stirling tail. Every term is well conditioned:
    nothing of size n ln n is subtracted from anything of the same size.

    Example:
        >>> import math
        >>> abs(ln_comb(10**9, 10**6) - ln_comb(10**9, 10**9 - 10**6)) < 1e-6
        True
        >>> round(ln_comb(52, 5) - math.log(2598960), 12)
        0.0
    """
    n, k = _int_arg("n", n), _int_arg("k", k)
    if n < 0 or k < 0 or k > n:
        raise SuperposeError(f"C({n}, {k}) is not defined: need 0 <= k <= n")
    k = min(k, n - k)
    if k == 0:
        return 0.0
    if k <= 16:
        return math.log(math.comb(n, k))
    a = n + 1
    b = n - k + 1  # >= n/2 + 1 >= 17, so the Stirling series applies
    x = k / a  # correctly rounded even when a is a huge int
    ln_a = math.log(a)
    l1p = math.log1p(-x)
    g = -l1p / x if x > 0 else 1.0
    main = k * ln_a - k + (1.0 - x) * k * g + 0.5 * l1p
    return main + (_stirling_eps(a) - _stirling_eps(b)) - float(gammaln(k + 1.0))


def log2_comb(n: int, k: int) -> float:
    """log2 C(n, k), see :func:`ln_comb`.

    Example:
        >>> log2_comb(10, 5) == math.log2(252)
        True
    """
    return ln_comb(n, k) / LN2


def log2_factorial(n: int) -> float:
    """log2(n!) from log-gamma; exact to double precision for n up to 10¹⁵.

    Example:
        >>> round(log2_factorial(10**6))
        18488885
    """
    n = _int_arg("n", n)
    if n < 0:
        raise SuperposeError(f"factorial of a negative number ({n})")
    if n < 2:
        return 0.0
    return float(gammaln(n + 1.0)) / LN2


def log2_falling(n: int, k: int) -> float:
    """log2 of n!/(n − k)!, the number of injective maps from k items into n.

    Example:
        >>> log2_falling(5, 2) == math.log2(20)
        True
    """
    n, k = _int_arg("n", n), _int_arg("k", k)
    if n < 0 or k < 0 or k > n:
        raise SuperposeError(f"n!/(n-k)! is not defined for n={n}, k={k}")
    return log2_comb(n, k) + log2_factorial(k)


# --------------------------------------------------------------------------------------
# families
# --------------------------------------------------------------------------------------
@dataclass(frozen=True)
class Family:
    """A family 𝓕 of task instances whose size the counting bound uses.

    ``name`` is one of :data:`FAMILY_NAMES`. ``features`` is m, ``outputs`` is m'. ``arity`` is
    k for ``kand``. ``groups`` (circuits only) lists ``(choices, count)``: ``count`` output
    gates each choosing one of ``choices`` operand sets, distinct within the group.

    Example:
        >>> round(Family("permutation", outputs=4).log2_instances(), 12) == round(math.log2(24), 12)
        True
    """

    name: str
    outputs: int
    features: int | None = None
    arity: int = 2
    groups: tuple[tuple[int, int], ...] = field(default=(), compare=True)
    note: str = ""

    def __post_init__(self) -> None:
        if self.name not in FAMILY_NAMES:
            raise SuperposeError(f"unknown family {self.name!r} (known: {', '.join(FAMILY_NAMES)})")
        outputs = _int_arg("outputs", self.outputs)
        if outputs < 1:
            raise SuperposeError(f"outputs must be >= 1, got {outputs}")
        m = self.m
        if m < 1:
            raise SuperposeError(f"features must be >= 1, got {m}")
        if self.name == "permutation" and outputs > m:
            raise SuperposeError(
                f"a permutation of {outputs} outputs needs at least {outputs} features, got {m}"
            )
        if self.name in PAIR_OPS or self.name in ("kand", "uand"):
            k = 2 if self.name != "kand" else self.arity
            if self.name == "kand" and not 2 <= k <= m:
                raise SuperposeError(f"kand arity must be in 2..{m}, got {k}")
            if m < k:
                raise SuperposeError(f"family {self.name!r} needs at least {k} features, got {m}")
            if self.name != "uand" and outputs > self.choices:
                raise SuperposeError(
                    f"{outputs} distinct {k}-input gates requested, but {m} features "
                    f"allow only C({m}, {k}) = {self.choices}"
                )

    @property
    def m(self) -> int:
        """Number of input features (defaults to m' when not given)."""
        return _int_arg("features", self.features if self.features is not None else self.outputs)

    @property
    def choices(self) -> int:
        """Number of distinct gates one output can be: C(m, k) for set families, m for copies."""
        if self.name in ("permutation", "maps"):
            return self.m
        if self.name == "kand":
            return math.comb(self.m, self.arity)
        if self.name == "circuit":
            return max((c for c, _ in self.groups), default=1)
        return math.comb(self.m, 2)

    def log2_instances(self) -> float:
        """log2|𝓕|; see :func:`log2_instances`."""
        return log2_instances(self)


def log2_instances(family: Family) -> float:
    """log2 of the number of instances of ``family``, exact (log-gamma, no asymptotics).

    - ``permutation``: injective copies of m' outputs from m inputs, log2 m!/(m − m')!
      (= log2 m'! when m = m').
    - ``maps``: copies that may repeat an input: m' log2 m.
    - ``and2``/``or2``/``xor2``/``andnot2``: sets of m' distinct pairs, log2 C(C(m,2), m').
      (For ``andnot`` ordered pairs would double the choices; the unordered count is a
      sub-family, so the bound stays valid.)
    - ``kand``: sets of m' distinct k-sets, log2 C(C(m,k), m').
    - ``uand``: universal AND is one fixed function, so |𝓕| = 1 and every bound is 0.
    - ``circuit``: Σ over groups log2 C(choices, count); see :func:`family_of_task`.

    Example:
        >>> log2_instances(Family("kand", outputs=3, features=5, arity=3)) == math.log2(120)
        True
    """
    name, mp = family.name, family.outputs
    if name == "permutation":
        return log2_falling(family.m, mp)
    if name == "maps":
        return mp * math.log2(family.m)
    if name == "uand":
        return 0.0
    if name == "circuit":
        return sum(log2_comb(choices, count) for choices, count in family.groups)
    return log2_comb(family.choices, mp)


def _circuit_family(
    features: int, outputs: int, depth: int, arity: int = 2, note: str = ""
) -> Family:
    """The CLI's circuit family: m' output gates spread evenly over ``depth`` levels."""
    if depth < 1:
        raise SuperposeError(f"circuit depth must be >= 1, got {depth}")
    if outputs < depth:
        raise SuperposeError(f"{outputs} gates cannot fill {depth} levels")
    sizes = [outputs // depth + (i < outputs % depth) for i in range(depth)]
    groups = []
    below, prev = features, features  # nodes of level < d, and of level < d - 1
    for d, g in enumerate(sizes):
        choices = math.comb(below, arity) - (math.comb(prev, arity) if d > 0 else 0)
        if g > choices:
            raise SuperposeError(
                f"level {d + 1}: {g} distinct {arity}-input gates do not fit in {choices} choices"
            )
        groups.append((choices, g))
        prev, below = below, below + g
    return Family(
        "circuit", outputs=outputs, features=features, arity=arity, groups=tuple(groups), note=note
    )


def make_family(
    name: str,
    *,
    features: int | None = None,
    outputs: int | None = None,
    arity: int = 3,
    depth: int = 2,
) -> Family:
    """The family a CLI user names: ``permutation``, ``and2`` (also ``or2``, ``xor2``,
    ``andnot2``), ``kand`` (with ``arity``), ``uand`` or ``circuit`` (``depth`` levels).

    Example:
        >>> make_family("uand", features=10).outputs
        45
    """
    if name not in (*FAMILY_NAMES,) or name == "maps":
        raise SuperposeError(
            f"unknown family {name!r} (known: permutation, and2, or2, xor2, andnot2, kand, uand, circuit)"
        )
    if name == "uand":
        if features is None:
            raise SuperposeError("family 'uand' needs features", cli="--features")
        if features < 2:
            raise SuperposeError(f"family 'uand' needs at least 2 features, got {features}")
        return Family("uand", outputs=math.comb(features, 2), features=features)
    if outputs is None:
        if name == "permutation" and features is not None:
            outputs = features
        else:
            raise SuperposeError(f"family {name!r} needs outputs", cli="--outputs")
    if name == "permutation":
        return Family("permutation", outputs=outputs, features=features)
    if features is None:
        raise SuperposeError(f"family {name!r} needs features", cli="--features")
    if name == "circuit":
        return _circuit_family(features, outputs, depth, 2)
    if name == "kand":
        return Family("kand", outputs=outputs, features=features, arity=arity)
    return Family(name, outputs=outputs, features=features)


def family_of_task(task: Task) -> Family:
    """The family whose size bounds any network for ``task``: its recorded family, or inferred.

    Inference from the gates (used when ``task.family`` is absent or unknown), over the
    output gates only:

    - every output is a ``copy`` of an input: ``permutation`` if no input is copied twice
      (m!/(m − m')! instances), else ``maps``;
    - every output is a 2-input gate of one op over inputs: the pair family of that op;
    - every output is a k-input ``and`` (or every one a k-input ``or``) over inputs:
      ``kand`` (C(C(m,k), m') instances);
    - anything else: a layered circuit. A gate's level is 1 + the highest level among its
      operands (inputs have level 0), so a level-d gate with k operands reads a k-set of
      nodes of level < d with at least one of level d − 1: C(P_{<d}, k) − C(P_{<d−1}, k)
      choices, P_{<d} being the number of nodes of level below d. The counted family keeps
      every non-output gate fixed and lets each output gate pick its operand set freely,
      distinct within its (level, op, arity) group; it counts
      Σ_groups log2 C(choices, outputs in group). This counts wirings. Distinct wirings
      of output gates over fixed, distinct operand functions almost always compute
      distinct output functions; where two wirings coincide (possible in deep AND/OR
      circuits) the count overstates |𝓕|, so for depth ≥ 2 it is an estimate, not a theorem.
      For depth 1 it is exact.

    Outputs that are input features themselves are fixed functions and are not counted. A
    recorded ``task.family["name"] == "uand"`` is one instance (bound 0); every other family
    is inferred from the gates, so the sizes always come from the task itself.

    Example:
        >>> from superpose.task import Task
        >>> t = Task.from_gates(4, 2, [("copy", [2]), ("copy", [0])])
        >>> f = family_of_task(t)
        >>> f.name, f.outputs, f.features
        ('permutation', 2, 4)
    """
    m = int(task.features)
    all_outs = np.asarray(task.outputs, dtype=np.int64)
    outs = all_outs[all_outs >= m]
    fixed = len(all_outs) - len(outs)
    fixed_note = (
        f"{fixed} output(s) are input features themselves: fixed, not counted" if fixed else ""
    )
    recorded = (task.family or {}).get("name")
    mp = len(outs)
    if mp == 0:
        return Family("circuit", outputs=len(all_outs), features=m, note=fixed_note)
    if recorded == "uand":
        return Family("uand", outputs=mp, features=m, note="recorded family: uand")
    gates = outs - m
    arity = np.diff(task.gate_indptr)[gates]
    ops = np.asarray(task.ops)[gates]
    from superpose.task import OPS

    level = task.node_level
    out_level = level[outs]
    one_level = bool((out_level == 1).all())
    if one_level and len(np.unique(ops)) == 1 and len(np.unique(arity)) == 1:
        op = OPS[int(ops[0])]
        k = int(arity[0])
        if op == "copy":
            sources = task.operand_table(gates, 1)[:, 0]
            injective = len(np.unique(sources)) == mp
            name = "permutation" if injective else "maps"
            return Family(name, outputs=mp, features=m, note=fixed_note)
        if k == 2:
            return Family(f"{op}2", outputs=mp, features=m, note=fixed_note)
        if op in ("and", "or"):
            return Family("kand", outputs=mp, features=m, arity=k, note=fixed_note)
    # layered circuit
    nodes_below = np.bincount(level, minlength=int(level.max()) + 2).cumsum()  # P_{<=d}
    groups: dict[tuple[int, int, int], int] = {}
    for lv, op, k in zip(out_level.tolist(), ops.tolist(), arity.tolist(), strict=True):
        key = (lv, op, k)
        groups[key] = groups.get(key, 0) + 1
    counted = []
    for (lv, _op, k), count in sorted(groups.items()):
        below = int(nodes_below[lv - 1])
        prev = int(nodes_below[lv - 2]) if lv >= 2 else 0
        choices = math.comb(below, k) - math.comb(prev, k)
        counted.append((choices, min(count, choices)))
    return Family(
        "circuit",
        outputs=mp,
        features=m,
        arity=int(arity.max()),
        groups=tuple(counted),
        note="; ".join(
            x
            for x in (
                "circuit family inferred from the gates (wirings of output gates)",
                fixed_note,
            )
            if x
        ),
    )


# --------------------------------------------------------------------------------------
# lower bounds
# --------------------------------------------------------------------------------------
def log2_covered(family: Family, error_fraction: float) -> float:
    """log2 of how many instances one network can cover when a δ fraction of outputs may be wrong.

    A network computes one function g. An instance f is covered if it differs from g in at
    most J = ⌊δ m'⌋ outputs; choosing those outputs and, for each, f's gate among the A
    choices an output has (A = m for copies, C(m,2) for pairs, C(m,k) for k-sets) gives
    at most Σ_{j≤J} C(m', j)·A^j instances. The terms grow with j while
    j < (m'A − 1)/(A + 1), so the sum is at most (J + 1)·C(m', J)·A^J there; it is always at
    most (1 + A)^{m'}. We return the smaller valid form. (docs/DESIGN.md, Bounds, gives this as
    ≈ δ m' log2 m' + m' H(δ), the permutation case A = m'.)

    Example:
        >>> log2_covered(Family("permutation", outputs=1000), 0.0)
        0.0
    """
    delta = float(error_fraction)
    if not 0.0 <= delta < 1.0:
        raise SuperposeError(f"error fraction must be in [0, 1), got {error_fraction}")
    mp = family.outputs
    j = math.floor(delta * mp)
    if j == 0 or family.name == "uand":
        return 0.0
    a = max(family.choices, 1)
    everything = mp * math.log2(a + 1)
    if (j + 1) * (a + 1) <= mp * a:  # terms still increasing at j
        return min(everything, math.log2(j + 1) + log2_comb(mp, j) + j * math.log2(a))
    return everything


def bits_lower_bound(family: Family, error_fraction: float = 0.0) -> float:
    """Description bits any network computing every instance of ``family`` needs.

    Assumptions: input and output codes and the decoder are fixed before the instance is
    chosen (so the network alone tells instances apart); instances of the family are
    pairwise-distinct functions on the allowed sparse inputs (needs sparsity ≥ k for k-input
    ANDs); with ``error_fraction`` δ > 0 the network may get up to ⌊δ m'⌋ outputs wrong,
    and the bound is log2|𝓕| − :func:`log2_covered`. Never negative.

    Example:
        >>> round(bits_lower_bound(Family("permutation", outputs=10**6)))
        18488885
    """
    return max(0.0, log2_instances(family) - log2_covered(family, error_fraction))


def _check_bits_per_parameter(b: float) -> float:
    b = float(b)
    if not (b > 0 and math.isfinite(b)):
        raise SuperposeError(f"bits per parameter must be positive, got {b}")
    return b


def _check_layers(layers: int) -> int:
    layers = _int_arg("layers", layers)
    if layers < 1:
        raise SuperposeError(f"the number of weight layers must be >= 1, got {layers}")
    return layers


def parameters_lower_bound(bits: float, bits_per_parameter: float = 1.0) -> int:
    """Parameters (dense layout: every weight and bias stored with b bits) needed: ⌈bits / b⌉.

    The paper's "Ω(m' log m') parameters" is this bound with b = O(1).

    Example:
        >>> parameters_lower_bound(100.0, 8)
        13
    """
    b = _check_bits_per_parameter(bits_per_parameter)
    if not bits > 0:
        return 0
    return max(1, math.ceil(bits / b * (1 - 1e-12)))


def nonzero_parameters_lower_bound(
    bits: float, bits_per_parameter: float, dense_parameters: int
) -> int:
    """Non-zero parameters needed when zeros are free (sparse layout).

    Each non-zero costs b bits for its value plus log2(dense_parameters) for its position, so
    p_nz ≥ bits / (b + log2 P). Weaker than :func:`parameters_lower_bound` by that log.

    Example:
        >>> nonzero_parameters_lower_bound(1000.0, 1, 1024)
        91
    """
    b = _check_bits_per_parameter(bits_per_parameter)
    pos = math.log2(max(int(dense_parameters), 1))
    if not bits > 0:
        return 0
    return max(1, math.ceil(bits / (b + pos) * (1 - 1e-12)))


def _min_int(predicate: Any, hi0: int = 1) -> int:
    """Smallest n >= 0 with predicate(n) true (predicate monotone)."""
    if predicate(0):
        return 0
    lo, hi = 0, max(1, hi0)
    while not predicate(hi):
        lo, hi = hi, hi * 2
    while hi - lo > 1:
        mid = (lo + hi) // 2
        if predicate(mid):
            hi = mid
        else:
            lo = mid
    return hi


def layer_parameter_budget(width: int, layers: int = 1) -> int:
    """Parameters of ``layers`` weight layers between layers of ``width`` units: L·(n² + n).

    Example:
        >>> layer_parameter_budget(10, 2)
        220
    """
    n, layers = _int_arg("width", width), _check_layers(layers)
    return layers * (n * n + n)


def neurons_lower_bound(bits: float, layers: int = 1, bits_per_parameter: float = 1.0) -> int:
    """Width n each layer needs when L weight layers join L + 1 layers of equal width n.

    Such a network holds L·(n² + n) parameters (weights and biases), so n is the smallest
    integer with L·(n² + n)·b ≥ bits: n ≈ √(bits/(L b)) = Ω(√(m' log m')) at fixed depth.
    A network of any widths obeys it for its widest layer.

    Example:
        >>> neurons_lower_bound(1.71e6, 2)
        925
    """
    layers, b = _check_layers(layers), _check_bits_per_parameter(bits_per_parameter)
    guess = int(math.isqrt(int(bits / (layers * b)) + 1))
    return _min_int(lambda n: layers * (n * n + n) * b >= bits, guess)


def total_neurons_lower_bound(bits: float, bits_per_parameter: float = 1.0) -> int:
    """Total neurons (input and output layers included) of any layered network, any depth.

    With widths n_0..n_L summing to N, Σ n_{i−1} n_i ≤ (Σ_even n_i)(Σ_odd n_i) ≤ ⌊N²/4⌋
    weights and at most N biases, so N is the smallest integer with (⌊N²/4⌋ + N)·b ≥ bits.
    (A DAG with skip connections holds up to N(N − 1)/2 + N parameters instead.)

    Example:
        >>> total_neurons_lower_bound(1.71e6)
        2614
    """
    b = _check_bits_per_parameter(bits_per_parameter)
    guess = 2 * int(math.isqrt(int(bits / b) + 1))
    return _min_int(lambda n: (n * n // 4 + n) * b >= bits, guess)


def hidden_neurons_lower_bound(
    bits: float,
    input_width: int,
    output_width: int,
    layers: int = 2,
    bits_per_parameter: float = 1.0,
) -> int | None:
    """Width of each hidden layer when the input and output codes (their widths) are given.

    L weight layers with L − 1 hidden layers of equal width h hold
    n_in·h + (L − 2)·h² + h·n_out + (L − 1)·h + n_out parameters; h is the smallest integer
    making that ≥ bits/b. For L = 1 there is no hidden layer: returns 0 if
    n_in·n_out + n_out parameters suffice, else ``None`` (no network of that shape can do it).

    Example:
        >>> hidden_neurons_lower_bound(2e6, 1000, 1000, layers=1) is None
        True
        >>> hidden_neurons_lower_bound(2e6, 1000, 1000, layers=2)
        1000
    """
    layers, b = _check_layers(layers), _check_bits_per_parameter(bits_per_parameter)
    n_in, n_out = _int_arg("input width", input_width), _int_arg("output width", output_width)
    if n_in < 1 or n_out < 1:
        raise SuperposeError("input and output widths must be >= 1")
    need = bits / b

    def params(h: int) -> int:
        if layers == 1:
            return n_in * n_out + n_out
        return n_in * h + (layers - 2) * h * h + h * n_out + (layers - 1) * h + n_out

    if layers == 1:
        return 0 if params(0) >= need else None
    return _min_int(lambda h: params(h) >= need, 1)


# --------------------------------------------------------------------------------------
# capacity
# --------------------------------------------------------------------------------------
def _family_for_capacity(name: str, outputs: int, features: int | None, arity: int) -> Family:
    if name == "permutation":
        return Family("permutation", outputs=outputs)
    k = arity if name == "kand" else 2
    # m = m' by default; at least k + 1 so that C(m, k) >= m' always holds.
    m = max(outputs, k + 1) if features is None else features
    if name == "kand":
        return Family("kand", outputs=outputs, features=m, arity=arity)
    return Family(name, outputs=outputs, features=m)


def capacity_for_bits(
    budget_bits: float,
    family: str = "permutation",
    *,
    features: int | None = None,
    arity: int = 3,
    error_fraction: float = 0.0,
    limit: int = 2**62,
) -> int:
    """Largest m' whose bit lower bound fits in ``budget_bits``, found on the exact counts.

    ``family`` is ``permutation`` (m = m'), a pair family (``and2``…; m = max(m', 3) unless
    ``features`` fixes m) or ``kand`` (m = max(m', k + 1) unless fixed). The search is exponential then bisection and
    guarantees bound(m') ≤ budget < bound(m' + 1) for the returned m'. With a fixed m the
    pair count C(C(m,2), m') peaks at m' = C(m,2)/2 and then falls, so only m' up to the peak
    is searched; if the budget covers the peak every m' ≤ C(m,2) fits and C(m,2) is
    returned. With δ > 0 and a fixed m the bound need not peak there: the result is then a
    crossing on m' ≤ C(m,2)/2 (the invariant above still holds; capped at the peak).

    Example:
        >>> capacity_for_bits(8529.0), capacity_for_bits(8530.0)
        (999, 1000)
    """
    if family not in CAPACITY_FAMILIES:
        raise SuperposeError(
            f"capacity is defined for {', '.join(CAPACITY_FAMILIES)}; got {family!r}"
        )
    budget = float(budget_bits)
    if not budget >= 0 or math.isnan(budget):
        raise SuperposeError(f"bit budget must be >= 0, got {budget_bits}")

    def bound(mp: int) -> float:
        if mp == 0:
            return 0.0
        return bits_lower_bound(_family_for_capacity(family, mp, features, arity), error_fraction)

    top = limit
    if features is not None and family != "permutation":
        k = arity if family == "kand" else 2
        total = math.comb(int(features), k)
        peak = max(1, total // 2)
        if bound(peak) <= budget:
            # δ = 0: the peak is the maximum, so every m' fits. δ > 0: stay on m' <= peak.
            return total if float(error_fraction) == 0.0 else peak
        top = peak
    lo, hi = 0, 1
    while hi <= top and bound(hi) <= budget:
        lo, hi = hi, hi * 2
    if hi > top:
        hi = top if bound(top) > budget else top + 1
        if hi == top + 1:
            return top
    while hi - lo > 1:
        mid = (lo + hi) // 2
        if bound(mid) <= budget:
            lo = mid
        else:
            hi = mid
    return lo


def capacity(
    neurons: int,
    layers: int = 1,
    bits_per_parameter: float = 1.0,
    family: str = "permutation",
    *,
    features: int | None = None,
    arity: int = 3,
    error_fraction: float = 0.0,
) -> int:
    """Most outputs m' that L weight layers of width ``neurons`` (b-bit parameters) can compute.

    The budget is L·(n² + n)·b bits (:func:`layer_parameter_budget`); see
    :func:`capacity_for_bits`. The inverse of :func:`neurons_lower_bound`:
    capacity(neurons_lower_bound(bits(m'))) ≥ m'. Asymptotically n²/log n.

    Example:
        >>> capacity(1000, layers=1, bits_per_parameter=1)
        68465
    """
    b = _check_bits_per_parameter(bits_per_parameter)
    n = _int_arg("neurons", neurons)
    if n < 0:
        raise SuperposeError(f"neurons must be >= 0, got {n}")
    return capacity_for_bits(
        layer_parameter_budget(n, layers) * b,
        family,
        features=features,
        arity=arity,
        error_fraction=error_fraction,
    )


# --------------------------------------------------------------------------------------
# representation only
# --------------------------------------------------------------------------------------
def _check_rep_args(
    outputs: int, sparsity: int, failure_probability: float, guarantee: str
) -> None:
    if _int_arg("features", outputs) < 1:
        raise SuperposeError(f"number of features must be >= 1, got {outputs}")
    if _int_arg("sparsity", sparsity) < 1:
        raise SuperposeError(f"sparsity must be >= 1, got {sparsity}")
    if not 0.0 < float(failure_probability) < 1.0:
        raise SuperposeError(f"failure probability must be in (0, 1), got {failure_probability}")
    if guarantee not in ("all", "per_input"):
        raise SuperposeError(f"guarantee must be 'all' or 'per_input', got {guarantee!r}")


def linear_code_width(
    features: int,
    sparsity: int,
    failure_probability: float = 0.01,
    guarantee: str = "all",
) -> int:
    """Width of a random ±1/√n linear code from which every s-sparse set is read back exactly.

    Code: feature f gets a column e_f with i.i.d. entries ±1/√n (so ‖e_f‖ = 1); a set A is
    stored as z = Σ_{f∈A} e_f and f is read as present iff ⟨e_f, z⟩ > ½. The read is right
    whenever the cross-talk Σ_{g∈A∖f} ⟨e_f, e_g⟩ lies in (−½, ½).

    - ``guarantee="all"`` (every read of every s-sparse input): enough that every coherence
      |⟨e_f, e_g⟩| < 1/(2s). Hoeffding gives P(|⟨e_f, e_g⟩| ≥ μ) ≤ 2 exp(−n μ²/2), and a union
      bound over the C(m', 2) pairs needs n ≥ 8 s² ln(m'(m' − 1)/p).
    - ``guarantee="per_input"`` (every read of one fixed input): given e_f, the cross-talk is
      1/n times a sum of at most s·n independent signs; Hoeffding and a union bound over the
      m' features need n ≥ 8 s ln(2 m'/p).

    With probability ≥ 1 − p over the code, the guarantee holds. O(s² log m') and
    O(s log m'): the "representation only" width (paper-notes §5.3).

    Example:
        >>> linear_code_width(10**6, 2)
        1032
    """
    _check_rep_args(features, sparsity, failure_probability, guarantee)
    m, s, p = int(features), int(sparsity), float(failure_probability)
    if m == 1:
        return 1
    if guarantee == "all":
        return math.ceil(8 * s * s * (math.log(m) + math.log(m - 1) - math.log(p)))
    return math.ceil(8 * s * (math.log(2 * m) - math.log(p)))


class BloomWidth(NamedTuple):
    """Result of :func:`bloom_code_width`: the width n and the code size ℓ achieving it."""

    width: int
    code_size: int


def bloom_failure_log(
    width: int, code_size: int, features: int, sparsity: int, guarantee: str = "all"
) -> float:
    """Natural log of the union bound on a false read for the Bloom code (all-ℓ read-out).

    Feature f (ℓ random units of n) is read as present iff all its units are on; a false
    positive needs S_f inside the union of the codes of the active features, at most sℓ
    units, which has probability ≤ C(sℓ, ℓ)/C(n, ℓ). False negatives cannot happen.
    ``guarantee="all"``: union over f and every s-set of other features,
    m'·C(m' − 1, s)·C(sℓ, ℓ)/C(n, ℓ). ``per_input``: union over f only, m'·C(sℓ, ℓ)/C(n, ℓ).

    Example:
        >>> bloom_failure_log(100, 5, 10, 1, "per_input") < 0
        True
    """
    n, ell, m, s = int(width), int(code_size), int(features), int(sparsity)
    if ell < 1 or n < ell:
        return math.inf
    cover = min(s * ell, n)
    log_p = ln_comb(cover, ell) - ln_comb(n, ell) + math.log(m)
    if guarantee == "all":
        log_p += ln_comb(m - 1, min(s, m - 1))
    return log_p


def bloom_code_width(
    features: int,
    sparsity: int,
    failure_probability: float = 0.01,
    guarantee: str = "all",
    max_code_size: int = 200,
) -> BloomWidth:
    """Smallest width of a Bloom code (random ℓ-subsets, all-ℓ read-out) with every read right.

    For each ℓ = 1..``max_code_size`` the smallest n with
    :func:`bloom_failure_log` ≤ ln p is found by bisection (the bound falls as n grows);
    the best (n, ℓ) is returned. With probability ≥ 1 − p over the random codes every read
    is right: for every s-sparse input (``all``) or for one fixed input (``per_input``).

    Example:
        >>> bloom_code_width(10**6, 2)
        BloomWidth(width=205, code_size=38)
    """
    _check_rep_args(features, sparsity, failure_probability, guarantee)
    m, s = int(features), int(sparsity)
    log_target = math.log(float(failure_probability))
    if m == 1:
        return BloomWidth(1, 1)
    best: BloomWidth | None = None
    for ell in range(1, max_code_size + 1):
        n = _min_int(
            lambda n, ell=ell: (
                n >= ell and bloom_failure_log(n, ell, m, s, guarantee) <= log_target
            ),
            max(ell, 2 * s * ell),
        )
        if best is None or n < best.width:
            best = BloomWidth(n, ell)
        elif n > 2 * best.width:  # past the optimum: the width only grows from here
            break
    assert best is not None
    return best


# --------------------------------------------------------------------------------------
# reports and tightness
# --------------------------------------------------------------------------------------
def bounds_report(
    family: Family,
    *,
    layers: int = 1,
    bits_per_parameter: float = 1.0,
    error_fraction: float = 0.0,
    neurons: int | None = None,
    input_width: int | None = None,
    output_width: int | None = None,
    sparsity: int = 2,
) -> dict[str, Any]:
    """Every bound for ``family`` as one JSON-ready dict (what ``superpose bounds --json`` prints).

    Example:
        >>> r = bounds_report(Family("permutation", outputs=1000), neurons=200)
        >>> r["neurons_lower_bound"], r["capacity_neurons"]
        (92, 3840)
    """
    layers = _check_layers(layers)
    b = _check_bits_per_parameter(bits_per_parameter)
    l2 = log2_instances(family)
    bits = bits_lower_bound(family, error_fraction)
    report: dict[str, Any] = {
        "family": family.name,
        "features": family.m,
        "outputs": family.outputs,
        "log2_instances": l2,
        "error_fraction": float(error_fraction),
        "bits_per_parameter": b,
        "layers": layers,
        "bits_lower_bound": bits,
        "parameters_lower_bound": parameters_lower_bound(bits, b),
        "neurons_lower_bound": neurons_lower_bound(bits, layers, b),
        "total_neurons_lower_bound": total_neurons_lower_bound(bits, b),
        "naive_neurons": family.outputs,
        "representation_width_bloom": bloom_code_width(family.outputs, sparsity).width,
        "representation_width_linear": linear_code_width(family.outputs, sparsity),
        "sparsity": int(sparsity),
    }
    from superpose.sbound import s_aware_family_report  # s-aware fields (docs/BOUNDS.md)

    report.update(s_aware_family_report(family, int(sparsity)))
    if family.name == "kand":
        report["arity"] = family.arity
    if family.name == "circuit":
        report["circuit_groups"] = [list(g) for g in family.groups]
    if family.note:
        report["note"] = family.note
    if family.name == "uand":
        report["note"] = (
            "universal AND is a single fixed function: the counting bound is 0 "
            "(no instance information to store)"
        )
    if input_width is not None or output_width is not None:
        if input_width is None or output_width is None:
            raise SuperposeError("give both the input width and the output width")
        report["input_width"] = int(input_width)
        report["output_width"] = int(output_width)
        report["hidden_neurons_lower_bound"] = hidden_neurons_lower_bound(
            bits, input_width, output_width, layers, b
        )
    if neurons is not None:
        cap_family = family.name if family.name in CAPACITY_FAMILIES else None
        if cap_family is None:
            raise SuperposeError(
                f"capacity is defined for {', '.join(CAPACITY_FAMILIES)}, not {family.name!r}"
            )
        fixed_m = family.features if family.name != "permutation" else None
        report["neurons"] = int(neurons)
        report["capacity_neurons"] = capacity(
            neurons,
            layers,
            b,
            cap_family,
            features=fixed_m,
            arity=family.arity,
            error_fraction=error_fraction,
        )
    return report


def tightness(
    network: Network, error_fraction: float = 0.0, bits_per_parameter: float | None = None
) -> dict[str, Any]:
    """A network's neurons, parameters and bits divided by the lower bounds for its task's family.

    Uses the network's own depth (``weight_layers``) and ``bits_per_parameter`` (from its
    distinct weight values; pass ``bits_per_parameter`` to count a loaded float model at,
    e.g., 1 bit per weight instead of its 32-bit storage). Ratios
    (≥ 1 for any correct network; 1 would be optimal):

    - ``neurons_ratio``: total neurons / :func:`total_neurons_lower_bound`;
    - ``width_ratio``: widest layer / :func:`neurons_lower_bound` at the network's depth;
    - ``parameters_ratio``: dense parameters / :func:`parameters_lower_bound`;
    - ``nonzero_parameters_ratio``: non-zero parameters / :func:`nonzero_parameters_lower_bound`;
    - ``bits_ratio``: description bits / :func:`bits_lower_bound`;
    - ``hidden_ratio``: hidden neurons / the hidden neurons needed between the network's own
      input and output widths (``None`` when not defined).

    Ratios are ``None`` when the bound is 0 (e.g. universal AND). The ``s_aware_*`` fields
    add the bound that knows the sparsity (:func:`superpose.sbound.s_aware_tightness`).

    Example:
        >>> import numpy as np, superpose as sp
        >>> net = sp.build(sp.families.pairs(40, 200, np.random.default_rng(0)), "naive")
        >>> tightness(net)["neurons_ratio"] > 1
        True
    """
    fam = family_of_task(network.task)
    c = network.counts().to_dict()
    layers = max(1, int(c["weight_layers"]))
    if bits_per_parameter is not None:
        b = _check_bits_per_parameter(float(bits_per_parameter))
        c["description_bits"] += (b - c["bits_per_parameter"]) * c["nonzero_parameters"]
    else:
        b = float(c["bits_per_parameter"])
    bits = bits_lower_bound(fam, error_fraction)
    widths = [int(w) for w in c["layer_widths"]]
    out: dict[str, Any] = {
        "family": fam.name,
        "features": fam.m,
        "outputs": fam.outputs,
        "log2_instances": log2_instances(fam),
        "bits_lower_bound": bits,
        "bits_per_parameter": b,
        "weight_layers": layers,
    }

    def ratio(value: float, bound: float) -> float | None:
        return float(value) / bound if bound > 0 else None

    nlb = neurons_lower_bound(bits, layers, b)
    tlb = total_neurons_lower_bound(bits, b)
    plb = parameters_lower_bound(bits, b)
    nzlb = nonzero_parameters_lower_bound(bits, b, int(c["dense_parameters"]))
    out.update(
        neurons_lower_bound=nlb,
        total_neurons_lower_bound=tlb,
        parameters_lower_bound=plb,
        nonzero_parameters_lower_bound=nzlb,
        neurons_ratio=ratio(c["neurons"], tlb),
        relu_neurons_ratio=ratio(c["relu_neurons"], tlb),
        width_ratio=ratio(max(widths), nlb),
        parameters_ratio=ratio(c["dense_parameters"], plb),
        nonzero_parameters_ratio=ratio(c["nonzero_parameters"], nzlb),
        bits_ratio=ratio(c["description_bits"], bits),
    )
    hidden = sum(widths[1:-1])
    hlb = (
        hidden_neurons_lower_bound(bits, widths[0], widths[-1], layers, b)
        if len(widths) >= 2
        else None
    )
    out["hidden_neurons_lower_bound"] = None if hlb is None else hlb * max(layers - 1, 0)
    out["hidden_ratio"] = (
        ratio(hidden, hlb * (layers - 1)) if hlb is not None and layers >= 2 else None
    )
    if fam.note:
        out["note"] = fam.note
    from superpose.sbound import s_aware_tightness  # s-aware fields (docs/BOUNDS.md)

    out.update(s_aware_tightness(network))
    return out
