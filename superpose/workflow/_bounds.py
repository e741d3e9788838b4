"""``bounds_for``: the one call behind ``superpose bounds``, and its plot.

The counting limit of a task (bits it must store, the parameters and neurons that takes, the
capacity of a given width, the representation widths) is a pure function of its family, so a
task file is first reduced to its family (:func:`superpose.bounds.family_of_task`). The plot
draws the same limits against m' on log-log axes, with saved networks as points, because
where a network sits between the lower bound and the naive m' is easier seen than read.

Example:
    >>> report = bounds_for(family="and2", features=2_000, outputs=10_000)
    >>> report["family"], report["outputs"]
    ('and2', 10000)
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np

from superpose.errors import SuperposeError


def bounds_for(
    task_file: str | Path | None = None,
    family: str | None = None,
    *,
    features: int | None = None,
    outputs: int | None = None,
    arity: int = 3,
    circuit_depth: int = 2,
    layers: int = 1,
    bits_per_parameter: float = 1.0,
    error_fraction: float = 0.0,
    neurons: int | None = None,
    input_width: int | None = None,
    output_width: int | None = None,
    sparsity: int | None = None,
    plot: str | Path | None = None,
    networks: list[str | Path] | None = None,
) -> dict[str, Any]:
    """:func:`superpose.bounds.bounds_report` for ``task_file`` or ``family`` (its sizes,
    ``arity``, ``circuit_depth``), with ``sparsity`` defaulting to the task's (else 2); the
    plot written to ``plot`` when given, with the saved ``networks`` as points (their counts
    under ``"networks"``)."""
    from superpose.bounds import bounds_report

    fam, task_sparsity = _family_from_args(
        None if task_file is None else Path(task_file),
        family,
        features,
        outputs,
        arity,
        circuit_depth,
    )
    s = sparsity if sparsity is not None else (task_sparsity or 2)
    if s < 1:
        raise SuperposeError(f"sparsity must be >= 1, got {s}", cli="--sparsity")
    if neurons is not None and neurons < 0:
        raise SuperposeError(f"neurons must be >= 0, got {neurons}", cli="--neurons")
    if networks and plot is None:
        raise SuperposeError(
            "networks only add points to a plot; give plot too",
            cli="--network needs --plot FILE.png",
        )
    if plot is not None:  # checked before the networks load (large ones take a while)
        from superpose._atomic import check_output

        check_output(plot, option="plot", kind="file")
    report = bounds_report(
        fam,
        layers=layers,
        bits_per_parameter=bits_per_parameter,
        error_fraction=error_fraction,
        neurons=neurons,
        input_width=input_width,
        output_width=output_width,
        sparsity=s,
    )
    if task_file is not None:
        report["task"] = str(task_file)
    points = _network_points([Path(d) for d in networks or []])
    if points:
        report["networks"] = points
    if plot is not None:
        plot_bounds(Path(plot), fam, layers, bits_per_parameter, error_fraction, s, points)
        report["plot"] = str(plot)
    return report


def _family_from_args(
    task_file: Path | None,
    family: str | None,
    features: int | None,
    outputs: int | None,
    arity: int,
    circuit_depth: int,
) -> tuple[Any, int | None]:
    """The family of ``task_file`` and its sparsity, or the named family (sparsity None)."""
    from superpose.bounds import family_of_task, make_family
    from superpose.workflow._task import one_source

    one_source(task_file, family)
    if task_file is not None:
        from superpose.task import load_task

        task = load_task(task_file)
        return family_of_task(task), int(task.sparsity)
    for name, value in (("features", features), ("outputs", outputs)):
        if value is not None and value < 1:
            raise SuperposeError(f"{name} must be >= 1, got {value}", cli=f"--{name}")
    assert family is not None
    return (
        make_family(family, features=features, outputs=outputs, arity=arity, depth=circuit_depth),
        None,
    )


def _network_points(directories: list[Path]) -> list[dict[str, Any]]:
    """One plot point per saved network: its outputs, neurons and widest layer."""
    from superpose.io import load_network

    points = []
    for d in directories:
        net = load_network(d)
        counts = net.counts()
        points.append(
            {
                "label": f"{d.name} ({counts['construction']})",
                "outputs": int(net.task.n_outputs),
                "neurons": int(counts["neurons"]),
                "max_width": int(max(counts["layer_widths"])),
            }
        )
    return points


def plot_bounds(
    path: Path,
    family: Any,
    layers: int,
    bits_per_parameter: float,
    error_fraction: float,
    sparsity: int,
    networks: list[dict[str, Any]],
) -> None:
    """Draw the neuron bounds, representation widths, naive m' and networks against m' (log–log).

    Curves use the family's kind with m = m'; ``networks`` are points from
    :func:`_network_points`. The file is written atomically, in the format of its suffix.

    Example:
        >>> import tempfile
        >>> from superpose.bounds import Family
        >>> out = Path(tempfile.mkdtemp()) / "b.png"
        >>> plot_bounds(out, Family("permutation", outputs=1000), 1, 1.0, 0.0, 2, [])
        >>> out.read_bytes()[1:4]
        b'PNG'
    """
    from superpose._numeric import pyplot

    plt = pyplot()

    from superpose._atomic import atomic_path
    from superpose.bounds import (
        CAPACITY_FAMILIES,
        Family,
        bits_lower_bound,
        bloom_code_width,
        linear_code_width,
        neurons_lower_bound,
        total_neurons_lower_bound,
    )

    curve_name = family.name if family.name in CAPACITY_FAMILIES else "and2"
    top = max([family.outputs * 10, 10**7] + [p["outputs"] * 10 for p in networks])
    grid = np.unique(np.logspace(1, np.log10(top), 40).astype(np.int64))

    def fam(mp: int) -> Family:
        if curve_name == "permutation":
            return Family("permutation", outputs=mp)
        k = family.arity if curve_name == "kand" else 2
        return Family(curve_name, outputs=mp, features=max(mp, k + 1), arity=family.arity)

    bits = [bits_lower_bound(fam(int(mp)), error_fraction) for mp in grid]
    width = [neurons_lower_bound(x, layers, bits_per_parameter) for x in bits]
    total = [total_neurons_lower_bound(x, bits_per_parameter) for x in bits]
    bloom = [bloom_code_width(int(mp), sparsity).width for mp in grid]
    linear = [linear_code_width(int(mp), sparsity) for mp in grid]

    fig, ax = plt.subplots(figsize=(7.5, 5.2))
    ax.loglog(grid, total, "-", color="C0", label="neuron lower bound, total (any layered net)")
    ax.loglog(
        grid, width, "--", color="C0", label=f"neuron lower bound, width of {layers} layer(s)"
    )
    ax.loglog(grid, bloom, "-", color="C2", label=f"representation only, Bloom code (s={sparsity})")
    ax.loglog(
        grid, linear, ":", color="C2", label=f"representation only, linear code (s={sparsity})"
    )
    ax.loglog(grid, grid, "-", color="0.5", label="naive: m' neurons")
    for i, p in enumerate(networks):
        ax.loglog([p["outputs"]], [p["neurons"]], "o", color=f"C{3 + i % 6}", label=p["label"])
        ax.loglog([p["outputs"]], [p["max_width"]], "o", mfc="none", color=f"C{3 + i % 6}")
    ax.set_xlabel("outputs m'")
    ax.set_ylabel("neurons")
    ax.set_title(
        f"{curve_name} (m = m'), b = {bits_per_parameter:g} bits/parameter, δ = {error_fraction:g}",
        fontsize=10,
    )
    ax.grid(True, which="both", alpha=0.3)
    ax.legend(fontsize=8, loc="upper left")
    fig.tight_layout()
    fmt = path.suffix.lstrip(".").lower() or "png"
    try:
        with atomic_path(path) as tmp:
            fig.savefig(tmp, format=fmt, dpi=120)
    except ValueError as exc:
        raise SuperposeError(f"{path}: cannot write a plot in format {fmt!r} ({exc})") from None
    finally:
        plt.close(fig)
