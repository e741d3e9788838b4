"""Reports from sweep results: a Markdown page, PNG figures, and every figure's data as CSV.

:func:`write_report` reads a results file written by :mod:`superpose.sweep` and writes, into
one directory (each file atomically):

* ``neurons.png`` -- total neurons against m' (log-log), one line per construction setting,
  the searched width when the sweep ran a width search, the counting lower bound (total
  neurons, 1-bit parameters) and the naive network (m + m');
* ``parameters.png`` -- dense parameters (every weight and bias of every layer, what the
  counting bound with b-bit parameters is about) and non-zero parameters against m', with
  the parameter lower bound (1-bit parameters) and the naive network's dense and non-zero
  counts;
* ``errors.png`` -- the observed per-input error rate and its 95% Clopper-Pearson upper
  bound against m';
* ``tightness.png`` -- neurons and description bits divided by their lower bounds;
* ``<figure>.csv`` beside each PNG with exactly the plotted numbers;
* ``report.md`` -- the figures, a table per point group, and the failed points.

Replicates (seeds) of one setting are averaged; the CSV keeps min, max and their count.

Example:
    >>> import tempfile, os
    >>> from superpose.sweep import parse_spec, run_sweep
    >>> spec = parse_spec({"grid": {"family": "and2", "outputs": [50, 100],
    ...     "construction": "naive"}, "measure": {"verify": {"samples": 100}}})
    >>> d = tempfile.mkdtemp()
    >>> _ = run_sweep(spec, os.path.join(d, "r.sqlite"))
    >>> files = write_report(os.path.join(d, "r.sqlite"), os.path.join(d, "out"))
    >>> sorted(p.name for p in files.values())[:3]
    ['errors.csv', 'errors.png', 'neurons.csv']
"""

from __future__ import annotations

import csv
import io
import math
import os
from collections import defaultdict
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from superpose._atomic import check_output, write_directory
from superpose._inputs import short_repr
from superpose.errors import SuperposeError

FIGURES = ("neurons", "parameters", "errors", "tightness")
CSV_COLUMNS = ("series", "kind", "outputs", "value", "min", "max", "replicates")


@dataclass
class Series:
    """One plotted line: values by m' (each a list over replicates)."""

    label: str
    kind: str
    values: dict[int, list[float]] = field(default_factory=lambda: defaultdict(list))

    def add(self, x: int, y: float | None) -> None:
        if y is not None and not (isinstance(y, float) and math.isnan(y)):
            self.values[int(x)].append(float(y))

    def rows(self) -> list[tuple[int, float, float, float, int]]:
        out = []
        for x in sorted(self.values):
            ys = self.values[x]
            out.append((x, sum(ys) / len(ys), min(ys), max(ys), len(ys)))
        return out


MAX_VALUE = 1e30
"""Largest magnitude of a plotted number: far beyond any count, and safely a float."""


def _is_number(v: Any) -> bool:
    if isinstance(v, bool) or not isinstance(v, (int, float)):
        return False
    return abs(v) <= MAX_VALUE and (isinstance(v, int) or math.isfinite(v))


