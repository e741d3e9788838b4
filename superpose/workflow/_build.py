"""``build_to_directory``: the one call behind ``superpose build``.

``superpose build`` used to hold this sequence itself; a command line that does work cannot be
called from Python, and a second caller would repeat it. Here it is once, in the order that
loses nothing: the output directory is checked before any long work (a path that cannot be
written fails in a second, not after an hour), the memory estimate is checked before the
build (so a refused build never starts), then the network is built with its check (or found
by the width search, whose probes all check) and only then saved, atomically
(:func:`superpose.io.save_network`: a crash leaves the old directory as it was). The result
is frozen and carries the network and the check it passed, so the caller renders; nothing
here prints.

Example:
    >>> import tempfile
    >>> from superpose import families
    >>> from superpose.seeds import Seeds
    >>> task = families.generate("and2", Seeds(0).rng("task"), features=30, outputs=40)
    >>> done = build_to_directory(task, tempfile.mkdtemp() + "/net")
    >>> done.check.kind, done.check.passed
    ('exact', True)
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from superpose._atomic import check_output
from superpose.errors import SuperposeError
from superpose.io import NETWORK_FILES, save_network
from superpose.network import Network
from superpose.task import Task

if TYPE_CHECKING:
    from superpose.check import Check

_ESTIMATE_ARGS = ("task", "construction", "verify", "sparsity", "arity", "batch_size")


@dataclass(frozen=True)
class Built:
    """A network written to ``out``: the construction asked for (the network's own may be
    ``naive`` after a fallback), the check it passed, and the width search's record (with its
    running time) when it was searched."""

    network: Network
    out: Path
    construction: str
    check: Check | None
    search_record: dict[str, Any] | None = None

    @property
    def failed(self) -> bool:
        """True when the recorded check ran and found a wrong input (``fallback=False``)."""
        return self.check is not None and self.check.kind != "none" and not self.check.passed


def saved_task_bytes(task: Task) -> int:
    """A cheap lower bound on the size of the saved network: the task arrays it stores."""
    return 17 * task.n_gates + 8 * (len(task.gate_inputs) + len(task.outputs)) + (1 << 16)


def build_to_directory(
    task: Task,
    out: str | Path,
    construction: str | None = None,
    *,
    params: dict[str, Any] | None = None,
    seed: int = 0,
    check: bool = True,
    check_samples: int = 2000,
    fallback: bool = True,
    search: bool = False,
    search_samples: int = 2000,
    search_exhaustive: bool = False,
    force_memory: bool = False,
    progress: Callable[[dict[str, Any]], None] | None = None,
    out_label: str = "out",
) -> Built:
    """Build a checked network for ``task`` (or width-search it) and save it to ``out``.

    ``construction`` defaults to :func:`superpose.pipeline.choose_construction`; ``params``
    are its parameters. ``search=True`` runs :func:`superpose.search.search_width` with
    ``search_samples`` (and ``search_exhaustive``) per probe instead of
    :func:`superpose.pipeline.build`; ``progress`` receives the events of whichever runs.
    ``out_label`` names the output in error messages. Same arguments, same bytes on disk as
    ``superpose build`` with the matching options.
    """
    from superpose.check import recorded_check
    from superpose.memory import check_memory, estimate_task_memory
    from superpose.pipeline import build, choose_construction

    params = dict(params or {})
    if check_samples < 1:
        raise SuperposeError(
            f"check_samples must be >= 1, got {check_samples}", cli="--check-samples"
        )
    if search and not check:
        raise SuperposeError("a width search always checks its network", cli="drop --no-check")
    if search and search_samples < 1:
        raise SuperposeError(
            f"search_samples must be >= 1, got {search_samples}", cli="--search-samples"
        )
    if not search and (search_exhaustive or search_samples != 2000):
        raise SuperposeError(
            "search_samples / search_exhaustive need a width search", cli="--search-width"
        )
    path = check_output(
        out, option=out_label, need_bytes=saved_task_bytes(task), owned=NETWORK_FILES
    )
    name = construction or choose_construction(task)[0]
    check_memory(
        estimate_task_memory(
            task,
            name,
            verify=search or check,
            **{k: v for k, v in params.items() if k not in _ESTIMATE_ARGS},
        ),
        override=force_memory,
        what=f"this build ({name}, m={task.features:,}, m'={task.n_gates:,})",
    )
    if search:
        from superpose.search import search_width

        net, record = search_width(
            task,
            name,
            samples=search_samples,
            seed=seed,
            params=params,
            exhaustive=search_exhaustive,
            progress=progress,
        )
    else:
        record = None
        net = build(
            task,
            construction,
            seed=seed,
            check=check,
            check_samples=check_samples,
            fallback=fallback,
            progress=progress,
            **params,
        )
    save_network(net, path)
    return Built(net, path, name, recorded_check(net), record)
