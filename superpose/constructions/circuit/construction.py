"""The ``circuit`` construction class: parameters, checks, and the steps of plan, sizing, build."""

from __future__ import annotations

from typing import Any

import numpy as np

from superpose.constructions.base import Capabilities, Construction
from superpose.constructions.circuit.build import (
    BuildOptions,
    build_layers,
    network_extras,
    output_code,
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
    size_plan,
)
from superpose.constructions.params import check_choice, check_deep_params
from superpose.constructions.superposed import (
    _Certified,
)
from superpose.errors import SuperposeError
from superpose.levels import (
    DEFAULT_MAX_CANDIDATES,
    ActiveBounds,
    Layout,
    active_bounds,
    layout,
)
from superpose.network import Network
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
        check_choice("carries", carries, CARRIES)
        check_choice("sizing", sizing, SIZINGS)
        if isinstance(cleanup, bool) or not isinstance(cleanup, int) or cleanup < 0:
            raise SuperposeError(f"cleanup must be an integer >= 0 (0 = off), got {cleanup!r}")
        check_deep_params(max_active, ell)
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
        """One network at ``width_scale`` from the cheapest sized plan; with an explicit input
        layer (and the plan sized for it) when a superposed one would be no narrower than one
        neuron per feature."""
        lay, stages, info, planned_total, ells, w0, encode = self._cheapest(task, False)
        n_in = max(4 * ells[0] * task.sparsity, round(w0 * self.width_scale))
        explicit_in = n_in >= task.features
        if explicit_in:
            lay, stages, info, planned_total, ells, w0, encode = self._cheapest(task, True)
        opts = BuildOptions(self.width_scale, self.heavy_share, self.ell, self._failure(task))
        built = build_layers(task, lay, stages, info, ells, w0, encode, explicit_in, opts, rng)
        extras = network_extras(task, built, info, ells, planned_total, self.sizing, encode)
        net = Network(
            built.layers,
            built.input_code,
            output_code(task, built.last),
            task,
            self.name,
            self.get_params(),
            extras=extras,
        )
        # Per-stage codes, for per-level verification (kept in memory; rebuilt after loading).
        net.stage_codes = built.stage_codes  # type: ignore[attr-defined]
        return net
