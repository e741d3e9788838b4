"""The ``stream`` construction: exhaustive correctness on small deep tasks of every op, the
residual structure and accounting, save / load, and clear refusals."""

from __future__ import annotations

import numpy as np
import pytest
from helpers import all_sparse_rows, assert_one_line_error, n_sparse, rows_to_csr, run

from superpose import SuperposeError, Task, evaluate, families, load_network, save_network
from superpose.constructions import build
from superpose.constructions.stream import Stream, residual_counts


def _all_inputs(task: Task):
    return rows_to_csr(all_sparse_rows(task.features, task.sparsity), task.features)


def _exhaustive_errors(net, task: Task) -> int:
    x = _all_inputs(task)
    truth = evaluate(task, x).values.astype(bool)
    got = net.predict(x).astype(bool)
    return int((truth != got).sum())


OPS = {
    "and": ("and",),
    "or": ("or",),
    "xor": ("xor",),
    "andnot": ("andnot", "or"),
    "mixed": ("and", "or", "xor"),
}


@pytest.mark.parametrize("units", ["exact", "pool"])
@pytest.mark.parametrize("depth", [2, 3, 5])
@pytest.mark.parametrize("ops", sorted(OPS))
def test_every_gate_exact_on_every_sparse_input(ops, depth, units):
    task = families.layered_circuit(
        12, 6, depth, np.random.default_rng(depth), ops=OPS[ops], sparsity=2
    )
    assert task.depth == depth and len(task.outputs) == task.n_gates
    net = build(task, "stream", seed=1, units=units)
    assert net.extras.get("units", "pool") == units
    assert _exhaustive_errors(net, task) == 0
    assert len(net.layers) == 2 * depth  # one read and one write layer per block


@pytest.mark.parametrize("ops", ["and", "mixed"])
def test_disjoint_regions_pass_the_checked_build(ops):
    # Opt-in layout: the raw plan is not trusted on small tasks (it can refuse, or be wrong:
    # 37 of 821 inputs on the mixed task at width_scale 1); the checked build grows it.
    import superpose

    task = families.layered_circuit(40, 30, 3, np.random.default_rng(7), ops=OPS[ops], sparsity=2)
    net = superpose.build(task, "stream", seed=1, regions="disjoint", units="pool", fallback=False)
    assert net.construction == "stream" and net.extras["regions"] == "disjoint"
    assert sum(net.extras["region_widths"]) == net.extras["residual"]["stream_width"]
    assert _exhaustive_errors(net, task) == 0


def test_k_input_gates_and_inputs_as_outputs():
    task = Task.from_gates(
        9,
        3,
        [
            ("and", [0, 1, 2]),
            ("or", [3, 4, 9]),
            ("xor", [10, 5]),
            ("andnot", [11, 6]),
            ("copy", [7]),
            ("and", [12, 13, 8]),
        ],
        outputs=[9, 10, 11, 12, 13, 14, 0, 8],
    )
    net = build(task, "stream")
    assert _exhaustive_errors(net, task) == 0


@pytest.mark.parametrize("s", [2, 3])
def test_k_input_xor_is_exact(s):
    # 8 inputs, at most s true at once: detectors for subsets up to size s only (s = 2: the
    # pairs, 28 per gate; every subset would be 247), still exact on every input.
    task = Task.from_gates(
        10,
        s,
        [("xor", list(range(8))), ("xor", [8, 9, 0]), ("and", [10, 11]), ("xor", [10, 11, 1])],
    )
    assert Stream.supports(task) == (True, "")
    net = build(task, "stream")
    assert _exhaustive_errors(net, task) == 0
    from math import comb

    first = net.extras["residual"]["blocks"][0]
    assert first["detector_units"] == sum(comb(8, r) for r in range(2, s + 1)) + 4


