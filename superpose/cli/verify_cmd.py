"""``superpose verify``: check a saved network against its task's ground truth."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Any

import typer
from rich.table import Table

from superpose.cli._app import (
    app,
    console,
    esc,
    int_range,
    new_progress,
    print_json,
    styled,
)


def report_table(report) -> Table:
    """A rich table of a verification report, one row per input class."""
    table = Table(title=f"verification ({report.mode})")
    for col in ("class", "checked", "false positives", "false negatives"):
        table.add_column(col, justify="right")
    for label, row in sorted(report.by_class.items()):
        table.add_row(
            label, f"{row['checked']:,}", str(row["false_positives"]), str(row["false_negatives"])
        )
    return table


def stream_levels_table(rep) -> Table:
    """A rich table of a ``stream`` network's per-level report: one row per block."""
    table = Table(
        title=f"per-level check, residual stream ({rep.mode}, {rep.inputs_checked:,} inputs)"
    )
    cols = (
        "block",
        "level",
        "gates",
        "hidden units",
        "wrong after block",
        "first wrong here",
        "wrong (clean input)",
        "wrong at output",
        "FP",
        "FN",
        "measured error",
        "predicted error",
        "true gates mean/max",
    )
    for col in cols:
        table.add_column(col, justify="right")
    for row in rep.stages:
        pred = row.get("predicted_error")
        pred_s = "–" if pred is None else f"{pred:.2g} ({row.get('prediction', '')})"
        table.add_row(
            str(row["stage"]),
            str(row["level"]),
            f"{row['nodes']:,}",
            f"{row['width']:,}",
            f"{row['wrong_end_to_end']:,}",
            f"{row['first_wrong']:,}",
            f"{row['wrong_clean_input']:,}",
            f"{row['wrong_at_output']:,}",
            str(row["false_positives"]),
            str(row["false_negatives"]),
            f"{row['error_rate']:.2g}",
            pred_s,
            f"{row['true_nodes_mean']:.2f}/{row['true_nodes_max']}",
        )
    return table


def levels_table(rep) -> Table:
    """A rich table of a per-level report: one row per stage of a deep network."""
    if rep.stages and rep.stages[0].get("kind") == "block":
        return stream_levels_table(rep)
    table = Table(title=f"per-level check ({rep.mode}, {rep.inputs_checked:,} inputs)")
    cols = (
        "stage",
        "level",
        "kind",
        "nodes",
        "width",
        "wrong (end to end)",
        "first wrong here",
        "wrong (clean input)",
        "FP",
        "FN",
        "true nodes mean/max",
        "units on mean/max",
    )
    for col in cols:
        table.add_column(col, justify="right")
    for row in rep.stages:
        table.add_row(
            str(row["stage"]),
            str(row["level"]),
            row["kind"],
            f"{row['nodes']:,}",
            f"{row['width']:,}",
            f"{row['wrong_end_to_end']:,}",
            f"{row['first_wrong']:,}",
            f"{row['wrong_clean_input']:,}",
            str(row["false_positives"]),
            str(row["false_negatives"]),
            f"{row['true_nodes_mean']:.2f}/{row['true_nodes_max']}",
            f"{row['units_on_mean']:.1f}/{row['units_on_max']}",
        )
    return table


@app.command("verify")
def verify_command(
    directory: Annotated[
        Path, typer.Argument(help="Network directory written by 'superpose build'.")
    ],
    mode: Annotated[
        str,
        typer.Option(
            "--mode",
            help="exact (the certificate over every <= s-sparse input), exhaustive, random, "
            "targeted, or all (exact where a certificate exists, exhaustive up to "
            "--max-exhaustive inputs, random and targeted).",
        ),
    ] = "all",
    samples: Annotated[
        int, typer.Option("--samples", help="Random and targeted inputs (each).")
    ] = 10_000,
    seed: Annotated[
        int,
        typer.Option("--seed", help="Seed for sampled inputs.", callback=int_range("--seed", 0)),
    ] = 0,
    max_exhaustive: Annotated[
        int, typer.Option("--max-exhaustive", help="Refuse exhaustive runs above this many inputs.")
    ] = 5_000_000,
    jobs: Annotated[
        int,
        typer.Option("--jobs", help="Processes to verify on (the report does not depend on it)."),
    ] = 1,
    levels: Annotated[
        bool,
        typer.Option(
            "--levels",
            help="Also decode every stage of a deep network ('circuit': every layer; 'stream': "
            "the gates each block completes, from the stream after it, predicted vs measured "
            "error) and report its errors.",
        ),
    ] = False,
    as_json: Annotated[bool, typer.Option("--json", help="Print the report as JSON.")] = False,
) -> int:
    """Verify a network: exit 0 if no error was found, 1 if errors were found, 2 on bad input.

    Says which checks ran and which were skipped, and why.
    """
    from superpose.workflow import verify_directory

    bar = new_progress(enabled=not as_json)

    def show(event: dict[str, Any]) -> None:
        if event["event"] == "exact" and not as_json:
            console.print("exact certificate: running ...", highlight=False)
        elif event["event"] == "inputs":
            bar.add_task("verifying", total=event["total"])
        elif event["event"] == "checked":
            bar.advance(bar.task_ids[-1], event["n"])
        elif event["event"] == "levels":
            for task_id in bar.task_ids:  # the inputs are done: no finished bar during levels
                bar.update(task_id, visible=False)

    with bar:
        done = verify_directory(
            directory,
            mode,
            samples=samples,
            seed=seed,
            max_exhaustive=max_exhaustive,
            jobs=jobs,
            levels=levels,
            progress=show,
        )
    report, exact, level_rep = done.report, done.exact, done.levels
    if as_json:
        print_json(done.to_dict())
        return 0 if done.passed else 1
    if level_rep is not None:
        console.print(levels_table(level_rep))
    if exact is not None:
        style = "green" if exact.passed else "red"
        console.print(styled(f"[{style}]{esc(exact.describe())}[/]"), soft_wrap=True)
    if mode != "exact":
        console.print(report_table(report))
        verdict = (
            "[green]no error found[/]"
            if report.passed
            else f"[red]{report.inputs_with_error:,} inputs with errors[/]"
        )
        ran = ", ".join(f"{k} {v['inputs_checked']:,}" for k, v in report.by_mode.items())
        console.print(
            styled(
                f"{report.inputs_checked:,} inputs checked ({esc(ran) or 'none'}): {verdict}; "
                f"false positives {report.false_positives}, false negatives "
                f"{report.false_negatives}; 95% upper bound on the error rate "
                f"{report.error_rate_upper_95:.3g}"
            )
        )
    for why in report.skipped:
        console.print(styled(f"[yellow]skipped[/] {esc(why)}"), soft_wrap=True)
    return 0 if done.passed else 1
