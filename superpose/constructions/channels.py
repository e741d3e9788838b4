"""Influence channels: route gates so that a feature read by very many gates cannot flood shared units.

A feature's *influence* is the number of gates that read it. In the shared pool ("output
channel") every unit reads the union of the operand codes of its gates, so a feature read by
d gates sits in about d * l' units' read sets; once that is a sizeable share of the pool, an
active heavy feature leaves those units one operand short of firing and its neighbours' gates
fail. Heavy features therefore get a private block of units ("input channel"): every unit of
the block reads the heavy feature's code plus the codes of a few partners. A gate whose
operands are both heavy goes to the block of the heavier one (the third route).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from superpose.task import Task

SHARED, INPUT_CHANNEL, HEAVY_HEAVY = 0, 1, 2
ROUTE_NAMES = {SHARED: "shared", INPUT_CHANNEL: "heavy-light", HEAVY_HEAVY: "heavy-heavy"}


@dataclass(frozen=True)
class Routing:
    """Where each gate's units live: the shared pool (owner -1) or the block of feature ``owner``."""

    route: np.ndarray  # per gate: SHARED, INPUT_CHANNEL or HEAVY_HEAVY
    owner: np.ndarray  # per gate: the heavy feature whose block holds it, or -1
    heavy: np.ndarray  # heavy features, heaviest first
    cutoff: float  # influence above which a feature is heavy

    def counts(self) -> dict[str, int]:
        return {name: int((self.route == r).sum()) for r, name in ROUTE_NAMES.items()}


def heavy_cutoff(n_units: int, code_length: int, share: float) -> float:
    """Influence above which a feature would sit in more than ``share`` of a pool's units.

    Example:
        >>> heavy_cutoff(3000, 6, 0.05)
        25.0
    """
    return share * n_units / code_length


def route_gates(task: Task, gates: np.ndarray, cutoff: float) -> Routing:
    """Route the given gates (indices into ``task``) by the influence of their operands.

    Influence is counted over ``gates`` only (the gates that share one pool).

    Example:
        >>> from superpose.families import pairs
        >>> t = pairs(200, 400, np.random.default_rng(0), influence="star")
        >>> r = route_gates(t, np.arange(t.n_gates), cutoff=20)
        >>> r.counts()["heavy-light"] >= 100
        True
    """
    gates = np.asarray(gates, dtype=np.int64)
    gate_of, node, _ = task.operand_arrays(gates)
    return route(gate_of, node, len(gates), task.n_nodes, cutoff)


def route(g_of: np.ndarray, node: np.ndarray, n_gates: int, n_nodes: int, cutoff: float) -> Routing:
    """Route gates given as operand lists: gate ``g_of[i]`` reads node ``node[i]``."""
    influence = np.bincount(node, minlength=n_nodes)
    heavy_mask = influence > cutoff
    heavy = np.flatnonzero(heavy_mask)
    heavy = heavy[np.argsort(-influence[heavy], kind="stable")]
    route_of = np.full(n_gates, SHARED, dtype=np.int8)
    owner = np.full(n_gates, -1, dtype=np.int64)
    if len(heavy):
        is_heavy = heavy_mask[node]
        n_heavy = np.bincount(g_of[is_heavy], minlength=n_gates)
        # Owner: the heaviest heavy operand (ties broken by the smaller id).
        score = np.where(is_heavy, influence[node].astype(np.float64) - node * 1e-12, -np.inf)
        best = np.full(n_gates, -np.inf)
        np.maximum.at(best, g_of, score)
        is_best = is_heavy & (score == best[g_of])
        owner[g_of[is_best]] = node[is_best]
        route_of[n_heavy == 1] = INPUT_CHANNEL
        route_of[n_heavy >= 2] = HEAVY_HEAVY
    return Routing(route_of, owner, heavy, float(cutoff))
