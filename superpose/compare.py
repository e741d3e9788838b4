"""The comparison harness (docs/DESIGN.md, Comparison): every method on identical workloads, identical metrics.

Methods: ``naive`` (one ReLU per gate, exact), ``ours`` (the ``superposed`` construction, Bloom
codes, exact after thresholding), Hänni et al.'s universal AND with Bernoulli, Rademacher and
Gaussian weights (linear read-offs, :mod:`superpose.peers.universal_and`), and trained ReLU
MLPs (:mod:`superpose.peers.trained`, when torch is installed). Every result carries its
read-out kind: ``exact-threshold``, ``linear read-off`` or ``trained``.

Metrics per (method, width), on the same verifier inputs (s-sparse; half hold every operand of
a random output gate, half all but one):

* the read-off error ``|value - truth|`` per input class ``00``/``01``/``11`` (how many of the
  gate's operands are on): max, 90% quantile, mean, and the signed mean (bias). ``value`` is
  the network's last layer for explicit outputs (the linear read-off of the peers and trained
  nets, the ReLU output of the naive net) and the decoded 0/1 output for Bloom-coded outputs;
* Boolean accuracy after thresholding at 1/2 and the fraction of inputs with any wrong output,
  both from the shared verifier (:func:`superpose.verification.check_batch`).

Workloads: ``W1`` (m = 30, s = 5, all 435 pairs, widths 30..800; Busch's thesis setting),
``W2`` (universal AND, m in {100, 1000}, s in {2, 3, 5}), ``W3`` (random pairs, m' in
{1e3, 1e4, 1e5}, s = 2, m = min(m', 1e4)): for W3 each method's fewest neurons reaching zero
thresholded errors on the verifier's inputs. ``quick=True`` trims every size (for tests).
A user's own task runs as one setting (:func:`task_setting`; ``superpose compare --task``).

Memory: dense read-offs of the peers over all C(1000, 2) = 499,500 pairs (or 1e5 W3 pairs)
would not fit, so peers and trained nets are built for a random sample of the outputs (their
errors are measured on that sample and their parameter counts extrapolated to all outputs;
the table says so). Naive and ours always run on every output, with sparse arrays only.

Example:
    >>> from superpose.compare import run_workload
    >>> result = run_workload("W1", quick=True, trained=False)  # doctest: +SKIP
    >>> sorted({row.method for row in result.rows})  # doctest: +SKIP
    ['naive', 'ours', 'uand-bernoulli', 'uand-gaussian', 'uand-rademacher']
"""

from __future__ import annotations

import math
import os
import time
from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
from scipy import sparse

from superpose.codes import BloomCode, ExplicitCode, LinearCode
from superpose.constructions import CONSTRUCTIONS, build
from superpose.errors import SuperposeError
from superpose.evaluation import GroundTruth, evaluate
from superpose.families import pairs, universal_and
from superpose.network import Network
from superpose.peers.universal_and import (
    LAWS,
    READOUT_EXACT,
    READOUT_LINEAR,
    READOUT_TRAINED,
    UniversalAnd,
    busch_p,
)
from superpose.task import Task
from superpose.verification import VerificationReport, check_batch, class_label, random_inputs

WORKLOADS = ("W1", "W2", "W3")
METHODS = ("naive", "ours", "bernoulli", "rademacher", "gaussian", "trained")
OURS = "superposed"
_HIST_EDGES = np.logspace(-9, 4, 1301)
_MAX_STORED = 4_000_000
_DENSE_CACHE_LIMIT = 60_000_000
PEER_MAX_NONZEROS = 30_000_000

Progress = Callable[[str], None]


# --- error statistics ---------------------------------------------------------------------


@dataclass
class ClassStats:
    """Read-off errors of one input class: counts, sums, the max and a quantile sketch."""

    count: int = 0
    zeros: int = 0
    sum_abs: float = 0.0
    sum_signed: float = 0.0
    max_abs: float = 0.0
    hist: np.ndarray = field(default_factory=lambda: np.zeros(len(_HIST_EDGES) + 1, np.int64))
    stored: list[np.ndarray] = field(default_factory=list)
    n_stored: int = 0
    overflow: bool = False

    def add(self, errors: np.ndarray, zeros: int) -> None:
        """Add signed non-zero errors and a number of exact zeros."""
        errors = np.asarray(errors, dtype=np.float64)
        a = np.abs(errors)
        self.count += len(a) + int(zeros)
        self.zeros += int(zeros)
        if len(a) == 0:
            return
        self.sum_abs += float(a.sum())
        self.sum_signed += float(errors.sum())
        self.max_abs = max(self.max_abs, float(a.max()))
        self.hist += np.bincount(np.searchsorted(_HIST_EDGES, a), minlength=len(self.hist))
        if not self.overflow:
            if self.n_stored + len(a) > _MAX_STORED:
                self.overflow, self.stored = True, []
            else:
                self.stored.append(a.astype(np.float32))
                self.n_stored += len(a)

    def quantile(self, q: float) -> float:
        """The q-quantile of |error| (exact below 4e6 non-zero values, else within ~2.3%)."""
        if self.count == 0:
            return float("nan")
        rank = q * (self.count - 1)
        if rank < self.zeros:
            return 0.0
        if not self.overflow:
            values = np.sort(np.concatenate(self.stored)) if self.stored else np.zeros(0)
            r = rank - self.zeros
            lo = int(math.floor(r))
            hi = min(lo + 1, len(values) - 1)
            return float(values[lo] + (values[hi] - values[lo]) * (r - lo))
        cum = np.cumsum(self.hist) + self.zeros
        b = int(np.searchsorted(cum, rank + 1))
        lo = _HIST_EDGES[b - 1] if b >= 1 else 0.0
        hi = _HIST_EDGES[b] if b < len(_HIST_EDGES) else self.max_abs
        return float(min(math.sqrt(max(lo, 1e-12) * hi), self.max_abs))

    def summary(self) -> dict[str, float | int]:
        n = max(self.count, 1)
        return {
            "count": self.count,
            "max": self.max_abs if self.count else float("nan"),
            "q90": self.quantile(0.9),
            "mean": self.sum_abs / n if self.count else float("nan"),
            "bias": self.sum_signed / n if self.count else float("nan"),
        }


