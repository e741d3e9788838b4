"""Build, check, grow, fall back: the one path by which a network leaves the library.

``superpose.build`` (and ``superpose build``) never hands back an unchecked network silently:

1. **Choose.** The named construction, or :func:`choose_construction` (the cheapest one that
   supports the task; the explicit network when superposition does not pay).
2. **Build and check.** Build at the automatic widths, then run the strongest check the
   network affords (:func:`superpose.check.check_network`: exact certificate, exhaustive, or
   sampled) and record it in ``net.extras["check"]`` (saved in ``network.json``).
3. **Grow.** A check that finds an error rebuilds with wider layers (``width_scale`` x 1.25,
   1.5, 2, ... up to 4); every attempt restarts from the same random state, so the network
   depends only on the seed and the recorded ``width_scale`` and rebuilds identically.
4. **Fall back.** If no width passes, the explicit network (``naive``: one unit per gate, exact
   by construction and certified by the cone certificate) is built instead and the reason is
   recorded in ``extras["fallback"]``; with ``fallback=False`` the last failing network is
   returned with its failing check (the CLI writes it and exits 1).
   A default one-level choice whose checked network turns out no smaller than m + m' (the
   plan sees each pool's width, not the blocks the build gives heavy features) is replaced
   by the explicit network the same way; a construction named by the caller is kept.

Example:
    >>> import numpy as np
    >>> from superpose import families
    >>> net = build(families.pairs(300, 600, np.random.default_rng(0)), seed=0)
    >>> net.extras["check"]["kind"], net.extras["check"]["passed"]
    ('exact', True)
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import numpy as np

from superpose.check import (
    DEFAULT_SAMPLES,
    EXHAUSTIVE_LIMIT,
    Check,
    check_network,
    none_check,
    record,
)
from superpose.constructions import CONSTRUCTIONS, make_construction
from superpose.constructions import build as build_unchecked
from superpose.constructions.patch import patch_outputs, patchable
from superpose.errors import SuperposeError
from superpose.network import Network
from superpose.seeds import Seeds
from superpose.task import Task

GROW = (1.0, 1.25, 1.5, 2.0, 2.5, 3.0, 4.0)
"""Width multipliers tried, in order, until a network passes its check."""

Events = Callable[[dict[str, Any]], None]
"""Progress callback: ``{"event": "build", "attempt", "construction", "width_scale"}``,
``{"event": "check", "attempt"}``, ``{"event": "checked", "n"}`` (inputs checked so far),
``{"event": "result", "attempt", "check"}`` (a :class:`~superpose.check.Check`)."""


def choose_construction(task: Task, params: dict[str, Any] | None = None) -> tuple[str, str]:
    """The construction the default build uses for ``task``, and why (one line).

    Every valid task is accepted: one-level tasks go to ``superposed`` when it supports them,
    deep tasks to ``circuit``; anything those refuse is built explicitly (``naive``).
    """
    from superpose.constructions import default_construction

    name = default_construction(task)
    if name == "circuit":
        deep = deep_choice(task, params or {})
        if deep is not None:
            return deep
    reason = unsupported(task, name, params or {})
    if reason is None:
        return name, f"default for a task of depth {task.depth}"
    return "naive", f"explicit network: '{name}' does not handle this task ({reason})"


DEEP_CANDIDATES = ("stream", "circuit")
"""The constructions a deep task's default build plans before choosing (fewest neurons)."""


def planned_neurons(task: Task, name: str, params: dict[str, Any]) -> int | None:
    """Neurons the construction's plan needs for ``task`` at its automatic widths (a
    ``stream`` network counted as residual: the stream once plus every block's hidden units;
    a ``circuit`` network as the MLP chain it is), or None when it cannot build the task with
    these parameters."""
    if unsupported(task, name, params) is not None:
        return None
    try:
        con = make_construction(name, **params)
        if name == "circuit":
            # As Circuit.build_once: a superposed input layer no narrower than m is explicit.
            plan = con._cheapest(task, False)  # type: ignore[attr-defined]
            ell, w0 = plan[4][0], plan[5]
            if max(4 * ell * task.sparsity, round(w0)) >= task.features:
                plan = con._cheapest(task, True)  # type: ignore[attr-defined]
            return int(round(plan[3]))
        planned = con.plan_neurons(task)  # type: ignore[attr-defined]
    except (SuperposeError, AttributeError):
        return None
    return None if planned is None else int(planned[0])


