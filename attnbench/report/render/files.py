"""Everything ``attnbench plot`` and ``attnbench claims`` write for a set of results files: per suite, cost figures and ``scaling.md``,
accuracy figures and ``accuracy.md`` (with the learning-rate sweeps)."""

from __future__ import annotations

from pathlib import Path

import pandas as pd

from attnbench.report.analysis.accuracy import plot_accuracy
from attnbench.report.render.cost_figures import plot_cost, write_scaling_md
from attnbench.report.analysis.claims import claims_table
from attnbench.report.analysis.frame import load_frame, machine_line
from attnbench.report.analysis.sweep import lr_sweeps, sweep_markdown
from attnbench.report.render.markdown import markdown_table

__all__ = ["plot_results", "write_claims_md"]


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


def write_claims_md(df: pd.DataFrame, path: str | Path, command: str = "") -> Path:
    table = claims_table(df)
    lines = ["# The MANO paper's claims against attnbench's measurements", "",
             "Colagrande et al., arXiv 2507.02748, abstract. Generated from results; do not edit by hand.", ""]
    if command:
        lines += [f"Reproduce: `{command}`", ""]
    lines += [machine_line(df) + ".", "",
              markdown_table(list(table.frame.columns), table.frame.astype(str).values.tolist())]
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text("\n".join(lines) + "\n")
    return path
