"""The verifier (docs/DESIGN.md, Verification): feed Boolean inputs through a network's codes and compare with the truth.

Every construction is checked by this one path: ``network.predict`` (input code -> layers ->
output code) against :func:`superpose.evaluation.evaluate`. Three input sources:

* ``exhaustive`` -- every input with at most s active features (a certificate for the instance);
* ``random`` -- s-sparse inputs, half holding every operand of a random gate, half all but one;
* ``targeted`` -- for a random gate: its operands (all, or all but one) plus the distractor
  features whose input codes put the most weight into that gate's output units.

Errors are split by class (how many of the output gate's operands were active: "00", "01",
"11" for 2-input gates) and summarised with a one-sided 95% Clopper-Pearson upper bound on
the per-input error rate.
"""

from __future__ import annotations

import weakref
from collections.abc import Callable, Iterator
from dataclasses import asdict, dataclass, field
from typing import Any

import numpy as np
from scipy import sparse, stats

from superpose.codes import BloomCode, ExplicitCode
from superpose.errors import SuperposeError
from superpose.evaluation import evaluate
from superpose.network import Network, _exact_limit
from superpose.seeds import Seeds
from superpose.sparse_inputs import (  # noqa: F401 - re-exported: the verifier's input sources
    _fill,
    _Leaves,
    _rows_to_batch,
    exhaustive_inputs,
    random_inputs,
)
from superpose.task import Task, n_sparse_inputs

MODES = ("exhaustive", "random", "targeted", "all")
DEFAULT_MAX_EXHAUSTIVE = 5_000_000
MAX_EXAMPLES = 10
EXACT_SCORING = 200_000

Progress = Callable[[int], None]


def class_label(active: int, arity: int) -> str:
    """Name of an input class: which of a gate's operands are active ("01" = one of two)."""
    if arity <= 3:
        return "0" * (arity - active) + "1" * active
    return f"{active}of{arity}"


def clopper_pearson_upper(errors: int, trials: int, confidence: float = 0.95) -> float:
    """One-sided Clopper-Pearson upper bound on a rate, given ``errors`` in ``trials``.

    Example:
        >>> round(clopper_pearson_upper(0, 10_000), 6)  # the "rule of three": ~3/n
        0.0003
    """
    if trials <= 0:
        return 1.0
    if errors >= trials:
        return 1.0
    return float(stats.beta.ppf(confidence, errors + 1, trials - errors))


@dataclass
class VerificationReport:
    """What a verification run found; ``to_dict`` gives the CLI's JSON."""

    mode: str
    inputs_checked: int = 0
    inputs_with_error: int = 0
    false_positives: int = 0
    false_negatives: int = 0
    by_class: dict[str, dict[str, int]] = field(default_factory=dict)
    failing_inputs: list[list[int]] = field(default_factory=list)
    by_mode: dict[str, dict[str, Any]] = field(default_factory=dict)
    skipped: list[str] = field(default_factory=list)
    """Checks the mode asked for but this run did not make, each with the reason."""

    @property
    def error_rate_upper_95(self) -> float:
        return clopper_pearson_upper(self.inputs_with_error, self.inputs_checked)

    @property
    def passed(self) -> bool:
        return self.inputs_with_error == 0

    def add_mode(self, name: str, sub: VerificationReport) -> None:
        """Record ``sub``'s counts under ``by_mode[name]`` and merge it into this report."""
        self.by_mode[name] = {
            "inputs_checked": sub.inputs_checked,
            "inputs_with_error": sub.inputs_with_error,
            "false_positives": sub.false_positives,
            "false_negatives": sub.false_negatives,
            "error_rate_upper_95": sub.error_rate_upper_95,
        }
        self.merge(sub)

    def merge(self, other: VerificationReport) -> None:
        """Add another report's counts into this one."""
        self.inputs_checked += other.inputs_checked
        self.inputs_with_error += other.inputs_with_error
        self.false_positives += other.false_positives
        self.false_negatives += other.false_negatives
        for label, row in other.by_class.items():
            mine = self.by_class.setdefault(
                label, {"checked": 0, "false_positives": 0, "false_negatives": 0}
            )
            for key, value in row.items():
                mine[key] += value
        room = MAX_EXAMPLES - len(self.failing_inputs)
        self.failing_inputs.extend(other.failing_inputs[: max(room, 0)])

    def to_dict(self) -> dict[str, Any]:
        out = asdict(self)
        out["error_rate_upper_95"] = self.error_rate_upper_95
        out["passed"] = self.passed
        out["by_class"] = dict(sorted(self.by_class.items()))
        return out