@pytest.mark.parametrize("s", [2, 3])
def test_exact_units_compute_k_input_xor(s):
    """Exact units build a k-input xor as present units (one per operand) and a detector
    per subset of >= 2 operands that can be true together, writing the inclusion-exclusion
    sum (1 for an odd count, else 0) into the gate's own bits; deep, and read by later
    gates of every kind."""
    from math import comb

    task = Task.from_gates(
        10,
        s,
        [
            ("xor", list(range(8))),  # 10: detectors for subsets of size 2..s of 8
            ("xor", [8, 9, 0]),  # 11: every subset (4 detectors)
            ("and", [10, 11]),  # 12
            ("xor", [10, 11, 1, 2]),  # 13
            ("or", [12, 13]),  # 14
            ("xor", [14, 12, 10, 3]),  # 15
            ("andnot", [15, 11]),  # 16
        ],
    )
    net = build(task, "stream", units="exact")
    assert net.extras["units"] == "exact"
    assert _exhaustive_errors(net, task) == 0
    blocks = net.extras["residual"]["blocks"]
    assert blocks[0]["detector_units"] == sum(comb(8, r) for r in range(2, s + 1)) + 4
    assert blocks[0]["present_units"] == 10
    assert net.extras["residual"]["neurons"] == net.extras["planned_neurons"]
    # The default (auto) now keeps exact units for k-input xor too: fewer neurons.
    auto = build(task, "stream")
    assert auto.extras["units"] == "exact"


def test_k_input_xor_too_wide_is_refused_clearly(monkeypatch):
    import superpose.constructions.stream as stream_mod

    task = Task.from_gates(10, 3, [("xor", list(range(8))), ("and", [10, 8])])
    monkeypatch.setattr(stream_mod, "MAX_XOR_DETECTORS", 50)
    with pytest.raises(
        SuperposeError,
        match="gate 0: a 8-input xor whose operands can be true 3 at a time needs 84",
    ):
        build(task, "stream")


def test_dense_level_is_refused_naming_the_level():
    # max_active bounds the superposed pools; exact units are limited by the stream's fill.
    task = families.layered_circuit(10, 40, 2, np.random.default_rng(0), ops=("or",))
    with pytest.raises(SuperposeError, match=r"level \d cannot stay sparse: up to \d+ of its 40"):
        build(task, "stream", max_active=2, units="pool")
    with pytest.raises(SuperposeError, match=r"level \d cannot stay sparse: up to \d+ of its 40"):
        build(task, "stream", max_active=2, units="exact", max_stream=50)


@pytest.mark.parametrize("seed", [0, 1])
def test_levels_above_max_active_build_with_exact_units(seed):
    # A level bound above max_active no longer refuses exact units (issue 13, depth-16
    # target): their limit is the stream's fill, sized from the same bounds.
    task = families.layered_circuit(
        14, 12, 4, np.random.default_rng(seed), ops=OPS["mixed"], sparsity=2, outputs="last"
    )
    net = build(task, "stream", seed=1, max_active=2)
    assert net.extras.get("units") == "exact"
    assert max(net.extras["active_bounds"][1:]) > 2
    assert _exhaustive_errors(net, task) == 0


def test_too_full_exact_stream_names_the_level():
    task = families.layered_circuit(12, 6, 3, np.random.default_rng(1), ops=OPS["mixed"])
    with pytest.raises(SuperposeError, match=r"level \d: the stream would be too full to read"):
        build(task, "stream", units="exact", max_stream=20)


@pytest.mark.parametrize("units", ["exact", "pool"])
@pytest.mark.parametrize("ops", ["and", "xor", "andnot", "mixed"])
def test_sparsity_three_is_exact_on_every_input(ops, units):
    # s = 3: bounds from candidate triples, xor detectors for operands that meet.
    task = families.layered_circuit(11, 6, 3, np.random.default_rng(5), ops=OPS[ops], sparsity=3)
    net = build(task, "stream", seed=2, units=units)
    assert net.extras.get("units", "pool") == units
    assert _exhaustive_errors(net, task) == 0


def test_too_full_stream_is_refused_with_the_numbers():
    task = families.layered_circuit(12, 6, 3, np.random.default_rng(1), ops=("or",))
    with pytest.raises(SuperposeError, match="too full to read.*on-bits after level 3"):
        build(task, "stream", units="pool", max_stream=50)
    with pytest.raises(SuperposeError, match="too full to read at ell=4"):
        build(task, "stream", units="pool", ell=4, stream_width=40)


