"""Learning-rate sweeps in accuracy rows: one recipe trained at several learning rates, per mechanism.

A *sweep* is found, not declared: the classification tasks of one dataset whose trained rows share the budget
(samples × epochs), the training grid, the patch and the batch, and that between them use two or more learning rates
(``impl["lr"]``). Two tasks of a sweep at the same learning rate differ in something the rows do not record (the
long-range task's variant): the one with more mechanisms stays in the sweep, the other is left out. A task tuned on
validation is no sweep here: its search is shown by validation metric (:mod:`~attnbench.report.analysis.protocol`).
Per mechanism and task it gives the test metric at the training grid over seeds and the last epoch's mean training
loss, and for classification a verdict per seed by a stated rule:

* *solved*: top-1 ≥ ``SOLVED``;
* *above chance*: a one-sided binomial test of the seed's correct count over the ``n_test`` test samples against the
  chance level (1 / classes; the datasets are balanced), Holm-adjusted across every seed of the sweep, gives
  p < ``ALPHA``;
* either needs the seed's final training loss below the loss of guessing, ``(1 − LOSS_SLACK) · ln(classes)``: a
  model at chance on its own training set has learnt nothing;
* a cell reads "solved" / "above chance" when every seed is, "k/n solved" / "k/n above chance" when some are, else
  "at chance".

The question it answers (issue 13.4): can a mechanism learn the task at all, at which learning rate and budget?
"""

from __future__ import annotations

import json
from dataclasses import dataclass

import numpy as np
import pandas as pd

from attnbench.report.analysis.accuracy import ALPHA, chance_level, per_seed
from attnbench.report.analysis.inference import holm
from attnbench.report.analysis.protocol import tuned
from attnbench.report.analysis.table import Table

__all__ = ["SOLVED", "SweepResult", "lr_sweeps", "sweep_tables", "tuned_verdicts"]

SOLVED = 0.95  # top-1 a seed needs for "solved"
LOSS_SLACK = 0.02  # a final training loss above (1 − this) × ln(classes) is at chance on the training set
_SHARED = ["dataset", "budget", "train_res", "patch", "batch"]


def _lr(impl: object) -> float:
    return float(json.loads(impl).get("lr", np.nan)) if isinstance(impl, str) and impl else np.nan


def _binomial_p(g: pd.DataFrame, chance: float | None) -> list[float]:
    """Per seed of one cell: one-sided binomial p of its correct count over ``n_test`` against ``chance``."""
    from scipy.stats import binomtest

    if chance is None:
        return []
    return [binomtest(int(round(v * n)), int(n), chance, alternative="greater").pvalue
            if pd.notna(n) and n > 0 else 1.0 for v, n in zip(g["value"], g["n_test"])]


def _learnt(g: pd.DataFrame, chance: float | None) -> list[bool]:
    """Per seed: whether its final training loss is below the loss of guessing (ln classes, less ``LOSS_SLACK``)
    — a model whose own training set stays at chance has learnt nothing, whatever its test p says."""
    if chance is None:
        return []
    return [pd.notna(loss) and loss < (1 - LOSS_SLACK) * np.log(1 / chance) for loss in g["final_loss"]]


def _verdict(solved: int, above: int, seeds: int) -> str:
    if solved:
        return "solved" if solved == seeds else f"{solved}/{seeds} solved"
    if above:
        return "above chance" if above == seeds else f"{above}/{seeds} above chance"
    return "at chance"


def lr_sweeps(df: pd.DataFrame) -> pd.DataFrame:
    """One row per (sweep, task, mechanism): ``sweep`` (its description), task, lr, label, metric, seeds, mean, std,
    loss (mean final training loss), solved, above (seed counts), verdict. The binomial tests of one sweep are one
    family: Holm-adjusted across every seed of every cell. Empty when no sweep is in ``df``."""
    ok = per_seed(df)  # a tuned task's other rates are its search, shown by validation (protocol.py), not here
    # Classification only: the question is whether a mechanism learns at all, read against the chance level.
    ok = ok[(ok["mode"] == "trained") & (ok["metric"] == "top1")
            & ~tuned(ok)].copy()
    if ok.empty:
        return pd.DataFrame()
    ok["lr"] = ok["impl"].map(_lr)
    rows = []
    for key, s in ok.groupby(_SHARED, sort=False):
        if s["lr"].nunique() < 2:
            continue
        width = s.groupby("task", sort=False).agg(lr=("lr", "first"), labels=("label", "nunique"))
        keep = width.sort_values("labels", ascending=False, kind="stable").drop_duplicates("lr").index
        s = s[s["task"].isin(keep)]  # a tuned task holds every rate itself, and stays
        dataset, budget, res, patch, batch = key
        name = f"{dataset}, {budget} (samples × epochs), {int(res)}², patch {int(patch)}, batch {int(batch)}"
        cells = list(s.sort_values("lr", kind="stable").groupby(["task", "lr", "label"], sort=False))
        rows += [{"sweep": name, **cell} for cell in _cell_verdicts(cells)]
    return pd.DataFrame(rows)


