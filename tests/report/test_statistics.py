"""Statistics that say what they are: configurations never mixed, top-decade fits with bootstrap CIs, local slopes,
the memory floor, crossovers that need a margin and count failures as losses, and ``attnbench compare``."""

from __future__ import annotations

import json

import numpy as np
import pandas as pd
import pytest

from attnbench.cli import main
from attnbench.measure.timing import bootstrap_median_ci
from attnbench.report.analysis.compare import compare, verdict
from attnbench.report.analysis.fits import crossovers, local_slopes, ratios, scaling_fits
from attnbench.report.analysis.frame import prepare


def _row(label, attention, side, t, status="ok", peak=1.0, batch=1, mode="fwd", samples=None, ci=None, config=None):
    r = dict(suite="s", kind="cost", mode=mode, label=label, attention=attention, height=side, width=side,
             tokens=side * side, status=status, time_ms_median=t, peak_mib=peak, mem_kind="cpu_rss", batch=batch,
             dim=64, heads=4, dtype="float32", device="cpu", threads=2, config_id=config or f"{attention}-b{batch}",
             case_key=f"{label}|{side}|{batch}")
    if samples is not None:
        r["time_samples_ms"] = json.dumps(list(samples))
    if ci is not None:
        r["time_ms_ci_lo"], r["time_ms_ci_hi"] = ci
    return r


def _frame(rows, replicates="cases"):
    return prepare(pd.DataFrame([{k: ("" if v is None else str(v)) for k, v in r.items()} for r in rows]),
                   replicates)


SIDES = (16, 32, 64, 128)


def _two_batches():
    rows = []
    for batch in (1, 4):
        for s in SIDES:
            n = s * s
            rows.append(_row("full", "full", s, batch * 1e-4 * n**2 / 256, batch=batch))
            rows.append(_row("lin", "linear", s, batch * 0.01 * n, batch=batch))
    return _frame(rows)


def test_mixed_configurations_become_separate_series_never_a_cross_product():
    df = _two_batches()
    assert set(df["label"]) == {"full (batch=1)", "full (batch=4)", "lin (batch=1)", "lin (batch=4)"}
    r = ratios(df)
    assert len(r) == 2 * 2 * len(SIDES)  # every series against the baseline of its own batch: 16 rows, not 32
    assert np.allclose(r[r["label"].str.startswith("lin")].groupby("height")["speedup"].nunique(), 1)
    fits = scaling_fits(df, min_tokens=256, decade=1e9).set_index("label")
    assert fits.loc["lin (batch=4)", "time_exp"].exponent == pytest.approx(1.0)
    assert fits.loc["full (batch=1)", "time_exp"].exponent == pytest.approx(2.0)


def test_failure_after_a_small_win_is_no_crossover():
    """Faster at 16², out of memory from 32² on while full ran: never a crossover (today's rule said 16²)."""
    rows = []
    for s in SIDES:
        rows.append(_row("full", "full", s, 1e-3 * s**4))
        rows.append(_row("x", "x", s, 1e-6 if s == 16 else np.nan, status="ok" if s == 16 else
                         ("oom" if s == 32 else "skipped")))
    assert pd.isna(crossovers(_frame(rows)).set_index("label").loc["x", "n_star"])


def test_a_win_needs_a_margin_beyond_the_noise():
    rows = []
    for s in SIDES:
        rows.append(_row("full", "full", s, 10.0, ci=(9.0, 11.0)))
        # 5 % faster with overlapping CIs below 64², clearly faster (CIs apart) from 64² on
        t, ci = (9.5, (8.5, 10.5)) if s < 64 else (5.0, (4.8, 5.2))
        rows.append(_row("y", "y", s, t, ci=ci))
    assert crossovers(_frame(rows)).set_index("label").loc["y", "n_star"] == 64 * 64
    no_ci = [{k: v for k, v in r.items() if not k.startswith("time_ms_ci")} for r in rows]
    # without CIs the stated margin (1.1x) decides: 10 / 9.5 is not a win, 10 / 5 is
    assert crossovers(_frame(no_ci)).set_index("label").loc["y", "n_star"] == 64 * 64


def test_local_slopes_and_the_top_decade_fit():
    n = np.array([s * s for s in SIDES], float)
    y = 50 + 1e-4 * n**2  # an overhead floor bends the small grids
    slopes = local_slopes(n, y)
    assert [a for a, _, _ in slopes] == [256, 1024, 4096] and slopes[0][2] < 1.5 < slopes[-1][2] <= 2.0
    df = _frame([_row("full", "full", s, t) for s, t in zip(SIDES, y)])
    fit = scaling_fits(df, min_tokens=256).iloc[0]["time_exp"]  # top decade: 64², 128² only
    assert fit.n_min == 64 * 64 and fit.exponent == pytest.approx(np.log(y[3] / y[2]) / np.log(4), rel=1e-9)


