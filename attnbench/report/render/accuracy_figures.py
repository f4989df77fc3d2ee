"""Accuracy figures (matplotlib, Agg) from the analysis layer's accuracy tables; nothing is re-run.

* accuracy vs evaluation grid per mechanism (trained point filled, zero-shot from it dashed and hollow), per task
  evaluated at two or more grids, with the chance level of classification tasks;
* accuracy vs training time and vs training peak memory with the Pareto front (Pareto views), per task;
* zero-shot vs trained at the same grid, where both exist;
* accuracy vs training grid across the tasks of one dataset and budget (a resolution study: the same recipe at
  several training grids), trained points joined, zero-shot one step up dashed from each;
* loss curves (training loss per epoch, test metric every ``curve_every`` epochs) per task and budget, where the
  rows recorded them, with the test metric's relative change from the evaluation nearest 3/4 of training to the
  end (the plateau check).
"""

from __future__ import annotations

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402
import pandas as pd  # noqa: E402
from matplotlib.ticker import NullFormatter  # noqa: E402

from attnbench.report.analysis.accuracy import (  # noqa: E402
    LOWER_IS_BETTER, accuracy_table, chance_level, late_index, mean_late_change, per_seed, trained_curves,
)
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
        for train_res, m in g.groupby("train_res"):
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


def _pareto_front(x: np.ndarray, y: np.ndarray, lower_better: bool) -> list[int]:
    """Indices of the points no other point beats in both cost (lower) and metric, in order of cost."""
    order = np.argsort(x)
    front, best = [], np.inf
    for i in order:
        v = y[i] if lower_better else -y[i]
        if v < best:
            front.append(int(i))
            best = v
    return front


def _pareto_figure(task: str, t: pd.DataFrame, chance: float | None) -> plt.Figure:
    trained = t[t["mode"] == "trained"].reset_index(drop=True)
    metric = t["metric"].iloc[0]
    styles = series_styles(list(dict.fromkeys(t["label"])))
    fig, axes = plt.subplots(1, 2, figsize=(11, 4.6), layout="constrained")
    kind = trained["mem_kind"].iloc[0] if len(trained) else ""
    for ax, col, xlabel in ((axes[0], "train_s", "training wall time [s]"),
                            (axes[1], "peak_mib", f"training peak memory [MiB] ({kind})")):
        for label, g in trained.groupby("label", sort=False):
            ax.errorbar(g[col], g["value"], yerr=g["std"].fillna(0), linestyle="", capsize=3, label=label,
                        **styles[label])
            for _, r in g.iterrows():
                ax.annotate(f"{int(r['eval_res'])}²", (r[col], r["value"]), fontsize=7, xytext=(4, 4),
                            textcoords="offset points")
        front = _pareto_front(trained[col].to_numpy(float), trained["value"].to_numpy(float),
                              LOWER_IS_BETTER.get(metric, False))
        if len(front) > 1:
            ax.plot(trained.loc[front, col], trained.loc[front, "value"], color="0.5", lw=1, zorder=0,
                    drawstyle="steps-post", label="Pareto front")
        if chance is not None:
            ax.axhline(chance, color="0.4", lw=1, linestyle=":", label=f"chance ({chance:.2g})")
        ax.set_xscale("log")
        readable_log_axis(ax, "x")
        ax.set_xlabel(xlabel)
        ax.set_ylabel(_ylabel(metric))
        ax.grid(True, alpha=0.3)
        ax.legend(fontsize=7)
    fig.suptitle(f"{task}: accuracy vs training cost, trained-at-grid rows (mean ± std over seeds)", fontsize=9)
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
        for train_res, m in g.groupby("train_res"):
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
    metric = ""
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
    left.set_yscale("log")
    left.set_xlabel("epoch")
    left.set_ylabel("training loss (mean over the epoch)")
    right.set_xlabel("epoch")
    right.set_ylabel(_ylabel(metric) if metric else "test metric")
    for ax in (left, right):
        ax.grid(True, alpha=0.3)
        ax.legend(fontsize=7)
    fig.suptitle(f"{stem}: loss curves, mean over seeds (right: test set at the training grid; the legend gives the "
                 "metric's relative change from the evaluation nearest 3/4 of training to the end)", fontsize=8)
    return fig


def accuracy_figures(df: pd.DataFrame) -> list[tuple[str, plt.Figure]]:
    """``(file stem, figure)``: per task and budget accuracy vs resolution (only where it was evaluated at two or
    more grids; one grid is a table row, not a figure) and the Pareto view; per dataset and budget trained at
    several grids the resolution study; per dataset zero-shot vs trained."""
    table = accuracy_table(df)
    out = []
    budgets = table.groupby("task")["budget"].nunique()
    for (task, budget), t in table.groupby(["task", "budget"], sort=False):
        stem = task if budgets[task] == 1 else f"{task}_{budget.replace('×', 'x')}"
        chance = chance_level(t)
        if t["eval_res"].nunique() > 1:
            out.append((f"{stem}_accuracy_vs_resolution", _resolution_figure(stem, t, chance)))
        out.append((f"{stem}_pareto", _pareto_figure(stem, t, chance)))
    rows = per_seed(df)
    for (task, budget), r in rows.groupby(["task", "budget"], sort=False):
        curves = trained_curves(r)
        if curves:
            stem = task if budgets[task] == 1 else f"{task}_{budget.replace('×', 'x')}"
            out.append((f"{stem}_loss_curves", _curve_figure(stem, curves)))
    for (dataset, budget), s in table.groupby(["dataset", "budget"], sort=False):
        if s["train_res"].nunique() > 1:
            out.append((f"{dataset}_{budget.replace('×', 'x')}_across_resolutions",
                        _study_figure(dataset, budget, s, chance_level(s))))
    zs = table[table["mode"] == "zero_shot"]
    for dataset, zd in zs.groupby("dataset", sort=False):  # never mixing metrics in one figure
        fig = _zero_shot_figure(dataset, zd, table)
        if fig is not None:
            out.append((f"{dataset}_zero_shot_vs_trained", fig))
    return out
