"""The superposed constructions (docs/DESIGN.md, Constructions, ours): Bloom-coded inputs and outputs, threshold units.

* ``superposed`` (two-layer): the output units are the AND units. Unit o reads the union of
  the operand codes of every gate whose output code contains o and fires iff at least
  theta_o of those bits are on (2l for 2-AND). Gate k is read as true iff all l' units of its
  output code fire. Supports copy, and (k inputs), or.
* ``superposed3`` (three-layer): a hidden threshold layer with t units per gate, then an
  output layer whose unit o sums the hidden units of every gate whose code contains o and
  fires iff the sum reaches t. XOR and ANDNOT are a signed difference of two hidden parts
  (XOR = OR - AND, ANDNOT = PRESENT(a) - AND(a, b)), which leaves other gates sharing an
  output unit untouched. Supports every op.

Both route gates by influence (:mod:`superpose.constructions.channels`) and keep operand
codes disjoint, so a true gate always fires all of its units: no false negatives.

Example:
    >>> import numpy as np
    >>> from superpose.families import pairs
    >>> from superpose.verification import verify
    >>> task = pairs(2000, 2000, np.random.default_rng(0))
    >>> net = Superposed().build(task, np.random.default_rng(1))
    >>> net.counts()["neurons"] < task.features + task.n_gates
    True
    >>> verify(net, "random", 500, np.random.default_rng(2)).inputs_with_error
    0
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any

import numpy as np
from scipy import sparse, special

from superpose.codes import BloomCode, Code, ExplicitCode
from superpose.constructions._bloom import (
    Pools,
    allocate_pools,
    assign_units,
    disjoint_code,
    operand_matrix,
    pool_keys,
    read_sets,
    threshold_layer,
)
from superpose.constructions.base import Capabilities, Construction, positive_param
from superpose.constructions.channels import Routing, route
from superpose.constructions.params import (
    DEAD,
    DEFAULT_FAILURE,
    PRIVATE,
    auto_params,
    gate_classes,
    home_pays,
    hub_width,
    layer_params,
    repair_params,
)
from superpose.errors import SuperposeError
from superpose.network import Layer, Network
from superpose.task import OP_CODE, OPS, Task

MONOTONE_OPS = {OP_CODE["copy"], OP_CODE["and"], OP_CODE["or"]}


@dataclass(frozen=True)
class Parts:
    """The threshold parts a gate is made of: each reads some operands and needs ``need`` codes."""

    gate: np.ndarray  # gate position for each part
    sign: np.ndarray  # +1, or -1 for the subtracted part of xor / andnot
    need: np.ndarray  # full operand codes the part needs (1 = "any present", k = AND of k)
    g_of: np.ndarray  # part index of each listed operand
    node: np.ndarray  # operand node of each listed operand

    def __len__(self) -> int:
        return len(self.gate)


def gate_parts(task: Task, gates: np.ndarray, signed: bool) -> Parts:
    """Split gates into threshold parts (one per monotone gate, two per xor / andnot)."""
    ops = task.ops[gates]
    bad = ~np.isin(ops, list(MONOTONE_OPS)) if not signed else np.zeros(len(gates), bool)
    if bad.any():
        g = int(gates[np.flatnonzero(bad)[0]])
        raise SuperposeError(
            f"gate {g}: op {OPS[int(task.ops[g])]!r} is not monotone; the two-layer 'superposed' "
            "construction handles copy/and/or -- use the 'superposed3' construction",
            cli="--construction superposed3",
        )
    xor = ops == OP_CODE["xor"]
    if (task.arity[gates][xor] > 2).any():
        raise SuperposeError("superposed constructions support 2-input xor only")
    g_of, node, pos = operand_matrix(task, gates)
    arity = task.arity[gates]
    need_main = np.where(ops == OP_CODE["and"], arity, 1)
    part_gate = [np.arange(len(gates))]
    part_sign = [np.ones(len(gates), dtype=np.int8)]
    part_need = [need_main]
    op_of = ops[g_of]
    # Main part: and/or/copy read all operands; xor's OR part reads both; andnot's PRESENT part reads a.
    keep = ~((op_of == OP_CODE["andnot"]) & (pos == 1))
    lists_g, lists_n = [g_of[keep]], [node[keep]]
    neg = np.flatnonzero(np.isin(ops, [OP_CODE["xor"], OP_CODE["andnot"]]))
    if len(neg):
        base = len(gates)
        part_gate.append(neg)
        part_sign.append(-np.ones(len(neg), dtype=np.int8))
        part_need.append(np.full(len(neg), 2))
        sel = np.isin(g_of, neg)
        remap = np.full(len(gates), -1)
        remap[neg] = base + np.arange(len(neg))
        lists_g.append(remap[g_of[sel]])
        lists_n.append(node[sel])
    return Parts(
        np.concatenate(part_gate),
        np.concatenate(part_sign),
        np.concatenate(part_need).astype(np.int64),
        np.concatenate(lists_g),
        np.concatenate(lists_n),
    )


def input_code_for(
    task: Task,
    gates: np.ndarray,
    width: int,
    ell: int,
    explicit: bool,
    rng: np.random.Generator,
    kind: str = "random",
) -> tuple[Code, BloomCode, int]:
    """The network's input code, the operand code used for read sets, and leftover overlaps."""
    if explicit:
        eye = sparse.csr_array(sparse.eye_array(task.features, dtype=np.int8, format="csr"))
        return ExplicitCode(task.features), BloomCode(eye), 0
    code, overlaps = disjoint_code(task, gates, task.features, width, ell, rng, kind=kind)
    return code, code, overlaps


def output_gates(task: Task) -> Task:
    """The one-level task whose gates are ``task``'s outputs, in order: the same truth.

    An input listed as an output becomes a copy gate; gates no output lists are dropped.
    Returns ``task`` itself when its outputs already are its gates in order.

    Example:
        >>> t = Task.from_gates(3, 2, [("and", [0, 1]), ("or", [1, 2])], outputs=[4, 0])
        >>> [(t2.op_name(g), t2.operands(g).tolist()) for t2 in [output_gates(t)] for g in range(2)]
        [('or', [1, 2]), ('copy', [0])]
    """
    m, outs = task.features, task.outputs
    if task.depth > 1:
        raise SuperposeError(f"the task has {task.depth} levels; a one-level task is needed")
    if len(outs) == task.n_gates and np.array_equal(outs, np.arange(m, m + task.n_gates)):
        return task
    is_gate = outs >= m
    g = outs[is_gate] - m
    ops = np.full(len(outs), OP_CODE["copy"], dtype=np.int8)
    ops[is_gate] = task.ops[g]
    arity = np.ones(len(outs), dtype=np.int64)
    arity[is_gate] = task.arity[g]
    indptr = np.zeros(len(outs) + 1, dtype=np.int64)
    np.cumsum(arity, out=indptr[1:])
    starts = np.zeros(len(outs), dtype=np.int64)
    starts[is_gate] = task.gate_indptr[g]
    pos = np.repeat(starts, arity) + (np.arange(int(indptr[-1])) - np.repeat(indptr[:-1], arity))
    from_gate = np.repeat(is_gate, arity)
    inputs = np.repeat(outs, arity)
    inputs[from_gate] = task.gate_inputs[pos[from_gate]]
    return Task(
        m,
        task.sparsity,
        ops,
        indptr,
        inputs.astype(np.int64),
        np.arange(m, m + len(outs), dtype=np.int64),
        task.family,
        task.source,
    )


