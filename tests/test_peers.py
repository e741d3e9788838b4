"""Hänni et al.'s universal AND peers: formulas, published behaviour, and ground truth.

Every check compares the peer network with something computed independently: the read-off
recomputed from the raw weights, the shared ground-truth evaluator, Busch's published
constants and numbers (AJB-ajb/SPNNArch thesis, Fig. 21), or Monte-Carlo estimates.
"""

from __future__ import annotations

import math

import numpy as np
import pytest
from scipy import sparse

from superpose import Task, families, load_network, save_network
from superpose.codes import LinearCode
from superpose.errors import SuperposeError
from superpose.evaluation import evaluate
from superpose.peers import UniversalAnd, busch_p, c_d
from superpose.peers.universal_and import DenseExplicitCode, and_operands
from superpose.verification import check_batch, random_inputs


def _inputs(task: Task, n: int, seed: int = 5) -> sparse.csr_array:
    return sparse.csr_array(
        sparse.vstack(list(random_inputs(task, n, np.random.default_rng(seed))), format="csr")
    )


def _readoff_errors(net, x):
    """Signed read-off errors and the class (active operands) of every (input, output) pair."""
    values = net.forward(net.encode(x))
    values = values.toarray() if sparse.issparse(values) else np.asarray(values)
    truth = evaluate(net.task, x)
    return values - truth.values.toarray(), truth.active_operands.toarray(), values


# --- formulas ---------------------------------------------------------------------------------


def test_c_d_rademacher_matches_busch_table():
    # peers.md §2.4 (from Busch's formula): 0.5, 0.25, 0.1875, 0.156 for s = 2, 3, 5, 8.
    assert c_d("rademacher", 2) == pytest.approx(0.5)
    assert c_d("rademacher", 3) == pytest.approx(0.25)
    assert c_d("rademacher", 5) == pytest.approx(0.1875)
    assert c_d("rademacher", 8) == pytest.approx(0.156, abs=5e-4)


@pytest.mark.parametrize("s", [2, 3, 5])
def test_c_d_gaussian_matches_monte_carlo(s):
    rng = np.random.default_rng(s)
    w = rng.standard_normal((400_000, s))
    mc = np.mean(np.sign(w[:, 0] * w[:, 1]) * np.maximum(w.sum(axis=1), 0))
    stderr = np.std(np.sign(w[:, 0] * w[:, 1]) * np.maximum(w.sum(axis=1), 0)) / math.sqrt(len(w))
    assert abs(c_d("gaussian", s) - mc) < 5 * stderr


def test_c_d_rejects_bad_input():
    with pytest.raises(SuperposeError):
        c_d("bernoulli", 3)
    with pytest.raises(SuperposeError):
        c_d("rademacher", 1)


def test_busch_p_formula_and_cap():
    assert busch_p(30, 800) == pytest.approx(math.log(30) ** 2 / math.sqrt(800))
    assert busch_p(30, 100) == 1.0  # ln(30)^2/10 > 1: capped, as in Busch's min(1, ...)
    assert busch_p(30, 100, p_max=0.9) == 0.9


def test_and_operands_rejects_non_and_tasks():
    with pytest.raises(SuperposeError, match="only 'and'"):
        and_operands(Task.from_gates(4, 2, [("or", [0, 1])]))
    with pytest.raises(SuperposeError, match="read input features"):
        and_operands(Task.from_gates(4, 2, [("and", [0, 1]), ("and", [4, 2])]))


# --- the Bernoulli construction -------------------------------------------------------------------


def test_bernoulli_readoff_is_average_over_neurons_wired_to_both():
    task = families.universal_and(12, sparsity=3)
    net = UniversalAnd("bernoulli", 300, p=0.3).build(task, np.random.default_rng(0))
    x = _inputs(task, 60)
    _, _, values = _readoff_errors(net, x)
    w = net.layers[0].weight.toarray()  # (d, m) 0/1
    assert set(np.unique(w)) <= {0.0, 1.0}
    assert np.all(net.layers[0].bias == -1)
    h = np.maximum(x.toarray() @ w.T - 1, 0)
    ops = and_operands(task)
    for j in range(0, task.n_outputs, 7):
        a, b = ops[j]
        wired = (w[:, a] == 1) & (w[:, b] == 1)
        expect = h[:, wired].mean(axis=1) if wired.any() else np.zeros(len(h))
        np.testing.assert_allclose(values[:, j], expect, atol=1e-5)


def test_bernoulli_never_reads_below_the_truth():
    # Every neuron wired to both operands of a true AND fires with value >= 1, and read-offs
    # are non-negative averages: the Bernoulli read-off is biased upward (Busch Prop. 4.49).
    task = families.universal_and(20, sparsity=4)
    net = UniversalAnd("bernoulli", 500).build(task, np.random.default_rng(1))
    err, active, _ = _readoff_errors(net, _inputs(task, 200))
    assert err.min() > -1e-5
    assert (active == 2).any() and (active == 1).any()


