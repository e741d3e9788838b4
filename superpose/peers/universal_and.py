"""Hänni et al.'s universal AND (arXiv 2408.05451) as a superpose network with linear read-offs.

One hidden ReLU layer ``h = ReLU(W x + b)`` with i.i.d. random weights, and for every output
gate a read-off vector ``r`` over the hidden neurons; the output is ``r . h``, a real number
that approximates the gate's Boolean value (an "epsilon-linear representation"). In the
network format the read-offs are the rows of a final ``linear`` layer and the output code is
explicit (threshold 1/2), so the shared verifier checks the thresholded Boolean outputs and
:mod:`superpose.compare` measures the linear read-off error.

Laws (following Busch's reference implementation, AJB-ajb/SPNNArch ``CompSuperpos.jl``):

* ``bernoulli`` -- ``W_ik ~ Bernoulli(p)`` (0/1), bias ``-(k-1)`` for a k-input AND (-1 for
  pairs); read-off = average over the neurons wired to every operand,
  ``r = 1[Gamma] / |Gamma|`` (a zero vector when no neuron is wired to all of them). Default
  ``p = min(p_max, ln(m)^2 / sqrt(d))`` as in the LessWrong post and Busch's experiments.
  The read-off is biased upward: it is never below the truth.
* ``rademacher`` -- ``W_ik = +-1``, bias 0; read-off ``r_i = W_ik W_il / (d c_D(s))``.
* ``gaussian`` -- ``W_ik ~ N(0, 1)``, bias 0; read-off ``r_i = sign(W_ik W_il) / (d c_D(s))``.

``c_D(s)`` is the expected signed ReLU response of a neuron when both operands and ``s - 2``
other inputs are on (Busch's normaliser), so the read-off is unbiased for every input class.

Inputs are either basis-aligned (an explicit input code, the hidden layer reads ``x``) or
given in a :class:`~superpose.codes.LinearCode` ``z = E x`` (Hänni et al. §2.3): the hidden
layer then reads the code through ``W E^T`` (it sees ``E^T z``, the features plus cross-talk).
"""

from __future__ import annotations

import math
from functools import lru_cache
from typing import Any

import numpy as np
from scipy import integrate, sparse, stats

from superpose.codes import Code, ExplicitCode, LinearCode
from superpose.constructions.base import Construction
from superpose.errors import SuperposeError
from superpose.network import Layer, Network
from superpose.task import OP_CODE, Task

LAWS = ("bernoulli", "rademacher", "gaussian")
READOUT_EXACT = "exact-threshold"
READOUT_LINEAR = "linear read-off"
READOUT_TRAINED = "trained"
DEFAULT_MAX_NONZEROS = 60_000_000
_CHUNK = 4096


class DenseExplicitCode(ExplicitCode):
    """An explicit code whose ``encode`` gives a dense array (fast for dense peer layers).

    It is saved as an ordinary explicit code (kind ``explicit``); a reloaded network computes
    the same function through the sparse path.

    Example:
        >>> DenseExplicitCode(3).encode(np.array([[0, 1, 1]])).tolist()
        [[0.0, 1.0, 1.0]]
    """

    def encode(self, x: sparse.sparray | np.ndarray) -> np.ndarray:  # type: ignore[override]
        return super().encode(x).toarray()


def busch_p(features: int, width: int, p_max: float = 1.0) -> float:
    """Connection probability ``min(p_max, ln(m)^2 / sqrt(d))`` (LessWrong post; Busch's code).

    Example:
        >>> round(busch_p(30, 800), 3)
        0.409
        >>> busch_p(30, 100)
        1.0
    """
    if features < 2 or width < 1:
        raise SuperposeError(f"need features >= 2 and width >= 1, got {features}, {width}")
    return float(min(p_max, math.log(features) ** 2 / math.sqrt(width)))


@lru_cache(maxsize=64)
def c_d(law: str, sparsity: int) -> float:
    """Busch's normaliser c_D(s) for the symmetric laws: E[sign(w_k w_l) ReLU(w_k + w_l + Z)].

    ``Z`` is the sum of ``s - 2`` further weights (the other active inputs). Rademacher:
    ``c_D = (h(2) - 2 h(0) + h(-2)) / 4`` with ``h(a) = E ReLU(a + Z)``; Gaussian: a 1-D
    integral after rotating ``(w_k, w_l)`` by 45 degrees.

    Example:
        >>> round(c_d("rademacher", 3), 6), round(c_d("rademacher", 5), 6)
        (0.25, 0.1875)
        >>> round(c_d("gaussian", 2), 4)
        0.2337
    """
    s = int(sparsity)
    if s < 2:
        raise SuperposeError(f"c_D needs sparsity >= 2 (both operands active), got {s}")
    if law == "rademacher":
        n = s - 2
        k = np.arange(n + 1)
        prob = stats.binom.pmf(k, n, 0.5)
        z = 2 * k - n

        def h(a: float) -> float:
            return float(np.sum(np.maximum(a + z, 0) * prob))

        return 0.25 * (h(2.0) - 2 * h(0.0) + h(-2.0))
    if law == "gaussian":
        sz = math.sqrt(s - 2)

        def hg(a: float) -> float:
            if sz == 0:
                return max(a, 0.0)
            u = a / sz
            return a * stats.norm.cdf(u) + sz * stats.norm.pdf(u)

        # u = (w_k + w_l)/sqrt2 and v = (w_k - w_l)/sqrt2 are independent N(0,1);
        # sign(w_k w_l) = sign(u^2 - v^2), whose mean given u is 2(2Phi(|u|) - 1) - 1.
        def f(u: float) -> float:
            return hg(math.sqrt(2) * u) * (4 * stats.norm.cdf(abs(u)) - 3) * stats.norm.pdf(u)

        return float(integrate.quad(f, -np.inf, np.inf, limit=200)[0])
    raise SuperposeError(
        f"c_D is defined for the symmetric laws (rademacher, gaussian), not {law!r}"
    )


