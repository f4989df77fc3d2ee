"""``attnbench claims``: the MANO paper's abstract, claim by claim, against measured rows.

Each claim is one :class:`Claim` — its name, the words it tests, the rule in words and ``evaluate(rows)`` — in
:data:`CLAIMS`. A verdict is *reproduced*, *partly*, *not reproduced* or *not testable here*, computed from the
results by the claim's rule, never typed. A new claim is one more ``Claim`` in :data:`CLAIMS`.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from dataclasses import dataclass

import numpy as np
import pandas as pd

from attnbench.report.analysis.accuracy import ALPHA, MIN_SEEDS, mean_late_change, per_seed, trained_curves
from attnbench.report.analysis.fits import ratios, scaling_fits
from attnbench.report.analysis.table import Column, Table
from attnbench.store.status import Status

__all__ = ["CLAIMS", "MECH", "Claim", "Verdict", "claims_table"]

# The series labels the paper's claims are about (result labels, as the suites name them): the mechanism, the ViT
# layers (N×N scores, fused) and Swin. The only mechanism names in this module.
MECH, VIT_NAIVE, VIT, SWIN = "mano", "full_naive", "full", "swin"
# The thresholds of the rules, named once (the rule texts below quote them).
LINEAR_MAX, SUPERLINEAR_MIN = 1.2, 1.5  # fitted exponent b: linear enough / clearly superlinear
ORDER = 10.0  # "one order of magnitude"
MATCH_TOLERANCE = 0.05  # a parameter-matched model: parameters within ±5 % of full's
DARCY_PAPER, DARCY_MARGIN = 0.008, 0.25  # the paper's Darcy 16² relative MSE, and the slack allowed on it
DARCY_LIMIT = DARCY_PAPER * (1 + DARCY_MARGIN)
VERDICTS = ("reproduced", "partly", "not reproduced", "not reproduced on this budget", "not testable here")


@dataclass(frozen=True)
class Verdict:
    """What a claim's rule found: the numbers, the conditions they were measured under, and the verdict."""

    measured: str
    conditions: str
    verdict: str


@dataclass(frozen=True)
class Claim:
    """One claim of the abstract: ``name``, the ``rule`` in words, which rows it reads (``kind``: ``"cost"``,
    ``"accuracy"`` or ``"all"``) and ``evaluate(rows) -> Verdict``."""

    name: str
    rule: str
    kind: str
    evaluate: Callable[[pd.DataFrame], Verdict]

    def judge(self, df: pd.DataFrame) -> Verdict:
        """The verdict on the rows of ``df`` this claim reads ("not testable here" without any)."""
        rows = df if self.kind == "all" else df[df["kind"] == self.kind]
        if rows.empty:
            return Verdict("no rows of this kind given", "", "not testable here")
        return self.evaluate(rows)


def _linear(cost: pd.DataFrame) -> Verdict:
    fits = scaling_fits(cost)
    fits = fits[fits["label"] == MECH]
    if fits.empty:
        return Verdict("no fitted exponents of mano", "", "not testable here")
    exps = [(f"{r['mode']} {what}", f) for _, r in fits.iterrows() for what, f in (("time", r["time_exp"]),
                                                                                   ("memory", r["mem_exp"])) if f]
    ci = [0.0 if np.isnan(f.ci95) else f.ci95 for _, f in exps]
    verdict = ("reproduced" if all(f.exponent + c <= LINEAR_MAX for (_, f), c in zip(exps, ci)) else
               "not reproduced" if any(f.exponent - c >= SUPERLINEAR_MIN for (_, f), c in zip(exps, ci)) else "partly")
    ranges = {f"{f.n_min}–{f.n_max}" for _, f in exps}
    return Verdict("; ".join(f"{name} b = {f}" for name, f in exps), f"top decade of N: {', '.join(sorted(ranges))}",
            verdict)


