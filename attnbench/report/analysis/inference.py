"""Tests over seeds that a verdict may rest on: non-inferiority with a margin fixed in advance, Holm's correction
across a claim's tests, and the power each test had. Pure: numbers in, numbers out.

*Non-inferiority* (the "rivals" of a claim): with ``d`` the amount by which mechanism A is worse than baseline B
(mean of A minus mean of B where lower is better, the reverse where higher is), and a margin ``Δ`` — how much worse
still counts as rivalling — the one-sided Welch test of H0: d ≥ Δ against H1: d < Δ over the seeds of each side.
A is *non-inferior* when Holm's adjusted p of that test is below α; *worse by more than the margin* when the
mirror test (H0: d ≤ Δ) is; otherwise the test had *power* — the probability of showing non-inferiority at the
adjusted level if A and B were truly equal, at the observed spread — and below :data:`MIN_POWER` it is *not
testable*, else *inconclusive*. A low-power test never counts as a pass.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

__all__ = ["MIN_POWER", "Comparison", "holm", "margin_for", "noninferiority", "welch"]

MIN_POWER = 0.8  # a test that would show non-inferiority of an equal mechanism less often than this cannot decide
# The margins, fixed before any protocol data was seen (issue 24): relative L2 at most 5 % worse than the baseline's
# mean, top-1 at most 1 point lower.
REL_MARGIN = {"rel_l2": 0.05}
ABS_MARGIN = {"top1": 0.01}


def margin_for(metric: str, baseline_mean: float) -> float:
    """The non-inferiority margin Δ of a metric, in its units (relative margins scale the baseline's mean)."""
    if metric in REL_MARGIN:
        return REL_MARGIN[metric] * abs(baseline_mean)
    if metric in ABS_MARGIN:
        return ABS_MARGIN[metric]
    raise ValueError(f"no non-inferiority margin for metric {metric!r}; known: "
                     f"{', '.join(sorted({*REL_MARGIN, *ABS_MARGIN}))}")


def margin_text(metric: str) -> str:
    """The margin in words, as the rules quote it."""
    if metric in REL_MARGIN:
        return f"{metric} at most {100 * REL_MARGIN[metric]:.0f} % above the baseline's mean"
    return f"{metric} at most {ABS_MARGIN[metric]:g} below the baseline's mean"


def welch(a: Sequence[float], b: Sequence[float]) -> tuple[float, float, float]:
    """(mean(a) − mean(b), its standard error, Welch–Satterthwaite degrees of freedom); each side ≥ 2 values."""
    x, y = np.asarray(a, float), np.asarray(b, float)
    vx, vy = x.var(ddof=1) / len(x), y.var(ddof=1) / len(y)
    se = float(np.sqrt(vx + vy))
    if se == 0:
        return float(x.mean() - y.mean()), 0.0, float(len(x) + len(y) - 2)
    df = (vx + vy) ** 2 / (vx ** 2 / (len(x) - 1) + vy ** 2 / (len(y) - 1))
    return float(x.mean() - y.mean()), se, float(df)


def holm(p: Sequence[float]) -> list[float]:
    """Holm's step-down adjusted p-values (monotone, capped at 1), in the input's order."""
    values = np.asarray(p, float)
    order = np.argsort(values, kind="stable")
    m, out, running = len(values), np.empty(len(values)), 0.0
    for rank, i in enumerate(order):
        running = max(running, min(1.0, (m - rank) * values[i]))
        out[i] = running
    return out.tolist()


@dataclass(frozen=True)
class Comparison:
    """One non-inferiority test of A against baseline B: ``worse_by`` = d (positive: A worse), ``margin`` = Δ,
    ``p_ni`` / ``p_inf`` the raw one-sided p of non-inferiority / of worse-by-more-than-Δ, ``power`` at the level
    the test is finally held to (set by :func:`noninferiority` after Holm)."""

    a: str
    b: str
    n_a: int
    n_b: int
    mean_a: float
    mean_b: float
    worse_by: float
    se: float
    df: float
    margin: float
    p_ni: float
    p_inf: float


def _one_sided(c: Comparison) -> tuple[float, float]:
    from scipy.stats import t

    if c.se == 0:
        return (0.0, 1.0) if c.worse_by < c.margin else (1.0, 0.0 if c.worse_by > c.margin else 1.0)
    stat = (c.worse_by - c.margin) / c.se
    return float(t.cdf(stat, c.df)), float(t.sf(stat, c.df))


def _power(c: Comparison, alpha: float) -> float:
    """P(showing non-inferiority at level ``alpha``) if A and B were equal, at the observed standard error."""
    from scipy.stats import nct, t

    if c.se == 0:
        return 1.0
    crit = t.ppf(alpha, c.df)
    return float(nct.cdf(crit, c.df, -c.margin / c.se))


def noninferiority(tests: Sequence[tuple[str, str, Sequence[float], Sequence[float], str]],
                   alpha: float = 0.05) -> list[dict[str, object]]:
    """Non-inferiority of each ``(a, b, a's values, b's values, metric)`` (seeds of each side), Holm-corrected
    across all of ``tests`` (a claim's family). Per test: the :class:`Comparison` fields, ``p_ni_holm``,
    ``p_inf_holm``, ``power`` (at level α / m, Holm's first and strictest step) and ``verdict`` — "non-inferior",
    "worse by more than the margin", "inconclusive" or "not testable (power …)"."""
    comps = []
    for a, b, va, vb, metric in tests:
        lower = metric == "rel_l2"
        diff, se, df = welch(va, vb)
        worse = diff if lower else -diff
        base = Comparison(a, b, len(va), len(vb), float(np.mean(va)), float(np.mean(vb)), worse, se, df,
                          margin_for(metric, float(np.mean(vb))), np.nan, np.nan)
        p_ni, p_inf = _one_sided(base)
        comps.append(Comparison(**{**base.__dict__, "p_ni": p_ni, "p_inf": p_inf}))
    ni, inf = holm([c.p_ni for c in comps]), holm([c.p_inf for c in comps])
    m = len(comps)
    out = []
    for c, test, p1, p2 in zip(comps, tests, ni, inf):
        power = _power(c, alpha / m)
        verdict = ("non-inferior" if p1 < alpha else "worse by more than the margin" if p2 < alpha else
                   "inconclusive" if power >= MIN_POWER else f"not testable (power {power:.2f})")
        out.append({**c.__dict__, "metric": test[4], "p_ni_holm": p1, "p_inf_holm": p2, "power": power,
                    "verdict": verdict})
    return out
