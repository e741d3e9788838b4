"""The deep ``circuit`` construction: levelling, carries, sparsity bounds, exhaustive checks."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from superpose import SuperposeError, Task, families, load_task, verify
from superpose.constructions import build
from superpose.constructions.circuit import Circuit

EXAMPLES = Path(__file__).resolve().parent.parent / "examples"


@pytest.mark.parametrize("seed", range(3))
@pytest.mark.parametrize("depth", [2, 3])
@pytest.mark.parametrize("sparsity", [1, 2])
def test_deep_random_tasks_exhaustive(seed: int, depth: int, sparsity: int) -> None:
    task = families.layered_circuit(
        24, 8, depth, np.random.default_rng(seed), ops=("and", "or"), sparsity=sparsity
    )
    net = build(task, "circuit", seed=seed)
    report = verify(net, "exhaustive")
    assert report.inputs_with_error == 0
    assert len(net.layers) == depth == net.extras["levels"]
    # Outputs of every level are carried to the end: level L carries all earlier gates.
    assert net.extras["carries"][-1] == 8 * (depth - 1)
    assert net.extras["total_carries"] == sum(net.extras["carries"]) > 0
    assert net.extras["active_bounds"][0] == sparsity
    assert len(net.extras["widths"]) == depth + 1


def test_superposed_stages_exhaustive() -> None:
    # The input layer is never wider than one neuron per feature (explicit when the
    # superposed code would not be narrower).
    task = families.layered_circuit(
        300, 40, 2, np.random.default_rng(5), ops=("and", "or"), sparsity=2, outputs="last"
    )
    net = build(task, "circuit", seed=1)
    assert net.input_code.width <= task.features
    assert verify(net, "exhaustive").inputs_with_error == 0


def test_carry_of_skip_connection() -> None:
    # Level 1 carries inputs 2 and 3; level 2 carries input 3 and gate 4 (an output);
    # level 3 carries gate 4 to the end.
    task = Task.from_gates(4, 2, [("and", [0, 1]), ("or", [4, 2]), ("and", [5, 3])], [6, 4])
    net = build(task, "circuit")
    assert net.extras["carries"] == [2, 2, 1]
    assert verify(net, "exhaustive").inputs_with_error == 0


@pytest.mark.parametrize("op", ["xor", "andnot"])
def test_xor_andnot_through_depth(op: str) -> None:
    # xor / andnot read by a later gate, carried, and as final outputs (a resolve layer).
    gates = [("and", [0, 1]), (op, [4, 2]), ("or", [5, 3]), (op, [6, 0]), ("and", [7, 5])]
    task = Task.from_gates(4, 2, gates)
    net = build(task, "circuit")
    assert verify(net, "exhaustive").inputs_with_error == 0
    assert len(net.layers) == task.depth  # xor nodes carried on are resolved on the way
    last = Task.from_gates(4, 2, [*gates, (op, [8, 1])])
    net = build(last, "circuit")
    assert verify(net, "exhaustive").inputs_with_error == 0
    assert len(net.layers) == last.depth + 1  # a last-level xor needs one more layer


def test_many_input_xor_refused_naming_gate() -> None:
    task = Task.from_gates(4, 2, [("and", [0, 1]), ("xor", [4, 2, 3])])
    with pytest.raises(SuperposeError, match=r"gate 1 .*xor of 3 inputs.*naive"):
        build(task, "circuit")


def test_level_that_cannot_stay_sparse_refused() -> None:
    # ORs of everything: each level can have every node on.
    gates = [("or", [0, 1, 2, 3])] + [("or", [i, 4]) for i in range(4)]
    task = Task.from_gates(5, 2, gates)
    with pytest.raises(SuperposeError, match=r"level 1 cannot stay sparse: up to \d+ .*neurons"):
        build(task, Circuit(max_active=2))


@pytest.mark.parametrize("name", ["adder.json", "adder4.json", "feature-hierarchy.json"])
def test_examples_build_and_verify(name: str) -> None:
    task = load_task(EXAMPLES / name)
    assert task.features <= 30 and task.depth >= 2
    net = build(task, "circuit")
    assert verify(net, "exhaustive").inputs_with_error == 0


def test_adder_example_adds() -> None:
    # The example is a real 4-bit adder: check its truth table on all 256 inputs.
    from scipy import sparse

    from superpose.evaluation import evaluate

    task = load_task(EXAMPLES / "adder4.json")
    x = np.array([[(v >> k) & 1 for k in range(8)] for v in range(256)])
    out = evaluate(task.with_sparsity(8), sparse.csr_array(x)).values.toarray().astype(int)
    total = out[:, :4] @ [1, 2, 4, 8] + 16 * out[:, 4]
    assert total.tolist() == [(v & 15) + (v >> 4) for v in range(256)]


# --- sparsity bounds ------------------------------------------------------------------------


def _brute_max(task: Task, columns) -> list[int]:
    """Most true nodes per column over every input with <= s active features (ground truth)."""
    import itertools

    from scipy import sparse

    from superpose.evaluation import evaluate_nodes

    rows = [
        c for k in range(task.sparsity + 1) for c in itertools.combinations(range(task.features), k)
    ]
    r = [i for i, c in enumerate(rows) for _ in c]
    cols = [f for c in rows for f in c]
    x = sparse.csr_array(
        (np.ones(len(r), dtype=np.int32), (r, cols)), shape=(len(rows), task.features)
    )
    counts = np.asarray((evaluate_nodes(task, x) @ columns).toarray())
    return counts.max(axis=0).tolist()


@pytest.mark.parametrize("seed", range(4))
@pytest.mark.parametrize("sparsity", [1, 2, 3])
@pytest.mark.parametrize("ops", [("and", "or"), ("and", "or", "xor", "andnot")])
def test_active_bounds_hold_and_beat_cones(seed: int, sparsity: int, ops) -> None:
    from superpose.levels import active_bounds, layout, level_membership, stage_membership

    fan_in = 2 if "andnot" in ops else 3 if seed % 2 else 2
    task = families.layered_circuit(
        14, 10, 4, np.random.default_rng(seed), ops=ops, sparsity=sparsity, fan_in=fan_in
    )
    lay = layout(task)
    b = active_bounds(task, lay=lay)
    true_stage = _brute_max(task, stage_membership(task, lay))
    true_level = _brute_max(task, level_membership(task, lay))
    assert all(x >= t for x, t in zip(b.bounds, true_stage, strict=True)), (b, true_stage)
    assert all(x >= t for x, t in zip(b.level_bounds, true_level, strict=True))
    assert all(x <= c for x, c in zip(b.bounds, b.cone, strict=True))
    if sparsity == 1 and "xor" not in ops:
        # One active input: the exact method is exact for monotone circuits.
        assert b.bounds == true_stage and b.method == "exact"
    cone = active_bounds(task, lay=lay, method="cone")
    assert cone.method == "cone" and cone.bounds == b.cone
    assert all(x >= t for x, t in zip(cone.bounds, true_stage, strict=True))


def test_bounds_stay_flat_with_depth_where_cones_explode() -> None:
    from superpose.levels import active_bounds

    task = families.layered_circuit(
        3000, 600, 6, np.random.default_rng(0), ops=("and", "or"), sparsity=2
    )
    b = active_bounds(task)
    assert b.method == "exact"
    assert b.level_cone[-1] > 4 * b.level_bounds[-1]
    assert max(b.level_bounds) < 40


def test_bounds_fall_back_to_cones_above_the_candidate_limit() -> None:
    from superpose.levels import active_bounds

    task = families.layered_circuit(40, 30, 3, np.random.default_rng(1), ops=("and", "or"))
    b = active_bounds(task, max_candidates=1)
    assert b.method == "cone" and "candidate" in b.note and b.bounds == b.cone


# --- conformance: deep random tasks checked on every <= s-sparse input -----------------------


@pytest.mark.parametrize("seed", range(3))
@pytest.mark.parametrize("depth", [2, 4, 5])
@pytest.mark.parametrize("sparsity", [1, 2, 3])
def test_conformance_deep_random_exhaustive(seed: int, depth: int, sparsity: int) -> None:
    task = families.layered_circuit(
        16,
        6,
        depth,
        np.random.default_rng(100 + seed),
        ops=("and", "or"),
        sparsity=sparsity,
        fan_in=2 + seed % 2,
        outputs="all" if seed != 1 else "last",
    )
    net = build(task, "circuit", seed=seed)
    report = verify(net, "exhaustive")
    assert report.inputs_with_error == 0, report.failing_inputs
    assert len(net.layers) == task.depth


@pytest.mark.parametrize("seed", range(2))
def test_conformance_deep_skip_reads_exhaustive(seed: int) -> None:
    # Gates reading several levels back (carries of gates and inputs over many stages).
    rng = np.random.default_rng(seed)
    m, gates = 10, []
    for g in range(24):
        hi = m + g
        ins = rng.choice(hi, size=2, replace=False).tolist()
        gates.append((["and", "or"][int(rng.integers(2))], ins))
    task = Task.from_gates(m, 2, gates)
    net = build(task, "circuit", seed=seed)
    assert verify(net, "exhaustive").inputs_with_error == 0
    assert net.extras["total_carries"] > 0


@pytest.mark.parametrize("seed", range(3))
@pytest.mark.parametrize("sparsity", [1, 2, 3])
def test_conformance_deep_xor_andnot_exhaustive(seed: int, sparsity: int) -> None:
    task = families.layered_circuit(
        14,
        8,
        3 + seed,
        np.random.default_rng(200 + seed),
        ops=("and", "or", "xor", "andnot"),
        sparsity=sparsity,
    )
    net = build(task, Circuit(), seed=seed)
    assert verify(net, "exhaustive").inputs_with_error == 0
    from superpose.stage_check import level_report

    assert all(r["wrong_end_to_end"] == 0 for r in level_report(net, "exhaustive").stages)


def test_conformance_deep_cleanup_exhaustive() -> None:
    task = families.layered_circuit(
        16, 8, 4, np.random.default_rng(7), ops=("and", "or"), sparsity=2
    )
    net = build(task, Circuit(cleanup=1), seed=0)
    assert net.extras["cleanup_stages"] == 3 and len(net.layers) == 7
    assert verify(net, "exhaustive").inputs_with_error == 0


# --- bad structure -----------------------------------------------------------------------------


def test_gate_reading_a_later_id_is_named() -> None:
    from superpose.task import task_from_dict

    data = {
        "features": 3,
        "sparsity": 2,
        "gates": [{"op": "and", "inputs": [0, 4]}, {"op": "or", "inputs": [1, 2]}],
    }
    with pytest.raises(SuperposeError, match=r"gate 0 \(id 3\): reads id 4"):
        task_from_dict(data)


def test_cycle_is_named() -> None:
    from superpose.task import task_from_dict

    # A gate reading itself (the smallest cycle) and two gates reading each other.
    with pytest.raises(SuperposeError, match=r"gate 0 \(id 2\): reads id 2"):
        task_from_dict({"features": 2, "sparsity": 1, "gates": [{"op": "or", "inputs": [0, 2]}]})
    pair = [{"op": "or", "inputs": [0, 3]}, {"op": "or", "inputs": [1, 2]}]
    with pytest.raises(SuperposeError, match=r"gate 0 \(id 2\): reads id 3"):
        task_from_dict({"features": 2, "sparsity": 1, "gates": pair})


def test_level_that_cannot_stay_sparse_names_level_bound_and_width() -> None:
    # Level 2: ORs over every level-1 gate; with max_active=3 level 2 is refused, level 1 not.
    gates = [("and", [i, i + 1]) for i in range(5)] + [
        ("or", [6 + i, 6 + j]) for i in range(5) for j in range(i + 1, 5)
    ]
    task = Task.from_gates(6, 2, gates)
    with pytest.raises(
        SuperposeError, match=r"level 2 cannot stay sparse: up to \d+ of its 10 gates.*neurons"
    ):
        build(task, Circuit(max_active=3))


# --- per-level verification --------------------------------------------------------------------


def test_level_report_exhaustive_and_after_loading(tmp_path) -> None:
    from superpose import load_network, save_network
    from superpose.stage_check import level_report

    task = families.layered_circuit(14, 8, 3, np.random.default_rng(3), ops=("and", "or"))
    net = build(task, "circuit", seed=5)
    rep = level_report(net, "exhaustive")
    assert rep.inputs_checked == 1 + 14 + 91
    assert [r["wrong_end_to_end"] for r in rep.stages] == [0, 0, 0]
    assert all(r["true_nodes_max"] >= 1 for r in rep.stages)
    save_network(net, tmp_path / "net")
    again = level_report(load_network(tmp_path / "net"), "exhaustive")
    assert again.stages == rep.stages


def test_level_report_finds_errors_of_a_too_narrow_network() -> None:
    from superpose.stage_check import level_report

    task = families.layered_circuit(
        300, 300, 3, np.random.default_rng(0), ops=("and", "or"), sparsity=2
    )
    net = build(task, Circuit(width_scale=0.06), seed=0)
    rep = level_report(net, "random", 300, np.random.default_rng(1))
    ends = verify(net, "random", 300, np.random.default_rng(1))
    firsts = sum(r["first_wrong"] for r in rep.stages)
    assert rep.stages[-1]["wrong_end_to_end"] > 0
    # Every input with a wrong stage has exactly one first wrong stage.
    assert firsts >= rep.stages[-1]["wrong_end_to_end"]
    assert ends.inputs_with_error > 0
    assert all(r["false_negatives"] == 0 for r in rep.stages)  # monotone stages: FPs only


def test_level_report_refuses_other_constructions() -> None:
    from superpose.stage_check import level_report

    net = build(Task.from_gates(4, 2, [("and", [0, 1])]), "naive")
    with pytest.raises(SuperposeError, match="circuit"):
        level_report(net, "exhaustive")


# --- CLI ---------------------------------------------------------------------------------------


def test_cli_build_info_verify_levels(tmp_path, capsys) -> None:
    import json

    from superpose.cli import main

    out = tmp_path / "net"
    task = EXAMPLES / "feature-hierarchy.json"
    assert main(["build", "--task", str(task), "--construction", "circuit", "--out", str(out)]) == 0
    capsys.readouterr()
    assert main(["info", str(out)]) == 0
    text = capsys.readouterr().out
    assert "stages" in text and "input" in text
    assert main(["verify", str(out), "--mode", "exhaustive", "--levels", "--json"]) == 0
    report = json.loads(capsys.readouterr().out)
    levels = report["levels"]["stages"]
    assert len(levels) == load_task(task).depth
    assert all(r["wrong_end_to_end"] == 0 for r in levels)
    assert main(["verify", str(out), "--mode", "exhaustive", "--levels"]) == 0
    assert "per-level check" in capsys.readouterr().out


def test_a_loaded_certified_circuit_still_reports_per_level(tmp_path):
    """Certification widened the network (its first widths failed): the saved parameters and
    seed must rebuild the same weights, or the per-level check cannot recover the stages."""
    from superpose import build as checked_build
    from superpose import load_network, save_network
    from superpose.stage_check import level_report

    task = families.layered_circuit(400, 300, 3, np.random.default_rng(0), sparsity=2)
    net = checked_build(task, "circuit", seed=0, width_scale=0.5, fallback=False)
    assert net.params["width_scale"] > 0.5  # widened by the build's check
    assert net.extras["check"]["passed"] and net.extras["check_attempts"]
    save_network(net, tmp_path / "c")
    loaded = load_network(tmp_path / "c")
    report = level_report(loaded, "random", samples=200, rng=np.random.default_rng(1))
    fresh = level_report(net, "random", samples=200, rng=np.random.default_rng(1))
    assert report == fresh


def test_exact_bounds_above_s3_fall_back_to_the_cone_bound():
    from superpose.levels import active_bounds

    task = families.layered_circuit(30, 20, 3, np.random.default_rng(0), sparsity=5)
    exact = active_bounds(task, method="exact")
    cone = active_bounds(task, method="cone")
    assert exact.method == "cone" and list(exact.bounds) == list(cone.bounds)


# --- xor / andnot detectors, mixed pools, carries ------------------------------------------------


def _meet_by_enumeration(task: Task, a: np.ndarray, b: np.ndarray, sparsity: int) -> np.ndarray:
    """Ground truth: are nodes a[i] and b[i] both true on some input with <= s active?"""
    from superpose.evaluation import evaluate_nodes
    from superpose.verification import exhaustive_inputs

    meet = np.zeros(len(a), dtype=bool)
    for x in exhaustive_inputs(task.features, sparsity, 4096):
        v = evaluate_nodes(task, x).toarray().astype(bool)
        meet |= (v[:, a] & v[:, b]).any(axis=0)
    return meet


@given(seed=st.integers(0, 10_000), sparsity=st.integers(1, 3), depth=st.integers(1, 4))
@settings(max_examples=25, deadline=None)
def test_operands_meet_never_misses_a_meeting(seed: int, sparsity: int, depth: int) -> None:
    # False must be a proof: checked on every <= s-sparse input of the task itself; for
    # s <= 2 it is exact on the monotone relaxation.
    from superpose.levels import operands_meet, relaxed

    task = families.layered_circuit(
        12,
        8,
        depth,
        np.random.default_rng(seed),
        ops=("and", "or", "xor", "andnot"),
        sparsity=sparsity,
    )
    two = np.flatnonzero(task.arity == 2)
    a = task.gate_inputs[task.gate_indptr[two]]
    b = task.gate_inputs[task.gate_indptr[two] + 1]
    got = operands_meet(task, two)
    assert not (_meet_by_enumeration(task, a, b, sparsity) & ~got).any()
    if sparsity <= 2:
        assert np.array_equal(got, _meet_by_enumeration(relaxed(task), a, b, sparsity))


def test_xor_whose_operands_never_meet_needs_no_detector() -> None:
    # Gates 4 and 5 need two inputs each, so with s = 2 their xor is their or: no detector and
    # no resolve layer; the xor of two inputs (gate 7) can meet and keeps its detector.
    gates = [("and", [0, 1]), ("and", [2, 3]), ("xor", [4, 5]), ("xor", [0, 2])]
    task = Task.from_gates(4, 2, gates, outputs=[6])
    net = build(task, Circuit())
    assert net.extras["detectors_skipped"] == 1
    assert sum(s["detector_units"] for s in net.extras["stages"]) == 0
    assert len(net.layers) == task.depth
    assert verify(net, "exhaustive").inputs_with_error == 0
    both = Task.from_gates(4, 2, [*gates, ("or", [6, 7])], outputs=[8])
    net = build(both, Circuit())
    assert net.extras["detectors_skipped"] == 1
    assert sum(s["detector_units"] for s in net.extras["stages"]) == 1
    assert verify(net, "exhaustive").inputs_with_error == 0


@pytest.mark.parametrize("carries", ["copy", "encode"])
@pytest.mark.parametrize("seed", range(2))
def test_conformance_carries_exhaustive(carries: str, seed: int) -> None:
    # Copying carried codes unit by unit and re-encoding them into each pool compute the
    # same function (checked on every <= 2-sparse input, xor and andnot included).
    task = families.layered_circuit(
        14,
        8,
        4,
        np.random.default_rng(300 + seed),
        ops=("and", "or", "xor", "andnot"),
        sparsity=2,
        outputs="last",
    )
    net = build(task, Circuit(carries=carries), seed=seed)
    copies = sum(net.extras["copy_widths"][:-1])
    assert (copies == 0) == (carries == "encode")
    assert verify(net, "exhaustive").inputs_with_error == 0


def test_mixed_pool_units_fire_for_every_true_part() -> None:
    # "any present" parts (bits weigh 2) and 2-ANDs share units; every unit of a true part
    # must fire, on every input with <= 2 active operands.
    from superpose.codes import BloomCode, random_sets
    from superpose.constructions.superposed import Parts, threshold_stage

    rng = np.random.default_rng(3)
    n_nodes, n_parts, ell = 30, 60, 4
    code = BloomCode(random_sets(n_nodes, 200, ell, rng))
    ops = rng.choice(n_nodes, size=(n_parts, 2))
    ops[:, 1] = (ops[:, 0] + 1 + rng.integers(0, n_nodes - 1, n_parts)) % n_nodes
    need = rng.integers(1, 3, n_parts)
    parts = Parts(
        np.arange(n_parts),
        np.ones(n_parts, np.int8),
        need,
        np.repeat(np.arange(n_parts), 2),
        ops.ravel(),
    )
    layer, units, _ = threshold_stage(parts, code, 60, ell, 0.3, rng, mix=True)
    units = units.toarray().astype(bool)
    for i in range(n_nodes):
        for j in range(i, n_nodes):
            x = np.zeros((1, n_nodes))
            x[0, [i, j]] = 1
            on = layer.apply(code.encode(x)).toarray()[0] > 0
            active = np.isin(ops, [i, j])
            true = np.where(need == 1, active.any(axis=1), active.all(axis=1))
            assert on[units[true].any(axis=0)].all()


# --- sizing: the chain of widths -------------------------------------------------------------


def _chain_total(w: list[float], layer_blocks: list[list[int]]) -> float:
    return w[0] + sum(sum(w[b] for b in blocks) for blocks in layer_blocks)


def _chain_ok(w, floors, products, layer_blocks, ceilings) -> bool:
    for i, k in enumerate(products):
        prev = w[0] if i == 0 else sum(w[b] for b in layer_blocks[i - 1])
        if prev * w[i + 1] < k * (1 - 1e-9):
            return False
    return all(
        f * (1 - 1e-9) <= x <= c * (1 + 1e-9) for x, f, c in zip(w, floors, ceilings, strict=True)
    )


@given(seed=st.integers(0, 10_000))
@settings(max_examples=15, deadline=None)
def test_chain_widths_near_the_grid_optimum(seed: int) -> None:
    # Two stages, the second layer also copying the input block: the solver's total must be
    # feasible and within 2% of the best point of a fine grid over all three widths.
    from superpose.constructions.circuit import _chain_widths

    rng = np.random.default_rng(seed)
    floors = [float(x) for x in rng.uniform(10, 300, 3)]
    products = [float(x) for x in rng.uniform(1e3, 1e6, 2)]
    blocks = [[1], [2, 0]] if seed % 2 else [[1], [2]]
    ceilings = [np.inf] * 3
    got = _chain_widths(floors, products, blocks)
    assert _chain_ok(got, floors, products, blocks, ceilings)
    axis = np.geomspace(10, 1e5, 241)
    a, b, c = np.meshgrid(axis, axis, axis, indexing="ij", sparse=True)
    layer1 = b
    layer2 = c + (a if seed % 2 else 0)
    ok = (a * b >= products[0]) & (layer1 * c >= products[1])
    ok &= (a >= floors[0]) & (b >= floors[1]) & (c >= floors[2])
    best = float(np.where(ok, a + layer1 + layer2, np.inf).min())
    assert _chain_total(got, blocks) <= best * 1.02


def test_chain_widths_widen_the_layer_before_a_capped_pool() -> None:
    from superpose.constructions.circuit import _chain_widths

    w = _chain_widths([10.0, 10.0, 10.0], [1e4, 1e4], [[1], [2]], ceilings=[np.inf, np.inf, 20.0])
    assert w[2] <= 20.0 + 1e-9 and w[1] * w[2] >= 1e4 * (1 - 1e-9)
    assert w[1] >= 500 * (1 - 1e-9) and w[0] * w[1] >= 1e4 * (1 - 1e-9)


def test_per_stage_code_lengths_recorded_and_correct() -> None:
    task = families.layered_circuit(
        30, 12, 3, np.random.default_rng(4), ops=("and", "or", "xor"), sparsity=2, outputs="last"
    )
    net = build(task, "circuit", seed=0)
    ells = net.extras["ells"]
    assert len(ells) == len(net.layers) + 1 and ells[0] == net.extras["ell"]
    for stage, ell in zip(net.extras["stages"], ells[1:], strict=True):
        assert stage["ell"] == ell
    assert verify(net, "exhaustive").inputs_with_error == 0


def test_failure_target_is_lowered_where_every_input_is_checked() -> None:
    from superpose.constructions.circuit import CIRCUIT_FAILURE
    from superpose.task import n_sparse_inputs

    small = families.layered_circuit(300, 10, 2, np.random.default_rng(0), sparsity=2)
    large = families.layered_circuit(2000, 10, 2, np.random.default_rng(0), sparsity=2)
    assert Circuit()._failure(small) == pytest.approx(0.1 / n_sparse_inputs(300, 2))
    assert Circuit()._failure(large) == CIRCUIT_FAILURE
    assert Circuit(failure=1e-3)._failure(small) == 1e-3
