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

from dataclasses import dataclass
from typing import Any, NamedTuple

import numpy as np
from scipy import sparse

from superpose.codes import BloomCode, Code
from superpose.constructions._bloom import operand_matrix, read_sets, threshold_layer
from superpose.constructions.circuit.plan import Stage, held_nodes
from superpose.constructions.circuit.sizing import ELL_GRID, _active_in, _best_resolve
from superpose.constructions.superposed import Parts, input_code_for, threshold_stage
from superpose.errors import SuperposeError
from superpose.levels import Layout
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


@dataclass(frozen=True)
class BuildOptions:
    """What the layers take from the construction's parameters: the width scale of this
    attempt, the heavy-unit share of every pool, a fixed code length (None: the sizing's
    grid) and the failure target the plan was sized for."""

    width_scale: float
    heavy_share: float
    ell: int | None
    failure: float


@dataclass
class Held:
    """The layer built last, as the next stage reads it: the node ids it holds (one row each),
    each row's units in it, each row's unresolved detector unit (-1: none) and its width."""

    nodes: np.ndarray
    units: sparse.csr_array
    inhib: np.ndarray
    width: int


class Built(NamedTuple):
    """The layers of one network and what its metadata reports about them."""

    layers: list[Layer]
    input_code: Code
    last: Held
    stage_codes: list[tuple[np.ndarray, BloomCode, np.ndarray]]
    stage_stats: list[dict[str, Any]]
    overlaps: int


class _StageNodes(NamedTuple):
    """What one stage's layer holds: the pool's parts and the nodes they code (in order), the
    carried nodes copied unit by unit, and how many nodes were carried past the level."""

    parts: Parts
    new_nodes: np.ndarray
    carry: np.ndarray
    n_carried: int


class _ResolveSizing(NamedTuple):
    """What sizing a resolve layer reads (:func:`_plan_resolve`): the planned stages (the last
    one's active count and code length), the sizing's ``info`` (each level's active count),
    the per-stage failure target and the fixed code length (None: the grid)."""

    stages: list[Stage]
    info: dict[str, Any]
    target: float
    fixed_ell: int | None


def build_layers(
    task: Task,
    lay: Layout,
    stages: list[Stage],
    info: dict[str, Any],
    ells: list[int],
    w0: int,
    encode: bool,
    explicit_in: bool,
    opts: BuildOptions,
    rng: np.random.Generator,
) -> Built:
    """The layers of a planned and sized network, stage by stage: each stage's layer reads
    only the layer before, so it is built from what that layer holds (:class:`Held`). A
    resolve layer is appended when the last stage leaves xor / andnot nodes unresolved."""
    m = task.features
    ell = ells[0]
    n_in = m if explicit_in else max(4 * ell * task.sparsity, round(w0 * opts.width_scale))
    input_code, first_code, overlaps = input_code_for(
        task, stages[0].gates, n_in, ell, explicit_in, rng
    )
    cur = Held(
        np.arange(m, dtype=np.int64),
        sparse.csr_array(first_code.membership, dtype=np.int8),
        np.full(m, -1, dtype=np.int64),
        n_in,
    )
    sizing = _ResolveSizing(stages, info, opts.failure / (2 * len(stages)), opts.ell)
    resolve = Stage(lay.depth, "resolve", np.zeros(0, np.int64), [lay.depth])
    todo = list(stages)
    layers: list[Layer] = []
    stage_codes: list[tuple[np.ndarray, BloomCode, np.ndarray]] = []
    stage_stats = []
    while todo:
        st = todo.pop(0)
        row_of = np.full(task.n_nodes, -1, dtype=np.int64)
        row_of[cur.nodes] = np.arange(len(cur.nodes))
        keep = held_nodes(lay, task, st.level)
        if st.kind == "level" and (encode or (explicit_in and st is stages[0])):
            nodes = _encode_carries(task, st, keep, row_of)
        elif st.kind in ("level", "resolve"):
            nodes = _copy_carries(task, st, keep, row_of, cur, sizing)
        else:
            nodes = _parts_of_cleanup(task, st, keep, row_of)
        layer, cur, record = _stage_layer(task, st, nodes, cur, row_of, info["detect"], opts, rng)
        layers.append(layer)
        stage_codes.append((cur.nodes.copy(), BloomCode(cur.units), cur.inhib.copy()))
        if not todo and st.kind != "resolve" and (cur.inhib >= 0).any():
            todo.append(resolve)  # xor / andnot outputs need one more layer
        stage_stats.append(record)
    return Built(layers, input_code, cur, stage_codes, stage_stats, overlaps)


