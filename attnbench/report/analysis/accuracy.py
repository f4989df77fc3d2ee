"""Accuracy statistics of result rows (kind ``accuracy``): per-seed rows, the mean over seeds with its 95 % CI, the
pairwise comparisons over seeds, chance levels and loss-curve plateau checks — and the two accuracy tables every
renderer draws (:func:`accuracy_summary`, :func:`pairs_table`). Nothing is re-run and nothing is drawn here.

A *budget* is the training set size × epochs; rows of one task trained on different budgets are never pooled. A seed
measured in several runs of the same configuration counts once (the newest row).
"""

from __future__ import annotations

import json
from typing import Any

import numpy as np
import pandas as pd

from attnbench.report.analysis.frame import one_row_per_case
from attnbench.report.analysis.inference import holm
from attnbench.report.analysis.protocol import chosen_only, impl_lr
from attnbench.report.analysis.table import Column, Table, mean_std
from attnbench.store.status import Status

__all__ = ["ALPHA", "LOAD_MARGIN", "LOWER_IS_BETTER", "MIN_SEEDS", "accuracy_comparisons", "accuracy_summary",
           "accuracy_table", "chance_level", "ci95_half_width", "clean_time_rows", "clean_train_time", "compute_spent",
           "late_change", "late_index", "mean_late_change", "pairs_table", "per_seed", "trained_curves"]

LOWER_IS_BETTER = {"rel_l2": True, "top1": False}

# Significance level of the pairwise comparisons (two-sided Welch t-test over seeds) and the seeds each side needs.
ALPHA, MIN_SEEDS = 0.05, 3


def per_seed(df: pd.DataFrame, search: bool = False) -> pd.DataFrame:
    """The ``ok`` accuracy rows, one per (configuration, eval grid, seed) — a seed measured in several runs counts
    once, the newest — with ``dataset`` (from ``impl``), ``budget`` (``"<n_train>×<epochs>"``) and
    ``time_clean`` columns. A tuned task's rows are those at the learning rate its validation split chose
    (:func:`~attnbench.report.analysis.protocol.chosen_only`); ``search=True`` keeps every rate."""
    ok = df[df["status"] == Status.OK].sort_values("timestamp", kind="stable").copy()
    ok = ok.drop_duplicates(["config_id", "eval_res", "seed"], keep="last")
    ok["dataset"] = ok["impl"].map(lambda s: json.loads(s).get("dataset", "") if isinstance(s, str) and s else "")
    ok["budget"] = [f"{int(n)}×{int(e)}" for n, e in zip(ok["n_train"], ok["epochs"])]
    ok["time_clean"] = [_clean(r) for _, r in ok.iterrows()]
    return ok if search else chosen_only(ok)


# A training time counts when the machine's 1-minute load average, at the start and at the end of training,
# was at most the case's own threads plus this margin: above it, other work shared the cores.
LOAD_MARGIN = 0.5


def _clean(r: pd.Series) -> bool | None:
    """Whether the row's training time was measured on an otherwise idle machine (None: load not recorded)."""
    loads = [r.get(k) for k in ("load_start", "load_end")]
    if any(v is None or pd.isna(v) for v in loads):
        return None
    return max(float(v) for v in loads) <= float(r["threads"]) + LOAD_MARGIN


def clean_time_rows(g: pd.DataFrame) -> pd.DataFrame:
    """The rows of ``g`` whose training time counts: measured on an idle machine (or with the load not recorded),
    all from the one machine with the most such rows (empty when none)."""
    usable = g[g["time_clean"].map(lambda c: c is not False)]
    if usable.empty:
        return usable
    machine = usable["machine"].astype(str).value_counts().index[0]
    return usable[usable["machine"].astype(str) == machine]


def clean_train_time(g: pd.DataFrame) -> dict[str, Any]:
    """The training time of one group of seeds, never mixing machines and never counting a loaded machine:
    ``train_s`` is the mean over the rows measured on an idle machine (or with the load not recorded) of the
    machine with the most such rows; ``train_n`` those rows, ``train_machine`` that machine, ``train_excluded``
    the rows left out (loaded, or from another machine)."""
    mine = clean_time_rows(g)
    if mine.empty:
        return {"train_s": np.nan, "train_n": 0, "train_machine": "", "train_excluded": len(g)}
    machine = str(mine["machine"].iloc[0])
    return {"train_s": float(mine["train_s"].mean()), "train_n": len(mine), "train_machine": machine,
            "train_excluded": len(g) - len(mine)}


