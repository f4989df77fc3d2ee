"""The scaling tables behind the cost figures, as :class:`~attnbench.report.analysis.table.Table` objects: fitted
exponents, local slopes, achieved vs roofline, frontier, crossover N* and ratios to the baseline, each with a note
saying what its numbers are computed over. ``scaling.md`` and the HTML report both render these objects."""

from __future__ import annotations

import json

import numpy as np
import pandas as pd

from attnbench.report.analysis.attainable import roofline_fraction
from attnbench.report.analysis.fits import WIN_MARGIN, crossovers, frontiers, memory_floor, ratios, scaling_fits
from attnbench.report.analysis.frame import baseline_label, machine_line
from attnbench.report.analysis.table import Table
from attnbench.store.status import Status

__all__ = ["grid_name", "recorded_roofline", "scaling_notes", "scaling_tables", "side"]


def _table(title: str, frame: pd.DataFrame, note: str = "", key: str = "") -> Table:
    """A table of display strings (the scaling tables pivot grids into columns, so cells are text already)."""
    return Table.of_text(key, title, [str(c) for c in frame.columns], frame.astype(str).values.tolist(), note)


def side(tokens: int) -> str:
    """``16384`` → ``128²`` (square grids), else the token count."""
    s = int(round(np.sqrt(tokens)))
    return f"{s}²" if s * s == tokens else str(tokens)


def grid_name(tokens: int | None) -> str:
    if tokens is None or pd.isna(tokens):
        return "never"
    tokens = int(tokens)
    s = int(round(np.sqrt(tokens)))
    return f"{tokens} ({s}²)" if s * s == tokens else str(tokens)


def _frame(columns: list[str], rows: list[list[str]]) -> pd.DataFrame:
    return pd.DataFrame(rows, columns=columns)


def _fits(df: pd.DataFrame, min_tokens: int) -> list[Table]:
    fits = scaling_fits(df, min_tokens)
    floors = ", ".join(f"{mode} {f:.2f} MiB" for (_, mode, _), f in memory_floor(df).items())
    rows = []
    for _, r in fits.iterrows():
        t, m = r["time_exp"], r["mem_exp"]
        rows.append([r["mode"], r["label"], str(t or "n/a"), str(m or "n/a"), str(t.points if t else 0),
                     f"{t.n_min}–{t.n_max}" if t else ""])
    if fits.empty:
        rows.append(["", f"no mechanism has two or more grids with N ≥ {min_tokens}", "", "", "", ""])
    exps = _table("Fitted exponents", _frame(["mode", "attention", "time b", "memory b", "points", "N range"], rows),
                 f"y ∝ N^b, least squares on log-log over the top decade of N that ran, N ≥ {min_tokens}, in the "
                 "regime of the largest grid (one block size, one level structure); ± is the half-width of a 95 % "
                 "bootstrap interval — over the processes (replicated runs) or timing blocks for time, over the "
                 "points for "
                 f"memory; memory is fitted after subtracting the first-call floor: {floors or 'none'}", "exponents")
    slopes = [[r["mode"], r["label"], ", ".join(f"{side(a)}→{side(b)}: {v:.2f}" for a, b, v in r["time_slopes"])]
              for _, r in fits.iterrows()]
    local = _table("Local time slopes", _frame(["mode", "attention", "slopes (N → N': b)"], slopes),
                  "between consecutive grids: where the asymptotic exponent sets in", "slopes")
    return [exps, local]


def recorded_roofline(df: pd.DataFrame) -> dict | None:
    """The roofline recorded with the rows (``runtime`` JSON), or ``None``."""
    for r in df["runtime"]:
        if isinstance(r, str) and r and json.loads(r).get("roofline"):
            return json.loads(r)["roofline"]
    return None


def _roofline(df: pd.DataFrame) -> list[Table]:
    ok = df[(df["status"] == Status.OK) & df["flops"].notna()].copy()
    if ok.empty:
        return []
    ok["fraction"] = [roofline_fraction(r) for r in ok.to_dict("records")]
    roof = recorded_roofline(ok)
    head = ("no roofline measured on this machine yet (`attnbench roofline`)" if roof is None else
            f"roofline: {', '.join(f'{k} {v / 1e9:.1f} GFLOP/s' for k, v in roof['peak_flops'].items())}, copy "
            f"{roof['copy_bytes_per_s'] / 1e9:.1f} GB/s; attainable = min(peak, bandwidth × FLOPs/byte)")
    grids = sorted({int(t) for t in ok["tokens"]})
    rows = []
    for (mode, label), g in ok.groupby(["mode", "label"], sort=False):
        cells = []
        for t in grids:
            hit = g[g["tokens"] == t]
            if hit.empty:
                cells.append("")
                continue
            r = hit.iloc[0]
            frac = "" if pd.isna(r["fraction"]) else f" ({100 * r['fraction']:.1f} %)"
            cells.append(f"{r['gflops_per_s']:.3g}{frac}")
        rows.append([mode, label, *cells])
    return [_table("Achieved vs roofline", _frame(["mode", "attention", *map(side, grids)], rows),
                  "GFLOP/s from the mechanism's FLOP formula / median time; % of attainable; " + head, "roofline")]


