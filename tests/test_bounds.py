"""Bounds (docs/DESIGN.md, Bounds) against independent computations: exact integers, fsum of logs, Stirling."""

from __future__ import annotations

import itertools
import json
import math
from decimal import Decimal, getcontext

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from superpose.bounds import (
    Family,
    bits_lower_bound,
    bloom_code_width,
    bloom_failure_log,
    bounds_report,
    capacity,
    capacity_for_bits,
    family_of_task,
    hidden_neurons_lower_bound,
    layer_parameter_budget,
    linear_code_width,
    ln_comb,
    log2_comb,
    log2_covered,
    log2_factorial,
    log2_instances,
    make_family,
    neurons_lower_bound,
    nonzero_parameters_lower_bound,
    parameters_lower_bound,
    tightness,
    total_neurons_lower_bound,
)
from superpose.cli import main
from superpose.errors import SuperposeError
from superpose.task import Task

FAST = settings(deadline=None, suppress_health_check=[HealthCheck.too_slow])


# --------------------------------------------------------------------------------------
# independent references
# --------------------------------------------------------------------------------------
def exact_log2_comb(n: int, k: int) -> float:
    """log2 of the exact integer C(n, k) (math.log2 is correctly rounded on big ints)."""
    return math.log2(math.comb(n, k))


def fsum_log2_comb(n: int, k: int) -> float:
    """log2 C(n, k) as an exactly rounded sum of k + k logs (no log-gamma involved)."""
    return math.fsum(math.log2(n - i) for i in range(k)) - math.fsum(
        math.log2(i) for i in range(1, k + 1)
    )


getcontext().prec = 60


def stirling_ln_factorial(n: int) -> tuple[Decimal, Decimal]:
    """Robbins' bounds: S(n) + 1/(12n+1) < ln n! < S(n) + 1/(12n), in 60-digit decimals."""
    dn = Decimal(n)
    pi = Decimal("3.14159265358979323846264338327950288419716939937510582097494")
    s = dn * dn.ln() - dn + (2 * pi * dn).ln() / 2
    return s + 1 / (12 * dn + 1), s + 1 / (12 * dn)


def stirling_log2_comb(n: int, k: int) -> tuple[float, float]:
    """Interval for log2 C(n, k) from Robbins' bounds on the three factorials."""
    lo_n, hi_n = stirling_ln_factorial(n)
    lo_k, hi_k = stirling_ln_factorial(k)
    lo_r, hi_r = stirling_ln_factorial(n - k)
    ln2 = Decimal(2).ln()
    return float((lo_n - hi_k - hi_r) / ln2), float((hi_n - lo_k - lo_r) / ln2)


# --------------------------------------------------------------------------------------
# exact counts
# --------------------------------------------------------------------------------------
@FAST
@given(n=st.integers(0, 4000), frac=st.floats(0, 1))
def test_log2_comb_matches_exact_integers(n: int, frac: float) -> None:
    k = round(frac * n)
    exact = exact_log2_comb(n, k)
    assert abs(log2_comb(n, k) - exact) <= 1e-12 * max(1.0, exact)


@FAST
@given(digits=st.integers(20, 300), k=st.integers(17, 400))
def test_log2_comb_beyond_float_range(digits: int, k: int) -> None:
    n = 10**digits + 12345
    exact = exact_log2_comb(n, k)
    assert abs(log2_comb(n, k) - exact) <= 1e-12 * exact


@pytest.mark.parametrize(
    "n,k",
    [(10**12, 10**9), (math.comb(10**9, 2), 10**9), (10**40, 10**20), (2 * 10**9, 10**9)],
)
def test_log2_comb_large_against_stirling_intervals(n: int, k: int) -> None:
    lo, hi = stirling_log2_comb(n, k)
    value = log2_comb(n, k)
    assert lo * (1 - 1e-12) <= value <= hi * (1 + 1e-12)


@pytest.mark.parametrize("n", [1, 2, 10, 1000, 10**6, 10**7, 10**9])
def test_log2_factorial_against_robbins(n: int) -> None:
    if n < 2:
        assert log2_factorial(n) == 0.0
        return
    lo, hi = stirling_ln_factorial(n)
    ln2 = Decimal(2).ln()
    assert float(lo / ln2) * (1 - 1e-13) <= log2_factorial(n) <= float(hi / ln2) * (1 + 1e-13)


