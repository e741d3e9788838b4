"""Command-line interface: ``superpose build | verify | info | demo | bounds | capacity | ...``.

Every user-facing error is a :class:`~superpose.errors.SuperposeError`, printed as one line
with exit code 2; Ctrl-C exits with 130 after saying what was saved, SIGTERM likewise with 143.
"""

from __future__ import annotations

import functools
import importlib
import sys

import typer

from superpose import _startup
from superpose._startup import end_start_up_guard
from superpose.cli._app import app, err_console, esc, styled
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
    "export_cmd",
)

for _name in _COMMAND_MODULES:
    try:
        importlib.import_module(f"superpose.cli.{_name}")
    except ModuleNotFoundError as _exc:  # a command whose module does not exist yet
        if _exc.name != f"superpose.cli.{_name}":
            raise


_started = [False]
"""Whether the command's own code began (set by :func:`_carry_interrupt`'s wrapper)."""


class _Interrupted(BaseException):
    """Ctrl-C carried past typer, which would turn it into a silent exit code 130."""


def _carry_interrupt(callback):
    @functools.wraps(callback)
    def wrapper(*args, **kwargs):
        _started[0] = True
        try:
            return callback(*args, **kwargs)
        except KeyboardInterrupt:
            raise _Interrupted from None

    return wrapper


for _info in app.registered_commands:
    _info.callback = _carry_interrupt(_info.callback)

end_start_up_guard()


def main(argv: list[str] | None = None) -> int:
    """Entry point of the ``superpose`` console script."""
    previous = _startup.terminate_like_interrupt()
    try:
        return _main(argv)
    finally:
        _startup.restore_terminate(previous)


def _main(argv: list[str] | None) -> int:
    _started[0] = False
    try:
        result = app(args=argv, standalone_mode=False, prog_name="superpose")
    except SuperposeError as exc:
        # The message may quote file contents or paths: print it as text, never as markup,
        # and on one line.
        message = exc.for_command_line()
        err_console.print(styled(f"[bold red]error:[/] {esc(message)}"), soft_wrap=True)
        return _exit(2, argv)
    except MemoryError:
        err_console.print(
            styled(
                "[bold red]error:[/] out of memory; try a smaller size, or lower "
                "SUPERPOSE_MEMORY_LIMIT so the estimate refuses it up front"
            ),
            soft_wrap=True,
        )
        return _exit(2, argv)
    except (typer.Abort, KeyboardInterrupt, _Interrupted):
        return _exit(_interrupted(), argv)
    except OSError as exc:
        # A write that failed past the pre-flight checks (e.g. the disk filled up): one line.
        where = f"{exc.filename}: " if exc.filename else ""
        err_console.print(
            styled(f"[bold red]error:[/] {esc(where)}{esc(exc.strerror or str(exc))}"),
            soft_wrap=True,
        )
        return _exit(2, argv)
    except typer.Exit as exc:
        code = int(getattr(exc, "exit_code", getattr(exc, "code", 0)) or 0)
        return _exit(143 if code == 130 and _startup.terminated else code, argv)
    except typer.TyperException as exc:
        exc.show()
        return _exit(int(getattr(exc, "exit_code", 2)), argv)
    code = result if isinstance(result, int) else 0
    if code == 130 and not _started[0]:
        # Ctrl-C while typer parsed the options, before the command began: typer returns a
        # silent 130; say what was saved like every other interrupt.
        return _exit(_interrupted(), argv)
    return _exit(143 if code == 130 and _startup.terminated else code, argv)


def _interrupted() -> int:
    if _startup.terminated:
        err_console.print(
            "terminated: files already written are complete; nothing partial was left"
        )
        return 143
    err_console.print("interrupted: files already written are complete; nothing partial was left")
    return 130


def _exit(code: int, argv: list[str] | None) -> int:
    if argv is None:
        sys.exit(code)
    return code


__all__ = ["app", "main"]
