"""Built-in families: distinct gates, exact counts, the stated influence property, determinism."""

from __future__ import annotations

import math

import numpy as np
import pytest
from helpers import gate_list
from hypothesis import given
from hypothesis import strategies as st

from superpose import SuperposeError, families
from superpose.families import _unrank_pairs


def operand_sets(task) -> list[tuple[str, tuple[int, ...]]]:
    return [(op, tuple(sorted(ins))) for op, ins in gate_list(task)]


def assert_distinct(task):
    keys = operand_sets(task)
    assert len(set(keys)) == len(keys), "a gate repeats"
    for _, ins in keys:
        assert len(set(ins)) == len(ins), "a gate reads an id twice"


def same(a, b) -> bool:
    return gate_list(a) == gate_list(b) and a.outputs.tolist() == b.outputs.tolist()


def test_permutation():
    task = families.permutation(50, np.random.default_rng(3), sparsity=3)
    assert task.features == 50 and task.n_gates == 50 and task.sparsity == 3
    assert all(op == "copy" for op, _ in gate_list(task))
    assert sorted(task.gate_inputs.tolist()) == list(range(50))  # a permutation
    assert task.influence.tolist() == [1] * 50
    assert task.gate_inputs.tolist() != list(range(50))  # not the identity for this seed
    assert_distinct(task)
    assert same(task, families.permutation(50, np.random.default_rng(3), sparsity=3))
    assert not same(task, families.permutation(50, np.random.default_rng(4), sparsity=3))


def test_permutation_sparsity_is_capped():
    assert families.permutation(2, np.random.default_rng(0), sparsity=5).sparsity == 2


PROFILES = [
    "uniform",
    "zipf",
    "star",
    "core",
    "matching",
    "uniform+star",
    "zipf+core",
    "star+matching",
]


@pytest.mark.parametrize("profile", PROFILES)
@pytest.mark.parametrize("op", ["and", "or", "xor", "andnot"])
def test_pairs_counts_distinct_deterministic(profile, op):
    rng = np.random.default_rng(11)
    task = families.pairs(200, 60, rng, influence=profile, op=op, sparsity=3)
    assert task.features == 200 and task.n_gates == 60 and task.sparsity == 3
    assert task.outputs.tolist() == list(range(200, 260))
    assert all(o == op and len(ins) == 2 for o, ins in gate_list(task))
    assert_distinct(task)
    # unordered pairs are distinct too (the same pair in the other order is the same gate)
    assert len({frozenset(ins) for _, ins in gate_list(task)}) == 60
    assert task.family["influence"] == profile
    again = families.pairs(200, 60, np.random.default_rng(11), influence=profile, op=op, sparsity=3)
    assert same(task, again)
    other = families.pairs(200, 60, np.random.default_rng(12), influence=profile, op=op, sparsity=3)
    assert not same(task, other)


def test_uniform_has_no_heavy_feature():
    task = families.pairs(200, 400, np.random.default_rng(0))
    # mean influence 4: no feature is in 10% of the gates
    assert task.influence.max() < 0.1 * 400
    assert task.influence.sum() == 800


def test_zipf_is_heavy_tailed():
    zipf = families.pairs(200, 400, np.random.default_rng(0), influence="zipf")
    uniform = families.pairs(200, 400, np.random.default_rng(0), influence="uniform")
    assert zipf.influence.max() >= 0.1 * 400
    assert zipf.influence.max() >= 3 * uniform.influence.max()
    # most features are light: the top 10% of features carry over half the reads
    top = np.sort(zipf.influence)[::-1][:20].sum()
    assert top > 0.5 * zipf.influence.sum()


@pytest.mark.parametrize(("m", "count", "seed"), [(100, 300, 0), (50, 40, 1), (1000, 100, 2)])
def test_star_hub_in_a_fifth_of_the_gates(m, count, seed):
    task = families.pairs(m, count, np.random.default_rng(seed), influence="star")
    hub = int(np.argmax(task.influence))
    assert task.influence[hub] >= 0.2 * count
    # the default hub fraction (the uniform rest may add a few more hub gates)
    assert task.influence[hub] >= math.ceil(0.25 * count)
    assert np.sort(task.influence)[-2] < 0.2 * count  # one hub, not several
    assert_distinct(task)


