"""An exact certificate for every <= 2-sparse input of a two-layer 2-AND network, and a repair.

With threshold 2l on every unit, codes of l bits and disjoint operand codes, an input {u, v}
fires unit o iff S_u and S_v are disjoint and both lie inside o's read set U_o. So gate
k = (a, c) reads true on a wrong <= 2-sparse input iff some feature b outside {a, c} has its
whole code inside I_k, the input units read by *all* of k's units ("k is vulnerable").
:func:`vulnerable_pairs` finds every such (k, b) with one pass over the gates; that is a
certificate for all C(m, <= 2) inputs at once, far beyond what sampling can reach.

:func:`repair` redraws the output codes of vulnerable gates inside their own pool (best of a
few candidates: the one adding the fewest new weights) and rechecks the gates that share a
unit with them, until none is left or the rounds run out.

The unit-by-input matrices here are neurons x neurons (dense is fine); nothing m'-sized is
dense.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np


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


def vulnerable_pairs(
    layout: PairLayout, read: np.ndarray, gates: np.ndarray | None = None, batch: int = 2000
) -> tuple[np.ndarray, np.ndarray]:
    """(gate, feature) pairs with the feature's code inside the gate's common read set I_k.

    ``read`` is the (n_out, n_in) bool read-set matrix. Candidates are enumerated through
    each feature's smallest code bit, then filtered bit by bit, so a gate costs about
    |I_k| * m / n_in look-ups.
    """
    codes = layout.codes
    first = codes[:, 0]
    order = np.argsort(first, kind="stable")
    ptr = np.zeros(layout.n_in + 1, dtype=np.int64)
    ptr[1:] = np.cumsum(np.bincount(first, minlength=layout.n_in))
    gates = np.arange(len(layout.pairs)) if gates is None else gates
    out_k, out_b = [np.zeros(0, np.int64)], [np.zeros(0, np.int64)]
    for start in range(0, len(gates), batch):
        k = gates[start : start + batch]
        common = read[layout.units[k]].all(axis=1)  # (K, n_in): I_k
        row, bit = np.nonzero(common)
        cnt = ptr[bit + 1] - ptr[bit]
        total = int(cnt.sum())
        rr = np.repeat(row, cnt)
        pos = np.arange(total) - np.repeat(np.cumsum(cnt) - cnt, cnt) + np.repeat(ptr[bit], cnt)
        b = order[pos]
        for j in range(1, codes.shape[1]):
            ok = common[rr, codes[b, j]]
            rr, b = rr[ok], b[ok]
        kk = k[rr]
        own = (b == layout.pairs[kk, 0]) | (b == layout.pairs[kk, 1])
        out_k.append(kk[~own])
        out_b.append(b[~own])
    return np.concatenate(out_k), np.concatenate(out_b)


def repair(
    layout: PairLayout, rng: np.random.Generator, rounds: int = 12, candidates: int = 16
) -> dict[str, Any]:
    """Redraw output codes of vulnerable gates until the s = 2 certificate is clean.

    Returns a record: rounds run, vulnerable gates per round, seconds, and ``certified``.
    """
    count = layout.counts()
    flat = count.reshape(-1)
    todo = np.arange(len(layout.pairs))
    history = []
    certified = False
    length = layout.units.shape[1]
    for _ in range(rounds):
        read = count > 0
        kk, _ = vulnerable_pairs(layout, read, todo)
        bad = np.unique(kk)
        history.append({"checked": int(len(todo)), "vulnerable": int(len(bad))})
        if len(bad) == 0:
            certified = True
            break
        layout._add(flat, bad, -1)
        read = count > 0
        bits = np.concatenate(
            [layout.codes[layout.pairs[bad, 0]], layout.codes[layout.pairs[bad, 1]]], 1
        )
        size = layout.pool_size[bad]
        cand = np.empty((len(bad), candidates, length), dtype=np.int64)
        for j in range(candidates):
            keys = rng.random((len(bad), int(size.max())))
            keys[np.arange(int(size.max()))[None, :] >= size[:, None]] = 2.0  # outside the pool
            cand[:, j] = np.argsort(keys, axis=1)[:, :length] + layout.pool_start[bad][:, None]
        new_bits = (~read[cand[:, :, :, None], bits[:, None, None, :]]).sum(axis=(2, 3))
        layout.units[bad] = np.sort(cand[np.arange(len(bad)), new_bits.argmin(axis=1)], axis=1)
        layout._add(flat, bad, +1)
        touched = np.zeros(layout.n_out, dtype=bool)
        touched[layout.units[bad].ravel()] = True
        todo = np.flatnonzero(touched[layout.units].any(axis=1))
    if not certified:
        read = count > 0
        kk, _ = vulnerable_pairs(layout, read)
        certified = len(kk) == 0
        history.append({"checked": len(layout.pairs), "vulnerable": int(len(np.unique(kk)))})
    return {"rounds": history, "certified_s2": certified}
