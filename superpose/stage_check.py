"""Per-level checks of a deep network: every stage decoded, every stage certified.

* :func:`level_report` runs inputs through a circuit network, decodes *every* stage with its
  own code and compares each with the truth: how often each level's output code is wrong,
  and how errors accumulate with depth.
* :func:`stream_level_report` does the same for a residual ``stream`` network: after each
  block, the gates of its level are decoded from the stream and compared with the truth,
  beside the error the plan predicted for that level.
* :func:`stage_network` / :func:`stage_certificates` cut one stage out as a one-level network
  of its own and certify it exactly where its inputs allow.

This is the verification side of :mod:`superpose.levels` (which only analyses a task, and is
read by the constructions); it may rebuild a loaded network from its recorded parameters, so
it sits above :mod:`superpose.constructions` in the import order.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from typing import Any

import numpy as np
from scipy import sparse

from superpose.errors import SuperposeError
from superpose.evaluation import evaluate_nodes
from superpose.seeds import Seeds
from superpose.task import OPS, Task

# --- per-level verification --------------------------------------------------------------


def stage_codes(net: Any) -> list[tuple[np.ndarray, Any]]:
    """(node ids, Bloom code) of every layer of a ``circuit`` network.

    A freshly built network carries them; a loaded one is rebuilt from its task, parameters
    and seed (the ``build`` stream of :class:`superpose.seeds.Seeds`), and used only if the
    rebuilt layers equal the loaded ones.
    """
    return _recorded(net, "stage_codes", "circuit", "per-level checks", "the per-stage codes")


def _recorded(net: Any, attr: str, construction: str, user: str, what: str) -> Any:
    """``net.<attr>``, which a fresh build of ``construction`` carries; else read off the
    network rebuilt (:func:`_rebuilt`, naming ``what``). A network of another construction
    is refused, naming who needs it (``user``)."""
    found = getattr(net, attr, None)
    if found is not None:
        return found
    if net.construction != construction:
        raise SuperposeError(
            f"{user} need a '{construction}' network; this one was built by {net.construction!r}"
        )
    return getattr(_rebuilt(net, construction, what), attr)


def _rebuilt(net: Any, construction: str, what: str) -> Any:
    """``net`` built again from its task, parameters and seed (the ``build`` stream), when
    the rebuilt layers equal the loaded ones; what a saved network does not store (its stage
    or stream codes) is then read off the rebuilt one. Raises naming ``what`` otherwise."""
    from superpose.constructions import make_construction

    params = {k: v for k, v in net.params.items() if k not in ("compiled_to_relu", "certify")}
    seed = net.seed if net.seed is not None else 0
    try:
        again = make_construction(construction, **params).build(net.task, Seeds(seed).rng("build"))
    except SuperposeError as exc:
        raise SuperposeError(
            f"could not recover {what} of this network (rebuilding it failed: {exc})"
        ) from None
    if len(again.layers) == len(net.layers) and all(
        a.weight.shape == b.weight.shape
        and (a.weight != b.weight).nnz == 0
        and np.array_equal(a.bias, b.bias)
        for a, b in zip(again.layers, net.layers, strict=True)
    ):
        return again
    raise SuperposeError(
        f"could not recover {what} of this network (rebuilding it from its task, "
        "parameters and seed gave different weights)"
    )


def _decode(code: Any, z: Any, inhib: np.ndarray | None) -> sparse.csr_array:
    """Decode a stage; a xor / andnot node whose detector unit is on reads as off."""
    got = sparse.csr_array(code.decode(z), dtype=np.int8)
    if inhib is None or not (inhib >= 0).any():
        return got
    rows = np.flatnonzero(inhib >= 0)
    det_on = sparse.csr_array(sparse.csr_array(z)[:, inhib[rows]]).tocoo()
    keep = det_on.data > 0
    mask = sparse.csr_array(
        (
            np.ones(int(keep.sum()), dtype=np.int8),
            (det_on.coords[0][keep], rows[det_on.coords[1][keep]]),
        ),
        shape=got.shape,
    )
    out = sparse.csr_array(got - got.multiply(mask), dtype=np.int8)
    out.eliminate_zeros()
    return out


@dataclass
class LevelReport:
    """Per stage: how often its code is wrong, end to end and when fed a clean input."""

    mode: str
    inputs_checked: int = 0
    stages: list[dict[str, Any]] = field(default_factory=list)

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


def level_report(
    net: Any,
    mode: str = "random",
    samples: int = 2000,
    rng: np.random.Generator | None = None,
    *,
    max_exhaustive: int = 5_000_000,
    batch_size: int = 1024,
) -> LevelReport:
    """Decode every stage of a ``circuit`` network and compare it with the truth of its nodes.

    For each stage: inputs on which some node it holds is wrong (``wrong_end_to_end``), the
    false positives / negatives among its nodes, inputs on which it is the *first* wrong stage,
    and ``wrong_clean_input``: inputs on which the stage is wrong even when fed the exact code
    of the previous stage's truth (the error the stage adds by itself). Also the true nodes
    and units on per input (mean and max), which show sparsity through depth.

    Example:
        >>> from superpose import families, build
        >>> task = families.layered_circuit(20, 10, 3, np.random.default_rng(0), ops=("and", "or"))
        >>> rep = level_report(build(task, "circuit"), "exhaustive")
        >>> [row["wrong_end_to_end"] for row in rep.stages]
        [0, 0, 0]
    """
    from superpose.verification import MODES

    if mode not in MODES:
        raise SuperposeError(f"unknown verification mode {mode!r} (known: {', '.join(MODES)})")
    rng = rng if rng is not None else Seeds(0).rng("verify")
    if net.construction == "stream":
        return stream_level_report(
            net, mode, samples, rng, max_exhaustive=max_exhaustive, batch_size=batch_size
        )
    codes = stage_codes(net)
    sources = _input_sources(net, mode, samples, rng, max_exhaustive, batch_size)
    acc = [dict.fromkeys(_CIRCUIT_COUNTS, 0) for _ in codes]
    report = LevelReport(mode)
    for source in sources:
        for batch in source:
            report.inputs_checked += batch.shape[0]
            _count_circuit_batch(net, codes, batch, acc)
    stats = net.extras.get("stages", [{} for _ in codes])
    n = max(report.inputs_checked, 1)
    for i, (row, entry) in enumerate(zip(acc, codes, strict=True)):
        st = stats[i] if i < len(stats) else {}
        report.stages.append(_circuit_row(net, i, st, len(entry[0]), row, n))
    return report


_CIRCUIT_COUNTS = (
    "wrong_end_to_end",
    "first_wrong",
    "wrong_clean_input",
    "false_positives",
    "false_negatives",
    "true_nodes_sum",
    "true_nodes_max",
    "units_on_sum",
    "units_on_max",
)
"""What :func:`level_report` counts per stage over all checked inputs."""


def _count_circuit_batch(
    net: Any, codes: list[Any], batch: sparse.csr_array, acc: list[dict[str, int]]
) -> None:
    """Add one input batch to every stage's counts: run the layers in order, decoding each
    stage's nodes from what it computes (end to end) and from what it computes on the exact
    code of the previous stage's truth (clean input)."""
    n = batch.shape[0]
    truth = evaluate_nodes(net.task, batch)
    z = net.encode(batch)
    already = np.zeros(n, dtype=bool)
    prev_truth = None
    for i, (layer, entry) in enumerate(zip(net.layers, codes, strict=True)):
        nodes, code = entry[0], entry[1]
        inhib = entry[2] if len(entry) > 2 else None
        z_clean = None
        if i > 0 and prev_truth is not None:
            z_clean = layer.apply(codes[i - 1][1].encode(prev_truth))
        elif i == 0:
            z_clean = layer.apply(net.encode(batch))
        z = layer.apply(z)
        want = sparse.csr_array(truth[:, nodes], dtype=np.int8)
        got = _decode(code, z, inhib)
        got_clean = _decode(code, z_clean, inhib)
        on = np.diff(sparse.csr_array(z).indptr)
        already = _count_stage(acc[i], got, got_clean, want, on, already)
        prev_truth = want