def deep_choice(task: Task, params: dict[str, Any]) -> tuple[str, str] | None:
    """For a deep task: whichever of ``stream`` and ``circuit`` plans fewer neurons, and why
    (None when neither can plan it with ``params``). Both are then held to the same check."""
    plans = {n: planned_neurons(task, n, params) for n in DEEP_CANDIDATES}
    ok = {n: v for n, v in plans.items() if v is not None}
    if not ok:
        return None
    name = min(ok, key=lambda n: (ok[n], DEEP_CANDIDATES.index(n)))
    beside = ", ".join(
        f"'{n}' {v:,}" if v is not None else f"'{n}' cannot plan it" for n, v in plans.items()
    )
    return name, f"default for a task of depth {task.depth}: fewest planned neurons ({beside})"


def unsupported(task: Task, name: str, params: dict[str, Any]) -> str | None:
    """Why construction ``name`` cannot build ``task`` (None if it can)."""
    cls = CONSTRUCTIONS.get(name)
    if cls is None:
        raise SuperposeError(
            f"unknown construction {name!r} (known: {', '.join(sorted(CONSTRUCTIONS))})"
        )
    ok, reason = cls.supports(task)
    return None if ok else reason


def does_not_pay(task: Task, name: str, params: dict[str, Any]) -> str | None:
    """Why the construction's automatic widths are no better than the explicit network."""
    con = make_construction(name, **params)
    plan = getattr(con, "plan_neurons", None)
    if plan is None:
        return None
    planned = plan(task)
    if planned is None:
        return None
    neurons, feasible = planned
    explicit = task.features + task.n_gates
    if feasible and neurons < explicit:
        return None
    why = (
        f"no automatic width meets the failure target (closest: {neurons:,} neurons)"
        if not feasible
        else f"the automatic widths need {neurons:,} neurons"
    )
    return f"{why}, not fewer than the explicit network's m + m' = {explicit:,}"


def _scaled(name: str, params: dict[str, Any], factor: float) -> dict[str, Any] | None:
    """``params`` with the widths grown by ``factor``, or None if the construction cannot grow."""
    if factor == 1.0:
        return dict(params)
    if not CONSTRUCTIONS[name].grows():
        return None
    fixed = [k for k in ("n_in", "n_hidden", "n_out") if params.get(k) is not None]
    if fixed:
        return None  # the caller fixed the widths: growing them is not ours to do
    return {**params, "width_scale": float(params.get("width_scale", 1.0)) * factor}


