"""An exact certificate for every <= 2-sparse input of a two-layer 2-AND network, and a repair.

With threshold 2l on every unit, codes of l bits and disjoint operand codes, an input {u, v}
fires unit o iff S_u and S_v are disjoint and both lie inside o's read set U_o. So gate
k = (a, c) reads true on a wrong <= 2-sparse input only if some feature b outside {a, c} has
its whole code inside I_k, the input units read by *all* of k's units ("k is vulnerable").
:func:`vulnerable_pairs` finds every such (k, b); that is a certificate for all C(m, <= 2)
inputs at once, far beyond what sampling can reach.

How, in bit sets: :func:`contained_sets` gives every output unit o the set of features whose
code lies in U_o (one bit per feature); b lies in I_k iff it is in the contained set of each
of k's units, so a gate costs a few ANDs of m-bit rows (no loop over gates or candidates).

:func:`repair` redraws the output codes of vulnerable gates inside their own pool (best of a
few candidates: the one adding the fewest new weights) and rechecks only the redrawn gates
and the gates whose I_k grew, until none is left or the rounds run out. The first round is
the full bit-set check; later rounds (:func:`_recheck`) look features up through an input
unit -> features index (:func:`feature_index`, CSR): a redrawn gate tests the features whose
first code unit is in its I_k, a gate whose I_k grew only the features newly contained in one
of its units through a bit that unit gained (it was clean before). The vulnerable gates found
are exactly those of the full check, so the repair draws the same codes either way.

Memory: the unit-by-input matrices are neurons x neurons (dense is fine); the contained sets
are n_out x m *bits* (33 MB at m = 10^5, n_out = 2664), kept after the first round only by
the certificate-driven selection. No weight matrix is densified.
"""

from __future__ import annotations

import sys
from dataclasses import dataclass
from typing import Any

import numpy as np
from scipy import sparse

from superpose.errors import SuperposeError


@dataclass
class PairLayout:
    """A two-layer 2-AND layout: codes, operand pairs, output codes and pools."""

    codes: np.ndarray  # (features, l) sorted input units of each feature
    pairs: np.ndarray  # (gates, 2) operand features
    units: np.ndarray  # (gates, l') output units of each gate
    pool_start: np.ndarray  # (gates,) first unit of the gate's pool
    pool_size: np.ndarray  # (gates,) size of the gate's pool
    n_in: int
    n_out: int

    def counts(self) -> np.ndarray:
        """(n_out, n_in) uint16: how many gate slots put input unit i into unit o's read set."""
        count = np.zeros(self.n_out * self.n_in, dtype=np.uint16)
        self._add(count, np.arange(len(self.pairs)), +1)
        return count.reshape(self.n_out, self.n_in)

    def _add(self, flat: np.ndarray, gates: np.ndarray, sign: int, chunk: int = 100_000) -> None:
        for start in range(0, len(gates), chunk):
            k = gates[start : start + chunk]
            bits = np.concatenate([self.codes[self.pairs[k, 0]], self.codes[self.pairs[k, 1]]], 1)
            idx = (
                self.units[k][:, :, None].astype(np.int64) * self.n_in + bits[:, None, :]
            ).ravel()
            add = np.bincount(idx, minlength=flat.size).astype(np.uint16)
            if sign > 0:
                flat += add
            else:
                flat -= add


ROW_ANDS = 3
"""Units whose contained sets are ANDed as whole bit rows before the sparse remainder."""


def _transpose8(x: np.ndarray) -> np.ndarray:
    """Transpose the 8 x 8 bit matrix in each uint64 (bit 8 r + c -> bit 8 c + r), in place."""
    for shift, mask in (
        (7, 0x00AA00AA00AA00AA),
        (14, 0x0000CCCC0000CCCC),
        (28, 0x00000000F0F0F0F0),
    ):
        t = (x ^ (x >> np.uint64(shift))) & np.uint64(mask)
        x ^= t ^ (t << np.uint64(shift))
    return x


