"""``attnbench compare A B``: two results files or folders, case by case, as asv compares benchmark runs.

Cases are matched on their full configuration (``config_id``) and grid — not on the code version or the machine,
which is what may differ between A and B. The unit of repetition is the **process** (a replicate), never a timing
block of one process: blocks share everything a process drew (allocator state, page placement, the VM's phase),
so a test over them calls any drift between two processes "significant".

For each pair: the ratio B/A of the two estimates (medians of the per-process medians) with a hierarchical
bootstrap CI (processes, then blocks within each), a two-sided exact Mann–Whitney U test over the two sets of
process medians, the memory ratio and a status change. A change is *significant* when p < ``alpha`` and the ratio
is ≥ ``threshold`` (slower) or ≤ 1/``threshold`` (faster), and it is called "within this machine's noise" when the
ratio does not leave the machine's calibrated A/A noise floor (``attnbench calibrate``). Where the test cannot
reach ``alpha`` with the replicates measured (a run measured once has one process per case), the verdict is "too
few replicates" — never a verdict from blocks.
"""

from __future__ import annotations

import json
from typing import Any

import numpy as np
import pandas as pd

from attnbench.report.analysis.replicates import hierarchical_ratio_ci, mwu_min_p, round_medians
from attnbench.store.status import Status

__all__ = ["ALPHA", "THRESHOLD", "compare", "compare_accuracy", "machine_drift", "verdict"]

# A change needs p < ALPHA over process medians and a ratio of at least THRESHOLD (or at most 1/THRESHOLD). With
# six replicates a side the exact U test's smallest two-sided p is 0.0022, so ALPHA is 0.01 (asv's 0.002 is for
# its many samples); the calibrated noise floor guards the rest.
ALPHA, THRESHOLD = 0.01, 1.1
TOO_FEW = "too few replicates"
NOISE = "within this machine's noise"

_KEY = ["suite", "config_id", "height", "width"]


def _groups(cell: Any) -> list[list[float]]:
    return [list(map(float, g)) for g in json.loads(cell)] if isinstance(cell, str) and cell else []


def _test(r: pd.Series, threshold: float, alpha: float, floor: float | None) -> dict[str, Any]:
    """The replicate-level statistics and verdict of one matched, measured pair."""
    from scipy.stats import mannwhitneyu

    a = list(round_medians(r.get("replicate_medians_ms_a")).values())
    b = list(round_medians(r.get("replicate_medians_ms_b")).values())
    out: dict[str, Any] = {"replicates": f"{len(a) or 1}/{len(b) or 1}"}
    if mwu_min_p(len(a), len(b)) >= alpha:
        return {**out, "change": TOO_FEW}
    ga, gb = _groups(r.get("replicate_samples_ms_a")), _groups(r.get("replicate_samples_ms_b"))
    if len(ga) == len(a) and len(gb) == len(b) and all(len(g) for g in ga + gb):
        out["ci_lo"], out["ci_hi"] = hierarchical_ratio_ci(ga, gb)
    out["p"] = float(mannwhitneyu(b, a, alternative="two-sided", method="exact").pvalue)
    ratio = r["time_ms_median_b"] / r["time_ms_median_a"]
    limit = max(threshold, floor or 0.0)
    if out["p"] < alpha and (ratio >= threshold or ratio <= 1 / threshold):
        slower = ratio >= threshold
        beyond = ratio >= limit if slower else ratio <= 1 / limit
        out["change"] = ("slower" if slower else "faster") if beyond else NOISE
    return out


def compare(a: pd.DataFrame, b: pd.DataFrame, threshold: float = THRESHOLD, alpha: float = ALPHA,
            floor: float | None = None) -> pd.DataFrame:
    """One row per case present in both A and B (cost rows), plus cases only in one of them. ``floor``: this
    machine's A/A noise floor as a ratio (≥ 1), from ``attnbench calibrate``; None when not calibrated."""
    a, b = a[a["kind"] == "cost"], b[b["kind"] == "cost"]
    extra = ["replicate_medians_ms", "replicate_samples_ms"]
    a, b = (x.assign(**{c: x[c] if c in x else "" for c in extra}) for x in (a, b))
    cols = [*_KEY, "label", "mode", "status", "time_ms_median", "peak_mib", *extra]
    merged = a[cols].merge(b[cols], on=_KEY, how="outer", suffixes=("_a", "_b"), indicator=True)
    rows = []
    for _, r in merged.iterrows():
        label = r["label_a"] if isinstance(r["label_a"], str) else r["label_b"]
        mode = r["mode_a"] if isinstance(r["mode_a"], str) else r["mode_b"]
        row: dict[str, Any] = {"label": label, "mode": mode, "grid": f"{int(r['height'])}x{int(r['width'])}",
                               "tokens": int(r["height"]) * int(r["width"]), "status_a": r["status_a"],
                               "status_b": r["status_b"], "ratio": np.nan, "ci_lo": np.nan, "ci_hi": np.nan,
                               "p": np.nan, "replicates": "", "mem_ratio": np.nan, "change": ""}
        if r["_merge"] != "both":
            row["change"] = "only in A" if r["_merge"] == "left_only" else "only in B"
        elif r["status_a"] != r["status_b"]:
            row["change"] = f"status {r['status_a']} → {r['status_b']}"
        if r["_merge"] == "both" and r["status_a"] == Status.OK and r["status_b"] == Status.OK:
            row["ratio"] = r["time_ms_median_b"] / r["time_ms_median_a"]
            if r["peak_mib_a"] and r["peak_mib_a"] > 0:
                row["mem_ratio"] = r["peak_mib_b"] / r["peak_mib_a"]
            row.update(_test(r, threshold, alpha, floor))
        rows.append(row)
    out = pd.DataFrame(rows)
    return out.sort_values(["mode", "label", "tokens"]).reset_index(drop=True) if len(out) else out


