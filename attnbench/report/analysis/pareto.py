"""Accuracy against cost, one point per mechanism, and the Pareto front: the mechanisms no other beats on both.

The accuracy of a point is the mean over seeds of the task's metric, trained and evaluated at the training grid,
with the half-width of the mean's 95 % CI (:func:`~attnbench.report.analysis.accuracy.accuracy_table`); whether
lower is better comes from :data:`~attnbench.report.analysis.accuracy.LOWER_IS_BETTER`. The cost (x) is one of:

* ``"layer"``: the attention layer's ``fwd_bwd`` time per call at the grid the model's layers see (the token grid,
  else the training grid), from the cost rows loaded with the accuracy rows, with that median's 95 % CI — the
  mechanism's own price, free of the rest of the model and of the training machine's load;
* ``"train_s"``: the training wall time per seed, mean over the seeds trained on one idle machine (the rule of
  :func:`~attnbench.report.analysis.accuracy.clean_train_time`) ± the 95 % CI of that mean;
* ``"peak_mib"``: the training peak memory, mean over seeds.

``"auto"`` takes the layer time when the cost rows cover every mechanism of the task at its grid (a front over a
mixture of two kinds of cost would be meaningless), else the training time. Pure: rows in, a frame out.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import pandas as pd

from attnbench.report.analysis.accuracy import (
    LOWER_IS_BETTER,
    accuracy_table,
    ci95_half_width,
    clean_time_rows,
    per_seed,
)
from attnbench.report.analysis.families import label_families
from attnbench.store.status import Status

__all__ = ["COST_MODE", "pareto_front", "pareto_points"]

# The cost rows a layer's price is read from: training runs the forward and the backward.
COST_MODE = "fwd_bwd"
_COLUMNS = ["label", "family", "train_res", "grid", "metric", "value", "std", "ci95", "seeds", "x", "x_lo", "x_hi",
            "x_kind", "x_label", "lower_is_better", "on_front"]


def pareto_front(x: Sequence[float], y: Sequence[float], lower_is_better: bool) -> list[int]:
    """Indices of the points no other point dominates — at most the cost (``x``, lower is better) and at least as
    good a metric (``y``), better in one — in order of cost. Points with a missing value are never on it."""
    xs, ys = np.asarray(x, float), np.asarray(y, float)
    good = ys if lower_is_better else -ys  # "smaller is better" on both axes from here on
    finite = np.flatnonzero(np.isfinite(xs) & np.isfinite(good))
    # by cost, and at equal cost the better metric first: the worse of two equal-cost points is dominated
    order = finite[np.lexsort((good[finite], xs[finite]))]
    front: list[int] = []
    best = np.inf
    for i in order:
        if good[i] < best:
            front.append(int(i))
            best = good[i]
    return front


def _token_grid(rows: pd.DataFrame) -> tuple[int, int] | None:
    """The grid the model's attention layers see for these trained rows: the token grid where recorded, else the
    training grid."""
    r = rows.iloc[0]
    for h, w in (("token_height", "token_width"), ("height", "width")):
        if pd.notna(r.get(h)) and pd.notna(r.get(w)):
            return int(r[h]), int(r[w])
    return None


def _layer_costs(cost: pd.DataFrame, grids: dict[str, tuple[int, int] | None]) -> pd.DataFrame | None:
    """Per label the ``fwd_bwd`` cost row at its grid from the first cost suite that has one for every label
    (the newest row where one suite holds several runs); ``None`` when no suite covers them all."""
    ok = cost[(cost["kind"] == "cost") & (cost["status"] == Status.OK) & (cost["mode"] == COST_MODE)]
    for suite, rows in ok.groupby("suite", sort=False):
        rows = rows.sort_values("timestamp", kind="stable") if "timestamp" in rows else rows
        found = []
        for label, grid in grids.items():
            hit = rows[(rows["label"] == label) & (rows["height"] == (grid or (0, 0))[0])
                       & (rows["width"] == (grid or (0, 0))[1])]
            if hit.empty:
                break
            found.append(hit.iloc[-1])
        else:
            return pd.DataFrame(found).assign(suite=suite).set_index("label")
    return None


def _train_costs(seeds: pd.DataFrame, column: str) -> dict[tuple[str, int], tuple[float, float]]:
    """(label, training grid) → (mean over seeds, half-width of its 95 % CI) of ``column``."""
    out = {}
    for (label, res), g in seeds.groupby(["label", "train_res"], sort=False):
        if column == "train_s":  # the times of one idle machine only
            g = clean_time_rows(g)
        values = g[column].astype(float).dropna()
        out[(label, int(res))] = (float(values.mean()) if len(values) else float("nan"),
                                  ci95_half_width(float(values.std()), len(values)))
    return out


def pareto_points(df: pd.DataFrame, task: str, budget: str | None = None, x: str = "auto") -> pd.DataFrame:
    """One point per mechanism (and training grid) of ``task`` trained at its grid, with ``on_front``.

    ``df`` holds the accuracy rows, and may hold cost rows (for ``x="layer"`` / ``"auto"``); ``budget`` picks one
    training budget (``"<n_train>×<epochs>"``, default: the task's first). ``x`` is ``"auto"``, ``"layer"``,
    ``"train_s"`` or ``"peak_mib"`` (see the module docstring). Columns: ``label``, ``family``, ``train_res``,
    ``grid`` (the grid the layer cost was read at, e.g. ``"16x16"``), ``metric``, ``value``, ``std``, ``ci95``,
    ``seeds``, ``x`` with ``x_lo``/``x_hi`` (its 95 % CI; nan without one), ``x_kind`` (the cost used),
    ``x_label`` (an axis label saying what x is), ``lower_is_better`` and ``on_front``; cheapest first. Empty
    when the task has no trained rows; ``x="layer"`` without covering cost rows raises ``ValueError``.
    """
    acc = df[(df["kind"] == "accuracy") & (df["task"] == task)]
    seeds = per_seed(acc)
    if budget is None and len(seeds):
        budget = str(seeds["budget"].iloc[0])
    seeds = seeds[(seeds["budget"] == budget) & (seeds["mode"] == "trained")]
    if seeds.empty:
        return pd.DataFrame(columns=_COLUMNS)
    table = accuracy_table(acc)
    table = table[(table["budget"] == budget) & (table["mode"] == "trained")].reset_index(drop=True)
    grids = {label: _token_grid(seeds[seeds["label"] == label]) for label in dict.fromkeys(table["label"])}
    layer = _layer_costs(df, grids) if x in ("auto", "layer") else None
    if x == "layer" and layer is None:
        raise ValueError(f"no cost suite has {COST_MODE} rows of every mechanism of {task} at its grid")
    kind = "layer" if layer is not None else ("train_s" if x == "auto" else x)
    families = label_families(acc)
    train = _train_costs(seeds, "train_s" if kind == "layer" else kind)
    lower = LOWER_IS_BETTER.get(str(table["metric"].iloc[0]), False)
    records = []
    for r in table.to_dict("records"):
        grid = grids[r["label"]]
        if layer is not None:  # kind == "layer"
            c = layer.loc[r["label"]]
            value, lo, hi = float(c["time_ms_median"]), float(c["time_ms_ci_lo"]), float(c["time_ms_ci_hi"])
        else:
            value, half = train[(r["label"], int(r["train_res"]))]
            lo, hi = value - half, value + half
        records.append({**{k: r[k] for k in ("label", "train_res", "metric", "value", "std", "ci95", "seeds")},
                        "family": families.get(r["label"], ""), "grid": f"{grid[0]}x{grid[1]}" if grid else "",
                        "x": value, "x_lo": lo, "x_hi": hi, "x_kind": kind, "lower_is_better": lower})
    points = pd.DataFrame(records)
    points["x_label"] = _x_label(kind, points, layer, seeds)
    front = set(pareto_front(points["x"], points["value"], lower))
    points["on_front"] = [i in front for i in range(len(points))]
    return points.sort_values(["x", "label"], kind="stable").reset_index(drop=True)[_COLUMNS]


def _x_label(kind: str, points: pd.DataFrame, layer: pd.DataFrame | None, seeds: pd.DataFrame) -> str:
    """What x is, for an axis label: the layer's time with where it was measured, or the training cost."""
    if kind == "layer" and layer is not None:
        first = layer.iloc[0]
        grids = ", ".join(dict.fromkeys(points["grid"]))
        # the cost suite's layer need not match the model's (batch, width): say which layer was timed
        return (f"attention layer {COST_MODE} time per call at {grids} [ms] (cost suite {first['suite']}: "
                f"batch {first['batch']:.0f}, C = {first['dim']:.0f}, {first['dtype']})")
    if kind == "peak_mib":
        counters = ", ".join(sorted({str(k) for k in seeds["mem_kind"] if isinstance(k, str) and k}))
        return "training peak memory per seed [MiB]" + (f" ({counters})" if counters else "")
    return "training wall time per seed [s]"
