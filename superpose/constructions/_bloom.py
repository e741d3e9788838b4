"""Shared machinery of the superposed constructions: operand codes, unit pools, threshold layers.

The pieces, in the order a construction uses them:

1. :func:`disjoint_code` -- a Bloom code for the operands, redrawn until the operands of
   every gate have disjoint codes (overlap would let a present pair fall short of 2l).
2. :func:`read_sets` -- for each gate, the union of its operands' codes (the bits it reads).
3. :func:`allocate_pools` -- unit pools: one shared pool per threshold class plus one private
   block per heavy feature (influence channels), sized in proportion to the load they carry.
4. :func:`threshold_layer` -- unit o reads the union of the read sets of the gates assigned to
   it and fires iff at least theta_o of those bits are on; theta_o is the smallest threshold
   among its gates, so no gate can miss its own units (no false negatives).
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np
from scipy import sparse

from superpose.codes import BloomCode, random_sets, rs_code_rows, rs_params
from superpose.constructions.channels import Routing
from superpose.errors import SuperposeError
from superpose.network import Layer
from superpose.task import Task


def operand_matrix(task: Task, gates: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(gate position, operand node, operand position) for every operand of ``gates``."""
    return task.operand_arrays(gates)


def disjoint_code(
    task: Task,
    gates: np.ndarray,
    n_nodes: int,
    width: int,
    length: int,
    rng: np.random.Generator,
    rounds: int = 30,
    kind: str = "random",
) -> tuple[BloomCode, int]:
    """A Bloom code for ``n_nodes`` operand nodes in which every gate's operands are disjoint.

    ``kind="rs"``: Reed-Solomon codes (:func:`superpose.codes.rs_code_rows`, any two codes
    share at most one unit); a redrawn code takes the next unused polynomial.

    Conflicting gates get the code of their less influential operand redrawn, for up to
    ``rounds`` rounds; returns the code and the number of gates still overlapping (their
    units get a threshold lowered by the overlap, so they stay free of false negatives).
    """
    if length * 2 > width:
        raise SuperposeError(f"input width {width} is too small for codes of {length} neurons")
    if kind == "rs":
        q = rs_params(width, length, n_nodes)
        codes, spare = rs_code_rows(n_nodes, width, length, rng, spare=q * q - n_nodes)
        next_spare = 0
    else:
        codes = _code_rows(n_nodes, width, length, rng)
    g_of, node, _ = operand_matrix(task, gates)
    influence = np.bincount(node, minlength=n_nodes)
    arity = task.arity[gates]
    starts = np.cumsum(arity) - arity
    remaining = 0
    for _ in range(rounds):
        bad_gates, victims = _overlapping(codes, node, starts, arity, influence)
        remaining = len(bad_gates)
        if remaining == 0:
            break
        victims = np.unique(victims)
        if kind == "rs":
            take = min(len(victims), len(spare) - next_spare)
            victims = victims[:take]
            codes[victims] = spare[next_spare : next_spare + take]
            next_spare += take
        else:
            codes[victims] = _code_rows(len(victims), width, length, rng)
    indptr = np.arange(0, n_nodes * length + 1, length, dtype=np.int64)
    m = sparse.csr_array(
        (
            np.ones(n_nodes * length, dtype=np.int8),
            np.sort(codes, axis=1).ravel().astype(np.int32),
            indptr,
        ),
        shape=(n_nodes, width),
    )
    return BloomCode(m), remaining


def _code_rows(n: int, width: int, length: int, rng: np.random.Generator) -> np.ndarray:
    rows = random_sets(n, width, length, rng)
    return rows.indices.reshape(n, length).astype(np.int64)


