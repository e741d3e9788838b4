"""Patching the outputs the exact check names (constructions/patch.py, pipeline.build).

Against brute force over every <= 2-sparse input: a patch never makes an output wrong that
was right, the certificate of the patched network equals brute force, the patched outputs
are right in aggregate, and the checked build hands back a patched network only when it is
certified with no wrong input.
"""

from __future__ import annotations

import numpy as np
import pytest
from test_certificate import _truth

from superpose import SuperposeError, Task
from superpose.certificate import certify
from superpose.constructions import build as build_unchecked
from superpose.constructions.patch import patch_outputs
from superpose.io import load_network, save_network
from superpose.pipeline import build

OPS = ("and", "or", "copy")


def _task(seed: int) -> Task:
    rng = np.random.default_rng(seed)
    m, n = int(rng.integers(15, 40)), int(rng.integers(40, 200))
    gates = []
    for _ in range(n):
        op = OPS[int(rng.integers(3))]
        k = 1 if op == "copy" else int(rng.integers(2, 4))
        gates.append((op, [int(v) for v in rng.choice(m, k, replace=False)]))
    outs = None if seed % 2 else [int(v) for v in rng.choice(m + n, n, replace=False)]
    return Task.from_gates(m, 2, gates, outputs=outs)


def test_patch_fixes_wrong_outputs_and_breaks_none():
    before = after = 0
    for seed in range(10):
        net = build_unchecked(
            _task(seed), "superposed", rng=np.random.default_rng(seed), width_scale=0.15
        )
        wrong, _ = _truth(net)
        if not wrong:
            continue
        patched = patch_outputs(net, np.array(sorted(wrong)))
        still, inputs = _truth(patched)
        assert still <= wrong  # no output that was right turns wrong
        cert = certify(patched, 2)
        assert set(cert.wrong_outputs.tolist()) == still and cert.inputs_with_error == inputs
        before, after = before + len(wrong), after + len(still)
    assert before > 0 and after < before / 4


def test_build_patches_instead_of_growing(tmp_path):
    found = 0
    for seed in range(12):
        net = build(_task(seed), "superposed", seed=seed, width_scale=0.15, fallback=False)
        if "patched" not in net.extras:
            continue
        found += 1
        check = net.extras["check"]
        assert check["kind"] == "exact" and check["passed"]
        assert _truth(net) == (set(), 0)
        assert net.extras["check_attempts"][-1]["patched"] == net.extras["patched"]["units_added"]
        save_network(net, tmp_path / str(seed))  # the private units' decode survives a reload
        assert _truth(load_network(tmp_path / str(seed))) == (set(), 0)
    assert found > 0


def test_xor_outputs_are_not_patched():
    task = Task.from_gates(6, 2, [("xor", [0, 1]), ("and", [2, 3])])
    net = build_unchecked(task, "superposed", rng=np.random.default_rng(0))
    with pytest.raises(SuperposeError, match="xor"):
        patch_outputs(net, np.array([0]))