def test_log2_factorial_exact_small() -> None:
    for n in range(0, 300):
        assert abs(log2_factorial(n) - math.log2(math.factorial(n))) <= 1e-12 * max(1, n * n)


def test_symmetry_and_tiny_cases() -> None:
    assert ln_comb(7, 0) == 0.0 == ln_comb(7, 7)
    assert abs(ln_comb(10**9, 10**6) - ln_comb(10**9, 10**9 - 10**6)) < 1e-6
    with pytest.raises(SuperposeError):
        ln_comb(5, 6)
    with pytest.raises(SuperposeError):
        ln_comb(-1, 0)


def test_reference_table_of_paper_notes() -> None:
    """paper-notes §5.1: log2 m'! and log2 C(C(m,2), m') to the 3 digits given there."""
    for mp, want in [
        (10**3, 8.53e3),
        (10**4, 1.18e5),
        (10**5, 1.52e6),
        (10**6, 1.85e7),
        (10**7, 2.18e8),
    ]:
        got = log2_instances(Family("permutation", outputs=mp))
        assert abs(got - want) / want < 0.005
    for m, mp, want in [(10**3, 4 * 10**3, 3.36e4), (10**4, 10**5, 1.04e6), (10**5, 10**6, 1.37e7)]:
        got = log2_instances(Family("and2", outputs=mp, features=m))
        assert abs(got - want) / want < 0.005


def test_pair_count_exact_at_twenty_thousand() -> None:
    m = mp = 20_000
    exact = exact_log2_comb(math.comb(m, 2), mp)
    assert abs(log2_instances(Family("and2", outputs=mp, features=m)) - exact) < 1e-9 * exact


def test_counts_up_to_a_billion_outputs() -> None:
    mp = 10**9
    perm = log2_instances(Family("permutation", outputs=mp))
    lo, hi = stirling_ln_factorial(mp)
    ln2 = Decimal(2).ln()
    assert float(lo / ln2) * (1 - 1e-13) <= perm <= float(hi / ln2) * (1 + 1e-13)
    pairs = log2_instances(Family("and2", outputs=mp, features=mp))
    lo2, hi2 = stirling_log2_comb(math.comb(mp, 2), mp)
    assert lo2 * (1 - 1e-12) <= pairs <= hi2 * (1 + 1e-12)
    assert math.isfinite(log2_instances(Family("kand", outputs=mp, features=10**6, arity=5)))


def test_family_counts_by_brute_force() -> None:
    # permutations of 5 items into 7 features: injections 7!/2!
    assert (
        abs(log2_instances(Family("permutation", outputs=5, features=7)) - math.log2(2520)) < 1e-12
    )
    assert abs(log2_instances(Family("maps", outputs=3, features=4)) - 6.0) < 1e-12
    for name in ("and2", "or2", "xor2", "andnot2"):
        fam = Family(name, outputs=4, features=6)
        assert abs(log2_instances(fam) - math.log2(math.comb(15, 4))) < 1e-12
    fam = Family("kand", outputs=3, features=6, arity=3)
    assert abs(log2_instances(fam) - math.log2(math.comb(20, 3))) < 1e-12
    assert log2_instances(make_family("uand", features=50)) == 0.0


def test_bad_families_are_refused() -> None:
    with pytest.raises(SuperposeError, match="C\\(10, 2\\) = 45"):
        Family("and2", outputs=46, features=10)
    with pytest.raises(SuperposeError, match="unknown family"):
        make_family("nand2", features=10, outputs=3)
    with pytest.raises(SuperposeError, match="arity"):
        Family("kand", outputs=1, features=4, arity=5)
    with pytest.raises(SuperposeError, match="needs features"):
        make_family("and2", outputs=10)
    with pytest.raises(SuperposeError, match="at least 9 features"):
        Family("permutation", outputs=9, features=8)


