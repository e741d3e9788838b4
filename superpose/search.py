"""Width search: the smallest ``width_scale`` whose network the verifier finds no error in.

The automatic parameters (:mod:`superpose.constructions.params`) aim at a target failure
probability with a model; this search finds the edge empirically. ``width_scale`` multiplies
every automatic width of a construction, so one number is searched:

1. Probe scale 1.0 (the automatic widths; ``start_scale``). If it passes, shrink the scale by ``step_down``
   while probes pass (down to ``min_scale``); if it fails, grow it by ``expand`` until a probe
   passes (up to ``max_scale``). Small steps down keep the first failing probe near the edge:
   builds far below it can be slow (the s = 2 repair of ``superposed`` works hardest there).
2. Bisect geometrically between the largest failing and the smallest passing scale until they
   are within ``tolerance`` of each other.
3. Check the smallest passing network once more with the strongest check it affords
   (:func:`superpose.check.check_network`: the exact certificate, else every input when there
   are at most 10^6, else fresh random + targeted inputs no probe saw). The probes chose this
   scale, so they cannot vouch for it: the search lands at the edge, where a fresh input is
   most likely to fail. While the final check fails, the scale steps up by ``FINAL_STEP``.
   The final check is recorded on the network (``extras["check"]``).

A probe builds the network (same build seed for every probe) and checks ``samples`` random
and ``samples`` targeted inputs from :mod:`superpose.verification` (the random inputs are the same
for every probe), in alternating small batches, stopping at the first batch with an error:
failure is a cliff, so probes below the edge fail on their first batches and cost little.
With ``exhaustive=True`` and at most ``max_exhaustive`` inputs with <= s active features, a
probe instead checks ``samples`` targeted inputs (a cheap screen) and then every such input:
the chosen network then carries a certificate for this instance.

Where the construction certifies itself exactly (the s = 2 repair of ``superposed`` reports
``certified_s2``), a probe it proves wrong fails without sampling, and a passing certificate
is recorded. A probe whose widths round to a layout already probed is not verified again. The answer is the smallest
passing probe; its record (every probe with its widths, neurons, inputs checked and inputs
with error; the chosen and the last failing scale; samples; seeds) is stored in
``net.extras["width_search"]`` and so lands in ``network.json``, without the wall-clock
timings (``seconds``, ``build_seconds``, ``verify_seconds``), which only the returned record
carries: the same command writes the same bytes.

Example:
    >>> import numpy as np
    >>> from superpose.families import pairs
    >>> task = pairs(300, 300, np.random.default_rng(0))
    >>> net, rec = search_width(task, samples=200)
    >>> rec["found"], net.extras["width_search"] == without_timings(rec), "seconds" in rec
    (True, True, True)
    >>> rec["last_failing_scale"] is None or rec["last_failing_scale"] < rec["width_scale"]
    True
"""

from __future__ import annotations

import itertools
import math
import time
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, Generic, TypeVar

import numpy as np
from scipy import sparse

from superpose.errors import SuperposeError
from superpose.network import Network
from superpose.seeds import STREAMS, Seeds
from superpose.task import Task, n_sparse_inputs

if TYPE_CHECKING:
    from superpose.check import Check

SearchProgress = Callable[[dict[str, Any]], None]
"""Called with events: ``{"event": "probe", "index", "scale", "widths", "planned"}`` when a
probe starts, ``{"event": "checked", "n"}`` after each batch, ``{"event": "result", "probe"}``
when it ends (``probe`` is the probe's record), ``{"event": "final", "probe", "check"}`` when
the chosen network fails its final check (the search then steps up)."""

DEFAULT_SAMPLES = 2000
MIN_SCALE = 0.3
MAX_SCALE = 6.0
EXPAND = 1.5
STEP_DOWN = 1.15
TOLERANCE = 0.03
FINAL_STEP = 0.1
"""Relative step up when the chosen network fails its final check."""
MAX_EXHAUSTIVE = 5_000_000
BUILD_STREAM = STREAMS["build"]  # the build rng, as `superpose build --seed` uses
WIDTH_KEYS = ("width_scale", "n_in", "n_hidden", "n_out")


T = TypeVar("T")