def test_bernoulli_upward_bias_on_class_01_grows_with_p():
    # E[read-off | 01] ~ s' p (Busch): positive, and larger for denser wiring.
    task = families.universal_and(20, sparsity=3)
    x = _inputs(task, 300)
    means = []
    for p in (0.2, 0.5):
        net = UniversalAnd("bernoulli", 800, p=p).build(task, np.random.default_rng(2))
        err, active, _ = _readoff_errors(net, x)
        e01 = err[active == 1]
        assert e01.mean() > 10 * e01.std() / math.sqrt(len(e01))
        means.append(e01.mean())
    assert means[1] > 1.5 * means[0]


def test_bernoulli_with_two_active_reads_true_pairs_exactly():
    # s = 2: a true pair has no distractor, so every wired neuron outputs exactly 1.
    task = families.universal_and(15, sparsity=2)
    net = UniversalAnd("bernoulli", 400, p=0.4).build(task, np.random.default_rng(3))
    err, active, _ = _readoff_errors(net, _inputs(task, 100))
    np.testing.assert_allclose(err[active == 2], 0.0, atol=1e-5)


def test_bernoulli_three_input_and_uses_bias_minus_two():
    task = families.k_and(10, 40, 3, np.random.default_rng(0), sparsity=3)
    net = UniversalAnd("bernoulli", 600, p=0.5).build(task, np.random.default_rng(4))
    assert np.all(net.layers[0].bias == -2)
    err, active, _ = _readoff_errors(net, _inputs(task, 100))
    assert err.min() > -1e-5
    np.testing.assert_allclose(err[active == 3], 0.0, atol=1e-5)  # s = 3: no distractor


# --- the symmetric laws -----------------------------------------------------------------------


@pytest.mark.parametrize("law", ["rademacher", "gaussian"])
def test_symmetric_readoff_matches_sign_formula(law):
    task = families.universal_and(10, sparsity=3)
    net = UniversalAnd(law, 200).build(task, np.random.default_rng(5))
    w = net.layers[0].weight.toarray()
    assert np.all(net.layers[0].bias == 0)
    x = _inputs(task, 40)
    _, _, values = _readoff_errors(net, x)
    h = np.maximum(x.toarray() @ w.T, 0)
    for j, (a, b) in enumerate(and_operands(task)):
        r = np.sign(w[:, a] * w[:, b]) / (200 * c_d(law, 3))
        np.testing.assert_allclose(values[:, j], h @ r, rtol=1e-4, atol=1e-5)


@pytest.mark.parametrize("law", ["rademacher", "gaussian"])
def test_symmetric_laws_are_unbiased_in_every_class(law):
    # Averaged over independent networks, the signed error of each class is ~0 (Busch:
    # E[error] = 0 for symmetric laws), unlike Bernoulli's upward bias.
    task = families.universal_and(16, sparsity=3)
    x = _inputs(task, 120)
    per_class: dict[int, list[float]] = {0: [], 1: [], 2: []}
    for seed in range(6):
        net = UniversalAnd(law, 300).build(task, np.random.default_rng(100 + seed))
        err, active, _ = _readoff_errors(net, x)
        for c in per_class:
            per_class[c].append(float(err[active == c].mean()))
    for c, means in per_class.items():
        m, se = np.mean(means), np.std(means, ddof=1) / math.sqrt(len(means))
        assert abs(m) < 4 * se + 0.02, (c, m, se)


def test_symmetric_error_shrinks_like_one_over_sqrt_d():
    task = families.universal_and(20, sparsity=3)
    x = _inputs(task, 150)
    stds = []
    for d in (200, 1800):
        err, active, _ = _readoff_errors(
            UniversalAnd("rademacher", d).build(task, np.random.default_rng(7)), x
        )
        stds.append(err[active == 2].std())
    assert stds[0] / stds[1] == pytest.approx(3.0, rel=0.3)  # sqrt(1800/200) = 3


def test_symmetric_laws_need_pairs():
    task = families.k_and(8, 10, 3, np.random.default_rng(0), sparsity=3)
    with pytest.raises(SuperposeError, match="2-input"):
        UniversalAnd("rademacher", 50).build(task, np.random.default_rng(0))


# --- published behaviour at W1 (Busch, Fig. 21) ------------------------------------------------


@pytest.fixture(scope="module")
def w1():
    task = families.universal_and(30, sparsity=5)
    return task, _inputs(task, 400, seed=11)