def test_the_stream_is_residual_and_counted_once():
    task = families.layered_circuit(12, 6, 3, np.random.default_rng(3), sparsity=2)
    net = build(task, "stream")
    res = residual_counts(net)
    d = res["stream_width"]
    assert net.input_code.width == d and net.output_code.width == d
    for read, write in zip(net.layers[::2], net.layers[1::2], strict=True):
        # The read layer passes the stream through unchanged; the write layer adds it back.
        assert (read.weight[:d, :d].toarray() == np.eye(d)).all()
        assert (write.weight[:, :d].toarray() == np.eye(d)).all()
        assert write.n_out == d
    hidden = [lay.n_out - d for lay in net.layers[::2]]
    assert [b["hidden_units"] for b in res["blocks"]] == hidden
    assert res["neurons"] == d + sum(hidden)
    assert res["nonzero_parameters"] == sum(lay.nonzero_parameters() for lay in net.layers)
    # After block L, the stream already decodes every gate of levels <= L (nothing is copied).
    row_of, codes = net.stream_codes
    x = _all_inputs(task)
    truth = evaluate(task, x).values.astype(bool).toarray()
    streams = net.forward(net.encode(x), all_layers=True)[1::2]
    level = task.node_level[task.outputs]
    for depth, z in enumerate(streams, start=1):
        done = np.flatnonzero(level <= depth)
        got = codes.decode(z)[:, row_of[task.outputs[done]]].toarray().astype(bool)
        assert (got == truth[:, done]).all()


def test_save_load_round_trip_and_relu_export(tmp_path):
    task = families.layered_circuit(10, 5, 3, np.random.default_rng(4), sparsity=2)
    net = build(task, "stream", seed=2)
    save_network(net, tmp_path / "net")
    back = load_network(tmp_path / "net")
    assert back.construction == "stream"
    assert back.extras["residual"] == net.extras["residual"]
    x = _all_inputs(task)
    assert x.shape[0] == n_sparse(task.features, task.sparsity)
    assert (back.predict(x) != net.predict(x)).nnz == 0
    relu = net.compile_to_relu()
    assert (relu.predict(x) != net.predict(x)).nnz == 0


def test_info_shows_the_residual_accounting_and_cli_refusals(tmp_path, capsys):
    import json

    from superpose.pipeline import planned_neurons

    task = families.layered_circuit(10, 5, 2, np.random.default_rng(5), sparsity=2)
    net = build(task, "stream")
    save_network(net, tmp_path / "net")
    code, out, _ = run(capsys, "info", tmp_path / "net")
    res = net.extras["residual"]
    assert code == 0
    assert f"d = {res['stream_width']:,}; neurons = d + hidden = {res['neurons']:,}" in out
    code, out, _ = run(capsys, "info", tmp_path / "net", "--json")
    info = json.loads(out)["residual"]
    assert info["neurons"] == res["stream_width"] + sum(b["hidden_units"] for b in res["blocks"])
    compare = info["compare"]
    assert compare["stream"]["neurons"] == res["neurons"]
    assert compare["naive"]["neurons"] == build(task, "naive").counts()["neurons"]
    assert compare["circuit"]["neurons"] == planned_neurons(task, "circuit", {})
    task.save(tmp_path / "t.json")
    code, out, err = run(
        capsys,
        "build",
        "--task",
        tmp_path / "t.json",
        "--construction",
        "stream",
        "--no-fallback",
        "--out",
        tmp_path / "built",
    )
    built = load_network(tmp_path / "built").extras["residual"]
    assert code == 0, err
    assert f"as a residual network: d = {built['stream_width']:,}; neurons = d + hidden" in out
    task_path = tmp_path / "xor20.json"
    Task.from_gates(20, 4, [("xor", list(range(20))), ("and", [20, 0])]).save(task_path)
    code, _, err = run(
        capsys, "build", "--task", task_path, "--construction", "stream", "--out", tmp_path / "bad"
    )
    assert_one_line_error(code, err, "20-input xor whose operands can be true 4 at a time")
    assert not (tmp_path / "bad").exists()


def test_residual_counts_refuse_other_networks():
    net = build(Task.from_gates(3, 2, [("and", [0, 1])]), "naive")
    with pytest.raises(SuperposeError, match="need a 'stream' network"):
        residual_counts(net)


