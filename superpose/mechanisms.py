"""Ground-truth mechanisms: which units and weights of a network implement which gate.

A network built by superpose is known weight by weight, so the question an interpretability
method tries to answer ("which parts of the model compute feature g?") has an exact answer
here. For gate ``g`` we take

* its **targets**: the units that carry ``g`` -- its output-code units when ``g`` is an
  output, else (deep ``circuit`` networks) its units in the code of the first stage that
  holds it, plus its xor / andnot detector unit there;
* its **support**: the input features ``g`` depends on (its operands, or for a deep gate the
  leaves of its cone), and their units in the input code;
* its **mechanism**: every unit and non-zero weight on a path from a support unit to a
  target unit. ``masks[l]`` is that set of weights in layer ``l``.

The mechanism is *sufficient* by construction: every unit satisfies ``act(bias) = 0``, so on an
input whose active features all lie in the support, a unit off every path is 0 and a weight
off every path either reads a 0 or feeds no target. Zeroing all weights outside the masks
leaves the gate's target units, hence its decoded value, unchanged on those inputs
(``tests/test_mechanisms.py`` checks it). It is not claimed minimal.

A weight serves every gate whose mask holds it: the network's weight matrix is the **union**
of the gates' masks, not a sum of per-gate matrices (see ``docs/MECHANISMS.md``).

Everything is computed for all gates at once from sparse incidence arrays: per layer, the
candidate (gate, unit, unit) triples are the gate's units above times its units below, looked
up in the layer's sorted CSR keys; nothing loops over gates in Python.

Example:
    >>> import numpy as np, superpose as sp
    >>> net = sp.build(sp.families.pairs(40, 200, np.random.default_rng(0)), "naive")
    >>> mech = of(net)
    >>> g = mech.gate(3)
    >>> g.operands.tolist() == net.task.operands(3).tolist(), len(g.masks) == len(net.layers)
    (True, True)
    >>> 0.0 <= mech.summary()["shared_weight_share"] <= 1.0
    True
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import numpy as np
from scipy import sparse

from superpose.codes import BloomCode, Code, ExplicitCode, LinearCode
from superpose.errors import SuperposeError

PAIR_BLOCK = 2**23
"""Most candidate (gate, unit, unit) triples materialised at once."""


def code_units(code: Code) -> sparse.csr_array:
    """(features, width) 0/1 incidence: the units of each feature in ``code``.

    Example:
        >>> code_units(ExplicitCode(3)).toarray().astype(int).tolist()
        [[1, 0, 0], [0, 1, 0], [0, 0, 1]]
    """
    if isinstance(code, ExplicitCode):
        return sparse.eye_array(code.n_features, format="csr", dtype=np.int8)
    if isinstance(code, BloomCode):
        return sparse.csr_array(code.membership, dtype=np.int8)
    if isinstance(code, LinearCode):
        return sparse.csr_array(code.matrix.T != 0, dtype=np.int8)
    raise SuperposeError(f"mechanisms: unknown code kind {code.kind!r}")


def _pattern(rows: np.ndarray, cols: np.ndarray, shape: tuple[int, int]) -> sparse.csr_array:
    out = sparse.csr_array((np.ones(len(rows), dtype=np.int8), (rows, cols)), shape=shape)
    out.sum_duplicates()
    out.data[:] = 1
    return out


def _bool(a: Any) -> sparse.csr_array:
    out = sparse.csr_array(a)
    out.sum_duplicates()
    out.eliminate_zeros()
    out = sparse.csr_array(out, dtype=np.int8)
    out.data[:] = 1
    out.sort_indices()
    return out


def supports(task: Any) -> sparse.csr_array:
    """(gates, features) 0/1: the input features each gate depends on (leaves of its cone).

    One sparse product per level of the task, never a loop over gates.

    Example:
        >>> from superpose import Task
        >>> t = Task.from_gates(4, 2, [("and", [0, 1]), ("or", [4, 3])])
        >>> supports(t).toarray().astype(int).tolist()
        [[1, 1, 0, 0], [1, 1, 0, 1]]
    """
    m, n = task.features, task.n_gates
    gate_of = np.repeat(np.arange(n, dtype=np.int64), task.arity)
    ins = task.gate_inputs.astype(np.int64)
    if n == 0 or int(ins.max(initial=-1)) < m:
        return _pattern(gate_of, ins, (n, m))
    # node_sup: (nodes, features); inputs are their own support, gates filled level by level.
    node_sup = sparse.vstack(
        [sparse.eye_array(m, format="csr", dtype=np.int8), sparse.csr_array((n, m), dtype=np.int8)],
        format="csr",
    )
    level = task.gate_level
    for lev in range(1, task.depth + 1):
        gates = np.flatnonzero(level == lev)
        sel = np.isin(gate_of, gates)
        reads = _pattern(gate_of[sel], ins[sel], (n, m + n))
        new = _bool(reads @ node_sup)  # rows of this level's gates only
        place = _pattern(m + gates, gates, (m + n, n))
        node_sup = _bool(node_sup + place @ new)
    return _bool(node_sup[m:])


def _match(
    above: sparse.csr_array, below: sparse.csr_array, weight: sparse.csr_array
) -> tuple[np.ndarray, np.ndarray]:
    """Every (row r, weight position p) with W[i, j] != 0 at p, i in above[r], j in below[r].

    ``above`` is (rows, n_out), ``below`` (rows, n_in) and ``weight`` (n_out, n_in) in CSR with
    sorted indices; positions index ``weight.data``. Enumerates the candidate pairs of each row
    in blocks of :data:`PAIR_BLOCK` and looks their keys up in the weight's sorted keys.
    """
    n_out, n_in = weight.shape
    w_rows = np.repeat(np.arange(n_out, dtype=np.int64), np.diff(weight.indptr))
    w_keys = w_rows * n_in + weight.indices.astype(np.int64)
    na = np.diff(above.indptr).astype(np.int64)
    nb = np.diff(below.indptr).astype(np.int64)
    pairs = na * nb
    out_r: list[np.ndarray] = []
    out_p: list[np.ndarray] = []
    cum = np.concatenate([[0], np.cumsum(pairs)])
    start = 0
    n_rows = len(pairs)
    while start < n_rows:
        # as many rows as fit in one block (at least one)
        stop = int(np.searchsorted(cum, cum[start] + PAIR_BLOCK, side="right")) - 1
        stop = min(max(stop, start + 1), n_rows)
        rows = np.arange(start, stop, dtype=np.int64)
        cnt = pairs[start:stop]
        total = int(cnt.sum())
        if total:
            r = np.repeat(rows, cnt)
            k = np.arange(total, dtype=np.int64) - np.repeat(cum[start:stop] - cum[start], cnt)
            nb_r = nb[r]
            i = above.indices[above.indptr[r] + k // nb_r].astype(np.int64)
            j = below.indices[below.indptr[r] + k % nb_r].astype(np.int64)
            keys = i * n_in + j
            pos = np.searchsorted(w_keys, keys)
            pos_c = np.minimum(pos, max(len(w_keys) - 1, 0))
            hit = (pos < len(w_keys)) & (w_keys[pos_c] == keys) if len(w_keys) else pos < 0
            out_r.append(r[hit])
            out_p.append(pos[hit])
        start = stop
    if not out_r:
        return np.zeros(0, np.int64), np.zeros(0, np.int64)
    return np.concatenate(out_r), np.concatenate(out_p)


@dataclass
class GateMechanism:
    """The mechanism of one gate (see the module docstring for the definition).

    ``units[l]``: units of level ``l`` on the gate's paths (level 0 = input layer, level ``l``
    = output of ``net.layers[l - 1]``). ``masks[l]``: 0/1 ``csr_array`` of ``layers[l]``'s
    shape, the weights on those paths; ``shared[l]``: the part of ``masks[l]`` some other gate
    uses too (``private[l]`` = the rest). Layers above the gate's target level have empty
    masks.
    """

    gate: int
    node: int
    op: str
    operands: np.ndarray
    support: np.ndarray
    target_level: int
    targets: np.ndarray
    units: list[np.ndarray]
    masks: list[sparse.csr_array]
    shared: list[sparse.csr_array]

    @property
    def private(self) -> list[sparse.csr_array]:
        return [sparse.csr_array(m - s) for m, s in zip(self.masks, self.shared, strict=True)]

    def n_weights(self) -> int:
        return int(sum(m.nnz for m in self.masks))

    def n_shared(self) -> int:
        return int(sum(s.nnz for s in self.shared))

    def __repr__(self) -> str:
        return (
            f"GateMechanism(gate={self.gate}, op={self.op!r}, operands={self.operands.tolist()}, "
            f"target_level={self.target_level}, targets={len(self.targets)} units, "
            f"weights={self.n_weights()} ({self.n_shared()} shared))"
        )


@dataclass
class Mechanisms:
    """Mechanisms of every gate of a network, as sparse incidence arrays.

    ``target_level[g]``: the level of ``g``'s target units (-1: the network does not carry
    ``g``). ``units[l]``: (gates, width of level l) 0/1, the units on each gate's paths.
    ``masks[l]``: (gates, nnz of layer l) 0/1, columns are positions in ``weights[l].data``
    (layer l's weights in canonical CSR, stored zeros dropped: the same order as
    ``net.layers[l].weight.data`` whenever that holds no explicit zero). ``weight_users[l]``:
    per non-zero weight of layer ``l``, how many gates' masks hold it.
    """

    net: Any
    target_level: np.ndarray
    targets: sparse.csr_array
    support: sparse.csr_array
    units: list[sparse.csr_array]
    masks: list[sparse.csr_array]
    weight_users: list[np.ndarray] = field(default_factory=list)
    weights: list[sparse.csr_array] = field(default_factory=list)

    @property
    def n_gates(self) -> int:
        return len(self.target_level)

    def gate(self, g: int) -> GateMechanism:
        """The mechanism of gate ``g`` (0-based gate index, node id ``features + g``)."""
        task = self.net.task
        if not 0 <= int(g) < task.n_gates:
            raise SuperposeError(f"gate {g} does not exist (the task has {task.n_gates} gates)")
        g = int(g)
        masks, shared = [], []
        for w, mk, users in zip(self.weights, self.masks, self.weight_users, strict=True):
            pos = mk.indices[mk.indptr[g] : mk.indptr[g + 1]].astype(np.int64)
            rows = np.searchsorted(w.indptr, pos, side="right") - 1
            cols = w.indices[pos].astype(np.int64)
            masks.append(_pattern(rows, cols, w.shape))
            sh = users[pos] >= 2
            shared.append(_pattern(rows[sh], cols[sh], w.shape))
        units = [u.indices[u.indptr[g] : u.indptr[g + 1]].astype(np.int64) for u in self.units]
        return GateMechanism(
            gate=g,
            node=task.features + g,
            op=task.op_name(g),
            operands=task.operands(g).copy(),
            support=self.support.indices[
                self.support.indptr[g] : self.support.indptr[g + 1]
            ].astype(np.int64),
            target_level=int(self.target_level[g]),
            targets=self.targets.indices[
                self.targets.indptr[g] : self.targets.indptr[g + 1]
            ].astype(np.int64),
            units=units,
            masks=masks,
            shared=shared,
        )

    def summary(self) -> dict[str, Any]:
        """Shared and private weights and units, per layer and in total.

        ``shared_weight_share``: non-zero weights that serve two or more gates, over all
        non-zero weights; ``unused`` weights lie on no gate's path (e.g. carries of nodes no
        gate needs, or a unit that reads a feature without serving a gate of it).
        """
        layers = []
        tot = {"nonzero": 0, "used": 0, "shared": 0, "private": 0}
        for i, users in enumerate(self.weight_users):
            row = {
                "layer": i,
                "nonzero": int(len(users)),
                "used": int((users >= 1).sum()),
                "shared": int((users >= 2).sum()),
                "private": int((users == 1).sum()),
                "max_gates_per_weight": int(users.max(initial=0)),
                "mean_gates_per_used_weight": float(users[users >= 1].mean())
                if (users >= 1).any()
                else 0.0,
            }
            layers.append(row)
            for k in tot:
                tot[k] += row[k]
        unit_levels = []
        for lev, u in enumerate(self.units):
            per_unit = np.bincount(u.indices, minlength=u.shape[1]) if u.nnz else np.zeros(0)
            unit_levels.append(
                {
                    "level": lev,
                    "width": int(u.shape[1]),
                    "used": int((per_unit >= 1).sum()),
                    "shared": int((per_unit >= 2).sum()),
                }
            )
        nz = max(tot["nonzero"], 1)
        carried = self.target_level >= 0
        sizes = np.zeros(self.n_gates, dtype=np.int64)
        for mk in self.masks:
            sizes += np.diff(mk.indptr)
        return {
            "gates": self.n_gates,
            "gates_carried": int(carried.sum()),
            "weights": tot["nonzero"],
            "weights_used": tot["used"],
            "weights_shared": tot["shared"],
            "weights_private": tot["private"],
            "shared_weight_share": tot["shared"] / nz,
            "shared_of_used_share": tot["shared"] / max(tot["used"], 1),
            "mean_mask_weights": float(sizes[carried].mean()) if carried.any() else 0.0,
            "layers": layers,
            "units": unit_levels,
        }


def stage_codes(net: Any) -> list[tuple[np.ndarray, BloomCode, np.ndarray]] | None:
    """A deep (``circuit``) network's per-layer codes, or None for other networks.

    Stage k is the code of the output of ``net.layers[k]``: (node ids it holds, their Bloom
    code, each node's xor / andnot detector unit or -1). Saved with the network; a file
    written before they were saved gets them rebuilt from its task, parameters and seed.

    Example:
        >>> import numpy as np, superpose as sp
        >>> task = sp.families.layered_circuit(20, 8, 2, np.random.default_rng(0))
        >>> net = sp.build(task, "circuit")
        >>> nodes, code, detectors = stage_codes(net)[0]
        >>> code.width == net.layers[0].n_out
        True
    """
    codes = getattr(net, "stage_codes", None)
    if codes is None and net.construction == "circuit":
        from superpose.stage_check import stage_codes as rebuild

        try:
            codes = rebuild(net)
        except SuperposeError:
            return None
    if codes is None:
        return None
    out = []
    for entry in codes:
        nodes, code = np.asarray(entry[0], dtype=np.int64), entry[1]
        inhib = entry[2] if len(entry) > 2 else np.full(len(nodes), -1, dtype=np.int64)
        out.append((nodes, code, np.asarray(inhib, dtype=np.int64)))
    return out


def _targets(net: Any) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """Each gate's target level, and the (gate, level, unit) triples of its target units."""
    task = net.task
    m, n = task.features, task.n_gates
    n_levels = len(net.layers)
    level = np.full(n, -1, dtype=np.int64)
    parts: list[tuple[np.ndarray, np.ndarray, np.ndarray]] = []  # (gate, level, unit)
    out_units = code_units(net.output_code).tocoo()
    outputs = task.outputs.astype(np.int64)
    o_node = outputs[out_units.coords[0]]
    keep = o_node >= m
    gate_o = o_node[keep] - m
    level[np.unique(gate_o)] = n_levels
    parts.append((gate_o, np.full(len(gate_o), n_levels), out_units.coords[1][keep]))
    codes = stage_codes(net)
    if codes is not None:
        for k in range(len(codes) - 1, -1, -1):  # first stage holding a gate wins
            nodes, code, inhib = codes[k]
            held = nodes >= m
            fresh = held.copy()
            fresh[held] = level[nodes[held] - m] != n_levels  # outputs keep the output code
            if not fresh.any():
                continue
            rows = np.flatnonzero(fresh)
            level[nodes[rows] - m] = k + 1
            c = sparse.csr_array(code_units(code)[rows]).tocoo()
            g = nodes[rows][c.coords[0]] - m
            u = c.coords[1]
            det = inhib[rows] >= 0
            if det.any():
                g = np.concatenate([g, nodes[rows][det] - m])
                u = np.concatenate([u, inhib[rows][det]])
            parts.append((g, np.full(len(g), k + 1), u))
    g_all = np.concatenate([p[0] for p in parts]).astype(np.int64)
    l_all = np.concatenate([p[1] for p in parts]).astype(np.int64)
    u_all = np.concatenate([p[2] for p in parts]).astype(np.int64)
    keep = level[g_all] == l_all  # a gate's units at its own target level only
    g_all, l_all, u_all = g_all[keep], l_all[keep], u_all[keep]
    return level, g_all, l_all, u_all


def of(net: Any) -> Mechanisms:
    """The mechanisms of every gate of ``net`` (cached on the network).

    Example:
        >>> import numpy as np, superpose as sp
        >>> net = sp.build(sp.Task.from_gates(3, 2, [("and", [0, 1]), ("or", [1, 2])]), "naive")
        >>> of(net).summary()["weights_shared"] >= 0
        True
    """
    resting = [i for i, lay in enumerate(net.layers) if lay.resting]
    if resting:
        raise SuperposeError(
            f"layer {resting[0]} has units that fire on an all-zero input (biases): a gate's "
            "paths from its inputs no longer bound what it reads, so no mechanism is defined"
        )
    cached = getattr(net, "_mechanisms", None)
    if cached is not None and cached[0] is net.layers[0]:
        return cached[1]
    task = net.task
    n = task.n_gates
    target_level, g_all, l_all, u_all = _targets(net)
    widths = [net.input_code.width] + [lay.n_out for lay in net.layers]
    n_levels = len(net.layers)
    support = supports(task)
    s0 = _bool(support @ code_units(net.input_code))
    weights = []
    for lay in net.layers:
        w = sparse.csr_array(lay.weight, copy=True)
        w.sum_duplicates()
        w.eliminate_zeros()
        w.sort_indices()
        weights.append(w)
    # Backward cones B_l for every gate (rows of gates targeting levels >= l), level by level.
    back: list[sparse.csr_array | None] = [None] * (n_levels + 1)
    cur = sparse.csr_array((n, widths[n_levels]), dtype=np.int8)
    for lev in range(n_levels, 0, -1):
        sel = l_all == lev
        here = _pattern(g_all[sel], u_all[sel], (n, widths[lev]))
        cur = _bool(cur + here) if cur.nnz else here
        back[lev] = cur
        if lev > 1 and cur.nnz:
            wp = sparse.csr_array(weights[lev - 1], copy=True)
            wp.data = np.ones(len(wp.data), dtype=np.float32)
            cur = _bool(sparse.csr_array(cur, dtype=np.float32) @ wp)
        elif lev > 1:
            cur = sparse.csr_array((n, widths[lev - 1]), dtype=np.int8)
    # Forward: units on paths, and the weights joining them (the masks).
    units: list[sparse.csr_array] = [sparse.csr_array((n, w), dtype=np.int8) for w in widths]
    masks: list[sparse.csr_array] = []
    below = s0
    for lev in range(1, n_levels + 1):
        w = weights[lev - 1]
        r, p = _match(back[lev], below, w)
        mask = _pattern(r, p, (n, w.nnz))
        masks.append(mask)
        w_rows = np.searchsorted(w.indptr, p, side="right") - 1
        above = _pattern(r, w_rows, (n, widths[lev]))
        if lev == 1:
            units[0] = _pattern(r, w.indices[p].astype(np.int64), (n, widths[0]))
        units[lev] = above
        below = above
    users = [np.bincount(mk.indices, minlength=mk.shape[1]).astype(np.int64) for mk in masks]
    tg = _pattern(g_all, u_all, (n, max(widths)))
    mech = Mechanisms(net, target_level, tg, support, units, masks, users, weights)
    net._mechanisms = (net.layers[0], mech)
    return mech


def additive(net: Any) -> Any:
    """The same function from a network whose weights are a *sum* of per-gate components.

    For a one-level network whose weights are the union of its gates' masks (the
    ``superposed`` construction of monotone gates: output unit o reads, with weight 1, every
    input unit of every gate whose code holds o), each output unit is split into copies whose
    gates read disjoint input units (a greedy colouring of the gates at o by shared input
    units). A copy keeps o's threshold and reads only its gates' units, so no weight serves two
    gates: ``W = sum_g masks[g]`` and :meth:`Mechanisms.summary` reports no shared weight. The
    output code maps each gate to its copies.

    Exact for monotone gates (and, or): a copy fires only where o fired (fewer inputs, same
    threshold), so no new false positive; a true gate's own bits reached o's threshold, and
    they all reach its copy. The cost is in neurons: see docs/MECHANISMS.md (about 2.5 to 3
    times the layer's width on random 2-ANDs). Refused (one clear error) for any other network.

    Example:
        >>> import numpy as np, superpose as sp
        >>> net = sp.build(sp.families.pairs(300, 300, np.random.default_rng(0)), "superposed")
        >>> add = additive(net)
        >>> of(add).summary()["weights_shared"], add.layers[0].n_out > net.layers[0].n_out
        (0, True)
    """
    from superpose.network import Layer, Network

    task = net.task
    layers = net.layers
    why = None
    if len(layers) != 1 or layers[0].activation != "step":
        why = "a network of one step layer"
    elif not isinstance(net.output_code, BloomCode):
        why = "a Bloom output code"
    elif task.depth != 1 or not set(task.op_counts()) <= {"and", "or"}:
        why = "one level of and / or gates (monotone)"
    elif (np.asarray(task.outputs) < task.features).any():
        why = "every output to be a gate"
    if why is not None:
        raise SuperposeError(f"additive decomposition needs {why}")
    lay = layers[0]
    out_units = code_units(net.output_code)  # outputs x width
    gate = np.asarray(task.outputs, dtype=np.int64) - task.features
    # outputs x input width: the input units each output's gate reads
    sup_units = _bool(supports(task)[gate] @ code_units(net.input_code))
    union = _bool(out_units.T @ sup_units)
    weight = _bool(lay.weight)
    if (lay.weight.data != 1).any() or (weight != union).nnz or (lay.bias > 0).any() or lay.resting:
        raise SuperposeError(
            "additive decomposition needs weights that are exactly the union of the gates' "
            "operand codes, each 1 (the superposed construction)"
        )
    gates_at = sparse.csr_array(out_units.T)  # width x gates
    gates_at.sort_indices()
    width, n_in = net.output_code.width, sup_units.shape[1]
    color = {}  # (gate, unit) -> copy number at that unit
    copies = np.zeros(width, dtype=np.int64)
    for o in range(width):
        used = np.zeros((0, n_in), dtype=bool)
        for g in gates_at.indices[gates_at.indptr[o] : gates_at.indptr[o + 1]]:
            bits = sup_units.indices[sup_units.indptr[g] : sup_units.indptr[g + 1]]
            free = np.flatnonzero(~used[:, bits].any(axis=1))
            if len(free):
                c = int(free[0])
            else:
                c = used.shape[0]
                used = np.vstack([used, np.zeros((1, n_in), dtype=bool)])
            used[c, bits] = True
            color[int(g), o] = c
        copies[o] = max(1, used.shape[0])
    first = np.concatenate([[0], np.cumsum(copies)[:-1]])
    rows, cols = out_units.nonzero()
    new_unit = first[cols] + np.array(
        [color[int(g), int(o)] for g, o in zip(rows, cols, strict=True)]
    )
    new_width = int(copies.sum())
    membership = _pattern(rows, new_unit, (task.n_outputs, new_width))
    # copy (o, c) reads the input units of its gates: disjoint, so the sum is the union
    weight = sparse.csr_array(_bool(membership.T @ sup_units), dtype=lay.weight.dtype)
    code = net.output_code
    out_code = (
        BloomCode(membership, need=code.required().copy())
        if code.custom_need
        else BloomCode(membership, slack=code.slack)
    )
    bias = np.repeat(lay.bias, copies)
    return Network(
        [Layer(weight, bias, "step")],
        net.input_code,
        out_code,
        task,
        net.construction,
        {**net.params, "additive": True},
        net.seed,
        {"additive": {"width_before": int(width), "width": new_width}},
    )
