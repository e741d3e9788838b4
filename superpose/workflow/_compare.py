"""``compare_to_files``: the one call behind ``superpose compare``.

A comparison can run for an hour, so every path it will write is checked before it starts; the
files it writes (JSON, markdown tables, plot, loss curves) are each written atomically, so an
interrupted run leaves no half file.
"""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Any

from superpose.errors import SuperposeError

if TYPE_CHECKING:
    from superpose.compare import WorkloadResult


def compare_to_files(
    workload: str,
    *,
    plot: str | Path | None = None,
    markdown: str | Path | None = None,
    out: str | Path | None = None,
    task_file: str | Path | None = None,
    **run: Any,
) -> WorkloadResult:
    """Run :func:`superpose.compare.run_workload` (``run`` are its arguments) and write its files.

    ``task_file`` is a task to run the workload on instead of its own, read first. Every path
    is checked before the run (a comparison can take an hour): ``plot`` must be a ``.png`` and,
    like ``markdown``, writable (:func:`superpose._atomic.check_output`); ``out`` is created,
    and receives ``compare.json``, ``compare.md`` and the trained baselines' loss curves;
    ``markdown`` gets the tables. Every file is written atomically.
    """
    import json

    from superpose._atomic import check_output, write_text
    from superpose._numeric import json_default
    from superpose.compare import markdown as to_markdown
    from superpose.compare import plot as make_plot
    from superpose.compare import run_workload

    if task_file is not None:
        from superpose.task import load_task

        run["task"] = load_task(task_file)
    if plot is not None and Path(plot).suffix.lower() != ".png":
        raise SuperposeError(f"plot must name a .png file, got {plot}", cli="--plot")
    for path, label in ((plot, "plot"), (markdown, "markdown")):
        if path is not None:
            check_output(path, option=label, kind="file")
    out = None if out is None else Path(out)
    if out is not None and out.exists() and not out.is_dir():
        raise SuperposeError(f"out {out}: exists and is not a directory", cli="--out")
    if out is not None:
        try:
            out.mkdir(parents=True, exist_ok=True)
        except OSError as exc:
            raise SuperposeError(
                f"out {out}: cannot be created ({exc.strerror})", cli="--out"
            ) from None
    result = run_workload(workload, loss_dir=out, **run)
    if plot is not None:
        make_plot(result, str(plot))
    if markdown is not None:
        write_text(markdown, to_markdown(result))
    if out is not None:
        text = json.dumps(result.to_dict(), indent=1, default=json_default)
        write_text(out / "compare.json", text + "\n")
        write_text(out / "compare.md", to_markdown(result))
    return result
