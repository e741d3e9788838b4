"""Presentation of a workload result: table rows, Markdown, a plot."""

from __future__ import annotations

import math
from collections.abc import Sequence

from superpose.compare.metrics import Row
from superpose.compare.results import WorkloadResult, _join
from superpose.errors import SuperposeError

COLUMNS = (
    "workload",
    "setting",
    "method",
    "read-out",
    "d",
    "neurons",
    "params",
    "max |err| 00/01/11",
    "q90 |err| 00/01/11",
    "mean |err| 00/01/11",
    "bool acc",
    "inputs wrong",
    "note",
)


def _fmt(x: float | int | None, digits: int = 3) -> str:
    if x is None or (isinstance(x, float) and math.isnan(x)):
        return "—"
    if isinstance(x, int) or float(x).is_integer() and abs(x) >= 1000:
        return f"{int(x):,}"
    return f"{x:.{digits}g}" if abs(x) >= 1e-3 or x == 0 else f"{x:.1e}"


def _triple(row: Row, key: str) -> str:
    labels = ("00", "01", "11")
    vals = [row.classes.get(lab, {}).get(key) for lab in labels]
    return "/".join(_fmt(v, 2) for v in vals)


def table_rows(result: WorkloadResult) -> list[list[str]]:
    """The comparison table as strings, one list per row (columns: :data:`COLUMNS`).

    Example:
        >>> from superpose.peers.universal_and import READOUT_EXACT
        >>> row = Row("W1", "m=30", "naive", READOUT_EXACT, None, 465, 1305)
        >>> table_rows(WorkloadResult(rows=[row]))[0][:6]
        ['W1', 'm=30', 'naive', 'exact-threshold', '—', '465']
    """
    out = []
    for r in result.rows:
        params = (
            "—"
            if r.parameters is None
            else ("≈" if r.parameters_extrapolated else "") + f"{r.parameters:,}"
        )
        acc = "—" if math.isnan(r.boolean_accuracy) else f"{r.boolean_accuracy:.6f}"
        wrong = "—" if not r.inputs else f"{r.input_error_fraction:.3g}"
        note = r.note
        if r.values == "decoded" and r.inputs:
            note = _join("errors of the decoded 0/1 output (no linear read-off)", note)
        out.append(
            [
                r.workload,
                r.setting,
                r.method,
                r.readout,
                "—" if r.width is None else str(r.width),
                "—" if r.neurons is None else f"{r.neurons:,}",
                params,
                _triple(r, "max"),
                _triple(r, "q90"),
                _triple(r, "mean"),
                acc,
                wrong,
                note,
            ]
        )
    return out


NEED_COLUMNS = (
    "setting",
    "method",
    "read-out",
    "neurons for 0 errors",
    "hidden d",
    "lower bound",
    "note",
)


def need_rows(result: WorkloadResult) -> list[list[str]]:
    """The W3 summary: fewest neurons with zero thresholded errors per method and setting.

    Example:
        >>> from superpose.compare import Need
        >>> from superpose.peers.universal_and import READOUT_EXACT
        >>> need = Need("m'=1000", 1000, 1000, "naive", READOUT_EXACT, 2000, None, True, 2000)
        >>> need_rows(WorkloadResult(needs=[need]))[0][3]
        '2,000'
    """
    out = []
    for n in result.needs:
        lb = result.bounds.get(n.setting, {}).get("neurons")
        if n.reached:
            got = f"{n.neurons:,}" if n.neurons is not None else "—"
        else:
            got = "not reached" + (f" (tried up to {n.largest_tried:,})" if n.largest_tried else "")
        out.append(
            [
                n.setting,
                n.method,
                n.readout,
                got,
                "—" if n.width is None else str(n.width),
                "—" if lb is None else f"{lb:,}",
                n.note,
            ]
        )
    return out


def markdown(result: WorkloadResult) -> str:
    """The tables as GitHub Markdown (the README's comparison section).

    Example:
        >>> from superpose.peers.universal_and import READOUT_EXACT
        >>> row = Row("W1", "m=30", "naive", READOUT_EXACT, None, 465, 1305)
        >>> markdown(WorkloadResult(rows=[row])).splitlines()[2][:30]
        '| W1 | m=30 | naive | exact-th'
    """

    def md(header: Sequence[str], rows: list[list[str]]) -> str:
        lines = ["| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
        lines += ["| " + " | ".join(c.replace("|", "/") for c in row) + " |" for row in rows]
        return "\n".join(lines)

    parts = [md(COLUMNS, table_rows(result))]
    if result.needs:
        parts.append(
            "**W3: fewest neurons with zero thresholded errors on the verifier's inputs**\n\n"
            + md(NEED_COLUMNS, need_rows(result))
        )
    if result.notes:
        parts.append("\n".join(f"- {n}" for n in result.notes))
    return "\n\n".join(parts) + "\n"


def plot(result: WorkloadResult, path: str) -> None:
    """Neurons needed for zero errors against m' (W3), one curve per method, with the lower bound.

    Example:
        >>> import os, tempfile
        >>> from superpose.compare import Need
        >>> from superpose.peers.universal_and import READOUT_EXACT
        >>> need = Need("m'=1000", 1000, 1000, "naive", READOUT_EXACT, 2000, None, True, 2000)
        >>> path = os.path.join(tempfile.mkdtemp(), "w3.png")
        >>> plot(WorkloadResult(needs=[need], bounds={"a": {"m_prime": 1000, "neurons": 202}}), path)
        >>> os.path.getsize(path) > 0
        True
    """
    from superpose._numeric import pyplot

    plt = pyplot()

    if not result.needs:
        raise SuperposeError(
            "the plot needs W3 results (run workload W3 or all)", cli="--workload W3"
        )
    fig, ax = plt.subplots(figsize=(9.5, 5.2))
    methods = sorted({n.method for n in result.needs})
    colors = plt.rcParams["axes.prop_cycle"].by_key()["color"]
    for i, method in enumerate(methods):
        color = colors[i % len(colors)]
        pts = sorted(
            (n.m_prime, n.neurons)
            for n in result.needs
            if n.method == method and n.reached and n.neurons
        )
        miss = sorted(
            (n.m_prime, n.largest_tried)
            for n in result.needs
            if n.method == method and not n.reached and n.largest_tried
        )
        label = method + ("" if pts else " (never error-free)")
        if pts:
            xs, ys = zip(*pts, strict=True)
            ax.plot(xs, ys, marker="o", color=color, label=label)
        if miss:
            xs, ys = zip(*miss, strict=True)
            ax.scatter(
                xs,
                ys,
                marker="^",
                s=50,
                facecolors="none",
                edgecolors=color,
                label=None if pts else label,
            )
    bpts = sorted((b["m_prime"], b["neurons"]) for b in result.bounds.values())
    if bpts:
        xs, ys = zip(*bpts, strict=True)
        ax.plot(xs, ys, "k--", label="lower bound (1-bit parameters)")
    ax.set_xscale("log")
    ax.set_yscale("log")
    ax.set_xlabel("m' (target pairs)")
    ax.set_ylabel("neurons for zero thresholded errors")
    ax.set_title(
        "W3: neurons for zero errors (m = min(m', 10^4), s = 2; input layer counted)\n"
        "open triangles: largest width tried, still with errors",
        fontsize=10,
    )
    ax.legend(fontsize=8, loc="upper left", bbox_to_anchor=(1.01, 1.0))
    fig.tight_layout()
    from superpose._atomic import atomic_path

    try:
        with atomic_path(path) as tmp:
            fig.savefig(tmp, format="png", dpi=120)
    finally:
        plt.close(fig)
