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


def _processes(medians, side=16, status="ok", blocks=True):
    """One case measured in ``len(medians)`` processes with these exact process medians (3 blocks each, ±0.1 %)."""
    rows = []
    for r, m in enumerate(medians, 1):
        samples = m * np.array([0.999, 1.0, 1.001]) if blocks and status == "ok" else None
        row = _row("lin", "linear", side, m if status == "ok" else None, status=status, samples=samples,
                   config="c1")
        row.update(replicate=r, case_key=f"{row['case_key']}|r{r}", run_id="run")
        rows.append(row)
    return rows


A6 = [1.00, 1.01, 1.02, 1.03, 1.04, 1.05]  # six process medians, median 1.025


def test_compare_a_significant_but_small_change_is_not_flagged():
    """Complete separation (p = 2/924 < 0.01) but only 5.9 % slower, or faster: below the 1.1 threshold."""
    slower = compare(_frame(_processes(A6)), _frame(_processes([1.06, 1.07, 1.08, 1.09, 1.10, 1.11])))
    row = slower.iloc[0]
    assert row["p"] == pytest.approx(2 / 924) and row["ratio"] == pytest.approx(1.085 / 1.025)
    assert row["change"] == "" and row["replicates"] == "6/6"
    faster = compare(_frame(_processes(A6)), _frame(_processes([0.94, 0.95, 0.96, 0.97, 0.98, 0.99])))
    assert faster.iloc[0]["p"] < 0.01 and faster.iloc[0]["ratio"] > 1 / 1.1 and faster.iloc[0]["change"] == ""
    assert verdict(slower, 1.01, None) == 0 and verdict(faster, None, 0.99) == 0  # --fail-above/below see no change


def test_compare_a_large_but_not_significant_change_is_not_flagged():
    """The medians moved by 10.2 % but the process medians overlap (p ≫ 0.01): noise, not a change."""
    a = _processes([0.80, 0.90, 1.00, 1.05, 1.10, 1.20])  # median 1.025
    b = _processes([0.85, 0.95, 1.12, 1.14, 1.16, 1.30])  # median 1.13
    row = compare(_frame(a), _frame(b)).iloc[0]
    assert row["ratio"] == pytest.approx(1.13 / 1.025) and row["ratio"] >= 1.1
    assert row["p"] >= 0.01 and row["change"] == ""


def test_compare_cases_only_in_one_run():
    a = _frame(_processes(A6, side=16) + _processes(A6, side=32))
    b = _frame(_processes(A6, side=16) + _processes(A6, side=64))
    table = compare(a, b).set_index("grid")
    assert table.loc["16x16", "change"] == "" and table.loc["16x16", "ratio"] == pytest.approx(1.0)
    assert table.loc["32x32", "change"] == "only in A" and table.loc["64x64", "change"] == "only in B"
    assert table.loc[["32x32", "64x64"], "ratio"].isna().all() and table.loc[["32x32", "64x64"], "p"].isna().all()
    assert verdict(table, 1.0, 1.0) == 0  # a case that is missing is no slowdown


def test_compare_without_samples():
    """No times at all (failed in both runs, or nothing measured): no ratio, no test, no change; process medians
    without their blocks (rows of an older schema): the test still runs, only the block-level CI is missing."""
    failed = compare(_frame(_processes([None] * 6, status="oom")), _frame(_processes([None] * 6, status="oom")))
    row = failed.iloc[0]
    assert row["status_a"] == row["status_b"] == "oom" and row["change"] == ""
    assert np.isnan(row["ratio"]) and np.isnan(row["p"])
    slower = [1.5 * m for m in A6]
    no_blocks = compare(_frame(_processes(A6, blocks=False)), _frame(_processes(slower, blocks=False))).iloc[0]
    assert no_blocks["change"] == "slower" and no_blocks["p"] == pytest.approx(2 / 924)
    assert np.isnan(no_blocks["ci_lo"]) and np.isnan(no_blocks["ci_hi"])
    with_blocks = compare(_frame(_processes(A6)), _frame(_processes(slower))).iloc[0]
    assert with_blocks["ci_lo"] < 1.5 < with_blocks["ci_hi"]
    empty = _frame(_processes(A6)).iloc[0:0]
    assert compare(empty, empty).empty and verdict(compare(empty, empty), 1.0, 1.0) == 0


@pytest.mark.parametrize("n_a,n_b", [(4, 4), (1, 6), (6, 1), (5, 3)])
def test_compare_too_few_replicates_is_said_never_tested(n_a, n_b):
    """Twice as slow, but too few processes for the exact U test to reach p < 0.01 (4 + 4: p ≥ 2/70): "too few
    replicates", no p and no verdict — whatever the ratio."""
    row = compare(_frame(_processes(A6[:n_a])), _frame(_processes([2 * m for m in A6[:n_b]]))).iloc[0]
    assert row["change"] == "too few replicates" and row["replicates"] == f"{n_a}/{n_b}"
    assert row["ratio"] > 1.9 and np.isnan(row["p"])


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


def test_compute_spent_counts_each_training_case_once_whatever_grids_it_is_evaluated_on():
    from attnbench.report.analysis.accuracy import compute_spent
    from attnbench.report.analysis.frame import case_wall_total

    rows = [  # two training cases evaluated at two grids each (one wall time per case, on both rows), two machines
        {"run_id": "a", "machine": "m1", "threads": 2, "case_key": f"full|train|32x32|cfg{seed}|eval{res}",
         "case_wall_s": 600.0 * (seed + 1)} for seed in (0, 1) for res in (32, 64)
    ] + [{"run_id": "b", "machine": "m2", "threads": 2, "case_key": "mano|train|32x32|cfg|eval32", "case_wall_s": 36.0}]
    df = pd.DataFrame(rows)
    assert case_wall_total(df) == 600 + 1200 + 36
    spent = {r["machine"]: r for r in compute_spent(df).records}
    assert spent["m1"]["cases"] == 2 and spent["m1"]["hours"] == pytest.approx(0.5)
    assert spent["m2"]["cases"] == 1 and spent["m2"]["runs"] == 1 and spent["m2"]["hours"] == pytest.approx(0.01)
