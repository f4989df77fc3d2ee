"""The commands behind ``attnbench <command>``: each validates its input and calls into the package.

:mod:`attnbench.cli` parses the arguments and dispatches here; errors of the user's input end as one line on stderr
and exit code 2 (:func:`usage_error`).
"""

from __future__ import annotations

import argparse
import ast
import dataclasses
import os
import sys
from collections.abc import Sequence
from pathlib import Path
from typing import Any

__all__ = ["checkout_results", "cmd_check", "cmd_compare", "cmd_data", "cmd_list", "cmd_plot", "cmd_roofline",
           "cmd_run", "parse_assignments", "print_plan", "run_suites", "usage_error"]


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
    """``["window=4", "down=pool"]`` → ``{"window": 4, "down": "pool"}``; malformed items exit with code 2."""
    out: dict[str, Any] = {}
    for item in items:
        key, sep, value = item.partition("=")
        if not sep or not key:
            raise SystemExit(usage_error(f"{option} {item!r}: expected key=value"))
        out[key.strip()] = _parse_value(value.strip())
    return out


def usage_error(message: str) -> int:
    print(f"attnbench: error: {message}", file=sys.stderr)
    return 2


def list_rows() -> list[dict[str, str]]:
    """One record per registered attention, unavailable optional one and named configuration (``list``)."""
    from attnbench.registry import (
        attention_source, get_attention, list_attentions, list_configs, unavailable_attentions,
    )

    rows = []
    for name in list_attentions():
        cls = get_attention(name)
        rows.append({"name": name, "kind": "attention", "attention": name, "source": attention_source(name),
                     "complexity": getattr(cls, "complexity", "?"), "constraints": getattr(cls, "constraints", "?"),
                     "available": "yes", "reference": getattr(cls, "reference", "?"), "options": ""})
    for name, reason in unavailable_attentions().items():
        rows.append({"name": name, "kind": "attention", "attention": name, "source": "builtin (optional)",
                     "complexity": "", "constraints": "", "available": f"no: {reason}", "reference": "",
                     "options": ""})
    for name, (attention, kwargs) in list_configs().items():
        rows.append({"name": name, "kind": "configuration", "attention": attention, "source": "", "complexity": "",
                     "constraints": "", "available": "", "reference": "",
                     "options": ", ".join(f"{k}={v!r}" for k, v in kwargs.items())})
    return rows


def cmd_list(args: argparse.Namespace) -> int:
    import csv
    import json

    rows = list_rows()
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
    for col in ("name", "source", "complexity (N = H·W)", "constraints", "available", "reference"):
        table.add_column(col, overflow="fold", no_wrap=col == "name")
    configs = Table(title="named configurations (usable wherever a name is)", show_lines=False)
    for col in ("name", "attention", "options"):
        configs.add_column(col, overflow="fold", no_wrap=col == "name")
    for r in rows:
        if r["kind"] == "attention":
            table.add_row(r["name"], r["source"], r["complexity"], r["constraints"], r["available"], r["reference"])
        else:
            configs.add_row(r["name"], r["attention"], r["options"])
    console = Console(width=args.width)
    console.print(table)
    console.print(configs)
    return 0


def cmd_check(args: argparse.Namespace) -> int:
    import torch

    from attnbench.contract import CheckContext, run_checks
    from attnbench.registry import UnknownAttentionError, capability_reasons

    ctx = CheckContext(args.name, height=args.grid[0], width=args.grid[1], dim=args.dim, heads=args.heads,
                       device=args.device, kwargs=parse_assignments(args.opt, "--opt"))
    try:  # bad names and arguments are the user's input errors: one line, exit 2, before any check runs
        reasons = capability_reasons(ctx.build(), ctx.height, ctx.width, ctx.device, torch.float32)
    except (UnknownAttentionError, ValueError) as exc:
        return usage_error(str(exc))
    if reasons:
        return usage_error(f"{args.name} cannot run on grid {ctx.height}x{ctx.width}: {'; '.join(reasons)} (use --grid)")
    results = run_checks(ctx)
    for r in results:
        print(f"{r.status.upper():4} {r.name:18} {r.detail}")
    failed = [r for r in results if r.status == "fail"]
    print(f"{args.name}: {len(results) - len(failed)}/{len(results)} checks passed or skipped, {len(failed)} failed")
    return 1 if failed else 0


