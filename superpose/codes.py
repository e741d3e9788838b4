"""Codes: how a set of active features is laid out on a layer of neurons, and read back (SPEC §1).

Three codes share one interface (``encode``, ``decode``, ``to_arrays``/``from_arrays``):

* :class:`ExplicitCode` -- one neuron per feature.
* :class:`BloomCode` -- feature f owns a set S_f of neurons; the layer is the OR of the active
  sets; f reads as present iff at least ``len(S_f) - slack`` of its neurons are on.
* :class:`LinearCode` -- z = E x with Gaussian or +-1 columns; read by E^T z and a threshold.

Batches are ``scipy.sparse`` arrays of shape (batch, features) or (batch, width).
"""

from __future__ import annotations

from typing import Any, ClassVar

import numpy as np
from scipy import sparse

from superpose.errors import SuperposeError


def _bool_rows(x: sparse.sparray | np.ndarray) -> sparse.csr_array:
    out = sparse.csr_array(x, dtype=np.float64)
    out.data = (out.data > 0.5).astype(np.float64)
    out.eliminate_zeros()
    return out


class Code:
    """Interface shared by every code."""

    kind: ClassVar[str]
    n_features: int
    width: int

    def encode(self, x: sparse.sparray | np.ndarray) -> sparse.csr_array | np.ndarray:
        raise NotImplementedError

    def decode(self, z: sparse.sparray | np.ndarray) -> sparse.csr_array:
        raise NotImplementedError

    def to_arrays(self) -> dict[str, np.ndarray]:
        raise NotImplementedError

    def meta(self) -> dict[str, Any]:
        return {"kind": self.kind, "n_features": self.n_features, "width": self.width}


class ExplicitCode(Code):
    """One neuron per feature; a neuron at or above 1/2 reads as present.

    Example:
        >>> c = ExplicitCode(3)
        >>> c.decode(c.encode(np.array([[0, 1, 1]]))).toarray().astype(int).tolist()
        [[0, 1, 1]]
    """

    kind = "explicit"

    def __init__(self, n_features: int) -> None:
        self.n_features = self.width = int(n_features)

    def encode(self, x: sparse.sparray | np.ndarray) -> sparse.csr_array:
        return _bool_rows(x)

    def decode(self, z: sparse.sparray | np.ndarray) -> sparse.csr_array:
        if isinstance(z, np.ndarray):
            return sparse.csr_array(z >= 0.5)
        out = sparse.csr_array(z, copy=True)
        out.data = out.data >= 0.5
        out.eliminate_zeros()
        return sparse.csr_array(out, dtype=bool)

    def to_arrays(self) -> dict[str, np.ndarray]:
        return {}

    @classmethod
    def from_arrays(cls, meta: dict[str, Any], arrays: dict[str, np.ndarray]) -> ExplicitCode:
        return cls(meta["n_features"])


