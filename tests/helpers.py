"""Ground truth for the tests: an independent brute-force evaluator and hypothesis strategies.

Nothing here uses superpose's evaluator, verifier or networks: the brute force is a loop over
gates with a dict of node values, written from docs/DESIGN.md, Tasks alone.
"""

from __future__ import annotations

import itertools
import math
from collections.abc import Iterable

import numpy as np
from hypothesis import strategies as st
from scipy import sparse

OPS = ("copy", "and", "or", "xor", "andnot")


def every_op_gates() -> list[tuple[str, list[int]]]:
    """A small deep task of every op over 10 features (a fresh list each call): 16 gates on
    four levels, each level mixing and, or, xor (2 and more inputs), andnot and copy, with
    operands reaching back over several levels."""
    return [
        ("and", [0, 1]),  # 10, level 1
        ("or", [2, 3, 4]),  # 11
        ("xor", [5, 6]),  # 12
        ("andnot", [7, 8]),  # 13
        ("copy", [9]),  # 14
        ("xor", [1, 3, 5]),  # 15
        ("xor", [10, 11]),  # 16, level 2
        ("and", [12, 13, 0]),  # 17
        ("andnot", [11, 14]),  # 18
        ("xor", [10, 12, 13, 15]),  # 19
        ("copy", [15]),  # 20
        ("or", [16, 17, 18]),  # 21, level 3
        ("xor", [19, 20, 2]),  # 22
        ("andnot", [16, 19]),  # 23
        ("and", [21, 22]),  # 24, level 4
        ("xor", [23, 22]),  # 25
    ]


def mixed_task():
    """A hand-written task with every op, k-input gates, a deep chain and an outputs list."""
    from superpose import Task

    gates = [
        ("and", [0, 1]),  # 8
        ("or", [2, 3, 4]),  # 9
        ("xor", [5, 6]),  # 10
        ("andnot", [7, 0]),  # 11
        ("copy", [3]),  # 12
        ("and", [8, 9]),  # 13: level 2
        ("xor", [10, 11, 12]),  # 14: level 2
        ("or", [13, 14]),  # 15: level 3
        ("andnot", [15, 2]),  # 16: level 4
    ]
    return Task.from_gates(8, 3, gates, outputs=[16, 9, 13, 2, 10, 15])


def gate_list(task) -> list[tuple[str, list[int]]]:
    """The gates of a Task as plain ``(op, [ids])`` pairs."""
    return [
        (OPS[int(task.ops[g])], [int(i) for i in task.operands(g)]) for g in range(task.n_gates)
    ]


def brute_node_values(
    features: int, gates: list[tuple[str, list[int]]], active: Iterable[int]
) -> dict[int, int]:
    """Value of every node, by a plain loop over the gates (docs/DESIGN.md, Tasks)."""
    active = set(int(a) for a in active)
    value = {i: int(i in active) for i in range(features)}
    for g, (op, ins) in enumerate(gates):
        vals = [value[i] for i in ins]
        if op == "copy":
            out = vals[0]
        elif op == "and":
            out = int(all(vals))
        elif op == "or":
            out = int(any(vals))
        elif op == "xor":
            out = sum(vals) % 2
        elif op == "andnot":
            out = int(vals[0] == 1 and vals[1] == 0)
        else:  # pragma: no cover - strategies only draw known ops
            raise AssertionError(op)
        value[features + g] = out
    return value


def brute_outputs(task, active: Iterable[int]) -> tuple[list[int], list[int]]:
    """(output values, active-operand counts) of ``task`` on the input with ``active`` on."""
    gates = gate_list(task)
    value = brute_node_values(task.features, gates, active)
    outs, counts = [], []
    for node in task.outputs.tolist():
        outs.append(value[node])
        if node < task.features:
            counts.append(value[node])
        else:
            counts.append(sum(value[i] for i in gates[node - task.features][1]))
    return outs, counts


