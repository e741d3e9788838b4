"""``call_forked``: run a function in a forked child, killed when its time is up.

Some work is not ours to bound: a construction at a tight width can spend minutes in its
repair step, and a width search or a comparison must move on rather than wait. The only
reliable way to stop Python code from outside is a separate process, so the work runs in a
forked child (the parent's memory, no re-import) and the parent waits at most ``timeout``
seconds for its answer. The answer crosses the pipe as bytes the caller encodes (a saved
network's directory, JSON), never as a pickle. Crash behaviour, exactly: on timeout the
child is killed (SIGKILL) and joined before :class:`TimeoutError` is raised; a child that
dies without answering (killed, ``os._exit``) gives :class:`ChildFailed` with its exit code;
a :class:`~superpose.errors.SuperposeError` in the child is raised again in the parent with
its message and command-line hint; any other exception becomes :class:`ChildFailed` naming
its type. The child is always gone when ``call_forked`` returns or raises.

Example:
    >>> call_forked(lambda: b"42", timeout=30)
    b'42'
"""

from __future__ import annotations

import json
from collections.abc import Callable

from superpose.errors import SuperposeError


class ChildFailed(RuntimeError):
    """The child raised something other than SuperposeError (``exitcode`` None), or died
    without answering (``exitcode`` its exit code: negative for a signal, e.g. -9 when the
    kernel's out-of-memory killer took it)."""

    def __init__(self, message: str, exitcode: int | None = None) -> None:
        super().__init__(message)
        self.exitcode = exitcode


def call_forked(fn: Callable[[], bytes], timeout: float) -> bytes:
    """``fn()``'s bytes, computed in a forked child that is killed after ``timeout`` seconds."""
    import multiprocessing

    ctx = multiprocessing.get_context("fork")
    recv, send = ctx.Pipe(duplex=False)

    def child() -> None:
        try:
            answer = b"ok " + fn()
        except SuperposeError as exc:  # message and command-line hint, as JSON
            answer = b"error " + json.dumps([str(exc), exc.cli]).encode()
        except BaseException as exc:  # reported to the parent, never raised in the child
            answer = f"crash {type(exc).__name__}: {exc}".encode()
        send.send_bytes(answer)

    proc = ctx.Process(target=child, daemon=True)
    proc.start()
    send.close()
    try:
        if not recv.poll(timeout):
            raise TimeoutError(f"no answer within {timeout:g} s")
        try:
            kind, _, value = recv.recv_bytes().partition(b" ")
        except EOFError:
            proc.join()
            code = proc.exitcode
            raise ChildFailed(f"the child process died (exit code {code})", code) from None
    finally:
        if proc.is_alive():
            proc.kill()
        proc.join()
        recv.close()
    if kind == b"ok":
        return value
    if kind == b"error":
        message, cli = json.loads(value)
        raise SuperposeError(message, cli=cli)
    raise ChildFailed(value.decode())
