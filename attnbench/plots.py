"""Scaling plots from results CSVs (matplotlib, Agg); plotting never re-runs a measurement.

Per suite and mode: runtime vs N = H·W and peak memory vs N, log-log, one line per mechanism with its fitted
exponent and 95 % CI in the legend, O(N) and O(N²) guide lines, and the first oom/timeout of each mechanism
marked at its N (not dropped). Memory plots never mix counters: one figure per ``mem_kind``.
"""

from __future__ import annotations

from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402
import pandas as pd  # noqa: E402

from attnbench.analysis import fit_power_law, write_scaling_md  # noqa: E402

__all__ = ["plot_cost", "plot_results", "save_figure"]

_FAIL_MARK = {"oom": "OOM", "timeout": "timeout", "crashed": "crash"}


def save_figure(fig: plt.Figure, path: Path) -> Path:
    """Write a figure as PNG and release it."""
    fig.tight_layout()
    fig.savefig(path, dpi=120)
    plt.close(fig)
    return path


def _guides(ax: plt.Axes, xs: np.ndarray, y0: float) -> None:
    """O(N) and O(N²) through the first point's median, for reading slopes by eye."""
    x = np.array([xs.min(), xs.max()], float)
    for power, style in ((1, ":"), (2, "--")):
        ax.plot(x, y0 * (x / x[0]) ** power, style, color="0.6", lw=1, label=f"O(N{'²' if power == 2 else ''})")


def _plot_metric(ax: plt.Axes, g: pd.DataFrame, column: str, min_tokens: int, ylabel: str) -> None:
    ok = g[g["status"] == "ok"]
    labels = list(dict.fromkeys(g["label"]))
    colors = plt.rcParams["axes.prop_cycle"].by_key()["color"]
    top = ok[column].max() if len(ok) else 1.0
    for i, label in enumerate(labels):
        color = colors[i % len(colors)]
        s = ok[ok["label"] == label].sort_values("tokens")
        fit_pts = s[s["tokens"] >= min_tokens]
        fit = fit_power_law(fit_pts["tokens"], fit_pts[column]) if len(fit_pts) else None
        name = f"{label} (b = {fit})" if fit else label
        if len(s):
            err = s["time_ms_iqr"] / 2 if column == "time_ms_median" else None
            ax.errorbar(s["tokens"], s[column], yerr=err, marker="o", ms=4, lw=1.5, color=color, label=name,
                        capsize=2)
        failed = g[(g["label"] == label) & g["status"].isin(list(_FAIL_MARK))].sort_values("tokens")
        if len(failed):  # the frontier: where this mechanism stopped
            f = failed.iloc[0]
            ax.scatter([f["tokens"]], [top * 1.6], marker="X", s=70, color=color, zorder=5)
            ax.annotate(_FAIL_MARK[f["status"]], (f["tokens"], top * 1.6), textcoords="offset points",
                        xytext=(4, 4), fontsize=7, color=color)
    if len(ok):
        first = ok[ok["tokens"] == ok["tokens"].min()][column]
        _guides(ax, g["tokens"].to_numpy(float), float(first.median()))
    ax.set_xscale("log")
    ax.set_yscale("log")
    ax.set_xlabel("tokens N = H·W")
    ax.set_ylabel(ylabel)
    ax.grid(True, which="both", alpha=0.3)
    ax.legend(fontsize=7, loc="upper left")


def plot_cost(df: pd.DataFrame, out_dir: str | Path, min_tokens: int = 1024) -> list[Path]:
    """Runtime and memory figures for every (suite, mode) in ``df``; returns the written paths."""
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    written: list[Path] = []
    cost = df[df["kind"] == "cost"]
    for (suite, mode), g in cost.groupby(["suite", "mode"], sort=False):
        first = g.iloc[0]
        where = f"{first.get('device_name', '')}, {first.get('dtype', '')}, batch {first.get('batch', '')}, " \
                f"C={first.get('dim', '')}, {first.get('threads', '')} threads"
        fig, ax = plt.subplots(figsize=(7, 5))
        _plot_metric(ax, g, "time_ms_median", min_tokens, "median time per call [ms] (bars: IQR)")
        ax.set_title(f"{suite} — {mode} runtime\n{where}", fontsize=9)
        written.append(save_figure(fig, out_dir / f"{suite}_{mode}_runtime.png"))
        for kind, gk in g.groupby(g["mem_kind"].fillna(""), sort=False):
            if not kind:
                continue
            gk = pd.concat([gk, g[(g["mem_kind"].isna() | (g["mem_kind"] == "")) & (g["status"] != "ok")]])
            fig, ax = plt.subplots(figsize=(7, 5))
            _plot_metric(ax, gk, "peak_mib", min_tokens, f"peak memory of one call [MiB] ({kind})")
            ax.set_title(f"{suite} — {mode} peak memory\n{where}", fontsize=9)
            written.append(save_figure(fig, out_dir / f"{suite}_{mode}_memory_{kind}.png"))
    return written


def plot_results(paths: list[str | Path], out_dir: str | Path | None = None, min_tokens: int = 1024,
                 command: str = "") -> list[Path]:
    """Read results CSV(s); write all figures and ``scaling.md`` to ``<out_dir>/<suite>/``.

    ``out_dir`` defaults to ``plots/`` next to the (first) results file, e.g. ``results/cpu/plots/cpu/``.
    """
    from attnbench.analysis import load_frame

    df = load_frame(paths)
    if df.empty:
        raise ValueError(f"no result rows found in {', '.join(map(str, paths))}")
    first = Path(paths[0])
    root = Path(out_dir) if out_dir else (first.parent if first.is_file() else first) / "plots"
    written: list[Path] = []
    for suite, g in df.groupby("suite", sort=False):
        base = root / str(suite)
        if (g["kind"] == "cost").any():
            written += plot_cost(g, base, min_tokens)
            written.append(write_scaling_md(g[g["kind"] == "cost"], base / "scaling.md", min_tokens, command))
        if (g["kind"] == "accuracy").any():
            from attnbench.accuracy_plots import plot_accuracy

            written += plot_accuracy(g[g["kind"] == "accuracy"], base)
    return written
