"""Parameter sweeps: a YAML grid, run on any ``concurrent.futures`` executor, stored in SQLite.

A sweep file (read with ``yaml.safe_load``) lists one grid or several, and what to measure::

    name: small
    root_seed: 0
    grid:                       # or a list of grids (their union)
      family: and2              # every value may be a scalar or a list
      outputs: [1000, 2000]
      features: same            # m = m' (the default); or integers
      sparsity: 2
      influence: uniform
      construction: [superposed, naive]
      params: {ell: 6, ell_out: [5, 6]}   # construction parameters, each a scalar or a list
      seeds: 2                  # replicates per point (or a list of replicate labels)
    measure:
      bounds: true
      verify: {mode: random, samples: 2000}
      width_search: {samples: 1000}   # superpose.search (width_scale only)

Each point of the grid gets a key (a SHA-256 of its parameters, the measurements and the root
seed) and a seed: ``SeedSequence(root_seed)`` spawned once per point in grid order (entropy
and spawn key are stored in the row), so a point's results do not depend on which worker ran
it. Results go to SQLite in WAL mode, one row per finished point, committed as each point
finishes; a rerun skips points already finished (status ``ok``), so an interrupted sweep
resumes with nothing lost and nothing done twice. Points that failed (status ``error``) are
retried on the next run. Editing the grid later runs only the new points; finished points
keep the seeds they ran with. A point's seed follows its position in grid order, so to
extend a sweep without moving any unfinished point, append a new grid to the ``grid`` list.

Hostile input is refused where it enters, with one line naming the value: a sweep file nested
deeper than ``MAX_NESTING`` (32) levels, or whose YAML aliases would add more than
``MAX_ALIAS_EXPANSION`` (100,000) nodes and characters (checked on the event stream, before
anything is built), a recursive alias, parameter names that are not text, and sizes beyond
the task limits (``MAX_GATES`` outputs, ``MAX_FEATURES`` features, ``MAX_COUNT`` samples).
A results file with tables that are not superpose's is refused before it is written to, and
every row read back is checked (types, JSON, shapes); bad values are quoted at most 80
characters long.

Executors: ``serial`` (in this process), ``process`` (a local process pool) and ``dask``
(``dask.distributed``: a ``LocalCluster`` by default, or an existing scheduler by address).

Example:
    >>> import tempfile, os
    >>> spec = parse_spec({"name": "doc", "grid": {"family": "and2", "outputs": [60, 80],
    ...     "construction": "naive"}, "measure": {"verify": {"mode": "random", "samples": 100}}})
    >>> len(spec.points)
    2
    >>> db = os.path.join(tempfile.mkdtemp(), "r.sqlite")
    >>> run_sweep(spec, db).computed, run_sweep(spec, db).skipped
    (2, 2)
    >>> [r["result"]["verify"]["inputs_with_error"] for r in result_table(db)]
    [0, 0]
"""

from __future__ import annotations

import contextlib
import copy
import datetime as _dt
import difflib
import hashlib
import itertools
import json
import math
import multiprocessing
import os
import re
import signal
import socket
import sqlite3
import time
import traceback
from collections.abc import Callable, Iterator
from concurrent.futures import (
    FIRST_COMPLETED,
    BrokenExecutor,
    Executor,
    Future,
    ProcessPoolExecutor,
    wait,
)
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from superpose._inputs import check_int_digits, loads, read_bytes, short_repr
from superpose.errors import SuperposeError

EXECUTORS = ("serial", "process", "dask")
SCHEMA_VERSION = 1
DEFAULT_RESULTS = "results.sqlite"

TOP_KEYS = ("name", "description", "root_seed", "grid", "measure", "memory_limit")
GRID_KEYS = (
    "family",
    "features",
    "outputs",
    "sparsity",
    "influence",
    "arity",
    "depth",
    "construction",
    "params",
    "seeds",
)
MEASURE_KEYS = ("bounds", "verify", "width_search")
VERIFY_KEYS = ("mode", "samples", "max_exhaustive")
SEARCH_KEYS = (
    "samples",
    "exhaustive",
    "min_scale",
    "max_scale",
    "tolerance",
    "max_exhaustive",
)
DEFAULT_VERIFY = {"mode": "random", "samples": 2000, "max_exhaustive": 100_000}
DEFAULT_SEARCH = {
    "samples": 1000,
    "exhaustive": False,
    "min_scale": 0.3,
    "max_scale": 6.0,
    "tolerance": 0.03,
    "max_exhaustive": 100_000,
}


# --------------------------------------------------------------------------------------
# the spec
# --------------------------------------------------------------------------------------
@dataclass(frozen=True)
class SweepPoint:
    """One point of a sweep: its parameters, key and seed (entropy + spawn key)."""

    index: int
    params: dict[str, Any]
    key: str
    seed_entropy: int
    seed_spawn_key: tuple[int, ...]

    def label(self) -> str:
        p = self.params
        extra = ",".join(f"{k}={v}" for k, v in sorted(p["params"].items()))
        size = f"m={p.get('features')} m'={p.get('outputs')} s={p['sparsity']}"
        return f"{p['construction']}{'(' + extra + ')' if extra else ''} {p['family']} {size} #{p['seed']}"


@dataclass(frozen=True)
class SweepSpec:
    """A validated sweep: its points in grid order and what to measure at each."""

    name: str
    root_seed: int
    points: list[SweepPoint]
    measure: dict[str, Any]
    memory_limit: int | None = None
    source: str = "<memory>"
    raw: dict[str, Any] = field(default_factory=dict, repr=False)


def _where(source: str, key: str) -> str:
    return f"{source}: {key}"


def _unknown(source: str, where: str, keys: Any, allowed: tuple[str, ...]) -> None:
    for k in keys:
        if k not in allowed:
            close = difflib.get_close_matches(str(k), allowed, n=1)
            hint = f" (did you mean {close[0]!r}?)" if close else ""
            raise SuperposeError(
                f"{source}: unknown key {where}{short_repr(k)}{hint}; known: {', '.join(allowed)}"
            )


def _cut(text: str, limit: int = 200) -> str:
    """``text`` on one line, at most ``limit`` characters (cut with "…")."""
    text = " ".join(text[: limit + 1].split())
    return text if len(text) <= limit else text[: limit - 1] + "…"


def _is_int(v: Any) -> bool:
    return isinstance(v, int) and not isinstance(v, bool)


_FLOAT_TEXT = re.compile(r"[-+]?(\d+\.?\d*|\.\d+)([eE][-+]?\d+)?")


def _yaml_number(value: Any) -> Any:
    """A number written as text that YAML 1.1 leaves a string (``1e-6``), as a float."""
    if isinstance(value, str) and _FLOAT_TEXT.fullmatch(value.strip()):
        return float(value)
    return value


def _as_list(value: Any) -> list[Any]:
    return list(value) if isinstance(value, list) else [value]


def _as_count(value: Any) -> Any:
    """``1e5`` (text in YAML 1.1) or ``100000.0`` as the integer 100000; anything else unchanged."""
    value = _yaml_number(value)
    if isinstance(value, float) and value.is_integer():
        return int(value)
    return value


def _check_values(
    source: str, key: str, value: Any, check: Callable[[Any], bool], want: str
) -> list[Any]:
    raw = _as_list(value)
    values = [_as_count(v) for v in raw]
    if not values:
        raise SuperposeError(f"{_where(source, key)}: an empty list gives no points")
    for v, r in zip(values, raw, strict=True):
        if not check(v):
            raise SuperposeError(
                f"{_where(source, key)}: expected {want} (or a list of them), got {short_repr(r)}"
            )
    return values


