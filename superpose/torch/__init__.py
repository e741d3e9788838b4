"""Export a network to PyTorch and ONNX: the whole pipeline, features in, outputs out.

``Network.to_torch()`` (or :func:`to_module`) returns a :class:`torch.nn.Module` that computes
``encode -> layers -> decode`` exactly as ``Network.predict`` does, on a [batch, m] batch of
0/1 features (dense float32 or any dtype, or torch sparse), on any device, with sparse
weights. :func:`save` / :func:`load` write and read it as a safetensors state plus a JSON
config (no pickle); :func:`export_onnx` writes the same pipeline as an ONNX model (onnx only,
torch not needed).

torch and onnx are optional extras: importing this package needs neither; each function
imports what it needs and says how to install it when missing.

Example:
    >>> import numpy as np, torch, tempfile, os
    >>> from superpose import Task, build
    >>> from superpose import torch as sptorch
    >>> net = build(Task.from_gates(4, 2, [("and", [0, 1]), ("xor", [2, 3])]), "naive")
    >>> module = sptorch.to_module(net)
    >>> x = torch.tensor([[1.0, 1.0, 0.0, 0.0], [0.0, 0.0, 1.0, 1.0]])
    >>> module(x).tolist()
    [[1.0, 0.0], [0.0, 0.0]]
    >>> path = os.path.join(tempfile.mkdtemp(), "net")
    >>> _ = sptorch.save(module, path)
    >>> torch.equal(sptorch.load(path)(x), module(x))
    True
"""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any

from superpose.errors import SuperposeError

CONFIG_FILE = "config.json"
TENSORS_FILE = "model.safetensors"
EXPORT_FILES = (CONFIG_FILE, TENSORS_FILE)
"""The names a torch export directory holds."""


def _torch() -> Any:
    try:
        import torch
    except ImportError:
        raise SuperposeError(
            "torch export needs the optional extra: pip install 'superpose[torch]'"
        ) from None
    return torch


def _as_parts(obj: Any, dtype: str | None = None, dense_weights: bool | None = None) -> Any:
    from superpose.network import Network
    from superpose.torch._parts import Parts

    if isinstance(obj, Network):
        return Parts.from_network(obj, dtype, dense_weights)
    if isinstance(obj, Parts):
        return obj
    parts = getattr(obj, "parts", None)
    if isinstance(parts, Parts):
        return parts
    raise SuperposeError(
        f"expected a superpose Network or an exported module, got {type(obj).__name__}"
    )


def to_module(
    net: Any,
    *,
    dtype: str | None = None,
    device: Any = None,
    output: str = "outputs",
    dense_weights: bool | None = None,
    residual: bool | None = None,
) -> Any:
    """The network as a :class:`~superpose.torch._module.SuperposeModule` (see its docs).

    A ``stream`` network becomes a :class:`~superpose.torch._module.ResidualModule`: blocks
    with a skip connection (``stream + write(hidden(stream))``, clamped to 0/1) and hook
    points per block; ``residual=False`` gives the plain layer chain it is stored as (same
    outputs), ``residual=True`` refuses a network whose layers are not residual blocks.

    ``dtype`` (``"float32"`` or ``"float64"``) is the type every computation runs in;
    default: float32 when that is exact (integer weights, activations below 2^24), else
    float64, so the outputs always equal ``predict``'s. ``output`` is what ``forward``
    returns by default: ``"outputs"`` (decoded), ``"last"`` (last layer's activations) or
    ``"all"`` (a dict of every stage). ``dense_weights`` forces dense (True) or sparse CSR
    (False) W^T in every layer; default: dense only where it takes at most twice the CSR
    bytes, as ``predict`` does.
    """
    _torch()
    module = _make_module(_as_parts(net, dtype, dense_weights), output, residual, dense_weights)
    return module.to(device) if device is not None else module


def _make_module(
    parts: Any, output: str, residual: bool | None = None, dense_weights: bool | None = None
) -> Any:
    """A residual module for a ``stream`` network's parts (unless ``residual`` is False),
    else the plain layer chain."""
    from superpose.torch._module import ResidualModule, SuperposeModule
    from superpose.torch._parts import residual_parts

    if residual is False or (residual is None and parts.info.get("construction") != "stream"):
        return SuperposeModule(parts, output=output)
    res = residual_parts(parts, dense_weights)
    if res is None:
        if residual:
            raise SuperposeError(
                "this network's layers are not residual blocks (a 'stream' network's "
                "[identity; hidden] read and [identity, write] layers)"
            )
        return SuperposeModule(parts, output=output)
    return ResidualModule(parts, res, output=output)


def save(module_or_network: Any, path: str | os.PathLike[str]) -> Path:
    """Write an export directory: ``model.safetensors`` (weights as CSR arrays, biases, code
    arrays) and ``config.json`` (shapes, activations, codes, dtype). Never pickle: loading
    runs no code from the files. Atomic: ``path`` appears complete or not at all."""
    from safetensors.numpy import save as st_save

    from superpose._atomic import check_output, write_directory

    parts = _as_parts(module_or_network)
    target = check_output(path, owned=EXPORT_FILES)
    data = st_save(parts.tensors())
    config = json.dumps(parts.config(), indent=2, sort_keys=True, default=_json_default)
    write_directory(
        target,
        {TENSORS_FILE: data, CONFIG_FILE: (config + "\n").encode("utf-8")},
        "the torch export",
    )
    return target