class ErrorAccumulator:
    """Per-class read-off errors over many batches; dense or sparse values, never (batch x m') dense when sparse.

    Example:
        >>> from superpose import Task
        >>> from superpose.evaluation import evaluate
        >>> t = Task.from_gates(3, 2, [("and", [0, 1]), ("and", [1, 2])])
        >>> x = np.array([[1, 1, 0]])
        >>> acc = ErrorAccumulator(t)
        >>> acc.add(np.array([[0.75, 0.25]]), evaluate(t, x))
        >>> {k: round(v["max"], 2) for k, v in acc.summary().items()}
        {'01': 0.25, '11': 0.25}
    """

    def __init__(self, task: Task) -> None:
        is_gate = task.outputs >= task.features
        arity = np.ones(task.n_outputs, dtype=np.int64)
        arity[is_gate] = task.arity[task.outputs[is_gate] - task.features]
        self.arity = arity
        self.uniform_arity = int(arity[0]) if (arity == arity[0]).all() else None
        self.stats: dict[str, ClassStats] = {}

    def _cls(self, label: str) -> ClassStats:
        return self.stats.setdefault(label, ClassStats())

    def add(self, values: Any, truth: GroundTruth) -> None:
        """Add a batch: ``values`` (batch, outputs), dense or sparse, against ``truth``."""
        act = sparse.csr_array(truth.active_operands)
        n, k = act.shape
        if sparse.issparse(values):
            err = sparse.csr_array(
                sparse.csr_array(values, dtype=np.float64) - truth.values.astype(np.float64)
            )
            err.eliminate_zeros()
            e = err.tocoo()
            akeys = np.repeat(np.arange(n, dtype=np.int64), np.diff(act.indptr)) * k + act.indices
            order = np.argsort(akeys)
            akeys, avals = akeys[order], act.data[order]
            ekeys = e.coords[0].astype(np.int64) * k + e.coords[1]
            pos = np.searchsorted(akeys, ekeys)
            pos_c = np.minimum(pos, max(len(akeys) - 1, 0))
            hit = (
                (pos < len(akeys)) & (akeys[pos_c] == ekeys)
                if len(akeys)
                else np.zeros(len(ekeys), bool)
            )
            e_active = np.where(hit, avals[pos_c] if len(akeys) else 0, 0)
            ar = self.arity[e.coords[1]]
            # Totals per (arity, active) class: stored entries of act, the rest are class 0.
            a_ar = self.arity[act.indices]
            totals: dict[tuple[int, int], int] = {}
            for key, cnt in zip(
                *np.unique(a_ar * 1000 + act.data, return_counts=True), strict=True
            ):
                totals[divmod(int(key), 1000)] = int(cnt)
            ar_vals, ar_counts = np.unique(self.arity, return_counts=True)
            for kk, cnt in zip(ar_vals.tolist(), ar_counts.tolist(), strict=True):
                nonzero = sum(v for (a, _), v in totals.items() if a == kk)
                totals[(kk, 0)] = n * cnt - nonzero
            keys = ar * 1000 + e_active
            for (kk, a), total in totals.items():
                sel = keys == kk * 1000 + a
                errs = e.data[sel]
                self._cls(class_label(a, kk)).add(errs, total - len(errs))
            return
        vals = np.asarray(values, dtype=np.float64)
        a_dense = act.toarray()
        err = vals - truth.values.toarray()
        ar = np.broadcast_to(self.arity[None, :], err.shape)
        keys = ar * 1000 + a_dense
        for key in np.unique(keys).tolist():
            kk, a = divmod(int(key), 1000)
            errs = err[keys == key]
            nz = errs[errs != 0]
            self._cls(class_label(a, kk)).add(nz, len(errs) - len(nz))

    def summary(self) -> dict[str, dict[str, float | int]]:
        return {label: st.summary() for label, st in sorted(self.stats.items())}


# --- evaluating one network -----------------------------------------------------------------


@dataclass
class Row:
    """One line of the comparison table."""

    workload: str
    setting: str
    method: str
    readout: str
    width: int | None
    neurons: int | None
    parameters: int | None
    parameters_extrapolated: bool = False
    classes: dict[str, dict[str, float | int]] = field(default_factory=dict)
    values: str = "read-off"
    inputs: int = 0
    outputs_checked: int = 0
    outputs_total: int = 0
    wrong_outputs: int = 0
    inputs_with_error: int = 0
    boolean_accuracy: float = float("nan")
    input_error_fraction: float = float("nan")
    seconds: float = 0.0
    note: str = ""

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


