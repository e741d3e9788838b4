"""Per-level checks of ``stream`` networks (``verify --levels``): each block's gates decoded
from the stream after that block, against brute-force evaluation of the task."""

from __future__ import annotations

import json

import numpy as np
import pytest
from helpers import all_sparse_rows, rows_to_csr, run
from scipy import sparse

from superpose import SuperposeError, Task, families, load_network, save_network
from superpose.constructions import build
from superpose.evaluation import evaluate_nodes
from superpose.network import Layer, Network
from superpose.stage_check import level_report, stream_codes, stream_level_report
from superpose.task import OPS


def _task(seed: int = 3, depth: int = 3, ops=("and", "or", "xor")) -> Task:
    return families.layered_circuit(12, 6, depth, np.random.default_rng(seed), ops=ops, sparsity=2)


def _brute(net: Network) -> tuple[list[int], list[int]]:
    """Per level: inputs on which a gate of that level decodes wrong from the stream after its
    block, and from the final stream; computed independently of the library's report."""
    task = net.task
    x = rows_to_csr(all_sparse_rows(task.features, task.sparsity), task.features)
    truth = evaluate_nodes(task, x).toarray().astype(bool)
    row_of, codes = net.stream_codes
    streams = net.forward(net.encode(x), all_layers=True)[1::2]
    after, final = [], []
    for level, z in enumerate(streams, start=1):
        nodes = task.features + np.flatnonzero(task.node_level[task.features :] == level)
        want = truth[:, nodes]
        got = codes.decode(z)[:, row_of[nodes]].toarray().astype(bool)
        end = codes.decode(streams[-1])[:, row_of[nodes]].toarray().astype(bool)
        after.append(int((got != want).any(axis=1).sum()))
        final.append(int((end != want).any(axis=1).sum()))
    return after, final


def _with_layer(net: Network, i: int, layer: Layer) -> Network:
    layers = list(net.layers)
    layers[i] = layer
    out = Network(
        layers,
        net.input_code,
        net.output_code,
        net.task,
        net.construction,
        net.params,
        extras=net.extras,
    )
    out.stream_codes = net.stream_codes
    return out


@pytest.mark.parametrize("ops", [("and", "or", "xor"), ("and", "andnot", "or")])
def test_every_level_right_and_matching_brute_force(ops):
    task = _task(ops=ops)
    net = build(task, "stream", seed=1, units="pool")
    rep = level_report(net, "exhaustive")
    assert rep.inputs_checked == len(all_sparse_rows(task.features, task.sparsity))
    after, final = _brute(net)
    assert [r["wrong_end_to_end"] for r in rep.stages] == after == [0, 0, 0]
    assert [r["wrong_at_output"] for r in rep.stages] == final == [0, 0, 0]
    assert [r["wrong_clean_input"] for r in rep.stages] == [0, 0, 0]
    assert [r["level"] for r in rep.stages] == [1, 2, 3]
    assert [r["nodes"] for r in rep.stages] == [6, 6, 6]
    for r, block in zip(rep.stages, net.extras["residual"]["blocks"], strict=True):
        assert r["width"] == block["hidden_units"]
        assert r["predicted_error"] is not None and 0 < r["predicted_error"] < 1
        assert r["prediction"] in ("plan", "budget")
        # Units on: each true gate of the level lights its pool units or private detectors.
        assert r["units_on_max"] >= r["true_nodes_max"]


def test_a_broken_level_is_found_where_it_breaks():
    task = _task(seed=5)
    net = build(task, "stream", seed=2, units="pool")
    row_of, codes = net.stream_codes
    d = net.input_code.width
    # Level 2's block stops writing the first bit of every level-2 gate's code.
    level2 = task.features + np.flatnonzero(task.node_level[task.features :] == 2)
    bits = np.unique([codes.membership[[row_of[g]]].indices[0] for g in level2])
    write = net.layers[3]
    w = sparse.lil_array(write.weight)
    for b in bits:
        w[int(b), d:] = 0
    broken = _with_layer(net, 3, Layer(sparse.csr_array(w), write.bias, "step"))
    rep = stream_level_report(broken, "exhaustive")
    after, final = _brute(broken)
    got = [r["wrong_end_to_end"] for r in rep.stages]
    assert got == after
    assert got[0] == 0 and got[1] > 0
    assert rep.stages[1]["first_wrong"] == got[1]
    assert rep.stages[1]["false_negatives"] > 0
    assert rep.stages[1]["wrong_clean_input"] > 0  # the block itself is wrong
    assert [r["wrong_at_output"] for r in rep.stages] == final
    # The network as built is right on the same inputs.
    assert [r["wrong_end_to_end"] for r in stream_level_report(net, "exhaustive").stages] == [
        0,
        0,
        0,
    ]


