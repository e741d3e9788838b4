"""How many features could each layer of a real model compute in superposition, at most?

Reads a ``.safetensors`` file (or a directory of shards), finds its 2-D weight matrices, pairs
MLP up/down projections by name, and applies the counting bound (:mod:`superpose.bounds`): a
layer whose weights hold B bits computes at most the largest m' whose bit lower bound is ≤ B.

A layer with P parameters, P_nz of them non-zero, stored with b bits each, is described by at
most B = min(P·b, P_nz·(b + log2 P)) bits (dense layout, or value plus position of every
non-zero). **By default b = 1 bit per parameter**: the constructions' weights take a handful
of values, and the bound counts what a weight can *usefully* hold, not its storage (with b =
32 a 512x2048 fp32 layer would claim 1.74 M features). ``bits_per_parameter=None`` uses each
tensor's storage width instead (16 for bf16): a true but loose upper bound.

The file is never loaded whole: the header is parsed and bounded first (so a file that is not
safetensors gives a clean error), checked again by ``safetensors.safe_open``, then each tensor
is read in chunks of a few MB, one at a time.

Example:
    >>> import numpy as np, tempfile, os
    >>> from safetensors.numpy import save_file
    >>> path = os.path.join(tempfile.mkdtemp(), "m.safetensors")
    >>> save_file({"mlp.up_proj.weight": np.ones((8, 4), np.float32),
    ...            "mlp.down_proj.weight": np.ones((4, 8), np.float32)}, path)
    >>> report = model_capacity(path)  # b = 1 bit per parameter
    >>> [row["kind"] for row in report["layers"]], report["layers"][0]["nonzero_parameters"]
    (['mlp'], 64)
"""

from __future__ import annotations

import json
import math
import os
import re
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from superpose._inputs import loads, reading
from superpose.bounds import capacity_for_bits
from superpose.errors import SuperposeError

MAX_HEADER_BYTES = 100_000_000
"""The safetensors format's own limit on the JSON header."""

CHUNK_BYTES = 16 * 2**20
"""At most this many bytes of one tensor are in memory at once."""

# dtype -> (bits per element, unsigned view dtype, mask clearing a float's sign bit or None)
DTYPES: dict[str, tuple[int, str, int | None]] = {
    "F64": (64, "<u8", 0x7FFF_FFFF_FFFF_FFFF),
    "F32": (32, "<u4", 0x7FFF_FFFF),
    "F16": (16, "<u2", 0x7FFF),
    "BF16": (16, "<u2", 0x7FFF),
    "F8_E4M3": (8, "u1", 0x7F),
    "F8_E5M2": (8, "u1", 0x7F),
    "I64": (64, "<u8", None),
    "I32": (32, "<u4", None),
    "I16": (16, "<u2", None),
    "I8": (8, "u1", None),
    "U64": (64, "<u8", None),
    "U32": (32, "<u4", None),
    "U16": (16, "<u2", None),
    "U8": (8, "u1", None),
    "BOOL": (8, "u1", None),
}


@dataclass(frozen=True)
class TensorInfo:
    """One tensor as the header describes it (offsets are absolute positions in the file)."""

    name: str
    dtype: str
    shape: tuple[int, ...]
    start: int
    end: int
    path: Path

    @property
    def numel(self) -> int:
        return math.prod(self.shape)

    @property
    def bits(self) -> int:
        return DTYPES[self.dtype][0]


