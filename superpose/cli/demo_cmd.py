"""``superpose demo``: the main job, end to end in under two minutes."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer
from rich.table import Table

from superpose.cli._app import app, console, int_range, new_progress, print_json


@app.command("demo")
def demo_command(
    out_arg: Annotated[
        str, typer.Option("--out", metavar="DIR", help="Folder for the report.")
    ] = "superpose-demo",
    quick: Annotated[bool, typer.Option("--quick", help="A smaller instance (seconds).")] = False,
    seed: Annotated[int, typer.Option("--seed", callback=int_range("--seed", 0))] = 0,
    as_json: Annotated[bool, typer.Option("--json", help="Print the results as JSON.")] = False,
) -> None:
    """Build a superposed 2-AND network and the naive one, verify both, write a report."""
    from superpose.demo import run_demo

    size = {"features": 2000, "outputs": 2000, "samples": 500} if quick else {}
    progress = new_progress(not as_json, remaining=False)

    def start(description: str, total: int):
        task_id = progress.add_task(description, total=total)
        return lambda n: progress.advance(task_id, n)

    with progress:
        result = run_demo(out_arg, seed=seed, progress=start, out_label="--out", **size)
    if as_json:
        print_json(result)
        return
    t = result["task"]
    table = Table(
        title=f"2-AND: {t['outputs']:,} gates over {t['features']:,} features, s = {t['sparsity']}"
    )
    for col in (
        "construction",
        "layer widths",
        "neurons",
        "non-zero params",
        "check",
        "inputs checked",
        "with error",
    ):
        table.add_column(col, justify="right", no_wrap=col == "construction")
    for r in result["rows"]:
        table.add_row(
            r["construction"],
            str(r["layer_widths"]),
            f"{r['neurons']:,}",
            f"{r['nonzero_parameters']:,}",
            r["check"],
            f"{r['inputs_checked']:,}",
            str(r["inputs_with_error"]),
        )
    bound = result.get("lower_bound")
    if bound:
        table.add_row(
            "lower bound",
            "",
            f"{bound.get('neurons_lower_bound', 0):,.0f}",
            f"{bound.get('parameters_lower_bound', 0):,.0f}",
            "",
            "",
            "",
        )
    console.print(table)
    out = Path(out_arg)
    console.print(f"report: {out / 'report.md'} (plot: {out / 'demo.png'})")