def checkout_results() -> Path | None:
    """``results/`` of the attnbench checkout this code runs from (``None`` when installed outside a checkout)."""
    root = Path(__file__).resolve().parents[1]
    return root / "results" if (root / ".git").exists() else None


def run_suites(args: argparse.Namespace) -> tuple[int, list[Path]]:
    """Validate and run the suites; ``(exit code, results files written)``."""
    from rich.console import Console

    from attnbench.execute.runner import new_run_id, run_suite
    from attnbench.measure.provenance import code_version, tree_is_dirty
    from attnbench.report import print_summary
    from attnbench.spec.suite import load_suite
    from attnbench.spec.validate import SuiteError
    from attnbench.store.csvfile import ResultsError

    overrides = parse_assignments(args.set, "--set")
    try:  # the whole suite is validated before anything runs
        suites = [load_suite(path, overrides) for path in args.suites]
    except SuiteError as exc:
        return usage_error(str(exc)), []
    if getattr(args, "only", None):
        wanted = set(args.only.split(","))
        known = {name for s in suites for c in s.cases for name in c.selectors}
        unknown = sorted(wanted - known)
        if unknown:
            return usage_error(f"--only {','.join(unknown)}: no such task or label; known: "
                                f"{', '.join(sorted(known))}"), []
        suites = [dataclasses.replace(s, cases=tuple(c for c in s.cases if wanted & set(c.selectors)))
                  for s in suites]
    root = Path(args.out) if args.out else Path("results")
    if getattr(args, "dry_run", False):
        return print_plan(suites, root, args.fresh), []
    committed = checkout_results()
    if (committed is not None and root.resolve().is_relative_to(committed.resolve()) and tree_is_dirty()
            and not args.allow_dirty):
        return usage_error(f"{root}: the checkout has uncommitted changes to tracked files, and results/ holds only "
                            "measurements of committed code; commit first, pass --allow-dirty (rows then carry "
                            "code_version <sha>+dirty.<diff hash>), or write elsewhere with --out DIR"), []
    console = Console(stderr=True)
    from attnbench.execute.executors import RayUnavailable, make_executor

    if getattr(args, "address", None) and getattr(args, "executor", "local") != "ray":
        return usage_error("--address is for --executor ray (the Ray cluster to join)"), []
    try:
        executor = make_executor(getattr(args, "executor", "local"), getattr(args, "address", None),
                                 getattr(args, "ray_pack_timing", False))
    except RayUnavailable as exc:
        return usage_error(str(exc)), []
    except ConnectionError as exc:  # ray.init could not reach --address
        return usage_error(f"--address {args.address}: {str(exc).splitlines()[0]}"), []
    run_id = new_run_id(code_version())  # one run folder for every suite of this command
    paths = []
    try:
        for suite in suites:
            console.print(f"[bold]{suite.name}[/]: {len(suite.cases)} cases on {suite.device}"
                          + (f" (expected: {suite.expected_duration})" if suite.expected_duration else "")
                          + (f" via {executor.name}" if executor.name != "local" else ""))
            try:
                report = run_suite(suite, root=root, run_id=run_id, fresh=args.fresh, show_progress=not args.quiet,
                                   console=console, executor=executor, command=getattr(args, "command_line", ""))
            except ResultsError as exc:
                return usage_error(str(exc)), paths
            counts = ", ".join(f"{k} {v}" for k, v in sorted(report.counts.items())) or "nothing new"
            console.print(f"{report.path}: {counts} in {report.wall_s:.0f} s")
            paths.append(report.path)
            # Cost rows only (a training suite prints nothing); wide enough for 7 grids when stdout is not a terminal
            print_summary(report.rows, console=Console(width=max(Console().width, 150)), suite=suite.name,
                          fmt=getattr(args, "format", None) or "table")
    finally:
        executor.close()
    return 0, paths


