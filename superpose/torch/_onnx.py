"""The exported pipeline as an ONNX graph, written node by node (needs ``onnx``, not torch).

Why gathers and scatter-adds instead of matrix products: ONNX has no sparse matrix product
(sparse initializers are densified by runtimes, and onnxruntime's sparse contrib op is not
part of the standard), and a dense W would make a 10^5-feature network hold
width^2 floats per layer and do a dense GEMM per batch. Instead every sparse structure is an
ELL array (:func:`superpose.torch._parts.ell`: per row, its column indices and values,
padded with a dummy column), and each stage reads only the active units of the batch:

* ``NonZero`` lists the (row, unit) pairs that are on;
* ``Gather`` fetches those units' ELL rows (the output units they feed and the weights);
* ``ScatterElements(reduction="add")`` adds them into a flat [batch * (width + 1)] buffer,
  the extra column catching the padding.

Work and memory are O(active units x entries per row), the sparse forward pass of
``predict``; the model holds O(non-zero weights) numbers (plus ELL padding).

A layer whose dense W^T takes at most twice its CSR bytes (``Parts.dense``: the rule of the
torch module and ``predict``; the superposed layers are about half full) is one ``MatMul``
instead: gathering and scatter-adding half-full rows costs far more than a dense product.
The Bloom read-out writes only its hits (``ScatterND``) into the [batch, n] output.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from superpose.codes import BloomCode, ExplicitCode, LinearCode
from superpose.errors import SuperposeError
from superpose.torch._parts import Parts, ell, residual_parts

INPUT_NAME = "features"
OUTPUT_NAME = "outputs"


def _onnx() -> Any:
    try:
        import onnx
    except ImportError:
        raise SuperposeError(
            "ONNX export needs the optional extra: pip install 'superpose[onnx]'"
        ) from None
    return onnx


class _Graph:
    """A tiny builder: constants become initializers, every node gets a fresh output name."""

    def __init__(self, onnx: Any, dtype: str) -> None:
        self.onnx = onnx
        self.helper = onnx.helper
        self.nodes: list[Any] = []
        self.inits: list[Any] = []
        self.count = 0
        self.dtype = np.dtype(dtype)
        self.elem = onnx.helper.np_dtype_to_tensor_dtype(self.dtype)

    def name(self, hint: str) -> str:
        self.count += 1
        return f"{hint}_{self.count}"

    def const(self, array: Any, hint: str = "const") -> str:
        name = self.name(hint)
        self.inits.append(self.onnx.numpy_helper.from_array(np.asarray(array), name))
        return name

    def op(self, op_type: str, inputs: list[str], hint: str | None = None, **attrs: Any) -> str:
        out = self.name(hint or op_type.lower())
        self.nodes.append(self.helper.make_node(op_type, inputs, [out], **attrs))
        return out

    def scalar(self, value: Any, dtype: Any = None) -> str:
        return self.const(np.asarray(value, dtype=dtype or self.dtype))

    def active(self, on: str, is_bool: bool = False) -> tuple[str, str]:
        """(rows, columns) of the non-zero entries of a 2-D tensor, each 1-D int64."""
        # NonZero on a bool tensor: onnxruntime has no double NonZero kernel
        if not is_bool:
            on = self.op("Cast", [on], to=self.onnx.TensorProto.BOOL)
        nz = self.op("NonZero", [on], "active")
        rows = self.op("Gather", [nz, self.scalar(0, np.int64)], "rows", axis=0)
        cols = self.op("Gather", [nz, self.scalar(1, np.int64)], "cols", axis=0)
        return rows, cols

    def scatter(
        self, batch: str, width: int, rows: str, cols: str, values: str, reduction: str
    ) -> str:
        """A dense [batch, width] tensor of zeros with ``values`` combined (``reduction``
        "add" or "max") at (``rows`` [A] broadcast over ``cols`` [A, K]).

        Padding entries carry a valid column and the value 0, which neither reduction sees.
        """
        r = self.op("Unsqueeze", [rows, self.const(np.array([1], np.int64))])
        keys = self.op("Add", [self.op("Mul", [r, self.scalar(width, np.int64)]), cols])
        flat_keys = self.op("Reshape", [keys, self.const(np.array([-1], np.int64))])
        flat_vals = self.op("Reshape", [values, self.const(np.array([-1], np.int64))])
        size = self.op("Mul", [batch, self.const(np.array([width], np.int64))])
        zeros = self.op(
            "ConstantOfShape",
            [size],
            value=self.onnx.numpy_helper.from_array(np.zeros(1, self.dtype)),
        )
        flat = self.op(
            "ScatterElements", [zeros, flat_keys, flat_vals], "scatter", axis=0, reduction=reduction
        )
        shape = self.op("Concat", [batch, self.const(np.array([width], np.int64))], axis=0)
        return self.op("Reshape", [flat, shape])


def _encode(g: _Graph, parts: Parts, x: str, batch: str) -> str:
    code = parts.input_code
    on = g.op("Greater", [x, g.scalar(0.5, np.float32)])
    if isinstance(code, ExplicitCode):
        return g.op("Cast", [on], to=g.elem)
    if isinstance(code, LinearCode):
        return g.op(
            "MatMul", [g.op("Cast", [on], to=g.elem), g.const(code.matrix.T.astype(g.dtype))]
        )
    assert isinstance(code, BloomCode)
    rows, feats = g.active(on, is_bool=True)
    idx, val = ell(code.membership, pad=0)
    units = g.op("Gather", [g.const(idx, "members"), feats], axis=0)
    ones = g.op("Gather", [g.const(val.astype(g.dtype), "member_ones"), feats], axis=0)
    return g.scatter(batch, code.width, rows, units, ones, "max")


def _layer(g: _Graph, parts: Parts, i: int, z: str, batch: str) -> str:
    lay = parts.layers[i]
    if parts.dense[i]:
        # a dense W^T no larger than twice its sparse form (the torch module's and predict's
        # rule): one MatMul, far faster than gathering and scattering half-full rows
        wt = lay.weight.T.toarray().astype(g.dtype)
        p = g.op("MatMul", [z, g.const(wt, f"layer{i}_weight_t")])
    else:
        p = _sparse_product(g, parts, i, z, batch)
    p = g.op("Add", [p, g.const(np.asarray(lay.bias, g.dtype), f"layer{i}_bias")])
    if lay.activation == "relu":
        return g.op("Relu", [p])
    if lay.activation == "step":
        return g.op("Cast", [g.op("GreaterOrEqual", [p, g.scalar(0.0)])], to=g.elem)
    return p


def _sparse_product(g: _Graph, parts: Parts, i: int, z: str, batch: str) -> str:
    """``z W^T`` for a sparse W: the active units' ELL rows, scatter-added."""
    lay = parts.layers[i]
    idx, val = parts.layer_ell(i, pad=0)
    rows, units = g.active(z)
    pairs = g.op(
        "Transpose",
        [
            g.op(
                "Concat",
                [
                    g.op("Unsqueeze", [rows, g.const(np.array([0], np.int64))]),
                    g.op("Unsqueeze", [units, g.const(np.array([0], np.int64))]),
                ],
                axis=0,
            )
        ],
        perm=[1, 0],
    )
    act = g.op("GatherND", [z, pairs])
    cols = g.op("Gather", [g.const(idx, f"layer{i}_cols"), units], axis=0)
    vals = g.op("Gather", [g.const(val.astype(g.dtype), f"layer{i}_vals"), units], axis=0)
    vals = g.op("Mul", [vals, g.op("Unsqueeze", [act, g.const(np.array([1], np.int64))])])
    return g.scatter(batch, lay.n_out, rows, cols, vals, "add")


