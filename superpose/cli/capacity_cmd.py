"""``superpose capacity``: the most features each layer of a safetensors model could compute."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer
from rich.table import Table

from superpose.cli._app import app, console, print_json, progress_bar, styled


def _fmt(value: float) -> str:
    return f"{value:,.0f}" if value < 1e15 else f"{value:.3e}"


@app.command("capacity")
def capacity_command(
    path: Annotated[Path, typer.Argument(help="A .safetensors file, or a directory of shards.")],
    bits_per_parameter: Annotated[
        float,
        typer.Option(
            "--bits-per-parameter",
            help="Bits b each parameter usefully holds (default 1).",
        ),
    ] = 1.0,
    dtype_bits: Annotated[
        bool,
        typer.Option(
            "--dtype-bits",
            help="Use each tensor's storage width as b instead (32 for fp32): a loose upper bound.",
        ),
    ] = False,
    as_json: Annotated[bool, typer.Option("--json", help="Print one JSON object.")] = False,
) -> None:
    """Per layer: shapes, non-zero parameters and the counting-bound feature capacity."""
    from superpose.capacity import model_capacity

    with progress_bar("reading tensors", None, enabled=not as_json) as bar:
        report = model_capacity(
            path,
            None if dtype_bits else bits_per_parameter,
            progress=bar.advance,
            start=bar.set_total,
        )
    if as_json:
        print_json(report)
        return
    b_note = (
        "each tensor's dtype width (--dtype-bits)"
        if dtype_bits
        else f"{bits_per_parameter:g} bit per parameter"
        + (" (default; --bits-per-parameter, --dtype-bits)" if bits_per_parameter == 1 else "")
    )
    table = Table(title=f"capacity of {path} (b = {b_note}; pairs with m = m')")
    for col, justify in (
        ("layer", "left"),
        ("kind", "left"),
        ("shapes", "left"),
        ("non-zero params", "right"),
        ("budget bits", "right"),
        ("max features (permutation)", "right"),
        ("max features (pairs)", "right"),
    ):
        table.add_column(col, justify=justify)  # type: ignore[arg-type]
    for row in report["layers"]:
        table.add_row(
            row["name"],
            row["kind"],
            " ".join("×".join(str(d) for d in s) for s in row["shapes"]),
            f"{row['nonzero_parameters']:,}",
            _fmt(row["budget_bits"]),
            f"{row['capacity_permutation']:,}",
            f"{row['capacity_pairs']:,}",
        )
    for label, tot in (("total (MLP blocks)", report["total_mlp"]), ("total", report["total"])):
        table.add_row(
            styled(f"[bold]{label}[/]"),
            "",
            f"{tot['rows']} rows",
            f"{tot['nonzero_parameters']:,}",
            _fmt(tot["budget_bits"]),
            f"{tot['capacity_permutation']:,}",
            f"{tot['capacity_pairs']:,}",
        )
    console.print(table)
    console.print(
        f"pooled over the whole model: {report['total']['whole_model_capacity_permutation']:,} "
        f"(permutation), {report['total']['whole_model_capacity_pairs']:,} (pairs); "
        f"{report['skipped_tensors']} tensors skipped (not 2-D matrices or their biases)"
    )
