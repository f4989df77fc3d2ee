"""Running suites: validate them, plan a run (``--dry-run``) or run it (``attnbench run``)."""

from __future__ import annotations

import dataclasses
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

from attnbench.api.errors import InputError

if TYPE_CHECKING:  # annotations only: importing the API must not import rich or torch
    from rich.console import Console

    from attnbench.execute.plan import PlannedCase
    from attnbench.execute.runner import RunReport
    from attnbench.spec.validate import Suite

__all__ = ["Paths", "RunOptions", "RunResult", "SuitePlan", "load_suites", "plan", "run"]

Paths = Sequence[str | Path]


@dataclass(frozen=True)
class RunOptions:
    """How to run suites (``attnbench run``).

    ``run_id`` / ``now`` fix the run folder's name or the clock it is taken from (tests use them instead of
    waiting a second between runs); ``summary`` prints each suite's cost table on stdout as it finishes
    (``table``, ``csv`` or ``json``; None: nothing); ``command`` is recorded in the manifest."""

    out: str | Path | None = None  # results root (default results/)
    overrides: Mapping[str, Any] = field(default_factory=dict)  # --set: dotted key → TOML value
    only: Sequence[str] | None = None  # tasks or attention labels
    fresh: bool = False
    allow_dirty: bool = False
    progress: bool = True
    executor: str = "local"  # local | ray
    address: str | None = None
    ray_pack_timing: bool = False
    summary: str | None = None
    command: str = ""
    run_id: str | None = None
    now: float | None = None

    @property
    def root(self) -> Path:
        return Path(self.out) if self.out else Path("results")


@dataclass
class RunResult:
    """What a run wrote: its id, and per suite the runner's report (results file, counts per status, rows)."""

    run_id: str
    reports: list[RunReport]

    @property
    def paths(self) -> list[Path]:
        return [r.path for r in self.reports]


@dataclass(frozen=True)
class SuitePlan:
    """``run --dry-run`` of one suite: the interrupted run it would resume (or None) and every case's plan."""

    suite: Suite
    resumed: Path | None
    cases: list[PlannedCase]


def load_suites(suites: Paths, options: RunOptions | None = None) -> list[Suite]:
    """Validate every suite (with ``options.overrides``) before anything runs, then keep the cases
    ``options.only`` selects."""
    from attnbench.spec.suite import load_suite

    options = options or RunOptions()
    loaded = [load_suite(path, dict(options.overrides)) for path in suites]
    if options.only:
        wanted = set(options.only)
        known = {name for s in loaded for c in s.cases for name in c.selectors}
        unknown = sorted(wanted - known)
        if unknown:
            shown = sorted(n for n in known if "/" not in n)  # task/label pairs are implied by the two lists
            pairs = ", or TASK/LABEL" if any("/" in n for n in known) else ""
            raise InputError(f"--only {','.join(unknown)}: no such task or label; known: {', '.join(shown)}{pairs}")
        loaded = [dataclasses.replace(s, cases=tuple(c for c in s.cases if wanted & set(c.selectors)))
                  for s in loaded]
    return loaded


def plan(suites: Paths, options: RunOptions | None = None) -> list[SuitePlan]:
    """What :func:`run` would do (``--dry-run``): each case, whether it is already recorded in the run that would be
    resumed, and its earlier duration on this machine. Runs nothing, writes nothing."""
    from attnbench.execute.plan import plan_suite

    options = options or RunOptions()
    plans = []
    for suite in load_suites(suites, options):
        resumed, planned = plan_suite(suite, options.root, options.fresh)
        plans.append(SuitePlan(suite, resumed, planned))
    return plans


def _refuse_dirty_checkout(root: Path, allow_dirty: bool) -> None:
    """results/ of a checkout holds measurements of committed code only."""
    from attnbench.measure.provenance import tree_is_dirty
    from attnbench.store.layout import checkout_results

    committed = checkout_results()
    if (committed is not None and root.resolve().is_relative_to(committed.resolve()) and tree_is_dirty()
            and not allow_dirty):
        raise InputError(f"{root}: the checkout has uncommitted changes to tracked files, and results/ holds only "
                         "measurements of committed code; commit first, pass --allow-dirty (rows then carry "
                         "code_version <sha>+dirty.<diff hash>), or write elsewhere with --out DIR")


def _executor(options: RunOptions) -> Any:
    from attnbench.execute.executors import RayUnavailable, make_executor

    if options.address and options.executor != "ray":
        raise InputError("--address is for --executor ray (the Ray cluster to join)")
    try:
        return make_executor(options.executor, options.address, options.ray_pack_timing)
    except RayUnavailable as exc:
        raise InputError(str(exc)) from None
    except ConnectionError as exc:  # ray.init could not reach the address
        raise InputError(f"--address {options.address}: {str(exc).splitlines()[0]}") from None


def run(suites: Paths, options: RunOptions | None = None, *, console: Console | None = None) -> RunResult:
    """Validate the suites, then run each as part of one new run (or resume its interrupted run); every case in a
    fresh process. Progress and one line per suite go to ``console`` (default: stderr)."""
    from rich.console import Console

    from attnbench.execute.runner import run_suite
    from attnbench.measure.provenance import code_version
    from attnbench.store.csvfile import ResultsError
    from attnbench.store.layout import new_run_id

    options = options or RunOptions()
    loaded = load_suites(suites, options)  # the whole of every suite is validated before anything runs
    _refuse_dirty_checkout(options.root, options.allow_dirty)
    console = console or Console(stderr=True)
    executor = _executor(options)
    result = RunResult(options.run_id or new_run_id(code_version(), now=options.now), [])  # one folder for all
    try:
        for suite in loaded:
            console.print(f"[bold]{suite.name}[/]: {len(suite.cases)} cases on {suite.device}"
                          + (f" (expected: {suite.expected_duration})" if suite.expected_duration else "")
                          + (f" via {executor.name}" if executor.name != "local" else ""))
            try:
                done = run_suite(suite, root=options.root, run_id=result.run_id, fresh=options.fresh,
                                 show_progress=options.progress, console=console, executor=executor,
                                 command=options.command)
            except ResultsError as exc:  # a foreign or locked results file where this run would write
                raise InputError(str(exc)) from None
            counts = ", ".join(f"{k} {v}" for k, v in sorted(done.counts.items())) or "nothing new"
            console.print(f"{done.path}: {counts} in {done.wall_s:.0f} s")
            result.reports.append(done)
            if options.summary:
                from attnbench.report import print_summary

                # Cost rows only (a training suite prints nothing); wide enough for 7 grids when not a terminal
                print_summary(done.rows, console=Console(width=max(Console().width, 150)), suite=suite.name,
                              fmt=options.summary)
    finally:
        executor.close()
    return result
