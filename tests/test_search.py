"""Width search (``search_width`` and ``superpose build --search-width``).

The found network must verify on fresh inputs, the last failing probe just below it must
really be wrong, and the record must survive save/load. Sizes are small (m' <= 1000).
"""

from __future__ import annotations

import json

import numpy as np
import pytest

from superpose import load_network, save_network
from superpose.cli import main
from superpose.constructions import build
from superpose.errors import SuperposeError
from superpose.families import pairs
from superpose.search import WidthSearchError, search_width, without_timings
from superpose.verification import verify


def _rebuild(task, rec: dict, scale: float):
    """The network a probe at ``scale`` built (same construction, params and build seed)."""
    seeds = rec["seeds"]["build"]
    ss = np.random.SeedSequence(seeds["entropy"], spawn_key=tuple(seeds["spawn_key"]))
    params = {**rec["params"], "width_scale": scale}
    return build(
        task, rec["construction"], seed=rec["seed"], rng=np.random.default_rng(ss), **params
    )


def _probe(rec: dict, scale: float) -> dict:
    return next(p for p in rec["probes"] if p["scale"] == scale)


@pytest.fixture(scope="module")
def s2_search():
    task = pairs(300, 300, np.random.default_rng(5), sparsity=2)
    net, rec = search_width(task, "superposed", samples=400, seed=3)
    return task, net, rec


@pytest.fixture(scope="module")
def s3_search():
    task = pairs(30, 80, np.random.default_rng(6), sparsity=3)
    # Tiny s = 3 tasks need several times the automatic widths: start near the edge (each
    # build here spends ~1 s choosing the automatic parameters).
    net, rec = search_width(
        task, samples=200, seed=4, exhaustive=True, start_scale=3.5, tolerance=0.05
    )
    return task, net, rec


def test_s2_found_network_is_correct_on_fresh_inputs(s2_search):
    task, net, rec = s2_search
    assert rec["found"] and net.extras["width_search"] == without_timings(rec)
    assert rec["widths"] == net.counts()["layer_widths"]
    assert rec["mode"] == "random+targeted"
    chosen = _probe(rec, rec["width_scale"])
    assert chosen["passed"] and chosen["inputs_checked"] == 2 * 400
    fresh = verify(net, "all", 2000, np.random.default_rng(99))
    assert fresh.inputs_checked > 4000 and fresh.inputs_with_error == 0  # exhaustive + samples


def test_s2_last_failing_probe_is_wrong_and_close(s2_search):
    task, net, rec = s2_search
    below = rec["last_failing_scale"]
    assert below is not None and below < rec["width_scale"] <= below * (1 + rec["tolerance"])
    assert not _probe(rec, below)["passed"]
    wrong = _rebuild(task, rec, below)
    assert verify(wrong, "exhaustive").inputs_with_error > 0
    # ... and the chosen scale rebuilds to the saved network exactly.
    again = _rebuild(task, rec, rec["width_scale"])
    assert (again.layers[0].weight != net.layers[0].weight).nnz == 0


def test_s3_exhaustive_search_certifies(s3_search):
    task, net, rec = s3_search
    assert rec["mode"] == "targeted+exhaustive"
    total = rec["exhaustive_inputs"]
    assert total == 1 + 30 + 435 + 4060
    chosen = _probe(rec, rec["width_scale"])
    assert chosen["by_source"]["exhaustive"] == total
    assert verify(net, "exhaustive").inputs_with_error == 0
    fresh = verify(net, "all", 1000, np.random.default_rng(7))
    assert fresh.inputs_with_error == 0
    below = rec["last_failing_scale"]
    assert below is not None and below < rec["width_scale"]
    assert verify(_rebuild(task, rec, below), "exhaustive").inputs_with_error > 0


def test_probe_records_are_complete(s2_search, s3_search):
    for _, _, rec in (s2_search, s3_search):
        assert rec["samples"] in (200, 400)
        assert {"build", "inputs"} <= set(rec["seeds"])
        for p in rec["probes"]:
            assert {"scale", "widths", "neurons", "inputs_checked", "passed"} <= set(p)
            assert p["passed"] == (p["inputs_with_error"] == 0)
        assert rec["probes"][0]["scale"] == rec["range"]["start_scale"]
        passing = [p["scale"] for p in rec["probes"] if p["passed"]]
        assert rec["width_scale"] == min(passing)


def test_record_survives_save_and_load(s2_search, tmp_path):
    _, net, rec = s2_search
    save_network(net, tmp_path / "net")
    loaded = load_network(tmp_path / "net")
    got = loaded.extras["width_search"]
    assert json.dumps(got, sort_keys=True) == json.dumps(
        json.loads(json.dumps(without_timings(rec))), sort_keys=True
    )
    meta = json.loads((tmp_path / "net" / "network.json").read_text())
    assert meta["extras"]["width_search"]["width_scale"] == rec["width_scale"]


