"""The comparison harness (docs/DESIGN.md, Comparison): every method on identical workloads, identical metrics.

Methods: ``naive`` (one ReLU per gate, exact), ``ours`` (the ``superposed`` construction, Bloom
codes, exact after thresholding), Hänni et al.'s universal AND with Bernoulli, Rademacher and
Gaussian weights (linear read-offs, :mod:`superpose.peers.universal_and`), and trained ReLU
MLPs (:mod:`superpose.peers.trained`, when torch is installed). Every result carries its
read-out kind: ``exact-threshold``, ``linear read-off`` or ``trained``.

Metrics per (method, width), on the same verifier inputs (s-sparse; half hold every operand of
a random output gate, half all but one):

* the read-off error ``|value - truth|`` per input class ``00``/``01``/``11`` (how many of the
  gate's operands are on): max, 90% quantile, mean, and the signed mean (bias). ``value`` is
  the network's last layer for explicit outputs (the linear read-off of the peers and trained
  nets, the ReLU output of the naive net) and the decoded 0/1 output for Bloom-coded outputs;
* Boolean accuracy after thresholding at 1/2 and the fraction of inputs with any wrong output,
  both from the shared verifier (:func:`superpose.verification.check_batch`).

Workloads: ``W1`` (m = 30, s = 5, all 435 pairs, widths 30..800; Busch's thesis setting),
``W2`` (universal AND, m in {100, 1000}, s in {2, 3, 5}), ``W3`` (random pairs, m' in
{1e3, 1e4, 1e5}, s = 2, m = min(m', 1e4)): for W3 each method's fewest neurons reaching zero
thresholded errors on the verifier's inputs. ``quick=True`` trims every size (for tests).
A user's own task runs as one setting (:func:`task_setting`; ``superpose compare --task``).

Memory: dense read-offs of the peers over all C(1000, 2) = 499,500 pairs (or 1e5 W3 pairs)
would not fit, so peers and trained nets are built for a random sample of the outputs (their
errors are measured on that sample and their parameter counts extrapolated to all outputs;
the table says so). Naive and ours always run on every output, with sparse arrays only.

Example:
    >>> from superpose.compare import run_workload
    >>> result = run_workload("W1", quick=True, trained=False)  # doctest: +SKIP
    >>> sorted({row.method for row in result.rows})  # doctest: +SKIP
    ['naive', 'ours', 'uand-bernoulli', 'uand-gaussian', 'uand-rademacher']
"""

from __future__ import annotations

from superpose.compare.metrics import (
    ClassStats,
    ErrorAccumulator,
    Row,
    busch_class_errors,
    measure,
    passes,
)
from superpose.compare.results import Need, WorkloadResult, lower_bound
from superpose.compare.runner import PEER_MAX_NONZEROS, Progress, run_workload
from superpose.compare.tables import (
    COLUMNS,
    NEED_COLUMNS,
    markdown,
    need_rows,
    plot,
    table_rows,
)
from superpose.compare.workloads import (
    METHODS,
    OURS,
    TASK_MAX_OUTPUTS,
    W1_WIDTHS,
    WORKLOADS,
    Setting,
    sample_outputs,
    task_setting,
    workload_settings,
)

__all__ = [
    "busch_class_errors",
    "ClassStats",
    "COLUMNS",
    "ErrorAccumulator",
    "lower_bound",
    "markdown",
    "measure",
    "METHODS",
    "Need",
    "NEED_COLUMNS",
    "need_rows",
    "OURS",
    "passes",
    "PEER_MAX_NONZEROS",
    "plot",
    "Progress",
    "Row",
    "run_workload",
    "sample_outputs",
    "Setting",
    "table_rows",
    "TASK_MAX_OUTPUTS",
    "task_setting",
    "W1_WIDTHS",
    "workload_settings",
    "WorkloadResult",
    "WORKLOADS",
]
