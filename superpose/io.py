"""Saving and loading networks: a directory with ``network.safetensors`` and ``network.json``.

Sparse matrices are stored as their CSR arrays (data, indices, indptr); the JSON holds the
format version, task summary, codes, construction, parameters, seed, counts and the SHA-256
of the tensor file. Loading checks all of it and never executes anything from the files:
safetensors holds raw arrays only, and the JSON is parsed as data.
"""

from __future__ import annotations

import hashlib
import json
import math
import os
from pathlib import Path
from typing import Any

import numpy as np
from safetensors import SafetensorError
from safetensors.numpy import load as st_load
from safetensors.numpy import save as st_save
from scipy import sparse

from superpose._atomic import check_output, write_directory
from superpose._inputs import loads, read_bytes, reading
from superpose._numeric import jsonable
from superpose.codes import code_from_arrays
from superpose.errors import SuperposeError
from superpose.network import Layer, Network
from superpose.task import Task

FORMAT = "superpose-network"
FORMAT_VERSION = 1
WEIGHTS_FILE = "network.safetensors"
META_FILE = "network.json"
MAX_META_BYTES = 64 * 2**20
MAX_SIZE = 2**31 - 1
"""Largest count or width (features, outputs, layer sizes) a network file may record: the
saved column indices are int32."""
NETWORK_FILES = (WEIGHTS_FILE, META_FILE)
"""The names a network directory holds (an ``--out`` directory may already hold them)."""
WEIGHT_DTYPES = {"float32": "F32", "float64": "F64"}
"""The float types a saved layer may hold (network.json name -> safetensors name)."""


def _version() -> str:
    from superpose import __version__

    return __version__


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
    for k, (nodes, units, inhib) in enumerate(_stage_codes(net)):
        tensors[f"stages.{k}.nodes"] = np.asarray(nodes, dtype=np.int64)
        tensors[f"stages.{k}.indptr"] = units.indptr.astype(np.int64)
        tensors[f"stages.{k}.indices"] = units.indices.astype(np.int32)
        tensors[f"stages.{k}.inhib"] = np.asarray(inhib, dtype=np.int64)
    return tensors


def _stage_codes(net: Network) -> list[tuple[np.ndarray, sparse.csr_array, np.ndarray]]:
    """The per-stage codes a deep (``circuit``) network carries, one per layer, else [].

    Stage k is the code of the output of ``layers[k]``: the node ids it holds, their units (a
    Bloom membership) and each node's xor / andnot detector unit (-1: none). Saved so a
    loaded network exposes its intermediate codes without rebuilding the construction.
    """
    codes = getattr(net, "stage_codes", None)
    if not codes or len(codes) != len(net.layers):
        return []
    out = []
    for k, entry in enumerate(codes):
        nodes, code = entry[0], entry[1]
        inhib = entry[2] if len(entry) > 2 else np.full(len(nodes), -1, dtype=np.int64)
        units = sparse.csr_array(code.membership)
        units.sort_indices()
        if units.shape[1] != net.layers[k].n_out or code.slack or code.custom_need:
            return []
        out.append((np.asarray(nodes), units, np.asarray(inhib)))
    return out


def save_network(net: Network, directory: str | os.PathLike[str]) -> Path:
    """Write ``net`` into ``directory``; a new directory appears only complete.

    ``directory`` may be new (it is written as a hidden sibling and renamed into place at the
    end, so an interruption leaves nothing under its name), empty, or an existing network
    directory (each file is then replaced atomically, both fully written before the first
    rename). A non-empty directory holding no network, a path that cannot be written, too
    little free space, or another process writing the same directory are refused in one line
    (:func:`superpose._atomic.check_output`, :func:`superpose._atomic.write_lock`); a write
    that still fails (e.g. the disk fills) raises a SuperposeError and leaves nothing partial.
    The same network and seed give byte-identical files.
    """
    out = Path(directory)
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
                **({"resting": True} if lay.resting else {}),
            }
            for lay in net.layers
        ],
        "input_code": net.input_code.meta(),
        "output_code": net.output_code.meta(),
        "counts": net.counts().to_dict(),
        "extras": net.extras,
        **({"stage_codes": len(net.layers)} if _stage_codes(net) else {}),
        "checksum": {"sha256": hashlib.sha256(blob).hexdigest()},
    }
    data = json.dumps(jsonable(meta), indent=1, sort_keys=True).encode("utf-8")
    check_output(out, need_bytes=len(blob) + len(data), owned=NETWORK_FILES)
    write_directory(out, {WEIGHTS_FILE: blob, META_FILE: data}, "the network")
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
    with reading(meta_path):
        size = meta_path.stat().st_size
    _require(size <= MAX_META_BYTES, meta_path, "too large to be a network description")
    try:
        meta = loads(read_bytes(meta_path).decode("utf-8"), str(meta_path))
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
    _check_meta_values(meta, meta_path)
    return meta