class BloomCode(Code):
    """Feature f owns the neurons ``members[f]``; a set of features is the OR of theirs.

    ``membership`` is a (features, width) 0/1 ``csr_array``. Decoding counts, per feature, how
    many of its neurons are on, with one sparse product (on-neurons x membership^T), so the
    cost follows the active part of the batch, never the number of features.

    Example:
        >>> code = BloomCode.random(1000, 200, 5, np.random.default_rng(0))
        >>> x = sparse.csr_array(([1.0, 1.0], ([0, 0], [3, 7])), shape=(1, 1000))
        >>> sorted(code.decode(code.encode(x)).indices.tolist())
        [3, 7]
    """

    kind = "bloom"

    def __init__(self, membership: sparse.sparray, slack: int = 0) -> None:
        m = sparse.csr_array(membership, dtype=np.int8)
        m.sum_duplicates()
        m.sort_indices()
        if m.nnz and (m.data != 1).any():
            raise SuperposeError("Bloom code membership must be 0/1")
        self.membership = m
        self.n_features, self.width = m.shape
        self.lengths = np.diff(m.indptr).astype(np.int64)
        if self.n_features and self.lengths.min() == 0:
            f = int(np.flatnonzero(self.lengths == 0)[0])
            raise SuperposeError(f"Bloom code: feature {f} owns no neurons")
        if slack < 0 or (self.n_features and slack >= self.lengths.min()):
            raise SuperposeError(
                f"Bloom code slack must be in 0..{self.lengths.min() - 1}, got {slack}"
            )
        self.slack = int(slack)
        self._membership_t: sparse.csr_array | None = None

    @classmethod
    def random(
        cls,
        n_features: int,
        width: int,
        length: int,
        rng: np.random.Generator,
        slack: int = 0,
    ) -> BloomCode:
        """Each feature gets ``length`` distinct neurons out of ``width``, uniformly at random."""
        return cls(random_sets(n_features, width, length, rng), slack)

    @property
    def membership_t(self) -> sparse.csr_array:
        if self._membership_t is None:
            self._membership_t = sparse.csr_array(self.membership.T)
        return self._membership_t

    def members(self, feature: int) -> np.ndarray:
        return self.membership.indices[
            self.membership.indptr[feature] : self.membership.indptr[feature + 1]
        ]

    def encode(self, x: sparse.sparray | np.ndarray) -> sparse.csr_array:
        z = _bool_rows(x) @ self.membership
        z = sparse.csr_array(z, dtype=np.float64)
        z.data[:] = 1.0
        return z

    def decode(self, z: sparse.sparray | np.ndarray) -> sparse.csr_array:
        on = _bool_rows(z)
        counts = sparse.csr_array(on @ self.membership_t)
        counts.data = counts.data >= (self.lengths[counts.indices] - self.slack)
        counts.eliminate_zeros()
        return sparse.csr_array(counts, dtype=bool)

    def to_arrays(self) -> dict[str, np.ndarray]:
        return {
            "indptr": self.membership.indptr.astype(np.int64),
            "indices": self.membership.indices.astype(np.int32),
        }

    def meta(self) -> dict[str, Any]:
        return {
            **super().meta(),
            "slack": self.slack,
            "mean_length": float(self.lengths.mean()) if self.n_features else 0.0,
        }

    @classmethod
    def from_arrays(cls, meta: dict[str, Any], arrays: dict[str, np.ndarray]) -> BloomCode:
        indptr, indices = arrays["indptr"], arrays["indices"]
        n, w = int(meta["n_features"]), int(meta["width"])
        if (
            indptr.shape != (n + 1,)
            or indptr[0] != 0
            or indptr[-1] != len(indices)
            or (np.diff(indptr) < 0).any()
        ):
            raise SuperposeError("Bloom code arrays disagree with the recorded number of features")
        if len(indices) and (indices.min() < 0 or indices.max() >= w):
            raise SuperposeError("Bloom code refers to a neuron outside its width")
        data = np.ones(len(indices), dtype=np.int8)
        return cls(
            sparse.csr_array((data, indices, indptr), shape=(n, w)), int(meta.get("slack", 0))
        )


