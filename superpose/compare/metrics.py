"""Error statistics and measuring one network on verifier batches (the comparison's metrics)."""

from __future__ import annotations

import math
import time
from collections.abc import Sequence
from dataclasses import asdict, dataclass, field
from typing import Any

import numpy as np
from scipy import sparse

from superpose.codes import ExplicitCode, LinearCode
from superpose.errors import SuperposeError
from superpose.evaluation import GroundTruth, evaluate
from superpose.network import Network
from superpose.peers.universal_and import (
    READOUT_EXACT,
)
from superpose.seeds import Seeds
from superpose.task import Task
from superpose.verification import VerificationReport, check_batch, class_label

_HIST_EDGES = np.logspace(-9, 4, 1301)
_MAX_STORED = 4_000_000
_DENSE_CACHE_LIMIT = 60_000_000


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
    rng = rng if rng is not None else Seeds(0).rng("verify")
    m, s = task.features, task.sparsity
    gates = task.outputs - task.features
    if (task.outputs < task.features).any() or (task.arity[gates] != 2).any():
        raise SuperposeError("Busch's protocol needs 2-input gates as outputs")
    ops = task.operand_table(gates, 2)
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
