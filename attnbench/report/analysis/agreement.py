"""How well one run's stated uncertainty predicts a second run of the same code: the checks behind the calibrated
timing targets (docs/measurement.md), as numbers and as a :class:`Table`.

* **A/A**: the share of cases ``compare(run1, run2)`` flags as a significant change (unchanged code: should be
  ≈ 0, at most 5 %).
* **Coverage**: the share of run 2's case estimates that fall inside run 1's stated 95 % CIs — as measured, and
  with run 2 divided by the machine's own speed change between the runs (the geometric mean of the two canary
  ratios, :func:`~.compare.machine_drift`). A CI over one run's processes describes the machine as it was during
  that run; consecutive runs of this VM differ by a machine-wide factor of a few per cent that every case shares
  (measured by the canaries, not by the cases), so the adjusted share is the one the CI can promise.
* **Mechanism ratios**: the same for the within-run paired ratios of every pair of mechanisms at each grid and
  mode (run 2's paired estimate inside run 1's paired CI).
* **Exponents**: per mechanism and mode, whether the two runs' fitted time exponents agree (their 95 % CIs
  overlap), each fitted over the grids both runs measured.
"""

from __future__ import annotations

from itertools import combinations
from typing import Any

import numpy as np
import pandas as pd

from attnbench.report.analysis.compare import compare, machine_drift
from attnbench.report.analysis.fits import measured, scaling_fits
from attnbench.report.analysis.replicates import Estimate, paired, round_medians
from attnbench.report.analysis.table import Column, Table

__all__ = ["agreement", "agreement_table"]


def _pair_ratios(df: pd.DataFrame) -> dict[tuple[str, str, str, int], Estimate]:
    """(mode, a, b, tokens) → paired estimate of time_b / time_a within rounds, for every pair of mechanisms."""
    ok = measured(df)
    out: dict[tuple[str, str, str, int], Estimate] = {}
    for (mode, tokens), g in ok.groupby(["mode", "tokens"]):
        by_label = {str(r["label"]): round_medians(r.get("replicate_medians_ms")) for _, r in g.iterrows()}
        for a, b in combinations(sorted(by_label), 2):
            if by_label[a] and by_label[b]:
                out[(str(mode), a, b, int(tokens))] = paired(by_label[a], by_label[b])
    return out


def agreement(run1: pd.DataFrame, run2: pd.DataFrame, floor: float | None = None) -> dict[str, Any]:
    """The four checks of run 2 against run 1 (both loaded as cases), with their counts."""
    table = compare(run1, run2, floor=floor)
    tested = table.dropna(subset=["ratio"])
    flagged = int(tested["change"].isin(["slower", "faster"]).sum())
    one = run1.set_index(["config_id", "height", "width"])
    factor = machine_drift(run1, run2)["factor"]
    inside, adjusted, with_ci = 0, 0, 0
    for _, r in measured(run2).iterrows():
        key = (r["config_id"], r["height"], r["width"])
        if key in one.index:
            ref = one.loc[key]
            ref = ref.iloc[0] if isinstance(ref, pd.DataFrame) else ref
            if np.isfinite(ref["time_ms_ci_lo"]) and np.isfinite(ref["time_ms_ci_hi"]):
                with_ci += 1
                inside += bool(ref["time_ms_ci_lo"] <= r["time_ms_median"] <= ref["time_ms_ci_hi"])
                if np.isfinite(factor):
                    adjusted += bool(ref["time_ms_ci_lo"] <= r["time_ms_median"] / factor <= ref["time_ms_ci_hi"])
    r1, r2 = _pair_ratios(run1), _pair_ratios(run2)
    pairs = [k for k in r1 if k in r2 and r1[k].has_ci and np.isfinite(r2[k].value)]
    ratio_inside = sum(r1[k].lo <= r2[k].value <= r1[k].hi for k in pairs)
    # Exponents over the grids both runs measured: where a case near its timeout ran in one run and timed out in
    # the other (a frontier that flipped), each run's top decade would span other grids, and two fits over
    # different ranges disagree about the range, not about the measurement.
    series = ["mode", "label", "tokens"]
    common = measured(run1)[series].merge(measured(run2)[series]).drop_duplicates()
    f1, f2 = (scaling_fits(measured(r).merge(common)) for r in (run1, run2))
    exps = []
    for _, a in f1.iterrows():
        b = f2[(f2["mode"] == a["mode"]) & (f2["label"] == a["label"])]
        if b.empty or a["time_exp"] is None or b.iloc[0]["time_exp"] is None:
            continue
        x, y = a["time_exp"], b.iloc[0]["time_exp"]
        width = (0 if np.isnan(x.ci95) else x.ci95) + (0 if np.isnan(y.ci95) else y.ci95)
        agree = abs(x.exponent - y.exponent) <= width
        exps.append({"mode": a["mode"], "label": a["label"], "run1": str(x), "run2": str(y), "agree": agree})
    return {"cases": len(tested), "flagged": flagged, "with_ci": with_ci, "inside": inside,
            "machine_factor": factor, "inside_adjusted": adjusted if np.isfinite(factor) else None,
            "pairs": len(pairs), "pairs_inside": int(ratio_inside), "exponents": exps}


def agreement_table(result: dict[str, Any]) -> Table:
    """The targets of the calibrated-timing issue as one table (measured values; the targets stated beside)."""
    def pct(a: int, b: int) -> str:
        return f"{100 * a / b:.0f} % ({a} of {b})" if b else "n/a"

    exps = result["exponents"]
    factor, adjusted = result.get("machine_factor", float("nan")), result.get("inside_adjusted")
    agree = sum(e["agree"] for e in exps)
    records = [
        {"check": "A/A: cases `compare run1 run2` flags", "target": "≤ 5 %",
         "measured": pct(result["flagged"], result["cases"])},
        {"check": "coverage: run 2's case estimates inside run 1's stated 95 % CIs, as measured", "target": "≥ 90 %",
         "measured": pct(result["inside"], result["with_ci"])},
        {"check": f"coverage, run 2 divided by the machine's speed change (canaries: ×{factor:.3f})",
         "target": "≥ 90 %", "measured": "n/a (no canaries)" if adjusted is None else pct(adjusted, result["with_ci"])},
        {"check": "mechanism ratios: run 2's paired ratios inside run 1's 95 % CIs", "target": "≥ 90 %",
         "measured": pct(result["pairs_inside"], result["pairs"])},
        {"check": "exponents: fitted time exponents of runs 1 and 2 agree within their CIs", "target": "all",
         "measured": pct(agree, len(exps))},
    ]
    return Table("agreement", "Run 2 against run 1's stated uncertainty",
                 (Column("check", "check"), Column("target", "target"), Column("measured", "measured")),
                 tuple(records))
