"""Memory estimates and the refusal check (superpose.memory)."""

from __future__ import annotations

import tracemalloc

import numpy as np
import pytest

from superpose import SuperposeError, build, families, verify
from superpose.memory import (
    LIMIT_ENV,
    MemoryEstimate,
    check_memory,
    default_limit_bytes,
    estimate_memory,
    estimate_task_memory,
    format_bytes,
    parse_bytes,
    physical_memory_bytes,
)

GiB = 2**30


def test_parse_and_format_bytes():
    assert parse_bytes("8G") == 8 * GiB
    assert parse_bytes("8 GiB") == 8 * GiB
    assert parse_bytes("512m") == 512 * 2**20
    assert parse_bytes("1000") == 1000
    assert parse_bytes(12) == 12
    for bad in ("lots", "8X", "-3G", ""):
        with pytest.raises(SuperposeError, match="memory size"):
            parse_bytes(bad)
    assert format_bytes(512) == "512 B"
    assert format_bytes(1.5 * GiB) == "1.5 GiB"


def test_physical_memory_matches_sysconf():
    import os

    phys = physical_memory_bytes()
    sysconf = os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES")
    assert 0.9 * sysconf <= phys <= 1.1 * sysconf


def test_default_limit_is_80_percent_or_env(monkeypatch):
    monkeypatch.delenv(LIMIT_ENV, raising=False)
    assert default_limit_bytes() == int(physical_memory_bytes() * 0.8)
    monkeypatch.setenv(LIMIT_ENV, "3G")
    assert default_limit_bytes() == 3 * GiB


def test_check_memory_refuses_with_both_numbers_and_a_way_out(monkeypatch):
    with pytest.raises(SuperposeError) as info:
        check_memory(30 * GiB, 16 * GiB, False)
    msg = str(info.value)
    assert "30.0 GiB" in msg and "16.0 GiB" in msg
    assert "override the check" in msg and LIMIT_ENV in msg and "--" not in msg
    assert info.value.cli == "--force-memory"  # the command line adds its flag
    check_memory(30 * GiB, 16 * GiB, True)  # overridden
    check_memory(1 * GiB, 16 * GiB, False)  # fits
    # The default limit names where it came from.
    monkeypatch.delenv(LIMIT_ENV, raising=False)
    with pytest.raises(SuperposeError, match="80% of .* physical memory"):
        check_memory(MemoryEstimate(10 * physical_memory_bytes()))
    monkeypatch.setenv(LIMIT_ENV, "1M")
    with pytest.raises(SuperposeError, match=f"from {LIMIT_ENV}"):
        check_memory(2 * 2**20)


def test_estimate_grows_with_size_and_code_length():
    small = estimate_memory(10_000, 10_000, "superposed", ell=6, ell_out=6).total_bytes
    large = estimate_memory(100_000, 100_000, "superposed", ell=6, ell_out=6).total_bytes
    longer = estimate_memory(100_000, 100_000, "superposed", ell=8, ell_out=8).total_bytes
    assert small < large < longer
    # Automatic code lengths are assumed at their largest, so the estimate errs high.
    auto = estimate_memory(100_000, 100_000, "superposed")
    assert auto.total_bytes >= longer
    assert any("automatic" in a for a in auto.assumptions)
    # The target instance fits the 8 GiB goal by this estimate.
    big = estimate_memory(10**6, 10**6, "superposed", ell=6, ell_out=6)
    assert big.total_bytes < 8 * GiB
    assert set(big.parts) >= {"task", "weights", "codes", "verify"}


def test_estimate_other_constructions_and_errors():
    assert estimate_memory(1000, 1000, "naive").total_bytes > 0
    three = estimate_memory(1000, 1000, "superposed3", ell=6, ell_out=6, t=6)
    two = estimate_memory(1000, 1000, "superposed", ell=6, ell_out=6)
    assert three.total_bytes > two.total_bytes
    generic = estimate_memory(1000, 1000, "trained")
    assert any("no model" in a for a in generic.assumptions)
    with pytest.raises(SuperposeError, match="outputs"):
        estimate_memory(1000, 0)
    with pytest.raises(SuperposeError, match="ell"):
        estimate_memory(1000, 1000, ell=-1)


def test_task_estimate_uses_real_operand_count():
    task = families.k_and(200, 300, 4, np.random.default_rng(0), 4)
    est = estimate_task_memory(task, "superposed", ell=5, ell_out=5)
    ref = estimate_memory(200, 300, "superposed", sparsity=4, arity=4.0, ell=5, ell_out=5)
    assert est.total_bytes == ref.total_bytes


def test_estimate_covers_the_measured_peak_of_a_real_build():
    """Allocations traced during a superposed build + verification stay under the estimate."""
    task = families.pairs(20_000, 20_000, np.random.default_rng(0))
    est = estimate_task_memory(task, "superposed", ell=4, ell_out=4)
    tracemalloc.start()
    try:
        net = build(task, "superposed", rng=np.random.default_rng(1), ell=4, ell_out=4)
        verify(net, "random", 2048, np.random.default_rng(2))
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert peak < est.total_bytes
    assert est.total_bytes < 20 * peak  # and is not absurdly loose
