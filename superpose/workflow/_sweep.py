"""``plan_sweep`` and ``sweep_to_file``: the calls behind ``superpose sweep`` (with and
without ``--dry-run``).

A sweep runs for hours and is resumed by running it again, so the results file is its state:
every finished point is a row, and the plan is the spec's points minus those rows. The file is
checked before any point runs (a results path that cannot be written fails in a second), and
an interrupt raises :class:`superpose.sweep.SweepInterrupted` with what was saved, so nothing
is lost and the caller can say how to resume.

Example:
    >>> import os, tempfile
    >>> d = tempfile.mkdtemp()
    >>> spec = os.path.join(d, "s.yaml")
    >>> _ = open(spec, "w").write("grid: {family: and2, outputs: [50, 60], construction: naive}")
    >>> plan = plan_sweep(spec, os.path.join(d, "r.sqlite"))
    >>> len(plan.spec.points), len(plan.pending)
    (2, 2)
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from superpose.errors import SuperposeError

if TYPE_CHECKING:
    from superpose.sweep import SweepSpec, SweepSummary


@dataclass(frozen=True)
class SweepPlan:
    """A sweep's points and which of them ``results`` does not hold yet (by point key)."""

    spec: SweepSpec
    results: Path
    pending: frozenset[str]

    def to_dict(self) -> dict[str, Any]:
        """The JSON ``superpose sweep --dry-run --json`` prints."""
        return {
            "sweep": self.spec.name,
            "points": [
                {
                    "index": p.index,
                    "key": p.key,
                    "params": p.params,
                    "done": p.key not in self.pending,
                }
                for p in self.spec.points
            ],
        }


def plan_sweep(
    spec_file: str | Path,
    results: str | Path = "results.sqlite",
    *,
    executor: str = "serial",
    address: str | None = None,
    jobs: int | None = None,
) -> SweepPlan:
    """Read the sweep in ``spec_file`` and the points ``results`` has finished; runs and
    writes nothing. ``executor``, ``address`` and ``jobs`` are checked as a run would check
    them, so a dry run catches what the run would refuse."""
    from superpose.sweep import load_spec, pending_points

    _executor(executor, address, jobs)
    if str(results) == "":
        raise SuperposeError("results: empty path; give a file name", cli="--results")
    spec = load_spec(spec_file)
    return SweepPlan(spec, Path(results), frozenset(p.key for p in pending_points(spec, results)))


def sweep_to_file(
    spec_file: str | Path,
    results: str | Path = "results.sqlite",
    *,
    executor: str = "serial",
    address: str | None = None,
    jobs: int | None = None,
    force_memory: bool = False,
    progress: Callable[[dict[str, Any]], None] | None = None,
    results_label: str = "results",
) -> SweepSummary:
    """Run every point of the sweep in ``spec_file`` that ``results`` has not finished.

    ``executor`` is ``serial``, ``process`` or ``dask`` (an ``address`` of a running Dask
    scheduler implies ``dask``); ``jobs`` and ``force_memory`` as in
    :func:`superpose.sweep.run_sweep`. ``progress`` receives ``{"event": "start", "sweep":
    name, "points": n}`` and then ``{"event": "point", "label": ..., "ok": ...}`` per point.
    ``results_label`` names the results file in error messages.
    """
    from superpose._atomic import check_output
    from superpose.sweep import run_sweep

    executor = _executor(executor, address, jobs)
    path = check_output(results, option=results_label, kind="file")
    plan = plan_sweep(spec_file, path)
    tell = progress or (lambda event: None)
    tell({"event": "start", "sweep": plan.spec.name, "points": len(plan.pending)})
    return run_sweep(
        plan.spec,
        path,
        executor=executor,
        address=address,
        jobs=jobs,
        force_memory=force_memory,
        progress=lambda point, outcome: tell(
            {"event": "point", "label": point.label(), "ok": outcome.ok}
        ),
    )


def _executor(executor: str, address: str | None, jobs: int | None) -> str:
    """The executor a run uses (an ``address`` implies ``dask``), after refusing an unknown
    one and ``jobs`` < 1."""
    from superpose.sweep import EXECUTORS

    if address is not None and executor == "serial":
        executor = "dask"
    if executor not in EXECUTORS:
        raise SuperposeError(
            f"executor must be one of {', '.join(EXECUTORS)}, got {executor!r}", cli="--executor"
        )
    if jobs is not None and jobs < 1:
        raise SuperposeError(f"jobs must be >= 1, got {jobs}", cli="--jobs")
    return executor