def _crossings(df: pd.DataFrame, base: str) -> list[Table]:
    cross = crossovers(df, base)
    out = [_table(f"Crossover N* against `{base}`",
                 _frame(["mode", "attention", "N*"],
                        [[r["mode"], r["label"], grid_name(r["n_star"])] for _, r in cross.iterrows()]),
                 f"faster beyond the noise at every larger grid: 95 % CIs of the medians apart, or ≥ {WIN_MARGIN}× "
                 f"without CIs; a failure where `{base}` ran is a loss", "crossover")]
    for mode, g in ratios(df, base).groupby("mode", sort=False):
        grids = sorted({(int(h), int(w)) for h, w in zip(g["height"], g["width"])}, key=lambda x: x[0] * x[1])
        rows = []
        for label, gl in g.groupby("label", sort=False):
            cells = []
            for h, w in grids:
                hit = gl[(gl["height"] == h) & (gl["width"] == w)]
                if hit.empty:
                    cells.append("")
                    continue
                x = hit.iloc[0]
                ci = f" [{x['speedup_lo']:.3g}–{x['speedup_hi']:.3g}]" if pd.notna(x["speedup_lo"]) else ""
                cells.append(f"{x['speedup']:.3g}×{ci} / {x['mem_ratio']:.3g}")
            rows.append([label, *cells])
        out.append(_table(f"{mode}: speed-up and memory ratio vs `{base}`",
                         _frame(["attention", *(f"{h}x{w}" for h, w in grids)], rows),
                         f"time_{base} / time (replicated runs: paired within each round, median over rounds "
                         f"[95 % CI over rounds]); peak / peak_{base}", f"ratios-{mode}"))
    return out


def scaling_notes(df: pd.DataFrame) -> list[str]:
    """What the cost numbers of ``df`` are: machine and configuration, what a time is computed over, machine load."""
    first = df.iloc[0]
    notes = [f"{machine_line(df)}; dtype {first.get('dtype', '')}, batch {first.get('batch', '')}, C = "
             f"{first.get('dim', '')}, heads = {first.get('heads', '')}; memory counter `{first.get('mem_kind', '')}`."]
    ok = df[df["status"] == Status.OK]
    reps = ok["replicates"].dropna() if "replicates" in ok else pd.Series(dtype=float)
    if len(reps):
        notes.append(f"Replicated: each case measured in {int(reps.min())}–{int(reps.max())} separate processes, one "
                     "per round, rounds interleaved over the suite in a shuffled, seeded order. A time is the median "
                     "of the per-process medians; its 95 % CI the order-statistic interval over the process medians "
                     "(none below 6 processes); ratios between mechanisms are paired within each round.")
        steal = ok["cpu_steal_pct"].dropna()
        if len(steal):
            notes.append(f"CPU steal during cases: at most {steal.max():.2g} %; compute canary (256² matmul) "
                         f"{ok['speed_compute_ms'].min():.3g}–{ok['speed_compute_ms'].max():.3g} ms over the rounds.")
    if ok["time_n"].notna().any():
        blocks, per = ok["time_n"].dropna(), ok["time_calls_per_block"].dropna()
        notes.append(f"Times: median per call over timing blocks ({int(blocks.min())}–{int(blocks.max())} blocks per "
                     "case" + (f", {int(per.min())}–{int(per.max())} calls per block" if len(per) else "")
                     + "; each block is the mean of its calls, so single-call spread is not observed).")
    if df["load_start"].notna().any():
        loads = pd.concat([df["load_start"], df["load_end"]]).dropna()
        notes.append(f"Machine load (1-min load average) at case start/end: {loads.min():.2f}–{loads.max():.2f}.")
    return notes


def scaling_tables(df: pd.DataFrame, min_tokens: int = 1024, baseline: str | None = None) -> list[Table]:
    """Exponents, local slopes, achieved vs roofline, frontier, crossover N* and ratios of the cost rows ``df``."""
    front = frontiers(df)
    tables = _fits(df, min_tokens) + _roofline(df)
    tables.append(_table("Frontier (largest grid that completed)",
                        _frame(["mode", "attention", "largest ok", "first failure"],
                               front[["mode", "label", "largest_ok", "first_failure"]].values.tolist()),
                        key="frontier"))
    base = baseline or baseline_label(df)
    if base is not None:
        tables += _crossings(df, base)
    return tables
