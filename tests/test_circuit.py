"""The deep ``circuit`` construction: levelling, carries, sparsity bounds, exhaustive checks."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from superpose import SuperposeError, Task, build, families, load_task, verify
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
def test_non_monotone_refused_naming_gate(op: str) -> None:
    task = Task.from_gates(4, 2, [("and", [0, 1]), (op, [4, 2])])
    with pytest.raises(SuperposeError, match=rf"gate 1 .*'{op}'.*naive"):
        build(task, "circuit")


def test_level_that_cannot_stay_sparse_refused() -> None:
    # ORs of everything: each level can have every node on.
    gates = [("or", [0, 1, 2, 3])] + [("or", [i, 4]) for i in range(4)]
    task = Task.from_gates(5, 2, gates)
    with pytest.raises(SuperposeError, match=r"level 1 cannot stay sparse: up to \d+ .*neurons"):
        build(task, Circuit(max_active=2))


@pytest.mark.parametrize("name", ["adder.json", "feature-hierarchy.json"])
def test_examples_build_and_verify(name: str) -> None:
    task = load_task(EXAMPLES / name)
    assert task.features <= 30 and task.depth >= 2
    net = build(task, "circuit")
    assert verify(net, "exhaustive").inputs_with_error == 0
