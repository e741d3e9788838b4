"""The typer application every ``superpose`` command registers itself on."""

from __future__ import annotations

import json
import math
import sys
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import Any

import typer
from rich.console import Console
from rich.markup import escape
from rich.progress import (
    BarColumn,
    MofNCompleteColumn,
    Progress,
    TextColumn,
    TimeElapsedColumn,
    TimeRemainingColumn,
)
from rich.text import Text

app = typer.Typer(
    add_completion=False,
    no_args_is_help=True,
    pretty_exceptions_enable=False,
    help="Build, verify and measure ReLU networks that compute Boolean features in superposition.",
)
# Terminal control characters (C0 but tab and newline, DEL, C1, bidirectional overrides) as
# visible escapes: text from files and paths must never move the cursor, set a title or a link.
_CONTROL = {
    c: f"\\x{c:02x}" if c < 0x100 else f"\\u{c:04x}"
    for c in (
        *range(0x20),
        0x7F,
        *range(0x80, 0xA0),
        *range(0x202A, 0x202F),
        *range(0x2066, 0x206A),
    )
    if c not in (0x09, 0x0A)
}


def printable(value: object) -> str:
    r"""``str(value)`` with terminal control characters shown as escapes.

    Example:
        >>> print(printable("a\x1b]8;;http://x\x07b"))
        a\x1b]8;;http://x\x07b
    """
    return str(value).translate(_CONTROL)


def esc(value: object) -> str:
    r"""``value`` as text to put inside our own markup: control characters shown, tags escaped.

    Example:
        >>> print(esc("x[/]y.weight"))
        x\[/]y.weight
    """
    return escape(printable(value))


def styled(text: str) -> Text:
    """Our own markup (``[red]...[/]``) rendered; every value inside must come through
    :func:`esc`."""
    return Text.from_markup(text)


class _PlainConsole(Console):
    """A console that never reads markup in what it prints and shows control characters as
    escapes: tables, titles and messages quote file contents and paths. Styled lines are
    :func:`styled` Text."""

    def render_str(self, text: str, **kwargs: Any) -> Text:
        return super().render_str(printable(text), **kwargs)


console = _PlainConsole(markup=False, highlight=False, emoji=False)
err_console = _PlainConsole(stderr=True, markup=False, highlight=False, emoji=False)


def print_json(data: Any) -> None:
    """Print one JSON object on stdout (the machine-readable output of every command)."""
    from superpose._numeric import json_default

    sys.stdout.write(json.dumps(data, indent=2, sort_keys=True, default=json_default) + "\n")


def new_progress(
    enabled: bool = True, remaining: bool = True, extra: tuple[Any, ...] = ()
) -> Progress:
    """The rich progress display every command uses: on stderr, gone when done."""
    columns: list[Any] = [
        TextColumn("{task.description}", style="bold", markup=False),
        BarColumn(),
        MofNCompleteColumn(),
        TimeElapsedColumn(),
    ]
    if remaining:
        columns.append(TimeRemainingColumn())
    return Progress(*columns, *extra, console=err_console, transient=True, disable=not enabled)


class _Bar:
    """One task of a rich progress display: ``advance(n)``, and ``set_total(n)`` when the total
    is known only once the work has started."""

    def __init__(self, progress: Progress, task_id: Any) -> None:
        self._progress, self._task = progress, task_id

    def advance(self, n: int = 1) -> None:
        self._progress.advance(self._task, n)

    def set_total(self, total: int) -> None:
        self._progress.update(self._task, total=total)


@contextmanager
def progress_bar(description: str, total: int | None, enabled: bool = True) -> Iterator[_Bar]:
    """A rich progress bar on stderr; yields a :class:`_Bar` (``advance``, ``set_total``)."""
    progress = new_progress(enabled)
    with progress:
        yield _Bar(progress, progress.add_task(description, total=total))


def int_range(option: str, low: int, high: int | None = None) -> Callable[[int | None], int | None]:
    """A typer option callback: the value, or one line (exit 2) when it is outside low..high.

    Example:
        >>> int_range("--seed", 0)(-1)
        Traceback (most recent call last):
        ...
        superpose.errors.SuperposeError: --seed must be >= 0, got -1
    """
    from superpose.errors import SuperposeError

    def check(value: int | None) -> int | None:
        if value is not None and (value < low or (high is not None and value > high)):
            bound = f">= {low}" if high is None else f"in {low}..{high:,}"
            raise SuperposeError(f"{option} must be {bound}, got {value}")
        return value

    return check


def reserved_param_names() -> frozenset[str]:
    """Keyword arguments of the build functions themselves (``seed``, ``rng``, ``task``...):
    set by the command, never a construction parameter."""
    import inspect

    from superpose import constructions, pipeline

    return frozenset(
        p.name
        for fn in (pipeline.build, constructions.build)
        for p in inspect.signature(fn).parameters.values()
        if p.kind is not p.VAR_KEYWORD
    )


def _non_finite(value: Any) -> float | None:
    """The first infinite or NaN number inside a parsed JSON value, if any."""
    if isinstance(value, float) and not math.isfinite(value):
        return value
    items = value.values() if isinstance(value, dict) else value if isinstance(value, list) else ()
    for item in items:
        found = _non_finite(item)
        if found is not None:
            return found
    return None


def parse_params(items: list[str] | None, option: str = "--param") -> dict[str, Any]:
    """Parse ``KEY=VALUE`` options (values as JSON when they parse, else strings).

    Refused in one line: a missing ``=`` or key, a key the command sets itself
    (:func:`reserved_param_names`), an integer beyond the digit limit, and a number that is not
    finite (``1e400``, ``Infinity``, ``NaN``).

    Example:
        >>> parse_params(["ell=3", "kind=gaussian", "width_scale=1.5"])
        {'ell': 3, 'kind': 'gaussian', 'width_scale': 1.5}
        >>> parse_params(["seed=1"])
        Traceback (most recent call last):
        ...
        superpose.errors.SuperposeError: --param seed: not a construction parameter ('seed' is set by the command itself; see --help)
    """
    from superpose._inputs import loads
    from superpose.errors import SuperposeError

    reserved = reserved_param_names()
    out: dict[str, Any] = {}
    for item in items or []:
        if "=" not in item:
            raise SuperposeError(f"{option} expects KEY=VALUE, got {item!r}")
        key, raw = item.split("=", 1)
        key = key.strip()
        if not key:
            raise SuperposeError(f"{option} expects KEY=VALUE, got {item!r} (no key)")
        if key in reserved:
            raise SuperposeError(
                f"{option} {key}: not a construction parameter "
                f"({key!r} is set by the command itself; see --help)"
            )
        try:
            value = loads(raw, f"{option} {key}")
        except json.JSONDecodeError:
            value = raw
        bad = _non_finite(value)
        if bad is not None:
            raise SuperposeError(f"{option} {key}: numbers must be finite, got {bad}")
        out[key] = value
    return out
