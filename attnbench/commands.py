"""The commands behind ``attnbench <command>``: each turns parsed arguments into the API's options, calls
:mod:`attnbench.api` and prints what it returns, then gives the exit code.

:mod:`attnbench.cli` parses the arguments and dispatches here. Bad input raises a ``ValueError`` (the API's
:class:`~attnbench.api.InputError`, a suite's error, a malformed ``--set``), which :func:`attnbench.cli.main` shows
as one line on stderr with exit code 2 (:func:`usage_error`).
"""

from __future__ import annotations

import argparse
import ast
import sys
from collections.abc import Sequence
from typing import Any

from attnbench import api

__all__ = ["cmd_bench", "cmd_calibrate", "cmd_check", "cmd_claims", "cmd_compare", "cmd_data", "cmd_list", "cmd_plot",
           "cmd_report", "cmd_roofline", "cmd_run", "parse_assignments", "print_plan", "usage_error"]


def usage_error(message: str) -> int:
    print(f"attnbench: error: {message}", file=sys.stderr)
    return 2


def _parse_value(text: str) -> Any:
    """``key=value`` values are TOML values (``2``, ``true``, ``[[16, 16]]``, ``"x"``), else Python literals,
    else the raw string (so ``device=cpu`` needs no quotes)."""
    from attnbench.spec.validate import tomllib

    try:
        return tomllib.loads(f"value = {text}")["value"]
    except tomllib.TOMLDecodeError:
        pass
    try:
        return ast.literal_eval(text)
    except (ValueError, SyntaxError):
        return text


def parse_assignments(items: Sequence[str], option: str) -> dict[str, Any]:
    """``["window=4", "down=pool"]`` → ``{"window": 4, "down": "pool"}``; a malformed item is the user's error."""
    out: dict[str, Any] = {}
    for item in items:
        key, sep, value = item.partition("=")
        if not sep or not key:
            raise api.InputError(f"{option} {item!r}: expected key=value")
        out[key.strip()] = _parse_value(value.strip())
    return out


def _wide_console() -> Any:
    """The console of tables on stdout: wide enough for 7 grids when stdout is not a terminal."""
    from rich.console import Console

    return Console(width=max(Console().width, 150))


def cmd_list(args: argparse.Namespace) -> int:
    import csv
    import json

    rows = api.list_mechanisms()
    fmt = args.format or ("table" if sys.stdout.isatty() else "csv")  # piped: one line per row, nothing wrapped
    if fmt == "json":
        print(json.dumps(rows, indent=1))
        return 0
    if fmt == "csv":
        writer = csv.DictWriter(sys.stdout, fieldnames=list(rows[0]), lineterminator="\n")
        writer.writeheader()
        writer.writerows(rows)
        return 0
    from rich.console import Console
    from rich.table import Table

    table = Table(title="registered attentions", show_lines=False)
    for col in ("name", "family", "source", "complexity (N = H·W)", "constraints", "available", "reference"):
        table.add_column(col, overflow="fold", no_wrap=col == "name")
    configs = Table(title="named configurations (usable wherever a name is)", show_lines=False)
    for col in ("name", "attention", "options"):
        configs.add_column(col, overflow="fold", no_wrap=col == "name")
    for r in rows:
        if r["kind"] == "attention":
            table.add_row(r["name"], r["family"], r["source"], r["complexity"], r["constraints"], r["available"],
                          r["reference"])
        else:
            configs.add_row(r["name"], r["attention"], r["options"])
    console = Console(width=args.width)
    console.print(table)
    console.print(configs)
    return 0


def cmd_check(args: argparse.Namespace) -> int:
    options = api.CheckOptions(grid=(args.grid[0], args.grid[1]), device=args.device, dim=args.dim, heads=args.heads,
                               kwargs=parse_assignments(args.opt, "--opt"))
    results = api.check(args.name, options)
    for r in results:
        print(f"{r.status.upper():4} {r.name:18} {r.detail}")
    failed = [r for r in results if r.status == "fail"]
    print(f"{args.name}: {len(results) - len(failed)}/{len(results)} checks passed or skipped, {len(failed)} failed")
    return 1 if failed else 0


def _run_options(args: argparse.Namespace, command: str = "") -> api.RunOptions:
    """The options ``run`` and ``bench`` share."""
    return api.RunOptions(out=args.out, overrides=parse_assignments(args.set, "--set"), fresh=args.fresh,
                          allow_dirty=args.allow_dirty, progress=not args.quiet, executor=args.executor,
                          address=args.address, ray_pack_timing=args.ray_pack_timing, summary=args.format or "table",
                          command=command)


def print_plan(plans: list[api.SuitePlan]) -> int:
    """``run --dry-run``: each case, whether it runs or is already recorded in the run that would be resumed, and
    its earlier duration on this machine."""
    for plan in plans:
        suite, planned = plan.suite, plan.cases
        todo = [p for p in planned if not p.recorded]
        known = [p.expected_s for p in todo if p.expected_s is not None]
        print(f"{suite.name}: {len(planned)} cases, {len(todo)} to run"
              + (f", {len(planned) - len(todo)} already recorded in {plan.resumed} (resumed)" if plan.resumed else "")
              + (f"; expected {sum(known) / 60:.1f} min for the {len(known)} with earlier results on this machine"
                 if known else "; no earlier results of these cases on this machine")
              + (f" (suite says: {suite.expected_duration})" if suite.expected_duration else ""))
        for i, p in enumerate(planned, 1):
            when = (f"~{p.expected_s:.1f} s (median of {p.earlier_runs} earlier run{'s' * (p.earlier_runs > 1)})"
                    if p.expected_s is not None else "no earlier result")
            print(f"  [{i}/{len(planned)}] {p.case.description}: {'recorded, skipped' if p.recorded else 'run'}, "
                  f"{when}")
    return 0


