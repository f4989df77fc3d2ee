"""Statistics over replicates. A *replicate* is one process (one round) of a cost case; it times several blocks,
and its median is one observation. Between-process spread (allocator state, page placement, the VM's phase) is
what a re-run sees, so every interval and test here is over replicates, never over the blocks of one process.

* A case's estimate is the **median of its per-process medians**.
* Its 95 % CI is the distribution-free interval of the median from order statistics: ``[x_(k), x_(n+1-k)]`` of the
  n process medians with the largest k whose binomial coverage ``1 − 2·P(Bin(n, ½) ≤ k−1)`` is ≥ 95 %. It needs
  n ≥ 6 (with 5, even the min–max covers only 93.75 %): below that the CI is "n too small", never a min–max
  called 95 %.
* A ratio between two mechanisms is **paired within a round** (both measured in the same round, minutes apart), so
  drift common to the round cancels; its estimate and CI are the same order statistics over the rounds' ratios.
* Comparing two runs of the same case: the ratio of their estimates, a two-sided Mann–Whitney U test over the two
  sets of process medians, and a hierarchical bootstrap CI of the ratio (resample processes, then blocks within
  each).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
import pandas as pd

from attnbench.store.status import Status

__all__ = ["LEVEL", "Estimate", "collapse", "estimate", "hierarchical_ratio_ci", "median_ci", "min_replicates",
           "mwu_min_p", "paired", "round_medians"]

LEVEL = 0.95


def _coverage(n: int, k: int) -> float:
    """Coverage of ``[x_(k), x_(n+1-k)]`` as an interval for the median of a continuous distribution."""
    from scipy.stats import binom

    return float(1 - 2 * binom.cdf(k - 1, n, 0.5))


def min_replicates(level: float = LEVEL) -> int:
    """The fewest replicates whose min–max already covers the median at ``level`` (6 for 95 %)."""
    n = 1
    while _coverage(n, 1) < level:
        n += 1
    return n


def median_ci(values: Sequence[float], level: float = LEVEL) -> tuple[float, float] | None:
    """Distribution-free CI of the median of ``values`` (order statistics); None when there are too few."""
    xs = np.sort(np.asarray([v for v in values if np.isfinite(v)], float))
    n, k = len(xs), 0
    while k + 1 <= n // 2 and _coverage(n, k + 1) >= level:
        k += 1
    return (float(xs[k - 1]), float(xs[n - k])) if k else None


@dataclass(frozen=True)
class Estimate:
    """A median over replicates with its CI (``lo``/``hi`` nan when ``n`` is too small for ``level``)."""

    value: float
    lo: float
    hi: float
    n: int
    level: float = LEVEL

    @property
    def has_ci(self) -> bool:
        return bool(np.isfinite(self.lo) and np.isfinite(self.hi))

    def __str__(self) -> str:
        if not np.isfinite(self.value):
            return "n/a"
        ci = f" [{self.lo:.3g}–{self.hi:.3g}]" if self.has_ci else f" (n = {self.n} too small for a CI)"
        return f"{self.value:.3g}{ci}"


def estimate(values: Sequence[float], level: float = LEVEL) -> Estimate:
    """Median of ``values`` (per-process medians, or per-round ratios) with its order-statistic CI."""
    xs = [float(v) for v in values if np.isfinite(v)]
    if not xs:
        return Estimate(float("nan"), float("nan"), float("nan"), 0, level)
    ci = median_ci(xs, level)
    lo, hi = ci if ci else (float("nan"), float("nan"))
    return Estimate(float(np.median(xs)), lo, hi, len(xs), level)


def paired(a: dict[int, float], b: dict[int, float], level: float = LEVEL) -> Estimate:
    """``b / a`` within each round both measured (keys: round), summarised over rounds."""
    rounds = sorted(set(a) & set(b))
    return estimate([b[r] / a[r] for r in rounds if a[r] > 0 and np.isfinite(b[r])], level)


def mwu_min_p(n_a: int, n_b: int) -> float:
    """The smallest two-sided p an exact Mann–Whitney U test can give with these sample sizes (complete
    separation): below a significance level only when enough replicates were measured."""
    from math import comb

    return 2 / comb(n_a + n_b, n_a) if n_a and n_b else 1.0


def hierarchical_ratio_ci(a: Sequence[Sequence[float]], b: Sequence[Sequence[float]], level: float = LEVEL,
                          resamples: int = 2000, seed: int = 0) -> tuple[float, float]:
    """Percentile CI of median-of-medians(B) / median-of-medians(A) by a two-level bootstrap: resample each run's
    processes with replacement, then each chosen process's blocks, and take the median of the process medians."""
    rng = np.random.default_rng(seed)

    def draws(groups: Sequence[Sequence[float]]) -> np.ndarray:
        # each process's block-resampled medians, a pool of ``resamples`` per process ...
        pool = np.stack([np.median(np.asarray(g, float)[rng.integers(0, len(g), (resamples, len(g)))], axis=1)
                         for g in groups])  # processes, resamples
        # ... then processes drawn with replacement, each pick taking its own draw from its process's pool
        picked = rng.integers(0, len(groups), (resamples, len(groups)))
        return np.median(pool[picked, rng.integers(0, resamples, picked.shape)], axis=1)

    ratios = draws(b) / draws(a)
    lo, hi = np.quantile(ratios, [(1 - level) / 2, (1 + level) / 2])
    return float(lo), float(hi)


