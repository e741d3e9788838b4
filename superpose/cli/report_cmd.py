"""``superpose report``: Markdown, PNG plots and CSV data from a sweep's results file."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from superpose.cli._app import app, console, print_json


@app.command("report")
def report_command(
    results: Annotated[Path, typer.Argument(help="SQLite results file of 'superpose sweep'.")],
    out_arg: Annotated[
        str,
        typer.Option(
            "--out", metavar="DIR", help="Directory to write the report into (new or existing)."
        ),
    ],
    title: Annotated[str | None, typer.Option("--title", help="Title of report.md.")] = None,
    as_json: Annotated[
        bool, typer.Option("--json", help="Print the written files as JSON.")
    ] = False,
) -> None:
    """Write report.md, neurons/parameters/errors/tightness plots and their CSV data."""
    from superpose.report import write_report

    with console.status(f"writing report from {results}", spinner="dots"):
        files = write_report(results, out_arg, title=title, out_label="--out")
    if as_json:
        print_json({name: str(path) for name, path in files.items()})
        return
    console.print(f"report: {files['report.md']} ({len(files)} files)")