class _DenseCache:
    """The last layer's dense weights for the network they were made from (held, not its
    ``id``, so a freed network's reused id can never serve stale weights)."""

    def __init__(self) -> None:
        self.net: Network | None = None
        self.weight: np.ndarray | None = None


def _values(net: Network, batch: sparse.csr_array, cache: _DenseCache) -> tuple[Any, str]:
    """The per-output values a read-off error is measured on, and what they are."""
    z = net.encode(batch)
    out = net.output_code
    last = net.layers[-1]
    dense_last = (
        last.weight.nnz > 0.1 * last.n_in * last.n_out and last.weight.nnz <= _DENSE_CACHE_LIMIT
    )
    if dense_last and sparse.issparse(z):
        z = z.toarray()
    for layer in net.layers[:-1]:
        z = layer.apply(z)
    if dense_last and last.activation == "linear":
        if cache.net is not net:
            cache.net, cache.weight = net, last.weight.toarray().T.astype(np.float32)
        z = z.toarray() if sparse.issparse(z) else np.asarray(z)
        v = z.astype(np.float32) @ cache.weight
    else:
        v = last.apply(z)
    if isinstance(out, ExplicitCode):
        return v, "read-off"
    if isinstance(out, LinearCode):
        return out.read(v), "read-off"
    return out.decode(v), "decoded"


def measure(
    net: Network,
    batches: Sequence[sparse.csr_array],
    *,
    workload: str = "",
    setting: str = "",
    method: str = "",
    readout: str = READOUT_EXACT,
    width: int | None = None,
    outputs_total: int | None = None,
    parameters: int | None = None,
    extrapolated: bool = False,
    note: str = "",
    errors: bool = True,
) -> Row:
    """Run ``net`` on ``batches``: read-off errors per class and the verifier's Boolean check.

    Example:
        >>> from superpose import families, build
        >>> from superpose.verification import random_inputs
        >>> task = families.universal_and(8, sparsity=3)
        >>> net = build(task, "naive")
        >>> row = measure(net, list(random_inputs(task, 50, np.random.default_rng(0))))
        >>> row.boolean_accuracy, row.classes["11"]["max"]
        (1.0, 0.0)
    """
    t0 = time.perf_counter()
    acc = ErrorAccumulator(net.task)
    report = VerificationReport("random")
    cache = _DenseCache()
    kind = "read-off"
    for batch in batches:
        if errors:
            values, kind = _values(net, batch, cache)
            acc.add(values, evaluate(net.task, batch))
        report.merge(check_batch(net, batch, "random"))
    counts = net.counts()
    n_out = net.task.n_outputs
    checked = report.inputs_checked * n_out
    wrong = report.false_positives + report.false_negatives
    summary = acc.summary()
    for label, row in report.by_class.items():
        summary.setdefault(label, {"count": row["checked"]})
        summary[label]["wrong"] = row["false_positives"] + row["false_negatives"]
    if parameters is None:
        parameters = int(counts["nonzero_parameters"])
    return Row(
        workload=workload,
        setting=setting,
        method=method or net.construction,
        readout=readout,
        width=width,
        neurons=int(counts["neurons"]),
        parameters=int(parameters),
        parameters_extrapolated=extrapolated,
        classes=summary,
        values=kind,
        inputs=report.inputs_checked,
        outputs_checked=n_out,
        outputs_total=outputs_total or n_out,
        wrong_outputs=wrong,
        inputs_with_error=report.inputs_with_error,
        boolean_accuracy=1.0 - wrong / checked if checked else float("nan"),
        input_error_fraction=report.inputs_with_error / max(report.inputs_checked, 1),
        seconds=time.perf_counter() - t0,
        note=note,
    )


def passes(net: Network, batches: Sequence[sparse.csr_array]) -> bool:
    """True when the verifier finds no wrong output on any of ``batches`` (stops at the first error).

    Example:
        >>> from superpose import families, build
        >>> from superpose.verification import random_inputs
        >>> task = families.universal_and(8, sparsity=3)
        >>> passes(build(task, "naive"), list(random_inputs(task, 40, np.random.default_rng(0))))
        True
    """
    for batch in batches:
        if check_batch(net, batch, "random").inputs_with_error:
            return False
    return True