def _decode(g: _Graph, parts: Parts, z: str, batch: str) -> str:
    code = parts.output_code
    f32 = g.onnx.TensorProto.FLOAT
    if isinstance(code, ExplicitCode):
        return g.op("Cast", [g.op("GreaterOrEqual", [z, g.scalar(0.5)])], to=f32)
    if isinstance(code, LinearCode):
        read = g.op("MatMul", [z, g.const(code.matrix.astype(g.dtype))])
        return g.op("Cast", [g.op("GreaterOrEqual", [read, g.scalar(code.threshold)])], to=f32)
    assert isinstance(code, BloomCode)
    anchors, members, need = parts.bloom_decode_arrays()
    on = g.op("Greater", [z, g.scalar(0.5)])
    rows, units = g.active(on, is_bool=True)
    cand = g.op("Gather", [g.const(anchors, "anchors"), units], axis=0)  # [A, K]
    mem = g.op("Gather", [g.const(members, "members"), cand], axis=0)  # [A, K, L]
    w1 = code.width + 1
    lit = g.op(
        "Pad",
        [g.op("Cast", [on], to=g.elem), g.const(np.array([0, 0, 0, 1], np.int64))],
    )
    lit_flat = g.op("Reshape", [lit, g.const(np.array([-1], np.int64))])
    r3 = g.op("Unsqueeze", [rows, g.const(np.array([1, 2], np.int64))])
    keys = g.op("Add", [g.op("Mul", [r3, g.scalar(w1, np.int64)]), mem])
    count = g.op(
        "ReduceSum",
        [g.op("Gather", [lit_flat, keys], axis=0), g.const(np.array([2], np.int64))],
        keepdims=0,
    )
    want = g.op("Gather", [g.const(need.astype(g.dtype), "need"), cand], axis=0)
    hit = g.op("GreaterOrEqual", [count, want])  # [A, K]; the dummy candidate never hits
    # only the hits are written: (row, output) pairs into a [batch, n] float32 batch of 0
    r2 = g.op("Unsqueeze", [rows, g.const(np.array([1], np.int64))])
    pairs = g.op(
        "Concat",
        [
            g.op(
                "Unsqueeze",
                [g.op("Expand", [r2, g.op("Shape", [cand])]), g.const(np.array([2], np.int64))],
            ),
            g.op("Unsqueeze", [cand, g.const(np.array([2], np.int64))]),
        ],
        axis=2,
    )
    found = g.op("Transpose", [g.op("NonZero", [hit])], perm=[1, 0])  # [H, 2] into [A, K]
    keys = g.op("GatherND", [pairs, found])  # [H, 2]: (row, output)
    ones = g.op(
        "ConstantOfShape",
        [
            g.op(
                "Slice",
                [
                    g.op("Shape", [keys]),
                    g.const(np.array([0], np.int64)),
                    g.const(np.array([1], np.int64)),
                ],
            )
        ],
        value=g.onnx.numpy_helper.from_array(np.ones(1, np.float32)),
    )
    shape = g.op("Concat", [batch, g.const(np.array([code.n_features], np.int64))], axis=0)
    zeros = g.op(
        "ConstantOfShape", [shape], value=g.onnx.numpy_helper.from_array(np.zeros(1, np.float32))
    )
    return g.op("ScatterND", [zeros, keys, ones], "outputs", reduction="max")


