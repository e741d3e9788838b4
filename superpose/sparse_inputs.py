"""Sparse Boolean input batches: every <= s-sparse input, or random ones aimed at gates.

These are the inputs every check draws from (the verifier, the per-level report, the
circuit construction's sampled sizing). They depend on the task only -- never on a network --
so they sit in the core, below the constructions that sample them while sizing layers and
the verifier that feeds them through networks (:mod:`superpose.verification`, which also
adds network-aware ``targeted`` inputs).

Example:
    >>> import numpy as np
    >>> from superpose import Task
    >>> task = Task.from_gates(4, 2, [("and", [0, 1]), ("or", [2, 3])])
    >>> sum(b.shape[0] for b in exhaustive_inputs(4, 2))  # 1 + 4 + 6
    11
    >>> batch = next(random_inputs(task, 4, np.random.default_rng(0)))
    >>> batch.shape, bool((batch.sum(axis=1) <= 2).all())
    ((4, 4), True)
"""

from __future__ import annotations

import itertools
from collections.abc import Iterator

import numpy as np
from scipy import sparse

from superpose.task import Task


def _rows_to_batch(rows: list[np.ndarray] | list[list[int]], features: int) -> sparse.csr_array:
    lengths = np.array([len(r) for r in rows], dtype=np.int64)
    indptr = np.zeros(len(rows) + 1, dtype=np.int64)
    np.cumsum(lengths, out=indptr[1:])
    indices = (
        np.concatenate([np.asarray(r, dtype=np.int64) for r in rows])
        if indptr[-1]
        else np.zeros(0, np.int64)
    )
    data = np.ones(len(indices), dtype=np.int32)
    batch = sparse.csr_array((data, indices, indptr), shape=(len(rows), features))
    batch.sum_duplicates()
    return batch


def exhaustive_inputs(
    features: int, sparsity: int, batch_size: int = 4096
) -> Iterator[sparse.csr_array]:
    """Every input with at most ``sparsity`` active features, in batches."""
    combos = itertools.chain.from_iterable(
        itertools.combinations(range(features), k) for k in range(sparsity + 1)
    )
    while True:
        chunk = list(itertools.islice(combos, batch_size))
        if not chunk:
            return
        yield _rows_to_batch([list(c) for c in chunk], features)


class _Leaves:
    """Input features in the cone of each output (the operands, for a one-level task)."""

    def __init__(self, task: Task) -> None:
        self.task = task
        self._cache: dict[int, np.ndarray] = {}

    def __call__(self, node: int) -> np.ndarray:
        t = self.task
        if node < t.features:
            return np.array([node])
        if node in self._cache:
            return self._cache[node]
        ops = t.operands(node - t.features)
        if (ops < t.features).all():
            leaves = ops
        else:
            leaves = np.unique(np.concatenate([self(int(o)) for o in ops]))
        self._cache[node] = leaves
        return leaves


def _fill(chosen: np.ndarray, target: int, features: int, rng: np.random.Generator) -> np.ndarray:
    """Add random distinct features to ``chosen`` until it has ``target`` of them."""
    chosen = np.unique(chosen)
    target = min(target, features)
    while len(chosen) < target:
        chosen = np.union1d(chosen, rng.integers(0, features, target - len(chosen)))
    return chosen


def _fill_list(
    chosen: list[int], target: int, features: int, rng: np.random.Generator
) -> list[int]:
    """:func:`_fill` on Python ints (the same draws from ``rng``), sorted."""
    have = set(chosen)
    target = min(target, features)
    while len(have) < target:
        have.update(rng.integers(0, features, target - len(have)).tolist())
    return sorted(have)


def _sorted_rows_to_batch(rows: list[list[int]], features: int) -> sparse.csr_array:
    """A 0/1 batch from rows of sorted, distinct feature indices."""
    indptr = np.zeros(len(rows) + 1, dtype=np.int64)
    np.cumsum([len(r) for r in rows], out=indptr[1:])
    indices = np.fromiter(itertools.chain.from_iterable(rows), dtype=np.int64, count=indptr[-1])
    data = np.ones(len(indices), dtype=np.int32)
    batch = sparse.csr_array((data, indices, indptr), shape=(len(rows), features))
    batch.has_canonical_format = True
    return batch


def random_inputs(
    task: Task, count: int, rng: np.random.Generator, batch_size: int = 2048
) -> Iterator[sparse.csr_array]:
    """s-sparse inputs; even rows hold every operand of a random output, odd rows all but one."""
    leaves = _Leaves(task)
    as_list: dict[int, list[int]] = {}
    s, m = task.sparsity, task.features
    done = 0
    while done < count:
        n = min(batch_size, count - done)
        rows = []
        outs = task.outputs[rng.integers(0, task.n_outputs, n)]
        for i, node in enumerate(outs.tolist()):
            base = as_list.get(node)
            if base is None:
                base = as_list[node] = leaves(node).tolist()
            if len(base) > s:
                base = rng.choice(np.asarray(base), s, replace=False).tolist()
            if (done + i) % 2 == 1 and len(base) > 0:
                j = int(rng.integers(len(base)))
                base = base[:j] + base[j + 1 :]
            rows.append(_fill_list(base, s, m, rng))
        done += n
        yield _sorted_rows_to_batch(rows, m)