def _encode_carries(task: Task, st: Stage, keep: np.ndarray, row_of: np.ndarray) -> _StageNodes:
    """Every carried node is re-encoded into the pool (copy parts; unresolved xor / andnot
    nodes with their inhibition). Explicit inputs always are, so every later code has l bits."""
    carried = _carried(task, st, keep)
    return _stage_nodes(task, st, carried, row_of, np.zeros(0, np.int64), len(carried))


def _copy_carries(
    task: Task, st: Stage, keep: np.ndarray, row_of: np.ndarray, cur: Held, sizing: _ResolveSizing
) -> _StageNodes:
    """Carried nodes are copied unit by unit, except unresolved xor / andnot nodes, which are
    re-encoded (copy parts with inhibition) so that their detectors act. A resolve stage may
    re-encode every node instead (:func:`_plan_resolve`)."""
    carry = _carried(task, st, keep)
    n_carried = len(carry)
    pending = carry[cur.inhib[row_of[carry]] >= 0]
    carry = carry[cur.inhib[row_of[carry]] < 0]
    if st.kind == "resolve":
        pending, carry = _plan_resolve(task, st, keep, pending, carry, row_of, cur, sizing)
    return _stage_nodes(task, st, pending, row_of, carry, n_carried)


def _carried(task: Task, st: Stage, keep: np.ndarray) -> np.ndarray:
    """The held nodes (``keep``) a stage carries past its level: those it does not compute."""
    return keep[~np.isin(keep, task.features + st.gates)]


def _stage_nodes(
    task: Task,
    st: Stage,
    encoded: np.ndarray,
    row_of: np.ndarray,
    carry: np.ndarray,
    n_carried: int,
) -> _StageNodes:
    """The stage's pool: a part per gate of its level, then a copy part per carried node it
    re-encodes (``encoded``); the nodes the pool codes, in that order; beside them the
    carried nodes copied unit by unit (``carry``)."""
    parts = _parts(task, st.gates, encoded, row_of)
    new_nodes = np.concatenate([task.features + st.gates, encoded]).astype(np.int64)
    return _StageNodes(parts, new_nodes, carry, n_carried)


def _plan_resolve(
    task: Task,
    st: Stage,
    keep: np.ndarray,
    pending: np.ndarray,
    carry: np.ndarray,
    row_of: np.ndarray,
    cur: Held,
    sizing: _ResolveSizing,
) -> tuple[np.ndarray, np.ndarray]:
    """Size the resolve layer now that the last layer is built: either re-encode the pending
    nodes and copy the rest unit by unit, or re-encode every node the last layer holds,
    whichever is narrower. Sets the stage's pool, code length and private flag; returns the
    nodes to re-encode and the nodes to copy."""
    a_pending = sizing.stages[-1].sized_for
    copied_units = len(np.unique(cur.units[row_of[carry]].indices))
    grid = [sizing.fixed_ell] if sizing.fixed_ell else list(ELL_GRID)
    ell_in = sizing.stages[-1].ell
    narrow = _best_resolve(len(pending), a_pending, ell_in, cur.width, sizing.target, grid)
    sized = {0: task.sparsity} | dict(enumerate(sizing.info["sized_for"], start=1))
    a_all = _active_in(task, keep, sized)
    whole = _best_resolve(len(keep), a_all, ell_in, cur.width, sizing.target, grid)
    if whole[0] < narrow[0] + copied_units:
        pending, carry = keep, np.zeros(0, np.int64)
        st.pool, st.ell = whole
    else:
        st.pool, st.ell = narrow
    st.private = st.pool >= st.ell * len(pending)
    return pending, carry


def _parts_of_cleanup(task: Task, st: Stage, keep: np.ndarray, row_of: np.ndarray) -> _StageNodes:
    """A clean-up stage re-encodes every held node (copy parts keep only complete codes)."""
    parts = _parts(task, st.gates[:0], keep, row_of)
    return _StageNodes(parts, keep, np.zeros(0, np.int64), 0)


