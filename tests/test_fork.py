"""``superpose._fork.call_forked``: the answer, or exactly one of its stated failures."""

from __future__ import annotations

import os
import time

import pytest

from superpose._fork import ChildFailed, call_forked
from superpose.errors import SuperposeError


def test_answer_crosses_as_bytes_and_the_child_sees_the_parents_memory():
    table = {"x": 41}
    assert call_forked(lambda: str(table["x"] + 1).encode(), 30) == b"42"


def test_timeout_kills_the_child(tmp_path):
    pid_file = tmp_path / "pid"

    def slow() -> bytes:
        pid_file.write_text(str(os.getpid()))
        time.sleep(30)
        return b"late"

    with pytest.raises(TimeoutError, match="no answer within 5 s"):
        call_forked(slow, 5)
    with pytest.raises(ProcessLookupError):  # killed and reaped before the raise
        os.kill(int(pid_file.read_text()), 0)


def test_failures_are_told_apart():
    with pytest.raises(SuperposeError, match="^bad width$") as refused:
        call_forked(lambda: (_ for _ in ()).throw(SuperposeError("bad width", cli="--x")), 30)
    assert refused.value.cli == "--x"
    with pytest.raises(ChildFailed, match="ZeroDivisionError") as crash:
        call_forked(lambda: bytes(1 // 0), 30)
    assert crash.value.exitcode is None
    with pytest.raises(ChildFailed, match="died") as died:
        call_forked(lambda: os._exit(3), 30)
    assert died.value.exitcode == 3


def test_search_probe_reports_a_killed_build_as_a_failed_probe():
    """A build killed from outside (the out-of-memory killer) is a probe that failed, not a
    crash of the whole search."""
    import signal

    from superpose.search import _build

    with pytest.raises(SuperposeError, match=r"build process died \(exit code -9\)"):
        _build(lambda: os.kill(os.getpid(), signal.SIGKILL), 30)
