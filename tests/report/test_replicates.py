"""Statistics over replicates, on synthetic samples with known answers: the CI of a median over processes, a
case's estimate from its replicate rows, paired ratios that cancel a round's drift, and ``compare`` over process
medians — an A/A pair, drift injected into one round, a known 1.25× slowdown — with their flag rates."""

from __future__ import annotations

import json

import numpy as np
import pandas as pd
import pytest

from attnbench.report.analysis.calibration import calibration
from attnbench.report.analysis.compare import NOISE, TOO_FEW, compare, machine_drift
from attnbench.report.analysis.fits import ratios
from attnbench.report.analysis.frame import prepare
from attnbench.report.analysis.replicates import estimate, median_ci, min_replicates, mwu_min_p, paired

LABELS = ("a", "b", "c", "d")
GRIDS = (32, 64, 96, 128, 192)


def test_a_median_ci_needs_six_values_and_covers_at_95_percent():
    assert min_replicates() == 6
    assert median_ci([1, 2, 3, 4, 5]) is None  # min–max of 5 covers 93.75 %: "n too small", not a 95 % CI
    assert median_ci([3, 1, 2, 6, 5, 4]) == (1, 6)
    assert median_ci(list(range(1, 13))) == (3, 10)  # n = 12: the 3rd and 10th order statistics (96 %)
    rng = np.random.default_rng(0)
    hits = [(lambda ci: ci[0] <= 1.0 <= ci[1])(median_ci(rng.lognormal(0, 0.1, 6))) for _ in range(4000)]
    assert 0.955 <= np.mean(hits) <= 0.98  # exact coverage 1 − 2/64 = 96.9 %
    assert str(estimate([1.0] * 3)).endswith("(n = 3 too small for a CI)")
    assert mwu_min_p(6, 6) < 0.01 < mwu_min_p(4, 4)


def _rows(run: str, rng: np.random.Generator, slow: dict[str, float] | None = None, rounds: int = 6,
          drift: dict[int, float] | None = None, noise: float = 0.03) -> list[dict]:
    """Replicate rows of one run: per mechanism, grid and round a process whose blocks scatter around the true time
    (∝ N, times ``slow[label]``) by ``noise`` between processes and a tenth of that within one."""
    rows = []
    for label in LABELS:
        for side in GRIDS:
            for r in range(1, rounds + 1):
                true = 1e-3 * side * side * (slow or {}).get(label, 1.0) * (drift or {}).get(r, 1.0)
                proc = true * rng.lognormal(0, noise)
                blocks = proc * rng.lognormal(0, noise / 10, 5)
                rows.append({"kind": "cost", "suite": "s", "run_id": run, "label": label, "attention": label,
                             "mode": "fwd", "height": side, "width": side, "tokens": side * side, "status": "ok",
                             "config_id": f"id-{label}", "case_key": f"{label}|fwd|{side}x{side}|id-{label}|r{r}",
                             "replicate": r, "time_ms_median": float(np.median(blocks)),
                             "time_ms_min": float(blocks.min()), "time_n": 5, "time_calls_per_block": 1,
                             "time_samples_ms": json.dumps(blocks.tolist()), "peak_mib": 10.0, "batch": 1,
                             "dim": 64, "heads": 4, "dtype": "float32", "device": "cpu", "threads": 2,
                             "minor_faults_per_call": 0.0, "cpu_steal_pct": 0.0, "case_wall_s": 1.0,
                             "speed_compute_ms": 0.2 * (drift or {}).get(r, 1.0), "speed_memory_ms": 1.0})
    return rows


def _cases(rows: list[dict]) -> pd.DataFrame:
    return prepare(pd.DataFrame(rows))


def test_replicate_rows_become_one_case_with_the_median_of_process_medians():
    rows = _rows("r", np.random.default_rng(1))
    cases = _cases(rows)
    assert len(cases) == len(LABELS) * len(GRIDS) and (cases["replicates"] == 6).all()
    one = cases[(cases["label"] == "a") & (cases["height"] == 64)].iloc[0]
    medians = sorted(r["time_ms_median"] for r in rows if r["label"] == "a" and r["height"] == 64)
    assert one["time_ms_median"] == pytest.approx(np.median(medians))
    assert (one["time_ms_ci_lo"], one["time_ms_ci_hi"]) == pytest.approx((medians[0], medians[-1]))
    assert len(json.loads(one["replicate_samples_ms"])) == 6 and one["case_key"].endswith("id-a")


def test_a_failed_round_is_named_and_the_others_still_estimate():
    rows = _rows("r", np.random.default_rng(2))
    rows[0].update(status="timeout", reason="no answer in 12 s")
    case = _cases(rows).iloc[0]
    assert case["status"] == "ok" and case["replicates"] == 5 and "round 1: timeout" in case["reason"]
    assert np.isnan(case["time_ms_ci_lo"])  # 5 processes: no 95 % CI


def test_an_aa_pair_is_not_flagged_and_a_planted_slowdown_is():
    rng = np.random.default_rng(3)
    a = _cases(_rows("A", rng))
    aa = compare(a, _cases(_rows("B", rng)))
    assert (aa["change"].isin(["slower", "faster"])).mean() <= 0.05
    slowed = compare(a, _cases(_rows("C", rng, slow={"b": 1.25})))
    planted, unchanged = slowed[slowed["label"] == "b"], slowed[slowed["label"] != "b"]
    assert (planted["change"] == "slower").mean() >= 0.95  # detected in ≥ 95 % of its cases
    assert not unchanged["change"].isin(["slower", "faster"]).any()  # and in none of the cases beside it