def _count_stage(
    row: dict[str, int],
    got: sparse.csr_array,
    got_clean: sparse.csr_array,
    want: sparse.csr_array,
    on: np.ndarray,
    already: np.ndarray,
) -> np.ndarray:
    """Add one batch to one stage's counts: inputs with a wrong node (end to end, and first
    wrong after the stages that were not, ``already``), false positives and negatives, inputs
    wrong on clean input, true nodes and units on (``on``, per input). Returns the inputs
    wrong at this stage or an earlier one."""
    diff = sparse.csr_array(got - want)
    diff.eliminate_zeros()
    bad_rows = np.diff(diff.indptr) > 0
    row["wrong_end_to_end"] += int(bad_rows.sum())
    row["first_wrong"] += int((bad_rows & ~already).sum())
    row["false_positives"] += int((diff.data > 0).sum())
    row["false_negatives"] += int((diff.data < 0).sum())
    clean = sparse.csr_array(got_clean - want)
    clean.eliminate_zeros()
    row["wrong_clean_input"] += int((np.diff(clean.indptr) > 0).sum())
    t_count = np.diff(want.indptr)
    row["true_nodes_sum"] += int(t_count.sum())
    row["true_nodes_max"] = max(row["true_nodes_max"], int(t_count.max(initial=0)))
    row["units_on_sum"] += int(on.sum())
    row["units_on_max"] = max(row["units_on_max"], int(on.max(initial=0)))
    return already | bad_rows


