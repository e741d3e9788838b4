"""Building the ``circuit`` construction: the layers of one planned and sized network.

Layer L holds *blocks*: a shared Bloom-code pool computing the level-L gates
(:func:`~superpose.constructions.superposed.threshold_stage`, influence channels included),
reading the previous layer's code, plus exact unit-by-unit copies (step units, weight 1,
threshold 1) of every earlier block that still holds a node read later or an output. Copies
never add errors, and a pool's units only see the true codes of the blocks they read, so each
pool is sized for the true gates of one level, not of all earlier levels. The last layer's
code, restricted to ``task.outputs``, is the network's output code. Every true node fires all
of its units, so monotone stages make false positives only, and only when a layer is too narrow.

**Mixed pools.** "Any present" parts (or, copy: threshold one code) and 2-ANDs (two codes) share
the pool's units: bits read by the former weigh 2. Separate pools per threshold would crowd the
codes of true gates (mostly ors) into one part of the layer, where the next level's units see
several times the on-bits the sizing assumes; mixed, they spread over the whole pool.

**Carries.** Nodes read more than one level later are copied unit by unit (``carries="copy"``)
or re-encoded into every pool as copy parts (``"encode"``); ``"auto"`` plans both and keeps the
narrower.

**XOR and ANDNOT** (2 inputs). The gate's main part sits in the pool like an OR (xor) or a copy
of a (andnot); a private *detector* unit fires when both operands are present. Readers give the
detector weight -k, k = the weight of the bits of the gate's code no other code they read
covers, so the gate counts as off exactly when it must be; carried xor / andnot nodes are
re-encoded one level later (copy parts with the same inhibition), and a last level with xor /
andnot outputs gets one more layer that resolves them (re-encoding every output, or only those
plus unit copies of the rest, whichever is narrower). A gate whose operands are never true
together on an s-sparse input (:func:`superpose.levels.operands_meet`, exact for s <= 2) is an
or / copy on every input that matters and gets no detector.

**Clean-up.** ``cleanup=k`` re-encodes every held node after every k-th level (copy parts: a
threshold layer that keeps only complete codes), in the spirit of the error-correction layers
of Hänni et al.; :func:`superpose.stage_check.level_report` measures what it costs and saves.
"""

from __future__ import annotations

from typing import Any

import numpy as np
from scipy import sparse

from superpose.codes import BloomCode
from superpose.constructions._bloom import operand_matrix, read_sets, threshold_layer
from superpose.constructions.superposed import Parts
from superpose.errors import SuperposeError
from superpose.network import Layer
from superpose.task import OP_CODE, Task


def _parts(task: Task, gates: np.ndarray, carried: np.ndarray, row_of: np.ndarray) -> Parts:
    """Threshold parts: one per gate (and: need = arity; or/copy: 1), one copy part per carry."""
    ops = task.ops[gates]
    arity = task.arity[gates]
    gate_of, operand, pos = operand_matrix(task, gates)
    # ANDNOT's part is "a present"; "b present" is its detector unit (see _detectors).
    keep = ~((ops[gate_of] == OP_CODE["andnot"]) & (pos == 1))
    gate_of, operand = gate_of[keep], operand[keep]
    g_of = np.concatenate([gate_of, len(gates) + np.arange(len(carried))]).astype(np.int64)
    nodes_in = np.concatenate([operand, carried]).astype(np.int64)
    rows = row_of[nodes_in]
    if (rows < 0).any():
        raise SuperposeError("internal: an operand is not held by the previous layer")
    need = np.concatenate(
        [np.where(ops == OP_CODE["and"], arity, 1), np.ones(len(carried), np.int64)]
    ).astype(np.int64)
    n = len(gates) + len(carried)
    return Parts(np.arange(n), np.ones(n, np.int8), need, g_of, rows)


