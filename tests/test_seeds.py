"""One seeding policy (superpose.seeds): named streams of one root, children for sub-runs."""

from __future__ import annotations

import re
from pathlib import Path

import numpy as np
import pytest

import superpose
from superpose import SuperposeError
from superpose.seeds import STREAMS, Seeds


def _draw(rng: np.random.Generator) -> list[int]:
    return rng.integers(0, 2**62, size=4).tolist()


def test_stream_numbers_are_distinct():
    assert len(set(STREAMS.values())) == len(STREAMS)


def test_a_stream_is_the_same_every_time_and_differs_from_every_other():
    draws = {name: _draw(Seeds(3).rng(name)) for name in STREAMS}
    assert all(_draw(Seeds(3).rng(name)) == d for name, d in draws.items())
    assert len({tuple(d) for d in draws.values()}) == len(STREAMS)
    # the plain stream is SeedSequence([root, number]), as files and the CLI document
    want = np.random.default_rng(np.random.SeedSequence([3, STREAMS["build"]]))
    assert _draw(Seeds(3).rng("build")) == _draw(want)


def test_children_are_independent_of_the_parent_and_of_each_other():
    parent = _draw(Seeds(5).rng("task"))
    kids = [_draw(Seeds(5).child(i).rng("task")) for i in range(3)]
    assert parent not in kids and len({tuple(k) for k in kids}) == 3
    assert _draw(Seeds(5).child(1).rng("task")) == kids[1]
    assert Seeds(5).child(1, 2) == Seeds(5).child(1).child(2)
    assert Seeds(5).child(1, 2).record() == {"root": 5, "path": [1, 2]}
    assert Seeds(5).record() == {"root": 5}


@pytest.mark.parametrize("bad", [-1, 1.5, True, "3"])
def test_a_bad_root_is_refused(bad):
    with pytest.raises(SuperposeError):
        Seeds(bad)


def test_a_bad_path_or_name_is_refused():
    with pytest.raises(SuperposeError):
        Seeds(0).child(-1)
    with pytest.raises(SuperposeError, match="unknown random stream"):
        Seeds(0).rng("nope")


# Generators made from a bare integer (``default_rng(7)``, ``SeedSequence(seed)``, a salt
# ``seed + 101``) bypass the policy. The few left are fixed constants of an algorithm, not a
# run's randomness, or children of a named stream; each is listed with its reason.
ALLOWED = {
    "seeds.py": "the policy itself",
    "constructions/circuit/plan.py": "a fixed sample inside the circuit sizing model (construction algorithm)",
    "sbound.py": "a fixed hash of truth rows (deterministic, not a random draw of the run)",
    "search.py": "fresh copies of the named 'inputs' stream for every probe",
    "data.py": "workers' children of the named 'data' stream",
    "parallel.py": "chunk children of the named 'verify' stream",
    "peers/trained.py": "torch's generator (torch, not numpy)",
}


def test_no_generator_is_made_from_a_bare_seed_outside_the_policy():
    root = Path(superpose.__file__).parent
    pattern = re.compile(r"default_rng\(|SeedSequence\(|manual_seed\(")
    offenders = []
    for path in sorted(root.rglob("*.py")):
        rel = path.relative_to(root).as_posix()
        if rel in ALLOWED:
            continue
        for n, line in enumerate(path.read_text().splitlines(), 1):
            code = line.split("#")[0]
            if pattern.search(code) and ">>>" not in line and "..." not in line.strip()[:3]:
                offenders.append(f"{rel}:{n}")
    assert offenders == []
