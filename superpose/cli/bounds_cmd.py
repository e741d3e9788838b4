"""``superpose bounds``: the counting limit for a task or a family, and an optional plot."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer
from rich.table import Table

from superpose.cli._app import app, console, print_json


@app.command("bounds")
def bounds_command(
    task_file: Annotated[
        Path | None, typer.Option("--task", help="Task JSON file (its family is inferred).")
    ] = None,
    family: Annotated[
        str | None,
        typer.Option(
            "--family",
            help="permutation, and2 (or2, xor2, andnot2), kand, uand or circuit.",
        ),
    ] = None,
    features: Annotated[int | None, typer.Option("--features", help="Input features m.")] = None,
    outputs: Annotated[int | None, typer.Option("--outputs", help="Output features m'.")] = None,
    arity: Annotated[int, typer.Option("--arity", help="k for --family kand.")] = 3,
    circuit_depth: Annotated[
        int,
        typer.Option(
            "--circuit-depth", help="Levels of --family circuit (m' gates spread evenly)."
        ),
    ] = 2,
    depth: Annotated[int, typer.Option("--depth", help="Weight layers L of the network.")] = 1,
    bits_per_parameter: Annotated[
        float, typer.Option("--bits-per-parameter", help="Bits b per parameter.")
    ] = 1.0,
    error_fraction: Annotated[
        float, typer.Option("--error-fraction", help="Fraction δ of outputs allowed wrong.")
    ] = 0.0,
    neurons: Annotated[
        int | None,
        typer.Option("--neurons", help="Also give the capacity of L layers of this width."),
    ] = None,
    input_width: Annotated[
        int | None,
        typer.Option("--input-width", help="Fixed input-code width (with --output-width)."),
    ] = None,
    output_width: Annotated[
        int | None, typer.Option("--output-width", help="Fixed output-code width.")
    ] = None,
    sparsity: Annotated[
        int | None,
        typer.Option(
            "--sparsity",
            help="Active features s for the representation widths (default: the task's, or 2).",
        ),
    ] = None,
    as_json: Annotated[bool, typer.Option("--json", help="Print one JSON object.")] = False,
    plot: Annotated[
        Path | None, typer.Option("--plot", help="Write a log–log plot against m' (PNG).")
    ] = None,
    network: Annotated[
        list[Path] | None,
        typer.Option("--network", help="Network directory to add to the plot (repeatable)."),
    ] = None,
) -> None:
    """Lower bounds (bits, parameters, neurons), capacity and representation widths (docs/DESIGN.md, Bounds)."""
    from superpose.workflow import bounds_for

    report = bounds_for(
        task_file,
        family,
        features=features,
        outputs=outputs,
        arity=arity,
        circuit_depth=circuit_depth,
        layers=depth,
        bits_per_parameter=bits_per_parameter,
        error_fraction=error_fraction,
        neurons=neurons,
        input_width=input_width,
        output_width=output_width,
        sparsity=sparsity,
        plot=plot,
        networks=list(network or []),
    )
    if as_json:
        print_json(report)
        return
    table = Table(
        title=f"bounds: {report['family']}, m = {report['features']:,}, m' = {report['outputs']:,}",
        show_header=False,
    )
    table.add_column("key", style="bold")
    table.add_column("value")
    for key, value in report.items():
        if key in ("networks", "circuit_groups"):
            continue
        if isinstance(value, float):
            text = f"{value:,.6g}" if abs(value) < 1e6 else f"{value:.6e}"
        elif isinstance(value, int):
            text = f"{value:,}"
        else:
            text = str(value)
        table.add_row(key, text)
    console.print(table)
