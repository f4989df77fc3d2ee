"""``attnbench compare A B``: two results files or folders, case by case, as asv compares benchmark runs.

Cases are matched on their full configuration (``config_id``) and grid — not on the code version or the machine,
which is what may differ between A and B. For each pair: the ratio B/A of median times with a 95 % bootstrap CI
(resampling both sides' timing blocks), a two-sided Mann-Whitney U test on the blocks, the memory ratio, and a
status change. A change is *significant* when p < ``alpha`` (asv: 0.002) and the ratio is ≥ ``threshold`` (slower)
or ≤ 1/``threshold`` (faster). Rows without timing blocks (schema 1) get the ratio only, and no verdict.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import pandas as pd

from attnbench.report.analysis.frame import parse_samples
from attnbench.store.status import Status

__all__ = ["ALPHA", "THRESHOLD", "compare", "compare_accuracy", "verdict"]

# asv's defaults: a change is significant at p < ALPHA when the ratio is at least THRESHOLD (or at most 1/THRESHOLD).
ALPHA, THRESHOLD = 0.002, 1.1

_KEY = ["suite", "config_id", "height", "width"]


def _samples(value: Any) -> np.ndarray | None:
    xs = parse_samples(value)
    return xs if xs is not None and len(xs) >= 2 else None


def _ratio_ci(a: np.ndarray, b: np.ndarray, resamples: int = 2000, seed: int = 0) -> tuple[float, float]:
    rng = np.random.default_rng(seed)
    ra = np.median(rng.choice(a, (resamples, len(a))), axis=1)
    rb = np.median(rng.choice(b, (resamples, len(b))), axis=1)
    lo, hi = np.quantile(rb / ra, [0.025, 0.975])
    return float(lo), float(hi)


def compare(a: pd.DataFrame, b: pd.DataFrame, threshold: float = THRESHOLD, alpha: float = ALPHA) -> pd.DataFrame:
    """One row per case present in both A and B (cost rows), plus cases only in one of them."""
    from scipy.stats import mannwhitneyu

    a, b = a[a["kind"] == "cost"], b[b["kind"] == "cost"]
    cols = [*_KEY, "label", "mode", "status", "time_ms_median", "peak_mib", "time_samples_ms"]
    merged = a[cols].merge(b[cols], on=_KEY, how="outer", suffixes=("_a", "_b"), indicator=True)
    rows = []
    for _, r in merged.iterrows():
        label = r["label_a"] if isinstance(r["label_a"], str) else r["label_b"]
        mode = r["mode_a"] if isinstance(r["mode_a"], str) else r["mode_b"]
        row: dict[str, Any] = {"label": label, "mode": mode, "grid": f"{int(r['height'])}x{int(r['width'])}",
                               "tokens": int(r["height"]) * int(r["width"]), "status_a": r["status_a"],
                               "status_b": r["status_b"], "ratio": np.nan, "ci_lo": np.nan, "ci_hi": np.nan,
                               "p": np.nan, "mem_ratio": np.nan, "change": ""}
        if r["_merge"] != "both":
            row["change"] = "only in A" if r["_merge"] == "left_only" else "only in B"
        elif r["status_a"] != r["status_b"]:
            row["change"] = f"status {r['status_a']} → {r['status_b']}"
        if r["_merge"] == "both" and r["status_a"] == Status.OK and r["status_b"] == Status.OK:
            row["ratio"] = r["time_ms_median_b"] / r["time_ms_median_a"]
            if r["peak_mib_a"] and r["peak_mib_a"] > 0:
                row["mem_ratio"] = r["peak_mib_b"] / r["peak_mib_a"]
            sa, sb = _samples(r["time_samples_ms_a"]), _samples(r["time_samples_ms_b"])
            if sa is not None and sb is not None:
                row["ci_lo"], row["ci_hi"] = _ratio_ci(sa, sb)
                row["p"] = float(mannwhitneyu(sa, sb, alternative="two-sided").pvalue)
                if row["p"] < alpha and row["ratio"] >= threshold:
                    row["change"] = "slower"
                elif row["p"] < alpha and row["ratio"] <= 1 / threshold:
                    row["change"] = "faster"
            else:
                row["change"] = row["change"] or "no samples: no test"
        rows.append(row)
    out = pd.DataFrame(rows)
    return out.sort_values(["mode", "label", "tokens"]).reset_index(drop=True) if len(out) else out


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
