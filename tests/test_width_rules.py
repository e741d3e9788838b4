"""Issue 15, item 7: the width rules of the winning s = 2 designs, checked against the exact
certificate (every <= 2-sparse input), and the automatic home-unit default."""

from __future__ import annotations

import numpy as np
import pytest

from superpose import SuperposeError, families
from superpose.certificate import certify
from superpose.constructions.params import (
    HOME_MIN_GATES,
    home_pays,
    home_vulnerable_share,
    repair_params,
    vulnerable_share,
)
from superpose.constructions.superposed import Superposed
from superpose.seeds import Seeds


def _task(m: int, mp: int, seed: int = 0, influence: str = "uniform"):
    rng = np.random.default_rng(np.random.SeedSequence([seed, m, mp]))
    return families.pairs(m, mp, rng, sparsity=2, influence=influence)


def test_default_uses_home_units_at_their_rule_and_certifies():
    """m = m' = 1e4: the automatic build takes home units at the home rule's widths, which are
    narrower than the random layout's rule, and is right on every <= 2-sparse input."""
    task = _task(10_000, 10_000)
    net = Superposed().build(task, Seeds(0).rng("build"))
    rule = repair_params(task, "home")
    assert net.params["home"] is True
    assert net.layers[0].n_in == net.layers[0].n_out == rule.n_in
    assert rule.n_in < repair_params(task).n_in
    assert net.extras["repair"]["certified_s2"]
    cert = certify(net, 2)
    assert cert.complete and cert.passed and cert.inputs_with_error == 0


def test_recorded_home_choice_rebuilds_the_same_network():
    task = _task(10_000, 10_000, seed=1)
    net = Superposed().build(task, Seeds(1).rng("build"))
    again = Superposed(**net.params).build(task, Seeds(1).rng("build"))
    assert (net.layers[0].weight != again.layers[0].weight).nnz == 0
    assert np.array_equal(net.layers[0].bias, again.layers[0].bias)


@pytest.mark.parametrize(("m", "mp"), [(300, 600), (1000, 1000), (10_000, 4000)])
def test_outside_the_measured_domain_the_default_is_unchanged(m, mp):
    """Too few gates, or d = 2m'/m outside [1.5, 2.5]: home=None builds exactly what
    home=False builds (so earlier networks and the golden outputs stay byte-identical)."""
    task = _task(m, mp)
    assert not home_pays(task)
    auto = Superposed().build(task, Seeds(0).rng("build"))
    off = Superposed(home=False).build(task, Seeds(0).rng("build"))
    assert auto.params == off.params and auto.params["home"] is False
    assert (auto.layers[0].weight != off.layers[0].weight).nnz == 0


def test_given_widths_keep_the_random_layout():
    task = _task(HOME_MIN_GATES, HOME_MIN_GATES)
    assert home_pays(task)
    net = Superposed(n_in=900, n_out=900).build(task, Seeds(0).rng("build"))
    assert net.params["home"] is False and "home_gates" not in net.extras


def test_certificate_driven_repair_rule_certifies_narrower():
    task = _task(1000, 1000)
    con = Superposed(repair_select="certificate", repair_rounds=40)
    net = con.build(task, Seeds(0).rng("build"))
    rule = repair_params(task, "certificate")
    assert net.layers[0].n_in == rule.n_in < repair_params(task).n_in
    assert certify(net, 2).passed


def test_home_share_model_sees_the_lighter_load():
    """At equal widths and code lengths, home units carry 3/4 of the load (m = m'), so the
    model's vulnerable share is lower than the random layout's at the widths that matter."""
    for n in (2300, 2400, 2800):
        assert home_vulnerable_share(n, 5, 6, 100_000, 100_000) < vulnerable_share(
            n, 5, 6, 100_000, 100_000
        )


def test_unknown_design_is_refused():
    with pytest.raises(SuperposeError, match="design"):
        repair_params(_task(100, 100), "nope")


def test_home_refuses_a_task_without_the_s2_repair():
    task = families.pairs(50, 100, np.random.default_rng(0), sparsity=3)
    with pytest.raises(SuperposeError, match="home=True"):
        Superposed(home=True).build(task, Seeds(0).rng("build"))
    assert Superposed().build(task, Seeds(0).rng("build")).params["home"] is False


def test_home_must_be_a_boolean():
    with pytest.raises(SuperposeError, match="home must be"):
        Superposed(home="yes")