def busch_class_errors(
    net: Network, samples: int = 1000, rng: np.random.Generator | None = None
) -> dict[str, dict[str, float]]:
    """Read-off errors in Busch's protocol (AJB-ajb/SPNNArch): per class, one random pair per input.

    For class ``b1 b2`` each input sets the pair's operands to ``b1``, ``b2`` and turns on
    ``s - 2`` other features, so class 11 inputs have s active features, class 01 inputs s - 1
    and class 00 inputs s - 2 (the harness's own inputs always have s). Needs an explicit
    output (a linear read-off per output). Returns mean, variance, 90% quantile of |error| and
    the mean |error| per class.

    Example:
        >>> from superpose import families
        >>> from superpose.peers import UniversalAnd
        >>> task = families.universal_and(30, sparsity=5)
        >>> net = UniversalAnd("rademacher", 435).build(task, np.random.default_rng(0))
        >>> 0.4 < busch_class_errors(net, 500, np.random.default_rng(1))["11"]["q90"] < 0.9
        True
    """
    if not isinstance(net.output_code, ExplicitCode):
        raise SuperposeError("Busch's protocol reads an explicit output (one read-off per output)")
    task = net.task
    rng = rng if rng is not None else np.random.default_rng(0)
    m, s = task.features, task.sparsity
    gates = task.outputs - task.features
    if (task.outputs < task.features).any() or (task.arity[gates] != 2).any():
        raise SuperposeError("Busch's protocol needs 2-input gates as outputs")
    ops = task.gate_inputs[task.gate_indptr[gates][:, None] + np.arange(2)[None, :]]
    out: dict[str, dict[str, float]] = {}
    cache = _DenseCache()
    for label, bits in (("00", (0, 0)), ("01", (0, 1)), ("11", (1, 1))):
        j = rng.integers(0, len(ops), samples)
        rows = []
        for i in range(samples):
            a, b = ops[j[i]]
            others = rng.permutation(np.setdiff1d(np.arange(m), [a, b]))[: s - 2]
            on = [a] * bits[0] + [b] * bits[1] + others.tolist()
            rows.append(on)
        lengths = np.array([len(r) for r in rows])
        indptr = np.concatenate([[0], np.cumsum(lengths)])
        x = sparse.csr_array(
            (np.ones(indptr[-1], dtype=np.int32), np.concatenate(rows).astype(np.int64), indptr),
            shape=(samples, m),
        )
        values, _ = _values(net, x, cache)
        values = values.toarray() if sparse.issparse(values) else np.asarray(values)
        err = values[np.arange(samples), j] - bits[0] * bits[1]
        out[label] = {
            "mean": float(err.mean()),
            "var": float(err.var(ddof=1)),
            "q90": float(np.quantile(np.abs(err), 0.9)),
            "mae": float(np.abs(err).mean()),
        }
    return out


# --- workloads ------------------------------------------------------------------------------


@dataclass
class Setting:
    """One task of a workload and the widths / sample sizes used on it."""

    workload: str
    name: str
    make_task: Callable[[np.random.Generator], Task]
    peer_widths: list[int]
    trained_widths: list[int]
    inputs: int
    peer_inputs: int
    max_outputs: int
    search: bool = False
    laws: tuple[str, ...] = LAWS
    linear_inputs: bool = False
    trained_steps: int = 600
    trained_batch: int = 256
    search_seconds: float = 240.0
    codes_steps: int = 2000


W1_WIDTHS = [30, 40, 50, 60, 80, 100, 150, 200, 300, 400, 435, 600, 800]


def workload_settings(name: str, quick: bool = False) -> list[Setting]:
    """The settings of workload ``name`` (``W1``, ``W2``, ``W3``), full or ``quick`` (seconds).

    Example:
        >>> [s.name for s in workload_settings("W2", quick=True)]
        ["m=20 s=2 m'=190", "m=20 s=3 m'=190"]
    """
    if name == "W1":
        widths = [30, 100, 435] if quick else W1_WIDTHS
        return [
            Setting(
                "W1",
                "m=30 s=5 m'=435",
                lambda rng: universal_and(30, 5),
                widths,
                widths,
                inputs=300 if quick else 2000,
                peer_inputs=300 if quick else 2000,
                max_outputs=435,
                linear_inputs=False,
                trained_steps=60 if quick else 600,
                trained_batch=64 if quick else 128,
            )
        ]
    if name == "W2":
        if quick:
            grid = [(20, 2), (20, 3)]
        else:
            grid = [(m, s) for m in (100, 1000) for s in (2, 3, 5)]
        out = []
        for m, s in grid:
            big = m >= 1000
            out.append(
                Setting(
                    "W2",
                    f"m={m} s={s} m'={m * (m - 1) // 2}",
                    lambda rng, m=m, s=s: universal_and(m, s),
                    [200, 800] if quick else ([2500, 5000] if big else [500, 2000]),
                    [] if big else ([100] if quick else [500]),
                    inputs=200 if quick else (300 if big else 1000),
                    peer_inputs=200 if quick else (300 if big else 1000),
                    max_outputs=150 if quick else 2000,
                    linear_inputs=not big,
                    trained_steps=40 if quick else 400,
                    trained_batch=64 if quick else 128,
                )
            )
        return out
    if name == "W3":
        sizes = [300] if quick else [1000, 10_000, 100_000]
        out = []
        for mp in sizes:
            m = min(mp, 10_000)
            out.append(
                Setting(
                    "W3",
                    f"m={m} s=2 m'={mp}",
                    lambda rng, m=m, mp=mp: pairs(m, mp, rng, sparsity=2),
                    [],
                    [],
                    inputs=300 if quick else 2000,
                    peer_inputs=100 if quick else 300,
                    max_outputs=150 if quick else 2000,
                    search=True,
                    laws=("rademacher",) if quick else LAWS,
                    trained_steps=40 if quick else 200,
                    trained_batch=64,
                    codes_steps=40 if quick else 2000,
                )
            )
        return out
    raise SuperposeError(f"unknown workload {name!r} (known: {', '.join(WORKLOADS)})")