def test_star_hub_fraction_parameter():
    task = families.pairs(200, 100, np.random.default_rng(0), influence="star", hub_fraction=0.6)
    assert task.influence.max() == 60


def test_mixture_uniform_star_has_a_hub():
    task = families.pairs(300, 400, np.random.default_rng(5), influence="uniform+star")
    # half the gates come from the star part, a quarter of which hold the hub
    assert task.influence.max() >= math.ceil(0.25 * 200)
    plain = families.pairs(300, 400, np.random.default_rng(5), influence="uniform")
    assert task.influence.max() > 3 * plain.influence.max()
    assert task.n_gates == 400
    assert_distinct(task)


@pytest.mark.parametrize(("count", "core"), [(45, 10), (300, 25), (10, 5), (7, 5), (1, 2)])
def test_core_is_all_pairs_among_few_features(count, core):
    task = families.pairs(200, count, np.random.default_rng(0), influence="core")
    used = np.flatnonzero(task.influence)
    # ~sqrt(2 m') features: the smallest k with C(k, 2) >= m'
    assert len(used) <= core
    assert math.comb(core, 2) >= count > math.comb(core - 1, 2)
    if count == math.comb(core, 2):  # exactly complete: every pair of the core is a gate
        pairs = {frozenset(ins) for _, ins in gate_list(task)}
        assert len(used) == core
        assert pairs == {frozenset((int(a), int(b))) for a in used for b in used if a < b}


def test_matching_is_disjoint():
    task = families.pairs(100, 50, np.random.default_rng(0), influence="matching")
    assert task.influence.max() == 1
    assert int((task.influence == 1).sum()) == 100
    task = families.pairs(100, 10, np.random.default_rng(1), influence="matching")
    assert task.influence.max() == 1 and task.influence.sum() == 20


@pytest.mark.parametrize(
    ("kwargs", "needle"),
    [
        ({"features": 10, "outputs": 46}, "distinct pairs"),
        ({"features": 10, "outputs": 6, "influence": "matching"}, "matching"),
        ({"features": 10, "outputs": 40, "influence": "star"}, "star"),
        ({"features": 10, "outputs": 5, "influence": "powerlaw"}, "unknown influence profile"),
        ({"features": 10, "outputs": 5, "op": "copy"}, "pairwise op"),
        ({"features": 10, "outputs": 5, "op": "nand"}, "pairwise op"),
        ({"features": 1, "outputs": 1}, "at least 2"),
        ({"features": 10, "outputs": 0}, "outputs"),
        ({"features": -3, "outputs": 2}, "features"),
    ],
)
def test_pairs_errors(kwargs, needle):
    features, outputs = kwargs.pop("features"), kwargs.pop("outputs")
    with pytest.raises(SuperposeError, match=needle):
        families.pairs(features, outputs, np.random.default_rng(0), **kwargs)


def test_pairs_at_full_capacity_is_universal():
    task = families.pairs(10, 45, np.random.default_rng(0))
    assert {frozenset(ins) for _, ins in gate_list(task)} == {
        frozenset((a, b)) for a in range(10) for b in range(a + 1, 10)
    }


def test_pairs_large_m_uses_the_sampling_path():
    # C(7000, 2) > 2e7: rejection sampling, with a star part to exclude
    task = families.pairs(7000, 600, np.random.default_rng(0), influence="uniform+star")
    assert task.n_gates == 600
    assert_distinct(task)
    assert task.influence.max() >= 75


