"""The naive network: explicit inputs, explicit outputs, a few ReLUs per gate (the reference).

Each circuit level is one ReLU layer. A gate whose value is a symmetric function f of the
count c of its active operands is written as sum_j a_j ReLU(c - j) with a_j the second
differences of f: AND = ReLU(c - (k-1)) (one unit), COPY = ReLU(c), OR = ReLU(c) - ReLU(c - 1),
XOR (parity) = ReLU(c) - 2 ReLU(c - 1) + 2 ReLU(c - 2) - ...; ANDNOT = ReLU(a - b). The next
layer's weights absorb those linear combinations. At the last level an OR output needs only
ReLU(c), since the explicit read-out thresholds at 1/2. Nodes read more than one level later
(and outputs of earlier levels) are carried forward by a ReLU(v) unit per level; only gates
that some output depends on are built.
"""

from __future__ import annotations

from typing import Any

import numpy as np
from scipy import sparse

from superpose.codes import ExplicitCode
from superpose.constructions.base import Capabilities, Construction
from superpose.levels import layout
from superpose.network import Layer, Network
from superpose.task import OP_CODE, Task


def _alphas(op: int, arity: int, last: bool) -> list[tuple[int, float]]:
    """The (offset j, coefficient a_j) terms of a gate as a sum of ReLU(c - j)."""
    if op == OP_CODE["and"]:
        return [(arity - 1, 1.0)]
    if op in (OP_CODE["copy"], OP_CODE["andnot"]):
        return [(0, 1.0)]
    if op == OP_CODE["or"]:
        return [(0, 1.0)] if last else [(0, 1.0), (1, -1.0)]
    # xor = parity of the count
    return [(0, 1.0)] + [(j, -2.0 if j % 2 else 2.0) for j in range(1, arity)]


class Naive(Construction):
    """One ReLU per gate where one suffices (and, copy, andnot; or at the last level).

    Example:
        >>> from superpose.families import pairs
        >>> task = pairs(40, 200, np.random.default_rng(0), sparsity=3)
        >>> Naive().build(task, np.random.default_rng(0)).counts().neurons
        240
    """

    name = "naive"
    capabilities = Capabilities(tags=frozenset({"explicit", "exact"}))

    @classmethod
    def memory_parts(
        cls, features: int, n_gates: int, operands: float, params: dict[str, Any]
    ) -> tuple[dict[str, int], list[str]]:
        """About 800 bytes per gate (per-gate lists during assembly) and 24 per operand."""
        return {"weights": int(800 * n_gates + 24 * operands)}, []

    def build(self, task: Task, rng: np.random.Generator) -> Network:
        m, n_nodes = task.features, task.n_nodes
        # Stages: gates some output depends on, and the nodes carried past their level.
        lay = layout(task)
        depth = lay.depth
        # R: value of each available node as a combination of the current layer's units.
        rep = sparse.csr_array((np.ones(m), (np.arange(m), np.arange(m))), shape=(n_nodes, m))
        layers: list[Layer] = []
        for level in range(1, depth + 1):
            last = level == depth
            a_rows, a_cols, a_vals, biases = [], [], [], []
            r_rows, r_cols, r_vals = [], [], []
            unit = 0
            for g in lay.gates[level - 1]:
                ops = task.operands(g)
                op, k = int(task.ops[g]), len(ops)
                coef = np.ones(k)
                if op == OP_CODE["andnot"]:
                    coef[1] = -1.0
                for j, alpha in _alphas(op, k, last):
                    a_rows.extend([unit] * k)
                    a_cols.extend(ops.tolist())
                    a_vals.extend(coef.tolist())
                    biases.append(-float(j))
                    r_rows.append(m + g)
                    r_cols.append(unit)
                    r_vals.append(alpha)
                    unit += 1
            for v in lay.carried[level - 1]:
                a_rows.append(unit)
                a_cols.append(int(v))
                a_vals.append(1.0)
                biases.append(0.0)
                r_rows.append(int(v))
                r_cols.append(unit)
                r_vals.append(1.0)
                unit += 1
            a = sparse.csr_array((a_vals, (a_rows, a_cols)), shape=(unit, n_nodes))
            weight = sparse.csr_array(a @ rep)
            weight.eliminate_zeros()
            layers.append(Layer(weight, np.array(biases), "relu"))
            rep = sparse.csr_array((r_vals, (r_rows, r_cols)), shape=(n_nodes, unit))
        out_rep = sparse.csr_array(rep[task.outputs])
        is_single = np.diff(out_rep.indptr) == 1
        if is_single.all() and (out_rep.data == 1).all() and out_rep.shape[1] == task.n_outputs:
            # Every final unit is exactly one output: reorder units into output order.
            order = out_rep.indices
            last_layer = layers[-1]
            layers[-1] = Layer(
                sparse.csr_array(last_layer.weight[order]), last_layer.bias[order], "relu"
            )
        else:
            layers.append(Layer(out_rep, np.zeros(task.n_outputs), "linear"))
        return Network(
            layers,
            ExplicitCode(m),
            ExplicitCode(task.n_outputs),
            task,
            self.name,
            self.get_params(),
        )
