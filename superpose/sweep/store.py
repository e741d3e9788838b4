"""The SQLite results store: one row per finished point, WAL mode, every row checked when read back."""

from __future__ import annotations

import json
import os
import sqlite3
from pathlib import Path
from typing import TYPE_CHECKING, Any

from superpose._inputs import loads, short_repr
from superpose.errors import SuperposeError
from superpose.sweep.spec import (
    SCHEMA_VERSION,
    SweepPoint,
    SweepSpec,
    _cut,
    _is_int,
    _now,
    canonical_json,
)

if TYPE_CHECKING:
    from superpose.sweep.point import PointOutcome

_SCHEMA = """
CREATE TABLE IF NOT EXISTS points (
    key TEXT PRIMARY KEY,
    sweep TEXT NOT NULL,
    grid_index INTEGER NOT NULL,
    params TEXT NOT NULL,
    measure TEXT NOT NULL,
    seed_root TEXT NOT NULL,
    seed_path TEXT NOT NULL,
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


_V1_NAMES = {"seed_root": "seed_entropy", "seed_path": "seed_spawn_key"}
"""Schema version 1's names of the seed columns (same values: the root seed, the path)."""


def _expected_columns(version: int = SCHEMA_VERSION) -> dict[str, list[str]]:
    conn = sqlite3.connect(":memory:")
    try:
        conn.executescript(_SCHEMA)
        out = {t: [r[1] for r in conn.execute(f"PRAGMA table_info({t})")] for t in _TABLES}
    finally:
        conn.close()
    if version == 1:
        out["points"] = [_V1_NAMES.get(c, c) for c in out["points"]]
    return out


def _migrate_v1(conn: sqlite3.Connection) -> None:
    """Rename version 1's seed columns in one transaction (every row kept, values unchanged)."""
    statements = [
        f"ALTER TABLE points RENAME COLUMN {old} TO {new}" for new, old in _V1_NAMES.items()
    ]
    statements.append(
        f"UPDATE info SET value = '{SCHEMA_VERSION}' WHERE key = 'schema_version' AND value = '1'"
    )
    conn.executescript("BEGIN IMMEDIATE;" + ";".join(statements) + ";COMMIT;")


def _listing(names: list[str]) -> str:
    return _cut(", ".join(str(n) for n in names[:20]), 120)


def _check_tables(conn: sqlite3.Connection, path: Path) -> int:
    """The layout of superpose's tables in ``conn``: :data:`SCHEMA_VERSION`, or 1 (the seed
    columns' old names), or 0 for no tables at all (a new file).

    Reads only: a file with tables of its own (another program's database, or a ``points``
    table with other columns) is refused before anything is written to it (no tables added,
    no switch to WAL mode).
    """
    names = [r[0] for r in conn.execute("SELECT name FROM sqlite_master WHERE type='table'")]
    if not names:
        return 0
    if [r[1] for r in conn.execute("PRAGMA table_info(points)")] == _expected_columns(1)["points"]:
        layout = 1
    else:
        layout = SCHEMA_VERSION
    expected = _expected_columns(layout)
    for table in _TABLES:
        if table not in names:
            raise SuperposeError(
                f"{path}: not a superpose results file (it has tables {_listing(names)} "
                f"but no table {table!r}); choose another results file",
                cli="--results",
            )
        columns = [r[1] for r in conn.execute(f"PRAGMA table_info({table})")]
        if columns != expected[table]:
            raise SuperposeError(
                f"{path}: not a superpose results file (table {table!r} has columns "
                f"{_listing(columns)}; expected {', '.join(expected[table])})"
            )
    return layout


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
            layout = _check_tables(self.conn, self.path)
            version = None
            if layout:
                version = self.conn.execute(
                    "SELECT value FROM info WHERE key='schema_version'"
                ).fetchone()
            if layout == 1 and version is not None and version[0] != "1":
                raise SuperposeError(
                    f"{self.path}: results schema version {short_repr(version[0])} with the "
                    f"seed columns of version 1"
                )
            self.conn.execute("PRAGMA journal_mode=WAL")
            self.conn.execute("PRAGMA synchronous=FULL")
            if not layout:  # all tables or none, even if this process is killed meanwhile
                self.conn.executescript("BEGIN;" + _SCHEMA + "COMMIT;")
            elif layout == 1:  # a resumed version-1 sweep keeps every row
                _migrate_v1(self.conn)
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
        self, sweep: str, point: SweepPoint, measure: dict[str, Any], outcome: PointOutcome
    ) -> bool:
        """Store one finished point and commit; a point already stored as ``ok`` is never replaced.

        Returns whether the row was written.
        """
        p, res = point.params, outcome.result or {}
        counts = res.get("counts", {})
        ver = res.get("verify") or {}
        row = (
            point.key,
            sweep,
            point.index,
            canonical_json(p),
            canonical_json(measure),
            str(point.seed_root),
            canonical_json(list(point.seed_path)),
            outcome.status,
            outcome.error,
            canonical_json(res) if outcome.ok else None,
            canonical_json(outcome.meta),
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
            "seed_root=excluded.seed_root, seed_path=excluded.seed_path, "
            "status=excluded.status, error=excluded.error, result=excluded.result, meta=excluded.meta, "
            "features=excluded.features, outputs=excluded.outputs, neurons=excluded.neurons, "
            "nonzero_parameters=excluded.nonzero_parameters, inputs_checked=excluded.inputs_checked, "
            "inputs_with_error=excluded.inputs_with_error, finished_at=excluded.finished_at "
            "WHERE points.status != 'ok'",
            row,
        )
        return cur.rowcount > 0


_V1_TO_NOW = {old: new for new, old in _V1_NAMES.items()}

_JSON_COLUMNS: dict[str, type] = {
    "params": dict,
    "measure": dict,
    "seed_path": list,
    "result": dict,
    "meta": dict,
}


def _decode_row(row: sqlite3.Row, path: Path) -> dict[str, Any]:
    """One stored row, its JSON columns decoded, each column checked for its type.

    A results file may have been edited or damaged: every value is checked here, where it is
    read, so that a bad row is one line naming the file, the row and the column.
    """
    out = {_V1_TO_NOW.get(k, k): v for k, v in dict(row).items()}  # version 1: old names
    rowid = out.pop("_rowid")
    where = f"{path}: results row {rowid} (key {short_repr(out.get('key'), 40)})"

    def bad(column: str, want: str) -> SuperposeError:
        return SuperposeError(
            f"{where}, column {column}: expected {want}, got {short_repr(out[column])}"
        )

    for column in ("key", "sweep", "seed_root", "finished_at"):
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
    if not all(_is_int(v) and v >= 0 for v in out["seed_path"]):
        raise SuperposeError(
            f"{where}, column seed_path: expected integers >= 0, got {short_repr(out['seed_path'])}"
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
        "seed_root",
        "seed_path",
        "status",
        "error",
        "result",
    )
    rows = read_results(path, status=None)
    return sorted(({k: r[k] for k in keep} for r in rows), key=lambda r: r["key"])
