"""The commands that chain others: ``bench`` (run this machine's suites, plot, compare with the committed
reference, write the HTML report) and ``report`` (the HTML report of any results).

:mod:`attnbench.cli` parses the arguments and dispatches here, as for :mod:`attnbench.commands`.
"""

from __future__ import annotations

import argparse
from pathlib import Path

from attnbench.commands import checkout_results, cmd_plot, parse_assignments, run_suites, usage_error

__all__ = ["cmd_bench", "cmd_claims", "cmd_report", "quick_preflight"]


def cmd_claims(args: argparse.Namespace) -> int:
    """The MANO paper's claims against the given results: ``claims.md`` with a verdict per claim."""
    from attnbench.report import write_claims_md
    from attnbench.report import NotResultsError, load_frame

    missing = [p for p in args.results if not Path(p).exists()]
    if missing:
        return usage_error(f"{missing[0]}: no such results file or directory")
    try:
        df = load_frame(args.results)
    except NotResultsError as exc:
        return usage_error(str(exc))
    out = write_claims_md(df, args.output, command=" ".join(["attnbench", "claims", *args.results, "-o",
                                                             str(args.output)]))
    print(out)
    return 0


def cmd_report(args: argparse.Namespace) -> int:
    """One self-contained HTML page of the given results (and the comparison with ``--reference``)."""
    from attnbench.report import NotResultsError
    from attnbench.report import build_report

    missing = [p for p in [*args.results, *(args.reference or [])] if not Path(p).exists()]
    if missing:
        return usage_error(f"{missing[0]}: no such results file or directory")
    if Path(args.output).is_dir():
        return usage_error(f"-o {args.output}: is a directory; name the HTML file to write, e.g. report.html")
    try:
        out = build_report(args.results, args.output, reference=args.reference, min_tokens=args.fit_min_tokens,
                           baseline=args.baseline, command=" ".join(["attnbench", "report", *args.results]))
    except NotResultsError as exc:
        return usage_error(str(exc))
    print(f"{out} ({out.stat().st_size / 1024:.0f} KiB)")
    return 0


def _reference_for(suite_csv: Path) -> Path | None:
    """The committed reference results of the same suite: this machine's if there are any, else the newest."""
    committed = checkout_results()
    if committed is None:
        return None
    found = sorted((committed / "reference").glob(f"**/{suite_csv.name}"), key=lambda p: str(p))
    same_machine = [p for p in found if suite_csv.parent.parent.name in p.parts]
    return (same_machine or found or [None])[-1]


def cmd_bench(args: argparse.Namespace) -> int:
    """Run the given suites (default: this machine's), plot what they wrote, and compare with the reference."""
    from rich.console import Console

    from attnbench.report import compare, compare_accuracy, print_accuracy_comparison, print_comparison
    from attnbench.report import load_frame
    from attnbench.spec.suite import default_suites

    suites = args.suites or default_suites()
    quick = None
    if args.quick:
        if args.suites:
            return usage_error("bench --quick runs suites/gpu-quick.toml; it takes no SUITE arguments")
        from attnbench.spec.suite import SUITES_DIR

        suites = [str(SUITES_DIR / "gpu-quick.toml")]
        code, quick = quick_preflight(suites[0], args.set)
        if code:
            return code
    if not suites:
        return usage_error("no default suites found next to the package (run from a checkout, or name a suite file)")
    run_args = argparse.Namespace(suites=suites, out=args.out, set=args.set, fresh=args.fresh, quiet=args.quiet,
                                  only=None, allow_dirty=args.allow_dirty, dry_run=args.dry_run, format=args.format,
                                  executor=args.executor, address=args.address,
                                  ray_pack_timing=args.ray_pack_timing)
    code, paths = run_suites(run_args)
    if quick is not None and paths:  # the preflight's roofline and checks go next to the suite's results
        import json

        (paths[0].parent / "quick-check.json").write_text(json.dumps(quick, indent=1, sort_keys=True) + "\n")
    if code or args.dry_run:
        return code
    console = Console(width=max(Console().width, 150))
    references = []
    for path in paths:
        code = cmd_plot(argparse.Namespace(results=[str(path)], out=None, fit_min_tokens=args.fit_min_tokens,
                                           baseline=args.baseline))
        if code:
            return code
        reference = _reference_for(path)
        if reference is None:
            console.print(f"{path.stem}: no committed reference results to compare with")
            continue
        references.append(reference)
        console.print(f"\n[bold]This machine vs the committed reference[/] ({reference}):")
        ref, new = load_frame([reference]), load_frame([path])
        if (new["kind"] == "cost").any():
            print_comparison(compare(ref, new), console, str(reference), str(path))
        if (new["kind"] == "accuracy").any():
            print_accuracy_comparison(compare_accuracy(ref, new), console, str(reference), str(path))
    if paths:  # one page with everything this run measured, next to its results
        from attnbench.report import build_report

        report = build_report([str(p) for p in paths], paths[0].parent / "report.html", reference=references or None,
                              min_tokens=args.fit_min_tokens, baseline=args.baseline,
                              command=" ".join(["attnbench", "bench", *(args.suites or [])]))
        from attnbench.report import write_claims_md

        claims = write_claims_md(load_frame([str(p) for p in paths]), paths[0].parent / "claims.md",
                                 command=" ".join(["attnbench", "claims", *map(str, paths)]))
        console.print(f"\nclaims of the MANO paper against this run: {claims}")
        console.print(f"report: {report} ({report.stat().st_size / 1024:.0f} KiB) — open it in a browser")
    return 0


def quick_preflight(suite_path: str, assignments: list[str] | None) -> tuple[int, dict | None]:
    """``bench --quick`` before the suite: this device's roofline (measured unless cached) and ``attnbench check``
    of every mechanism of the suite on its device; printed, and returned for ``quick-check.json``."""
    import time

    from attnbench.contract import CheckContext, run_checks
    from attnbench.measure.provenance import machine_tag
    from attnbench.measure.roofline import roofline_for
    from attnbench.spec.suite import load_suite
    from attnbench.spec.validate import SuiteError

    try:
        suite = load_suite(suite_path, parse_assignments(assignments, "--set"))
    except SuiteError as exc:
        return usage_error(str(exc)), None
    device, threads = suite.device, suite.cases[0].threads
    machine, started = machine_tag(device), time.perf_counter()
    # GPU: large enough to reach the tensor-core peak; CPU (dry run): small and quick
    roof = roofline_for(machine, device, threads, *((8192, 2048) if device == "cuda" else (1024, 64)))
    peaks = ", ".join(f"{k} {v / 1e12:.3g} TFLOP/s" for k, v in roof["peak_flops"].items())
    print(f"roofline {machine} ({device}): {peaks}; copy {roof['copy_bytes_per_s'] / 1e9:.1f} GB/s")
    checks = {}
    for spec in suite.attentions:
        results = run_checks(CheckContext(spec.name, device=device, kwargs=dict(spec.kwargs)))
        checks[spec.label] = [{"check": r.name, "status": r.status, "detail": r.detail} for r in results]
        failed = [r.name for r in results if r.status == "fail"]
        print(f"check {spec.label} on {device}: {len(results) - len(failed)}/{len(results)} passed or skipped"
              + (f"; FAILED: {', '.join(failed)}" if failed else ""))
    return 0, {"machine": machine, "device": device, "roofline": roof, "checks": checks,
               "preflight_s": round(time.perf_counter() - started, 1)}