def accuracy_table(df: pd.DataFrame) -> pd.DataFrame:
    """Mean and std over seeds per (task, budget, label, mode, train_res, eval_res), with the mean's 95 % CI
    (``ci95``), the machines that measured it, and for zero-shot rows the change against the same model's trained
    row (``vs_trained``: value / trained value − 1)."""
    ok = per_seed(df)
    keys = ["suite", "task", "budget", "dataset", "label", "mode", "train_res", "eval_res", "metric"]
    if ok.empty:
        return pd.DataFrame(columns=[*keys, "value", "std", "seeds", "ci95", "vs_trained", "train_s", "train_n",
                                     "train_machine", "train_excluded", "lr"])
    agg = ok.groupby(keys, sort=False).agg(
        value=("value", "mean"), std=("value", "std"), seeds=("value", "size"), rel_mse=("rel_mse", "mean"),
        rel_mse_std=("rel_mse", "std"), peak_mib=("peak_mib", "mean"),
        params=("params", "first"), step_flops=("step_flops", "first"), n_train=("n_train", "first"),
        epochs=("epochs", "first"),
        window_ratio=("window_ratio", "first"), mem_kind=("mem_kind", "first"), impl=("impl", "first"),
        machines=("machine", lambda m: ", ".join(sorted({str(x) for x in m if str(x)})) or "not recorded"))
    times = pd.DataFrame([{**dict(zip(keys, key)), **clean_train_time(g),
                           "lr": ", ".join(f"{x:g}" for x in sorted(set(g["impl"].map(impl_lr).dropna())))}
                          for key, g in ok.groupby(keys, sort=False)])
    agg = agg.reset_index().merge(times, on=keys, how="left")
    agg["ci95"] = [ci95_half_width(s, n) for s, n in zip(agg["std"], agg["seeds"])]
    trained = agg[agg["mode"] == "trained"].set_index(["suite", "task", "budget", "label", "train_res"])["value"]
    agg["vs_trained"] = [v / trained.get((su, t, b, lab, r), np.nan) - 1 if m == "zero_shot" else np.nan
                         for su, t, b, lab, r, m, v in zip(agg["suite"], agg["task"], agg["budget"], agg["label"],
                                                           agg["train_res"], agg["mode"], agg["value"])]
    return agg


def _grid(column: str) -> Column:
    return Column(column, "train grid" if column == "train_res" else "eval grid",
                  lambda r: "" if pd.isna(r[column]) else f"{int(r[column])}²")


def _train_time(r: dict) -> str:
    """``mean (n seeds[ on machine][, k left out])``: the machine is named where the row draws on several; rows
    left out (a loaded machine, another machine) are counted."""
    if pd.isna(r.get("train_s")):
        return "—"
    left = f", {int(r['train_excluded'])} left out" if r.get("train_excluded") else ""
    n = int(r["train_n"])
    # the machine is named only where the row draws on several (one is in the machines column; none: not recorded)
    where = "" if r.get("machines") == r["train_machine"] or not r["train_machine"] else f" on {r['train_machine']}"
    return f"{r['train_s']:.0f} ({n} seed{'' if n == 1 else 's'}{where}{left})"


def _percent(r: dict) -> str:
    return "" if pd.isna(r["vs_trained"]) else f"{100 * r['vs_trained']:+.0f} %"


# The accuracy table, specified once: accuracy.md, the HTML report and the docs' accuracy blocks draw these columns.
ACCURACY_COLUMNS = (
    Column("suite", "suite"), Column("task", "task"), Column("budget", "budget (samples × epochs)", sort="budget_size"),
    Column("label", "attention"), _grid("train_res"), _grid("eval_res"), Column("mode", "mode"),
    Column("metric", "metric"), Column("value", "value", lambda r: mean_std(r["value"], r["std"])),
    Column("ci95", "± 95 % CI", ".2g"),
    Column("rel_mse", "rel_mse", lambda r: mean_std(r["rel_mse"], r["rel_mse_std"], 3)),
    Column("vs_trained", "zero-shot vs trained", _percent), Column("seeds", "seeds", "d"),
    Column("n_train", "n_train", ".0f"), Column("epochs", "epochs", ".0f"), Column("lr", "lr"),
    Column("train_s", "train s", _train_time),
    Column("peak_mib", "train peak MiB", ".0f"), Column("params", "params", ".0f"),
    Column("step_flops", "GFLOP / step", lambda r: "" if pd.isna(r.get("step_flops")) else
           f"{r['step_flops'] / 1e9:.3g}"),
    Column("window_ratio", "window/grid", ".2g"), Column("machines", "machines"),
)