# ------------------------------------------------------------------------------------------- rows → cases
def round_medians(cell: object) -> dict[int, float]:
    """A case row's ``replicate_medians_ms`` cell as {round: process median}; empty for a case measured once."""
    import json

    return {int(k): float(v) for k, v in json.loads(cell).items()} if isinstance(cell, str) and cell else {}


def _json_list(text: object) -> list[float]:
    import json

    return [float(x) for x in json.loads(text)] if isinstance(text, str) and text else []


def collapse(df: pd.DataFrame) -> pd.DataFrame:
    """One row per case from its replicate rows (``replicate`` ≥ 1; other rows pass through unchanged).

    The case row keeps the identity of its replicates (``case_key`` without the round) and gets:
    ``time_ms_median`` the median of the process medians; ``time_ms_q1``/``q3`` their quartiles;
    ``time_ms_ci_lo``/``hi`` the order-statistic 95 % CI (nan when too few replicates); ``replicates`` the number
    that measured; ``replicate_medians_ms`` {round: median} (for paired ratios); ``replicate_samples_ms`` the
    blocks of each process (for hierarchical bootstraps); ``time_samples_ms`` every block; ``peak_mib`` and
    ``minor_faults_per_call`` and the canaries ``speed_*_ms`` medians over replicates; ``cpu_steal_pct`` the largest
    steal seen; ``status`` ok when
    any replicate measured (``reason`` names the rounds that failed), else the first failure.
    """
    import json

    rounds = pd.to_numeric(df.get("replicate", pd.Series(index=df.index, dtype=float)), errors="coerce")
    rep = df[rounds >= 1]
    if rep.empty:
        return df
    rep = rep.assign(_round=rounds[rounds >= 1].astype(int),
                     _case=rep["case_key"].astype(str).str.replace(r"\|r\d+$", "", regex=True))
    out = []
    for (_, _), g in rep.groupby(["run_id", "_case"], sort=False):
        g = g.sort_values("_round")
        ok = g[g["status"] == Status.OK]
        first = (ok if len(ok) else g).iloc[0].to_dict()
        row = {**first, "case_key": first["_case"]}
        if len(ok):
            medians = {int(r): float(m) for r, m in zip(ok["_round"], ok["time_ms_median"])}
            est = estimate(list(medians.values()))
            q1, q3 = np.quantile(list(medians.values()), [0.25, 0.75])
            samples = [_json_list(s) for s in ok["time_samples_ms"]]
            failed = g[g["status"] != Status.OK]
            row.update(status=Status.OK.value, time_ms_median=est.value, time_ms_q1=float(q1), time_ms_q3=float(q3),
                       time_ms_iqr=float(q3 - q1), time_ms_min=float(ok["time_ms_min"].min()),
                       time_ms_ci_lo=est.lo, time_ms_ci_hi=est.hi, time_n=int(ok["time_n"].sum()),
                       replicates=len(ok), replicate_medians_ms=json.dumps(medians),
                       replicate_samples_ms=json.dumps(samples),
                       time_samples_ms=json.dumps([x for s in samples for x in s]),
                       peak_mib=float(ok["peak_mib"].median()),
                       minor_faults_per_call=float(ok["minor_faults_per_call"].median()),
                       cpu_steal_pct=float(g["cpu_steal_pct"].max()),
                       # the machine's speed over the case's rounds (each round measured its canaries once)
                       **{c: float(pd.to_numeric(ok[c], errors="coerce").median())
                          for c in ("speed_compute_ms", "speed_memory_ms") if c in ok},
                       case_wall_s=float(g["case_wall_s"].sum()),
                       reason="; ".join(f"round {r}: {s} ({why})" for r, s, why in
                                        zip(failed["_round"], failed["status"], failed["reason"])))
            for col in ("gflops_per_s", "gbytes_per_s"):
                if col in row and pd.notna(first.get("flops")) and est.value > 0:
                    work = first["flops"] if col == "gflops_per_s" else first["bytes"]
                    row[col] = float(work) / (est.value / 1e3) / 1e9 if pd.notna(work) else row[col]
        else:
            row.update(replicates=0, case_wall_s=float(g["case_wall_s"].sum()))
        out.append(row)
    # in a stable order (suite, mode, grid, label), not the first round's shuffled one
    cases = pd.DataFrame(out).drop(columns=["_round", "_case"]).sort_values(
        ["suite", "mode", "tokens", "label"], kind="stable")
    rest = df[~(rounds >= 1)]
    return pd.concat([rest, cases], ignore_index=True) if len(rest) else cases.reset_index(drop=True)
