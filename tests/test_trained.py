"""Trained baselines: training learns the task, weights become verifiable networks, seeds hold."""

from __future__ import annotations

import numpy as np
import pytest
from scipy import sparse

pytest.importorskip("torch")

from superpose import families, load_network  # noqa: E402
from superpose.codes import BloomCode, LinearCode  # noqa: E402
from superpose.data import TrainerMix  # noqa: E402
from superpose.errors import SuperposeError  # noqa: E402
from superpose.evaluation import evaluate  # noqa: E402
from superpose.peers.trained import train_mlp  # noqa: E402
from superpose.verification import check_batch, random_inputs  # noqa: E402


@pytest.fixture(scope="module")
def task():
    return families.universal_and(10, sparsity=2)


@pytest.fixture(scope="module")
def inputs(task):
    return sparse.csr_array(
        sparse.vstack(list(random_inputs(task, 300, np.random.default_rng(9))), format="csr")
    )


@pytest.fixture(scope="module")
def trained(task):
    return train_mlp(task, [8, 60], steps=200, batch_size=128, lr=1e-2, seed=0)


def _accuracy(net, x) -> float:
    rep = check_batch(net, x)
    return 1 - (rep.false_positives + rep.false_negatives) / (x.shape[0] * net.task.n_outputs)


def test_sampler_gives_exactly_s_active_features(task):
    s = TrainerMix(families.universal_and(12, sparsity=4), np.random.default_rng(0))
    x = s.batch(500)
    assert (np.diff(x.indptr) == 4).all()
    truth = evaluate(s.task, x).values
    assert truth.nnz > 0  # a third of the rows hold a full gate


def test_training_learns_the_task(task, trained, inputs):
    untrained = train_mlp(task, [60], steps=1, batch_size=8, seed=0)[0]
    narrow, wide = trained
    assert _accuracy(wide, inputs) > 0.995
    assert _accuracy(wide, inputs) > _accuracy(untrained, inputs)
    # With 60 hidden neurons for 45 outputs at s = 2 the net should be (almost) exact, while
    # 8 neurons cannot separate 45 pairs: more width, fewer errors.
    assert (
        check_batch(wide, inputs).inputs_with_error < check_batch(narrow, inputs).inputs_with_error
    )


def test_trained_network_format(task, trained, inputs):
    narrow, wide = trained
    for net, d in ((narrow, 8), (wide, 60)):
        assert [lay.activation for lay in net.layers] == ["relu", "linear"]
        assert net.layers[0].weight.shape == (d, task.features)
        assert net.layers[1].weight.shape == (task.n_outputs, d)
        assert (net.layers[0].bias <= 0).all()  # zero input maps to zero
        assert net.counts()["neurons"] == task.features + d
        assert net.extras["readout"] == "trained"
    # The network's forward pass is the trained MLP: recompute it from the raw arrays.
    x = inputs.toarray()
    w1, b1 = wide.layers[0].weight.toarray(), wide.layers[0].bias
    w2 = wide.layers[1].weight.toarray()
    expect = np.maximum(x @ w1.T + b1, 0) @ w2.T
    got = np.asarray(wide.forward(wide.encode(inputs)))
    np.testing.assert_allclose(got, expect, rtol=1e-6, atol=1e-6)


def test_seeds_are_explicit(task):
    a = train_mlp(task, [12], steps=20, batch_size=32, seed=3)[0]
    b = train_mlp(task, [12], steps=20, batch_size=32, seed=3)[0]
    c = train_mlp(task, [12], steps=20, batch_size=32, seed=4)[0]
    assert (a.layers[0].weight != b.layers[0].weight).nnz == 0
    assert (a.layers[0].weight != c.layers[0].weight).nnz > 0


def test_bloom_code_variant_without_hidden_layer(tmp_path):
    task = families.pairs(40, 60, np.random.default_rng(0), sparsity=2)
    rng = np.random.default_rng(1)
    in_code = BloomCode.random(40, 60, 4, rng)
    out_code = BloomCode.random(60, 80, 4, rng)
    nets = train_mlp(
        task,
        [0, 30],
        steps=150,
        batch_size=64,
        lr=1e-2,
        seed=0,
        input_code=in_code,
        output_code=out_code,
        save_dir=tmp_path,
    )
    direct, hidden = nets
    assert [lay.activation for lay in direct.layers] == ["relu"]
    assert direct.counts()["neurons"] == 60 + 80
    assert [lay.activation for lay in hidden.layers] == ["relu", "relu"]
    assert hidden.counts()["neurons"] == 60 + 30 + 80
    for net in nets:
        assert (net.layers[-1].bias <= 0).all()
        back = load_network(tmp_path / f"trained-w{net.extras['hidden_width']}")
        x = next(random_inputs(task, 100, np.random.default_rng(2)))
        assert (back.predict(x) != net.predict(x)).nnz == 0
        assert check_batch(back, x).inputs_checked == 100


def test_linear_output_code_variant():
    task = families.universal_and(8, sparsity=2)
    out_code = LinearCode.random(28, 40, np.random.default_rng(0), kind="rademacher")
    (net,) = train_mlp(task, [30], steps=60, batch_size=32, seed=0, output_code=out_code)
    assert isinstance(net.output_code, LinearCode)
    assert net.layers[-1].activation == "linear" and net.layers[-1].n_out == 40
    x = next(random_inputs(task, 50, np.random.default_rng(1)))
    assert check_batch(net, x).inputs_checked == 50