def check_row(row: dict[str, Any], source: str | os.PathLike[str]) -> None:
    """Refuse a row (from :func:`superpose.sweep.read_results`) the report cannot use.

    The JSON columns are already known to be objects; this checks every field the report
    reads, with its type and range, so an edited or damaged results file gives one line
    naming the row, column and field instead of a failure deep in plotting.

    Example:
        >>> row = {"key": "k1", "status": "ok", "params": {"family": "and2"}, "result": {}}
        >>> try:
        ...     check_row(row, "r.sqlite")
        ... except SuperposeError as exc:
        ...     print(exc)
        r.sqlite: results row with key 'k1', column params: construction must be text, got None
    """
    where = f"{source}: results row with key {short_repr(row.get('key'), 40)}"

    def need(column: str, field: str, value: Any, ok: bool, want: str) -> None:
        if not ok:
            raise SuperposeError(
                f"{where}, column {column}: {field} must be {want}, got {short_repr(value)}"
            )

    def mapping(column: str, field: str, value: Any, optional: bool = True) -> dict[str, Any]:
        if value is None and optional:
            return {}
        need(column, field, value, isinstance(value, dict), "a JSON object")
        return value

    def numbers(column: str, prefix: str, obj: dict[str, Any], *keys: str) -> None:
        for k in keys:
            v = obj.get(k)
            want = f"a number (at most {MAX_VALUE:.0e} in size)"
            need(column, prefix + k, v, v is None or _is_number(v), want)

    p = row["params"]
    for k in ("construction", "family"):
        need("params", k, p.get(k), isinstance(p.get(k), str), "text")
    sparsity = p.get("sparsity")
    need("params", "sparsity", sparsity, _is_number(sparsity), "a number")
    mapping("params", "params", p.get("params"))
    if row["status"] != "ok":
        return
    res = row["result"]
    task = mapping("result", "task", res.get("task"), optional=False)
    for k in ("outputs", "features"):
        v = task.get(k)
        ok = isinstance(v, int) and not isinstance(v, bool) and 1 <= v <= MAX_VALUE
        need("result", "task." + k, v, ok, "a positive integer")
    counts = mapping("result", "counts", res.get("counts"), optional=False)
    numbers("result", "counts.", counts, "neurons", "dense_parameters", "nonzero_parameters")
    search = mapping("result", "width_search", res.get("width_search"))
    numbers(
        "result",
        "width_search.counts.",
        mapping("result", "width_search.counts", search.get("counts")),
        "neurons",
        "dense_parameters",
    )
    ver = mapping("result", "verify", res.get("verify"))
    checked, wrong = ver.get("inputs_checked"), ver.get("inputs_with_error")
    for k, v in (("inputs_checked", checked), ("inputs_with_error", wrong)):
        ok = v is None or (isinstance(v, int) and not isinstance(v, bool) and 0 <= v <= MAX_VALUE)
        need("result", "verify." + k, v, ok, "an integer >= 0")
    if checked is not None:
        ok = wrong is not None and wrong <= checked
        need("result", "verify.inputs_with_error", wrong, ok, f"at most inputs_checked ({checked})")
    bounds = mapping("result", "bounds", res.get("bounds"))
    numbers(
        "result", "bounds.", bounds, "total_neurons_lower_bound_1bit", "parameters_lower_bound_1bit"
    )
    tight = mapping("result", "bounds.tightness", bounds.get("tightness"))
    numbers("result", "bounds.tightness.", tight, "neurons_ratio", "bits_ratio")
    naive = mapping("result", "naive", res.get("naive"))
    numbers("result", "naive.", naive, "neurons", "nonzero_parameters", "dense_parameters")


def _setting(row: dict[str, Any]) -> str:
    """Label of a construction setting: construction(params) family s= [influence] [m=]."""
    p = row["params"]
    params = ", ".join(f"{k}={v}" for k, v in sorted(p.get("params", {}).items()))
    label = p["construction"] + (f"({params})" if params else "")
    label += f" {p['family']} s={p['sparsity']}"
    if p.get("influence", "uniform") != "uniform":
        label += f" {p['influence']}"
    if p.get("arity") is not None:
        label += f" k={p['arity']}"
    if p.get("depth") is not None:
        label += f" D={p['depth']}"
    label += _m_rule(row)
    return label


def _m_rule(row: dict[str, Any]) -> str:
    task = row["result"]["task"]
    from superpose.families import FAMILY_SPECS

    spec = FAMILY_SPECS.get(row["params"]["family"])
    if task["features"] == task["outputs"] or (
        spec is not None and spec.sizes != "features+outputs"
    ):
        return ""
    return f" m={task['features']}"


def _family_label(row: dict[str, Any]) -> str:
    return f"{row['params']['family']}{_m_rule(row)}"


