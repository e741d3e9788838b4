"""``superpose build``: a task (file or family) -> a network directory."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import numpy as np
import typer

from superpose.cli._app import app, console, parse_params, print_json
from superpose.errors import SuperposeError


def load_or_generate_task(
    task_file: Path | None,
    family: str | None,
    features: int | None,
    outputs: int | None,
    sparsity: int | None,
    influence: str,
    arity: int,
    depth: int,
    seed: int,
):
    """The task named on the command line: a file, or a generated family instance."""
    from superpose import families
    from superpose.task import load_task

    if (task_file is None) == (family is None):
        raise SuperposeError("give exactly one of --task FILE or --family NAME")
    if sparsity is not None and sparsity < 1:
        raise SuperposeError(f"--sparsity must be >= 1, got {sparsity}")
    if task_file is not None:
        task = load_task(task_file)
        if sparsity is not None:
            if sparsity > task.features:
                raise SuperposeError(
                    f"--sparsity {sparsity} exceeds the {task.features} features of {task_file}"
                )
            task = task.with_sparsity(sparsity)
        return task
    s = 2 if sparsity is None else sparsity
    for name, value in (("--features", features), ("--outputs", outputs)):
        if value is not None and value < 1:
            raise SuperposeError(f"{name} must be >= 1, got {value}")
    if features is not None and s > features:
        raise SuperposeError(f"--sparsity {s} exceeds --features {features}")
    rng = np.random.default_rng(np.random.SeedSequence([seed, 1]))
    return families.generate(
        family,
        rng,
        features=features,
        outputs=outputs,
        sparsity=s,
        influence=influence,
        arity=arity,
        depth=depth,
    )


@app.command("build")
def build_command(
    out: Annotated[Path, typer.Option("--out", help="Directory to write the network into.")],
    task_file: Annotated[Path | None, typer.Option("--task", help="JSON task file.")] = None,
    family: Annotated[
        str | None,
        typer.Option(
            "--family", help="permutation, and2, or2, xor2, andnot2, kand, uand, circuit."
        ),
    ] = None,
    features: Annotated[int | None, typer.Option("--features", help="Input features m.")] = None,
    outputs: Annotated[int | None, typer.Option("--outputs", help="Output features m'.")] = None,
    influence: Annotated[
        str,
        typer.Option(
            "--influence", help="uniform, zipf, star, core, matching, or a mix 'uniform+star'."
        ),
    ] = "uniform",
    arity: Annotated[int, typer.Option("--arity", help="k for the kand family.")] = 3,
    depth: Annotated[int, typer.Option("--depth", help="Levels for the circuit family.")] = 2,
    sparsity: Annotated[
        int | None,
        typer.Option("--sparsity", help="Most active inputs s (default: the task's, or 2)."),
    ] = None,
    construction: Annotated[
        str | None,
        typer.Option("--construction", help="Construction name (default: the best available)."),
    ] = None,
    param: Annotated[
        list[str] | None,
        typer.Option("--param", help="Construction parameter KEY=VALUE (repeatable)."),
    ] = None,
    seed: Annotated[
        int, typer.Option("--seed", help="Seed for the task and the construction.")
    ] = 0,
    as_json: Annotated[bool, typer.Option("--json", help="Print the counts as JSON.")] = False,
) -> None:
    """Build a network for a task and save it to a directory."""
    from superpose.constructions import DEFAULT_CONSTRUCTION, build
    from superpose.io import save_network

    task = load_or_generate_task(
        task_file, family, features, outputs, sparsity, influence, arity, depth, seed
    )
    name = construction or DEFAULT_CONSTRUCTION
    params = parse_params(param)
    rng = np.random.default_rng(np.random.SeedSequence([seed, 2]))
    with console.status(f"building {name} network for {task.n_gates:,} gates", spinner="dots"):
        net = build(task, name, seed=seed, rng=rng, **params)
    save_network(net, out)
    counts = net.counts()
    if as_json:
        print_json({"out": str(out), **counts})
        return
    console.print(
        f"built [bold]{name}[/]: {counts['neurons']:,} neurons {counts['layer_widths']}, "
        f"{counts['nonzero_parameters']:,} non-zero parameters -> {out}"
    )
