"""Shared fixtures and the hypothesis profile of the test suite.

The ``ci`` profile is loaded by default (set ``HYPOTHESIS_PROFILE=dev`` for a longer search).
It is derandomised so that CI runs are reproducible; ``dev`` searches with fresh randomness.
Ground-truth helpers (a brute-force evaluator, task strategies) live in ``tests/helpers.py``.
"""

from __future__ import annotations

import os
import sys

# One BLAS thread: the suite's matrices are small, and a multi-threaded OpenBLAS that shares two
# busy cores with other processes spins and runs small products up to 200x slower. This must
# happen before numpy is first imported.
if "numpy" not in sys.modules:
    for _var in ("OPENBLAS_NUM_THREADS", "OMP_NUM_THREADS", "MKL_NUM_THREADS"):
        os.environ.setdefault(_var, "1")

# A suite started from a background job (``cmd &``, nohup) inherits SIGINT ignored, and so
# would every CLI process the Ctrl-C tests launch: they would never see the interrupt they
# test. Ctrl-C reaches a command typed at a terminal, so the suite restores that: a Python
# handler here becomes the default disposition in every child at exec.
import signal  # noqa: E402

if signal.getsignal(signal.SIGINT) == signal.SIG_IGN:
    signal.signal(signal.SIGINT, signal.default_int_handler)

import numpy as np  # noqa: E402
import pytest  # noqa: E402
from hypothesis import HealthCheck, settings  # noqa: E402

settings.register_profile(
    "ci",
    max_examples=40,
    deadline=None,
    derandomize=True,
    database=None,
    print_blob=True,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large],
)
settings.register_profile(
    "dev",
    max_examples=300,
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large],
)
settings.load_profile(os.environ.get("HYPOTHESIS_PROFILE", "ci"))


@pytest.fixture
def rng() -> np.random.Generator:
    """A fresh, seeded generator for each test."""
    return np.random.default_rng(12345)


@pytest.fixture
def small_and2():
    """40 features, 200 random 2-ANDs, s = 3: the issue's reference instance."""
    from superpose import families

    return families.pairs(40, 200, np.random.default_rng(7), sparsity=3)


@pytest.fixture
def naive_and2(small_and2):
    """The naive network of :func:`small_and2`."""
    from superpose import build

    return build(small_and2, "naive")


@pytest.fixture
def mixed_task():
    """:func:`helpers.mixed_task`: every op, k-input gates, a deep chain, an outputs list."""
    import helpers

    return helpers.mixed_task()


@pytest.fixture
def saved_naive(tmp_path, naive_and2):
    """A network directory holding :func:`naive_and2`."""
    from superpose import save_network

    return save_network(naive_and2, tmp_path / "net")
