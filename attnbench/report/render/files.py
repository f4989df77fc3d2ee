"""Everything ``attnbench plot`` and ``attnbench claims`` write for a set of results files: per suite, the cost
figures (per family panel for a suite of many mechanisms), ``scaling.md`` and ``leaderboard.md`` (every mode and
grid), the accuracy figures (the accuracy-versus-cost Pareto view among them) and ``accuracy.md``; and
``claims.md``. Writing only: the text comes from :mod:`.markdown`, the figures from :mod:`.cost_figures` and
:mod:`.accuracy_figures`."""

from __future__ import annotations

from pathlib import Path

import pandas as pd

from attnbench.report.analysis.frame import load_frame
from attnbench.report.analysis.leaderboard import leaderboard_tables
from attnbench.report.render.accuracy_figures import accuracy_figures
from attnbench.report.render.cost_figures import cost_figures
from attnbench.report.render.markdown import accuracy_md, claims_md, scaling_md, table_markdown
from attnbench.report.render.mpl import save_figure

__all__ = ["leaderboard_md", "plot_results", "write_claims_md", "write_text"]


def write_text(path: Path, text: str) -> Path:
    """Write ``text`` to ``path`` whole or not at all (a temporary file renamed over it): an interrupted write never
    leaves half a file behind."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.tmp")
    tmp.write_text(text, encoding="utf-8")
    tmp.replace(path)
    return path


def leaderboard_md(suite: str, cost: pd.DataFrame) -> str:
    """``leaderboard.md``: the cost leaderboard of every mode and grid of one suite, smallest grid first."""
    lines = [f"# Cost leaderboards: {suite}", ""]
    for table in leaderboard_tables(suite, cost):
        lines += [table_markdown(table), ""]
    return "\n".join(lines)


def plot_results(paths: list[str | Path], out_dir: str | Path | None = None, min_tokens: int = 1024,
                 command: str = "", baseline: str | None = None) -> list[Path]:
    """Read results CSV(s); write all figures, ``scaling.md``, ``leaderboard.md`` and ``accuracy.md`` to
    ``<out_dir>/<suite>/``.

    ``baseline`` is the label ratios and crossovers are measured against (default: ``frame.BASELINE``).
    ``out_dir`` defaults to ``plots/`` next to the (first) results file, e.g. ``results/cpu/plots/cpu/``. The
    accuracy suites' Pareto views read the cost rows of every suite loaded with them.
    """
    df = load_frame(paths)  # NotResultsError (one line) for a file that is not an attnbench results file
    first = Path(paths[0])
    root = Path(out_dir) if out_dir else (first.parent if first.is_file() else first) / "plots"
    all_cost = df[df["kind"] == "cost"]
    written: list[Path] = []
    for suite, g in df.groupby("suite", sort=False):
        base = root / str(suite)
        base.mkdir(parents=True, exist_ok=True)
        cost, acc = g[g["kind"] == "cost"], g[g["kind"] == "accuracy"]
        if len(cost):
            written += [save_figure(fig, base / f"{name}.png") for name, fig in cost_figures(g, min_tokens)]
            written.append(write_text(base / "scaling.md", scaling_md(cost, min_tokens, command, baseline)))
            written.append(write_text(base / "leaderboard.md", leaderboard_md(str(suite), cost)))
        if len(acc):
            written.append(write_text(base / "accuracy.md", accuracy_md(acc)))
            written += [save_figure(fig, base / f"{name}.png") for name, fig in accuracy_figures(acc, all_cost)]
    return written


def write_claims_md(df: pd.DataFrame, path: str | Path, command: str = "") -> Path:
    """``claims.md`` of the rows ``df`` at ``path``."""
    return write_text(Path(path), claims_md(df, command))