def _uses(df: pd.DataFrame) -> list[str]:
    """The functional half of the global-receptive-field claim: does MANO learn the long-range task wherever ViT
    does? ``[]`` without such rows; else ``[finding, "yes"/"no", the sweep's description]``."""
    from attnbench.report.analysis.sweep import lr_sweeps

    sweeps = lr_sweeps(df[df["kind"] == "accuracy"])
    if sweeps.empty:
        return []
    sweeps = sweeps[sweeps["sweep"].str.startswith("longrange") & sweeps["label"].isin([MECH, VIT])]
    solved = {label: sorted(g.loc[g["verdict"] == "solved", "lr"]) for label, g in sweeps.groupby("label")}
    if VIT not in solved or MECH not in solved:
        return []
    best = sweeps[sweeps["label"] == MECH].sort_values("mean").iloc[-1]
    lrs = {label: f"at lr {', '.join(f'{x:g}' for x in v)}" if v else "at no lr tried" for label, v in solved.items()}
    seeds = f"{best['seeds']} seed{'' if best['seeds'] == 1 else 's'}"
    found = (f"long-range task: {VIT} solved {lrs[VIT]}, {MECH} {lrs[MECH]} (its best "
             f"mean top-1 {best['mean']:.3g} at lr {best['lr']:g}, {seeds}; "
             f"lr tried {', '.join(f'{x:g}' for x in sorted(set(sweeps['lr'])))})")
    return [found, "no" if solved[VIT] and not solved[MECH] else "yes", str(sweeps["sweep"].iloc[0])]


def _global(df: pd.DataFrame) -> Verdict:
    cost = df[df["kind"] == "cost"]
    uses = _uses(df)
    rows = cost[(cost["label"] == MECH) & (cost["status"] == Status.OK) & (cost["mode"] == "fwd")]
    seen = {}
    for _, r in rows.iterrows():
        impl = json.loads(r["impl"]) if isinstance(r["impl"], str) and r["impl"] else {}
        window = json.loads(r["kwargs"] or "{}").get("window")
        if impl.get("coarsest") and window:
            side = max(int(v) for v in impl["coarsest"].split("x"))
            seen[int(r["height"])] = (side <= int(window), impl["coarsest"], window)
    if not seen:
        found = "no mano rows with level information" + (f"; {uses[0]}" if uses else "")
        return Verdict(found, "", "not testable here")
    glob = [h for h, (g, _, _) in sorted(seen.items()) if g]
    local = [f"{h}² (coarsest {c} > k = {k})" for h, (g, c, k) in sorted(seen.items()) if not g]
    verdict = "reproduced" if not local else "partly" if glob else "not reproduced"
    if uses and uses[1] == "no" and verdict == "reproduced":
        verdict = "partly"
    return Verdict(f"one layer global at {', '.join(f'{h}²' for h in glob) or 'no grid'}"
            + (f"; not at {', '.join(local)}" if local else "") + (f"; {uses[0]}" if uses else ""),
            "by construction from the level rule, per grid" + (f"; learning-rate sweep on {uses[2]}" if uses else ""),
            verdict)


def _orders(cost: pd.DataFrame) -> Verdict:
    parts, hits, tested = [], 0, 0
    for other in (VIT_NAIVE, VIT, SWIN):
        r = ratios(cost, other)
        r = r[(r["label"] == MECH)]
        if r.empty:
            continue
        tested += 1
        for mode in ("fwd", "fwd_bwd"):
            m = r[r["mode"] == mode].sort_values("tokens")
            if m.empty:
                continue
            last = m.iloc[-1]
            parts.append(f"vs {other} {mode} at {int(last['height'])}²: {last['speedup']:.3g}× faster, peak memory "
                         f"{last['mem_ratio']:.3g}× theirs")
        top = r.sort_values("tokens").groupby("mode").tail(1)
        hits += bool(((top["speedup"] >= ORDER) & (top["mem_ratio"] <= 1 / ORDER)).any())
    if not tested:
        return Verdict("no mano and baseline rows in common", "", "not testable here")
    verdict = "reproduced" if hits == tested else "partly" if hits else "not reproduced"
    return Verdict("; ".join(parts), "largest grid both ran", verdict)