def read_header(path: str | os.PathLike[str]) -> list[TensorInfo]:
    """Parse and check a safetensors header without trusting it; raise SuperposeError if bad.

    Checks: the 8-byte little-endian length is at most 100 MB and fits in the file; the header
    is a UTF-8 JSON object; every tensor has a known dtype, a shape of non-negative integers
    and data offsets that lie inside the file and match its size.

    Example:
        >>> import tempfile, os
        >>> bad = os.path.join(tempfile.mkdtemp(), "x.bin")
        >>> _ = open(bad, "wb").write(b"not a model at all")
        >>> try:
        ...     read_header(bad)
        ... except SuperposeError as exc:
        ...     print(str(exc).split(": ", 1)[1][:24])
        not a safetensors file (
    """
    p = Path(path)
    if not p.is_file():
        raise SuperposeError(f"{p}: no such file")
    with reading(p), open(p, "rb") as handle:
        size = os.fstat(handle.fileno()).st_size
        head = handle.read(8)
        if len(head) < 8:
            raise SuperposeError(f"{p}: not a safetensors file (only {size} bytes)")
        n = int.from_bytes(head, "little")
        if n < 2 or n > MAX_HEADER_BYTES or 8 + n > size:
            raise SuperposeError(
                f"{p}: not a safetensors file (header length {n} bytes is impossible "
                f"for a file of {size} bytes)"
            )
        raw = handle.read(n)
    try:
        header = loads(raw.decode("utf-8"), f"{p}: safetensors header")
    except (UnicodeDecodeError, json.JSONDecodeError, RecursionError):
        raise SuperposeError(f"{p}: not a safetensors file (header is not UTF-8 JSON)") from None
    if not isinstance(header, dict):
        raise SuperposeError(f"{p}: not a safetensors file (header is not a JSON object)")
    data_start, data_len = 8 + n, size - 8 - n
    tensors = []
    for name, entry in header.items():
        if name == "__metadata__":
            continue
        if not (
            isinstance(entry, dict)
            and isinstance(entry.get("dtype"), str)
            and isinstance(entry.get("shape"), list)
            and isinstance(entry.get("data_offsets"), list)
            and len(entry["data_offsets"]) == 2
            and all(type(v) is int and v >= 0 for v in entry["shape"])
            and all(type(v) is int for v in entry["data_offsets"])
        ):
            raise SuperposeError(f"{p}: tensor {name!r} has a malformed header entry")
        dtype = entry["dtype"]
        if dtype not in DTYPES:
            raise SuperposeError(
                f"{p}: tensor {name!r} has dtype {dtype!r}, which superpose cannot read "
                f"(known: {', '.join(DTYPES)})"
            )
        begin, end = entry["data_offsets"]
        shape = tuple(entry["shape"])
        if not 0 <= begin <= end <= data_len:
            raise SuperposeError(f"{p}: tensor {name!r} lies outside the file (truncated?)")
        if end - begin != math.prod(shape) * DTYPES[dtype][0] // 8:
            raise SuperposeError(
                f"{p}: tensor {name!r} of shape {list(shape)} and dtype {dtype} "
                f"should take {math.prod(shape) * DTYPES[dtype][0] // 8} bytes, not {end - begin}"
            )
        tensors.append(TensorInfo(name, dtype, shape, data_start + begin, data_start + end, p))
    return tensors