def test_a_wrong_read_threshold_breaks_only_its_level():
    task = _task(seed=6, ops=("and", "or"))
    net = build(task, "stream", seed=0, units="pool")
    d = net.input_code.width
    read = net.layers[0]  # block 1's hidden units fire on any bit they read
    bias = read.bias.copy()
    bias[d:] = -1
    broken = _with_layer(net, 0, Layer(read.weight, bias, "step"))
    rep = stream_level_report(broken, "exhaustive")
    after, _ = _brute(broken)
    assert [r["wrong_end_to_end"] for r in rep.stages] == after
    assert after[0] > 0 and rep.stages[0]["first_wrong"] == after[0]
    # Lower thresholds only switch units on: level 1 has false positives, no false negatives.
    assert rep.stages[0]["false_positives"] > 0 and rep.stages[0]["false_negatives"] == 0
    assert rep.stages[0]["wrong_clean_input"] == after[0]  # block 1 reads the exact inputs


def test_loaded_network_rebuilds_its_codes_and_the_cli_reports_levels(tmp_path, capsys):
    task = _task(seed=4)
    net = build(task, "stream", seed=3, units="pool")
    save_network(net, tmp_path / "net")
    back = load_network(tmp_path / "net")
    assert not hasattr(back, "stream_codes")
    row_of, codes = stream_codes(back)
    assert np.array_equal(row_of, net.stream_codes[0])
    assert (codes.membership != net.stream_codes[1].membership).nnz == 0
    code, out, _ = run(
        capsys, "verify", tmp_path / "net", "--mode", "exhaustive", "--levels", "--json"
    )
    assert code == 0
    levels = json.loads(out)["levels"]
    assert [r["wrong_end_to_end"] for r in levels["stages"]] == [0, 0, 0]
    assert levels["inputs_checked"] == len(all_sparse_rows(task.features, task.sparsity))
    code, out, _ = run(capsys, "verify", tmp_path / "net", "--mode", "random", "--levels")
    assert code == 0 and "per-level check, residual stream" in out


def test_stream_report_refuses_other_networks():
    net = build(_task(), "circuit")
    with pytest.raises(SuperposeError, match="needs a 'stream' network"):
        stream_level_report(net, "random", 10)


# --- exact units: or-like gates are written by their operands' writers --------------------


def _complete_levels(task: Task) -> np.ndarray:
    """Per node, the block after which an exact-unit stream holds its complete code, from
    brute force alone: an and gate, a k-input xor and a 2-input xor / andnot whose operands
    are true together on some s-sparse input have units (their own level); an or-like gate
    (or, copy, xor / andnot whose operands never meet) is written by each of its operands'
    writers, so it is complete with the last of the operands it passes on (andnot: its
    first)."""
    x = rows_to_csr(all_sparse_rows(task.features, task.sparsity), task.features)
    truth = evaluate_nodes(task, x).toarray().astype(bool)
    m = task.features
    done = np.zeros(task.n_nodes, dtype=np.int64)
    for g in np.argsort(task.gate_level, kind="stable").tolist():
        op = OPS[int(task.ops[g])]
        ops = [int(v) for v in task.operands(g)]
        meet = len(ops) > 2 or bool((truth[:, ops[0]] & truth[:, ops[-1]]).any())
        if op == "and" or (op in ("xor", "andnot") and meet):
            done[m + g] = task.gate_level[g]
        else:
            passed = ops[:1] if op == "andnot" else ops
            done[m + g] = max(int(done[v]) for v in passed)
    return done


def _brute_exact(net: Network) -> tuple[list[list[int]], list[int], list[int]]:
    """Per block: the gates complete after it (block 1 also those the input embedding
    completes), inputs on which one of them decodes wrong after the block, and from the final
    stream."""
    task = net.task
    m = task.features
    x = rows_to_csr(all_sparse_rows(task.features, task.sparsity), task.features)
    truth = evaluate_nodes(task, x).toarray().astype(bool)
    row_of, codes = net.stream_codes
    streams = net.forward(net.encode(x), all_layers=True)[1::2]
    done = np.maximum(_complete_levels(task), 1)
    nodes_of, after, final = [], [], []
    for level, z in enumerate(streams, start=1):
        nodes = m + np.flatnonzero(done[m:] == level)
        want = truth[:, nodes]
        got = codes.decode(z)[:, row_of[nodes]].toarray().astype(bool)
        end = codes.decode(streams[-1])[:, row_of[nodes]].toarray().astype(bool)
        nodes_of.append(nodes.tolist())
        after.append(int((got != want).any(axis=1).sum()))
        final.append(int((end != want).any(axis=1).sum()))
    return nodes_of, after, final


