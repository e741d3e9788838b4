"""Command-line interface: ``superpose build | verify | info | demo | bounds | capacity | ...``.

Every user-facing error is a :class:`~superpose.errors.SuperposeError`, printed as one line
with exit code 2; Ctrl-C exits with 130 after saying what was saved.
"""

from __future__ import annotations

import importlib
import sys

import typer

from superpose.cli._app import app, err_console
from superpose.errors import SuperposeError

_COMMAND_MODULES = (
    "build_cmd",
    "verify_cmd",
    "info_cmd",
    "demo_cmd",
    "bounds_cmd",
    "capacity_cmd",
    "compare_cmd",
    "sweep_cmd",
    "report_cmd",
)

for _name in _COMMAND_MODULES:
    try:
        importlib.import_module(f"superpose.cli.{_name}")
    except ModuleNotFoundError as _exc:  # a command whose module does not exist yet
        if _exc.name != f"superpose.cli.{_name}":
            raise


def main(argv: list[str] | None = None) -> int:
    """Entry point of the ``superpose`` console script."""
    try:
        result = app(args=argv, standalone_mode=False, prog_name="superpose")
    except SuperposeError as exc:
        err_console.print(f"[bold red]error:[/] {exc}", highlight=False, soft_wrap=True)
        return _exit(2, argv)
    except (typer.Abort, KeyboardInterrupt):
        err_console.print(
            "interrupted: files already written are complete; nothing partial was left"
        )
        return _exit(130, argv)
    except typer.Exit as exc:
        return _exit(int(getattr(exc, "exit_code", getattr(exc, "code", 0)) or 0), argv)
    except typer.TyperException as exc:
        exc.show()
        return _exit(int(getattr(exc, "exit_code", 2)), argv)
    return _exit(result if isinstance(result, int) else 0, argv)


def _exit(code: int, argv: list[str] | None) -> int:
    if argv is None:
        sys.exit(code)
    return code


__all__ = ["app", "main"]