def _true_sets(op: int, arity: int, s: int) -> list[tuple[int, ...]]:
    """Operand positions T (|T| <= s) on which a non-monotone gate is true when exactly T holds."""
    import itertools

    out = []
    for size in range(1, min(arity, s) + 1):
        for t in itertools.combinations(range(arity), size):
            if op == OP_CODE["xor"] and size % 2 == 1:
                out.append(t)
            elif op == OP_CODE["andnot"] and t == (0,):
                out.append(t)
    return out


def private_unit_count(task: Task, gates: np.ndarray) -> int:
    """How many private units :func:`private_units` makes for ``gates`` (xor / andnot)."""
    total = 0
    for op, arity in set(zip(task.ops[gates].tolist(), task.arity[gates].tolist(), strict=True)):
        n = int(((task.ops[gates] == op) & (task.arity[gates] == arity)).sum())
        total += n * len(_true_sets(op, arity, task.sparsity))
    return total


def _code_bits(nodes: np.ndarray, memb: sparse.csr_array) -> sparse.csr_array:
    """(rows, width) 0/1: per row, the union of the codes of the nodes in that row."""
    n, k = nodes.shape
    sel = sparse.csr_array(
        (np.ones(n * k, dtype=np.int32), (np.repeat(np.arange(n), k), nodes.ravel())),
        shape=(n, memb.shape[0]),
    )
    out = sparse.csr_array(sel @ memb)
    out.data[:] = 1
    return out


def private_units(
    task: Task, gates: np.ndarray, code: BloomCode, ell: int
) -> tuple[sparse.csr_array, np.ndarray, np.ndarray]:
    """Step units for non-monotone gates (xor of any arity, andnot), each owned by one gate.

    A gate true on exactly the present operand sets T (|T| <= s) gets one unit per T: weight
    M on the bits of T's codes (P), -1 on the other operands' bits (N), threshold
    M |P| - (L - 1) with L the fewest bits another operand has outside P and M = L. The unit
    fires iff every bit of P is on and fewer than L bits of N are: "T is present and no other
    operand is" in the Bloom code's own terms (an operand reads present iff all its bits are
    on). With no other operand (T = all operands) it is the plain AND of P. The gate reads
    true iff *any* of its units fires; the units of one gate are mutually exclusive, since
    each excludes the others' extra operands. XOR = odd |T|; ANDNOT(a, b) = {a}. Explicit
    inputs (l = 1) make every unit exact; with Bloom codes an error needs other active
    features to cover an operand's bits, which the build's check finds.

    Returns (weights (units, width), thresholds, owning gate position of each unit).
    """
    memb = sparse.csr_array(code.membership, dtype=np.int32)
    rows_w, thetas, owners = [], [], []
    ops, arity = task.ops[gates], task.arity[gates]
    for op, k in sorted(set(zip(ops.tolist(), arity.tolist(), strict=True))):
        pos = np.flatnonzero((ops == op) & (arity == k))
        g = gates[pos]
        operands = task.gate_inputs[task.gate_indptr[g][:, None] + np.arange(k)]  # (n, k)
        for t in _true_sets(op, k, task.sparsity):
            n = len(g)
            inside = [j for j in range(k) if j in t]
            outside = [j for j in range(k) if j not in t]

            def bits(cols: list[int], operands: np.ndarray = operands) -> sparse.csr_array:
                return _code_bits(operands[:, cols], memb)

            p_bits = bits(inside)
            size_p = np.diff(p_bits.indptr).astype(np.float64)
            if outside:
                n_bits = bits(outside)
                n_bits = sparse.csr_array(n_bits - n_bits.multiply(p_bits))
                n_bits.eliminate_zeros()
                fewest = np.full(n, np.inf)
                for j in outside:
                    own = bits([j])
                    own = sparse.csr_array(own - own.multiply(p_bits))
                    own.eliminate_zeros()
                    fewest = np.minimum(fewest, np.diff(own.indptr))
                fewest = np.maximum(fewest, 1.0)  # an operand hidden inside P: L = 1
                mult = fewest
                theta = mult * size_p - (fewest - 1)
                w = sparse.csr_array(p_bits.multiply(mult[:, None]) - n_bits)
            else:
                theta = size_p
                w = p_bits
            rows_w.append(sparse.csr_array(w, dtype=np.float32))
            thetas.append(theta)
            owners.append(pos)
    weight = sparse.vstack(rows_w, format="csr") if rows_w else sparse.csr_array((0, code.width))
    return (
        sparse.csr_array(weight, dtype=np.float32),
        np.concatenate(thetas).astype(np.float32),
        np.concatenate(owners).astype(np.int64),
    )


def threshold_stage(
    parts: Parts,
    operand_code: BloomCode,
    width: int,
    length: int,
    heavy_share: float,
    rng: np.random.Generator,
    private: bool = False,
    repair_rounds: int = 0,
    home: bool = False,
    mix: bool = False,
    sparsity: int | None = None,
    split: bool = True,
    repair_select: str = "weights",
) -> tuple[Layer, sparse.csr_array, dict[str, Any]]:
    """One threshold layer computing ``parts``: each part gets ``length`` units of its pool.

    With ``sparsity`` s, every pool is also at least as wide as its own hubs call for
    (:func:`pool_hub_floor`), and a heavy feature's OR / COPY block that would then need as
    many units as it has parts gives each of its parts a private unit instead (one unit per
    part is the explicit network's cost; a block can only be cheaper than that).

    With ``private`` every part gets its own single unit (explicit outputs). With ``home``,
    2-input parts of the shared pool take their units from their operands' home units (see
    :func:`home_units`). With ``mix``, "any present" parts (threshold one code) and 2-ANDs of
    disjoint codes of equal length (threshold two codes) share units: the former's bits
    weigh 2, so both fire at twice one code; the codes of true parts then spread over the
    whole pool instead of crowding the pool of one kind. Returns the layer, the (parts,
    width) unit membership and statistics for the network's extras.
    """
    reads = read_sets(operand_code, parts.g_of, parts.node, len(parts))
    theta, klass, double = _thresholds(parts, operand_code.lengths, reads, mix)
    if private:
        units = sparse.csr_array(sparse.eye_array(len(parts), dtype=np.int8, format="csr"))
        stats: dict[str, Any] = {}
    else:
        # A feature read by more than `cutoff` gates would sit in over `heavy_share` of the
        # pool's units: its gates move to a private block of units that all read its code
        # (the input channel); a gate with two heavy operands goes to the heavier one's block.
        cutoff = heavy_share * width / length
        routing = route(parts.g_of, parts.node, len(parts), operand_code.n_features, cutoff)
        code_len = operand_code.lengths
        owner_len = np.where(routing.owner >= 0, code_len[np.maximum(routing.owner, 0)], 0)
        load = length * (np.diff(reads.indptr) - owner_len).clip(min=1.0)
        floor = None
        if sparsity is not None:
            floor, own, pool_of = _own_blocks(parts, klass, routing, length, sparsity)
            if split and own.any():
                return _split_stage(
                    parts,
                    own[pool_of],
                    load,
                    operand_code,
                    width,
                    length,
                    heavy_share,
                    rng,
                    repair_rounds=repair_rounds,
                    home=home,
                    mix=mix,
                    sparsity=sparsity,
                    split=False,
                    repair_select=repair_select,
                )
        pools = allocate_pools(klass, routing, load, width, min_size=6 * length, floor=floor)
        units = assign_units(pools, length, rng)
        stats = {}
        if home:
            units, stats["home_gates"] = home_units(parts, pools, units, length, rng)
        if repair_rounds and _repairable(parts, operand_code, theta):
            units, stats["repair"] = _repair_units(
                parts, operand_code, units, pools, rng, repair_rounds, repair_select
            )
        stats.update(_pool_stats(routing, pools))
    layer, fan_in = threshold_layer(units, reads, theta, weight_two=double if mix else None)
    used = fan_in[fan_in > 0]
    stats["fan_in_fraction_mean"] = float(used.mean() / operand_code.width) if len(used) else 0.0
    stats["fan_in_fraction_max"] = float(used.max() / operand_code.width) if len(used) else 0.0
    return layer, units, stats


