"""Run a suite: every case in a fresh process with a timeout, one CSV row appended per case, resumable.

Order of a case's outcome checks in the parent:
1. already in the results file (resume) → not run again (``--fresh`` starts a new file, keeping the old one);
2. above the series' frontier (an earlier ``oom``/``timeout`` at fewer tokens) → ``skipped``;
3. ``not_supported_reasons`` non-empty → ``unsupported`` with the reasons;
4. otherwise a fresh process runs it (:func:`attnbench.worker.run_case`): ``ok``/``oom``/``error`` come back
   from the child; no answer within the timeout → ``timeout`` (the child is killed); the child dying without an
   answer → ``crashed`` with the signal.

Case processes come from a multiprocessing *forkserver* that has imported torch once: every case still starts
from a new, single-threaded process image (honest peak RSS, no state shared between cases), without paying
~2 s of interpreter and torch start-up per case.
"""

from __future__ import annotations

import multiprocessing as mp
import signal
import time
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from attnbench.results import ResultsFile, series_label
from attnbench.suite import Case, Suite

__all__ = ["RunReport", "results_path", "run_isolated", "run_suite"]

FAILED = ("oom", "timeout")


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
        from attnbench.env import device_tag

        out = Path("results") / device_tag(suite.device)
    return Path(out) / f"{suite.name}.csv"


# ------------------------------------------------------------------------------------------- isolation
def _child(case: Case, conn: Any) -> None:
    from attnbench.worker import run_case

    def progress(message: str) -> None:  # long cases (training) report as they go
        conn.send(("progress", message))

    conn.send(("result", run_case(case, progress)))
    conn.close()


_CONTEXT: Any = None


def _context() -> Any:
    global _CONTEXT
    if _CONTEXT is None:
        if "forkserver" in mp.get_all_start_methods():
            from attnbench.registry import _BUILTIN_MODULES

            _CONTEXT = mp.get_context("forkserver")
            # Imported once in the server, inherited by every case process: torch, timm, the measurement code
            # and the built-in mechanisms (optional ones excluded: their import can have side effects).
            core = ["attnbench.worker", "attnbench.contract", "attnbench.memory", "attnbench.timing",
                    "torch.utils.benchmark"]
            builtins = [m for n, m in _BUILTIN_MODULES.items() if n not in ("full_xformers", "neighborhood")]
            _CONTEXT.set_forkserver_preload(core + builtins)
        else:  # pragma: no cover - non-Linux
            _CONTEXT = mp.get_context("spawn")
    return _CONTEXT


def run_isolated(case: Case, timeout: float, on_progress: Any = None) -> dict[str, Any]:
    """Run ``case`` in a new process; map a missing answer to ``timeout`` or ``crashed``."""
    ctx = _context()
    recv, send = ctx.Pipe(duplex=False)
    # Not daemonic: a case may start its own worker processes; the parent joins or kills it explicitly.
    proc = ctx.Process(target=_child, args=(case, send), daemon=False)
    start = time.perf_counter()
    proc.start()
    send.close()  # the child holds the only write end: EOF tells us it is gone
    result = None
    try:
        while result is None:
            remaining = timeout - (time.perf_counter() - start)
            if remaining <= 0 or not recv.poll(remaining):
                if proc.is_alive():
                    proc.kill()
                    proc.join(10)
                    return {"status": "timeout", "reason": f"no result within {timeout:g} s (process killed)",
                            "case_wall_s": round(time.perf_counter() - start, 3)}
                break
            try:
                kind, payload = recv.recv()
            except EOFError:
                break
            if kind == "result":
                result = payload
            elif on_progress is not None:
                on_progress(payload)
    finally:
        recv.close()
    proc.join(30)
    if proc.is_alive():  # answered but hangs on exit: the answer stands
        proc.kill()
        proc.join(10)
    if result is not None:
        return result
    code = proc.exitcode
    if code is not None and code < 0:
        name = signal.Signals(-code).name if -code in signal.valid_signals() else str(-code)
        hint = " (out of memory? the kernel's OOM killer sends SIGKILL)" if -code == signal.SIGKILL else ""
        reason = f"killed by signal {name}{hint}"
    else:
        reason = f"exited with code {code} without a result"
    return {"status": "crashed", "reason": reason, "case_wall_s": round(time.perf_counter() - start, 3)}


# ---------------------------------------------------------------------------------------------- checks
def precheck(case: Case) -> list[str]:
    """Reasons the case cannot run, asked of the attention (cost) or of the task (accuracy)."""
    import torch

    from attnbench.contract import build, supported

    if case.kind == "accuracy":
        from attnbench.train import accuracy_precheck

        return accuracy_precheck(case)
    module = build(case.attention, case.dim, case.heads, case.height, case.width, case.kwargs)
    return supported(module, case.height, case.width, case.device, getattr(torch, case.dtype),
                     backward=case.mode == "fwd_bwd")