def onnx_model(parts: Parts, opset: int = 18) -> Any:
    """The ONNX ModelProto of ``parts``: ``features`` [batch, m] -> ``outputs`` [batch, n].

    A ``stream`` network is written as its residual blocks (hidden layer, write, then
    ``Add`` of the stream: the skip connection, clamped to 0/1).

    Example:
        >>> import numpy as np, onnxruntime as ort
        >>> from superpose import Task, build
        >>> net = build(Task.from_gates(3, 2, [("and", [0, 1]), ("or", [1, 2])]), "naive")
        >>> model = onnx_model(Parts.from_network(net))
        >>> sess = ort.InferenceSession(model.SerializeToString())
        >>> sess.run(None, {"features": np.array([[1, 1, 0]], np.float32)})[0].tolist()
        [[1.0, 1.0]]
    """
    onnx = _onnx()
    if opset < 18:
        raise SuperposeError(f"ONNX export needs opset >= 18 (ScatterElements add), got {opset}")
    g = _Graph(onnx, parts.dtype)
    x = INPUT_NAME
    batch = g.op(
        "Slice",
        [
            g.op("Shape", [x]),
            g.const(np.array([0], np.int64)),
            g.const(np.array([1], np.int64)),
        ],
        "batch",
    )
    z = _encode(g, parts, x, batch)
    res = residual_parts(parts) if parts.info.get("construction") == "stream" else None
    if res is not None:
        # A residual stream: per block, the hidden layer and the write, then the skip
        # connection (stream + write) clamped to 0/1 -- the same numbers as the plain layers.
        for i in range(0, len(res.layers), 2):
            h = _layer(g, res, i, z, batch)
            w = _layer(g, res, i + 1, h, batch)
            total = g.op("Add", [z, w], f"block{i // 2}_resid")
            z = g.op("Cast", [g.op("GreaterOrEqual", [total, g.scalar(1.0)])], to=g.elem)
    else:
        for i in range(len(parts.layers)):
            z = _layer(g, parts, i, z, batch)
    y = _decode(g, parts, z, batch)
    g.nodes.append(g.helper.make_node("Identity", [y], [OUTPUT_NAME]))
    f32 = onnx.TensorProto.FLOAT
    graph = g.helper.make_graph(
        g.nodes,
        "superpose",
        [g.helper.make_tensor_value_info(INPUT_NAME, f32, ["batch", parts.features])],
        [g.helper.make_tensor_value_info(OUTPUT_NAME, f32, ["batch", parts.outputs])],
        g.inits,
    )
    model = g.helper.make_model(
        graph,
        opset_imports=[g.helper.make_opsetid("", opset)],
        producer_name="superpose",
        doc_string="superpose network: features -> input code -> layers -> output code -> outputs",
    )
    model.ir_version = min(model.ir_version, 10)
    onnx.checker.check_model(model, full_check=False)
    return model
