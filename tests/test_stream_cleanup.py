"""Clean-up blocks of the ``stream`` construction (exact units): a block that erases the
stream and writes back only the nodes still needed later. Checked against brute force on
every s-sparse input, per level (``verify --levels``), through save / load and the residual
torch export."""

from __future__ import annotations

import numpy as np
import pytest
from helpers import all_sparse_rows, every_op_gates, rows_to_csr

from superpose import SuperposeError, Task, families, load_network, save_network, verify
from superpose.constructions import build
from superpose.constructions.stream import Stream
from superpose.evaluation import evaluate_nodes
from superpose.seeds import Seeds
from superpose.stage_check import stream_level_report

EVERY_OP = [*every_op_gates(), ("or", [24, 1])]  # 26, level 5


def _tasks(s: int) -> dict[str, Task]:
    return {
        "every-op": Task.from_gates(10, s, EVERY_OP, outputs=[26, 25, 16]),
        "xor": families.layered_circuit(
            12, 6, 5, Seeds(14).rng("task"), ops=("xor",), sparsity=s, outputs="last"
        ),
        "xor3": families.layered_circuit(
            12,
            6,
            4,
            Seeds(15).rng("task"),
            ops=("xor", "and", "or"),
            fan_in=3,
            sparsity=s,
            outputs="last",
        ),
        "andnot-or": families.layered_circuit(
            12, 6, 5, Seeds(16).rng("task"), ops=("andnot", "or"), sparsity=s, outputs="last"
        ),
    }


def _all(task: Task):
    return rows_to_csr(all_sparse_rows(task.features, task.sparsity), task.features)


def _live(task: Task, k: int) -> set[int]:
    """Independently: nodes of level <= k that a later gate reads, or outputs."""
    out = {int(o) for o in task.outputs if task.node_level[o] <= k}
    for g in range(task.n_gates):
        if task.gate_level[g] > k:
            out |= {int(v) for v in task.operands(g) if task.node_level[v] <= k}
    return out


CASES = [
    (s, name, k)
    for s in (2, 3)
    for name in ("every-op", "xor", "xor3", "andnot-or")
    for k in ((2,), (1, 3))
]


@pytest.mark.parametrize(("s", "name", "cleanup"), CASES)
def test_forced_cleanup_is_exact_on_every_input(s, name, cleanup):
    task = _tasks(s)[name]
    net = build(task, "stream", seed=2, units="exact", cleanup=cleanup)
    kinds = [b.get("kind", "block") for b in net.extras["residual"]["blocks"]]
    assert kinds.count("cleanup") == len(cleanup)
    assert [c["after_level"] for c in net.extras["cleanups"]] == list(cleanup)
    x = _all(task)
    truth = evaluate_nodes(task, x).toarray()[:, task.outputs]
    np.testing.assert_array_equal(net.predict(x).toarray(), truth)
    assert verify(net, "exhaustive").inputs_with_error == 0
    # neurons: the stream once + every block's hidden units, clean-ups included
    res = net.extras["residual"]
    assert res["neurons"] == res["stream_width"] + sum(b["hidden_units"] for b in res["blocks"])


def test_cleanup_erases_everything_but_the_live_nodes():
    task = _tasks(2)["every-op"]
    net = build(task, "stream", seed=0, units="exact", cleanup=(2,))
    x = _all(task)
    truth = evaluate_nodes(task, x).toarray().astype(bool)
    live = sorted(_live(task, 2))
    blocks = net.extras["residual"]["blocks"]
    i = next(j for j, b in enumerate(blocks) if b.get("kind") == "cleanup")
    assert blocks[i]["copy_units"] == len(live)
    streams = net.forward(net.encode(x), all_layers=True)[1::2]
    after = streams[i].toarray() > 0
    # Expected: every bit of a true live node's code, plus those of the or-like gates above
    # level 2 it feeds (closure); nothing else. Check the first part exactly and that every
    # on bit is explained by a true node of level > 2 or a live one.
    _, code = net.stream_codes
    memb = code.membership.toarray() > 0
    for r in range(x.shape[0]):
        on_live = memb[[v for v in live if truth[r, v]]].any(axis=0)
        assert not (on_live & ~after[r]).any()
        allowed = memb[
            [
                v
                for v in range(task.n_nodes)
                if truth[r, v] and (v in live or task.node_level[v] > 2)
            ]
        ].any(axis=0)
        assert not (after[r] & ~allowed).any()