def _show(value: Any) -> str:
    """A value for an error message: its repr, cut to one short line."""
    text = " ".join(repr(value).split())
    return text if len(text) <= 40 else text[:37] + "..."


def _size(value: Any, path: Path, where: str, low: int = 0, high: int = MAX_SIZE) -> int:
    """``value`` when it is a JSON integer in ``low..high``; else a SuperposeError naming it."""
    if type(value) is not int or not low <= value <= high:
        raise SuperposeError(
            f"{path}: '{where}' must be an integer in {low}..{high:,}, got {_show(value)}"
        )
    return value


def _check_meta_values(meta: dict[str, Any], path: Path) -> None:
    """Types and ranges of every value of network.json the loader uses.

    Sizes must be JSON integers (not ``1e400``, ``Infinity``, ``NaN``, ``"200"`` or ``2.7``)
    within :data:`MAX_SIZE`, so no size reaches ``int()`` or numpy as something else.
    """
    from superpose.task import MAX_FEATURES

    task = meta["task"]
    features = _size(task.get("features"), path, "task.features", 1, MAX_FEATURES)
    _size(task.get("sparsity"), path, "task.sparsity", 1, features)
    for key in ("n_gates", "n_outputs"):
        if key in task:
            _size(task[key], path, f"task.{key}")
    family = task.get("family")
    _require(
        family is None or isinstance(family, dict),
        path,
        f"'task.family' must be an object or null, got {_show(family)}",
    )
    for i, layer in enumerate(meta["layers"]):
        where = f"layers[{i}]"
        _require(isinstance(layer, dict), path, f"'{where}' must be an object")
        shape = layer.get("shape")
        _require(
            isinstance(shape, list) and len(shape) == 2,
            path,
            f"'{where}.shape' must be [rows, columns], got {_show(shape)}",
        )
        for axis, v in zip(("rows", "columns"), shape, strict=True):
            _size(v, path, f"{where}.shape ({axis})")
        _require(
            isinstance(layer.get("activation"), str),
            path,
            f"'{where}.activation' must be a string, got {_show(layer.get('activation'))}",
        )
        _require(
            isinstance(layer.get("dtype"), str) and layer["dtype"] in WEIGHT_DTYPES,
            path,
            f"'{where}.dtype' must be one of {', '.join(WEIGHT_DTYPES)}, "
            f"got {_show(layer.get('dtype'))}",
        )
    for prefix in ("input_code", "output_code"):
        code = meta[prefix]
        _require(
            isinstance(code.get("kind"), str),
            path,
            f"'{prefix}.kind' must be a string, got {_show(code.get('kind'))}",
        )
        _size(code.get("n_features"), path, f"{prefix}.n_features")
        _size(code.get("width"), path, f"{prefix}.width")
        if "slack" in code:
            _size(code["slack"], path, f"{prefix}.slack")
        threshold = code.get("threshold", 0.5)
        _require(
            type(threshold) in (int, float) and math.isfinite(threshold),
            path,
            f"'{prefix}.threshold' must be a finite number, got {_show(threshold)}",
        )
        _require(
            isinstance(code.get("distribution", ""), str),
            path,
            f"'{prefix}.distribution' must be a string",
        )
    seed = meta.get("seed")
    _require(
        seed is None or type(seed) is int,
        path,
        f"'seed' must be an integer or null, got {_show(seed)}",
    )
    for key in ("params", "extras"):
        _require(isinstance(meta.get(key) or {}, dict), path, f"'{key}' must be an object")
    from superpose.network import extras_problems

    problems = extras_problems(meta.get("extras") or {})
    _require(not problems, path, problems[0] if problems else "")
    _require(isinstance(meta.get("construction", ""), str), path, "'construction' must be a string")
    if "stage_codes" in meta:
        n_layers = len(meta["layers"])
        _size(meta["stage_codes"], path, "stage_codes", n_layers, n_layers)


