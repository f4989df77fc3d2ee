"""Markdown: tables (GitHub-flavoured) and the files ``scaling.md``, ``accuracy.md`` and ``claims.md``, from the
analysis layer's objects. Formatting only: every number comes formatted by its :class:`Column`."""

from __future__ import annotations

from collections.abc import Sequence

import pandas as pd

from attnbench.report.analysis.accuracy import accuracy_summary, pairs_table, per_seed
from attnbench.report.analysis.claims import claims_table
from attnbench.report.analysis.frame import machine_line
from attnbench.report.analysis.protocol import lr_search_tables
from attnbench.report.analysis.scaling import scaling_notes, scaling_tables
from attnbench.report.analysis.sweep import lr_sweeps, sweep_tables
from attnbench.report.analysis.table import Table
from attnbench.store.status import Status

__all__ = ["accuracy_md", "claims_md", "markdown_table", "scaling_md", "sweep_markdown", "table_markdown"]


def markdown_table(header: Sequence[str], rows: Sequence[Sequence[str]]) -> str:
    """A GitHub-flavoured markdown table (``|`` inside a cell escaped)."""
    def cell(text: str) -> str:
        return str(text).replace("|", "\\|").replace("\n", " ")

    lines = ["| " + " | ".join(map(cell, header)) + " |", "|" + "---|" * len(header)]
    lines += ["| " + " | ".join(map(cell, r)) + " |" for r in rows]
    return "\n".join(lines)


def table_markdown(table: Table, heading: str | None = "##") -> str:
    """A :class:`Table` as markdown: a heading with its note (``heading=None``: the bare table), then the table,
    or its ``empty`` text when it has no rows."""
    lines = []
    if heading:
        lines += [f"{heading} {table.title}" + (f" ({table.note})" if table.note else ""), ""]
    if not len(table) and table.empty:
        lines.append(table.empty)
    else:
        lines.append(markdown_table(table.headers, table.rows()))
    return "\n".join(lines)


def _reproduce(command: str) -> list[str]:
    return [f"Reproduce: `{command}`", ""] if command else []


def scaling_md(df: pd.DataFrame, min_tokens: int = 1024, command: str = "", baseline: str | None = None) -> str:
    """``scaling.md``: what the cost numbers are, then exponents, slopes, roofline, frontier, crossovers, ratios."""
    lines = [f"# Scaling summary: {', '.join(sorted(df['suite'].unique()))}", "", *_reproduce(command)]
    for note in scaling_notes(df):
        lines += [note, ""]
    for table in scaling_tables(df, min_tokens, baseline):
        lines += ["", table_markdown(table)]
    return "\n".join(lines) + "\n"


def sweep_markdown(df: pd.DataFrame) -> str:
    """Every learning-rate sweep in the accuracy rows ``df`` as a table with its rule and the per-mechanism
    answer."""
    results = sweep_tables(lr_sweeps(df))
    if not results:
        return "No learning-rate sweep in these results."
    parts = []
    for sweep in results:
        parts += [f"**{sweep.table.title}** — {sweep.table.note}:", "", table_markdown(sweep.table, heading=None), "",
                  *(f"- `{label}` {answer}" for label, answer in sweep.answers), ""]
    return "\n".join(parts).rstrip()


def accuracy_md(df: pd.DataFrame) -> str:
    """``accuracy.md``: the accuracy table, the pairwise comparisons, the learning-rate sweeps, failed rows."""
    table, pairs = accuracy_summary(df), pairs_table(df)
    lines = [f"# Accuracy: {', '.join(sorted(df['suite'].unique()))}", "", f"{machine_line(df)}. {table.note}.", "",
             table_markdown(table, heading=None), "", f"## {pairs.title}", "",
             f"{pairs.note[0].upper()}{pairs.note[1:]}.", "", table_markdown(pairs, heading=None)]
    for search in lr_search_tables(per_seed(df, search=True)):
        lines += ["", f"## {search.title}", "", f"{search.note[0].upper()}{search.note[1:]}.", "",
                  table_markdown(search, heading=None)]
    if not lr_sweeps(df).empty:
        lines += ["", "## Learning-rate sweeps", "", sweep_markdown(df)]
    bad = df[df["status"] != Status.OK]
    if len(bad):
        lines += ["", "Rows that did not produce a number:", ""]
        lines += [f"- {r['task']} / {r['label']} seed {r['seed']} at {r['eval_res']}: {r['status']} — {r['reason']}"
                  for _, r in bad.iterrows()]
    return "\n".join(lines) + "\n"


def claims_md(df: pd.DataFrame, command: str = "") -> str:
    """``claims.md``: each claim of the MANO abstract with what was measured and its verdict."""
    lines = ["# The MANO paper's claims against attnbench's measurements", "",
             "Colagrande et al., arXiv 2507.02748, abstract. Generated from results; do not edit by hand.", "",
             *_reproduce(command), machine_line(df) + ".", "", table_markdown(claims_table(df), heading=None)]
    return "\n".join(lines) + "\n"
