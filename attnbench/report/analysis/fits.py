"""Scaling analysis of cost rows: power-law exponents with bootstrap confidence intervals over the top decade of N,
local slopes between consecutive grids, ratios to the baseline (``full``), crossover N* and frontiers. Pure
functions of a results DataFrame (:func:`attnbench.report.analysis.frame.load_frame`); nothing is re-run. Every function
groups by series label, and labels already separate configurations.
"""

from __future__ import annotations

import json
from dataclasses import dataclass

import numpy as np
import pandas as pd

from attnbench.report.analysis.frame import CONTEXT, baseline_label, parse_samples
from attnbench.report.analysis.replicates import Estimate, paired, round_medians
from attnbench.store.status import FAILURES, NO_NUMBER, Status

__all__ = ["WIN_MARGIN", "Fit", "crossovers", "fit_power_law", "frontiers", "local_slopes", "measured", "memory_floor",
           "ratios",
           "scaling_fits"]

# A mechanism "wins" against the baseline at a grid only beyond the noise: its 95 % CI of the median lies wholly
# below the baseline's, or — for rows without a CI (schema 1) — it is at least this many times faster.
WIN_MARGIN = 1.1


@dataclass(frozen=True)
class Fit:
    """``y = a · N^exponent``, least squares on log-log axes; ``ci95`` is the half-width of a 95 % bootstrap
    interval of the exponent (nan when it cannot be had)."""

    exponent: float
    ci95: float
    intercept: float
    points: int
    n_min: int
    n_max: int

    def __str__(self) -> str:
        ci = "" if np.isnan(self.ci95) else f" ± {self.ci95:.2f}"
        return f"{self.exponent:.2f}{ci}"


def _slope(x: np.ndarray, z: np.ndarray) -> tuple[float, float]:
    slope, intercept = np.polyfit(x, z, 1)
    return float(slope), float(intercept)


def _slopes(x: np.ndarray, z: np.ndarray) -> np.ndarray:
    """Least-squares slopes of every row of ``z`` on the same row of ``x`` (both ``(resamples, points)``): the
    bootstrap's thousands of refits as one array operation (``np.polyfit`` per resample took ~0.1 s per fit)."""
    dx = x - x.mean(axis=1, keepdims=True)
    return (dx * (z - z.mean(axis=1, keepdims=True))).sum(axis=1) / (dx * dx).sum(axis=1)


def fit_power_law(n: np.ndarray, y: np.ndarray, samples: list[np.ndarray] | None = None,
                  resamples: int = 2000, seed: int = 0) -> Fit | None:
    """Slope of ``log y`` on ``log N`` with a 95 % bootstrap CI; ``None`` with fewer than 2 distinct N.

    With ``samples`` (the timing blocks behind each ``y``), the bootstrap resamples each grid's blocks and refits
    the medians (measurement noise); otherwise it resamples the points (needs ≥ 3 distinct N).
    """
    n, y = np.asarray(n, float), np.asarray(y, float)
    keep = np.isfinite(n) & np.isfinite(y) & (n > 0) & (y > 0)
    if samples is not None:
        samples = [s for s, k in zip(samples, keep) if k]
    n, y = n[keep], y[keep]
    if len(np.unique(n)) < 2:
        return None
    x, z = np.log(n), np.log(y)
    slope, intercept = _slope(x, z)
    rng = np.random.default_rng(seed)
    boots = np.empty(0)
    if samples is not None and all(len(s) >= 2 for s in samples):
        # every grid's samples drawn with replacement, resamples times at once: (resamples, grids) medians
        med = np.column_stack([np.median(np.asarray(s, float)[rng.integers(0, len(s), (resamples, len(s)))], axis=1)
                               for s in samples])
        boots = _slopes(np.broadcast_to(x, med.shape), np.log(med))
    elif len(np.unique(n)) >= 3:
        idx = rng.integers(0, len(x), (resamples, len(x)))
        xs, zs = x[idx], z[idx]
        spread = xs.max(axis=1) > xs.min(axis=1)  # a resample with one distinct N has no slope
        boots = _slopes(xs[spread], zs[spread])
    ci = float("nan")
    if boots.size:
        lo, hi = np.quantile(boots, [0.025, 0.975])
        ci = float(max(slope - lo, hi - slope))
    return Fit(slope, ci, intercept, len(x), int(n.min()), int(n.max()))


def measured(df: pd.DataFrame) -> pd.DataFrame:
    """The cost rows that gave a number."""
    return df[(df["status"] == Status.OK) & (df["kind"] == "cost")]