def _circuit_row(
    net: Any, i: int, st: dict[str, Any], n_nodes: int, row: dict[str, int], n: int
) -> dict[str, Any]:
    """Stage i's report row: its counts over ``n`` inputs as rates and means, with the level
    and kind the network's metadata records for it (``st``)."""
    return {
        "stage": i + 1,
        "level": st.get("level", i + 1),
        "kind": st.get("kind", "level"),
        "nodes": int(n_nodes),
        "width": int(net.layers[i].n_out),
        **_rates(row, n),
    }


def _rates(row: dict[str, int], n: int, **beside_rate: Any) -> dict[str, Any]:
    """A stage's counts over ``n`` inputs as report fields, in the order counted: each count
    as it is, each ``*_sum`` as its ``*_mean``, and the ``error_rate`` (followed by
    ``beside_rate``) right after ``wrong_end_to_end``."""
    out: dict[str, Any] = {}
    for key, value in row.items():
        if key.endswith("_sum"):
            out[key.removesuffix("_sum") + "_mean"] = value / n
        else:
            out[key] = value
        if key == "wrong_end_to_end":
            out["error_rate"] = value / n
            out.update(beside_rate)
    return out


# --- per-level verification of a residual stream -----------------------------------------


def stream_codes(net: Any) -> tuple[np.ndarray, Any]:
    """``(row_of, codes)`` of a ``stream`` network: ``codes`` a Bloom code over the stream
    with one row per node written into it, ``row_of[node]`` its row (-1: never written).

    A freshly built network carries them; a loaded one is rebuilt from its task, parameters
    and seed (the ``build`` stream of :class:`superpose.seeds.Seeds`), and used only if the
    rebuilt layers equal the loaded ones.
    """
    return _recorded(net, "stream_codes", "stream", "stream codes", "the stream codes")


