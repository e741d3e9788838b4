"""Running a workload: every method at every width (W1, W2) or the fewest neurons passing (W3)."""

from __future__ import annotations

import itertools
import math
import os
import time
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

import numpy as np

from superpose.codes import BloomCode, ExplicitCode
from superpose.compare.metrics import Row, measure, passes
from superpose.compare.results import Need, WorkloadResult, _join, lower_bound
from superpose.compare.workloads import (
    METHODS,
    OURS,
    WORKLOADS,
    Setting,
    _batch_size,
    _batches,
    sample_outputs,
    task_setting,
    workload_settings,
)
from superpose.constructions import CONSTRUCTIONS, build
from superpose.errors import SuperposeError
from superpose.network import Network
from superpose.peers.universal_and import (
    LAWS,
    READOUT_EXACT,
    READOUT_LINEAR,
    READOUT_TRAINED,
    UniversalAnd,
    busch_p,
)
from superpose.search import bisect, walk
from superpose.seeds import Seeds
from superpose.task import Task

PEER_MAX_NONZEROS = 30_000_000

Progress = Callable[[str], None]


def _peer_params(net: Network, total_outputs: int) -> tuple[int, bool]:
    """Non-zero parameters, with the read-off layer extrapolated to ``total_outputs`` outputs."""
    hidden = sum(layer.nonzero_parameters() for layer in net.layers[:-1])
    read = net.layers[-1].nonzero_parameters()
    k = net.task.n_outputs
    if total_outputs <= k:
        return hidden + read, False
    return hidden + int(round(read * total_outputs / k)), True


def _probe(fn: Callable[[], Any], timeout: float) -> tuple[bool, Any]:
    """Run ``fn()`` in a forked child (:func:`superpose._fork.call_forked`); ``(True,
    result)``, or ``(False, reason)`` on timeout or error.

    The result crosses as JSON, so it must be small and JSON-serialisable (tuples come back as
    lists). Used to bound single builds of the construction whose cost is not ours to control
    (a tight width can make its repair step run for minutes).
    """
    import json

    from superpose._fork import ChildFailed, call_forked

    try:
        return True, json.loads(call_forked(lambda: json.dumps(fn()).encode(), timeout))
    except TimeoutError:
        return False, f"no answer within {timeout:.0f} s"
    except ChildFailed as exc:
        return False, str(exc)
    except SuperposeError as exc:
        return False, f"SuperposeError: {exc}"


