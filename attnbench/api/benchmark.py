"""The main job, ``attnbench bench``: run this machine's suites (or the given ones), plot what they wrote, compare
each with the committed reference, and write the HTML report and ``claims.md`` beside the results.

``bench`` composes the other API functions (:func:`~.runs.run`, :func:`~.results.plot`, ...); it prints as it goes,
because it takes minutes to hours and its comparison tables are what a person running it reads.
"""

from __future__ import annotations

import json
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

from attnbench.api.errors import InputError
from attnbench.api.results import PlotOptions, ReportOptions, plot, report
from attnbench.api.results import compare as compare_runs
from attnbench.api.runs import Paths, RunOptions, RunResult, SuitePlan, load_suites, plan, run

if TYPE_CHECKING:  # annotations only
    from rich.console import Console

__all__ = ["BenchOptions", "BenchResult", "bench", "quick_check"]


@dataclass(frozen=True)
class BenchOptions:
    """``run``: how the suites run; ``quick``: the first look at a new machine (roofline, ``check`` of every
    mechanism on the device, then ``suites/gpu-quick.toml``); ``dry_run``: plan only; ``min_tokens`` and
    ``baseline`` as in :class:`~.results.PlotOptions`."""

    run: RunOptions = field(default_factory=RunOptions)
    quick: bool = False
    dry_run: bool = False
    min_tokens: int = 1024
    baseline: str | None = None


@dataclass
class BenchResult:
    """What a bench did: the run (None for a dry run, which has ``plans`` instead), the quick check, the files
    plotted per results file, the references compared with, the report and ``claims.md``."""

    run: RunResult | None = None
    plans: list[SuitePlan] = field(default_factory=list)
    quick: dict[str, Any] | None = None
    plots: dict[Path, list[Path]] = field(default_factory=dict)
    references: list[Path] = field(default_factory=list)
    report: Path | None = None
    claims: Path | None = None


def quick_check(suite: str | Path, overrides: dict[str, Any] | None = None, *,
                console: Console | None = None) -> dict[str, Any]:
    """``bench --quick`` before the suite: this device's roofline (measured unless cached) and the contract checks
    of every mechanism of the suite on its device; one line each on ``console``, and returned for
    ``quick-check.json``."""
    from rich.console import Console

    from attnbench.contract import CheckContext, run_checks
    from attnbench.measure.provenance import machine_tag
    from attnbench.measure.roofline import roofline_for
    from attnbench.spec.suite import load_suite

    console = console or Console()
    loaded = load_suite(suite, overrides)
    device, threads = loaded.device, loaded.cases[0].threads
    machine, started = machine_tag(device), time.perf_counter()
    # GPU: large enough to reach the tensor-core peak; CPU (dry run): small and quick
    roof = roofline_for(machine, device, threads, *((8192, 2048) if device == "cuda" else (1024, 64)))
    peaks = ", ".join(f"{k} {v / 1e12:.3g} TFLOP/s" for k, v in roof["peak_flops"].items())
    _line(console, f"roofline {machine} ({device}): {peaks}; copy {roof['copy_bytes_per_s'] / 1e9:.1f} GB/s")
    checks = {}
    for spec in loaded.attentions:
        results = run_checks(CheckContext(spec.name, device=device, kwargs=dict(spec.kwargs)))
        checks[spec.label] = [{"check": r.name, "status": r.status, "detail": r.detail} for r in results]
        failed = [r.name for r in results if r.status == "fail"]
        _line(console, f"check {spec.label} on {device}: {len(results) - len(failed)}/{len(results)} passed or skipped"
              + (f"; FAILED: {', '.join(failed)}" if failed else ""))
    return {"machine": machine, "device": device, "roofline": roof, "checks": checks,
            "preflight_s": round(time.perf_counter() - started, 1)}


def _line(console: Console, text: str) -> None:
    """One plain line (no markup, highlighting or wrapping: paths and names print as they are)."""
    console.print(text, markup=False, highlight=False, soft_wrap=True)