def stream_writes(net: Any) -> dict[str, Any]:
    """Who writes what into the stream of a ``stream`` network, and when each node's code is
    complete (the level its per-level check runs at).

    ``writers`` (node ids) with the stream bits each writes (``rows``) and the block that
    writes them (``write_level``; 0: the input embedding); ``complete_level`` per node. Pool
    units: every node is written by the block of its own level, with its own code. Exact units
    (:func:`superpose.constructions.stream._exact_writes`): the inputs and the real gates (and,
    xor / andnot with units) write their own code and the codes of the or-like gates reading
    them (or, copy, xor / andnot whose operands never meet: they have no unit), so an or-like
    gate's code is complete once the last of its operands' writers has run, and is checked
    after that block. A loaded network is rebuilt (as for :func:`stream_codes`).
    """
    writes = getattr(net, "stream_writes", None)
    if writes is not None:
        return writes
    if net.extras.get("units") == "exact":
        return _rebuilt(net, "stream", "the stream writes").stream_writes  # type: ignore[attr-defined]
    row_of, codes = stream_codes(net)
    writers = np.flatnonzero(row_of >= 0)
    level = np.asarray(net.task.node_level, dtype=np.int64)
    return {
        "writers": writers,
        "rows": sparse.csr_array(codes.membership[row_of[writers]]),
        "write_level": level[writers],
        "complete_level": level,
    }


def _input_sources(
    net: Any, mode: str, samples: int, rng: np.random.Generator, max_exhaustive: int, batch: int
) -> list[Any]:
    """The verifier's inputs for ``mode`` (:func:`superpose.verification.input_sources`)."""
    from superpose.verification import input_sources

    return [
        src
        for _, src in input_sources(
            net,
            mode,
            samples,
            rng,
            max_exhaustive=max_exhaustive,
            batch_size=batch,
            what="per-level check",
        )
    ]


def _predicted(net: Any, block: dict[str, Any], n_blocks: int) -> tuple[float | None, str]:
    """The error the plan predicts for one block's level, and where the number comes from:
    the block's own ``predicted_error`` when the plan recorded one, else the level's share
    of the network's failure target (the stream is sized so that each level's decode and
    fan-in each stay within ``failure / (2 (depth + 1))``: the level's bound is twice that)."""
    if block.get("predicted_error") is not None:
        return float(block["predicted_error"]), "plan"
    target = net.extras.get("failure_target")
    if target is None:
        return None, "none"
    return float(target) / (n_blocks + 1), "budget"


def stream_level_report(
    net: Any,
    mode: str = "random",
    samples: int = 2000,
    rng: np.random.Generator | None = None,
    *,
    max_exhaustive: int = 5_000_000,
    batch_size: int = 1024,
) -> LevelReport:
    """Check every block of a ``stream`` network against the truth of the gates it completes.

    After block L (its read and write layers), the gates whose codes are complete after it
    are decoded from the stream with their own codes and compared with the truth of the task
    (pool units: the gates of level L; exact units: the real gates of level L and every
    or-like gate -- or, copy, xor / andnot whose operands never meet, written by its
    operands' writers -- whose last operand is complete after block L, those completed by
    the input embedding counting at block 1: :func:`stream_writes`)
    (``wrong_end_to_end``: inputs on which one of them is wrong; false positives and
    negatives; ``first_wrong``: inputs on which this is the first wrong level).
    ``wrong_clean_input``: the same when block L reads the exact stream of the truth (the
    bits of every true writer of the blocks before L): the error the block adds by itself.
    ``wrong_at_output``: the level's gates decoded from the *final* stream (what an output
    read there sees, after every later block has written). Beside them, per level, the
    error the plan predicted (``predicted_error``, and ``prediction``: ``"plan"`` when the
    plan recorded a per-level prediction, ``"budget"`` when it is the level's share of the
    failure target) and the measured rate (``error_rate``).

    Example:
        >>> from superpose import families
        >>> from superpose.constructions import build
        >>> task = families.layered_circuit(12, 6, 3, np.random.default_rng(0), sparsity=2)
        >>> rep = stream_level_report(build(task, "stream", units="pool"), "exhaustive")
        >>> [row["wrong_end_to_end"] for row in rep.stages]
        [0, 0, 0]
        >>> rep = stream_level_report(build(task, "stream", units="exact"), "exhaustive")
        >>> [row["wrong_end_to_end"] for row in rep.stages]
        [0, 0, 0]
    """
    if net.construction != "stream":
        raise SuperposeError(
            f"a stream per-level check needs a 'stream' network; this one was built by "
            f"{net.construction!r}"
        )
    rng = rng if rng is not None else Seeds(0).rng("verify")
    sources = _input_sources(net, mode, samples, rng, max_exhaustive, batch_size)
    blocks = _stream_blocks(net)
    acc = [dict.fromkeys(_STREAM_COUNTS, 0) for _ in blocks.blocks]
    report = LevelReport(mode)
    for source in sources:
        for batch in source:
            report.inputs_checked += batch.shape[0]
            _count_stream_batch(net, blocks, batch, acc)
    n = max(report.inputs_checked, 1)
    for i, row in enumerate(acc):
        report.stages.append(_stream_row(net, blocks, i, row, n))
    return report


