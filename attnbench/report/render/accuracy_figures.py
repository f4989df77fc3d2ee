"""Accuracy figures (matplotlib, Agg) from the analysis layer's accuracy tables; nothing is re-run.

* accuracy vs evaluation grid per mechanism (trained point filled, zero-shot from it dashed and hollow), per task
  evaluated at two or more grids, with the chance level of classification tasks;
* accuracy vs cost over every mechanism, per task (the Pareto view): against the attention layer's time per call
  (cost rows loaded with the accuracy rows) or the training time, and against the training peak memory, with CI
  bars on both axes and the Pareto front drawn and named (:func:`~attnbench.report.analysis.pareto.pareto_points`);
* zero-shot vs trained at the same grid, where both exist;
* accuracy vs training grid across the tasks of one dataset and budget (a resolution study: the same recipe at
  several training grids), trained points joined, zero-shot one step up dashed from each;
* loss curves (training loss per epoch, test metric every ``curve_every`` epochs) per task and budget, where the
  rows recorded them, with the test metric's relative change from the evaluation nearest 3/4 of training to the
  end (the plateau check).
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
from matplotlib.ticker import NullFormatter  # noqa: E402

from attnbench.report.analysis.accuracy import (  # noqa: E402
    LOWER_IS_BETTER,
    accuracy_table,
    chance_level,
    late_index,
    mean_late_change,
    per_seed,
    trained_curves,
)
from attnbench.report.analysis.pareto import pareto_points  # noqa: E402
from attnbench.report.render.mpl import readable_log_axis, series_styles  # noqa: E402

__all__ = ["accuracy_figures"]


def _ylabel(metric: str) -> str:
    return metric + (" (lower is better)" if LOWER_IS_BETTER.get(metric) else " (higher is better)")


def _resolution_figure(task: str, t: pd.DataFrame, chance: float | None) -> plt.Figure:
    """Accuracy against evaluation grid: per mechanism the trained point (filled) and, dashed from it, the same
    model evaluated zero-shot at other grids (hollow); mechanisms dodged sideways so equal values stay visible."""
    fig, ax = plt.subplots(figsize=(7, 4.8), layout="constrained")
    labels = list(dict.fromkeys(t["label"]))
    styles = series_styles(labels)
    for i, label in enumerate(labels):
        g, style = t[t["label"] == label], styles[label]
        dodge = 2 ** ((i - (len(labels) - 1) / 2) * 0.025)  # a few % of an octave: visible, not misleading
        for _, m in g.groupby("train_res"):
            m = m.sort_values("eval_res")
            trained = m[m["mode"] == "trained"]
            ax.errorbar(m["eval_res"] * dodge, m["value"], yerr=m["std"].fillna(0), linestyle="--", lw=1.2,
                        capsize=3, mfc="none", **style)
            ax.errorbar(trained["eval_res"] * dodge, trained["value"], yerr=trained["std"].fillna(0), linestyle="",
                        capsize=3, **style)
        ax.plot([], [], linestyle="", label=label, **style)
    if chance is not None:
        ax.axhline(chance, color="0.4", lw=1, linestyle=":")
        ax.annotate(f"chance ({chance:.2g})", (0.01, chance), xycoords=("axes fraction", "data"), fontsize=7,
                    color="0.3", xytext=(0, 3), textcoords="offset points")
    ax.plot([], [], "ko", label="trained at that grid (filled)")
    ax.plot([], [], "k--o", mfc="none", label="zero-shot from the training grid (hollow, dashed)")
    grids = sorted(set(t["eval_res"]))
    ax.set_xscale("log", base=2)
    ax.set_xticks(grids, [f"{int(r)}²" for r in grids])
    ax.xaxis.set_minor_formatter(NullFormatter())
    ax.set_xlabel("evaluation grid (pixels per side)")
    ax.set_ylabel(_ylabel(t["metric"].iloc[0]))
    seeds = int(t["seeds"].min())
    spread = f"mean ± std over {seeds} seeds" if seeds > 1 else "1 seed: no spread shown"
    ax.set_title(f"{task}: accuracy vs resolution ({spread})", fontsize=9)
    ax.grid(True, alpha=0.3)
    ax.legend(fontsize=7, loc="best")
    return fig


def _pareto_panel(ax: plt.Axes, points: pd.DataFrame, chance: float | None,
                  styles: dict[str, dict[str, Any]]) -> None:
    """One accuracy-versus-cost view: a point per mechanism with its 95 % CI bars on both axes (none where a
    single seed or measurement gives none), the Pareto front as a staircase, and each front member named beside
    its point."""
    for r in points.to_dict("records"):
        xerr = ([[r["x"] - r["x_lo"]], [r["x_hi"] - r["x"]]]
                if np.isfinite(r["x_lo"]) and np.isfinite(r["x_hi"]) else None)
        yerr = r["ci95"] if np.isfinite(r["ci95"]) else None
        style = styles[r["label"]]
        # front members filled and larger, the dominated hollow: the front reads at a glance
        ax.errorbar([r["x"]], [r["value"]], xerr=xerr, yerr=yerr, linestyle="", capsize=3, elinewidth=0.9,
                    ms=7 if r["on_front"] else 5, mfc=style["color"] if r["on_front"] else "white",
                    label=r["label"], zorder=3 if r["on_front"] else 2, **style)
    front = points[points["on_front"]].sort_values("x")
    if len(front) > 1:
        ax.plot(front["x"], front["value"], color="0.5", lw=1, zorder=1, drawstyle="steps-post",
                label="Pareto front")
    for i, r in enumerate(front.to_dict("records")):
        # alternately above and below: neighbours on the front are close in cost, and their names would collide
        ax.annotate(r["label"], (r["x"], r["value"]), fontsize=7.5, fontweight="bold",
                    xytext=(5, 4 if i % 2 == 0 else -11), textcoords="offset points")
    if chance is not None:
        _chance(ax, chance, points["value"])
    ax.set_xscale("log")
    readable_log_axis(ax, "x")
    ax.set_xlabel(textwrap.fill(str(points["x_label"].iloc[0]), 70), fontsize=8)
    ax.grid(True, alpha=0.3)


def _chance(ax: plt.Axes, chance: float, values: pd.Series) -> None:
    """The chance level as a line where it lies near the points; far below them (a classifier well above chance)
    a line would squeeze the points into a sliver, so the legend names it instead."""
    lo, hi = float(values.min()), float(values.max())
    span = max(hi - lo, 0.05 * max(abs(hi), 1e-12))
    if lo - 2 * span <= chance <= hi + 2 * span:
        ax.axhline(chance, color="0.4", lw=1, linestyle=":", label=f"chance ({chance:.2g})")
    else:
        ax.plot([], [], color="0.4", lw=1, linestyle=":", label=f"chance ({chance:.2g}, off the axes)")


def _pareto_figure(task: str, budget: str, stem: str, rows: pd.DataFrame, chance: float | None
                   ) -> plt.Figure | None:
    """Accuracy against cost over every mechanism of ``task`` trained at its grid (mean over seeds ± the mean's
    95 % CI): left against the cost :func:`~attnbench.report.analysis.pareto.pareto_points` picks (the layer's
    time per call where cost rows cover every mechanism, else the training time), right against the training peak
    memory; the Pareto front of each drawn and its members named. ``None`` without trained rows."""
    cost = pareto_points(rows, task, budget)
    if cost.empty:
        return None
    memory = pareto_points(rows, task, budget, x="peak_mib")
    metric, lower = str(cost["metric"].iloc[0]), bool(cost["lower_is_better"].iloc[0])
    styles = series_styles(sorted(cost["label"]))
    fig, axes = plt.subplots(1, 2, figsize=(12, 5), layout="constrained")
    _pareto_panel(axes[0], cost, chance, styles)
    if memory["x"].notna().any():
        _pareto_panel(axes[1], memory, chance, styles)
    else:
        axes[1].set_axis_off()
    axes[0].set_ylabel(_ylabel(metric))
    handles, labels = axes[0].get_legend_handles_labels()
    fig.legend(handles, labels, loc="outside right upper", fontsize=7, title="filled: on the front",
               title_fontsize=7)
    lo, hi = int(cost["seeds"].min()), int(cost["seeds"].max())
    seeds = f"{lo} seed{'s' if hi > 1 else ''}" if lo == hi else f"{lo}–{hi} seeds"
    spread = "no CI from one seed" if hi == 1 else "± 95 % CI of the mean"
    fig.suptitle(textwrap.fill(f"{stem}: accuracy vs cost, trained and evaluated at the training grid ({metric}, "
                               f"{'lower' if lower else 'higher'} is better; mean over {seeds}, {spread}; cost ± "
                               "its 95 % CI)", 120), fontsize=9)
    return fig


def _zero_shot_figure(dataset: str, zd: pd.DataFrame, table: pd.DataFrame) -> plt.Figure | None:
    pairs = []
    for _, z in zd.iterrows():
        same = table[(table["label"] == z["label"]) & (table["mode"] == "trained")
                     & (table["eval_res"] == z["eval_res"]) & (table["dataset"] == dataset)
                     & (table["budget"] == z["budget"])]
        if len(same):
            pairs.append((f"{z['label']}\n{int(z['train_res'])}→{int(z['eval_res'])}", z["value"],
                          same["value"].iloc[0]))
    if not pairs:
        return None
    fig, ax = plt.subplots(figsize=(max(6, len(pairs) * 1.2), 4.5), layout="constrained")
    xs = range(len(pairs))
    ax.bar([x - 0.2 for x in xs], [p[1] for p in pairs], width=0.4, label="zero-shot")
    ax.bar([x + 0.2 for x in xs], [p[2] for p in pairs], width=0.4, label="trained at that grid")
    chance = chance_level(zd)
    if chance is not None:
        ax.axhline(chance, color="0.4", lw=1, linestyle=":", label=f"chance ({chance:.2g})")
    ax.set_xticks(list(xs), [p[0] for p in pairs], fontsize=7)
    ax.set_ylabel(zd["metric"].iloc[0])
    ax.set_title(f"{dataset}: zero-shot resolution transfer vs training at the evaluation grid", fontsize=9)
    ax.legend(fontsize=8)
    return fig


def _study_figure(dataset: str, budget: str, s: pd.DataFrame, chance: float | None) -> plt.Figure:
    """One recipe trained at several grids: per mechanism the trained points joined (solid), and from each the
    zero-shot evaluations at other grids (dashed, hollow); mechanisms dodged sideways."""
    fig, ax = plt.subplots(figsize=(7.5, 4.8), layout="constrained")
    labels = list(dict.fromkeys(s["label"]))
    styles = series_styles(labels)
    for i, label in enumerate(labels):
        g, style = s[s["label"] == label], styles[label]
        dodge = 2 ** ((i - (len(labels) - 1) / 2) * 0.025)
        trained = g[g["mode"] == "trained"].sort_values("train_res")
        ax.errorbar(trained["train_res"] * dodge, trained["value"], yerr=trained["std"].fillna(0), capsize=3,
                    lw=1.4, label=label, **style)
        for _, m in g.groupby("train_res"):
            m = m.sort_values("eval_res")
            if len(m) > 1:
                ax.errorbar(m["eval_res"] * dodge, m["value"], yerr=m["std"].fillna(0), linestyle="--", lw=1,
                            capsize=2, mfc="none", **style)
    if chance is not None:
        ax.axhline(chance, color="0.4", lw=1, linestyle=":", label=f"chance ({chance:.2g})")
    ax.plot([], [], "k--", mfc="none", marker="o", label="zero-shot from the grid it was trained at")
    ax.set_xscale("log", base=2)
    grids = sorted(set(s["eval_res"].astype(int)))
    ax.set_xticks(grids, [f"{g}²" for g in grids])
    ax.xaxis.set_minor_formatter(NullFormatter())
    metric = s["metric"].iloc[0]
    ax.set_xlabel("grid (training grid: solid; zero-shot evaluation: dashed)")
    ax.set_ylabel(_ylabel(metric))
    ax.grid(True, alpha=0.3)
    ax.legend(fontsize=7)
    tasks = ", ".join(dict.fromkeys(s["task"]))
    ax.set_title(f"{dataset} ({tasks}), budget {budget} (samples × epochs): accuracy across resolutions, "
                 f"mean ± std over seeds", fontsize=8)
    return fig


def _curve_figure(stem: str, curves: dict[str, list[dict]]) -> plt.Figure:
    """Training loss per epoch (left, log) and the test metric at the training grid (right), mean over seeds."""
    fig, (left, right) = plt.subplots(1, 2, figsize=(11, 4.4), layout="constrained")
    styles = series_styles(list(curves))
    metric, split = "", "test"
    for label, cs in curves.items():
        style = {k: v for k, v in styles[label].items() if k != "marker"}
        n = min(len(c["train_loss"]) for c in cs)
        loss = np.mean([c["train_loss"][:n] for c in cs], axis=0)
        left.plot(range(1, n + 1), loss, label=f"{label} ({len(cs)} seeds)", **style)
        tested = [c for c in cs if c.get("test_value")]
        if tested:
            m = min(len(c["test_value"]) for c in tested)
            ys = np.mean([c["test_value"][:m] for c in tested], axis=0)
            change, epochs = mean_late_change(tested), tested[0]["test_epoch"]
            note = f": {100 * change:+.1f} % since epoch {epochs[late_index(epochs)]}" if np.isfinite(change) else ""
            right.plot(tested[0]["test_epoch"][:m], ys, marker=styles[label].get("marker", "o"),
                       label=f"{label}{note}", **style)
            metric = tested[0].get("test_metric", metric)
            split = "validation" if tested[0].get("split") == "val" else "test"
    left.set_yscale("log")
    left.set_xlabel("epoch")
    left.set_ylabel("training loss (mean over the epoch)")
    right.set_xlabel("epoch")
    right.set_ylabel(f"{split} {_ylabel(metric)}" if metric else "test metric")
    for ax in (left, right):
        ax.grid(True, alpha=0.3)
        if ax.get_legend_handles_labels()[0]:
            ax.legend(fontsize=7)
    if not metric:  # the suite recorded no test curve (its tasks set no curve_every): say so, not an empty panel
        right.text(0.5, 0.5, "no test curve recorded\n(the task sets no curve_every)", ha="center", va="center",
                   transform=right.transAxes, fontsize=8, color="0.4")
    fig.suptitle(f"{stem}: loss curves, mean over seeds (right: test set at the training grid; the legend gives the "
                 "metric's relative change from the evaluation nearest 3/4 of training to the end)", fontsize=8)
    return fig


def accuracy_figures(df: pd.DataFrame, cost: pd.DataFrame | None = None) -> Iterator[tuple[str, plt.Figure]]:
    """``(file stem, figure)``: per task and budget accuracy vs resolution (only where it was evaluated at two or
    more grids; one grid is a table row, not a figure) and the accuracy-versus-cost Pareto view; per dataset and
    budget trained at several grids the resolution study; per dataset zero-shot vs trained.

    A generator: each figure is drawn when the caller asks for it, so a caller that saves and closes each one
    (``save_figure``, ``svg_text``) never holds more than one open (a report draws dozens).

    ``cost``: cost rows loaded with the accuracy rows ``df`` (any suite); where they time every mechanism of a
    task at its grid, the Pareto view's cost is the layer's time per call instead of the training time.
    """
    table = accuracy_table(df)
    budgets = table.groupby("task")["budget"].nunique()
    both = df if cost is None or cost.empty else pd.concat([df, cost[cost["kind"] == "cost"]], ignore_index=True)

    def stem_of(task: str, budget: str) -> str:  # a task trained on one budget keeps its plain name
        return task if budgets[task] == 1 else f"{task}_{budget.replace('×', 'x')}"

    for (task, budget), t in table.groupby(["task", "budget"], sort=False):
        stem = stem_of(task, budget)
        chance = chance_level(t)
        if t["eval_res"].nunique() > 1:
            yield (f"{stem}_accuracy_vs_resolution", _resolution_figure(stem, t, chance))
        pareto = _pareto_figure(str(task), str(budget), stem, both, chance)
        if pareto is not None:
            yield (f"{stem}_pareto", pareto)
    rows = per_seed(df)
    for (task, budget), r in rows.groupby(["task", "budget"], sort=False):
        curves = trained_curves(r)
        if curves:
            stem = stem_of(task, budget)
            yield (f"{stem}_loss_curves", _curve_figure(stem, curves))
    for (dataset, budget), s in table.groupby(["dataset", "budget"], sort=False):
        if s["train_res"].nunique() > 1:
            yield (f"{dataset}_{budget.replace('×', 'x')}_across_resolutions",
                   _study_figure(dataset, budget, s, chance_level(s)))
    zs = table[table["mode"] == "zero_shot"]
    for dataset, zd in zs.groupby("dataset", sort=False):  # never mixing metrics in one figure
        fig = _zero_shot_figure(dataset, zd, table)
        if fig is not None:
            yield (f"{dataset}_zero_shot_vs_trained", fig)
