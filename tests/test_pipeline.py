"""The default build (``superpose.build`` / ``superpose build``): accepts every valid task,
checks itself, records the check, and never hands back a wrong network silently.

Ground truth is the independent brute force of ``tests/helpers.py`` over every <= s-sparse
input, never the build's own record.
"""

from __future__ import annotations

import itertools
import json

import numpy as np
import pytest

import superpose
from superpose import Task, load_network
from superpose.check import Check, check_network, recorded_check
from superpose.cli import main
from superpose.constructions import build as raw_build
from superpose.pipeline import build
from superpose.task import n_sparse_inputs
from tests.helpers import brute_outputs


def _wrong_inputs(net, limit: int = 10**9) -> int:
    """How many <= s-sparse inputs the network gets wrong (brute force, every input)."""
    task = net.task
    assert n_sparse_inputs(task.features, task.sparsity) <= limit
    wrong = 0
    combos = itertools.chain.from_iterable(
        itertools.combinations(range(task.features), k) for k in range(task.sparsity + 1)
    )
    rows = list(combos)
    x = np.zeros((len(rows), task.features))
    for i, r in enumerate(rows):
        x[i, list(r)] = 1
    got = net.predict(x).toarray().astype(int)
    for i, r in enumerate(rows):
        want, _ = brute_outputs(task, r)
        wrong += int((got[i] != np.array(want)).any())
    return wrong


def _random_mix(rng: np.random.Generator, m: int, gates: int, s: int) -> Task:
    """A random one-level task over every op (xor of any arity; andnot of two operands)."""
    ops = ["and", "or", "copy", "xor", "andnot"]
    out = []
    for _ in range(gates):
        op = ops[int(rng.integers(len(ops)))]
        k = {"copy": 1, "andnot": 2}.get(op, int(rng.integers(2, 5)))
        out.append((op, [int(v) for v in rng.choice(m, size=k, replace=False)]))
    return Task.from_gates(m, s, out)


@pytest.mark.parametrize("seed", range(6))
def test_default_build_accepts_every_op_and_arity_and_is_exactly_right(seed):
    rng = np.random.default_rng(seed)
    s = 2 + seed % 2
    task = _random_mix(rng, 30 + 5 * seed, 60 + 20 * seed, s)
    net = build(task, seed=seed)
    check = recorded_check(net)
    assert check is not None and check.passed and check.kind in ("exact", "exhaustive")
    assert _wrong_inputs(net) == 0
    # Forced into superposition (where it does not pay) and kept even if wrong: the recorded
    # check must tell the truth, input for input.
    forced = build(task, "superposed", seed=seed, fallback=False, grow=(1.0, 0.25))
    assert forced.construction == "superposed"
    check = recorded_check(forced)
    wrong = _wrong_inputs(forced)
    assert (
        check.inputs_with_error == wrong
        if check.kind == "exhaustive"
        else check.passed == (wrong == 0)
    )


def test_superposed_accepts_xor_andnot_and_wide_ands_without_being_asked():
    """No op sends the default build to another construction: superposed takes them all."""
    rng = np.random.default_rng(3)
    m = 400
    gates = [("and", [int(a), int(b)]) for a, b in rng.choice(m, size=(3000, 2)) if a != b]
    gates += [("xor", [1, 2, 3]), ("andnot", [4, 5]), ("and", [6, 7, 8, 9]), ("or", [10, 11])]
    task = Task.from_gates(m, 2, gates)
    net = raw_build(task, "superposed", rng=np.random.default_rng(0))
    assert net.construction == "superposed"
    assert check_network(net, samples=500).passed
    x = np.zeros((4, m))
    x[0, [1, 2]] = 1  # xor(1, 2, 3) = 0
    x[1, [1]] = 1  # xor = 1
    x[2, [4, 5]] = 1  # andnot = 0
    x[3, [6, 7]] = 1  # and(6..9) = 0 (two of four on: the silent unit)
    got = net.predict(x).toarray()
    for i, active in enumerate(([1, 2], [1], [4, 5], [6, 7])):
        assert got[i].astype(int).tolist() == brute_outputs(task, active)[0]