def _ensure_roofline(names: list[str], run_options: RunOptions, console: Console) -> None:
    """Measure the roofline of each cost suite's device and thread count when none is cached (the runs record
    it); a cached one is used as it is."""
    from attnbench.measure.provenance import machine_tag
    from attnbench.measure.roofline import cached, roofline_for

    for suite in load_suites(names, run_options):
        if suite.kind != "cost" or not suite.cases:
            continue
        machine, threads = machine_tag(suite.device), suite.cases[0].threads
        if cached(machine, suite.device, threads) is None:
            _line(console, f"roofline of {machine} ({suite.device}, {threads} threads): not measured yet; measuring")
            # the sizes `attnbench roofline` uses (a GPU needs large operands to reach its tensor-core peak)
            roofline_for(machine, suite.device, threads, *((8192, 2048) if suite.device == "cuda" else (2048, 256)))


def bench(suites: Paths = (), options: BenchOptions | None = None, *,
          console: Console | None = None) -> BenchResult:
    """Run the given suites (default: this machine's), plot what they wrote, compare each with the committed
    reference of the same suite, and write ``report.html`` and ``claims.md`` next to the results."""
    from rich.console import Console

    from attnbench.report import (
        compare_accuracy,
        load_frame,
        print_accuracy_comparison,
        print_comparison,
        write_claims_md,
    )
    from attnbench.spec.suite import SUITES_DIR, default_suites
    from attnbench.store.layout import reference_for

    options = options or BenchOptions()
    console = console or Console(width=max(Console().width, 150))
    names = [str(s) for s in suites] or default_suites()
    result = BenchResult()
    if options.quick:
        if suites:
            raise InputError("bench --quick runs suites/gpu-quick.toml; it takes no SUITE arguments")
        names = [str(SUITES_DIR / "gpu-quick.toml")]
        result.quick = quick_check(names[0], dict(options.run.overrides), console=console)
    if not names:
        raise InputError("no default suites found next to the package (run from a checkout, or name a suite file)")
    if options.dry_run:
        result.plans = plan(names, options.run)
        return result
    if result.quick is None:  # a newcomer's report gets its achieved-vs-roofline figures: measure once (≤ 1 min)
        _ensure_roofline(names, options.run, console)
    result.run = run(names, options.run)
    paths = result.run.paths
    if result.quick is not None and paths:  # the preflight's roofline and checks go next to the suite's results
        (paths[0].parent / "quick-check.json").write_text(json.dumps(result.quick, indent=1, sort_keys=True) + "\n")
    for path in paths:
        written = plot([path], PlotOptions(min_tokens=options.min_tokens, baseline=options.baseline,
                                           command=f"attnbench plot {path}"))
        result.plots[path] = written
        for file in written:
            _line(console, str(file))
        reference = reference_for(path)
        if reference is None:
            console.print(f"{path.stem}: no committed reference results to compare with")
            continue
        result.references.append(reference)
        console.print(f"\n[bold]This machine vs the committed reference[/] ({reference}):")
        ref, new = load_frame([reference]), load_frame([path])
        if (new["kind"] == "cost").any():  # the same comparison as `attnbench compare` (noise floor, machine drift)
            done = compare_runs(reference, path)
            print_comparison(done.table, console, str(reference), str(path), drift=done.drift, speed=done.speed)
        if (new["kind"] == "accuracy").any():
            print_accuracy_comparison(compare_accuracy(ref, new), console, str(reference), str(path))
    if paths:  # one page with everything this run measured, next to its results
        result.report = report(paths, ReportOptions(
            output=paths[0].parent / "report.html", reference=result.references or None,
            min_tokens=options.min_tokens, baseline=options.baseline,
            # the command that writes this page again from the run's files (bench's own would measure anew)
            command=" ".join(["attnbench", "report", *map(str, paths)])))
        result.claims = write_claims_md(load_frame([str(p) for p in paths]), paths[0].parent / "claims.md",
                                        command=" ".join(["attnbench", "claims", *map(str, paths)]))
        console.print(f"\nclaims of the MANO paper against this run: {result.claims}", soft_wrap=True)
        size_kib = result.report.stat().st_size / 1024
        # soft_wrap: a long path stays one piece that a terminal can select and open (rich would break it)
        console.print(f"report: {result.report} ({size_kib:.0f} KiB) — open it in a browser", soft_wrap=True)
    return result
