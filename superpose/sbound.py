"""A yardstick that knows s: lower bounds for networks right on every <= s-sparse input.

The counting bound of :mod:`superpose.bounds` ignores the sparsity s. This module proves the
s-aware bounds we can prove (derivations in docs/BOUNDS.md) and nothing more:

* **Bottleneck bound** (any layered network whose layer has d units, each taking at most
  2^β distinct values; β = 1 for 0/1 step or code layers): the outputs are a function of
  every layer, so a layer must take at least as many distinct states as there are distinct
  correct output vectors over the <= s-sparse inputs, N_out. Hence d >= ⌈log2 N_out / β⌉.
  For ReLU layers with unbounded precision no such bound exists (one real number can hold
  any finite set of states), so the bound is stated for bounded-state layers only.
* **Cover-free lengths** (a 0/1 code read back by monotone read-outs): a family of N sets in
  which no set lies inside the union of r others needs a ground set of at least
  :func:`cover_free_length_lower_bound` elements (exact for r = 1 by Sperner's theorem).

Both grow like s·log m' (representing), far below the counting bound's √(m' log m') for the
s = 2, 3 networks superpose builds: there, the s-aware yardstick is a floor, not a target.
The class and assumption are in every name: ``binary_layer_*`` and ``bits_per_unit``.

Example:
    >>> representation_width_lower_bound(10**5, 2)
    33
    >>> sperner_width(10**5)
    20
"""

from __future__ import annotations

import math
from typing import TYPE_CHECKING, Any

import numpy as np

from superpose.bounds import Family, _int_arg, family_of_task, ln_comb
from superpose.errors import SuperposeError

if TYPE_CHECKING:  # pragma: no cover
    from superpose.network import Network
    from superpose.task import Task

LN2 = math.log(2.0)
EVAL_LIMIT = 1 << 17
"""At most this many probe inputs are evaluated for a general task (any subset keeps the
bound valid: it only counts distinct correct output vectors that certainly occur)."""


def _check_sparsity(sparsity: Any) -> int:
    s = _int_arg("sparsity", sparsity)
    if s < 0:
        raise SuperposeError(f"sparsity must be >= 0, got {s}")
    return s


def _check_bits_per_unit(bits_per_unit: Any) -> float:
    b = float(bits_per_unit)
    if not (b > 0 and math.isfinite(b)):
        raise SuperposeError(f"bits per unit must be positive and finite, got {bits_per_unit}")
    return b


def log2_sum_comb(n: int, r: int) -> float:
    """log2 Σ_{i=0..r} C(n, i): the number of subsets of size at most r, exact in log form.

    Example:
        >>> log2_sum_comb(4, 2) == math.log2(1 + 4 + 6)
        True
    """
    n, r = _int_arg("n", n), _int_arg("r", r)
    if n < 0 or r < 0:
        raise SuperposeError(f"need n >= 0 and r >= 0, got n={n}, r={r}")
    r = min(r, n)
    if n <= 64:
        return math.log2(sum(math.comb(n, i) for i in range(r + 1)))
    logs = np.array([ln_comb(n, i) for i in range(r + 1)])
    top = float(logs.max())
    return (top + math.log(float(np.exp(logs - top).sum()))) / LN2


def binary_layer_width(log2_states: float, bits_per_unit: float = 1.0) -> int:
    """Fewest units of a layer that must take 2^log2_states distinct states: ⌈log2 N / β⌉.

    Each unit takes at most 2^β values (β = ``bits_per_unit``), so d units take at most
    2^{βd} states. The small tolerance keeps exact powers of two from rounding up.

    Example:
        >>> binary_layer_width(math.log2(1 + 100_000))
        17
    """
    b = _check_bits_per_unit(bits_per_unit)
    if not log2_states > 0:
        return 0
    return max(1, math.ceil(log2_states / b - 1e-9))


