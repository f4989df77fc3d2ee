"""attnbench: benchmark attention mechanisms on 2-D grids — runtime, peak memory and accuracy across resolutions.

Commands: list (registered mechanisms and named configurations), check (contract checks of one mechanism), run
(suites, one fresh process per case), plot (figures and tables from results), compare (two runs, case by case),
bench (run, plot, compare with the committed reference), data (prepare datasets). This module parses arguments only; each command calls into the package.
"""

from __future__ import annotations

import argparse
import ast
import dataclasses
import sys
from collections.abc import Sequence
from pathlib import Path
from typing import Any

__all__ = ["main"]


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
            raise SystemExit(_usage_error(f"{option} {item!r}: expected key=value"))
        out[key.strip()] = _parse_value(value.strip())
    return out


def _usage_error(message: str) -> int:
    print(f"attnbench: error: {message}", file=sys.stderr)
    return 2


def cmd_list(args: argparse.Namespace) -> int:
    from rich.console import Console
    from rich.table import Table

    from attnbench.registry import (
        attention_source, get_attention, list_attentions, list_configs, unavailable_attentions,
    )

    table = Table(title="registered attentions", show_lines=False)
    for col in ("name", "source", "complexity (N = H·W)", "constraints", "available", "reference"):
        table.add_column(col, overflow="fold")
    for name in list_attentions():
        cls = get_attention(name)
        table.add_row(name, attention_source(name), getattr(cls, "complexity", "?"),
                      getattr(cls, "constraints", "?"), "yes", getattr(cls, "reference", "?"))
    for name, reason in unavailable_attentions().items():
        table.add_row(name, "builtin (optional)", "", "", f"no: {reason}", "")
    configs = Table(title="named configurations (usable wherever a name is)", show_lines=False)
    for col in ("name", "attention", "options"):
        configs.add_column(col, overflow="fold")
    for name, (attention, kwargs) in list_configs().items():
        configs.add_row(name, attention, ", ".join(f"{k}={v!r}" for k, v in kwargs.items()))
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
        return _usage_error(str(exc))
    if reasons:
        return _usage_error(f"{args.name} cannot run on grid {ctx.height}x{ctx.width}: {'; '.join(reasons)} (use --grid)")
    results = run_checks(ctx)
    for r in results:
        print(f"{r.status.upper():4} {r.name:18} {r.detail}")
    failed = [r for r in results if r.status == "fail"]
    print(f"{args.name}: {len(results) - len(failed)}/{len(results)} checks passed or skipped, {len(failed)} failed")
    return 1 if failed else 0


def _checkout_results() -> Path | None:
    """``results/`` of the attnbench checkout this code runs from (``None`` when installed outside a checkout)."""
    root = Path(__file__).resolve().parents[1]
    return root / "results" if (root / ".git").exists() else None


def _run(args: argparse.Namespace) -> tuple[int, list[Path]]:
    """Validate and run the suites; ``(exit code, results files written)``."""
    from rich.console import Console

    from attnbench.execute.runner import new_run_id, run_suite
    from attnbench.measure.provenance import code_version, tree_is_dirty
    from attnbench.report.console import print_summary
    from attnbench.spec.suite import load_suite
    from attnbench.spec.validate import SuiteError
    from attnbench.store.csvfile import ResultsError

    overrides = parse_assignments(args.set, "--set")
    try:  # the whole suite is validated before anything runs
        suites = [load_suite(path, overrides) for path in args.suites]
    except SuiteError as exc:
        return _usage_error(str(exc)), []
    if getattr(args, "only", None):
        wanted = set(args.only.split(","))
        known = {name for s in suites for c in s.cases for name in c.selectors}
        unknown = sorted(wanted - known)
        if unknown:
            return _usage_error(f"--only {','.join(unknown)}: no such task or label; known: "
                                f"{', '.join(sorted(known))}"), []
        suites = [dataclasses.replace(s, cases=tuple(c for c in s.cases if wanted & set(c.selectors)))
                  for s in suites]
    root = Path(args.out) if args.out else Path("results")
    committed = _checkout_results()
    if (committed is not None and root.resolve().is_relative_to(committed.resolve()) and tree_is_dirty()
            and not args.allow_dirty):
        return _usage_error(f"{root}: the checkout has uncommitted changes to tracked files, and results/ holds only "
                            "measurements of committed code; commit first, pass --allow-dirty (rows then carry "
                            "code_version <sha>+dirty.<diff hash>), or write elsewhere with --out DIR"), []
    console = Console(stderr=True)
    run_id = new_run_id(code_version())  # one run folder for every suite of this command
    paths = []
    for suite in suites:
        console.print(f"[bold]{suite.name}[/]: {len(suite.cases)} cases on {suite.device}"
                      + (f" (expected: {suite.expected_duration})" if suite.expected_duration else ""))
        try:
            report = run_suite(suite, root=root, run_id=run_id, fresh=args.fresh, show_progress=not args.quiet,
                               console=console)
        except ResultsError as exc:
            return _usage_error(str(exc)), paths
        counts = ", ".join(f"{k} {v}" for k, v in sorted(report.counts.items())) or "nothing new"
        console.print(f"{report.path}: {counts} in {report.wall_s:.0f} s")
        paths.append(report.path)
        # Cost rows only (a training suite prints nothing); wide enough for 7 grids when stdout is not a terminal.
        print_summary(report.rows, console=Console(width=max(Console().width, 150)), suite=suite.name)
    return 0, paths


