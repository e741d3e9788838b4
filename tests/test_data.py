"""Datasets: labels are the brute-force truth, caps hold, seeds reproduce, formats agree."""

from __future__ import annotations

import subprocess
import sys

import numpy as np
import pytest
from scipy import sparse

from superpose import Task, build, data, families
from superpose.errors import SuperposeError
from superpose.seeds import Seeds
from superpose.verification import random_inputs, targeted_inputs
from tests.helpers import brute_outputs


@pytest.fixture(scope="module")
def deep_task():
    # two levels, every op, an input feature as an output
    gates = [
        ("and", [0, 1]),
        ("xor", [2, 3]),
        ("or", [4, 5]),
        ("andnot", [6, 7]),
        ("copy", [8]),
        ("and", [10, 11]),
        ("or", [12, 9]),
    ]
    return Task.from_gates(10, 3, gates, outputs=[10, 11, 12, 13, 14, 15, 16, 3])


CASES = [
    ("bernoulli", {}),
    ("bernoulli", {"p": 0.4, "cap": "truncate"}),
    ("bernoulli", {"p": 0.4, "cap": "resample"}),
    ("bernoulli", {"p": np.linspace(0.0, 0.6, 10)}),
    ("bernoulli", {"p": np.linspace(0.0, 0.6, 10), "cap": "truncate"}),
    ("exactly", {"k": 2}),
    ("verifier", {}),
    ("mix", {}),
]


@pytest.mark.parametrize(("distribution", "kw"), CASES)
def test_labels_are_the_brute_force_truth_and_caps_hold(deep_task, distribution, kw):
    x, y = next(data.batches(deep_task, 300, seed=4, distribution=distribution, format="csr", **kw))
    assert isinstance(x, sparse.csr_array) and x.dtype == np.uint8 and y.dtype == np.uint8
    assert x.shape == (300, 10) and y.shape == (300, deep_task.n_outputs)
    active = np.diff(x.indptr)
    assert active.max() <= deep_task.sparsity  # the cap: no row above s active features
    assert set(np.unique(x.data).tolist()) <= {1}
    dense = y.toarray()
    for r in range(300):
        row = x.indices[x.indptr[r] : x.indptr[r + 1]]
        assert len(set(row.tolist())) == len(row)
        assert dense[r].tolist() == brute_outputs(deep_task, row)[0]


def test_caps_differ_as_documented():
    task = families.universal_and(20, sparsity=3)
    rng = np.random.default_rng(0)
    trunc = np.diff(data.sample_inputs(task, 4000, rng, p=0.3, cap="truncate").indptr)
    resam = np.diff(data.sample_inputs(task, 4000, rng, p=0.3, cap="resample").indptr)
    assert trunc.max() == resam.max() == 3
    # Binomial(20, 0.3) exceeds 3 most of the time: truncation piles that mass on exactly 3,
    # resampling keeps the conditional law, P(k | k <= 3) (scipy's binomial pmf, renormalised).
    from scipy import stats

    law = stats.binom(20, 0.3).pmf(np.arange(4))
    law /= law.sum()
    assert (trunc == 3).mean() > 0.85
    assert np.abs(np.bincount(resam, minlength=4) / len(resam) - law).max() < 0.035
    # a per-feature p: features with p = 0 never fire
    p = np.where(np.arange(20) < 10, 0.0, 0.1)
    x = data.sample_inputs(task, 2000, rng, p=p)
    assert x[:, :10].nnz == 0 and x.nnz > 0


def test_exactly_k_is_uniform_enough():
    task = families.universal_and(50, sparsity=4)
    x = data.sample_inputs(task, 5000, np.random.default_rng(1), "exactly", k=4)
    assert (np.diff(x.indptr) == 4).all()
    freq = np.asarray(x.sum(axis=0)).ravel() / 5000
    assert np.abs(freq - 4 / 50).max() < 0.03  # every feature about equally often


