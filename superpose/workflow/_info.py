"""``network_info``: the one call behind ``superpose info``.

What a saved network is, in one dict: its counts (neurons, parameters, bits), its codes and
provenance, the check it passed when it was written (or why it carries none), how close it is
to the counting bound, which of its weights serve several gates, and, for a residual-stream
network, the same task built the other ways beside it. Everything is computed here, so the
command only renders, and a notebook gets the same numbers as the terminal.

Example:
    >>> import tempfile
    >>> from superpose import build, families, save_network
    >>> from superpose.seeds import Seeds
    >>> task = families.generate("and2", Seeds(0).rng("task"), features=30, outputs=40)
    >>> d = tempfile.mkdtemp() + "/net"
    >>> _ = save_network(build(task), d)
    >>> info = network_info(d)
    >>> info["construction"], info["neurons"], info["check"]["kind"]
    ('naive', 70, 'exact')
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

INFO_MECHANISM_WEIGHTS = 10**7
"""``info`` computes the shared-weight share up to this many weights (about 15 s)."""


def unchecked_reason(net: Any) -> str:
    """Why a saved network carries no check: a model loaded with ``superpose.own`` (a user's
    torch MLP) or derived with ``superpose.mechanisms.additive`` was never checked; any other
    was written before builds recorded theirs."""
    if net.construction == "own":
        return "a loaded model (superpose.own): nothing has checked it"
    if "additive" in net.extras:
        return "derived with superpose.mechanisms.additive: nothing has checked it"
    return "older file: written before builds recorded their check"


def network_info(directory: str | Path) -> dict[str, Any]:
    """Everything ``superpose info`` shows, as a dict."""
    from superpose.check import recorded_check
    from superpose.io import load_network, read_meta

    meta = read_meta(directory)
    net = load_network(directory)
    info: dict[str, Any] = {
        **net.counts().to_dict(),
        "seed": net.seed,
        "superpose_version": meta.get("superpose_version"),
        "format_version": meta.get("format_version"),
        "params": net.params,
        "task": meta["task"],
        "input_code": net.input_code.meta(),
        "output_code": net.output_code.meta(),
        "extras": net.extras,
    }
    # How the network is known to be right: the check it passed when it was written
    # (kind exact / exhaustive / sampled / none); a network from an older build has none.
    check = recorded_check(net)
    if check is not None:
        info["check"], info["check_line"] = check.to_dict(), check.describe()
    else:
        why = unchecked_reason(net)
        info["check"] = {"kind": "none", "passed": None, "why": why}
        info["check_line"] = f"check: none recorded ({why})"
    residual = net.extras.get("residual")
    if net.construction == "stream" and isinstance(residual, dict):
        info["residual"] = residual_comparison(net)
    try:
        from superpose.bounds import tightness
    except ImportError:
        pass
    else:
        info["tightness"] = tightness(net)
    # Which weights serve several gates (a weight is the union of the gates' masks).
    from superpose.errors import SuperposeError
    from superpose.mechanisms import of

    nnz = sum(lay.weight.nnz for lay in net.layers)
    try:
        if nnz > INFO_MECHANISM_WEIGHTS:
            raise SuperposeError(
                f"shared weights not computed for {nnz:,} weights (info stops at "
                f"{INFO_MECHANISM_WEIGHTS:,}); use superpose.mechanisms.of(net)"
            )
        summary = of(net).summary()
    except SuperposeError as exc:  # e.g. a loaded model whose units fire at rest
        info["mechanisms_note"] = str(exc)
    else:
        info["mechanisms"] = {k: v for k, v in summary.items() if k not in ("layers", "units")}
        info["mechanisms"]["layers"] = summary["layers"]
    return info


def residual_comparison(net: Any) -> dict[str, Any]:
    """A ``stream`` network's residual accounting beside the same task's other networks:
    ``stream`` (built: the stream once + every block's hidden units), ``circuit`` (the MLP
    chain's planned neurons: every layer, copies included) and ``naive`` (the explicit
    network, built: one neuron per input and per gate)."""
    from superpose.constructions import build as build_raw
    from superpose.pipeline import planned_neurons

    res = net.extras["residual"]
    task = net.task
    rows: dict[str, Any] = {
        "stream": {
            "stream_width": res["stream_width"],
            "hidden_units": res["hidden_units"],
            "neurons": res["neurons"],
            "nonzero_parameters": res["nonzero_parameters"],
            "source": "built",
        }
    }
    circuit = planned_neurons(task, "circuit", {})
    rows["circuit"] = {
        "neurons": circuit,
        "nonzero_parameters": None,
        "source": "planned" if circuit is not None else "cannot plan this task",
    }
    naive = build_raw(task, "naive").counts()
    rows["naive"] = {
        "neurons": int(naive["neurons"]),
        "nonzero_parameters": int(naive["nonzero_parameters"]),
        "source": "built",
    }
    return {**res, "compare": rows}