@dataclass(frozen=True)
class Walk(Generic[T]):
    """Where :func:`walk` stopped: ``hit`` is the first step whose probe gave the wanted
    answer (None if none did), ``before`` the step probed just before it (the other answer;
    None if ``hit`` was the first step), ``stopped`` whether a probe could not answer."""

    hit: T | None
    before: T | None
    stopped: bool


def walk(probe: Callable[[T], bool | None], steps: Iterable[T], *, until: bool) -> Walk[T]:
    """Probe ``steps`` in order until one answers ``until`` (the bracketing half of every
    width search: :func:`search_width`'s scales, compare's ladder and doubling).

    ``probe`` answers True (passes), False, or None (cannot answer: budget spent, build
    refused), which ends the walk. ``steps`` may be a generator that checks a budget.

    Example:
        >>> walk(lambda d: d >= 100, (64 * 2**i for i in range(5)), until=True)
        Walk(hit=128, before=64, stopped=False)
    """
    before = None
    for step in steps:
        answer = probe(step)
        if answer is None:
            return Walk(None, before, True)
        if answer == until:
            return Walk(step, before, False)
        before = step
    return Walk(None, before, False)


def bisect(
    probe: Callable[[T], bool | None],
    lo: T,
    hi: T,
    *,
    mid: Callable[[T, T], T],
    close: Callable[[T, T], bool],
) -> tuple[T, T, bool]:
    """Narrow a failing ``lo`` and a passing ``hi`` until ``close(lo, hi)``: the second half
    of every width search. Returns ``(lo, hi, stopped)``; ``stopped`` when a probe returned
    None (no answer), leaving the bracket as it was.

    Example:
        >>> bisect(lambda d: d >= 100, 64, 128, mid=lambda a, b: (a + b) // 2,
        ...        close=lambda a, b: b - a <= 8)
        (96, 104, False)
    """
    while not close(lo, hi):
        m = mid(lo, hi)
        answer = probe(m)
        if answer is None:
            return lo, hi, True
        if answer:
            hi = m
        else:
            lo = m
    return lo, hi, False


class WidthSearchError(SuperposeError):
    """No probe passed; ``record`` holds every probe tried."""

    def __init__(self, message: str, record: dict[str, Any]) -> None:
        super().__init__(message)
        self.record = record


def _accepts(construction: str, key: str) -> bool:
    from superpose.constructions import CONSTRUCTIONS

    cls = CONSTRUCTIONS.get(construction)
    return cls is not None and key in cls.parameters()


def _seed_record(ss: np.random.SeedSequence) -> dict[str, Any]:
    return {"entropy": ss.entropy, "spawn_key": list(ss.spawn_key)}


def _batches(
    net: Network,
    samples: int,
    exhaustive: bool,
    input_seed: np.random.SeedSequence,
    batch_size: int,
) -> Iterator[tuple[str, sparse.csr_array]]:
    """(source, batch) pairs for one probe, cheapest error finders first."""
    from superpose.verification import exhaustive_inputs, random_inputs, targeted_inputs

    # Fresh generators from the same seed: every probe sees the same random inputs.
    rand_ss, targ_ss = np.random.SeedSequence(
        input_seed.entropy, spawn_key=input_seed.spawn_key
    ).spawn(2)
    task = net.task
    targeted = (
        ("targeted", b)
        for b in targeted_inputs(net, samples, np.random.default_rng(targ_ss), batch_size)
    )
    if exhaustive:
        yield from targeted
        for b in exhaustive_inputs(task.features, task.sparsity, 4096):
            yield "exhaustive", b
        return
    rand = (
        ("random", b)
        for b in random_inputs(task, samples, np.random.default_rng(rand_ss), batch_size)
    )
    for pair in itertools.zip_longest(rand, targeted):
        for item in pair:
            if item is not None:
                yield item