def _exact_task(seed: int) -> Task:
    return families.layered_circuit(
        12, 6, 4, np.random.default_rng(seed), ops=("and", "or", "xor", "andnot"), sparsity=2
    )


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_exact_units_every_level_right_and_matching_brute_force(seed):
    task = _exact_task(seed)
    net = build(task, "stream", seed=seed, units="exact")
    assert net.extras["units"] == "exact"
    rep = level_report(net, "exhaustive")
    nodes_of, after, final = _brute_exact(net)
    # The report checks each gate after the block that completes its code.
    assert net.stream_writes["complete_level"][task.features :].tolist() == (
        _complete_levels(task)[task.features :].tolist()
    )
    assert [r["nodes"] for r in rep.stages] == [len(n) for n in nodes_of]
    assert sum(r["nodes"] for r in rep.stages) == task.n_gates
    # Or-like gates are complete before their own level (written with their operands).
    assert (_complete_levels(task)[task.features :] < task.gate_level).any()
    assert [r["wrong_end_to_end"] for r in rep.stages] == after == [0, 0, 0, 0]
    assert [r["wrong_at_output"] for r in rep.stages] == final == [0, 0, 0, 0]
    assert [r["wrong_clean_input"] for r in rep.stages] == [0, 0, 0, 0]
    for r, block in zip(rep.stages, net.extras["residual"]["blocks"], strict=True):
        assert r["prediction"] == "plan"
        assert r["predicted_error"] == block["predicted_error"] > 0
        assert r["width"] == block["hidden_units"]


def test_exact_units_k_input_xor_levels():
    task = CASES_K()
    net = build(task, "stream", seed=0, units="exact")
    rep = stream_level_report(net, "exhaustive")
    nodes_of, after, final = _brute_exact(net)
    assert [r["nodes"] for r in rep.stages] == [len(n) for n in nodes_of]
    assert [r["wrong_end_to_end"] for r in rep.stages] == after == [0] * len(after)
    assert [r["wrong_at_output"] for r in rep.stages] == final


def CASES_K() -> Task:  # noqa: N802 - a task factory, named like the conformance cases
    return Task.from_gates(
        8,
        3,
        [
            ("xor", [0, 1, 2, 3]),  # 8
            ("or", [4, 5]),  # 9: complete from the inputs
            ("and", [8, 9]),  # 10
            ("xor", [8, 9, 6]),  # 11
            ("or", [10, 7]),  # 12: complete after block 2
            ("copy", [11]),  # 13
            ("xor", [12, 13, 8]),  # 14
        ],
    )


def test_exact_units_broken_and_unit_is_found_at_its_level():
    """Block 3's and units lose their writes: the gates block 3 completes go wrong there
    (false negatives), levels 1-2 stay right, and the report matches brute force."""
    task = _exact_task(1)
    net = build(task, "stream", seed=1, units="exact")
    d = net.input_code.width
    blocks = net.extras["residual"]["blocks"]
    assert blocks[2]["and_units"] > 0
    write = net.layers[5]
    w = sparse.lil_array(write.weight)
    w[:, d : d + blocks[2]["and_units"]] = 0
    broken = _with_layer(net, 5, Layer(sparse.csr_array(w), write.bias, "step"))
    broken.stream_writes = net.stream_writes
    rep = stream_level_report(broken, "exhaustive")
    _, after, final = _brute_exact(broken)
    got = [r["wrong_end_to_end"] for r in rep.stages]
    assert got == after
    assert got[:2] == [0, 0] and got[2] > 0
    assert rep.stages[2]["first_wrong"] == got[2]
    assert rep.stages[2]["false_negatives"] > 0 and rep.stages[2]["false_positives"] == 0
    assert rep.stages[2]["wrong_clean_input"] > 0  # the block itself is wrong
    assert [r["wrong_at_output"] for r in rep.stages] == final


def test_exact_units_wrong_read_threshold_breaks_its_level():
    task = _exact_task(2)
    net = build(task, "stream", seed=2, units="exact")
    d = net.input_code.width
    read = net.layers[2]  # block 2's units fire on any bit they read
    bias = read.bias.copy()
    bias[d:] = -1
    broken = _with_layer(net, 2, Layer(read.weight, bias, "step"))
    broken.stream_writes = net.stream_writes
    rep = stream_level_report(broken, "exhaustive")
    _, after, _ = _brute_exact(broken)
    assert [r["wrong_end_to_end"] for r in rep.stages] == after
    assert after[0] == 0 and after[1] > 0
    assert rep.stages[1]["first_wrong"] == after[1]
    assert rep.stages[1]["wrong_clean_input"] > 0


def test_exact_units_loaded_network_levels_via_cli(tmp_path, capsys):
    task = _exact_task(0)
    net = build(task, "stream", seed=3, units="exact")
    save_network(net, tmp_path / "net")
    code, out, _ = run(
        capsys, "verify", tmp_path / "net", "--mode", "exhaustive", "--levels", "--json"
    )
    assert code == 0
    levels = json.loads(out)["levels"]
    assert [r["wrong_end_to_end"] for r in levels["stages"]] == [0, 0, 0, 0]
    assert [r["nodes"] for r in levels["stages"]] == [
        r["nodes"] for r in stream_level_report(net, "exhaustive").stages
    ]
