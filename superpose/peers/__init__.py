"""Peers and baselines that superpose is compared with (docs/DESIGN.md, Comparison), on the shared network format.

* :mod:`superpose.peers.universal_and` -- Hänni, Mendel, Vaintrob & Chan's universal AND
  (arXiv 2408.05451): one random ReLU layer (Bernoulli, Rademacher or Gaussian weights) and a
  linear read-off vector per output pair, for basis-aligned inputs or inputs in a linear code.
* :mod:`superpose.peers.trained` -- one-hidden-layer ReLU MLPs trained by gradient descent
  (needs the optional extra ``superpose[torch]``; imported lazily).

Every peer returns a :class:`~superpose.network.Network` whose output code is explicit (or a
fixed code), so the shared verifier checks it like any construction.

Example:
    >>> import numpy as np
    >>> from superpose import families
    >>> from superpose.peers import UniversalAnd
    >>> task = families.universal_and(12, sparsity=2)
    >>> net = UniversalAnd("rademacher", width=200).build(task, np.random.default_rng(0))
    >>> net.extras["readout"]
    'linear read-off'

The peers are deliberately not registered in ``superpose.CONSTRUCTIONS``: they compute their
outputs only approximately (a linear read-off with error), so they must not be picked up by
code that expects every registered construction to be exact.
"""

from superpose.peers.universal_and import (
    LAWS,
    READOUT_EXACT,
    READOUT_LINEAR,
    READOUT_TRAINED,
    UniversalAnd,
    busch_p,
    c_d,
)

__all__ = [
    "LAWS",
    "READOUT_EXACT",
    "READOUT_LINEAR",
    "READOUT_TRAINED",
    "UniversalAnd",
    "busch_p",
    "c_d",
]