def _check(
    net: Network,
    samples: int,
    exhaustive: bool,
    input_seed: np.random.SeedSequence,
    progress: SearchProgress | None,
) -> dict[str, Any]:
    """Verify one probe's network, stopping at the first batch with an error."""
    from superpose.verification import check_batch

    batch_size = int(min(512, max(64, samples // 8)))
    checked: dict[str, int] = {}
    errors = 0
    example: list[int] | None = None
    for source, batch in _batches(net, samples, exhaustive, input_seed, batch_size):
        rep = check_batch(net, batch, source)
        checked[source] = checked.get(source, 0) + rep.inputs_checked
        if progress is not None:
            progress({"event": "checked", "n": rep.inputs_checked})
        if rep.inputs_with_error:
            errors = rep.inputs_with_error
            example = rep.failing_inputs[0] if rep.failing_inputs else None
            return {
                "inputs_checked": sum(checked.values()),
                "inputs_with_error": errors,
                "by_source": checked,
                "failed_on": source,
                "example_failing_input": example,
            }
    return {
        "inputs_checked": sum(checked.values()),
        "inputs_with_error": 0,
        "by_source": checked,
    }


def _build(make: Callable[[], Network], timeout: float | None) -> Network:
    """``make()``, in a forked child process killed after ``timeout`` seconds when given
    (:func:`superpose._fork.call_forked`).

    The child saves the network (safetensors + JSON, :func:`superpose.io.save_network`) into a
    temporary directory the parent loads; nothing crosses as a pickle. Raises TimeoutError
    when the child runs out of time; a SuperposeError raised by the build is raised again here.
    """
    if timeout is None:
        return make()
    import tempfile
    from pathlib import Path

    from superpose._fork import ChildFailed, call_forked
    from superpose.io import load_network, save_network

    with tempfile.TemporaryDirectory(prefix="superpose-probe-") as tmp:
        out = Path(tmp) / "net"

        def child() -> bytes:
            save_network(make(), out)
            return b""

        try:
            call_forked(child, timeout)
        except TimeoutError:
            raise TimeoutError(f"build did not finish within {timeout:g} s") from None
        except ChildFailed as exc:
            if exc.exitcode is not None:  # killed (e.g. out of memory): a probe that failed
                raise SuperposeError(f"build process died (exit code {exc.exitcode})") from None
            raise RuntimeError(f"build failed in the child process: {exc}") from None
        return load_network(out)


def _certificate(net: Network) -> dict[str, Any] | None:
    """The construction's own exact check, when it made one (the s = 2 repair of 2-AND).

    ``certified_s2`` False means some <= 2-sparse input is provably wrong (a feature's code
    lies inside a gate's common read set); True certifies every <= 2-sparse input.
    """
    repair = net.extras.get("repair")
    if not isinstance(repair, dict) or "certified_s2" not in repair or net.task.sparsity < 2:
        return None
    rounds = repair.get("rounds") or [{}]
    return {
        "kind": "s2-repair",
        "passed": bool(repair["certified_s2"]),
        "vulnerable_gates": rounds[-1].get("vulnerable"),
        "inputs_covered": n_sparse_inputs(net.task.features, min(2, net.task.sparsity)),
    }


def _final_check(net: Network, samples: int, seed: int, budget: float | None) -> Check:
    """The strongest check ``net`` affords (exact, exhaustive or sampled), on inputs drawn
    from the ``check`` stream, which no probe used; recorded on the network."""
    from superpose.check import check_network, record
    from superpose.seeds import Seeds

    found = check_network(
        net, samples=samples, rng=Seeds(seed).rng("check"), exact_budget_seconds=budget
    )
    record(net, found)
    return found


def _search_params(
    construction: str,
    params: dict[str, Any] | None,
    samples: int,
    min_scale: float,
    start_scale: float,
    max_scale: float,
    expand: float,
    step_down: float,
    tolerance: float,
) -> dict[str, Any]:
    """The search's arguments checked, and the construction parameters every probe builds
    with (``certify`` and ``fallback`` off unless given)."""
    params = dict(params or {})
    if not _accepts(construction, "width_scale"):
        raise SuperposeError(f"construction {construction!r} has no width_scale to search")
    fixed = [k for k in WIDTH_KEYS if k in params and params[k] is not None]
    if fixed:
        raise SuperposeError(
            f"the width search sets the widths itself; drop {', '.join(fixed)} from the parameters"
        )
    if samples < 1:
        raise SuperposeError(f"samples must be >= 1, got {samples}")
    if (
        not 0 < min_scale <= start_scale <= max_scale
        or min(expand, step_down) <= 1
        or tolerance <= 0
    ):
        raise SuperposeError(
            "need 0 < min_scale <= start_scale <= max_scale, expand > 1, step_down > 1 and tolerance > 0"
        )
    if _accepts(construction, "certify"):
        params.setdefault("certify", False)
    if _accepts(construction, "fallback"):
        # The search sizes the superposed design; falling back to the explicit network at
        # some scales would make the probes incomparable.
        params.setdefault("fallback", False)
    return params


@dataclass
class _Probing:
    """What every probe of one search shares (the task, the seeds, the check) and the
    layouts already checked: a probe whose widths round to one of them is not checked again."""

    task: Task
    construction: str
    params: dict[str, Any]
    seed: int
    build_seed: np.random.SeedSequence
    input_seed: np.random.SeedSequence
    samples: int
    use_exhaustive: bool
    total_inputs: int
    build_timeout: float | None
    use_certificates: bool
    progress: SearchProgress | None
    by_layout: dict[tuple[int, ...], dict[str, Any]] = field(default_factory=dict)

    def run(self, scale: float, index: int) -> tuple[dict[str, Any], Network | None]:
        """Build at ``scale`` and check it: the probe's record, and the network (None when
        the build was refused or ran out of time)."""
        from superpose.constructions import build

        t0 = time.perf_counter()
        try:
            net = _build(
                lambda: build(
                    self.task,
                    self.construction,
                    seed=self.seed,
                    rng=np.random.default_rng(self.build_seed),
                    width_scale=scale,
                    **self.params,
                ),
                self.build_timeout,
            )
        except (SuperposeError, TimeoutError) as exc:
            timed_out = isinstance(exc, TimeoutError)
            rec = {
                "scale": scale,
                "passed": False,
                "error": str(exc).splitlines()[0],
                "failed_on": "build time limit" if timed_out else "build refused",
                "build_seconds": round(time.perf_counter() - t0, 3),
            }
            return rec, None
        build_s = time.perf_counter() - t0
        counts = net.counts()
        widths = tuple(int(w) for w in counts["layer_widths"])
        rec = {
            "scale": scale,
            "widths": list(widths),
            "neurons": int(counts["neurons"]),
            "nonzero_parameters": int(counts["nonzero_parameters"]),
            "build_seconds": round(build_s, 3),
        }
        seen = self.by_layout.get(widths)
        cert = _certificate(net) if self.use_certificates else None
        if cert is not None:
            rec["certificate"] = cert
        if seen is not None:  # same widths, same seed: the same network
            rec.update(
                {k: seen[k] for k in ("inputs_checked", "inputs_with_error", "passed")},
                same_as_scale=seen["scale"],
            )
        elif cert is not None and not cert["passed"]:
            # The construction's exact certificate proves wrong inputs exist: no sampling needed.
            rec.update(inputs_checked=0, inputs_with_error=None, failed_on=cert["kind"])
            rec["passed"] = False
            self.by_layout[widths] = rec
        else:
            if self.progress is not None:
                planned = self.samples + (
                    self.total_inputs if self.use_exhaustive else self.samples
                )
                self.progress(
                    {
                        "event": "probe",
                        "index": index,
                        "scale": scale,
                        "widths": list(widths),
                        "planned": planned,
                    }
                )
            t1 = time.perf_counter()
            result = _check(net, self.samples, self.use_exhaustive, self.input_seed, self.progress)
            rec.update(result, passed=result["inputs_with_error"] == 0)
            rec["verify_seconds"] = round(time.perf_counter() - t1, 3)
            self.by_layout[widths] = rec
        return rec, net


def search_width(
    task: Task,
    construction: str = "superposed",
    *,
    samples: int = DEFAULT_SAMPLES,
    seed: int = 0,
    params: dict[str, Any] | None = None,
    exhaustive: bool = False,
    progress: SearchProgress | None = None,
    min_scale: float = MIN_SCALE,
    max_scale: float = MAX_SCALE,
    expand: float = EXPAND,
    step_down: float = STEP_DOWN,
    tolerance: float = TOLERANCE,
    max_exhaustive: int = MAX_EXHAUSTIVE,
    max_seconds: float | None = None,
    use_certificates: bool = True,
    start_scale: float = 1.0,
    build_timeout: float | None = None,
    final_check_budget: float | None = 600.0,
) -> tuple[Network, dict[str, Any]]:
    """Find the smallest ``width_scale`` of ``construction`` that passes verification.

    Args:
        task: the task to build for.
        construction: a registered construction with a ``width_scale`` parameter.
        samples: random inputs and targeted inputs checked per probe (``samples`` of each).
        seed: seeds the build (``SeedSequence([seed, 2])``, as ``superpose build --seed``) and
            the verification inputs (``SeedSequence([seed, 3])``); both are the same for every
            probe, so the search is deterministic.
        params: further construction parameters (not ``width_scale``, ``n_in``, ``n_hidden``
            or ``n_out``). ``certify`` is set to ``False`` unless given: a self-certifying
            build would grow its widths by itself and hide the scale being probed.
        exhaustive: check every input with <= s active features (after a targeted screen)
            when there are at most ``max_exhaustive`` of them; otherwise random + targeted.
        progress: optional callback receiving :data:`SearchProgress` events.
        min_scale, max_scale: the scale range searched.
        expand: factor by which the scale grows while probes fail (from 1.0 upwards).
        step_down: factor by which the scale shrinks while probes pass (from 1.0 down);
            ``1 / min_scale`` gives a plain bisection between min_scale and 1.
        tolerance: stop when the smallest passing scale is within this relative distance of
            the largest failing one.
        max_seconds: stop bisecting (keeping the best passing probe) or expanding after this
            long; ``None`` for no limit.
        start_scale: the first scale probed (1.0: the automatic widths).
        build_timeout: build each probe in a forked child process and count a build that
            takes longer than this many seconds as a failed probe ("build time limit"); some
            builds are far slower below the edge (the s = 2 repair). ``None``: build in
            this process, no limit.
        final_check_budget: seconds the exact certificate may take in the final check
            (:func:`superpose.check.check_network`) before it falls back to sampling.
        use_certificates: a probe whose construction proved itself wrong (``certified_s2``
            False in ``extras["repair"]``) fails without sampling; a passing certificate is
            recorded with the probe.

    Returns:
        The smallest passing network and the search record (also in
        ``net.extras["width_search"]``).

    Raises:
        WidthSearchError: when no probe up to ``max_scale`` (or within ``max_seconds``)
            passes; its ``record`` lists the probes.
    """
    params = _search_params(
        construction,
        params,
        samples,
        min_scale,
        start_scale,
        max_scale,
        expand,
        step_down,
        tolerance,
    )
    total_inputs = n_sparse_inputs(task.features, task.sparsity)
    use_exhaustive = bool(exhaustive and total_inputs <= max_exhaustive)
    build_seed = Seeds(seed).sequence("build")
    input_seed = Seeds(seed).sequence("inputs")
    start = time.perf_counter()
    record = _new_record(
        construction,
        params,
        samples,
        seed,
        build_seed,
        input_seed,
        use_exhaustive,
        exhaustive,
        total_inputs,
        (start_scale, min_scale, max_scale, expand, step_down),
        tolerance,
        build_timeout,
        use_certificates,
    )
    probing = _Probing(
        task,
        construction,
        params,
        seed,
        build_seed,
        input_seed,
        samples,
        use_exhaustive,
        total_inputs,
        build_timeout,
        use_certificates,
        progress,
    )
    search = _Search(
        probing, record, progress, start, min_scale, max_scale, expand, step_down, max_seconds
    )
    lo, hi = search.bracket(start_scale)
    if lo is not None:
        search.narrow(lo, hi, tolerance)
    chosen_scale, net, final = search.confirm(samples, seed, final_check_budget)
    _record_found(record, chosen_scale, final, params, seed, start)
    # network.json holds no wall-clock time (the same command writes the same bytes): the
    # network keeps the record without its timings; the caller gets them in `record`.
    net.extras["width_search"] = without_timings(record)
    return net, record


def _new_record(
    construction: str,
    params: dict[str, Any],
    samples: int,
    seed: int,
    build_seed: np.random.SeedSequence,
    input_seed: np.random.SeedSequence,
    use_exhaustive: bool,
    exhaustive: bool,
    total_inputs: int,
    scale_range: tuple[float, float, float, float, float],
    tolerance: float,
    build_timeout: float | None,
    use_certificates: bool,
) -> dict[str, Any]:
    """The search record before any probe: everything needed to rerun the search (its
    settings and seeds), and the result fields, empty until :func:`_record_found`.
    ``scale_range`` is (start, min, max, expand, step_down)."""
    start_scale, min_scale, max_scale, expand, step_down = scale_range
    return {
        "construction": construction,
        "params": dict(params),
        "samples": samples,
        "mode": "targeted+exhaustive" if use_exhaustive else "random+targeted",
        "exhaustive_requested": bool(exhaustive),
        "exhaustive_inputs": total_inputs if use_exhaustive else None,
        "seed": seed,
        "seeds": {"build": _seed_record(build_seed), "inputs": _seed_record(input_seed)},
        "range": {
            "start_scale": start_scale,
            "min_scale": min_scale,
            "max_scale": max_scale,
            "expand": expand,
            "step_down": step_down,
        },
        "tolerance": tolerance,
        "build_timeout": build_timeout,
        "use_certificates": use_certificates,
        "probes": [],
        "found": False,
        "width_scale": None,
        "last_failing_scale": None,
        "stopped": None,
    }


def _record_found(
    record: dict[str, Any],
    chosen_scale: float,
    final: Check,
    params: dict[str, Any],
    seed: int,
    start: float,
) -> None:
    """Fill in the result: the chosen probe's widths and counts, the largest failing scale
    below it, the final check, and how to rebuild the network without searching."""
    record["final_check"] = final.to_dict()
    chosen = next(p for p in record["probes"] if p["scale"] == chosen_scale)
    failing = [
        p["scale"] for p in record["probes"] if not p["passed"] and p["scale"] < chosen_scale
    ]
    record.update(
        found=True,
        width_scale=chosen_scale,
        last_failing_scale=max(failing) if failing else None,
        widths=chosen["widths"],
        neurons=chosen["neurons"],
        nonzero_parameters=chosen["nonzero_parameters"],
        inputs_checked=chosen["inputs_checked"],
        seconds=round(time.perf_counter() - start, 3),
        reproduce={
            "construction": record["construction"],
            "params": {**params, "width_scale": chosen_scale},
            "rng": f"numpy.random.default_rng(numpy.random.SeedSequence([{seed}, {BUILD_STREAM}]))",
        },
    )


class _Search:
    """The three steps of one width search over a shared state: the probes so far (in
    ``record``), the best passing network, and the clock that ``max_seconds`` limits.

    1. :meth:`bracket`: a passing scale and, below it, a failing one; 2. :meth:`narrow`:
    geometric bisection between them; 3. :meth:`confirm`: the chosen network's final check
    on inputs no probe saw, stepping up while it fails. Every probe goes through
    :meth:`probe`, so the record lists them all in the order they ran.
    """

    def __init__(
        self,
        probing: _Probing,
        record: dict[str, Any],
        progress: SearchProgress | None,
        start: float,
        min_scale: float,
        max_scale: float,
        expand: float,
        step_down: float,
        max_seconds: float | None,
    ) -> None:
        self.probing = probing
        self.record = record
        self.progress = progress
        self.start = start
        self.min_scale = min_scale
        self.max_scale = max_scale
        self.expand = expand
        self.step_down = step_down
        self.max_seconds = max_seconds
        self.best: tuple[float, Network] | None = None

    def out_of_time(self) -> bool:
        """Whether ``max_seconds`` have passed since the search started."""
        return self.max_seconds is not None and time.perf_counter() - self.start > self.max_seconds

    def probe(self, scale: float) -> bool:
        """Build and check one scale, record it, keep it when it is the smallest that passed."""
        scale = round(scale, 6)
        rec, net = self.probing.run(scale, len(self.record["probes"]))
        self.record["probes"].append(rec)
        if self.progress is not None:
            self.progress({"event": "result", "probe": rec})
        if rec["passed"] and (self.best is None or scale < self.best[0]):
            self.best = (scale, net)
        return bool(rec["passed"])

    def timed(self, scale: float) -> bool | None:
        """:meth:`probe`, or None (no probe) once the time is up."""
        return None if self.out_of_time() else self.probe(scale)

    def down(self, scale: float) -> Iterator[float]:
        """Scales below ``scale`` in small steps (builds far below the edge can be slow)."""
        while scale > self.min_scale and not self.out_of_time():
            scale = max(scale / self.step_down, self.min_scale)
            yield scale

    def up(self, scale: float) -> Iterator[float]:
        """Scales above ``scale``, growing by ``expand``."""
        while scale < self.max_scale and not self.out_of_time():
            scale = min(scale * self.expand, self.max_scale)
            yield scale

    def final_up(self, scale: float) -> Iterator[float]:
        """Scales above ``scale`` in :data:`FINAL_STEP` steps, after a failed final check."""
        while scale < self.max_scale:
            scale = min(scale * (1 + FINAL_STEP), self.max_scale)
            yield scale

    def bracket(self, start_scale: float) -> tuple[float | None, float]:
        """A passing scale ``hi`` and, below it, a failing scale ``lo`` (None when the search
        reached ``min_scale`` or its time limit still passing). Downwards the steps are small:
        builds far below the edge can be slow (e.g. the s = 2 repair).

        Raises:
            WidthSearchError: no scale up to ``max_scale`` (or within the time) passed.
        """
        record = self.record
        lo: float | None
        hi: float | None
        if self.probe(start_scale):
            w = walk(self.probe, self.down(start_scale), until=False)
            lo, hi = w.hit, (w.before if w.before is not None else start_scale)
            if lo is None:
                record["stopped"] = "min_scale passed" if hi <= self.min_scale else "time limit"
        else:
            w = walk(self.probe, self.up(start_scale), until=True)
            hi, lo = w.hit, (w.before if w.before is not None else start_scale)
        if hi is None:
            record["stopped"] = "time limit" if self.out_of_time() else "max_scale"
            record["seconds"] = round(time.perf_counter() - self.start, 3)
            raise WidthSearchError(
                f"width search for {record['construction']!r}: no network up to width_scale "
                f"{lo} passed ({len(record['probes'])} probes; stopped at {record['stopped']})",
                record,
            )
        return lo, hi

    def narrow(self, lo: float, hi: float, tolerance: float) -> None:
        """Bisect geometrically between ``lo`` (failing) and ``hi`` (passing) until they are
        within ``tolerance`` of each other or the time is up."""
        _, _, timed_out = bisect(
            self.timed,
            lo,
            hi,
            mid=lambda a, b: math.sqrt(a * b),
            close=lambda a, b: b / a <= 1 + tolerance,
        )
        if timed_out:
            self.record["stopped"] = "time limit"

    def confirm(
        self, samples: int, seed: int, budget: float | None
    ) -> tuple[float, Network, Check]:
        """The chosen scale, its network and its final check.

        The probes' inputs chose this scale, so they cannot also vouch for it (a search
        returns the edge, where a fresh input is most likely to fail). The chosen network
        takes the strongest check it affords on inputs no probe saw; while that fails, the
        scale steps up (each step probed and checked the same way).

        Raises:
            WidthSearchError: the final check failed and no larger scale passed.
        """
        record = self.record
        assert self.best is not None
        chosen_scale, net = self.best
        final = _final_check(net, samples, seed, budget)
        while not final.passed:
            failed = next(p for p in record["probes"] if p["scale"] == chosen_scale)
            failed.update(passed=False, failed_on=f"final {final.kind} check")
            failed["final_check"] = final.to_dict()
            if self.progress is not None:
                self.progress({"event": "final", "probe": failed, "check": final})
            self.best = None
            if not self.out_of_time():
                walk(self.probe, self.final_up(chosen_scale), until=True)  # sets `best`
            if self.best is None:
                record["stopped"] = "final check failed; no larger scale passed" + (
                    " in time" if self.out_of_time() else f" up to {self.max_scale}"
                )
                raise WidthSearchError(
                    f"width search for {record['construction']!r}: the chosen scale "
                    f"{chosen_scale} failed its final {final.kind} check and no larger scale "
                    "passed",
                    record,
                )
            chosen_scale, net = self.best
            final = _final_check(net, samples, seed, budget)
        return chosen_scale, net, final


WALL_CLOCK_KEYS = frozenset({"seconds", "build_seconds", "verify_seconds"})
"""Keys of a search record that hold measured wall-clock time."""


def without_timings(value: Any) -> Any:
    """A copy of ``value`` without :data:`WALL_CLOCK_KEYS`, at any depth.

    Example:
        >>> without_timings({"seconds": 1.2, "probes": [{"scale": 1.0, "build_seconds": 0.1}]})
        {'probes': [{'scale': 1.0}]}
    """
    if isinstance(value, dict):
        return {k: without_timings(v) for k, v in value.items() if k not in WALL_CLOCK_KEYS}
    if isinstance(value, list):
        return [without_timings(v) for v in value]
    return value


__all__ = ["SearchProgress", "WidthSearchError", "search_width"]
