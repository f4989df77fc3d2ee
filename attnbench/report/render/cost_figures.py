"""Cost figures and tables from results rows (matplotlib, Agg); nothing is re-run.

Per suite and mode: runtime vs N = H·W and peak memory vs N, log-log, one line per mechanism (colour and marker)
with quartile bars, its fitted power law drawn over the fitted range and the exponent with its 95 % CI in the
legend, O(N) and O(N²) guide lines, the grid side on a secondary axis, and the cases that gave no number (oom,
timeout, skipped above the frontier, ...) in a band below, labelled with their status. Memory plots never mix
counters: one figure per ``mem_kind``. Then the roofline chart. :func:`cost_figures` builds them for both the PNG
files and the HTML report.

A suite with more mechanisms than one figure can show apart (:data:`~attnbench.report.analysis.families.MAX_SERIES`)
gets each figure once per family instead (:func:`~attnbench.report.analysis.families.family_panels`): the family's
mechanisms in colour, and the seed four drawn behind them in grey as references, so every family reads against the
same four lines. The fits are computed once over the whole suite and mode, so a panel shows the same exponents as
``scaling.md``.
"""

from __future__ import annotations

import textwrap
from collections.abc import Iterator
from typing import Any

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402
import pandas as pd  # noqa: E402

from attnbench.report.analysis.families import Panel, family_panels  # noqa: E402
from attnbench.report.analysis.fits import Fit, scaling_fits  # noqa: E402
from attnbench.report.analysis.scaling import recorded_roofline  # noqa: E402
from attnbench.report.render.mpl import failure_band, new_figure, panel_styles, side_axis  # noqa: E402
from attnbench.store.status import FAILURES, Status  # noqa: E402

__all__ = ["cost_figures"]

# Line weights: members as today's figures draw every series; references thinner and fainter, behind the members.
_MEMBER: dict[str, Any] = {"lw": 1.2, "ms": 4, "alpha": 0.9, "zorder": 3}
_REFERENCE: dict[str, Any] = {"lw": 0.9, "ms": 3.5, "alpha": 0.75, "zorder": 2}
# A panel with references puts its legend beside the axes (up to 8 + 4 series and the guides would cover lines).
_PANEL_SIZE = (9.5, 5.5)

FitLookup = dict[str, tuple[Fit | None, float]]


def _guides(ax: plt.Axes, xs: np.ndarray, y0: float) -> None:
    """O(N) and O(N²) through the first point's median, for reading slopes by eye."""
    x = np.array([xs.min(), xs.max()], float)
    for power, style in ((1, ":"), (2, "--")):
        ax.plot(x, y0 * (x / x[0]) ** power, style, color="0.6", lw=1, label=f"O(N{'²' if power == 2 else ''})")


def _fits(g: pd.DataFrame, min_tokens: int, time: bool) -> FitLookup:
    """label → (fitted power law or None, memory floor): the same fits as ``scaling.md`` (top decade, bootstrap
    CI, memory floor), over every mechanism of the suite and mode — the floor depends on all of them."""
    fits = scaling_fits(g, min_tokens)
    return {r["label"]: (r["time_exp" if time else "mem_exp"], 0.0 if time else r["mem_floor"])
            for _, r in fits.iterrows()}


def _rows(g: pd.DataFrame, panel: Panel) -> pd.DataFrame:
    return g[g["label"].isin(panel.labels)]


