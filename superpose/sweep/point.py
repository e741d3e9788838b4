"""Running one point of a sweep (in a worker): build, bounds, verification, width search."""

from __future__ import annotations

import json
import os
import socket
import time
import traceback
from dataclasses import dataclass
from typing import Any

import numpy as np

from superpose.errors import SuperposeError
from superpose.network import Counts
from superpose.seeds import Seeds
from superpose.sweep.spec import DEFAULT_VERIFY, _now, canonical_json


def _counts_summary(counts: Counts) -> dict[str, Any]:
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
    every = counts.to_dict()
    return {k: every[k] for k in keep}


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


def _supports_width_scale(construction: str) -> bool:
    from superpose.constructions import CONSTRUCTIONS

    cls = CONSTRUCTIONS.get(construction)
    return cls is not None and cls.grows()


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


@dataclass(frozen=True)
class PointOutcome:
    """What running one point gives: ``status`` ``"ok"`` with its ``result`` (plain JSON, a
    function of the point's arguments only) or ``"error"`` with a one-line ``error``; ``meta``
    holds timings, peak memory and the worker (never part of the result)."""

    status: str
    meta: dict[str, Any]
    result: dict[str, Any] | None = None
    error: str | None = None

    @property
    def ok(self) -> bool:
        return self.status == "ok"

    def to_dict(self) -> dict[str, Any]:
        """``{"status", "meta", "result"}`` or ``{"status", "meta", "error"}``."""
        out: dict[str, Any] = {"status": self.status, "meta": self.meta}
        if self.ok:
            out["result"] = self.result
        else:
            out["error"] = self.error
        return out


def run_point(
    params: dict[str, Any],
    measure: dict[str, Any],
    seed_root: int,
    seed_path: tuple[int, ...] | list[int],
    *,
    memory_limit: int | None = None,
    force_memory: bool = False,
    jobs: int = 1,
) -> PointOutcome:
    """Generate, build and measure one sweep point; never raises for a bad point.

    Returns a :class:`PointOutcome`: ``ok`` with the ``result`` (which depends only on the
    arguments, not on the process or machine that ran it) or ``error`` with the message.

    Example:
        >>> out = run_point({"family": "and2", "features": 30, "outputs": 40, "sparsity": 2,
        ...     "construction": "naive", "params": {}, "seed": 0, "influence": "uniform"},
        ...     {"bounds": False, "verify": {"mode": "random", "samples": 50}, "width_search": None}, 0, (0,))
        >>> out.status, out.result["counts"]["neurons"]
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
        seeds = Seeds(seed_root).child(*seed_path)
        kwargs = families.family_spec(params["family"]).knob_values(**params)
        task = families.generate(
            params["family"],
            seeds.rng("task"),
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
        net = build(task, con, rng=seeds.rng("build"), **cparams)
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
            result["verify"] = _verify(net, measure["verify"], seeds.sequence("verify"), jobs)
            meta["verify_seconds"] = time.perf_counter() - t
            if meta["verify_seconds"] > 0:
                meta["verify_inputs_per_second"] = (
                    result["verify"]["inputs_checked"] / meta["verify_seconds"]
                )
        del net
        if measure.get("width_search"):
            t = time.perf_counter()
            result["width_search"] = width_search(
                task, con, cparams, measure["width_search"], seeds.sequence("search")
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
    return PointOutcome(status, meta, result if status == "ok" else None, error)
