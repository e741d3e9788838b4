"""``superpose build``: a task (file or family) -> a network directory."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Any

import typer

from superpose.cli._app import (
    app,
    console,
    err_console,
    esc,
    int_range,
    new_progress,
    parse_params,
    print_json,
    styled,
)
from superpose.task import MAX_FEATURES, MAX_GATES


@app.command("build")
def build_command(
    out_arg: Annotated[
        str,
        typer.Option(
            "--out",
            metavar="DIR",
            help="Directory to write the network into: new (created only once the network is "
            "complete), empty, or an existing network directory (its files are replaced).",
        ),
    ],
    task_file: Annotated[Path | None, typer.Option("--task", help="JSON task file.")] = None,
    family: Annotated[
        str | None,
        typer.Option(
            "--family",
            help="permutation, and2, or2, xor2, andnot2, kand, uand, circuit, stress.",
        ),
    ] = None,
    features: Annotated[
        int | None,
        typer.Option(
            "--features",
            help="Input features m.",
            callback=int_range("--features", 1, MAX_FEATURES),
        ),
    ] = None,
    outputs: Annotated[
        int | None,
        typer.Option(
            "--outputs",
            help="Output features m'.",
            callback=int_range("--outputs", 1, MAX_GATES),
        ),
    ] = None,
    influence: Annotated[
        str,
        typer.Option(
            "--influence", help="uniform, zipf, star, core, matching, or a mix 'uniform+star'."
        ),
    ] = "uniform",
    arity: Annotated[int, typer.Option("--arity", help="k for the kand family.")] = 3,
    depth: Annotated[
        int,
        typer.Option(
            "--depth", help="Levels for the circuit family.", callback=int_range("--depth", 1)
        ),
    ] = 2,
    sparsity: Annotated[
        int | None,
        typer.Option(
            "--sparsity",
            help="Most active inputs s (default: the task's, or 2).",
            callback=int_range("--sparsity", 1),
        ),
    ] = None,
    construction: Annotated[
        str | None,
        typer.Option(
            "--construction",
            help="Construction name (default: superposed; circuit for tasks of depth > 1).",
        ),
    ] = None,
    param: Annotated[
        list[str] | None,
        typer.Option("--param", help="Construction parameter KEY=VALUE (repeatable)."),
    ] = None,
    seed: Annotated[
        int,
        typer.Option(
            "--seed",
            help="Seed for the task and the construction.",
            callback=int_range("--seed", 0),
        ),
    ] = 0,
    as_json: Annotated[bool, typer.Option("--json", help="Print the counts as JSON.")] = False,
    search_width: Annotated[
        bool,
        typer.Option(
            "--search-width",
            help="Search the smallest width_scale that passes verification; save that network "
            "(the search is recorded in network.json under extras.width_search).",
        ),
    ] = False,
    search_samples: Annotated[
        int,
        typer.Option(
            "--search-samples",
            help="With --search-width: random and targeted inputs (each) checked per probe.",
        ),
    ] = 2000,
    force_memory: Annotated[
        bool,
        typer.Option(
            "--force-memory",
            "--allow-large",
            help="Build even when the memory estimate exceeds the limit "
            "(80% of physical memory or $SUPERPOSE_MEMORY_LIMIT).",
        ),
    ] = False,
    search_exhaustive: Annotated[
        bool,
        typer.Option(
            "--search-exhaustive",
            help="With --search-width: check every <= s-sparse input per probe when feasible.",
        ),
    ] = False,
    check_samples: Annotated[
        int,
        typer.Option(
            "--check-samples",
            help="Random and targeted inputs (each) of the check after building, when neither "
            "an exact certificate nor an exhaustive check (<= 10^6 inputs) applies.",
        ),
    ] = 2000,
    no_check: Annotated[
        bool,
        typer.Option(
            "--no-check",
            help="Skip the check after building (network.json then records check kind 'none').",
        ),
    ] = False,
    no_fallback: Annotated[
        bool,
        typer.Option(
            "--no-fallback",
            help="When no width passes the check, write the failing network and exit 1 "
            "instead of building the explicit network.",
        ),
    ] = False,
) -> None:
    """Build a network for a task, check it, and save it to a directory.

    The check is the strongest the network affords: an exact certificate, else every input
    with <= s active features (up to 10^6 of them), else random + targeted samples. It is
    printed and recorded in network.json; a failing check grows the widths, then falls back
    to the explicit network (or, with --no-fallback, writes the failing network and exits 1).
    """
    from superpose._atomic import check_output
    from superpose.io import NETWORK_FILES
    from superpose.workflow import build_to_directory, task_from_options

    # Pre-flight: an --out that cannot be written is refused now, not after a long build.
    out = check_output(out_arg, option="--out", owned=NETWORK_FILES)
    task = task_from_options(
        task_file,
        family,
        features=features,
        outputs=outputs,
        sparsity=sparsity,
        influence=influence,
        arity=arity,
        depth=depth,
        seed=seed,
    )
    show = not as_json
    progress = new_progress(show, remaining=False)
    with progress:
        report = (_search_report if search_width else _build_report)(progress, task, show)
        done = build_to_directory(
            task,
            out,
            construction,
            params=parse_params(param),
            seed=seed,
            check=not no_check,
            check_samples=check_samples,
            fallback=not no_fallback,
            search=search_width,
            search_samples=search_samples,
            search_exhaustive=search_exhaustive,
            force_memory=force_memory,
            progress=report,
            out_label="--out",
        )
    _render(done, as_json, search_width, search_samples)
    if done.failed:
        check = done.check
        assert check is not None
        err_console.print(
            styled(
                f"[bold red]error:[/] the network written to {esc(done.out)} is WRONG on "
                f"{check.inputs_with_error:,} checked input(s) ({check.kind} check); "
                "rerun without --no-fallback to get the explicit network"
            ),
            soft_wrap=True,
        )
        raise typer.Exit(1)


def _render(done: Any, as_json: bool, search_width: bool, search_samples: int) -> None:
    """Print what was written: counts, notes (fallback, warning) and the check it passed."""
    net, out, check = done.network, done.out, done.check
    counts = net.counts().to_dict()
    notes = {k: net.extras[k] for k in ("fallback", "warning") if k in net.extras}
    residual = net.extras.get("residual")
    if as_json:
        extra: dict[str, Any] = dict(notes)
        if check is not None:
            extra["check"] = check.to_dict()
        if search_width:
            rec = net.extras["width_search"]
            extra["width_search"] = {
                k: rec[k]
                for k in ("width_scale", "last_failing_scale", "widths", "samples", "mode")
            } | {"probes": len(rec["probes"])}
        if isinstance(residual, dict):
            extra["residual"] = {
                k: residual[k]
                for k in ("stream_width", "hidden_units", "neurons", "nonzero_parameters")
            }
        print_json({"out": str(out), **counts, **extra})
        return
    if search_width:
        rec = done.search_record
        below = rec["last_failing_scale"]
        console.print(
            f"width search: scale {rec['width_scale']:.3f} (auto widths x that), widths "
            f"{rec['widths']}; "
            + (f"scale {below:.3f} failed; " if below else "")
            + f"{len(rec['probes'])} probes, {rec['mode']} ({search_samples:,} samples each), "
            f"{rec['seconds']:.0f} s"
        )
    console.print(
        styled(
            f"built [bold]{esc(net.construction)}[/]: {counts['neurons']:,} neurons "
            f"{counts['layer_widths']}, {counts['nonzero_parameters']:,} non-zero parameters "
            f"-> {esc(out)}"
        )
    )
    if isinstance(residual, dict):
        # A residual network: the stream counted once (superpose info shows every block).
        console.print(
            f"as a residual network: d = {residual['stream_width']:,}; neurons = d + "
            f"hidden = {residual['neurons']:,}"
        )
    for kind, text in notes.items():
        # Plain text: the reason quotes numbers only, but never let it be read as markup.
        err_console.print(styled(f"[yellow]{esc(kind)}:[/] {esc(text)}"), soft_wrap=True)
    if check is not None:
        style = "green" if check.passed else ("yellow" if check.kind == "none" else "red")
        console.print(styled(f"[{style}]{esc(check.describe())}[/]"), soft_wrap=True)


def _build_report(progress: Any, task: Any, show: bool) -> Any:
    """The checked build's events (superpose.pipeline.build) as a status line per attempt."""
    bar = progress.add_task("building", total=None)

    def report(event: dict[str, Any]) -> None:
        kind = event["event"]
        if kind == "build":
            scale = event["width_scale"]
            progress.update(
                bar,
                description=f"building {event['construction']} for {task.n_gates:,} gates"
                + (f" (widths x{scale:g})" if scale != 1.0 else ""),
                completed=0,
                total=None,
            )
        elif kind == "check":
            progress.update(bar, description="checking", completed=0, total=None)
        elif kind == "checked":
            progress.update(bar, completed=event["n"])
        elif kind == "result" and show and not event["check"].passed:
            c = event["check"]
            step = (
                f"patching its {c.outputs_with_error:,} wrong output(s) with private units"
                if event.get("next") == "patch"
                else "growing the widths"
            )
            progress.console.print(
                styled(
                    f"[yellow]attempt {event['attempt'] + 1}: {c.kind} check found "
                    f"{c.inputs_with_error:,} wrong input(s); {step}[/]"
                )
            )
        elif kind == "patched" and show and not event["check"].passed:
            progress.console.print(
                styled("[yellow]the patched network is still wrong; growing the widths[/]")
            )

    return report


