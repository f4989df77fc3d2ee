"""Cost figures and tables from results rows (matplotlib, Agg); nothing is re-run.

Per suite and mode: runtime vs N = H·W and peak memory vs N, log-log, one line per mechanism (colour and marker)
with quartile bars, its fitted power law drawn over the fitted range and the exponent with its 95 % CI in the
legend, O(N) and O(N²) guide lines, the grid side on a secondary axis, and the cases that gave no number (oom,
timeout, skipped above the frontier, ...) in a band below, labelled with their status. Memory plots never mix
counters: one figure per ``mem_kind``. Then the roofline chart. :func:`cost_figures` builds them for both the PNG
files and the HTML report.
"""

from __future__ import annotations

import textwrap
from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402
import pandas as pd  # noqa: E402

from attnbench.report.render.mpl import (  # noqa: E402
    failure_band, line_style, new_figure, save_figure, series_styles, side_axis,
)
from attnbench.report.analysis.fits import scaling_fits  # noqa: E402
from attnbench.store.status import FAILURES, Status  # noqa: E402
from attnbench.report.analysis.scaling import recorded_roofline  # noqa: E402

__all__ = ["cost_figures"]


def _guides(ax: plt.Axes, xs: np.ndarray, y0: float) -> None:
    """O(N) and O(N²) through the first point's median, for reading slopes by eye."""
    x = np.array([xs.min(), xs.max()], float)
    for power, style in ((1, ":"), (2, "--")):
        ax.plot(x, y0 * (x / x[0]) ** power, style, color="0.6", lw=1, label=f"O(N{'²' if power == 2 else ''})")


def _plot_metric(fig: plt.Figure, ax: plt.Axes, strip: plt.Axes | None, g: pd.DataFrame, column: str,
                 min_tokens: int, ylabel: str) -> None:
    ok = g[g["status"] == Status.OK]
    labels = list(dict.fromkeys(g["label"]))
    time = column == "time_ms_median"
    fits = scaling_fits(g, min_tokens)  # the same fits as scaling.md (top decade, bootstrap CI, memory floor)
    fits = {r["label"]: (r["time_exp" if time else "mem_exp"], 0.0 if time else r["mem_floor"])
            for _, r in fits.iterrows()}
    styles = series_styles(labels)
    for label in labels:
        style = styles[label]
        s = ok[ok["label"] == label].sort_values("tokens")
        fit, floor = fits.get(label, (None, 0.0))
        if len(s):
            err = [s[column] - s["time_ms_q1"], s["time_ms_q3"] - s[column]] if time else None
            ax.errorbar(s["tokens"], s[column], yerr=err, ms=4, lw=1.2, capsize=2, alpha=0.9,
                        label=f"{label} (b = {fit})" if fit else label, **style, **line_style(label))
        if fit:  # the fitted power law, drawn over the range it was fitted on
            x = np.geomspace(fit.n_min, fit.n_max, 20)
            ax.plot(x, floor + np.exp(fit.intercept) * x ** fit.exponent, "-", lw=4, alpha=0.25,
                    color=style["color"])
    if strip is not None:
        failure_band(strip, g[g["status"].isin(FAILURES)], labels)
    if len(ok):
        first = ok[ok["tokens"] == ok["tokens"].min()][column]
        _guides(ax, g["tokens"].to_numpy(float), float(first.median()))
    ax.set_xscale("log")
    ax.set_yscale("log")
    (strip or ax).set_xlabel("tokens N = H·W")
    side_axis(ax, g["tokens"].to_numpy(float))
    ax.set_ylabel(ylabel, fontsize=9)
    ax.grid(True, which="both", alpha=0.3)
    ax.legend(fontsize=7, loc="upper left")
    blocks = time and ok["time_samples_ms"].astype(bool).all()  # migrated schema-1 rows keep no blocks
    spread = ("quartiles over timing blocks" if blocks else "± half the IQR (older rows stored only the IQR)") \
        if time else "one peak per case"
    note = (f"Bars: {spread}. Wide pale lines: least-squares power law over the top decade of N (N ≥ {min_tokens})"
            + ("" if time else " after subtracting the first-call floor") + "; b ± half-width of a 95 % bootstrap CI"
            + (" over timing blocks." if blocks else " over points."))
    fig.supxlabel(textwrap.fill(note, 130), fontsize=6.5, color="0.3")