# --- inputs (generated in superpose.sparse_inputs; re-exported here) -----------------------


def _support(net: Network, outputs: np.ndarray) -> sparse.csr_array | None:
    """(K, last-layer width): the units each of ``outputs`` is decoded from."""
    code = net.output_code
    if isinstance(code, BloomCode):
        return sparse.csr_array(code.membership[outputs], dtype=np.float64)
    if isinstance(code, ExplicitCode):
        k = len(outputs)
        return sparse.csr_array((np.ones(k), (np.arange(k), outputs)), shape=(k, code.width))
    return None


def _traced(net: Network, abs_weights: list[sparse.csr_array], outputs: np.ndarray) -> Any:
    """(K, input width): the weight each input unit sends into each output's units."""
    v = _support(net, outputs)
    if v is None:
        return None
    for layer, w in zip(reversed(net.layers), reversed(abs_weights), strict=True):
        exact = None
        if (
            w.dtype.kind == "f"
            and w.dtype.itemsize < v.dtype.itemsize
            and w is layer.abs_weight()
            and layer.integral()
            and np.all(v.data == np.round(v.data))
        ):
            # Sums of non-negative integers are exact in w's type while the result is: skip
            # converting the (large) weights to float64 on every call.
            low = sparse.csr_array(sparse.csr_array(v, dtype=w.dtype) @ w)
            if not low.nnz or float(low.data.max()) < _exact_limit(w.dtype):
                exact = sparse.csr_array(low, dtype=v.dtype)
        v = exact if exact is not None else sparse.csr_array(v @ w)
    return v


def _feature_scores(
    net: Network,
    abs_weights: list[sparse.csr_array],
    outputs: np.ndarray,
    reader: _Reader,
) -> np.ndarray | None:
    """(K, candidates) dense: how much weight each candidate feature's code sends into each
    output's units.

    The units an output is decoded from are traced back through |W| of every layer to the
    input layer, then summed over each feature's code (``reader`` maps input units to the
    candidate features). For the two-layer 2-AND design at s = 2, a feature whose code fully
    covers a gate's common read set gets the top score: when every feature is a candidate, the
    search finds a fooling input whenever one exists.

    With integer traced weights (every construction here) the sums are exact in any order, so
    they are gathered from the dense trace, one product of the candidates' codes with it;
    otherwise one sparse product in the original order.
    """
    if reader.rows is None and reader.matrix is None:
        return None
    v = _traced(net, abs_weights, outputs)
    if v is None:
        return None
    if reader.rows is not None:
        if np.all(v.data == np.round(v.data)) and (
            not v.nnz or float(np.abs(v.data).max()) * reader.max_length < _exact_limit(np.float64)
        ):
            dense_t = np.ascontiguousarray(v.toarray().T)  # (input width, K)
            return np.ascontiguousarray(np.asarray(reader.rows @ dense_t).T)
        return np.asarray(sparse.csr_array(v @ reader.columns()).toarray())
    return np.abs(v.toarray()) @ reader.matrix


@dataclass
class _Reader:
    """Input units -> candidate features: ``rows`` (candidates, width) 0/1 sparse, or a dense
    ``matrix`` (width, candidates) for linear codes."""

    rows: sparse.csr_array | None = None
    matrix: np.ndarray | None = None
    max_length: int = 1
    _columns: sparse.csr_array | None = field(default=None, repr=False)

    def columns(self) -> sparse.csr_array:
        """The (width, candidates) form: ``rows`` transposed."""
        if self._columns is None:
            assert self.rows is not None
            self._columns = sparse.csr_array(self.rows.T)
        return self._columns


def _candidate_reader(net: Network, candidates: np.ndarray) -> _Reader:
    """Input units -> candidate features, in the form :func:`_feature_scores` multiplies by."""
    code = net.input_code
    if isinstance(code, BloomCode):
        rows = sparse.csr_array(code.membership[candidates], dtype=np.float64)
        return _Reader(rows=rows, max_length=int(code.lengths.max()) if code.n_features else 1)
    if isinstance(code, ExplicitCode):
        k = len(candidates)
        return _Reader(
            rows=sparse.csr_array((np.ones(k), (np.arange(k), candidates)), shape=(k, code.width))
        )
    matrix = getattr(code, "matrix", None)
    return _Reader(matrix=None if matrix is None else np.abs(matrix[:, candidates]))


