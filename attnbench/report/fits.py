"""Scaling analysis of cost rows: power-law exponents with confidence intervals, ratios to the baseline (``full``),
crossover N*, and frontiers. Pure functions of a results DataFrame; nothing is re-run.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pandas as pd

from attnbench.report.frame import baseline_label

__all__ = ["Fit", "crossovers", "fit_power_law", "frontiers", "ratios", "scaling_fits"]


@dataclass(frozen=True)
class Fit:
    """``y = a · N^exponent`` fitted by least squares on log-log axes."""

    exponent: float
    ci95: float  # half-width of the 95 % confidence interval of the exponent (nan with < 3 points)
    intercept: float
    points: int
    n_min: int
    n_max: int

    def __str__(self) -> str:
        ci = "" if np.isnan(self.ci95) else f" ± {self.ci95:.2f}"
        return f"{self.exponent:.2f}{ci}"


def fit_power_law(n: np.ndarray, y: np.ndarray) -> Fit | None:
    """Slope of ``log y`` on ``log N`` with a t-based 95 % CI; ``None`` with fewer than 2 distinct N."""
    from scipy import stats

    n, y = np.asarray(n, float), np.asarray(y, float)
    keep = np.isfinite(n) & np.isfinite(y) & (n > 0) & (y > 0)
    n, y = n[keep], y[keep]
    if len(np.unique(n)) < 2:
        return None
    x, z = np.log(n), np.log(y)
    res = stats.linregress(x, z)
    dof = len(x) - 2
    ci = stats.t.ppf(0.975, dof) * res.stderr if dof > 0 else float("nan")
    return Fit(float(res.slope), float(ci), float(res.intercept), len(x), int(n.min()), int(n.max()))


def _ok(df: pd.DataFrame) -> pd.DataFrame:
    return df[(df["status"] == "ok") & (df["kind"] == "cost")]


def scaling_fits(df: pd.DataFrame, min_tokens: int = 1024, max_tokens: int | None = None) -> pd.DataFrame:
    """Time and memory exponents per (suite, mode, label) over the points that ran in ``[min, max]`` tokens."""
    ok = _ok(df)
    ok = ok[(ok["tokens"] >= min_tokens) & ((ok["tokens"] <= max_tokens) if max_tokens else True)]
    rows = []
    for (suite, mode, label), g in ok.groupby(["suite", "mode", "label"], sort=False):
        g = g.sort_values("tokens")
        t = fit_power_law(g["tokens"], g["time_ms_median"])
        m = fit_power_law(g["tokens"], g["peak_mib"])
        rows.append({"suite": suite, "mode": mode, "label": label, "time_exp": t, "mem_exp": m,
                     "mem_kind": g["mem_kind"].iloc[0]})
    return pd.DataFrame(rows)


def ratios(df: pd.DataFrame, baseline: str | None = None) -> pd.DataFrame:
    """Speed-up (baseline time / time) and memory ratio (peak / baseline peak) at each common grid."""
    ok = _ok(df)
    baseline = baseline or baseline_label(df)
    if baseline is None:
        return pd.DataFrame()
    base = ok[ok["label"] == baseline][["suite", "mode", "height", "width", "time_ms_median", "peak_mib"]]
    merged = ok.merge(base, on=["suite", "mode", "height", "width"], suffixes=("", "_base"))
    merged["speedup"] = merged["time_ms_median_base"] / merged["time_ms_median"]
    merged["mem_ratio"] = merged["peak_mib"] / merged["peak_mib_base"]
    return merged[["suite", "mode", "label", "height", "width", "tokens", "speedup", "mem_ratio"]]


def crossovers(df: pd.DataFrame, baseline: str | None = None) -> pd.DataFrame:
    """Smallest N from which a mechanism is faster than the baseline at every larger common grid.

    Grids where the baseline failed (oom/timeout/skipped) while the mechanism ran count as wins.
    """
    baseline = baseline or baseline_label(df)
    if baseline is None:
        return pd.DataFrame()
    rows = []
    cost = df[df["kind"] == "cost"]
    for (suite, mode, label), g in cost.groupby(["suite", "mode", "label"], sort=False):
        if label == baseline:
            continue
        b = cost[(cost["suite"] == suite) & (cost["mode"] == mode) & (cost["label"] == baseline)]
        merged = g.merge(b, on=["height", "width", "tokens"], suffixes=("", "_b")).sort_values("tokens")
        wins = []
        for _, r in merged.iterrows():
            if r["status"] != "ok":
                wins.append(None)
            elif r["status_b"] != "ok":
                wins.append(True if r["status_b"] in ("oom", "timeout", "skipped") else None)
            else:
                wins.append(r["time_ms_median"] < r["time_ms_median_b"])
        n_star = None
        for i in range(len(wins)):
            tail = [w for w in wins[i:] if w is not None]
            if tail and all(tail):
                n_star = int(merged["tokens"].iloc[i])
                break
        rows.append({"suite": suite, "mode": mode, "label": label, "n_star": n_star})
    return pd.DataFrame(rows)


def frontiers(df: pd.DataFrame) -> pd.DataFrame:
    """Largest grid that completed, and the first failure, per (suite, mode, label)."""
    rows = []
    cost = df[df["kind"] == "cost"]
    for (suite, mode, label), g in cost.groupby(["suite", "mode", "label"], sort=False):
        g = g.sort_values("tokens")
        ok = g[g["status"] == "ok"]
        bad = g[g["status"].isin(["oom", "timeout", "crashed", "error"])]
        rows.append({
            "suite": suite, "mode": mode, "label": label,
            "largest_ok": f"{int(ok['height'].iloc[-1])}x{int(ok['width'].iloc[-1])}" if len(ok) else "none",
            "first_failure": (f"{bad['status'].iloc[0]} at {int(bad['height'].iloc[0])}x{int(bad['width'].iloc[0])}"
                              if len(bad) else ""),
        })
    return pd.DataFrame(rows)