class _Runner:
    def __init__(
        self,
        seed: int,
        trained: bool,
        progress: Progress | None,
        torch_threads: int,
        methods: Sequence[str] = METHODS,
        ours_params: dict[str, Any] | None = None,
        device: str | None = "cpu",
        loss_dir: str | os.PathLike[str] | None = None,
        on_train_step: Callable[[int, int, np.ndarray], None] | None = None,
    ) -> None:
        self.methods = set(methods)
        self.device = device
        self.loss_dir = None if loss_dir is None else Path(loss_dir)
        self.on_train_step = on_train_step
        self.loss_files: list[str] = []
        self.ours_params = dict(ours_params or {})
        self.ours_note = ""
        self.ours_build_seconds = 0.0
        if OURS in CONSTRUCTIONS and "certify" not in self.ours_params:
            if "certify" in CONSTRUCTIONS[OURS].parameters():
                # The build's own exhaustive self-check (which grows the widths until it
                # passes) costs minutes on W1/W2; the harness verifies every network itself.
                self.ours_params["certify"] = False
                self.ours_note = "self-certification off (--ours-param certify=true to enable)"
        trained = trained and "trained" in self.methods
        self.seed = seed
        self.seeds = Seeds(seed)
        self.progress = progress
        self.torch_threads = torch_threads
        self.trained = trained
        self.torch_missing = False
        if trained:
            from superpose.peers.trained import torch_available

            self.trained = torch_available()
            self.torch_missing = not self.trained
            if self.trained:  # an unusable --device is one clear error before any work
                import torch

                from superpose.peers.trained import resolve_device

                resolve_device(torch, device)

    def say(self, text: str) -> None:
        if self.progress is not None:
            self.progress(text)

    def rng(self, name: str, *index: int) -> np.random.Generator:
        """Stream ``name`` of this run (of its sub-run ``index``: a peer's law and width)."""
        return self.seeds.child(*index).rng(name)

    # -- methods -------------------------------------------------------------------------
    def naive(self, task: Task, batches: list, setting: Setting) -> Row:
        self.say(f"{setting.workload} {setting.name}: naive")
        net = build(task, "naive")
        return measure(
            net,
            batches,
            workload=setting.workload,
            setting=setting.name,
            method="naive",
            readout=READOUT_EXACT,
        )

    def ours_net(self, task: Task, **params: Any) -> Network:
        return build(task, OURS, rng=self.rng("build"), **{**self.ours_params, **params})

    def laws(self, setting: Setting) -> list[str]:
        return [law for law in setting.laws if law in self.methods]

    def ours(
        self, task: Task, batches: list, setting: Setting, **params: Any
    ) -> tuple[Row, Network | None]:
        self.say(f"{setting.workload} {setting.name}: ours ({OURS})")
        if OURS not in CONSTRUCTIONS:
            row = Row(
                setting.workload,
                setting.name,
                "ours",
                READOUT_EXACT,
                None,
                None,
                None,
                note=f"construction {OURS!r} not available",
            )
            return row, None
        t0 = time.perf_counter()
        try:
            net = self.ours_net(task, **params)
            self.ours_build_seconds = time.perf_counter() - t0
        except (SuperposeError, MemoryError) as exc:
            return Row(
                setting.workload,
                setting.name,
                "ours",
                READOUT_EXACT,
                None,
                None,
                None,
                note=f"build failed: {exc}",
            ), None
        scale = params.get("width_scale")
        note = _join(f"width_scale={scale}" if scale is not None else "", self.ours_note)
        return measure(
            net,
            batches,
            workload=setting.workload,
            setting=setting.name,
            method="ours",
            readout=READOUT_EXACT,
            note=note,
        ), net

    def peer_net(self, sub: Task, law: str, width: int, linear: bool = False) -> Network:
        con = UniversalAnd(
            law, width, inputs="linear" if linear else "basis", max_nonzeros=PEER_MAX_NONZEROS
        )
        return con.build(sub, self.rng("build", 1 + LAWS.index(law), width, int(linear)))

    def peer(
        self,
        sub: Task,
        batches: list,
        setting: Setting,
        law: str,
        width: int,
        total: int,
        linear: bool = False,
        skip_hopeless: bool = False,
    ) -> Row:
        method = f"uand-{law}" + ("/lin-in" if linear else "")

        def unbuilt(note: str) -> Row:
            return Row(
                setting.workload, setting.name, method, READOUT_LINEAR, width, None, None, note=note
            )

        if skip_hopeless and law == "bernoulli":
            p = busch_p(sub.features, width)
            if max(sub.sparsity - 1, 1) * p > 0.7:
                return unbuilt(f"not built: p={p:.3g}, mean class-01 error (s-1)p > 0.7 (Busch)")
        self.say(f"{setting.workload} {setting.name}: {method} d={width}")
        try:
            net = self.peer_net(sub, law, width, linear)
        except (SuperposeError, MemoryError) as exc:
            return unbuilt(f"skipped: {exc}")
        params, extra = _peer_params(net, total)
        note = _sample_note(sub, total)
        if net.extras.get("p") is not None:
            note = _join(f"p={net.extras['p']:.3g}", note)
        if linear:
            note = _join(f"linear-code inputs, d_in={net.input_code.width}", note)
        return measure(
            net,
            batches,
            workload=setting.workload,
            setting=setting.name,
            method=method,
            readout=READOUT_LINEAR,
            width=width,
            outputs_total=total,
            parameters=params,
            extrapolated=extra,
            note=note,
        )

    def trained_rows(
        self,
        sub: Task,
        batches: list,
        setting: Setting,
        widths: list[int],
        total: int,
        *,
        input_code: Any = None,
        output_code: Any = None,
        label: str = "trained",
        steps: int | None = None,
        lr: float = 3e-3,
        pos_weight: float | str = "sqrt",
    ) -> list[Row]:
        if not self.trained or not widths:
            return []
        from superpose.peers.trained import train_mlp

        steps = steps or setting.trained_steps
        self.say(f"{setting.workload} {setting.name}: {label} widths {widths}")
        loss_path = None
        if self.loss_dir is not None:
            loss_path = self.loss_dir / _slug(f"loss {setting.workload} {setting.name} {label}")
            self.loss_files += [str(loss_path) + ".csv", str(loss_path) + ".png"]
        t0 = time.perf_counter()
        nets = train_mlp(
            sub,
            widths,
            steps=steps,
            batch_size=setting.trained_batch,
            lr=lr,
            pos_weight=pos_weight,
            seed=self.seed,
            input_code=input_code,
            output_code=output_code,
            threads=self.torch_threads,
            device=self.device,
            on_step=self.on_train_step,
            loss_path=loss_path,
        )
        train_s = (time.perf_counter() - t0) / len(widths)
        rows = []
        for w, net in zip(widths, nets, strict=True):
            params, extra = (
                _peer_params(net, total)
                if isinstance(net.output_code, ExplicitCode)
                else (int(net.counts().nonzero_parameters), False)
            )
            seen = steps * setting.trained_batch * sub.sparsity / sub.features
            note = _join(
                f"{steps} steps x {setting.trained_batch} inputs (each feature on ~{seen:.0f} times)",
                _sample_note(sub, total),
            )
            row = measure(
                net,
                batches,
                workload=setting.workload,
                setting=setting.name,
                method=label,
                readout=READOUT_TRAINED,
                width=w,
                outputs_total=total,
                parameters=params,
                extrapolated=extra,
                note=note,
            )
            row.seconds += train_s
            rows.append(row)
        return rows

    # -- workloads -------------------------------------------------------------------------
    def peer_inputs(
        self, task: Task, setting: Setting, full_batches: list, res: WorkloadResult, note: str
    ) -> tuple[Task, list]:
        """The outputs the peers and trained nets are built for (a random sample when the task
        is too large for dense read-offs) and their verifier batches; ``note`` (with ``{}`` for
        the sample size) goes to ``res.notes`` when the outputs were sampled."""
        sub = sample_outputs(task, setting.max_outputs, self.rng("sample"))
        if sub is task:
            return task, full_batches
        res.notes.append(note.replace("{}", f"{sub.n_outputs:,}", 1))
        batches = _batches(
            sub, setting.peer_inputs, self.rng("verify", 1), _batch_size(sub.n_outputs)
        )
        return sub, batches

    def sweep(self, setting: Setting) -> WorkloadResult:
        res = WorkloadResult()
        t0 = time.perf_counter()
        task = setting.make_task(self.rng("task"))
        total = task.n_outputs
        full_batches = _batches(
            task, setting.inputs, self.rng("verify", 0), _batch_size(total if total < 5000 else 200)
        )
        if "naive" in self.methods:
            res.rows.append(self.naive(task, full_batches, setting))
        if "ours" in self.methods:
            row, _ = self.ours(task, full_batches, setting)
            res.rows.append(row)
        res.ours_available = OURS in CONSTRUCTIONS
        sub, peer_batches = self.peer_inputs(
            task,
            setting,
            full_batches,
            res,
            f"{setting.workload} {setting.name}: peers and trained nets built for {{}} random outputs of {total:,} (errors measured on those; read-off parameters extrapolated to all)",
        )
        for law in self.laws(setting):
            for width in setting.peer_widths:
                res.rows.append(self.peer(sub, peer_batches, setting, law, width, total))
        if setting.linear_inputs and "rademacher" in self.methods:
            for width in setting.peer_widths[-1:]:
                res.rows.append(
                    self.peer(sub, peer_batches, setting, "rademacher", width, total, linear=True)
                )
        res.rows += self.trained_rows(sub, peer_batches, setting, setting.trained_widths, total)
        if not setting.trained_widths and setting.workload == "W2" and self.trained:
            res.notes.append(
                f"{setting.workload} {setting.name}: trained baseline skipped at this size (a dense read-off per output is too large to train on 2 cores)"
            )
        res.seconds = time.perf_counter() - t0
        return res

    def search(self, setting: Setting) -> WorkloadResult:
        """W3: the fewest neurons each method needs for zero wrong outputs on the verifier's inputs."""
        res = WorkloadResult()
        t0 = time.perf_counter()
        task = setting.make_task(self.rng("task"))
        m, mp = task.features, task.n_outputs
        lb, lb_name = lower_bound(m, mp)
        res.bounds[setting.name] = {"m": m, "m_prime": mp, "neurons": lb, "bound": lb_name}
        full_batches = _batches(task, setting.inputs, self.rng("verify", 0), 256)
        if "naive" in self.methods:
            naive_row = self.naive(task, full_batches, setting)
            res.rows.append(naive_row)
            res.needs.append(
                Need(
                    setting.name,
                    m,
                    mp,
                    "naive",
                    READOUT_EXACT,
                    naive_row.neurons,
                    None,
                    naive_row.inputs_with_error == 0,
                    naive_row.neurons,
                    "exact by construction",
                )
            )
        our_net, our_neurons = self._ours_need(task, full_batches, setting, res)
        sub, peer_batches = self.peer_inputs(
            task,
            setting,
            full_batches,
            res,
            f"W3 {setting.name}: peers and trained nets built for {{}} random outputs of {mp:,} (zero errors on that sample is a weaker claim than on all outputs; read-off parameters extrapolated)",
        )
        for law in self.laws(setting):
            need, row = self._search_peer(sub, peer_batches, setting, law, mp)
            res.needs.append(need)
            if row is not None:
                res.rows.append(row)
            if our_neurons:
                r = self.peer(sub, peer_batches, setting, law, our_neurons, mp, skip_hopeless=True)
                r.note = _join(f"d = our neuron count ({our_neurons:,}); inputs extra", r.note)
                res.rows.append(r)
        if self.trained and our_neurons:
            self._trained_needs(
                task, sub, full_batches, peer_batches, setting, our_neurons, our_net, res
            )
        res.seconds = time.perf_counter() - t0
        return res

    def _ours_need(
        self, task: Task, full_batches: list, setting: Setting, res: WorkloadResult
    ) -> tuple[Network | None, int | None]:
        """W3, ours: default parameters, then the smallest width_scale that still passes;
        (our network, the neurons the other methods are held to)."""
        m, mp = task.features, task.n_outputs
        res.ours_available = OURS in CONSTRUCTIONS
        our_row, our_net = (None, None)
        if "ours" in self.methods:
            our_row, our_net = self.ours(task, full_batches, setting)
            res.rows.append(our_row)
        our_neurons = our_row.neurons if our_row is not None else None
        if our_row is not None and our_net is not None:
            need, best = self._search_ours(task, full_batches, setting, our_row)
            res.needs.append(need)
            if best is not None and best is not our_row:
                res.rows.append(best)
            if need.reached and need.neurons:
                our_neurons = need.neurons
        elif our_row is not None:
            res.needs.append(
                Need(
                    setting.name,
                    m,
                    mp,
                    "ours",
                    READOUT_EXACT,
                    None,
                    None,
                    False,
                    None,
                    our_row.note,
                )
            )
        return our_net, our_neurons

    def _trained_needs(
        self,
        task: Task,
        sub: Task,
        full_batches: list,
        peer_batches: list,
        setting: Setting,
        our_neurons: int,
        our_net: Network | None,
        res: WorkloadResult,
    ) -> None:
        """W3, trained baselines: at our neuron count, and with our codes and widths."""
        m, mp = task.features, task.n_outputs
        rows = self.trained_rows(sub, peer_batches, setting, [our_neurons], mp)
        for r in rows:
            r.note = _join(f"d = our neuron count ({our_neurons:,}); inputs extra", r.note)
            res.needs.append(
                Need(
                    setting.name,
                    m,
                    mp,
                    "trained",
                    READOUT_TRAINED,
                    r.neurons if r.inputs_with_error == 0 else None,
                    r.width,
                    r.inputs_with_error == 0,
                    r.neurons,
                    f"{r.inputs_with_error} of {r.inputs} inputs wrong with d = our neuron count",
                )
            )
        res.rows += rows
        if our_net is not None and isinstance(our_net.output_code, BloomCode):
            rows = self.trained_rows(
                task,
                full_batches,
                setting,
                [0],
                mp,
                input_code=our_net.input_code,
                output_code=our_net.output_code,
                label="trained (our codes)",
                steps=setting.codes_steps,
                lr=1e-2,
                pos_weight=30.0,
            )
            for r in rows:
                r.note = _join(
                    "our Bloom codes and widths, weights trained instead of built", r.note
                )
                res.needs.append(
                    Need(
                        setting.name,
                        m,
                        mp,
                        "trained (our codes)",
                        READOUT_TRAINED,
                        r.neurons if r.inputs_with_error == 0 else None,
                        0,
                        r.inputs_with_error == 0,
                        r.neurons,
                        f"{r.inputs_with_error} of {r.inputs} inputs wrong at our widths",
                    )
                )
            res.rows += rows

    def _search_ours(
        self, task: Task, batches: list, setting: Setting, default_row: Row
    ) -> tuple[Need, Row | None]:
        m, mp = task.features, task.n_outputs
        accepted = CONSTRUCTIONS[OURS].parameters()
        takes_scale = CONSTRUCTIONS[OURS].grows()
        # A self-certifying build grows its own widths; the search must control them itself.
        fixed = {"certify": False} if "certify" in accepted else {}
        ok = default_row.inputs_with_error == 0
        if not takes_scale:
            return Need(
                setting.name,
                m,
                mp,
                "ours",
                READOUT_EXACT,
                default_row.neurons if ok else None,
                None,
                ok,
                default_row.neurons,
                "default parameters only",
            ), None
        best_scale, best_neurons = (1.0, default_row.neurons) if ok else (None, None)
        largest = default_row.neurons
        scales = [0.85, 0.7, 0.6, 0.5, 0.42, 0.35, 0.3, 0.25] if ok else [1.25, 1.5, 2.0, 3.0]
        start, stopped = time.perf_counter(), ""
        per_build = max(60.0, 4 * self.ours_build_seconds)

        def build_and_check(scale: float) -> tuple[int, bool]:
            net = self.ours_net(task, width_scale=scale, **fixed)
            return int(net.counts().neurons), passes(net, batches)

        def probe(scale: float) -> bool | None:
            """Whether ``scale`` passes; None when the budget or a build's time runs out."""
            nonlocal best_scale, best_neurons, largest, stopped
            left = setting.search_seconds - (time.perf_counter() - start)
            if left < 5:
                stopped = f"search stopped by its {setting.search_seconds:.0f} s budget"
                return None
            self.say(f"W3 {setting.name}: ours width_scale={scale}")
            done, got = _probe(lambda: build_and_check(scale), min(per_build, left))
            if not done:
                stopped = f"width_scale={scale}: {got}; search stopped"
                return None
            n, ok_here = got
            largest = max(largest or 0, n)
            if ok_here and (best_neurons is None or n < best_neurons):
                best_scale, best_neurons = scale, n
            return ok_here

        # Down the ladder while the scales pass (from a passing default), or up it until
        # one passes: the bracketing walk of every width search, without the bisection.
        walk(probe, scales, until=not ok)
        best_net = None
        if best_scale not in (None, 1.0):
            best_net = self.ours_net(task, width_scale=best_scale, **fixed)
        if best_scale is None:
            return Need(
                setting.name,
                m,
                mp,
                "ours",
                READOUT_EXACT,
                None,
                None,
                False,
                largest,
                _join("no zero-error width found up to width_scale 3", stopped),
            ), None
        row = None
        if best_net is not None:
            row = measure(
                best_net,
                batches,
                workload=setting.workload,
                setting=setting.name,
                method="ours",
                readout=READOUT_EXACT,
                note=f"smallest passing width_scale={best_scale}",
            )
        return Need(
            setting.name,
            m,
            mp,
            "ours",
            READOUT_EXACT,
            best_neurons,
            None,
            True,
            largest,
            _join(f"width_scale={best_scale}", stopped),
        ), row

    def _search_peer(
        self, sub: Task, batches: list, setting: Setting, law: str, total: int
    ) -> tuple[Need, Row | None]:
        """Doubling then bisection over the hidden width d (to ~12%), capped by memory.

        Bernoulli starts where Busch's p = ln(m)^2/sqrt(d) gives a mean class-01 error
        (s - 1) p of 0.7: narrower networks read most 01 pairs as true and cannot pass.
        """
        m = sub.features
        method = f"uand-{law}"
        d, cap = 64, 32_768
        skipped = ""
        if law == "bernoulli":
            s1 = max(sub.sparsity - 1, 1)
            start = math.ceil((s1 * math.log(m) ** 2 / 0.7) ** 2)
            if start > d:
                d = start
                skipped = f"widths below {start} skipped: (s-1)p > 0.7"
        note, largest = "", None

        def probe(width: int) -> bool | None:
            nonlocal note, largest
            self.say(f"W3 {setting.name}: {method} d={width}")
            try:
                net = self.peer_net(sub, law, width)
            except (SuperposeError, MemoryError) as exc:
                note = f"stopped at d={width}: {exc}"
                return None
            largest = width
            return passes(net, batches)

        doubling = itertools.takewhile(lambda w: w <= cap, (d * 2**i for i in itertools.count()))
        w = walk(probe, doubling, until=True)
        first_pass, last_fail = w.hit, (w.before or 0)
        if first_pass is None and not w.stopped:
            nxt = d if largest is None else largest * 2
            note = (
                f"the first width d={nxt} exceeds the cap {cap}"
                if largest is None
                else f"no zero-error width up to d={largest} (the next, {nxt}, exceeds the cap {cap})"
            )
        note = _join(note, skipped)
        if first_pass is None:
            row = None
            if largest is not None:
                row = self.peer(sub, batches, setting, law, largest, total)
                row.note = _join(f"largest width tried; {note}", row.note)
            return Need(
                setting.name,
                m,
                total,
                method,
                READOUT_LINEAR,
                None,
                None,
                False,
                (m + largest) if largest else None,
                note,
            ), row

        def passes_at(width: int) -> bool:
            self.say(f"W3 {setting.name}: {method} d={width}")
            return passes(self.peer_net(sub, law, width), batches)

        _, hi, _ = bisect(
            passes_at,
            last_fail,
            first_pass,
            mid=lambda a, b: (a + b) // 2,
            close=lambda a, b: b - a <= max(8, b // 8),
        )
        row = self.peer(sub, batches, setting, law, hi, total)
        row.note = _join("fewest hidden neurons with zero errors (bisection to ~12%)", row.note)
        return Need(
            setting.name,
            m,
            total,
            method,
            READOUT_LINEAR,
            m + hi,
            hi,
            True,
            m + first_pass,
            _join(_sample_note(sub, total), skipped),
        ), row


def _slug(text: str) -> str:
    """A file-name-safe form of ``text``: letters, digits, ``-`` and ``=`` only."""
    out = "".join(c if c.isalnum() or c in "=-" else "-" for c in text)
    return "-".join(p for p in out.split("-") if p)[:120]


def _sample_note(sub: Task, total: int) -> str:
    return f"{sub.n_outputs:,} of {total:,} outputs" if sub.n_outputs < total else ""


def run_workload(
    name: str,
    *,
    quick: bool = False,
    seed: int = 0,
    trained: bool = True,
    progress: Progress | None = None,
    torch_threads: int = 1,
    methods: Sequence[str] | None = None,
    ours_params: dict[str, Any] | None = None,
    task: Task | None = None,
    device: str | None = "cpu",
    loss_dir: str | os.PathLike[str] | None = None,
    on_train_step: Callable[[int, int, np.ndarray], None] | None = None,
) -> WorkloadResult:
    """Run one workload (``W1``, ``W2``, ``W3``) or ``all``; see the module docstring.

    ``methods`` picks among :data:`METHODS` (all by default); ``ours_params`` are passed to the
    ``superposed`` construction (e.g. ``{"failure": 1e-4}``). ``task`` runs the comparison on
    that task instead of a workload (:func:`task_setting`; ``name`` is then ignored).

    Trained baselines: ``device`` (``cpu``, ``cuda``, ``mps``) is where they train;
    ``on_train_step(done, steps, losses)`` reports every step (the CLI's progress bar);
    ``loss_dir`` receives each training run's loss curve as ``loss-*.csv`` and ``loss-*.png``
    (listed in the result's notes).

    Example:
        >>> r = run_workload("W1", quick=True, trained=False)  # doctest: +SKIP
        >>> {row.readout for row in r.rows} == {"exact-threshold", "linear read-off"}  # doctest: +SKIP
        True
    """
    names = list(WORKLOADS) if name.lower() == "all" else [name.upper()]
    for n in names if task is None else []:
        if n not in WORKLOADS:
            raise SuperposeError(f"unknown workload {name!r} (known: {', '.join(WORKLOADS)}, all)")
    chosen = list(METHODS if methods is None else methods)
    for meth in chosen:
        if meth not in METHODS:
            raise SuperposeError(f"unknown method {meth!r} (known: {', '.join(METHODS)})")
    runner = _Runner(
        seed,
        trained,
        progress,
        torch_threads,
        chosen,
        ours_params,
        device=device,
        loss_dir=loss_dir,
        on_train_step=on_train_step,
    )
    result = WorkloadResult(seeds=runner.seeds.record())
    if runner.torch_missing:
        result.notes.append(
            "trained baselines skipped: torch is not installed (pip install 'superpose[torch]')"
        )
    if OURS not in CONSTRUCTIONS and "ours" in chosen:
        result.notes.append(f"ours: construction {OURS!r} is not available in this install")
    if task is not None:
        setting = task_setting(task, quick)
        if not setting.laws and any(law in chosen for law in LAWS):
            result.notes.append(
                f"{setting.name}: universal-AND peers skipped (they compute one-level 2-input "
                "ANDs of input features only)"
            )
        result.extend(runner.sweep(setting))
    else:
        for n in names:
            for setting in workload_settings(n, quick):
                result.extend(runner.search(setting) if setting.search else runner.sweep(setting))
    if runner.loss_files:
        result.notes.append("loss curves: " + ", ".join(runner.loss_files))
    return result
