"""Run a suite: every case in a fresh process with a timeout (:mod:`.isolate`), one CSV row appended per row of
an outcome, resumable. The runner never asks what kind of case it holds: the case prechecks, runs and reports itself.

Order of a case's outcome checks in the parent:
1. already in the results file (resume) → not run again (``--fresh`` starts a new file, keeping the old one);
2. above the series' frontier (an earlier ``oom``/``timeout`` at fewer tokens) → ``skipped``;
3. ``case.precheck()`` non-empty → ``unsupported`` with the reasons;
4. otherwise a fresh process runs it: ``ok``/``oom``/``error`` come back from the child; no answer within the
   timeout → ``timeout``; the child dying without an answer → ``crashed`` with the signal.
"""

from __future__ import annotations

import time
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from attnbench.execute.isolate import classify_exception, run_isolated
from attnbench.spec.case import Case
from attnbench.spec.validate import Suite
from attnbench.store.csvfile import ResultsFile

__all__ = ["FAILED", "RunReport", "results_path", "run_suite"]

FAILED = ("oom", "timeout")

Frontiers = dict[tuple[str, str, str, bool], tuple[int, str]]


@dataclass
class RunReport:
    path: Path
    counts: Counter = field(default_factory=Counter)
    skipped_existing: int = 0
    wall_s: float = 0.0
    backup: Path | None = None
    rows: list[dict[str, str]] = field(default_factory=list)


def results_path(suite: Suite, out: str | Path | None = None) -> Path:
    """``<out>/<suite>.csv``; by default ``results/<device-tag>/<suite>.csv`` (e.g. ``results/cpu/cpu.csv``)."""
    if out is None:
        from attnbench.measure.provenance import device_tag

        out = Path("results") / device_tag(suite.device)
    return Path(out) / f"{suite.name}.csv"


def _frontiers(rows: list[dict[str, str]]) -> Frontiers:
    """Smallest failing token count per series, from rows already in the file (for resume)."""
    out: Frontiers = {}
    for r in rows:
        if r.get("status") in FAILED and r.get("tokens", "").isdigit():
            key = (r.get("kind", ""), r["label"], r["mode"], r.get("compile") == "true")
            n = int(r["tokens"])
            if key not in out or n < out[key][0]:
                out[key] = (n, f"{r['status']} at {r['height']}x{r['width']}")
    return out


def _outcome(case: Case, frontier: Frontiers, on_progress: Any = None) -> dict[str, Any]:
    limit = frontier.get(case.series)
    if limit is not None and case.frontier and case.tokens > limit[0]:
        return {"status": "skipped", "reason": f"above frontier ({limit[1]})"}
    try:
        reasons = case.precheck()
    except Exception as exc:  # noqa: BLE001 - a failing capability check is an error row, not a crash
        status, reason = classify_exception(exc)
        return {"status": status, "reason": reason}
    if reasons:
        return {"status": "unsupported", "reason": "; ".join(reasons)}
    return run_isolated(case, float(case.settings.get("timeout", 300)), on_progress)


def run_suite(suite: Suite, out: str | Path | None = None, fresh: bool = False, show_progress: bool = True,
              console: Any = None) -> RunReport:
    """Run every case of ``suite`` not yet in its results file; returns counts per status."""
    from rich.console import Console
    from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn, TimeRemainingColumn

    from attnbench.measure.provenance import provenance

    console = console or Console(stderr=True)
    report = RunReport(results_path(suite, out))
    start = time.perf_counter()
    static = provenance(suite.device)
    with ResultsFile(report.path, fresh=fresh) as rf:
        report.backup = rf.backup
        done = rf.done_keys()
        frontier = _frontiers(rf.rows)
        pending = [c for c in suite.cases if not set(c.row_keys) <= done]
        report.skipped_existing = len(suite.cases) - len(pending)
        if report.skipped_existing:
            console.print(f"resuming {report.path}: {report.skipped_existing} of {len(suite.cases)} cases already "
                          "recorded (use --fresh to start over)")
        for case_type in dict.fromkeys(type(c) for c in pending):  # e.g. datasets, once, outside the timed cases
            case_type.prepare([c for c in pending if type(c) is case_type])
        columns = (TextColumn("{task.description}"), BarColumn(), MofNCompleteColumn(), TimeElapsedColumn(),
                   TextColumn("ETA"), TimeRemainingColumn())
        with Progress(*columns, console=console, disable=not show_progress, transient=False) as progress:
            task = progress.add_task(suite.name, total=len(pending))
            for case in pending:
                what = case.description
                progress.update(task, description=what)

                def show(message: str, what: str = what) -> None:
                    progress.update(task, description=f"{what} {message}")

                outcome = _outcome(case, frontier, show)
                timestamp = time.strftime("%Y-%m-%dT%H:%M:%S%z")
                for key, extra in zip(case.row_keys, case.rows(outcome)):
                    if key in done:  # a crash between the rows of one case: keep what was written
                        continue
                    row = {**static, **extra, "case_key": key, "timestamp": timestamp}
                    rf.append(row)
                    report.counts[row["status"]] += 1
                status = outcome["status"]
                if status in FAILED and case.frontier:
                    frontier.setdefault(case.series, (case.tokens, f"{status} at {case.height}x{case.width}"))
                progress.advance(task)
        report.rows = rf.rows
    report.wall_s = time.perf_counter() - start
    return report
