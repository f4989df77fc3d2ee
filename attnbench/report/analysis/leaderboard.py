"""The cost leaderboard: per suite, mode and grid, every mechanism that ran, ranked by time and by memory.

One row per mechanism: the median time per call with its 95 % CI, the factor to the fastest, the peak memory, the
FLOPs of one call (the mechanism's formula), the achieved GFLOP/s and its fraction of the machine's recorded
roofline (:func:`~attnbench.report.analysis.attainable.roofline_fraction`), the rank by time (1 = fastest) and the
rank by memory (1 = least). A rank is an order, not a difference: where the CI of a mechanism's median overlaps the
CI of the one ranked just above it, the row says *tied with above*.

:func:`leaderboard_grids` picks the grids the report's summary shows; :func:`leaderboard_tables` gives every grid.
Pure: rows in, :class:`~attnbench.report.analysis.table.Table` objects out.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import pandas as pd

from attnbench.report.analysis.attainable import roofline_fraction
from attnbench.report.analysis.scaling import side
from attnbench.report.analysis.table import Column, Table
from attnbench.store.status import Status

__all__ = ["NO_CI", "SUMMARY_SHARE", "TIED", "cost_leaderboard", "grid_label", "leaderboard_grids",
           "leaderboard_table", "leaderboard_tables", "summary_leaderboards"]

# What the "vs above" column says: the two CIs overlap (no measured difference), or one of them is missing.
TIED, NO_CI = "tied with above", "no CI"
# The summary's grids must have been run by at least this share of the mode's mechanisms (see leaderboard_grids).
SUMMARY_SHARE = 0.75


def grid_label(height: int, width: int) -> str:
    """``128²`` for a square grid, ``64x128`` otherwise."""
    return side(height * width) if height == width else f"{height}x{width}"


def _tie(lo_above: float, hi_above: float, lo: float, hi: float) -> bool | None:
    """Whether two 95 % CIs overlap; ``None`` when either is missing (the order is then unchecked)."""
    if not all(np.isfinite(v) for v in (lo_above, hi_above, lo, hi)):
        return None
    return bool(max(lo_above, lo) <= min(hi_above, hi))


def _newest(rows: pd.DataFrame) -> pd.DataFrame:
    """One row per label: the newest, where several runs of one suite measured the same case."""
    order = rows.sort_values("timestamp", kind="stable") if "timestamp" in rows else rows
    return order.drop_duplicates("label", keep="last")


def cost_leaderboard(cost: pd.DataFrame, mode: str, height: int, width: int) -> pd.DataFrame:
    """The leaderboard of the cost rows ``cost`` (one suite) in ``mode`` at the grid ``height`` × ``width``.

    Columns: ``label``, ``family``, ``time_ms_median``, ``time_ms_ci_lo``/``hi``, ``vs_fastest`` (time / the
    fastest time), ``rank`` (by median time, 1 = fastest; consecutive integers), ``tied_above`` (``True``: the CIs
    of this median and the one ranked just above overlap; ``False``: they are apart; ``None``: either has no CI, or
    rank 1), ``peak_mib``, ``mem_kind``, ``mem_rank`` (by peak, 1 = least; equal peaks share a rank; ``None``
    without a peak), ``flops``, ``gflops_per_s`` and ``roofline_fraction`` (nan without FLOPs or a recorded
    roofline). Only the mechanisms that ran (status ok), fastest first.
    """
    at = cost[(cost["kind"] == "cost") & (cost["mode"] == mode) & (cost["height"] == height)
              & (cost["width"] == width) & (cost["status"] == Status.OK)]
    at = _newest(at).sort_values(["time_ms_median", "label"], kind="stable").reset_index(drop=True)
    records: list[dict[str, Any]] = []
    for i, r in enumerate(at.to_dict("records")):
        lo, hi = float(r.get("time_ms_ci_lo", np.nan)), float(r.get("time_ms_ci_hi", np.nan))
        above = records[-1] if records else None
        family = r.get("family")
        records.append({
            "label": r["label"], "family": family if isinstance(family, str) else "",
            "time_ms_median": float(r["time_ms_median"]),
            "time_ms_ci_lo": lo, "time_ms_ci_hi": hi, "rank": i + 1,
            "tied_above": None if above is None else _tie(above["time_ms_ci_lo"], above["time_ms_ci_hi"], lo, hi),
            "peak_mib": float(r["peak_mib"]), "mem_kind": r.get("mem_kind") or "",
            "flops": float(r["flops"]), "gflops_per_s": float(r["gflops_per_s"]),
            "roofline_fraction": roofline_fraction(r),
        })
    board = pd.DataFrame(records, columns=["label", "family", "time_ms_median", "time_ms_ci_lo", "time_ms_ci_hi",
                                           "rank", "tied_above", "peak_mib", "mem_kind", "flops", "gflops_per_s",
                                           "roofline_fraction"])
    board["vs_fastest"] = board["time_ms_median"] / board["time_ms_median"].min() if len(board) else []
    # equal peaks share a rank ("min"): two mechanisms that needed the same memory are not ordered by the sort
    ranks = board["peak_mib"].rank(method="min")
    board["mem_rank"] = [None if pd.isna(x) else int(x) for x in ranks]
    return board


def _time_text(r: dict[str, Any]) -> str:
    ci = (f" [{r['time_ms_ci_lo']:.3g}–{r['time_ms_ci_hi']:.3g}]"
          if np.isfinite(r["time_ms_ci_lo"]) and np.isfinite(r["time_ms_ci_hi"]) else "")
    return f"{r['time_ms_median']:.3g}{ci}"


def _vs_above(r: dict[str, Any]) -> str:
    tied = r["tied_above"]
    if r["rank"] == 1:
        return ""
    if isinstance(tied, (bool, np.bool_)):
        return TIED if tied else ""
    return NO_CI  # None (or nan once in a frame): a CI is missing


LEADERBOARD_COLUMNS = (
    Column("rank", "time rank", ".0f"), Column("tied_above", "vs the one above", _vs_above, sort="rank"),
    Column("label", "attention"), Column("family", "family"),
    Column("time_ms_median", "median ms [95 % CI]", _time_text), Column("vs_fastest", "× fastest", ".3g"),
    Column("peak_mib", "peak MiB", ".3g"), Column("mem_rank", "memory rank", ".0f"),
    Column("gflop", "GFLOP per call", ".3g"), Column("gflops_per_s", "GFLOP/s", ".3g"),
    Column("roofline_pct", "% of roofline", ".2g"),
)


def _not_run(cost: pd.DataFrame, mode: str, height: int, width: int, ran: set[str]) -> str:
    """"label (status)" for the mode's mechanisms that have a row at the grid but no number."""
    at = cost[(cost["mode"] == mode) & (cost["height"] == height) & (cost["width"] == width)]
    missed = _newest(at[~at["label"].isin(ran)])
    return ", ".join(f"{r['label']} ({Status(r['status']).short})" for _, r in missed.iterrows())