def sperner_width(n_sets: int) -> int:
    """Smallest d with C(d, ⌊d/2⌋) >= N: exact length of an antichain (1-cover-free) of N sets.

    Sperner's theorem: an antichain of subsets of a d-set has at most C(d, ⌊d/2⌋) members,
    and the middle layer attains it.

    Example:
        >>> [sperner_width(n) for n in (1, 2, 3, 6, 7, 20, 21)]
        [0, 2, 3, 4, 5, 6, 7]
    """
    n = _int_arg("number of sets", n_sets)
    if n < 0:
        raise SuperposeError(f"number of sets must be >= 0, got {n}")
    d = 0
    while math.comb(d, d // 2) < n:
        d += 1
    return d


def cover_free_length_lower_bound(n_sets: int, r: int) -> int:
    """A proven lower bound on the ground-set size t of an r-cover-free family of N sets.

    r-cover-free: no member lies inside the union of r others. Three proofs (docs/BOUNDS.md):

    * private elements: any min(N, r + 1) members each avoid the union of the others, so
      each owns an element the others lack: t >= min(N, r + 1);
    * distinct unions: unions of at most r members are pairwise distinct (a member of one
      union's index set that is missing from the other's would be covered by at most r
      others), so 2^t >= Σ_{i<=r} C(N, i);
    * for r >= 1 the family is an antichain: t >= :func:`sperner_width`.

    The true minimum is Θ(r² log N / log r) (D'yachkov–Rykov); we do not use that
    asymptotic form because we state no constant we have not proved.

    Example:
        >>> cover_free_length_lower_bound(3, 2), cover_free_length_lower_bound(10**5, 1)
        (3, 20)
    """
    n, r = _int_arg("number of sets", n_sets), _int_arg("r", r)
    if n < 0 or r < 0:
        raise SuperposeError(f"need N >= 0 and r >= 0, got N={n}, r={r}")
    if n == 0:
        return 0
    best = min(n, r + 1) if r >= 1 else 1
    best = max(best, binary_layer_width(log2_sum_comb(n, r)))
    if r >= 1:
        best = max(best, sperner_width(n))
    return best


def representation_width_lower_bound(
    features: int, sparsity: int, bits_per_unit: float = 1.0
) -> int:
    """Units any layer needs to hold every <= s-sparse set of m' features (β bits per unit).

    Reading the features back means telling all Σ_{i<=s} C(m', i) sets apart, whatever the
    code and read-out; for a Bloom (OR) code with monotone read-out the code is also
    s-cover-free, and the same number bounds its length. Θ(s log(m'/s)): the "representing"
    side of the paper's exponential gap.

    Example:
        >>> representation_width_lower_bound(1000, 2)
        19
    """
    m = _int_arg("features", features)
    if m < 0:
        raise SuperposeError(f"features must be >= 0, got {m}")
    return binary_layer_width(log2_sum_comb(m, _check_sparsity(sparsity)), bits_per_unit)


# --------------------------------------------------------------------------------------
# distinct correct output vectors
# --------------------------------------------------------------------------------------
def log2_output_patterns_family(family: Family, sparsity: int) -> float | None:
    """log2 of a lower bound on N_out that holds for EVERY instance of ``family``.

    - ``permutation``: every <= s-set of outputs is hit by its sources: Σ_{i<=s} C(m', i).
    - ``and2`` / ``kand`` (arity k <= s): the empty input plus each gate's own operand set,
      which fires that gate alone: 1 + m'. (A star instance has no two disjoint gates, so
      no more can be promised for every instance.) With s < k nothing ever fires: 1.
    - ``uand``: every input X with |X| >= 2 fires exactly the pairs inside X:
      1 + Σ_{2<=i<=s} C(m, i).
    - ``maps``, ``or2``, ``xor2``, ``andnot2``, ``circuit``: ``None`` (not derived at the
      family level; :func:`log2_output_patterns_task` bounds any given task).

    Example:
        >>> log2_output_patterns_family(Family("and2", outputs=7, features=10), 2) == 3.0
        True
    """
    s = _check_sparsity(sparsity)
    name, mp = family.name, family.outputs
    if name == "permutation":
        return log2_sum_comb(mp, s)
    if name in ("and2", "kand"):
        k = family.arity if name == "kand" else 2
        return math.log2(1 + mp) if s >= k else 0.0
    if name == "uand":
        m = family.m
        if s < 2:
            return 0.0
        total = log2_sum_comb(m, s)  # counts the m + 1 inputs of size <= 1, which fire nothing
        if total > 1000:
            return total  # m·2^-total is below double precision
        return total + math.log1p(-m * 2.0**-total) / LN2
    return None


def _hash_rows(values: Any, rng: np.random.Generator) -> np.ndarray:
    """A 64-bit hash per row of a sparse 0/1 matrix (sum of random keys, wrapping).

    Two rows hash alike if they are equal; unequal rows that collide only make the count of
    distinct rows smaller, so the bound built on it stays valid.
    """
    from scipy import sparse

    v = sparse.csr_array(values)
    keys = rng.integers(0, 2**63, size=v.shape[1], dtype=np.uint64)
    contrib = keys[v.indices] * (v.data != 0).astype(np.uint64)
    rows = np.repeat(np.arange(v.shape[0]), np.diff(v.indptr))
    out = np.zeros(v.shape[0], dtype=np.uint64)
    np.add.at(out, rows, contrib)
    return out


def _greedy_matching(sets: np.ndarray) -> int:
    """Size of a greedy family of pairwise disjoint rows of ``sets`` (shape (g, k))."""
    used: set[int] = set()
    count = 0
    for row in sets.tolist():
        if used.isdisjoint(row):
            used.update(row)
            count += 1
    return count


def log2_output_patterns_task(task: Task, sparsity: int | None = None) -> float:
    """log2 of a proven lower bound on N_out for this task (distinct correct output vectors).

    Pure one-level k-input AND tasks (every output an ``and`` of k input features), k <= s:
    1 + g + Σ_{2<=i<=⌊s/k⌋} C(ν, i), with g distinct gates and ν the size of a greedy set of
    gates with pairwise disjoint operands: the empty input; each gate's operand set (fires
    that gate alone); and the union of any i >= 2 of the ν disjoint gates (fires at least those
    i gates, and a gate of the family but not of another subset has an operand outside the
    other union, so every subset gives a different vector). Other tasks: the number of
    distinct ground-truth vectors over the empty input, every single feature and every
    gate's operand set of size <= s (evaluated, at most :data:`EVAL_LIMIT` inputs). Never
    below :func:`log2_output_patterns_family` for the task's family (it holds for every
    instance, this one included).

    Example:
        >>> from superpose.task import Task
        >>> t = Task.from_gates(4, 4, [("and", [0, 1]), ("and", [2, 3])])
        >>> log2_output_patterns_task(t) == math.log2(1 + 2 + 1)
        True
    """
    s = _check_sparsity(task.sparsity if sparsity is None else sparsity)
    fam = family_of_task(task)
    probed = _log2_output_patterns_probed(task, s)
    if fam.name == "uand" and not _all_pairs(task):
        return probed  # a recorded family name is not evidence: use the task's own gates
    return max(log2_output_patterns_family(fam, s) or 0.0, probed)


def _all_pairs(task: Task) -> bool:
    """Whether the task's outputs are exactly the C(m, 2) pairwise ANDs of its inputs."""
    from superpose.task import OP_CODE

    m = int(task.features)
    outs = np.asarray(task.outputs, dtype=np.int64)
    if len(outs) != m * (m - 1) // 2 or (outs < m).any():
        return False
    gates = outs - m
    if not (
        bool((np.asarray(task.ops)[gates] == OP_CODE["and"]).all())
        and bool((task.arity[gates] == 2).all())
        and bool((task.gate_level[gates] == 1).all())
    ):
        return False
    sets = np.sort(task.operand_table(gates, 2), axis=1)
    return bool((sets[:, 0] != sets[:, 1]).all()) and len(np.unique(sets, axis=0)) == len(sets)


def _log2_output_patterns_probed(task: Task, s: int) -> float:
    from scipy import sparse

    m = int(task.features)
    outs = np.asarray(task.outputs, dtype=np.int64)
    gates = outs[outs >= m] - m
    if len(gates) == 0:
        return 0.0 if len(outs) == 0 or s == 0 else 1.0
    arity = task.arity[gates]
    ops = np.asarray(task.ops)[gates]
    from superpose.task import OP_CODE

    starts = task.gate_indptr[gates]
    one_level_and = (
        len(gates) == len(outs)
        and bool((ops == OP_CODE["and"]).all())
        and len(np.unique(arity)) == 1
        and bool((task.gate_level[gates] == 1).all())
    )
    if one_level_and:
        k = int(arity[0])
        if s < k:
            return 0.0
        sets = task.operand_table(gates, k)
        sets = np.unique(np.sort(sets, axis=1), axis=0)
        total = 1.0 + len(sets)
        if s // k >= 2:
            nu = _greedy_matching(sets)
            extra = 2.0 ** log2_sum_comb(nu, s // k) - 1 - nu
            total += extra
        return math.log2(total)
    # general task: evaluate a fixed set of probe inputs
    from superpose.evaluation import evaluate

    rows: list[np.ndarray] = [np.zeros(0, dtype=np.int64)]
    if s >= 1:
        rows.extend(np.array([f]) for f in range(min(m, EVAL_LIMIT)))
    leaf = task.gate_level[gates] == 1
    for st, a in zip(starts[leaf], arity[leaf], strict=True):
        if len(rows) >= EVAL_LIMIT:
            break
        if a <= s:
            rows.append(np.unique(task.gate_inputs[st : st + a]))
    indptr = np.cumsum([0] + [len(r) for r in rows])
    idx = np.concatenate(rows).astype(np.int64)
    x = sparse.csr_array((np.ones(len(idx)), idx, indptr), shape=(len(rows), m))
    truth = evaluate(task, x).values
    hashes = _hash_rows(truth, np.random.default_rng(20240915))
    return math.log2(len(np.unique(hashes)))


def monotone_input_code_width_lower_bound(task: Task, sparsity: int | None = None) -> int | None:
    """Input-code width of any MONOTONE network on a Bloom (OR) input code for an AND task.

    Class: the input layer of a set X is the union of its features' 0/1 codes; every weight
    is >= 0 (biases free), every activation non-decreasing (ReLU, step); each output is read
    by a non-decreasing rule (Bloom "at least need of its units on", explicit threshold).
    For a one-level task of k-input ANDs over input features with k <= s, the codes of the
    N features that are operands then form an r-cover-free family with r = s - k + 1, so the
    width is at least :func:`cover_free_length_lower_bound` (N, r). ``None`` for other tasks.
    Proof in docs/BOUNDS.md: if c's code lay inside the union of r other codes Y', the input
    (A - {c}) ∪ Y' (at most s features, c absent) would cover the code of gate A's operands
    and, by monotonicity, fire gate A.

    Example:
        >>> from superpose.task import Task
        >>> t = Task.from_gates(6, 2, [("and", [0, 1]), ("and", [2, 3]), ("and", [4, 5])])
        >>> monotone_input_code_width_lower_bound(t)  # 6 codes, an antichain: C(4, 2) = 6
        4
    """
    from superpose.task import OP_CODE

    s = _check_sparsity(task.sparsity if sparsity is None else sparsity)
    m = int(task.features)
    outs = np.asarray(task.outputs, dtype=np.int64)
    if len(outs) == 0 or (outs < m).any():
        return None
    gates = outs - m
    arity = task.arity[gates]
    if not (
        bool((np.asarray(task.ops)[gates] == OP_CODE["and"]).all())
        and len(np.unique(arity)) == 1
        and bool((task.gate_level[gates] == 1).all())
    ):
        return None
    k = int(arity[0])
    if k > s or k < 2:
        return None
    operands = np.unique(task.operand_table(gates, k))
    return cover_free_length_lower_bound(len(operands), s - k + 1)


def is_monotone_on_bloom_inputs(network: Network) -> bool:
    """Whether ``network`` lies in the class of :func:`monotone_input_code_width_lower_bound`."""
    if network.input_code.kind != "bloom" or network.output_code.kind not in ("bloom", "explicit"):
        return False
    for layer in network.layers:
        if layer.activation not in ("relu", "step"):
            return False
        if layer.weight.nnz and float(layer.weight.data.min()) < 0:
            return False
    return True


# --------------------------------------------------------------------------------------
# reports
# --------------------------------------------------------------------------------------
def s_aware_family_report(
    family: Family, sparsity: int, bits_per_unit: float = 1.0
) -> dict[str, Any]:
    """The s-aware fields ``bounds_report`` adds (flat keys, ``None`` where not derived).

    Example:
        >>> r = s_aware_family_report(Family("permutation", outputs=1000), 2)
        >>> r["s_aware_binary_layer_width_lower_bound"]
        19
    """
    l2 = log2_output_patterns_family(family, sparsity)
    return {
        "s_aware_log2_output_patterns": l2,
        "s_aware_binary_layer_width_lower_bound": (
            None if l2 is None else binary_layer_width(l2, bits_per_unit)
        ),
        "s_aware_bits_per_unit": _check_bits_per_unit(bits_per_unit),
        "representation_width_lower_bound": representation_width_lower_bound(
            family.outputs, sparsity, bits_per_unit
        ),
    }


def s_aware_tightness(network: Network) -> dict[str, Any]:
    """The s-aware fields ``tightness`` adds, for a network whose layers are 0/1 (β = 1).

    Every layer of a layered network determines the outputs, so each 0/1 layer (a Bloom or
    explicit input code, every step layer) must be at least
    ``s_aware_binary_layer_width_lower_bound`` wide. ``s_aware_narrowest_ratio`` is the
    narrowest 0/1 layer over it (>= 1 for every correct network); ReLU and linear layers are
    outside the class and are not counted (``None`` when no layer is 0/1).

    Example:
        >>> import numpy as np, superpose as sp
        >>> net = sp.build(sp.families.pairs(40, 200, np.random.default_rng(0)), "naive")
        >>> s_aware_tightness(net)["s_aware_narrowest_ratio"] > 1
        True
    """
    task = network.task
    l2 = log2_output_patterns_task(task)
    bound = binary_layer_width(l2, 1.0)
    binary = []
    if network.input_code.kind in ("explicit", "bloom"):
        binary.append(int(network.input_code.width))
    binary += [int(layer.n_out) for layer in network.layers if layer.activation == "step"]
    out: dict[str, Any] = {
        "s_aware_sparsity": int(task.sparsity),
        "s_aware_log2_output_patterns": l2,
        "s_aware_binary_layer_width_lower_bound": bound,
        "s_aware_binary_layer_widths": binary,
        "s_aware_narrowest_ratio": min(binary) / bound if binary and bound > 0 else None,
        "s_aware_family": family_of_task(task).name,
    }
    if is_monotone_on_bloom_inputs(network):
        mono = monotone_input_code_width_lower_bound(task)
        out["monotone_input_code_width_lower_bound"] = mono
        out["monotone_input_code_ratio"] = int(network.input_code.width) / mono if mono else None
    return out