def and_operands(task: Task) -> np.ndarray:
    """The operands of every output as a (outputs, k) array; the task must be k-ANDs of inputs.

    Example:
        >>> and_operands(Task.from_gates(4, 2, [("and", [0, 3]), ("and", [1, 2])])).tolist()
        [[0, 3], [1, 2]]
    """
    outs = task.outputs
    if (outs < task.features).any():
        raise SuperposeError("universal-AND peers need every output to be a gate, not an input")
    gates = outs - task.features
    arity = task.arity[gates]
    if len(gates) == 0 or (arity != arity[0]).any():
        raise SuperposeError("universal-AND peers need gates of one arity")
    if (task.ops[gates] != OP_CODE["and"]).any():
        g = int(gates[np.flatnonzero(task.ops[gates] != OP_CODE["and"])[0]])
        raise SuperposeError(
            f"gate {g}: universal-AND peers compute only 'and' gates, not {task.op_name(g)!r}"
        )
    k = int(arity[0])
    ops = task.operand_table(gates, k)
    if (ops >= task.features).any():
        raise SuperposeError("universal-AND peers need gates that read input features directly")
    return ops.astype(np.int64)


class UniversalAnd(Construction):
    """Hänni et al.'s universal AND: a random ReLU layer of ``width`` neurons plus linear read-offs.

    ``law`` is ``bernoulli``, ``rademacher`` or ``gaussian``. ``p`` overrides Busch's
    ``min(p_max, ln(m)^2/sqrt(d))`` for Bernoulli. ``inputs="linear"`` feeds the features in a
    random :class:`~superpose.codes.LinearCode` of ``input_width`` dimensions (default
    ``ceil(16 s ln m)``, Li et al.'s midpoint-bias width) with ``input_law`` columns.
    ``readoff_sparsity`` sets the ``s`` of ``c_D(s)`` (default: the task's sparsity).
    ``max_nonzeros`` refuses networks whose hidden layer or read-offs would hold more
    non-zero weights (memory guard).

    Example:
        >>> from superpose import families, verify
        >>> task = families.universal_and(10, sparsity=2)
        >>> net = UniversalAnd("bernoulli", width=400, p=0.3).build(task, np.random.default_rng(0))
        >>> net.counts().neurons  # 10 input neurons + 400 hidden; read-offs are not neurons
        410
    """

    name = "uand"

    def __init__(
        self,
        law: str = "bernoulli",
        width: int = 1000,
        *,
        p: float | None = None,
        p_max: float = 1.0,
        inputs: str = "basis",
        input_width: int | None = None,
        input_law: str = "rademacher",
        readoff_sparsity: int | None = None,
        max_nonzeros: int = DEFAULT_MAX_NONZEROS,
    ) -> None:
        if law not in LAWS:
            raise SuperposeError(f"unknown law {law!r} (known: {', '.join(LAWS)})")
        if int(width) < 1:
            raise SuperposeError(f"width must be >= 1, got {width}")
        if inputs not in ("basis", "linear"):
            raise SuperposeError(f"inputs must be 'basis' or 'linear', got {inputs!r}")
        if p is not None and not 0 < p <= 1:
            raise SuperposeError(f"p must be in (0, 1], got {p}")
        self.law = law
        self.width = int(width)
        self.p = p
        self.p_max = float(p_max)
        self.inputs = inputs
        self.input_width = input_width
        self.input_law = input_law
        self.readoff_sparsity = readoff_sparsity
        self.max_nonzeros = int(max_nonzeros)

    # ---------------------------------------------------------------------------------
    def connection_p(self, features: int) -> float | None:
        """The Bernoulli connection probability this construction uses for ``features`` inputs."""
        if self.law != "bernoulli":
            return None
        return float(self.p) if self.p is not None else busch_p(features, self.width, self.p_max)

    def build(
        self, task: Task, rng: np.random.Generator, input_code: Code | None = None
    ) -> Network:
        """Draw the hidden layer and the read-offs for ``task``; ``input_code`` overrides the code."""
        ops = and_operands(task)
        m, d, k = task.features, self.width, ops.shape[1]
        s = int(self.readoff_sparsity or task.sparsity)
        if self.law != "bernoulli" and k != 2:
            raise SuperposeError(f"the {self.law} read-off is defined for 2-input ANDs, not {k}")
        dense_hidden = self.law != "bernoulli"
        p = self.connection_p(m)
        expected_hidden = d * m * (p if p is not None else 1.0)
        if expected_hidden > self.max_nonzeros:
            raise SuperposeError(
                f"{self.law} hidden layer of {d} x {m} would hold ~{expected_hidden:.3g} weights "
                f"(limit {self.max_nonzeros:.3g})"
            )
        expected_read = len(ops) * (d * p**k if p is not None else d)
        if expected_read > self.max_nonzeros:
            raise SuperposeError(
                f"{len(ops)} read-off vectors over {d} neurons would hold ~{expected_read:.3g} "
                f"weights (limit {self.max_nonzeros:.3g}); evaluate on a sample of the outputs"
            )
        # Columns of W, one row per input feature: (m, d).
        if self.law == "bernoulli":
            wt: np.ndarray = rng.random((m, d), dtype=np.float32) < p
            bias = -(k - 1.0)
        elif self.law == "rademacher":
            wt = np.where(rng.random((m, d), dtype=np.float32) < 0.5, -1, 1).astype(np.int8)
            bias = 0.0
        else:
            wt = rng.standard_normal((m, d), dtype=np.float32)
            bias = 0.0
        norm = None if self.law == "bernoulli" else c_d(self.law, s)
        readoff = self._readoffs(wt, ops, norm)

        # The hidden layer reads the input layer.
        if input_code is None:
            if self.inputs == "basis":
                input_code = DenseExplicitCode(m)
            else:
                width_in = self.input_width or math.ceil(16 * max(s, 1) * math.log(max(m, 2)))
                input_code = LinearCode.random(m, int(width_in), rng, kind=self.input_law)
        if input_code.n_features != m:
            raise SuperposeError(f"input code covers {input_code.n_features} features, not {m}")
        if isinstance(input_code, ExplicitCode):
            hidden_w = sparse.csr_array(wt.T.astype(np.float32))
        elif isinstance(input_code, LinearCode):
            # h = ReLU(W E^T z + b): the neurons see E^T z, the features plus cross-talk.
            e = input_code.matrix.astype(np.float32)  # (width_in, m)
            hidden_w = sparse.csr_array(wt.T.astype(np.float32) @ e.T)
        else:
            raise SuperposeError(
                f"universal-AND peers read explicit or linear input codes, not {input_code.kind!r}"
            )
        del wt
        hidden_w.eliminate_zeros()
        hidden = Layer(hidden_w, np.full(d, bias, dtype=np.float32), "relu")
        read_layer = Layer(readoff, np.zeros(len(ops), dtype=np.float32), "linear")
        extras: dict[str, Any] = {
            "peer": "Hänni, Mendel, Vaintrob & Chan, universal AND (arXiv 2408.05451)",
            "readout": READOUT_LINEAR,
            "law": self.law,
            "inputs": "basis" if isinstance(input_code, ExplicitCode) else "linear",
            "hidden_width": d,
            "dense_hidden": dense_hidden,
        }
        if p is not None:
            extras["p"] = p
        if norm is not None:
            extras["c_D"] = norm
            extras["c_D_sparsity"] = s
        return Network(
            [hidden, read_layer],
            input_code,
            ExplicitCode(task.n_outputs),
            task,
            f"uand-{self.law}",
            self.get_params(),
            extras=extras,
        )

    def _readoffs(self, wt: np.ndarray, ops: np.ndarray, norm: float | None) -> sparse.csr_array:
        d = wt.shape[1]
        parts = []
        for start in range(0, len(ops), _CHUNK):
            chunk = ops[start : start + _CHUNK]
            if self.law == "bernoulli":
                both = np.logical_and.reduce([wt[chunk[:, j]] for j in range(chunk.shape[1])])
                size = both.sum(axis=1, keepdims=True)
                rows = both.astype(np.float32) / np.maximum(size, 1).astype(np.float32)
            elif self.law == "rademacher":
                rows = (wt[chunk[:, 0]] * wt[chunk[:, 1]]).astype(np.float32) / np.float32(d * norm)
            else:
                rows = np.sign(wt[chunk[:, 0]] * wt[chunk[:, 1]]).astype(np.float32) / np.float32(
                    d * norm
                )
            part = sparse.csr_array(rows)
            part.eliminate_zeros()
            parts.append(part)
        return sparse.csr_array(sparse.vstack(parts, format="csr"))


__all__ = [
    "LAWS",
    "READOUT_EXACT",
    "READOUT_LINEAR",
    "READOUT_TRAINED",
    "DenseExplicitCode",
    "UniversalAnd",
    "and_operands",
    "busch_p",
    "c_d",
]