def build(
    task: Task,
    construction: str | None = None,
    *,
    seed: int = 0,
    rng: np.random.Generator | None = None,
    check: bool = True,
    check_samples: int = DEFAULT_SAMPLES,
    exhaustive_limit: int = EXHAUSTIVE_LIMIT,
    exact_budget_seconds: float | None = 600.0,
    fallback: bool = True,
    grow: tuple[float, ...] = GROW,
    patch: bool = True,
    progress: Events | None = None,
    **params: Any,
) -> Network:
    """Build a network for ``task``, check it, grow or fall back until it is right.

    ``construction`` (default: :func:`choose_construction`) and ``params`` pick the design;
    ``seed`` seeds everything (:class:`superpose.seeds.Seeds`: the ``build`` and ``check``
    streams); a caller with its own seeding (a sweep point) may pass the build stream as
    ``rng`` (every attempt restarts from its state). ``check=False`` records
    ``{"kind": "none"}`` and skips steps 3-4. When an exact check names a few wrong
    and/or/copy outputs of a one-level network they are patched with private units and
    certified again before any width grows (``patch=False``: grow only). The returned
    network carries ``extras["check"]``; ``extras["fallback"]`` says when and why the explicit
    network was built instead; ``extras["check_attempts"]`` lists the widths that failed.

    Example:
        >>> from superpose import Task
        >>> net = build(Task.from_gates(6, 2, [("xor", [0, 1]), ("andnot", [2, 3])]))
        >>> net.extras["check"]["passed"]
        True
    """
    name, params, notes = _resolve(task, construction, params, fallback)
    run = _Attempts(
        task,
        name,
        notes,
        seed,
        rng,
        check_samples,
        exhaustive_limit,
        exact_budget_seconds,
        progress,
    )
    net: Network | None = None
    last: Check | None = None
    refused: SuperposeError | None = None
    # One level: the explicit network is m + m' (deeper ones carry copies too).
    chosen = construction is None and fallback and name != "naive" and task.depth == 1
    for i, factor in enumerate(grow if check else (1.0,)):
        p = _scaled(name, params, factor)
        if p is None:
            break
        scale = p.get("width_scale", 1.0)
        try:
            net = run.build_at(i, p)
        except SuperposeError as exc:
            if not check:
                raise
            # Too narrow to build at all (e.g. a code wider than its layer): grow.
            refused = exc
            run.attempts.append({"width_scale": scale, "refused": str(exc)})
            continue
        if not check:
            return run.finish(net, none_check(task.sparsity))
        size = _not_smaller(net, task) if chosen else None
        if size is not None:
            # Growing and patching only add neurons: no later attempt can be smaller, so the
            # explicit network wins without checking this one (minutes at m' >= 10^4).
            run.attempts.append({"width_scale": scale, "kind": "none"})
            if last is None:
                return run.explicit(f"explicit network: '{name}' builds {size} before any check")
            return run.explicit(
                f"explicit network: '{name}' failed its {last.kind} check at every width "
                f"tried (width_scale up to {run.attempts[-2]['width_scale']:g}); the next width "
                f"has {size}"
            )
        net, last = run.check(i, net, scale, patch)
        if last.passed:
            run.finish(net, last)
            size = _not_smaller(net, task) if chosen else None
            if size is None:
                return net
            # Right, but no better than the explicit network (the plan could not see it).
            done = {"width_scale": scale, "kind": last.kind, "passed": True}
            return run.explicit(
                f"explicit network: '{name}' built a correct network of {size}",
                [*run.attempts, done],
            )
        run.attempts.append({"width_scale": scale, **_errors(last)})
    if net is None or last is None:
        assert refused is not None
        if not fallback or name == "naive":
            raise refused
        return run.explicit(
            f"explicit network: '{name}' could not be built at any width tried ({refused})"
        )
    if not fallback or name == "naive":
        return run.finish(net, last)
    return run.explicit(
        f"explicit network: '{name}' failed its {last.kind} check at every width tried "
        f"(width_scale up to {run.attempts[-1]['width_scale']:g})"
    )


def _resolve(
    task: Task, construction: str | None, params: dict[str, Any], fallback: bool
) -> tuple[str, dict[str, Any], dict[str, str]]:
    """The construction to build, its parameters, and the notes the network will carry.

    No name: :func:`choose_construction` (its parameters dropped if it chose the explicit
    network, which says why). A name that does not handle the task is refused; bad parameters
    are refused before any work; with ``fallback``, a construction whose plan cannot beat the
    explicit network is replaced by it, saying why."""
    notes: dict[str, str] = {}
    if construction is None:
        name, why = choose_construction(task, params)
        if name == "naive" and params:
            params = {}  # the parameters were meant for the construction that refused
        if name == "naive":
            notes["fallback"] = why
    else:
        name = construction
        reason = unsupported(task, name, params)
        if reason is not None:
            raise SuperposeError(f"construction {name!r} does not handle this task: {reason}")
    make_construction(name, **params)  # bad parameters: one clear error before any work
    if fallback and name != "naive":
        reason = does_not_pay(task, name, params)
        if reason is not None:
            name, params = "naive", {}
            notes["fallback"] = f"explicit network: {reason}"
    return name, params, notes


def _errors(check: Check) -> dict[str, Any]:
    """A failed attempt's record: the check's kind and what it found wrong."""
    return {
        "kind": check.kind,
        "inputs_with_error": check.inputs_with_error,
        "outputs_with_error": check.outputs_with_error,
    }


