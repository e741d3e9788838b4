"""Which features can make each unit fire: the bit rows the s = 2 certificate starts from.

For unit o (threshold T_o = -b_o) and one feature f, let c+_o(f) be the positive part of
what f's code brings to o (the sum of o's positive weights over the code's bits) and c_o(f)
all of it. :func:`unit_sets` returns, as bit rows over the features (bit f of row o):

* ``reach[o]``: f fires o alone (c_o(f) >= T_o), or can take part in firing it jointly
  (c+_o(f) > 0 and c+_o(f) >= T_o - M_o, M_o the most any feature that does not fire o alone
  brings);
* ``lead[o]``: f fires o alone or brings at least half of T_o;
* ``kill[i]`` (signed units only, in unit order, plus one empty last row): f can stop the
  i-th signed unit o from firing for some feature a that fires it alone. The pair brings
  c_o(a) plus what f's bits outside a's code bring, which is at least c-_o(f), the negative
  part of f's contribution; so a kill needs c-_o(f) < T_o - A_o, A_o the least c_o(a) over
  the lone firers a. A private xor / andnot unit sits L - 1 above its threshold, so only a
  feature covering L of its negative bits qualifies, not every feature touching one;
* ``alone``: the sparse (units x features) 0/1 matrix of "f fires o alone".

Two ways to compute the same sets. The general one (:func:`_dense_sets`) multiplies the
feature codes by blocks of units: every (feature, unit) contribution, m x units numbers,
which is most of the certificate's time at m' = 10^6 (10^10 contributions). When every
weight is 0 or 1 (what ``superposed`` builds for monotone tasks), c_o(f) is a *count* of
f's code bits that o reads, so "c_o(f) >= j" is a bitwise "at least j of f's k code rows",
each row the units reading one code bit (:func:`_binary_sets`): k^2 / 2 word operations per
feature over units / 64 words, instead of one number per (feature, unit). Both are tested
against each other; :func:`unit_sets` picks the binary one whenever it applies.

Example:
    >>> import numpy as np
    >>> from superpose import Task
    >>> from superpose.constructions import build
    >>> task = Task.from_gates(8, 2, [("and", [0, 1]), ("and", [2, 3]), ("and", [4, 5])])
    >>> net = build(task, "superposed", rng=np.random.default_rng(0))
    >>> sets = unit_sets(net, lambda: None)
    >>> sets.method, sets.reach.shape[0] == net.layers[0].n_out
    ('binary', True)
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import numpy as np
from scipy import sparse

from superpose._numeric import ranges as _ranges
from superpose.codes import BloomCode
from superpose.network import Network

BLOCK_BYTES = 2**24
"""Dense (features x units) contribution blocks are kept below this many bytes."""
FEATURE_BLOCK = 4096
"""Features per block of the binary method (a multiple of 64)."""
MAX_UNIT_BIT_BYTES = 2**30
"""The binary method's table (code bits x units bits) stays below this."""


@dataclass(frozen=True)
class UnitSets:
    """Bit rows over the features per unit (module doc) and how they were computed."""

    reach: np.ndarray
    lead: np.ndarray
    kill: np.ndarray
    signed: np.ndarray
    alone: sparse.csr_array
    method: str


def input_membership(net: Network) -> sparse.csr_array:
    """(features x code bits) 0/1: the input code's bits of each feature."""
    code = net.input_code
    if isinstance(code, BloomCode):
        return sparse.csr_array(code.membership, dtype=np.float32)
    return sparse.eye_array(net.task.features, format="csr", dtype=np.float32)