def _json_default(value: Any) -> Any:
    import numpy as np

    if isinstance(value, np.integer):
        return int(value)
    if isinstance(value, np.floating):
        return float(value)
    raise TypeError(f"not JSON serialisable: {type(value).__name__}")


def load_parts(path: str | os.PathLike[str]) -> Any:
    """The numpy parts of an export directory written by :func:`save` (torch not needed)."""
    from safetensors import SafetensorError
    from safetensors.numpy import load as st_load

    from superpose._inputs import loads, read_bytes
    from superpose.torch._parts import Parts

    directory = Path(path)
    if not directory.is_dir():
        raise SuperposeError(f"{directory}: not a directory (expected a torch export)")
    for name in EXPORT_FILES:
        if not (directory / name).is_file():
            raise SuperposeError(f"{directory}: no {name} (not a superpose torch export)")
    try:
        config = loads(read_bytes(directory / CONFIG_FILE), str(directory / CONFIG_FILE))
    except (json.JSONDecodeError, UnicodeDecodeError) as exc:
        raise SuperposeError(f"{directory / CONFIG_FILE}: not valid JSON ({exc})") from None
    if not isinstance(config, dict):
        raise SuperposeError(f"{directory / CONFIG_FILE}: expected a JSON object")
    try:
        tensors = st_load(read_bytes(directory / TENSORS_FILE))
    except SafetensorError as exc:
        raise SuperposeError(
            f"{directory / TENSORS_FILE}: not a safetensors file ({exc})"
        ) from None
    return Parts.from_saved(config, tensors)


def load(path: str | os.PathLike[str], *, device: Any = None, output: str = "outputs") -> Any:
    """The module saved by :func:`save` at ``path``."""
    _torch()
    module = _make_module(load_parts(path), output)
    return module.to(device) if device is not None else module


def export_onnx(module_or_network: Any, path: str | os.PathLike[str], *, opset: int = 18) -> Path:
    """Write the pipeline as an ONNX model: input ``features`` (float32, [batch, m]), output
    ``outputs`` (float32, [batch, n_outputs], 0/1). See :mod:`superpose.torch._onnx` for how
    sparse weights are expressed (ONNX has no sparse matrix product)."""
    from superpose._atomic import check_output, write_bytes
    from superpose.torch._onnx import onnx_model

    parts = _as_parts(module_or_network)
    target = check_output(path, kind="file")
    data = onnx_model(parts, opset=opset).SerializeToString()
    write_bytes(target, data)
    return target


EXPORT_FORMATS = ("onnx", "torch")


def export_network(
    directory: str | os.PathLike[str],
    fmt: str,
    out: str | os.PathLike[str],
    *,
    dtype: str | None = None,
) -> dict[str, Any]:
    """Load the network saved in ``directory`` and export it (``superpose export``).

    ``fmt`` ``"onnx"`` writes one model file at ``out``; ``"torch"`` writes an export
    directory (:func:`save`) that :func:`load` reads back. Everything that can be refused
    (the format, the dtype, a missing extra, an output path that cannot be written) is
    refused before the network is read, so a bad call leaves existing files intact.
    Returns what was written (path, format, dtype, bytes, layers kept dense or sparse).
    """
    from superpose._atomic import check_output
    from superpose.io import load_network
    from superpose.torch._parts import check_dtype

    if fmt not in EXPORT_FORMATS:
        raise SuperposeError(
            f"format must be one of {', '.join(EXPORT_FORMATS)}, got {fmt!r}", cli="--format"
        )
    if dtype is not None:
        check_dtype(dtype, "--dtype")
    if fmt == "onnx":
        from superpose.torch._onnx import _onnx

        _onnx()
        check_output(out, option="--out", kind="file")
    else:
        check_output(out, option="--out", owned=EXPORT_FILES)
    net = load_network(directory)
    parts = _as_parts(net, dtype)
    target = export_onnx(parts, out) if fmt == "onnx" else save(parts, out)
    size = (
        target.stat().st_size
        if fmt == "onnx"
        else sum((target / name).stat().st_size for name in EXPORT_FILES)
    )
    return {
        "format": fmt,
        "path": str(target),
        "dtype": parts.dtype,
        "bytes": int(size),
        "features": parts.features,
        "outputs": parts.outputs,
        "layers": [
            {"in": lay.n_in, "out": lay.n_out, "activation": lay.activation, "nnz": lay.weight.nnz}
            for lay in parts.layers
        ],
    }


__all__ = [
    "EXPORT_FILES",
    "EXPORT_FORMATS",
    "export_network",
    "export_onnx",
    "load",
    "load_parts",
    "save",
    "to_module",
]
