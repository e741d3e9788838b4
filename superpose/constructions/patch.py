"""Patch the outputs an exact check found wrong: each gets units of its own.

Growing every width because a handful of the 10^6 gates are wrong (12 at m' = 10^6 with the
rule's widths) costs a quarter more neurons for all of them. The exact certificate names the
wrong outputs; each one can instead read *private* units that look only at its own operands'
codes: an AND reads the union of its operands' codes and needs all of it, an OR or COPY
reads one operand's code per unit and needs any one unit. Nothing else changes: the units of
every other output are untouched, so no other output's value changes on any input, and the
patched network is no more wrong than before anywhere. A private unit can still be fooled
(other active codes may cover an operand's code), so the caller certifies again.

xor / andnot outputs already read private detectors in ``superposed``; they are not patched.

Example:
    >>> import numpy as np
    >>> from superpose import Task
    >>> from superpose.constructions import build
    >>> task = Task.from_gates(6, 2, [("and", [0, 1]), ("or", [2, 3]), ("copy", [4])])
    >>> net = build(task, "superposed", rng=np.random.default_rng(0))
    >>> patched = patch_outputs(net, np.array([0, 1]))
    >>> patched.layers[0].n_out - net.layers[0].n_out  # one AND unit, two OR units
    3
"""

from __future__ import annotations

import numpy as np
from scipy import sparse

from superpose.codes import BloomCode, ExplicitCode
from superpose.errors import SuperposeError
from superpose.network import Layer, Network

PATCHABLE = ("and", "or", "copy")


def patchable(net: Network) -> str | None:
    """Why ``net`` cannot be patched (None when it can): one step layer, Bloom output code."""
    if len(net.layers) != 1 or net.layers[0].activation != "step":
        return "patching needs one step layer"
    if not isinstance(net.output_code, BloomCode):
        return "patching needs a Bloom output code"
    if not isinstance(net.input_code, (BloomCode, ExplicitCode)):
        return "patching needs a Bloom or explicit input code"
    return None


def patch_outputs(net: Network, outputs: np.ndarray) -> Network:
    """``net`` with each of ``outputs`` (output indices) read from private units (module doc).

    Raises SuperposeError for a network :func:`patchable` refuses or an xor / andnot output.
    """
    why = patchable(net)
    if why is not None:
        raise SuperposeError(why)
    task = net.task
    m = task.features
    layer = net.layers[0]
    code = net.output_code
    assert isinstance(code, BloomCode)
    if isinstance(net.input_code, BloomCode):
        member = sparse.csr_array(net.input_code.membership)
    else:
        member = sparse.eye_array(m, format="csr", dtype=np.int8)
    outputs = np.unique(np.asarray(outputs, dtype=np.int64))
    rows: list[np.ndarray] = []  # input bits each new unit reads
    owner: list[int] = []  # the output each new unit serves
    for g in outputs.tolist():
        node = int(task.outputs[g])
        if node < m:
            op, operands = "copy", [node]
        else:
            op, operands = task.op_name(node - m), task.operands(node - m).tolist()
        if op not in PATCHABLE:
            raise SuperposeError(f"output {g} is a {op} gate; only {PATCHABLE} are patched")
        codes = [member.indices[member.indptr[f] : member.indptr[f + 1]] for f in operands]
        if op == "and":
            rows.append(np.unique(np.concatenate(codes)))
            owner.append(g)
        else:
            for c in codes:
                rows.append(np.asarray(c))
                owner.append(g)
    n_old = layer.n_out
    lengths = np.array([len(r) for r in rows], dtype=np.int64)
    new_w = sparse.csr_array(
        (
            np.ones(int(lengths.sum()), dtype=layer.weight.dtype),
            np.concatenate(rows) if rows else np.empty(0, np.int64),
            np.concatenate([[0], np.cumsum(lengths)]),
        ),
        shape=(len(rows), layer.n_in),
    )
    weight = sparse.vstack([sparse.csr_array(layer.weight), new_w], format="csr")
    bias = np.concatenate([np.asarray(layer.bias), -lengths.astype(layer.bias.dtype)])
    # Output rows: untouched for every other output; the patched ones read their new units.
    old = sparse.csr_array(code.membership).tocoo()
    keep = ~np.isin(old.coords[0], outputs)
    r = np.concatenate([old.coords[0][keep], np.array(owner, dtype=np.int64)])
    c = np.concatenate([old.coords[1][keep], n_old + np.arange(len(owner), dtype=np.int64)])
    membership = sparse.csr_array(
        (np.ones(len(r), dtype=np.int8), (r, c)), shape=(code.n_features, n_old + len(owner))
    )
    required = code.required().copy()
    required[outputs] = 1  # any one of its private units
    extras = dict(net.extras)
    extras["patched"] = {
        "outputs": [int(g) for g in outputs],
        "units_added": len(owner),
    }
    return Network(
        [Layer(weight, bias, "step")],
        net.input_code,
        BloomCode(membership, need=required),
        task,
        net.construction,
        net.params,
        net.seed,
        extras,
    )