class LinearCode(Code):
    """z = E x with E's columns Gaussian or +-1 (scaled to unit norm); read x_f as E[:, f] . z >= 1/2.

    Example:
        >>> code = LinearCode.random(50, 400, np.random.default_rng(0), kind="rademacher")
        >>> x = np.zeros((1, 50)); x[0, [4, 9]] = 1
        >>> code.decode(code.encode(x)).indices.tolist()
        [4, 9]
    """

    kind = "linear"

    def __init__(
        self, matrix: np.ndarray, distribution: str = "gaussian", threshold: float = 0.5
    ) -> None:
        self.matrix = np.asarray(matrix, dtype=np.float64)  # (width, features)
        if self.matrix.ndim != 2 or not np.isfinite(self.matrix).all():
            raise SuperposeError("linear code matrix must be a finite 2-D array")
        self.width, self.n_features = self.matrix.shape
        self.distribution = distribution
        self.threshold = float(threshold)

    @classmethod
    def random(
        cls, n_features: int, width: int, rng: np.random.Generator, kind: str = "gaussian"
    ) -> LinearCode:
        if n_features * width > 2 * 10**8:
            raise SuperposeError(
                f"a dense linear code of {width} x {n_features} is too large; use the Bloom code"
            )
        if kind == "gaussian":
            e = rng.standard_normal((width, n_features))
        elif kind == "rademacher":
            e = rng.choice([-1.0, 1.0], size=(width, n_features))
        else:
            raise SuperposeError(
                f"unknown linear code distribution {kind!r} (gaussian, rademacher)"
            )
        return cls(e / np.sqrt(width), kind)

    def encode(self, x: sparse.sparray | np.ndarray) -> np.ndarray:
        return np.asarray(_bool_rows(x) @ self.matrix.T)

    def read(self, z: sparse.sparray | np.ndarray) -> np.ndarray:
        """The linear read-out E^T z (before the threshold)."""
        z = z.toarray() if sparse.issparse(z) else np.asarray(z)
        return z @ self.matrix

    def decode(self, z: sparse.sparray | np.ndarray) -> sparse.csr_array:
        return sparse.csr_array(self.read(z) >= self.threshold)

    def to_arrays(self) -> dict[str, np.ndarray]:
        return {"matrix": self.matrix}

    def meta(self) -> dict[str, Any]:
        return {**super().meta(), "distribution": self.distribution, "threshold": self.threshold}

    @classmethod
    def from_arrays(cls, meta: dict[str, Any], arrays: dict[str, np.ndarray]) -> LinearCode:
        matrix = arrays["matrix"]
        if matrix.shape != (int(meta["width"]), int(meta["n_features"])):
            raise SuperposeError("linear code matrix shape disagrees with the recorded sizes")
        return cls(matrix, meta.get("distribution", "gaussian"), float(meta.get("threshold", 0.5)))


CODE_KINDS: dict[str, type[Code]] = {c.kind: c for c in (ExplicitCode, BloomCode, LinearCode)}


def code_from_arrays(meta: dict[str, Any], arrays: dict[str, np.ndarray]) -> Code:
    """Rebuild a code from :meth:`Code.meta` and :meth:`Code.to_arrays`."""
    kind = meta.get("kind")
    if kind not in CODE_KINDS:
        raise SuperposeError(f"unknown code kind {kind!r}")
    return CODE_KINDS[kind].from_arrays(meta, arrays)  # type: ignore[attr-defined]


def random_sets(n_sets: int, width: int, length: int, rng: np.random.Generator) -> sparse.csr_array:
    """``n_sets`` random ``length``-subsets of ``range(width)`` as a 0/1 (n_sets, width) array.

    Example:
        >>> random_sets(4, 10, 3, np.random.default_rng(0)).sum(axis=1).tolist()
        [3, 3, 3, 3]
    """
    if not 1 <= length <= width:
        raise SuperposeError(f"a code of {length} neurons does not fit in a layer of width {width}")
    rows = rng.integers(0, width, size=(n_sets, length), dtype=np.int64)
    # Redraw rows with repeats; few rows repeat when length << width.
    for _ in range(1000):
        srt = np.sort(rows, axis=1)
        bad = (np.diff(srt, axis=1) == 0).any(axis=1)
        if not bad.any():
            break
        nbad = int(bad.sum())
        if length * 4 > width:
            rows[bad] = np.argsort(rng.random((nbad, width)), axis=1)[:, :length]
        else:
            rows[bad] = rng.integers(0, width, size=(nbad, length))
    rows.sort(axis=1)
    indptr = np.arange(0, n_sets * length + 1, length, dtype=np.int64)
    data = np.ones(n_sets * length, dtype=np.int8)
    return sparse.csr_array((data, rows.ravel().astype(np.int32), indptr), shape=(n_sets, width))