def leaderboard_table(suite: str, cost: pd.DataFrame, mode: str, height: int, width: int) -> Table:
    """:func:`cost_leaderboard` as a :class:`Table` (key ``<suite>-cost-leaderboard-<mode>-<H>x<W>``)."""
    board = cost_leaderboard(cost, mode, height, width)
    kinds = ", ".join(sorted(set(board["mem_kind"]) - {""})) or "none recorded"
    records = [{**r, "gflop": r["flops"] / 1e9, "roofline_pct": 100 * r["roofline_fraction"]}
               for r in board.to_dict("records")]
    missed = _not_run(cost, mode, height, width, set(board["label"]))
    note = (f"every mechanism that ran at this grid, fastest first; time rank by the median per call, with its "
            f"95 % CI (over processes in replicated runs, else over timing blocks); \"{TIED}\": the CIs of this "
            f"median and the one ranked just above overlap, so their order is not a measured difference; "
            f"\"{NO_CI}\": one of the two has no CI, so the order is unchecked; memory rank by peak ({kinds}; "
            "equal peaks share a rank); GFLOP from the mechanism's formula; % of roofline: achieved FLOP/s over "
            "min(peak, bandwidth × FLOPs/byte) of the roofline recorded with the rows"
            + (f"; no number here: {missed}" if missed else ""))
    return Table(f"{suite}-cost-leaderboard-{mode}-{height}x{width}",
                 f"{suite}: {mode} leaderboard at {grid_label(height, width)}", LEADERBOARD_COLUMNS,
                 tuple(records), note, "No mechanism ran at this grid.")


def _grids(cost: pd.DataFrame, mode: str) -> list[tuple[int, int]]:
    """Every grid of ``mode`` with a row, smallest first."""
    rows = cost[(cost["kind"] == "cost") & (cost["mode"] == mode)].dropna(subset=["height", "width"])
    grids = {(int(h), int(w)) for h, w in zip(rows["height"], rows["width"])}
    return sorted(grids, key=lambda g: (g[0] * g[1], g))


def leaderboard_grids(cost: pd.DataFrame, mode: str, count: int = 2, share: float = SUMMARY_SHARE
                      ) -> list[tuple[int, int]]:
    """The ``count`` largest grids of ``mode`` at which at least ``share`` of the mode's mechanisms ran, smallest
    first.

    The largest grids are where the asymptotic order of the mechanisms shows; but a leaderboard at a grid where
    most mechanisms ran out of time or memory ranks only the survivors (the frontier table says who failed). With
    no grid reaching ``share``, the one where the most ran.
    """
    rows = cost[(cost["kind"] == "cost") & (cost["mode"] == mode)]
    total = rows["label"].nunique()
    ran = {g: rows[(rows["height"] == g[0]) & (rows["width"] == g[1]) & (rows["status"] == Status.OK)]
           ["label"].nunique() for g in _grids(cost, mode)}
    eligible = [g for g, n in ran.items() if n > 0 and n >= share * total]
    if not eligible:
        best = max(ran.values(), default=0)
        eligible = [g for g, n in ran.items() if n == best and n > 0][-1:]
    return eligible[-count:]


def leaderboard_tables(suite: str, cost: pd.DataFrame) -> list[Table]:
    """The leaderboard of every mode and grid of the cost rows ``cost`` (one suite), modes in order of
    appearance, grids smallest first."""
    cost = cost[cost["kind"] == "cost"]
    return [leaderboard_table(suite, cost, str(mode), h, w)
            for mode in dict.fromkeys(cost["mode"]) for h, w in _grids(cost, str(mode))]


def summary_leaderboards(suite: str, cost: pd.DataFrame) -> list[Table]:
    """The leaderboards the summary opens with: per mode, at the grids :func:`leaderboard_grids` picks."""
    cost = cost[cost["kind"] == "cost"]
    return [leaderboard_table(suite, cost, str(mode), h, w)
            for mode in dict.fromkeys(cost["mode"]) for h, w in leaderboard_grids(cost, str(mode))]