def _search_report(progress: Any, task: Any, show: bool) -> Any:
    """The width search's events (superpose.search.search_width): one line per probe."""
    bar = progress.add_task("width search: building", total=None)

    def report(event: dict[str, Any]) -> None:
        kind = event["event"]
        if kind == "probe":
            progress.reset(
                bar,
                total=event["planned"],
                description=f"probe {event['index'] + 1}: scale {event['scale']:.3f} "
                f"widths {event['widths']}",
            )
        elif kind == "checked":
            progress.advance(bar, event["n"])
        elif kind == "final" and show:
            progress.console.print(
                styled(
                    f"scale {event['probe']['scale']:.3f}: [red]failed its final check[/] "
                    f"({esc(event['check'].describe())}); stepping up"
                ),
                soft_wrap=True,
            )
        elif kind == "result" and show:
            p = event["probe"]
            if "error" in p:
                verdict = f"[red]build refused[/]: {esc(p['error'])}"
            elif p["passed"]:
                verdict = f"[green]passed[/] {p['inputs_checked']:,} inputs"
            elif p.get("inputs_with_error") is None:
                verdict = f"[red]failed[/] ({esc(p.get('failed_on'))} certificate)"
            else:
                verdict = (
                    f"[red]failed[/]: {p['inputs_with_error']} wrong in "
                    f"{p['inputs_checked']:,} ({esc(p.get('failed_on'))})"
                )
            progress.console.print(
                styled(f"scale {p['scale']:.3f} widths {p.get('widths', '-')}: {verdict}")
            )
            progress.reset(bar, total=None, description="width search: building next probe")

    return report
