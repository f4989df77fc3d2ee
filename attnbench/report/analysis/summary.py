"""The answer first: the report's opening tables, from the same analyses as the detailed sections below them.

Per cost suite: the within-run speed-ups against the baseline (paired within rounds, the quantity that survives a
machine's drift), the fitted exponents with their CIs and local slopes, the crossover against the baseline, per
grid the fastest and the least-memory mechanism, and the cost leaderboards (time with its CI and tie marks, memory,
FLOPs, roofline fraction, ranks) at the two largest grids most mechanisms ran
(:func:`~attnbench.report.analysis.leaderboard.leaderboard_grids`). Per accuracy suite: a leaderboard per task and
budget (trained at the grid, best first, with the mean's 95 % CI). And the claims' verdicts, where the paper's
mechanism is in the rows.
"""

from __future__ import annotations

import pandas as pd

from attnbench.report.analysis.accuracy import LOWER_IS_BETTER, accuracy_table
from attnbench.report.analysis.claims import MECH, claims_table
from attnbench.report.analysis.fits import crossovers, ratios, scaling_fits
from attnbench.report.analysis.frame import baseline_label
from attnbench.report.analysis.leaderboard import summary_leaderboards
from attnbench.report.analysis.scaling import grid_name, side
from attnbench.report.analysis.table import Column, Table, mean_std
from attnbench.store.status import Status

__all__ = ["best_per_grid", "leaderboard", "summary_tables"]


def _exponents(suite: str, cost: pd.DataFrame, min_tokens: int, baseline: str | None) -> Table:
    fits = scaling_fits(cost, min_tokens)
    base = baseline or baseline_label(cost)
    cross = crossovers(cost, base) if base else pd.DataFrame()
    n_star = {(r["mode"], r["label"]): r["n_star"] for _, r in cross.iterrows()} if len(cross) else {}
    records = [{"mode": r["mode"], "label": r["label"], "time": str(r["time_exp"] or "n/a"),
                "memory": str(r["mem_exp"] or "n/a"),
                "range": f"{side(r['time_exp'].n_min)}–{side(r['time_exp'].n_max)}" if r["time_exp"] else "",
                "slopes": ", ".join(f"{v:.2f}" for _, _, v in r["time_slopes"]),
                "n_star": "baseline" if r["label"] == base else grid_name(n_star.get((r["mode"], r["label"])))}
               for _, r in fits.iterrows()]
    return Table(f"{suite}-exponents", f"{suite}: scaling exponents and crossover",
                 (Column("mode", "mode"), Column("label", "attention"), Column("time", "time b"),
                  Column("memory", "memory b"), Column("range", "grids fitted"),
                  Column("slopes", "local time slopes, grid to grid"),
                  Column("n_star", f"faster than `{base}` from N*")),
                 tuple(records), f"time ∝ N^b and (peak − floor) ∝ N^b over the top decade of N ≥ {min_tokens} in one "
                 "regime (one block size, one level structure), ± the half-width of a 95 % bootstrap interval (over "
                 "the processes of replicated runs); local slopes between consecutive grids; N*: beyond the noise "
                 "at every larger grid (details below)",
                 "No mechanism ran at two or more grids.")


def _speedups(suite: str, cost: pd.DataFrame, baseline: str | None) -> Table | None:
    """Speed-up against the baseline per grid: paired within rounds with the CI over rounds (replicated runs), else
    the ratio of the two medians — the within-run quantity that survives a machine's drift."""
    base = baseline or baseline_label(cost)
    r = ratios(cost, base) if base else pd.DataFrame()
    if r.empty:
        return None
    grids = sorted({int(t) for t in r["tokens"]})
    records = []
    for (mode, label), g in r.groupby(["mode", "label"], sort=False):
        if label == base:
            continue
        row: dict[str, object] = {"mode": mode, "label": label}
        for _, x in g.iterrows():
            ci = f" [{x['speedup_lo']:.3g}–{x['speedup_hi']:.3g}]" if pd.notna(x["speedup_lo"]) else ""
            row[side(int(x["tokens"]))] = f"{x['speedup']:.3g}×{ci}"
        records.append(row)
    columns = (Column("mode", "mode"), Column("label", "attention"), *(Column(side(g), side(g)) for g in grids))
    return Table(f"{suite}-speedups", f"{suite}: speed-up against `{base}`, paired within rounds", columns,
                 tuple(records), f"time of `{base}` / time, per round, median over rounds [95 % CI over rounds]; "
                 "no CI: measured once (ratio of medians)")