def _stage_layer(
    task: Task,
    st: Stage,
    nodes: _StageNodes,
    cur: Held,
    row_of: np.ndarray,
    detect: np.ndarray,
    opts: BuildOptions,
    rng: np.random.Generator,
) -> tuple[Layer, Held, dict[str, Any]]:
    """One stage's layer -- pool units (inhibited where they read unresolved nodes), copy
    units, detector units, in that order -- what the new layer holds, and its record for
    the network's metadata."""
    operand_code = BloomCode(cur.units)
    pool_layer, pool_units, stats = _pool(nodes.parts, operand_code, st, opts, rng)
    hosts = sparse.csr_array(pool_units.T)
    inhibition = _inhibit(
        hosts,
        (nodes.parts.g_of, nodes.parts.node),
        cur.inhib,
        operand_code,
        cur.width,
        pool_layer.weight,
    )
    pool_weight = sparse.csr_array(pool_layer.weight + inhibition)
    det_gates, det_weight, det_theta = _detector_units(task, st, detect, row_of, cur, operand_code)
    sub, copied, copy_w = _copy_units(cur, row_of[nodes.carry])
    n_copy, n_det = len(copied), len(det_gates)
    dtype = pool_layer.weight.dtype
    weight = sparse.vstack(
        [pool_weight.astype(dtype), copy_w.astype(dtype), det_weight.astype(dtype)],
        format="csr",
    )
    bias = np.concatenate(
        [
            pool_layer.bias,
            -np.ones(n_copy, dtype=pool_layer.bias.dtype),
            -det_theta.astype(pool_layer.bias.dtype),
        ]
    )
    weight.eliminate_zeros()
    layer = Layer(sparse.csr_array(weight), bias, "step")
    held = _next_held(task, nodes, cur, pool_units, sub, copied, det_gates)
    record = _stage_record(st, nodes, held, pool_units.shape[1], n_copy, n_det, stats)
    return layer, held, record


def _pool(
    parts: Parts, operand_code: BloomCode, st: Stage, opts: BuildOptions, rng: np.random.Generator
) -> tuple[Layer, sparse.csr_array, dict[str, Any]]:
    """The stage's pool: private units when the sizing said sharing would be wider, else a
    shared mixed pool (module docstring) at this attempt's width scale."""
    if st.private:
        return _private_stage(parts, operand_code, st.ell)
    pool_w = max(6 * st.ell, round(st.pool * opts.width_scale))
    return threshold_stage(parts, operand_code, pool_w, st.ell, opts.heavy_share, rng, mix=True)


def _detector_units(
    task: Task,
    st: Stage,
    detect: np.ndarray,
    row_of: np.ndarray,
    cur: Held,
    operand_code: BloomCode,
) -> tuple[np.ndarray, sparse.csr_array, np.ndarray]:
    """The stage's detector units (:func:`_detectors`) as weight rows, themselves inhibited
    where they read unresolved nodes of the layer before; with their gates and thresholds."""
    det_gates, det_reads, det_theta, det_rows = _detectors(
        task, st.gates, detect, row_of, operand_code
    )
    n_det = len(det_gates)
    det_weight = sparse.csr_array(
        det_reads.astype(np.float32)
        + _inhibit(
            sparse.csr_array(sparse.eye_array(n_det, dtype=np.int8, format="csr")),
            det_rows,
            cur.inhib,
            operand_code,
            cur.width,
        )
    )
    return det_gates, det_weight, det_theta


def _copy_units(
    cur: Held, carry_rows: np.ndarray
) -> tuple[sparse.csr_array | None, np.ndarray, sparse.csr_array]:
    """Copy units: every unit of the current layer some carried node's code uses (step units,
    weight 1, threshold 1, so copies never add errors). Returns the carried rows' units, the
    copied units and the copy weight rows."""
    sub = sparse.csr_array(cur.units[carry_rows]) if len(carry_rows) else None
    copied = np.unique(sub.indices) if sub is not None else np.zeros(0, np.int64)
    n_copy = len(copied)
    copy_w = sparse.csr_array(
        (np.ones(n_copy, dtype=np.float32), (np.arange(n_copy), copied)),
        shape=(n_copy, cur.width),
    )
    return sub, copied, copy_w


