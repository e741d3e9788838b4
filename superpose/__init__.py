"""superpose: explicit ReLU networks that compute many Boolean features in superposition.

The public API is a handful of verbs:

>>> import numpy as np
>>> import superpose as sp
>>> task = sp.families.pairs(40, 200, np.random.default_rng(0), sparsity=2)
>>> net = sp.build(task, "naive")
>>> sp.verify(net, mode="random", samples=200, rng=np.random.default_rng(1)).inputs_with_error
0
"""

from superpose import families
from superpose.codes import BloomCode, ExplicitCode, LinearCode
from superpose.constructions import CONSTRUCTIONS, build
from superpose.errors import SuperposeError
from superpose.evaluate import evaluate
from superpose.io import load_network, save_network
from superpose.network import Layer, Network
from superpose.task import Task, load_task
from superpose.verify import VerificationReport, verify

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
