"""Verification on several cores: fixed chunks, one seed per chunk, merged in chunk order.

:func:`verify_parallel` splits a run into chunks whose sizes and seeds do not depend on the
number of workers: sampled modes get chunks of ``chunk_size`` inputs, each with its own seed
spawned from one :class:`numpy.random.SeedSequence`; exhaustive runs get chunks of whole
batches of the exhaustive enumeration. Chunks run in a process pool (``fork``: the workers
inherit the network, nothing is pickled per task; elsewhere the network is saved once to a
temporary directory and each worker loads it) and the reports are merged in chunk order, so
``jobs=1`` and ``jobs=4`` give identical reports.

Example:
    >>> import numpy as np
    >>> from superpose import build, families
    >>> net = build(families.pairs(40, 100, np.random.default_rng(0)), "naive")
    >>> a = verify_parallel(net, "random", 600, rng_seed=1, jobs=1, chunk_size=200)
    >>> b = verify_parallel(net, "random", 600, rng_seed=1, jobs=2, chunk_size=200)
    >>> a.to_dict() == b.to_dict(), a.inputs_checked
    (True, 600)
"""

from __future__ import annotations

import itertools
import math
import multiprocessing
import os
import signal
import tempfile
from collections.abc import Callable
from concurrent.futures import FIRST_COMPLETED, Future, ProcessPoolExecutor, wait
from dataclasses import dataclass
from typing import Any

import numpy as np

from superpose.codes import BloomCode
from superpose.errors import SuperposeError
from superpose.network import Network
from superpose.seeds import Seeds
from superpose.task import n_sparse_inputs
from superpose.verification import (
    DEFAULT_MAX_EXHAUSTIVE,
    VerificationReport,
    check_batch,
    checked_total,
    exhaustive_inputs,
    skipped_checks,
    verify,
)

DEFAULT_CHUNK = 4096
EXHAUSTIVE_BATCH = 4096
EXHAUSTIVE_BATCHES_PER_CHUNK = 16

_WORKER_NET: Network | None = None


@dataclass(frozen=True)
class Chunk:
    """One unit of work: ``samples`` inputs of ``mode`` with its own seed, or exhaustive batches."""

    index: int
    mode: str
    samples: int = 0
    seed: np.random.SeedSequence | None = None
    first_batch: int = 0
    n_batches: int = 0


def plan_chunks(
    net: Network,
    mode: str,
    samples: int,
    rng_seed: int | np.random.SeedSequence,
    *,
    chunk_size: int = DEFAULT_CHUNK,
    max_exhaustive: int = DEFAULT_MAX_EXHAUSTIVE,
) -> list[Chunk]:
    """The chunks of a run, independent of the number of workers.

    Random and targeted chunks each get a child of ``rng_seed`` (an integer: its ``verify`` stream, :class:`superpose.seeds.Seeds`) (random chunks
    first, then targeted ones, in order).

    Example:
        >>> import numpy as np
        >>> from superpose import build, families
        >>> net = build(families.pairs(20, 30, np.random.default_rng(0)), "naive")
        >>> [(c.mode, c.samples) for c in plan_chunks(net, "random", 5000, 0, chunk_size=2048)]
        [('random', 2048), ('random', 2048), ('random', 904)]
    """
    total = checked_total(net.task, mode, max_exhaustive)
    if samples < 0:
        raise SuperposeError(f"samples must be >= 0, got {samples}")
    if chunk_size < 1:
        raise SuperposeError(f"chunk size must be >= 1, got {chunk_size}")
    chunks: list[Chunk] = []
    if mode in ("exhaustive", "all") and total <= max_exhaustive:
        n_batches = math.ceil(total / EXHAUSTIVE_BATCH)
        for first in range(0, n_batches, EXHAUSTIVE_BATCHES_PER_CHUNK):
            chunks.append(
                Chunk(
                    len(chunks),
                    "exhaustive",
                    first_batch=first,
                    n_batches=min(EXHAUSTIVE_BATCHES_PER_CHUNK, n_batches - first),
                )
            )
    sampled = [m for m in ("random", "targeted") if mode in (m, "all")]
    sizes = [chunk_size] * (samples // chunk_size) + (
        [samples % chunk_size] * (samples % chunk_size > 0)
    )
    root = (
        rng_seed
        if isinstance(rng_seed, np.random.SeedSequence)
        else Seeds(rng_seed).sequence("verify")
    )
    seeds = root.spawn(len(sizes) * len(sampled))
    for k, name in enumerate(sampled):
        for i, size in enumerate(sizes):
            chunks.append(Chunk(len(chunks), name, size, seeds[k * len(sizes) + i]))
    return chunks


