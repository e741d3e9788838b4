"""The stress suite: random tasks nobody tuned for, every network against brute force.

Tasks come from :func:`superpose.families.stress` (and/or/copy/xor/andnot, arity up to 4, hub
features on ANDs and on ORs, dense cores, Zipf, uniform, mixtures), with seeds the
constructions were never tuned on. Two promises are tested against the ground truth of every
<= s-sparse input (run here, not taken from the network's own record):

* the default build hands back a network with no wrong input;
* whatever a build hands back, its recorded check tells the truth: a network that passed has
  no wrong input, and a network built deliberately too narrow (``fallback=False``, 0.1 of the
  automatic widths, no repair) reports as many wrong inputs as there are (exact and exhaustive kinds) or at least
  one when brute force finds any.

Larger sizes, where brute force is impossible, are in ``benchmarks/stress.py``.
"""

from __future__ import annotations

import numpy as np
import pytest

from superpose import SuperposeError, build, families
from superpose.evaluation import evaluate
from superpose.network import Network
from superpose.verification import exhaustive_inputs, verify

PROFILES = (
    "uniform",
    "zipf",
    "core",
    "hub-and",
    "hub-or",
    "hub",
    "uniform+hub-or",
    "zipf+core+hub-and",
)


def _brute_force(net: Network) -> int:
    """How many <= s-sparse inputs make some output wrong (every input run)."""
    wrong = 0
    for x in exhaustive_inputs(net.task.features, net.task.sparsity):
        diff = (net.predict(x) != evaluate(net.task, x).values).tocoo()
        wrong += len(np.unique(diff.coords[0]))
    return wrong


def _task(seed: int, sparsity: int) -> families.Task:
    rng = np.random.default_rng(10_000 + seed)
    m, n = int(rng.integers(20, 40)), int(rng.integers(40, 160))
    return families.stress(m, n, rng, sparsity=sparsity, influence=PROFILES[seed % len(PROFILES)])