def test_drift_in_one_round_is_not_a_change():
    """A whole round 1.5× slow (a VM phase) moves one process median in six: the median of medians and the U test
    over processes shrug it off, where a test over the blocks of one process would not."""
    rng = np.random.default_rng(4)
    table = compare(_cases(_rows("A", rng)), _cases(_rows("B", rng, drift={3: 1.5})))
    assert not table["change"].isin(["slower", "faster"]).any()
    assert table["ratio"].between(0.93, 1.08).all()


def test_the_noise_floor_turns_a_small_significant_change_into_noise():
    rng = np.random.default_rng(5)
    a, b = _cases(_rows("A", rng, noise=0.01)), _cases(_rows("B", rng, slow={"a": 1.12}, noise=0.01))
    flagged = compare(a, b)
    assert (flagged[flagged["label"] == "a"]["change"] == "slower").all()
    quiet = compare(a, b, floor=1.2)
    assert (quiet[quiet["label"] == "a"]["change"] == NOISE).all()


def test_runs_measured_once_get_too_few_replicates_never_a_block_verdict():
    rng = np.random.default_rng(6)
    once = [dict(r, replicate="", case_key=r["case_key"].rsplit("|r", 1)[0]) for r in _rows("A", rng, rounds=1)]
    table = compare(_cases(once), _cases(_rows("B", rng, slow={"a": 2.0})))
    assert (table["change"] == TOO_FEW).all()


def test_paired_ratios_cancel_drift_common_to_a_round():
    rng = np.random.default_rng(7)
    drift = {r: f for r, f in zip(range(1, 7), (0.7, 1.4, 1.0, 1.25, 0.8, 1.3))}  # wild, shared by the round
    cases = _cases(_rows("A", rng, slow={"b": 0.5}, drift=drift))
    # speed-up of b over a: time_a / time_b = 2 in every round
    r = ratios(cases.assign(base_label=cases["label"]), baseline="a")
    b = r[r["label"] == "b"]
    assert ((b["speedup_lo"] <= 2.0) & (2.0 <= b["speedup_hi"])).sum() >= 4  # 97 % each, over 5 grids
    assert (b["speedup_hi"] - b["speedup_lo"]).max() < 0.3  # tight: the round's drift cancelled
    # unpaired, the same data say far less: the medians' own CIs span the drift
    ca, cb = (cases[cases["label"] == x].set_index("height") for x in ("a", "b"))
    assert ((ca["time_ms_ci_hi"] / cb["time_ms_ci_lo"]) - (ca["time_ms_ci_lo"] / cb["time_ms_ci_hi"])).min() > 1
    assert paired({1: 1.0, 2: 2.0}, {1: 3.0, 2: 6.0}).value == pytest.approx(3.0)


def test_machine_drift_is_said_in_words():
    rng = np.random.default_rng(8)
    a = _cases(_rows("A", rng))
    b = _cases(_rows("B", rng, slow=dict.fromkeys(LABELS, 1.9), drift=dict.fromkeys(range(1, 7), 1.9)))
    said = machine_drift(a, b)
    assert said["compute"] == pytest.approx(1.9) and "ran 1.9× slower" in said["sentence"]
    assert machine_drift(a, a)["sentence"] == ""


def test_calibration_reports_the_floor_and_the_planted_slowdown():
    rng = np.random.default_rng(9)
    rows = pd.DataFrame(_rows("cal", rng, rounds=12, slow={"c": 1.25}))
    rows.loc[rows["label"] == "c", "label"] = "planted"
    rows.loc[rows["label"] == "a", "label"] = "full"
    result = calibration(prepare(rows, replicates="rows"), planted="planted", base="full")
    assert 1.0 < result["noise_floor"] < 1.1 and result["aa_flagged"] == 0 and result["aa_cases"] == 15
    assert result["planted_cases"] == 4 and result["planted_flagged"] == 4  # grids from 64²
    assert result["planted_ratio_median"] == pytest.approx(1.25, rel=0.05)


def test_agreement_separates_the_machine_moving_from_the_cases_moving():
    """Run 2 on a machine 8 % faster in every round: its cases leave run 1's CIs, but the canaries measured the
    machine's change, and divided by it run 2 sits inside them; an A/A pair on a steady machine is inside both ways."""
    from attnbench.report.analysis.agreement import agreement

    rng = np.random.default_rng(10)
    one = _cases(_rows("A", rng, noise=0.01, rounds=8))
    faster = {r: 1 / 1.08 for r in range(1, 9)}
    rows = _rows("B", rng, drift=faster, noise=0.01, rounds=8)
    for row in rows:
        row["speed_memory_ms"] /= 1.08
    moved = agreement(one, _cases(rows))
    assert moved["machine_factor"] == pytest.approx(1 / 1.08)
    assert moved["inside"] <= moved["with_ci"] // 4 and moved["inside_adjusted"] >= 0.9 * moved["with_ci"]
    steady = agreement(one, _cases(_rows("C", rng, noise=0.01, rounds=8)))
    assert steady["inside"] == steady["inside_adjusted"] >= 0.85 * steady["with_ci"]  # ~96 % expected over 8
