"""The ``circuit`` construction: deep tasks of monotone gates, one superposed layer per level.

Levelling: a gate's level is one more than its deepest operand (inputs are level 0). Stage L
is one threshold layer (:func:`~superpose.constructions.superposed.threshold_stage`) whose
operand code is the output code of stage L - 1: level 1 reads the Bloom-coded inputs, level
L reads ``BloomCode(units of stage L - 1)`` over the nodes available after stage L - 1. A node
read more than one level after its own, or an output of an earlier level, is carried forward
by a ``copy`` part at each level in between (counted in ``extras["carries"]``). Only gates
some output depends on are built. The final stage's code, restricted to the task's outputs
in ``task.outputs`` order, is the network's output code.

Every true node fires all of its units (thresholds never exceed the bits a true part sees),
so errors are false positives only, and they only come from too narrow layers.

Sparsity through depth (a safe upper bound on active nodes after each stage, from s):

* level 0: ``a_0 = s``;
* AND parts of arity >= k (k = the smallest AND arity of the level): a true AND has all its
  operands active, so at most ``dup * C(a, k)`` are true (``dup`` = most AND gates sharing
  one operand set), and at most ``floor(R_and(a) / k)`` where ``R_and(a)`` is the sum of the
  ``a`` largest AND-reader counts of the previous level's nodes;
* OR / COPY parts (carries included): a true one reads an active node, so at most
  ``R_any(a)``, the sum of the ``a`` largest OR/COPY-reader counts;
* each also at most its number of parts. ``a_L`` is the sum of the two.

Each stage is sized by :func:`~superpose.constructions.params.auto_params` on a one-level
view of that stage (its parts as gates over the previous level's nodes, sparsity ``a_{L-1}``);
the code length of stage L - 1 fixes the input code length of stage L. A level whose bound
exceeds ``max_active`` is refused, naming the level, the bound and the width it would need.
"""

from __future__ import annotations

import math
from typing import Any

import numpy as np
from scipy import sparse

from superpose.codes import BloomCode
from superpose.constructions._bloom import operand_matrix
from superpose.constructions.naive import _needed_gates
from superpose.constructions.params import DEFAULT_FAILURE, auto_params
from superpose.constructions.superposed import (
    MONOTONE_OPS,
    Parts,
    _Certified,
    input_code_for,
    threshold_stage,
)
from superpose.errors import SuperposeError
from superpose.network import Layer, Network
from superpose.task import OP_CODE, OPS, Task


def _top_sum(counts: np.ndarray, a: int) -> int:
    """Sum of the ``a`` largest entries of ``counts``."""
    if a <= 0 or len(counts) == 0:
        return 0
    if a >= len(counts):
        return int(counts.sum())
    return int(np.partition(counts, len(counts) - a)[len(counts) - a :].sum())


class _Stage:
    """One level: its parts (gates, then carries), as node ids and as rows of the previous code."""

    def __init__(self, level: int, gates: np.ndarray, carried: np.ndarray) -> None:
        self.level = level
        self.gates = gates  # gate indices built at this level
        self.carried = carried  # node ids copied forward at this level
        self.nodes: np.ndarray = np.zeros(0, np.int64)  # node id of each part (= output row)
        self.parts: Parts | None = None
        self.bound = 0
        self.auto: Any = None
        self.explicit = False  # one private unit per node
        self.explicit_in = False  # reads an explicit code