# --------------------------------------------------------------------------------------
# families of task files
# --------------------------------------------------------------------------------------
def test_family_inference() -> None:
    perm = Task.from_gates(5, 2, [("copy", [3]), ("copy", [0]), ("copy", [4])])
    assert (family_of_task(perm).name, family_of_task(perm).m) == ("permutation", 5)
    maps = Task.from_gates(5, 2, [("copy", [3]), ("copy", [3])])
    assert family_of_task(maps).name == "maps"
    for op in ("and", "or", "xor", "andnot"):
        t = Task.from_gates(6, 2, [(op, [0, 1]), (op, [2, 5])])
        assert family_of_task(t).name == f"{op}2"
    k3 = Task.from_gates(6, 3, [("and", [0, 1, 2]), ("and", [2, 3, 5])])
    f = family_of_task(k3)
    assert (f.name, f.arity) == ("kand", 3)
    uand = Task.pairwise(4, 2, np.array(list(itertools.combinations(range(4), 2))))
    assert family_of_task(uand).name == "and2"  # without a recorded family it is just pairs
    uand_rec = Task.pairwise(
        4, 2, np.array(list(itertools.combinations(range(4), 2))), family={"name": "uand"}
    )
    assert bits_lower_bound(family_of_task(uand_rec)) == 0.0


def test_circuit_family_count_by_hand() -> None:
    # level 1: two ANDs over 4 inputs; level 2: one OR reading a level-1 gate and an input.
    t = Task.from_gates(4, 2, [("and", [0, 1]), ("and", [2, 3]), ("or", [4, 0])])
    f = family_of_task(t)
    assert f.name == "circuit"
    # level 1: C(C(4,2), 2) = C(6, 2); level 2: 2-sets of the 6 nodes below with >= 1 of
    # level 1: C(6,2) - C(4,2) = 9 choices, one gate.
    assert abs(log2_instances(f) - math.log2(15 * 9)) < 1e-12
    # mixed ops at depth 1 are a one-level circuit: groups per op
    mixed = Task.from_gates(5, 2, [("and", [0, 1]), ("or", [2, 3]), ("or", [1, 4])])
    g = family_of_task(mixed)
    assert g.name == "circuit"
    assert abs(log2_instances(g) - math.log2(10 * math.comb(10, 2))) < 1e-12
    # only the outputs are counted: hidden gates are fixed
    hidden = Task.from_gates(4, 2, [("and", [0, 1]), ("or", [4, 2])], outputs=[5])
    h = family_of_task(hidden)
    assert abs(log2_instances(h) - math.log2(math.comb(5, 2) - math.comb(4, 2))) < 1e-12


def test_outputs_that_are_inputs_are_not_counted() -> None:
    t = Task.from_gates(5, 2, [("and", [0, 1]), ("and", [2, 3])], outputs=[4, 5, 6])
    f = family_of_task(t)
    assert (f.name, f.outputs) == ("and2", 2)
    assert "not counted" in f.note
    only_inputs = Task.from_gates(5, 2, [("and", [0, 1])], outputs=[1, 2])
    assert log2_instances(family_of_task(only_inputs)) == 0.0


def test_cli_circuit_family_levels() -> None:
    f = make_family("circuit", features=10, outputs=7, depth=2)
    # levels of 4 and 3 gates: C(C(10,2),4) * C(C(14,2)-C(10,2), 3)
    want = math.log2(math.comb(45, 4)) + math.log2(math.comb(91 - 45, 3))
    assert abs(log2_instances(f) - want) < 1e-9


# --------------------------------------------------------------------------------------
# error tolerance
# --------------------------------------------------------------------------------------
def _max_cover_bruteforce(instances: list[tuple], j: int) -> int:
    best = 0
    for g in instances:
        near = sum(1 for f in instances if sum(a != b for a, b in zip(f, g, strict=True)) <= j)
        best = max(best, near)
    return best


@pytest.mark.parametrize("delta", [0.2, 0.4, 0.6, 0.99])
def test_covering_bound_is_sound_permutation(delta: float) -> None:
    mp = 5
    perms = list(itertools.permutations(range(mp)))
    j = math.floor(delta * mp)
    fam = Family("permutation", outputs=mp)
    assert log2_covered(fam, delta) >= math.log2(_max_cover_bruteforce(perms, j)) - 1e-12


@pytest.mark.parametrize("delta", [0.34, 0.67])
def test_covering_bound_is_sound_pairs(delta: float) -> None:
    m, mp = 5, 3
    pairs = list(itertools.combinations(range(m), 2))
    instances = list(itertools.combinations(pairs, mp))  # sorted tuples: output k = k-th pair
    j = math.floor(delta * mp)
    fam = Family("and2", outputs=mp, features=m)
    assert log2_covered(fam, delta) >= math.log2(_max_cover_bruteforce(instances, j)) - 1e-12