def _plot_metric(fig: plt.Figure, ax: plt.Axes, strip: plt.Axes | None, g: pd.DataFrame, column: str,
                 fits: FitLookup, min_tokens: int, ylabel: str, panel: Panel) -> None:
    """One panel: its members (and references) of the rows ``g``, with ``fits`` computed over the whole group."""
    g = _rows(g, panel)
    ok = g[g["status"] == Status.OK]
    present = set(g["label"])
    labels = [label for label in panel.labels if label in present]
    references = [label for label in panel.references if label in present]
    time = column == "time_ms_median"
    styles = panel_styles([label for label in labels if label not in references], references)
    for label in labels:
        style, reference = styles[label], label in references
        s = ok[ok["label"] == label].sort_values("tokens")
        fit, floor = fits.get(label, (None, 0.0))
        if len(s):
            err = [s[column] - s["time_ms_q1"], s["time_ms_q3"] - s[column]] if time else None
            name = f"{label} (reference)" if reference else label
            ax.errorbar(s["tokens"], s[column], yerr=err, capsize=2, label=f"{name} (b = {fit})" if fit else name,
                        **style, **(_REFERENCE if reference else _MEMBER))
        if fit and not reference:  # the fitted power law, drawn over the range it was fitted on
            x = np.geomspace(fit.n_min, fit.n_max, 20)
            ax.plot(x, floor + np.exp(fit.intercept) * x ** fit.exponent, "-", lw=4, alpha=0.25,
                    color=style["color"])
    if strip is not None:
        failure_band(strip, g[g["status"].isin(FAILURES)], labels, styles)
    if len(ok):
        first = ok[ok["tokens"] == ok["tokens"].min()][column]
        _guides(ax, g["tokens"].to_numpy(float), float(first.median()))
    ax.set_xscale("log")
    ax.set_yscale("log")
    (strip or ax).set_xlabel("tokens N = H·W")
    side_axis(ax, g["tokens"].to_numpy(float))
    ax.set_ylabel(ylabel, fontsize=9)
    ax.grid(True, which="both", alpha=0.3)
    if references:  # beside the axes: a dozen entries inside would cover the lines
        ax.legend(fontsize=7, loc="upper left", bbox_to_anchor=(1.01, 1.0))
    else:
        ax.legend(fontsize=7, loc="upper left")
    fig.supxlabel(textwrap.fill(_note(ok, time, min_tokens, references), 130), fontsize=6.5, color="0.3")


def _note(ok: pd.DataFrame, time: bool, min_tokens: int, references: list[str]) -> str:
    """What the bars, the fitted lines and (in a family panel) the grey lines are."""
    blocks = time and ok["time_samples_ms"].astype(bool).all()  # migrated schema-1 rows keep no blocks
    # A replicated case's quartiles and fit resamples are over its processes (collapse, fits._samples), not blocks.
    replicated = "replicates" in ok and bool((pd.to_numeric(ok["replicates"], errors="coerce") > 1).all())
    unit = "replicate processes' medians" if replicated else "timing blocks"
    spread = (f"quartiles over {unit}" if blocks else "± half the IQR (older rows stored only the IQR)") \
        if time else ("median peak over replicate processes" if replicated else "one peak per case")
    note = (f"Bars: {spread}. Wide pale lines: least-squares power law over the top decade of N (N ≥ {min_tokens})"
            + ("" if time else " after subtracting the first-call floor") + "; b ± half-width of a 95 % bootstrap CI"
            + (f" over {unit}." if blocks else " over points."))
    if references:
        note += (f" Grey, dash-dotted, hollow: {', '.join(references)} as references (their fitted lines are drawn in "
                 "their own family's panel).")
    return note


def _where(g: pd.DataFrame) -> str:
    first = g.iloc[0]
    return (f"{first.get('device_name', '')}, {first.get('dtype', '')}, batch {first.get('batch', '')}, "
            f"C={first.get('dim', '')}, {first.get('threads', '')} threads")


def _title(suite: str, mode: str, what: str, panel: Panel, where: str) -> str:
    return f"{suite} — {mode} {what}" + (f": {panel.name}" if panel.family else "") + f"\n{where}"


def _metric_figure(g: pd.DataFrame, column: str, fits: FitLookup, min_tokens: int, ylabel: str, panel: Panel,
                   title: str) -> plt.Figure:
    rows = _rows(g, panel)
    band = rows["status"].isin(FAILURES).any()
    fig, ax, strip = new_figure(band, _PANEL_SIZE) if panel.references else new_figure(band)
    _plot_metric(fig, ax, strip, g, column, fits, min_tokens, ylabel, panel)
    ax.set_title(title, fontsize=9)
    return fig