def load_spec(path: str | os.PathLike[str]) -> SweepSpec:
    """Read and validate a sweep YAML file (``yaml.safe_load``; nothing in it is executed).

    Example:
        >>> import tempfile, os
        >>> p = os.path.join(tempfile.mkdtemp(), "s.yaml")
        >>> _ = open(p, "w").write("grid: {family: and2, outputs: [50, 60], construction: naive}")
        >>> len(load_spec(p).points)
        2
    """
    import yaml

    src = str(path)
    p = Path(path)
    if not p.is_file():
        raise SuperposeError(f"{src}: no such sweep file")
    try:
        data = _safe_load_yaml(read_bytes(p).decode("utf-8"), src)
    except UnicodeDecodeError as exc:
        raise SuperposeError(f"{src}: not UTF-8 text ({exc.reason})") from None
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        where = f", line {mark.line + 1}" if mark is not None else ""
        problem = getattr(exc, "problem", None) or str(exc).splitlines()[0]
        raise SuperposeError(f"{src}{where}: malformed YAML ({problem})") from None
    default_name = p.stem
    return parse_spec(data, src, default_name=default_name)


MAX_NESTING = 32
"""Deepest nesting of lists and mappings in a sweep file (the format itself needs 4)."""
MAX_ALIAS_EXPANSION = 100_000
"""Most nodes plus scalar characters that YAML aliases (``*name``) may add to a sweep file."""


def _check_yaml_events(text: str, source: str) -> None:
    """Refuse deep nesting and alias bombs from the event stream, before anything is built.

    PyYAML composes and constructs nodes recursively (10^5 nested brackets overflow the
    stack), and an alias is expanded wherever the data is later copied, hashed, stored or
    quoted (nine aliases of nine aliases of ... grow 9^9-fold). Events arrive one at a time,
    so this scan holds only the open collections (at most ``MAX_NESTING``) and one size per
    anchor: for each anchor, how much it expands to and how deep it reaches, so that
    aliases nested in aliases are counted as what they become.
    """
    import yaml

    depth = 0
    total = 0  # nodes + scalar characters, aliases expanded
    from_aliases = 0
    anchors: dict[str, tuple[int, int]] = {}  # anchor -> (expanded size, depth below it)
    open_: list[list[Any]] = []  # [anchor, total at start, depth at start, deepest inside]

    def line(event: Any) -> str:
        return f"{source}, line {event.start_mark.line + 1}"

    for event in yaml.parse(text, Loader=yaml.SafeLoader):
        if isinstance(event, (yaml.MappingStartEvent, yaml.SequenceStartEvent)):
            depth += 1
            if depth > MAX_NESTING:
                raise SuperposeError(
                    f"{line(event)}: lists and mappings nested deeper than {MAX_NESTING} levels"
                )
            total += 1
            open_.append([event.anchor, total - 1, depth, depth])
        elif isinstance(event, (yaml.MappingEndEvent, yaml.SequenceEndEvent)):
            anchor, start, d0, deepest = open_.pop()
            if anchor is not None:
                anchors[anchor] = (total - start, deepest - d0 + 1)
            if open_:
                open_[-1][3] = max(open_[-1][3], deepest)
            depth -= 1
        elif isinstance(event, yaml.ScalarEvent):
            total += 1 + len(event.value)
            if event.anchor is not None:
                anchors[event.anchor] = (1 + len(event.value), 0)
        elif isinstance(event, yaml.AliasEvent):
            name = event.anchor
            if any(entry[0] == name for entry in open_):
                raise SuperposeError(
                    f"{line(event)}: alias *{short_repr(name)[1:-1]} refers to a list or "
                    f"mapping that contains it (anchor {short_repr(name)})"
                )
            if name not in anchors:
                continue  # an undefined alias: the loader reports it
            size, below = anchors[name]
            if depth + below > MAX_NESTING:
                raise SuperposeError(
                    f"{line(event)}: lists and mappings nested deeper than {MAX_NESTING} levels "
                    f"(through alias *{short_repr(name)[1:-1]})"
                )
            total += size
            from_aliases += size
            if open_:
                open_[-1][3] = max(open_[-1][3], depth + below)
            if from_aliases > MAX_ALIAS_EXPANSION:
                raise SuperposeError(
                    f"{line(event)}: aliases expand to more than {MAX_ALIAS_EXPANSION:,} values "
                    "and characters (an alias bomb?); write the values out instead"
                )


def _safe_load_yaml(text: str, source: str) -> Any:
    """``yaml.safe_load``, refusing deep nesting, alias bombs and integers beyond Python's
    digit limit up front."""
    import yaml

    _check_yaml_events(text, source)

    class _Loader(yaml.SafeLoader):
        pass

    def construct_int(loader: yaml.SafeLoader, node: yaml.ScalarNode) -> Any:
        check_int_digits(str(node.value), f"{source}, line {node.start_mark.line + 1}")
        return yaml.SafeLoader.construct_yaml_int(loader, node)

    def construct_map(loader: yaml.SafeLoader, node: yaml.MappingNode) -> Any:
        # A key given twice would silently keep the last value: refuse it instead.
        seen: set[Any] = set()
        for key_node, _ in node.value:
            key = key_node.value if isinstance(key_node, yaml.ScalarNode) else None
            if key is not None and key in seen:
                raise SuperposeError(
                    f"{source}, line {key_node.start_mark.line + 1}: key {short_repr(key)} is "
                    "given twice"
                )
            seen.add(key)
        return yaml.SafeLoader.construct_yaml_map(loader, node)

    _Loader.add_constructor("tag:yaml.org,2002:int", construct_int)
    _Loader.add_constructor("tag:yaml.org,2002:map", construct_map)
    return yaml.load(text, Loader=_Loader)  # a SafeLoader subclass: nothing is executed


def parse_spec(data: Any, source: str = "<memory>", *, default_name: str = "sweep") -> SweepSpec:
    """Validate a parsed sweep (see :func:`load_spec`) and expand its grid into points.

    Example:
        >>> s = parse_spec({"grid": {"family": "and2", "outputs": [50, 60], "seeds": 2,
        ...     "construction": "naive"}})
        >>> [(p.params["outputs"], p.params["seed"], p.seed_spawn_key) for p in s.points]
        [(50, 0, (0,)), (50, 1, (1,)), (60, 0, (2,)), (60, 1, (3,))]
    """
    if not isinstance(data, dict):
        raise SuperposeError(
            f"{source}: a sweep file must be a mapping with 'grid' and 'measure', got {type(data).__name__}"
        )
    _unknown(source, "", data.keys(), TOP_KEYS)
    name = data.get("name", default_name)
    if not isinstance(name, str) or not name.strip():
        raise SuperposeError(
            f"{_where(source, 'name')}: expected a non-empty string, got {short_repr(name)}"
        )
    root_seed = data.get("root_seed", 0)
    if not _is_int(root_seed) or root_seed < 0:
        raise SuperposeError(
            f"{_where(source, 'root_seed')}: expected an integer >= 0, got {short_repr(root_seed)}"
        )
    memory_limit = data.get("memory_limit")
    if memory_limit is not None:
        from superpose.memory import parse_bytes

        try:
            memory_limit = parse_bytes(memory_limit)
        except SuperposeError as exc:
            raise SuperposeError(f"{_where(source, 'memory_limit')}: {exc}") from None
    if "grid" not in data:
        raise SuperposeError(f"{source}: missing key 'grid'")
    grids = data["grid"]
    if isinstance(grids, dict):
        grids = [grids]
    if not isinstance(grids, list) or not grids:
        raise SuperposeError(
            f"{_where(source, 'grid')}: expected a mapping or a non-empty list of mappings"
        )
    measure = _parse_measure(data.get("measure"), source)
    params_list: list[dict[str, Any]] = []
    for i, grid in enumerate(grids):
        where = "grid" if len(grids) == 1 and isinstance(data["grid"], dict) else f"grid[{i}]"
        params_list.extend(expand_grid(grid, source, where))
    seen: set[str] = set()
    points: list[SweepPoint] = []
    for params in params_list:
        key = point_key(params, measure, root_seed)
        if key in seen:
            continue
        seen.add(key)
        index = len(points)
        points.append(SweepPoint(index, params, key, root_seed, (index,)))
    return SweepSpec(name, root_seed, points, measure, memory_limit, source, copy.deepcopy(data))


