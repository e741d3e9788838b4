"""Datasets: (inputs, labels) batches of a task, for training and probing models.

A trainer (or a decomposition method tested on a superpose network) needs inputs drawn from a
known distribution and their exact labels. This module draws sparse Boolean inputs of a
:class:`~superpose.task.Task` and labels them with the shared ground-truth evaluator
(:func:`superpose.evaluation.evaluate`), so a label is never a model's guess.

Distributions (every row has at most ``task.sparsity`` active features, the regime every
superpose guarantee is stated for):

* ``"bernoulli"`` -- feature ``i`` is on independently with probability ``p`` (a number or
  one per feature; default ``s / m``), capped at ``s`` active features. ``cap="resample"``
  (default) redraws a row with more than ``s`` active features, which gives exactly the
  independent distribution *conditioned on* at most ``s`` active; ``cap="truncate"`` keeps a
  uniformly random ``s`` of the active features (more mass at exactly ``s``).
* ``"exactly"`` -- exactly ``k`` active features (default ``s``), a uniformly random subset.
* ``"verifier"`` -- the verifier's random mix (:func:`superpose.verification.random_inputs`): even
  rows hold every operand of a random output, odd rows all but one.
* ``"targeted"`` -- the verifier's adversarial inputs for a given ``network``
  (:func:`superpose.verification.targeted_inputs`): a gate's operands plus the distractors that put
  the most weight into its output units.
* ``"mix"`` -- the trained baselines' mix: a third exactly ``s`` uniform features, a third
  every operand of a random gate, a third all operands but one (falls back to ``"verifier"``
  for tasks that are not one level of equal-arity gates).

The verifier's samplers are called, not copied: the same generator state gives the same rows
as ``superpose verify``.

Formats: ``"csr"`` -- ``scipy.sparse.csr_array`` of ``uint8`` 0/1 for inputs ``(n, m)`` and
labels ``(n, n_outputs)``; ``"numpy"`` -- dense ``np.ndarray`` (``uint8`` unless ``dtype``
says otherwise, e.g. ``"float32"``); ``"torch"`` -- dense torch tensors (``float32`` unless
``dtype`` says otherwise) on ``device``. torch is imported only for ``"torch"`` and
:func:`dataset`, so ``import superpose`` never imports it.

Seeding: pass an ``np.random.Generator`` or an integer seed; an integer ``seed`` means
``Seeds(seed).rng("data")`` (the ``data`` stream of :class:`superpose.seeds.Seeds`), so the
same seed gives the same batches in every run and process.

Example:
    >>> from superpose import Task, data
    >>> task = Task.from_gates(6, 2, [("and", [0, 1]), ("xor", [2, 3])])
    >>> x, y = next(data.batches(task, 4, seed=0, distribution="exactly", format="numpy"))
    >>> x.shape, y.shape, x.dtype.name, int(x.sum(axis=1).max())
    ((4, 6), (4, 2), 'uint8', 2)
    >>> bool((y[:, 0] == (x[:, 0] & x[:, 1])).all())
    True
"""

from __future__ import annotations

import math
from collections.abc import Iterator
from typing import TYPE_CHECKING, Any

import numpy as np
from scipy import sparse

from superpose._numeric import ln_binom
from superpose.errors import SuperposeError
from superpose.evaluation import evaluate
from superpose.seeds import Seeds
from superpose.task import Task

if TYPE_CHECKING:
    from superpose.network import Network

DISTRIBUTIONS = ("bernoulli", "exactly", "verifier", "targeted", "mix")
"""Input distributions :func:`sample_inputs` draws from (see the module docstring)."""
CAPS = ("resample", "truncate")
"""How ``"bernoulli"`` keeps a row at most ``s`` active features."""
FORMATS = ("csr", "numpy", "torch")
"""Array types :func:`batches` yields."""
MAX_RESAMPLE_ROUNDS = 10_000
_DENSE_CELLS = 1 << 22  # cells of one dense Bernoulli draw (rows x features), per chunk


def rng_from(seed: int | np.random.Generator | None) -> np.random.Generator:
    """A generator: ``seed`` itself, or the ``data`` stream of ``Seeds(seed)`` (0 if None).

    Example:
        >>> a = rng_from(3).integers(100, size=3)
        >>> bool((a == rng_from(3).integers(100, size=3)).all())
        True
    """
    if isinstance(seed, np.random.Generator):
        return seed
    return Seeds(0 if seed is None else seed).rng("data")


