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
seed) and its seeds: ``Seeds(root_seed).child(index)`` for the point's index in grid order
(:mod:`superpose.seeds`; the row stores the root and the index as ``seed_root`` and
``seed_path``), whose named streams (``task``, ``build``, ``verify``, ``search``) are
independent of every other point's, so a point's results do not depend on which worker ran it. Results go to SQLite in WAL mode, one row per finished point, committed as each point
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

from superpose.sweep.driver import SweepInterrupted, SweepSummary, pending_points, run_sweep
from superpose.sweep.executors import (
    ExecutorHandle,
    SerialExecutor,
    open_executor,
)
from superpose.sweep.point import PointOutcome, run_point, width_search
from superpose.sweep.spec import (
    DEFAULT_RESULTS,
    DEFAULT_SEARCH,
    DEFAULT_VERIFY,
    EXECUTORS,
    GRID_KEYS,
    MAX_ALIAS_EXPANSION,
    MAX_COUNT,
    MAX_NESTING,
    MAX_POINTS,
    MEASURE_KEYS,
    SCHEMA_VERSION,
    SEARCH_KEYS,
    TOP_KEYS,
    VERIFY_KEYS,
    SweepPoint,
    SweepSpec,
    canonical_json,
    expand_grid,
    load_spec,
    parse_spec,
    point_key,
)
from superpose.sweep.store import ResultStore, read_results, result_table

__all__ = [
    "canonical_json",
    "DEFAULT_RESULTS",
    "DEFAULT_SEARCH",
    "DEFAULT_VERIFY",
    "ExecutorHandle",
    "EXECUTORS",
    "expand_grid",
    "GRID_KEYS",
    "load_spec",
    "MAX_ALIAS_EXPANSION",
    "MAX_COUNT",
    "MAX_NESTING",
    "MAX_POINTS",
    "MEASURE_KEYS",
    "open_executor",
    "parse_spec",
    "pending_points",
    "point_key",
    "PointOutcome",
    "read_results",
    "result_table",
    "ResultStore",
    "run_point",
    "run_sweep",
    "SCHEMA_VERSION",
    "SEARCH_KEYS",
    "SerialExecutor",
    "SweepInterrupted",
    "SweepPoint",
    "SweepSpec",
    "SweepSummary",
    "TOP_KEYS",
    "VERIFY_KEYS",
    "width_search",
]
