"""The workloads W1-W3 and a user's task as settings: tasks, widths, sample sizes, verifier batches."""

from __future__ import annotations

import os
from collections.abc import Callable
from dataclasses import dataclass

import numpy as np
from scipy import sparse

from superpose.errors import SuperposeError
from superpose.families import pairs, universal_and
from superpose.peers.universal_and import (
    LAWS,
)
from superpose.task import Task
from superpose.verification import random_inputs

WORKLOADS = ("W1", "W2", "W3")
METHODS = ("naive", "ours", "bernoulli", "rademacher", "gaussian", "trained")
OURS = "superposed"


@dataclass
class Setting:
    """One task of a workload and the widths / sample sizes used on it."""

    workload: str
    name: str
    make_task: Callable[[np.random.Generator], Task]
    peer_widths: list[int]
    trained_widths: list[int]
    inputs: int
    peer_inputs: int
    max_outputs: int
    search: bool = False
    laws: tuple[str, ...] = LAWS
    linear_inputs: bool = False
    trained_steps: int = 600
    trained_batch: int = 256
    search_seconds: float = 240.0
    codes_steps: int = 2000


W1_WIDTHS = [30, 40, 50, 60, 80, 100, 150, 200, 300, 400, 435, 600, 800]


def workload_settings(name: str, quick: bool = False) -> list[Setting]:
    """The settings of workload ``name`` (``W1``, ``W2``, ``W3``), full or ``quick`` (seconds).

    Example:
        >>> [s.name for s in workload_settings("W2", quick=True)]
        ["m=20 s=2 m'=190", "m=20 s=3 m'=190"]
    """
    if name == "W1":
        widths = [30, 100, 435] if quick else W1_WIDTHS
        return [
            Setting(
                "W1",
                "m=30 s=5 m'=435",
                lambda rng: universal_and(30, 5),
                widths,
                widths,
                inputs=300 if quick else 2000,
                peer_inputs=300 if quick else 2000,
                max_outputs=435,
                linear_inputs=False,
                trained_steps=60 if quick else 600,
                trained_batch=64 if quick else 128,
            )
        ]
    if name == "W2":
        if quick:
            grid = [(20, 2), (20, 3)]
        else:
            grid = [(m, s) for m in (100, 1000) for s in (2, 3, 5)]
        out = []
        for m, s in grid:
            big = m >= 1000
            out.append(
                Setting(
                    "W2",
                    f"m={m} s={s} m'={m * (m - 1) // 2}",
                    lambda rng, m=m, s=s: universal_and(m, s),
                    [200, 800] if quick else ([2500, 5000] if big else [500, 2000]),
                    [] if big else ([100] if quick else [500]),
                    inputs=200 if quick else (300 if big else 1000),
                    peer_inputs=200 if quick else (300 if big else 1000),
                    max_outputs=150 if quick else 2000,
                    linear_inputs=not big,
                    trained_steps=40 if quick else 400,
                    trained_batch=64 if quick else 128,
                )
            )
        return out
    if name == "W3":
        sizes = [300] if quick else [1000, 10_000, 100_000]
        out = []
        for mp in sizes:
            m = min(mp, 10_000)
            out.append(
                Setting(
                    "W3",
                    f"m={m} s=2 m'={mp}",
                    lambda rng, m=m, mp=mp: pairs(m, mp, rng, sparsity=2),
                    [],
                    [],
                    inputs=300 if quick else 2000,
                    peer_inputs=100 if quick else 300,
                    max_outputs=150 if quick else 2000,
                    search=True,
                    laws=("rademacher",) if quick else LAWS,
                    trained_steps=40 if quick else 200,
                    trained_batch=64,
                    codes_steps=40 if quick else 2000,
                )
            )
        return out
    raise SuperposeError(f"unknown workload {name!r} (known: {', '.join(WORKLOADS)})")


TASK_MAX_OUTPUTS = 20_000
"""``compare --task``: peers and trained nets of 2-AND tasks run on a sample of this many outputs."""


def task_setting(task: Task, quick: bool = False) -> Setting:
    """The comparison setting for a user's own task (``superpose compare --task FILE``).

    Naive and ours run on the whole task. The universal-AND peers run only when every output is
    a 2-input AND of input features (widths m'/4 and m', at most 2 000), on a sample of at most
    :data:`TASK_MAX_OUTPUTS` outputs; trained MLPs run on any task (widths m'/4 and m', at
    most 1 024 and at least 8; on the same sample for 2-AND tasks), 2 000 steps of 256 inputs
    (40 of 64 with ``quick``).

    Example:
        >>> from superpose import Task
        >>> t = Task.from_gates(6, 2, [("and", [0, 1]), ("xor", [2, 3])])
        >>> st = task_setting(t, quick=True)
        >>> st.name, st.laws, st.trained_widths
        ("task m=6 s=2 m'=2", (), [8])
    """
    from superpose.peers.universal_and import and_operands

    try:
        ops = and_operands(task)
        pairwise = ops.shape[1] == 2
    except SuperposeError:
        pairwise = False
    n = task.n_outputs
    cap = min(n, TASK_MAX_OUTPUTS) if pairwise else n
    widths = sorted({max(8, min(cap // 4, 1024)), max(8, min(cap, 1024))})
    if quick:
        widths = widths[:1]
    source = os.path.basename(task.source) if task.source and task.source != "<memory>" else ""
    name = f"task m={task.features} s={task.sparsity} m'={n}"
    return Setting(
        "task" if not source else source,
        name,
        lambda rng: task,
        [w for w in widths if w <= 2000] if pairwise else [],
        widths,
        inputs=300 if quick else 2000,
        peer_inputs=300 if quick else 1000,
        max_outputs=cap if pairwise else max(n, 1),
        laws=LAWS if pairwise else (),
        trained_steps=40 if quick else 2000,
        trained_batch=64 if quick else 256,
    )


def sample_outputs(task: Task, count: int, rng: np.random.Generator) -> Task:
    """A task computing a random sample of ``count`` of ``task``'s outputs (all of them if fewer).

    Example:
        >>> from superpose import families
        >>> sample_outputs(families.universal_and(100), 50, np.random.default_rng(0)).n_outputs
        50
    """
    if task.n_outputs <= count:
        return task
    chosen = np.sort(rng.choice(task.n_outputs, count, replace=False))
    gates = task.outputs[chosen] - task.features
    if (task.outputs[chosen] < task.features).any() or task.depth > 1:
        raise SuperposeError("output sampling needs a one-level task of gates")
    ops = task.operand_table(gates, 2)
    if (task.arity[gates] != 2).any():
        raise SuperposeError("output sampling supports 2-input gates")
    family = dict(task.family or {})
    family["sampled_outputs"] = f"{count} of {task.n_outputs}"
    sub = Task.pairwise(task.features, task.sparsity, ops, op="and", family=family)
    return sub


def _batches(
    task: Task, count: int, rng: np.random.Generator, batch_size: int
) -> list[sparse.csr_array]:
    return list(random_inputs(task, count, rng, batch_size=batch_size))


def _batch_size(outputs: int) -> int:
    return int(max(32, min(1024, 2_000_000 // max(outputs, 1))))