def _detectors(
    task: Task, gates: np.ndarray, detect: np.ndarray, row_of: np.ndarray, operand_code: BloomCode
) -> tuple[np.ndarray, sparse.csr_array, np.ndarray, tuple[np.ndarray, np.ndarray]]:
    """One private detector unit per xor / andnot gate whose operands can meet (``detect``):
    it fires when the gate must be off although its main part is on (both operands present).
    Returns the gates, their read sets over the previous layer, their thresholds and their
    (detector, row) reads."""
    sel = gates[detect[gates]]
    if len(sel) == 0:
        empty = np.zeros(0, np.int64)
        reads = sparse.csr_array((0, operand_code.width), dtype=np.int32)
        return sel, reads, np.zeros(0), (empty, empty)
    # Both kinds fire when both operands are present: then the main part (xor's OR,
    # andnot's "a present") is on and must be cancelled.
    gate_of, operand, _ = operand_matrix(task, sel)
    rows = row_of[operand]
    reads = read_sets(operand_code, gate_of, rows, len(sel))
    return sel, reads, np.diff(reads.indptr).astype(np.float64), (gate_of, rows)


def _inhibit(
    hosts: sparse.csr_array,
    rows: tuple[np.ndarray, np.ndarray],
    inhib: np.ndarray,
    code: BloomCode,
    width: int,
    weights: sparse.csr_array | None = None,
) -> sparse.csr_array:
    """Inhibitory weights for reads of unresolved xor / andnot nodes.

    Unit u reads row r (a node whose detector ``inhib[r]`` says "must be off"): it gets weight
    -k on that detector, k = the weight u gives the bits of r's code that no other row read
    by u covers (``weights``: u's weights on the previous layer; 1 when omitted). When the
    detector fires, r's code is fully on and adds exactly those k bits beyond what the other
    rows cover, so u counts as if r were off; every other part of u keeps its own bits, so
    no false negative can arise (shared bits stay counted). ``hosts`` is (units, parts);
    ``rows`` = (part, row) for every read."""
    n_units = hosts.shape[0]
    if not (inhib >= 0).any():
        return sparse.csr_array((n_units, width), dtype=np.float32)
    part_of, row = rows
    reads = sparse.csr_array(
        (np.ones(len(row), dtype=np.int32), (part_of, row)), shape=(hosts.shape[1], len(inhib))
    )
    reads.data[:] = 1
    a = sparse.csr_array(hosts.astype(np.int32) @ reads)
    a.data[:] = 1
    member = sparse.csr_array(code.membership, dtype=np.int32)
    cover = sparse.csr_array(a @ member)  # (units, width): rows of u covering each bit
    cover.data = (cover.data == 1).astype(np.int32)
    cover.eliminate_zeros()
    if weights is not None:
        cover = sparse.csr_array(cover.multiply(sparse.csr_array(weights).astype(np.int32)))
    bad = np.flatnonzero(inhib >= 0)
    uniq = sparse.csr_array(cover @ sparse.csr_array(member[bad]).T)  # (units, bad rows)
    uniq = uniq.multiply(sparse.csr_array(a[:, bad])).tocoo()
    keep = uniq.data > 0
    return sparse.csr_array(
        (
            -uniq.data[keep].astype(np.float32),
            (uniq.coords[0][keep], inhib[bad[uniq.coords[1][keep]]]),
        ),
        shape=(n_units, width),
    )


def _private_stage(
    parts: Parts, operand_code: BloomCode, ell: int
) -> tuple[Layer, sparse.csr_array, dict[str, Any]]:
    """Every part owns ``ell`` units that read only its own operands (no sharing)."""
    n = len(parts)
    reads = read_sets(operand_code, parts.g_of, parts.node, n)
    min_len = np.full(n, np.iinfo(np.int64).max)
    np.minimum.at(min_len, parts.g_of, operand_code.lengths[parts.node])
    theta = np.where(parts.need == 1, min_len, np.diff(reads.indptr))
    units = sparse.csr_array(
        (
            np.ones(n * ell, dtype=np.int8),
            np.arange(n * ell, dtype=np.int32),
            np.arange(0, n * ell + 1, ell, dtype=np.int64),
        ),
        shape=(n, n * ell),
    )
    layer, fan_in = threshold_layer(units, reads, theta)
    frac = float(fan_in.max() / operand_code.width) if len(fan_in) else 0.0
    return layer, units, {"fan_in_fraction_max": frac}
