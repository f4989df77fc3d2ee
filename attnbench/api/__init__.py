"""attnbench as Python functions: what each ``attnbench`` command does, with typed options and typed results.

The command line (:mod:`attnbench.cli`) parses arguments into these option dataclasses, calls these functions and
prints what they return; tests and notebooks call them directly::

    from attnbench import api

    result = api.run(["suites/smoke.toml"], api.RunOptions(out="/tmp/results", overrides={"grids": [[8, 8]]}))
    comparison = api.compare(result.paths[0], "results/reference/.../smoke.csv")

Bad input raises :class:`InputError` or another ``ValueError`` (a suite's
:class:`~attnbench.spec.validate.SuiteError`, a results file's ``NotResultsError``) whose ``str()`` is one line
naming the file, key or option; nothing here exits the interpreter or builds command-line arguments.

By role: :mod:`.runs` (validate, plan and run suites), :mod:`.results` (plot, report, claims, compare),
:mod:`.mechanisms` (list, check, roofline) and :mod:`.benchmark` (``bench``, which composes the others).
Importing the API imports none of rich, pandas or matplotlib (``attnbench list`` stays quick); each function imports
what it needs when called.
"""

from __future__ import annotations

from attnbench.api.benchmark import BenchOptions, BenchResult, bench, quick_check
from attnbench.api.calibrate import CalibrateOptions, Calibration, calibrate, noise_floor
from attnbench.api.errors import InputError
from attnbench.api.mechanisms import CheckOptions, Roofline, RooflineOptions, check, list_mechanisms, roofline
from attnbench.api.results import CompareOptions, Comparison, PlotOptions, ReportOptions, claims, compare, plot, report
from attnbench.api.runs import RunOptions, RunResult, SuitePlan, load_suites, plan, run

__all__ = ["BenchOptions", "BenchResult", "CalibrateOptions", "Calibration", "CheckOptions", "CompareOptions",
           "Comparison", "InputError", "PlotOptions", "ReportOptions", "Roofline", "RooflineOptions", "RunOptions",
           "RunResult", "SuitePlan", "bench", "calibrate", "check", "claims", "compare", "list_mechanisms",
           "load_suites", "noise_floor", "plan", "plot", "quick_check", "report", "roofline", "run"]