def _per_seed(acc: pd.DataFrame) -> pd.DataFrame:
    """Trained-at-grid rows, one per configuration and seed (the newest), with ``group`` = "suite / task (samples ×
    epochs)": what a comparison may pool, since one task name may train on several budgets."""
    ok = per_seed(acc)
    ok = ok[ok["mode"] == "trained"].copy()
    ok["group"] = ok["suite"].astype(str) + " / " + ok["task"].astype(str) + " (" + ok["budget"] + ")"
    return ok


def _matched(t: pd.DataFrame) -> list[str]:
    """Labels of the parameter-matched MANO in one task: rows of the mechanism's own attention under another label
    whose parameter count is within ±5 % of the ViT model's."""
    mine, vit = t[t["label"] == MECH], t[t["label"] == VIT]
    if mine.empty or vit.empty:
        return []
    target = float(vit["params"].iloc[0])
    same = t[(t["attention"] == mine["attention"].iloc[0]) & (t["label"] != MECH)]
    return [str(label) for label, g in same.groupby("label", sort=False)
            if abs(float(g["params"].iloc[0]) / target - 1) <= MATCH_TOLERANCE]


def _rivals(acc: pd.DataFrame) -> Verdict:
    from scipy.stats import ttest_ind

    ok = _per_seed(acc)
    findings, untested, worse, worse_matched, tested = [], [], False, False, 0
    for task, t in ok.groupby("group", sort=False):
        lower = t["metric"].iloc[0] == "rel_l2"
        for mech in [MECH, *_matched(t)]:
            mine = t[t["label"] == mech]["value"].to_numpy(float)
            for other in (VIT, SWIN):
                theirs = t[t["label"] == other]["value"].to_numpy(float)
                if len(mine) < MIN_SEEDS or len(theirs) < MIN_SEEDS:
                    if len(mine) and len(theirs) and task not in untested:
                        untested.append(task)
                    continue
                tested += 1
                p = float(ttest_ind(mine, theirs, equal_var=False).pvalue)
                bad = ((mine.mean() > theirs.mean()) if lower else (mine.mean() < theirs.mean())) and p < ALPHA
                if mech == MECH:
                    worse |= bad
                else:
                    worse_matched |= bad
                findings.append(f"{task} {mech} vs {other}: {mine.mean():.4g} vs {theirs.mean():.4g} "
                                f"({t['metric'].iloc[0]}, {len(mine)}/{len(theirs)} seeds, Welch p = {p:.2g}"
                                f"{', worse' if bad else ''})")
    if untested:
        findings.append(f"fewer than {MIN_SEEDS} seeds, not tested: {', '.join(untested)}")
    verdict = ("not testable here" if not tested else "not reproduced" if worse else
               "partly" if worse_matched else "reproduced")
    return Verdict("; ".join(findings) or "no task with mano beside full or swin",
            "test metric at the training grid; matched = same attention, parameters within "
            f"±{100 * MATCH_TOLERANCE:.0f} % of {VIT}'s", verdict)


def _darcy(acc: pd.DataFrame) -> Verdict:
    ok = _per_seed(acc)
    ok = ok[(ok["eval_res"] == 16) & ok["task"].astype(str).str.startswith("darcy16_neuralop")]
    if ok.empty:
        return Verdict("no Darcy 16² rows", "", "not testable here")
    parts, best = [], np.inf
    for (task, label), g in ok.groupby(["group", "label"], sort=False):
        if not str(label).startswith(MECH):
            continue
        best = min(best, g["rel_mse"].mean())
        spread = f" ± {g['rel_mse'].std():.2g} over {len(g)} seeds" if len(g) > 1 else " (1 seed)"
        # Whether the budget was the limit: the test metric's change over the last quarter of training, where the
        # rows kept a curve (near 0 = plateaued: more epochs of this recipe would not close the gap).
        late = mean_late_change(trained_curves(g).get(str(label), []))
        tail = f", test rel. L2 {100 * late:+.1f} % over the last quarter" if np.isfinite(late) else ""
        parts.append(f"{label} ({task}): {g['rel_mse'].mean():.3g}{spread}, {int(g['epochs'].iloc[0])} epochs{tail}")
    if not parts:
        return Verdict("no mano rows on Darcy 16²", "", "not testable here")
    return Verdict("; ".join(parts), "neuralop 0.3.0 Darcy 16² files (1000 train, first 50 test); ours: trained on the "
            "mean relative L2 ‖û−u‖/‖u‖ of the decoded field, scored by relative MSE = mean ‖û−u‖²/‖u‖²; the "
            "paper: metric \"relative MSE\", its exact formula, loss, data split and epochs not published; last "
            "quarter: change of the test metric from the evaluation nearest 3/4 of training to the last",
            "reproduced" if best <= DARCY_LIMIT else "not reproduced on this budget")


