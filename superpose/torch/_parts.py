"""The numpy arrays an exported network is made of (shared by the torch module and ONNX).

Nothing here imports torch or onnx. A network is exported as three parts, in the order
``predict`` runs them: the input code (features -> first layer), the weight layers, and the
output code (last layer -> outputs). Every sparse structure is held in one of two forms:

* CSR (``indptr``, ``indices``, ``data``): the canonical, saved form of each weight layer;
* ELL ("padded rows"): a (rows, most entries in a row) index array plus values, padded with
  a dummy column that reads or writes nothing. ELL turns "gather the rows of the active units
  and add them up" into fixed-shape gathers and one scatter-add, which ONNX can express (it
  has no sparse matrix product) and which stays O(non-zeros), never dense.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import numpy as np
from scipy import sparse

from superpose.codes import BloomCode, Code, ExplicitCode, LinearCode, code_from_arrays
from superpose.errors import SuperposeError
from superpose.network import DENSE_FORWARD_MAX_BYTES, DENSE_FORWARD_RATIO, Layer

CONFIG_FORMAT = "superpose-torch"
CONFIG_VERSION = 1
DTYPES = ("float32", "float64")


def ell(matrix: sparse.csr_array, pad: int) -> tuple[np.ndarray, np.ndarray]:
    """Rows of a CSR matrix as (rows + 1, widest row) indices and values, padded with ``pad``.

    The extra last row is all padding, so index ``rows`` can stand for "no row".

    Example:
        >>> m = sparse.csr_array(np.array([[0, 2, 3], [0, 0, 0]]))
        >>> idx, val = ell(m, pad=3)
        >>> idx.tolist(), val.tolist()
        ([[1, 2], [3, 3], [3, 3]], [[2, 3], [0, 0], [0, 0]])
    """
    m = sparse.csr_array(matrix)
    m.sort_indices()
    counts = np.diff(m.indptr).astype(np.int64)
    width = max(1, int(counts.max(initial=0)))
    idx = np.full((m.shape[0] + 1, width), pad, dtype=np.int64)
    val = np.zeros((m.shape[0] + 1, width), dtype=m.dtype)
    rows = np.repeat(np.arange(m.shape[0], dtype=np.int64), counts)
    offsets = np.arange(m.nnz, dtype=np.int64) - np.repeat(m.indptr[:-1].astype(np.int64), counts)
    idx[rows, offsets] = m.indices
    val[rows, offsets] = m.data
    return idx, val


def exact_dtype(layers: list[Layer], input_code: Code, output_code: Code) -> str:
    """The smallest float type in which the exported pipeline computes exactly what
    ``predict`` computes: float32 when every weight and bias is an integer and no activation
    can leave the integers float32 holds exactly (2^24), else float64 (what ``predict`` uses
    for such networks: the dtype of the weights)."""
    if any(isinstance(c, LinearCode) for c in (input_code, output_code)):
        return "float64"
    bound = 1.0  # the codes' units are 0/1
    for lay in layers:
        if not lay.integral():
            return "float64"
        row_abs = np.asarray(abs(lay.weight).sum(axis=1)).ravel()
        top = float(row_abs.max(initial=0.0)) * bound + float(np.abs(lay.bias).max(initial=0.0))
        if top >= 2.0**24:
            return "float64"
        bound = 1.0 if lay.activation == "step" else top
    return "float32"


def dense_is_small(weight: sparse.csr_array, itemsize: int) -> bool:
    """Whether a layer's dense W^T is no more than ``DENSE_FORWARD_RATIO`` times its CSR form
    (and at most ``DENSE_FORWARD_MAX_BYTES``): the rule ``predict`` uses, so a dense copy never
    costs more than a small multiple of the sparse one (the superposed layers are about half
    full, where a dense product is several times faster than a sparse one)."""
    n_out, n_in = weight.shape
    dense_bytes = n_in * n_out * itemsize
    csr_bytes = weight.nnz * (itemsize + 4) + 8 * (n_in + 1)
    return (
        bool(weight.nnz and dense_bytes <= DENSE_FORWARD_RATIO * csr_bytes)
        and dense_bytes <= DENSE_FORWARD_MAX_BYTES
    )


@dataclass
class Parts:
    """Everything an exported network holds: layers, codes and how it computes.

    ``dtype`` is the float type of every computation; ``dense`` says, per layer, whether the
    forward pass multiplies by a dense copy of W^T (see :func:`dense_is_small`) or by the
    sparse one.
    """

    layers: list[Layer]
    input_code: Code
    output_code: Code
    dtype: str
    dense: list[bool]
    info: dict[str, Any] = field(default_factory=dict)

    @classmethod
    def from_network(
        cls, net: Any, dtype: str | None = None, dense_weights: bool | None = None
    ) -> Parts:
        """The parts of a :class:`~superpose.network.Network` (or ``None`` for the defaults:
        the exact dtype, dense W^T where predict uses it)."""
        return cls.build(
            net.layers,
            net.input_code,
            net.output_code,
            dtype,
            dense_weights,
            {
                "construction": net.construction,
                "features": int(net.task.features),
                "outputs": int(net.task.n_outputs),
                "seed": net.seed,
            },
        )

    @classmethod
    def build(
        cls,
        layers: list[Layer],
        input_code: Code,
        output_code: Code,
        dtype: str | None = None,
        dense_weights: bool | None = None,
        info: dict[str, Any] | None = None,
    ) -> Parts:
        if dtype is None:
            dtype = exact_dtype(layers, input_code, output_code)
        check_dtype(dtype)
        itemsize = np.dtype(dtype).itemsize
        if dense_weights is None:
            dense = [dense_is_small(lay.weight, itemsize) for lay in layers]
        else:
            dense = [bool(dense_weights)] * len(layers)
        for kind in (input_code, output_code):
            if not isinstance(kind, (ExplicitCode, BloomCode, LinearCode)):
                raise SuperposeError(f"cannot export a code of kind {type(kind).__name__}")
        return cls(list(layers), input_code, output_code, dtype, dense, dict(info or {}))

    @property
    def features(self) -> int:
        return int(self.input_code.n_features)

    @property
    def outputs(self) -> int:
        return int(self.output_code.n_features)

    # saving -----------------------------------------------------------------------------
    def tensors(self) -> dict[str, np.ndarray]:
        """The arrays to save (CSR weights, biases, code arrays), named like the module."""
        out: dict[str, np.ndarray] = {}
        for i, lay in enumerate(self.layers):
            w = sparse.csr_array(lay.weight)
            w.sort_indices()
            out[f"layers.{i}.weight.indptr"] = w.indptr.astype(np.int64)
            out[f"layers.{i}.weight.indices"] = w.indices.astype(np.int64)
            out[f"layers.{i}.weight.values"] = w.data
            out[f"layers.{i}.bias"] = np.asarray(lay.bias)
        for name, code in (("encoder", self.input_code), ("decoder", self.output_code)):
            for key, value in code.to_arrays().items():
                out[f"{name}.code.{key}"] = np.ascontiguousarray(value)
        return out

    def config(self) -> dict[str, Any]:
        """The JSON half of a saved export: shapes, activations, codes, dtype."""
        return {
            "format": CONFIG_FORMAT,
            "format_version": CONFIG_VERSION,
            "dtype": self.dtype,
            "dense": list(self.dense),
            "features": self.features,
            "outputs": self.outputs,
            "layers": [
                {"in": int(lay.n_in), "out": int(lay.n_out), "activation": lay.activation}
                for lay in self.layers
            ],
            "input_code": self.input_code.meta(),
            "output_code": self.output_code.meta(),
            "info": self.info,
        }

    @classmethod
    def from_saved(cls, config: dict[str, Any], tensors: dict[str, np.ndarray]) -> Parts:
        """Inverse of :meth:`config` + :meth:`tensors`; every mismatch is one clear error."""
        if config.get("format") != CONFIG_FORMAT:
            raise SuperposeError(
                f"not a superpose torch export (format {config.get('format')!r}, "
                f"expected {CONFIG_FORMAT!r})"
            )
        if config.get("format_version") != CONFIG_VERSION:
            raise SuperposeError(
                f"unsupported export format_version {config.get('format_version')!r} "
                f"(this superpose reads {CONFIG_VERSION})"
            )
        try:
            layers = []
            for i, spec in enumerate(config["layers"]):
                shape = (int(spec["out"]), int(spec["in"]))
                w = sparse.csr_array(
                    (
                        tensors[f"layers.{i}.weight.values"],
                        tensors[f"layers.{i}.weight.indices"],
                        tensors[f"layers.{i}.weight.indptr"],
                    ),
                    shape=shape,
                )
                w.check_format()
                layers.append(Layer(w, tensors[f"layers.{i}.bias"], spec["activation"]))
            codes = []
            for name, key in (("encoder", "input_code"), ("decoder", "output_code")):
                prefix = f"{name}.code."
                arrays = {k[len(prefix) :]: v for k, v in tensors.items() if k.startswith(prefix)}
                codes.append(code_from_arrays(config[key], arrays))
            dense = [bool(d) for d in config["dense"]]
        except (KeyError, TypeError, ValueError) as exc:
            raise SuperposeError(f"malformed superpose torch export: {exc}") from None
        if len(dense) != len(layers):
            raise SuperposeError("malformed superpose torch export: 'dense' per layer")
        parts = cls(layers, codes[0], codes[1], config.get("dtype", "float32"), dense)
        if parts.dtype not in DTYPES:
            raise SuperposeError(f"export dtype must be one of {DTYPES}, got {parts.dtype!r}")
        parts.info = dict(config.get("info") or {})
        parts.check()
        return parts

    def check(self) -> None:
        """The widths chain: input code -> layers -> output code."""
        width = self.input_code.width
        for i, lay in enumerate(self.layers):
            if lay.n_in != width:
                raise SuperposeError(f"layer {i} reads {lay.n_in} units but receives {width}")
            width = lay.n_out
        if width != self.output_code.width:
            raise SuperposeError(
                f"the last layer has {width} units; the output code reads {self.output_code.width}"
            )

    # derived arrays ---------------------------------------------------------------------
    def bloom_encode_arrays(self) -> np.ndarray:
        """(features + 1, longest set) neurons of each feature, padded with ``width``."""
        code = self.input_code
        assert isinstance(code, BloomCode)
        idx, _ = ell(code.membership, pad=code.width)
        return idx

    def bloom_decode_arrays(self) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """(anchors, members, need) for reading a Bloom output code from its on-neurons.

        ``anchors`` (width + 1, most anchored) lists under each neuron the features anchored
        there (:attr:`~superpose.codes.BloomCode.anchors_t`: a present feature has one of its
        anchors on), padded with the dummy feature ``n``; ``members`` (n + 1, longest set)
        the neurons of each feature, padded with the dummy neuron ``width`` (always off);
        ``need`` (n + 1) how many must be on, the dummy feature needing more than it has.
        """
        code = self.output_code
        assert isinstance(code, BloomCode)
        anchors, _ = ell(sparse.csr_array(code.anchors_t), pad=code.n_features)
        members, _ = ell(code.membership, pad=code.width)
        need = np.concatenate([code.required(), [members.shape[1] + 1]]).astype(np.int64)
        return anchors, members, need

    def layer_ell(self, i: int, pad: int | None = None) -> tuple[np.ndarray, np.ndarray]:
        """Layer ``i``'s W^T as ELL: per input unit, the output units it feeds and weights,
        padded with index ``pad`` (default: the dummy output ``n_out``) and weight 0."""
        lay = self.layers[i]
        wt = sparse.csr_array(lay.weight.T, dtype=self.dtype)
        return ell(wt, pad=lay.n_out if pad is None else pad)


def check_dtype(dtype: str, option: str = "dtype") -> str:
    """``dtype`` when it is one of :data:`DTYPES`, else one clear error."""
    if dtype not in DTYPES:
        raise SuperposeError(f"{option} must be one of {', '.join(DTYPES)}, got {dtype!r}")
    return dtype


def residual_parts(parts: Parts, dense_weights: bool | None = None) -> Parts | None:
    """The residual form of a ``stream`` network's parts, or None when its layers are not
    residual blocks.

    A ``stream`` network stores each block as two plain step layers (what ``predict`` runs):
    ``[s; h] = step([I; R] s + [-1; b])`` and ``s' = step([I W] [s; h] - 1)``. The residual
    form keeps only what a block computes besides the skip connection: the hidden layer
    ``h = step(R s + b)`` and the write ``W h`` (a linear layer, no bias), so that
    ``s' = step(s + W h - 1)`` -- the same numbers, with the identity rows replaced by the
    skip connection. Layers ``2i`` and ``2i + 1`` of the result are block i's hidden layer
    and write.

    Example:
        >>> from superpose import families
        >>> from superpose.constructions import build
        >>> task = families.layered_circuit(12, 6, 2, np.random.default_rng(0), sparsity=2)
        >>> net = build(task, "stream")
        >>> res = residual_parts(Parts.from_network(net))
        >>> [lay.activation for lay in res.layers]
        ['step', 'linear', 'step', 'linear']
        >>> residual_parts(Parts.from_network(build(task, "circuit"))) is None
        True
    """
    layers = parts.layers
    d = int(parts.input_code.width)
    if not layers or len(layers) % 2 or parts.output_code.width != d:
        return None
    eye = sparse.eye_array(d, format="csr")
    out: list[Layer] = []
    for read, write in zip(layers[::2], layers[1::2], strict=True):
        if (
            read.activation != "step"
            or write.activation != "step"
            or read.n_in != d
            or read.n_out <= d
            or write.n_out != d
            or write.n_in != read.n_out
        ):
            return None
        rw, ww = sparse.csr_array(read.weight), sparse.csr_array(write.weight)
        if (
            (rw[:d] != eye).nnz
            or (ww[:, :d] != eye).nnz
            or not np.all(read.bias[:d] == -1)
            or not np.all(write.bias == -1)
        ):
            return None
        hidden = Layer(sparse.csr_array(rw[d:]), np.asarray(read.bias[d:]), "step")
        w = sparse.csr_array(ww[:, d:])
        out += [hidden, Layer(w, np.zeros(d, dtype=w.dtype), "linear")]
    info = {**parts.info, "residual": True}
    return Parts.build(out, parts.input_code, parts.output_code, parts.dtype, dense_weights, info)