def test_memory_exponent_is_fitted_above_the_floor():
    floor = 2.0
    rows = [_row("a", "a", s, 1.0, peak=floor + 1e-3 * (s * s) ** 0.95) for s in (16, 32, 64, 96, 128)]
    rows.append(_row("b", "b", 16, 1.0, peak=floor))  # the cheapest case at the smallest grid sets the floor
    fits = scaling_fits(_frame(rows), min_tokens=256).set_index("label")
    assert fits.loc["a", "mem_floor"] == pytest.approx(floor)
    assert fits.loc["a", "mem_exp"].exponent == pytest.approx(0.95, abs=0.01)


def test_bootstrap_ci_brackets_the_median_and_is_seeded():
    xs = np.random.default_rng(3).lognormal(size=25)
    lo, hi = bootstrap_median_ci(xs)
    assert lo <= np.median(xs) <= hi and (lo, hi) == bootstrap_median_ci(xs)


def _run(factor, status="ok", seed=0, replicates=6, level="cases"):
    """Two cases, each measured in ``replicates`` processes (one row per process, its blocks as samples)."""
    rng = np.random.default_rng(seed)
    rows = []
    for s in (16, 32):
        for r in range(1, replicates + 1):
            samples = factor * (1.0 + 0.01 * rng.standard_normal()) * (1.0 + 0.002 * rng.standard_normal(8))
            row = _row("lin", "linear", s, float(np.median(samples)), status=status if s == 32 else "ok",
                       samples=samples, config="c1")
            row.update(replicate=r, case_key=f"{row['case_key']}|r{r}", run_id=f"run{seed}")
            rows.append(row)
    return _frame(rows, level)


def test_compare_flags_significant_changes_and_status_changes():
    table = compare(_run(1.0), _run(1.3, seed=1))
    assert list(table["change"]) == ["slower", "slower"] and (table["p"] < 0.01).all()
    assert (table["ci_lo"] > 1.2).all() and verdict(table, 1.1, None) == 1 and verdict(table, None, 0.9) == 0
    same = compare(_run(1.0), _run(1.0, seed=2))
    assert not same["change"].isin(["slower", "faster"]).any() and verdict(same, 1.1, 0.9) == 0
    faster = compare(_run(1.0), _run(0.5, seed=3))
    assert verdict(faster, None, 0.9) == 1
    status = compare(_run(1.0), _run(1.0, status="oom", seed=4))
    assert "status ok → oom" in list(status["change"])


def test_compare_cli_exit_codes(tmp_path, capsys):
    a, b = tmp_path / "a.csv", tmp_path / "b.csv"
    from attnbench.store.schema import COLUMNS

    for path, frame in ((a, _run(1.0, level="rows")), (b, _run(1.3, seed=1, level="rows"))):
        raw = frame.reindex(columns=COLUMNS).astype(object).fillna("")
        raw["compile"] = "false"
        raw.to_csv(path, index=False)
    assert main(["compare", str(a), str(b)]) == 0
    assert "slower" in capsys.readouterr().out
    assert main(["compare", str(a), str(b), "--fail-above", "1.1"]) == 1
    assert main(["compare", str(b), str(a), "--fail-below", "0.9"]) == 1
    capsys.readouterr()
    assert main(["compare", str(a), str(b), "--format", "json"]) == 0
    assert len(json.loads(capsys.readouterr().out)) == 2


def test_compare_of_training_runs(capsys):
    """A suite without cost rows (accuracy) compares metrics, training time and memory — no crash on an empty
    cost table (a fresh-clone bench once ended in a KeyError here)."""
    from rich.console import Console

    from attnbench.report.analysis.compare import compare_accuracy
    from attnbench.report.render.console import print_accuracy_comparison, print_comparison

    def rows(train_s, value):
        return _frame([dict(suite="q", kind="accuracy", task="t", label="lin", attention="linear", mode=m,
                            height=16, width=16, eval_res=r, seed=0, status="ok", metric="rel_l2", value=value,
                            train_s=train_s, peak_mib=10, config_id="c", case_key=f"k{r}")
                       for m, r in (("trained", 16), ("zero_shot", 32))])

    a, b = rows(100.0, 0.2), rows(80.0, 0.2)
    console = Console(width=200)
    print_comparison(compare(a, b), console, "A", "B")
    table = compare_accuracy(a, b)
    assert list(table["train_ratio"]) == [0.8, 0.8] and list(table["change"]) == ["", ""]
    print_accuracy_comparison(table, console, "A", "B")
    out = capsys.readouterr().out
    assert "no cost cases in common" in out and "0.8" in out