def test_same_seed_same_batches_and_seeds_stream():
    task = families.universal_and(12, sparsity=3)
    for dist in ("bernoulli", "exactly", "verifier", "mix"):
        a = list(data.batches(task, 64, seed=7, n_batches=3, distribution=dist))
        b = list(data.batches(task, 64, seed=7, n_batches=3, distribution=dist))
        c = list(data.batches(task, 64, seed=8, n_batches=3, distribution=dist))
        assert all(
            (u[0] != v[0]).nnz == 0 and (u[1] != v[1]).nnz == 0 for u, v in zip(a, b, strict=True)
        )
        assert any((u[0] != v[0]).nnz for u, v in zip(a, c, strict=True))
    # an integer seed is the "data" stream of Seeds(seed)
    x1 = next(data.batches(task, 32, seed=5))[0]
    x2 = next(data.batches(task, 32, seed=Seeds(5).rng("data")))[0]
    assert (x1 != x2).nnz == 0


def test_verifier_distribution_is_the_verifiers_sampler():
    task = families.pairs(40, 100, np.random.default_rng(0), sparsity=2)
    ours = data.sample_inputs(task, 500, np.random.default_rng(3), "verifier")
    theirs = next(random_inputs(task, 500, np.random.default_rng(3), batch_size=500))
    assert (ours != theirs).nnz == 0
    net = build(task, "naive")
    ours = data.sample_inputs(task, 200, np.random.default_rng(3), "targeted", network=net)
    theirs = next(targeted_inputs(net, 200, np.random.default_rng(3), batch_size=200))
    assert (ours != theirs).nnz == 0


def test_formats_agree():
    torch = pytest.importorskip("torch")
    task = families.universal_and(10, sparsity=2)
    (xc, yc), (xn, yn), (xt, yt) = (
        next(data.batches(task, 50, seed=2, format=f)) for f in data.FORMATS
    )
    assert xn.dtype == np.uint8 and (xn == xc.toarray()).all() and (yn == yc.toarray()).all()
    assert xt.dtype == torch.float32 and (xt.numpy() == xn).all() and (yt.numpy() == yn).all()
    xf, _ = next(data.batches(task, 50, seed=2, format="numpy", dtype="float32"))
    assert xf.dtype == np.float32 and (xf == xn).all()


def test_iterable_dataset_reproducible_and_true():
    torch = pytest.importorskip("torch")
    task = families.universal_and(10, sparsity=2)
    ds = data.dataset(task, 16, seed=3, n_batches=4, distribution="exactly")
    assert isinstance(ds, torch.utils.data.IterableDataset)
    first = [(x.clone(), y.clone()) for x, y in torch.utils.data.DataLoader(ds, batch_size=None)]
    again = list(ds)
    assert len(first) == len(again) == 4
    for (x, y), (x2, y2) in zip(first, again, strict=True):
        assert torch.equal(x, x2) and torch.equal(y, y2)
        assert torch.equal(y, torch.from_numpy(data.labels(task, x.numpy()).toarray()).float())


def test_bad_arguments_are_one_clear_error():
    task = families.universal_and(10, sparsity=2)
    rng = np.random.default_rng(0)
    for kwargs, needle in [
        ({"distribution": "gauss"}, "gauss"),
        ({"cap": "clip"}, "clip"),
        ({"p": 1.5}, "1.5"),
        ({"p": np.ones(3) / 2}, "(3,)"),
        ({"distribution": "exactly", "k": 3}, "got 3"),
        ({"distribution": "targeted"}, "network"),
    ]:
        with pytest.raises(SuperposeError, match=needle.replace("(", r"\(").replace(")", r"\)")):
            data.sample_inputs(task, 5, rng, **kwargs)
    with pytest.raises(SuperposeError, match="parquet"):
        next(data.batches(task, 5, format="parquet"))


def test_core_import_does_not_import_torch():
    code = "import sys, superpose, superpose.data; print('torch' in sys.modules)"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "False"
