"""The ``circuit`` construction class: parameters, checks, and the steps of plan, sizing, build."""

from __future__ import annotations

from typing import Any

import numpy as np
from scipy import sparse

from superpose.codes import BloomCode
from superpose.constructions.base import Capabilities, Construction
from superpose.constructions.circuit.build import (
    _detectors,
    _inhibit,
    _parts,
    _private_stage,
)
from superpose.constructions.circuit.plan import (
    CARRIES,
    MAX_DEPTH,
    SIZINGS,
    Stage,
    held_nodes,
    plan_stages,
)
from superpose.constructions.circuit.sizing import (
    _SIZING_MEMO,
    CERTIFIABLE,
    CIRCUIT_FAILURE,
    ELL_GRID,
    _active_in,
    _best_resolve,
    size_plan,
)
from superpose.constructions.superposed import (
    _Certified,
    input_code_for,
    threshold_stage,
)
from superpose.errors import SuperposeError
from superpose.levels import (
    DEFAULT_MAX_CANDIDATES,
    ActiveBounds,
    Layout,
    active_bounds,
    layout,
)
from superpose.network import Layer, Network
from superpose.task import OP_CODE, Task, n_sparse_inputs


class Circuit(_Certified):
    """Deep superposed network: one Bloom-coded threshold layer per circuit level (copy/and/or).

    Example:
        >>> from superpose import families
        >>> from superpose.verification import verify
        >>> task = families.layered_circuit(20, 10, 3, np.random.default_rng(0), ops=("and", "or"))
        >>> net = Circuit().build(task, np.random.default_rng(1))
        >>> len(net.layers), verify(net, "exhaustive").inputs_with_error
        (3, 0)
    """

    name = "circuit"
    capabilities = Capabilities(
        max_arity=(("xor", 2),), max_depth=MAX_DEPTH, tags=frozenset({"superposed", "deep"})
    )

    def __init__(
        self,
        max_active: int = 256,
        failure: float | None = None,
        heavy_share: float = 0.3,
        width_scale: float = 1.0,
        sizing: str = "bound",
        cleanup: int = 0,
        ell: int | None = None,
        bound_method: str = "auto",
        max_candidates: int = DEFAULT_MAX_CANDIDATES,
        sample_inputs: int = 4096,
        carries: str = "auto",
    ) -> None:
        if carries not in CARRIES:
            raise SuperposeError(f"carries must be one of {', '.join(CARRIES)}, got {carries!r}")
        if sizing not in SIZINGS:
            raise SuperposeError(f"sizing must be one of {', '.join(SIZINGS)}, got {sizing!r}")
        if isinstance(cleanup, bool) or not isinstance(cleanup, int) or cleanup < 0:
            raise SuperposeError(f"cleanup must be an integer >= 0 (0 = off), got {cleanup!r}")
        if isinstance(max_active, bool) or not isinstance(max_active, int) or max_active < 1:
            raise SuperposeError(f"max_active must be a positive integer, got {max_active!r}")
        if ell is not None and (not isinstance(ell, int) or not 2 <= ell <= 32):
            raise SuperposeError(f"ell must be an integer in 2..32, got {ell!r}")
        self.max_active = max_active
        self.failure = failure
        self.heavy_share = heavy_share
        self.width_scale = width_scale
        self.sizing = sizing
        self.cleanup = cleanup
        self.ell = ell
        self.bound_method = bound_method
        self.max_candidates = max_candidates
        self.sample_inputs = sample_inputs
        self.carries = carries

    def _failure(self, task: Task) -> float:
        """The failure target: ``failure`` if given; else CIRCUIT_FAILURE, lowered to 0.1 /
        (number of inputs) when few enough inputs exist to check every one for a certificate
        (so that the first widths usually pass it). It depends on the task only, so a network
        rebuilt from its saved parameters gets the same widths."""
        if self.failure is not None:
            return float(self.failure)
        total = n_sparse_inputs(task.features, task.sparsity)
        if total <= CERTIFIABLE:
            return min(CIRCUIT_FAILURE, 0.1 / total)
        return CIRCUIT_FAILURE

    def build(self, task: Task, rng: np.random.Generator) -> Network:
        """One build at ``width_scale`` (checking and growing is the build pipeline's job).

        The deep construction has its own explicit / private fallbacks (module docstring).
        """
        if not self.width_scale > 0:
            raise SuperposeError(f"width_scale must be > 0, got {self.width_scale!r}")
        return self.build_once(task, rng)

    @classmethod
    def memory_parts(
        cls, features: int, n_gates: int, operands: float, params: dict[str, Any]
    ) -> tuple[dict[str, int], list[str]]:
        """No model of its own yet (not the one-level superposed model): the generic one."""
        return Construction.memory_parts.__func__(cls, features, n_gates, operands, params)  # type: ignore[attr-defined]

    def plan_neurons(self, task: Task) -> None:
        """No pre-build comparison with the explicit network: the sizing itself already picks
        explicit or private blocks where superposition does not pay (module docstring)."""
        return None

    def _memo_key(self, explicit: bool) -> tuple[Any, ...]:
        """The parameters the sizing depends on (not ``width_scale``: attempts share it)."""
        params = {k: v for k, v in self.get_params().items() if k != "width_scale"}
        return (explicit, tuple(sorted((k, repr(v)) for k, v in params.items())))

    def _cheapest(self, task: Task, explicit: bool) -> tuple[Any, ...]:
        """The sized plan with the fewest planned neurons: one code length for all blocks
        first, then each block's own (coordinate descent over neighbouring lengths).
        Returns (layout, stages, info, planned total, code lengths, input width, encode)."""
        memo = _SIZING_MEMO.setdefault(task, {})
        key = self._memo_key(explicit)
        if key in memo:
            return memo[key]
        lay, stages, info = self.plan(task)
        detect = info["detect"]
        modes = {"auto": (False, True), "copy": (False,), "encode": (True,)}[self.carries]
        grid = [self.ell] if self.ell else list(ELL_GRID)
        best = None
        for enc in modes:
            for e in grid:
                ells = [e] * (len(stages) + 1)
                total, w0, _ = self._size(task, lay, stages, ells, detect, explicit, enc)
                if best is None or total < best[0]:
                    best = (total, ells, w0, enc)
        assert best is not None
        total, ells, w0, enc = best
        for _ in range(2 if len(grid) > 1 else 0):
            improved = False
            for j in range(1 if explicit else 0, len(ells)):
                for e in (ells[j] - 2, ells[j] - 1, ells[j] + 1, ells[j] + 2):
                    if e not in grid:
                        continue
                    trial = [*ells[:j], e, *ells[j + 1 :]]
                    t, w, _ = self._size(task, lay, stages, trial, detect, explicit, enc)
                    if t < total * (1 - 1e-9):
                        total, ells, w0, improved = t, trial, w, True
            if not improved:
                break
        # Leave the chosen plan in `stages`.
        self._size(task, lay, stages, ells, detect, explicit, enc)
        result = (lay, stages, info, total, ells, w0, enc)
        memo[key] = result
        return result

    # planning ---------------------------------------------------------------------------
    @classmethod
    def _unsupported(cls, task: Task) -> str | None:
        """Why ``circuit`` cannot build ``task`` (None when it can)."""
        if task.depth > MAX_DEPTH:
            return (
                f"the task has {task.depth} levels, more than the {MAX_DEPTH} the circuit "
                "planner takes (its width search grows as depth^2-3; the explicit network, "
                "'naive', builds any depth)"
            )
        bad = (task.ops == OP_CODE["xor"]) & (task.arity > 2)
        if bad.any():
            g = int(np.flatnonzero(bad)[0])
            return f"gate {g} (id {g + task.features}): xor of {int(task.arity[g])} inputs"
        return None

    def _check_ops(self, task: Task) -> None:
        if task.depth > MAX_DEPTH:
            raise SuperposeError(self.supports(task)[1])
        bad = (task.ops == OP_CODE["xor"]) & (task.arity > 2)
        if bad.any():
            g = int(np.flatnonzero(bad)[0])
            raise SuperposeError(
                f"gate {g} (id {g + task.features}): xor of {int(task.arity[g])} inputs; "
                "'circuit' handles 2-input xor only -- use the 'naive' construction",
                cli="--construction naive",
            )

    def bounds(self, task: Task, lay: Layout | None = None) -> ActiveBounds:
        """Per-stage upper bounds on true nodes (see :func:`superpose.levels.active_bounds`)."""
        return active_bounds(
            task, lay=lay, method=self.bound_method, max_candidates=self.max_candidates
        )

    def plan(self, task: Task) -> tuple[Layout, list[Stage], dict[str, Any]]:
        """Levels, carries, sparsity bounds and the sizing of every stage (module docstring)."""
        self._check_ops(task)
        lay = layout(task)
        bnd = self.bounds(task, lay)
        stages, info = plan_stages(
            task,
            lay,
            bnd,
            max_active=self.max_active,
            sizing=self.sizing,
            sample_inputs=self.sample_inputs,
            cleanup=self.cleanup,
            max_candidates=self.max_candidates,
        )
        return lay, stages, info

    def _held(self, lay: Layout, task: Task, after: int) -> np.ndarray:
        """Node ids a layer holds after stage ``after`` (see :func:`.plan.held_nodes`)."""
        return held_nodes(lay, task, after)

    def _size(
        self,
        task: Task,
        lay: Layout,
        stages: list[Stage],
        ells: list[int],
        detect: np.ndarray,
        explicit_in: bool = False,
        encode: bool = False,
    ) -> tuple[float, int, list[int]]:
        """Planned total neurons, input width and pool widths (see :func:`.sizing.size_plan`)."""
        failure = self._failure(task)
        return size_plan(task, lay, stages, ells, detect, failure, explicit_in, encode)

    # building ---------------------------------------------------------------------------
    def build_once(self, task: Task, rng: np.random.Generator) -> Network:
        m = task.features
        scale = self.width_scale
        lay, stages, info, planned_total, ells, w0, encode = self._cheapest(task, False)
        explicit_in = max(4 * ells[0] * task.sparsity, round(w0 * scale)) >= m
        if explicit_in:
            # A superposed input layer would be no narrower than one neuron per feature.
            lay, stages, info, planned_total, ells, w0, encode = self._cheapest(task, True)
        ell = ells[0]
        n_in = m if explicit_in else max(4 * ell * task.sparsity, round(w0 * scale))
        input_code, first_code, overlaps = input_code_for(
            task, stages[0].gates, n_in, ell, explicit_in, rng
        )
        # The current layer: which nodes it holds and each node's units in it.
        held = np.arange(m, dtype=np.int64)
        held_units = sparse.csr_array(first_code.membership, dtype=np.int8)
        inhib = np.full(m, -1, dtype=np.int64)  # per held row: its unresolved detector unit
        width = n_in
        target = self._failure(task) / (2 * len(stages))
        resolve = Stage(lay.depth, "resolve", np.zeros(0, np.int64), [lay.depth])
        todo = list(stages)
        layers: list[Layer] = []
        stage_codes: list[tuple[np.ndarray, BloomCode]] = []
        stage_stats = []
        while todo:
            st = todo.pop(0)
            ell = st.ell
            row_of = np.full(task.n_nodes, -1, dtype=np.int64)
            row_of[held] = np.arange(len(held))
            operand_code = BloomCode(held_units)
            after = st.level
            keep = self._held(lay, task, after)
            if st.kind == "level" and (encode or (explicit_in and st is stages[0])):
                # Every carried node is re-encoded into the pool (copy parts; unresolved xor /
                # andnot nodes with their inhibition). Explicit inputs always are, so every
                # later code has l bits.
                carried = keep[~np.isin(keep, m + st.gates)]
                parts = _parts(task, st.gates, carried, row_of)
                new_nodes = np.concatenate([m + st.gates, carried]).astype(np.int64)
                carry = np.zeros(0, np.int64)
                n_carried = len(carried)
            elif st.kind in ("level", "resolve"):
                carry = keep[~np.isin(keep, m + st.gates)]
                n_carried = len(carry)
                # Unresolved xor / andnot nodes are re-encoded (copy parts with inhibition).
                pending = carry[inhib[row_of[carry]] >= 0]
                carry = carry[inhib[row_of[carry]] < 0]
                if st.kind == "resolve":
                    # Either re-encode the pending nodes and copy the rest unit by unit, or
                    # re-encode every node the last layer holds: whichever is narrower.
                    a_pending = stages[-1].sized_for
                    copied_units = len(np.unique(held_units[row_of[carry]].indices))
                    grid = [self.ell] if self.ell else list(ELL_GRID)
                    ell_in = stages[-1].ell
                    narrow = _best_resolve(len(pending), a_pending, ell_in, width, target, grid)
                    sized = {0: task.sparsity} | dict(enumerate(info["sized_for"], start=1))
                    a_all = _active_in(task, keep, sized)
                    whole = _best_resolve(len(keep), a_all, ell_in, width, target, grid)
                    if whole[0] < narrow[0] + copied_units:
                        pending, carry = keep, np.zeros(0, np.int64)
                        st.pool, ell = whole
                    else:
                        st.pool, ell = narrow
                    st.ell = ell
                    st.private = st.pool >= ell * len(pending)
                parts = _parts(task, st.gates, pending, row_of)
                new_nodes = np.concatenate([m + st.gates, pending]).astype(np.int64)
            else:
                carry_nodes = keep
                parts = _parts(task, st.gates[:0], carry_nodes, row_of)
                new_nodes = carry_nodes
                carry = np.zeros(0, np.int64)
                n_carried = 0
            if st.private:
                pool_layer, pool_units, stats = _private_stage(parts, operand_code, ell)
            else:
                pool_w = max(6 * ell, round(st.pool * scale))
                pool_layer, pool_units, stats = threshold_stage(
                    parts, operand_code, pool_w, ell, self.heavy_share, rng, mix=True
                )
            hosts = sparse.csr_array(pool_units.T)
            pool_weight = sparse.csr_array(
                pool_layer.weight
                + _inhibit(
                    hosts,
                    (parts.g_of, parts.node),
                    inhib,
                    operand_code,
                    width,
                    pool_layer.weight,
                )
            )
            det_gates, det_reads, det_theta, det_rows = _detectors(
                task, st.gates, info["detect"], row_of, operand_code
            )
            n_det = len(det_gates)
            det_weight = sparse.csr_array(
                det_reads.astype(np.float32)
                + _inhibit(
                    sparse.csr_array(sparse.eye_array(n_det, dtype=np.int8, format="csr")),
                    det_rows,
                    inhib,
                    operand_code,
                    width,
                )
            )
            # Copy units: every unit of the current layer some carried node's code uses.
            carry_rows = row_of[carry]
            sub = sparse.csr_array(held_units[carry_rows]) if len(carry) else None
            copied = np.unique(sub.indices) if sub is not None else np.zeros(0, np.int64)
            n_copy = len(copied)
            copy_w = sparse.csr_array(
                (np.ones(n_copy, dtype=np.float32), (np.arange(n_copy), copied)),
                shape=(n_copy, width),
            )
            dtype = pool_layer.weight.dtype
            weight = sparse.vstack(
                [pool_weight.astype(dtype), copy_w.astype(dtype), det_weight.astype(dtype)],
                format="csr",
            )
            bias = np.concatenate(
                [
                    pool_layer.bias,
                    -np.ones(n_copy, dtype=pool_layer.bias.dtype),
                    -det_theta.astype(pool_layer.bias.dtype),
                ]
            )
            weight.eliminate_zeros()
            layer = Layer(sparse.csr_array(weight), bias, "step")
            layers.append(layer)
            new_width = pool_units.shape[1] + n_copy + n_det
            # Node -> units in the new layer: pool units for new nodes, shifted copies for carries.
            col_map = np.full(width, -1, dtype=np.int64)
            col_map[copied] = pool_units.shape[1] + np.arange(n_copy)
            blocks = [sparse.csr_array(pool_units, dtype=np.int8).tocoo()]
            rows_list = [blocks[0].coords[0]]
            cols_list = [blocks[0].coords[1]]
            if sub is not None:
                c = sub.tocoo()
                rows_list.append(c.coords[0] + len(new_nodes))
                cols_list.append(col_map[c.coords[1]])
            r, c2 = np.concatenate(rows_list), np.concatenate(cols_list)
            held = np.concatenate([new_nodes, carry]).astype(np.int64)
            held_units = sparse.csr_array(
                (np.ones(len(r), dtype=np.int8), (r, c2)), shape=(len(held), new_width)
            )
            inhib = np.full(len(held), -1, dtype=np.int64)
            det_row = np.full(task.n_nodes, -1, dtype=np.int64)
            det_row[m + det_gates] = pool_units.shape[1] + n_copy + np.arange(n_det)
            inhib[: len(new_nodes)] = det_row[new_nodes]
            width = new_width
            stage_codes.append((held.copy(), BloomCode(held_units), inhib.copy()))
            if not todo and st.kind != "resolve" and (inhib >= 0).any():
                todo.append(resolve)  # xor / andnot outputs need one more layer
            stage_stats.append(
                {
                    "level": st.level,
                    "kind": st.kind,
                    "gates": int(len(st.gates)),
                    "carries": int(n_carried),
                    "nodes": int(len(held)),
                    "reads_blocks": st.reads,
                    "active_bound": int(st.bound),
                    "stage_active_bound": int(st.stage_bound),
                    "sized_for": int(st.sized_for),
                    "active_in": int(st.a_in),
                    "pool_width": int(pool_units.shape[1]),
                    "detector_units": int(n_det),
                    "private": bool(st.private),
                    "copy_width": int(n_copy),
                    "width": int(new_width),
                    "ell": int(ell),
                    "fan_in_target": float(st.fan_in),
                    "fan_in_fraction_max": stats["fan_in_fraction_max"],
                }
            )
        row = np.full(task.n_nodes, -1, dtype=np.int64)
        row[held] = np.arange(len(held))
        out_rows = row[task.outputs]
        if (out_rows < 0).any():
            raise SuperposeError("internal: an output is not held by the last layer")
        if (inhib[out_rows] >= 0).any():
            raise SuperposeError("internal: an output is still waiting for its detector")
        output_code = BloomCode(sparse.csr_array(held_units[out_rows]))
        levels_only = [x for x in stage_stats if x["kind"] == "level"]
        extras = {
            "levels": len(levels_only),
            "stages_total": len(stage_stats),
            "cleanup_stages": len(stage_stats) - len(levels_only),
            "sizing": self.sizing,
            "ell": int(ells[0]),
            "ells": [int(ells[0])] + [int(x["ell"]) for x in stage_stats],
            "widths": [int(input_code.width)] + [x["width"] for x in stage_stats],
            "pool_widths": [x["pool_width"] for x in stage_stats],
            "copy_widths": [x["copy_width"] for x in stage_stats],
            "carries": [x["carries"] for x in levels_only],
            "total_carries": int(sum(x["carries"] for x in levels_only)),
            "active_bounds": [int(task.sparsity)] + [x["active_bound"] for x in levels_only],
            "stage_active_bounds": [int(task.sparsity)]
            + [x["stage_active_bound"] for x in levels_only],
            "bound_method": info["bounds"]["method"],
            "cone_bounds": [int(task.sparsity)] + list(info["bounds"]["level_cone"]),
            "sized_for": [int(task.sparsity)] + [int(a) for a in info["sized_for"]],
            "planned_neurons": int(round(planned_total)),
            "detectors_skipped": info["detectors_skipped"],
            "carry_mode": "encode" if encode else "copy",
            "stages": stage_stats,
            "overlapping_gates": overlaps,
        }
        net = Network(
            layers, input_code, output_code, task, self.name, self.get_params(), extras=extras
        )
        # Per-stage codes, for per-level verification (kept in memory; rebuilt after loading).
        net.stage_codes = stage_codes  # type: ignore[attr-defined]
        return net