def rows_to_csr(rows: list[Iterable[int]], features: int) -> sparse.csr_array:
    """A 0/1 batch with the given active features per row."""
    dense = np.zeros((len(rows), features), dtype=np.int32)
    for r, row in enumerate(rows):
        dense[r, list(row)] = 1
    return sparse.csr_array(dense)


def all_sparse_rows(features: int, sparsity: int) -> list[tuple[int, ...]]:
    """Every input with at most ``sparsity`` active features (as tuples)."""
    return [c for k in range(sparsity + 1) for c in itertools.combinations(range(features), k)]


def n_sparse(features: int, sparsity: int) -> int:
    return sum(math.comb(features, k) for k in range(sparsity + 1))


def as_sets(matrix) -> list[set[int]]:
    """Rows of a sparse or dense 0/1 matrix as sets of column indices."""
    dense = matrix.toarray() if sparse.issparse(matrix) else np.asarray(matrix)
    return [set(np.flatnonzero(row).tolist()) for row in dense]


@st.composite
def task_specs(
    draw,
    max_features: int = 8,
    max_gates: int = 10,
    ops: tuple[str, ...] = OPS,
    max_arity: int = 4,
    max_sparsity: int = 3,
    allow_outputs: bool = True,
):
    """``(features, sparsity, gates, outputs)`` of a valid random task.

    Gates may read any earlier id; with ``chain`` drawn true each gate also reads the previous
    gate, so deep circuits are common. ``outputs`` is None (all gates) or a list of ids.
    """
    m = draw(st.integers(1, max_features))
    s = draw(st.integers(1, min(m, max_sparsity)))
    n = draw(st.integers(0, max_gates))
    chain = draw(st.booleans())
    gates: list[tuple[str, list[int]]] = []
    for g in range(n):
        avail = m + g
        choices = [op for op in ops if op == "copy" or avail >= 2]
        if not choices:
            break
        op = draw(st.sampled_from(choices))
        if op == "copy":
            k = 1
        elif op == "andnot":
            k = 2
        else:
            k = draw(st.integers(2, min(max_arity, avail)))
        ins: list[int] = []
        if chain and g > 0:
            ins.append(avail - 1)
        ins += draw(
            st.lists(
                st.integers(0, avail - 1).filter(lambda i, ins=ins: i not in ins),
                min_size=k - len(ins),
                max_size=k - len(ins),
                unique=True,
            )
        )
        ins = draw(st.permutations(ins))
        gates.append((op, list(ins)))
    n = len(gates)
    outputs = None
    if n == 0 or (allow_outputs and draw(st.booleans())):
        outputs = draw(st.lists(st.integers(0, m + n - 1), min_size=1, max_size=8, unique=True))
    return m, s, gates, outputs


@st.composite
def tasks(draw, **kwargs):
    """A random valid :class:`superpose.Task` (see :func:`task_specs`)."""
    from superpose import Task

    m, s, gates, outputs = draw(task_specs(**kwargs))
    return Task.from_gates(m, s, gates, outputs=outputs)


def sparse_rows(features: int, sparsity: int, max_rows: int = 16):
    """A strategy for a batch of inputs with at most ``sparsity`` active features each."""
    return st.lists(
        st.sets(st.integers(0, features - 1), max_size=sparsity), min_size=1, max_size=max_rows
    )


def run(capsys, *argv: object) -> tuple[int, str, str]:
    """Run the CLI in-process on ``argv``: (exit code, stdout, stderr)."""
    from superpose.cli import main

    code = main([str(a) for a in argv])
    out, err = capsys.readouterr()
    return code, out, err


def assert_one_line_error(code: int, err: str, *needles: str, max_len: int | None = None) -> None:
    """Exit 2 with exactly one ``error:`` line holding every needle (and no traceback)."""
    text = err.strip()
    assert code == 2, err[:2000]
    assert text.startswith("error:"), err[:2000]
    assert "\n" not in text, err[:2000]
    assert "Traceback" not in err
    assert max_len is None or len(text) <= max_len, text[:2000]
    for needle in needles:
        assert needle in text, (needle, text)