def _samples(g: pd.DataFrame) -> list[np.ndarray] | None:
    """What a fit's bootstrap resamples at each grid: the process medians of replicated cases (the replicate is
    the unit of repetition), else the timing blocks of the one process."""
    if "replicate_medians_ms" in g and g["replicate_medians_ms"].map(lambda s: isinstance(s, str) and s).all():
        return [np.asarray(list(round_medians(s).values()), float) for s in g["replicate_medians_ms"]]
    samples = [parse_samples(s) for s in g["time_samples_ms"]]
    parsed = [s for s in samples if s is not None]
    return parsed if len(parsed) == len(samples) else None


def regime(row: pd.Series) -> tuple[str, str]:
    """What must stay the same across the grids of one fit: the calls per timing block, and the mechanism's own
    structure where it reports one (``impl["regime"]``, or MANO's coarsest level)."""
    impl = json.loads(row["impl"]) if isinstance(row.get("impl"), str) and row["impl"] else {}
    calls = row.get("time_calls_per_block")
    return ("" if pd.isna(calls) else str(int(calls)), str(impl.get("regime", impl.get("coarsest", ""))))


def one_regime(top: pd.DataFrame) -> pd.DataFrame:
    """The rows of ``top`` in the regime of its largest grid (a fit never spans two)."""
    if top.empty:
        return top
    keys = [regime(r) for _, r in top.iterrows()]
    last = keys[int(np.argmax(top["tokens"].to_numpy()))]
    return top[[k == last for k in keys]]


def memory_floor(df: pd.DataFrame) -> dict[tuple[str, str, str], float]:
    """Per (suite, mode, mem_kind): the smallest peak any mechanism needed at the suite's smallest grid — the
    first-call allocations every case pays whatever N is. Memory exponents are fitted after subtracting it."""
    ok = measured(df)
    out = {}
    for (suite, mode, kind), g in ok.groupby(["suite", "mode", "mem_kind"], sort=False):
        smallest = g[g["tokens"] == g["tokens"].min()]["peak_mib"].dropna()
        if len(smallest):
            out[(suite, mode, kind)] = float(smallest.min())
    return out


def local_slopes(n: np.ndarray, y: np.ndarray) -> list[tuple[int, int, float]]:
    """``(N_i, N_{i+1}, slope)`` between consecutive grids: how the exponent changes with N."""
    pts = [(a, b) for a, b in zip(np.asarray(n, float), np.asarray(y, float)) if a > 0 and b > 0]
    pts.sort()
    return [(int(a0), int(a1), float(np.log(b1 / b0) / np.log(a1 / a0)))
            for (a0, b0), (a1, b1) in zip(pts, pts[1:]) if a1 > a0]


def scaling_fits(df: pd.DataFrame, min_tokens: int = 1024, decade: float = 10.0) -> pd.DataFrame:
    """Time and memory exponents per (suite, mode, label) over the **top decade** of the N that ran (N ≥
    N_max / ``decade``, and N ≥ ``min_tokens``), with local slopes over all grids; memory after subtracting
    :func:`memory_floor`."""
    ok = measured(df)
    floors = memory_floor(df)
    rows = []
    for (suite, mode, label), g in ok.groupby(["suite", "mode", "label"], sort=False):
        g = g.sort_values("tokens")
        top = one_regime(g[(g["tokens"] >= g["tokens"].max() / decade) & (g["tokens"] >= min_tokens)])
        floor = floors.get((suite, mode, g["mem_kind"].iloc[0]), 0.0)
        mem = top["peak_mib"] - floor
        rows.append({
            "suite": suite, "mode": mode, "label": label,
            "time_exp": fit_power_law(top["tokens"], top["time_ms_median"], _samples(top)),
            "mem_exp": fit_power_law(top["tokens"], mem) if (mem > 0).all() else None,
            "mem_floor": floor, "mem_kind": g["mem_kind"].iloc[0],
            "time_slopes": local_slopes(g["tokens"], g["time_ms_median"]),
        })
    return pd.DataFrame(rows)


def _with_rounds(df: pd.DataFrame) -> pd.DataFrame:
    """``df`` with a ``replicate_medians_ms`` column (empty for rows measured once)."""
    return df if "replicate_medians_ms" in df else df.assign(replicate_medians_ms="")


def _baseline_rows(df: pd.DataFrame, baseline: str | None) -> tuple[str | None, pd.DataFrame]:
    baseline = baseline or baseline_label(df)
    if baseline is None:
        return None, df.iloc[0:0]
    return baseline, df[df["base_label"] == baseline]