def _bit_transpose(a: np.ndarray) -> np.ndarray:
    """(R, C8) uint8 bit rows (little bit order, R a multiple of 8) -> (8 C8, R / 8) transposed."""
    r, c8 = a.shape
    blocks = np.ascontiguousarray(a.reshape(r // 8, 8, c8).transpose(0, 2, 1))
    x = _transpose8(blocks.view(np.uint64)[..., 0])
    return np.ascontiguousarray(x.view(np.uint8).reshape(r // 8, 8 * c8).T)


def contained_sets(
    read: np.ndarray, codes: np.ndarray, units: np.ndarray | None = None, chunk: int = 1024
) -> np.ndarray:
    """(units, words) uint64 bit sets: bit b of row o is set iff feature b's code lies in U_o.

    Bit b of a row is bit b % 64 of word b // 64. Built feature-major (for every feature, the
    AND over its code bits of the units' packed read columns: m * l short rows) and then
    bit-transposed, so the cost is about m * l * units / 8 bytes, never units * m * l.
    """
    if sys.byteorder != "little":  # the uint8 <-> uint64 bit views below assume it
        raise SuperposeError(
            f"the s = 2 certificate needs a little-endian machine, not {sys.byteorder}"
        )
    units = np.arange(read.shape[0]) if units is None else np.asarray(units)
    m = codes.shape[0]
    words = max(1, -(-m // 64))
    out = np.zeros((len(units), words * 8), dtype=np.uint8)
    pad = np.zeros((words * 64 - m, 1), dtype=np.uint8)
    for start in range(0, len(units), chunk):
        u = units[start : start + chunk]
        cols = np.ascontiguousarray(np.packbits(read[u], axis=0, bitorder="little").T)
        acc = cols[codes[:, 0]]
        for j in range(1, codes.shape[1]):
            acc &= cols[codes[:, j]]
        acc = np.concatenate([acc, np.broadcast_to(pad, (len(pad), acc.shape[1]))])
        out[start : start + len(u)] = _bit_transpose(acc)[: len(u)]
    return out.view(np.uint64)


def vulnerable_pairs(
    layout: PairLayout,
    read: np.ndarray,
    gates: np.ndarray | None = None,
    batch: int | None = None,
    contained: np.ndarray | None = None,
) -> tuple[np.ndarray, np.ndarray]:
    """(gate, feature) pairs with the feature's code inside the gate's common read set I_k.

    ``read`` is the (n_out, n_in) bool read-set matrix; ``contained`` (optional) its
    :func:`contained_sets`. Feature b lies in I_k iff b is in the contained set of each of
    k's units: the sets of the first ``ROW_ANDS`` units are ANDed as bit rows, the words left
    non-zero are ANDed with the other units' words, and k's own operands are dropped.
    Exact; the cost is about ``ROW_ANDS`` * m / 64 word operations per gate.
    """
    cont = contained_sets(read, layout.codes) if contained is None else contained
    gates = np.arange(len(layout.pairs)) if gates is None else np.asarray(gates, dtype=np.int64)
    units = layout.units
    words = cont.shape[1]
    batch = batch or max(64, 2_000_000 // words)
    out_k, out_b = [np.zeros(0, np.int64)], [np.zeros(0, np.int64)]
    for start in range(0, len(gates), batch):
        k = gates[start : start + batch]
        u = units[k]
        acc = cont[u[:, 0]]
        for j in range(1, min(ROW_ANDS, u.shape[1])):
            acc &= cont[u[:, j]]
        # (flat index of a bool mask: several times faster than np.nonzero on 2-d uint64)
        flat = np.flatnonzero(acc != 0)
        row, word = flat // words, flat % words
        val = acc.reshape(-1)[flat]
        for j in range(ROW_ANDS, u.shape[1]):
            val &= cont[u[row, j], word]
        keep = val != 0
        row, word, val = row[keep], word[keep], val[keep]
        if len(val) == 0:
            continue
        bits = np.unpackbits(val.view(np.uint8).reshape(-1, 8), axis=1, bitorder="little")
        hit, pos = np.nonzero(bits)
        kk = k[row[hit]]
        b = word[hit].astype(np.int64) * 64 + pos
        own = (b == layout.pairs[kk, 0]) | (b == layout.pairs[kk, 1])
        out_k.append(kk[~own])
        out_b.append(b[~own])
    return np.concatenate(out_k), np.concatenate(out_b)


def _draw_units(
    start: np.ndarray, size: np.ndarray, candidates: int, length: int, rng: np.random.Generator
) -> np.ndarray:
    """(gates, candidates, length) distinct random units of each gate's pool (rejection)."""
    if (size < length).any():
        raise SuperposeError(f"a unit pool has fewer than {length} units; widen the layer")
    shape = (len(size), candidates, length)
    cand = rng.integers(0, np.broadcast_to(size[:, None, None], shape))
    while True:
        srt = np.sort(cand, axis=2)
        dup = (srt[:, :, 1:] == srt[:, :, :-1]).any(axis=2)
        if not dup.any():
            break
        g, c = np.nonzero(dup)
        cand[g, c] = rng.integers(0, np.broadcast_to(size[g, None], (len(g), length)))
    return cand + start[:, None, None]


def _packed(read: np.ndarray) -> np.ndarray:
    """(rows, words) uint64: each bool row as a bit set."""
    rows, n = read.shape
    out = np.zeros((rows, -(-n // 64) * 8), dtype=np.uint8)
    out[:, : -(-n // 8)] = np.packbits(read, axis=1, bitorder="little")
    return out.view(np.uint64)


def feature_index(codes: np.ndarray, n_in: int, first: bool = False) -> sparse.csr_array:
    """(n_in, features) CSR: row i lists the features whose code uses input unit i.

    With ``first``, only each feature's first (smallest) code unit: a feature whose whole code
    lies in a set has its first unit there, so that row alone finds every such feature once.
    """
    cols = codes[:, :1] if first else codes
    m, width = cols.shape
    return sparse.csr_array(
        (
            np.ones(m * width, dtype=np.int8),
            (cols.ravel(), np.repeat(np.arange(m, dtype=np.int64), width)),
        ),
        shape=(n_in, m),
    )


def _expand(
    indptr: np.ndarray, indices: np.ndarray, owner: np.ndarray, row: np.ndarray
) -> tuple[np.ndarray, np.ndarray]:
    """(owner, entry) for every entry of CSR row ``row[i]``, owned by ``owner[i]``."""
    lo = indptr[row]
    n = indptr[row + 1] - lo
    total = int(n.sum())
    pos = np.repeat(lo - (np.cumsum(n) - n), n) + np.arange(total)
    return np.repeat(owner, n), indices[pos]


def _groups(sizes: np.ndarray, budget: int) -> list[slice]:
    """Consecutive slices of ``sizes`` summing to about ``budget`` (at least one item each)."""
    ends = np.cumsum(sizes)
    out, start = [], 0
    while start < len(sizes):
        base = ends[start - 1] if start else 0
        stop = max(start + 1, int(np.searchsorted(ends, base + budget, side="right")))
        out.append(slice(start, stop))
        start = stop
    return out


def _code_table(codes: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """The codes transposed ((l, features) int32) for :func:`_inside`, with each unit's byte
    (unit // 8) and bit mask (1 << unit % 8) in a packed bit set."""
    codes_t = np.ascontiguousarray(codes.T, dtype=np.int32)
    return codes_t, codes_t >> 3, (np.uint8(1) << (codes_t & 7).astype(np.uint8))


def _inside(
    table: tuple[np.ndarray, np.ndarray, np.ndarray],
    sets: np.ndarray,
    row: np.ndarray,
    feat: np.ndarray,
    skip: int = -1,
) -> np.ndarray:
    """Mask: the whole code of ``feat[i]`` lies in row ``row[i]`` of ``sets``.

    ``table`` is :func:`_code_table`; ``sets`` is either a bool matrix (rows, units) or
    (rows, words) uint64 bit sets. Code units are tested one at a time on the candidates still
    alive, so a candidate whose next unit is usually outside costs little. Column ``skip`` of
    the codes is known to be inside and not tested.
    """
    codes_t, byte_t, mask_t = table
    packed = sets.dtype != bool
    flat = sets.view(np.uint8).reshape(-1) if packed else sets.reshape(-1)
    stride = sets.shape[1] * 8 if packed else sets.shape[1]
    base = row.astype(np.int32 if flat.size < 2**31 else np.int64) * stride
    alive = None
    for j in range(codes_t.shape[0]):
        if j == skip:
            continue
        f, at = (feat, base) if alive is None else (feat[alive], base[alive])
        if packed:
            ok = (flat[at + byte_t[j][f]] & mask_t[j][f]).view(bool)
        else:
            ok = flat[at + codes_t[j][f]]
        alive = np.flatnonzero(ok) if alive is None else alive[ok]
    if alive is None:
        return np.ones(len(row), dtype=bool)
    mask = np.zeros(len(row), dtype=bool)
    mask[alive] = True
    return mask


def _fresh(
    before: np.ndarray,
    after: np.ndarray,
    table: tuple[np.ndarray, np.ndarray, np.ndarray],
    index: sparse.csr_array,
    budget: int = 2_000_000,
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """The features newly contained in a unit's read set, by the input unit it gained.

    For every (unit o, input unit i) with i in o's read set ``after`` but not ``before`` (key
    o * n_in + i, sorted), the features whose code uses i and lies in o's read set ``after``
    (CSR: indptr over the keys, features). Returns (keys, indptr, features).
    """
    n_out, n_in = after.shape
    key = np.flatnonzero(after & ~before)
    unit, bit = key // n_in, key % n_in
    owners, feats = [np.zeros(0, np.int64)], [np.zeros(0, np.int64)]
    for part in _groups(np.diff(index.indptr)[bit], budget):
        p, b = _expand(index.indptr, index.indices, np.arange(part.start, part.stop), bit[part])
        keep = _inside(table, after, unit[p], b)
        owners.append(p[keep])
        feats.append(b[keep])
    owner = np.concatenate(owners)  # non-decreasing: keys in order, each row in order
    indptr = np.searchsorted(owner, np.arange(len(key) + 1))
    return key, indptr, np.concatenate(feats)


def _recheck(
    layout: PairLayout,
    before: np.ndarray,
    after: np.ndarray,
    redrawn: np.ndarray,
    index: sparse.csr_array,
    first_index: sparse.csr_array,
    chunk_words: int = 4_000_000,
    budget: int = 2_000_000,
) -> tuple[int, np.ndarray]:
    """The gates to re-check after a redraw, and the vulnerable ones among them.

    The gates to re-check are the ``redrawn`` ones and those whose common read set I_k (the AND
    of their units' read sets) gained a bit from ``before`` to ``after``: a gate whose I_k did
    not grow stays as clean as when it was last checked. A redrawn gate is checked in full:
    every feature whose first code unit (``first_index``) is in I_k. A gate not redrawn was
    clean at ``before`` (every gate not redrawn must be), so a feature b inside I_k now uses a
    bit i that I_k gained, and i was gained by some unit o of the gate, whose read set now holds
    b's code: b is one of :func:`_fresh`'s features for (o, i). Only those are tested. Returns
    (number of gates to re-check, sorted vulnerable gates): the gates :func:`vulnerable_pairs`
    on all of them finds, without ANDing m-bit rows.
    """
    units = layout.units
    pairs = layout.pairs
    n_in = after.shape[1]
    table = _code_table(layout.codes)
    grown = (after & ~before).any(axis=1)
    was = np.zeros(len(units), dtype=bool)
    was[redrawn] = True
    gates = np.flatnonzero(grown[units].any(axis=1) | was)
    if len(gates) == 0:
        return 0, gates
    f_key, f_ptr, f_feat = _fresh(before, after, table, index, budget)
    f_id = np.full(after.size, -1, dtype=np.int32 if len(f_key) < 2**31 else np.int64)
    f_id[f_key] = np.arange(len(f_key))  # (unit, input unit) -> its row of the fresh CSR
    pb, pa = _packed(before), _packed(after)
    n_words = pb.shape[1]
    checked = 0
    bad = [np.zeros(0, np.int64)]
    step = max(1, chunk_words // n_words)
    for start in range(0, len(gates), step):
        k = gates[start : start + step]
        u = units[k]
        old, new = pb[u[:, 0]], pa[u[:, 0]]
        for j in range(1, u.shape[1]):
            old &= pb[u[:, j]]
            new &= pa[u[:, j]]
        full = was[k]
        # (gate row, bit): every bit of I_k for a redrawn gate, the gained bits for the others
        seeds = np.where(full[:, None], new, new & ~old)
        flat = np.flatnonzero(seeds != 0)
        row, word = flat // n_words, flat % n_words
        hit = np.unpackbits(
            seeds.reshape(-1)[flat].view(np.uint8).reshape(-1, 8), axis=1, bitorder="little"
        )
        at, pos = np.nonzero(hit)
        row, bit = row[at], word[at] * 64 + pos
        part = ~full[row]
        checked += int(full.sum() + np.count_nonzero(np.bincount(row[part], minlength=len(k))))
        # redrawn gates: the features whose first code unit is in I_k
        f_row, f_bit = row[~part], bit[~part]
        # other gates: the fresh features of (unit, gained bit), for each unit of the gate
        at = f_id[(u[row[part]] * n_in + bit[part][:, None]).ravel()]
        p_row = np.repeat(row[part], u.shape[1])
        found = at >= 0
        sources = (
            (first_index.indptr, first_index.indices, f_row, f_bit, 0),
            (f_ptr, f_feat, p_row[found], at[found], -1),
        )
        for indptr, indices, owner, item, skip in sources:
            for grp in _groups(indptr[item + 1] - indptr[item], budget):
                r, b = _expand(indptr, indices, owner[grp], item[grp])
                keep = _inside(table, new, r, b, skip)
                kk, b = k[r[keep]], b[keep]
                bad.append(kk[(b != pairs[kk, 0]) & (b != pairs[kk, 1])])
    return checked, np.unique(np.concatenate(bad))


def _vulnerable_counts(
    cont: np.ndarray, cand: np.ndarray, pairs: np.ndarray, batch_words: int = 8_000_000
) -> np.ndarray:
    """(gates, candidates) lower bound of 0 / count of features (other than the gate's own
    operands) whose code lies in every candidate unit's contained set: the certificate's test
    for a candidate output code, against the read sets as they are (the gate's own codes
    added to its new units can only add its own operands)."""
    g, c, length = cand.shape
    words = cont.shape[1]
    out = np.zeros((g, c), dtype=np.int64)
    step = max(1, batch_words // (c * length * words))
    for start in range(0, g, step):
        u = cand[start : start + step]
        acc = cont[u[:, :, 0]].copy()
        for j in range(1, length):
            acc &= cont[u[:, :, j]]
        for side in (0, 1):
            b = pairs[start : start + step, side]
            word, bit = b // 64, (b % 64).astype(np.uint64)
            acc[np.arange(len(u)), :, word] &= ~(np.uint64(1) << bit)[:, None]
        bits = np.unpackbits(acc.view(np.uint8), axis=2).sum(axis=2, dtype=np.int64)
        out[start : start + step] = bits
    return out


def repair(
    layout: PairLayout,
    rng: np.random.Generator,
    rounds: int = 12,
    candidates: int = 16,
    select: str = "weights",
) -> dict[str, Any]:
    """Redraw output codes of vulnerable gates until the s = 2 certificate is clean.

    Round one checks every gate (:func:`vulnerable_pairs`). Later rounds check the redrawn
    gates and the gates whose I_k grew; a gate whose I_k did not grow stays as clean as when
    it was last checked, so a round without vulnerable gates certifies every gate. They
    re-check incrementally (:func:`_recheck`: index look-ups, no contained sets), with the
    same result as a full check of those gates. Contained sets are kept up to date (for the
    units whose read sets changed) only for ``select="certificate"``, which scores candidate
    codes with them.

    ``select`` picks among the candidate codes: ``"weights"`` (default) the one adding the
    fewest new weights; ``"certificate"`` first the one with the fewest features inside its
    common read set (:func:`_vulnerable_counts`, the certificate's own test), then the fewest
    new weights.

    Returns a record: per round the gates checked and the vulnerable ones among them (all
    vulnerable gates there are) and ``certified_s2``.
    """
    if select not in ("weights", "certificate"):
        raise SuperposeError(f"select must be 'weights' or 'certificate', got {select!r}")
    count = layout.counts()
    flat = count.reshape(-1)
    history = []
    certified = False
    length = layout.units.shape[1]
    read = count > 0
    cont = contained_sets(read, layout.codes)
    kk, _ = vulnerable_pairs(layout, read, contained=cont)
    bad = np.unique(kk)
    checked = len(layout.pairs)
    if select == "weights":
        del cont  # later rounds need no contained sets (see _recheck)
    index = feature_index(layout.codes, layout.n_in)
    first_index = feature_index(layout.codes, layout.n_in, first=True)
    for r in range(rounds + 1):
        history.append({"checked": int(checked), "vulnerable": int(len(bad))})
        if len(bad) == 0:
            certified = True
            break
        if r == rounds:
            break
        before = read
        layout._add(flat, bad, -1)
        without = count > 0
        bits = np.concatenate(
            [layout.codes[layout.pairs[bad, 0]], layout.codes[layout.pairs[bad, 1]]], 1
        )
        cand = _draw_units(layout.pool_start[bad], layout.pool_size[bad], candidates, length, rng)
        new_bits = (~without[cand[:, :, :, None], bits[:, None, None, :]]).sum(axis=(2, 3))
        score = new_bits
        if select == "certificate":
            hits = _vulnerable_counts(cont, cand, layout.pairs[bad])
            score = hits * (new_bits.max(initial=0) + 1) + new_bits
        layout.units[bad] = np.sort(cand[np.arange(len(bad)), score.argmin(axis=1)], axis=1)
        layout._add(flat, bad, +1)
        read = count > 0
        if select == "certificate":
            changed = np.flatnonzero((read != before).any(axis=1))
            if len(changed):
                cont[changed] = contained_sets(read, layout.codes, changed)
        checked, bad = _recheck(layout, before, read, bad, index, first_index)
    # No timing in the record: it is saved with the network, which must be byte-identical
    # for the same command.
    return {"rounds": history, "certified_s2": certified}
