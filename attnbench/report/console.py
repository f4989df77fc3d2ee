"""Console tables of a run: rows = mechanism, columns = grid, cells = median ms and peak MiB."""

from __future__ import annotations

from typing import Any

from attnbench.store.schema import series_label

__all__ = ["print_summary"]


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
                cells.append(_cell(match[-1]) if match else "")
            table.add_row(label, *cells)
        console.print(table)


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
    status = r["status"]
    if status == "ok":
        peak = f"{float(r['peak_mib']):.3g}" if r.get("peak_mib") else "–"
        return f"{float(r['time_ms_median']):.3g} / {peak}"
    return {"oom": "OOM", "timeout": "TIMEOUT", "skipped": "skip", "unsupported": "n/a", "crashed": "CRASH",
            "error": "ERROR"}.get(status, status)
