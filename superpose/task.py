"""Tasks: layered Boolean circuits over sparse inputs, and the JSON task format (docs/DESIGN.md, Tasks).

Node ids ``0..m-1`` are input features; gate ``i`` has id ``m + i`` and may read any smaller id.
Gates are stored as flat arrays (an op code per gate and a CSR list of operands), so a task
with a million gates costs a few arrays, not a million Python objects.
"""

from __future__ import annotations

import json
import os
from dataclasses import dataclass, field
from functools import cached_property
from pathlib import Path
from typing import Any

import numpy as np

from superpose._atomic import write_text
from superpose._inputs import loads, read_bytes
from superpose._numeric import ranges
from superpose.errors import SuperposeError

OPS: tuple[str, ...] = ("copy", "and", "or", "xor", "andnot")
"""Gate operations, in op-code order. Each maps all-zero operands to 0, so outputs stay sparse."""

OP_CODE: dict[str, int] = {name: code for code, name in enumerate(OPS)}
ARITY: dict[str, tuple[int, int | None]] = {
    "copy": (1, 1),
    "and": (2, None),
    "or": (2, None),
    "xor": (2, None),
    "andnot": (2, 2),
}
MAX_FEATURES = 10**9
MAX_GATES = 10**8


@dataclass(frozen=True, eq=False)
class Task:
    """A Boolean circuit over ``features`` sparse inputs; every guarantee is for ``sparsity``-sparse inputs.

    Example:
        >>> t = Task.from_gates(4, 2, [("and", [0, 1]), ("or", [2, 4])])
        >>> t.n_gates, t.depth, t.outputs.tolist()
        (2, 2, [4, 5])
    """

    features: int
    sparsity: int
    ops: np.ndarray
    gate_indptr: np.ndarray
    gate_inputs: np.ndarray
    outputs: np.ndarray
    family: dict[str, Any] | None = None
    source: str = field(default="<memory>", compare=False)

    def __post_init__(self) -> None:
        validate(self)

    def __repr__(self) -> str:
        """Sizes and op counts, never the arrays.

        >>> Task.from_gates(4, 2, [("and", [0, 1]), ("or", [2, 4])])
        Task(features=4, sparsity=2, gates=2 (and 1, or 1), depth=2, outputs=2)
        """
        ops = ", ".join(f"{k} {v}" for k, v in self.op_counts().items())
        fam = (
            f", family={self.family.get('name')!r}" if self.family and "name" in self.family else ""
        )
        return (
            f"Task(features={self.features}, sparsity={self.sparsity}, gates={self.n_gates}"
            f"{f' ({ops})' if ops else ''}, depth={self.depth}, outputs={self.n_outputs}{fam})"
        )

    # construction helpers -------------------------------------------------------------
    @classmethod
    def from_gates(
        cls,
        features: int,
        sparsity: int,
        gates: list[tuple[str, list[int]]],
        outputs: list[int] | None = None,
        family: dict[str, Any] | None = None,
        source: str = "<memory>",
    ) -> Task:
        """Build a task from ``(op, inputs)`` pairs."""
        for index, gate in enumerate(gates):
            if gate[0] not in OP_CODE:
                raise SuperposeError(f"{source}, gate {index}: unknown op {gate[0]!r}")
        ops = np.array([OP_CODE[op] for op, _ in gates], dtype=np.int8)
        lengths = np.array([len(ins) for _, ins in gates], dtype=np.int64)
        indptr = np.zeros(len(gates) + 1, dtype=np.int64)
        np.cumsum(lengths, out=indptr[1:])
        flat = [i for _, ins in gates for i in ins]
        inputs = np.array(flat, dtype=np.int64) if flat else np.zeros(0, dtype=np.int64)
        outs = (
            np.arange(features, features + len(gates), dtype=np.int64)
            if outputs is None
            else np.asarray(outputs, dtype=np.int64)
        )
        return cls(features, sparsity, ops, indptr, inputs, outs, family, source)

    @classmethod
    def pairwise(
        cls,
        features: int,
        sparsity: int,
        pairs: np.ndarray,
        op: str = "and",
        family: dict[str, Any] | None = None,
    ) -> Task:
        """Build a one-level task of 2-input gates from a ``(m', 2)`` array of operand pairs."""
        pairs = np.asarray(pairs, dtype=np.int64).reshape(-1, 2)
        n = len(pairs)
        return cls(
            features,
            sparsity,
            np.full(n, OP_CODE[op], dtype=np.int8),
            np.arange(0, 2 * n + 1, 2, dtype=np.int64),
            pairs.ravel().copy(),
            np.arange(features, features + n, dtype=np.int64),
            family,
        )

    # views --------------------------------------------------------------------------
    @property
    def n_gates(self) -> int:
        return len(self.ops)

    @property
    def n_nodes(self) -> int:
        return self.features + self.n_gates

    @property
    def n_outputs(self) -> int:
        return len(self.outputs)

    def operands(self, gate: int) -> np.ndarray:
        """Node ids read by ``gate`` (0-based gate index)."""
        return self.gate_inputs[self.gate_indptr[gate] : self.gate_indptr[gate + 1]]

    def operand_arrays(self, gates: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """Every operand of ``gates`` from the CSR arrays, gate by gate: (position of its gate
        in ``gates``, operand node id, position among the gate's operands).

        >>> t = Task.pairwise(3, 2, np.array([[0, 1], [1, 2]]), op="and")
        >>> [a.tolist() for a in t.operand_arrays(np.array([1, 0]))]
        [[0, 0, 1, 1], [1, 2, 0, 1], [0, 1, 0, 1]]
        >>> t.operand_table(np.array([1, 0]), 2).tolist()
        [[1, 2], [0, 1]]
        """
        arity = self.arity[gates]
        pos = ranges(arity)
        nodes = self.gate_inputs[np.repeat(self.gate_indptr[gates], arity) + pos]
        return np.repeat(np.arange(len(gates)), arity), nodes, pos

    def operand_table(self, gates: np.ndarray, k: int) -> np.ndarray:
        """The operands of ``gates`` as a (len(gates), k) array; every gate must have arity k."""
        return self.gate_inputs[self.gate_indptr[gates][:, None] + np.arange(k)[None, :]]

    def op_name(self, gate: int) -> str:
        return OPS[int(self.ops[gate])]

    @cached_property
    def arity(self) -> np.ndarray:
        """Number of operands of each gate."""
        return np.diff(self.gate_indptr)

    @cached_property
    def node_level(self) -> np.ndarray:
        """Level of every node: 0 for inputs, 1 + deepest operand for gates."""
        level = np.zeros(self.n_nodes, dtype=np.int32)
        if self.n_gates == 0:
            return level
        # Fast path: a one-level task reads only inputs.
        if int(self.gate_inputs.max(initial=-1)) < self.features:
            level[self.features :] = 1
            return level
        for g in range(self.n_gates):  # gates only read smaller ids: one pass suffices
            ins = self.gate_inputs[self.gate_indptr[g] : self.gate_indptr[g + 1]]
            level[self.features + g] = 1 + int(level[ins].max())
        return level

    @property
    def gate_level(self) -> np.ndarray:
        return self.node_level[self.features :]

    @property
    def depth(self) -> int:
        """Number of levels (1 for a task whose gates all read inputs)."""
        return int(self.gate_level.max(initial=0))

    @cached_property
    def influence(self) -> np.ndarray:
        """Number of gates that read each input feature."""
        reads = self.gate_inputs[self.gate_inputs < self.features]
        return np.bincount(reads, minlength=self.features).astype(np.int64)

    def op_counts(self) -> dict[str, int]:
        counts = np.bincount(self.ops, minlength=len(OPS))
        return {OPS[i]: int(c) for i, c in enumerate(counts) if c}

    # JSON ---------------------------------------------------------------------------
    def to_dict(self) -> dict[str, Any]:
        gates = [
            {"op": OPS[int(op)], "inputs": self.operands(g).tolist()}
            for g, op in enumerate(self.ops)
        ]
        out: dict[str, Any] = {"features": self.features, "sparsity": self.sparsity, "gates": gates}
        default_outputs = np.arange(self.features, self.n_nodes)
        if not np.array_equal(self.outputs, default_outputs):
            out["outputs"] = self.outputs.tolist()
        if self.family is not None:
            out["family"] = self.family
        return out

    def save(self, path: str | os.PathLike[str]) -> None:
        """Write the task as JSON (atomically)."""
        write_text(path, json.dumps(self.to_dict()))

    def with_sparsity(self, sparsity: int) -> Task:
        return Task(
            self.features,
            sparsity,
            self.ops,
            self.gate_indptr,
            self.gate_inputs,
            self.outputs,
            self.family,
            self.source,
        )


def _is_int(value: Any) -> bool:
    return isinstance(value, int) and not isinstance(value, bool)


def validate(task: Task) -> None:
    """Check every structural rule of docs/DESIGN.md, Tasks; raise SuperposeError naming the gate."""
    src = task.source
    m, s = task.features, task.sparsity
    if not _is_int(m) or m < 1 or m > MAX_FEATURES:
        raise SuperposeError(
            f"{src}: 'features' must be an integer in 1..{MAX_FEATURES}, got {m!r}"
        )
    if not _is_int(s) or s < 1:
        raise SuperposeError(f"{src}: 'sparsity' must be an integer >= 1, got {s!r}")
    if s > m:
        raise SuperposeError(f"{src}: sparsity {s} exceeds the number of features {m}")
    n = len(task.ops)
    if n > MAX_GATES:
        raise SuperposeError(f"{src}: {n} gates exceed the limit of {MAX_GATES}")
    if task.gate_indptr.shape != (n + 1,) or task.gate_indptr[0] != 0:
        raise SuperposeError(f"{src}: gate operand index is malformed")
    arity = np.diff(task.gate_indptr)
    if (arity < 0).any() or task.gate_indptr[-1] != len(task.gate_inputs):
        raise SuperposeError(f"{src}: gate operand index is malformed")
    if n and ((task.ops < 0) | (task.ops >= len(OPS))).any():
        g = int(np.flatnonzero((task.ops < 0) | (task.ops >= len(OPS)))[0])
        raise SuperposeError(f"{src}, gate {g}: unknown op code {int(task.ops[g])}")
    for name, (lo, hi) in ARITY.items():
        sel = task.ops == OP_CODE[name]
        bad = sel & ((arity < lo) | ((arity > hi) if hi is not None else False))
        if bad.any():
            g = int(np.flatnonzero(bad)[0])
            want = f"exactly {lo}" if lo == hi else f"at least {lo}"
            raise SuperposeError(
                f"{src}, gate {g}: op {name!r} needs {want} inputs, got {int(arity[g])}"
            )
    if n:
        gate_id = np.repeat(np.arange(n, dtype=np.int64), arity) + m
        bad = (task.gate_inputs < 0) | (task.gate_inputs >= gate_id)
        if bad.any():
            pos = int(np.flatnonzero(bad)[0])
            g = int(gate_id[pos] - m)
            raise SuperposeError(
                f"{src}, gate {g} (id {g + m}): reads id {int(task.gate_inputs[pos])}, "
                f"which does not exist yet (a gate may read ids 0..{g + m - 1})"
            )
        # Duplicate operands within one gate: sort each gate's operands and compare neighbours.
        order = np.lexsort((task.gate_inputs, gate_id))
        srt_in, srt_g = task.gate_inputs[order], gate_id[order]
        dup = (srt_in[1:] == srt_in[:-1]) & (srt_g[1:] == srt_g[:-1])
        if dup.any():
            g = int(srt_g[1:][dup][0] - m)
            raise SuperposeError(f"{src}, gate {g}: reads id {int(srt_in[1:][dup][0])} twice")
    outs = task.outputs
    if outs.ndim != 1 or len(outs) == 0:
        raise SuperposeError(f"{src}: 'outputs' must be a non-empty list of node ids")
    bad = (outs < 0) | (outs >= m + n)
    if bad.any():
        raise SuperposeError(
            f"{src}: output id {int(outs[bad][0])} does not exist (ids 0..{m + n - 1})"
        )
    if len(np.unique(outs)) != len(outs):
        raise SuperposeError(f"{src}: 'outputs' lists an id twice")


def load_task(path: str | os.PathLike[str]) -> Task:
    """Load and validate a JSON task file.

    Example:
        >>> import json, tempfile, os
        >>> p = os.path.join(tempfile.mkdtemp(), "t.json")
        >>> _ = open(p, "w").write(json.dumps(
        ...     {"features": 3, "sparsity": 2, "gates": [{"op": "and", "inputs": [0, 2]}]}))
        >>> load_task(p).n_gates
        1
    """
    src = str(path)
    p = Path(path)
    if not p.is_file():
        raise SuperposeError(f"{src}: no such task file")
    try:
        text = read_bytes(p).decode("utf-8")
        data = loads(text, src)
    except UnicodeDecodeError as exc:
        raise SuperposeError(f"{src}: not UTF-8 text ({exc.reason})") from None
    except json.JSONDecodeError as exc:
        raise SuperposeError(f"{src}, line {exc.lineno}: malformed JSON ({exc.msg})") from None
    except RecursionError:
        raise SuperposeError(f"{src}: JSON nested too deeply") from None
    return task_from_dict(data, src)


def task_from_dict(data: Any, source: str = "<memory>") -> Task:
    """Validate a parsed JSON task (see :func:`load_task`)."""
    if not isinstance(data, dict):
        raise SuperposeError(f"{source}: a task must be a JSON object, got {type(data).__name__}")
    unknown = set(data) - {"features", "sparsity", "gates", "outputs", "family"}
    if unknown:
        raise SuperposeError(f"{source}: unknown key {sorted(unknown)[0]!r}")
    for key in ("features", "sparsity", "gates"):
        if key not in data:
            raise SuperposeError(f"{source}: missing key {key!r}")
    m, s = data["features"], data["sparsity"]
    if not _is_int(m) or not 1 <= m <= MAX_FEATURES:
        raise SuperposeError(
            f"{source}: 'features' must be an integer in 1..{MAX_FEATURES}, got {m!r}"
        )
    if not _is_int(s) or s < 1:
        raise SuperposeError(f"{source}: 'sparsity' must be an integer >= 1, got {s!r}")
    gates = data["gates"]
    if not isinstance(gates, list):
        raise SuperposeError(f"{source}: 'gates' must be a list")
    parsed: list[tuple[str, list[int]]] = []
    for g, gate in enumerate(gates):
        if not isinstance(gate, dict) or set(gate) - {"op", "inputs"} or "op" not in gate:
            raise SuperposeError(f"{source}, gate {g}: must be an object with 'op' and 'inputs'")
        op, ins = gate["op"], gate.get("inputs")
        if not isinstance(op, str) or op not in OP_CODE:
            raise SuperposeError(f"{source}, gate {g}: unknown op {op!r} (known: {', '.join(OPS)})")
        if not isinstance(ins, list) or not all(_is_int(i) for i in ins):
            raise SuperposeError(f"{source}, gate {g}: 'inputs' must be a list of integer ids")
        if any(abs(i) > 2 * MAX_FEATURES for i in ins):
            raise SuperposeError(f"{source}, gate {g}: input id out of range")
        parsed.append((op, ins))
    outputs = data.get("outputs")
    if outputs is not None:
        if not isinstance(outputs, list) or not all(_is_int(i) for i in outputs):
            raise SuperposeError(f"{source}: 'outputs' must be a list of integer ids")
        if any(abs(i) > 2 * MAX_FEATURES for i in outputs):
            raise SuperposeError(f"{source}: output id out of range")
    family = data.get("family")
    if family is not None and not isinstance(family, dict):
        raise SuperposeError(f"{source}: 'family' must be an object")
    return Task.from_gates(m, s, parsed, outputs, family, source)


def n_sparse_inputs(features: int, sparsity: int) -> int:
    """Number of inputs with at most ``sparsity`` active features: sum of C(m, k), k <= s.

    Each term from the last (C(m, k+1) = C(m, k) (m - k) / (k + 1)), and past s = m / 2 by
    the complement 2^m - sum over k < m - s, so s = 50 000 of 60 000 features costs 10^4
    big-integer steps, not 5 * 10^4 fresh binomials (minutes).

        >>> n_sparse_inputs(10, 2), n_sparse_inputs(10, 8), n_sparse_inputs(10, 10)
        (56, 1013, 1024)
    """
    if sparsity >= features:
        return 2**features
    if 2 * sparsity > features:
        return 2**features - n_sparse_inputs(features, features - sparsity - 1)
    total = term = 1
    for k in range(sparsity):
        term = term * (features - k) // (k + 1)
        total += term
    return total