def _active_bound(task: Task, parts: Parts, prev_rows: int, a_prev: int) -> int:
    """Upper bound on true parts of a stage when at most ``a_prev`` operand nodes are active."""
    is_and = parts.need > 1
    n_and = int(is_and.sum())
    n_any = len(parts) - n_and
    any_reads = np.bincount(parts.node[~is_and[parts.g_of]], minlength=prev_rows)
    bound_any = min(n_any, _top_sum(any_reads, a_prev))
    bound_and = 0
    if n_and:
        k = int(parts.need[is_and].min())
        and_reads = np.bincount(parts.node[is_and[parts.g_of]], minlength=prev_rows)
        # Most AND parts sharing one operand set.
        sel = is_and[parts.g_of]
        g, n = parts.g_of[sel], parts.node[sel]
        order = np.lexsort((n, g))
        g, n = g[order], n[order]
        starts = np.flatnonzero(np.r_[True, g[1:] != g[:-1]])
        keys = {tuple(row) for row in np.split(n, starts[1:])}
        dup = n_and - len(keys) + 1 if len(keys) < n_and else 1
        bound_and = min(n_and, dup * math.comb(a_prev, k), _top_sum(and_reads, a_prev) // k)
    return int(bound_any + bound_and)


def _view_task(parts: Parts, n_prev: int, a_prev: int) -> Task:
    """A one-level task with the stage's parts as gates over the previous level's nodes."""
    counts = np.bincount(parts.g_of, minlength=len(parts))
    order = np.argsort(parts.g_of, kind="stable")
    ops = np.where(
        parts.need > 1, OP_CODE["and"], np.where(counts == 1, OP_CODE["copy"], OP_CODE["or"])
    )
    indptr = np.zeros(len(parts) + 1, dtype=np.int64)
    np.cumsum(counts, out=indptr[1:])
    return Task(
        n_prev,
        max(1, min(a_prev, n_prev)),
        ops.astype(np.int8),
        indptr,
        parts.node[order].astype(np.int64),
        np.arange(n_prev, n_prev + len(parts), dtype=np.int64),
    )


class Circuit(_Certified):
    """Deep superposed network: one Bloom-coded threshold layer per circuit level (copy/and/or).

    Example:
        >>> from superpose import families
        >>> from superpose.verify import verify
        >>> task = families.layered_circuit(20, 10, 3, np.random.default_rng(0), ops=("and", "or"))
        >>> net = Circuit().build(task, np.random.default_rng(1))
        >>> len(net.layers), verify(net, "exhaustive").inputs_with_error
        (3, 0)
    """

    name = "circuit"

    def __init__(
        self,
        max_active: int = 256,
        failure: float = DEFAULT_FAILURE,
        heavy_share: float = 0.3,
        width_scale: float = 1.0,
        certify: bool = True,
    ) -> None:
        self.max_active = max_active
        self.failure = failure
        self.heavy_share = heavy_share
        self.width_scale = width_scale
        self.certify = certify

    # planning ---------------------------------------------------------------------------
    def plan(self, task: Task, force: frozenset[int] = frozenset()) -> list[_Stage]:
        """Levels, carries, parts, sparsity bounds and auto parameters of every stage."""
        bad = ~np.isin(task.ops, list(MONOTONE_OPS))
        if bad.any():
            g = int(np.flatnonzero(bad)[0])
            raise SuperposeError(
                f"gate {g} (id {g + task.features}): op {OPS[int(task.ops[g])]!r} is not monotone; "
                "'circuit' handles copy/and/or only -- use --construction naive"
            )
        m = task.features
        depth = max(task.depth, 1)
        levels = task.node_level
        needed = _needed_gates(task)
        last_use = levels.copy()
        reader_level = np.repeat(task.gate_level, task.arity)
        keep = np.repeat(needed, task.arity)
        np.maximum.at(last_use, task.gate_inputs[keep], reader_level[keep])
        last_use[task.outputs] = depth + 1
        row_of = np.full(task.n_nodes, -1, dtype=np.int64)
        row_of[:m] = np.arange(m)
        n_prev, a_prev = m, task.sparsity
        ell_prev: int | None = None
        stages = []
        for level in range(1, depth + 1):
            gates = np.flatnonzero((task.gate_level == level) & needed)
            carried = np.flatnonzero((levels < level) & (last_use > level))
            st = _Stage(level, gates, carried)
            arity = task.arity[gates]
            ops = task.ops[gates]
            gate_of, operand, _ = operand_matrix(task, gates)
            g_of = np.concatenate([gate_of, len(gates) + np.arange(len(carried))])
            nodes_in = np.concatenate([operand, carried]).astype(np.int64)
            rows = row_of[nodes_in]
            assert (rows >= 0).all(), "operand not available at the previous level"
            need = np.concatenate(
                [np.where(ops == OP_CODE["and"], arity, 1), np.ones(len(carried), np.int64)]
            ).astype(np.int64)
            n_parts = len(gates) + len(carried)
            st.parts = Parts(
                np.arange(n_parts), np.ones(n_parts, np.int8), need, g_of.astype(np.int64), rows
            )
            st.nodes = np.concatenate([m + gates, carried]).astype(np.int64)
            st.bound = _active_bound(task, st.parts, n_prev, a_prev)
            view = _view_task(st.parts, n_prev, a_prev)
            explicit_in = ell_prev == 1
            st.auto = auto_params(view, self.failure, ell=ell_prev, explicit_inputs=explicit_in)
            if level == 1 and st.auto.n_in >= m:
                # A superposed input layer would be no narrower than one neuron per feature.
                explicit_in = True
                st.auto = auto_params(view, self.failure, explicit_inputs=True)
            st.explicit_in = explicit_in
            # A level whose code would be no narrower than one neuron per node is explicit;
            # its single private unit per node is then sized for with l' = 1.
            st.explicit = level in force or st.auto.n_out >= n_parts
            if st.explicit:
                st.auto = auto_params(
                    view, self.failure, ell=st.auto.ell, ell_out=1, explicit_inputs=explicit_in
                )
            if level > 1 and not explicit_in and st.auto.n_in >= n_prev:
                # The previous level's code would be no narrower than explicit: re-plan.
                return self.plan(task, force | {level - 1})
            if st.bound > self.max_active:
                raise SuperposeError(
                    f"level {level} cannot stay sparse: up to {st.bound} of its {n_parts} nodes "
                    f"(gates and carries) can be active for {task.sparsity}-sparse inputs, above "
                    f"max_active={self.max_active}; the next stage would need about "
                    f"{_needed_width(st.bound, st.auto.ell_out)} neurons "
                    "-- use --construction naive"
                )
            stages.append(st)
            row_of[:] = -1
            row_of[st.nodes] = np.arange(n_parts)
            n_prev, a_prev = n_parts, max(st.bound, 1)
            ell_prev = 1 if st.explicit else st.auto.ell_out
        return stages

    def build_once(self, task: Task, rng: np.random.Generator) -> Network:
        stages = self.plan(task)
        scale = self.width_scale
        # Width of stage L's output layer: what stage L needs and what stage L + 1 reads.
        widths = []
        for i, st in enumerate(stages):
            w = st.auto.n_out
            if i + 1 < len(stages):
                w = max(w, stages[i + 1].auto.n_in)
            widths.append(
                len(st.nodes) if st.explicit else max(2 * st.auto.ell_out, round(w * scale))
            )
        first = stages[0]
        n_in = max(4 * first.auto.ell * task.sparsity, round(first.auto.n_in * scale))
        # A superposed input layer at least as wide as one neuron per feature is pointless.
        explicit_in = first.explicit_in or n_in >= task.features
        input_code, operand_code, overlaps = input_code_for(
            task, first.gates, n_in, first.auto.ell, explicit_in, rng
        )
        layers: list[Layer] = []
        units = None
        stage_stats = []
        for st, width in zip(stages, widths, strict=True):
            assert st.parts is not None
            layer, units, stats = threshold_stage(
                st.parts,
                operand_code,
                width,
                st.auto.ell_out,
                self.heavy_share,
                rng,
                private=st.explicit,
            )
            layers.append(layer)
            operand_code = BloomCode(units)
            stage_stats.append(
                {
                    "level": st.level,
                    "gates": int(len(st.gates)),
                    "carries": int(len(st.carried)),
                    "active_bound": int(st.bound),
                    "width": int(layer.n_out),
                    "ell_in": int(st.auto.ell),
                    "ell_out": 1 if st.explicit else int(st.auto.ell_out),
                    "explicit": bool(st.explicit),
                    "fan_in_fraction_max": stats["fan_in_fraction_max"],
                }
            )
        last = stages[-1]
        row = np.full(task.n_nodes, -1, dtype=np.int64)
        row[last.nodes] = np.arange(len(last.nodes))
        out_rows = row[task.outputs]
        assert units is not None and (out_rows >= 0).all()
        output_code = BloomCode(sparse.csr_array(units[out_rows]))
        extras = {
            "levels": len(stages),
            "widths": [int(input_code.width)] + [s["width"] for s in stage_stats],
            "carries": [s["carries"] for s in stage_stats],
            "total_carries": int(sum(s["carries"] for s in stage_stats)),
            "active_bounds": [int(task.sparsity)] + [s["active_bound"] for s in stage_stats],
            "stages": stage_stats,
            "overlapping_gates": overlaps,
        }
        return Network(
            layers, input_code, output_code, task, self.name, self.get_params(), extras=extras
        )


def _needed_width(active: int, ell: int, density: float = 0.1) -> int:
    """Width keeping ``active`` codes of ``ell`` bits below ``density`` of a layer switched on."""
    return math.ceil(active * ell / -math.log1p(-density))