def test_generator_mixes_ops_arities_and_profiles() -> None:
    t = families.stress(400, 2000, np.random.default_rng(0), sparsity=3)
    assert set(t.op_counts()) == {"and", "or", "copy", "xor", "andnot"}
    arity = t.arity
    assert arity.max() == 4 and arity.min() == 1
    ops = [t.op_name(g) for g in range(t.n_gates)]
    assert all(arity[g] == 1 for g in range(t.n_gates) if ops[g] == "copy")
    assert all(arity[g] == 2 for g in range(t.n_gates) if ops[g] == "andnot")
    keys = {
        (ops[g], tuple(t.operands(g)) if ops[g] == "andnot" else tuple(sorted(t.operands(g))))
        for g in range(t.n_gates)
    }
    assert len(keys) == t.n_gates  # distinct gates
    # hub-and and hub-or parts: two features read by ~half of their part's gates, and the
    # gates on each hub are all ANDs, or all ORs.
    top = np.argsort(t.influence)[::-1][:2]
    assert t.influence[top].min() >= 0.5 * 2000 / 5 * 0.9
    for hub in top:
        on_hub = [g for g in range(t.n_gates) if hub in t.operands(g)]
        hub_ops = {ops[g] for g in on_hub[: len(on_hub) // 2]}
        assert len({"and", "or"} & hub_ops) >= 1


def test_generator_is_seeded() -> None:
    a = families.stress(300, 500, np.random.default_rng(5))
    b = families.stress(300, 500, np.random.default_rng(5))
    c = families.stress(300, 500, np.random.default_rng(6))
    assert np.array_equal(a.gate_inputs, b.gate_inputs) and np.array_equal(a.ops, b.ops)
    assert not np.array_equal(a.gate_inputs, c.gate_inputs)


@pytest.mark.parametrize(
    "kwargs, message",
    [
        ({"influence": "hub-xor"}, "hub-xor"),
        ({"ops": ("and", "nand")}, "nand"),
        ({"max_arity": 0}, "max_arity"),
        ({"hub_fraction": 1.5}, "1.5"),
    ],
)
def test_generator_bad_input(kwargs: dict, message: str) -> None:
    with pytest.raises(SuperposeError, match=message):
        families.stress(30, 20, np.random.default_rng(0), **kwargs)


@pytest.mark.parametrize("sparsity", [2, 3])
@pytest.mark.parametrize("seed", range(8))
def test_default_build_has_no_wrong_input(seed: int, sparsity: int) -> None:
    task = _task(seed, sparsity)
    net = build(task, seed=seed)
    assert net.extras["check"]["passed"]
    assert _brute_force(net) == 0


@pytest.mark.parametrize("sparsity", [2, 3])
@pytest.mark.parametrize("seed", range(8))
def test_superposed_build_tells_the_truth(seed: int, sparsity: int) -> None:
    """The superposed path itself (no fallback to the explicit network): checked, grown."""
    task = _task(seed, sparsity)
    net = build(task, "superposed", seed=seed, fallback=False)
    check = net.extras["check"]
    assert net.construction == "superposed"
    assert check["kind"] == ("exact" if sparsity == 2 else "exhaustive")
    assert check["inputs_with_error"] == _brute_force(net)


@pytest.mark.parametrize("seed", range(6))
def test_too_narrow_build_reports_its_errors(seed: int) -> None:
    task = _task(seed, 2 + seed % 2)
    narrow = dict(fallback=False, grow=(1.0,), width_scale=0.1, repair=False)
    net = build(task, "superposed", seed=seed, patch=False, **narrow)
    check = net.extras["check"]
    truth = _brute_force(net)
    assert truth > 0  # a tenth of the automatic widths, unrepaired: too narrow to be right
    assert not check["passed"]
    assert check["inputs_with_error"] == truth
    # with patching on, the build is either patched right or still reports the truth
    again = build(task, "superposed", seed=seed, **narrow)
    assert again.extras["check"]["inputs_with_error"] == _brute_force(again)


def test_medium_task_default_build_against_fresh_inputs() -> None:
    """Beyond brute force (C(2000, <= 3) = 1.3e9 inputs): fresh random + targeted inputs."""
    task = families.stress(2000, 3000, np.random.default_rng(77), sparsity=3)
    net = build(task, seed=3)
    assert net.extras["check"]["passed"]
    for mode in ("random", "targeted"):
        report = verify(net, mode, samples=3000, rng=np.random.default_rng(1234))
        assert report.inputs_checked == 3000
        assert report.inputs_with_error == 0


def _sampled_wrong(net: Network, task, count: int = 4000) -> int:
    from superpose.verification import random_inputs

    wrong = 0
    for x in random_inputs(task, count, np.random.default_rng(5)):
        wrong += int((net.predict(x).toarray() != evaluate(task, x).values.toarray()).any(1).sum())
    return wrong


def _heavy_mix():
    """The and/or/copy stress mix with Zipf heads and a hub on ANDs, at m = m' = 2 000."""
    return families.stress(
        2000,
        2000,
        np.random.default_rng(2026),
        ops=("and", "or", "copy"),
        influence="uniform+zipf+core+hub-and",
    )


def test_heavy_blocks_are_sized_for_their_own_hubs(monkeypatch) -> None:
    """Zipf heads meet often, so a head's block holds other heads: without each pool's own hub
    floor the raw construction is wrong on sampled inputs; with it, right on all of them."""
    from superpose.constructions import Superposed
    from superpose.constructions import superposed as module

    task = _heavy_mix()
    net = Superposed().build_once(task, np.random.default_rng(1))
    assert net.extras["pool_stats"][0]["private_parts"] > 0
    assert _sampled_wrong(net, task) == 0
    monkeypatch.setattr(
        module, "pool_hub_floor", lambda parts, keys, *a: np.zeros(len(keys), np.int64)
    )
    assert _sampled_wrong(Superposed().build_once(task, np.random.default_rng(1)), task) > 0


def test_a_default_build_no_smaller_than_explicit_goes_explicit(monkeypatch) -> None:
    """At m = 2 000 the and/or/copy mix with heavy blocks is larger than m + m' as built:
    growing only adds neurons, so the default build goes explicit without checking it."""
    from superpose import pipeline

    task = _heavy_mix()
    checked: list[str] = []
    real = pipeline._check
    monkeypatch.setattr(
        pipeline, "_check", lambda net, *a: checked.append(net.construction) or real(net, *a)
    )
    net = build(task, seed=0)
    assert net.construction == "naive" and net.counts()["neurons"] == 4000
    assert "before any check" in net.extras["fallback"]
    assert "not fewer than the explicit network" in net.extras["fallback"]
    assert net.extras["check_attempts"][-1]["kind"] == "none"
    assert "superposed" not in checked and net.extras["check"]["passed"]
    forced = build(task, "superposed", seed=0)
    assert forced.construction == "superposed" and forced.counts()["neurons"] > 4000
