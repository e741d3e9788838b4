"""Built-in task families (docs/DESIGN.md, Tasks), each a generator driven by an explicit ``np.random.Generator``.

Example:
    >>> rng = np.random.default_rng(0)
    >>> t = pairs(100, 300, rng, influence="star")
    >>> int(t.influence.max()) >= 0.2 * t.n_gates
    True
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import numpy as np

from superpose.errors import SuperposeError
from superpose.task import MAX_FEATURES, MAX_GATES, OP_CODE, OPS, Task

INFLUENCE_PROFILES = ("uniform", "zipf", "star", "core", "matching")
PAIR_FAMILIES = {"and2": "and", "or2": "or", "xor2": "xor", "andnot2": "andnot"}
FAMILIES = ("permutation", *PAIR_FAMILIES, "kand", "uand", "circuit", "stress")
STRESS_PROFILES = ("uniform", "zipf", "core", "hub", "hub-and", "hub-or")
STRESS_OPS = ("and", "or", "copy", "xor", "andnot")


def _check_positive(name: str, value: int) -> None:
    if not isinstance(value, (int, np.integer)) or value < 1:
        raise SuperposeError(f"{name} must be a positive integer, got {value!r}")


def permutation(outputs: int, rng: np.random.Generator, sparsity: int = 2) -> Task:
    """Neural Permutation: ``y_i = x_pi(i)`` for a random permutation of ``outputs`` features."""
    _check_positive("outputs", outputs)
    perm = rng.permutation(outputs)
    n = outputs
    return Task(
        outputs,
        min(sparsity, outputs),
        np.full(n, OP_CODE["copy"], dtype=np.int8),
        np.arange(n + 1, dtype=np.int64),
        perm.astype(np.int64),
        np.arange(n, 2 * n, dtype=np.int64),
        {"name": "permutation", "features": outputs, "outputs": outputs},
    )


def _unrank_pairs(index: np.ndarray) -> np.ndarray:
    """Map pair ranks to pairs (a < b), ranks ordered by b then a: rank = b(b-1)/2 + a."""
    b = np.floor((1 + np.sqrt(1 + 8 * index.astype(np.float64))) / 2).astype(np.int64)
    b -= (b * (b - 1) // 2) > index
    b += ((b + 1) * b // 2) <= index
    a = index - b * (b - 1) // 2
    return np.stack([a, b], axis=1)


def _unique_pairs(a: np.ndarray, b: np.ndarray, m: int) -> np.ndarray:
    lo, hi = np.minimum(a, b), np.maximum(a, b)
    keep = lo != hi
    key = lo[keep] * m + hi[keep]
    _, first = np.unique(key, return_index=True)
    first.sort()  # keep draw order so truncation stays random
    key = key[first]
    return np.stack([key // m, key % m], axis=1)


def _uniform_pairs(m: int, count: int, rng: np.random.Generator, exclude: np.ndarray) -> np.ndarray:
    total = m * (m - 1) // 2
    if count + len(exclude) > total:
        raise SuperposeError(f"cannot draw {count} distinct pairs from {m} features")
    if total <= 20_000_000:
        taken = np.zeros(total, dtype=bool)
        if len(exclude):
            lo, hi = exclude.min(axis=1), exclude.max(axis=1)
            taken[hi * (hi - 1) // 2 + lo] = True
        free = np.flatnonzero(~taken)
        chosen = rng.choice(free, size=count, replace=False)
        return _unrank_pairs(chosen)
    # Large m: rejection sampling; `exclude` goes first so draw order keeps it in front.
    out = exclude.astype(np.int64)
    while len(out) < count + len(exclude):
        need = int((count + len(exclude) - len(out)) * 1.1) + 16
        cand = _unique_pairs(rng.integers(0, m, need), rng.integers(0, m, need), m)
        out = _unique_pairs(
            np.concatenate([out[:, 0], cand[:, 0]]), np.concatenate([out[:, 1], cand[:, 1]]), m
        )
    return out[len(exclude) : len(exclude) + count]


def _weighted_pairs(
    m: int, count: int, rng: np.random.Generator, weights: np.ndarray
) -> np.ndarray:
    p = weights / weights.sum()
    out = np.zeros((0, 2), dtype=np.int64)
    for _ in range(50):
        if len(out) >= count:
            break
        need = 2 * (count - len(out)) + 16
        a, b = rng.choice(m, need, p=p), rng.choice(m, need, p=p)
        out = _unique_pairs(np.concatenate([out[:, 0], a]), np.concatenate([out[:, 1], b]), m)
    return out[:count]


def _profile_pairs(
    m: int,
    count: int,
    profile: str,
    rng: np.random.Generator,
    hub_fraction: float,
    zipf_exponent: float,
) -> np.ndarray:
    if profile == "uniform":
        return _uniform_pairs(m, count, rng, np.zeros((0, 2), dtype=np.int64))
    if profile == "zipf":
        ranks = rng.permutation(m)
        return _weighted_pairs(m, count, rng, (ranks + 1.0) ** -zipf_exponent)
    if profile == "star":
        hub_gates = math.ceil(hub_fraction * count)
        if hub_gates > m - 1:
            raise SuperposeError(
                f"star profile: the hub needs {hub_gates} partners but only {m - 1} features exist"
            )
        hub = int(rng.integers(m))
        partners = rng.choice(np.delete(np.arange(m), hub), hub_gates, replace=False)
        star = np.stack([np.full(hub_gates, hub), partners], axis=1)
        return star
    if profile == "core":
        size = math.ceil((1 + math.sqrt(1 + 8 * count)) / 2)
        if size > m:
            raise SuperposeError(
                f"core profile: {count} pairs need a core of {size} > {m} features"
            )
        core = rng.choice(m, size, replace=False)
        idx = rng.choice(size * (size - 1) // 2, count, replace=False)
        local = _unrank_pairs(idx)
        return core[local]
    if profile == "matching":
        if 2 * count > m:
            raise SuperposeError(
                f"matching profile: {count} disjoint pairs need {2 * count} > {m} features"
            )
        return rng.permutation(m)[: 2 * count].reshape(count, 2)
    raise SuperposeError(
        f"unknown influence profile {profile!r} (known: {', '.join(INFLUENCE_PROFILES)}, "
        "or a mixture such as 'uniform+star')"
    )


def pairs(
    features: int,
    outputs: int,
    rng: np.random.Generator,
    *,
    influence: str = "uniform",
    op: str = "and",
    sparsity: int = 2,
    hub_fraction: float = 0.25,
    zipf_exponent: float = 1.0,
) -> Task:
    """``outputs`` distinct 2-input gates over ``features`` inputs with an influence profile.

    ``influence`` is one of ``uniform``, ``zipf``, ``star`` (one hub feature in
    ``hub_fraction`` of the gates, the rest uniform), ``core`` (pairs among ~sqrt(2 m')
    features), ``matching`` (disjoint pairs), or a mixture joined by ``+`` (gates split
    equally between the parts).

    Example:
        >>> t = pairs(50, 100, np.random.default_rng(1), influence="core")
        >>> int((t.influence > 0).sum()) <= 16
        True
    """
    _check_positive("features", features)
    _check_positive("outputs", outputs)
    if features < 2:
        raise SuperposeError("pairwise gates need at least 2 features")
    if op not in OP_CODE or op == "copy":
        raise SuperposeError(f"unknown pairwise op {op!r}")
    total = features * (features - 1) // 2
    if outputs > total:
        raise SuperposeError(
            f"{outputs} distinct pairs requested but {features} features have only {total}"
        )
    parts = influence.split("+")
    shares = [outputs // len(parts) + (i < outputs % len(parts)) for i in range(len(parts))]
    chosen = np.zeros((0, 2), dtype=np.int64)
    for profile, share in zip(parts, shares, strict=True):
        if share == 0:
            continue
        got = _profile_pairs(features, share, profile, rng, hub_fraction, zipf_exponent)
        if profile == "star" and share > len(got):
            got = np.concatenate([got, _uniform_pairs(features, share - len(got), rng, got)])
        chosen = _unique_pairs(
            np.concatenate([chosen[:, 0], got[:, 0]]),
            np.concatenate([chosen[:, 1], got[:, 1]]),
            features,
        )
    if len(chosen) < outputs:  # collisions between parts or a saturated profile: fill uniformly
        extra = _uniform_pairs(features, outputs - len(chosen) + 64, rng, chosen)
        chosen = _unique_pairs(
            np.concatenate([chosen[:, 0], extra[:, 0]]),
            np.concatenate([chosen[:, 1], extra[:, 1]]),
            features,
        )
    chosen = chosen[:outputs]
    chosen = chosen[rng.permutation(len(chosen))]
    name = {v: k for k, v in PAIR_FAMILIES.items()}[op]
    family = {"name": name, "features": features, "outputs": outputs, "influence": influence}
    return Task.pairwise(features, min(sparsity, features), chosen, op=op, family=family)


def k_and(
    features: int, outputs: int, k: int, rng: np.random.Generator, sparsity: int | None = None
) -> Task:
    """``outputs`` distinct k-input ANDs over ``features`` inputs (k-AND)."""
    _check_positive("features", features)
    _check_positive("outputs", outputs)
    if not 2 <= k <= features:
        raise SuperposeError(f"k-AND arity must be in 2..{features}, got {k}")
    if outputs > math.comb(features, k):
        raise SuperposeError(f"{outputs} distinct {k}-sets requested from {features} features")
    sets = np.zeros((0, k), dtype=np.int64)
    for _ in range(200):
        if len(sets) >= outputs:
            break
        need = 2 * (outputs - len(sets)) + 16
        cand = np.sort(rng.integers(0, features, (need, k)), axis=1)
        cand = cand[(np.diff(cand, axis=1) > 0).all(axis=1)]
        both = np.concatenate([sets, cand])
        _, first = np.unique(both, axis=0, return_index=True)
        sets = both[np.sort(first)]
    if len(sets) < outputs:
        raise SuperposeError(f"could not draw {outputs} distinct {k}-sets; lower the outputs")
    sets = sets[:outputs]
    for row in sets:
        rng.shuffle(row)
    s = min(k if sparsity is None else sparsity, features)
    return Task(
        features,
        s,
        np.full(outputs, OP_CODE["and"], dtype=np.int8),
        np.arange(0, k * outputs + 1, k, dtype=np.int64),
        sets.ravel(),
        np.arange(features, features + outputs, dtype=np.int64),
        {"name": "kand", "features": features, "outputs": outputs, "k": k},
    )


def universal_and(features: int, sparsity: int = 2) -> Task:
    """Universal AND: all C(m, 2) pairwise ANDs of ``features`` inputs."""
    _check_positive("features", features)
    a, b = np.triu_indices(features, k=1)
    family = {"name": "uand", "features": features, "outputs": len(a)}
    return Task.pairwise(features, min(sparsity, features), np.stack([a, b], 1), family=family)


def layered_circuit(
    features: int,
    gates_per_level: int,
    depth: int,
    rng: np.random.Generator,
    *,
    ops: tuple[str, ...] = ("and", "or", "xor"),
    fan_in: int = 2,
    input_fraction: float = 0.2,
    sparsity: int = 2,
    outputs: str = "all",
) -> Task:
    """A random layered circuit: ``depth`` levels of ``gates_per_level`` gates.

    Every gate of level L reads one gate of level L-1 (an input for L = 1); each of its other
    operands is an input feature with probability ``input_fraction``, else a gate of level L-1.
    ``outputs`` is ``"all"`` (every gate) or ``"last"`` (the last level only).
    """
    for name, value in (
        ("features", features),
        ("gates_per_level", gates_per_level),
        ("depth", depth),
    ):
        _check_positive(name, value)
    if fan_in < 2:
        raise SuperposeError(f"fan_in must be >= 2, got {fan_in}")
    for op in ops:
        if op not in OP_CODE or op == "copy" or (op == "andnot" and fan_in != 2):
            raise SuperposeError(
                f"op {op!r} cannot be used in a layered circuit with fan-in {fan_in}"
            )
    if fan_in > features:
        raise SuperposeError(f"fan_in {fan_in} exceeds the {features} features")
    op_codes = np.array([OP_CODE[o] for o in ops], dtype=np.int8)
    all_ops, all_inputs = [], []
    prev = np.arange(features)
    next_id = features
    for _level in range(depth):
        n = gates_per_level
        level_ops = op_codes[rng.integers(0, len(op_codes), n)]
        rows = np.empty((n, fan_in), dtype=np.int64)
        rows[:, 0] = rng.choice(prev, n)
        for j in range(1, fan_in):
            from_input = rng.random(n) < input_fraction
            rows[:, j] = np.where(from_input, rng.integers(0, features, n), rng.choice(prev, n))
        # Redraw operands that repeat within a gate, and gates that repeat an earlier gate of
        # the level (same op, same operand set); gates of different levels always differ.
        for _ in range(100):
            srt = np.sort(rows, axis=1)
            bad = (np.diff(srt, axis=1) == 0).any(axis=1)
            key = np.concatenate([level_ops[:, None].astype(np.int64), srt], axis=1)
            _, first = np.unique(key, axis=0, return_index=True)
            dup = np.ones(n, dtype=bool)
            dup[first] = False
            dup &= ~bad
            if not (bad.any() or dup.any()):
                break
            if dup.any():
                rows[dup, 0] = rng.choice(prev, int(dup.sum()))
            bad |= dup
            rows[bad, 1:] = rng.choice(
                np.concatenate([prev, np.arange(features)]), (int(bad.sum()), fan_in - 1)
            )
        else:
            raise SuperposeError(
                "could not draw distinct gates; widen the levels or use more features"
            )
        all_ops.append(level_ops)
        all_inputs.append(rows)
        prev = np.arange(next_id, next_id + n)
        next_id += n
    ops_arr = np.concatenate(all_ops)
    inputs = np.concatenate(all_inputs).ravel()
    total = len(ops_arr)
    if outputs == "all":
        outs = np.arange(features, features + total, dtype=np.int64)
    elif outputs == "last":
        outs = np.arange(features + total - gates_per_level, features + total, dtype=np.int64)
    else:
        raise SuperposeError(f"outputs must be 'all' or 'last', got {outputs!r}")
    family = {
        "name": "circuit",
        "features": features,
        "outputs": len(outs),
        "depth": depth,
        "gates_per_level": gates_per_level,
        "fan_in": fan_in,
        "ops": list(ops),
    }
    return Task(
        features,
        min(sparsity, features),
        ops_arr,
        np.arange(0, fan_in * total + 1, fan_in, dtype=np.int64),
        inputs,
        outs,
        family,
    )


def stress(
    features: int,
    outputs: int,
    rng: np.random.Generator,
    *,
    sparsity: int = 2,
    ops: tuple[str, ...] = STRESS_OPS,
    max_arity: int = 4,
    influence: str = "uniform+zipf+core+hub-and+hub-or",
    hub_fraction: float = 0.5,
    zipf_exponent: float = 1.0,
) -> Task:
    """A one-level task nobody tuned for: mixed ops and arities over mixed influence profiles.

    The gates are split equally between the ``+``-joined parts of ``influence``; in each part
    every gate draws its op from ``ops`` and its arity from 2..``max_arity`` (1 for ``copy``,
    2 for ``andnot``), then its operands by the part's profile: ``uniform``; ``zipf`` (feature
    weights ``rank^-zipf_exponent``); ``core`` (operands from ~sqrt(2 x part) features);
    ``hub`` (one hub feature in ``hub_fraction`` of the part's gates, any op); ``hub-and`` and
    ``hub-or`` (the same, the hub's gates all ANDs or all ORs: the two ways a hot feature
    stresses shared units). Gates are distinct (op and operand set); every gate is an output.
    The stress suite and ``benchmarks/stress.py`` draw from this.

    Example:
        >>> t = stress(60, 200, np.random.default_rng(0), influence="hub-or")
        >>> int(t.influence.max()) >= 50, sorted(t.op_counts())
        (True, ['and', 'andnot', 'copy', 'or', 'xor'])
    """
    parts = _check_stress(features, outputs, ops, max_arity, influence, hub_fraction)
    shares = [outputs // len(parts) + (i < outputs % len(parts)) for i in range(len(parts))]
    op_codes = np.array([OP_CODE[o] for o in ops], dtype=np.int8)
    zipf_p = (rng.permutation(features) + 1.0) ** -zipf_exponent
    zipf_cdf = np.cumsum(zipf_p / zipf_p.sum())
    keys: set[tuple[int, ...]] = set()
    gates: list[tuple[int, tuple[int, ...]]] = []
    for part, share in zip(parts, shares, strict=True):
        gates += _stress_part(
            part, share, features, rng, op_codes, max_arity, hub_fraction, zipf_cdf, keys
        )
    order = rng.permutation(len(gates))
    gates = [gates[i] for i in order]
    lengths = np.array([len(g[1]) for g in gates], dtype=np.int64)
    indptr = np.zeros(len(gates) + 1, dtype=np.int64)
    np.cumsum(lengths, out=indptr[1:])
    family = {
        "name": "stress",
        "features": features,
        "outputs": outputs,
        "influence": influence,
        "ops": list(ops),
        "max_arity": max_arity,
    }
    return Task(
        features,
        min(sparsity, features),
        np.array([g[0] for g in gates], dtype=np.int8),
        indptr,
        np.array([v for g in gates for v in g[1]], dtype=np.int64),
        np.arange(features, features + len(gates), dtype=np.int64),
        family,
    )


def _check_stress(
    features: int,
    outputs: int,
    ops: tuple[str, ...],
    max_arity: int,
    influence: str,
    hub_fraction: float,
) -> list[str]:
    """Refuse arguments :func:`stress` cannot draw from (before any random draw); return the
    influence profiles ``influence`` joins."""
    _check_positive("features", features)
    _check_positive("outputs", outputs)
    if not 1 <= max_arity <= features:
        raise SuperposeError(f"max_arity must be in 1..{features}, got {max_arity}")
    for op in ops:
        if op not in OP_CODE:
            raise SuperposeError(f"unknown op {op!r} (known: {', '.join(OP_CODE)})")
    if not ops:
        raise SuperposeError("stress needs at least one op")
    parts = influence.split("+")
    for part in parts:
        if part not in STRESS_PROFILES:
            raise SuperposeError(
                f"unknown stress profile {part!r} (known: {', '.join(STRESS_PROFILES)}, "
                "or a mixture such as 'uniform+hub-or')"
            )
    if not 0 < hub_fraction <= 1:
        raise SuperposeError(f"hub_fraction must be in (0, 1], got {hub_fraction}")
    return parts


def _stress_part(
    part: str,
    share: int,
    features: int,
    rng: np.random.Generator,
    op_codes: np.ndarray,
    max_arity: int,
    hub_fraction: float,
    zipf_cdf: np.ndarray,
    keys: set[tuple[int, ...]],
) -> list[tuple[int, tuple[int, ...]]]:
    """``share`` distinct gates (op, operands) drawn by one influence profile ``part``;
    ``keys`` holds the gates drawn so far (by every part) and is extended. A draw that
    repeats an operand or an earlier gate is redrawn, up to a limit."""
    hub = int(rng.integers(features))
    core_size = min(features, math.ceil(math.sqrt(2 * share)) + 2 * max_arity)
    core = rng.choice(features, core_size, replace=False)
    gates: list[tuple[int, tuple[int, ...]]] = []
    made, tries = 0, 0
    while made < share:
        tries += 1
        if tries > 50 * share + 1000:
            raise SuperposeError(
                f"stress profile {part!r}: could not draw {share} distinct gates over "
                f"{features} features; lower the outputs"
            )
        on_hub = part.startswith("hub") and made < math.ceil(hub_fraction * share)
        op = int(op_codes[rng.integers(len(op_codes))])
        if on_hub and part != "hub":
            op = OP_CODE[part[4:]]
        name = OPS[op]
        k = {"copy": 1, "andnot": 2}.get(name, int(rng.integers(2, max_arity + 1)))
        k = min(k, features)
        if on_hub and k == 1:
            operands = np.array([hub])
        elif on_hub:
            rest = rng.integers(0, features - 1, k - 1)
            operands = np.concatenate([[hub], rest + (rest >= hub)])
        elif part == "zipf":
            operands = np.minimum(np.searchsorted(zipf_cdf, rng.random(k)), features - 1)
        elif part == "core":
            operands = core[rng.integers(0, len(core), k)]
        else:
            operands = rng.integers(0, features, k)
        ordered = tuple(int(v) for v in operands)
        if len(set(ordered)) < k:  # operands drawn with replacement: redraw repeats
            continue
        # andnot is not symmetric: its operand order is part of the gate
        key = (op, *(ordered if name == "andnot" else sorted(ordered)))
        if key in keys:
            continue
        keys.add(key)
        gates.append((op, ordered))
        made += 1
    return gates


@dataclass(frozen=True)
class FamilySpec:
    """What a task family takes: the one place that knows (generate, the sweep, the report).

    ``sizes`` is ``"features+outputs"`` (both given), ``"outputs"`` (a permutation: as many
    features as outputs) or ``"features"`` (uand: all pairs of the features). ``knobs`` are
    the further parameters the family reads, of ``influence``, ``arity`` and ``depth``; a
    sweep point records exactly these (and its key hashes them). ``influence_profiles``
    are the profiles ``influence`` may join with ``+``.
    """

    name: str
    make: Callable[..., Task]
    sizes: str = "features+outputs"
    knobs: tuple[str, ...] = ()
    influence_profiles: tuple[str, ...] = ()

    def knob_values(self, **given: Any) -> dict[str, Any]:
        """The knobs of ``given`` this family takes (the others dropped).

        Example:
            >>> FAMILY_SPECS["kand"].knob_values(influence="zipf", arity=4, depth=2)
            {'arity': 4}
        """
        return {k: given[k] for k in self.knobs if k in given}

    def check_influence(self, influence: str) -> bool:
        """Whether ``influence`` (profiles joined with ``+``) is one this family draws."""
        return isinstance(influence, str) and all(
            part in self.influence_profiles for part in influence.split("+")
        )


def _make_permutation(features, outputs, rng, sparsity, **_):  # noqa: ANN001, ANN202
    n = outputs or features
    if n is None:
        raise SuperposeError(
            "permutation needs outputs (or features)", cli="--outputs or --features"
        )
    if features is not None and outputs is not None and features != outputs:
        raise SuperposeError(
            f"a permutation has as many features as outputs; got {features} and {outputs}"
        )
    return permutation(n, rng, sparsity)


def _make_uand(features, outputs, rng, sparsity, **_):  # noqa: ANN001, ANN202
    if features is None:
        raise SuperposeError("uand needs features", cli="--features")
    return universal_and(features, sparsity)


def _make_pairs(op: str) -> Callable[..., Task]:
    def make(features, outputs, rng, sparsity, influence="uniform", **_):  # noqa: ANN001, ANN202
        return pairs(features, outputs, rng, influence=influence, op=op, sparsity=sparsity)

    return make


def _make_kand(features, outputs, rng, sparsity, arity=3, **_):  # noqa: ANN001, ANN202
    return k_and(features, outputs, arity, rng, sparsity)


def _make_stress(features, outputs, rng, sparsity, influence="uniform", arity=3, **_):  # noqa: ANN001, ANN202
    mix = influence if influence != "uniform" else "uniform+zipf+core+hub-and+hub-or"
    return stress(features, outputs, rng, sparsity=sparsity, max_arity=arity, influence=mix)


def _make_circuit(features, outputs, rng, sparsity, depth=2, extra=None, **_):  # noqa: ANN001, ANN202
    _check_positive("depth", depth)
    per_level = max(1, outputs // depth)
    return layered_circuit(features, per_level, depth, rng, sparsity=sparsity, **(extra or {}))


FAMILY_SPECS: dict[str, FamilySpec] = {
    "permutation": FamilySpec("permutation", _make_permutation, sizes="outputs"),
    **{
        name: FamilySpec(
            name, _make_pairs(op), knobs=("influence",), influence_profiles=INFLUENCE_PROFILES
        )
        for name, op in PAIR_FAMILIES.items()
    },
    "kand": FamilySpec("kand", _make_kand, knobs=("arity",)),
    "uand": FamilySpec("uand", _make_uand, sizes="features"),
    "circuit": FamilySpec("circuit", _make_circuit, knobs=("depth",)),
    # `influence` "uniform" (the default) means the full stress mix; `arity` is max_arity.
    "stress": FamilySpec(
        "stress", _make_stress, knobs=("influence", "arity"), influence_profiles=STRESS_PROFILES
    ),
}
"""The task families by name (the CLI's ``--family``, a sweep grid's ``family``)."""
assert tuple(FAMILY_SPECS) == FAMILIES


def family_spec(name: str) -> FamilySpec:
    """The registered family ``name``; a :class:`SuperposeError` naming the known ones if none.

    Example:
        >>> family_spec("stress").knobs
        ('influence', 'arity')
    """
    spec = FAMILY_SPECS.get(name) if isinstance(name, str) else None
    if spec is None:
        raise SuperposeError(f"unknown family {name!r} (known: {', '.join(FAMILIES)})")
    return spec


def generate(
    name: str,
    rng: np.random.Generator,
    *,
    features: int | None = None,
    outputs: int | None = None,
    sparsity: int = 2,
    influence: str = "uniform",
    arity: int = 3,
    depth: int = 2,
    **extra: Any,
) -> Task:
    """Generate a task of the named family (the CLI's ``--family``); knobs the family does
    not take (:attr:`FamilySpec.knobs`) are ignored, ``extra`` goes to ``circuit``.

    Example:
        >>> generate("and2", np.random.default_rng(0), features=40, outputs=200, sparsity=3).n_gates
        200
    """
    spec = family_spec(name)
    for label, value, high in (
        ("features", features, MAX_FEATURES),
        ("outputs", outputs, MAX_GATES),
    ):
        if value is not None and not (isinstance(value, (int, np.integer)) and 1 <= value <= high):
            raise SuperposeError(f"{label} must be an integer in 1..{high:,}, got {value!r}")
    if spec.sizes == "features+outputs" and (features is None or outputs is None):
        raise SuperposeError(
            f"family {name!r} needs features and outputs", cli="--features and --outputs"
        )
    knobs = spec.knob_values(influence=influence, arity=arity, depth=depth)
    return spec.make(features, outputs, rng, sparsity, extra=extra, **knobs)
