"""attnbench: benchmark attention mechanisms on 2-D grids — runtime, peak memory and accuracy across resolutions.

Commands: list (registered mechanisms and named configurations), check (contract checks of one mechanism), run
(suites, one fresh process per case), plot (figures and tables from results), report (one self-contained HTML
page), compare (two runs, case by case), bench (run, plot, compare with the committed reference, report), roofline
(this machine's peaks), data (prepare datasets). This module parses arguments only; each command
(:mod:`attnbench.commands`) turns them into options of the Python API (:mod:`attnbench.api`) and prints its results.
"""

from __future__ import annotations

import argparse
import os
import shlex
import sys
from collections.abc import Sequence

from attnbench.commands import (
    cmd_bench,
    cmd_calibrate,
    cmd_check,
    cmd_claims,
    cmd_compare,
    cmd_data,
    cmd_list,
    cmd_plot,
    cmd_report,
    cmd_roofline,
    cmd_run,
    usage_error,
)

__all__ = ["build_parser", "main"]


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="attnbench", description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    sub = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")

    p = sub.add_parser("list", help="registered attentions (built-in and plugins) and named configurations",
                       description="Registered attentions with complexity, constraints, source and availability, "
                                   "then the named configurations (e.g. swin_w8).")
    p.add_argument("--width", type=int, default=None, help="console width in columns (default: the terminal's)")
    p.add_argument("--format", choices=("table", "csv", "json"), default=None,
                   help="table (default on a terminal), csv (default when piped: one line per row, for grep) or json")
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

    def report_options(p: argparse.ArgumentParser) -> None:
        p.add_argument("--fit-min-tokens", type=int, default=1024, metavar="N",
                       help="fit scaling exponents over grids with N >= this many tokens (default 1024 = 32²)")
        p.add_argument("--baseline", default=None, metavar="LABEL",
                       help="label that speed-ups, memory ratios and crossovers are measured against (default: full)")

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
        p.add_argument("--executor", choices=("local", "ray"), default="local",
                       help="where cases run: local (default, one at a time) or ray (a Ray cluster; one case per GPU, "
                            "one CPU timing case per node; needs pip install 'attnbench[ray]')")
        p.add_argument("--address", default=None, metavar="auto|HOST:PORT",
                       help="Ray cluster to join (with --executor ray); default: start a new local Ray instance "
                            "(RAY_ADDRESS and clusters already running here are not joined)")
        p.add_argument("--ray-pack-timing", action="store_true",
                       help="with --executor ray: a CPU timing case holds only its `threads` CPUs instead of a whole "
                            "node (more parallel; timings then share caches and memory bandwidth)")
        p.add_argument("--dry-run", action="store_true",
                       help="list the cases (and which an interrupted run would resume) with their earlier duration "
                            "on this machine; run nothing, write nothing")
        p.add_argument("--format", choices=("table", "csv", "json"), default=None,
                       help="summary of the measured cases: table (default) or one line per case as csv/json on "
                            "stdout (progress and messages go to stderr)")

    p = sub.add_parser("run", help="run suites as a new run: results/<machine>/<run-id>/<suite>.csv",
                       description="Validate every suite, then run its cases, each in a fresh process with a timeout. "
                                   "Every run is a new measurement; only an interrupted run with the same suite, "
                                   "configurations, code, torch and machine is resumed.")
    p.add_argument("suites", nargs="+", metavar="SUITE", help="suite TOML file(s), e.g. suites/smoke.toml")
    run_options(p)
    p.add_argument("--only", default=None, metavar="NAMES",
                   help="run only these tasks (accuracy), attention labels or TASK/LABEL pairs, comma-separated")
    p.set_defaults(func=cmd_run)

    p = sub.add_parser("plot", help="figures, scaling.md and accuracy.md from results CSV(s); never re-runs anything")
    p.add_argument("results", nargs="+", metavar="RESULTS", help="results CSV file(s) or folder(s)")
    p.add_argument("--out", default=None, metavar="DIR", help="output folder (default: plots/ next to the results)")
    report_options(p)
    p.set_defaults(func=cmd_plot)

    p = sub.add_parser("bench", help="run suites (default: this machine's default suites), then plot them",
                       description="The main job: this machine's default suites (CUDA: suites/gpu.toml; CPU: "
                                   "suites/cpu.toml then suites/accuracy-quick.toml) or the given ones, then plots.")
    p.add_argument("suites", nargs="*", metavar="SUITE", help="suite TOML file(s) (default: this machine's)")
    p.add_argument("--quick", action="store_true",
                   help="first look at a new machine (made for one GPU, <= 8 min on an H200): roofline, `check` of "
                        "every mechanism on the device, then suites/gpu-quick.toml; quick-check.json goes next to "
                        "the results. Dry run on CPU: --set device=cpu --set dtype=float32 --set 'grids=[[8,8]]'")
    run_options(p)
    report_options(p)
    p.set_defaults(func=cmd_bench)

    p = sub.add_parser("report", help="one self-contained HTML page of results (figures, tables, provenance)",
                       description="Writes one HTML file that opens offline: machines and provenance, per suite the "
                                   "scaling figures, exponents, frontier, crossover, roofline and accuracy tables, "
                                   "the comparison with --reference, and every row in a sortable, filterable table.")
    p.add_argument("results", nargs="+", metavar="RESULTS", help="results CSV file(s) or folder(s)")
    p.add_argument("-o", "--output", default="report.html", metavar="FILE",
                   help="HTML file to write (default report.html)")
    p.add_argument("--reference", action="append", default=None, metavar="RESULTS",
                   help="reference results file or folder to compare with, case by case (repeatable)")
    report_options(p)
    p.set_defaults(func=cmd_report)

    p = sub.add_parser("claims", help="the MANO paper's claims against results: claims.md with a verdict each",
                       description="Each claim of the MANO abstract (linear cost, global receptive field, accuracy "
                                   "rivalling ViT and Swin, 1-2 orders of magnitude less runtime and memory, Darcy "
                                   "16² relative MSE 0.008) with the measured numbers, conditions and a verdict by a "
                                   "stated rule.")
    p.add_argument("results", nargs="+", metavar="RESULTS", help="results CSV file(s) or folder(s), cost and accuracy")
    p.add_argument("-o", "--output", default="claims.md", metavar="FILE", help="markdown file (default claims.md)")
    p.set_defaults(func=cmd_claims)

    p = sub.add_parser("compare", help="compare two results files or folders case by case (asv-style)",
                       description="Matches cases on their full configuration and grid; ratio B/A of the medians of "
                                   "per-process medians with a hierarchical bootstrap CI, Mann-Whitney U over the "
                                   "process medians, memory ratio, status changes. A change is significant when "
                                   "p < alpha and the ratio passes threshold and this machine's calibrated noise "
                                   "floor (attnbench calibrate); runs measured once get 'too few replicates'.")
    p.add_argument("a", metavar="A", help="baseline results CSV or folder")
    p.add_argument("b", metavar="B", help="results CSV or folder compared with A")
    p.add_argument("--threshold", type=float, default=1.1, help="smallest ratio counted as a change (default 1.1)")
    p.add_argument("--alpha", type=float, default=0.01,
                   help="significance level of the U test over process medians (default 0.01)")
    p.add_argument("--fail-above", type=float, default=None, metavar="R",
                   help="exit 1 when a case is significantly slower by a ratio >= R (e.g. 1.1)")
    p.add_argument("--fail-below", type=float, default=None, metavar="R",
                   help="exit 1 when a case is significantly faster by a ratio <= R (e.g. 0.9: time to refresh "
                        "a reference)")
    p.add_argument("--format", choices=("table", "csv", "json"), default="table",
                   help="console table (default), or CSV / JSON on stdout")
    p.set_defaults(func=cmd_compare)

    p = sub.add_parser("calibrate", help="this machine's A/A noise floor and compare's power (stored per machine)",
                       description="Runs suites/calibrate.toml (every case in 12 interleaved rounds, with a planted "
                                   "1.25x slowdown of full), compares its odd rounds with its even rounds case by case "
                                   "(an A/A comparison: the noise floor) and full against the planted layer (the "
                                   "power), and stores the result for this machine; compare then reads it.")
    p.add_argument("--suite", default=None, metavar="SUITE", help="calibration suite (default: the packaged one)")
    run_options(p)
    p.set_defaults(func=cmd_calibrate)

    p = sub.add_parser("roofline", help="measure this machine's matmul peak and copy bandwidth (cached per machine)",
                       description="Dense matmul FLOP/s (float32, and bfloat16/float16 where supported) and copy "
                                   "bandwidth with the benchmark timer; cached per machine, device and thread count, "
                                   "recorded by later runs and used by scaling.md's achieved-vs-roofline table.")
    p.add_argument("--device", default="auto", help="auto (default), cpu or cuda")
    p.add_argument("--threads", type=int, default=None, help="intra-op threads (default: all CPUs)")
    p.add_argument("--n", type=int, default=2048, help="matmul side (default 2048)")
    p.add_argument("--copy-mib", type=int, default=256, help="copy size in MiB (default 256)")
    p.add_argument("--force", action="store_true", help="measure again even when a cached result exists")
    p.set_defaults(func=cmd_roofline)

    p = sub.add_parser("data", help="prepare datasets: darcy and navier-stokes (generate), neuralop (fetch + verify), "
                                    "fashion (check)")
    p.add_argument("dataset", choices=("darcy", "navier-stokes", "neuralop", "fashion"), help="which dataset")
    p.add_argument("rest", nargs=argparse.REMAINDER,
                   help="darcy / navier-stokes: --res 32 64 --n-train 1000 --n-test 200 ...")
    p.set_defaults(func=cmd_data)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    args.command_line = shlex.join(["attnbench", *(sys.argv[1:] if argv is None else argv)])
    try:
        return int(args.func(args) or 0)
    except BrokenPipeError:  # `attnbench list | head`: the reader left; no traceback (the Python docs' recipe)
        devnull = os.open(os.devnull, os.O_WRONLY)
        os.dup2(devnull, sys.stdout.fileno())
        return 141  # 128 + SIGPIPE, what a shell reports for a writer killed by it
    except ValueError as exc:  # bad user input (the API's InputError, a suite, a mechanism): one line, exit 2
        return usage_error(str(exc))


if __name__ == "__main__":
    sys.exit(main())
