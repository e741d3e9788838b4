"""superpose: explicit ReLU networks that compute many Boolean features in superposition.

The public API is a handful of verbs:

>>> import numpy as np
>>> import superpose as sp
>>> task = sp.families.pairs(40, 200, np.random.default_rng(0), sparsity=2)
>>> net = sp.build(task, "naive")
>>> net.extras["check"]["kind"], net.extras["check"]["passed"]
('exact', True)
>>> sp.verify(net, mode="random", samples=200, rng=np.random.default_rng(1)).inputs_with_error
0

``build`` checks every network it returns (an exact certificate where one exists, else every
<= s-sparse input, else random + targeted samples), grows the widths when the check fails and
falls back to the explicit network when nothing passes; see :mod:`superpose.pipeline`.
"""

import os as _os
import sys as _sys

if _sys.argv and _os.path.basename(_sys.argv[0]) == "superpose":
    # Started as the `superpose` console script: answer a Ctrl-C during the second of imports
    # below quietly (the CLI hands Ctrl-C back to Python once it has started).
    from superpose._startup import guard_start_up

    guard_start_up()

from superpose import data, families, mechanisms  # noqa: E402
from superpose.check import Check, check_network  # noqa: E402
from superpose.codes import BloomCode, ExplicitCode, LinearCode  # noqa: E402
from superpose.constructions import CONSTRUCTIONS  # noqa: E402
from superpose.errors import SuperposeError  # noqa: E402
from superpose.evaluate import evaluate  # noqa: E402
from superpose.io import load_network, save_network  # noqa: E402
from superpose.network import Layer, Network  # noqa: E402
from superpose.pipeline import build  # noqa: E402
from superpose.seeds import Seeds  # noqa: E402
from superpose.task import Task, load_task  # noqa: E402
from superpose.verify import VerificationReport, verify  # noqa: E402

__version__ = "0.1.0"

__all__ = [
    "CONSTRUCTIONS",
    "BloomCode",
    "Check",
    "ExplicitCode",
    "Layer",
    "LinearCode",
    "Network",
    "Seeds",
    "SuperposeError",
    "Task",
    "VerificationReport",
    "build",
    "check_network",
    "data",
    "evaluate",
    "families",
    "load_network",
    "load_task",
    "mechanisms",
    "save_network",
    "verify",
]
del _os, _sys