def cmd_run(args: argparse.Namespace) -> int:
    return _run(args)[0]


def cmd_plot(args: argparse.Namespace) -> int:
    from attnbench.report.build import plot_results
    from attnbench.report.frame import NotResultsError

    missing = [p for p in args.results if not Path(p).exists()]
    if missing:
        return _usage_error(f"{missing[0]}: no such results file or directory")
    try:
        written = plot_results(args.results, out_dir=args.out, min_tokens=args.fit_min_tokens,
                               baseline=args.baseline, command=" ".join(["attnbench", "plot", *args.results]))
    except NotResultsError as exc:
        return _usage_error(str(exc))
    for path in written:
        print(path)
    return 0


def cmd_compare(args: argparse.Namespace) -> int:
    from rich.console import Console

    from attnbench.report.compare import compare, compare_accuracy, print_accuracy_comparison, print_comparison, verdict
    from attnbench.report.frame import NotResultsError, load_frame

    missing = [p for p in (args.a, args.b) if not Path(p).exists()]
    if missing:
        return _usage_error(f"{missing[0]}: no such results file or directory")
    try:
        table = compare(load_frame([args.a]), load_frame([args.b]), threshold=args.threshold, alpha=args.alpha)
    except NotResultsError as exc:
        return _usage_error(str(exc))
    console = Console(width=max(Console().width, 150))
    print_comparison(table, console, args.a, args.b, args.threshold, args.alpha, fmt=args.format)
    if args.format == "table":
        a, b = load_frame([args.a]), load_frame([args.b])
        if (a["kind"] == "accuracy").any() or (b["kind"] == "accuracy").any():
            print_accuracy_comparison(compare_accuracy(a, b), console, args.a, args.b)
    return verdict(table, args.fail_above, args.fail_below)


def _reference_for(suite_csv: Path) -> Path | None:
    """The committed reference results of the same suite: this machine's if there are any, else the newest."""
    committed = _checkout_results()
    if committed is None:
        return None
    found = sorted((committed / "reference").glob(f"**/{suite_csv.name}"), key=lambda p: str(p))
    same_machine = [p for p in found if suite_csv.parent.parent.name in p.parts]
    return (same_machine or found or [None])[-1]