def test_bad_arguments():
    task = families.universal_and(6, sparsity=2)
    with pytest.raises(SuperposeError):
        train_mlp(task, [], steps=1)
    with pytest.raises(SuperposeError, match="Bloom output"):
        train_mlp(task, [0], steps=1)
    with pytest.raises(SuperposeError):
        train_mlp(task, [4], steps=1, pos_weight="lots")


def test_trained_beats_random_constructions_like_busch():
    # Busch's thesis (Fig. 21, m = 30, s = 5): trained networks have a lower 90% error quantile
    # than every random universal-AND construction at every width, and their error on true
    # pairs falls as the width approaches C(m, 2). Same protocol at m = 12, s = 4, C(12, 2) = 66.
    from superpose.compare import busch_class_errors
    from superpose.peers import UniversalAnd

    task = families.universal_and(12, sparsity=4)
    widths = [12, 66]
    nets = train_mlp(task, widths, steps=200, batch_size=64, seed=0)
    q11 = []
    for d, net in zip(widths, nets, strict=True):
        tr = busch_class_errors(net, 400, np.random.default_rng(1))
        for law in ("bernoulli", "rademacher", "gaussian"):
            peer = UniversalAnd(law, d).build(task, np.random.default_rng(d))
            cn = busch_class_errors(peer, 400, np.random.default_rng(1))
            for cls in ("00", "01", "11"):
                assert tr[cls]["q90"] < cn[cls]["q90"], (d, law, cls)
        q11.append(tr["11"]["q90"])
    assert q11[1] < 0.6 * q11[0]


# --- progress, loss curve, device, sampled read-off loss ---------------------------------------


def test_on_step_and_loss_curve_files(tmp_path):
    task = families.universal_and(8, sparsity=2)
    seen = []
    (net,) = train_mlp(
        task,
        [16],
        steps=25,
        batch_size=32,
        seed=0,
        on_step=lambda done, steps, losses: seen.append((done, steps, float(losses[0]))),
        loss_path=tmp_path / "curves" / "loss",
    )
    assert [d for d, _, _ in seen] == list(range(1, 26)) and {s for _, s, _ in seen} == {25}
    rows = (tmp_path / "curves" / "loss.csv").read_text().splitlines()
    assert rows[0] == "step,w16" and len(rows) == 26
    assert [float(r.split(",")[1]) for r in rows[1:]] == pytest.approx([x for *_, x in seen], 1e-5)
    assert rows[-1].split(",")[1] == f"{net.extras['final_loss']:.6g}"
    assert (tmp_path / "curves" / "loss.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"


def test_device_errors_are_one_line():
    import torch

    from superpose.peers.trained import resolve_device

    task = families.universal_and(6, sparsity=2)
    with pytest.raises(SuperposeError, match="device must be"):
        train_mlp(task, [4], steps=1, device="tpu")
    if not torch.cuda.is_available():
        with pytest.raises(SuperposeError, match="CUDA is not available"):
            train_mlp(task, [4], steps=1, device="cuda")
    assert resolve_device(torch, "cpu").type == "cpu"


def test_sampled_output_loss_learns_and_matches_the_full_loss_in_expectation():
    import torch

    from superpose.peers.trained import FAR_SAMPLES, _sampled_targets

    task = families.universal_and(8, sparsity=2)  # 28 outputs
    (net,) = train_mlp(task, [40], steps=150, batch_size=64, lr=1e-2, seed=0, sampled_outputs=True)
    assert net.extras["sampled_outputs"] == FAR_SAMPLES
    x = sparse.csr_array(
        sparse.vstack(list(random_inputs(task, 300, np.random.default_rng(9))), format="csr")
    )
    assert _accuracy(net, x) > 0.99
    # the weighted sampled sum is an unbiased estimate of the full weighted squared error
    rng = np.random.default_rng(0)
    truth = evaluate(task, x)
    out = rng.normal(size=(300, 28)).astype(np.float32)
    y = truth.values.toarray().astype(np.float32)
    full = float(((1 + 2.0 * y) * (out - y) ** 2).sum())
    estimates = []
    for _ in range(200):
        b = _sampled_targets(torch, truth, 3.0, rng, "cpu")
        cols = b.uniq[b.cols].numpy()
        rows = b.rows.numpy()
        near = (b.weight.numpy() * (out[rows, cols] - b.target.numpy()) ** 2).sum()
        far = (b.far_weight.numpy() * out[:, b.uniq[b.far].numpy()] ** 2).sum()
        estimates.append(near + far)
    assert np.mean(estimates) == pytest.approx(full, rel=0.03)


def test_library_does_not_import_the_cli():
    # the progress bar lives in the CLI (superpose compare); the library only calls on_step
    import ast
    import inspect

    from superpose.peers import trained

    tree = ast.parse(inspect.getsource(trained))
    imported = [
        n.module if isinstance(n, ast.ImportFrom) else a.name
        for n in ast.walk(tree)
        if isinstance(n, ast.Import | ast.ImportFrom)
        for a in (n.names if isinstance(n, ast.Import) else [n])
    ]
    assert imported and not [m for m in imported if m and m.startswith("superpose.cli")]
