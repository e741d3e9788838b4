"""The typer application every ``superpose`` command registers itself on."""

from __future__ import annotations

import json
import sys
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

import typer
from rich.console import Console
from rich.progress import (
    BarColumn,
    MofNCompleteColumn,
    Progress,
    TextColumn,
    TimeElapsedColumn,
    TimeRemainingColumn,
)

app = typer.Typer(
    add_completion=False,
    no_args_is_help=True,
    pretty_exceptions_enable=False,
    help="Build, verify and measure ReLU networks that compute Boolean features in superposition.",
)
console = Console()
err_console = Console(stderr=True)


def print_json(data: Any) -> None:
    """Print one JSON object on stdout (the machine-readable output of every command)."""
    sys.stdout.write(json.dumps(data, indent=2, sort_keys=True, default=_json_default) + "\n")


def _json_default(value: Any) -> Any:
    import numpy as np

    if isinstance(value, np.integer):
        return int(value)
    if isinstance(value, np.floating):
        return float(value)
    if isinstance(value, np.ndarray):
        return value.tolist()
    raise TypeError(f"not JSON serialisable: {type(value).__name__}")


def new_progress(
    enabled: bool = True, remaining: bool = True, extra: tuple[Any, ...] = ()
) -> Progress:
    """The rich progress display every command uses: on stderr, gone when done."""
    columns: list[Any] = [
        TextColumn("[bold]{task.description}"),
        BarColumn(),
        MofNCompleteColumn(),
        TimeElapsedColumn(),
    ]
    if remaining:
        columns.append(TimeRemainingColumn())
    return Progress(*columns, *extra, console=err_console, transient=True, disable=not enabled)


@contextmanager
def progress_bar(description: str, total: int | None, enabled: bool = True) -> Iterator[Any]:
    """A rich progress bar on stderr; yields ``advance(n)``."""
    progress = new_progress(enabled)
    with progress:
        task_id = progress.add_task(description, total=total)

        def advance(n: int = 1) -> None:
            progress.advance(task_id, n)

        yield advance


def parse_params(items: list[str] | None) -> dict[str, Any]:
    """Parse ``KEY=VALUE`` options (values as JSON when they parse, else strings)."""
    from superpose._inputs import loads
    from superpose.errors import SuperposeError

    out: dict[str, Any] = {}
    for item in items or []:
        if "=" not in item:
            raise SuperposeError(f"--param expects KEY=VALUE, got {item!r}")
        key, raw = item.split("=", 1)
        try:
            out[key.strip()] = loads(raw, f"--param {key.strip()}")
        except json.JSONDecodeError:
            out[key.strip()] = raw
    return out
