"""A quiet Ctrl-C while the ``superpose`` command is still importing numpy, scipy and the rest."""

from __future__ import annotations

import os
import signal
import sys
import threading
from types import FrameType

_guarded = False


def _interrupted_while_starting(signum: int, frame: FrameType | None) -> None:
    sys.stderr.write("interrupted while starting; nothing was written\n")
    sys.stderr.flush()
    os._exit(130)


def guard_start_up() -> None:
    """Until :func:`end_start_up_guard`, Ctrl-C exits with 130 and one line, no traceback.

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
        _guarded = True


def end_start_up_guard() -> None:
    """Give Ctrl-C back to Python (KeyboardInterrupt), which the CLI turns into exit 130."""
    global _guarded
    if _guarded and threading.current_thread() is threading.main_thread():
        signal.signal(signal.SIGINT, signal.default_int_handler)
        _guarded = False