@given(st.lists(st.integers(0, 10**6 * (10**6 - 1) // 2 - 1), min_size=1, max_size=50))
def test_unrank_pairs_inverts_the_rank(ranks):
    idx = np.array(ranks, dtype=np.int64)
    pairs = _unrank_pairs(idx)
    a, b = pairs[:, 0], pairs[:, 1]
    assert (a >= 0).all() and (a < b).all()
    assert (b * (b - 1) // 2 + a == idx).all()


def test_unrank_pairs_boundaries():
    b = np.arange(2, 3000, dtype=np.int64)
    for idx in (b * (b - 1) // 2, b * (b - 1) // 2 - 1, b * (b - 1) // 2 + b - 1):
        idx = idx[idx >= 0]
        p = _unrank_pairs(idx)
        assert (p[:, 1] * (p[:, 1] - 1) // 2 + p[:, 0] == idx).all() and (p[:, 0] < p[:, 1]).all()


@pytest.mark.parametrize("k", [2, 3, 5])
def test_k_and(k):
    task = families.k_and(30, 80, k, np.random.default_rng(0))
    assert task.n_gates == 80 and task.sparsity == k
    assert all(op == "and" and len(ins) == k for op, ins in gate_list(task))
    assert_distinct(task)
    assert len({frozenset(ins) for _, ins in gate_list(task)}) == 80
    assert task.influence.sum() == 80 * k
    assert same(task, families.k_and(30, 80, k, np.random.default_rng(0)))
    assert not same(task, families.k_and(30, 80, k, np.random.default_rng(1)))
    assert families.k_and(30, 5, k, np.random.default_rng(0), sparsity=2).sparsity == 2


def test_k_and_errors():
    rng = np.random.default_rng(0)
    with pytest.raises(SuperposeError, match="arity"):
        families.k_and(5, 2, 1, rng)
    with pytest.raises(SuperposeError, match="arity"):
        families.k_and(5, 2, 6, rng)
    with pytest.raises(SuperposeError, match="distinct 3-sets"):
        families.k_and(5, 11, 3, rng)


def test_k_and_all_sets():
    task = families.k_and(6, 20, 3, np.random.default_rng(0))
    assert len({frozenset(ins) for _, ins in gate_list(task)}) == 20  # all C(6, 3)


@pytest.mark.parametrize("m", [2, 3, 12])
def test_universal_and(m):
    task = families.universal_and(m, sparsity=2)
    assert task.n_gates == math.comb(m, 2)
    assert {frozenset(ins) for _, ins in gate_list(task)} == {
        frozenset((a, b)) for a in range(m) for b in range(a + 1, m)
    }
    assert task.influence.tolist() == [m - 1] * m
    assert all(op == "and" for op, _ in gate_list(task))


@pytest.mark.parametrize("depth", [1, 2, 4])
@pytest.mark.parametrize("fan_in", [2, 3])
def test_layered_circuit(depth, fan_in):
    ops = ("and", "or", "xor") if fan_in > 2 else ("and", "or", "xor", "andnot")
    task = families.layered_circuit(
        12, 10, depth, np.random.default_rng(depth), ops=ops, fan_in=fan_in
    )
    assert task.n_gates == 10 * depth
    assert task.depth == depth
    assert task.gate_level.tolist() == [lvl for lvl in range(1, depth + 1) for _ in range(10)]
    assert all(op in ops and len(ins) == fan_in for op, ins in gate_list(task))
    assert_distinct(task)
    level = task.node_level
    for g in range(task.n_gates):
        ins = task.operands(g)
        lvl = task.gate_level[g]
        # every gate reads a gate of the level just below (an input at level 1), and nothing newer
        assert level[ins].max() == lvl - 1
        assert set(level[ins].tolist()) <= {0, lvl - 1}
    assert task.outputs.tolist() == list(range(12, 12 + 10 * depth))
    assert same(
        task,
        families.layered_circuit(
            12, 10, depth, np.random.default_rng(depth), ops=ops, fan_in=fan_in
        ),
    )


def test_layered_circuit_last_outputs_and_errors():
    task = families.layered_circuit(8, 5, 3, np.random.default_rng(0), outputs="last")
    assert task.outputs.tolist() == list(range(8 + 10, 8 + 15))
    rng = np.random.default_rng(0)
    with pytest.raises(SuperposeError, match="outputs"):
        families.layered_circuit(8, 5, 3, rng, outputs="some")
    with pytest.raises(SuperposeError, match="fan_in"):
        families.layered_circuit(8, 5, 3, rng, fan_in=1)
    with pytest.raises(SuperposeError, match="andnot"):
        families.layered_circuit(8, 5, 3, rng, ops=("andnot",), fan_in=3)
    with pytest.raises(SuperposeError, match="copy"):
        families.layered_circuit(8, 5, 3, rng, ops=("copy",))
    with pytest.raises(SuperposeError, match="distinct"):
        families.layered_circuit(2, 20, 2, rng)  # only 3 distinct gates exist at level 1


def test_layered_circuit_has_no_repeated_gates_over_many_seeds():
    for seed in range(30):
        assert_distinct(families.layered_circuit(10, 20, 3, np.random.default_rng(seed)))


@pytest.mark.parametrize(
    ("name", "kwargs", "n_gates"),
    [
        ("permutation", {"outputs": 20}, 20),
        ("permutation", {"features": 20}, 20),
        ("and2", {"features": 40, "outputs": 200, "sparsity": 3}, 200),
        ("or2", {"features": 40, "outputs": 30}, 30),
        ("xor2", {"features": 40, "outputs": 30, "influence": "star"}, 30),
        ("andnot2", {"features": 40, "outputs": 30}, 30),
        ("kand", {"features": 20, "outputs": 30, "arity": 4}, 30),
        ("uand", {"features": 9}, 36),
        ("circuit", {"features": 20, "outputs": 30, "depth": 3}, 30),
    ],
)
def test_generate(name, kwargs, n_gates):
    task = families.generate(name, np.random.default_rng(0), **kwargs)
    assert task.n_gates == n_gates
    assert task.family["name"] == name
    assert_distinct(task)
    assert same(task, families.generate(name, np.random.default_rng(0), **kwargs))


@pytest.mark.parametrize(
    ("name", "kwargs", "needle"),
    [
        ("and3", {"features": 5, "outputs": 2}, "unknown family 'and3'"),
        ("permutation", {}, "permutation needs"),
        ("permutation", {"features": 4, "outputs": 5}, "as many features as outputs"),
        ("uand", {}, "uand needs"),
        ("and2", {"features": 5}, "needs features and outputs"),
    ],
)
def test_generate_errors(name, kwargs, needle):
    with pytest.raises(SuperposeError, match=needle):
        families.generate(name, np.random.default_rng(0), **kwargs)


def test_family_registry_is_the_one_dispatch():
    """Every family is generated through its FamilySpec; knobs it does not take are ignored,
    and the registry's knobs are exactly what changes the generated task."""
    from superpose.families import FAMILIES, FAMILY_SPECS, generate

    assert tuple(FAMILY_SPECS) == FAMILIES
    for name, spec in FAMILY_SPECS.items():
        base = {"features": 30, "outputs": 30 if name == "permutation" else 40, "sparsity": 2}
        ref = generate(name, np.random.default_rng(0), **base)
        for knob, value in (("influence", "zipf"), ("arity", 4), ("depth", 4)):
            got = generate(name, np.random.default_rng(0), **base, **{knob: value})
            same = all(
                np.array_equal(getattr(got, a), getattr(ref, a))
                for a in ("ops", "gate_indptr", "gate_inputs", "outputs")
            )
            assert same == (knob not in spec.knobs), (name, knob)


def test_sweep_points_carry_the_knobs_the_family_takes():
    """stress takes influence and arity: a grid over them gives distinct points (they were
    dropped before, and the four points below were one point run four times)."""
    from superpose.sweep.spec import expand_grid, point_key

    pts = expand_grid(
        {"family": "stress", "outputs": [50], "influence": ["zipf", "core"], "arity": [2, 4]}
    )
    assert [(p["influence"], p["arity"]) for p in pts] == [
        ("zipf", 2),
        ("zipf", 4),
        ("core", 2),
        ("core", 4),
    ]
    assert len({point_key(p, {}, 0) for p in pts}) == 4
    # pair families keep exactly their old point (influence only): keys unchanged
    (p,) = expand_grid({"family": "and2", "outputs": 50, "arity": 5, "depth": 3})
    assert set(p) == {
        "family",
        "features",
        "outputs",
        "sparsity",
        "construction",
        "params",
        "seed",
        "influence",
    }
    with pytest.raises(SuperposeError, match="influence"):
        expand_grid({"family": ["stress"], "outputs": 50, "influence": "star"})
    with pytest.raises(SuperposeError, match="influence"):
        expand_grid({"family": ["and2"], "outputs": 50, "influence": "hub"})