def ratios(df: pd.DataFrame, baseline: str | None = None) -> pd.DataFrame:
    """Speed-up (baseline time / time) and memory ratio (peak / baseline peak) at each common grid, against the
    baseline run in the same context (suite, mode, batch, dim, heads, dtype, device, threads)."""
    ok = measured(df)
    baseline, base = _baseline_rows(ok, baseline)
    if baseline is None:
        return pd.DataFrame()
    on = [*CONTEXT, "height", "width"]
    ok, base = _with_rounds(ok), _with_rounds(base)
    base = base[[*on, "time_ms_median", "peak_mib", "replicate_medians_ms"]]
    merged = ok.merge(base, on=on, suffixes=("", "_base"))
    merged["speedup"] = merged["time_ms_median_base"] / merged["time_ms_median"]
    merged["mem_ratio"] = merged["peak_mib"] / merged["peak_mib_base"]
    # Replicated runs: the speed-up paired within each round (drift common to the round cancels), with its CI
    # over rounds; the ratio of the two medians above otherwise.
    est = [_paired(a, b) for a, b in zip(merged["replicate_medians_ms"], merged["replicate_medians_ms_base"])]
    merged["speedup"] = [e.value if e is not None else s for e, s in zip(est, merged["speedup"])]
    merged["speedup_lo"] = [e.lo if e is not None else np.nan for e in est]
    merged["speedup_hi"] = [e.hi if e is not None else np.nan for e in est]
    merged["rounds"] = [e.n if e is not None else np.nan for e in est]
    return merged[["suite", "mode", "label", "height", "width", "tokens", "speedup", "speedup_lo", "speedup_hi",
                   "rounds", "mem_ratio"]]


def _paired(mine: object, base: object) -> Estimate | None:
    """Speed-up base / mine paired by round, from two ``replicate_medians_ms`` cells; None unless both have them."""
    a, b = round_medians(mine), round_medians(base)
    return paired(a, b) if a and b else None


def _beats(r: pd.Series) -> bool:
    """The mechanism is faster than the baseline beyond the noise at this grid: the paired speed-up's CI over
    rounds lies above 1 (replicated runs), else the medians' CIs are apart, else the margin."""
    paired_ = _paired(r.get("replicate_medians_ms"), r.get("replicate_medians_ms_b"))
    if paired_ is not None and paired_.has_ci:
        return bool(paired_.lo > 1)
    lo_b, hi_m = r.get("time_ms_ci_lo_b"), r.get("time_ms_ci_hi")
    if pd.notna(lo_b) and pd.notna(hi_m):
        return bool(hi_m < lo_b)
    return bool(r["time_ms_median_b"] >= WIN_MARGIN * r["time_ms_median"])


def crossovers(df: pd.DataFrame, baseline: str | None = None) -> pd.DataFrame:
    """Smallest N from which a mechanism beats the baseline at every larger common grid (see :data:`WIN_MARGIN`).

    A grid where the mechanism failed (oom, timeout, crashed, skipped, error) while the baseline ran is a loss;
    where the baseline failed and the mechanism ran, a win; where both failed or either is unsupported, no evidence.
    """
    cost = _with_rounds(df[df["kind"] == "cost"])
    baseline, base = _baseline_rows(cost, baseline)
    if baseline is None:
        return pd.DataFrame()
    rows = []
    on = [*CONTEXT, "height", "width", "tokens"]
    for (suite, mode, label), g in cost.groupby(["suite", "mode", "label"], sort=False):
        if (g["base_label"] == baseline).all():
            continue
        merged = g.merge(base, on=on, suffixes=("", "_b")).sort_values("tokens")
        wins: list[bool | None] = []
        for _, r in merged.iterrows():
            mine, theirs = r["status"], r["status_b"]
            if mine == Status.OK and theirs == Status.OK:
                wins.append(_beats(r))
            elif mine == Status.OK and theirs in FAILURES:
                wins.append(True)
            elif mine in FAILURES and theirs == Status.OK:
                wins.append(False)
            else:
                wins.append(None)
        n_star = None
        for i in range(len(wins)):
            tail = [w for w in wins[i:] if w is not None]
            if tail and all(tail) and wins[i] is not None:
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
        ok = g[g["status"] == Status.OK]
        bad = g[g["status"].isin(NO_NUMBER)]
        rows.append({
            "suite": suite, "mode": mode, "label": label,
            "largest_ok": f"{int(ok['height'].iloc[-1])}x{int(ok['width'].iloc[-1])}" if len(ok) else "none",
            "first_failure": (f"{bad['status'].iloc[0]} at {int(bad['height'].iloc[0])}x{int(bad['width'].iloc[0])}"
                              if len(bad) else ""),
        })
    return pd.DataFrame(rows)