def print_plan(suites: list[Any], root: Path, fresh: bool) -> int:
    """``run --dry-run``: each case, whether it runs or is already recorded in the run that would be resumed, and
    its earlier duration on this machine; nothing is run or written."""
    from attnbench.execute.plan import plan_suite

    for suite in suites:
        resumed, planned = plan_suite(suite, root, fresh)
        todo = [p for p in planned if not p.recorded]
        known = [p.expected_s for p in todo if p.expected_s is not None]
        print(f"{suite.name}: {len(planned)} cases, {len(todo)} to run"
              + (f", {len(planned) - len(todo)} already recorded in {resumed} (resumed)" if resumed else "")
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
    return run_suites(args)[0]


def cmd_plot(args: argparse.Namespace) -> int:
    from attnbench.report import plot_results
    from attnbench.report import NotResultsError

    missing = [p for p in args.results if not Path(p).exists()]
    if missing:
        return usage_error(f"{missing[0]}: no such results file or directory")
    try:
        written = plot_results(args.results, out_dir=args.out, min_tokens=args.fit_min_tokens,
                               baseline=args.baseline, command=" ".join(["attnbench", "plot", *args.results]))
    except NotResultsError as exc:
        return usage_error(str(exc))
    for path in written:
        print(path)
    return 0


def cmd_compare(args: argparse.Namespace) -> int:
    from rich.console import Console

    from attnbench.report import compare, compare_accuracy, print_accuracy_comparison, print_comparison, verdict
    from attnbench.report import NotResultsError, load_frame

    missing = [p for p in (args.a, args.b) if not Path(p).exists()]
    if missing:
        return usage_error(f"{missing[0]}: no such results file or directory")
    try:
        a, b = load_frame([args.a]), load_frame([args.b])
    except NotResultsError as exc:
        return usage_error(str(exc))
    table = compare(a, b, threshold=args.threshold, alpha=args.alpha)
    console = Console(width=max(Console().width, 150))
    print_comparison(table, console, args.a, args.b, args.threshold, args.alpha, fmt=args.format)
    if args.format == "table":
        if (a["kind"] == "accuracy").any() or (b["kind"] == "accuracy").any():
            print_accuracy_comparison(compare_accuracy(a, b), console, args.a, args.b)
    return verdict(table, args.fail_above, args.fail_below)


def cmd_roofline(args: argparse.Namespace) -> int:
    """Measure (or show the cached) matmul peak and copy bandwidth of this machine."""
    from attnbench.measure.provenance import machine_tag, resolve_device
    from attnbench.measure.roofline import VENDOR_PEAKS, cache_path, roofline_for

    device = resolve_device(args.device)
    threads = args.threads or os.cpu_count() or 1
    machine = machine_tag(device)
    result = roofline_for(machine, device, threads, args.n, args.copy_mib, force=args.force)
    print(f"roofline of {machine} ({device}, {threads} threads; cache {cache_path(machine, device, threads)}):")
    for dtype, flops in result["peak_flops"].items():
        print(f"  matmul {result['matmul_n']}² {dtype}: {flops / 1e9:.1f} GFLOP/s")
    print(f"  copy bandwidth: {result['copy_bytes_per_s'] / 1e9:.1f} GB/s (read + write)")
    vendor = VENDOR_PEAKS.get(machine)
    if vendor:
        print(f"  vendor peaks ({machine}): " + ", ".join(f"{k} {v:g}" for k, v in vendor.items()))
    return 0


def cmd_data(args: argparse.Namespace) -> int:
    """``data darcy ...`` generates/caches our Darcy set; ``data neuralop`` fetches and verifies the anchor files;
    ``data fashion`` checks that Fashion-MNIST is installed."""
    from attnbench.data import DatasetUnavailable

    try:
        if args.dataset == "darcy":
            from attnbench.data import darcy

            return darcy.cli(args.rest)
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
