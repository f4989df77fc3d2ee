"""A table as data: what the analysis layer returns and every renderer (markdown, HTML, console, README) draws.

A :class:`Table` holds raw records and its :class:`Column` specifications — header, how a value is formatted, what
it sorts by — written once. Renderers never format a number themselves, so a markdown file, the HTML report and a
generated README block cannot disagree on a column; a shorter view of the same table is :meth:`Table.select`.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field, replace
from typing import Any

__all__ = ["Column", "Table", "mean_std"]


def _missing(value: Any) -> bool:
    if value is None:
        return True
    try:
        return bool(math.isnan(value))
    except TypeError:
        return False


def mean_std(mean: float, std: float, digits: int = 4) -> str:
    """``mean ± std`` as accuracy tables print it ("" without a mean, no ± without a std)."""
    return "" if _missing(mean) else f"{mean:.{digits}g}" + ("" if _missing(std) else f" ± {std:.2g}")


@dataclass(frozen=True)
class Column:
    """One column: ``key`` in the records, its ``header``, and how a value becomes text.

    ``fmt`` is a format spec for numbers (``".4g"``, ``".0f"``) or a function of the whole record (for cells that
    combine fields, such as ``mean ± std``); without it the value is shown with ``str``. ``sort`` names the record
    field a sortable view orders the column by (default: the value itself when it is a number).
    """

    key: str
    header: str
    fmt: str | Callable[[dict[str, Any]], str] = ""
    sort: str | None = None

    def text(self, record: dict[str, Any]) -> str:
        if callable(self.fmt):
            return self.fmt(record)
        value = record.get(self.key)
        if _missing(value):
            return ""
        if self.fmt and isinstance(value, (int, float)) and not isinstance(value, bool):
            return format(value, self.fmt)
        return str(value)

    def sort_value(self, record: dict[str, Any]) -> float | None:
        value = record.get(self.sort or self.key)
        if isinstance(value, bool) or not isinstance(value, (int, float)) or _missing(value):
            return None
        return float(value)


@dataclass(frozen=True)
class Table:
    """A titled table: ``records`` (one dict per row, raw values) shown through ``columns``; ``note`` says what the
    numbers are computed over; ``key`` identifies it (HTML anchors, README blocks); ``empty`` is what to say when
    there are no records."""

    key: str
    title: str
    columns: tuple[Column, ...]
    records: tuple[dict[str, Any], ...] = field(default_factory=tuple)
    note: str = ""
    empty: str = ""

    @classmethod
    def of_text(cls, key: str, title: str, headers: Sequence[str], rows: Sequence[Sequence[str]],
                note: str = "", empty: str = "") -> Table:
        """A table whose cells are already text (pivoted views such as grid-by-mechanism)."""
        columns = tuple(Column(h, h) for h in headers)
        return cls(key, title, columns, tuple(dict(zip(headers, r)) for r in rows), note, empty)

    @property
    def headers(self) -> list[str]:
        return [c.header for c in self.columns]

    def rows(self) -> list[list[str]]:
        """Every cell as text, in column order."""
        return [[c.text(r) for c in self.columns] for r in self.records]

    def sort_values(self) -> list[list[float | None]]:
        return [[c.sort_value(r) for c in self.columns] for r in self.records]

    def select(self, *keys: str, title: str | None = None, note: str | None = None) -> Table:
        """The same table with only the columns ``keys`` (in that order): a shorter view, the same formats."""
        by_key = {c.key: c for c in self.columns}
        unknown = [k for k in keys if k not in by_key]
        if unknown:
            raise KeyError(f"table {self.key!r} has no column {', '.join(unknown)}; it has {', '.join(by_key)}")
        return replace(self, columns=tuple(by_key[k] for k in keys), title=self.title if title is None else title,
                       note=self.note if note is None else note)

    def __len__(self) -> int:
        return len(self.records)
