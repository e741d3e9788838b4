"""superpose: explicit ReLU networks that compute many Boolean features in superposition.

The public API is a handful of verbs:

>>> import numpy as np
>>> import superpose as sp
>>> task = sp.families.pairs(40, 200, np.random.default_rng(0), sparsity=2)
>>> net = sp.build(task, "naive")
>>> sp.verify(net, mode="random", samples=200, rng=np.random.default_rng(1)).inputs_with_error
0
"""

import os as _os
import sys as _sys

if _sys.argv and _os.path.basename(_sys.argv[0]) == "superpose":
    # Started as the `superpose` console script: answer a Ctrl-C during the second of imports
    # below quietly (the CLI hands Ctrl-C back to Python once it has started).
    from superpose._startup import guard_start_up

    guard_start_up()

from superpose import families  # noqa: E402
from superpose.codes import BloomCode, ExplicitCode, LinearCode  # noqa: E402
from superpose.constructions import CONSTRUCTIONS, build  # noqa: E402
from superpose.errors import SuperposeError  # noqa: E402
from superpose.evaluate import evaluate  # noqa: E402
from superpose.io import load_network, save_network  # noqa: E402
from superpose.network import Layer, Network  # noqa: E402
from superpose.task import Task, load_task  # noqa: E402
from superpose.verify import VerificationReport, verify  # noqa: E402

__version__ = "0.1.0"

__all__ = [
    "CONSTRUCTIONS",
    "BloomCode",
    "ExplicitCode",
    "Layer",
    "LinearCode",
    "Network",
    "SuperposeError",
    "Task",
    "VerificationReport",
    "build",
    "evaluate",
    "families",
    "load_network",
    "load_task",
    "save_network",
    "verify",
]
del _os, _sys