@pytest.mark.parametrize(
    ("law", "width", "published"),
    [
        ("rademacher", 435, 0.67),
        ("rademacher", 800, 0.48),
        ("gaussian", 435, 1.05),
        ("gaussian", 800, 0.75),
        ("bernoulli", 435, 1.7),
        ("bernoulli", 800, 1.3),
    ],
)
def test_w1_class_11_quantile_matches_busch(w1, law, width, published):
    # 90% quantile of |error| on true pairs, read by eye from Busch's log plot: within 20%.
    task, x = w1
    err, active, _ = _readoff_errors(
        UniversalAnd(law, width).build(task, np.random.default_rng(width)), x
    )
    q90 = np.quantile(np.abs(err[active == 2]), 0.9)
    assert q90 == pytest.approx(published, rel=0.2)


def test_w1_random_constructions_lose_to_naive_even_at_800(w1):
    # Busch: at m = 30, s = 5 every random construction is worse than the 435-neuron naive
    # network (zero error), even with 800 hidden neurons.
    from superpose import build

    task, x = w1
    assert check_batch(build(task, "naive"), x).inputs_with_error == 0
    for law in ("bernoulli", "rademacher", "gaussian"):
        net = UniversalAnd(law, 800).build(task, np.random.default_rng(9))
        assert check_batch(net, x).inputs_with_error > 0, law


# --- the verifier and the read-off agree ---------------------------------------------------------


@pytest.mark.parametrize("law", ["bernoulli", "rademacher", "gaussian"])
def test_verifier_counts_match_thresholded_readoffs(law):
    task = families.pairs(25, 120, np.random.default_rng(0), sparsity=3)
    net = UniversalAnd(law, 150).build(task, np.random.default_rng(1))
    x = _inputs(task, 150)
    err, _, values = _readoff_errors(net, x)
    truth = evaluate(task, x).values.toarray()
    pred = values >= 0.5
    rep = check_batch(net, x)
    assert rep.false_positives == int((pred & ~truth).sum())
    assert rep.false_negatives == int((~pred & truth).sum())
    assert rep.inputs_with_error == int(((pred != truth).any(axis=1)).sum())


def test_network_counts_readoffs_as_parameters_not_neurons():
    task = families.universal_and(10, sparsity=2)
    net = UniversalAnd("rademacher", 64).build(task, np.random.default_rng(0))
    counts = net.counts()
    assert counts["neurons"] == 10 + 64
    assert net.layers[-1].activation == "linear"
    assert net.layers[-1].weight.shape == (45, 64)
    assert counts["nonzero_parameters"] == 64 * 10 + 45 * 64  # dense hidden + dense read-offs
    assert net.extras["readout"] == "linear read-off"


# --- inputs in a linear code ---------------------------------------------------------------------


def test_linear_inputs_with_identity_code_equal_basis_inputs():
    task = families.universal_and(12, sparsity=3)
    x = _inputs(task, 50)
    basis = UniversalAnd("rademacher", 120).build(task, np.random.default_rng(3))
    ident = UniversalAnd("rademacher", 120, inputs="linear").build(
        task, np.random.default_rng(3), input_code=LinearCode(np.eye(12))
    )
    vb = np.asarray(basis.forward(basis.encode(x)))
    vi = np.asarray(ident.forward(ident.encode(x)))
    np.testing.assert_allclose(vb, vi, atol=1e-5)


def test_linear_inputs_add_crosstalk_that_shrinks_with_the_code_width():
    task = families.universal_and(30, sparsity=2)
    x = _inputs(task, 150)
    spread = []
    for width_in in (40, 1500):
        con = UniversalAnd("rademacher", 400, inputs="linear", input_width=width_in)
        net = con.build(task, np.random.default_rng(4))
        assert isinstance(net.input_code, LinearCode) and net.input_code.width == width_in
        assert net.counts()["neurons"] == width_in + 400
        err, active, _ = _readoff_errors(net, x)
        spread.append(np.abs(err).mean())
    assert spread[0] > 1.3 * spread[1]


# --- format ------------------------------------------------------------------------------------


def test_peer_network_round_trips_through_save_and_load(tmp_path):
    task = families.universal_and(9, sparsity=2)
    net = UniversalAnd("gaussian", 80).build(task, np.random.default_rng(0))
    assert isinstance(net.input_code, DenseExplicitCode)
    back = load_network(save_network(net, tmp_path / "peer"))
    x = _inputs(task, 40)
    assert (net.predict(x) != back.predict(x)).nnz == 0
    assert back.extras["law"] == "gaussian"


def test_memory_guard_refuses_huge_readoffs():
    task = families.universal_and(200, sparsity=2)
    with pytest.raises(SuperposeError, match="sample of the outputs"):
        UniversalAnd("rademacher", 5000, max_nonzeros=10**7).build(task, np.random.default_rng(0))


def test_bad_parameters_are_refused():
    with pytest.raises(SuperposeError):
        UniversalAnd("uniform", 10)
    with pytest.raises(SuperposeError):
        UniversalAnd("bernoulli", 0)
    with pytest.raises(SuperposeError):
        UniversalAnd("bernoulli", 10, p=1.5)
    with pytest.raises(SuperposeError):
        UniversalAnd("bernoulli", 10, inputs="bloom")
