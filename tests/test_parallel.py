"""Verification on several processes (superpose.parallel): same report for any number of jobs."""

from __future__ import annotations

import numpy as np
import pytest

from superpose import Layer, Network, SuperposeError, build, families, verify
from superpose.parallel import (
    EXHAUSTIVE_BATCH,
    EXHAUSTIVE_BATCHES_PER_CHUNK,
    plan_chunks,
    run_chunk,
    verify_parallel,
)
from superpose.verification import planned_inputs


@pytest.fixture(scope="module")
def leaky_net():
    """A naive network with 20 broken AND units (bias 0: they fire on one operand), so that
    errors and failing examples are part of the comparison."""
    net = build(families.pairs(150, 300, np.random.default_rng(3)), "naive")
    (layer,) = net.layers
    bias = layer.bias.copy()
    bias[:20] = 0.0
    return Network(
        [Layer(layer.weight, bias, layer.activation)], net.input_code, net.output_code, net.task
    )


@pytest.fixture(scope="module")
def naive_net():
    return build(families.pairs(40, 120, np.random.default_rng(0), sparsity=3), "naive")


def test_report_does_not_depend_on_jobs(leaky_net):
    one = verify_parallel(leaky_net, "all", 600, rng_seed=7, jobs=1, chunk_size=200)
    two = verify_parallel(leaky_net, "all", 600, rng_seed=7, jobs=2, chunk_size=200)
    assert one.inputs_with_error > 0  # the comparison covers errors and failing examples
    assert one.to_dict() == two.to_dict()
    assert set(one.by_mode) == {"exhaustive", "random", "targeted"}
    assert one.by_mode["random"]["inputs_checked"] == 600
    assert one.by_mode["targeted"]["inputs_checked"] == 600


def test_seed_changes_sampled_inputs(leaky_net):
    a = verify_parallel(leaky_net, "random", 400, rng_seed=1, jobs=1, chunk_size=100)
    b = verify_parallel(leaky_net, "random", 400, rng_seed=2, jobs=1, chunk_size=100)
    assert a.failing_inputs != b.failing_inputs


def test_chunks_are_fixed_and_seeded_independently(naive_net):
    chunks = plan_chunks(naive_net, "all", 1000, 5, chunk_size=300)
    again = plan_chunks(naive_net, "all", 1000, np.random.SeedSequence(5), chunk_size=300)
    sampled = [c for c in chunks if c.mode != "exhaustive"]
    assert [(c.mode, c.samples) for c in sampled] == [
        ("random", 300), ("random", 300), ("random", 300), ("random", 100),
        ("targeted", 300), ("targeted", 300), ("targeted", 300), ("targeted", 100),
    ]  # fmt: skip
    keys = [c.seed.spawn_key for c in sampled]
    assert len(set(keys)) == len(keys)
    assert [c.seed.spawn_key for c in again if c.seed is not None] == keys
    assert [c.index for c in chunks] == list(range(len(chunks)))


def test_exhaustive_chunks_cover_every_input_once(naive_net):
    whole = verify(naive_net, "exhaustive")
    chunks = plan_chunks(naive_net, "exhaustive", 0, 0)
    assert all(c.n_batches <= EXHAUSTIVE_BATCHES_PER_CHUNK for c in chunks)
    total = sum(run_chunk(naive_net, c).inputs_checked for c in chunks)
    assert total == whole.inputs_checked == planned_inputs(naive_net, "exhaustive", 0)
    assert total > EXHAUSTIVE_BATCH  # more than one batch
    par = verify_parallel(naive_net, "exhaustive", 0, 0, jobs=2)
    assert par.inputs_checked == whole.inputs_checked
    assert par.by_class == whole.by_class


def test_progress_counts_every_input(naive_net):
    seen = []
    verify_parallel(naive_net, "all", 500, 0, jobs=2, chunk_size=128, progress=seen.append)
    assert sum(seen) == planned_inputs(naive_net, "all", 500)


def test_workers_can_load_the_network_from_a_directory(tmp_path, naive_net):
    """Without fork, workers load the network saved once to a directory (the spawn path)."""
    import signal

    import superpose.parallel as par
    from superpose import save_network

    directory = save_network(naive_net, tmp_path / "net")
    chunk = plan_chunks(naive_net, "random", 300, 3)[0]
    old = signal.getsignal(signal.SIGINT)
    try:
        par._init_worker(None, str(directory))
        from_disk = par._worker_run(chunk)
    finally:
        signal.signal(signal.SIGINT, old)
        par._WORKER_NET = None
    assert from_disk.to_dict() == run_chunk(naive_net, chunk).to_dict()


def test_bad_arguments(naive_net):
    with pytest.raises(SuperposeError, match="jobs"):
        verify_parallel(naive_net, "random", 10, 0, jobs=0)
    with pytest.raises(SuperposeError, match="mode"):
        verify_parallel(naive_net, "sideways", 10, 0)
    with pytest.raises(SuperposeError, match="samples"):
        verify_parallel(naive_net, "random", -1, 0)
    with pytest.raises(SuperposeError, match="exhaustive"):
        verify_parallel(naive_net, "exhaustive", 0, 0, max_exhaustive=10)
