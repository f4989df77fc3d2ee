"""The outcome of a case: one enum, the only place a status string is spelled.

Statuses are written to results files as their plain string value (``"ok"``, ``"oom"``, ...); a member compares
and hashes equal to its value, so ``row["status"] == Status.OK``, ``df["status"].isin(FAILURES)`` and
``"ok" in {Status.OK}`` all work on rows read back from a CSV.
"""

from __future__ import annotations

from enum import Enum

__all__ = ["ENDS_SERIES", "FAILURES", "NO_NUMBER", "Status"]


class Status(str, Enum):
    """What became of one case (a row's ``status`` column)."""

    OK = "ok"                    # measured
    OOM = "oom"                  # out of memory (the allocator said so)
    TIMEOUT = "timeout"          # no answer within the case's timeout
    CRASHED = "crashed"          # the child died without an answer (signal in ``reason``)
    ERROR = "error"              # the case raised; the exception is the reason
    UNSUPPORTED = "unsupported"  # the mechanism cannot run this configuration (its reasons)
    SKIPPED = "skipped"          # above the series' frontier: a smaller grid already failed

    # A str-mixin Enum hashes by member name; hash by value so members and plain strings meet in sets and dicts.
    __hash__ = str.__hash__

    def __str__(self) -> str:
        return self.value

    @property
    def short(self) -> str:
        """How a table cell or a figure's failure band names it."""
        return _SHORT[self]


_SHORT = {Status.OK: "ok", Status.OOM: "OOM", Status.TIMEOUT: "timeout", Status.CRASHED: "crash",
          Status.ERROR: "error", Status.UNSUPPORTED: "n/a", Status.SKIPPED: "skipped"}

# Failures that gave no number although the case was attempted (or skipped for an earlier one): the failure band of
# a figure, and a loss (or a win) in a crossover. ``unsupported`` is not a failure: the case never applied.
FAILURES: tuple[Status, ...] = (Status.OOM, Status.TIMEOUT, Status.CRASHED, Status.SKIPPED, Status.ERROR)
# Failures that end a series: larger grids of the same series would only fail the same way.
ENDS_SERIES: tuple[Status, ...] = (Status.OOM, Status.TIMEOUT)
# Statuses that a frontier table reports as the first failure (a skip is a consequence, not a failure).
NO_NUMBER: tuple[Status, ...] = (Status.OOM, Status.TIMEOUT, Status.CRASHED, Status.ERROR)