def collect(rows: list[dict[str, Any]]) -> dict[str, list[Series]]:
    """The series of every figure, from decoded result rows (status ``ok``)."""
    figs: dict[str, dict[tuple[str, str], Series]] = {f: {} for f in FIGURES}

    def series(fig: str, label: str, kind: str) -> Series:
        key = (label, kind)
        if key not in figs[fig]:
            figs[fig][key] = Series(label, kind)
        return figs[fig][key]

    # Reference lines depend on the task only: one value per (family, m-rule, m') even if
    # several constructions or replicates share it.
    refs: dict[tuple[str, int], dict[str, float]] = {}
    for row in rows:
        res = row["result"]
        x = int(res["task"]["outputs"])
        label = _setting(row)
        counts = res.get("counts", {})
        series("neurons", label, "network").add(x, counts.get("neurons"))
        series("parameters", label, "dense").add(x, counts.get("dense_parameters"))
        series("parameters", label, "nonzero").add(x, counts.get("nonzero_parameters"))
        search = res.get("width_search") or {}
        if search.get("found"):
            sc = search.get("counts", {})
            series("neurons", label + " [searched width]", "searched").add(x, sc.get("neurons"))
            series("parameters", label + " [searched width]", "searched").add(
                x, sc.get("dense_parameters")
            )
        ver = res.get("verify")
        if ver and ver.get("inputs_checked"):
            series("errors", label, "observed").add(
                x, ver["inputs_with_error"] / ver["inputs_checked"]
            )
            series("errors", label, "checked").add(x, ver["inputs_checked"])
            series("errors", label, "wrong").add(x, ver["inputs_with_error"])
        bounds = res.get("bounds") or {}
        tight = bounds.get("tightness") or {}
        series("tightness", label, "neurons_ratio").add(x, tight.get("neurons_ratio"))
        series("tightness", label, "bits_ratio").add(x, tight.get("bits_ratio"))
        fam = _family_label(row)
        refs.setdefault((fam, x), {}).update(
            {
                k: v
                for k, v in {
                    "neurons_bound": bounds.get("total_neurons_lower_bound_1bit"),
                    "parameters_bound": bounds.get("parameters_lower_bound_1bit"),
                    "naive_neurons": (res.get("naive") or {}).get("neurons"),
                    "naive_parameters": (res.get("naive") or {}).get("nonzero_parameters"),
                    "naive_dense": (res.get("naive") or {}).get("dense_parameters"),
                }.items()
                if v is not None
            }
        )
    for (fam, x), ref in sorted(refs.items()):
        if "neurons_bound" in ref:
            series("neurons", f"lower bound ({fam}, 1-bit parameters)", "bound").add(
                x, ref["neurons_bound"]
            )
        if "naive_neurons" in ref:
            series("neurons", f"naive ({fam}): m + m'", "naive").add(x, ref["naive_neurons"])
        if "parameters_bound" in ref:
            series("parameters", f"lower bound ({fam}, 1-bit parameters)", "bound").add(
                x, ref["parameters_bound"]
            )
        if "naive_dense" in ref:
            series("parameters", f"naive ({fam}), dense", "naive").add(x, ref["naive_dense"])
        if "naive_parameters" in ref:
            series("parameters", f"naive ({fam}), non-zero", "naive_nonzero").add(
                x, ref["naive_parameters"]
            )
    out: dict[str, list[Series]] = {}
    for fig in FIGURES:
        out[fig] = [s for s in figs[fig].values() if s.values]
    _add_error_bounds(out["errors"])
    return out


def _add_error_bounds(series: list[Series]) -> None:
    """Replace per-replicate 'checked'/'wrong' helpers by the pooled rate's 95% upper bound."""
    from superpose.verification import clopper_pearson_upper

    checked = {s.label: s for s in series if s.kind == "checked"}
    wrong = {s.label: s for s in series if s.kind == "wrong"}
    keep = [s for s in series if s.kind == "observed"]
    for label, c in checked.items():
        upper = Series(label, "upper_95")
        for x, ys in c.values.items():
            n, k = int(sum(ys)), int(sum(wrong[label].values[x]))
            # Pooled over the replicates: the same bound listed once per replicate.
            upper.values[x] = [clopper_pearson_upper(k, n)] * len(ys)
        keep.append(upper)
    series[:] = keep


def _csv_text(series: list[Series]) -> str:
    buf = io.StringIO()
    writer = csv.writer(buf, lineterminator="\n")
    writer.writerow(CSV_COLUMNS)
    for s in series:
        for x, mean, lo, hi, n in s.rows():
            writer.writerow([s.label, s.kind, x, repr(mean), repr(lo), repr(hi), n])
    return buf.getvalue()


_STYLE = {
    "network": {"linestyle": "-", "marker": "o"},
    "dense": {"linestyle": "-", "marker": "o"},
    "nonzero": {"linestyle": ":", "marker": "x"},
    "naive_nonzero": {"linestyle": "-.", "color": "0.45", "marker": None},
    "searched": {"linestyle": "--", "marker": "s"},
    "bound": {"linestyle": "--", "color": "black", "marker": None},
    "naive": {"linestyle": ":", "color": "0.45", "marker": None},
    "observed": {"linestyle": "none", "marker": "x"},
    "upper_95": {"linestyle": "-", "marker": "."},
    "neurons_ratio": {"linestyle": "-", "marker": "o"},
    "bits_ratio": {"linestyle": "--", "marker": "^"},
}