def load_network(directory: str | os.PathLike[str]) -> Network:
    """Load and validate a network directory written by :func:`save_network`.

    Example:
        >>> import tempfile
        >>> from superpose import Task, build
        >>> net = build(Task.from_gates(3, 2, [("and", [0, 1])]), "naive")
        >>> d = save_network(net, tempfile.mkdtemp())
        >>> load_network(d).counts().neurons
        4
    """
    d = Path(directory)
    meta = read_meta(d)
    weights_path = d / WEIGHTS_FILE
    _require(weights_path.is_file(), weights_path, "missing")
    blob = read_bytes(weights_path)
    _require(
        hashlib.sha256(blob).hexdigest() == meta["checksum"].get("sha256"),
        weights_path,
        "checksum mismatch: the weights do not match network.json (corrupted or edited)",
    )
    _check_tensor_header(blob, meta, weights_path)
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


def _expected_tensors(meta: dict[str, Any]) -> dict[str, tuple[str, bool]]:
    """Every tensor a network file may hold: name -> (safetensors dtype, required)."""
    out: dict[str, tuple[str, bool]] = {
        "task.ops": ("I8", True),
        "task.gate_indptr": ("I64", True),
        "task.gate_inputs": ("I64", True),
        "task.outputs": ("I64", True),
    }
    for i, layer in enumerate(meta["layers"]):
        weight = WEIGHT_DTYPES[layer["dtype"]]
        out |= {
            f"layers.{i}.data": (weight, True),
            f"layers.{i}.bias": (weight, True),
            f"layers.{i}.indices": ("I32", True),
            f"layers.{i}.indptr": ("I64", True),
        }
    for prefix in ("input_code", "output_code"):
        kind = meta[prefix]["kind"]
        if kind == "bloom":
            out |= {
                f"{prefix}.indptr": ("I64", True),
                f"{prefix}.indices": ("I32", True),
                f"{prefix}.need": ("I32", False),
            }
        elif kind == "linear":
            out[f"{prefix}.matrix"] = ("F64", True)
    if meta.get("stage_codes"):  # optional: absent from files written before they were saved
        for k in range(len(meta["layers"])):
            out |= {
                f"stages.{k}.nodes": ("I64", True),
                f"stages.{k}.indptr": ("I64", True),
                f"stages.{k}.indices": ("I32", True),
                f"stages.{k}.inhib": ("I64", True),
            }
    return out


def _check_tensor_header(blob: bytes, meta: dict[str, Any], path: Path) -> None:
    """Refuse, before decoding any tensor, a file whose tensors are not the ones
    network.json describes, each with the dtype ``save_network`` writes (weights in the
    recorded float type; indices, pointers and the task as signed integers)."""
    n = int.from_bytes(blob[:8], "little")
    if len(blob) < 8 or not 2 <= n <= len(blob) - 8:
        raise SuperposeError(f"{path}: not a valid safetensors file (bad header length)")
    try:
        header = loads(blob[8 : 8 + n].decode("utf-8"), f"{path}: header")
    except (UnicodeDecodeError, json.JSONDecodeError, RecursionError) as exc:
        raise SuperposeError(
            f"{path}: not a valid safetensors file (header: {type(exc).__name__})"
        ) from None
    _require(isinstance(header, dict), path, "not a valid safetensors file (header)")
    expected = _expected_tensors(meta)
    for name, entry in header.items():
        if name == "__metadata__":
            continue
        if name not in expected:
            raise SuperposeError(f"{path}: unexpected tensor {_show(name)}")
        dtype = entry.get("dtype") if isinstance(entry, dict) else None
        want = expected[name][0]
        if dtype != want:
            why = "the float type network.json records" if want[0] == "F" else "as saved"
            raise SuperposeError(
                f"{path}: tensor {name!r} has dtype {_show(dtype)}; expected {want} ({why})"
            )
    missing = sorted(k for k, (_, required) in expected.items() if required and k not in header)
    if missing:
        raise SuperposeError(f"{path}: tensor {missing[0]!r} is missing")