def _cell_verdicts(cells: list[tuple[tuple, pd.DataFrame]]) -> list[dict[str, object]]:
    """Per ``((task, lr, label), seeds' rows)`` cell: mean, std, loss, solved and above-chance seed counts and the
    verdict, the binomial tests Holm-adjusted across every seed of every cell given (one family)."""
    chances = [chance_level(g) for _, g in cells]
    raw = [_binomial_p(g, c) for (_, g), c in zip(cells, chances)]
    flat = holm([p for ps in raw for p in ps]) if any(raw) else []
    out, at = [], 0
    for ((task, lr, label), g), chance, ps in zip(cells, chances, raw):
        adjusted, at = flat[at:at + len(ps)], at + len(ps)
        learnt = _learnt(g, chance)
        solved = int(sum(v >= SOLVED and ok_ for v, ok_ in zip(g["value"], learnt))) if chance else 0
        above = int(sum(p < ALPHA and ok_ for p, ok_ in zip(adjusted, learnt)))
        out.append({"task": task, "lr": float(lr), "label": label, "metric": g["metric"].iloc[0], "seeds": len(g),
                    "mean": g["value"].mean(), "std": g["value"].std(), "loss": g["final_loss"].mean(),
                    "solved": solved, "above": above, "verdict": _verdict(solved, above, len(g)) if chance else ""})
    return out


def tuned_verdicts(df: pd.DataFrame) -> pd.DataFrame:
    """The same per-seed rule for tuned classification tasks (learning rate chosen on validation): one row per
    (task, mechanism) at its chosen rate, the binomial tests Holm-adjusted across each task's seeds. Columns as
    :func:`lr_sweeps` without ``sweep``, plus ``dataset``; empty without such rows."""
    ok = per_seed(df)
    ok = ok[(ok["mode"] == "trained") & (ok["metric"] == "top1")
            & tuned(ok)].copy()
    if ok.empty:
        return pd.DataFrame()
    ok["lr"] = ok["impl"].map(_lr)
    rows = []
    for (dataset, _suite, _task), t in ok.groupby(["dataset", "suite", "task"], sort=False):
        rows += [{"dataset": dataset, **cell} for cell in _cell_verdicts(list(t.groupby(["task", "lr", "label"],
                                                                                          sort=False)))]
    return pd.DataFrame(rows)


def _summary(t: pd.DataFrame) -> list[tuple[str, str]]:
    """Per mechanism (label, the answer in words): solved by every seed at which learning rates, else by some seeds,
    else above chance where, else at chance at every learning rate tried. Plain text: each renderer marks it up."""
    lines = []
    for label, g in t.groupby("label", sort=False):
        def at(mask: pd.Series, g: pd.DataFrame = g) -> str:
            return ", ".join(f"lr {r['lr']:g} ({r['task']}: {r['verdict']} of {r['seeds']} seed"
                             f"{'' if r['seeds'] == 1 else 's'})" for _, r in g[mask].iterrows())
        v = g["verdict"]
        answer = (f"solved by every seed at {at(v == 'solved')}" if (v == "solved").any() else
                  f"solved by some seeds only: {at(v.str.endswith('solved'))}" if v.str.endswith("solved").any() else
                  f"never solved; above chance: {at(v.str.contains('above'))}" if v.str.contains("above").any() else
                  "at chance at every learning rate tried")
        lines.append((str(label), f"(lr tried: {', '.join(f'{lr:g}' for lr in sorted(g['lr'].unique()))}): {answer}"))
    return lines


@dataclass(frozen=True)
class SweepResult:
    """One sweep as the report shows it: the mechanism × task (lr) table and, per mechanism, the answer in words."""

    table: Table
    answers: tuple[tuple[str, str], ...]


def sweep_tables(sweeps: pd.DataFrame) -> list[SweepResult]:
    """Per sweep: a table of mechanism × task (lr) cells ``mean ± std, loss L: verdict (n seeds)`` whose note is the
    rule in words, and a summary line per mechanism — what the markdown and the HTML report draw."""
    out = []
    for i, (name, t) in enumerate(sweeps.groupby("sweep", sort=False) if len(sweeps) else ()):
        cols = list(dict.fromkeys(f"{task} (lr {lr:g})" for task, lr in zip(t["task"], t["lr"])))
        cells: dict[str, dict[str, str]] = {}
        for _, r in t.iterrows():
            std = "" if pd.isna(r["std"]) else f" ± {r['std']:.2g}"
            loss = "" if pd.isna(r["loss"]) else f", loss {r['loss']:.3g}"
            verdict = f": {r['verdict']}" if r["verdict"] else ""
            cells.setdefault(r["label"], {})[f"{r['task']} (lr {r['lr']:g})"] = (
                f"{r['mean']:.4g}{std}{loss}{verdict} ({r['seeds']} seed{'' if r['seeds'] == 1 else 's'})")
        rule = (f"test {t['metric'].iloc[0]} at the training grid, mean ± std over seeds, mean final training "
                f"loss; per seed, solved = top-1 ≥ {SOLVED}, above chance = one-sided binomial test over the test "
                f"set, Holm-adjusted across the sweep's seeds, p < {ALPHA}; either needs a final training loss below "
                f"{1 - LOSS_SLACK:g} · ln(classes) (else the seed is at chance on its own training set)")
        table = Table.of_text(f"sweep{i}", str(name), ["attention", *cols],
                              [[label, *(c.get(col, "") for col in cols)] for label, c in cells.items()], rule)
        out.append(SweepResult(table, tuple(_summary(t))))
    return out