# --- sampling ------------------------------------------------------------------------------


def _subsets(counts: np.ndarray, m: int, rng: np.random.Generator) -> sparse.csr_array:
    """Rows of ``counts[i]`` distinct features, each a uniformly random subset of ``range(m)``.

    Duplicates among a row's draws are redrawn (later positions only); the procedure treats
    every feature alike, so each row's set is uniform over the subsets of its size.
    """
    n = len(counts)
    kmax = int(counts.max(initial=0))
    if n == 0 or kmax == 0:
        return sparse.csr_array((n, m), dtype=np.uint8)
    if kmax > m:
        raise SuperposeError(f"cannot choose {kmax} distinct features of {m}")
    if 4 * kmax > m:  # few features: a random permutation per row
        idx = np.argsort(rng.random((n, m)), axis=1)[:, :kmax]
    else:
        idx = rng.integers(0, m, (n, kmax))
        for _ in range(MAX_RESAMPLE_ROUNDS):
            order = np.argsort(idx, axis=1, kind="stable")
            srt = np.take_along_axis(idx, order, axis=1)
            dup = np.zeros_like(idx, dtype=bool)
            rows, cols = np.nonzero(srt[:, 1:] == srt[:, :-1])
            dup[rows, order[rows, cols + 1]] = True
            if not dup.any():
                break
            idx[dup] = rng.integers(0, m, int(dup.sum()))
    keep = np.arange(kmax)[None, :] < counts[:, None]
    vals = np.where(keep, idx, m)  # unused draws sort to the end of their row
    vals.sort(axis=1)
    indices = vals[keep]
    indptr = np.zeros(n + 1, dtype=np.int64)
    np.cumsum(counts, out=indptr[1:])
    out = sparse.csr_array(
        (np.ones(len(indices), dtype=np.uint8), indices.astype(np.int64), indptr), shape=(n, m)
    )
    out.has_canonical_format = True
    return out


def _bernoulli_scalar(
    n: int, m: int, s: int, p: float, cap: str, rng: np.random.Generator
) -> sparse.csr_array:
    if cap == "resample":
        # Given its count, an i.i.d. Bernoulli row is a uniform subset: draw the count from
        # the binomial law conditioned on <= s, then the subset (exact, no rejection loop).
        ks = np.arange(min(s, m) + 1)
        if p == 0.0:
            logpmf = np.where(ks == 0, 0.0, -np.inf)
        elif p == 1.0:
            logpmf = np.where(ks == m, 0.0, -np.inf)
        else:
            logpmf = np.array(
                [
                    float(ln_binom(m, j)) + j * math.log(p) + (m - j) * math.log1p(-p)
                    for j in ks.tolist()
                ]
            )
        if not np.isfinite(logpmf).any():
            raise SuperposeError(
                f"p = {p} puts every row above {s} active features; nothing to resample"
            )
        w = np.exp(logpmf - logpmf.max())
        counts = rng.choice(ks, size=n, p=w / w.sum())
    else:
        counts = np.minimum(rng.binomial(m, p, size=n), s)
    return _subsets(np.asarray(counts, dtype=np.int64), m, rng)