def targeted_inputs(
    net: Network, count: int, rng: np.random.Generator, batch_size: int = 1024
) -> Iterator[sparse.csr_array]:
    """Adversarial inputs: a gate's operands (all, or all but one) plus its worst distractors.

    Rows cycle through three variants: all operands but one plus the highest-scoring
    distractors (false positives), all operands plus distractors, and the operands alone
    (false negatives, which in a monotone network can only occur on minimal inputs).
    """
    task = net.task
    leaves = _Leaves(task)
    s, m = task.sparsity, task.features
    abs_weights = [layer.abs_weight() for layer in net.layers]
    # Every feature is a candidate distractor up to EXACT_SCORING features; above that a
    # fixed random sample of that many (scoring all 10^6 would cost seconds per gate).
    if m <= EXACT_SCORING:
        candidates = np.arange(m)
    else:
        candidates = np.sort(rng.choice(m, EXACT_SCORING, replace=False))
    n_cand = len(candidates)
    reader = _candidate_reader(net, candidates)
    chunk = int(max(1, min(256, 20_000_000 // len(candidates))))
    done = 0
    while done < count:
        n = min(batch_size, count - done)
        rows: list[np.ndarray] = []
        need: list[tuple[int, int, int]] = []  # (row, output, distractors wanted)
        for i, j in enumerate(rng.integers(0, task.n_outputs, n)):
            variant = (done + i) % 3
            base = leaves(int(task.outputs[j]))
            if len(base) > s:
                base = rng.choice(base, s, replace=False)
            if variant == 0 and len(base) > 0:
                base = np.delete(base, rng.integers(len(base)))
            row = base if len(base) else _fill(base, 1, m, rng)
            room = min(s, m) - len(row)
            rows.append(row)
            if variant != 2 and room > 0:
                need.append((i, int(j), room))
        for start in range(0, len(need), chunk):
            part = need[start : start + chunk]
            outs = np.array([j for _, j, _ in part])
            scores = _feature_scores(net, abs_weights, outs, reader)
            if scores is None:
                for i, _j, room in part:
                    rows[i] = _fill(rows[i], len(rows[i]) + room, m, rng)
                continue
            for r, (i, j, room) in enumerate(part):
                row = scores[r]  # a fresh array: scored in place
                taken = np.concatenate([leaves(int(task.outputs[j])), rows[i]])
                found, pos = _lookup(candidates, taken)
                row[pos[found]] = -np.inf
                if room < n_cand:
                    top = np.argpartition(-row, room - 1)[:room]
                else:
                    top = np.arange(n_cand)
                rows[i] = np.concatenate([rows[i], candidates[top[np.isfinite(row[top])]]])
        done += n
        yield _rows_to_batch(rows, m)


# --- checking ---------------------------------------------------------------------------


_ARITY_CACHE: weakref.WeakKeyDictionary[Task, np.ndarray] = weakref.WeakKeyDictionary()


def _output_arity(task: Task) -> np.ndarray:
    cached = _ARITY_CACHE.get(task)
    if cached is not None:
        return cached
    is_gate = task.outputs >= task.features
    arity = np.ones(task.n_outputs, dtype=np.int64)
    arity[is_gate] = task.arity[task.outputs[is_gate] - task.features]
    _ARITY_CACHE[task] = arity
    return arity


def _class_counts(report: VerificationReport, label: str) -> dict[str, int]:
    """The counts of class ``label`` in ``report.by_class`` (created at zero if missing)."""
    return report.by_class.setdefault(
        label, {"checked": 0, "false_positives": 0, "false_negatives": 0}
    )


def _count_by_class(
    report: VerificationReport, arity: np.ndarray, active: np.ndarray, name: str
) -> dict[int, int]:
    """Add each (output arity, active operands) pair to count ``name`` of its class.

    Returns how many pairs were added per arity.
    """
    uniq, cnt = np.unique(arity * 1000 + active, return_counts=True)
    by_arity: dict[int, int] = {}
    for key, c in zip(uniq.tolist(), cnt.tolist(), strict=True):
        k, a = divmod(key, 1000)
        _class_counts(report, class_label(a, k))[name] += c
        by_arity[k] = by_arity.get(k, 0) + c
    return by_arity


def check_batch(net: Network, batch: sparse.csr_array, mode: str = "batch") -> VerificationReport:
    """Compare the network with the ground truth on one batch of inputs."""
    task = net.task
    report = VerificationReport(mode)
    n = batch.shape[0]
    if n == 0:
        return report
    truth = evaluate(task, batch)
    pred = sparse.csr_array(net.predict(batch))
    arity = _output_arity(task)
    # Per-class counts of checked (input, output) pairs.
    act = truth.active_operands.tocoo()
    nonzero_by_arity = _count_by_class(report, arity[act.coords[1]], act.data, "checked")
    ar_uniq, ar_cnt = np.unique(arity, return_counts=True)
    for k, c in zip(ar_uniq.tolist(), ar_cnt.tolist(), strict=True):
        counts = _class_counts(report, class_label(0, k))
        counts["checked"] += c * n - nonzero_by_arity.get(k, 0)
    report.inputs_checked = n
    # Predicted and true outputs as sorted sets of (input, output) keys.
    n_out = task.n_outputs
    pred_keys = _true_keys(pred, n_out)
    true_keys = _true_keys(truth.values, n_out)
    false_pos = pred_keys[~_lookup(true_keys, pred_keys)[0]]
    false_neg = true_keys[~_lookup(pred_keys, true_keys)[0]]
    if len(false_pos) or len(false_neg):
        ops = truth.active_operands
        op_keys = _true_keys(ops, n_out, keep_order=True)
        op_vals = ops.data[ops.data != 0] if op_keys.size else np.zeros(0, ops.dtype)
        order = np.argsort(op_keys, kind="stable")
        op_keys, op_vals = op_keys[order], op_vals[order]
        for keys, name in ((false_pos, "false_positives"), (false_neg, "false_negatives")):
            if not len(keys):
                continue
            found, pos = _lookup(op_keys, keys)
            active = np.where(found, op_vals[pos] if len(op_vals) else 0, 0).astype(np.int64)
            _count_by_class(report, arity[keys % n_out], active, name)
        report.false_positives = len(false_pos)
        report.false_negatives = len(false_neg)
        bad_rows = np.unique(np.concatenate([false_pos, false_neg]) // n_out)
        report.inputs_with_error = len(bad_rows)
        for r in bad_rows[:MAX_EXAMPLES].tolist():
            report.failing_inputs.append(
                batch.indices[batch.indptr[r] : batch.indptr[r + 1]].tolist()
            )
    return report


def _true_keys(x: sparse.csr_array, n_cols: int, keep_order: bool = False) -> np.ndarray:
    """``row * n_cols + column`` of the non-zero entries of ``x`` (sorted unless keep_order)."""
    x = sparse.csr_array(x)
    rows = np.repeat(np.arange(x.shape[0], dtype=np.int64), np.diff(x.indptr))
    keep = x.data != 0
    keys = rows[keep] * n_cols + x.indices[keep].astype(np.int64)
    return keys if keep_order else np.sort(keys)


def _lookup(sorted_array: np.ndarray, values: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Which ``values`` occur in ``sorted_array``, and where: ``(found, pos)``.

    ``pos`` is each value's insertion point clipped to the last index (all 0 when the array is
    empty); ``sorted_array[pos[found]] == values[found]``.
    """
    if not len(sorted_array):
        return np.zeros(len(values), dtype=bool), np.zeros(len(values), dtype=np.intp)
    pos = np.minimum(np.searchsorted(sorted_array, values), len(sorted_array) - 1)
    return sorted_array[pos] == values, pos


def _run(
    net: Network, batches: Iterator[sparse.csr_array], mode: str, progress: Progress | None
) -> VerificationReport:
    report = VerificationReport(mode)
    for batch in batches:
        report.merge(check_batch(net, batch, mode))
        if progress is not None:
            progress(batch.shape[0])
    return report


def skipped_checks(net: Network, mode: str, max_exhaustive: int) -> list[str]:
    """The checks ``mode`` names that a run skips, and why (so a report never hides one)."""
    task = net.task
    total = n_sparse_inputs(task.features, task.sparsity)
    if mode == "all" and total > max_exhaustive:
        return [
            f"exhaustive: {total:,} inputs (all <= {task.sparsity}-sparse inputs of "
            f"{task.features:,} features) exceed the limit of {max_exhaustive:,}"
        ]
    return []


def planned_inputs(
    net: Network, mode: str, samples: int, max_exhaustive: int = DEFAULT_MAX_EXHAUSTIVE
) -> int:
    """How many inputs a verification run will check (for progress bars and limits)."""
    task = net.task
    exhaustive = n_sparse_inputs(task.features, task.sparsity)
    if mode == "exhaustive":
        return exhaustive
    if mode == "all":
        return (exhaustive if exhaustive <= max_exhaustive else 0) + 2 * samples
    return samples


def checked_total(task: Task, mode: str, max_exhaustive: int, what: str = "verification") -> int:
    """The number of <= s-sparse inputs of ``task``, after refusing an unknown ``mode`` and an
    ``exhaustive`` one above ``max_exhaustive`` inputs (``what`` names the check)."""
    if mode not in MODES:
        raise SuperposeError(f"unknown verification mode {mode!r} (known: {', '.join(MODES)})")
    total = n_sparse_inputs(task.features, task.sparsity)
    if mode == "exhaustive" and total > max_exhaustive:
        raise SuperposeError(
            f"exhaustive {what} needs {total:,} inputs (all <= {task.sparsity}-sparse inputs of "
            f"{task.features} features), above the limit of {max_exhaustive:,}; use mode random/targeted "
            "or raise max_exhaustive",
            cli="--mode random/targeted, --max-exhaustive",
        )
    return total


def input_sources(
    net: Network,
    mode: str,
    samples: int,
    rng: np.random.Generator,
    *,
    max_exhaustive: int = DEFAULT_MAX_EXHAUSTIVE,
    batch_size: int = 2048,
    targeted_batch: int | None = None,
    what: str = "verification",
) -> list[tuple[str, Iterator[sparse.csr_array]]]:
    """The inputs a check in ``mode`` runs, by kind, in the order they are drawn from ``rng``.

    Every check (the verifier, the per-level reports) takes its inputs here, so the same mode,
    samples and seed give the same inputs everywhere: every <= s-sparse input when there are
    at most ``max_exhaustive`` (``exhaustive`` refuses above, naming the count; ``all`` skips
    them), then ``samples`` random and ``samples`` targeted inputs (``targeted_batch``, default
    ``batch_size``, per batch). ``what`` names the check in the refusal.

    Example:
        >>> from superpose import Task, build
        >>> net = build(Task.from_gates(6, 2, [("and", [0, 1])]), "naive")
        >>> [name for name, _ in input_sources(net, "all", 10, Seeds(0).rng("verify"))]
        ['exhaustive', 'random', 'targeted']
    """
    task = net.task
    total = checked_total(task, mode, max_exhaustive, what)
    parts: list[tuple[str, Iterator[sparse.csr_array]]] = []
    if mode in ("exhaustive", "all") and total <= max_exhaustive:
        parts.append(("exhaustive", exhaustive_inputs(task.features, task.sparsity, batch_size)))
    if mode in ("random", "all"):
        parts.append(("random", random_inputs(task, samples, rng, batch_size)))
    if mode in ("targeted", "all"):
        parts.append(("targeted", targeted_inputs(net, samples, rng, targeted_batch or batch_size)))
    return parts


def verify(
    net: Network,
    mode: str = "all",
    samples: int = 10_000,
    rng: np.random.Generator | None = None,
    *,
    max_exhaustive: int = DEFAULT_MAX_EXHAUSTIVE,
    progress: Progress | None = None,
    batch_size: int = 2048,
) -> VerificationReport:
    """Check ``net`` against its task's ground truth.

    ``mode`` is ``exhaustive`` (refused with the count when it exceeds ``max_exhaustive``),
    ``random``, ``targeted`` (``samples`` inputs each) or ``all`` (exhaustive when feasible,
    plus random and targeted).

    Example:
        >>> from superpose import Task, build
        >>> net = build(Task.from_gates(6, 2, [("and", [0, 1]), ("xor", [2, 3])]), "naive")
        >>> r = verify(net, "exhaustive")
        >>> r.inputs_checked, r.inputs_with_error
        (22, 0)
    """
    if mode not in MODES:
        raise SuperposeError(f"unknown verification mode {mode!r} (known: {', '.join(MODES)})")
    if samples < 0:
        raise SuperposeError(f"samples must be >= 0, got {samples}")
    rng = rng if rng is not None else Seeds(0).rng("verify")
    parts = input_sources(
        net,
        mode,
        samples,
        rng,
        max_exhaustive=max_exhaustive,
        batch_size=batch_size,
        targeted_batch=min(batch_size, 1024),
    )
    report = VerificationReport(mode, skipped=skipped_checks(net, mode, max_exhaustive))
    for name, batches in parts:
        report.add_mode(name, _run(net, batches, name, progress))
    return report


def exhaustive_count(task: Task) -> int:
    """Number of inputs exhaustive verification checks: sum over k <= s of C(m, k)."""
    return n_sparse_inputs(task.features, task.sparsity)


__all__ = [
    "MODES",
    "VerificationReport",
    "check_batch",
    "clopper_pearson_upper",
    "exhaustive_count",
    "exhaustive_inputs",
    "random_inputs",
    "skipped_checks",
    "targeted_inputs",
    "verify",
]
