"""Run a suite: every case in a fresh process with a timeout (:mod:`.isolate`), one CSV row appended per row of
an outcome. The runner never asks what kind of case it holds: the case prechecks, runs and reports itself.

Where results go (asv's ``results/<machine>/`` layout, one folder per run): ``<root>/<machine>/<run_id>/<suite>.csv``
with a manifest ``<suite>.json`` beside it. ``<machine>`` comes from the hardware (:func:`machine_tag`);
``<run_id>`` is the start time and the code version. **Every run is a new measurement**, except that an
*interrupted* run (manifest not finished) of the same suite with the same cases (same configurations), the same
code version, torch, device and machine is resumed; anything else starts a new run, so rows of two runs never mix
and committed reference data (``results/reference/``) is never written to.

Order of a case's outcome checks in the parent:
1. already in the run's results file (resuming an interrupted run) → not run again;
2. above the series' frontier (an earlier ``oom``/``timeout`` at fewer tokens) → ``skipped``;
3. ``case.precheck()`` non-empty → ``unsupported`` with the reasons;
4. otherwise a fresh process runs it: ``ok``/``oom``/``error`` come back from the child; no answer within the
   timeout → ``timeout``; the child dying without an answer → ``crashed`` with the signal.
"""

from __future__ import annotations

import hashlib
import json
import os
import signal
import time
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from attnbench.execute.rounds import earlier_failures, plan_rounds
from attnbench.measure.speed import cpu_times, speed_index, steal_percent
from attnbench.spec.case import Case
from attnbench.spec.validate import Suite
from attnbench.store.csvfile import ResultsFile, is_locked, remove_lock
from attnbench.store.layout import manifest_path as layout_manifest
from attnbench.store.layout import new_run_id, results_path, run_manifests
from attnbench.store.status import ENDS_SERIES, Status

__all__ = ["RunReport", "ends_series", "find_resumable", "fingerprint", "run_suite"]

def ends_series(status: str, reason: str = "") -> bool:
    """Whether an outcome sets its series' frontier: out of memory, a timeout, or a kill by SIGKILL (the kernel's
    OOM killer) — larger grids of the same series would only fail the same way."""
    return status in ENDS_SERIES or (status == Status.CRASHED and "SIGKILL" in reason)

Frontiers = dict[tuple[str, str, str, bool], tuple[int, str]]


@dataclass
class RunReport:
    """What a run wrote: the results file, counts per status, cases found already recorded, wall time, rows."""

    path: Path
    counts: Counter = field(default_factory=Counter)
    skipped_existing: int = 0
    wall_s: float = 0.0
    rows: list[dict[str, str]] = field(default_factory=list)


def fingerprint(suite: Suite) -> str:
    """Hash of everything a run of ``suite`` measures: its name and every case key (which include the full
    configuration of each case)."""
    keys = sorted(k for cases in plan_rounds(suite) for c in cases for k in c.row_keys)
    return hashlib.sha256(json.dumps([suite.name, keys]).encode()).hexdigest()[:16]


def _manifest(suite: Suite, run_id: str, static: dict[str, Any]) -> dict[str, Any]:
    return {"run_id": run_id, "suite": suite.name, "suite_file": suite.path, "fingerprint": fingerprint(suite),
            "cases": len(suite.cases), "replicates": suite.replicates, "order_seed": suite.order_seed,
            "code_version": static.get("code_version", ""),
            "git_sha": static.get("git_sha", ""), "torch": static.get("torch", ""), "device": suite.device,
            "machine": static.get("machine", ""), "hostname": static.get("hostname", ""),
            "started": time.strftime("%Y-%m-%dT%H:%M:%S%z"), "finished": None}


def _write_json(path: Path, data: dict[str, Any]) -> None:
    tmp = path.with_name(f".{path.name}.tmp")
    tmp.write_text(json.dumps(data, indent=1, sort_keys=True) + "\n")
    os.replace(tmp, path)


def find_resumable(machine_dir: Path, suite: Suite, static: dict[str, Any]) -> Path | None:
    """The newest interrupted run of ``suite`` under ``machine_dir`` that may be resumed: same cases, code
    version, torch, device and machine, not finished, and not running now. ``None`` when there is none."""
    want = _manifest(suite, "", static)
    same = ("fingerprint", "code_version", "torch", "device", "machine")
    for manifest in run_manifests(machine_dir, suite.name):
        try:
            have = json.loads(manifest.read_text())
        except (OSError, ValueError):
            continue
        if (have.get("finished") is None and all(have.get(k) == want[k] for k in same)
                and not is_locked(manifest.with_suffix(".csv"))):  # a run in progress elsewhere is not resumed
            return manifest.parent
    return None


