"""Saving and loading networks: a directory with ``network.safetensors`` and ``network.json``.

Sparse matrices are stored as their CSR arrays (data, indices, indptr); the JSON holds the
format version, task summary, codes, construction, parameters, seed, counts and the SHA-256
of the tensor file. Loading checks all of it and never executes anything from the files:
safetensors holds raw arrays only, and the JSON is parsed as data.
"""

from __future__ import annotations

import hashlib
import json
import os
from pathlib import Path
from typing import Any

import numpy as np
from safetensors import SafetensorError
from safetensors.numpy import load as st_load
from safetensors.numpy import save as st_save
from scipy import sparse

from superpose._atomic import write_files
from superpose._json import loads
from superpose.codes import code_from_arrays
from superpose.errors import SuperposeError
from superpose.network import Layer, Network
from superpose.task import Task

FORMAT = "superpose-network"
FORMAT_VERSION = 1
WEIGHTS_FILE = "network.safetensors"
META_FILE = "network.json"
MAX_META_BYTES = 64 * 2**20


def _version() -> str:
    from superpose import __version__

    return __version__


def _jsonable(value: Any) -> Any:
    if isinstance(value, dict):
        return {str(k): _jsonable(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_jsonable(v) for v in value]
    if isinstance(value, np.integer):
        return int(value)
    if isinstance(value, np.floating):
        return float(value)
    if isinstance(value, np.ndarray):
        return value.tolist()
    return value


def network_tensors(net: Network) -> dict[str, np.ndarray]:
    """Every array of a network, by name (the contents of ``network.safetensors``)."""
    t = net.task
    tensors: dict[str, np.ndarray] = {
        "task.ops": t.ops.astype(np.int8),
        "task.gate_indptr": t.gate_indptr.astype(np.int64),
        "task.gate_inputs": t.gate_inputs.astype(np.int64),
        "task.outputs": t.outputs.astype(np.int64),
    }
    for i, layer in enumerate(net.layers):
        w = layer.weight
        tensors[f"layers.{i}.data"] = np.ascontiguousarray(w.data)
        tensors[f"layers.{i}.indices"] = w.indices.astype(np.int32)
        tensors[f"layers.{i}.indptr"] = w.indptr.astype(np.int64)
        tensors[f"layers.{i}.bias"] = np.ascontiguousarray(layer.bias)
    for prefix, code in (("input_code", net.input_code), ("output_code", net.output_code)):
        for name, arr in code.to_arrays().items():
            tensors[f"{prefix}.{name}"] = np.ascontiguousarray(arr)
    return tensors


def save_network(net: Network, directory: str | os.PathLike[str]) -> Path:
    """Write ``net`` into ``directory`` (created if needed); each file is replaced atomically.

    The same network and seed give byte-identical files.
    """
    out = Path(directory)
    if out.exists() and not out.is_dir():
        raise SuperposeError(f"{out}: exists and is not a directory")
    blob = st_save(network_tensors(net), metadata={"format": FORMAT})
    meta = {
        "format": FORMAT,
        "format_version": FORMAT_VERSION,
        "superpose_version": _version(),
        "construction": net.construction,
        "params": net.params,
        "seed": net.seed,
        "task": {
            "features": net.task.features,
            "sparsity": net.task.sparsity,
            "n_gates": net.task.n_gates,
            "n_outputs": net.task.n_outputs,
            "family": net.task.family,
        },
        "layers": [
            {
                "activation": lay.activation,
                "shape": list(lay.weight.shape),
                "dtype": str(lay.weight.dtype),
            }
            for lay in net.layers
        ],
        "input_code": net.input_code.meta(),
        "output_code": net.output_code.meta(),
        "counts": net.counts(),
        "extras": net.extras,
        "checksum": {"sha256": hashlib.sha256(blob).hexdigest()},
    }
    out.mkdir(parents=True, exist_ok=True)
    text = json.dumps(_jsonable(meta), indent=1, sort_keys=True)
    write_files({out / WEIGHTS_FILE: blob, out / META_FILE: text.encode("utf-8")})
    return out


def _require(cond: bool, path: Path, message: str) -> None:
    if not cond:
        raise SuperposeError(f"{path}: {message}")


def read_meta(directory: str | os.PathLike[str]) -> dict[str, Any]:
    """Parse and check ``network.json`` of a network directory (no tensors loaded)."""
    d = Path(directory)
    meta_path = d / META_FILE
    if not d.is_dir():
        raise SuperposeError(f"{d}: not a network directory (build one with 'superpose build')")
    if not meta_path.is_file():
        raise SuperposeError(f"{meta_path}: missing; not a superpose network directory")
    _require(
        meta_path.stat().st_size <= MAX_META_BYTES,
        meta_path,
        "too large to be a network description",
    )
    try:
        meta = loads(meta_path.read_bytes().decode("utf-8"), str(meta_path))
    except (UnicodeDecodeError, json.JSONDecodeError, RecursionError) as exc:
        raise SuperposeError(f"{meta_path}: not valid JSON ({type(exc).__name__})") from None
    _require(
        isinstance(meta, dict) and meta.get("format") == FORMAT, meta_path, f"not a {FORMAT} file"
    )
    version = meta.get("format_version")
    if version != FORMAT_VERSION:
        raise SuperposeError(
            f"{meta_path}: format version {version!r}; this superpose ({_version()}) reads version {FORMAT_VERSION}"
        )
    for key, kind in (
        ("layers", list),
        ("task", dict),
        ("input_code", dict),
        ("output_code", dict),
        ("checksum", dict),
    ):
        _require(isinstance(meta.get(key), kind), meta_path, f"'{key}' missing or malformed")
    return meta


def load_network(directory: str | os.PathLike[str]) -> Network:
    """Load and validate a network directory written by :func:`save_network`.

    Example:
        >>> import tempfile
        >>> from superpose import Task, build
        >>> net = build(Task.from_gates(3, 2, [("and", [0, 1])]), "naive")
        >>> d = save_network(net, tempfile.mkdtemp())
        >>> load_network(d).counts()["neurons"]
        4
    """
    d = Path(directory)
    meta = read_meta(d)
    weights_path = d / WEIGHTS_FILE
    _require(weights_path.is_file(), weights_path, "missing")
    blob = weights_path.read_bytes()
    _require(
        hashlib.sha256(blob).hexdigest() == meta["checksum"].get("sha256"),
        weights_path,
        "checksum mismatch: the weights do not match network.json (corrupted or edited)",
    )
    try:
        tensors = st_load(blob)
    except (SafetensorError, ValueError, TypeError, OverflowError) as exc:
        raise SuperposeError(f"{weights_path}: not a valid safetensors file ({exc})") from None
    try:
        return _assemble(meta, tensors, d)
    except SuperposeError as exc:
        raise SuperposeError(f"{d}: {exc}") from None
    except (KeyError, ValueError, TypeError, IndexError) as exc:
        raise SuperposeError(
            f"{d}: inconsistent network files ({type(exc).__name__}: {exc})"
        ) from None


def _assemble(meta: dict[str, Any], tensors: dict[str, np.ndarray], d: Path) -> Network:
    for name, arr in tensors.items():
        if name.startswith("task.") or name.endswith((".indices", ".indptr")):
            if arr.dtype.kind not in "iu":
                raise SuperposeError(f"tensor {name!r} must hold integers, got {arr.dtype}")
        elif arr.dtype.kind in "fc" and not np.isfinite(arr).all():
            raise SuperposeError(f"tensor {name!r} holds a non-finite value")
    tmeta = meta["task"]
    task = Task(
        int(tmeta["features"]),
        int(tmeta["sparsity"]),
        tensors["task.ops"],
        tensors["task.gate_indptr"],
        tensors["task.gate_inputs"],
        tensors["task.outputs"],
        tmeta.get("family"),
        str(d),
    )
    layers = []
    for i, lmeta in enumerate(meta["layers"]):
        rows, cols = (int(v) for v in lmeta["shape"])
        data, indices, indptr = (tensors[f"layers.{i}.{k}"] for k in ("data", "indices", "indptr"))
        if (
            indptr.shape != (rows + 1,)
            or indptr[0] != 0
            or indptr[-1] != len(data)
            or len(indices) != len(data)
        ):
            raise SuperposeError(f"layer {i}: sparse arrays disagree with shape {rows}x{cols}")
        if (np.diff(indptr) < 0).any() or (
            len(indices) and (indices.min() < 0 or indices.max() >= cols)
        ):
            raise SuperposeError(f"layer {i}: column index out of range")
        if not np.isfinite(data).all():
            raise SuperposeError(f"layer {i}: non-finite weight")
        weight = sparse.csr_array((data, indices, indptr), shape=(rows, cols))
        layers.append(Layer(weight, tensors[f"layers.{i}.bias"], lmeta["activation"]))

    def code(prefix: str) -> Any:
        arrays = {k.split(".", 1)[1]: v for k, v in tensors.items() if k.startswith(prefix + ".")}
        return code_from_arrays(meta[prefix], arrays)

    return Network(
        layers,
        code("input_code"),
        code("output_code"),
        task,
        str(meta.get("construction", "custom")),
        meta.get("params") or {},
        meta.get("seed"),
        meta.get("extras") or {},
    )
