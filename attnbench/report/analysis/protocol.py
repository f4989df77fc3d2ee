"""The tuning protocol as the rows record it (issue 24): which learning rate each mechanism's validation split chose.

A *tuned* task trained every mechanism at each rate of a grid (``impl["lr_grid"]``) at its first seed, then the
other seeds at the rate whose first-seed model scored best on the validation split (``val_value``). The rule is
the one the run applied (:meth:`attnbench.spec.training.TrainCase.resolve`): lowest relative L2 or highest top-1,
a tie to the smaller rate. Here it is applied again to the recorded rows, so the report reads a tuned task at
its chosen rate only — the test metric of the other rates is never shown — and shows the search by its
validation numbers. Pure: rows in, frames out.
"""

from __future__ import annotations

import json

import numpy as np
import pandas as pd

from attnbench.report.analysis.table import Table

__all__ = ["CHOICE_KEYS", "chosen_only", "impl_lr", "impl_lr_grid", "lr_choices", "lr_search_tables", "tuned"]

# What one choice is made for: a mechanism on one task of one suite, at one budget and training grid.
CHOICE_KEYS = ["suite", "task", "budget", "label", "train_res"]


def _impl(text: object) -> dict:
    return json.loads(text) if isinstance(text, str) and text else {}


def impl_lr(text: object) -> float:
    """The learning rate a row trained at (``impl["lr"]``), nan where not recorded."""
    return float(_impl(text).get("lr", np.nan))


def impl_lr_grid(text: object) -> tuple[float, ...]:
    """The grid a tuned row's rate was chosen from (empty: the task was not tuned)."""
    return tuple(float(v) for v in _impl(text).get("lr_grid", ()))


def tuned(rows: pd.DataFrame) -> pd.Series:
    """Boolean mask of the rows whose task chose its learning rate on validation (``impl`` has an ``lr_grid``)."""
    return rows["impl"].map(lambda s: bool(impl_lr_grid(s))).astype(bool)


def lr_choices(ok: pd.DataFrame) -> pd.DataFrame:
    """One row per (suite, task, budget, label, train grid, learning rate) of the tuned tasks' trained rows at
    their tuning seed: ``val_value``, the ``metric``, ``seed`` (the tuning seed: the smallest seed that trained at
    more than one rate) and ``chosen`` (the rate the validation split picks). ``ok`` is
    :func:`~attnbench.report.analysis.accuracy.per_seed`'s frame before the choice (with ``budget``)."""
    columns = [*CHOICE_KEYS, "lr", "seed", "metric", "val_value", "chosen"]
    if ok.empty:
        return pd.DataFrame(columns=columns)
    t = ok[(ok["mode"] == "trained") & tuned(ok)].copy()
    if t.empty:
        return pd.DataFrame(columns=columns)
    t["lr"] = t["impl"].map(impl_lr)
    rows = []
    for key, g in t.groupby(CHOICE_KEYS, sort=False):
        per_seed_lrs = g.groupby("seed")["lr"].nunique()
        tuning = per_seed_lrs[per_seed_lrs > 1]
        if tuning.empty:
            continue
        seed = int(tuning.index.min())
        at = g[g["seed"] == seed].sort_values("lr")
        lower = at["metric"].iloc[0] == "rel_l2"
        scores = {float(lr): (v if lower else -v) for lr, v in zip(at["lr"], at["val_value"]) if pd.notna(v)}
        best = min(scores, key=lambda lr: (scores[lr], lr)) if scores else np.nan
        for _, r in at.iterrows():
            rows.append({**dict(zip(CHOICE_KEYS, key)), "lr": float(r["lr"]), "seed": seed, "metric": r["metric"],
                         "val_value": r["val_value"], "chosen": float(r["lr"]) == best})
    return pd.DataFrame(rows, columns=columns)


def chosen_only(ok: pd.DataFrame) -> pd.DataFrame:
    """``ok`` without a tuned task's rows at the rates its validation split did not choose (every grid, every
    seed); rows of tasks that were not tuned, or whose search has no rows at two rates, are kept as they are."""
    if ok.empty:
        return ok
    mask = tuned(ok)
    if not mask.any():
        return ok
    choices = lr_choices(ok)
    chosen = {tuple(r[k] for k in CHOICE_KEYS): r["lr"] for _, r in choices[choices["chosen"]].iterrows()}
    lrs = ok["impl"].map(impl_lr)
    # A group whose search is not recorded (a run stopped inside the grid) has no choice: its rows stay.
    searched = {tuple(r[k] for k in CHOICE_KEYS) for _, r in choices.iterrows()}
    keys = [tuple(r[k] for k in CHOICE_KEYS) for _, r in ok.iterrows()]
    keep = [not t or k not in searched or chosen.get(k) == lr for t, lr, k in zip(mask, lrs, keys)]
    return ok[keep]


def lr_search_tables(ok: pd.DataFrame) -> list[Table]:
    """Per tuned task: mechanism × learning rate, each cell the validation metric at the tuning seed, the chosen
    rate marked; the note states the protocol as the rows record it (splits, grid, seeds per mechanism). ``ok``:
    :func:`~attnbench.report.analysis.accuracy.per_seed` with ``search=True``."""
    choices = lr_choices(ok)
    tables = []
    for (suite, task, budget, train_res), t in choices.groupby(["suite", "task", "budget", "train_res"], sort=False):
        lrs = sorted(t["lr"].unique())
        headers = ["attention", *(f"lr {lr:g}" for lr in lrs), "chosen", "seeds at the chosen lr"]
        rows = []
        for label, g in t.groupby("label", sort=False):
            cells = {float(r["lr"]): f"{r['val_value']:.4g}" + (" ←" if r["chosen"] else "")
                     for _, r in g.iterrows()}
            chosen = g.loc[g["chosen"], "lr"]
            lr = float(chosen.iloc[0]) if len(chosen) else np.nan
            seeds = ok[(ok["suite"] == suite) & (ok["task"] == task) & (ok["label"] == label)
                       & (ok["mode"] == "trained") & (ok["impl"].map(impl_lr) == lr)]["seed"]
            edge = " (grid edge)" if len(lrs) > 1 and lr in (lrs[0], lrs[-1]) else ""
            rows.append([str(label), *(cells.get(float(x), "") for x in lrs), "" if np.isnan(lr) else f"{lr:g}{edge}",
                         ", ".join(str(int(s)) for s in sorted(seeds.unique()))])
        some = ok[(ok["suite"] == suite) & (ok["task"] == task)]
        n_val = ", ".join(sorted({str(int(v)) for v in some["n_val"].dropna()})) or "?"
        metric = str(t["metric"].iloc[0])
        note = (f"protocol: training set {budget} (samples × epochs), validation split of {n_val} samples from the "
                f"training distribution, test set apart; every mechanism trained at each rate of the grid at seed "
                f"{int(t['seed'].iloc[0])}; the rate with the best validation {metric} "
                f"({'lowest' if metric == 'rel_l2' else 'highest'}; a tie to the smaller rate) is chosen (←), and "
                "the other seeds train at it; cells: the validation metric, never the test set's; a choice at the "
                "grid's edge says a wider grid might choose otherwise")
        tables.append(Table.of_text(f"lr-search-{task}", f"{suite} / {task}: learning rate chosen on validation "
                                    f"({int(train_res)}²)", headers, rows, note))
    return tables
