"""The sweep file: grid and measurements parsed, checked and expanded into points with keys and seeds."""

from __future__ import annotations

import copy
import datetime as _dt
import difflib
import hashlib
import itertools
import json
import math
import os
import re
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, NamedTuple

from superpose._inputs import check_int_digits, read_bytes, short_repr
from superpose._numeric import json_default
from superpose.errors import SuperposeError

EXECUTORS = ("serial", "process", "dask")
SCHEMA_VERSION = 2
"""2: the seed columns are `seed_root`, `seed_path` (Seeds.record()); 1 named them `seed_entropy`,
`seed_spawn_key` (a version-1 file is migrated on open for writing, read as it is)."""
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


@dataclass(frozen=True)
class SweepPoint:
    """One point of a sweep: its parameters, key and seeds (``Seeds(seed_root).child(*seed_path)``)."""

    index: int
    params: dict[str, Any]
    key: str
    seed_root: int
    seed_path: tuple[int, ...]

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
        >>> [(p.params["outputs"], p.params["seed"], p.seed_path) for p in s.points]
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


def _upto(high: int, low: int = 1) -> Callable[[Any], bool]:
    # Sizes are checked where they enter, against the limits of task generation: a point
    # that could never be built must not reach a worker or the results file (SQLite stores
    # 64-bit integers), where it would fail on every rerun.
    return lambda v: _is_int(v) and low <= v <= high


def expand_grid(grid: Any, source: str = "<memory>", where: str = "grid") -> list[dict[str, Any]]:
    """The points of one grid mapping, in order (the last key varies fastest: seeds innermost).

    Order of the product: family, construction, params (in file order), influence, sparsity,
    features, outputs, arity, depth, seeds.

    Example:
        >>> [p["outputs"] for p in expand_grid({"family": "and2", "outputs": [10, 20]})]
        [10, 20]
    """
    if not isinstance(grid, dict):
        raise SuperposeError(
            f"{_where(source, where)}: expected a mapping, got {type(grid).__name__}"
        )
    _unknown(source, where + ".", grid.keys(), GRID_KEYS)
    w = f"{where}."
    families, constructions = _grid_names(grid, source, w)
    axes = _grid_axes(grid, source, w, families)
    seeds = _grid_replicates(grid, source, w)
    param_names, param_values = _grid_params(grid, source, w, constructions)
    # Every axis but the construction parameters, in the order points are enumerated.
    rest = (
        axes.influence,
        axes.sparsity,
        axes.features,
        axes.outputs,
        axes.arity,
        axes.depth,
        seeds,
    )
    total = math.prod(len(v) for v in (families, constructions, *rest, *param_values))
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
        *rest,
    ):
        point = _grid_point(
            fam,
            con,
            dict(zip(param_names, combo, strict=True)),
            inf,
            s,
            m,
            mo,
            k,
            d,
            rep,
            source,
            w,
        )
        points.append(point)
    return points


def _grid_names(grid: dict[str, Any], source: str, w: str) -> tuple[list[Any], list[Any]]:
    """The families (required) and constructions (default: the library's) a grid names,
    checked against the registries so that a typo fails before any point runs."""
    from superpose.constructions import CONSTRUCTIONS, DEFAULT_CONSTRUCTION
    from superpose.families import FAMILIES

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
    return families, constructions


class _Axes(NamedTuple):
    """A grid's task axes, each a list of values (one per point coordinate)."""

    outputs: list[Any]
    features: list[Any]
    sparsity: list[Any]
    influence: list[Any]
    arity: list[Any]
    depth: list[Any]


