"""``attnbench run --dry-run``: what a run of a suite would do, without running anything.

For each case: whether it would run or is already recorded in the interrupted run that would be resumed (the same
rule as :func:`attnbench.execute.runner.find_resumable`), and how long it took before on this machine — the
median of ``case_wall_s`` over earlier results of the same case (same case key: configuration and grid) with
this machine's tag, found anywhere under the results root (run folders, ``reference/``, ``rerun/``).
"""

from __future__ import annotations

import statistics
from dataclasses import dataclass
from pathlib import Path

from attnbench.execute.rounds import plan_rounds
from attnbench.execute.runner import find_resumable
from attnbench.spec.case import Case
from attnbench.spec.validate import Suite
from attnbench.store.csvfile import read_results
from attnbench.store.layout import all_suite_files, results_path
from attnbench.store.status import Status

__all__ = ["PlannedCase", "plan_suite"]


@dataclass(frozen=True)
class PlannedCase:
    case: Case
    recorded: bool  # already in the run that would be resumed: not run again
    expected_s: float | None  # median earlier wall time of this case on this machine
    earlier_runs: int


def _history(root: Path, suite: str, machine: str) -> tuple[dict[str, list[float]], set[str]]:
    """case key → earlier ``case_wall_s`` on ``machine`` (one value per run and process), and the keys of cases that
    failed there (in a replicated run they cost their time once: later rounds skip them)."""
    seen: dict[str, dict[str, float]] = {}
    failed: set[str] = set()
    for path in all_suite_files(root, suite):
        try:
            rows = read_results(path)
        except (OSError, UnicodeDecodeError, ValueError):
            continue  # a foreign or damaged file says nothing about durations
        for r in rows:
            if r.get("machine") == machine and r.get("case_wall_s"):
                try:  # one value per run and process: a replicated case's rounds each count
                    key = r["case_key"].rsplit("|r", 1)[0] if r.get("replicate") else r["case_key"]
                    run = f"{r.get('run_id', str(path))}#{r.get('replicate') or 0}"
                    seen.setdefault(key, {})[run] = float(r["case_wall_s"])
                except ValueError:
                    continue
                if r.get("status") not in (Status.OK, Status.SKIPPED):
                    failed.add(key)
    return {k: list(v.values()) for k, v in seen.items()}, failed


def plan_suite(suite: Suite, root: str | Path = "results", fresh: bool = False) -> tuple[Path | None,
                                                                                        list[PlannedCase]]:
    """``(run folder that would be resumed or None, one PlannedCase per case in run order)``."""
    from attnbench.measure.provenance import provenance

    static = provenance(suite.device)
    root = Path(root)
    resumed = None if fresh else find_resumable(root / static["machine"], suite, static)
    done: set[str] = set()
    if resumed is not None and results_path(resumed, suite.name).exists():
        done = {r["case_key"] for r in read_results(results_path(resumed, suite.name))}
    history, failed = _history(root, suite.name, static["machine"])
    planned = []
    for case in (c for cases in plan_rounds(suite) for c in cases):
        earlier = history.get(case.case_key, [])
        expected = statistics.median(earlier) if earlier else None
        if case.replicate > 1 and case.case_key in failed:
            expected = 0.0  # failed before: round 1 records the failure, later rounds skip it
        planned.append(PlannedCase(case, set(case.row_keys) <= done, expected, len(earlier)))
    return resumed, planned