def cost_figures(df: pd.DataFrame, min_tokens: int = 1024) -> Iterator[tuple[str, plt.Figure]]:
    """``(file stem, figure)`` for every (suite, mode): runtime, memory per counter, roofline — one of each for a
    suite of at most eight mechanisms (``<suite>_<mode>_runtime``), else one per family panel
    (``<suite>_<mode>_runtime_<family>``, ``..._memory_<counter>_<family>``, ``..._roofline_<family>``).

    A generator: a suite of twenty mechanisms has dozens of figures, and a caller that writes (and closes) each
    before asking for the next never holds more than one open.
    """
    cost = df[df["kind"] == "cost"]
    for (suite, mode), g in cost.groupby(["suite", "mode"], sort=False):
        where = _where(g)
        panels = family_panels(g)
        fits = _fits(g, min_tokens, time=True)
        for panel in panels:
            fig = _metric_figure(g, "time_ms_median", fits, min_tokens, "median time per call [ms]", panel,
                                 _title(suite, mode, "runtime", panel, where))
            yield f"{suite}_{mode}_runtime{panel.suffix}", fig
        for kind, gk in g.groupby(g["mem_kind"].fillna(""), sort=False):
            if not kind:
                continue
            gk = pd.concat([gk, g[(g["mem_kind"].isna() | (g["mem_kind"] == "")) & (g["status"] != Status.OK)]])
            mem_fits = _fits(gk, min_tokens, time=False)
            for panel in panels:
                if not gk["label"].isin(panel.members).any():  # references alone are no figure
                    continue
                fig = _metric_figure(gk, "peak_mib", mem_fits, min_tokens, f"peak memory of one call [MiB] ({kind})",
                                     panel, _title(suite, mode, "peak memory", panel, where))
                yield f"{suite}_{mode}_memory_{kind}{panel.suffix}", fig
        for panel in panels:
            title = f"{suite} — {mode}: achieved vs roofline" + (f", {panel.name}" if panel.family else "")
            roof = _plot_roofline(_rows(g, panel), f"{title}\n{where}", panel)
            if roof is not None:
                yield f"{suite}_{mode}_roofline{panel.suffix}", roof


def _plot_roofline(g: pd.DataFrame, title: str, panel: Panel) -> plt.Figure | None:
    """The classic roofline chart: achieved GFLOP/s (FLOP formula / median time) against arithmetic intensity
    (FLOPs / minimum bytes), one line per mechanism through its grids (marker size grows with N), under the
    measured compute peak and bandwidth slope recorded with the rows. ``None`` without FLOPs or a roofline."""
    ok = g[(g["status"] == Status.OK) & g["flops"].notna() & g["bytes"].notna()]
    roof = recorded_roofline(ok) if len(ok) else None
    peak = roof and roof.get("peak_flops", {}).get(str(ok["dtype"].iloc[0]))
    if ok.empty or roof is None or not peak:
        return None
    fig, ax = plt.subplots(figsize=(8, 5), layout="constrained")
    intensity = ok["flops"].astype(float) / ok["bytes"].astype(float)
    ridge = peak / roof["copy_bytes_per_s"]  # FLOPs/byte where bandwidth stops being the bound: show both regimes
    x = np.geomspace(min(intensity.min(), ridge) / 2, max(intensity.max(), ridge) * 2, 200)
    ax.plot(x, np.minimum(peak, roof["copy_bytes_per_s"] * x) / 1e9, color="0.3", lw=1.5,
            label=f"roofline: {peak / 1e9:.0f} GFLOP/s, {roof['copy_bytes_per_s'] / 1e9:.0f} GB/s")
    present = set(g["label"])  # every series of the panel, so colours match the runtime figure's
    references = [label for label in panel.references if label in present]
    styles = panel_styles([label for label in panel.members if label in present], references)
    for label in (label for label in panel.labels if label in set(ok["label"])):
        style, reference = styles[label], label in references
        s = ok[ok["label"] == label].sort_values("tokens")
        ai = s["flops"].astype(float) / s["bytes"].astype(float)
        sizes = 8 + 12 * np.log2(s["tokens"].astype(float) / s["tokens"].min() + 1)
        line = {"lw": 0.8, "alpha": _REFERENCE["alpha"]} if reference else {"lw": 1}
        ax.plot(ai, s["gflops_per_s"], color=style["color"], linestyle=style["linestyle"],
                label=f"{label} (reference)" if reference else label, **line)
        hollow = style.get("mfc") == "none"
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
