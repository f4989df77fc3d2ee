"""Console tables of a run: rows = mechanism, columns = grid, cells = median ms and peak MiB."""

from __future__ import annotations

import statistics
from typing import Any

import pandas as pd

from attnbench.report.analysis.compare import ALPHA, NOISE, THRESHOLD, TOO_FEW
from attnbench.store.schema import series_label
from attnbench.store.status import Status

__all__ = ["comparison_summary", "print_accuracy_comparison", "print_comparison", "print_summary"]


def print_summary(rows: list[dict[str, str]], console: Any = None, suite: str | None = None,
                  fmt: str = "table") -> None:
    """Cost rows of ``suite`` as one table per mode (``fmt="table"``; failures marked), or one line per case as
    ``csv`` / ``json`` on stdout (for other programs). Rows of other kinds are ignored."""
    from rich.console import Console
    from rich.table import Table

    console = console or Console()
    rows = [r for r in rows if r.get("kind", "cost") == "cost" and (suite is None or r.get("suite") == suite)]
    if fmt in ("csv", "json"):
        _print_records([{k: r.get(k, "") for k in _RECORD} | {"label": series_label(r)} for r in rows], fmt)
        return
    for mode in sorted({r["mode"] for r in rows}):
        sub = [r for r in rows if r["mode"] == mode]
        grids = sorted({(int(r["height"]), int(r["width"])) for r in sub}, key=lambda g: (g[0] * g[1], g))
        sub = [{**r, "label": series_label(r)} for r in sub]
        labels = list(dict.fromkeys(r["label"] for r in sub))
        table = Table(title=f"{suite or ''} {mode}: median ms / peak MiB ({sub[0].get('mem_kind') or 'n/a'})")
        table.add_column("attention")
        for h, w in grids:
            table.add_column(f"{h}x{w}", justify="right")
        for label in labels:
            cells = []
            for h, w in grids:
                match = [r for r in sub if r["label"] == label and int(r["height"]) == h and int(r["width"]) == w]
                cells.append(_cell(_over_replicates(match)) if match else "")
            table.add_row(label, *cells)
        console.print(table)


def _over_replicates(rows: list[dict[str, str]]) -> dict[str, str]:
    """One cell's row: the row itself, or for a replicated case the median over the processes that measured."""
    ok = [r for r in rows if r["status"] == Status.OK]
    if len(rows) == 1 or not ok:
        return rows[-1]
    def median(col: str) -> str:
        values = sorted(float(r[col]) for r in ok if r.get(col) not in (None, ""))
        return str(statistics.median(values)) if values else ""
    return {**ok[0], "time_ms_median": median("time_ms_median"), "peak_mib": median("peak_mib")}


_RECORD = ("suite", "mode", "label", "height", "width", "status", "time_ms_median", "time_ms_q1", "time_ms_q3",
           "peak_mib", "mem_kind", "reason")


def _print_records(records: list[dict[str, str]], fmt: str) -> None:
    import csv
    import json
    import sys

    if fmt == "json":
        print(json.dumps(records, indent=1))
        return
    writer = csv.DictWriter(sys.stdout, fieldnames=list(_RECORD), lineterminator="\n")
    writer.writeheader()
    writer.writerows(records)


def _cell(r: dict[str, str]) -> str:
    status = Status(r["status"])
    if status == Status.OK:
        peak = f"{float(r['peak_mib']):.3g}" if r.get("peak_mib") else "–"
        return f"{float(r['time_ms_median']):.3g} / {peak}"
    return status.short


def _fmt(x: float, spec: str) -> str:
    return "" if pd.isna(x) else format(x, spec)


def print_comparison(table: pd.DataFrame, console: Any, a: str, b: str, threshold: float = THRESHOLD,
                     alpha: float = ALPHA, fmt: str = "table", drift: str = "",
                     speed: dict[str, float] | None = None) -> None:
    """The comparison as a console table (or CSV / JSON on stdout); ``drift`` is the sentence saying the machine
    itself moved between the runs (:func:`~attnbench.report.analysis.compare.machine_drift`), printed first."""
    if fmt == "csv":
        print(table.to_csv(index=False), end="")
        return
    if fmt == "json":
        print(table.to_json(orient="records"))
        return
    from rich.table import Table

    if speed:
        console.print("machine speed B/A (the rounds' canaries): " + ", ".join(
            f"{k} {v:.3g}" for k, v in speed.items() if v == v))  # v == v: not nan
    if drift:
        console.print(f"[bold]{drift}[/]", markup=True, highlight=False)
    if table.empty:
        console.print(f"no cost cases in common between {a} and {b}")
        return
    t = Table(title=f"B / A: A = {a}, B = {b}; ratio of the medians of per-process medians with a hierarchical "
                    f"bootstrap 95 % CI; Mann-Whitney U p over process medians; significant: p < {alpha:g} and "
                    f"ratio ≥ {threshold:g} (or ≤ 1/{threshold:g}) beyond the machine's noise floor")
    for col in ("mode", "attention", "grid", "time B/A", "95 % CI", "p", "processes A/B", "memory B/A", "change"):
        t.add_column(col, justify="left" if col in ("mode", "attention", "change") else "right")
    for _, r in table.iterrows():
        ci = f"{r['ci_lo']:.3g}–{r['ci_hi']:.3g}" if pd.notna(r["ci_lo"]) else ""
        t.add_row(str(r["mode"]), str(r["label"]), r["grid"], _fmt(r["ratio"], ".3g"), ci, _fmt(r["p"], ".2g"),
                  str(r.get("replicates", "")), _fmt(r["mem_ratio"], ".3g"), r["change"])
    console.print(t)
    console.print(comparison_summary(table))


def comparison_summary(table: pd.DataFrame) -> str:
    """One line: how many cases, how many flagged each way, within the noise, untestable, status changes."""
    change = table["change"].astype(str)
    return (f"{len(table)} cases; significant: {int((change == 'slower').sum())} slower, "
            f"{int((change == 'faster').sum())} faster; {int((change == NOISE).sum())} within this machine's noise; "
            f"{int((change == TOO_FEW).sum())} with too few replicates to test; "
            f"{int(change.str.startswith('status').sum())} status changes")


def print_accuracy_comparison(table: pd.DataFrame, console: Any, a: str, b: str) -> None:
    """The training comparison as a console table."""
    from rich.table import Table

    if table.empty:
        console.print(f"no training cases in common between {a} and {b}")
        return
    t = Table(title=f"A = {a}, B = {b}: metric in A and B; training time and peak training memory B/A")
    for col in ("task", "attention", "mode", "grid", "seed", "metric", "A", "B", "train time B/A", "memory B/A",
                "change"):
        t.add_column(col)
    for _, r in table.iterrows():
        t.add_row(str(r["task"]), str(r["label"]), str(r["mode"]), r["grid"], _fmt(r["seed"], ".0f"),
                  str(r["metric"]), _fmt(r["value_a"], ".4g"), _fmt(r["value_b"], ".4g"),
                  _fmt(r["train_ratio"], ".3g"), _fmt(r["mem_ratio"], ".3g"), r["change"])
    console.print(t)