_STREAM_COUNTS = (
    "wrong_end_to_end",
    "first_wrong",
    "wrong_clean_input",
    "wrong_at_output",
    "false_positives",
    "false_negatives",
    "true_nodes_sum",
    "true_nodes_max",
    "units_on_sum",
    "units_on_max",
)
"""What :func:`stream_level_report` counts per block over all checked inputs."""


@dataclass(frozen=True)
class _StreamBlocks:
    """A stream network's blocks as the per-level check reads them: each block's level and
    kind (``block`` or ``cleanup``), the nodes it is checked on (the gates it completes, or
    the nodes a clean-up copies) and their codes in the stream, which of those are still in
    the final stream, every writer (its node, its bits in the stream, the block that writes
    it) and which blocks erase the stream, for the clean-input check."""

    blocks: list[dict[str, Any]]
    levels: list[int]
    kinds: list[str]
    nodes_of: list[np.ndarray]
    level_codes: list[Any]
    at_end: list[np.ndarray]
    writers: np.ndarray
    write_rows: sparse.csr_array
    write_block: np.ndarray
    erase: np.ndarray


def _stream_blocks(net: Any) -> _StreamBlocks:
    """Which gates each block completes (:func:`stream_writes`; those completed by the input
    embedding count at block 1) and their codes, read from the network's stream layout."""
    from superpose.codes import BloomCode
    from superpose.levels import layout

    task = net.task
    m = task.features
    row_of, codes = stream_codes(net)
    blocks = net.extras.get("residual", {}).get("blocks", [])
    if len(blocks) * 2 != len(net.layers):
        raise SuperposeError(
            f"a stream network has two layers per block: {len(net.layers)} layers for "
            f"{len(blocks)} blocks"
        )
    member = sparse.csr_array(codes.membership, dtype=np.float32)
    levels = [int(b["level"]) for b in blocks]
    lay = layout(task)
    writes = stream_writes(net)
    complete = np.asarray(writes["complete_level"], dtype=np.int64)
    needed = m + np.concatenate([np.asarray(g, dtype=np.int64) for g in lay.gates])
    done = np.maximum(complete[needed], 1)
    # A clean-up block (exact units) is checked on the nodes it copies; every other block on
    # the gates it completes. After a clean-up only what it copied (and what later blocks
    # write) is in the stream: the clean input of a block starts at the last clean-up.
    block_nodes = writes.get("block_nodes") or [None] * len(blocks)
    kinds = [b.get("kind", "block") for b in blocks]
    nodes_of = [
        needed[done == lv] if bn is None else np.asarray(bn, dtype=np.int64)
        for lv, bn in zip(levels, block_nodes, strict=True)
    ]
    level_codes = [BloomCode(sparse.csr_array(member[row_of[nodes]])) for nodes in nodes_of]
    write_level = np.asarray(writes["write_level"], dtype=np.int64)
    if "write_block" in writes:
        write_block = np.asarray(writes["write_block"], dtype=np.int64)
        erase = np.asarray(writes["erase_blocks"], dtype=bool)
    else:  # every block writes its own level's codes, none erases
        index = {lv: i for i, lv in enumerate(levels)}
        write_block = np.array([index.get(int(x), -1) for x in write_level], dtype=np.int64)
        write_block[write_level == 0] = -1
        erase = np.zeros(len(blocks), dtype=bool)
    alive = np.asarray(writes.get("alive_at_end", np.ones(task.n_nodes, dtype=bool)))
    return _StreamBlocks(
        blocks,
        levels,
        kinds,
        nodes_of,
        level_codes,
        [alive[nodes] for nodes in nodes_of],
        np.asarray(writes["writers"], dtype=np.int64),
        sparse.csr_array(writes["rows"], dtype=np.float32),
        write_block,
        erase,
    )


