"""Codes: how a set of active features is laid out on a layer of neurons, and read back (docs/DESIGN.md, Model).

Three codes share one interface (``encode``, ``decode``, ``to_arrays``/``from_arrays``):

* :class:`ExplicitCode` -- one neuron per feature.
* :class:`BloomCode` -- feature f owns a set S_f of neurons; the layer is the OR of the active
  sets; f reads as present iff at least ``need[f]`` of its neurons are on (``len(S_f) - slack``
  unless a per-feature need is given).
* :class:`LinearCode` -- z = E x with Gaussian or +-1 columns; read by E^T z and a threshold.

Batches are ``scipy.sparse`` arrays of shape (batch, features) or (batch, width).
"""

from __future__ import annotations

import math
from typing import Any, ClassVar

import numpy as np
from scipy import sparse

from superpose.errors import SuperposeError

_DECODE_BLOCK = 2**24  # (rows x width) booleans of the batch held at once while decoding


def _bool_rows(x: sparse.sparray | np.ndarray) -> sparse.csr_array:
    out = sparse.csr_array(x, dtype=np.float64)
    out.data = (out.data > 0.5).astype(np.float64)
    out.eliminate_zeros()
    return out


def _expand(indptr: np.ndarray, indices: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """(row, column) of every stored entry of a CSR structure."""
    rows = np.repeat(np.arange(len(indptr) - 1, dtype=np.int64), np.diff(indptr))
    return rows, indices.astype(np.int64)


def _gather_ranges(
    indptr: np.ndarray, indices: np.ndarray, which: np.ndarray
) -> tuple[np.ndarray, np.ndarray]:
    """The concatenated CSR rows ``which`` and, per entry, its position in ``which``."""
    which = np.asarray(which, dtype=np.int64)
    starts = indptr[which].astype(np.int64)
    counts = indptr[which + 1].astype(np.int64) - starts
    owner = np.repeat(np.arange(len(which), dtype=np.int64), counts)
    ends = np.cumsum(counts)
    pos = np.arange(int(ends[-1]) if len(ends) else 0, dtype=np.int64)
    pos += np.repeat(starts - (ends - counts), counts)
    return indices[pos].astype(np.int64), owner


def _csr_from_sorted(
    rows: np.ndarray, cols: np.ndarray, data: np.ndarray, shape: tuple[int, int]
) -> sparse.csr_array:
    """A CSR array from entries sorted by (row, column), without duplicates."""
    indptr = np.zeros(shape[0] + 1, dtype=np.int64)
    np.cumsum(np.bincount(rows, minlength=shape[0]), out=indptr[1:])
    idx = np.int32 if max(shape[1], len(cols)) < 2**31 else np.int64
    out = sparse.csr_array((data, cols.astype(idx), indptr.astype(idx)), shape=shape)
    out.has_sorted_indices = True
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

    def __init__(
        self, membership: sparse.sparray, slack: int = 0, need: np.ndarray | None = None
    ) -> None:
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
        self.custom_need = need is not None
        if need is None:
            self.need = self.lengths - self.slack
        else:
            if self.slack:
                raise SuperposeError("give a Bloom code either a slack or a per-feature need")
            need = np.asarray(need)
            if need.shape != (self.n_features,) or need.dtype.kind not in "iu":
                raise SuperposeError(
                    f"Bloom code need must be {self.n_features} integers, got {need.dtype} "
                    f"of shape {need.shape}"
                )
            need = need.astype(np.int64)
            bad = (need < 1) | (need > self.lengths)
            if bad.any():
                f = int(np.flatnonzero(bad)[0])
                raise SuperposeError(
                    f"Bloom code: feature {f} needs {int(need[f])} of its {int(self.lengths[f])} "
                    "neurons; must be 1..length"
                )
            self.need = need
        self._spare = self.lengths - self.need  # neurons a present feature may miss
        self._membership_t: sparse.csr_array | None = None
        self._anchors_t: sparse.csr_array | None = None
        self._column_counts: np.ndarray | None = None
        self._anchor_next: np.ndarray | None = None
        self._membership_t_counts: sparse.csr_array | None = None

    def required(self) -> np.ndarray:
        """How many of its neurons each feature needs on to read as present (``need``).

        ``lengths - slack`` unless a per-feature ``need`` was given (e.g. 1 of 2 for a gate
        built from two mutually exclusive units).

        Example:
            >>> code = BloomCode(sparse.csr_array(np.array([[1, 1, 0], [0, 1, 1]])), need=np.array([2, 1]))
            >>> code.required().tolist()
            [2, 1]
            >>> code.decode(np.array([[0.0, 0.0, 1.0]])).toarray().astype(int).tolist()
            [[0, 1]]
        """
        return self.need

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

    @property
    def anchors_t(self) -> sparse.csr_array:
        """(width, features): each feature listed under its first ``length - need + 1`` neurons.

        A feature that decodes as present has at most ``length - need`` of its neurons off, so
        one of these anchors is on: the features anchored at the on-neurons are the only
        candidates.
        """
        if self._anchors_t is None:
            m = self.membership
            k = self._spare + 1
            rows = np.repeat(np.arange(self.n_features, dtype=np.int64), k)
            offsets = np.arange(int(k.sum())) - np.repeat(np.cumsum(k) - k, k)
            units = m.indices[np.repeat(m.indptr[:-1], k) + offsets]
            self._anchors_t = sparse.csr_array(
                (np.ones(len(rows), dtype=np.int8), (units, rows)),
                shape=(self.width, self.n_features),
            )
        return self._anchors_t

    def encode(self, x: sparse.sparray | np.ndarray) -> sparse.csr_array:
        on = _bool_rows(x)
        m = self.membership
        rows, feats = _expand(on.indptr, on.indices)
        units, owner = _gather_ranges(m.indptr, m.indices, feats)
        key = np.unique(rows[owner] * self.width + units)
        r, u = np.divmod(key, self.width)
        return _csr_from_sorted(r, u, np.ones(len(u)), (on.shape[0], self.width))

    def decode(self, z: sparse.sparray | np.ndarray) -> sparse.csr_array:
        """Features with at least ``need[f]`` neurons on (a neuron is on above 1/2).

        Two exact methods, chosen per block of rows by their estimated cost:

        * anchored: the candidates are the features anchored at an on-neuron
          (:attr:`anchors_t`); each is checked neuron by neuron against a boolean block of
          the batch and dropped as soon as it cannot reach its threshold. The work follows
          the on-neurons times the features anchored there, not all their features.
        * counted: one sparse product (on-neurons x membership^T, in small integers) counts
          every feature's on-neurons; cheaper when most neurons are on (a broken network).
        """
        on = _bool_rows(z)
        on.sort_indices()
        n = on.shape[0]
        block = max(1, _DECODE_BLOCK // max(self.width, 1))
        parts = [self._decode_block(on[start : start + block]) for start in range(0, n, block)]
        if len(parts) == 1:
            return parts[0]
        if not parts:
            return sparse.csr_array((n, self.n_features), dtype=bool)
        return sparse.csr_array(sparse.vstack(parts, format="csr"), dtype=bool)

    def _decode_block(self, on: sparse.csr_array) -> sparse.csr_array:
        """The features read as present in a block of on-neurons (rows of the batch)."""
        n_rows = on.shape[0]
        part_rows, part_units = _expand(on.indptr, on.indices)
        anchors = self.anchors_t
        anchored = np.diff(anchors.indptr)[part_units]
        # Estimated work of both methods: candidates x expected checks (a candidate survives
        # a check with the fraction of neurons that are on) against the product's entries.
        lit_share = len(part_units) / max(1, n_rows * self.width)
        checks = min(float(self.lengths.max(initial=1)), 1.0 / max(1e-9, 1.0 - lit_share))
        product = self.column_counts[part_units].sum()
        if lit_share > 0.2 or float(anchored.sum()) * (1.0 + checks) > product:
            return self._decode_counted(on)
        lit = np.zeros(n_rows * self.width, dtype=bool)
        lit[part_rows * self.width + part_units] = True
        m_indptr, m_indices = self.membership.indptr, self.membership.indices
        spare = self._spare
        any_spare = bool(spare.any())
        if any_spare:
            cand, owner = _gather_ranges(anchors.indptr, anchors.indices, part_units)
            key = np.unique(part_rows[owner] * self.n_features + cand)
            rows, cand = np.divmod(key, self.n_features)
            base = rows * self.width  # each candidate's row offset in ``lit``
            k = 0
        else:
            # The anchor (member 0) is on: that is how a candidate is found. Check member 1
            # straight from the anchor table, before gathering anything else per candidate
            # (few survive it).
            starts = anchors.indptr[part_units].astype(np.int64)
            counts = anchors.indptr[part_units + 1].astype(np.int64) - starts
            ends = np.cumsum(counts)
            pos = np.arange(int(ends[-1]) if len(ends) else 0, dtype=np.int64)
            pos += np.repeat(starts - (ends - counts), counts)
            base = np.repeat(part_rows * self.width, counts)
            hit = lit[base + self.anchor_next[pos]]
            base, cand = base[hit], anchors.indices[pos[hit]].astype(np.int64)
            k = 2
        misses_left = spare[cand] if any_spare else np.zeros(len(cand), dtype=np.int64)
        first = m_indptr[cand].astype(np.int64)
        length = self.lengths[cand]
        found_rows: list[np.ndarray] = []
        found_feats: list[np.ndarray] = []
        while True:
            done = k >= length
            if done.any():
                found_rows.append(base[done] // self.width)
                found_feats.append(cand[done])
                base, cand, first, length, misses_left = (
                    a[~done] for a in (base, cand, first, length, misses_left)
                )
            if not len(cand):
                break
            hit = lit[base + m_indices[first + k]]
            if any_spare:
                misses_left -= ~hit
                keep = misses_left >= 0
            else:
                keep = hit
            base, cand, first, length, misses_left = (
                a[keep] for a in (base, cand, first, length, misses_left)
            )
            k += 1
        r = np.concatenate(found_rows) if found_rows else np.zeros(0, np.int64)
        f = np.concatenate(found_feats) if found_feats else np.zeros(0, np.int64)
        out = sparse.coo_array(
            (np.ones(len(f), dtype=bool), (r, f)), shape=(n_rows, self.n_features)
        ).tocsr()
        return sparse.csr_array(out)

    def _decode_counted(self, on: sparse.csr_array) -> sparse.csr_array:
        """The same as the anchored check, by one sparse product in small integers."""
        mt = self.membership_t_counts
        on_int = sparse.csr_array(on, dtype=mt.dtype)
        on_int.data[:] = 1
        counts = sparse.csr_array(on_int @ mt)
        hit = counts.data >= self.need[counts.indices]
        kept = np.concatenate([[0], np.cumsum(hit)])
        indptr = kept[counts.indptr]
        return sparse.csr_array(
            (np.ones(int(indptr[-1]), dtype=bool), counts.indices[hit], indptr),
            shape=counts.shape,
        )

    @property
    def anchor_next(self) -> np.ndarray:
        """Per entry of :attr:`anchors_t` (slack 0): its feature's second neuron (its only
        neuron, the anchor itself, for a feature of one neuron)."""
        if self._anchor_next is None:
            at, m = self.anchors_t, self.membership
            f = at.indices.astype(np.int64)
            second = np.where(self.lengths[f] > 1, m.indptr[f] + 1, m.indptr[f])
            self._anchor_next = m.indices[second].astype(np.int64)
        return self._anchor_next

    @property
    def column_counts(self) -> np.ndarray:
        """How many features own each neuron."""
        if self._column_counts is None:
            self._column_counts = np.bincount(self.membership.indices, minlength=self.width)
        return self._column_counts

    @property
    def membership_t_counts(self) -> sparse.csr_array:
        """membership^T in the smallest integer type that holds every feature's length."""
        if self._membership_t_counts is None:
            top = int(self.lengths.max(initial=1))
            dtype = np.int8 if top <= 127 else np.int16 if top <= 32767 else np.int32
            self._membership_t_counts = sparse.csr_array(self.membership_t, dtype=dtype)
        return self._membership_t_counts

    def to_arrays(self) -> dict[str, np.ndarray]:
        arrays = {
            "indptr": self.membership.indptr.astype(np.int64),
            "indices": self.membership.indices.astype(np.int32),
        }
        if self.custom_need:
            arrays["need"] = self.need.astype(np.int32)
        return arrays

    def meta(self) -> dict[str, Any]:
        out = {
            **super().meta(),
            "slack": self.slack,
            "mean_length": float(self.lengths.mean()) if self.n_features else 0.0,
        }
        if self.custom_need:
            out["per_feature_need"] = True
        return out

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
        membership = sparse.csr_array((data, indices, indptr), shape=(n, w))
        if "need" in arrays:
            return cls(membership, need=arrays["need"])
        return cls(membership, int(meta.get("slack", 0)))


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


def _largest_prime_at_most(n: int) -> int:
    for q in range(n, 1, -1):
        if all(q % d for d in range(2, math.isqrt(q) + 1)):
            return q
    raise SuperposeError(f"no prime at most {n}")


def rs_params(width: int, length: int, n_sets: int) -> int:
    """The field size q of :func:`rs_code_rows` for codes of ``length`` in ``width`` units:
    the largest prime with length * q <= width; it must have q^2 >= n_sets and q >= length.

    Example:
        >>> rs_params(2300, 5, 100_000)
        457
    """
    q = _largest_prime_at_most(max(2, width // max(length, 1)))
    if q * q < n_sets or q < length:
        raise SuperposeError(
            f"Reed-Solomon codes of length {length} in {width} units hold at most {q * q} "
            f"features, fewer than {n_sets}: widen the input layer or shorten the codes"
        )
    return q


def rs_code_rows(
    n_sets: int, width: int, length: int, rng: np.random.Generator, spare: int = 0
) -> tuple[np.ndarray, np.ndarray]:
    """Reed-Solomon (Kautz-Singleton) codes: any two share at most one unit.

    The input layer is cut into ``length`` blocks of q units (q prime, :func:`rs_params`);
    set i is a polynomial p_i(x) = a_i + b_i x over GF(q) and holds unit j q + p_i(j) of
    block j. Two distinct polynomials of degree <= 1 agree on at most one point, so two sets
    share at most one unit. Each block is permuted at random and the polynomials are a random
    choice among the q^2. Returns (n_sets, length) sorted units and the (spare, length) rows
    of ``spare`` further unused polynomials (for redraws). Units past length * q stay unused.

    Example:
        >>> rows, _ = rs_code_rows(50, 44, 4, np.random.default_rng(0))
        >>> inter = [len(set(a) & set(b)) for i, a in enumerate(rows) for b in rows[:i]]
        >>> max(inter) <= 1 and rows.shape == (50, 4)
        True
    """
    q = rs_params(width, length, n_sets + spare)
    polys = rng.choice(q * q, size=n_sets + spare, replace=False)
    a, b = polys // q, polys % q
    x = np.arange(length)
    vals = (a[:, None] + b[:, None] * x[None, :]) % q
    perm = np.stack([rng.permutation(q) for _ in range(length)])  # per-block relabelling
    units = perm[x[None, :], vals] + x[None, :] * q
    units = np.sort(units, axis=1).astype(np.int64)
    return units[:n_sets], units[n_sets:]
