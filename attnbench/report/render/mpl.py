"""What every figure shares: the non-interactive backend, one colour and marker per series (so overlapping points
stay distinguishable), readable log axes, the grid side as a secondary axis, a band for cases that produced no
number, and how a figure is written (PNG file, or SVG text for the HTML report)."""

from __future__ import annotations

import io
from pathlib import Path
from typing import Any

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402
import pandas as pd  # noqa: E402
from matplotlib.ticker import FuncFormatter, LogLocator, MaxNLocator, NullFormatter  # noqa: E402

from attnbench.store.status import Status  # noqa: E402

__all__ = ["failure_band", "line_style", "new_figure", "panel_styles", "readable_log_axis", "save_figure",
           "series_styles", "side_axis", "svg_text"]

# Markers cycle at a different period (8) than colours (10): series sharing a colour never share a marker too.
_MARKERS = ("o", "s", "^", "D", "v", "P", "X", "*")
# Reference series (the seed four behind every family panel): dark to mid greys, each with its own hollow marker,
# dash-dotted — light enough to recede behind the coloured members, darker than the O(N)/O(N²) guides (0.6, dotted
# and dashed, no markers), so a reference never reads as a guide.
_REFERENCE_GREYS = ("0.1", "0.28", "0.42", "0.52")
_REFERENCE_LINE = "-."
_REFERENCE_MARKERS = ("o", "s", "^", "D")
# The default colour cycle without its grey (C7), for members of a panel that also draws grey references.
_NOT_GREY = ("C0", "C1", "C2", "C3", "C4", "C5", "C6", "C8", "C9")


def series_styles(labels: list[str], colours: tuple[str, ...] | None = None) -> dict[str, dict[str, Any]]:
    """Colour and marker per series label; a compiled variant (``x [compiled]``) shares its eager series' colour
    and marker, drawn dashed and hollow, so the pair reads as one mechanism. ``colours`` replaces the default
    cycle (``C0`` … ``C9``)."""
    colours = colours or tuple(f"C{i}" for i in range(10))
    bases: list[str] = []
    out = {}
    for label in labels:
        base = label.replace(" [compiled]", "")
        bases += [] if base in bases else [base]
        i = bases.index(base)
        out[label] = {"color": colours[i % len(colours)], "marker": _MARKERS[i % len(_MARKERS)]}
    return out


def line_style(label: str) -> dict[str, Any]:
    """Extra line keywords (errorbar/plot) for a series: dashed and hollow when compiled."""
    return {"linestyle": "--", "mfc": "none"} if label.endswith("[compiled]") else {"linestyle": "-"}


def panel_styles(members: list[str], references: list[str] | tuple[str, ...] = ()) -> dict[str, dict[str, Any]]:
    """Every keyword a series is drawn with (colour, marker, line style, marker fill) for a panel of ``members``
    drawn against ``references``.

    Members get :func:`series_styles` and :func:`line_style`. References are drawn as references: in greys,
    dash-dotted, with hollow markers of their own, so they recede behind the members yet stay told apart; the members
    of a panel with references then skip matplotlib's grey (``C7``), which would read as one of them.
    """
    colours = _NOT_GREY if references else None
    base = series_styles(list(members), colours)
    out = {label: {**base[label], **line_style(label)} for label in members}
    for i, label in enumerate(references):
        out[label] = {"color": _REFERENCE_GREYS[i % len(_REFERENCE_GREYS)],
                      "marker": _REFERENCE_MARKERS[i % len(_REFERENCE_MARKERS)], "linestyle": _REFERENCE_LINE,
                      "mfc": "none"}
    return out


def new_figure(band: bool, size: tuple[float, float] = (7.5, 5.5)) -> tuple[plt.Figure, plt.Axes, plt.Axes | None]:
    """A figure with the main axes and, when ``band``, a thin axes below it (shared N axis) for failures."""
    if not band:
        fig, ax = plt.subplots(figsize=size, layout="constrained")  # tight_layout cannot place a secondary axis
        return fig, ax, None
    fig, (ax, strip) = plt.subplots(2, 1, figsize=(size[0], size[1] + 0.6), sharex=True, layout="constrained",
                                    gridspec_kw={"height_ratios": [7, 1]})
    return fig, ax, strip


def failure_band(strip: plt.Axes, failed: pd.DataFrame, order: list[str],
                 styles: dict[str, dict[str, Any]] | None = None) -> None:
    """Cases that produced no number, one row per series, at their N, labelled with their status — never at a
    made-up height on the measurement axis. ``styles``: the series' colours (default :func:`series_styles`)."""
    rows = [label for label in order if label in set(failed["label"])]
    styles = styles or series_styles(order)
    for y, label in enumerate(rows):
        style = styles[label]
        for _, r in failed[failed["label"] == label].iterrows():
            strip.scatter([r["tokens"]], [y], marker="x", s=40, color=style["color"], zorder=3)
            strip.annotate(Status(r["status"]).short, (r["tokens"], y), textcoords="offset points",
                           xytext=(5, -3), fontsize=7, color=style["color"])
    strip.set_yticks(range(len(rows)), rows, fontsize=7)
    strip.set_ylim(-0.7, len(rows) - 0.3)
    strip.set_ylabel("no\nnumber", fontsize=7, rotation=0, ha="right", va="center")
    strip.grid(True, axis="x", alpha=0.3)


def readable_log_axis(ax: plt.Axes, which: str = "x") -> None:
    """Log axis with plain labels at 1, 2, 5 × 10^k (evenly spaced ones under a decade) and no minor labels:
    narrow ranges get a few readable ticks instead of colliding ``1.4×10²``-style minor labels."""
    axis = ax.xaxis if which == "x" else ax.yaxis
    lo, hi = ax.get_xlim() if which == "x" else ax.get_ylim()
    # under a decade, 1-2-5 steps leave one or two ticks: plain evenly spaced ticks read better there
    axis.set_major_locator(MaxNLocator(6) if hi < 10 * lo else LogLocator(base=10, subs=(1.0, 2.0, 5.0)))
    axis.set_major_formatter(FuncFormatter(lambda v, _: f"{v:g}"))
    axis.set_minor_formatter(NullFormatter())


def side_axis(ax: plt.Axes, tokens: np.ndarray, label: str = "grid side (H = W)") -> None:
    """The grid side √N as a secondary axis on top, ticked at the square grids present (``128²``)."""
    sec = ax.secondary_xaxis("top", functions=(np.sqrt, np.square))
    sides = sorted({int(round(np.sqrt(t))) for t in tokens if t > 0})
    sec.set_xticks(sides, [f"{s}²" for s in sides], fontsize=7)
    sec.xaxis.set_minor_formatter(NullFormatter())
    sec.set_xlabel(label, fontsize=8)


def _finish(fig: plt.Figure) -> None:
    if not fig.get_constrained_layout():
        fig.tight_layout()


def save_figure(fig: plt.Figure, path: Path) -> Path:
    """Write a figure as PNG and release it."""
    _finish(fig)
    fig.savefig(path, dpi=120)
    plt.close(fig)
    return path


def svg_text(fig: plt.Figure) -> str:
    """The figure as inline SVG (text as text, in the page's own sans-serif: small, and no font is fetched), and
    release it."""
    _finish(fig)
    buf = io.StringIO()
    with matplotlib.rc_context({"svg.fonttype": "none", "svg.hashsalt": "attnbench"}):
        fig.savefig(buf, format="svg")
    plt.close(fig)
    text = buf.getvalue()
    return text[text.index("<svg"):]  # drop the XML prolog and DOCTYPE: the SVG goes inline in HTML