def _parse_measure(measure: Any, source: str) -> dict[str, Any]:
    if measure is None:
        measure = {}
    if not isinstance(measure, dict):
        raise SuperposeError(
            f"{_where(source, 'measure')}: expected a mapping, got {type(measure).__name__}"
        )
    _unknown(source, "measure.", measure.keys(), MEASURE_KEYS)
    out: dict[str, Any] = {}
    bounds = measure.get("bounds", True)
    if not isinstance(bounds, bool):
        raise SuperposeError(
            f"{_where(source, 'measure.bounds')}: expected true or false, got {short_repr(bounds)}"
        )
    out["bounds"] = bounds
    out["verify"] = _parse_section(
        source, "measure.verify", measure.get("verify", True), DEFAULT_VERIFY, VERIFY_KEYS
    )
    out["width_search"] = _parse_section(
        source,
        "measure.width_search",
        measure.get("width_search", False),
        DEFAULT_SEARCH,
        SEARCH_KEYS,
    )
    from superpose.verification import MODES

    cfg = out["verify"]
    if cfg is not None:
        if cfg["mode"] not in MODES:
            raise SuperposeError(
                f"{_where(source, 'measure.verify.mode')}: expected one of {', '.join(MODES)}, "
                f"got {short_repr(cfg['mode'])}"
            )
    for sec in ("verify", "width_search"):
        cfg = out[sec]
        if cfg is None:
            continue
        low = 1 if sec == "width_search" else 0
        for k in ("samples", "max_exhaustive"):
            if not _is_int(cfg[k]) or not low <= cfg[k] <= MAX_COUNT:
                raise SuperposeError(
                    f"{_where(source, f'measure.{sec}.{k}')}: expected an integer >= {low} "
                    f"(at most {MAX_COUNT:,}), got {short_repr(cfg[k])}"
                )
    cfg = out["width_search"]
    if cfg is not None:
        if not isinstance(cfg["exhaustive"], bool):
            raise SuperposeError(
                f"{_where(source, 'measure.width_search.exhaustive')}: expected true or false"
            )
        for k in ("min_scale", "max_scale", "tolerance"):
            v = cfg[k]
            if isinstance(v, bool) or not isinstance(v, (int, float)) or not v > 0:
                raise SuperposeError(
                    f"{_where(source, 'measure.width_search.' + k)}: expected a number > 0, "
                    f"got {short_repr(v)}"
                )
        if not cfg["min_scale"] <= 1.0 <= cfg["max_scale"]:
            raise SuperposeError(
                f"{_where(source, 'measure.width_search')}: need min_scale <= 1 <= max_scale "
                f"(the search starts at the automatic widths), got {cfg['min_scale']} and "
                f"{cfg['max_scale']}"
            )
    return out


def _parse_section(
    source: str, key: str, value: Any, defaults: dict[str, Any], allowed: tuple[str, ...]
) -> dict[str, Any] | None:
    if value is False or value is None:
        return None
    if value is True:
        return dict(defaults)
    if not isinstance(value, dict):
        raise SuperposeError(
            f"{_where(source, key)}: expected true, false or a mapping, got {short_repr(value)}"
        )
    _unknown(source, key + ".", value.keys(), allowed)
    out = {**defaults, **{k: _yaml_number(v) for k, v in value.items()}}
    for k in ("samples", "max_exhaustive"):  # "1e4" reads as a count
        v = out.get(k)
        if isinstance(v, float) and v.is_integer():
            out[k] = int(v)
    return out


MAX_POINTS = 1_000_000
MAX_COUNT = 10**12
"""Largest sample count in ``measure`` (and label of a replicate): far beyond any run, and
well inside SQLite's 64-bit integers, where results are stored."""


