"""``superpose info``: counts, parameters and provenance of a saved network."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Any

import typer
from rich import box
from rich.table import Table

from superpose.cli._app import app, console, print_json


@app.command("info")
def info_command(
    directory: Annotated[Path, typer.Argument(help="Network directory.")],
    as_json: Annotated[bool, typer.Option("--json", help="Print as JSON.")] = False,
) -> None:
    """Show a network's layer widths, neurons, parameters, bits, codes and provenance."""
    from superpose.workflow import network_info

    info = network_info(directory)
    if as_json:
        print_json(info)
        return
    table = Table(title=f"{directory}: {info['construction']}", show_header=False)
    table.add_column("key", style="bold")
    table.add_column("value")
    for key in (
        "features_in",
        "features_out",
        "layer_widths",
        "neurons",
        "relu_neurons",
        "step_units",
        "nonzero_parameters",
        "dense_parameters",
        "bits_per_parameter",
        "description_bits",
        "seed",
        "superpose_version",
    ):
        value = info[key]
        table.add_row(key, f"{value:,.0f}" if isinstance(value, float) else str(value))
    table.add_row("params", ", ".join(f"{k}={v}" for k, v in info["params"].items()) or "-")
    table.add_row("input code", str(info["input_code"]))
    table.add_row("output code", str(info["output_code"]))
    for key, value in (info.get("tightness") or {}).items():
        table.add_row(
            f"tightness.{key}", f"{value:.3g}" if isinstance(value, float) else str(value)
        )
    for key, value in info["extras"].items():
        if key in ("stages", "check", "residual"):
            continue
        table.add_row(f"extras.{key}", str(value)[:200])
    mech = info.get("mechanisms")
    if not mech:
        table.add_row("shared weights", info.get("mechanisms_note", "-"))
    else:
        table.add_row(
            "shared weights",
            f"{mech['weights_shared']:,} of {mech['weights']:,} non-zero weights "
            f"({mech['shared_weight_share']:.1%}) serve two or more gates; "
            f"{mech['weights_private']:,} serve one, "
            f"{mech['weights'] - mech['weights_used']:,} none (docs/MECHANISMS.md)",
        )
    console.print(table)
    line = info["check_line"]
    if info["check"]["kind"] == "none":  # the remedy, in the command line's words
        line += f"; superpose verify {directory} checks it now"
    console.print(line, soft_wrap=True)
    stages = info["extras"].get("stages")
    if stages:
        console.print(stages_table(stages, info["layer_widths"][0]))
    residual = info.get("residual")
    if isinstance(residual, dict) and residual.get("blocks"):
        console.print(residual_table(residual))
        console.print(comparison_table(residual["compare"]))


def comparison_table(compare: dict[str, Any]) -> Table:
    """Neurons and non-zero parameters of the stream network beside circuit and naive."""
    table = Table(title="the same task, three ways (neurons: residual stream counted once)")
    for title in ("construction", "neurons", "non-zero parameters", "numbers"):
        table.add_column(title, justify="right")
    for name, row in compare.items():
        cells = [
            "-" if row.get(k) is None else f"{row[k]:,}" for k in ("neurons", "nonzero_parameters")
        ]
        table.add_row(name, *cells, row["source"])
    return table


def residual_table(residual: dict[str, Any]) -> Table:
    """A ``stream`` network as the residual network it is: the stream counted once, then
    each block's hidden units (the identity rows of the skip connection cost no neuron). A
    ``cleanup`` block erases the stream and writes back copies of the nodes still needed."""
    table = Table(
        title=(
            f"residual stream: d = {residual['stream_width']:,}; neurons = d + hidden = "
            f"{residual['neurons']:,}; non-zero parameters {residual['nonzero_parameters']:,}\n"
            "units per block: copy (clean-up), pool, and, pres(ent), det(ector); error: predicted"
        ),
        box=box.SIMPLE_HEAD,
        padding=(0, 1),
        collapse_padding=True,
        pad_edge=False,
    )
    table.add_column("kind", no_wrap=True)
    # Short titles (the legend is in the title), and only the columns some block uses: the
    # table fits 80 columns.
    cols = [
        (key, title)
        for key, title in (
            ("level", "lvl"),
            ("gates", "gates"),
            ("active_bound", "bound"),
            ("copy_units", "copy"),
            ("pool_units", "pool"),
            ("and_units", "and"),
            ("present_units", "pres"),
            ("detector_units", "det"),
            ("hidden_units", "hidden"),
            ("nonzero_parameters", "params"),
        )
        if any(b.get(key) for b in residual["blocks"])
    ]
    for _, title in cols:
        table.add_column(title, justify="right", no_wrap=True)
    table.add_column("error", justify="right", no_wrap=True)
    for b in residual["blocks"]:
        err = b.get("predicted_error")
        table.add_row(
            b.get("kind", "block"),
            *(f"{b[k]:,}" if k in b else "-" for k, _ in cols),
            "-" if err is None else f"{err:.2g}",
        )
    return table


def stages_table(stages: list[dict[str, Any]], input_width: int) -> Table:
    """One row per layer of a deep network: what it computes, carries, and how wide it is."""
    table = Table(title="stages (layer 0 = input code; bound = most true gates of the level)")
    cols = (
        ("layer", "layer"),
        ("level", "lvl"),
        ("kind", "kind"),
        ("gates", "gates"),
        ("carries", "carried"),
        ("nodes", "held"),
        ("active_bound", "bound"),
        ("sized_for", "sized"),
        ("pool_width", "pool"),
        ("copy_width", "copies"),
        ("width", "width"),
        ("private", "priv"),
    )
    for _, title in cols:
        table.add_column(title, justify="right")
    table.add_row("0", "0", "input", "-", "-", "-", "-", "-", "-", "-", f"{input_width:,}", "-")
    for i, st in enumerate(stages, start=1):
        cells = []
        for key, _ in cols:
            if key == "layer":
                cells.append(str(i))
                continue
            value = st.get(key, "-")
            cells.append(
                f"{value:,}"
                if isinstance(value, int) and not isinstance(value, bool)
                else str(value)
            )
        table.add_row(*cells)
    return table