def _raw_nonzero(info: TensorInfo) -> int:
    """Non-zero count by bit pattern (for dtypes numpy lacks, e.g. bf16); ±0 counts as zero."""
    _, raw, mask = DTYPES[info.dtype]
    item = np.dtype(raw).itemsize
    per_chunk = max(1, CHUNK_BYTES // item)
    total, done = info.numel, 0
    count = 0
    with reading(info.path), open(info.path, "rb") as handle:
        while done < total:
            take = min(per_chunk, total - done)
            handle.seek(info.start + done * item)
            chunk = np.frombuffer(handle.read(take * item), dtype=raw)
            if len(chunk) != take:
                raise SuperposeError(f"{info.path}: tensor {info.name!r} is truncated")
            if mask is not None:
                chunk = chunk & np.array(mask, dtype=raw)
            count += int(np.count_nonzero(chunk))
            done += take
    return count


def count_nonzero(info: TensorInfo) -> int:
    """Non-zero entries of one tensor, read from the file in chunks of :data:`CHUNK_BYTES`.

    Counts by bit pattern, so every dtype works (numpy has no bf16 or fp8): for floats the
    sign bit is masked, so ±0 count as zero and NaN as non-zero (as ``np.count_nonzero``).
    Plain reads, not a memory map: mapped pages of a multi-GB file would count towards the
    process's resident memory.

    Example:
        >>> import numpy as np, tempfile, os
        >>> from safetensors.numpy import save_file
        >>> path = os.path.join(tempfile.mkdtemp(), "m.safetensors")
        >>> save_file({"w": np.array([[0.0, -0.0], [1.0, 2.0]], np.float32)}, path)
        >>> count_nonzero(read_header(path)[0])
        2
    """
    return _raw_nonzero(info) if info.numel else 0


# --------------------------------------------------------------------------------------
# grouping MLP up/down pairs
# --------------------------------------------------------------------------------------
_MLP_WORDS = ("mlp", "ffn", "feed_forward", "feedforward", "densereludense", "expert", "moe")
_UP = {
    "up_proj": True,
    "gate_proj": True,
    "gate_up_proj": True,
    "fc1": True,
    "fc_in": True,
    "c_fc": True,
    "dense_h_to_4h": True,
    "linear_fc1": True,
    "lin1": True,
    "wi": True,
    "wi_0": True,
    "wi_1": True,
    "W_in": True,  # TransformerLens (blocks.N.mlp.W_in, bias b_in)
    "w1": False,  # ambiguous names: only inside an MLP-looking prefix
    "w3": False,
}
_DOWN = {
    "down_proj": True,
    "fc2": True,
    "fc_out": True,
    "dense_4h_to_h": True,
    "linear_fc2": True,
    "lin2": True,
    "W_out": True,  # TransformerLens (blocks.N.mlp.W_out, bias b_out)
    "c_proj": False,
    "wo": False,
    "w2": False,
}
_BERT = re.compile(r"^(?P<prefix>.*?)(?P<role>intermediate|output)\.dense$")
_SEQUENTIAL = re.compile(r"^(?P<prefix>(?:.*\.)?)(?P<index>\d+)\.weight$")
"""A torch ``nn.Sequential`` layer: ``0.weight``, ``net.2.weight`` (ReLUs hold no tensors)."""
_TL_BIAS = {"W_in": "b_in", "W_out": "b_out"}


def bias_name(weight_name: str) -> str | None:
    """The name of the bias that belongs to a weight matrix, by convention.

    ``X.weight`` -> ``X.bias`` (torch, Hugging Face); TransformerLens ``W_in`` -> ``b_in``,
    ``W_out`` -> ``b_out``.

    Example:
        >>> bias_name("blocks.0.mlp.W_in"), bias_name("0.weight"), bias_name("h.0.ln_1.g")
        ('blocks.0.mlp.b_in', '0.bias', None)
    """
    if weight_name.endswith(".weight"):
        return weight_name[: -len("weight")] + "bias"
    prefix, _, token = weight_name.rpartition(".")
    if token in _TL_BIAS:
        return (prefix + "." if prefix else "") + _TL_BIAS[token]
    return None


def mlp_role(name: str) -> tuple[str, str] | None:
    """``(group prefix, "up" | "down")`` when a tensor name looks like an MLP projection.

    Example:
        >>> mlp_role("model.layers.3.mlp.down_proj.weight")
        ('model.layers.3.mlp.', 'down')
        >>> mlp_role("h.0.attn.c_proj.weight") is None
        True
    """
    base = re.sub(r"\.(weight|bias)$", "", name)
    match = _BERT.match(base)
    if match:
        prefix = match["prefix"]
        if match["role"] == "output" and prefix.endswith("attention."):
            return None
        return prefix, "up" if match["role"] == "intermediate" else "down"
    prefix, _, token = base.rpartition(".")
    prefix = prefix + "." if prefix else ""
    mlp_like = any(word in prefix.lower() for word in _MLP_WORDS)
    for table, role in ((_UP, "up"), (_DOWN, "down")):
        if token in table and (table[token] or mlp_like):
            return prefix, role
    return None


def _natural_key(text: str) -> list[Any]:
    return [int(part) if part.isdigit() else part for part in re.split(r"(\d+)", text)]


def group_layers(tensors: list[TensorInfo]) -> tuple[list[dict[str, Any]], int]:
    """Group 2-D matrices into rows: MLP blocks (up + down by name) and single matrices.

    Biases (``X.bias`` next to ``X.weight``) join their matrix's row. Returns the rows (each
    ``{"name", "kind", "tensors": [TensorInfo, ...]}``) and how many tensors were skipped
    (neither 2-D nor a bias of a kept matrix).

    Example:
        >>> from pathlib import Path
        >>> t = lambda name, shape: TensorInfo(name, "F32", shape, 0, 0, Path("x"))
        >>> rows, skipped = group_layers([t("l.0.mlp.fc1.weight", (8, 4)),
        ...     t("l.0.mlp.fc2.weight", (4, 8)), t("l.0.mlp.fc2.bias", (4,)), t("norm", (4,))])
        >>> [(r["name"], r["kind"], len(r["tensors"])) for r in rows], skipped
        ([('l.0.mlp', 'mlp', 3)], 1)
    """
    by_name = {t.name: t for t in tensors}
    matrices = [t for t in tensors if len(t.shape) == 2]
    groups: dict[str, dict[str, list[TensorInfo]]] = {}
    for t in matrices:
        role = mlp_role(t.name)
        if role is not None:
            groups.setdefault(role[0], {"up": [], "down": []})[role[1]].append(t)
    rows: list[dict[str, Any]] = []
    used: set[str] = set()
    for prefix, parts in groups.items():
        if parts["up"] and parts["down"]:
            members = parts["up"] + parts["down"]
            rows.append({"name": prefix.rstrip(".") or "mlp", "kind": "mlp", "tensors": members})
            used.update(t.name for t in members)
    # torch Sequential MLPs: two or more numbered matrices under one prefix ("0.weight",
    # "2.weight"), in index order.
    chains: dict[str, list[tuple[int, TensorInfo]]] = {}
    for t in matrices:
        match = _SEQUENTIAL.match(t.name)
        if t.name not in used and match:
            chains.setdefault(match["prefix"], []).append((int(match["index"]), t))
    for prefix, members in chains.items():
        if len(members) >= 2:
            members.sort(key=lambda pair: pair[0])
            rows.append(
                {
                    "name": prefix.rstrip(".") or "sequential",
                    "kind": "mlp",
                    "tensors": [t for _, t in members],
                }
            )
            used.update(t.name for _, t in members)
    for t in matrices:
        if t.name not in used:
            rows.append(
                {"name": re.sub(r"\.weight$", "", t.name), "kind": "matrix", "tensors": [t]}
            )
            used.add(t.name)
    for row in rows:
        for t in list(row["tensors"]):
            name = bias_name(t.name)
            if name is not None:
                bias = by_name.get(name)
                if bias is not None and len(bias.shape) == 1 and bias.name not in used:
                    row["tensors"].append(bias)
                    used.add(bias.name)
    rows.sort(key=lambda r: _natural_key(r["name"]))
    return rows, len(tensors) - len(used)


# --------------------------------------------------------------------------------------
# the report
# --------------------------------------------------------------------------------------
def safetensors_files(path: str | os.PathLike[str]) -> list[Path]:
    """The ``.safetensors`` files at ``path`` (the file itself, or every one in a directory).

    Example:
        >>> import tempfile
        >>> safetensors_files(tempfile.mkdtemp())
        Traceback (most recent call last):
        ...
        superpose.errors.SuperposeError: ... directory holds no .safetensors file
    """
    p = Path(path)
    if p.is_dir():
        files = sorted(p.glob("*.safetensors"), key=lambda f: _natural_key(f.name))
        if not files:
            raise SuperposeError(f"{p}: directory holds no .safetensors file")
        return files
    if not p.exists():
        raise SuperposeError(f"{p}: no such file or directory")
    return [p]


def budget_bits(parameters: int, nonzero: int, bits_per_parameter: float) -> float:
    """Most bits a block of ``parameters`` entries (``nonzero`` of them non-zero) can hold.

    min(P·b, P_nz·(b + log2 P)): a dense layout, or a sparse one storing each non-zero's value
    and position.

    Example:
        >>> budget_bits(1024, 10, 1.0)
        110.0
    """
    dense = parameters * bits_per_parameter
    sparse = nonzero * (bits_per_parameter + math.log2(max(parameters, 1)))
    return float(min(dense, sparse))


def model_capacity(
    path: str | os.PathLike[str],
    bits_per_parameter: float | None = 1.0,
    progress: Callable[[int], None] | None = None,
    start: Callable[[int], None] | None = None,
) -> dict[str, Any]:
    """Per-layer parameters, non-zeros and feature capacity of a safetensors model.

    ``bits_per_parameter`` (b) is 1 unless given; ``None`` uses each tensor's dtype width.
    Biases count with their matrix (``X.bias`` with ``X.weight``, ``b_in`` with ``W_in``). For every row (an MLP
    block or a single matrix, biases included) the budget is :func:`budget_bits` and the
    capacities are the largest m' whose counting bound fits the budget, for the permutation
    family and for pair sets with m = m' (:func:`superpose.bounds.capacity_for_bits`).
    Totals add the rows (each layer computes its own features); ``whole_model`` is the
    capacity of all budgets pooled. ``start`` is called once with the bytes that will be read
    (the matrices and biases counted; other tensors are skipped unread), then ``progress`` with
    the bytes of each tensor read.

    Example:
        >>> import numpy as np, tempfile, os
        >>> from safetensors.numpy import save_file
        >>> path = os.path.join(tempfile.mkdtemp(), "m.safetensors")
        >>> save_file({"fc1.weight": np.ones((64, 16), np.float16),
        ...            "fc2.weight": np.ones((16, 64), np.float16)}, path)
        >>> model_capacity(path, bits_per_parameter=None)["total"]["capacity_permutation"]
        3210
    """
    if bits_per_parameter is not None:
        b = float(bits_per_parameter)
        if not (b > 0 and math.isfinite(b)):
            raise SuperposeError(
                f"bits_per_parameter must be positive, got {bits_per_parameter}",
                cli="--bits-per-parameter",
            )
    files = safetensors_files(path)
    tensors = _all_tensors(files)
    rows, skipped = group_layers(tensors)
    needed = {t.name for row in rows for t in row["tensors"]}
    if start is not None:
        start(sum(t.end - t.start for t in tensors if t.name in needed))
    nonzero = _count_nonzeros(files, tensors, needed, progress)
    out_rows = [_capacity_row(row, nonzero, bits_per_parameter) for row in rows]
    return {
        "files": [str(f) for f in files],
        "bits_per_parameter": None if bits_per_parameter is None else float(bits_per_parameter),
        "bits_per_parameter_note": (
            "each tensor's storage width (a true upper bound)"
            if bits_per_parameter is None
            else f"{float(bits_per_parameter):g} bit(s) per parameter"
            + (" (the default)" if float(bits_per_parameter) == 1.0 else "")
        ),
        "layers": out_rows,
        "total": _capacity_total(out_rows),
        "total_mlp": _capacity_total([r for r in out_rows if r["kind"] == "mlp"]),
        "skipped_tensors": skipped,
        "note": (
            "counting bound: a layer holding B bits computes at most the largest m' with "
            "log2|F(m')| <= B; pairs use m = m'"
        ),
    }


def _all_tensors(files: list[Path]) -> list[TensorInfo]:
    """Every tensor of every shard, from the headers alone; a name in two shards is refused
    (the rows would count it twice)."""
    tensors: list[TensorInfo] = []
    seen: set[str] = set()
    for f in files:
        for t in read_header(f):
            if t.name in seen:
                raise SuperposeError(f"{f}: tensor {t.name!r} appears in two shards")
            seen.add(t.name)
            tensors.append(t)
    return tensors


def _count_nonzeros(
    files: list[Path],
    tensors: list[TensorInfo],
    needed: set[str],
    progress: Callable[[int], None] | None,
) -> dict[str, int]:
    """Non-zeros of every ``needed`` tensor, one tensor at a time. Each file is first opened
    by the safetensors library too (it maps the file but touches no tensor data), so a file
    it would refuse, or reads differently from our header parser, is refused here."""
    from safetensors import SafetensorError, safe_open

    nonzero: dict[str, int] = {}
    for f in files:
        try:
            with reading(f), safe_open(str(f), framework="numpy") as handle:
                names = set(handle.keys())
        except SafetensorError as exc:
            raise SuperposeError(f"{f}: not a valid safetensors file ({exc})") from None
        if names != {t.name for t in tensors if t.path == f}:
            raise SuperposeError(f"{f}: the safetensors library reads a different tensor list")
        for t in tensors:
            if t.path == f and t.name in needed:
                nonzero[t.name] = count_nonzero(t)
                if progress is not None:
                    progress(t.end - t.start)
    return nonzero


def _capacity_row(
    row: dict[str, Any], nonzero: dict[str, int], bits_per_parameter: float | None
) -> dict[str, Any]:
    """One row's (an MLP block or a single matrix, biases included) parameters, bit budget
    and capacities; ``bits_per_parameter`` None: the widest dtype of the row's tensors."""
    params = sum(t.numel for t in row["tensors"])
    nz = sum(nonzero[t.name] for t in row["tensors"])
    b = (
        float(bits_per_parameter)
        if bits_per_parameter is not None
        else float(max(t.bits for t in row["tensors"]))
    )
    budget = budget_bits(params, nz, b)
    return {
        "name": row["name"],
        "kind": row["kind"],
        "tensors": [t.name for t in row["tensors"]],
        "shapes": [list(t.shape) for t in row["tensors"] if len(t.shape) == 2],
        "dtypes": sorted({t.dtype for t in row["tensors"]}),
        "parameters": params,
        "nonzero_parameters": nz,
        "bits_per_parameter": b,
        "budget_bits": budget,
        "capacity_permutation": capacity_for_bits(budget, "permutation"),
        "capacity_pairs": capacity_for_bits(budget, "and2"),
    }


def _capacity_total(rows_: list[dict[str, Any]]) -> dict[str, Any]:
    """Rows added up (each layer computes its own features), and the capacity of all their
    budgets pooled (``whole_model``)."""
    pooled = sum(r["budget_bits"] for r in rows_)
    return {
        "rows": len(rows_),
        "parameters": sum(r["parameters"] for r in rows_),
        "nonzero_parameters": sum(r["nonzero_parameters"] for r in rows_),
        "budget_bits": pooled,
        "capacity_permutation": sum(r["capacity_permutation"] for r in rows_),
        "capacity_pairs": sum(r["capacity_pairs"] for r in rows_),
        "whole_model_capacity_permutation": capacity_for_bits(pooled, "permutation"),
        "whole_model_capacity_pairs": capacity_for_bits(pooled, "and2"),
    }
