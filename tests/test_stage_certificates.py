"""Per-stage exact certificates of deep ``circuit`` networks against brute force.

``stage_check.stage_network`` must be the stage itself (same decoded nodes as the deep network's
own stage on every input), and ``stage_check.stage_certificates`` must name exactly the stage-1
nodes some <= s-sparse input gets wrong, also on circuits built too narrow to be right.
"""

from __future__ import annotations

import numpy as np
import pytest
from scipy import sparse

from superpose import families
from superpose.constructions import build
from superpose.evaluation import evaluate_nodes
from superpose.network import Layer, Network
from superpose.stage_check import _decode, stage_certificates, stage_codes, stage_network
from superpose.verification import exhaustive_inputs


def _circuit(seed: int, broken: bool = False) -> Network:
    """A 3-level and/or circuit; ``broken``: half of stage 1's units fire on any one bit."""
    rng = np.random.default_rng(seed)
    task = families.layered_circuit(int(rng.integers(20, 40)), 60, 3, rng, ops=("and", "or"))
    net = build(task, "circuit", rng=rng)
    if not broken:
        return net
    first = net.layers[0]
    bias = np.where(rng.random(len(first.bias)) < 0.5, -1.0, first.bias)  # fire on any bit
    layers = [Layer(first.weight, bias, first.activation), *net.layers[1:]]
    out = Network(layers, net.input_code, net.output_code, task, net.construction, net.params)
    out.extras = dict(net.extras)
    out.stage_codes = stage_codes(net)
    return out


@pytest.mark.parametrize("seed", range(4))
def test_stage_network_is_the_stage(seed):
    net = _circuit(seed)
    codes = stage_codes(net)
    x = sparse.csr_array(next(iter(exhaustive_inputs(net.task.features, 2, 10_000))))
    for i, (layer, entry) in enumerate(zip(net.layers, codes, strict=True)):
        # fed its clean input (the previous stage's true nodes), the stage network decodes as
        # the deep network's stage does on that same code
        truth = evaluate_nodes(net.task, x)
        clean = net.encode(x) if i == 0 else codes[i - 1][1].encode(truth[:, codes[i - 1][0]])
        own = _decode(entry[1], layer.apply(clean), entry[2] if len(entry) > 2 else None)
        before = x if i == 0 else truth[:, codes[i - 1][0]]
        alone = stage_network(net, i).predict(before)
        assert np.array_equal(alone.toarray().astype(bool), own.toarray().astype(bool))


@pytest.mark.parametrize("seed", range(6))
def test_stage_one_certificate_equals_brute_force(seed):
    net = _circuit(100 + seed, broken=seed % 3 != 0)
    first = stage_certificates(net)[0]
    assert first["end_to_end"] and first["method"] == "s2-candidates"
    nodes = stage_codes(net)[0][0]
    wrong: set[int] = set()
    inputs = 0
    for x in exhaustive_inputs(net.task.features, 2):
        got = _decode(stage_codes(net)[0][1], net.layers[0].apply(net.encode(x)), None)
        want = sparse.csr_array(evaluate_nodes(net.task, x)[:, nodes], dtype=np.int8)
        diff = sparse.csr_array(got - want).tocoo()
        diff.eliminate_zeros()
        wrong |= set(diff.coords[1].tolist())
        inputs += len(np.unique(diff.coords[0]))
    assert first["wrong_outputs"] == len(wrong)
    assert first["inputs_with_error"] == inputs
    assert wrong or seed % 3 == 0  # the broken circuits are wrong somewhere


def test_stages_beyond_three_true_nodes_say_why():
    """Deeper stages of a random circuit see more than three true nodes: skipped, with why."""
    rows = stage_certificates(_circuit(7))
    late = [r for r in rows if r["inputs_true_at_most"] > 3]
    assert late and all("skipped" in r and "true nodes" in r["skipped"] for r in late)
