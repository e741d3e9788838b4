"""The ``circuit`` construction *(ours)*: deep tasks, one superposed threshold layer per level.

Each level of the circuit becomes one layer: a shared Bloom-code pool computing that level's
gates, beside exact unit-by-unit copies of the earlier nodes still read later. Three steps,
one module each:

- :mod:`~superpose.constructions.circuit.plan`: levels, sparsity bounds per level (a level that
  cannot stay sparse is refused), the stages, which xor / andnot gates need a detector;
- :mod:`~superpose.constructions.circuit.sizing`: our false-firing model and the widths and
  code lengths that minimise the total neurons;
- :mod:`~superpose.constructions.circuit.build`: the layers themselves (pools, copies,
  detectors and their inhibition, the resolve layer);

and :mod:`~superpose.constructions.circuit.construction` holds the :class:`Circuit` class
that ties them together.
"""

from superpose.constructions.circuit.build import _private_stage
from superpose.constructions.circuit.construction import Circuit
from superpose.constructions.circuit.plan import CARRIES, INHIBITED_OPS, MAX_DEPTH, SIZINGS, Stage
from superpose.constructions.circuit.sizing import (
    CERTIFIABLE,
    CIRCUIT_FAILURE,
    ELL_GRID,
    STRAY_SHARE,
    _chain_widths,
    fan_in_for,
    stray,
)

__all__ = [
    "CARRIES",
    "CERTIFIABLE",
    "CIRCUIT_FAILURE",
    "ELL_GRID",
    "INHIBITED_OPS",
    "MAX_DEPTH",
    "SIZINGS",
    "STRAY_SHARE",
    "Circuit",
    "Stage",
    "_chain_widths",
    "_private_stage",
    "fan_in_for",
    "stray",
]
