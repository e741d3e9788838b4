"""``superpose compare``: every method on one workload, one table (docs/DESIGN.md, Comparison)."""

from __future__ import annotations

import time
from pathlib import Path
from typing import Annotated

import typer
from rich.table import Table

from superpose.cli._app import (
    app,
    console,
    esc,
    int_range,
    parse_params,
    print_json,
    styled,
)


@app.command("compare")
def compare_command(
    workload: Annotated[
        str,
        typer.Option(
            "--workload", "-w", help="W1, W2, W3 or all (see docs/DESIGN.md, Comparison)."
        ),
    ] = "W1",
    as_json: Annotated[bool, typer.Option("--json", help="Print the results as JSON.")] = False,
    plot: Annotated[
        Path | None,
        typer.Option("--plot", help="Write the W3 plot (neurons needed vs m') to this PNG."),
    ] = None,
    markdown: Annotated[
        Path | None, typer.Option("--markdown", help="Also write the tables as Markdown here.")
    ] = None,
    quick: Annotated[
        bool, typer.Option("--quick", help="Trimmed sizes (seconds), for tests and smoke runs.")
    ] = False,
    trained: Annotated[
        bool,
        typer.Option("--trained/--no-trained", help="Include trained MLPs (needs torch)."),
    ] = True,
    seed: Annotated[
        int,
        typer.Option(
            "--seed", help="Seed for tasks, networks and inputs.", callback=int_range("--seed", 0)
        ),
    ] = 0,
    methods: Annotated[
        str | None,
        typer.Option(
            "--methods",
            help="Comma-separated subset of naive,ours,bernoulli,rademacher,gaussian,trained.",
        ),
    ] = None,
    ours_param: Annotated[
        list[str] | None,
        typer.Option("--ours-param", help="KEY=VALUE passed to the superposed construction."),
    ] = None,
    task_file: Annotated[
        Path | None,
        typer.Option(
            "--task",
            help="Compare on this task JSON file instead of a workload (--workload is ignored; "
            "naive, ours, trained; "
            "universal-AND peers for 2-AND tasks).",
        ),
    ] = None,
    device: Annotated[
        str,
        typer.Option("--device", help="Where trained baselines train: cpu, cuda or mps."),
    ] = "cpu",
    out: Annotated[
        Path | None,
        typer.Option(
            "--out",
            help="Write compare.json, compare.md and the trained baselines' loss curves "
            "(loss-*.csv, loss-*.png) into this directory.",
        ),
    ] = None,
) -> int:
    """Compare naive, ours, universal-AND peers and trained MLPs on identical inputs and metrics.

    Example: superpose compare --workload W1 --quick
    """
    from superpose.cli._app import new_progress
    from superpose.compare import COLUMNS, NEED_COLUMNS, need_rows, table_rows
    from superpose.workflow import compare_to_files

    chosen = None if methods is None else [m.strip() for m in methods.split(",") if m.strip()]

    start = time.perf_counter()
    bar = new_progress(enabled=not as_json)
    training = bar.add_task("training", total=1, visible=False)

    def say(text: str) -> None:
        if not as_json:
            bar.console.print(styled(f"[dim]{time.perf_counter() - start:7.1f}s  {esc(text)}[/]"))

    def on_step(done: int, steps: int, losses: object) -> None:
        if done == 1:
            bar.reset(training, total=steps, visible=True)
        loss = min(float(v) for v in losses)  # type: ignore[attr-defined]
        bar.update(training, completed=done, description=f"training (loss {loss:.3g})")
        if done == steps:
            bar.update(training, visible=False)

    with bar:
        result = compare_to_files(
            workload,
            plot=plot,
            markdown=markdown,
            out=out,
            quick=quick,
            seed=seed,
            trained=trained,
            progress=say,
            methods=chosen,
            ours_params=parse_params(ours_param, "--ours-param"),
            task_file=task_file,
            device=device,
            on_train_step=on_step,
        )
    if as_json:
        print_json(result.to_dict())
        return 0
    rows = table_rows(result)
    settings = list(dict.fromkeys((r[0], r[1]) for r in rows))
    for wl, setting in settings:
        table = Table(title=f"{wl}: {setting}", title_justify="left")
        for col in COLUMNS[2:]:
            table.add_column(col.replace(" 00/01/11", "\n00/01/11"), overflow="fold")
        for row in rows:
            if (row[0], row[1]) == (wl, setting):
                table.add_row(*row[2:])
        console.print(table)
    if result.needs:
        need = Table(
            title="W3: fewest neurons with zero thresholded errors on the verifier's inputs"
        )
        for col in NEED_COLUMNS:
            need.add_column(col, overflow="fold")
        for row in need_rows(result):
            need.add_row(*row)
        console.print(need)
    for note in result.notes:
        console.print(f"note: {note}", highlight=False)
    console.print(f"{result.seconds:.1f} s", highlight=False)
    return 0