def _count_stream_batch(
    net: Any, sb: _StreamBlocks, batch: sparse.csr_array, acc: list[dict[str, int]]
) -> None:
    """Add one input batch to every block's counts: run the blocks in order, decoding each
    block's gates from the stream it leaves (end to end) and from what it leaves when it
    reads the exact stream of the truth (clean input); then each block's gates once more
    from the final stream (at the output)."""
    n = batch.shape[0]
    truth = sparse.csr_array(evaluate_nodes(net.task, batch), dtype=np.int8)
    z = net.encode(batch)
    already = np.zeros(n, dtype=bool)
    wants = []
    for i in range(len(sb.levels)):
        read, write = net.layers[2 * i], net.layers[2 * i + 1]
        last_erase = max([j for j in range(i) if sb.erase[j]], default=-1)
        before = (sb.write_block < i) & (sb.write_block >= last_erase)
        t_rows = sparse.csr_array(truth[:, sb.writers[before]], dtype=np.float32)
        clean = sparse.csr_array((t_rows @ sb.write_rows[before]) > 0, dtype=np.float32)
        h = read.apply(z)
        z = write.apply(h)
        want = sparse.csr_array(truth[:, sb.nodes_of[i]], dtype=np.int8)
        wants.append(want)
        got = _decode(sb.level_codes[i], z, None)
        got_clean = _decode(sb.level_codes[i], write.apply(read.apply(clean)), None)
        on = np.diff(sparse.csr_array(sparse.csr_array(h)[:, z.shape[1] :]).indptr)
        already = _count_stage(acc[i], got, got_clean, want, on, already)
    for i, want in enumerate(wants):
        # Only what is still in the final stream (a clean-up drops the rest).
        keep = np.flatnonzero(sb.at_end[i])
        got = sparse.csr_array(_decode(sb.level_codes[i], z, None))[:, keep]
        fdiff = sparse.csr_array(got - sparse.csr_array(want)[:, keep])
        fdiff.eliminate_zeros()
        acc[i]["wrong_at_output"] += int((np.diff(fdiff.indptr) > 0).sum())


def _stream_row(net: Any, sb: _StreamBlocks, i: int, row: dict[str, int], n: int) -> dict[str, Any]:
    """Block i's report row: its counts over ``n`` inputs as rates and means, beside the
    error its plan predicted."""
    block = sb.blocks[i]
    predicted, source = _predicted(net, block, len(sb.blocks))
    return {
        "stage": i + 1,
        "level": sb.levels[i],
        "kind": sb.kinds[i],
        "nodes": int(len(sb.nodes_of[i])),
        "width": int(block.get("hidden_units", net.layers[2 * i].n_out)),
        **_rates(row, n, predicted_error=predicted, prediction=source),
    }


# --- per-stage exact certificates ---------------------------------------------------------