def expand_grid(grid: Any, source: str = "<memory>", where: str = "grid") -> list[dict[str, Any]]:
    """The points of one grid mapping, in order (the last key varies fastest: seeds innermost).

    Order of the product: family, construction, params (in file order), influence, sparsity,
    features, outputs, arity, depth, seeds.

    Example:
        >>> [p["outputs"] for p in expand_grid({"family": "and2", "outputs": [10, 20]})]
        [10, 20]
    """
    from superpose.constructions import CONSTRUCTIONS, DEFAULT_CONSTRUCTION, make_construction
    from superpose.families import FAMILIES, INFLUENCE_PROFILES, PAIR_FAMILIES

    if not isinstance(grid, dict):
        raise SuperposeError(
            f"{_where(source, where)}: expected a mapping, got {type(grid).__name__}"
        )
    _unknown(source, where + ".", grid.keys(), GRID_KEYS)
    w = f"{where}."
    if "family" not in grid:
        raise SuperposeError(f"{source}: missing key {w}family (one of {', '.join(FAMILIES)})")
    families = _check_values(
        source,
        w + "family",
        grid["family"],
        lambda v: v in FAMILIES,
        f"one of {', '.join(FAMILIES)}",
    )
    known = ", ".join(sorted(CONSTRUCTIONS))
    constructions = _check_values(
        source,
        w + "construction",
        grid.get("construction", DEFAULT_CONSTRUCTION),
        lambda v: isinstance(v, str) and v in CONSTRUCTIONS,
        f"a construction name ({known})",
    )

    from superpose.task import MAX_FEATURES, MAX_GATES

    def upto(high: int, low: int = 1) -> Callable[[Any], bool]:
        # Sizes are checked here, where they enter, against the limits of task generation:
        # a point that could never be built must not reach a worker or the results file
        # (SQLite stores 64-bit integers), where it would fail on every rerun.
        return lambda v: _is_int(v) and low <= v <= high

    def check_influence(v: Any) -> bool:
        return isinstance(v, str) and all(part in INFLUENCE_PROFILES for part in v.split("+"))

    outputs = _check_values(
        source,
        w + "outputs",
        grid.get("outputs", None),
        lambda v: v is None or upto(MAX_GATES)(v),
        f"a positive integer (at most {MAX_GATES:,})",
    )
    features = _check_values(
        source,
        w + "features",
        grid.get("features", "same"),
        lambda v: v == "same" or upto(MAX_FEATURES)(v),
        f"a positive integer (at most {MAX_FEATURES:,}) or 'same'",
    )
    sparsity = _check_values(
        source,
        w + "sparsity",
        grid.get("sparsity", 2),
        upto(MAX_FEATURES),
        f"a positive integer (at most {MAX_FEATURES:,})",
    )
    influence = _check_values(
        source,
        w + "influence",
        grid.get("influence", "uniform"),
        check_influence,
        f"an influence profile ({', '.join(INFLUENCE_PROFILES)}, or a mix such as 'uniform+star')",
    )
    arity = _check_values(
        source,
        w + "arity",
        grid.get("arity", 3),
        upto(MAX_FEATURES, 2),
        f"an integer >= 2 (at most {MAX_FEATURES:,})",
    )
    depth = _check_values(
        source,
        w + "depth",
        grid.get("depth", 2),
        upto(MAX_GATES),
        f"a positive integer (at most {MAX_GATES:,})",
    )
    seeds_raw = _as_count(grid.get("seeds", 1))
    if _is_int(seeds_raw):
        if seeds_raw < 1:
            raise SuperposeError(
                f"{_where(source, w + 'seeds')}: expected a positive count, got {seeds_raw}"
            )
        if seeds_raw > MAX_POINTS:
            raise SuperposeError(
                f"{_where(source, w + 'seeds')}: {seeds_raw:,} replicates exceed the limit of "
                f"{MAX_POINTS:,} points per sweep; split the sweep"
            )
        seeds = list(range(seeds_raw))
    else:
        seeds = _check_values(
            source,
            w + "seeds",
            seeds_raw,
            upto(MAX_COUNT, 0),
            f"a count, or a list of replicate labels (integers >= 0, at most {MAX_COUNT:,})",
        )
        if len(set(seeds)) != len(seeds):
            raise SuperposeError(f"{_where(source, w + 'seeds')}: a replicate label appears twice")
    params = grid.get("params", {}) or {}
    if not isinstance(params, dict):
        raise SuperposeError(
            f"{_where(source, w + 'params')}: expected a mapping of construction parameters"
        )
    param_names = list(params)
    for k in param_names:
        if not isinstance(k, str):
            raise SuperposeError(
                f"{_where(source, w + 'params')}: parameter names must be text, got {short_repr(k)}"
            )
    param_values = []
    for k in param_names:
        vals = _as_list(params[k])
        if not vals:
            raise SuperposeError(
                f"{_where(source, w + 'params.' + k)}: an empty list gives no points"
            )
        for v in vals:
            if not (v is None or isinstance(v, (bool, int, float, str))):
                raise SuperposeError(
                    f"{_where(source, w + 'params.' + k)}: values must be numbers, strings "
                    f"or booleans, got {short_repr(v)}"
                )
        param_values.append([_yaml_number(v) for v in vals])
    for con in constructions:
        for combo in itertools.product(*param_values) if param_values else [()]:
            try:
                make_construction(con, **dict(zip(param_names, combo, strict=True)))
            except SuperposeError as exc:
                # The construction's message may quote a (long) value from the file.
                raise SuperposeError(f"{_where(source, w + 'params')}: {_cut(str(exc))}") from None
    total = math.prod(
        len(v)
        for v in (
            families,
            constructions,
            influence,
            sparsity,
            features,
            outputs,
            arity,
            depth,
            seeds,
        )
    ) * math.prod(len(v) for v in param_values)
    if total > MAX_POINTS:
        raise SuperposeError(
            f"{_where(source, w.rstrip('.') or 'grid')}: {total:,} points exceed the limit of "
            f"{MAX_POINTS:,} per sweep; split the sweep"
        )
    points: list[dict[str, Any]] = []
    for fam, con, combo, inf, s, m, mo, k, d, rep in itertools.product(
        families,
        constructions,
        itertools.product(*param_values) if param_values else [()],
        influence,
        sparsity,
        features,
        outputs,
        arity,
        depth,
        seeds,
    ):
        if fam == "uand":
            if m == "same":
                raise SuperposeError(
                    f"{_where(source, w + 'features')}: family 'uand' needs integer features"
                )
            n_out: int | None = None
        else:
            if mo is None:
                raise SuperposeError(f"{source}: missing key {w}outputs (needed by family {fam!r})")
            n_out = mo
        n_feat = n_out if m == "same" else m
        if fam == "permutation":
            n_feat = n_out
        if fam != "permutation" and n_feat is not None and s > n_feat:
            raise SuperposeError(
                f"{_where(source, w + 'sparsity')}: sparsity {s} exceeds features {n_feat}"
            )
        point: dict[str, Any] = {
            "family": fam,
            "features": n_feat,
            "outputs": n_out,
            "sparsity": s,
            "construction": con,
            "params": dict(zip(param_names, combo, strict=True)),
            "seed": rep,
        }
        if fam in PAIR_FAMILIES:
            point["influence"] = inf
        if fam == "kand":
            point["arity"] = k
        if fam == "circuit":
            point["depth"] = d
        points.append(point)
    return points


def canonical_json(value: Any) -> str:
    """The JSON text used for hashing and storage: sorted keys, no spaces."""
    return json.dumps(value, sort_keys=True, separators=(",", ":"), default=_json_default)


def _json_default(value: Any) -> Any:
    if isinstance(value, np.integer):
        return int(value)
    if isinstance(value, np.floating):
        return float(value)
    if isinstance(value, np.bool_):
        return bool(value)
    if isinstance(value, np.ndarray):
        return value.tolist()
    raise TypeError(f"not JSON serialisable: {type(value).__name__}")


def point_key(params: dict[str, Any], measure: dict[str, Any], root_seed: int) -> str:
    """A stable key for a point: SHA-256 of its parameters, the measurements and the root seed.

    Example:
        >>> point_key({"family": "and2"}, {}, 0) == point_key({"family": "and2"}, {}, 0)
        True
    """
    blob = canonical_json({"params": params, "measure": measure, "root_seed": root_seed})
    return hashlib.sha256(blob.encode("utf-8")).hexdigest()[:32]


# --------------------------------------------------------------------------------------
# running one point (in a worker)
# --------------------------------------------------------------------------------------
def _counts_summary(counts: dict[str, Any]) -> dict[str, Any]:
    keep = (
        "layer_widths",
        "input_neurons",
        "hidden_neurons",
        "output_neurons",
        "neurons",
        "step_units",
        "relu_neurons",
        "weight_layers",
        "nonzero_parameters",
        "dense_parameters",
        "bits_per_parameter",
        "description_bits",
    )
    return {k: counts[k] for k in keep if k in counts}


def _bounds_of(net: Any) -> dict[str, Any]:
    try:
        from superpose import bounds as B
    except ImportError:  # pragma: no cover - bounds module missing
        return {"error": "superpose.bounds is not available"}
    try:
        fam = B.family_of_task(net.task)
        bits = B.bits_lower_bound(fam)
        out: dict[str, Any] = {
            "family": fam.name,
            "log2_instances": B.log2_instances(fam),
            "bits_lower_bound": bits,
            # Reference lines (1-bit parameters), the same for every construction:
            "total_neurons_lower_bound_1bit": B.total_neurons_lower_bound(bits, 1.0),
            "parameters_lower_bound_1bit": B.parameters_lower_bound(bits, 1.0),
            "neurons_lower_bound_1layer_1bit": B.neurons_lower_bound(bits, 1, 1.0),
        }
        out["tightness"] = B.tightness(net)
        return out
    except SuperposeError as exc:
        return {"error": str(exc)}


def _naive_of(task: Any) -> dict[str, Any] | None:
    """Counts of the naive network (one ReLU per gate) by formula, for one-level tasks."""
    if task.depth > 1:
        return None
    from superpose.task import OP_CODE

    is_and = task.ops == OP_CODE["and"]
    biases = int(np.count_nonzero(is_and & (task.arity > 1)))
    return {
        "neurons": int(task.features + task.n_outputs),
        "nonzero_parameters": int(task.arity.sum()) + biases,
        "dense_parameters": int(task.features * task.n_outputs + task.n_outputs),
    }