def cmd_bench(args: argparse.Namespace) -> int:
    """Run the given suites (default: this machine's), plot what they wrote, and compare with the reference."""
    from rich.console import Console

    from attnbench.report.compare import compare, compare_accuracy, print_accuracy_comparison, print_comparison
    from attnbench.report.frame import load_frame
    from attnbench.spec.suite import default_suites

    suites = args.suites or default_suites()
    if not suites:
        return _usage_error("no default suites found next to the package (run from a checkout, or name a suite file)")
    run_args = argparse.Namespace(suites=suites, out=args.out, set=args.set, fresh=args.fresh, quiet=args.quiet,
                                  only=None, allow_dirty=args.allow_dirty)
    code, paths = _run(run_args)
    if code:
        return code
    console = Console(width=max(Console().width, 150))
    for path in paths:
        code = cmd_plot(argparse.Namespace(results=[str(path)], out=None, fit_min_tokens=args.fit_min_tokens,
                                           baseline=args.baseline))
        if code:
            return code
        reference = _reference_for(path)
        if reference is None:
            console.print(f"{path.stem}: no committed reference results to compare with")
            continue
        console.print(f"\n[bold]This machine vs the committed reference[/] ({reference}):")
        ref, new = load_frame([reference]), load_frame([path])
        if (new["kind"] == "cost").any():
            print_comparison(compare(ref, new), console, str(reference), str(path))
        if (new["kind"] == "accuracy").any():
            print_accuracy_comparison(compare_accuracy(ref, new), console, str(reference), str(path))
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
        return _usage_error(str(exc))


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="attnbench", description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    sub = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")

    p = sub.add_parser("list", help="registered attentions (built-in and plugins) and named configurations",
                       description="Registered attentions with complexity, constraints, source and availability, "
                                   "then the named configurations (e.g. swin_w8).")
    p.add_argument("--width", type=int, default=None, help="console width in columns (default: the terminal's)")
    p.set_defaults(func=cmd_list)

    p = sub.add_parser("check", help="run the contract checks on one registered attention (plugins too)",
                       description="One PASS/FAIL/SKIP line per contract check; exit 0 only if none fails.")
    p.add_argument("name", help="registry name or named configuration, e.g. mano or swin_w8")
    p.add_argument("--grid", nargs=2, type=int, default=[16, 16], metavar=("H", "W"),
                   help="grid to check on (default 16 16)")
    p.add_argument("--device", default="cpu", help="torch device to check on (default cpu)")
    p.add_argument("--dim", type=int, default=32, help="channels C (default 32)")
    p.add_argument("--heads", type=int, default=4, help="attention heads (default 4)")
    p.add_argument("--opt", action="append", default=[], metavar="KEY=VALUE",
                   help="constructor option, e.g. --opt window=4 (repeatable)")
    p.set_defaults(func=cmd_check)

    def run_options(p: argparse.ArgumentParser) -> None:
        p.add_argument("--out", default=None, metavar="DIR",
                       help="results root (default results/); a run writes DIR/<machine>/<run-id>/<suite>.csv")
        p.add_argument("--set", action="append", default=[], metavar="KEY=VALUE",
                       help="override a suite key with a TOML value, e.g. batch=2 or attentions[0].kwargs.window=4 "
                            "(repeatable)")
        p.add_argument("--fresh", action="store_true",
                       help="start a new run even where an interrupted run of the same suite could be resumed")
        p.add_argument("--allow-dirty", action="store_true",
                       help="let a checkout with uncommitted changes write into its results/ (refused by default)")
        p.add_argument("--quiet", action="store_true", help="no progress bar")

    p = sub.add_parser("run", help="run suites as a new run: results/<machine>/<run-id>/<suite>.csv",
                       description="Validate every suite, then run its cases, each in a fresh process with a timeout. "
                                   "Every run is a new measurement; only an interrupted run with the same suite, "
                                   "configurations, code, torch and machine is resumed.")
    p.add_argument("suites", nargs="+", metavar="SUITE", help="suite TOML file(s), e.g. suites/smoke.toml")
    run_options(p)
    p.add_argument("--only", default=None, metavar="NAMES",
                   help="run only these tasks (accuracy) or attention labels, comma-separated")
    p.set_defaults(func=cmd_run)

    p = sub.add_parser("plot", help="figures, scaling.md and accuracy.md from results CSV(s); never re-runs anything")
    p.add_argument("results", nargs="+", metavar="RESULTS", help="results CSV file(s) or folder(s)")
    p.add_argument("--out", default=None, metavar="DIR", help="output folder (default: plots/ next to the results)")
    p.add_argument("--fit-min-tokens", type=int, default=1024, metavar="N",
                   help="fit scaling exponents over grids with N >= this many tokens (default 1024 = 32²)")
    p.add_argument("--baseline", default=None, metavar="LABEL",
                   help="label that speed-ups, memory ratios and crossovers are measured against (default: full)")
    p.set_defaults(func=cmd_plot)

    p = sub.add_parser("bench", help="run suites (default: this machine's default suites), then plot them",
                       description="The main job: this machine's default suites (CUDA: suites/gpu.toml; CPU: "
                                   "suites/cpu.toml then suites/accuracy-quick.toml) or the given ones, then plots.")
    p.add_argument("suites", nargs="*", metavar="SUITE", help="suite TOML file(s) (default: this machine's)")
    run_options(p)
    p.add_argument("--fit-min-tokens", type=int, default=1024, metavar="N",
                   help="fit scaling exponents over grids with N >= this many tokens (default 1024 = 32²)")
    p.add_argument("--baseline", default=None, metavar="LABEL",
                   help="label that speed-ups, memory ratios and crossovers are measured against (default: full)")
    p.set_defaults(func=cmd_bench)

    p = sub.add_parser("compare", help="compare two results files or folders case by case (asv-style)",
                       description="Matches cases on their full configuration and grid; ratio B/A of median times "
                                   "with a bootstrap CI, Mann-Whitney U on the timing blocks, memory ratio, status "
                                   "changes. A change is significant when p < alpha and the ratio passes threshold.")
    p.add_argument("a", metavar="A", help="baseline results CSV or folder")
    p.add_argument("b", metavar="B", help="results CSV or folder compared with A")
    p.add_argument("--threshold", type=float, default=1.1, help="smallest ratio counted as a change (default 1.1)")
    p.add_argument("--alpha", type=float, default=0.002, help="significance level of the U test (default 0.002)")
    p.add_argument("--fail-above", type=float, default=None, metavar="R",
                   help="exit 1 when a case is significantly slower by a ratio >= R (e.g. 1.1)")
    p.add_argument("--fail-below", type=float, default=None, metavar="R",
                   help="exit 1 when a case is significantly faster by a ratio <= R (e.g. 0.9: time to refresh "
                        "a reference)")
    p.add_argument("--format", choices=("table", "csv", "json"), default="table",
                   help="console table (default), or CSV / JSON on stdout")
    p.set_defaults(func=cmd_compare)

    p = sub.add_parser("data", help="prepare datasets: darcy (generate), neuralop (fetch + verify), fashion (check)")
    p.add_argument("dataset", choices=("darcy", "neuralop", "fashion"), help="which dataset")
    p.add_argument("rest", nargs=argparse.REMAINDER, help="darcy: --res 32 64 --n-train 1000 --n-test 200 ...")
    p.set_defaults(func=cmd_data)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    try:
        return int(args.func(args) or 0)
    except ValueError as exc:  # bad user input detected by a mechanism or a loader: one line, exit 2
        return _usage_error(str(exc))


if __name__ == "__main__":
    sys.exit(main())
