"""``task_from_options``: the task a command names, from a file or a generated family.

Every command that takes a task takes it the same two ways (a JSON file, or a family with its
sizes and a seed), and the same mistakes must be refused the same way: both or neither given,
a sparsity the task cannot have. One function does it, in the library's own names; each
message carries the command-line spelling in ``cli`` for ``superpose`` to append.

Example:
    >>> task = task_from_options(family="and2", features=30, outputs=40, seed=0)
    >>> task.features, task.n_outputs, task.sparsity
    (30, 40, 2)
"""

from __future__ import annotations

from pathlib import Path

from superpose.errors import SuperposeError
from superpose.task import Task


def task_from_options(
    task_file: str | Path | None = None,
    family: str | None = None,
    *,
    features: int | None = None,
    outputs: int | None = None,
    sparsity: int | None = None,
    influence: str = "uniform",
    arity: int = 3,
    depth: int = 2,
    seed: int = 0,
) -> Task:
    """The task in ``task_file`` (its sparsity replaced by ``sparsity`` when given), or an
    instance of ``family`` drawn from the ``"task"`` stream of ``Seeds(seed)``."""
    from superpose import families
    from superpose.seeds import Seeds
    from superpose.task import load_task

    one_source(task_file, family)
    if sparsity is not None and sparsity < 1:
        raise SuperposeError(f"sparsity must be >= 1, got {sparsity}", cli="--sparsity")
    if task_file is not None:
        task = load_task(task_file)
        if sparsity is None:
            return task
        if sparsity > task.features:
            raise SuperposeError(
                f"sparsity {sparsity} exceeds the {task.features} features of {task_file}",
                cli="--sparsity",
            )
        return task.with_sparsity(sparsity)
    s = 2 if sparsity is None else sparsity
    if features is not None and s > features:
        raise SuperposeError(f"sparsity {s} exceeds features {features}", cli="--sparsity")
    return families.generate(
        family,
        Seeds(seed).rng("task"),
        features=features,
        outputs=outputs,
        sparsity=s,
        influence=influence,
        arity=arity,
        depth=depth,
    )


def one_source(task_file: object, family: object) -> None:
    """Refuse both or neither of a task file and a family: a task comes from exactly one."""
    if (task_file is None) == (family is None):
        raise SuperposeError(
            "give exactly one of task_file or family", cli="--task FILE or --family NAME"
        )