def _verify(
    net: Any, cfg: dict[str, Any], seed: np.random.SeedSequence, jobs: int
) -> dict[str, Any]:
    from superpose.parallel import verify_parallel

    report = verify_parallel(
        net,
        cfg["mode"],
        cfg["samples"],
        seed,
        jobs,
        max_exhaustive=cfg.get("max_exhaustive", DEFAULT_VERIFY["max_exhaustive"]),
    )
    out = report.to_dict()
    out["failing_inputs"] = out["failing_inputs"][:3]
    return out


def _construction_params(construction: str) -> set[str]:
    from superpose.constructions import CONSTRUCTIONS

    cls = CONSTRUCTIONS.get(construction)
    if cls is None:
        return set()
    return set(cls.parameters())


def _supports_width_scale(construction: str) -> bool:
    return "width_scale" in _construction_params(construction)


def _drop_timings(value: Any) -> Any:
    """``value`` without wall-clock fields (keys ending in ``seconds``), recursively."""
    if isinstance(value, dict):
        return {k: _drop_timings(v) for k, v in value.items() if not str(k).endswith("seconds")}
    if isinstance(value, list):
        return [_drop_timings(v) for v in value]
    return value


def width_search(
    task: Any,
    construction: str,
    params: dict[str, Any],
    cfg: dict[str, Any],
    seed: np.random.SeedSequence,
) -> dict[str, Any]:
    """Run :func:`superpose.search.search_width` for one sweep point.

    ``cfg`` holds ``samples``, ``exhaustive``, ``min_scale``, ``max_scale``, ``tolerance``
    and ``max_exhaustive``; the search's integer seed is drawn from ``seed``. Returns the
    search record (probes, chosen and last failing scale) with the chosen network's counts,
    minus wall-clock fields, so the result does not depend on the machine. Constructions
    without a ``width_scale`` give ``{"supported": False}``.
    """
    from superpose.search import WidthSearchError, search_width

    if not _supports_width_scale(construction):
        return {"supported": False}
    fixed = [k for k in ("width_scale", "n_in", "n_hidden", "n_out") if k in params]
    if fixed:
        return {"supported": False, "reason": f"widths fixed by params ({', '.join(fixed)})"}
    int_seed = int(seed.generate_state(1, np.uint64)[0])
    try:
        net, record = search_width(
            task,
            construction,
            samples=cfg["samples"],
            seed=int_seed,
            params=params,
            exhaustive=bool(cfg["exhaustive"]),
            min_scale=float(cfg["min_scale"]),
            max_scale=float(cfg["max_scale"]),
            tolerance=float(cfg["tolerance"]),
            max_exhaustive=int(cfg["max_exhaustive"]),
        )
    except WidthSearchError as exc:
        return {
            "supported": True,
            **_drop_timings(exc.record),
            "found": False,
            "error": str(exc).splitlines()[0],
        }
    out = {"supported": True, **_drop_timings(record)}
    out["counts"] = _counts_summary(net.counts())
    return out


def run_point(
    params: dict[str, Any],
    measure: dict[str, Any],
    seed_entropy: int,
    seed_spawn_key: tuple[int, ...] | list[int],
    *,
    memory_limit: int | None = None,
    force_memory: bool = False,
    jobs: int = 1,
) -> dict[str, Any]:
    """Generate, build and measure one sweep point; never raises for a bad point.

    Returns ``{"status": "ok", "result": ..., "meta": ...}`` or ``{"status": "error",
    "error": message, "meta": ...}``. ``result`` depends only on the arguments (not on the
    process or machine that ran it); ``meta`` holds timings, peak memory and the worker.

    Example:
        >>> out = run_point({"family": "and2", "features": 30, "outputs": 40, "sparsity": 2,
        ...     "construction": "naive", "params": {}, "seed": 0, "influence": "uniform"},
        ...     {"bounds": False, "verify": {"mode": "random", "samples": 50}, "width_search": None}, 0, (0,))
        >>> out["status"], out["result"]["counts"]["neurons"]
        ('ok', 70)
    """
    from superpose import families
    from superpose.constructions import build
    from superpose.memory import check_memory, estimate_task_memory, peak_rss_bytes

    meta: dict[str, Any] = {
        "worker": f"{socket.gethostname()}:{os.getpid()}",
        "started": _now(),
    }
    t0 = time.perf_counter()
    try:
        ss = np.random.SeedSequence(seed_entropy, spawn_key=tuple(seed_spawn_key))
        task_seed, build_seed, verify_seed, search_seed = ss.spawn(4)
        kwargs = {k: params[k] for k in ("influence", "arity", "depth") if k in params}
        task = families.generate(
            params["family"],
            np.random.default_rng(task_seed),
            features=params.get("features"),
            outputs=params.get("outputs"),
            sparsity=params["sparsity"],
            **kwargs,
        )
        con, cparams = params["construction"], dict(params.get("params", {}))
        estimate = estimate_task_memory(task, con, **cparams)
        meta["memory_estimate_bytes"] = estimate.total_bytes
        check_memory(
            estimate, memory_limit, force_memory, what=f"point ({con}, m'={task.n_gates:,})"
        )
        result: dict[str, Any] = {
            "task": {
                "family": params["family"],
                "features": task.features,
                "outputs": task.n_outputs,
                "gates": task.n_gates,
                "sparsity": task.sparsity,
                "depth": task.depth,
                "max_influence": int(task.influence.max(initial=0)),
            },
        }
        t = time.perf_counter()
        net = build(task, con, rng=np.random.default_rng(build_seed), **cparams)
        meta["build_seconds"] = time.perf_counter() - t
        result["counts"] = _counts_summary(net.counts())
        resolved = net.extras.get("resolved") if isinstance(net.extras, dict) else None
        if resolved is not None:
            result["resolved"] = json.loads(canonical_json(resolved))
        result["naive"] = _naive_of(task)
        if measure.get("bounds", True):
            result["bounds"] = _bounds_of(net)
        if measure.get("verify"):
            t = time.perf_counter()
            result["verify"] = _verify(net, measure["verify"], verify_seed, jobs)
            meta["verify_seconds"] = time.perf_counter() - t
            if meta["verify_seconds"] > 0:
                meta["verify_inputs_per_second"] = (
                    result["verify"]["inputs_checked"] / meta["verify_seconds"]
                )
        del net
        if measure.get("width_search"):
            t = time.perf_counter()
            result["width_search"] = width_search(
                task, con, cparams, measure["width_search"], search_seed
            )
            meta["search_seconds"] = time.perf_counter() - t
        status, error = "ok", None
        result = json.loads(canonical_json(result))  # plain JSON types only
    except SuperposeError as exc:
        status, error, result = "error", str(exc), None
    except Exception as exc:  # a bug: keep the sweep going, record where it happened
        tb = traceback.format_exception(type(exc), exc, exc.__traceback__)
        status, error, result = "error", f"{type(exc).__name__}: {exc}\n{''.join(tb[-3:])}", None
    meta["seconds"] = time.perf_counter() - t0
    meta["peak_rss_bytes"] = peak_rss_bytes()
    meta["finished"] = _now()
    out: dict[str, Any] = {"status": status, "meta": meta}
    if status == "ok":
        out["result"] = result
    else:
        out["error"] = error
    return out


