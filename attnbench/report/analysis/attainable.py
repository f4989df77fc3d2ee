"""Where a case sits on its machine's roofline, from the row alone (FLOPs, bytes, time, the recorded roofline)."""

from __future__ import annotations

import json
from typing import Any

import numpy as np

__all__ = ["attainable", "roofline_fraction"]


def attainable(roofline: dict[str, Any], dtype: str, flops: float, moved: float) -> float | None:
    """Attainable FLOP/s for ``flops`` of work over ``moved`` bytes: ``min(peak, bandwidth × FLOPs/byte)``."""
    peak = roofline.get("peak_flops", {}).get(dtype)
    bandwidth = roofline.get("copy_bytes_per_s")
    if not peak or not bandwidth or not flops or not moved:
        return None
    return min(peak, bandwidth * flops / moved)


def roofline_fraction(row: dict[str, Any]) -> float:
    """Achieved FLOP/s over attainable FLOP/s for one result row; nan without FLOPs, time or a recorded roofline."""
    try:
        roof = json.loads(row.get("runtime") or "{}").get("roofline")
    except ValueError:
        roof = None
    if not roof or not row.get("flops") or not row.get("time_ms_median"):
        return float("nan")
    best = attainable(roof, str(row.get("dtype")), float(row["flops"]), float(row.get("bytes") or 0))
    if not best:
        return float("nan")
    return float(row["flops"]) / (float(row["time_ms_median"]) / 1e3) / best if np.isfinite(best) else float("nan")