def _bernoulli_vector(
    n: int, m: int, s: int, p: np.ndarray, cap: str, rng: np.random.Generator
) -> sparse.csr_array:
    chunk = max(1, _DENSE_CELLS // max(m, 1))
    parts = []
    for start in range(0, n, chunk):
        rows = min(chunk, n - start)
        on = rng.random((rows, m)) < p[None, :]
        over = on.sum(axis=1) > s
        if cap == "resample":
            for _ in range(MAX_RESAMPLE_ROUNDS):
                if not over.any():
                    break
                on[over] = rng.random((int(over.sum()), m)) < p[None, :]
                over = on.sum(axis=1) > s
            else:
                raise SuperposeError(
                    f"bernoulli: rows keep exceeding {s} active features (expected "
                    f"{float(p.sum()):.3g} per row); lower p or use cap='truncate'"
                )
        elif over.any():  # keep a uniformly random s of the active features
            keys = np.where(on[over], rng.random((int(over.sum()), m)), np.inf)
            cut = np.partition(keys, s - 1, axis=1)[:, s - 1 : s] if s > 0 else -np.inf
            on[over] = keys <= cut
        parts.append(sparse.csr_array(on.astype(np.uint8)))
    return sparse.csr_array(sparse.vstack(parts, format="csr"), dtype=np.uint8)


def sample_inputs(
    task: Task,
    n: int,
    rng: np.random.Generator,
    distribution: str = "bernoulli",
    *,
    p: float | np.ndarray | None = None,
    k: int | None = None,
    cap: str = "resample",
    network: Network | None = None,
) -> sparse.csr_array:
    """``n`` inputs of ``task`` from ``distribution``: a ``(n, m)`` ``uint8`` 0/1 csr_array.

    See the module docstring for the distributions and ``p``, ``k``, ``cap``; ``network`` is
    needed by ``"targeted"`` only.

    Example:
        >>> from superpose import families
        >>> task = families.universal_and(20, sparsity=3)
        >>> x = sample_inputs(task, 1000, np.random.default_rng(0), p=0.3, cap="truncate")
        >>> int(x.sum(axis=1).max()), x.dtype.name
        (3, 'uint8')
    """
    n = int(n)
    if n < 0:
        raise SuperposeError(f"the number of inputs must be >= 0, got {n}")
    m, s = task.features, task.sparsity
    if distribution not in DISTRIBUTIONS:
        raise SuperposeError(
            f"unknown distribution {distribution!r} (known: {', '.join(DISTRIBUTIONS)})"
        )
    if distribution == "bernoulli":
        if cap not in CAPS:
            raise SuperposeError(f"unknown cap {cap!r} (known: {', '.join(CAPS)})")
        prob = min(s, m) / max(m, 1) if p is None else p
        arr = np.asarray(prob, dtype=np.float64)
        if arr.ndim == 0:
            if not 0.0 <= float(arr) <= 1.0:
                raise SuperposeError(f"p must be in [0, 1], got {float(arr)}")
            return _bernoulli_scalar(n, m, s, float(arr), cap, rng)
        if arr.shape != (m,) or not np.all((arr >= 0) & (arr <= 1)):
            raise SuperposeError(
                f"p must be a number or {m} probabilities in [0, 1], got shape {arr.shape}"
            )
        return _bernoulli_vector(n, m, s, arr, cap, rng)
    if distribution == "exactly":
        kk = s if k is None else int(k)
        if not 0 <= kk <= min(s, m):
            raise SuperposeError(f"k must be in 0..{min(s, m)} (the task's sparsity), got {kk}")
        return _subsets(np.full(n, kk, dtype=np.int64), m, rng)
    from superpose.verification import random_inputs, targeted_inputs

    if distribution == "verifier":
        if n == 0:
            return sparse.csr_array((0, m), dtype=np.uint8)
        return sparse.csr_array(next(random_inputs(task, n, rng, batch_size=n)), dtype=np.uint8)
    if distribution == "targeted":
        if network is None:
            raise SuperposeError("distribution 'targeted' needs network=... (the net to attack)")
        if network.task is not task and network.task.features != m:
            raise SuperposeError("the network was built for a different task")
        if n == 0:
            return sparse.csr_array((0, m), dtype=np.uint8)
        return sparse.csr_array(
            next(targeted_inputs(network, n, rng, batch_size=n)), dtype=np.uint8
        )
    return sparse.csr_array(TrainerMix(task, rng).batch(n), dtype=np.uint8)


class TrainerMix:
    """The trained baselines' inputs: exactly s features; uniform, a full gate, or all but one.

    Rows are a third each (at random): ``s`` uniform features; every operand of a random
    output gate plus uniform features; all operands but the last plus uniform features (never
    the missing one). For tasks that are not one level of equal-arity gates (of arity <= s)
    it draws the verifier's mix instead.
    """

    def __init__(self, task: Task, rng: np.random.Generator) -> None:
        self.task, self.rng = task, rng
        self.m, self.s = task.features, task.sparsity
        outs = task.outputs
        simple = task.depth <= 1 and (outs >= task.features).all()
        if simple:
            gates = outs - task.features
            arity = task.arity[gates]
            simple = bool(len(gates)) and bool((arity == arity[0]).all()) and arity[0] <= self.s
        self.ops: np.ndarray | None = None
        if simple:
            k = int(arity[0])
            self.ops = task.operand_table(gates, k)

    def batch(self, n: int) -> sparse.csr_array:
        """``n`` rows (int32 0/1 csr_array)."""
        from superpose.verification import random_inputs

        if self.ops is None:  # general circuits: the verifier's sampler
            return next(random_inputs(self.task, n, self.rng, batch_size=n))
        m, s, rng = self.m, self.s, self.rng
        k = self.ops.shape[1]
        kind = rng.integers(0, 3, n)  # 0 uniform, 1 full gate, 2 gate minus one operand
        gate_ops = self.ops[rng.integers(0, len(self.ops), n)]
        idx = rng.integers(0, m, (n, s))
        forced = np.where(kind == 1, k, np.where(kind == 2, k - 1, 0))
        excluded = np.where(kind == 2, gate_ops[:, -1], -1)
        cols = np.arange(s)[None, :]
        ops_pad = np.zeros((n, s), dtype=np.int64)
        ops_pad[:, :k] = gate_ops
        idx = np.where(cols < forced[:, None], ops_pad, idx)
        for _ in range(1000):  # redraw duplicates and the excluded operand
            srt = np.sort(idx, axis=1)
            dup_row = (np.diff(srt, axis=1) == 0).any(axis=1)
            bad = (idx == excluded[:, None]) & (cols >= forced[:, None])
            if dup_row.any():
                first = np.zeros_like(bad)
                for j in range(1, s):
                    first[:, j] = (idx[:, :j] == idx[:, j : j + 1]).any(axis=1)
                bad |= first & (cols >= forced[:, None])
            if not bad.any():
                break
            idx[bad] = rng.integers(0, m, int(bad.sum()))
        rows = np.repeat(np.arange(n), s)
        x = sparse.csr_array((np.ones(n * s, dtype=np.int32), (rows, idx.ravel())), shape=(n, m))
        x.sum_duplicates()
        x.data[:] = 1
        return x


def labels(task: Task, inputs: sparse.sparray | np.ndarray) -> sparse.csr_array:
    """The ground truth of ``inputs``: a ``(n, n_outputs)`` ``uint8`` 0/1 csr_array.

    Example:
        >>> t = Task.from_gates(3, 2, [("and", [0, 1]), ("or", [1, 2])])
        >>> labels(t, np.array([[1, 1, 0], [0, 0, 1]])).toarray().tolist()
        [[1, 1], [0, 1]]
    """
    return sparse.csr_array(evaluate(task, inputs).values, dtype=np.uint8)


# --- batches -------------------------------------------------------------------------------


def _convert(
    x: sparse.csr_array, fmt: str, dtype: Any, device: Any
) -> sparse.csr_array | np.ndarray | Any:
    if fmt == "csr":
        return x if dtype is None else sparse.csr_array(x, dtype=np.dtype(dtype))
    if fmt == "numpy":
        return x.toarray().astype(np.uint8 if dtype is None else np.dtype(dtype), copy=False)
    torch = _torch()
    tdtype = torch.float32 if dtype is None else _torch_dtype(torch, dtype)
    return torch.from_numpy(x.toarray()).to(device=device or "cpu", dtype=tdtype)


def _torch() -> Any:
    try:
        import torch
    except ImportError:
        raise SuperposeError(
            "torch tensors need the optional extra: pip install 'superpose[torch]'"
        ) from None
    return torch


def _torch_dtype(torch: Any, dtype: Any) -> Any:
    if isinstance(dtype, torch.dtype):
        return dtype
    found = getattr(torch, str(np.dtype(dtype)), None)
    if not isinstance(found, torch.dtype):
        raise SuperposeError(f"no torch dtype for {dtype!r}")
    return found


def batches(
    task: Task,
    batch_size: int,
    seed: int | np.random.Generator | None = None,
    *,
    n_batches: int | None = None,
    distribution: str = "bernoulli",
    format: str = "csr",
    dtype: Any = None,
    device: Any = None,
    p: float | np.ndarray | None = None,
    k: int | None = None,
    cap: str = "resample",
    network: Network | None = None,
) -> Iterator[tuple[Any, Any]]:
    """Yield ``(inputs, labels)`` batches of ``task``, forever or ``n_batches`` times.

    ``seed`` is a generator (consumed) or an integer (the ``data`` stream of
    ``Seeds(seed)``): the same integer gives the same batches. ``format`` is ``"csr"``,
    ``"numpy"`` or ``"torch"`` (see the module docstring); ``dtype`` and ``device`` apply to
    both arrays. The distribution arguments are those of :func:`sample_inputs`.

    Example:
        >>> from superpose import families
        >>> task = families.universal_and(10, sparsity=2)
        >>> a = [x.toarray() for x, _ in batches(task, 8, seed=1, n_batches=2)]
        >>> b = [x.toarray() for x, _ in batches(task, 8, seed=1, n_batches=2)]
        >>> all((u == v).all() for u, v in zip(a, b)), a[0].shape
        (True, (8, 10))
    """
    if format not in FORMATS:
        raise SuperposeError(f"unknown format {format!r} (known: {', '.join(FORMATS)})")
    if int(batch_size) < 1:
        raise SuperposeError(f"batch_size must be >= 1, got {batch_size}")
    if n_batches is not None and n_batches < 0:
        raise SuperposeError(f"n_batches must be >= 0, got {n_batches}")
    if format == "torch":
        _torch()
    rng = rng_from(seed)
    done = 0
    while n_batches is None or done < n_batches:
        x = sample_inputs(task, batch_size, rng, distribution, p=p, k=k, cap=cap, network=network)
        y = labels(task, x)
        yield _convert(x, format, dtype, device), _convert(y, format, dtype, device)
        done += 1


_DATASET_CLASS: Any = None


def dataset(
    task: Task,
    batch_size: int,
    seed: int = 0,
    *,
    n_batches: int | None = None,
    dtype: Any = None,
    **sampling: Any,
) -> Any:
    """A torch ``IterableDataset`` of ``(inputs, labels)`` float tensors, one batch per item.

    Use it with ``DataLoader(ds, batch_size=None)`` (the items are already batches). Every
    ``iter()`` restarts from ``seed``, so epochs repeat the same batches; with
    ``num_workers=w`` worker ``i`` draws from child ``i`` of the seed's ``data`` stream (and
    ``n_batches``, if given, is split between the workers), so the loader is reproducible too.
    ``sampling`` takes the distribution arguments of :func:`batches`.

    Example:
        >>> from superpose import families
        >>> ds = dataset(families.universal_and(10, sparsity=2), 16, seed=0, n_batches=3)
        >>> [tuple(x.shape) for x, y in ds]  # doctest: +SKIP
        [(16, 10), (16, 10), (16, 10)]
    """
    global _DATASET_CLASS
    torch = _torch()
    if _DATASET_CLASS is None:

        class TaskDataset(torch.utils.data.IterableDataset):  # type: ignore[name-defined]
            """(inputs, labels) batches of a task (see :func:`superpose.data.dataset`)."""

            def __init__(self, task: Task, batch_size: int, seed: int, n_batches, kw) -> None:
                super().__init__()
                self.task, self.batch_size, self.seed = task, batch_size, int(seed)
                self.n_batches, self.kw = n_batches, kw

            def __iter__(self) -> Iterator[tuple[Any, Any]]:
                info = torch.utils.data.get_worker_info()
                seq = Seeds(self.seed).sequence("data")
                count = self.n_batches
                if info is None:
                    rng = np.random.default_rng(seq)
                else:
                    rng = np.random.default_rng(seq.spawn(info.num_workers)[info.id])
                    if count is not None:
                        count = count // info.num_workers + (info.id < count % info.num_workers)
                return batches(
                    self.task, self.batch_size, rng, n_batches=count, format="torch", **self.kw
                )

        _DATASET_CLASS = TaskDataset
    Seeds(seed)  # validates the seed now, not in a worker
    return _DATASET_CLASS(task, batch_size, seed, n_batches, {"dtype": dtype, **sampling})


__all__ = [
    "CAPS",
    "DISTRIBUTIONS",
    "FORMATS",
    "TrainerMix",
    "batches",
    "dataset",
    "labels",
    "rng_from",
    "sample_inputs",
]
