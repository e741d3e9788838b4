"""``verify_directory``: the one call behind ``superpose verify``.

Verifying a saved network is three checks that answer different questions, run in the order
of their strength: the exact certificate (every input with at most ``s`` active features, by
proof, where the network's structure has one), then inputs run through the network
(exhaustive up to ``max_exhaustive`` inputs, random and targeted samples), then, for a deep
network, every stage decoded against the truth of its own nodes. What could not run is said,
with why, in the report's ``skipped`` list; nothing is skipped silently. The result is frozen
and ``passed`` is the verdict of every check that ran, so the caller renders it and nothing
here prints.

Example:
    >>> import tempfile
    >>> from superpose.workflow import build_to_directory, task_from_options
    >>> task = task_from_options(family="and2", features=30, outputs=40)
    >>> d = build_to_directory(task, tempfile.mkdtemp() + "/net").out
    >>> done = verify_directory(d, samples=200)
    >>> done.passed, done.exact.kind, done.report.false_positives
    (True, 'exact', 0)
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from superpose.errors import SuperposeError
from superpose.network import Network
from superpose.verification import DEFAULT_MAX_EXHAUSTIVE

if TYPE_CHECKING:
    from superpose.check import Check
    from superpose.stage_check import LevelReport
    from superpose.verification import VerificationReport


@dataclass(frozen=True)
class Verified:
    """What ``verify_directory`` found: the sampled / exhaustive report (mode ``exact``: an
    empty one), the exact certificate's verdict when it ran, and the per-level report when
    asked for."""

    network: Network
    report: VerificationReport
    exact: Check | None = None
    levels: LevelReport | None = None

    @property
    def passed(self) -> bool:
        """No check that ran found a wrong input."""
        return self.report.passed and (self.exact is None or self.exact.passed)

    def to_dict(self) -> dict[str, Any]:
        """The JSON ``superpose verify --json`` prints."""
        out = self.report.to_dict()
        out["passed"] = self.passed
        out["exact"] = self.exact.to_dict() if self.exact is not None else None
        if self.levels is not None:
            out["levels"] = self.levels.to_dict()
        return out


def verify_directory(
    directory: str | Path,
    mode: str = "all",
    *,
    samples: int = 10_000,
    seed: int = 0,
    max_exhaustive: int = DEFAULT_MAX_EXHAUSTIVE,
    jobs: int = 1,
    levels: bool = False,
    progress: Callable[[dict[str, Any]], None] | None = None,
) -> Verified:
    """Check the network saved in ``directory`` against its task's ground truth.

    ``mode``: ``exact`` (the certificate only; refused where none applies), ``exhaustive``,
    ``random``, ``targeted`` or ``all`` (the certificate where it applies, exhaustive up to
    ``max_exhaustive`` inputs, random and targeted, ``samples`` of each). ``jobs`` processes
    share the inputs (the report does not depend on it); ``levels`` adds the per-stage report
    of a deep network. ``progress`` receives ``{"event": "exact"}`` before the certificate,
    ``{"event": "inputs", "total": n}`` before the inputs run, ``{"event": "checked",
    "n": k}`` as they do, and ``{"event": "levels"}`` before the per-level report.
    """
    from superpose.check import exact_check
    from superpose.io import load_network
    from superpose.parallel import verify_parallel
    from superpose.verification import MODES, VerificationReport, planned_inputs

    if mode not in (*MODES, "exact"):
        raise SuperposeError(
            f"mode must be one of exact, {', '.join(MODES)}, got {mode!r}", cli="--mode"
        )
    if samples < 0:
        raise SuperposeError(f"samples must be >= 0, got {samples}", cli="--samples")
    if jobs < 1:
        raise SuperposeError(f"jobs must be >= 1, got {jobs}", cli="--jobs")
    tell = progress or (lambda event: None)
    net = load_network(directory)
    exact = None
    skipped: list[str] = []
    if mode in ("exact", "all"):
        tell({"event": "exact"})
        exact, why = exact_check(net)
        if exact is None:
            if mode == "exact":
                raise SuperposeError(
                    f"{directory}: {why}; use mode all, exhaustive or random", cli="--mode"
                )
            skipped.append(f"exact: {why}")
    if mode == "exact":
        report = VerificationReport("exact")
    else:
        tell({"event": "inputs", "total": planned_inputs(net, mode, samples, max_exhaustive)})
        report = verify_parallel(
            net,
            mode,
            samples,
            seed,
            jobs,
            max_exhaustive=max_exhaustive,
            progress=lambda n=1: tell({"event": "checked", "n": n}),
            network_dir=directory,
        )
    report.skipped = skipped + report.skipped
    level_rep = None
    if levels:
        tell({"event": "levels"})
        from superpose.seeds import Seeds
        from superpose.stage_check import level_report

        level_rep = level_report(
            net, mode, samples, Seeds(seed).rng("levels"), max_exhaustive=max_exhaustive
        )
    return Verified(net, report, exact, level_rep)
