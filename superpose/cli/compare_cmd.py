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
    err_console,
    esc,
    int_range,
    parse_params,
    print_json,
    styled,
)
from superpose.errors import SuperposeError


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
) -> int:
    """Compare naive, ours, universal-AND peers and trained MLPs on identical inputs and metrics.

    Example: superpose compare --workload W1 --quick
    """
    from superpose.compare import (
        COLUMNS,
        NEED_COLUMNS,
        need_rows,
        run_workload,
        table_rows,
    )
    from superpose.compare import markdown as to_markdown
    from superpose.compare import (
        plot as make_plot,
    )

    chosen = None if methods is None else [m.strip() for m in methods.split(",") if m.strip()]
    if plot is not None and plot.suffix.lower() != ".png":
        raise SuperposeError(f"--plot must name a .png file, got {plot}")

    start = time.perf_counter()

    def say(text: str) -> None:
        if not as_json:
            err_console.print(styled(f"[dim]{time.perf_counter() - start:7.1f}s  {esc(text)}[/]"))

    with console.status("comparing…", spinner="dots") if not as_json else _null():
        result = run_workload(
            workload,
            quick=quick,
            seed=seed,
            trained=trained,
            progress=say,
            methods=chosen,
            ours_params=parse_params(ours_param, "--ours-param"),
        )
    if plot is not None:
        make_plot(result, str(plot))
    if markdown is not None:
        from superpose._atomic import write_text

        write_text(markdown, to_markdown(result))
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


class _null:
    def __enter__(self) -> None:
        return None

    def __exit__(self, *exc: object) -> None:
        return None