def _now() -> str:
    return _dt.datetime.now(_dt.UTC).isoformat(timespec="seconds")


# --------------------------------------------------------------------------------------
# the store
# --------------------------------------------------------------------------------------
_SCHEMA = """
CREATE TABLE IF NOT EXISTS points (
    key TEXT PRIMARY KEY,
    sweep TEXT NOT NULL,
    grid_index INTEGER NOT NULL,
    params TEXT NOT NULL,
    measure TEXT NOT NULL,
    seed_entropy TEXT NOT NULL,
    seed_spawn_key TEXT NOT NULL,
    status TEXT NOT NULL,
    error TEXT,
    result TEXT,
    meta TEXT,
    family TEXT,
    construction TEXT,
    features INTEGER,
    outputs INTEGER,
    sparsity INTEGER,
    replicate INTEGER,
    neurons INTEGER,
    nonzero_parameters INTEGER,
    inputs_checked INTEGER,
    inputs_with_error INTEGER,
    finished_at TEXT NOT NULL
);
CREATE TABLE IF NOT EXISTS sweeps (
    name TEXT PRIMARY KEY,
    source TEXT,
    spec TEXT NOT NULL,
    root_seed TEXT NOT NULL,
    points INTEGER NOT NULL,
    updated_at TEXT NOT NULL
);
CREATE TABLE IF NOT EXISTS info (key TEXT PRIMARY KEY, value TEXT NOT NULL);
"""


_TABLES = ("points", "sweeps", "info")


def _expected_columns() -> dict[str, list[str]]:
    conn = sqlite3.connect(":memory:")
    try:
        conn.executescript(_SCHEMA)
        return {t: [r[1] for r in conn.execute(f"PRAGMA table_info({t})")] for t in _TABLES}
    finally:
        conn.close()


def _listing(names: list[str]) -> str:
    return _cut(", ".join(str(n) for n in names[:20]), 120)


def _check_tables(conn: sqlite3.Connection, path: Path) -> bool:
    """Whether ``conn`` holds superpose's tables (False: no tables at all, a new file).

    Reads only: a file with tables of its own (another program's database, or a ``points``
    table with other columns) is refused before anything is written to it (no tables added,
    no switch to WAL mode).
    """
    names = [r[0] for r in conn.execute("SELECT name FROM sqlite_master WHERE type='table'")]
    if not names:
        return False
    expected = _expected_columns()
    for table in _TABLES:
        if table not in names:
            raise SuperposeError(
                f"{path}: not a superpose results file (it has tables {_listing(names)} "
                f"but no table {table!r}); choose another --results file"
            )
        columns = [r[1] for r in conn.execute(f"PRAGMA table_info({table})")]
        if columns != expected[table]:
            raise SuperposeError(
                f"{path}: not a superpose results file (table {table!r} has columns "
                f"{_listing(columns)}; expected {', '.join(expected[table])})"
            )
    return True


class ResultStore:
    """The SQLite results file: one row per point (``points``), committed row by row (WAL).

    Example:
        >>> import tempfile, os
        >>> with ResultStore(os.path.join(tempfile.mkdtemp(), "r.sqlite")) as store:
        ...     store.finished_keys()
        set()
    """

    def __init__(self, path: str | os.PathLike[str]) -> None:
        self.path = Path(path)
        if self.path.exists() and not self.path.is_file():
            raise SuperposeError(f"{self.path}: exists and is not a file")
        self.path.parent.mkdir(parents=True, exist_ok=True)
        try:
            self.conn = sqlite3.connect(str(self.path), timeout=60, isolation_level=None)
        except sqlite3.Error as exc:
            raise SuperposeError(f"{self.path}: cannot open results ({exc})") from None
        try:
            ours = _check_tables(self.conn, self.path)
            self.conn.execute("PRAGMA journal_mode=WAL")
            self.conn.execute("PRAGMA synchronous=FULL")
            if not ours:  # all tables or none, even if this process is killed meanwhile
                self.conn.executescript("BEGIN;" + _SCHEMA + "COMMIT;")
            version = self.conn.execute(
                "SELECT value FROM info WHERE key='schema_version'"
            ).fetchone()
        except SuperposeError:
            self.conn.close()
            raise
        except sqlite3.DatabaseError as exc:
            self.conn.close()
            raise SuperposeError(f"{self.path}: not a superpose results file ({exc})") from None
        if version is None:
            self.conn.execute(
                "INSERT INTO info VALUES ('schema_version', ?)", (str(SCHEMA_VERSION),)
            )
        elif version[0] != str(SCHEMA_VERSION):
            self.conn.close()
            raise SuperposeError(
                f"{self.path}: results schema version {short_repr(version[0])}; this superpose "
                f"writes version {SCHEMA_VERSION}"
            )

    def __enter__(self) -> ResultStore:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def close(self) -> None:
        self.conn.close()

    def finished_keys(self) -> set[str]:
        """Keys of points finished successfully."""
        return {r[0] for r in self.conn.execute("SELECT key FROM points WHERE status='ok'")}

    def count(self, status: str | None = "ok") -> int:
        if status is None:
            return int(self.conn.execute("SELECT COUNT(*) FROM points").fetchone()[0])
        return int(
            self.conn.execute("SELECT COUNT(*) FROM points WHERE status=?", (status,)).fetchone()[0]
        )

    def record_sweep(self, spec: SweepSpec) -> None:
        self.conn.execute(
            "INSERT INTO sweeps VALUES (?, ?, ?, ?, ?, ?) ON CONFLICT(name) DO UPDATE SET "
            "source=excluded.source, spec=excluded.spec, root_seed=excluded.root_seed, "
            "points=excluded.points, updated_at=excluded.updated_at",
            (
                spec.name,
                spec.source,
                json.dumps(spec.raw, sort_keys=True, default=str),
                str(spec.root_seed),
                len(spec.points),
                _now(),
            ),
        )

    def put(
        self, sweep: str, point: SweepPoint, measure: dict[str, Any], outcome: dict[str, Any]
    ) -> bool:
        """Store one finished point and commit; a point already stored as ``ok`` is never replaced.

        Returns whether the row was written.
        """
        p, res = point.params, outcome.get("result") or {}
        counts = res.get("counts", {})
        ver = res.get("verify") or {}
        row = (
            point.key,
            sweep,
            point.index,
            canonical_json(p),
            canonical_json(measure),
            str(point.seed_entropy),
            canonical_json(list(point.seed_spawn_key)),
            outcome["status"],
            outcome.get("error"),
            canonical_json(res) if outcome["status"] == "ok" else None,
            canonical_json(outcome.get("meta", {})),
            p.get("family"),
            p.get("construction"),
            res.get("task", {}).get("features", p.get("features")),
            res.get("task", {}).get("outputs", p.get("outputs")),
            p.get("sparsity"),
            p.get("seed"),
            counts.get("neurons"),
            counts.get("nonzero_parameters"),
            ver.get("inputs_checked"),
            ver.get("inputs_with_error"),
            _now(),
        )
        cur = self.conn.execute(
            "INSERT INTO points VALUES (" + ",".join("?" * len(row)) + ") "
            "ON CONFLICT(key) DO UPDATE SET sweep=excluded.sweep, grid_index=excluded.grid_index, "
            "seed_entropy=excluded.seed_entropy, seed_spawn_key=excluded.seed_spawn_key, "
            "status=excluded.status, error=excluded.error, result=excluded.result, meta=excluded.meta, "
            "features=excluded.features, outputs=excluded.outputs, neurons=excluded.neurons, "
            "nonzero_parameters=excluded.nonzero_parameters, inputs_checked=excluded.inputs_checked, "
            "inputs_with_error=excluded.inputs_with_error, finished_at=excluded.finished_at "
            "WHERE points.status != 'ok'",
            row,
        )
        return cur.rowcount > 0


