"""Quiet signals for the ``superpose`` command.

While it is still importing numpy, scipy and the rest, Ctrl-C (SIGINT) and SIGTERM exit at
once with one line (:func:`guard_start_up`). Once it runs, SIGTERM is turned into the same
clean-up path as Ctrl-C (:func:`terminate_like_interrupt`): every ``finally`` block runs, so
temporary files and not-yet-renamed output directories are removed, and the CLI exits 143
with one line.
"""

from __future__ import annotations

import os
import signal
import sys
import threading
from types import FrameType

_guarded = False


def _interrupted_while_starting(signum: int, frame: FrameType | None) -> None:
    if signum == signal.SIGTERM:
        sys.stderr.write("terminated while starting; nothing was written\n")
        sys.stderr.flush()
        os._exit(143)
    sys.stderr.write("interrupted while starting; nothing was written\n")
    sys.stderr.flush()
    os._exit(130)


class Terminated(KeyboardInterrupt):
    """SIGTERM, raised where Ctrl-C would be, so the same clean-up runs."""


_main_pid: int | None = None
terminated = False
"""Whether SIGTERM arrived (the CLI then exits 143 instead of 130)."""


def _raise_terminated(signum: int, frame: FrameType | None) -> None:
    global terminated
    if os.getpid() != _main_pid:  # a forked worker inherited us: die as SIGTERM means
        signal.signal(signal.SIGTERM, signal.SIG_DFL)
        os.kill(os.getpid(), signal.SIGTERM)
        return
    terminated = True
    raise Terminated


def terminate_like_interrupt() -> object | None:
    """Make SIGTERM raise :class:`Terminated` (a KeyboardInterrupt) in this process.

    Only in the main thread, and only when SIGTERM has its default meaning. Returns the
    previous handler for :func:`restore_terminate`, or None when nothing was changed. Forked
    workers that inherit the handler still die by SIGTERM as usual (pools stop them that way).
    """
    global _main_pid, terminated
    if (
        threading.current_thread() is not threading.main_thread()
        or signal.getsignal(signal.SIGTERM) is not signal.SIG_DFL
    ):
        return None
    _main_pid = os.getpid()
    terminated = False
    return signal.signal(signal.SIGTERM, _raise_terminated)


def restore_terminate(previous: object | None) -> None:
    """Undo :func:`terminate_like_interrupt` (for callers of ``main()`` inside Python)."""
    if previous is not None and threading.current_thread() is threading.main_thread():
        signal.signal(signal.SIGTERM, previous)  # type: ignore[arg-type]


def guard_start_up() -> None:
    """Until :func:`end_start_up_guard`, Ctrl-C exits with 130 and one line, no traceback
    (SIGTERM: 143).

    Only in the main thread of the main process, and only when Ctrl-C has its default meaning
    (a shell that runs us in the background makes it ignored, and that must stay so).
    """
    global _guarded
    import multiprocessing

    if (
        multiprocessing.parent_process() is None  # a worker re-runs with our argv: not it
        and threading.current_thread() is threading.main_thread()
        and signal.getsignal(signal.SIGINT) is signal.default_int_handler
    ):
        signal.signal(signal.SIGINT, _interrupted_while_starting)
        if signal.getsignal(signal.SIGTERM) is signal.SIG_DFL:
            signal.signal(signal.SIGTERM, _interrupted_while_starting)
        _guarded = True


def end_start_up_guard() -> None:
    """Give Ctrl-C back to Python (KeyboardInterrupt), which the CLI turns into exit 130."""
    global _guarded
    if _guarded and threading.current_thread() is threading.main_thread():
        signal.signal(signal.SIGINT, signal.default_int_handler)
        if signal.getsignal(signal.SIGTERM) is _interrupted_while_starting:
            signal.signal(signal.SIGTERM, signal.SIG_DFL)
        _guarded = False