def _assemble(meta: dict[str, Any], tensors: dict[str, np.ndarray], d: Path) -> Network:
    for name, arr in tensors.items():
        if name.startswith(("task.", "stages.")) or name.endswith((".indices", ".indptr")):
            if arr.dtype.kind not in "iu":
                raise SuperposeError(f"tensor {name!r} must hold integers, got {arr.dtype}")
        elif arr.dtype.kind in "fc" and not np.isfinite(arr).all():
            raise SuperposeError(f"tensor {name!r} holds a non-finite value")
    tmeta = meta["task"]
    task = Task(
        tmeta["features"],
        tmeta["sparsity"],
        tensors["task.ops"],
        tensors["task.gate_indptr"],
        tensors["task.gate_inputs"],
        tensors["task.outputs"],
        tmeta.get("family"),
        str(d),
    )
    layers = []
    for i, lmeta in enumerate(meta["layers"]):
        rows, cols = lmeta["shape"]
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
        resting = lmeta.get("resting", False)
        if type(resting) is not bool:
            raise SuperposeError(f"layer {i}: 'resting' must be true or false, got {resting!r}")
        layers.append(Layer(weight, tensors[f"layers.{i}.bias"], lmeta["activation"], resting))

    def code(prefix: str) -> Any:
        arrays = {k.split(".", 1)[1]: v for k, v in tensors.items() if k.startswith(prefix + ".")}
        return code_from_arrays(meta[prefix], arrays)

    net = Network(
        layers,
        code("input_code"),
        code("output_code"),
        task,
        str(meta.get("construction", "custom")),
        meta.get("params") or {},
        meta.get("seed"),
        meta.get("extras") or {},
    )
    if meta.get("stage_codes"):
        net.stage_codes = _load_stage_codes(tensors, layers, task)  # type: ignore[attr-defined]
    return net


def _load_stage_codes(
    tensors: dict[str, np.ndarray], layers: list[Layer], task: Task
) -> list[tuple[np.ndarray, Any, np.ndarray]]:
    """Rebuild the per-stage codes saved by :func:`save_network`, checking every index."""
    from superpose.codes import BloomCode

    out = []
    for k, layer in enumerate(layers):
        nodes, indptr, indices, inhib = (
            tensors[f"stages.{k}.{name}"] for name in ("nodes", "indptr", "indices", "inhib")
        )
        width = layer.n_out
        if (
            nodes.ndim != 1
            or inhib.shape != nodes.shape
            or indptr.shape != (len(nodes) + 1,)
            or indptr[0] != 0
            or indptr[-1] != len(indices)
            or (np.diff(indptr) < 0).any()
        ):
            raise SuperposeError(f"stage {k}: code arrays disagree with each other")
        if len(nodes) and (nodes.min() < 0 or nodes.max() >= task.n_nodes):
            raise SuperposeError(f"stage {k}: node id out of range")
        if len(indices) and (indices.min() < 0 or indices.max() >= width):
            raise SuperposeError(f"stage {k}: unit index out of range (width {width})")
        if len(inhib) and (inhib.min() < -1 or inhib.max() >= width):
            raise SuperposeError(f"stage {k}: detector unit out of range (width {width})")
        units = sparse.csr_array(
            (np.ones(len(indices), dtype=np.int8), indices, indptr), shape=(len(nodes), width)
        )
        out.append((nodes.astype(np.int64), BloomCode(units), inhib.astype(np.int64)))
    return out
