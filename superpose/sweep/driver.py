"""Running a sweep: pending points onto an executor, outcomes into the store, Ctrl-C keeps what finished."""

from __future__ import annotations

import contextlib
import os
import time
from collections.abc import Callable
from concurrent.futures import (
    FIRST_COMPLETED,
    BrokenExecutor,
    Executor,
    Future,
    wait,
)
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from superpose.errors import SuperposeError
from superpose.sweep.executors import ExecutorHandle, open_executor
from superpose.sweep.point import PointOutcome, run_point
from superpose.sweep.spec import DEFAULT_RESULTS, SweepPoint, SweepSpec
from superpose.sweep.store import ResultStore


@dataclass
class SweepSummary:
    """What a sweep run did."""

    total: int
    skipped: int
    computed: int = 0
    errors: int = 0
    results: str = ""
    seconds: float = 0.0
    error_messages: list[str] = field(default_factory=list)

    def to_dict(self) -> dict[str, Any]:
        return {
            "total": self.total,
            "skipped": self.skipped,
            "computed": self.computed,
            "errors": self.errors,
            "results": self.results,
            "seconds": self.seconds,
            "error_messages": self.error_messages[:10],
        }


class SweepInterrupted(KeyboardInterrupt):
    """Ctrl-C during a sweep; carries how many points were saved."""

    def __init__(self, summary: SweepSummary) -> None:
        super().__init__(f"interrupted: {summary.computed + summary.errors} points saved this run")
        self.summary = summary


def pending_points(spec: SweepSpec, results: str | os.PathLike[str]) -> list[SweepPoint]:
    """The points of ``spec`` not yet finished in ``results`` (all of them if it does not exist)."""
    if not Path(results).exists():
        return list(spec.points)
    with ResultStore(results) as store:
        done = store.finished_keys()
    return [p for p in spec.points if p.key not in done]


def run_sweep(
    spec: SweepSpec,
    results: str | os.PathLike[str] = DEFAULT_RESULTS,
    *,
    executor: str | Executor = "serial",
    address: str | None = None,
    jobs: int | None = None,
    force_memory: bool = False,
    connect_timeout: float = 30.0,
    progress: Callable[[SweepPoint, PointOutcome], None] | None = None,
) -> SweepSummary:
    """Run every unfinished point of ``spec``, storing each in ``results`` as it finishes.

    ``executor`` is ``serial``, ``process``, ``dask`` or any ``concurrent.futures.Executor``.
    With ``serial``, ``jobs`` > 1 verifies each point on that many processes; otherwise it is
    the number of workers. ``progress(point, outcome)`` (a :class:`PointOutcome`) is called after each stored point.
    Before building, each point's memory is estimated (:mod:`superpose.memory`) and the point
    is refused (stored as an error) above the limit: the spec's ``memory_limit``, else 80% of
    the worker machine's memory (shared among local process workers); ``force_memory``
    skips the check.
    Ctrl-C stops at once (running points are abandoned, finished ones are kept) and raises
    :class:`SweepInterrupted`.
    """
    t0 = time.perf_counter()
    store = ResultStore(results)
    summary = SweepSummary(total=len(spec.points), skipped=0, results=str(results))
    try:
        store.record_sweep(spec)
        done = store.finished_keys()
        todo = [p for p in spec.points if p.key not in done]
        summary.skipped = len(spec.points) - len(todo)
        if not todo:
            return summary
        if isinstance(executor, Executor):
            ctx: Any = contextlib.nullcontext(
                ExecutorHandle(
                    executor,
                    "custom",
                    jobs or 2,
                    lambda: executor.shutdown(wait=False, cancel_futures=True),
                    lambda: None,
                )
            )
        else:
            ctx = open_executor(
                executor, jobs=jobs, address=address, connect_timeout=connect_timeout
            )
        with ctx as handle:
            inner_jobs = (jobs or 1) if handle.kind == "serial" else 1
            _drive(spec, todo, handle, store, summary, force_memory, inner_jobs, progress)
    finally:
        store.close()
        summary.seconds = time.perf_counter() - t0
    return summary


def _drive(
    spec: SweepSpec,
    todo: list[SweepPoint],
    handle: ExecutorHandle,
    store: ResultStore,
    summary: SweepSummary,
    force_memory: bool,
    inner_jobs: int,
    progress: Callable[[SweepPoint, PointOutcome], None] | None,
) -> None:
    window = 1 if handle.kind == "serial" else 2 * handle.workers
    memory_limit = spec.memory_limit
    if memory_limit is None and handle.kind == "process":
        from superpose.memory import default_limit_bytes

        # Local workers share this machine: each point gets its share of the limit.
        memory_limit = default_limit_bytes() // handle.workers
    pending: dict[Future[Any], SweepPoint] = {}
    queue = iter(todo)

    def fill() -> None:
        while len(pending) < window:
            point = next(queue, None)
            if point is None:
                return
            fut = handle.executor.submit(
                run_point,
                point.params,
                spec.measure,
                point.seed_root,
                point.seed_path,
                memory_limit=memory_limit,
                force_memory=force_memory,
                jobs=inner_jobs,
            )
            pending[fut] = point

    def store_outcome(point: SweepPoint, outcome: PointOutcome) -> None:
        store.put(spec.name, point, spec.measure, outcome)
        if outcome.ok:
            summary.computed += 1
        else:
            summary.errors += 1
            summary.error_messages.append(f"{point.label()}: {str(outcome.error).splitlines()[0]}")
        if progress is not None:
            progress(point, outcome)

    try:
        fill()
        while pending:
            done, _ = wait(pending, timeout=0.5, return_when=FIRST_COMPLETED)
            for fut in done:
                point = pending.pop(fut)
                try:
                    outcome = fut.result()
                except BrokenExecutor as exc:  # a worker process died (killed, out of memory)
                    with contextlib.suppress(Exception):
                        handle.stop_now()
                    raise SuperposeError(
                        f"a worker died while running {point.label()} ({type(exc).__name__}); "
                        f"{summary.computed + summary.errors} points saved this run to {summary.results}; "
                        "rerun the same command to resume"
                    ) from None
                except Exception as exc:  # the task failed outside run_point (e.g. pickling)
                    outcome = PointOutcome(
                        "error", {}, error=f"worker failed: {type(exc).__name__}: {exc}"
                    )
                store_outcome(point, outcome)
            fill()
    except KeyboardInterrupt:
        for fut in pending:
            fut.cancel()
        with contextlib.suppress(Exception):
            handle.stop_now()
        raise SweepInterrupted(summary) from None
