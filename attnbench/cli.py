"""Command line: ``attnbench list | check``; argument parsing only, the work lives in the other modules."""

from __future__ import annotations

import argparse
import ast
import sys
from collections.abc import Sequence
from typing import Any

__all__ = ["main"]


def _parse_value(text: str) -> Any:
    """``key=value`` values: Python literals (ints, floats, bools, lists, quoted strings), else the raw string."""
    try:
        return ast.literal_eval(text)
    except (ValueError, SyntaxError):
        lowered = text.lower()
        if lowered in ("true", "false"):
            return lowered == "true"
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

    from attnbench.registry import attention_source, get_attention, list_attentions, unavailable_attentions

    table = Table(title="registered attentions", show_lines=False)
    for col in ("name", "source", "complexity (N = H·W)", "constraints", "available", "reference"):
        table.add_column(col, overflow="fold")
    for name in list_attentions():
        cls = get_attention(name)
        table.add_row(name, attention_source(name), getattr(cls, "complexity", "?"),
                      getattr(cls, "constraints", "?"), "yes", getattr(cls, "reference", "?"))
    for name, reason in unavailable_attentions().items():
        table.add_row(name, "builtin (optional)", "", "", f"no: {reason}", "")
    Console(width=args.width).print(table)
    return 0


def cmd_check(args: argparse.Namespace) -> int:
    import torch

    from attnbench.contract import CheckContext, run_checks, supported
    from attnbench.registry import UnknownAttentionError

    ctx = CheckContext(args.name, height=args.grid[0], width=args.grid[1], dim=args.dim, heads=args.heads,
                       device=args.device, kwargs=parse_assignments(args.opt, "--opt"))
    try:  # bad names and arguments are the user's input errors: one line, exit 2, before any check runs
        reasons = supported(ctx.build(), ctx.height, ctx.width, ctx.device, torch.float32)
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


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="attnbench", description=__doc__)
    sub = parser.add_subparsers(dest="command", required=True)

    p = sub.add_parser("list", help="registered attentions with complexity, constraints and availability")
    p.add_argument("--width", type=int, default=None, help="console width (default: terminal)")
    p.set_defaults(func=cmd_list)

    p = sub.add_parser("check", help="run the contract checks on one registered attention (plugins too)")
    p.add_argument("name")
    p.add_argument("--grid", nargs=2, type=int, default=[16, 16], metavar=("H", "W"))
    p.add_argument("--device", default="cpu")
    p.add_argument("--dim", type=int, default=32)
    p.add_argument("--heads", type=int, default=4)
    p.add_argument("--opt", action="append", default=[], metavar="KEY=VALUE", help="constructor option, repeatable")
    p.set_defaults(func=cmd_check)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    try:
        return int(args.func(args) or 0)
    except ValueError as exc:  # bad user input detected by a mechanism or a loader: one line, exit 2
        return _usage_error(str(exc))


if __name__ == "__main__":
    sys.exit(main())
