"""``superpose sweep``: run a YAML parameter grid on a serial, process or Dask executor."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Any

import typer
from rich.progress import TextColumn
from rich.table import Table

from superpose.cli._app import (
    app,
    console,
    err_console,
    esc,
    new_progress,
    print_json,
    styled,
)


def _plan_table(spec: Any, pending: frozenset[str]) -> Table:
    """One row per point of the sweep: its label, key and whether it is still to run."""
    table = Table(title=f"sweep {spec.name}: {len(spec.points)} points")
    for col in ("#", "point", "key", "status"):
        table.add_column(col)
    for p in spec.points:
        table.add_row(str(p.index), p.label(), p.key[:12], "to run" if p.key in pending else "done")
    return table


@app.command("sweep")
def sweep_command(
    spec_file: Annotated[Path, typer.Argument(help="Sweep file (YAML): grid and measurements.")],
    executor: Annotated[
        str, typer.Option("--executor", help="serial, process or dask.")
    ] = "serial",
    address: Annotated[
        str | None,
        typer.Option("--address", help="Existing Dask scheduler, tcp://HOST:PORT (implies dask)."),
    ] = None,
    results_arg: Annotated[
        str,
        typer.Option("--results", metavar="FILE", help="SQLite results file (created or resumed)."),
    ] = "results.sqlite",
    jobs: Annotated[
        int | None,
        typer.Option(
            "--jobs",
            help="Workers (process/dask; default: all cores), or verification processes per "
            "point with the serial executor.",
        ),
    ] = None,
    force_memory: Annotated[
        bool,
        typer.Option("--force-memory", help="Run points even above the memory limit."),
    ] = False,
    dry_run: Annotated[
        bool, typer.Option("--dry-run", help="List the points and which are done; run nothing.")
    ] = False,
    as_json: Annotated[bool, typer.Option("--json", help="Print the summary as JSON.")] = False,
) -> int:
    """Run every unfinished point of a sweep; rerunning resumes where it stopped.

    Exit 0: all points done; 1: some failed (kept as 'error', retried next run); 130: Ctrl-C.
    """
    from superpose.sweep import SweepInterrupted
    from superpose.workflow import plan_sweep, sweep_to_file

    if dry_run:
        plan = plan_sweep(spec_file, results_arg, executor=executor, address=address, jobs=jobs)
        if as_json:
            print_json(plan.to_dict())
        else:
            console.print(_plan_table(plan.spec, plan.pending))
        return 0
    name = {"sweep": spec_file.stem}
    progress = new_progress(not as_json, extra=(TextColumn("{task.fields[last]}", markup=False),))
    where = f"dask at {address}" if address else executor

    def show(event: dict[str, Any]) -> None:
        if event["event"] == "start":
            name["sweep"] = event["sweep"]
            progress.add_task(f"sweep {event['sweep']} ({where})", total=event["points"], last="")
        else:
            mark = "ok" if event["ok"] else "error"
            progress.update(progress.task_ids[-1], advance=1, last=f"{event['label']}: {mark}")

    try:
        with progress:
            summary = sweep_to_file(
                spec_file,
                results_arg,
                executor=executor,
                address=address,
                jobs=jobs,
                force_memory=force_memory,
                progress=show,
                results_label="--results",
            )
    except SweepInterrupted as exc:
        s = exc.summary
        saved = s.computed + s.errors
        err_console.print(
            f"interrupted: {saved} points saved this run ({s.skipped + s.computed} of {s.total} "
            f"finished in {results_arg}); rerun the same command to resume"
        )
        raise typer.Exit(130) from None
    if as_json:
        print_json(summary.to_dict())
    else:
        console.print(
            styled(
                f"sweep [bold]{esc(name['sweep'])}[/]: {summary.total} points, {summary.computed} "
                f"computed, {summary.skipped} already done, {summary.errors} failed -> "
                f"{esc(results_arg)} ({summary.seconds:.1f} s)"
            )
        )
        for message in summary.error_messages[:5]:
            console.print(styled(f"  [red]failed[/] {esc(message)}"))
        if summary.errors > 5:
            console.print(f"  ... and {summary.errors - 5} more (status 'error' in {results_arg})")
    return 1 if summary.errors else 0