def accuracy_summary(df: pd.DataFrame) -> Table:
    """The accuracy table of ``df``: one row per (task, budget, mechanism, training grid, evaluation grid)."""
    agg = accuracy_table(df)
    agg["budget_size"] = agg["n_train"] * agg["epochs"]
    return Table("accuracy", "Accuracy (mean ± std over seeds)", ACCURACY_COLUMNS,
                 tuple(agg.to_dict("records")),
                 "mean ± std over seeds, and the half-width of the mean's 95 % CI (Student t); rel_l2 = mean of "
                 "‖û−u‖/‖u‖, rel_mse = mean of ‖û−u‖²/‖u‖² (the MANO paper's metric), top1 = fraction correct; "
                 "trained: evaluated at the training grid, zero-shot: the same model at another grid; lr: the "
                 "learning rate (a tuned task: the one its validation split chose); train s: mean training wall time "
                 "over the seeds trained on one machine (named) whose load average stayed within their threads + "
                 f"{LOAD_MARGIN} (rows with no load recorded count), the rest left out; peak MiB: mean over seeds; "
                 "GFLOP / step: one training step's forward and backward on one batch, as torch's FlopCounterMode "
                 "counts them with attention as the math kernel's matmuls and grouped convolutions' weight gradients "
                 "at their real size (FFTs, elementwise work and norms not counted)",
                 "No accuracy rows.")


def compute_spent(df: pd.DataFrame) -> Table:
    """Training compute per machine: runs, training cases and the hours their cases ran (each case once)."""
    records = []
    for machine, g in df.groupby("machine", sort=True):
        cases = one_row_per_case(g)
        records.append({"machine": machine, "runs": g["run_id"].nunique(), "cases": len(cases),
                        "hours": cases["case_wall_s"].sum(min_count=1) / 3600,
                        "threads": ", ".join(sorted({f"{t:.0f}" for t in g["threads"].dropna()}))})
    return Table("compute", "Compute spent", (Column("machine", "machine"), Column("runs", "runs", "d"),
                                              Column("cases", "training cases", "d"), Column("threads", "threads"),
                                              Column("hours", "case hours", ".2f")),
                 tuple(records), "per machine: the runs, their training cases (one per mechanism, learning rate and "
                 "seed, whatever grids it is evaluated on) and the hours of wall time the cases ran, each case once "
                 "(training, evaluation and process start; a case that failed counts the time it ran; data generation "
                 "before the cases is not counted)",
                 "No runs.")


def accuracy_comparisons(df: pd.DataFrame) -> pd.DataFrame:
    """Every pair of mechanisms on the same suite, task, budget, training and evaluation grid, both with ≥
    ``MIN_SEEDS`` seeds: means, two-sided Welch t-test p over seeds, that p Holm-adjusted across every pair
    (``p_holm``), and a verdict — "<a> better" / "<b> better" only at ``p_holm`` < ``ALPHA``, else "no difference
    shown". One row per pair; empty when no pair has the seeds."""
    from scipy.stats import ttest_ind

    ok = per_seed(df)
    rows = []
    for (suite, task, budget, train_res, eval_res, metric), g in ok.groupby(
            ["suite", "task", "budget", "train_res", "eval_res", "metric"], sort=False):
        lower = LOWER_IS_BETTER.get(metric, False)
        values = {label: s["value"].to_numpy(float) for label, s in g.groupby("label", sort=False)}
        labels = [label for label, v in values.items() if len(v) >= MIN_SEEDS]
        for i, a in enumerate(labels):
            for b in labels[i + 1:]:
                va, vb = values[a], values[b]
                p = float(ttest_ind(va, vb, equal_var=False).pvalue)
                a_wins = va.mean() < vb.mean() if lower else va.mean() > vb.mean()
                rows.append({"suite": suite, "task": task, "budget": budget, "train_res": int(train_res),
                             "eval_res": int(eval_res), "mode": "trained" if train_res == eval_res else "zero_shot",
                             "metric": metric, "a": a, "b": b, "mean_a": va.mean(), "mean_b": vb.mean(),
                             "seeds": f"{len(va)}/{len(vb)}", "p": p, "winner": a if a_wins else b})
    columns = ["suite", "task", "budget", "train_res", "eval_res", "mode", "metric", "a", "b", "mean_a", "mean_b",
               "seeds", "p", "p_holm", "verdict"]
    if not rows:
        return pd.DataFrame(columns=columns)
    out = pd.DataFrame(rows)
    out["p_holm"] = holm(out["p"].tolist())  # across every pair of the given rows: one family of tests
    out["verdict"] = [f"{w} better" if ph < ALPHA else "no difference shown"
                      for w, ph in zip(out["winner"], out["p_holm"])]
    return out[columns]