@pytest.mark.parametrize(
    "params, message",
    [
        ({"ell": 1}, "ell must be an integer in 2..32"),
        ({"stream_width": 0}, "stream_width must be a positive integer"),
        ({"failure": 2.0}, "failure must be in"),
        ({"max_active": 0}, "max_active must be a positive integer"),
        ({"regions": "mine"}, "regions must be one of auto, shared, disjoint"),
    ],
)
def test_bad_parameters(params, message):
    with pytest.raises(SuperposeError, match=message):
        Stream(**params)


def test_exact_units_cost_what_the_plan_says_and_or_gates_cost_none():
    # and: one unit; xor / andnot whose operands can meet: a detector and a present unit per
    # distinct operand; or / copy (and xor whose operands never meet): no unit at all.
    task = Task.from_gates(
        8,
        2,
        [
            ("and", [0, 1]),
            ("or", [2, 3]),
            ("xor", [4, 5]),
            ("or", [8, 9]),
            ("xor", [9, 10]),
            ("and", [11, 6]),
            ("copy", [12]),
        ],
    )
    net = build(task, "stream", units="exact")
    blocks = net.extras["residual"]["blocks"]
    assert [(b["and_units"], b["present_units"], b["detector_units"]) for b in blocks] == [
        (1, 2, 1),
        (0, 2, 1),
        (1, 0, 0),
    ]
    assert net.extras["residual"]["neurons"] == net.extras["planned_neurons"]
    assert _exhaustive_errors(net, task) == 0
    only_or = families.layered_circuit(20, 8, 3, np.random.default_rng(2), ops=("or",))
    net = build(only_or, "stream", units="exact")
    assert net.extras["residual"]["hidden_units"] == 0
    assert _exhaustive_errors(net, only_or) == 0


def test_failure_budget_is_split_over_the_levels():
    task = families.layered_circuit(200, 100, 4, np.random.default_rng(3), sparsity=2)
    plan = Stream(units="exact").plan(task)
    per = plan["predicted_errors"]
    assert len(per) == 4 and all(p > 0 for p in per)
    assert sum(per) + plan["predicted_output_errors"] <= plan["failure"] * (1 + 1e-9)
    # Block L's share: its units times the chance a false node's code is fully on in the
    # stream it reads (on-bits of the codes written before it); outputs read the full stream.
    ell, d = plan["ell"], plan["d"]
    rho = np.array(plan["on_bits"]) / d
    assert np.allclose(per, np.array(plan["hidden"]) * rho[:-1] ** ell)
    assert np.isclose(plan["predicted_output_errors"], len(task.outputs) * rho[-1] ** ell)
    assert (np.diff(rho) >= 0).all()


def test_exact_stream_too_full_names_the_level():
    task = families.layered_circuit(12, 6, 3, np.random.default_rng(1), ops=("or",))
    with pytest.raises(
        SuperposeError, match=r"level 1: the stream would be too full.*max_stream=50"
    ):
        build(task, "stream", units="exact", max_stream=50)
    with pytest.raises(SuperposeError, match=r"level \d: .*too full to read at ell=3.*30 neurons"):
        build(task, "stream", units="exact", ell=3, stream_width=30)


def test_default_deep_build_plans_stream_and_circuit():
    import superpose
    from superpose.pipeline import choose_construction, planned_neurons

    task = families.layered_circuit(300, 400, 3, np.random.default_rng(4), sparsity=2)
    plans = {n: planned_neurons(task, n, {}) for n in ("stream", "circuit")}
    name, why = choose_construction(task)
    assert name == min(plans, key=plans.get)
    assert f"'stream' {plans['stream']:,}" in why and f"'circuit' {plans['circuit']:,}" in why
    # Parameters only one construction takes keep the choice to that one.
    assert choose_construction(task, {"carries": "copy"})[0] == "circuit"
    assert choose_construction(task, {"units": "exact"})[0] == "stream"
    # Forcing one construction builds it; the default build records its check.
    net = superpose.build(task, "circuit", seed=0, check=False)
    assert net.construction == "circuit"
    small = families.layered_circuit(30, 20, 2, np.random.default_rng(5), sparsity=2)
    net = superpose.build(small, seed=0)
    assert net.extras["check"]["passed"] and net.extras["check"]["kind"] in ("exact", "exhaustive")