def best_per_grid(cost: pd.DataFrame) -> pd.DataFrame:
    """Per mode and grid: the fastest mechanism (median time) and the one with the least peak memory, among those
    that ran."""
    ok = cost[(cost["status"] == Status.OK) & (cost["kind"] == "cost")]
    rows = []
    for (mode, tokens), g in ok.groupby(["mode", "tokens"], sort=True):
        fast = g.loc[g["time_ms_median"].idxmin()]
        mem = g.dropna(subset=["peak_mib"])
        small = mem.loc[mem["peak_mib"].idxmin()] if len(mem) else None
        rows.append({"mode": mode, "tokens": int(tokens), "grid": f"{int(fast['height'])}x{int(fast['width'])}",
                     "fastest": fast["label"], "time_ms": fast["time_ms_median"], "ran": len(g),
                     "least_memory": "" if small is None else small["label"],
                     "peak_mib": float("nan") if small is None else small["peak_mib"]})
    return pd.DataFrame(rows)


def _best(suite: str, cost: pd.DataFrame) -> Table:
    best = best_per_grid(cost)
    return Table(f"{suite}-best", f"{suite}: fastest and least memory per grid",
                 (Column("mode", "mode"), Column("grid", "grid", sort="tokens"), Column("fastest", "fastest"),
                  Column("time_ms", "its median ms", ".3g"), Column("least_memory", "least memory"),
                  Column("peak_mib", "its peak MiB", ".3g"), Column("ran", "mechanisms that ran", "d")),
                 tuple(best.to_dict("records")), "among the mechanisms that completed at that grid")


def leaderboard(acc: pd.DataFrame) -> pd.DataFrame:
    """Trained-at-grid rows per task and budget, best mean first, with a rank (1 = best)."""
    table = accuracy_table(acc)
    trained = table[table["mode"] == "trained"].copy()
    parts = []
    for _, g in trained.groupby(["task", "budget", "train_res"], sort=False):
        lower = LOWER_IS_BETTER.get(g["metric"].iloc[0], False)
        g = g.sort_values("value", ascending=lower).copy()
        g["rank"] = range(1, len(g) + 1)
        parts.append(g)
    return pd.concat(parts, ignore_index=True) if parts else trained.assign(rank=[])


def _leaderboard(suite: str, acc: pd.DataFrame) -> Table:
    board = leaderboard(acc)
    return Table(f"{suite}-leaderboard", f"{suite}: accuracy leaderboard",
                 (Column("task", "task"), Column("budget", "budget"), Column("rank", "rank", "d"),
                  Column("label", "attention"), Column("metric", "metric"),
                  Column("value", "mean ± std", lambda r: mean_std(r["value"], r["std"])),
                  Column("ci95", "± 95 % CI", ".2g"), Column("seeds", "seeds", "d")),
                 tuple(board.to_dict("records")),
                 "trained and evaluated at the training grid; best first; a rank is not a significant difference — "
                 "the pairwise tests below say which differences the seeds support")


def summary_tables(df: pd.DataFrame, min_tokens: int = 1024, baseline: str | None = None) -> list[Table]:
    """The report's opening tables for the rows ``df`` (every suite in it)."""
    out = []
    for suite, g in df.groupby("suite", sort=False):
        cost, acc = g[g["kind"] == "cost"], g[g["kind"] == "accuracy"]
        if len(cost):
            speedups = _speedups(str(suite), cost, baseline)
            out += [t for t in (speedups, _exponents(str(suite), cost, min_tokens, baseline), _best(str(suite), cost))
                    if t is not None]
            out += summary_leaderboards(str(suite), cost)
        if len(acc):
            out.append(_leaderboard(str(suite), acc))
    if (df["label"] == MECH).any():
        claims = claims_table(df).select("claim", "verdict", title="The MANO paper's claims: verdicts",
                                         note="the evidence and rules are in the claims section below")
        out.append(claims)
    return out