def unit_sets(
    net: Network, tick: Callable[[], None], progress: Callable[[int], None] | None = None
) -> UnitSets:
    """The reach / lead / kill rows of the first layer's units (module doc)."""
    w, e = _first_layer(net)
    bias = np.asarray(net.layers[0].bias, dtype=np.float64)
    width_bytes = (w.shape[1] + 1) * ((w.shape[0] + 63) // 64) * 8
    if _is_binary(w, e) and width_bytes <= MAX_UNIT_BIT_BYTES:
        return _binary_sets(e, w, bias, tick, progress)
    ones = _binary_units(w)
    if ones.any() and (~ones).any() and bool(np.all(e.data == 1)):
        return _split_sets(e, w, bias, ones, tick, progress)
    return _dense_sets(e, w, bias, tick, progress)


def _binary_units(w: sparse.csr_array) -> np.ndarray:
    """Units whose every weight is 1 (the shared pools of a mixed network)."""
    rows = np.repeat(np.arange(w.shape[0]), np.diff(w.indptr))
    other = np.zeros(w.shape[0], dtype=bool)
    other[rows[w.data != 1]] = True
    return ~other


def _split_sets(
    e: sparse.csr_array,
    w: sparse.csr_array,
    bias: np.ndarray,
    ones: np.ndarray,
    tick: Callable[[], None],
    progress: Callable[[int], None] | None,
) -> UnitSets:
    """Every set is per unit, so a network mixing 0/1 pools with signed detectors takes the
    binary method for the former and the general one for the rest, rows put back in order."""
    a = np.flatnonzero(ones)
    b = np.flatnonzero(~ones)
    fast = _binary_sets(e, sparse.csr_array(w[a]), bias[a], tick, progress)
    rest = _dense_sets(e, sparse.csr_array(w[b]), bias[b], tick, progress)
    reach = np.empty((w.shape[0], fast.reach.shape[1]), dtype=np.uint64)
    lead = np.empty_like(reach)
    reach[a], reach[b] = fast.reach, rest.reach
    lead[a], lead[b] = fast.lead, rest.lead
    signed = np.zeros(w.shape[0], dtype=bool)
    signed[b] = rest.signed  # 0/1 units are unsigned: the kill rows keep their order
    order = np.argsort(np.concatenate([a, b]), kind="stable")
    alone = sparse.csr_array(sparse.vstack([fast.alone, rest.alone], format="csr")[order])
    return UnitSets(reach, lead, rest.kill, signed, alone, "binary+dense")


def at_least(rows: np.ndarray, t: int) -> np.ndarray:
    """Bitwise "at least ``t`` of the L rows": rows (G, L, W) uint64 -> (G, W)."""
    g, n_rows, w = rows.shape
    if t <= 1:
        return np.bitwise_or.reduce(rows, axis=1)
    if t >= n_rows:
        return np.bitwise_and.reduce(rows, axis=1)
    ones = np.full((g, w), np.iinfo(np.uint64).max, dtype=np.uint64)
    level = [ones] + [np.zeros((g, w), dtype=np.uint64) for _ in range(t)]
    for r in range(n_rows):
        x = rows[:, r, :]
        for k in range(min(t, r + 1), 0, -1):
            level[k] |= level[k - 1] & x
    return level[t]


def set_bits(words: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """(row, bit index) of every set bit of a (G, W) uint64 array, bit b of word w = 64 w + b."""
    flat = np.flatnonzero(words)  # faster than a 2-D nonzero on sparse rows
    if len(flat) == 0:
        return np.empty(0, np.int64), np.empty(0, np.int64)
    r, wi = np.divmod(flat, words.shape[1])
    bits = np.unpackbits(words[r, wi].view(np.uint8).reshape(-1, 8), axis=1, bitorder="little")
    rr, b = np.nonzero(bits)
    return r[rr].astype(np.int64), wi[rr].astype(np.int64) * 64 + b


def bit_rows(columns: np.ndarray, pad: int) -> np.ndarray:
    """(features, units) booleans -> (units, words) uint64 bit rows (bit f of row o)."""
    rows = np.pad(columns, ((0, pad), (0, 0)))
    packed = np.packbits(np.ascontiguousarray(rows.T), axis=1, bitorder="little")
    return np.ascontiguousarray(packed).view(np.uint64)


def bit_at(rows: np.ndarray, which: np.ndarray, features: np.ndarray) -> np.ndarray:
    """Bit ``features[i]`` of row ``which[i]`` of a (rows, words) uint64 table, as booleans."""
    word = rows[which, features >> 6]
    return ((word >> (features & 63).astype(np.uint64)) & np.uint64(1)).astype(bool)


SPARSE_SHARE = 0.2
"""A run of units goes through the sparse product when their read features fill at most
this share of a dense (features x units) block."""
SPARSE_BLOCK_ENTRIES = 2**24
"""Most (unit, feature) entries one sparse block holds."""
_SHIFT = float(2**24)
"""Positive and negative parts travel in one float64: positive * 2^24 + |negative|."""


def _integral(w: sparse.csr_array) -> bool:
    """Integer weights small enough that both parts of any contribution fit below 2^24."""
    data = np.asarray(w.data)
    return bool(np.all(data == np.round(data))) and float(np.abs(data).sum(initial=0)) < _SHIFT


def _touched(w: sparse.csr_array, e: sparse.csr_array) -> np.ndarray:
    """Per unit, an upper bound on the features its read bits reach (bit frequencies summed)."""
    freq = np.asarray(e.sum(axis=0)).ravel()  # features holding each code bit
    pattern = sparse.csr_array((np.ones(w.nnz), w.indices, w.indptr), shape=w.shape)
    return np.asarray(pattern @ freq).ravel()


def _sparse_block_end(touched: np.ndarray, lo: int, m: int) -> int:
    """End of the run of sparse units starting at ``lo`` (``lo`` when unit ``lo`` is dense)."""
    hi = lo
    total = 0.0
    while hi < len(touched) and touched[hi] <= SPARSE_SHARE * m:
        if total + touched[hi] > SPARSE_BLOCK_ENTRIES and hi > lo:
            break
        total += touched[hi]
        hi += 1
    return hi


def _or_bits(table: np.ndarray, rows: np.ndarray, cols: np.ndarray) -> None:
    """Set bit ``cols[i]`` of row ``rows[i]`` of a (rows, words) uint64 table."""
    if len(rows):
        bits = np.left_shift(np.uint64(1), (cols & 63).astype(np.uint64))
        np.bitwise_or.at(table, (rows, cols >> 6), bits)


def _sparse_block(
    et: sparse.csr_array,
    w: sparse.csr_array,
    need: np.ndarray,
    signed: np.ndarray,
    lo: int,
    reach: np.ndarray,
    lead: np.ndarray,
    kill: np.ndarray,
    signed_index: np.ndarray,
) -> tuple[np.ndarray, np.ndarray]:
    """:func:`_dense_sets` for units reading few features: the same rows from one sparse
    product (every threshold positive, so a feature off a unit's read bits neither fires nor
    joins it, and brings no negative part). Returns the (unit, feature) pairs firing alone."""
    wpos = w.copy()
    wpos.data = np.maximum(wpos.data, 0)
    wneg = w.copy()
    wneg.data = -np.minimum(wneg.data, 0)
    # (units, m): positive part * 2^24 + |negative part|, exact in float64. csr_matmat never
    # writes a column twice in a row, so the product needs no sum_duplicates (whose sort of
    # every row's indices was the largest cost of this block).
    both = sparse.csr_array((wpos * _SHIFT + wneg) @ et)
    sizes = np.diff(both.indptr)
    rows = np.repeat(np.arange(both.shape[0]), sizes)
    starts = both.indptr[:-1][sizes > 0]
    f = both.indices.astype(np.int64)
    cpos = np.floor(both.data / _SHIFT)
    cneg = both.data - cpos * _SHIFT
    full = cpos - cneg
    t = need[rows]
    fires = full >= t
    outside = np.where(fires, 0.0, cpos)
    most = np.zeros(both.shape[0])
    if len(starts):
        most[sizes > 0] = np.maximum.reduceat(outside, starts)
    joins = (cpos > 0) & (cpos >= t - most[rows]) & ~fires
    heavy = (cpos > 0) & (2 * cpos >= t) & ~fires
    _or_bits(reach, rows[fires | joins] + lo, f[fires | joins])
    _or_bits(lead, rows[fires | heavy] + lo, f[fires | heavy])
    if signed.any():
        least = np.zeros(both.shape[0])
        if len(starts):
            least[sizes > 0] = np.minimum.reduceat(np.where(fires, full, np.inf), starts)
        # the same rule as the dense blocks: negative part below T_o - A_o
        kills = signed[rows] & (-cneg < t - least[rows])
        _or_bits(kill, signed_index[rows[kills] + lo], f[kills])
    return rows[fires] + lo, f[fires]


def _dense_sets(
    e: sparse.csr_array,
    w: sparse.csr_array,
    bias: np.ndarray,
    tick: Callable[[], None],
    progress: Callable[[int], None] | None,
) -> UnitSets:
    """Every (feature, unit) contribution, a block of units at a time (any weights)."""
    m, n_units = e.shape[0], w.shape[0]
    wpos = w.copy()
    wpos.data = np.maximum(wpos.data, 0)
    signed = np.asarray((w < 0).sum(axis=1)).ravel() > 0
    words = (m + 63) // 64
    reach = np.zeros((n_units, words), dtype=np.uint64)
    lead = np.zeros((n_units, words), dtype=np.uint64)
    signed_index = np.cumsum(signed) - 1
    kill = np.zeros((int(signed.sum()) + 1, words), dtype=np.uint64)
    block = max(1, min(n_units, BLOCK_BYTES // max(8 * m, 1)))
    pad = words * 64 - m
    alone_units: list[np.ndarray] = []
    alone_feats: list[np.ndarray] = []
    # Units that read few features (private xor / andnot detectors: about 2 l code bits each)
    # go through a sparse product instead: contributions are zero off a unit's read features.
    sparse_ok = _integral(w) and bool((bias < 0).all())
    touched = _touched(w, e) if sparse_ok else None
    et: sparse.csr_array | None = None  # the code transposed, once, for the sparse blocks
    lo = 0
    while lo < n_units:
        tick()
        if touched is not None:
            hi = _sparse_block_end(touched, lo, m)
            if hi > lo:
                if et is None:
                    et = sparse.csr_array(e.T, dtype=np.float64)
                alone_u, alone_f = _sparse_block(
                    et, w[lo:hi], -bias[lo:hi], signed[lo:hi], lo, reach, lead, kill, signed_index
                )
                alone_units.append(alone_u)
                alone_feats.append(alone_f)
                if progress is not None:
                    progress(hi - lo)
                lo = hi
                continue
        hi = min(n_units, lo + block)
        cpos = (e @ sparse.csr_array(wpos[lo:hi].T)).toarray()  # (m, units) positive parts
        full = (e @ sparse.csr_array(w[lo:hi].T)).toarray() if signed[lo:hi].any() else cpos
        need = -bias[lo:hi]
        fires = full >= need  # exact for one code: a code is a set
        outside = np.where(fires, 0.0, cpos)
        most = outside.max(axis=0) if m else np.zeros(hi - lo)
        joins = (cpos > 0) & (cpos >= need - most) & ~fires
        heavy = (cpos > 0) & (2 * cpos >= need) & ~fires
        reach[lo:hi] = bit_rows(fires | joins, pad)
        lead[lo:hi] = bit_rows(fires | heavy, pad)
        sel = np.flatnonzero(signed[lo:hi])
        if len(sel):
            # f kills o for a feature a firing it alone iff the union of their codes brings
            # less than T_o: f's bits outside a's code bring at least f's negative part, so
            # every such f has c-_o(f) < T_o - A_o, A_o the least any lone firer brings.
            least = np.where(fires[:, sel], full[:, sel], np.inf).min(axis=0) if m else need[sel]
            negative = full[:, sel] - cpos[:, sel]
            kill[signed_index[lo + sel]] = bit_rows(negative < need[sel] - least, pad)
        u, f = np.nonzero(fires.T)
        alone_units.append(u + lo)
        alone_feats.append(f)
        if progress is not None:
            progress(hi - lo)
        lo = hi
    alone = _alone(np.concatenate(alone_units), np.concatenate(alone_feats), n_units, m)
    return UnitSets(reach, lead, kill, signed, alone, "dense")


def _binary_sets(
    e: sparse.csr_array,
    w: sparse.csr_array,
    bias: np.ndarray,
    tick: Callable[[], None],
    progress: Callable[[int], None] | None,
) -> UnitSets:
    """The same sets for 0/1 weights, from bitwise counts over each feature's code rows.

    Two passes over the features: the first finds which units each feature fires alone and
    M_o (the highest count a non-firing feature reaches); the second the join and lead
    thresholds, written into the unit-major rows a block of features at a time.
    """
    m = e.shape[0]
    n_units = w.shape[0]
    uw = (n_units + 63) // 64
    words = (m + 63) // 64
    counter = _CodeCounter(e, w)
    kmax = counter.kmax
    need = -bias

    def masks(thr: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """Per level j = 1..kmax the units whose threshold is j, and the always-on units."""
        table = np.zeros((kmax + 1, n_units), dtype=bool)
        inside = (thr >= 1) & (thr <= kmax)
        table[thr[inside].astype(np.int64), np.flatnonzero(inside)] = True
        pad = ((0, 0), (0, uw * 64 - n_units))
        packed = np.packbits(np.pad(table, pad), axis=1, bitorder="little").view(np.uint64)
        always = np.packbits(np.pad(thr <= 0, (0, uw * 64 - n_units)), bitorder="little")
        return packed, always.view(np.uint64)

    def select(level: list[np.ndarray], table: tuple[np.ndarray, np.ndarray]) -> np.ndarray:
        per_level, always = table
        out = np.broadcast_to(always, level[0].shape).copy()
        for j in range(1, kmax + 1):
            if per_level[j].any():
                out |= level[j] & per_level[j]
        return out

    fire_t = masks(np.ceil(need))
    outside = np.zeros((kmax + 1, uw), dtype=np.uint64)
    alone_units: list[np.ndarray] = []
    alone_feats: list[np.ndarray] = []
    for lo in range(0, m, FEATURE_BLOCK):
        tick()
        hi = min(m, lo + FEATURE_BLOCK)
        level = counter.levels(lo, hi)
        fires = select(level, fire_t)
        for j in range(1, kmax + 1):
            outside[j] |= np.bitwise_or.reduce(level[j] & ~fires, axis=0)
        f, u = set_bits(fires)
        keep = u < n_units
        alone_units.append(u[keep])
        alone_feats.append(f[keep] + lo)
    seen = np.unpackbits(outside.view(np.uint8), axis=1, bitorder="little")[:, :n_units]
    most = (seen * np.arange(kmax + 1)[:, None]).max(axis=0)
    join_t = masks(np.maximum(1, np.ceil(need - most)))
    lead_t = masks(np.maximum(1, np.ceil(need / 2)))
    reach = np.zeros((n_units, words), dtype=np.uint64)
    lead = np.zeros((n_units, words), dtype=np.uint64)
    for lo in range(0, m, FEATURE_BLOCK):
        tick()
        hi = min(m, lo + FEATURE_BLOCK)
        level = counter.levels(lo, hi)
        fires = select(level, fire_t)
        w0, w1 = lo // 64, (hi + 63) // 64
        reach[:, w0:w1] = _transpose(fires | select(level, join_t), n_units)
        lead[:, w0:w1] = _transpose(fires | select(level, lead_t), n_units)
        if progress is not None:
            progress(hi - lo)
    alone = _alone(np.concatenate(alone_units), np.concatenate(alone_feats), n_units, m)
    kill = np.zeros((1, words), dtype=np.uint64)
    return UnitSets(reach, lead, kill, np.zeros(n_units, dtype=bool), alone, "binary")


class _CodeCounter:
    """Bitwise "unit o reads at least j of feature f's code bits" (0/1 weights and codes)."""

    def __init__(self, e: sparse.csr_array, w: sparse.csr_array) -> None:
        m, width = e.shape
        self.n_units = w.shape[0]
        self.uw = (self.n_units + 63) // 64
        k = np.diff(e.indptr)
        self.kmax = int(k.max(initial=0))
        # codes[f] = f's code bits, padded with `width` (a row of no units)
        self.codes = np.full((m, max(self.kmax, 1)), width, dtype=np.int64)
        self.codes[np.repeat(np.arange(m), k), _ranges(k)] = e.indices
        self.units_of_bit = np.zeros((width + 1, self.uw), dtype=np.uint64)
        wt = sparse.csr_array(w.T)
        rows_per = max(1, BLOCK_BYTES // max(self.n_units, 1))
        for lo in range(0, width, rows_per):
            hi = min(width, lo + rows_per)
            dense = wt[lo:hi].toarray() > 0  # (bits, units)
            self.units_of_bit[lo:hi] = bit_rows(dense.T, self.uw * 64 - self.n_units)

    def levels(self, lo: int, hi: int) -> list[np.ndarray]:
        """level[j][f - lo] = the units reading at least j of f's code bits (unit bit rows)."""
        rows = self.units_of_bit[self.codes[lo:hi]]  # (B, kmax, uw)
        level = [np.full((hi - lo, self.uw), np.iinfo(np.uint64).max, dtype=np.uint64)]
        level += [np.zeros((hi - lo, self.uw), dtype=np.uint64) for _ in range(self.kmax)]
        for r in range(self.codes.shape[1]):
            x = rows[:, r, :]
            for j in range(min(self.kmax, r + 1), 0, -1):
                level[j] |= level[j - 1] & x
        return level


def _first_layer(net: Network) -> tuple[sparse.csr_array, sparse.csr_array]:
    """The first layer's weights (float32, explicit zeros dropped, a copy) and the input code."""
    w = sparse.csr_array(net.layers[0].weight, dtype=np.float32).copy()
    w.eliminate_zeros()
    return w, input_membership(net)


def _is_binary(w: sparse.csr_array, e: sparse.csr_array) -> bool:
    return bool(np.all(w.data == 1)) and bool(np.all(e.data == 1))


def binary(net: Network) -> bool:
    """Whether every first-layer weight and every input-code entry is 0 or 1."""
    return _is_binary(*_first_layer(net))


def _transpose(rows: np.ndarray, n_units: int) -> np.ndarray:
    """(features, unit words) bit rows -> (units, feature words), features padded to 64.

    Works on 8 x 8 bit blocks (8 features x one byte of units, held in one uint64): each is
    transposed in place by three masked swaps (Hacker's Delight, 7-9), so the data moves as
    packed bits, never one byte per bit (unpacking first moved 8x the bytes and was 30 s of a
    10^5-unit certificate).
    """
    pad = (-rows.shape[0]) % 64
    if pad:
        rows = np.concatenate([rows, np.zeros((pad, rows.shape[1]), dtype=np.uint64)])
    n = rows.shape[0] // 8
    # x[F, c]: byte r = unit byte c of feature 8F + r (bit i = unit 8c + i)
    x = np.ascontiguousarray(rows.view(np.uint8).reshape(n, 8, -1).transpose(0, 2, 1))
    x = x.view(np.uint64)[..., 0]
    for shift, mask in ((7, 0x00AA00AA00AA00AA), (14, 0x0000CCCC0000CCCC), (28, 0xF0F0F0F0)):
        t = (x ^ (x >> np.uint64(shift))) & np.uint64(mask)
        x ^= t ^ (t << np.uint64(shift))
    # now byte i of x[F, c] = unit 8c + i, bit r = feature 8F + r
    out = x.view(np.uint8).reshape(n, -1, 8).transpose(1, 2, 0).reshape(-1, n)[:n_units]
    return np.ascontiguousarray(out).view(np.uint64)


def _alone(units: np.ndarray, feats: np.ndarray, n_units: int, m: int) -> sparse.csr_array:
    return sparse.csr_array(
        (np.ones(len(units), dtype=np.int32), (units.astype(np.int64), feats.astype(np.int64))),
        shape=(n_units, m),
    )