_JSON_COLUMNS: dict[str, type] = {
    "params": dict,
    "measure": dict,
    "seed_spawn_key": list,
    "result": dict,
    "meta": dict,
}


def _decode_row(row: sqlite3.Row, path: Path) -> dict[str, Any]:
    """One stored row, its JSON columns decoded, each column checked for its type.

    A results file may have been edited or damaged: every value is checked here, where it is
    read, so that a bad row is one line naming the file, the row and the column.
    """
    out = dict(row)
    rowid = out.pop("_rowid")
    where = f"{path}: results row {rowid} (key {short_repr(out.get('key'), 40)})"

    def bad(column: str, want: str) -> SuperposeError:
        return SuperposeError(
            f"{where}, column {column}: expected {want}, got {short_repr(out[column])}"
        )

    for column in ("key", "sweep", "seed_entropy", "finished_at"):
        if not isinstance(out[column], str):
            raise bad(column, "text")
    if not _is_int(out["grid_index"]):
        raise bad("grid_index", "an integer")
    if out["status"] not in ("ok", "error"):
        raise bad("status", "'ok' or 'error'")
    if out["error"] is not None and not isinstance(out["error"], str):
        raise bad("error", "text")
    for column, kind in _JSON_COLUMNS.items():
        text = out[column]
        if text is None and column in ("result", "meta"):
            continue
        if not isinstance(text, str):
            raise bad(column, "JSON text")
        try:
            value = loads(text, f"{where}, column {column}")
        except json.JSONDecodeError as exc:
            raise SuperposeError(f"{where}, column {column}: not valid JSON ({exc})") from None
        except RecursionError:
            raise SuperposeError(f"{where}, column {column}: JSON nested too deeply") from None
        if not isinstance(value, kind):
            want = "a JSON object" if kind is dict else "a JSON array"
            raise SuperposeError(
                f"{where}, column {column}: expected {want}, got {short_repr(value)}"
            )
        out[column] = value
    if not all(_is_int(v) and v >= 0 for v in out["seed_spawn_key"]):
        raise SuperposeError(
            f"{where}, column seed_spawn_key: expected integers >= 0, "
            f"got {short_repr(out['seed_spawn_key'])}"
        )
    if out["status"] == "ok" and out["result"] is None:
        raise bad("result", "the result of a finished point")
    return out


def read_results(path: str | os.PathLike[str], status: str | None = "ok") -> list[dict[str, Any]]:
    """Every stored point (decoded JSON columns), in sweep and grid order.

    Every row is checked (not only those with ``status``), so a damaged file is refused
    whichever rows are asked for.

    Example:
        >>> import tempfile, os
        >>> p = os.path.join(tempfile.mkdtemp(), "r.sqlite")
        >>> ResultStore(p).close(); read_results(p)
        []
    """
    p = Path(path)
    if not p.is_file():
        raise SuperposeError(f"{p}: no such results file (run 'superpose sweep' first)")
    try:
        conn = sqlite3.connect(f"file:{p.resolve()}?mode=ro", uri=True, timeout=60)
    except sqlite3.Error as exc:
        raise SuperposeError(f"{p}: cannot open results ({exc})") from None
    conn.row_factory = sqlite3.Row
    try:
        if not _check_tables(conn, p):
            raise SuperposeError(f"{p}: not a superpose results file (it has no tables)")
        query = "SELECT rowid AS _rowid, * FROM points ORDER BY sweep, grid_index, key"
        rows = [_decode_row(r, p) for r in conn.execute(query)]
    except sqlite3.DatabaseError as exc:
        raise SuperposeError(f"{p}: not a superpose results file ({exc})") from None
    finally:
        conn.close()
    return [r for r in rows if status is None or r["status"] == status]


def result_table(path: str | os.PathLike[str]) -> list[dict[str, Any]]:
    """The machine-independent part of a results file: key, parameters, seed, status and result.

    Timings, peak memory and the worker that ran each point (``meta``) are left out, so two
    runs of one sweep on different executors give equal tables.
    """
    keep = (
        "key",
        "sweep",
        "grid_index",
        "params",
        "measure",
        "seed_entropy",
        "seed_spawn_key",
        "status",
        "error",
        "result",
    )
    rows = read_results(path, status=None)
    return sorted(({k: r[k] for k in keep} for r in rows), key=lambda r: r["key"])


# --------------------------------------------------------------------------------------
# executors
# --------------------------------------------------------------------------------------
class SerialExecutor(Executor):
    """A ``concurrent.futures`` executor that runs each call at once, in this process.

    Example:
        >>> SerialExecutor().submit(pow, 2, 10).result()
        1024
    """

    def submit(self, fn: Callable[..., Any], /, *args: Any, **kwargs: Any) -> Future[Any]:
        fut: Future[Any] = Future()
        fut.set_running_or_notify_cancel()
        try:
            value = fn(*args, **kwargs)
        except Exception as exc:  # KeyboardInterrupt propagates to the caller
            fut.set_exception(exc)
        else:
            fut.set_result(value)
        return fut


def _ignore_sigint() -> None:
    signal.signal(signal.SIGINT, signal.SIG_IGN)


@dataclass
class ExecutorHandle:
    """An executor plus how to stop it now (on Ctrl-C) and how many points it runs at once."""

    executor: Executor
    kind: str
    workers: int
    stop_now: Callable[[], None]
    close: Callable[[], None]


@contextlib.contextmanager
def open_executor(
    kind: str = "serial",
    *,
    jobs: int | None = None,
    address: str | None = None,
    connect_timeout: float = 30.0,
) -> Iterator[ExecutorHandle]:
    """A ``serial``, ``process`` or ``dask`` executor, shut down on exit.

    ``dask`` starts a ``LocalCluster`` of ``jobs`` single-threaded worker processes, or
    connects to the scheduler at ``address`` (``tcp://HOST:PORT``), waiting at most
    ``connect_timeout`` seconds for it.
    """
    if kind not in EXECUTORS:
        raise SuperposeError(f"unknown executor {kind!r} (known: {', '.join(EXECUTORS)})")
    if address is not None and kind != "dask":
        raise SuperposeError("--address needs --executor dask")
    if jobs is not None and (isinstance(jobs, bool) or not isinstance(jobs, int) or jobs < 1):
        raise SuperposeError(f"--jobs must be a positive integer, got {jobs!r}")
    if kind == "serial":
        ex = SerialExecutor()
        handle = ExecutorHandle(ex, kind, 1, lambda: None, lambda: None)
        yield handle
        return
    if kind == "process":
        from superpose.parallel import terminate_pool

        workers = jobs or os.cpu_count() or 1
        method = "fork" if "fork" in multiprocessing.get_all_start_methods() else "spawn"
        pool = ProcessPoolExecutor(
            max_workers=workers,
            mp_context=multiprocessing.get_context(method),
            initializer=_ignore_sigint,
        )
        handle = ExecutorHandle(
            pool, kind, workers, lambda: terminate_pool(pool), lambda: pool.shutdown(wait=True)
        )
        try:
            yield handle
        finally:
            handle.close()
        return
    try:
        from distributed import Client, LocalCluster
    except ImportError:
        raise SuperposeError(
            "the dask executor needs the optional extra: pip install 'superpose[dask]'"
        ) from None
    cluster = None
    try:
        if address is None:
            cluster = LocalCluster(
                n_workers=jobs or os.cpu_count() or 1,
                threads_per_worker=1,
                processes=True,
                dashboard_address=None,
            )
            client = Client(cluster)
        else:
            client = Client(address, timeout=connect_timeout)
    except OSError as exc:
        if cluster is not None:
            cluster.close()
        raise SuperposeError(f"cannot reach the dask scheduler at {address}: {exc}") from None
    try:
        workers = max(
            1,
            sum(w.get("nthreads", 1) for w in client.scheduler_info().get("workers", {}).values()),
        )
        ex = client.get_executor(pure=False)

        def stop() -> None:
            ex.shutdown(wait=False)

        handle = ExecutorHandle(ex, kind, workers, stop, lambda: ex.shutdown(wait=True))
        yield handle
    finally:
        client.close()
        if cluster is not None:
            cluster.close()