def _overlapping(
    codes: np.ndarray,
    node: np.ndarray,
    starts: np.ndarray,
    arity: np.ndarray,
    influence: np.ndarray,
) -> tuple[np.ndarray, np.ndarray]:
    """Gates whose operand codes intersect, and for each meeting the operand to redraw.

    One sort of every (gate, bit) an operand code puts down: two operands of a gate meet
    where the same (gate, bit) appears twice, so the cost is linear in the operands (a gate
    over a thousand inputs is one pass, not half a million pairs).
    """
    del starts  # the operands of each gate are consecutive in ``node``
    length = codes.shape[1]
    gate = np.repeat(np.repeat(np.arange(len(arity)), arity), length)
    bit = codes[node].ravel()
    # One stable sort of the key gate * span + bit: the order of np.lexsort((bit, gate)),
    # in one pass instead of two
    span = int(bit.max(initial=0)) + 1
    order = np.argsort(gate * span + bit, kind="stable")
    meet = (gate[order][1:] == gate[order][:-1]) & (bit[order][1:] == bit[order][:-1])
    if not meet.any():
        return np.zeros(0, dtype=np.int64), np.zeros(0, dtype=np.int64)
    a = node[order[:-1][meet] // length]
    b = node[order[1:][meet] // length]
    lighter = np.where(influence[a] <= influence[b], a, b)
    return np.unique(gate[order[:-1][meet]]), lighter


def read_sets(
    code: BloomCode, g_of: np.ndarray, node: np.ndarray, n_gates: int
) -> sparse.csr_array:
    """(gates, width) 0/1: the union of the codes of each gate's listed operands."""
    sel = sparse.csr_array(
        (np.ones(len(node), dtype=np.int32), (g_of, node)), shape=(n_gates, code.n_features)
    )
    r = sparse.csr_array(sel @ code.membership.astype(np.int32))
    r.data[:] = 1
    return r


@dataclass(frozen=True)
class Pools:
    """Unit ranges: ``start[p]:stop[p]`` is pool p; ``pool_of_gate[g]`` says where gate g lives."""

    start: np.ndarray
    stop: np.ndarray
    pool_of_gate: np.ndarray
    names: list[str]

    @property
    def width(self) -> int:
        return int(self.stop[-1]) if len(self.stop) else 0

    def sizes(self) -> np.ndarray:
        return self.stop - self.start


def pool_keys(class_of_gate: np.ndarray, routing: Routing) -> tuple[np.ndarray, np.ndarray]:
    """The (class, heavy owner or -1) of every pool, sorted, and the pool of every gate."""
    key_owner = np.where(routing.owner >= 0, routing.owner, -1)
    keys = np.stack([class_of_gate.astype(np.int64), key_owner], axis=1)
    uniq, pool_of_gate = np.unique(keys, axis=0, return_inverse=True)
    return uniq.reshape(-1, 2), pool_of_gate.ravel()


def allocate_pools(
    class_of_gate: np.ndarray,
    routing: Routing,
    load: np.ndarray,
    width: int,
    min_size: int,
    floor: np.ndarray | None = None,
) -> Pools:
    """Split ``width`` units into one pool per (class, shared) and one per (class, heavy owner).

    Each pool gets units in proportion to the load of its gates (code length times the
    bits each gate adds to its units' read sets), and at least ``min_size`` and its
    ``floor`` (per pool, in :func:`pool_keys` order; e.g. the width its own hubs call for).
    """
    uniq, pool_of_gate = pool_keys(class_of_gate, routing)
    pool_load = np.bincount(pool_of_gate, weights=load, minlength=len(uniq))
    total = pool_load.sum()
    sizes = np.maximum(min_size, np.floor(width * pool_load / max(total, 1e-12))).astype(np.int64)
    if floor is not None:
        sizes = np.maximum(sizes, floor.astype(np.int64))
    # Pools below their minimum are raised to it; the layer then grows past `width`.
    # Hand the rounding remainder to the shared pools.
    shortfall = width - int(sizes.sum())
    if shortfall > 0:
        sizes[int(np.argmax(pool_load))] += shortfall
    stop = np.cumsum(sizes)
    names = [f"class{c}:" + ("shared" if o < 0 else f"block{o}") for c, o in uniq.tolist()]
    return Pools(stop - sizes, stop, pool_of_gate, names)


def assign_units(
    pools: Pools,
    length: int,
    rng: np.random.Generator,
    region_of: np.ndarray | None = None,
    region_share: float = 0.1,
) -> sparse.csr_array:
    """(gates, width) 0/1: each gate gets ``length`` distinct random units of its own pool.

    Gates with ``region_of[g] = h >= 0`` draw their units from feature h's region: a random
    window of ``region_share`` of their pool (the same window for all of h's gates), so h's
    code enters only that share of the pool's read sets.
    """
    n = len(pools.pool_of_gate)
    pool_size = pools.sizes()[pools.pool_of_gate]
    if (pool_size < length).any():
        raise SuperposeError(f"a unit pool has fewer than {length} units; widen the layer")
    span = pool_size.copy()
    offset = np.zeros(n, dtype=np.int64)
    if region_of is not None and (region_of >= 0).any():
        has = region_of >= 0
        owners, inverse = np.unique(region_of[has], return_inverse=True)
        owner_offset = rng.integers(0, 2**62, len(owners))
        size = np.maximum(np.ceil(region_share * pool_size[has]).astype(np.int64), 2 * length)
        span[has] = np.minimum(size, pool_size[has])
        offset[has] = owner_offset[inverse] % pool_size[has]
    cols = np.empty((n, length), dtype=np.int64)
    for size in np.unique(span):
        sel = np.flatnonzero(span == size)
        local = random_sets(len(sel), int(size), length, rng).indices.reshape(len(sel), length)
        local = (local + offset[sel][:, None]) % pool_size[sel][:, None]
        cols[sel] = local + pools.start[pools.pool_of_gate[sel]][:, None]
    cols.sort(axis=1)
    indptr = np.arange(0, n * length + 1, length, dtype=np.int64)
    return sparse.csr_array(
        (np.ones(n * length, dtype=np.int8), cols.ravel().astype(np.int32), indptr),
        shape=(n, pools.width),
    )


def threshold_layer(
    units: sparse.csr_array,
    reads: sparse.csr_array,
    gate_threshold: np.ndarray,
    dtype: type = np.float32,
    weight_two: np.ndarray | None = None,
) -> tuple[Layer, np.ndarray]:
    """Step units: unit o reads the union of ``reads`` over its gates, threshold = min over them.

    Bits read by a gate flagged in ``weight_two`` weigh 2 (and its threshold must count
    them twice). Returns the layer and each unit's fan-in (number of inputs it reads).
    """
    n_units = units.shape[1]
    w = sparse.csr_array(units.T.astype(np.int32) @ reads.astype(np.int32))
    w.data = np.ones(len(w.data), dtype=dtype)
    if weight_two is not None and weight_two.any():
        doubled = sparse.csr_array(reads.astype(np.int32).multiply(weight_two[:, None]))
        two = sparse.csr_array(units.T.astype(np.int32) @ sparse.csr_array(doubled, dtype=np.int32))
        two.data = np.ones(len(two.data), dtype=dtype)
        w = sparse.csr_array(w + two)  # 1 + 1 on bits a doubled gate reads
    w.sort_indices()
    theta = np.full(n_units, np.inf)
    coo = units.tocoo()
    np.minimum.at(theta, coo.coords[1], gate_threshold[coo.coords[0]].astype(np.float64))
    theta[np.isinf(theta)] = 1.0  # a unit with no gate never fires
    fan_in = np.diff(w.indptr)
    return Layer(sparse.csr_array(w), (-theta).astype(dtype), "step"), fan_in


def log_ratio(fraction: float) -> float:
    """ln(1 / (1 - f)): how much load a fan-in fraction f carries per (input x output) unit pair."""
    return -math.log1p(-fraction)
