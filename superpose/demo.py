"""The demo: build a default 2-AND instance with each construction, verify, compare, report."""

from __future__ import annotations

import json
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

from superpose._atomic import atomic_path, write_text
from superpose.check import check_network
from superpose.constructions import CONSTRUCTIONS, build
from superpose.families import pairs
from superpose.seeds import Seeds

DEMO_FEATURES = 20_000
DEMO_OUTPUTS = 20_000
DEMO_SPARSITY = 2
DEMO_SAMPLES = 2_000


def _bounds_row(task: Any) -> dict[str, float]:
    """The counting lower bounds for the demo task (1-bit parameters, any depth)."""
    from superpose import bounds

    report = bounds.bounds_report(bounds.family_of_task(task), layers=1, bits_per_parameter=1)
    return {
        "log2_instances": float(report["log2_instances"]),
        "neurons_lower_bound": float(report["total_neurons_lower_bound"]),
        "neurons_per_layer_one_weight_layer": float(report["neurons_lower_bound"]),
        "parameters_lower_bound": float(report["parameters_lower_bound"]),
    }


def run_demo(
    out_dir: str | Path,
    *,
    features: int = DEMO_FEATURES,
    outputs: int = DEMO_OUTPUTS,
    sparsity: int = DEMO_SPARSITY,
    samples: int = DEMO_SAMPLES,
    seed: int = 0,
    progress: Callable[[str, int], Callable[[int], None]] | None = None,
    out_label: str = "out_dir",
) -> dict[str, Any]:
    """Build and verify each construction on one random 2-AND task; write report.md and demo.png.

    Returns the rows of the comparison table. ``out_dir`` is checked before any work
    (``out_label`` names it in the error).
    """
    from superpose._atomic import check_output

    out = check_output(out_dir, option=out_label)
    out.mkdir(parents=True, exist_ok=True)
    task = pairs(features, outputs, Seeds(seed).rng("task"), sparsity=sparsity)
    methods = [name for name in ("superposed", "superposed3", "naive") if name in CONSTRUCTIONS]
    rows = []
    for name in methods:
        t0 = time.perf_counter()
        net = build(task, name, seed=seed)
        built = time.perf_counter() - t0
        advance = progress(f"verifying {name}", 2 * samples) if progress else None
        t0 = time.perf_counter()
        # The strongest check each network affords: the exact certificate where one exists,
        # else `samples` random + `samples` targeted inputs (every input is far too many).
        report = check_network(
            net,
            samples=samples,
            rng=Seeds(seed).rng("verify"),
            exhaustive_limit=0,
            progress=advance,
        )
        counts = net.counts()
        rows.append(
            {
                "construction": name,
                "layer_widths": counts["layer_widths"],
                "neurons": counts["neurons"],
                "relu_neurons": counts["relu_neurons"],
                "nonzero_parameters": counts["nonzero_parameters"],
                "description_bits": counts["description_bits"],
                "check": report.kind,
                "check_line": report.describe(),
                "inputs_checked": report.inputs_checked,
                "inputs_with_error": report.inputs_with_error,
                "error_rate_upper_95": report.error_rate_upper_95,
                "build_seconds": built,
                "verify_seconds": time.perf_counter() - t0,
            }
        )
    bound = _bounds_row(task)
    result = {
        "task": {
            "family": "and2",
            "features": features,
            "outputs": outputs,
            "sparsity": sparsity,
            "seed": seed,
        },
        "rows": rows,
        "lower_bound": bound,
    }
    write_text(out / "results.json", json.dumps(result, indent=2))
    _plot(result, out / "demo.png")
    write_text(out / "report.md", _markdown(result))
    return result


def _plot(result: dict[str, Any], path: Path) -> None:
    from superpose._numeric import pyplot

    plt = pyplot()

    rows = result["rows"]
    names = [r["construction"] for r in rows]
    fig, axes = plt.subplots(1, 2, figsize=(9, 3.6))
    for ax, key, label in (
        (axes[0], "neurons", "neurons"),
        (axes[1], "nonzero_parameters", "non-zero parameters"),
    ):
        ax.bar(
            names,
            [r[key] for r in rows],
            color=["#3b75af" if n != "naive" else "#999999" for n in names],
        )
        ax.set_yscale("log")
        ax.set_title(label)
        bound = (result.get("lower_bound") or {}).get(
            "neurons_lower_bound" if key == "neurons" else "parameters_lower_bound"
        )
        if bound:
            label = "lower bound" if key == "neurons" else "lower bound (1-bit dense parameters)"
            ax.axhline(bound, color="#c0392b", linestyle="--", label=label)
            ax.legend(loc="upper left", fontsize=8)
    t = result["task"]
    fig.suptitle(f"2-AND, m = m' = {t['outputs']:,}, s = {t['sparsity']}")
    fig.tight_layout()
    with atomic_path(path) as tmp:
        fig.savefig(tmp, format="png", dpi=110)
    plt.close(fig)


def _markdown(result: dict[str, Any]) -> str:
    t = result["task"]
    lines = [
        "# superpose demo",
        "",
        f"Task: {t['outputs']:,} random 2-input ANDs over {t['features']:,} features, at most {t['sparsity']} active "
        f"(seed {t['seed']}).",
        "",
        "| construction | layer widths | neurons | non-zero parameters | check | inputs checked | inputs with error | 95% error bound |",
        "|---|---|---|---|---|---|---|---|",
    ]
    for r in result["rows"]:
        lines.append(
            f"| {r['construction']} | {r['layer_widths']} | {r['neurons']:,} | {r['nonzero_parameters']:,} | "
            f"{r['check']} | {r['inputs_checked']:,} | {r['inputs_with_error']} | "
            + (f"{ub:.2g}" if (ub := r["error_rate_upper_95"]) is not None else "-")
            + " |"
        )
    bound = result.get("lower_bound")
    if bound:
        lines += [
            "",
            f"Counting lower bound with 1-bit parameters: {bound['neurons_lower_bound']:,.0f} neurons in any layered "
            f"network ({bound['neurons_per_layer_one_weight_layer']:,.0f} per layer with one weight layer), "
            f"{bound['parameters_lower_bound']:,.0f} dense 1-bit parameters (a sparse network also pays for "
            f"the positions of its non-zeros, which is why the naive network can have fewer; log2 of the "
            f"number of instances: "
            f"{bound['log2_instances']:,.0f}).",
        ]
    lines += ["", "![neurons and parameters](demo.png)", ""]
    return "\n".join(lines)
