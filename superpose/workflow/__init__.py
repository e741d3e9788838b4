"""One library call per command: the work behind each ``superpose`` command, callable from Python.

A command line that does work cannot be called from a notebook, and a second caller would
repeat it. So each command parses its options, calls one function here and renders what it
returns; nothing here prints. Every function checks its paths before long work, writes
atomically, names its parameters in errors (with the command-line spelling in ``cli``), and
reports progress through an optional callback of event dicts.

- :func:`task_from_options`: the task a command names (a file or a generated family).
- :func:`build_to_directory` -> :class:`Built`: ``superpose build``.
- :func:`verify_directory` -> :class:`Verified`: ``superpose verify``.
- :func:`network_info`: ``superpose info``.
- :func:`bounds_for` (and :func:`plot_bounds`): ``superpose bounds``.
- :func:`compare_to_files`: ``superpose compare``.
- :func:`plan_sweep` -> :class:`SweepPlan`, :func:`sweep_to_file`: ``superpose sweep``.

The other commands call their module's function directly: ``capacity``
:func:`superpose.capacity.model_capacity`, ``demo`` :func:`superpose.demo.run_demo`,
``report`` :func:`superpose.report.write_report`, ``export``
:func:`superpose.torch.export_network`.
"""

from superpose.workflow._bounds import bounds_for, plot_bounds
from superpose.workflow._build import Built, build_to_directory
from superpose.workflow._compare import compare_to_files
from superpose.workflow._info import network_info
from superpose.workflow._sweep import SweepPlan, plan_sweep, sweep_to_file
from superpose.workflow._task import task_from_options
from superpose.workflow._verify import Verified, verify_directory

__all__ = [
    "Built",
    "SweepPlan",
    "Verified",
    "bounds_for",
    "build_to_directory",
    "compare_to_files",
    "network_info",
    "plan_sweep",
    "plot_bounds",
    "sweep_to_file",
    "task_from_options",
    "verify_directory",
]