def test_error_fraction_lowers_the_bound_and_matches_spec_form() -> None:
    fam = Family("permutation", outputs=10**6)
    exact = bits_lower_bound(fam)
    assert bits_lower_bound(fam, 0.0) == exact == log2_instances(fam)
    prev = exact
    for delta in (1e-4, 0.01, 0.1, 0.3):
        b = bits_lower_bound(fam, delta)
        assert 0 < b < prev
        prev = b
        # docs/DESIGN.md, Bounds: covered ≈ δ m' log2 m' + m' H(δ) for permutations
        h = -delta * math.log2(delta) - (1 - delta) * math.log2(1 - delta)
        approx = delta * 10**6 * math.log2(10**6) + 10**6 * h
        assert abs(log2_covered(fam, delta) - approx) / approx < 0.01
    with pytest.raises(SuperposeError):
        bits_lower_bound(fam, 1.0)


# --------------------------------------------------------------------------------------
# parameters and neurons
# --------------------------------------------------------------------------------------
@FAST
@given(
    bits=st.floats(0, 1e12),
    layers=st.integers(1, 12),
    b=st.sampled_from([1.0, 2.0, 4.0, 8.0, 16.0, 0.5, 3.3]),
)
def test_neuron_bounds_are_the_smallest_that_fit(bits: float, layers: int, b: float) -> None:
    n = neurons_lower_bound(bits, layers, b)
    assert layers * (n * n + n) * b >= bits
    if n > 0:
        assert layers * ((n - 1) ** 2 + (n - 1)) * b < bits
    t = total_neurons_lower_bound(bits, b)
    assert (t * t // 4 + t) * b >= bits
    if t > 0:
        assert ((t - 1) ** 2 // 4 + t - 1) * b < bits
    p = parameters_lower_bound(bits, b)
    assert p * b >= bits * (1 - 1e-12)
    assert (p - 1) * b < bits or p == 0


@FAST
@given(
    bits=st.floats(1, 1e10),
    n_in=st.integers(1, 5000),
    n_out=st.integers(1, 5000),
    layers=st.integers(1, 6),
)
def test_hidden_width_bound(bits: float, n_in: int, n_out: int, layers: int) -> None:
    h = hidden_neurons_lower_bound(bits, n_in, n_out, layers)

    def params(h: int) -> int:
        return n_in * h + (layers - 2) * h * h + h * n_out + (layers - 1) * h + n_out

    if layers == 1:
        assert (h == 0) == (n_in * n_out + n_out >= bits)
        assert h in (0, None)
        return
    assert h is not None and params(h) >= bits
    if h > 0:
        assert params(h - 1) < bits


def test_spec_section4_numbers() -> None:
    """docs/DESIGN.md, Bounds: ≈1306 per layer at m' = 10⁵ (one weight layer, 1-bit weights), ≈923 for two."""
    bits = bits_lower_bound(Family("and2", outputs=10**5, features=10**5))
    assert neurons_lower_bound(bits, 1, 1) == 1306
    assert neurons_lower_bound(bits, 2, 1) in range(922, 925)
    bits6 = bits_lower_bound(Family("and2", outputs=10**6, features=10**6))
    assert abs(neurons_lower_bound(bits6, 1, 1) - 4513) <= 2


def test_nonzero_parameter_bound() -> None:
    assert nonzero_parameters_lower_bound(1000.0, 1, 1024) == math.ceil(1000 / 11)
    assert nonzero_parameters_lower_bound(0.0, 4, 10) == 0


# --------------------------------------------------------------------------------------
# capacity
# --------------------------------------------------------------------------------------
@FAST
@given(
    n=st.integers(0, 20_000),
    layers=st.integers(1, 4),
    b=st.sampled_from([1.0, 2.0, 8.0, 16.0]),
    family=st.sampled_from(["permutation", "and2", "kand"]),
)
def test_capacity_is_consistent_with_the_bound(n: int, layers: int, b: float, family: str) -> None:
    cap = capacity(n, layers, b, family)
    budget = layer_parameter_budget(n, layers) * b

    def bound(mp: int) -> float:
        if mp == 0:
            return 0.0
        if family == "permutation":
            return bits_lower_bound(Family("permutation", outputs=mp))
        k = 3 if family == "kand" else 2
        return bits_lower_bound(Family(family, outputs=mp, features=max(mp, k + 1), arity=3))

    assert bound(cap) <= budget < bound(cap + 1)
    assert capacity(n + 1, layers, b, family) >= cap


@FAST
@given(mp=st.integers(1, 10**7), layers=st.integers(1, 3))
def test_capacity_inverts_the_neuron_bound(mp: int, layers: int) -> None:
    bits = bits_lower_bound(Family("permutation", outputs=mp))
    n = neurons_lower_bound(bits, layers)
    assert capacity(n, layers) >= mp
    if n > 0:
        assert capacity(n - 1, layers) < mp


def test_capacity_reference_and_growth() -> None:
    # n = 1000, L = 1, b = 1: 1,001,000 bits
    cap = capacity(1000, 1, 1)
    assert cap == capacity_for_bits(1000 * 1000 + 1000)
    assert bits_lower_bound(Family("permutation", outputs=cap)) <= 1_001_000
    # O(n²/log n): the ratio cap / (n²/log2 n) stays in a narrow band over 3 decades
    ratios = [capacity(n) / (n * n / math.log2(n)) for n in (100, 1000, 10_000, 100_000)]
    assert all(0.4 < r < 1.2 for r in ratios)
    # error tolerance raises capacity
    assert capacity(1000, error_fraction=0.1) > cap


def test_capacity_with_fixed_features() -> None:
    # budget above the peak of C(C(m,2), m'): every m' up to C(m,2) fits
    assert capacity(100, family="and2", features=10) == 45
    cap = capacity(30, family="and2", features=100)
    fam = Family("and2", outputs=cap, features=100)
    assert bits_lower_bound(fam) <= layer_parameter_budget(30, 1)
    with pytest.raises(SuperposeError):
        capacity(10, family="uand")


# --------------------------------------------------------------------------------------
# representation only, checked by simulation
# --------------------------------------------------------------------------------------
def _all_sparse_inputs(m: int, s: int) -> list[tuple[int, ...]]:
    return [c for k in range(1, s + 1) for c in itertools.combinations(range(m), k)]


def _linear_read_errors(codes: np.ndarray, inputs: list[tuple[int, ...]]) -> int:
    """codes: (n, m) with ±1/√n entries; read f iff <e_f, z> > 1/2."""
    m = codes.shape[1]
    x = np.zeros((len(inputs), m))
    for row, active in enumerate(inputs):
        x[row, list(active)] = 1.0
    z = x @ codes.T
    reads = (z @ codes) > 0.5
    return int((reads != (x > 0)).any(axis=1).sum())


def test_linear_code_width_all_inputs_by_simulation() -> None:
    m, s = 60, 2
    n = linear_code_width(m, s, 0.01, "all")
    assert n == math.ceil(8 * s * s * math.log(m * (m - 1) / 0.01))
    rng = np.random.default_rng(7)
    inputs = _all_sparse_inputs(m, s)
    for _ in range(3):
        codes = rng.choice([-1.0, 1.0], size=(n, m)) / math.sqrt(n)
        gram = codes.T @ codes
        np.fill_diagonal(gram, 0.0)
        assert np.abs(gram).max() < 1 / (2 * s)  # the certificate the width promises
        assert _linear_read_errors(codes, inputs) == 0
    # the test can fail: far below the width, reads go wrong
    small = max(4, n // 40)
    codes = rng.choice([-1.0, 1.0], size=(small, m)) / math.sqrt(small)
    assert _linear_read_errors(codes, inputs) > 0


def test_linear_code_width_per_input_by_simulation() -> None:
    """Per input the guarantee is probabilistic: reads fail on at most a fraction p of inputs."""
    m, s, p = 1000, 3, 0.01
    n = linear_code_width(m, s, p, "per_input")
    assert n == math.ceil(8 * s * math.log(2 * m / p))
    rng = np.random.default_rng(11)

    def failing_inputs(width: int, trials: int = 20) -> int:
        bad = 0
        for _ in range(trials):
            codes = rng.choice([-1.0, 1.0], size=(width, m)) / math.sqrt(width)
            inputs = [tuple(rng.choice(m, s, replace=False)) for _ in range(20)]
            bad += _linear_read_errors(codes, inputs)
        return bad

    assert failing_inputs(n) <= p * 400
    # the test can fail: at a quarter of the width most inputs are misread
    assert failing_inputs(n // 4, trials=4) > 0.2 * 80
    assert n < linear_code_width(m, s, p, "all")


def _bloom_codes(m: int, n: int, ell: int, rng: np.random.Generator) -> np.ndarray:
    codes = np.zeros((m, n), dtype=bool)
    for f in range(m):
        codes[f, rng.choice(n, ell, replace=False)] = True
    return codes


def _bloom_false_reads_all_pairs(codes: np.ndarray) -> int:
    """Exhaustive over every input of <= 2 active features: count (input, f) false reads."""
    m = codes.shape[0]
    a, b = np.triu_indices(m, k=1)
    union = codes[a] | codes[b]  # all 2-sparse inputs (1-sparse are subsets)
    missing = (~union).astype(np.int32) @ codes.T.astype(np.int32)  # units of f not covered
    covered = missing == 0
    covered[np.arange(len(a)), a] = False
    covered[np.arange(len(a)), b] = False
    return int(covered.sum())


def test_bloom_code_width_all_inputs_by_simulation() -> None:
    m, s = 120, 2
    width, ell = bloom_code_width(m, s, 0.01, "all")
    assert bloom_failure_log(width, ell, m, s, "all") <= math.log(0.01)
    assert bloom_failure_log(width - 1, ell, m, s, "all") > math.log(0.01)
    # optimal over code sizes (checked by scanning)
    for other in range(1, 40):
        w = width - 1
        assert bloom_failure_log(w, other, m, s, "all") > math.log(0.01)
    rng = np.random.default_rng(3)
    for _ in range(3):
        assert _bloom_false_reads_all_pairs(_bloom_codes(m, width, ell, rng)) == 0
    # the test can fail: at a third of the width, some feature hides in a union of two others
    assert _bloom_false_reads_all_pairs(_bloom_codes(m, width // 3, ell, rng)) > 0


def test_bloom_code_width_per_input_by_simulation() -> None:
    m, s = 5000, 4
    width, ell = bloom_code_width(m, s, 0.01, "per_input")
    rng = np.random.default_rng(5)
    false_reads = 0
    for _ in range(5):
        codes = _bloom_codes(m, width, ell, rng)
        for _ in range(20):
            active = rng.choice(m, s, replace=False)
            z = codes[active].any(axis=0)
            reads = codes[:, z].sum(axis=1) == ell
            truth = np.zeros(m, dtype=bool)
            truth[active] = True
            false_reads += int((reads != truth).sum())
    assert false_reads == 0
    assert width < bloom_code_width(m, s, 0.01, "all").width


def test_representation_is_logarithmic() -> None:
    widths = [bloom_code_width(10**e, 2).width for e in (3, 6, 9)]
    # O(log m'): tripling the exponent multiplies the width by at most ~3.5
    assert widths[0] < widths[1] < widths[2] < 3.5 * widths[0]
    with pytest.raises(SuperposeError):
        linear_code_width(10, 0)
    with pytest.raises(SuperposeError):
        bloom_code_width(10, 2, failure_probability=1.5)


# --------------------------------------------------------------------------------------
# tightness and the report
# --------------------------------------------------------------------------------------
def test_tightness_of_a_naive_network() -> None:
    import superpose as sp

    task = sp.families.pairs(60, 300, np.random.default_rng(0), sparsity=2)
    net = sp.build(task, "naive")
    t = tightness(net)
    c = net.counts()
    fam = Family("and2", outputs=300, features=60)
    bits = bits_lower_bound(fam)
    assert t["family"] == "and2"
    assert t["bits_lower_bound"] == pytest.approx(bits)
    assert t["neurons_ratio"] == pytest.approx(
        c["neurons"] / total_neurons_lower_bound(bits, c["bits_per_parameter"])
    )
    assert t["bits_ratio"] == pytest.approx(c["description_bits"] / bits)
    # a correct network can never beat the counting bound
    for key in ("neurons_ratio", "width_ratio", "parameters_ratio", "bits_ratio"):
        assert t[key] >= 1.0, key
    json.dumps(t)


def test_bounds_report_keys() -> None:
    r = bounds_report(Family("and2", outputs=1000, features=500), layers=2, neurons=300)
    for key in (
        "log2_instances",
        "bits_lower_bound",
        "parameters_lower_bound",
        "neurons_lower_bound",
        "capacity_neurons",
        "total_neurons_lower_bound",
        "representation_width_bloom",
        "representation_width_linear",
    ):
        assert key in r
    json.dumps(r)


# --------------------------------------------------------------------------------------
# CLI
# --------------------------------------------------------------------------------------
def _run(capsys: pytest.CaptureFixture[str], *args: str) -> tuple[int, str, str]:
    code = main(list(args))
    out = capsys.readouterr()
    return code, out.out, out.err


def test_cli_permutation_million(capsys: pytest.CaptureFixture[str]) -> None:
    code, out, _ = _run(
        capsys, "bounds", "--family", "permutation", "--outputs", "1000000", "--json"
    )
    assert code == 0
    data = json.loads(out)
    exact = math.fsum(math.log2(i) for i in range(1, 10**6 + 1))
    assert abs(data["log2_instances"] - exact) <= 1e-4 * exact
    for key in ("bits_lower_bound", "parameters_lower_bound", "neurons_lower_bound"):
        assert key in data


def test_cli_and2_hundred_thousand(capsys: pytest.CaptureFixture[str]) -> None:
    code, out, _ = _run(
        capsys,
        "bounds",
        "--family",
        "and2",
        "--features",
        "100000",
        "--outputs",
        "100000",
        "--json",
    )
    assert code == 0
    data = json.loads(out)
    exact = fsum_log2_comb(math.comb(10**5, 2), 10**5)
    assert abs(data["log2_instances"] - exact) <= 1e-4 * exact
    assert data["neurons_lower_bound"] == 1306


def test_cli_neurons_gives_capacity(capsys: pytest.CaptureFixture[str]) -> None:
    code, out, _ = _run(
        capsys, "bounds", "--family", "permutation", "--outputs", "1000", "--neurons", "1000",
        "--depth", "2", "--bits-per-parameter", "4", "--json",
    )  # fmt: skip
    assert code == 0
    data = json.loads(out)
    assert data["capacity_neurons"] == capacity(1000, 2, 4.0)
    assert data["layers"] == 2


def test_cli_task_file_and_table(capsys: pytest.CaptureFixture[str], tmp_path) -> None:
    task = Task.from_gates(6, 2, [("xor", [0, 1]), ("xor", [2, 5]), ("xor", [1, 3])])
    path = tmp_path / "t.json"
    task.save(path)
    code, out, _ = _run(capsys, "bounds", "--task", str(path), "--json", "--error-fraction", "0.34")
    assert code == 0
    data = json.loads(out)
    assert data["family"] == "xor2"
    assert data["log2_instances"] == pytest.approx(math.log2(math.comb(15, 3)))
    assert data["bits_lower_bound"] < data["log2_instances"]
    code, out, _ = _run(capsys, "bounds", "--task", str(path))
    assert code == 0 and "log2_instances" in out


@pytest.mark.parametrize(
    "args,needle",
    [
        (["--family", "and2", "--features", "10", "--outputs", "100"], "C(10, 2) = 45"),
        (["--family", "nope", "--features", "10", "--outputs", "10"], "unknown family"),
        (["--outputs", "10"], "exactly one of task_file or family (--task FILE"),
        (["--family", "kand", "--features", "4", "--outputs", "2", "--arity", "7"], "arity"),
        (
            ["--family", "permutation", "--outputs", "10", "--error-fraction", "1.5"],
            "error fraction",
        ),
        (["--family", "permutation", "--outputs", "10", "--depth", "0"], "weight layers"),
        (["--family", "permutation", "--outputs", "10", "--bits-per-parameter", "0"], "bits per"),
        (["--family", "uand", "--features", "10", "--neurons", "5"], "capacity is defined"),
        (["--task", "/nonexistent/t.json"], "no such task file"),
        (["--family", "permutation", "--outputs", "10", "--network", "/x"], "--plot"),
    ],
)
def test_cli_errors_exit_2(
    capsys: pytest.CaptureFixture[str], args: list[str], needle: str
) -> None:
    code, _, err = _run(capsys, "bounds", *args)
    assert code == 2
    assert needle in " ".join(err.split())


def test_cli_plot_with_network(capsys: pytest.CaptureFixture[str], tmp_path) -> None:
    import superpose as sp

    net = sp.build(sp.families.pairs(40, 200, np.random.default_rng(1), sparsity=2), "naive")
    d = sp.save_network(net, tmp_path / "net")
    png = tmp_path / "bounds.png"
    code, out, _ = _run(
        capsys, "bounds", "--family", "and2", "--features", "200", "--outputs", "200",
        "--plot", str(png), "--network", str(d), "--json",
    )  # fmt: skip
    assert code == 0
    assert png.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    data = json.loads(out)
    assert data["networks"][0]["outputs"] == 200
    assert data["networks"][0]["neurons"] == net.counts()["neurons"]
