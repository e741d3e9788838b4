"""What every construction is: parameters stored at creation, all work done in ``build``."""

from __future__ import annotations

from typing import Any, ClassVar

import numpy as np

from superpose.network import Network
from superpose.task import Task


class Construction:
    """Base class: subclasses store their parameters in ``__init__`` and build in ``build``.

    ``build(task, rng)`` returns a :class:`~superpose.network.Network` that carries its input
    and output codes, so the shared verifier checks every construction the same way.
    """

    name: ClassVar[str]

    def get_params(self) -> dict[str, Any]:
        """The parameters this construction was created with (recorded in network.json)."""
        return {k: v for k, v in vars(self).items() if not k.startswith("_")}

    def build(self, task: Task, rng: np.random.Generator) -> Network:
        raise NotImplementedError

    def __repr__(self) -> str:
        args = ", ".join(f"{k}={v!r}" for k, v in self.get_params().items())
        return f"{type(self).__name__}({args})"
