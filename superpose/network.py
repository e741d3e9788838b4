"""Networks: layers of sparse weights with ReLU or step units, between an input and an output code.

A :class:`Network` carries its task, its input code (features -> first layer) and its output
code (last layer -> outputs), so every construction is run and verified by the same path:
``encode -> forward -> decode``.

Step units fire iff ``W z + b >= 0``; on integer pre-activations ``1[p >= 0] = ReLU(p + 1) -
ReLU(p)``, which :meth:`Network.compile_to_relu` uses to turn any network into pure ReLU.

Invariant checked at construction: a unit whose inputs are all zero outputs zero (``act(b) =
0``). That is what keeps activations sparse end to end: a forward pass only touches the units
that read an active neuron. A layer from someone else's model (``superpose.own``) may break it
on purpose (``Layer(..., resting=True)``: e.g. ReLU units with positive biases, a read-out with
a bias); such a layer runs densely, and the exact certificates and mechanisms, which rely on
the invariant, refuse it with a reason (the verifier and ``evaluate`` still apply).
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Any, TypedDict

import numpy as np
from scipy import sparse

from superpose._numeric import ln_binom
from superpose.codes import Code
from superpose.errors import SuperposeError
from superpose.task import Task

ACTIVATIONS = ("relu", "step", "linear")


# The forward pass keeps a dense copy of W^T when that is exact and costs little memory: a
# layer of the superposed designs is about half full, so its dense float32 transpose is no
# larger than the CSR one, and gathering the dense rows of the (few) active inputs is several
# times faster than a sparse-sparse product whose result is nearly dense anyway.
DENSE_FORWARD_MAX_BYTES = 2 * 2**30
"""Largest dense transposed weight matrix the forward pass keeps (per layer)."""
DENSE_FORWARD_RATIO = 2.0
"""The dense transpose may take at most this many times the bytes of the CSR transpose."""
_DENSE_BLOCK = 2**21  # (rows x units) pre-activations computed at once on the dense path


def _activate(values: np.ndarray, activation: str) -> np.ndarray:
    if activation == "relu":
        return np.maximum(values, 0)
    if activation == "step":
        return (values >= 0).astype(values.dtype)
    return values


def _exact_limit(dtype: np.dtype) -> float:
    """Integers up to this magnitude are exact in ``dtype``, and so is every sum of them."""
    return float(2 ** (np.finfo(dtype).nmant + 1))


@dataclass(frozen=True)
class Counts:
    """Sizes of a network (:meth:`Network.counts`), exactly as docs/DESIGN.md, Model lists them.

    A frozen record: attributes for code (``net.counts().neurons``), :meth:`to_dict` for JSON
    (the ``counts`` of ``network.json``, ``superpose info``/``build --json``: same keys, same
    order, lists for the widths and activations). ``counts["neurons"]`` also reads a field, for
    callers written against the dict this used to be.
    """

    construction: str
    features_in: int
    features_out: int
    layer_widths: tuple[int, ...]
    input_neurons: int
    hidden_neurons: int
    output_neurons: int
    neurons: int
    step_units: int
    relu_neurons: int
    weight_layers: int
    activations: tuple[str, ...]
    nonzero_parameters: int
    dense_parameters: int
    bits_per_parameter: int
    description_bits: float

    def to_dict(self) -> dict[str, Any]:
        """The plain-JSON form (tuples as lists), keys in field order."""
        return {
            f: list(v) if isinstance(v, tuple) else v
            for f, v in ((f, getattr(self, f)) for f in self.__dataclass_fields__)
        }

    def __getitem__(self, key: str) -> Any:
        if key not in self.__dataclass_fields__:
            raise KeyError(key)
        value = getattr(self, key)
        return list(value) if isinstance(value, tuple) else value


@dataclass(eq=False)
class Layer:
    """One weight layer: ``act(W z + b)`` with ``W`` a sparse (out, in) array.

    Example:
        >>> w = sparse.csr_array(np.array([[1.0, 1.0]]))
        >>> Layer(w, np.array([-2.0]), "step").apply(np.array([[1.0, 1.0], [1.0, 0.0]])).tolist()
        [[1.0], [0.0]]
    """

    weight: sparse.csr_array
    bias: np.ndarray
    activation: str
    resting: bool = False
    """Whether some unit fires on an all-zero input (its bias alone activates it); opt-in."""
    _weight_t: sparse.csr_array | None = field(default=None, repr=False)
    _dense_t: np.ndarray | None = field(default=None, repr=False)
    _dense_bound: float | None = field(default=None, repr=False)
    _abs_weight: sparse.csr_array | None = field(default=None, repr=False)
    _integral: bool | None = field(default=None, repr=False)

    def __post_init__(self) -> None:
        self.weight = sparse.csr_array(self.weight)
        self.weight.sum_duplicates()
        bias = np.asarray(self.bias)
        if not np.issubdtype(bias.dtype, np.number):
            raise SuperposeError(f"bias must be numeric, got {bias.dtype}")
        # One float type for weights and biases, so no value is rounded or wrapped.
        dtype = np.result_type(self.weight.dtype, bias.dtype, np.float32)
        self.weight = sparse.csr_array(self.weight, dtype=dtype)
        self.bias = bias.astype(dtype)
        if self.activation not in ACTIVATIONS:
            raise SuperposeError(f"unknown activation {self.activation!r} (known: {ACTIVATIONS})")
        if self.bias.shape != (self.weight.shape[0],):
            raise SuperposeError(
                f"bias of shape {self.bias.shape} does not match {self.weight.shape[0]} units"
            )
        if not (np.isfinite(self.weight.data).all() and np.isfinite(self.bias).all()):
            raise SuperposeError("weights and biases must be finite")
        fires = _activate(self.bias, self.activation) != 0
        if fires.any() and not self.resting:
            unit = int(np.flatnonzero(fires)[0])
            raise SuperposeError(
                f"unit {unit} ({self.activation}, bias {self.bias[unit]}) fires on an all-zero input; "
                "superpose's constructions keep zero input at zero (sparse activations): for a "
                "layer of your own model pass Layer(..., resting=True) or use "
                "superpose.own.from_torch"
            )
        self.resting = bool(fires.any())

    @property
    def n_in(self) -> int:
        return self.weight.shape[1]

    @property
    def n_out(self) -> int:
        return self.weight.shape[0]

    @property
    def weight_t(self) -> sparse.csr_array:
        """The transposed weights, in CSR, for (batch, in) @ (in, out) products."""
        if self._weight_t is None:
            self._weight_t = sparse.csr_array(self.weight.T)
        return self._weight_t

    def _dense_forward(self) -> tuple[np.ndarray, float] | None:
        """The dense W^T (C order) and max_j sum_i |W_ji|, when the dense path is allowed.

        Allowed when every weight and bias is an integer (so every sum of them times integer
        activations is exact in the weight dtype, in any order: the dense and the sparse
        products agree bit for bit) and the dense matrix is small (``DENSE_FORWARD_RATIO``
        times the CSR transpose, at most ``DENSE_FORWARD_MAX_BYTES``). Computed once.
        """
        if self._dense_bound is None and self.resting:
            self._dense_bound = -1.0  # resting units: the plain dense pass in apply
        if self._dense_bound is None:
            w = self.weight
            itemsize = w.dtype.itemsize
            dense_bytes = self.n_in * self.n_out * itemsize
            csr_bytes = w.nnz * (itemsize + w.indices.dtype.itemsize) + 8 * (self.n_in + 1)
            if (
                self.integral()
                and w.nnz
                and dense_bytes <= DENSE_FORWARD_RATIO * csr_bytes
                and dense_bytes <= DENSE_FORWARD_MAX_BYTES
            ):
                self._dense_t = np.ascontiguousarray(self.weight_t.toarray())
                self._weight_t = None  # the dense copy replaces the CSR transpose
                row_abs = np.asarray(abs(w).sum(axis=1)).ravel()
                self._dense_bound = float(row_abs.max() + np.abs(self.bias).max())
            else:
                self._dense_bound = -1.0
        if self._dense_t is None:
            return None
        return self._dense_t, self._dense_bound

    def integral(self) -> bool:
        """Whether every weight and bias is an integer; computed once."""
        if self._integral is None:
            w = self.weight
            self._integral = bool(
                np.all(w.data == np.round(w.data)) and np.all(self.bias == np.round(self.bias))
            )
        return self._integral

    def abs_weight(self) -> sparse.csr_array:
        """``|W|`` (the weights themselves when none is negative); computed once."""
        if self._abs_weight is None:
            w = self.weight
            self._abs_weight = w if not (w.data < 0).any() else abs(w)
        return self._abs_weight

    def warm(self) -> None:
        """Prepare the forward pass's cached form of the weights (before forking workers)."""
        if self._dense_forward() is None:
            _ = self.weight_t

    def _apply_dense(self, z: sparse.csr_array, dense_t: np.ndarray) -> sparse.csr_array:
        """Sparse integer activations times the dense W^T, in row blocks, back to CSR."""
        n, n_out = z.shape[0], self.n_out
        step = max(1, _DENSE_BLOCK // max(n_out, 1))
        rows: list[np.ndarray] = []
        cols: list[np.ndarray] = []
        vals: list[np.ndarray] = []
        threshold = -self.bias
        for start in range(0, n, step):
            p = np.asarray(z[start : start + step] @ dense_t)
            if self.activation == "step":
                flat = np.flatnonzero(p >= threshold)
                v = np.ones(len(flat), dtype=p.dtype)
            else:
                p += self.bias
                if self.activation == "relu":
                    np.maximum(p, 0, out=p)
                flat = np.flatnonzero(p)
                v = p.ravel()[flat]
            r, c = np.divmod(flat, n_out)
            rows.append(r + start)
            cols.append(c)
            vals.append(v)
        r = np.concatenate(rows) if rows else np.zeros(0, np.int64)
        indptr = np.zeros(n + 1, dtype=np.int64)
        np.cumsum(np.bincount(r, minlength=n), out=indptr[1:])
        cols_all = np.concatenate(cols) if cols else np.zeros(0, np.int64)
        vals_all = np.concatenate(vals) if vals else np.zeros(0, self.weight.dtype)
        index_dtype = np.int32 if max(n_out, len(cols_all)) < 2**31 else np.int64
        return sparse.csr_array(
            (vals_all, cols_all.astype(index_dtype), indptr.astype(index_dtype)),
            shape=(n, n_out),
        )

    def apply(self, z: sparse.sparray | np.ndarray) -> sparse.csr_array | np.ndarray:
        """Activations of this layer for a batch ``z`` of shape (batch, n_in)."""
        if sparse.issparse(z):
            z = sparse.csr_array(z)
            if z.dtype != self.weight.dtype:
                z = z.astype(self.weight.dtype)
            if self.resting:  # every unit may be on: act(W z + b) in full, stored sparse
                p = np.asarray((z @ self.weight_t).toarray()) + self.bias
                return sparse.csr_array(_activate(p, self.activation))
            dense = self._dense_forward()
            if dense is not None and z.nnz:
                dense_t, bound = dense
                top = float(np.abs(z.data).max())
                if np.all(z.data == np.round(z.data)) and top * bound < _exact_limit(
                    self.weight.dtype
                ):
                    return self._apply_dense(z, dense_t)
            p = sparse.csr_array(z @ self.weight_t)
            p.data += self.bias[p.indices]
            p.data = _activate(p.data, self.activation)
            p.eliminate_zeros()
            return p
        p = np.asarray(z, dtype=self.weight.dtype) @ self.weight_t + self.bias
        return _activate(np.asarray(p), self.activation)

    def nonzero_parameters(self) -> int:
        return int(np.count_nonzero(self.weight.data) + np.count_nonzero(self.bias))

    def __repr__(self) -> str:
        """Shape and counts, never the arrays (a layer may hold 10^8 weights).

        >>> Layer(sparse.csr_array(np.array([[1.0, 0.0]])), np.array([-1.0]), "step")
        Layer(1x2 step, nnz=1, float64, bias nonzero=1)
        """
        return (
            f"Layer({self.n_out}x{self.n_in} {self.activation}, nnz={self.weight.nnz}, "
            f"{self.weight.dtype}, bias nonzero={int(np.count_nonzero(self.bias))})"
        )


class Extras(TypedDict, total=False):
    """A network's ``extras`` (``network.json``'s ``"extras"``): what its build recorded
    beyond the layers, as plain JSON.

    The keys other modules read are declared here with their JSON type, and
    :func:`extras_problems` checks them when a network is loaded. A construction may add
    diagnostics of its own (pool sizes, plans); nobody else reads those, so they stay
    untyped. It stays a dict on purpose: ``network.json`` keeps the exact bytes (key order
    included) the builds have always written, and a loaded network saves the same bytes.
    """

    check: dict[str, Any]  # superpose.check.Check.to_dict(): the final check of the build
    check_attempts: list[dict[str, Any]]  # the default build's candidates and their checks
    fallback: str  # why the explicit network was kept instead of the planned one
    width_search: dict[str, Any]  # superpose.search.search_width's record, without timings
    resolved: dict[str, Any]  # superposed: the parameters after defaults were resolved
    repair: dict[str, Any]  # superposed: the s = 2 repair (``certified_s2``)
    pool_stats: list[dict[str, Any]]  # superposed: per-pool statistics
    private_units: int  # superposed: units given to one gate alone
    patched: dict[str, Any]  # superpose.constructions.patch: the gates patched explicitly
    residual: dict[str, Any] | None  # stream: the residual stream's widths and blocks
    units: str  # stream: "exact" for exact stream units
    stages: list[dict[str, Any]]  # circuit: one record per stage
    failure_target: float  # stream: the failure probability planned for
    predicted_errors: list[float]  # stream: each block's share of the predicted errors
    readout: str  # peers: how outputs are read off
    p: float  # the universal-AND peer's Bernoulli p


_JSON_KINDS: dict[Any, tuple[type, ...]] = {
    dict: (dict,),
    list: (list,),
    str: (str,),
    int: (int,),
    float: (int, float),
}


def _json_kinds(hint: Any) -> tuple[type, ...] | None:
    """The Python types a JSON value of type hint ``hint`` loads as (None: not checked)."""
    import types
    import typing

    origin = typing.get_origin(hint) or hint
    if origin in (typing.Union, types.UnionType):
        kinds: tuple[type, ...] = ()
        for arg in typing.get_args(hint):
            k = (type(None),) if arg is type(None) else _json_kinds(arg)
            if k is None:
                return None
            kinds += k
        return kinds
    return _JSON_KINDS.get(origin)


def extras_problems(extras: Any) -> list[str]:
    """What is wrong with ``extras`` against :class:`Extras` (an empty list: nothing).

    Example:
        >>> extras_problems({"check": {"passed": True}, "pools": 3})
        []
        >>> extras_problems({"fallback": 1, "residual": None, "p": True})
        ['extras.fallback: expected str, got int', 'extras.p: expected int or float, got bool']
    """
    import typing

    if not isinstance(extras, dict):
        return [f"extras: expected an object, got {type(extras).__name__}"]
    out = []
    for key, hint in typing.get_type_hints(Extras).items():
        kinds = _json_kinds(hint)
        if key not in extras or kinds is None:
            continue
        value = extras[key]
        if not isinstance(value, kinds) or (isinstance(value, bool) and bool not in kinds):
            want = " or ".join("null" if k is type(None) else k.__name__ for k in kinds)
            out.append(f"extras.{key}: expected {want}, got {type(value).__name__}")
    return out


class Network:
    """Layers between an input code and an output code, computing the outputs of a task.

    Example:
        >>> from superpose import Task, build
        >>> task = Task.from_gates(3, 2, [("and", [0, 1]), ("or", [1, 2])])
        >>> net = build(task, "naive")
        >>> net.predict(np.array([[1, 1, 0]])).toarray().astype(int).tolist()
        [[1, 1]]
    """

    def __init__(
        self,
        layers: list[Layer],
        input_code: Code,
        output_code: Code,
        task: Task,
        construction: str = "custom",
        params: dict[str, Any] | None = None,
        seed: int | None = None,
        extras: Extras | dict[str, Any] | None = None,
    ) -> None:
        self.layers = list(layers)
        self.input_code = input_code
        self.output_code = output_code
        self.task = task
        self.construction = construction
        self.params = dict(params or {})
        self.seed = seed
        self.extras: Extras = dict(extras or {})  # type: ignore[assignment]
        self._check_shapes()

    def _check_shapes(self) -> None:
        if not self.layers:
            raise SuperposeError("a network needs at least one layer")
        if self.input_code.n_features != self.task.features:
            raise SuperposeError(
                f"input code covers {self.input_code.n_features} features; the task has {self.task.features}"
            )
        if self.output_code.n_features != self.task.n_outputs:
            raise SuperposeError(
                f"output code covers {self.output_code.n_features} outputs; the task has {self.task.n_outputs}"
            )
        width = self.input_code.width
        for i, layer in enumerate(self.layers):
            if layer.n_in != width:
                raise SuperposeError(f"layer {i} reads {layer.n_in} units but receives {width}")
            width = layer.n_out
        if width != self.output_code.width:
            raise SuperposeError(
                f"the last layer has {width} units; the output code reads {self.output_code.width}"
            )
        for i, layer in enumerate(self.layers[:-1]):
            if layer.activation == "linear":
                raise SuperposeError(f"layer {i}: only the last layer may be linear (a read-out)")

    def __repr__(self) -> str:
        """Construction, widths and counts, never the arrays.

        >>> from superpose import Task, build
        >>> build(Task.from_gates(3, 2, [("and", [0, 1])]), "naive")
        Network('naive', widths [3, 1], 1 layers (relu), nnz=2, 3 features -> 1 outputs)
        """
        widths = [self.input_code.width] + [lay.n_out for lay in self.layers]
        acts = ", ".join(dict.fromkeys(lay.activation for lay in self.layers))
        nnz = sum(lay.weight.nnz for lay in self.layers)
        return (
            f"Network({self.construction!r}, widths {widths}, {len(self.layers)} layers ({acts}), "
            f"nnz={nnz}, {self.task.features} features -> {self.task.n_outputs} outputs)"
        )

    # running ------------------------------------------------------------------------
    def encode(self, x: sparse.sparray | np.ndarray) -> sparse.csr_array | np.ndarray:
        """The input layer for a batch of 0/1 feature vectors."""
        return self.input_code.encode(x)

    def forward(self, z: sparse.sparray | np.ndarray, *, all_layers: bool = False) -> Any:
        """Run the layers on input-layer activations ``z``; optionally return every layer."""
        outs = []
        for layer in self.layers:
            z = layer.apply(z)
            outs.append(z)
        return outs if all_layers else z

    def predict(self, x: sparse.sparray | np.ndarray) -> sparse.csr_array:
        """Decoded Boolean outputs, shape (batch, n_outputs)."""
        return self.output_code.decode(self.forward(self.encode(x)))

    # structure ----------------------------------------------------------------------
    def compile_to_relu(self) -> Network:
        """The same function with every step unit replaced by two ReLUs: ReLU(p + 1) - ReLU(p).

        Exact when pre-activations are integers (integer weights and biases on 0/1 inputs);
        refused otherwise. A step layer at the end gets a linear read-out layer [I, -I].
        """
        new_layers: list[Layer] = []
        carry: sparse.csr_array | None = None  # the [I, -I] combination owed to the next layer
        for layer in self.layers:
            w = layer.weight if carry is None else sparse.csr_array(layer.weight @ carry)
            if layer.activation != "step":
                new_layers.append(Layer(w, layer.bias, layer.activation, layer.resting))
                carry = None
                continue
            if not (
                np.all(w.data == np.round(w.data)) and np.all(layer.bias == np.round(layer.bias))
            ):
                raise SuperposeError(
                    "compile_to_relu needs integer weights and biases on step layers"
                )
            new_layers.append(
                Layer(
                    sparse.vstack([w, w], format="csr"),
                    np.concatenate([layer.bias + 1, layer.bias]),
                    "relu",
                    layer.resting,
                )
            )
            eye = sparse.eye_array(layer.n_out, format="csr", dtype=w.dtype)
            carry = sparse.hstack([eye, -eye], format="csr")
        if carry is not None:
            new_layers.append(Layer(carry, np.zeros(carry.shape[0], dtype=carry.dtype), "linear"))
        return Network(
            new_layers,
            self.input_code,
            self.output_code,
            self.task,
            self.construction,
            {**self.params, "compiled_to_relu": True},
            self.seed,
            self.extras,
        )

    def counts(self) -> Counts:
        """Neurons, parameters and description bits (:class:`Counts`), as docs/DESIGN.md lists them.

        ``description_bits`` is the length of a plain description of the weights: for each
        layer, which entries are non-zero (log2 C(in*out, nnz)) plus ``bits_per_parameter``
        for every non-zero weight and bias. Codes are fixed before the task is chosen and are
        not counted.
        """
        unit_layers = [lay for lay in self.layers if lay.activation != "linear"]
        widths = [self.input_code.width] + [lay.n_out for lay in unit_layers]
        step_units = sum(lay.n_out for lay in unit_layers if lay.activation == "step")
        nonzero = sum(lay.nonzero_parameters() for lay in self.layers)
        dense = sum(lay.n_in * lay.n_out + lay.n_out for lay in self.layers)
        values = np.unique(
            np.concatenate(
                [np.unique(lay.weight.data) for lay in self.layers]
                + [np.unique(lay.bias) for lay in self.layers]
            )
        )
        distinct = int(np.count_nonzero(values))
        if distinct > 2**16:
            bits = 8 * max(lay.weight.dtype.itemsize for lay in self.layers)
        else:
            bits = max(1, math.ceil(math.log2(max(distinct, 2))))
        position_bits = 0.0
        for lay in self.layers:
            total, k = lay.n_in * lay.n_out, int(np.count_nonzero(lay.weight.data))
            position_bits += float(ln_binom(total, k)) / math.log(2)
        return Counts(
            construction=self.construction,
            features_in=self.task.features,
            features_out=self.task.n_outputs,
            layer_widths=tuple(widths),
            input_neurons=widths[0],
            hidden_neurons=sum(widths[1:-1]),
            output_neurons=widths[-1],
            neurons=sum(widths),
            step_units=step_units,
            relu_neurons=sum(widths) + step_units,
            weight_layers=len(unit_layers),
            activations=tuple(lay.activation for lay in self.layers),
            nonzero_parameters=nonzero,
            dense_parameters=dense,
            bits_per_parameter=bits,
            description_bits=position_bits + bits * nonzero,
        )

    def to_torch(
        self,
        *,
        dtype: str | None = None,
        device: Any = None,
        output: str = "outputs",
        dense_weights: bool | None = None,
        residual: bool | None = None,
    ) -> Any:
        """A ``torch.nn.Module`` computing :meth:`predict`: features in, outputs out.

        The module runs encode -> layers -> decode on a [batch, m] batch of 0/1 features
        (float32 or any dtype, dense or torch sparse), on any device, with sparse weights;
        its outputs equal ``predict``'s. Needs the optional extra ``superpose[torch]``. See
        :func:`superpose.torch.to_module` for the options and
        :class:`superpose.torch._module.SuperposeModule` for hooks and per-layer outputs.
        A ``stream`` network exports as a residual model (blocks with a skip connection,
        :class:`superpose.torch._module.ResidualModule`) unless ``residual=False``.
        """
        from superpose.torch import to_module

        return to_module(
            self,
            dtype=dtype,
            device=device,
            output=output,
            dense_weights=dense_weights,
            residual=residual,
        )