def _row(case: Case, provenance: dict[str, Any]) -> dict[str, Any]:
    import json

    return {
        "suite": case.suite, "kind": case.kind, "case_key": case.key, "label": case.label,
        "attention": case.attention, "kwargs": json.dumps(case.kwargs, sort_keys=True), "mode": case.mode,
        "height": case.height, "width": case.width, "tokens": case.tokens, "batch": case.batch,
        "dim": case.dim, "heads": case.heads, "dtype": case.dtype, "device": case.device,
        "threads": case.threads, "compile": case.compile, "tf32": case.tf32, "task": case.task, "seed": case.seed,
        **provenance,
    }


def _frontiers(rows: list[dict[str, str]]) -> dict[tuple[str, str, bool], tuple[int, str]]:
    """Smallest failing token count per series, from rows already in the file (for resume)."""
    out: dict[tuple[str, str, bool], tuple[int, str]] = {}
    for r in rows:
        if r.get("kind") == "cost" and r.get("status") in FAILED and r.get("tokens", "").isdigit():
            key = (r["label"], r["mode"], r.get("compile") == "true")
            n = int(r["tokens"])
            if key not in out or n < out[key][0]:
                out[key] = (n, f"{r['status']} at {r['height']}x{r['width']}")
    return out


# ----------------------------------------------------------------------------------------------- runner
def run_suite(suite: Suite, out: str | Path | None = None, fresh: bool = False, show_progress: bool = True,
              console: Any = None) -> RunReport:
    """Run every case of ``suite`` not yet in its results file; returns counts per status."""
    from rich.console import Console
    from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn, TimeRemainingColumn

    from attnbench.env import provenance

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
        training = [c for c in pending if c.kind == "accuracy"]
        if training:  # datasets are generated/fetched here, once, not inside the (timed) case processes
            from attnbench.train import prepare_data

            prepare_data(training)
        columns = (TextColumn("{task.description}"), BarColumn(), MofNCompleteColumn(), TimeElapsedColumn(),
                   TextColumn("ETA"), TimeRemainingColumn())
        with Progress(*columns, console=console, disable=not show_progress, transient=False) as progress:
            task = progress.add_task(suite.name, total=len(pending))
            for case in pending:
                what = f"{suite.name}: {case.task + ' ' if case.task else ''}{case.label} {case.mode} " \
                       f"{case.height}x{case.width}"
                progress.update(task, description=what)

                def show(message: str, what: str = what) -> None:
                    progress.update(task, description=f"{what} {message}")

                outcome = _outcome(case, frontier, show)
                timestamp = time.strftime("%Y-%m-%dT%H:%M:%S%z")
                for key, extra in zip(case.row_keys, _split_rows(case, outcome)):
                    if key in done:  # a crash between the rows of one case: keep what was written
                        continue
                    row = {**_row(case, static), **extra, "case_key": key, "timestamp": timestamp}
                    rf.append(row)
                    report.counts[row["status"]] += 1
                status = outcome["status"]
                if status in FAILED and case.settings.get("frontier", True):
                    frontier.setdefault(case.series, (case.tokens, f"{status} at {case.height}x{case.width}"))
                progress.advance(task)
        report.rows = rf.rows
    report.wall_s = time.perf_counter() - start
    return report


def _split_rows(case: Case, outcome: dict[str, Any]) -> list[dict[str, Any]]:
    """The row(s) of one outcome: a training case reports one row per evaluation grid."""
    rows = outcome.pop("rows", None)
    if case.kind == "cost":
        return [outcome]
    if rows is None:  # the whole case failed: every evaluation row carries that status
        return [{**outcome, "eval_res": r, "train_res": case.height} for r in case.settings["eval_res"]]
    return [{**outcome, **r} for r in rows]


def _outcome(case: Case, frontier: dict[tuple[str, str, bool], tuple[int, str]],
             on_progress: Any = None) -> dict[str, Any]:
    limit = frontier.get(case.series)
    if limit is not None and case.settings.get("frontier", True) and case.tokens > limit[0]:
        return {"status": "skipped", "reason": f"above frontier ({limit[1]})"}
    try:
        reasons = precheck(case)
    except Exception as exc:  # noqa: BLE001 - a failing capability check is an error row, not a crash
        from attnbench.worker import classify_exception

        status, reason = classify_exception(exc)
        return {"status": status, "reason": reason}
    if reasons:
        return {"status": "unsupported", "reason": "; ".join(reasons)}
    return run_isolated(case, float(case.settings.get("timeout", 300)), on_progress)


def print_summary(rows: list[dict[str, str]], console: Any = None, suite: str | None = None) -> None:
    """Rows = mechanism, columns = grid, cells = median ms and peak MiB; failures marked."""
    from rich.console import Console
    from rich.table import Table

    console = console or Console()
    rows = [r for r in rows if r.get("kind", "cost") == "cost" and (suite is None or r.get("suite") == suite)]
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


def _cell(r: dict[str, str]) -> str:
    status = r["status"]
    if status == "ok":
        peak = f"{float(r['peak_mib']):.3g}" if r.get("peak_mib") else "–"
        return f"{float(r['time_ms_median']):.3g} / {peak}"
    return {"oom": "OOM", "timeout": "TIMEOUT", "skipped": "skip", "unsupported": "n/a", "crashed": "CRASH",
            "error": "ERROR"}.get(status, status)

