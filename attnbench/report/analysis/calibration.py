"""This machine's A/A noise floor and the statistics' power, from one interleaved calibration run
(``attnbench calibrate``: ``suites/calibrate.toml``, every case in 12 rounds).

The odd rounds and the even rounds are two replicate sets of the same code measured in the same time window
(interleaved, so drift hits both alike): comparing them case by case with :func:`~.compare.compare` is an A/A
comparison, and its spread is the machine's noise floor — the ratio that two runs of unchanged code reach 95 % of
the time. The suite also measures a planted slowdown (``planted_full``: ``full`` doing 1.25× its attention work);
``full``'s odd rounds against the planted layer's even rounds is a known 1.25× change, and the share of its grids
(≥ 64²) that compare flags is the power. The unchanged cases beside it must stay unflagged.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import pandas as pd

from attnbench.report.analysis.compare import compare
from attnbench.report.analysis.replicates import collapse

__all__ = ["FLOOR_QUANTILE", "POWER_MIN_TOKENS", "calibration"]

FLOOR_QUANTILE = 0.95  # the A/A ratio (either way) that unchanged code stays within
POWER_MIN_TOKENS = 64 * 64  # the power target counts grids from 64² (smaller ones are overhead-bound)


def _half(rows: pd.DataFrame, parity: int) -> pd.DataFrame:
    rounds = pd.to_numeric(rows["replicate"], errors="coerce")
    return collapse(rows[rounds % 2 == parity])


def calibration(rows: pd.DataFrame, planted: str, base: str) -> dict[str, Any]:
    """Noise floor, A/A flag rate and planted-slowdown power from the replicate rows (one row per process) of a
    calibration run; ``planted`` / ``base`` are the labels of the planted layer and the layer it slows down."""
    rows = rows[rows["kind"] == "cost"]
    odd, even = _half(rows, 1), _half(rows, 0)
    unchanged = compare(odd[odd["label"] != planted], even[even["label"] != planted])
    ok = unchanged.dropna(subset=["ratio"])
    spread = np.maximum(ok["ratio"], 1 / ok["ratio"])
    floor = float(np.quantile(spread, FLOOR_QUANTILE)) if len(spread) else float("nan")
    # the planted layer's even rounds in the base layer's configuration: the same case, 1.25× the work
    slowed = even[even["label"] == planted].copy()
    base_ids = odd[odd["label"] == base].set_index(["mode", "height", "width"])["config_id"]
    slowed["config_id"] = [base_ids.get((m, h, w), "") for m, h, w in zip(slowed["mode"], slowed["height"],
                                                                            slowed["width"])]
    power = compare(odd[odd["label"] == base], slowed, floor=floor)
    power = power[(power["tokens"] >= POWER_MIN_TOKENS) & power["ratio"].notna()]
    aa = compare(odd[odd["label"] != planted], even[even["label"] != planted], floor=floor)
    flagged = aa["change"].isin(["slower", "faster"])
    return {
        "noise_floor": floor, "floor_quantile": FLOOR_QUANTILE,
        "aa_cases": int(len(ok)), "aa_flagged": int(flagged.sum()),
        "aa_ratio_median": float(ok["ratio"].median()) if len(ok) else float("nan"),
        "planted_cases": int(len(power)), "planted_flagged": int((power["change"] == "slower").sum()),
        "planted_ratio_median": float(power["ratio"].median()) if len(power) else float("nan"),
        "planted_min_tokens": POWER_MIN_TOKENS,
        "replicates_per_set": int(pd.to_numeric(rows["replicate"], errors="coerce").max() // 2),
        "aa": aa[["label", "mode", "grid", "ratio", "p", "change"]].to_dict("records"),
        "planted": power[["label", "mode", "grid", "ratio", "p", "change"]].to_dict("records"),
    }