def test_search_is_deterministic():
    task = pairs(200, 200, np.random.default_rng(1), sparsity=2)
    _, a = search_width(task, samples=100, seed=2)
    _, b = search_width(task, samples=100, seed=2)
    strip = ("build_seconds", "verify_seconds")
    clean = [[{k: v for k, v in p.items() if k not in strip} for p in r["probes"]] for r in (a, b)]
    assert clean[0] == clean[1]


def test_nothing_passes_raises_with_record():
    task = pairs(100, 200, np.random.default_rng(2), sparsity=3)
    # One-unit codes and threshold 2: any two distractors in a unit's read set fool it.
    with pytest.raises(WidthSearchError) as info:
        search_width(task, samples=200, max_scale=1.5, params={"ell": 1, "ell_out": 1})
    rec = info.value.record
    assert rec["found"] is False and rec["probes"] and not rec["probes"][-1]["passed"]


def test_bad_arguments():
    task = pairs(50, 50, np.random.default_rng(0))
    with pytest.raises(SuperposeError, match="width_scale"):
        search_width(task, "naive")
    with pytest.raises(SuperposeError, match="n_in"):
        search_width(task, params={"n_in": 100})
    with pytest.raises(SuperposeError):
        search_width(task, samples=0)


def test_cli_search_width(capsys, tmp_path):
    out = tmp_path / "net"
    code = main(
        [
            "build",
            "--family",
            "and2",
            "--features",
            "200",
            "--outputs",
            "200",
            "--out",
            str(out),
            "--search-width",
            "--search-samples",
            "100",
            "--json",
        ]
    )
    printed = json.loads(capsys.readouterr().out)
    assert code == 0
    assert printed["width_search"]["samples"] == 100
    net = load_network(out)
    rec = net.extras["width_search"]
    assert rec["width_scale"] == printed["width_search"]["width_scale"]
    assert net.counts()["layer_widths"] == rec["widths"]
    code = main(["info", str(out), "--json"])
    info = json.loads(capsys.readouterr().out)
    assert code == 0 and info["extras"]["width_search"]["found"] is True


def test_cli_search_options_need_search_width(capsys, tmp_path):
    code = main(
        ["build", "--family", "and2", "--features", "50", "--outputs", "50"]
        + ["--out", str(tmp_path / "n"), "--search-exhaustive"]
    )
    assert code == 2
    assert "--search-width" in capsys.readouterr().err


def test_build_timeout_builds_in_a_child_and_counts_slow_builds_as_failures():
    task = pairs(200, 200, np.random.default_rng(3), sparsity=2)
    net, rec = search_width(task, samples=100, seed=1, build_timeout=120, step_down=2.0)
    assert rec["found"] and net.counts()["layer_widths"] == rec["widths"]
    assert verify(net, "random", 200, np.random.default_rng(0)).inputs_with_error == 0
    with pytest.raises(WidthSearchError) as info:
        search_width(task, samples=100, build_timeout=1e-3, max_scale=1.5)
    probes = info.value.record["probes"]
    assert probes and all(p["failed_on"] == "build time limit" for p in probes)


def test_final_check_is_recorded_and_agrees_with_brute_force(s3_search):
    """The search's last word is a check on inputs no probe saw, and it is true."""
    task, net, rec = s3_search
    final = rec["final_check"]
    assert final["kind"] in ("exact", "exhaustive") and final["passed"]
    assert net.extras["check"] == final
    truth = verify(net, "exhaustive")
    assert truth.inputs_with_error == 0


def test_search_steps_up_when_the_chosen_network_fails_its_final_check(monkeypatch):
    """An edge that a fresh check refutes is never returned: the scale steps up."""
    import superpose.search as search
    from superpose.check import Check

    calls: list[float] = []
    real = search._final_check

    def fake(net, samples, seed, budget):
        calls.append(1.0)
        if len(calls) == 1:  # the first chosen network "fails" on fresh inputs
            return Check("sampled", 2, inputs_checked=10, inputs_with_error=1)
        return real(net, samples, seed, budget)

    monkeypatch.setattr(search, "_final_check", fake)
    task = pairs(200, 200, np.random.default_rng(1), sparsity=2)
    net, rec = search_width(task, "superposed", samples=200, seed=0)
    refuted = [p for p in rec["probes"] if p.get("failed_on", "").startswith("final")]
    assert len(refuted) == 1 and len(calls) == 2
    assert rec["width_scale"] > refuted[0]["scale"]
    assert rec["final_check"]["passed"]
    assert verify(net, "exhaustive").inputs_with_error == 0