def _grid_axes(grid: dict[str, Any], source: str, w: str, families: list[Any]) -> _Axes:
    """A grid's task axes with their defaults, every value checked against the limits of
    task generation (a point that could never be built must not reach a worker or the
    results file). Influence is checked against any named family's profiles here; each
    point checks it against its own family."""
    from superpose.families import FAMILY_SPECS
    from superpose.task import MAX_FEATURES, MAX_GATES

    profiles = tuple(dict.fromkeys(p for f in families for p in FAMILY_SPECS[f].influence_profiles))
    profiles = profiles or ("uniform",)

    def check_influence(v: Any) -> bool:
        return isinstance(v, str) and all(part in profiles for part in v.split("+"))

    outputs = _check_values(
        source,
        w + "outputs",
        grid.get("outputs", None),
        lambda v: v is None or _upto(MAX_GATES)(v),
        f"a positive integer (at most {MAX_GATES:,})",
    )
    features = _check_values(
        source,
        w + "features",
        grid.get("features", "same"),
        lambda v: v == "same" or _upto(MAX_FEATURES)(v),
        f"a positive integer (at most {MAX_FEATURES:,}) or 'same'",
    )
    sparsity = _check_values(
        source,
        w + "sparsity",
        grid.get("sparsity", 2),
        _upto(MAX_FEATURES),
        f"a positive integer (at most {MAX_FEATURES:,})",
    )
    influence = _check_values(
        source,
        w + "influence",
        grid.get("influence", "uniform"),
        check_influence,
        f"an influence profile ({', '.join(profiles)}, or a mix joined with '+')",
    )
    arity = _check_values(
        source,
        w + "arity",
        grid.get("arity", 3),
        _upto(MAX_FEATURES, 2),
        f"an integer >= 2 (at most {MAX_FEATURES:,})",
    )
    depth = _check_values(
        source,
        w + "depth",
        grid.get("depth", 2),
        _upto(MAX_GATES),
        f"a positive integer (at most {MAX_GATES:,})",
    )
    return _Axes(outputs, features, sparsity, influence, arity, depth)


def _grid_replicates(grid: dict[str, Any], source: str, w: str) -> list[Any]:
    """The replicate labels of a grid: ``seeds: n`` (0..n-1) or a list of distinct labels."""
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
            _upto(MAX_COUNT, 0),
            f"a count, or a list of replicate labels (integers >= 0, at most {MAX_COUNT:,})",
        )
        if len(set(seeds)) != len(seeds):
            raise SuperposeError(f"{_where(source, w + 'seeds')}: a replicate label appears twice")
    return seeds


def _grid_params(
    grid: dict[str, Any], source: str, w: str, constructions: list[Any]
) -> tuple[list[str], list[list[Any]]]:
    """The construction parameters of a grid (names, value lists), each combination checked
    against every construction of the grid before anything runs."""
    from superpose.constructions import make_construction

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
    return param_names, param_values


def _grid_point(
    fam: str,
    con: str,
    params: dict[str, Any],
    inf: Any,
    s: Any,
    m: Any,
    mo: Any,
    k: Any,
    d: Any,
    rep: Any,
    source: str,
    w: str,
) -> dict[str, Any]:
    """One point of a grid: the family decides which sizes and knobs it takes
    (:class:`superpose.families.FamilySpec`; the point records exactly those knobs)."""
    from superpose.families import FAMILY_SPECS

    spec = FAMILY_SPECS[fam]
    if spec.sizes == "features":
        if m == "same":
            raise SuperposeError(
                f"{_where(source, w + 'features')}: family {fam!r} needs integer features"
            )
        n_out: int | None = None
    else:
        if mo is None:
            raise SuperposeError(f"{source}: missing key {w}outputs (needed by family {fam!r})")
        n_out = mo
    n_feat = n_out if m == "same" or spec.sizes == "outputs" else m
    if spec.sizes != "outputs" and n_feat is not None and s > n_feat:
        raise SuperposeError(
            f"{_where(source, w + 'sparsity')}: sparsity {s} exceeds features {n_feat}"
        )
    if "influence" in spec.knobs and not spec.check_influence(inf):
        raise SuperposeError(
            f"{_where(source, w + 'influence')}: family {fam!r} draws the profiles "
            f"{', '.join(spec.influence_profiles)} (joined with '+'), got {short_repr(inf)}"
        )
    point: dict[str, Any] = {
        "family": fam,
        "features": n_feat,
        "outputs": n_out,
        "sparsity": s,
        "construction": con,
        "params": params,
        "seed": rep,
    }
    point.update(spec.knob_values(influence=inf, arity=k, depth=d))
    return point


def canonical_json(value: Any) -> str:
    """The JSON text used for hashing and storage: sorted keys, no spaces."""
    return json.dumps(value, sort_keys=True, separators=(",", ":"), default=json_default)


def point_key(params: dict[str, Any], measure: dict[str, Any], root_seed: int) -> str:
    """A stable key for a point: SHA-256 of its parameters, the measurements and the root seed.

    Example:
        >>> point_key({"family": "and2"}, {}, 0) == point_key({"family": "and2"}, {}, 0)
        True
    """
    blob = canonical_json({"params": params, "measure": measure, "root_seed": root_seed})
    return hashlib.sha256(blob.encode("utf-8")).hexdigest()[:32]


def _now() -> str:
    return _dt.datetime.now(_dt.UTC).isoformat(timespec="seconds")