def stage_network(net: Any, i: int, codes: list | None = None) -> Any:
    """Stage ``i`` (0-based) of a ``circuit`` network as a one-level network of its own.

    Its "features" are the nodes the stage reads (the task's inputs for stage 0, else the
    nodes of stage i - 1), its input code the code those nodes are written in, its gates the
    nodes it holds (a gate of this level, or a ``copy`` of a carried node) and its output code
    the stage's code. Fed the clean code of the true nodes before it, it computes exactly what
    the stage adds by itself (``wrong_clean_input`` of :func:`level_report`).

    Example:
        >>> from superpose import families
        >>> from superpose.constructions import build
        >>> task = families.layered_circuit(20, 10, 2, np.random.default_rng(0), ops=("and", "or"))
        >>> net = build(task, "circuit", rng=np.random.default_rng(0))
        >>> stage_network(net, 1).task.features == len(stage_codes(net)[0][0])
        True
    """
    from superpose.network import Network

    task = net.task
    codes = stage_codes(net) if codes is None else codes  # a loaded net rebuilds them
    m = task.features
    before = np.arange(m, dtype=np.int64) if i == 0 else np.asarray(codes[i - 1][0], np.int64)
    in_code = net.input_code if i == 0 else codes[i - 1][1]
    nodes = np.asarray(codes[i][0], dtype=np.int64)
    position = {int(n): j for j, n in enumerate(before.tolist())}
    gates: list[tuple[str, list[int]]] = []
    for n in nodes.tolist():
        if n in position:  # held by the stage before: carried (copied) here
            gates.append(("copy", [position[n]]))
        else:
            g = n - m
            gates.append((OPS[int(task.ops[g])], [position[int(v)] for v in task.operands(g)]))
    sub = Task.from_gates(len(before), task.sparsity, gates)
    return Network([net.layers[i]], in_code, codes[i][1], sub)


def stage_certificates(net: Any, budget_seconds: float | None = None) -> list[dict[str, Any]]:
    """The exact certificate of every stage whose inputs it can cover, or why not.

    Stage i reads at most ``b`` true nodes at once (the task's sparsity for stage 0, else the
    stage bound of the stage before, :func:`active_bounds`); when b <= 3 and the stage decodes
    without detectors, :func:`superpose.certificate.certify` proves it right or wrong on
    *every* set of at most b nodes before it. For stage 0 that is the network's own inputs
    (exact end to end); for later stages it covers the clean code of any such set, a
    superset of the true sets that occur (what the stage adds by itself). Deeper stages of
    random circuits usually hold more than three true nodes, and say so.
    """
    from superpose.certificate import certify, unsupported

    codes = stage_codes(net)
    stages = net.extras.get("stages", [])
    out: list[dict[str, Any]] = []
    for i, entry in enumerate(codes):
        row: dict[str, Any] = {"stage": i + 1}
        if i == 0:
            bound = int(net.task.sparsity)
        else:
            prev = stages[i - 1] if i - 1 < len(stages) else {}
            bound = int(prev.get("stage_active_bound", 0) or 0)
        row["inputs_true_at_most"] = bound
        inhib = entry[2] if len(entry) > 2 else None
        if inhib is not None and (np.asarray(inhib) >= 0).any():
            row["skipped"] = "xor / andnot detectors inhibit this stage's decode"
        elif bound < 1 or bound > 3:
            row["skipped"] = f"up to {bound} true nodes reach this stage (certificate: <= 3)"
        else:
            sub = stage_network(net, i, codes)
            why = unsupported(sub, bound)
            if why is not None:
                row["skipped"] = why
            else:
                cert = certify(sub, bound, budget_seconds=budget_seconds)
                if not cert.complete:
                    row["skipped"] = f"stopped: {cert.stats.get('stopped', 'budget')}"
                else:
                    row.update(
                        method=cert.method,
                        wrong_outputs=int(len(cert.wrong_outputs)),
                        inputs_with_error=int(cert.inputs_with_error),
                        end_to_end=i == 0,
                    )
        out.append(row)
    return out
