"""``superpose export``: a saved network as an ONNX model or a torch export directory."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from superpose.cli._app import app, console, print_json


@app.command("export")
def export_command(
    directory: Annotated[Path, typer.Argument(help="Network directory.")],
    out: Annotated[
        str,
        typer.Option(
            "--out",
            metavar="PATH",
            help="ONNX file, or (--format torch) directory for model.safetensors + config.json.",
        ),
    ],
    fmt: Annotated[
        str, typer.Option("--format", metavar="onnx|torch", help="onnx or torch.")
    ] = "onnx",
    dtype: Annotated[
        str | None,
        typer.Option(
            "--dtype",
            metavar="float32|float64",
            help="Type the model computes in (default: float32 when exact, else float64).",
        ),
    ] = None,
    as_json: Annotated[
        bool, typer.Option("--json", help="Print what was written as JSON.")
    ] = False,
) -> None:
    """Export the whole pipeline (features -> codes and layers -> outputs) to ONNX or torch.

    The ONNX model has input 'features' (float32, [batch, m]) and output 'outputs' (float32,
    [batch, n_outputs], 0/1), equal to 'predict'; it needs the extra superpose[onnx]. The torch
    export is a safetensors state plus JSON config; superpose.torch.load() reads it back.
    """
    from superpose.torch import export_network

    with console.status(f"exporting {directory}", spinner="dots"):
        info = export_network(directory, fmt, out, dtype=dtype)
    if as_json:
        print_json(info)
        return
    console.print(
        f"{info['format']}: {info['path']} ({info['bytes']:,} bytes, {info['dtype']}, "
        f"{info['features']:,} features -> {info['outputs']:,} outputs)"
    )
