"""The check every build runs on itself: the strongest one it can afford, recorded with the network.

A verification tool that can be silently wrong is worse than none, so a network never leaves
``superpose.build`` (or ``superpose build``) without saying how it is known to be right. Three
kinds of evidence, strongest first:

* ``exact`` -- a certificate (:mod:`superpose.certificate`) covering *every* input with at most
  s active features, computed from the weights and codes without enumerating the inputs
  (C(10^5, <= 2) = 5.0e9 inputs at m = 10^5). Exact: no sampling, no probability.
* ``exhaustive`` -- when no certificate applies and there are at most ``exhaustive_limit``
  (10^6) such inputs, every one of them is run through the network and compared with the truth.
* ``sampled`` -- otherwise ``samples`` random and ``samples`` targeted inputs
  (:mod:`superpose.verification`). Evidence, not proof: the record carries the counts and a one-sided
  95% Clopper-Pearson bound on the per-input error rate.

``none`` is recorded only when the caller turned the check off. The result says which stronger
checks were skipped and why (``skipped``), so a reader never has to guess.

Example:
    >>> import numpy as np
    >>> from superpose import Task
    >>> from superpose.constructions import build
    >>> net = build(Task.from_gates(4, 2, [("and", [0, 1]), ("or", [2, 3])]), "naive")
    >>> c = check_network(net)
    >>> c.kind in ("exact", "exhaustive"), c.passed
    (True, True)
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from superpose.errors import SuperposeError
from superpose.network import Network
from superpose.seeds import Seeds
from superpose.task import n_sparse_inputs
from superpose.verification import clopper_pearson_upper, verify

KINDS = ("exact", "exhaustive", "sampled", "none")
DEFAULT_SAMPLES = 2000
EXHAUSTIVE_LIMIT = 1_000_000
"""Instances with at most this many <= s-sparse inputs are checked on all of them."""
MAX_FAILING = 10
MAX_WRONG_LISTED = 10_000
"""An exact check lists the wrong outputs (for a patch, or a reader) up to this many."""
STAGE_BUDGET_SECONDS = 120.0
"""Time each stage's exact certificate may take in a deep network's per-level record."""

Progress = Callable[[int], None]


@dataclass(frozen=True)
class Check:
    """What a network was checked on and what was found; ``to_dict`` is its JSON record."""

    kind: str
    sparsity: int
    inputs_checked: int = 0
    inputs_with_error: int = 0
    outputs_with_error: int | None = None
    method: str | None = None
    random: dict[str, int] | None = None
    targeted: dict[str, int] | None = None
    skipped: tuple[str, ...] = ()
    failing_inputs: tuple[tuple[int, ...], ...] = ()
    extra: dict[str, Any] = field(default_factory=dict)

    def __post_init__(self) -> None:
        if self.kind not in KINDS:
            raise SuperposeError(f"unknown check kind {self.kind!r} (known: {', '.join(KINDS)})")

    @property
    def passed(self) -> bool:
        """True when the check ran and found no wrong input (never for kind ``none``)."""
        return self.kind != "none" and self.inputs_with_error == 0

    @property
    def error_rate_upper_95(self) -> float | None:
        """For sampled checks, the 95% upper bound on the per-input error rate."""
        if self.kind != "sampled":
            return None
        return clopper_pearson_upper(self.inputs_with_error, self.inputs_checked)

    def to_dict(self) -> dict[str, Any]:
        out: dict[str, Any] = {
            "kind": self.kind,
            "sparsity": self.sparsity,
            "passed": self.passed,
            "inputs_checked": self.inputs_checked,
            "inputs_with_error": self.inputs_with_error,
        }
        if self.outputs_with_error is not None:
            out["outputs_with_error"] = self.outputs_with_error
        if self.method is not None:
            out["method"] = self.method
        if self.random is not None:
            out["random"] = dict(self.random)
        if self.targeted is not None:
            out["targeted"] = dict(self.targeted)
        if self.kind == "sampled":
            out["error_rate_upper_95"] = self.error_rate_upper_95
        out["skipped"] = list(self.skipped)
        out["failing_inputs"] = [list(x) for x in self.failing_inputs]
        out.update(self.extra)
        return out

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> Check:
        """The record ``to_dict`` wrote (as read back from ``network.json``)."""
        known = {
            "kind",
            "sparsity",
            "passed",
            "inputs_checked",
            "inputs_with_error",
            "outputs_with_error",
            "method",
            "random",
            "targeted",
            "error_rate_upper_95",
            "skipped",
            "failing_inputs",
        }
        return cls(
            kind=str(data["kind"]),
            sparsity=int(data["sparsity"]),
            inputs_checked=int(data.get("inputs_checked", 0)),
            inputs_with_error=int(data.get("inputs_with_error", 0)),
            outputs_with_error=data.get("outputs_with_error"),
            method=data.get("method"),
            random=data.get("random"),
            targeted=data.get("targeted"),
            skipped=tuple(data.get("skipped", ())),
            failing_inputs=tuple(tuple(x) for x in data.get("failing_inputs", ())),
            extra={k: v for k, v in data.items() if k not in known},
        )

    def describe(self) -> str:
        """One line saying what was checked and what was found (what ``build`` prints)."""
        s = self.sparsity
        wrong = (
            "no wrong input"
            if self.passed
            else f"{self.inputs_with_error:,} wrong input(s)"
            + (
                f" on {self.outputs_with_error:,} output(s)"
                if self.outputs_with_error is not None
                else ""
            )
        )
        if self.kind == "exact":
            what = (
                f"exact certificate ({self.method}) over all {self.inputs_checked:,} inputs "
                f"with <= {s} active features"
            )
        elif self.kind == "exhaustive":
            what = f"exhaustive over all {self.inputs_checked:,} inputs with <= {s} active features"
        elif self.kind == "sampled":
            r = (self.random or {}).get("inputs", 0)
            t = (self.targeted or {}).get("inputs", 0)
            what = f"sampled {r:,} random + {t:,} targeted inputs (evidence, not proof)"
            if self.passed:
                wrong += f", error rate < {self.error_rate_upper_95:.2g} at 95%"
        else:
            return "check: none (turned off): this network was NOT checked"
        line = f"check: {what}: {wrong}"
        levels = self.extra.get("levels")
        if isinstance(levels, dict) and levels.get("wrong_end_to_end") is not None:
            line += f"; inputs wrong per level {levels['wrong_end_to_end']}"
        if self.skipped and self.kind != "exact":
            line += "; stronger checks skipped: " + "; ".join(self.skipped)
        return line


def none_check(sparsity: int, reason: str = "turned off") -> Check:
    """The record of a network that was not checked."""
    return Check("none", sparsity, skipped=(reason,))


def exact_check(
    net: Network, budget_seconds: float | None = None, progress: Progress | None = None
) -> tuple[Check | None, str]:
    """The exact certificate's verdict as a :class:`Check`, or None and why it does not apply
    (no certificate for this network's structure, or the budget ran out)."""
    from superpose import certificate

    s = net.task.sparsity
    reason = certificate.unsupported(net, s)
    if reason is not None:
        return None, f"no exact certificate: {reason}"
    cert = certificate.certify(net, s, budget_seconds=budget_seconds, progress=progress)
    if not cert.complete:
        why = cert.stats.get("stopped", "budget")
        return None, f"exact certificate ({cert.method}) stopped: {why}"
    failing = tuple(tuple(int(v) for v in x) for _, x in cert.examples[:MAX_FAILING])
    return (
        Check(
            "exact",
            s,
            inputs_checked=int(cert.inputs_covered),
            inputs_with_error=int(cert.inputs_with_error),
            outputs_with_error=int(len(cert.wrong_outputs)),
            method=cert.method,
            failing_inputs=failing,
            extra={
                "inputs_run": int(
                    cert.stats.get(
                        "inputs_run",
                        cert.stats.get("candidate_pairs", 0)
                        + cert.stats.get("candidate_triples", 0)
                        + net.task.features
                        + 1,
                    )
                ),
                **(
                    {"wrong_outputs": [int(g) for g in cert.wrong_outputs]}
                    if 0 < len(cert.wrong_outputs) <= MAX_WRONG_LISTED
                    else {}
                ),
            },
        ),
        "",
    )


def check_network(
    net: Network,
    *,
    samples: int = DEFAULT_SAMPLES,
    exhaustive_limit: int = EXHAUSTIVE_LIMIT,
    rng: np.random.Generator | None = None,
    exact: bool = True,
    exact_budget_seconds: float | None = 600.0,
    progress: Progress | None = None,
) -> Check:
    """The strongest check ``net`` can afford: exact certificate, else exhaustive, else sampled.

    ``samples`` random and ``samples`` targeted inputs for the sampled check (drawn from
    ``rng``); ``exhaustive_limit`` caps the exhaustive check; ``exact=False`` skips the
    certificate (a caller that will check exactly later). ``progress(n)`` is called as inputs
    are checked (exhaustive and sampled).
    """
    if samples < 1:
        raise SuperposeError(f"check samples must be >= 1, got {samples}")
    task = net.task
    s = task.sparsity
    skipped: list[str] = []
    if exact:
        found, why = exact_check(net, exact_budget_seconds)
        if found is not None:
            if net.construction == "circuit" and task.depth > 1:
                mode = (
                    "exhaustive"
                    if n_sparse_inputs(task.features, s) <= exhaustive_limit
                    else "random"
                )
                levels = _per_level(net, mode, samples, rng, exhaustive_limit)
                found = dataclasses.replace(found, extra={**found.extra, **levels})
            return found
        skipped.append(why)
    else:
        skipped.append("exact certificate not requested")
    total = n_sparse_inputs(task.features, s)
    if total <= exhaustive_limit:
        rep = verify(net, "exhaustive", max_exhaustive=exhaustive_limit, progress=progress)
        return Check(
            "exhaustive",
            s,
            inputs_checked=rep.inputs_checked,
            inputs_with_error=rep.inputs_with_error,
            skipped=tuple(skipped),
            failing_inputs=tuple(tuple(x) for x in rep.failing_inputs[:MAX_FAILING]),
            extra=_per_level(net, "exhaustive", samples, None, exhaustive_limit),
        )
    skipped.append(
        f"exhaustive check needs {total:.3g} inputs (all <= {s}-sparse inputs of "
        f"{task.features:,} features), above the limit of {exhaustive_limit:,}"
    )
    rng = rng if rng is not None else Seeds(0).rng("check")
    rep = verify(net, "random", samples, rng, progress=progress)
    rand = {"inputs": rep.inputs_checked, "with_error": rep.inputs_with_error}
    rep_t = verify(net, "targeted", samples, rng, progress=progress)
    targ = {"inputs": rep_t.inputs_checked, "with_error": rep_t.inputs_with_error}
    failing = (rep.failing_inputs + rep_t.failing_inputs)[:MAX_FAILING]
    return Check(
        "sampled",
        s,
        inputs_checked=rep.inputs_checked + rep_t.inputs_checked,
        inputs_with_error=rep.inputs_with_error + rep_t.inputs_with_error,
        random=rand,
        targeted=targ,
        skipped=tuple(skipped),
        failing_inputs=tuple(tuple(x) for x in failing),
        extra=_per_level(net, "random", samples, rng, exhaustive_limit),
    )


def _per_level(
    net: Network, mode: str, samples: int, rng: np.random.Generator | None, limit: int
) -> dict[str, Any]:
    """For a deep (``circuit``) network, the same check on every level's decoded code.

    The outputs decide ``passed``; a level can be wrong on an input and the outputs still be
    right (a wrong carry that no output reads), so the levels are recorded beside the verdict:
    per level, the inputs on which it holds a wrong node end to end, and when fed the exact
    code of the previous level (the error the level adds by itself), and the exact
    certificate of every stage whose inputs it covers (:func:`superpose.stage_check.stage_certificates`).
    """
    if net.construction != "circuit" or net.task.depth < 2:
        return {}
    from superpose.stage_check import level_report, stage_certificates

    rng = rng if rng is not None else Seeds(0).rng("check")
    rep = level_report(net, mode, samples, rng, max_exhaustive=limit)
    return {
        "levels": {
            "mode": mode,
            "inputs_checked": rep.inputs_checked,
            "wrong_end_to_end": [int(r["wrong_end_to_end"]) for r in rep.stages],
            "wrong_clean_input": [int(r["wrong_clean_input"]) for r in rep.stages],
            "exact": stage_certificates(net, STAGE_BUDGET_SECONDS),
        }
    }


def record(net: Network, check: Check) -> Network:
    """Attach ``check`` to ``net`` (``net.extras["check"]``, saved in network.json)."""
    net.extras["check"] = check.to_dict()
    return net


def recorded_check(net: Network) -> Check | None:
    """The check recorded with ``net``, if any.

    The record comes from ``network.json``, a file anyone can edit: each field is checked
    before use, and a malformed one is one clear error naming it (never a traceback).
    """
    data = net.extras.get("check")
    if not isinstance(data, dict) or "kind" not in data:
        return None
    _check_record(data)
    return Check.from_dict(data)


def _count(value: Any) -> bool:
    return isinstance(value, int) and not isinstance(value, bool) and value >= 0


def _check_record(data: dict[str, Any]) -> None:
    """Refuse a recorded check whose fields have the wrong types (see :func:`recorded_check`)."""
    from superpose._inputs import short_repr

    rules: list[tuple[str, Callable[[Any], bool], str]] = [
        ("kind", lambda v: isinstance(v, str), "a string"),
        ("sparsity", lambda v: _count(v) and v >= 1, "a positive integer"),
        ("inputs_checked", _count, "a count"),
        ("inputs_with_error", _count, "a count"),
        ("outputs_with_error", lambda v: v is None or _count(v), "a count"),
        ("skipped", lambda v: isinstance(v, list) and all(isinstance(x, str) for x in v), "text"),
        (
            "failing_inputs",
            lambda v: (
                isinstance(v, list)
                and all(isinstance(r, list) and all(_count(i) for i in r) for r in v)
            ),
            "lists of feature ids",
        ),
    ]
    for key, ok, what in rules:
        if key in data and not ok(data[key]):
            raise SuperposeError(
                f"network.json: extras.check.{key} must be {what}, got {short_repr(data[key])}"
            )
    if "sparsity" not in data:
        raise SuperposeError("network.json: extras.check has no 'sparsity'")