def machine_drift(a: pd.DataFrame, b: pd.DataFrame, floor: float | None = None) -> dict[str, Any]:
    """How far the machine itself moved between A and B: the ratio B/A of the rounds' median compute and memory
    canaries (``speed_*_ms``), ``factor`` their geometric mean (the machine's speed change that a cross-run ratio of
    a case carries besides the code's; nan without canaries), and a sentence when either moved beyond the noise
    floor (or 10 % uncalibrated)."""
    out: dict[str, Any] = {}
    for kind in ("compute", "memory"):
        col = f"speed_{kind}_ms"
        va = pd.to_numeric(a.get(col, pd.Series(dtype=float)), errors="coerce").dropna()
        vb = pd.to_numeric(b.get(col, pd.Series(dtype=float)), errors="coerce").dropna()
        out[kind] = float(vb.median() / va.median()) if len(va) and len(vb) else float("nan")
    out["factor"] = float(np.sqrt(out["compute"] * out["memory"]))
    limit = max(floor or 0.0, THRESHOLD)
    moved = {k: v for k, v in out.items() if np.isfinite(v) and (v >= limit or v <= 1 / limit)}
    out["sentence"] = ""
    if moved:
        kind, v = max(moved.items(), key=lambda kv: abs(np.log(kv[1])))
        speed = f"{v:.2g}× slower" if v > 1 else f"{1 / v:.2g}× faster"
        out["sentence"] = (f"B's machine ran {speed} than A's ({kind} canary); cross-run ratios reflect the machine, "
                           "not the code — read the within-run paired ratios instead")
    return out


def compare_accuracy(a: pd.DataFrame, b: pd.DataFrame) -> pd.DataFrame:
    """Training rows matched on configuration, seed and evaluation grid: the metric in A and in B, training time and
    peak training memory B/A, status changes. (One training run per seed gives no timing samples: no test.)"""
    key = ["suite", "task", "config_id", "seed", "eval_res"]
    a, b = a[a["kind"] == "accuracy"], b[b["kind"] == "accuracy"]
    cols = [*key, "label", "mode", "status", "metric", "value", "train_s", "peak_mib"]
    merged = a[cols].merge(b[cols], on=key, how="outer", suffixes=("_a", "_b"), indicator=True)
    rows = []
    for _, r in merged.iterrows():
        label = r["label_a"] if isinstance(r["label_a"], str) else r["label_b"]
        change = {"left_only": "only in A", "right_only": "only in B"}.get(r["_merge"], "")
        if not change and r["status_a"] != r["status_b"]:
            change = f"status {r['status_a']} → {r['status_b']}"
        rows.append({"task": r["task"], "label": label, "mode": r["mode_a"] if isinstance(r["mode_a"], str) else
                     r["mode_b"], "grid": f"{int(r['eval_res'])}²", "seed": r["seed"], "metric": r["metric_a"],
                     "value_a": r["value_a"], "value_b": r["value_b"], "train_ratio": r["train_s_b"] / r["train_s_a"],
                     "mem_ratio": r["peak_mib_b"] / r["peak_mib_a"], "change": change})
    return pd.DataFrame(rows)


def verdict(table: pd.DataFrame, fail_above: float | None, fail_below: float | None) -> int:
    """Exit code: 1 when a significant slowdown reaches ``fail_above`` or a significant speed-up ``fail_below``."""
    if table.empty:
        return 0
    if fail_above is not None and ((table["change"] == "slower") & (table["ratio"] >= fail_above)).any():
        return 1
    if fail_below is not None and ((table["change"] == "faster") & (table["ratio"] <= fail_below)).any():
        return 1
    return 0
