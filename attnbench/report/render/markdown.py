"""Markdown: tables (GitHub-flavoured) and the files ``scaling.md``, ``accuracy.md`` and ``claims.md``, from the
analysis layer's objects. Formatting only: every number comes formatted by its :class:`Column`."""

from __future__ import annotations

from collections.abc import Sequence

from attnbench.report.analysis.table import Table

__all__ = ["markdown_table", "table_markdown"]


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
