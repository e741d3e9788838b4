"""Executors a sweep runs on: serial (this process), a local process pool, or Dask."""

from __future__ import annotations

import contextlib
import multiprocessing
import os
import signal
from collections.abc import Callable, Iterator
from concurrent.futures import (
    Executor,
    Future,
    ProcessPoolExecutor,
)
from dataclasses import dataclass
from typing import Any

from superpose.errors import SuperposeError
from superpose.sweep.spec import EXECUTORS


class SerialExecutor(Executor):
    """A ``concurrent.futures`` executor that runs each call at once, in this process.

    Example:
        >>> SerialExecutor().submit(pow, 2, 10).result()
        1024
    """

    def submit(self, fn: Callable[..., Any], /, *args: Any, **kwargs: Any) -> Future[Any]:
        fut: Future[Any] = Future()
        fut.set_running_or_notify_cancel()
        try:
            value = fn(*args, **kwargs)
        except Exception as exc:  # KeyboardInterrupt propagates to the caller
            fut.set_exception(exc)
        else:
            fut.set_result(value)
        return fut


def _ignore_sigint() -> None:
    signal.signal(signal.SIGINT, signal.SIG_IGN)


@dataclass
class ExecutorHandle:
    """An executor plus how to stop it now (on Ctrl-C) and how many points it runs at once."""

    executor: Executor
    kind: str
    workers: int
    stop_now: Callable[[], None]
    close: Callable[[], None]


@contextlib.contextmanager
def open_executor(
    kind: str = "serial",
    *,
    jobs: int | None = None,
    address: str | None = None,
    connect_timeout: float = 30.0,
) -> Iterator[ExecutorHandle]:
    """A ``serial``, ``process`` or ``dask`` executor, shut down on exit.

    ``dask`` starts a ``LocalCluster`` of ``jobs`` single-threaded worker processes, or
    connects to the scheduler at ``address`` (``tcp://HOST:PORT``), waiting at most
    ``connect_timeout`` seconds for it.
    """
    if kind not in EXECUTORS:
        raise SuperposeError(f"unknown executor {kind!r} (known: {', '.join(EXECUTORS)})")
    if address is not None and kind != "dask":
        raise SuperposeError("a scheduler address needs the dask executor", cli="--executor dask")
    if jobs is not None and (isinstance(jobs, bool) or not isinstance(jobs, int) or jobs < 1):
        raise SuperposeError(f"jobs must be a positive integer, got {jobs!r}", cli="--jobs")
    if kind == "serial":
        ex = SerialExecutor()
        handle = ExecutorHandle(ex, kind, 1, lambda: None, lambda: None)
        yield handle
        return
    if kind == "process":
        from superpose.parallel import terminate_pool

        workers = jobs or os.cpu_count() or 1
        method = "fork" if "fork" in multiprocessing.get_all_start_methods() else "spawn"
        pool = ProcessPoolExecutor(
            max_workers=workers,
            mp_context=multiprocessing.get_context(method),
            initializer=_ignore_sigint,
        )
        handle = ExecutorHandle(
            pool, kind, workers, lambda: terminate_pool(pool), lambda: pool.shutdown(wait=True)
        )
        try:
            yield handle
        finally:
            handle.close()
        return
    try:
        from distributed import Client, LocalCluster
    except ImportError:
        raise SuperposeError(
            "the dask executor needs the optional extra: pip install 'superpose[dask]'"
        ) from None
    cluster = None
    try:
        if address is None:
            cluster = LocalCluster(
                n_workers=jobs or os.cpu_count() or 1,
                threads_per_worker=1,
                processes=True,
                dashboard_address=None,
            )
            client = Client(cluster)
        else:
            client = Client(address, timeout=connect_timeout)
    except OSError as exc:
        if cluster is not None:
            cluster.close()
        raise SuperposeError(f"cannot reach the dask scheduler at {address}: {exc}") from None
    try:
        workers = max(
            1,
            sum(w.get("nthreads", 1) for w in client.scheduler_info().get("workers", {}).values()),
        )
        ex = client.get_executor(pure=False)

        def stop() -> None:
            ex.shutdown(wait=False)

        handle = ExecutorHandle(ex, kind, workers, stop, lambda: ex.shutdown(wait=True))
        yield handle
    finally:
        client.close()
        if cluster is not None:
            cluster.close()
