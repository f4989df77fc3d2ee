"""Everything ``attnbench plot`` writes for a set of results files: per suite, cost figures and ``scaling.md``,
accuracy figures and ``accuracy.md`` (with the learning-rate sweeps)."""

from __future__ import annotations

from pathlib import Path

from attnbench.report.accuracy import plot_accuracy
from attnbench.report.cost import plot_cost, write_scaling_md
from attnbench.report.frame import load_frame
from attnbench.report.sweep import lr_sweeps, sweep_markdown

__all__ = ["plot_results"]


def plot_results(paths: list[str | Path], out_dir: str | Path | None = None, min_tokens: int = 1024,
                 command: str = "", baseline: str | None = None) -> list[Path]:
    """Read results CSV(s); write all figures and ``scaling.md`` to ``<out_dir>/<suite>/``.

    ``baseline`` is the label ratios and crossovers are measured against (default: ``frame.BASELINE``).
    ``out_dir`` defaults to ``plots/`` next to the (first) results file, e.g. ``results/cpu/plots/cpu/``.
    """
    df = load_frame(paths)  # NotResultsError (one line) for a file that is not an attnbench results file
    first = Path(paths[0])
    root = Path(out_dir) if out_dir else (first.parent if first.is_file() else first) / "plots"
    written: list[Path] = []
    for suite, g in df.groupby("suite", sort=False):
        base = root / str(suite)
        if (g["kind"] == "cost").any():
            written += plot_cost(g, base, min_tokens)
            written.append(write_scaling_md(g[g["kind"] == "cost"], base / "scaling.md", min_tokens, command,
                                            baseline))
        if (g["kind"] == "accuracy").any():
            acc = g[g["kind"] == "accuracy"]
            sweeps = lr_sweeps(acc)
            written += plot_accuracy(acc, base, f"## Learning-rate sweeps\n\n{sweep_markdown(sweeps)}" if len(sweeps)
                                     else "")
    return written