def run_chunk(net: Network, chunk: Chunk) -> VerificationReport:
    """Verify one chunk (in this process).

    Example:
        >>> import numpy as np
        >>> from superpose import build, families
        >>> net = build(families.pairs(20, 30, np.random.default_rng(0)), "naive")
        >>> run_chunk(net, Chunk(0, "random", 64, np.random.SeedSequence(0))).inputs_checked
        64
    """
    if chunk.mode == "exhaustive":
        task = net.task
        report = VerificationReport("exhaustive")
        batches = itertools.islice(
            exhaustive_inputs(task.features, task.sparsity, EXHAUSTIVE_BATCH),
            chunk.first_batch,
            chunk.first_batch + chunk.n_batches,
        )
        for batch in batches:
            report.merge(check_batch(net, batch, "exhaustive"))
        return report
    rng = np.random.default_rng(chunk.seed)
    return verify(net, chunk.mode, chunk.samples, rng)


def _chunk_inputs(net: Network, chunk: Chunk) -> int:
    if chunk.mode != "exhaustive":
        return chunk.samples
    total = n_sparse_inputs(net.task.features, net.task.sparsity)
    start = chunk.first_batch * EXHAUSTIVE_BATCH
    return max(0, min(total, start + chunk.n_batches * EXHAUSTIVE_BATCH) - start)


def merge_reports(mode: str, parts: list[tuple[Chunk, VerificationReport]]) -> VerificationReport:
    """One report from chunk reports, with the per-mode summary :func:`verify` gives."""
    by_mode: dict[str, VerificationReport] = {}
    for chunk, rep in parts:
        by_mode.setdefault(chunk.mode, VerificationReport(chunk.mode)).merge(rep)
    report = VerificationReport(mode)
    for name in ("exhaustive", "random", "targeted"):
        sub = by_mode.get(name)
        if sub is None:
            continue
        report.add_mode(name, sub)
    return report


def _warm(net: Network) -> None:
    """Compute the cached forms of the weights and codes once, so forked workers share them."""
    for layer in net.layers:
        layer.warm()  # also computes layer.integral()
        layer.abs_weight()
    code = net.output_code
    if isinstance(code, BloomCode):
        _ = code.anchors_t
        _ = code.column_counts
        _ = code.membership_t_counts  # the counted decode (most neurons on)
        if not code.slack:
            _ = code.anchor_next


def _init_worker(net: Network | None, directory: str | None) -> None:
    global _WORKER_NET
    signal.signal(signal.SIGINT, signal.SIG_IGN)  # the parent handles Ctrl-C
    if net is None:
        from superpose.io import load_network

        assert directory is not None
        net = load_network(directory)
    _WORKER_NET = net


def _worker_run(chunk: Chunk) -> VerificationReport:
    assert _WORKER_NET is not None, "worker not initialised"
    return run_chunk(_WORKER_NET, chunk)


def _start_method() -> str:
    return "fork" if "fork" in multiprocessing.get_all_start_methods() else "spawn"