def test_a_too_small_width_falls_back_to_the_explicit_network_and_says_so():
    rng = np.random.default_rng(0)
    task = superpose.families.pairs(60, 600, rng, sparsity=2)
    net = build(task, "superposed", n_in=12, n_out=12, grow=(1.0,))
    assert net.construction == "naive"
    assert "fallback" in net.extras and net.extras["check_attempts"]
    assert net.extras["check"]["passed"] and _wrong_inputs(net) == 0


def test_no_fallback_returns_the_wrong_network_with_its_failing_check():
    task = superpose.families.pairs(60, 600, np.random.default_rng(0), sparsity=2)
    net = build(task, "superposed", n_in=12, n_out=12, grow=(1.0,), fallback=False)
    check = recorded_check(net)
    assert net.construction == "superposed" and not check.passed
    assert check.inputs_with_error == _wrong_inputs(net) > 0  # exhaustive: every input counted


def test_cli_no_fallback_exits_1_and_writes_the_network_saying_it_is_wrong(capsys, tmp_path):
    task = superpose.families.pairs(60, 600, np.random.default_rng(0), sparsity=2)
    (tmp_path / "t.json").write_text(json.dumps(task.to_dict()))
    out = tmp_path / "net"
    code = main(
        ["build", "--task", str(tmp_path / "t.json"), "--construction", "superposed",
         "--param", "n_in=12", "--param", "n_out=12", "--no-fallback", "--out", str(out)]
    )  # fmt: skip
    err = capsys.readouterr()
    assert code == 1 and "WRONG" in err.err
    saved = load_network(out)
    assert saved.extras["check"]["passed"] is False
    assert saved.extras["check"]["inputs_with_error"] == _wrong_inputs(saved)


def test_sampled_check_carries_counts_and_a_bound_above_the_exhaustive_limit():
    task = superpose.families.pairs(2000, 3000, np.random.default_rng(1), sparsity=2)
    net = raw_build(task, "superposed", rng=np.random.default_rng(0))
    check = check_network(net, samples=300, exhaustive_limit=1000, exact=False)
    assert check.kind == "sampled"
    assert check.random == {"inputs": 300, "with_error": 0}
    assert check.targeted["inputs"] == 300
    assert 0 < check.error_rate_upper_95 < 0.02
    assert any("exhaustive check needs" in why for why in check.skipped)
    again = Check.from_dict(json.loads(json.dumps(check.to_dict())))
    assert again == check


def test_cli_and_library_builds_are_byte_identical(capsys, tmp_path):
    """One seeding policy: `superpose build --task t --seed 3` == superpose.build(t, seed=3)."""
    task = superpose.families.pairs(300, 2000, np.random.default_rng(2), sparsity=2)
    (tmp_path / "t.json").write_text(json.dumps(task.to_dict()))
    assert main(["build", "--task", str(tmp_path / "t.json"), "--seed", "3",
                 "--out", str(tmp_path / "cli")]) == 0  # fmt: skip
    superpose.save_network(superpose.build(task, seed=3), tmp_path / "api")
    for name in ("network.safetensors", "network.json"):
        assert (tmp_path / "cli" / name).read_bytes() == (tmp_path / "api" / name).read_bytes()


def test_info_json_reports_the_check(capsys, tmp_path):
    task = Task.from_gates(8, 2, [("and", [0, 1]), ("xor", [2, 3, 4]), ("or", [5, 6])])
    superpose.save_network(build(task), tmp_path / "n")
    capsys.readouterr()
    assert main(["info", str(tmp_path / "n"), "--json"]) == 0
    info = json.loads(capsys.readouterr().out)
    assert info["check"]["kind"] in ("exact", "exhaustive")
    assert (
        info["check"]["inputs_checked"] == n_sparse_inputs(8, 2) or info["check"]["kind"] == "exact"
    )
    assert info["check"]["inputs_with_error"] == 0


def test_deep_builds_record_a_check_per_level():
    task = superpose.families.layered_circuit(
        30, 20, 3, np.random.default_rng(4), ops=("and", "or")
    )
    net = build(task, "circuit")
    levels = net.extras["check"]["levels"]
    assert len(levels["wrong_end_to_end"]) == 3 and levels["inputs_checked"] > 0
    assert _wrong_inputs(net) == 0 == net.extras["check"]["inputs_with_error"]