def cmd_run(args: argparse.Namespace) -> int:
    import dataclasses

    options = dataclasses.replace(_run_options(args, args.command_line),
                                  only=args.only.split(",") if args.only else None)
    if args.dry_run:
        return print_plan(api.plan(args.suites, options))
    api.run(args.suites, options)
    return 0


def cmd_bench(args: argparse.Namespace) -> int:
    options = api.BenchOptions(run=_run_options(args, args.command_line), quick=args.quick, dry_run=args.dry_run,
                               min_tokens=args.fit_min_tokens, baseline=args.baseline)
    done = api.bench(args.suites, options, console=_wide_console())
    if args.dry_run:
        return print_plan(done.plans)
    return 0


def cmd_plot(args: argparse.Namespace) -> int:
    options = api.PlotOptions(out=args.out, min_tokens=args.fit_min_tokens, baseline=args.baseline,
                              command=" ".join(["attnbench", "plot", *args.results]))
    for path in api.plot(args.results, options):
        print(path)
    return 0


def cmd_report(args: argparse.Namespace) -> int:
    """One self-contained HTML page of the given results (and the comparison with ``--reference``)."""
    options = api.ReportOptions(output=args.output, reference=args.reference, min_tokens=args.fit_min_tokens,
                                baseline=args.baseline, command=args.command_line)  # all of it: -o, --reference
    out = api.report(args.results, options)
    print(f"{out} ({out.stat().st_size / 1024:.0f} KiB)")
    return 0


def cmd_claims(args: argparse.Namespace) -> int:
    """The MANO paper's claims against the given results: ``claims.md`` with a verdict per claim."""
    command = " ".join(["attnbench", "claims", *args.results, "-o", str(args.output)])
    print(api.claims(args.results, args.output, command=command))
    return 0


def cmd_compare(args: argparse.Namespace) -> int:
    from attnbench.report import print_accuracy_comparison, print_comparison

    options = api.CompareOptions(threshold=args.threshold, alpha=args.alpha, fail_above=args.fail_above,
                                 fail_below=args.fail_below)
    done = api.compare(args.a, args.b, options)
    console = _wide_console()
    print_comparison(done.table, console, args.a, args.b, args.threshold, args.alpha, fmt=args.format,
                     drift=done.drift, speed=done.speed)
    if args.format == "table" and done.accuracy is not None:
        print_accuracy_comparison(done.accuracy, console, args.a, args.b)
    return done.exit_code


def cmd_calibrate(args: argparse.Namespace) -> int:
    """Measure this machine's A/A noise floor and compare's power on a planted slowdown; store them."""
    options = api.CalibrateOptions(suite=args.suite, run=_run_options(args, args.command_line))
    if args.dry_run:
        return print_plan(api.plan([options.suite or _packaged("calibrate.toml")], options.run))
    done = api.calibrate(options)
    r = done.result
    print(f"calibration of {done.machine} ({done.results}):")
    print(f"  A/A noise floor: {r['noise_floor']:.3f} (the {100 * r['floor_quantile']:.0f}th percentile of the "
          f"odd- vs even-round ratio, either way, over {r['aa_cases']} cases; {r['replicates_per_set']} "
          "processes per set)")
    print(f"  A/A: {r['aa_flagged']} of {r['aa_cases']} unchanged cases flagged")
    print(f"  planted 1.25x slowdown: {r['planted_flagged']} of {r['planted_cases']} cases flagged at grids from "
          f"{int(r['planted_min_tokens'] ** 0.5)}² (median ratio {r['planted_ratio_median']:.3f})")
    print(f"  stored: {done.stored} and {done.beside}")
    return 0


def _packaged(name: str) -> str:
    from attnbench.spec.suite import SUITES_DIR

    return str(SUITES_DIR / name)


def cmd_roofline(args: argparse.Namespace) -> int:
    """Measure (or show the cached) matmul peak and copy bandwidth of this machine."""
    from attnbench.measure.roofline import describe

    roof = api.roofline(api.RooflineOptions(device=args.device, threads=args.threads, n=args.n,
                                            copy_mib=args.copy_mib, force=args.force))
    print(f"roofline of {roof.machine} ({roof.device}, {roof.threads} threads; cache {roof.cache}):")
    for line in describe(roof.result):  # timed dtypes with the side they were timed at, then the slow ones
        print(f"  {line}")
    print(f"  copy bandwidth: {roof.result['copy_bytes_per_s'] / 1e9:.1f} GB/s (read + write)")
    if roof.vendor:
        print(f"  vendor peaks ({roof.machine}): " + ", ".join(f"{k} {v:g}" for k, v in roof.vendor.items()))
    return 0


def cmd_data(args: argparse.Namespace) -> int:
    """``data darcy ...`` / ``data navier-stokes ...`` generate and cache our own sets (their own arguments);
    ``data neuralop`` fetches and verifies the anchor files; ``data fashion`` checks that Fashion-MNIST is installed."""
    from attnbench.data import DatasetUnavailable

    try:
        if args.dataset == "darcy":
            from attnbench.data import darcy

            return darcy.cli(args.rest)
        if args.dataset == "navier-stokes":
            from attnbench.data import navier_stokes

            return navier_stokes.cli(args.rest)
        if args.dataset == "neuralop":
            from attnbench.data import neuralop

            print(neuralop.fetch())
            return 0
        from attnbench.data import fashion

        for split, path in fashion.find_files().items():
            print(f"{split}: {path}")
        return 0
    except DatasetUnavailable as exc:
        return usage_error(str(exc))