CLAIMS: tuple[Claim, ...] = (
    Claim("linear time and memory",
          "every fitted exponent (fwd and fwd_bwd, time and memory) has `b + CI ≤ "
          f"{LINEAR_MAX}` (reproduced); any `b − CI ≥ {SUPERLINEAR_MIN}` (not reproduced); else partly",
          "cost", _linear),
    Claim("global receptive field",
          "the coarsest level is at most one window (`coarsest side ≤ k`) at every measured grid (reproduced), at "
          "some (partly), at none (not reproduced); where accuracy rows hold a learning-rate sweep of a task that "
          "needs a global view (dataset `longrange`), MANO must also solve it (every seed, at some learning rate) "
          "wherever ViT does, else the verdict is at most partly",
          "all", _global),
    Claim("accuracy rivalling ViT and Swin",
          f"per task and budget with ≥ {MIN_SEEDS} seeds each, a two-sided Welch t-test on the seeds' test metric at "
          "the training grid, for MANO as the authors configure it and for the parameter-matched MANO (the same "
          f"attention with parameters within ±{100 * MATCH_TOLERANCE:.0f} % of `{VIT}`'s); the authors' MANO worse "
          f"at p < {ALPHA} on any task → not reproduced; only the matched one worse somewhere → partly (the lead "
          f"needs the extra parameters); neither worse anywhere → reproduced; no task with {MIN_SEEDS} seeds → not "
          "testable here",
          "accuracy", _rivals),
    Claim("1–2 orders of magnitude less runtime and peak memory",
          "at the largest grid both ran, the speed-up and the memory ratio against the N×N-score ViT layer "
          f"(`{VIT_NAIVE}`), the fused global layer (`{VIT}`) and Swin; ≥ {ORDER:g}× in time and memory against "
          "every one → reproduced; against some → partly; none → not reproduced",
          "cost", _orders),
    Claim(f"Darcy 16² relative MSE {DARCY_PAPER}",
          f"MANO's mean relative MSE on the neuralop Darcy 16² test set ≤ {DARCY_LIMIT:.3f} ({DARCY_PAPER} + "
          f"{100 * DARCY_MARGIN:.0f} %) → reproduced, else not reproduced *on this budget* (epochs, seeds and, where "
          "a loss curve was kept, the test metric's change over the last quarter of training stated: near 0 means "
          "more epochs of this recipe would not help)",
          "accuracy", _darcy),
)

CLAIM_COLUMNS = (Column("claim", "claim (MANO abstract)"), Column("measured", "measured"),
                 Column("conditions", "conditions"), Column("verdict", "verdict"), Column("rule", "rule"))


def claims_table(df: pd.DataFrame, claims: tuple[Claim, ...] = CLAIMS) -> Table:
    """One row per claim; ``df`` holds cost and/or accuracy rows."""
    records = []
    for claim in claims:
        v = claim.judge(df)
        records.append({"claim": claim.name, "measured": v.measured, "conditions": v.conditions,
                        "verdict": v.verdict, "rule": claim.rule})
    return Table("claims", "Claims of the MANO paper, checked", CLAIM_COLUMNS, tuple(records),
                 "verdicts computed from the results by the stated rules")