def _frontiers(rows: list[dict[str, str]]) -> Frontiers:
    """Smallest failing token count per series, from rows already in the file (for resume)."""
    out: Frontiers = {}
    for r in rows:
        if ends_series(r.get("status", ""), r.get("reason", "")) and r.get("tokens", "").isdigit():
            key = (r.get("kind", ""), r["label"], r["mode"], r.get("compile") == "true")
            n = int(r["tokens"])
            if key not in out or n < out[key][0]:
                out[key] = (n, f"{r['status']} at {r['height']}x{r['width']}")
    return out


def _placed(static: dict[str, Any], where: dict[str, Any]) -> dict[str, Any]:
    """Row columns that say where a case ran: on a Ray cluster, the worker's host and ``runtime.placement`` (node,
    GPU index, worker pid); locally, nothing beyond the static provenance."""
    if where.get("executor") != "ray":
        return {}
    runtime = json.loads(static.get("runtime") or "{}")
    runtime["placement"] = where
    return {"hostname": where.get("node", static.get("hostname", "")), "runtime": json.dumps(runtime, sort_keys=True)}


def _terminate(signum: int, frame: Any) -> None:
    raise SystemExit(128 + signum)  # unwinds through run_isolated, which kills the running case's process group


def run_suite(suite: Suite, root: str | Path = "results", run_id: str | None = None, fresh: bool = False,
              show_progress: bool = True, console: Any = None, executor: Any = None, command: str = "") -> RunReport:
    """Run every case of ``suite`` as a new run under ``<root>/<machine>/<run_id>/`` (or resume an interrupted
    one, unless ``fresh``); returns counts per status and the results path. ``executor`` (default: this machine,
    one case at a time) decides where cases run; this function alone writes the results file. ``command`` (what was
    typed, --only and --set included) goes into the manifest, so a subset run is reproducible from it alone."""
    from rich.console import Console
    from rich.progress import (
        BarColumn,
        MofNCompleteColumn,
        Progress,
        TextColumn,
        TimeElapsedColumn,
        TimeRemainingColumn,
    )

    from attnbench.execute.executors import LocalExecutor
    from attnbench.measure.provenance import provenance, runtime_environment

    console = console or Console(stderr=True)
    executor = executor or LocalExecutor()
    start = time.perf_counter()
    from attnbench.measure.roofline import cached

    runtime = runtime_environment()
    machine = provenance(suite.device)
    if suite.cases:  # the roofline measured for this machine, device and thread count, if any
        runtime["roofline"] = cached(machine["machine"], suite.device, suite.cases[0].threads)
    static = {**machine, "runtime": json.dumps(runtime, sort_keys=True)}
    machine_dir = Path(root) / static["machine"]
    resumed = None if fresh else find_resumable(machine_dir, suite, static)
    run_dir = resumed or machine_dir / (run_id or new_run_id(static["code_version"]))
    run_dir.mkdir(parents=True, exist_ok=True)
    manifest_path = layout_manifest(run_dir, suite.name)
    manifest = (json.loads(manifest_path.read_text()) if resumed
                else {**_manifest(suite, run_dir.name, static), **({"command": command} if command else {})})
    if not resumed:
        _write_json(manifest_path, manifest)
    report = RunReport(results_path(run_dir, suite.name))
    previous = signal.signal(signal.SIGTERM, _terminate) if _main_thread() else None
    try:
        with ResultsFile(report.path) as rf:
            done = rf.done_keys()
            frontier = _frontiers(rf.rows)
            rounds = plan_rounds(suite)
            planned = [c for cases in rounds for c in cases]
            pending = [c for c in planned if not set(c.row_keys) <= done]
            report.skipped_existing = len(planned) - len(pending)
            if resumed:
                console.print(f"resuming the interrupted run {report.path}: {report.skipped_existing} of "
                              f"{len(planned)} cases already recorded (--fresh starts a new run instead)")
            for case_type in dict.fromkeys(type(c) for c in pending):  # e.g. datasets, once, outside timed cases
                case_type.prepare([c for c in pending if type(c) is case_type])
            failed = earlier_failures(rf.rows)
            columns = (TextColumn("{task.description}"), BarColumn(), MofNCompleteColumn(), TimeElapsedColumn(),
                       TextColumn("ETA"), TimeRemainingColumn())
            with Progress(*columns, console=console, disable=not show_progress, transient=False) as progress:
                task = progress.add_task(suite.name, total=len(pending))
                running: dict[str, str] = {}

                def show(case: Case, message: str) -> None:
                    running[case.description] = message
                    extra = f" (+{len(running) - 1} running)" if len(running) > 1 else ""
                    progress.update(task, description=f"{case.description} {message}{extra}")

                def record(case: Case, outcome: dict[str, Any], where: dict[str, Any], extra: dict[str, Any]) -> None:
                    what = case.description
                    running.pop(what, None)
                    timestamp = time.strftime("%Y-%m-%dT%H:%M:%S%z")
                    placed = _placed(static, where)
                    for key, cols in zip(case.row_keys, case.rows(outcome)):
                        if key in done:  # a crash between the rows of one case: keep what was written
                            continue
                        row = {**static, **placed, **cols, **extra, "run_id": run_dir.name, "case_key": key,
                               "timestamp": timestamp}
                        rf.append(row)
                        report.counts[str(row["status"])] += 1
                    if case.frontier and ends_series(outcome["status"], outcome.get("reason", "")):
                        frontier.setdefault(case.series, (case.tokens,
                                                          f"{outcome['status']} at {case.height}x{case.width}"))
                    if case.replicate and outcome["status"] not in (Status.OK, Status.SKIPPED):
                        failed.setdefault(case.case_key, f"{outcome['status']} in round {case.replicate}")
                    progress.advance(task)
                    if show_progress and not console.is_terminal:  # a log file or pipe: one line per finished case
                        ms = outcome.get("time_ms_median")
                        node = f" on {where['node']}" if where.get("executor") == "ray" and where.get("node") else ""
                        console.print(f"[{progress.tasks[0].completed:.0f}/{len(pending)}] {what}: "
                                      f"{outcome['status']}" + (f" {ms:.4g} ms" if ms else "") + node
                                      + (f" ({outcome['reason']})" if outcome.get("reason") else ""),
                                      soft_wrap=True, markup=False, highlight=False)  # "[compiled]" is text

                def run_round(cases: list[Case]) -> None:
                    todo = [c for c in cases if not set(c.row_keys) <= done]
                    if not todo:
                        return
                    position = {c.key: i for i, c in enumerate(cases, 1)}
                    extra: dict[str, Any] = {}
                    if suite.replicates > 1:  # the machine's own speed, once per round, where the cases run
                        executor.start_round()
                        speed = speed_index(todo[0].threads, suite.device)
                        extra = {"order_seed": suite.order_seed, "speed_compute_ms": speed["compute_ms"],
                                 "speed_memory_ms": speed["memory_ms"]}
                    retry = []
                    for case in todo:  # failed in an earlier round: recorded, not re-tried blindly
                        if case.case_key in failed:
                            outcome = {"status": Status.SKIPPED, "reason": f"failed earlier ({failed[case.case_key]})"}
                            record(case, outcome, {}, {**extra, "round_position": position[case.key]})
                        else:
                            retry.append(case)
                    outcomes = executor.outcomes(retry, frontier, show)
                    while True:
                        before = cpu_times()
                        try:
                            case, outcome, where = next(outcomes)
                        except StopIteration:
                            break
                        steal = steal_percent(before, cpu_times())
                        record(case, outcome, where, {**extra, "cpu_steal_pct": steal,
                                                      **({"round_position": position[case.key]}
                                                         if case.replicate else {})})

                for cases in rounds:
                    # A case that depends on others' results (a learning rate chosen on validation) waits until
                    # they are recorded; it then runs as the case it resolves to.
                    waiting: list[Case] = cases
                    while waiting:
                        ready, later = [], []
                        for case in waiting:
                            resolved = case.resolve(rf.rows)
                            if resolved is None:
                                later.append(case)
                            elif isinstance(resolved, str):  # it can never run: recorded, with the reason
                                record(case, {"status": Status.SKIPPED, "reason": resolved}, {}, {})
                            else:
                                ready.append(resolved)
                        if not ready and later:  # what they wait for is not in this run: nothing will come
                            for case in later:
                                record(case, {"status": Status.SKIPPED,
                                              "reason": "waits for cases this run does not hold"}, {}, {})
                            break
                        run_round(ready)
                        waiting = later
            report.rows = rf.rows
        manifest["finished"] = time.strftime("%Y-%m-%dT%H:%M:%S%z")
        _write_json(manifest_path, manifest)
        remove_lock(report.path)  # finished: the folder keeps the results, not the lock
    finally:
        if previous is not None:
            signal.signal(signal.SIGTERM, previous)
    report.wall_s = time.perf_counter() - start
    return report


def _main_thread() -> bool:
    import threading

    return threading.current_thread() is threading.main_thread()