def verify_parallel(
    net: Network,
    mode: str = "all",
    samples: int = 10_000,
    rng_seed: int | np.random.SeedSequence = 0,
    jobs: int = 1,
    *,
    chunk_size: int = DEFAULT_CHUNK,
    max_exhaustive: int = DEFAULT_MAX_EXHAUSTIVE,
    progress: Callable[[int], None] | None = None,
    network_dir: str | os.PathLike[str] | None = None,
) -> VerificationReport:
    """Verify ``net`` on ``jobs`` processes; the report does not depend on ``jobs``.

    ``rng_seed`` seeds one :class:`~numpy.random.SeedSequence` whose children seed the chunks.
    ``network_dir`` (a saved copy of ``net``) lets workers load the network instead of
    inheriting it when ``fork`` is unavailable. ``progress(n)`` is called as chunks finish.

    Example:
        >>> import numpy as np
        >>> from superpose import build, families
        >>> net = build(families.pairs(30, 60, np.random.default_rng(0)), "naive")
        >>> verify_parallel(net, "all", 300, rng_seed=0, jobs=1).by_mode.keys()
        dict_keys(['exhaustive', 'random', 'targeted'])
    """
    if isinstance(jobs, bool) or not isinstance(jobs, int) or jobs < 1:
        raise SuperposeError(f"jobs must be a positive integer, got {jobs!r}")
    chunks = plan_chunks(
        net, mode, samples, rng_seed, chunk_size=chunk_size, max_exhaustive=max_exhaustive
    )
    results: list[VerificationReport | None] = [None] * len(chunks)
    skipped = skipped_checks(net, mode, max_exhaustive)
    if jobs == 1 or len(chunks) <= 1:
        for chunk in chunks:
            results[chunk.index] = run_chunk(net, chunk)
            if progress is not None:
                progress(_chunk_inputs(net, chunk))
        report = merge_reports(
            mode, [(c, r) for c, r in zip(chunks, results, strict=True) if r is not None]
        )
        report.skipped = skipped
        return report
    _warm(net)
    method = _start_method()
    tmp: tempfile.TemporaryDirectory[str] | None = None
    if method == "fork":
        initargs: tuple[Any, ...] = (net, None)
    else:  # pragma: no cover - platforms without fork
        if network_dir is None:
            from superpose.io import save_network

            tmp = tempfile.TemporaryDirectory(prefix="superpose-verify-")
            network_dir = save_network(net, tmp.name)
        initargs = (None, str(network_dir))
    pool = ProcessPoolExecutor(
        max_workers=min(jobs, len(chunks)),
        mp_context=multiprocessing.get_context(method),
        initializer=_init_worker,
        initargs=initargs,
    )
    try:
        pending: dict[Future[VerificationReport], Chunk] = {}
        todo = iter(chunks)
        window = 2 * jobs

        def fill() -> None:
            while len(pending) < window:
                chunk = next(todo, None)
                if chunk is None:
                    return
                pending[pool.submit(_worker_run, chunk)] = chunk

        fill()
        while pending:
            done, _ = wait(pending, return_when=FIRST_COMPLETED)
            for fut in done:
                chunk = pending.pop(fut)
                results[chunk.index] = fut.result()
                if progress is not None:
                    progress(_chunk_inputs(net, chunk))
            fill()
    except BaseException:
        terminate_pool(pool)
        raise
    else:
        pool.shutdown(wait=True)
    finally:
        if tmp is not None:
            tmp.cleanup()
    report = merge_reports(
        mode, [(c, r) for c, r in zip(chunks, results, strict=True) if r is not None]
    )
    report.skipped = skipped
    return report


def terminate_pool(pool: ProcessPoolExecutor) -> None:
    """Stop a process pool now: cancel queued work, terminate its workers, retire its thread.

    ``shutdown(wait=False)`` leaves the pool's manager thread running; at interpreter exit
    ``concurrent.futures`` then wakes it through a pipe the thread may be closing at that
    moment, and Python 3.11 prints a 17-line "Exception ignored ... Bad file descriptor"
    after our one-line "interrupted" message (Ctrl-C of ``verify --jobs 2``). So the thread
    is joined once the workers are gone (it exits when it sees them die) and its wake-up
    entry is dropped, leaving the exit hook nothing to wake.
    """
    processes = list(getattr(pool, "_processes", {}).values())
    manager = getattr(pool, "_executor_manager_thread", None)
    pool.shutdown(wait=False, cancel_futures=True)
    for proc in processes:
        if proc.is_alive():
            proc.terminate()
    for proc in processes:
        proc.join(timeout=5)
    if manager is not None:
        manager.join(timeout=5)
        if not manager.is_alive():
            from concurrent.futures import process as futures_process

            getattr(futures_process, "_threads_wakeups", {}).pop(manager, None)


__all__ = [
    "Chunk",
    "merge_reports",
    "plan_chunks",
    "run_chunk",
    "terminate_pool",
    "verify_parallel",
]