def _where(g: pd.DataFrame) -> str:
    first = g.iloc[0]
    return (f"{first.get('device_name', '')}, {first.get('dtype', '')}, batch {first.get('batch', '')}, "
            f"C={first.get('dim', '')}, {first.get('threads', '')} threads")


def cost_figures(df: pd.DataFrame, min_tokens: int = 1024) -> list[tuple[str, plt.Figure]]:
    """``(file stem, figure)`` for every (suite, mode): runtime, memory per counter, roofline."""
    out = []
    cost = df[df["kind"] == "cost"]
    for (suite, mode), g in cost.groupby(["suite", "mode"], sort=False):
        where = _where(g)
        band = g["status"].isin(FAILURES).any()
        fig, ax, strip = new_figure(band)
        _plot_metric(fig, ax, strip, g, "time_ms_median", min_tokens, "median time per call [ms]")
        ax.set_title(f"{suite} — {mode} runtime\n{where}", fontsize=9)
        out.append((f"{suite}_{mode}_runtime", fig))
        for kind, gk in g.groupby(g["mem_kind"].fillna(""), sort=False):
            if not kind:
                continue
            gk = pd.concat([gk, g[(g["mem_kind"].isna() | (g["mem_kind"] == "")) & (g["status"] != Status.OK)]])
            fig, ax, strip = new_figure(band)
            _plot_metric(fig, ax, strip, gk, "peak_mib", min_tokens, f"peak memory of one call [MiB] ({kind})")
            ax.set_title(f"{suite} — {mode} peak memory\n{where}", fontsize=9)
            out.append((f"{suite}_{mode}_memory_{kind}", fig))
        roof = _plot_roofline(g, f"{suite} — {mode}: achieved vs roofline\n{where}")
        if roof is not None:
            out.append((f"{suite}_{mode}_roofline", roof))
    return out


def _plot_roofline(g: pd.DataFrame, title: str) -> plt.Figure | None:
    """The classic roofline chart: achieved GFLOP/s (FLOP formula / median time) against arithmetic intensity
    (FLOPs / minimum bytes), one line per mechanism through its grids (marker size grows with N), under the
    measured compute peak and bandwidth slope recorded with the rows. ``None`` without FLOPs or a roofline."""
    ok = g[(g["status"] == Status.OK) & g["flops"].notna() & g["bytes"].notna()]
    roof = recorded_roofline(ok) if len(ok) else None
    peak = roof and roof.get("peak_flops", {}).get(str(ok["dtype"].iloc[0]))
    if ok.empty or not peak:
        return None
    fig, ax = plt.subplots(figsize=(8, 5), layout="constrained")
    intensity = ok["flops"].astype(float) / ok["bytes"].astype(float)
    ridge = peak / roof["copy_bytes_per_s"]  # FLOPs/byte where bandwidth stops being the bound: show both regimes
    x = np.geomspace(min(intensity.min(), ridge) / 2, max(intensity.max(), ridge) * 2, 200)
    ax.plot(x, np.minimum(peak, roof["copy_bytes_per_s"] * x) / 1e9, color="0.3", lw=1.5,
            label=f"roofline: {peak / 1e9:.0f} GFLOP/s, {roof['copy_bytes_per_s'] / 1e9:.0f} GB/s")
    styles = series_styles(list(dict.fromkeys(g["label"])))
    for label, s in ok.groupby("label", sort=False):
        style = styles[label]
        s = s.sort_values("tokens")
        ai = s["flops"].astype(float) / s["bytes"].astype(float)
        sizes = 8 + 12 * np.log2(s["tokens"].astype(float) / s["tokens"].min() + 1)
        ax.plot(ai, s["gflops_per_s"], lw=1, color=style["color"], label=label, **line_style(label))
        hollow = line_style(label).get("mfc") == "none"
        ax.scatter(ai, s["gflops_per_s"], s=sizes, zorder=3, alpha=0.8, marker=style["marker"],
                   edgecolors=style["color"], facecolors="none" if hollow else style["color"])
    ax.set_xscale("log")
    ax.set_yscale("log")
    ax.set_xlabel("arithmetic intensity [FLOPs / byte of minimum traffic]")
    ax.set_ylabel("achieved GFLOP/s (marker size: N)")
    ax.grid(True, which="both", alpha=0.3)
    ax.legend(fontsize=7, loc="upper left", bbox_to_anchor=(1.01, 1.0))  # beside the axes: never over points
    ax.set_title(title, fontsize=9)
    return fig