TASK_MAX_OUTPUTS = 20_000
"""``compare --task``: peers and trained nets of 2-AND tasks run on a sample of this many outputs."""


def task_setting(task: Task, quick: bool = False) -> Setting:
    """The comparison setting for a user's own task (``superpose compare --task FILE``).

    Naive and ours run on the whole task. The universal-AND peers run only when every output is
    a 2-input AND of input features (widths m'/4 and m', at most 2 000), on a sample of at most
    :data:`TASK_MAX_OUTPUTS` outputs; trained MLPs run on any task (widths m'/4 and m', at
    most 1 024 and at least 8; on the same sample for 2-AND tasks), 2 000 steps of 256 inputs
    (40 of 64 with ``quick``).

    Example:
        >>> from superpose import Task
        >>> t = Task.from_gates(6, 2, [("and", [0, 1]), ("xor", [2, 3])])
        >>> st = task_setting(t, quick=True)
        >>> st.name, st.laws, st.trained_widths
        ("task m=6 s=2 m'=2", (), [8])
    """
    from superpose.peers.universal_and import and_operands

    try:
        ops = and_operands(task)
        pairwise = ops.shape[1] == 2
    except SuperposeError:
        pairwise = False
    n = task.n_outputs
    cap = min(n, TASK_MAX_OUTPUTS) if pairwise else n
    widths = sorted({max(8, min(cap // 4, 1024)), max(8, min(cap, 1024))})
    if quick:
        widths = widths[:1]
    source = os.path.basename(task.source) if task.source and task.source != "<memory>" else ""
    name = f"task m={task.features} s={task.sparsity} m'={n}"
    return Setting(
        "task" if not source else source,
        name,
        lambda rng: task,
        [w for w in widths if w <= 2000] if pairwise else [],
        widths,
        inputs=300 if quick else 2000,
        peer_inputs=300 if quick else 1000,
        max_outputs=cap if pairwise else max(n, 1),
        laws=LAWS if pairwise else (),
        trained_steps=40 if quick else 2000,
        trained_batch=64 if quick else 256,
    )


def sample_outputs(task: Task, count: int, rng: np.random.Generator) -> Task:
    """A task computing a random sample of ``count`` of ``task``'s outputs (all of them if fewer).

    Example:
        >>> from superpose import families
        >>> sample_outputs(families.universal_and(100), 50, np.random.default_rng(0)).n_outputs
        50
    """
    if task.n_outputs <= count:
        return task
    chosen = np.sort(rng.choice(task.n_outputs, count, replace=False))
    gates = task.outputs[chosen] - task.features
    if (task.outputs[chosen] < task.features).any() or task.depth > 1:
        raise SuperposeError("output sampling needs a one-level task of gates")
    ops = task.gate_inputs[task.gate_indptr[gates][:, None] + np.arange(2)[None, :]]
    if (task.arity[gates] != 2).any():
        raise SuperposeError("output sampling supports 2-input gates")
    family = dict(task.family or {})
    family["sampled_outputs"] = f"{count} of {task.n_outputs}"
    sub = Task.pairwise(task.features, task.sparsity, ops, op="and", family=family)
    return sub


def _batches(task: Task, count: int, seed: int, batch_size: int) -> list[sparse.csr_array]:
    return list(random_inputs(task, count, np.random.default_rng(seed), batch_size=batch_size))


def _batch_size(outputs: int) -> int:
    return int(max(32, min(1024, 2_000_000 // max(outputs, 1))))


# --- the run --------------------------------------------------------------------------------


@dataclass
class Need:
    """W3: the fewest neurons at which a method had no wrong output on the verifier's inputs."""

    setting: str
    m: int
    m_prime: int
    method: str
    readout: str
    neurons: int | None
    width: int | None
    reached: bool
    largest_tried: int | None
    note: str = ""

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


@dataclass
class WorkloadResult:
    """Rows of one or more workloads, the W3 neuron needs, and notes on trimming."""

    rows: list[Row] = field(default_factory=list)
    needs: list[Need] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)
    bounds: dict[str, dict[str, Any]] = field(default_factory=dict)
    ours_available: bool = True
    seconds: float = 0.0

    def extend(self, other: WorkloadResult) -> None:
        self.rows += other.rows
        self.needs += other.needs
        self.notes += other.notes
        self.bounds.update(other.bounds)
        self.ours_available = self.ours_available and other.ours_available
        self.seconds += other.seconds

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> WorkloadResult:
        """Rebuild a result from :meth:`to_dict` output (e.g. a saved ``compare.json``).

        Example:
            >>> row = Row("W1", "m=30", "naive", READOUT_EXACT, None, 465, 1305)
            >>> WorkloadResult.from_dict(WorkloadResult(rows=[row]).to_dict()).rows[0].neurons
            465
        """
        try:
            return cls(
                rows=[Row(**r) for r in data.get("rows", [])],
                needs=[Need(**n) for n in data.get("w3_neurons_needed", [])],
                notes=list(data.get("notes", [])),
                bounds=dict(data.get("lower_bounds", {})),
                ours_available=bool(data.get("ours_available", True)),
                seconds=float(data.get("seconds", 0.0)),
            )
        except (TypeError, AttributeError) as exc:
            raise SuperposeError(f"not a saved comparison result: {exc}") from None

    def to_dict(self) -> dict[str, Any]:
        return {
            "rows": [r.to_dict() for r in self.rows],
            "w3_neurons_needed": [n.to_dict() for n in self.needs],
            "lower_bounds": self.bounds,
            "notes": self.notes,
            "ours_available": self.ours_available,
            "seconds": self.seconds,
        }


def lower_bound(m: int, m_prime: int) -> tuple[int, str]:
    """Neurons any network computing every set of ``m_prime`` pairs over ``m`` inputs needs.

    Uses :mod:`superpose.bounds` (total neurons of any layered network, 1-bit parameters) when
    it is installed, else the 1-bit counting bound sqrt(log2 C(C(m, 2), m')).

    Example:
        >>> lower_bound(1000, 1000)[0] > 0
        True
    """
    try:
        from superpose import bounds

        fam = bounds.Family("and2", outputs=m_prime, features=m)
        bits = bounds.bits_lower_bound(fam)
        if hasattr(bounds, "total_neurons_lower_bound"):
            return int(
                bounds.total_neurons_lower_bound(bits)
            ), "superpose.bounds.total_neurons_lower_bound (1-bit parameters)"
        return int(
            bounds.neurons_lower_bound(bits)
        ), "superpose.bounds.neurons_lower_bound (1-bit parameters)"
    except (ImportError, AttributeError, TypeError):
        from scipy.special import gammaln

        n = m * (m - 1) // 2
        bits = (gammaln(n + 1) - gammaln(m_prime + 1) - gammaln(n - m_prime + 1)) / math.log(2)
        return int(math.ceil(math.sqrt(bits))), "sqrt(log2 C(C(m,2), m')) (1-bit counting bound)"


def _peer_params(net: Network, total_outputs: int) -> tuple[int, bool]:
    """Non-zero parameters, with the read-off layer extrapolated to ``total_outputs`` outputs."""
    hidden = sum(layer.nonzero_parameters() for layer in net.layers[:-1])
    read = net.layers[-1].nonzero_parameters()
    k = net.task.n_outputs
    if total_outputs <= k:
        return hidden + read, False
    return hidden + int(round(read * total_outputs / k)), True


def _probe(fn: Callable[[], Any], timeout: float) -> tuple[bool, Any]:
    """Run ``fn()`` in a forked child; ``(True, result)``, or ``(False, reason)`` on timeout/error.

    The result must be small and picklable. Used to bound single builds of the construction
    whose cost is not ours to control (a tight width can make its repair step run for minutes).
    """
    import multiprocessing

    ctx = multiprocessing.get_context("fork")
    recv, send = ctx.Pipe(duplex=False)

    def target() -> None:
        try:
            send.send((True, fn()))
        except BaseException as exc:  # reported to the parent, never raised in the child
            send.send((False, f"{type(exc).__name__}: {exc}"))

    proc = ctx.Process(target=target, daemon=True)
    proc.start()
    send.close()
    try:
        if recv.poll(timeout):
            return recv.recv()
        return False, f"no answer within {timeout:.0f} s"
    except EOFError:
        return False, "the probe process died"
    finally:
        if proc.is_alive():
            proc.terminate()
        proc.join(10)
        if proc.is_alive():
            proc.kill()
            proc.join()
        recv.close()


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
            import inspect

            if "certify" in inspect.signature(CONSTRUCTIONS[OURS].__init__).parameters:
                # The build's own exhaustive self-check (which grows the widths until it
                # passes) costs minutes on W1/W2; the harness verifies every network itself.
                self.ours_params["certify"] = False
                self.ours_note = "self-certification off (--ours-param certify=true to enable)"
        trained = trained and "trained" in self.methods
        self.seed = seed
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

    def rng(self, *salt: int) -> np.random.Generator:
        return np.random.default_rng([self.seed, *salt])

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
        return build(task, OURS, rng=self.rng(11), **{**self.ours_params, **params})

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
        return con.build(sub, self.rng(21, LAWS.index(law), width, int(linear)))

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
                else (int(net.counts()["nonzero_parameters"]), False)
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
    def sweep(self, setting: Setting) -> WorkloadResult:
        res = WorkloadResult()
        t0 = time.perf_counter()
        task = setting.make_task(self.rng(1))
        total = task.n_outputs
        full_batches = _batches(
            task, setting.inputs, self.seed + 101, _batch_size(total if total < 5000 else 200)
        )
        if "naive" in self.methods:
            res.rows.append(self.naive(task, full_batches, setting))
        if "ours" in self.methods:
            row, _ = self.ours(task, full_batches, setting)
            res.rows.append(row)
        res.ours_available = OURS in CONSTRUCTIONS
        sub = sample_outputs(task, setting.max_outputs, self.rng(2))
        if sub is not task:
            res.notes.append(
                f"{setting.workload} {setting.name}: peers and trained nets built for {sub.n_outputs:,} random outputs of {total:,} (errors measured on those; read-off parameters extrapolated to all)"
            )
        peer_batches = (
            full_batches
            if sub is task
            else _batches(sub, setting.peer_inputs, self.seed + 102, _batch_size(sub.n_outputs))
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
        task = setting.make_task(self.rng(1))
        m, mp = task.features, task.n_outputs
        lb, lb_name = lower_bound(m, mp)
        res.bounds[setting.name] = {"m": m, "m_prime": mp, "neurons": lb, "bound": lb_name}
        full_batches = _batches(task, setting.inputs, self.seed + 101, 256)
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
        # ours: default parameters, then the smallest width_scale that still passes.
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
        sub = sample_outputs(task, setting.max_outputs, self.rng(2))
        if sub is not task:
            res.notes.append(
                f"W3 {setting.name}: peers and trained nets built for {sub.n_outputs:,} random outputs of {mp:,} (zero errors on that sample is a weaker claim than on all outputs; read-off parameters extrapolated)"
            )
        peer_batches = (
            full_batches
            if sub is task
            else _batches(sub, setting.peer_inputs, self.seed + 102, _batch_size(sub.n_outputs))
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
        res.seconds = time.perf_counter() - t0
        return res

    def _search_ours(
        self, task: Task, batches: list, setting: Setting, default_row: Row
    ) -> tuple[Need, Row | None]:
        m, mp = task.features, task.n_outputs
        import inspect

        accepted = inspect.signature(CONSTRUCTIONS[OURS].__init__).parameters
        takes_scale = "width_scale" in accepted
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

        def probe(scale: float) -> tuple[int, bool]:
            net = self.ours_net(task, width_scale=scale, **fixed)
            return int(net.counts()["neurons"]), passes(net, batches)

        for scale in scales:
            left = setting.search_seconds - (time.perf_counter() - start)
            if left < 5:
                stopped = f"search stopped by its {setting.search_seconds:.0f} s budget"
                break
            self.say(f"W3 {setting.name}: ours width_scale={scale}")
            done, got = _probe(lambda scale=scale: probe(scale), min(per_build, left))
            if not done:
                stopped = f"width_scale={scale}: {got}; search stopped"
                break
            n, ok_here = got
            largest = max(largest or 0, n)
            if ok_here:
                if best_neurons is None or n < best_neurons:
                    best_scale, best_neurons = scale, n
                if not ok:
                    break
            elif ok:
                break
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
        last_fail, first_pass, note = 0, None, ""
        largest = None
        while d <= cap:
            self.say(f"W3 {setting.name}: {method} d={d}")
            try:
                net = self.peer_net(sub, law, d)
            except (SuperposeError, MemoryError) as exc:
                note = f"stopped at d={d}: {exc}"
                break
            largest = d
            if passes(net, batches):
                first_pass = d
                break
            last_fail = d
            d *= 2
        else:
            note = (
                f"the first width d={d} exceeds the cap {cap}"
                if largest is None
                else f"no zero-error width up to d={largest} (the next, {d}, exceeds the cap {cap})"
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
        lo, hi = last_fail, first_pass
        while hi - lo > max(8, hi // 8):
            mid = (lo + hi) // 2
            self.say(f"W3 {setting.name}: {method} d={mid}")
            if passes(self.peer_net(sub, law, mid), batches):
                hi = mid
            else:
                lo = mid
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


def _join(*parts: str) -> str:
    return "; ".join(p for p in parts if p)


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
    result = WorkloadResult()
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


# --- presentation ---------------------------------------------------------------------------

COLUMNS = (
    "workload",
    "setting",
    "method",
    "read-out",
    "d",
    "neurons",
    "params",
    "max |err| 00/01/11",
    "q90 |err| 00/01/11",
    "mean |err| 00/01/11",
    "bool acc",
    "inputs wrong",
    "note",
)


def _fmt(x: float | int | None, digits: int = 3) -> str:
    if x is None or (isinstance(x, float) and math.isnan(x)):
        return "—"
    if isinstance(x, int) or float(x).is_integer() and abs(x) >= 1000:
        return f"{int(x):,}"
    return f"{x:.{digits}g}" if abs(x) >= 1e-3 or x == 0 else f"{x:.1e}"


def _triple(row: Row, key: str) -> str:
    labels = ("00", "01", "11")
    vals = [row.classes.get(lab, {}).get(key) for lab in labels]
    return "/".join(_fmt(v, 2) for v in vals)


def table_rows(result: WorkloadResult) -> list[list[str]]:
    """The comparison table as strings, one list per row (columns: :data:`COLUMNS`).

    Example:
        >>> row = Row("W1", "m=30", "naive", READOUT_EXACT, None, 465, 1305)
        >>> table_rows(WorkloadResult(rows=[row]))[0][:6]
        ['W1', 'm=30', 'naive', 'exact-threshold', '—', '465']
    """
    out = []
    for r in result.rows:
        params = (
            "—"
            if r.parameters is None
            else ("≈" if r.parameters_extrapolated else "") + f"{r.parameters:,}"
        )
        acc = "—" if math.isnan(r.boolean_accuracy) else f"{r.boolean_accuracy:.6f}"
        wrong = "—" if not r.inputs else f"{r.input_error_fraction:.3g}"
        note = r.note
        if r.values == "decoded" and r.inputs:
            note = _join("errors of the decoded 0/1 output (no linear read-off)", note)
        out.append(
            [
                r.workload,
                r.setting,
                r.method,
                r.readout,
                "—" if r.width is None else str(r.width),
                "—" if r.neurons is None else f"{r.neurons:,}",
                params,
                _triple(r, "max"),
                _triple(r, "q90"),
                _triple(r, "mean"),
                acc,
                wrong,
                note,
            ]
        )
    return out


NEED_COLUMNS = (
    "setting",
    "method",
    "read-out",
    "neurons for 0 errors",
    "hidden d",
    "lower bound",
    "note",
)


def need_rows(result: WorkloadResult) -> list[list[str]]:
    """The W3 summary: fewest neurons with zero thresholded errors per method and setting.

    Example:
        >>> need = Need("m'=1000", 1000, 1000, "naive", READOUT_EXACT, 2000, None, True, 2000)
        >>> need_rows(WorkloadResult(needs=[need]))[0][3]
        '2,000'
    """
    out = []
    for n in result.needs:
        lb = result.bounds.get(n.setting, {}).get("neurons")
        if n.reached:
            got = f"{n.neurons:,}" if n.neurons is not None else "—"
        else:
            got = "not reached" + (f" (tried up to {n.largest_tried:,})" if n.largest_tried else "")
        out.append(
            [
                n.setting,
                n.method,
                n.readout,
                got,
                "—" if n.width is None else str(n.width),
                "—" if lb is None else f"{lb:,}",
                n.note,
            ]
        )
    return out


def markdown(result: WorkloadResult) -> str:
    """The tables as GitHub Markdown (the README's comparison section).

    Example:
        >>> row = Row("W1", "m=30", "naive", READOUT_EXACT, None, 465, 1305)
        >>> markdown(WorkloadResult(rows=[row])).splitlines()[2][:30]
        '| W1 | m=30 | naive | exact-th'
    """

    def md(header: Sequence[str], rows: list[list[str]]) -> str:
        lines = ["| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
        lines += ["| " + " | ".join(c.replace("|", "/") for c in row) + " |" for row in rows]
        return "\n".join(lines)

    parts = [md(COLUMNS, table_rows(result))]
    if result.needs:
        parts.append(
            "**W3: fewest neurons with zero thresholded errors on the verifier's inputs**\n\n"
            + md(NEED_COLUMNS, need_rows(result))
        )
    if result.notes:
        parts.append("\n".join(f"- {n}" for n in result.notes))
    return "\n\n".join(parts) + "\n"


def plot(result: WorkloadResult, path: str) -> None:
    """Neurons needed for zero errors against m' (W3), one curve per method, with the lower bound.

    Example:
        >>> import os, tempfile
        >>> need = Need("m'=1000", 1000, 1000, "naive", READOUT_EXACT, 2000, None, True, 2000)
        >>> path = os.path.join(tempfile.mkdtemp(), "w3.png")
        >>> plot(WorkloadResult(needs=[need], bounds={"a": {"m_prime": 1000, "neurons": 202}}), path)
        >>> os.path.getsize(path) > 0
        True
    """
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    if not result.needs:
        raise SuperposeError("the plot needs W3 results (run --workload W3 or all)")
    fig, ax = plt.subplots(figsize=(9.5, 5.2))
    methods = sorted({n.method for n in result.needs})
    colors = plt.rcParams["axes.prop_cycle"].by_key()["color"]
    for i, method in enumerate(methods):
        color = colors[i % len(colors)]
        pts = sorted(
            (n.m_prime, n.neurons)
            for n in result.needs
            if n.method == method and n.reached and n.neurons
        )
        miss = sorted(
            (n.m_prime, n.largest_tried)
            for n in result.needs
            if n.method == method and not n.reached and n.largest_tried
        )
        label = method + ("" if pts else " (never error-free)")
        if pts:
            xs, ys = zip(*pts, strict=True)
            ax.plot(xs, ys, marker="o", color=color, label=label)
        if miss:
            xs, ys = zip(*miss, strict=True)
            ax.scatter(
                xs,
                ys,
                marker="^",
                s=50,
                facecolors="none",
                edgecolors=color,
                label=None if pts else label,
            )
    bpts = sorted((b["m_prime"], b["neurons"]) for b in result.bounds.values())
    if bpts:
        xs, ys = zip(*bpts, strict=True)
        ax.plot(xs, ys, "k--", label="lower bound (1-bit parameters)")
    ax.set_xscale("log")
    ax.set_yscale("log")
    ax.set_xlabel("m' (target pairs)")
    ax.set_ylabel("neurons for zero thresholded errors")
    ax.set_title(
        "W3: neurons for zero errors (m = min(m', 10^4), s = 2; input layer counted)\n"
        "open triangles: largest width tried, still with errors",
        fontsize=10,
    )
    ax.legend(fontsize=8, loc="upper left", bbox_to_anchor=(1.01, 1.0))
    fig.tight_layout()
    fig.savefig(path, dpi=120)
    plt.close(fig)


__all__ = [
    "COLUMNS",
    "METHODS",
    "busch_class_errors",
    "ClassStats",
    "ErrorAccumulator",
    "Need",
    "Row",
    "Setting",
    "WORKLOADS",
    "WorkloadResult",
    "lower_bound",
    "markdown",
    "measure",
    "need_rows",
    "passes",
    "plot",
    "run_workload",
    "sample_outputs",
    "table_rows",
    "task_setting",
    "workload_settings",
]
