"""Report: reads results, never runs anything. Two layers, imports pointing one way:

* :mod:`attnbench.report.analysis` — pure functions of result rows that return objects: :class:`~.analysis.table.Table`
  (columns with their formats, once), figure data, :class:`~.analysis.claims.Claim` verdicts. No matplotlib, no
  jinja2, no files written.
* :mod:`attnbench.report.render` — markdown, HTML, console and matplotlib renderers that only format those objects,
  and the files ``attnbench plot`` / ``report`` / ``claims`` write.

Nothing in the package imports it but :mod:`attnbench.api`.
"""
from __future__ import annotations

import importlib
from typing import Any

# What the rest of attnbench (the API) calls, and where it lives; imported on first use, so that `attnbench list`
# never pays for pandas or matplotlib.
_ENTRY_POINTS = {
    "NotResultsError": "attnbench.report.analysis.frame",
    "load_frame": "attnbench.report.analysis.frame",
    "compare": "attnbench.report.analysis.compare",
    "compare_accuracy": "attnbench.report.analysis.compare",
    "verdict": "attnbench.report.analysis.compare",
    "machine_drift": "attnbench.report.analysis.compare",
    "print_comparison": "attnbench.report.render.console",
    "print_accuracy_comparison": "attnbench.report.render.console",
    "print_summary": "attnbench.report.render.console",
    "plot_results": "attnbench.report.render.files",
    "write_claims_md": "attnbench.report.render.files",
    "build_report": "attnbench.report.render.html",
}
__all__ = sorted(_ENTRY_POINTS)


def __getattr__(name: str) -> Any:
    if name not in _ENTRY_POINTS:
        raise AttributeError(f"module 'attnbench.report' has no attribute {name!r}")
    return getattr(importlib.import_module(_ENTRY_POINTS[name]), name)