_TITLES = {
    "neurons": ("Neurons against m'", "total neurons (all layers)"),
    "parameters": (
        "Parameters against m' (solid: dense, dotted: non-zero)",
        "parameters (weights + biases)",
    ),
    "errors": ("Per-input error rate (95% upper bound: line; observed > 0: x)", "error rate"),
    "tightness": ("Tightness: network / lower bound (solid: neurons, dashed: bits)", "ratio"),
}


def _figure_png(name: str, series: list[Series]) -> bytes:
    from superpose._numeric import pyplot

    plt = pyplot()
    fig = plt.figure(figsize=(8.0, 5.2), dpi=110)
    ax = fig.add_subplot()
    colors: dict[str, Any] = {}
    palette = iter(
        ["C0", "C1", "C2", "C3", "C4", "C5", "C6", "C8", "C9", "tab:olive", "tab:brown"] * 10
    )
    any_positive = False
    for s in series:
        pts = [(x, m) for x, m, _, _, _ in s.rows() if m > 0]  # log axes
        if not pts:
            continue
        any_positive = True
        style = dict(_STYLE.get(s.kind, {}))
        base = s.label.replace(" [searched width]", "")
        if "color" not in style:
            if base not in colors:
                colors[base] = next(palette)
            style["color"] = colors[base]
        show_label = s.kind not in ("observed", "nonzero", "bits_ratio")
        xs, ys = zip(*pts, strict=True)
        ax.plot(xs, ys, label=s.label if show_label else None, **style)
    ax.set_xscale("log")
    if any_positive:
        ax.set_yscale("log")
    title, ylabel = _TITLES[name]
    ax.set_title(title)
    ax.set_xlabel("m' (output features)")
    ax.set_ylabel(ylabel)
    ax.grid(True, which="both", alpha=0.3)
    if ax.get_legend_handles_labels()[0]:
        ax.legend(fontsize=7, loc="best")
    if not any_positive:
        ax.text(0.5, 0.5, "no data", transform=ax.transAxes, ha="center")
    fig.subplots_adjust(left=0.1, right=0.97, bottom=0.1, top=0.93)  # fixed: fast, stable
    buf = io.BytesIO()
    fig.savefig(buf, format="png", metadata={"Software": None})
    plt.close(fig)
    return buf.getvalue()


def _fmt(v: Any, digits: int = 3) -> str:
    if v is None:
        return "–"
    if isinstance(v, float):
        if v == 0:
            return "0"
        if abs(v) >= 1000:
            return f"{v:,.0f}"
        return f"{v:.{digits}g}"
    if isinstance(v, int):
        return f"{v:,}"
    return str(v)


def _points_table(rows: list[dict[str, Any]]) -> list[str]:
    """One Markdown row per (setting, m'), replicates pooled."""
    from superpose.verification import clopper_pearson_upper

    groups: dict[tuple[str, int], list[dict[str, Any]]] = defaultdict(list)
    for row in rows:
        groups[(_setting(row), int(row["result"]["task"]["outputs"]))].append(row)
    lines = [
        "| setting | m | m' | seeds | neurons | widths | dense params | non-zero params | "
        "wrong / checked | "
        "95% upper | neurons ratio | bits ratio | searched neurons |",
        "|---|---:|---:|---:|---:|---|---:|---:|---:|---:|---:|---:|---:|",
    ]

    def mean(vals: list[Any]) -> float | None:
        vals = [v for v in vals if v is not None]
        return sum(vals) / len(vals) if vals else None

    for (label, x), grp in sorted(groups.items(), key=lambda kv: (kv[0][0], kv[0][1])):
        res = [g["result"] for g in grp]
        checked = sum((r.get("verify") or {}).get("inputs_checked", 0) for r in res)
        wrong = sum((r.get("verify") or {}).get("inputs_with_error", 0) for r in res)
        tight = [(r.get("bounds") or {}).get("tightness") or {} for r in res]
        searched = [
            (r.get("width_search") or {}).get("counts", {}).get("neurons")
            for r in res
            if (r.get("width_search") or {}).get("found")
        ]
        widths = {str(r["counts"].get("layer_widths")) for r in res}
        lines.append(
            "| "
            + " | ".join(
                [
                    label,
                    _fmt(res[0]["task"]["features"]),
                    _fmt(x),
                    str(len(grp)),
                    _fmt(mean([r["counts"].get("neurons") for r in res])),
                    widths.pop() if len(widths) == 1 else "varies",
                    _fmt(mean([r["counts"].get("dense_parameters") for r in res])),
                    _fmt(mean([r["counts"].get("nonzero_parameters") for r in res])),
                    f"{wrong:,} / {checked:,}" if checked else "–",
                    _fmt(clopper_pearson_upper(wrong, checked)) if checked else "–",
                    _fmt(mean([t.get("neurons_ratio") for t in tight])),
                    _fmt(mean([t.get("bits_ratio") for t in tight])),
                    _fmt(mean(searched)) if searched else "–",
                ]
            )
            + " |"
        )
    return lines