PAIR_COLUMNS = (
    Column("suite", "suite"), Column("task", "task"), Column("budget", "budget"), _grid("train_res"), _grid("eval_res"),
    Column("metric", "metric"), Column("a", "a"), Column("b", "b"), Column("mean_a", "mean a", ".4g"),
    Column("mean_b", "mean b", ".4g"),
    Column("means", "means", lambda r: f"{r['a']} {r['mean_a']:.4g} vs {r['b']} {r['mean_b']:.4g}"),
    Column("seeds", "seeds"), Column("p", "Welch p", ".2g"), Column("p_holm", "Holm p", ".2g"),
    Column("verdict", "verdict"),
)


def pairs_table(df: pd.DataFrame, differences_only: bool = False) -> Table:
    """The pairwise comparisons as a table (``differences_only``: the pairs with a supported difference)."""
    comp = accuracy_comparisons(df)
    tested = len(comp)
    if differences_only:
        comp = comp[comp["verdict"] != "no difference shown"]
    note = (f"two-sided Welch t-test over seeds, each side ≥ {MIN_SEEDS} seeds, per suite, task, budget and grid; "
            f"\"better\" only where Holm's adjustment across all {tested} pairs gives p < {ALPHA}; "
            f"{int((comp['verdict'] != 'no difference shown').sum())} differences supported")
    return Table("pairs", "Which differences the seeds support", PAIR_COLUMNS, tuple(comp.to_dict("records")),
                 note, f"No pair of mechanisms has {MIN_SEEDS} seeds on both sides.")


def ci95_half_width(std: float, n: int) -> float:
    """Half-width of the 95 % confidence interval of a mean over ``n`` seeds (Student t); nan below 2 seeds."""
    from scipy.stats import t

    return float(t.ppf(0.975, n - 1) * std / n ** 0.5) if n >= 2 and pd.notna(std) else float("nan")


def chance_level(t: pd.DataFrame) -> float | None:
    """Top-1 of guessing for a classification task: 1 / classes (the datasets' classes are balanced)."""
    if t["metric"].iloc[0] != "top1":
        return None
    impl = json.loads(t["impl"].iloc[0]) if isinstance(t["impl"].iloc[0], str) and t["impl"].iloc[0] else {}
    classes = impl.get("classes")
    return 1.0 / classes if classes else None


def trained_curves(rows: pd.DataFrame) -> dict[str, list[dict]]:
    """label → the recorded curves of its trained rows (one per seed)."""
    out: dict[str, list[dict]] = {}
    for _, r in rows[rows["mode"] == "trained"].iterrows():
        text = r.get("curve", "")
        if isinstance(text, str) and text:
            out.setdefault(str(r["label"]), []).append(json.loads(text))
    return out


def late_index(epochs: list[int]) -> int:
    """Index of the test evaluation nearest 3/4 of training (never the last one)."""
    return min(range(len(epochs) - 1), key=lambda k: abs(epochs[k] - 0.75 * epochs[-1]))


def late_change(curve: dict) -> float:
    """Relative change of the test metric from the evaluation nearest 3/4 of training to the last one
    (``(last − then) / then``); nan without at least two test points. Near 0 = the test loss has plateaued."""
    values = curve.get("test_value", [])
    if len(values) < 2:
        return float("nan")
    then = values[late_index(curve["test_epoch"])]
    return (values[-1] - then) / then if then else float("nan")


def mean_late_change(curves: list[dict]) -> float:
    """Mean ``late_change`` over the curves that have one, nan if none: the plateau check of figures and claims."""
    changes = [c for c in map(late_change, curves) if np.isfinite(c)]
    return float(np.mean(changes)) if changes else float("nan")