def test_verify_levels_with_cleanups_finds_no_error_and_checks_the_copies():
    task = _tasks(2)["every-op"]
    net = build(task, "stream", seed=1, units="exact", cleanup=(1, 3))
    rep = stream_level_report(net, "exhaustive")
    kinds = [r["kind"] for r in rep.stages]
    assert kinds == ["block", "cleanup", "block", "block", "cleanup", "block", "block"]
    for row in rep.stages:
        assert row["wrong_end_to_end"] == row["wrong_clean_input"] == row["wrong_at_output"] == 0
        assert row["predicted_error"] is not None
    assert rep.stages[1]["nodes"] == len(_live(task, 1))
    assert rep.stages[4]["nodes"] == len(_live(task, 3))
    # every needed gate is checked once by a computing block
    blocks = [r for r in rep.stages if r["kind"] == "block"]
    assert sum(r["nodes"] for r in blocks) == task.n_gates


def test_a_broken_cleanup_is_found_at_its_block():
    task = _tasks(2)["every-op"]
    net = build(task, "stream", seed=1, units="exact", cleanup=(2,))
    blocks = net.extras["residual"]["blocks"]
    i = next(j for j, b in enumerate(blocks) if b.get("kind") == "cleanup")
    write = net.layers[2 * i + 1]
    d = net.input_code.width
    w = write.weight.tolil()
    w[:, d + 1 :] = 0  # the copies write nothing: the clean-up erases everything
    write.weight = w.tocsr()
    rep = stream_level_report(net, "exhaustive")
    assert all(r["wrong_end_to_end"] == 0 for r in rep.stages[:i])
    assert rep.stages[i]["wrong_end_to_end"] > 0 and rep.stages[i]["false_positives"] == 0
    assert rep.stages[i]["wrong_clean_input"] > 0


def test_auto_places_a_cleanup_only_where_the_model_says_it_pays():
    task = families.layered_circuit(
        30, 12, 6, Seeds(4).rng("task"), ops=("and", "or", "xor"), sparsity=2, outputs="last"
    )
    auto, none = Stream().plan(task), Stream(cleanup="none").plan(task)
    assert auto["cleanups"], "a deep last-level task should get a clean-up"
    assert auto["neurons"] < none["neurons"]
    # at the width it chose, the same stream without clean-up would break the budget
    assert auto["error_without_cleanup"] > auto["failure"]
    total = sum(auto["predicted_errors"]) + auto["predicted_output_errors"]
    total += sum(c["predicted_error"] for c in auto["cleanups"])
    assert total <= auto["failure"] * (1 + 1e-9)
    net = build(task, "stream", seed=0)
    assert verify(net, "exhaustive").inputs_with_error == 0
    # every gate an output: every node is live, a clean-up cannot pay
    every = families.layered_circuit(
        30, 12, 6, Seeds(4).rng("task"), ops=("and", "or", "xor"), sparsity=2
    )
    assert Stream().plan(every)["cleanups"] == []


def test_pool_units_refuse_a_cleanup_and_bad_levels_are_named():
    task = _tasks(2)["xor"]
    with pytest.raises(SuperposeError, match="exact units only"):
        build(task, "stream", units="pool", cleanup=(2,))
    with pytest.raises(SuperposeError, match="after a level 1..4"):
        build(task, "stream", units="exact", cleanup=(5,))
    with pytest.raises(SuperposeError, match="cleanup"):
        Stream(cleanup="sometimes")


def test_params_saved_and_loaded(tmp_path):
    task = _tasks(2)["every-op"]
    assert "cleanup" not in Stream().get_params()
    net = build(task, "stream", seed=3, units="exact", cleanup=(2,))
    assert net.params["cleanup"] == [2]
    save_network(net, tmp_path / "n")
    back = load_network(tmp_path / "n")
    x = _all(task)
    np.testing.assert_array_equal(back.predict(x).toarray(), net.predict(x).toarray())
    rep = stream_level_report(back, "exhaustive")  # rebuilt from task, params and seed
    assert [r["kind"] for r in rep.stages].count("cleanup") == 1
    assert all(r["wrong_end_to_end"] == 0 for r in rep.stages)


def test_torch_export_keeps_the_cleanup_as_a_residual_block():
    torch = pytest.importorskip("torch")
    pytest.importorskip("superpose.torch")
    for s in (2, 3):
        task = _tasks(s)["xor3"]
        net = build(task, "stream", seed=0, units="exact", cleanup=(1, 2))
        x = _all(task)
        want = net.predict(x).toarray()
        np.testing.assert_array_equal(want, evaluate_nodes(task, x).toarray()[:, task.outputs])
        module = net.to_torch()
        assert type(module).__name__ == "ResidualModule"
        assert len(module.blocks) == len(net.extras["residual"]["blocks"])
        got = module(torch.from_numpy(x.toarray().astype(np.float32))).numpy()
        np.testing.assert_array_equal(got, want.astype(np.float32))