def _thresholds(
    parts: Parts, code_len: np.ndarray, reads: sparse.csr_array, mix: bool
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Each part's threshold, unit class and whether its bits weigh two.

    "Any present" (need 1) fires on its shortest operand code; an AND on the whole union of
    its reads. With ``mix``, "any present" parts whose operand codes have equal lengths weigh
    their bits 2 (threshold twice one code) and share a class (0) with 2-ANDs of disjoint
    equal-length codes, which fire at the same sum."""
    min_len = np.full(len(parts), np.iinfo(np.int64).max)
    np.minimum.at(min_len, parts.g_of, code_len[parts.node])
    max_len = np.zeros(len(parts), dtype=np.int64)
    np.maximum.at(max_len, parts.g_of, code_len[parts.node])
    theta = np.where(parts.need == 1, min_len, np.diff(reads.indptr))
    klass = parts.need.astype(np.int64)
    double = np.zeros(len(parts), dtype=bool)
    if mix:
        double = (parts.need == 1) & (min_len == max_len)
        pair = (parts.need == 2) & (theta == 2 * min_len) & (min_len == max_len)
        klass = np.where(double | pair, 0, klass)
        theta = np.where(double, 2 * theta, theta)
    return theta, klass, double


def _own_blocks(
    parts: Parts, klass: np.ndarray, routing: Routing, length: int, sparsity: int
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Each pool's hub floor (:func:`pool_hub_floor`), which pools would be cheaper as one
    private unit per part, and each part's pool.

    Only blocks one code fires (OR / COPY / mixed) qualify, when their floor (at least six
    codes' worth of units) reaches their number of parts; k-AND blocks keep their layout (the
    s = 2 repair reads it as ``length`` units per gate)."""
    keys, pool_of = pool_keys(klass, routing)
    floor = pool_hub_floor(parts, keys, pool_of, length, sparsity)
    parts_in = np.bincount(pool_of, minlength=len(keys))
    own = (keys[:, 1] >= 0) & (keys[:, 0] <= 1) & (np.maximum(floor, 6 * length) >= parts_in)
    return floor, own, pool_of


def _pool_stats(routing: Routing, pools: Pools) -> dict[str, Any]:
    """What the shared pools look like, for the network's extras."""
    return {
        "routes": routing.counts(),
        "heavy_features": len(routing.heavy),
        "private_blocks": len(routing.heavy),
        "width": pools.width,
        "influence_cutoff": routing.cutoff,
        "pools": len(pools.names),
        "largest_block": int(pools.sizes()[1:].max()) if len(pools.names) > 1 else 0,
    }


def pool_hub_floor(
    parts: Parts, keys: np.ndarray, pool_of: np.ndarray, length: int, sparsity: int
) -> np.ndarray:
    """Per pool, the width its heaviest operands call for (:func:`hub_width`).

    Routing moves a feature read by many parts into a block of its own, but a block can hold
    a hub of its own: a second heavy feature that is an operand of many of the block's parts
    (Zipf heads meet often) has its code on most of the block's units, so with it active the
    block's other parts fire too (measured: the and/or/copy stress mix at m = 10^4 built
    without this floor was wrong on 735 of 4 000 inputs, all on ORs in the blocks of its two
    heaviest features). A pool of threshold class c is fooled by the r = s - c + 1 heaviest
    of its operands other than its owner (class 0, the mixed pool, counts as c = 1), so it
    must be at least ``hub_width`` of their summed influence within the pool. Only pools a single
    code fires (c <= 1) get the floor: the k-AND pools' own rules measured clean with hubs.

    Example:
        >>> p = Parts(np.arange(4), np.ones(4), np.ones(4, np.int64), np.repeat(np.arange(4), 2),
        ...           np.array([0, 9, 1, 9, 2, 9, 3, 9]))
        >>> pool_hub_floor(p, np.array([[1, -1]]), np.zeros(4, np.int64), 3, 2).tolist()
        [1098]
    """
    n_pools = len(keys)
    pool = pool_of[parts.g_of]
    keep = parts.node != keys[pool, 1]
    n_nodes = int(parts.node.max(initial=0)) + 1
    pair, counts = np.unique(pool[keep] * n_nodes + parts.node[keep], return_counts=True)
    pair_pool = pair // n_nodes
    order = np.lexsort((-counts, pair_pool))
    pair_pool, counts = pair_pool[order], counts[order]
    first = np.searchsorted(pair_pool, pair_pool)
    rank = np.arange(len(pair_pool)) - first
    # k-AND pools (k >= 2) keep the rules that measured clean with hubs (heavy_share, the
    # s = 2 repair); one code fires a unit of the OR / COPY / mixed pools, the case above.
    need = np.maximum(keys[:, 0], 1)
    r = np.where(need == 1, sparsity, 0)
    top = np.bincount(
        pair_pool[rank < r[pair_pool]], weights=counts[rank < r[pair_pool]], minlength=n_pools
    )
    gates = np.bincount(pool_of, minlength=n_pools)
    return np.array(
        [hub_width(float(t), length, int(g)) for t, g in zip(top, gates, strict=True)],
        dtype=np.int64,
    )


def _split_stage(
    parts: Parts,
    own: np.ndarray,
    load: np.ndarray,
    operand_code: BloomCode,
    width: int,
    length: int,
    heavy_share: float,
    rng: np.random.Generator,
    **shared: Any,
) -> tuple[Layer, sparse.csr_array, dict[str, Any]]:
    """:func:`threshold_stage` with the parts flagged ``own`` on private units, the rest pooled
    (in a width shrunk by the private parts' share of the load; hub floors, no second split)."""
    rest, mine = np.flatnonzero(~own), np.flatnonzero(own)
    rest_width = max(1, round(width * float(load[rest].sum()) / max(float(load.sum()), 1e-12)))
    stages = [
        (
            mine,
            threshold_stage(
                _subset(parts, mine),
                operand_code,
                0,
                length,
                heavy_share,
                rng,
                private=True,
                mix=shared.get("mix", False),
            ),
        )
    ]
    if len(rest):
        stage = threshold_stage(
            _subset(parts, rest), operand_code, rest_width, length, heavy_share, rng, **shared
        )
        stages.insert(0, (rest, stage))
    rows, cols, offset = [], [], 0
    for sel, (layer, units, _) in stages:
        coo = units.tocoo()
        rows.append(sel[coo.coords[0]])
        cols.append(coo.coords[1] + offset)
        offset += layer.n_out
    r, c = np.concatenate(rows), np.concatenate(cols)
    membership = sparse.csr_array(
        (np.ones(len(r), dtype=np.int8), (r, c)), shape=(len(parts), offset)
    )
    layer = Layer(
        sparse.vstack([st[0].weight for _, st in stages], format="csr"),
        np.concatenate([st[0].bias for _, st in stages]),
        "step",
    )
    stats = dict(stages[0][1][2]) if len(rest) else {}
    stats["private_parts"] = int(len(mine))
    stats["width"] = int(offset)
    return layer, membership, stats


def home_units(
    parts: Parts,
    pools: Any,
    units: sparse.csr_array,
    length: int,
    rng: np.random.Generator,
) -> tuple[sparse.csr_array, int]:
    """Home units: every feature owns ``length // 2`` random units of each shared pool, and a
    2-input part there uses the union of its operands' home units (topped up with random
    units of the pool to ``length``).

    A feature's code then enters its home units once for all of its gates instead of once
    per gate, which roughly halves the load (read-set bits) of the layer. Parts in private
    blocks (influence channels) and parts with another arity keep ``units``. Returns the new
    membership and the number of parts placed on home units.
    """
    n = len(parts)
    arity = np.bincount(parts.g_of, minlength=n)
    shared = np.array([name.endswith(":shared") for name in pools.names], dtype=bool)
    sel = np.flatnonzero((arity == 2) & shared[pools.pool_of_gate])
    half = length // 2
    if len(sel) == 0 or half == 0:
        return units, 0
    cols = units.indices.reshape(n, length).astype(np.int64).copy()
    order = np.argsort(parts.g_of, kind="stable")
    operands = parts.node[order].reshape(-1, 2) if (arity == 2).all() else None
    if operands is None:
        first = np.full(n, -1)
        second = np.full(n, -1)
        starts = np.cumsum(arity) - arity
        sorted_nodes = parts.node[order]
        first[sel] = sorted_nodes[starts[sel]]
        second[sel] = sorted_nodes[starts[sel] + 1]
        operands = np.stack([first, second], axis=1)
    n_nodes = int(parts.node.max()) + 1
    placed = 0
    for pool in np.unique(pools.pool_of_gate[sel]):
        in_pool = sel[pools.pool_of_gate[sel] == pool]
        start, size = int(pools.start[pool]), int(pools.stop[pool] - pools.start[pool])
        if size < 2 * length:
            continue
        homes = _distinct_rows(rng, n_nodes, half, size) + start
        a, c = operands[in_pool, 0], operands[in_pool, 1]
        chosen = np.concatenate(
            [homes[a], homes[c], rng.integers(start, start + size, (len(in_pool), length))], 1
        )
        cols[in_pool] = _first_distinct(chosen, length, rng, start, size)
        placed += len(in_pool)
    cols.sort(axis=1)
    new = sparse.csr_array(
        (np.ones(n * length, dtype=np.int8), cols.ravel().astype(np.int32), units.indptr.copy()),
        shape=units.shape,
    )
    return new, placed


def _distinct_rows(rng: np.random.Generator, rows: int, length: int, size: int) -> np.ndarray:
    """(rows, length) distinct values in range(size) per row."""
    out = rng.integers(0, size, (rows, length))
    while True:
        srt = np.sort(out, axis=1)
        dup = (srt[:, 1:] == srt[:, :-1]).any(axis=1)
        if not dup.any():
            return out
        out[dup] = rng.integers(0, size, (int(dup.sum()), length))


def _first_distinct(
    chosen: np.ndarray, length: int, rng: np.random.Generator, start: int, size: int
) -> np.ndarray:
    """Per row, the first ``length`` distinct values of ``chosen`` (redrawing the tail if short)."""
    while True:
        order = np.argsort(chosen, axis=1, kind="stable")
        srt = np.take_along_axis(chosen, order, axis=1)
        first = np.ones_like(chosen, dtype=bool)
        first[:, 1:] = srt[:, 1:] != srt[:, :-1]
        keep = np.zeros_like(first)
        np.put_along_axis(keep, order, first, axis=1)
        # positions of kept values in their original order; take the first `length`
        rank = np.cumsum(keep, axis=1)
        short = rank[:, -1] < length
        if not short.any():
            mask = keep & (rank <= length)
            return chosen[mask].reshape(len(chosen), length)
        chosen[short, -length:] = rng.integers(start, start + size, (int(short.sum()), length))


NON_MONOTONE = (OP_CODE["xor"], OP_CODE["andnot"])


def _output_units(
    task: Task, width: int, length: int, rng: np.random.Generator
) -> sparse.csr_array:
    """Output codes: monotone gates share ``width`` units (``length`` each); every xor / andnot
    gate gets one private unit after them, since a subtracted part must not reach other gates.
    """
    signed = np.isin(task.ops, NON_MONOTONE)
    n_shared, n_private = int((~signed).sum()), int(signed.sum())
    if n_shared:
        pools = allocate_pools(
            np.zeros(n_shared, dtype=np.int64),
            Routing(
                np.zeros(n_shared, np.int8), np.full(n_shared, -1), np.zeros(0, np.int64), np.inf
            ),
            np.ones(n_shared),
            width,
            2 * length,
        )
        shared = assign_units(pools, length, rng)
    else:
        shared = sparse.csr_array((0, 0), dtype=np.int8)
    total = shared.shape[1] + n_private
    rows, cols = [], []
    coo = shared.tocoo()
    gate_ids = np.flatnonzero(~signed)
    rows.append(gate_ids[coo.coords[0]])
    cols.append(coo.coords[1])
    rows.append(np.flatnonzero(signed))
    cols.append(shared.shape[1] + np.arange(n_private))
    r, c = np.concatenate(rows), np.concatenate(cols)
    return sparse.csr_array((np.ones(len(r), dtype=np.int8), (r, c)), shape=(task.n_gates, total))


def _private_units(task: Task, out_units: sparse.csr_array) -> np.ndarray:
    """Output units that code a single xor / andnot gate."""
    signed = np.flatnonzero(np.isin(task.ops, NON_MONOTONE))
    return (
        out_units.indices[out_units.indptr[signed]] if len(signed) else np.zeros(0, dtype=np.int64)
    )


def _hidden_layer(
    parts: Parts,
    operand_code: BloomCode,
    p: dict[str, Any],
    heavy_share: float,
    task: Task,
    rng: np.random.Generator,
) -> tuple[Layer, sparse.csr_array, dict[str, Any]]:
    """Hidden layer of the three-layer design.

    Parts of monotone gates share ``n_hidden`` units (t per part). The two parts of each xor /
    andnot gate get one private unit each: a subtracted part must only ever cancel its own
    gate, so it cannot share units.
    """
    signed_gate = np.isin(task.ops[parts.gate], NON_MONOTONE)
    shared = np.flatnonzero(~signed_gate)
    private = np.flatnonzero(signed_gate)
    layers, memberships, stats = [], [], {}
    for sel, is_private in ((shared, False), (private, True)):
        if len(sel) == 0:
            continue
        sub = _subset(parts, sel)
        # The s = 2 repair also clears the hidden parts that some 2-sparse input could fire.
        layer, units, st = threshold_stage(
            sub,
            operand_code,
            p["n_hidden"],
            p["t"],
            heavy_share,
            rng,
            private=is_private,
            repair_rounds=0 if is_private or task.sparsity > 2 else 12,
            sparsity=task.sparsity,
        )
        layers.append(layer)
        memberships.append((sel, units))
        if not is_private:
            # The hidden repair clears the hidden layer only: the output layer can still
            # misfire (true parts' hidden units are shared with other gates' parts), so it is
            # recorded as "hidden_repair", never as the network's s = 2 certificate.
            if "repair" in st:
                st["hidden_repair"] = st.pop("repair")
            stats.update(st)
    weight = sparse.vstack([lay.weight for lay in layers], format="csr")
    bias = np.concatenate([lay.bias for lay in layers])
    rows, cols, offset = [], [], 0
    for sel, units in memberships:
        coo = units.tocoo()
        rows.append(sel[coo.coords[0]])
        cols.append(coo.coords[1] + offset)
        offset += units.shape[1]
    r, c = np.concatenate(rows), np.concatenate(cols)
    membership = sparse.csr_array(
        (np.ones(len(r), dtype=np.int8), (r, c)), shape=(len(parts), offset)
    )
    stats["private_hidden_units"] = int(len(private))
    return Layer(weight, bias, "step"), membership, stats


def _subset(parts: Parts, sel: np.ndarray) -> Parts:
    remap = np.full(len(parts), -1)
    remap[sel] = np.arange(len(sel))
    keep = remap[parts.g_of] >= 0
    return Parts(
        parts.gate[sel], parts.sign[sel], parts.need[sel], remap[parts.g_of[keep]], parts.node[keep]
    )


def _repairable(parts: Parts, operand_code: BloomCode, theta: np.ndarray) -> bool:
    """The s = 2 certificate applies: 2-input ANDs, equal code lengths, threshold 2l everywhere."""
    lengths = operand_code.lengths
    if len(parts) == 0 or (parts.need != 2).any() or len(parts.node) != 2 * len(parts):
        return False
    return bool((lengths == lengths[0]).all() and (theta == 2 * lengths[0]).all())


def _repair_units(
    parts: Parts,
    operand_code: BloomCode,
    units: sparse.csr_array,
    pools: Any,
    rng: np.random.Generator,
    rounds: int,
    select: str = "weights",
) -> tuple[sparse.csr_array, dict[str, Any]]:
    """Run :func:`superpose.constructions.certify.repair` on a 2-AND layout; new unit membership."""
    from superpose.constructions.certify import PairLayout, repair

    length = int(np.diff(units.indptr)[0])
    order = np.argsort(parts.g_of, kind="stable")
    layout = PairLayout(
        codes=operand_code.membership.indices.reshape(operand_code.n_features, -1).astype(np.int64),
        pairs=parts.node[order].reshape(-1, 2),
        units=units.indices.reshape(len(parts), length).astype(np.int64),
        pool_start=pools.start[pools.pool_of_gate],
        pool_size=pools.sizes()[pools.pool_of_gate],
        n_in=operand_code.width,
        n_out=units.shape[1],
    )
    record = repair(layout, rng, rounds=rounds, select=select)
    n = len(parts)
    new = sparse.csr_array(
        (
            np.ones(n * length, dtype=np.int8),
            layout.units.ravel().astype(np.int32),
            np.arange(0, n * length + 1, length, dtype=np.int64),
        ),
        shape=units.shape,
    )
    return new, record


def _check_one_level(task: Task, name: str) -> np.ndarray:
    if task.depth > 1:
        raise SuperposeError(
            f"the task has {task.depth} levels; '{name}' builds one level -- use the 'circuit' "
            "construction",
            cli="--construction circuit",
        )
    outs = task.outputs
    if (outs < task.features).any() or len(np.unique(outs)) != task.n_gates:
        raise SuperposeError(
            f"'{name}' needs every gate to be an output and no input listed as one"
        )
    return outs - task.features


def _pairs_at_s2(task: Task) -> bool:
    """A 2-input AND task at sparsity <= 2 (where the s = 2 certificate applies)."""
    return bool(
        task.sparsity <= 2
        and task.n_gates > 0
        and (task.ops == OP_CODE["and"]).all()
        and (task.arity == 2).all()
    )


REPAIR_LIMIT = 1_000_000
"""Above this many gates the s = 2 repair is skipped by default; the widths then come from the
failure-probability rule alone. Measured at 10^6 uniform 2-ANDs: the repair takes 351 s and
3.6 GB and certifies 8 887 units per layer (the rule alone: 10 408, which the exact check then
finds wrong on 18 inputs and grows to 13 010)."""


def _validate(params: dict[str, Any]) -> None:
    """One clear error for a parameter outside its range (nothing is stored until all pass).

    Code lengths and widths are positive integers (or None: automatic); ``failure`` is a
    probability in (0, 1); ``heavy_share`` a share in (0, 1]; ``width_scale`` positive.
    """
    for key in ("ell", "ell_out", "t", "n_in", "n_hidden", "n_out"):
        value = params.get(key)
        if value is None:
            continue
        if isinstance(value, bool) or not isinstance(value, (int, np.integer)) or value < 1:
            raise SuperposeError(f"{key} must be a positive integer (or unset), got {value!r}")
    checks = (
        ("failure", lambda v: 0 < v < 1, "a probability in (0, 1)"),
        ("heavy_share", lambda v: 0 < v <= 1, "a share in (0, 1]"),
        ("width_scale", lambda v: 0 < v < math.inf, "a positive number"),
    )
    for key, ok, what in checks:
        value = params[key]
        if isinstance(value, bool) or not isinstance(value, (int, float)) or not ok(value):
            raise SuperposeError(f"{key} must be {what}, got {value!r}")


CODES = ("random", "rs")
"""Input code kinds of ``superposed``: random Bloom sets, or Reed-Solomon (Kautz-Singleton)
codes with pairwise overlap at most one unit (:func:`superpose.codes.rs_code_rows`)."""
OPTION_DEFAULTS = {"repair_select": "weights", "repair_rounds": 12, "code": "random"}
HOME_REPAIR_ROUNDS = 40
"""Repair rounds of a home-unit build left at the default ``repair_rounds``: at the home rule's
widths 12 rounds left 1-11 vulnerable gates on 3 of 24 tasks (m' = 1e4, d = 2.5, a star);
40 cleared every one (README, "Closer to the limit")."""

MAX_AUTO_ELL = 10
"""The largest code length the automatic choice makes (memory estimates assume it)."""
_LOAD_BYTES = 16
_SUPERPOSED_PER_GATE = 700
_CODE_ENTRY_BYTES = 24


class _Certified(Construction):
    """The superposed constructions: widths from a failure rule, scaled by ``width_scale``.

    One attempt per ``build``: checking the result, growing the widths when a check fails and
    falling back to the explicit network are the build pipeline's job
    (:mod:`superpose.pipeline`), the same for every construction.
    """

    width_scale: float = 1.0
    _width_params: tuple[str, ...] = ("ell", "ell_out", "t", "n_in", "n_hidden", "n_out")

    def build_once(self, task: Task, rng: np.random.Generator) -> Network:
        raise NotImplementedError

    def resolved(self, task: Task) -> dict[str, Any]:
        raise NotImplementedError

    @classmethod
    def _unsupported(cls, task: Task) -> str | None:
        """Why this construction cannot build ``task`` (None when it can)."""
        if task.depth > 1:
            return f"the task has {task.depth} levels; '{cls.name}' builds one level"
        outs = task.outputs
        if (outs < task.features).any() or len(np.unique(outs)) != task.n_gates:
            return f"'{cls.name}' needs every gate to be an output and no input listed as one"
        return cls._op_support(task)

    @classmethod
    def _op_support(cls, task: Task) -> str | None:
        return None

    @classmethod
    def memory_parts(
        cls, features: int, n_gates: int, operands: float, params: dict[str, Any]
    ) -> tuple[dict[str, int], list[str]]:
        """The weight matrix and its intermediates, about 16 bytes per unit of *load* (the sum
        over output units of their read sets: ell' * operands * ell, plus t * ell' per gate
        for the output layer of ``superposed3``), 700 bytes per gate (codes, read sets,
        routing) and 24 bytes per input-code entry. Automatic code lengths are assumed at
        their largest (:data:`MAX_AUTO_ELL`), so the estimate errs high."""
        notes: list[str] = []
        ell, auto_ell = positive_param(params, "ell", MAX_AUTO_ELL)
        ell_out, auto_out = positive_param(params, "ell_out", MAX_AUTO_ELL)
        if params.get("explicit_inputs"):
            ell, auto_ell = 1, False
        if auto_ell or auto_out:
            notes.append(f"automatic code lengths assumed at their largest ({MAX_AUTO_ELL})")
        if cls.name == "superposed3":
            t, auto_t = positive_param(params, "t", ell_out if not auto_out else MAX_AUTO_ELL)
            load = t * operands * ell + t * ell_out * n_gates
            if auto_t:
                notes.append(f"hidden units per gate t assumed {t}")
        else:
            load = ell_out * operands * ell
        parts = {
            "weights": int(_LOAD_BYTES * load),
            "codes": int(_SUPERPOSED_PER_GATE * n_gates + _CODE_ENTRY_BYTES * features * ell),
        }
        return parts, notes

    def plan_neurons(self, task: Task) -> tuple[int, bool] | None:
        """(neurons at the automatic widths, whether they meet the failure targets), without
        building; None when some width is given by hand (then there is nothing to compare)."""
        if (
            getattr(self, "explicit_inputs", False)
            or getattr(self, "explicit_outputs", False)
            or any(getattr(self, name, None) is not None for name in self._width_params)
        ):
            return None
        p = self.resolved(task)
        total = int(p["n_in"]) + int(p.get("n_hidden", 0)) + int(p["n_out"])
        return total, bool(p["auto"].get("feasible", True))

    def build(self, task: Task, rng: np.random.Generator) -> Network:
        if not self.width_scale > 0:
            raise SuperposeError(f"width_scale must be > 0, got {self.width_scale!r}")
        return self.build_once(task, rng)


class Superposed(_Certified):
    """Two-layer superposed network: Bloom-coded inputs, output units that are the AND units.

    Parameters left as ``None`` are chosen by :func:`~superpose.constructions.params.auto_params`
    from m, m', s and ``failure`` (target false-output probability per random input). For
    2-input ANDs at s <= 2 with ``repair`` on, the widths come from
    :func:`~superpose.constructions.params.repair_params` instead, and the few gates open to
    some 2-sparse input are repaired afterwards, which certifies every <= 2-sparse input
    (``extras["repair"]["certified_s2"]``).

    ``home=True`` (opt-in, 2-AND at s <= 2 only) places each gate on its operands' home units
    (:func:`home_units`); its widths and code lengths come from ``repair_params(task, "home")``
    unless given (``ell_out`` should be even). ``repair_select="certificate"`` has its own
    rule too (``repair_params(task, "certificate")``: narrower, since that repair clears a
    larger vulnerable share; give ``repair_rounds=40`` as measured).

    Issue-15 options (opt-in, recorded in the network's params only when not at their
    defaults): ``code="rs"`` Reed-Solomon input codes (two codes share at most one unit);
    ``repair_rounds`` (12); ``repair_select="certificate"`` makes the s = 2 repair choose each
    redrawn output code by the certificate's own test. README, "Closer to the limit".

    With every parameter automatic, :meth:`plan_neurons` tells the build pipeline the planned
    neurons, so a task for which superposition does not pay gets the explicit network instead
    (the reason lands in ``extras["fallback"]``).
    """

    name = "superposed"
    capabilities = Capabilities(max_depth=1, tags=frozenset({"superposed", "certified"}))

    @classmethod
    def _unsupported(cls, task: Task) -> str | None:
        """Every one-level task (any op and arity, outputs in any order, inputs as outputs)."""
        if task.depth > 1:
            return f"the task has {task.depth} levels; '{cls.name}' builds one level"
        return None

    def __init__(
        self,
        ell: int | None = None,
        ell_out: int | None = None,
        n_in: int | None = None,
        n_out: int | None = None,
        failure: float = DEFAULT_FAILURE,
        heavy_share: float = 0.3,
        width_scale: float = 1.0,
        explicit_inputs: bool = False,
        explicit_outputs: bool = False,
        repair: bool = True,
        home: bool | None = None,
        repair_select: str = "weights",
        repair_rounds: int = 12,
        code: str = "random",
    ) -> None:
        _validate(locals())
        if repair_select not in ("weights", "certificate"):
            raise SuperposeError(
                f"repair_select must be 'weights' or 'certificate', got {repair_select!r}"
            )
        if home is not None and not isinstance(home, (bool, np.bool_)):
            raise SuperposeError(f"home must be true, false or unset (automatic), got {home!r}")
        if code not in CODES:
            raise SuperposeError(f"code must be one of {', '.join(CODES)}, got {code!r}")
        if (
            isinstance(repair_rounds, bool)
            or not isinstance(repair_rounds, int)
            or repair_rounds < 0
        ):
            raise SuperposeError(f"repair_rounds must be an integer >= 0, got {repair_rounds!r}")
        self.repair = repair
        self.home = home
        self.repair_select = repair_select
        self.repair_rounds = repair_rounds
        self.code = code
        self.ell = ell
        self.ell_out = ell_out
        self.n_in = n_in
        self.n_out = n_out
        self.failure = failure
        self.heavy_share = heavy_share
        self.width_scale = width_scale
        self.explicit_inputs = explicit_inputs
        self.explicit_outputs = explicit_outputs

    def get_params(self) -> dict[str, Any]:
        """As recorded in network.json; the issue-15 options only when not at their defaults
        (so networks built before them, and the golden outputs, stay byte-identical)."""
        params = super().get_params()
        for key, default in OPTION_DEFAULTS.items():
            if params.get(key) == default:
                params.pop(key, None)
        return params

    def resolved(self, task: Task) -> dict[str, Any]:
        """The parameters actually used for ``task`` (auto choices filled in).

        ``pools`` lists one shared pool per threshold class (need = full operand codes its
        units need) with its width; ``private_units`` (xor / andnot) and ``dead_units`` (k-ANDs
        with k > s) follow them in the layer.
        """
        norm = output_gates(task)
        cls = gate_classes(norm)
        needs = [int(c) for c in np.unique(cls[cls > 0])]
        private = int(private_unit_count(norm, np.flatnonzero(cls == PRIVATE)))
        scale = self.width_scale
        if self.explicit_outputs:
            monotone = int((cls > 0).sum())
            dead = int((cls == DEAD).sum())
            auto = auto_params(norm, self.failure, self.ell, 1, self.explicit_inputs)
            pools = [
                {"need": c, "width": int((cls == c).sum()), "heavy_share": self.heavy_share}
                for c in needs
            ]
            n_out = monotone + private + dead
            return self._widths(norm, auto.ell, 1, auto.n_in, pools, private, dead, n_out, auto)
        if len(needs) <= 1 and private == 0 and not (cls == DEAD).any():
            if self._repairs(norm) and self.ell is None and self.ell_out is None:
                auto = repair_params(norm, self._design(norm))
            else:
                auto = auto_params(norm, self.failure, self.ell, self.ell_out, self.explicit_inputs)
            n_out = self.n_out or max(2 * auto.ell_out, round(auto.n_out * scale))
            pools = [
                {"need": c, "width": int(n_out), "heavy_share": self.heavy_share} for c in needs
            ]
            return self._widths(
                norm, auto.ell, auto.ell_out, auto.n_in, pools, 0, 0, int(n_out), auto
            )
        lp = layer_params(norm, self.failure, self.ell, self.ell_out, self.explicit_inputs, private)
        pools = [
            {
                "need": pool.need,
                "width": max(6 * lp.ell_out, round(pool.width * scale)),
                "heavy_share": min(self.heavy_share, pool.heavy_share),
            }
            for pool in lp.pools
        ]
        n_out = sum(pool["width"] for pool in pools) + private + lp.dead_units
        if self.n_out is not None:
            room = self.n_out - private - lp.dead_units
            if room < 6 * lp.ell_out * max(1, len(pools)):
                raise SuperposeError(
                    f"n_out={self.n_out} leaves no room for {len(pools)} pool(s) beside "
                    f"{private} private and {lp.dead_units} silent units"
                )
            total = sum(pool["width"] for pool in pools)
            for pool in pools:
                pool["width"] = max(6 * lp.ell_out, round(pool["width"] * room / total))
            n_out = sum(pool["width"] for pool in pools) + private + lp.dead_units
        return self._widths(
            norm, lp.ell, lp.ell_out, lp.n_in, pools, private, lp.dead_units, n_out, lp
        )

    def _widths(
        self,
        task: Task,
        ell: int,
        ell_out: int,
        n_in_auto: float,
        pools: list[dict[str, Any]],
        private: int,
        dead: int,
        n_out: int,
        auto: Any,
    ) -> dict[str, Any]:
        """The resolved record: the input width (given, explicit, or scaled) and the pools."""
        if self.explicit_inputs:
            n_in = task.features
        else:
            n_in = self.n_in or max(4 * ell, round(n_in_auto * self.width_scale))
        return {
            "ell": 1 if self.explicit_inputs else int(ell),
            "ell_out": int(ell_out),
            "n_in": int(n_in),
            "n_out": int(n_out),
            "pools": pools,
            "private_units": int(private),
            "dead_units": int(dead),
            "auto": auto.as_dict(),
        }

    def _design(self, task: Task) -> str:
        """Which width rule of :func:`repair_params` fits the chosen options."""
        if self._home(task):
            return "home"
        return "certificate" if self.repair_select == "certificate" else "default"

    def _rounds(self, home: bool) -> int:
        """Repair rounds: as given, but home units get :data:`HOME_REPAIR_ROUNDS` in place of
        the default 12 (their last vulnerable gates take longer to clear)."""
        default = OPTION_DEFAULTS["repair_rounds"]
        return HOME_REPAIR_ROUNDS if home and self.repair_rounds == default else self.repair_rounds

    def _home(self, task: Task) -> bool:
        """Whether the build uses home units: as given, or (``home=None``) automatically where
        they were measured to certify and need fewer neurons (:func:`home_pays`) and nothing
        about the layout is given by hand (``task`` is the normalised one-level task)."""
        if self.home is not None:
            return bool(self.home)
        return bool(
            self._repairs(task)
            and self.repair_select == "weights"
            and all(getattr(self, k) is None for k in ("ell", "ell_out", "n_in", "n_out"))
            and home_pays(task)
        )

    def _repairs(self, task: Task) -> bool:
        """Whether the s = 2 repair (and its certificate) applies to ``task``."""
        return bool(
            self.repair
            and task.n_gates <= REPAIR_LIMIT
            and not self.explicit_inputs
            and not self.explicit_outputs
            and _pairs_at_s2(task)
        )

    def build_once(self, task: Task, rng: np.random.Generator) -> Network:
        norm = output_gates(task)
        home = self._home(norm)
        if home and not _pairs_at_s2(norm):
            # A triangle a-c-p of gates puts p's code into all home units of gate (a, c), so
            # input {a, p} fools it; only the s = 2 repair finds and fixes such gates.
            raise SuperposeError(
                "home=True needs a 2-input AND task at sparsity <= 2 (the s = 2 repair removes "
                f"the gates a triangle of gates fools); got sparsity {task.sparsity}"
            )
        p = self.resolved(task)
        gates = np.arange(norm.n_gates)
        cls = gate_classes(norm)
        input_code, operand_code, overlaps = input_code_for(
            norm, gates, p["n_in"], p["ell"], self.explicit_inputs, rng, kind=self.code
        )
        blocks: list[tuple[np.ndarray, Layer, sparse.csr_array]] = []
        pool_stats: list[dict[str, Any]] = []
        for pool in p["pools"]:
            sel = np.flatnonzero(cls == pool["need"])
            parts = gate_parts(norm, sel, signed=False)
            repairs = (
                pool["need"] == 2
                and norm.sparsity <= 2
                and len(sel) <= REPAIR_LIMIT
                and self.repair
                and not self.explicit_inputs
                and not self.explicit_outputs
            )
            layer, units, stats = threshold_stage(
                parts,
                operand_code,
                pool["width"],
                p["ell_out"],
                pool["heavy_share"],
                rng,
                private=self.explicit_outputs,
                repair_rounds=self._rounds(home) if repairs else 0,
                home=home and not self.explicit_outputs,
                sparsity=norm.sparsity,
                repair_select=self.repair_select,
            )
            blocks.append((sel, layer, units))
            pool_stats.append({"need": pool["need"], "gates": int(len(sel)), **stats})
        signed = np.flatnonzero(cls == PRIVATE)
        if len(signed):
            weight, theta, owner = private_units(norm, signed, operand_code, p["ell"])
            units = sparse.csr_array(
                (np.ones(len(owner), dtype=np.int8), (owner, np.arange(len(owner)))),
                shape=(len(signed), len(owner)),
            )
            blocks.append((signed, Layer(weight, -theta, "step"), units))
        dead = np.flatnonzero(cls == DEAD)
        if len(dead):
            # Never true on an s-sparse input: units that read nothing and never fire.
            n_dead = len(dead) if self.explicit_outputs else 1
            silent = Layer(
                sparse.csr_array((n_dead, operand_code.width), dtype=np.float32),
                -np.ones(n_dead, dtype=np.float32),
                "step",
            )
            cols = np.arange(len(dead)) if self.explicit_outputs else np.zeros(len(dead), np.int64)
            units = sparse.csr_array(
                (np.ones(len(dead), dtype=np.int8), (np.arange(len(dead)), cols)),
                shape=(len(dead), n_dead),
            )
            blocks.append((dead, silent, units))
        layer, output_code = _assemble(
            norm.n_gates, blocks, any_of=signed, explicit=self.explicit_outputs
        )
        extras: dict[str, Any] = {"resolved": p, "overlapping_gates": overlaps}
        if len(pool_stats) == 1 and not len(signed) and not len(dead):
            extras.update({k: v for k, v in pool_stats[0].items() if k not in ("need", "gates")})
        else:
            extras["pool_stats"] = pool_stats
            for st in pool_stats:
                if "repair" in st:
                    extras["repair"] = st["repair"]
        extras["private_units"] = int(p["private_units"])
        # The home choice as made (home=None is automatic): the record rebuilds the same network.
        params = {**self.get_params(), "home": bool(home)}
        return Network([layer], input_code, output_code, task, self.name, params, extras=extras)


def _assemble(
    n_gates: int,
    blocks: list[tuple[np.ndarray, Layer, sparse.csr_array]],
    any_of: np.ndarray,
    explicit: bool,
) -> tuple[Layer, Code]:
    """One layer from the blocks (pools, private units, the silent unit) and the output code.

    Each block is (gates, layer, unit membership of those gates). Gates in ``any_of`` read
    true when any of their units fires (a per-feature need of 1); the others need all.
    """
    rows, cols, offset = [], [], 0
    for sel, layer, units in blocks:
        coo = units.tocoo()
        rows.append(sel[coo.coords[0]])
        cols.append(coo.coords[1] + offset)
        offset += layer.n_out
    r = np.concatenate(rows) if rows else np.zeros(0, np.int64)
    c = np.concatenate(cols) if cols else np.zeros(0, np.int64)
    membership = sparse.csr_array((np.ones(len(r), dtype=np.int8), (r, c)), shape=(n_gates, offset))
    if len(blocks) == 1:
        layer = blocks[0][1]
    else:
        dtype = np.result_type(*(b[1].weight.dtype for b in blocks))
        layer = Layer(
            sparse.vstack(
                [sparse.csr_array(b[1].weight, dtype=dtype) for b in blocks], format="csr"
            ),
            np.concatenate([b[1].bias.astype(dtype) for b in blocks]),
            "step",
        )
    lengths = np.diff(membership.indptr)
    if explicit and not len(any_of) and (lengths == 1).all() and offset == n_gates:
        # One unit per gate: reorder the units into gate order, an explicit output code.
        perm = membership.indices  # the unit of each gate
        layer = Layer(sparse.csr_array(layer.weight[perm]), layer.bias[perm], "step")
        return layer, ExplicitCode(n_gates)
    if len(any_of):
        need = lengths.copy()
        need[any_of] = 1
        return layer, BloomCode(membership, need=need)
    return layer, BloomCode(membership)


class Superposed3(_Certified):
    """Three-layer superposed network: input code -> hidden threshold layer -> output code.

    Its explicit variants keep the hidden layer, so they are never cheaper than the explicit
    network the build pipeline falls back to.
    """

    name = "superposed3"
    capabilities = Capabilities(
        max_depth=1, max_arity=(("xor", 2),), tags=frozenset({"superposed", "certified"})
    )

    @classmethod
    def _op_support(cls, task: Task) -> str | None:
        bad = (task.ops == OP_CODE["xor"]) & (task.arity > 2)
        if bad.any():
            g = int(np.flatnonzero(bad)[0])
            return f"gate {g}: xor of {int(task.arity[g])} inputs (2-input xor only)"
        return None

    def __init__(
        self,
        ell: int | None = None,
        ell_out: int | None = None,
        t: int | None = None,
        n_in: int | None = None,
        n_hidden: int | None = None,
        n_out: int | None = None,
        failure: float = DEFAULT_FAILURE,
        heavy_share: float = 0.3,
        width_scale: float = 1.0,
        explicit_inputs: bool = False,
        explicit_outputs: bool = False,
    ) -> None:
        _validate(locals())
        self.ell = ell
        self.ell_out = ell_out
        self.t = t
        self.n_in = n_in
        self.n_hidden = n_hidden
        self.n_out = n_out
        self.failure = failure
        self.heavy_share = heavy_share
        self.width_scale = width_scale
        self.explicit_inputs = explicit_inputs
        self.explicit_outputs = explicit_outputs

    def resolved(self, task: Task) -> dict[str, Any]:
        """The parameters actually used for ``task``.

        The hidden layer is sized like the two-layer output layer (scaled by the number of
        threshold parts). The output layer is sized by its own density rule: unit o reads the
        hidden units of its gates, a fraction f_o of the hidden layer; with F hidden units on
        (the true parts' t units each, times four for false firings), a gate's units fire falsely
        with probability P(Bin(F, f_o) >= t)^l', which must stay below the failure target
        over all m' gates. Then n_out = l' t m' / (n_hidden ln(1/(1 - f_o))).
        """
        auto = auto_params(task, self.failure, self.ell, self.t, self.explicit_inputs)
        scale = self.width_scale
        t = self.t or auto.ell_out
        ell_out = 1 if self.explicit_outputs else (self.ell_out or auto.ell_out)
        n_parts = task.n_gates + int(np.isin(task.ops, [OP_CODE["xor"], OP_CODE["andnot"]]).sum())
        n_hidden = int(
            self.n_hidden
            or max(4 * t, round(auto.n_out * scale * np.sqrt(n_parts / max(task.n_gates, 1))))
        )
        # Hidden parts on for an input: every gate reading an active feature may be (OR/COPY),
        # plus the pairs among the active features.
        any_of = np.isin(task.ops, [OP_CODE["or"], OP_CODE["copy"]])
        per_feature = float(task.arity[any_of].sum()) / max(task.features, 1)
        true_parts = max(1, task.sparsity * (task.sparsity - 1) // 2) + math.ceil(
            task.sparsity * per_feature
        )
        fired = 4 * t * true_parts
        f_out = 0.5
        for _ in range(40):
            p_unit = float(special.bdtrc(t - 1, fired, f_out))
            if task.n_gates * p_unit**ell_out <= self.failure:
                break
            f_out *= 0.85
        n_out_auto = ell_out * t * task.n_gates / (n_hidden * -np.log1p(-f_out))
        n_out = (
            task.n_gates
            if self.explicit_outputs
            else int(self.n_out or max(4 * ell_out, round(n_out_auto * scale)))
        )
        return {
            "ell": 1 if self.explicit_inputs else auto.ell,
            "t": t,
            "ell_out": ell_out,
            "n_in": task.features
            if self.explicit_inputs
            else int(self.n_in or max(4 * auto.ell, round(auto.n_in * scale))),
            "n_hidden": n_hidden,
            "n_out": n_out,
            "output_fan_in": f_out,
            "auto": auto.as_dict(),
        }

    def build_once(self, task: Task, rng: np.random.Generator) -> Network:
        gates = _check_one_level(task, self.name)
        parts = gate_parts(task, gates, signed=True)
        p = self.resolved(task)
        input_code, operand_code, overlaps = input_code_for(
            task, gates, p["n_in"], p["ell"], self.explicit_inputs, rng
        )
        hidden, hidden_units, stats = _hidden_layer(
            parts, operand_code, p, self.heavy_share, task, rng
        )
        if self.explicit_outputs:
            out_units = sparse.csr_array(
                sparse.eye_array(task.n_gates, dtype=np.int8, format="csr")
            )
        else:
            out_units = _output_units(task, p["n_out"], p["ell_out"], rng)
        signed = sparse.csr_array(
            (parts.sign.astype(np.float32), (parts.gate, np.arange(len(parts)))),
            shape=(task.n_gates, len(parts)),
        )
        # W2[o, j]: +1 if hidden unit j belongs to a positive part of a gate coded on o, -1 if to
        # a subtracted part (each hidden unit counted once per output unit).
        w2 = sparse.csr_array(
            out_units.T.astype(np.float32) @ signed @ hidden_units.astype(np.float32)
        )
        w2.data = np.sign(w2.data)
        w2.eliminate_zeros()
        theta = np.full(w2.shape[0], float(p["t"]), dtype=np.float32)
        private = _private_units(task, out_units)
        # A private output unit (xor / andnot) reads its gate's two private hidden units:
        # PRESENT/OR minus AND, firing iff the difference is at least 1.
        theta[private] = 1.0
        out_layer = Layer(w2, -theta, "step")
        output_code: Code = (
            ExplicitCode(task.n_gates) if self.explicit_outputs else BloomCode(out_units)
        )
        extras = {"resolved": p, "overlapping_gates": overlaps, **stats}
        return Network(
            [hidden, out_layer],
            input_code,
            output_code,
            task,
            self.name,
            self.get_params(),
            extras=extras,
        )
