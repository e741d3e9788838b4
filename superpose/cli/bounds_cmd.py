"""``superpose bounds``: the counting limit for a task or a family, and an optional plot."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Any

import numpy as np
import typer
from rich.table import Table

from superpose.cli._app import app, console, print_json
from superpose.errors import SuperposeError


def _family_from_args(
    task_file: Path | None,
    family: str | None,
    features: int | None,
    outputs: int | None,
    arity: int,
    circuit_depth: int,
) -> tuple[Any, int | None]:
    """The family named on the command line and the task's sparsity (None for a family)."""
    from superpose.bounds import family_of_task, make_family

    if (task_file is None) == (family is None):
        raise SuperposeError("give exactly one of --task FILE or --family NAME")
    if task_file is not None:
        from superpose.task import load_task

        task = load_task(task_file)
        return family_of_task(task), int(task.sparsity)
    for name, value in (("--features", features), ("--outputs", outputs)):
        if value is not None and value < 1:
            raise SuperposeError(f"{name} must be >= 1, got {value}")
    assert family is not None
    return (
        make_family(family, features=features, outputs=outputs, arity=arity, depth=circuit_depth),
        None,
    )


def _network_points(directories: list[Path]) -> list[dict[str, Any]]:
    from superpose.io import load_network

    points = []
    for d in directories:
        net = load_network(d)
        counts = net.counts()
        points.append(
            {
                "label": f"{d.name} ({counts['construction']})",
                "outputs": int(net.task.n_outputs),
                "neurons": int(counts["neurons"]),
                "max_width": int(max(counts["layer_widths"])),
            }
        )
    return points


def plot_bounds(
    path: Path,
    family: Any,
    layers: int,
    bits_per_parameter: float,
    error_fraction: float,
    sparsity: int,
    networks: list[dict[str, Any]],
) -> None:
    """Draw the neuron bounds, representation widths, naive m' and networks against m' (log–log).

    Curves use the family's kind with m = m'; ``networks`` are points from
    :func:`_network_points`. The file is written atomically, in the format of its suffix.

    Example:
        >>> import tempfile
        >>> from superpose.bounds import Family
        >>> out = Path(tempfile.mkdtemp()) / "b.png"
        >>> plot_bounds(out, Family("permutation", outputs=1000), 1, 1.0, 0.0, 2, [])
        >>> out.read_bytes()[1:4]
        b'PNG'
    """
    from superpose._numeric import pyplot

    plt = pyplot()

    from superpose._atomic import atomic_path
    from superpose.bounds import (
        CAPACITY_FAMILIES,
        Family,
        bits_lower_bound,
        bloom_code_width,
        linear_code_width,
        neurons_lower_bound,
        total_neurons_lower_bound,
    )

    curve_name = family.name if family.name in CAPACITY_FAMILIES else "and2"
    top = max([family.outputs * 10, 10**7] + [p["outputs"] * 10 for p in networks])
    grid = np.unique(np.logspace(1, np.log10(top), 40).astype(np.int64))

    def fam(mp: int) -> Family:
        if curve_name == "permutation":
            return Family("permutation", outputs=mp)
        k = family.arity if curve_name == "kand" else 2
        return Family(curve_name, outputs=mp, features=max(mp, k + 1), arity=family.arity)

    bits = [bits_lower_bound(fam(int(mp)), error_fraction) for mp in grid]
    width = [neurons_lower_bound(x, layers, bits_per_parameter) for x in bits]
    total = [total_neurons_lower_bound(x, bits_per_parameter) for x in bits]
    bloom = [bloom_code_width(int(mp), sparsity).width for mp in grid]
    linear = [linear_code_width(int(mp), sparsity) for mp in grid]

    fig, ax = plt.subplots(figsize=(7.5, 5.2))
    ax.loglog(grid, total, "-", color="C0", label="neuron lower bound, total (any layered net)")
    ax.loglog(
        grid, width, "--", color="C0", label=f"neuron lower bound, width of {layers} layer(s)"
    )
    ax.loglog(grid, bloom, "-", color="C2", label=f"representation only, Bloom code (s={sparsity})")
    ax.loglog(
        grid, linear, ":", color="C2", label=f"representation only, linear code (s={sparsity})"
    )
    ax.loglog(grid, grid, "-", color="0.5", label="naive: m' neurons")
    for i, p in enumerate(networks):
        ax.loglog([p["outputs"]], [p["neurons"]], "o", color=f"C{3 + i % 6}", label=p["label"])
        ax.loglog([p["outputs"]], [p["max_width"]], "o", mfc="none", color=f"C{3 + i % 6}")
    ax.set_xlabel("outputs m'")
    ax.set_ylabel("neurons")
    ax.set_title(
        f"{curve_name} (m = m'), b = {bits_per_parameter:g} bits/parameter, δ = {error_fraction:g}",
        fontsize=10,
    )
    ax.grid(True, which="both", alpha=0.3)
    ax.legend(fontsize=8, loc="upper left")
    fig.tight_layout()
    fmt = path.suffix.lstrip(".").lower() or "png"
    try:
        with atomic_path(path) as tmp:
            fig.savefig(tmp, format=fmt, dpi=120)
    except ValueError as exc:
        raise SuperposeError(f"{path}: cannot write a plot in format {fmt!r} ({exc})") from None
    finally:
        plt.close(fig)


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
    from superpose.bounds import bounds_report

    fam, task_sparsity = _family_from_args(
        task_file, family, features, outputs, arity, circuit_depth
    )
    s = sparsity if sparsity is not None else (task_sparsity or 2)
    if s < 1:
        raise SuperposeError(f"--sparsity must be >= 1, got {s}")
    if neurons is not None and neurons < 0:
        raise SuperposeError(f"--neurons must be >= 0, got {neurons}")
    report = bounds_report(
        fam,
        layers=depth,
        bits_per_parameter=bits_per_parameter,
        error_fraction=error_fraction,
        neurons=neurons,
        input_width=input_width,
        output_width=output_width,
        sparsity=s,
    )
    if task_file is not None:
        report["task"] = str(task_file)
    if network and plot is None:
        raise SuperposeError("--network only adds points to a plot; give --plot FILE.png too")
    points = _network_points(list(network or []))
    if points:
        report["networks"] = points
    if plot is not None:
        plot_bounds(plot, fam, depth, bits_per_parameter, error_fraction, s, points)
        report["plot"] = str(plot)
    if as_json:
        print_json(report)
        return
    table = Table(
        title=f"bounds: {fam.name}, m = {fam.m:,}, m' = {fam.outputs:,}", show_header=False
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