def render_markdown(
    source: str,
    rows: list[dict[str, Any]],
    failed: list[dict[str, Any]],
    figures: dict[str, list[Series]],
    title: str | None = None,
) -> str:
    """The text of ``report.md``."""
    sweeps = sorted({r["sweep"] for r in rows + failed})
    out = [f"# {title or 'Sweep report'}", ""]
    out.append(
        f"Source: `{os.path.basename(source)}` — sweeps: {', '.join(sweeps) or '–'}; "
        f"{len(rows)} finished points, {len(failed)} failed."
    )
    out.append("")
    out.append(
        "Neurons count every layer (the superposed input and output layers included). The lower "
        "bounds are the counting bounds of docs/DESIGN.md, Bounds with 1-bit parameters; tightness ratios use "
        "each network's own depth and bits per parameter. Error rates are per input, pooled over "
        "seeds, with a one-sided 95% Clopper–Pearson upper bound. The superposed constructions are "
        "our own design (not the paper's exact algorithm)."
    )
    out.append("")
    captions = {
        "neurons": "Neurons against m' (log–log), with the lower bound and the naive network.",
        "parameters": "Dense and non-zero parameters against m' (log–log), with the lower "
        "bound and naive.",
        "errors": "Error rate per input against m'.",
        "tightness": "Tightness ratio (network / lower bound) against m'.",
    }
    for name in FIGURES:
        if not figures.get(name):
            continue
        out += [f"## {captions[name]}", "", f"![{name}]({name}.png)", ""]
        out += [f"Data: [{name}.csv]({name}.csv)", ""]
    if rows:
        out += ["## Points", ""] + _points_table(rows) + [""]
    if failed:
        out += ["## Failed points", "", "| point | error |", "|---|---|"]
        for r in failed[:50]:
            p = r["params"]
            msg = str(r.get("error") or "").splitlines()[0].replace("|", "\\|")
            out.append(
                f"| {p.get('construction')} {p.get('family')} m'={p.get('outputs')} "
                f"#{p.get('seed')} | {msg} |"
            )
        if len(failed) > 50:
            out.append(f"| … | {len(failed) - 50} more |")
        out.append("")
    return "\n".join(out)


def write_report(
    results: str | os.PathLike[str],
    out_dir: str | os.PathLike[str],
    *,
    title: str | None = None,
    out_label: str = "out_dir",
) -> dict[str, Path]:
    """Write ``report.md``, the PNG figures and their CSV data for a results file into ``out_dir``.

    Returns the written files by name (``"report.md"``, ``"neurons.png"``, ``"neurons.csv"``,
    ...). Figures without data are skipped. ``out_dir`` is checked before the results are read
    (``out_label`` names it in the error).
    """
    from superpose.sweep import read_results

    out = check_output(out_dir, option=out_label)
    everything = read_results(results, status=None)
    for row in everything:
        check_row(row, results)
    rows = [r for r in everything if r["status"] == "ok"]
    failed = [r for r in everything if r["status"] == "error"]
    if not rows and not failed:
        raise SuperposeError(f"{results}: no finished points to report")
    figures = collect(rows)
    files: dict[str, bytes] = {}
    for name in FIGURES:
        series = figures.get(name) or []
        if not series:
            continue
        files[f"{name}.csv"] = _csv_text(series).encode("utf-8")
        files[f"{name}.png"] = _figure_png(name, series)
    files["report.md"] = render_markdown(str(results), rows, failed, figures, title).encode("utf-8")
    # A new directory appears only complete; in an existing one each file is replaced atomically.
    write_directory(out, files, "the report")
    return {name: out / name for name in files}


__all__ = ["FIGURES", "Series", "check_row", "collect", "render_markdown", "write_report"]
