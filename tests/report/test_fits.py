"""Scaling analysis: power-law fits, ratios, crossover, frontier."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from attnbench.report.analysis.fits import crossovers, fit_power_law, frontiers, ratios, scaling_fits
from attnbench.report.analysis.frame import prepare


def test_fit_recovers_a_power_law_and_its_uncertainty():
    n = np.array([256, 1024, 4096, 16384, 65536], float)
    exact = fit_power_law(n, 3e-4 * n**1.5)
    assert exact.exponent == pytest.approx(1.5) and exact.ci95 == pytest.approx(0, abs=1e-9)
    rng = np.random.default_rng(0)
    noisy = fit_power_law(n, 3e-4 * n**2 * np.exp(rng.normal(0, 0.2, n.size)))
    assert abs(noisy.exponent - 2) < 3 * noisy.ci95 and noisy.ci95 > 0
    assert fit_power_law([1024], [1.0]) is None


def _frame():
    rows = []
    for side in (16, 32, 64, 128):
        n = side * side
        rows.append(dict(suite="s", kind="cost", mode="fwd", label="full", attention="full", height=side, width=side,
                         tokens=n, status="ok" if side < 128 else "timeout", time_ms_median=1e-4 * n**2 / 256,
                         peak_mib=n / 1000, mem_kind="cpu_rss"))
        rows.append(dict(suite="s", kind="cost", mode="fwd", label="lin", attention="linear", height=side, width=side,
                         tokens=n, status="ok", time_ms_median=0.01 * n, peak_mib=n / 500, mem_kind="cpu_rss"))
    return prepare(pd.DataFrame([{k: str(v) for k, v in r.items()} for r in rows]))


def test_ratios_crossover_frontier_and_fits():
    df = _frame()
    fits = scaling_fits(df, min_tokens=256, decade=1e9).set_index("label")
    assert fits.loc["full", "time_exp"].exponent == pytest.approx(2.0)
    assert fits.loc["lin", "time_exp"].exponent == pytest.approx(1.0)
    r = ratios(df).set_index(["label", "height"])
    assert r.loc[("lin", 64), "speedup"] == pytest.approx((1e-4 * 4096**2 / 256) / (0.01 * 4096))
    assert r.loc[("lin", 64), "mem_ratio"] == pytest.approx(2.0)
    # lin is slower than full at every grid where both ran; full timed out at 128², where lin ran: N* = 128²
    assert crossovers(df).set_index("label").loc["lin", "n_star"] == 128 * 128
    faster = df.copy()
    faster.loc[faster["label"] == "lin", "time_ms_median"] /= 100
    cross = crossovers(faster).set_index("label")
    full_t = {s: 1e-4 * (s * s) ** 2 / 256 for s in (16, 32, 64)}
    lin_t = {s: 0.01 * s * s / 100 for s in (16, 32, 64)}
    first = min(s for s in (16, 32, 64) if all(lin_t[t] < full_t[t] for t in (16, 32, 64) if t >= s))
    assert cross.loc["lin", "n_star"] == first * first
    front = frontiers(df).set_index("label")
    assert front.loc["full", "largest_ok"] == "64x64" and front.loc["full", "first_failure"] == "timeout at 128x128"
    assert front.loc["lin", "largest_ok"] == "128x128"