# --------------------------------------------------------------------------------------
# running a sweep
# --------------------------------------------------------------------------------------
@dataclass
class SweepSummary:
    """What a sweep run did."""

    total: int
    skipped: int
    computed: int = 0
    errors: int = 0
    results: str = ""
    seconds: float = 0.0
    error_messages: list[str] = field(default_factory=list)

    def to_dict(self) -> dict[str, Any]:
        return {
            "total": self.total,
            "skipped": self.skipped,
            "computed": self.computed,
            "errors": self.errors,
            "results": self.results,
            "seconds": self.seconds,
            "error_messages": self.error_messages[:10],
        }


class SweepInterrupted(KeyboardInterrupt):
    """Ctrl-C during a sweep; carries how many points were saved."""

    def __init__(self, summary: SweepSummary) -> None:
        super().__init__(f"interrupted: {summary.computed + summary.errors} points saved this run")
        self.summary = summary


def pending_points(spec: SweepSpec, results: str | os.PathLike[str]) -> list[SweepPoint]:
    """The points of ``spec`` not yet finished in ``results`` (all of them if it does not exist)."""
    if not Path(results).exists():
        return list(spec.points)
    with ResultStore(results) as store:
        done = store.finished_keys()
    return [p for p in spec.points if p.key not in done]


def run_sweep(
    spec: SweepSpec,
    results: str | os.PathLike[str] = DEFAULT_RESULTS,
    *,
    executor: str | Executor = "serial",
    address: str | None = None,
    jobs: int | None = None,
    force_memory: bool = False,
    connect_timeout: float = 30.0,
    progress: Callable[[SweepPoint, dict[str, Any]], None] | None = None,
) -> SweepSummary:
    """Run every unfinished point of ``spec``, storing each in ``results`` as it finishes.

    ``executor`` is ``serial``, ``process``, ``dask`` or any ``concurrent.futures.Executor``.
    With ``serial``, ``jobs`` > 1 verifies each point on that many processes; otherwise it is
    the number of workers. ``progress(point, outcome)`` is called after each stored point.
    Before building, each point's memory is estimated (:mod:`superpose.memory`) and the point
    is refused (stored as an error) above the limit: the spec's ``memory_limit``, else 80% of
    the worker machine's memory (shared among local process workers); ``force_memory``
    skips the check.
    Ctrl-C stops at once (running points are abandoned, finished ones are kept) and raises
    :class:`SweepInterrupted`.
    """
    t0 = time.perf_counter()
    store = ResultStore(results)
    summary = SweepSummary(total=len(spec.points), skipped=0, results=str(results))
    try:
        store.record_sweep(spec)
        done = store.finished_keys()
        todo = [p for p in spec.points if p.key not in done]
        summary.skipped = len(spec.points) - len(todo)
        if not todo:
            return summary
        if isinstance(executor, Executor):
            ctx: Any = contextlib.nullcontext(
                ExecutorHandle(
                    executor,
                    "custom",
                    jobs or 2,
                    lambda: executor.shutdown(wait=False, cancel_futures=True),
                    lambda: None,
                )
            )
        else:
            ctx = open_executor(
                executor, jobs=jobs, address=address, connect_timeout=connect_timeout
            )
        with ctx as handle:
            inner_jobs = (jobs or 1) if handle.kind == "serial" else 1
            _drive(spec, todo, handle, store, summary, force_memory, inner_jobs, progress)
    finally:
        store.close()
        summary.seconds = time.perf_counter() - t0
    return summary


def _drive(
    spec: SweepSpec,
    todo: list[SweepPoint],
    handle: ExecutorHandle,
    store: ResultStore,
    summary: SweepSummary,
    force_memory: bool,
    inner_jobs: int,
    progress: Callable[[SweepPoint, dict[str, Any]], None] | None,
) -> None:
    window = 1 if handle.kind == "serial" else 2 * handle.workers
    memory_limit = spec.memory_limit
    if memory_limit is None and handle.kind == "process":
        from superpose.memory import default_limit_bytes

        # Local workers share this machine: each point gets its share of the limit.
        memory_limit = default_limit_bytes() // handle.workers
    pending: dict[Future[Any], SweepPoint] = {}
    queue = iter(todo)

    def fill() -> None:
        while len(pending) < window:
            point = next(queue, None)
            if point is None:
                return
            fut = handle.executor.submit(
                run_point,
                point.params,
                spec.measure,
                point.seed_entropy,
                point.seed_spawn_key,
                memory_limit=memory_limit,
                force_memory=force_memory,
                jobs=inner_jobs,
            )
            pending[fut] = point

    def store_outcome(point: SweepPoint, outcome: dict[str, Any]) -> None:
        store.put(spec.name, point, spec.measure, outcome)
        if outcome["status"] == "ok":
            summary.computed += 1
        else:
            summary.errors += 1
            summary.error_messages.append(
                f"{point.label()}: {str(outcome.get('error')).splitlines()[0]}"
            )
        if progress is not None:
            progress(point, outcome)

    try:
        fill()
        while pending:
            done, _ = wait(pending, timeout=0.5, return_when=FIRST_COMPLETED)
            for fut in done:
                point = pending.pop(fut)
                try:
                    outcome = fut.result()
                except BrokenExecutor as exc:  # a worker process died (killed, out of memory)
                    with contextlib.suppress(Exception):
                        handle.stop_now()
                    raise SuperposeError(
                        f"a worker died while running {point.label()} ({type(exc).__name__}); "
                        f"{summary.computed + summary.errors} points saved this run to {summary.results}; "
                        "rerun the same command to resume"
                    ) from None
                except Exception as exc:  # the task failed outside run_point (e.g. pickling)
                    outcome = {
                        "status": "error",
                        "error": f"worker failed: {type(exc).__name__}: {exc}",
                        "meta": {},
                    }
                store_outcome(point, outcome)
            fill()
    except KeyboardInterrupt:
        for fut in pending:
            fut.cancel()
        with contextlib.suppress(Exception):
            handle.stop_now()
        raise SweepInterrupted(summary) from None


__all__ = [
    "EXECUTORS",
    "ResultStore",
    "SerialExecutor",
    "SweepInterrupted",
    "SweepPoint",
    "SweepSpec",
    "SweepSummary",
    "canonical_json",
    "expand_grid",
    "load_spec",
    "open_executor",
    "parse_spec",
    "pending_points",
    "point_key",
    "read_results",
    "result_table",
    "run_point",
    "run_sweep",
    "width_search",
]