class _Attempts:
    """The attempts of one checked build: each built from the same random state, checked
    (and patched where an exact check names a few wrong outputs), recorded in ``attempts``;
    and the explicit network when none will do."""

    def __init__(
        self,
        task: Task,
        name: str,
        notes: dict[str, str],
        seed: int,
        rng: np.random.Generator | None,
        check_samples: int,
        exhaustive_limit: int,
        exact_budget_seconds: float | None,
        progress: Events | None,
    ) -> None:
        self.task, self.name, self.notes, self.seed, self.rng = task, name, notes, seed, rng
        self.seeds = Seeds(seed)
        self.start = rng.bit_generator.state if rng is not None else None
        self.check_args = (check_samples, exhaustive_limit, exact_budget_seconds)
        self.progress = progress
        self.attempts: list[dict[str, Any]] = []

    def tell(self, event: dict[str, Any]) -> None:
        if self.progress is not None:
            self.progress(event)

    def build_at(self, i: int, params: dict[str, Any]) -> Network:
        """Attempt ``i``: the construction at ``params``, from the first attempt's random state."""
        scale = params.get("width_scale", 1.0)
        self.tell({"event": "build", "attempt": i, "construction": self.name, "width_scale": scale})
        if self.rng is not None:
            self.rng.bit_generator.state = self.start
            attempt_rng = self.rng
        else:
            attempt_rng = self.seeds.rng("build")
        return build_unchecked(self.task, self.name, seed=self.seed, rng=attempt_rng, **params)

    def check(self, i: int, net: Network, scale: float, patch: bool) -> tuple[Network, Check]:
        """Check attempt ``i``; when an exact check names a few wrong outputs and ``patch``,
        give them private units (far cheaper than growing every width) and certify again. The
        patched network replaces ``net`` only if it passes."""
        self.tell({"event": "check", "attempt": i})
        last = _check(net, *self.check_args, self.seeds, self.progress)
        patched = None if last.passed or not patch else _patched(net, last)
        self.tell(
            {
                "event": "result",
                "attempt": i,
                "check": last,
                "next": "grow" if patched is None else "patch",
            }
        )
        if patched is None:
            return net, last
        again = _check(patched, *self.check_args, self.seeds, self.progress)
        self.tell({"event": "patched", "attempt": i, "check": again})
        if not again.passed:
            return net, last
        units = patched.extras["patched"]["units_added"]
        self.attempts.append({"width_scale": scale, **_errors(last), "patched": units})
        return patched, again

    def finish(self, net: Network, check: Check) -> Network:
        """``net`` with its check, the attempts before it and the notes, in that order."""
        record(net, check)
        if self.attempts:
            net.extras["check_attempts"] = self.attempts
        net.extras.update(self.notes)
        return net

    def explicit(self, why: str, tried: list[dict[str, Any]] | None = None) -> Network:
        """The explicit network instead, checked, saying why and what was tried."""
        samples, limit, budget = self.check_args
        net = build(
            self.task,
            "naive",
            seed=self.seed,
            rng=self.rng,
            check=True,
            check_samples=samples,
            exhaustive_limit=limit,
            exact_budget_seconds=budget,
            fallback=False,
            progress=self.progress,
        )
        net.extras["fallback"] = why
        tried = self.attempts if tried is None else tried
        if tried:
            net.extras["check_attempts"] = [{"construction": self.name, **a} for a in tried]
        return net


def _not_smaller(net: Network, task: Task) -> str | None:
    """ "N neurons, not fewer than ... m + m'" when ``net`` is no smaller than the explicit
    network (None when it is smaller)."""
    neurons, explicit = int(net.counts().neurons), task.features + task.n_gates
    if neurons < explicit:
        return None
    return f"{neurons:,} neurons, not fewer than the explicit network's m + m' = {explicit:,}"


PATCH_SHARE = 0.05
"""Patch (private units for the wrong outputs) when they need at most this share of the
layer's units; otherwise grow the widths."""


def _patched(net: Network, check: Check) -> Network | None:
    """``net`` with the outputs an exact check found wrong on private units, if that applies
    (a one-level network, only and/or/copy outputs wrong, at most ``PATCH_SHARE`` new units)."""
    wrong = check.extra.get("wrong_outputs")
    if check.kind != "exact" or not wrong or patchable(net) is not None:
        return None
    try:
        patched = patch_outputs(net, np.asarray(wrong, dtype=np.int64))
    except SuperposeError:  # an xor / andnot output: its detectors are already private
        return None
    if patched.extras["patched"]["units_added"] > PATCH_SHARE * net.layers[0].n_out:
        return None
    return patched


def _check(
    net: Network,
    samples: int,
    exhaustive_limit: int,
    budget: float | None,
    seeds: Seeds,
    progress: Events | None,
) -> Check:
    counter = None
    if progress is not None:
        done = 0

        def counter(n: int) -> None:
            nonlocal done
            done += n
            progress({"event": "checked", "n": done})

    return check_network(
        net,
        samples=samples,
        exhaustive_limit=exhaustive_limit,
        rng=seeds.rng("check"),
        exact_budget_seconds=budget,
        progress=counter,
    )