def _next_held(
    task: Task,
    nodes: _StageNodes,
    cur: Held,
    pool_units: sparse.csr_array,
    sub: sparse.csr_array | None,
    copied: np.ndarray,
    det_gates: np.ndarray,
) -> Held:
    """What the new layer holds: the pool's nodes on their pool units, the carried nodes on
    the copies of their units, and each new xor / andnot node's detector unit."""
    n_pool, n_copy, n_det = pool_units.shape[1], len(copied), len(det_gates)
    new_width = n_pool + n_copy + n_det
    col_map = np.full(cur.width, -1, dtype=np.int64)
    col_map[copied] = n_pool + np.arange(n_copy)
    first = sparse.csr_array(pool_units, dtype=np.int8).tocoo()
    rows_list = [first.coords[0]]
    cols_list = [first.coords[1]]
    if sub is not None:
        c = sub.tocoo()
        rows_list.append(c.coords[0] + len(nodes.new_nodes))
        cols_list.append(col_map[c.coords[1]])
    r, c2 = np.concatenate(rows_list), np.concatenate(cols_list)
    held = np.concatenate([nodes.new_nodes, nodes.carry]).astype(np.int64)
    held_units = sparse.csr_array(
        (np.ones(len(r), dtype=np.int8), (r, c2)), shape=(len(held), new_width)
    )
    inhib = np.full(len(held), -1, dtype=np.int64)
    det_row = np.full(task.n_nodes, -1, dtype=np.int64)
    det_row[task.features + det_gates] = n_pool + n_copy + np.arange(n_det)
    inhib[: len(nodes.new_nodes)] = det_row[nodes.new_nodes]
    return Held(held, held_units, inhib, new_width)


def _stage_record(
    st: Stage,
    nodes: _StageNodes,
    held: Held,
    pool_width: int,
    n_copy: int,
    n_det: int,
    stats: dict[str, Any],
) -> dict[str, Any]:
    """The stage as the network's metadata reports it (``extras["stages"]``)."""
    return {
        "level": st.level,
        "kind": st.kind,
        "gates": int(len(st.gates)),
        "carries": int(nodes.n_carried),
        "nodes": int(len(held.nodes)),
        "reads_blocks": st.reads,
        "active_bound": int(st.bound),
        "stage_active_bound": int(st.stage_bound),
        "sized_for": int(st.sized_for),
        "active_in": int(st.a_in),
        "pool_width": int(pool_width),
        "detector_units": int(n_det),
        "private": bool(st.private),
        "copy_width": int(n_copy),
        "width": int(held.width),
        "ell": int(st.ell),
        "fan_in_target": float(st.fan_in),
        "fan_in_fraction_max": stats["fan_in_fraction_max"],
    }


def output_code(task: Task, last: Held) -> BloomCode:
    """The network's output code: the last layer's codes of ``task.outputs``, every one
    resolved (an output waiting for its detector would be wrong whenever it fires)."""
    row = np.full(task.n_nodes, -1, dtype=np.int64)
    row[last.nodes] = np.arange(len(last.nodes))
    out_rows = row[task.outputs]
    if (out_rows < 0).any():
        raise SuperposeError("internal: an output is not held by the last layer")
    if (last.inhib[out_rows] >= 0).any():
        raise SuperposeError("internal: an output is still waiting for its detector")
    return BloomCode(sparse.csr_array(last.units[out_rows]))


def network_extras(
    task: Task,
    built: Built,
    info: dict[str, Any],
    ells: list[int],
    planned_total: float,
    sizing: str,
    encode: bool,
) -> dict[str, Any]:
    """The network's metadata: per-stage widths, code lengths, carries, the bounds and counts
    each level was sized for, and the plan's neuron total (what the reports and the per-level
    verification read)."""
    stage_stats = built.stage_stats
    levels_only = [x for x in stage_stats if x["kind"] == "level"]
    return {
        "levels": len(levels_only),
        "stages_total": len(stage_stats),
        "cleanup_stages": len(stage_stats) - len(levels_only),
        "sizing": sizing,
        "ell": int(ells[0]),
        "ells": [int(ells[0])] + [int(x["ell"]) for x in stage_stats],
        "widths": [int(built.input_code.width)] + [x["width"] for x in stage_stats],
        "pool_widths": [x["pool_width"] for x in stage_stats],
        "copy_widths": [x["copy_width"] for x in stage_stats],
        "carries": [x["carries"] for x in levels_only],
        "total_carries": int(sum(x["carries"] for x in levels_only)),
        "active_bounds": [int(task.sparsity)] + [x["active_bound"] for x in levels_only],
        "stage_active_bounds": [int(task.sparsity)]
        + [x["stage_active_bound"] for x in levels_only],
        "bound_method": info["bounds"]["method"],
        "cone_bounds": [int(task.sparsity)] + list(info["bounds"]["level_cone"]),
        "sized_for": [int(task.sparsity)] + [int(a) for a in info["sized_for"]],
        "planned_neurons": int(round(planned_total)),
        "detectors_skipped": info["detectors_skipped"],
        "carry_mode": "encode" if encode else "copy",
        "stages": stage_stats,
        "overlapping_gates": built.overlaps,
    }
