"""Reading results: figures and tables (``plot``), the HTML report, the paper's claims and the comparison of two
runs. Only through the report layer's facade, :mod:`attnbench.report`, imported when called."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

from attnbench.api.errors import InputError
from attnbench.api.runs import Paths

if TYPE_CHECKING:  # annotations only: importing the API must not import pandas
    import pandas as pd

__all__ = ["CompareOptions", "Comparison", "PlotOptions", "ReportOptions", "claims", "compare", "plot", "report"]


def _existing(paths: Paths) -> list[str]:
    """The paths as strings; the first that does not exist is the user's error."""
    missing = [p for p in paths if not Path(p).exists()]
    if missing:
        raise InputError(f"{missing[0]}: no such results file or directory")
    return [str(p) for p in paths]


@dataclass(frozen=True)
class PlotOptions:
    """``out``: folder (default ``plots/`` next to the results); scaling exponents are fitted over grids with at
    least ``min_tokens`` tokens; ratios are measured against ``baseline`` (default ``full``); ``command`` is
    written into the markdown as the way to regenerate it."""

    out: str | Path | None = None
    min_tokens: int = 1024
    baseline: str | None = None
    command: str = ""


def plot(results: Paths, options: PlotOptions | None = None) -> list[Path]:
    """Figures, ``scaling.md`` and ``accuracy.md`` of results files or folders; returns the files written."""
    from attnbench.report import plot_results

    options = options or PlotOptions()
    return plot_results(_existing(results), out_dir=options.out, min_tokens=options.min_tokens,
                        baseline=options.baseline, command=options.command)


@dataclass(frozen=True)
class ReportOptions:
    """``output``: the HTML file; ``reference``: results to compare with, case by case; the rest as
    :class:`PlotOptions`."""

    output: str | Path = "report.html"
    reference: Sequence[str | Path] | None = None
    min_tokens: int = 1024
    baseline: str | None = None
    command: str = ""


def report(results: Paths, options: ReportOptions | None = None) -> Path:
    """One self-contained HTML page of the results (and the comparison with ``options.reference``)."""
    from attnbench.report import build_report

    options = options or ReportOptions()
    paths = _existing([*results, *(options.reference or [])])[:len(results)]
    if Path(options.output).is_dir():
        raise InputError(f"-o {options.output}: is a directory; name the HTML file to write, e.g. report.html")
    reference = [str(p) for p in options.reference] if options.reference else None
    return build_report(paths, options.output, reference=reference, min_tokens=options.min_tokens,
                        baseline=options.baseline, command=options.command)


def claims(results: Paths, output: str | Path = "claims.md", command: str = "") -> Path:
    """The MANO paper's claims against the results: ``claims.md`` with a verdict per claim."""
    from attnbench.report import load_frame, write_claims_md

    return write_claims_md(load_frame(_existing(results)), output, command=command)


@dataclass(frozen=True)
class CompareOptions:
    """A change is significant when the U test's p < ``alpha`` and the ratio passes ``threshold``; ``fail_above``
    / ``fail_below`` set :attr:`Comparison.exit_code` for significant slowdowns / speed-ups that reach them."""

    threshold: float = 1.1
    alpha: float = 0.01
    fail_above: float | None = None
    fail_below: float | None = None


@dataclass
class Comparison:
    """B against A: the cost table (one row per case), the training table (None without training rows) and the
    exit code ``--fail-above`` / ``--fail-below`` ask for (0 or 1)."""

    a: str
    b: str
    table: pd.DataFrame
    accuracy: pd.DataFrame | None
    exit_code: int
    drift: str = ""  # how far the machine itself moved between A and B, when beyond its noise
    speed: dict[str, float] | None = None  # the canaries' ratio B/A (compute, memory)
    floor: float | None = None  # B's machine's calibrated A/A noise floor, if any


def compare(a: str | Path, b: str | Path, options: CompareOptions | None = None) -> Comparison:
    """Compare two results files or folders case by case (asv-style)."""
    from attnbench.report import compare as compare_cost
    from attnbench.report import compare_accuracy, load_frame, machine_drift, verdict

    options = options or CompareOptions()
    path_a, path_b = _existing([a, b])
    frame_a, frame_b = load_frame([path_a]), load_frame([path_b])
    floor = _floor(frame_b)
    table = compare_cost(frame_a, frame_b, threshold=options.threshold, alpha=options.alpha, floor=floor)
    accuracy = None
    if (frame_a["kind"] == "accuracy").any() or (frame_b["kind"] == "accuracy").any():
        accuracy = compare_accuracy(frame_a, frame_b)
    moved = machine_drift(frame_a, frame_b, floor)
    drift = " ".join(filter(None, [moved["sentence"], *canary_warnings(frame_a, frame_b)]))
    return Comparison(path_a, path_b, table, accuracy, verdict(table, options.fail_above, options.fail_below),
                      drift=drift, floor=floor, speed={k: moved[k] for k in ("compute", "memory")})


def canary_warnings(*frames: pd.DataFrame) -> list[str]:
    """For each run whose elementwise canary (``runtime.canary_ms``) is off against its machine's calibrated one,
    a sentence naming the mechanisms that depend on that kernel (their rows' ``impl["canary"]``)."""
    import json

    from attnbench.api.calibrate import calibrated_canary

    out = []
    for frame in frames:
        runtime = json.loads(frame["runtime"].iloc[0]) if frame["runtime"].iloc[0] else {}
        machine = str(frame["machine"].iloc[0])
        calibrated = calibrated_canary(machine)
        for kernel, ms in (runtime.get("canary_ms") or {}).items():
            ref = calibrated.get(kernel)
            if not ref or not ms or CANARY_TOLERANCE ** -1 < ms / ref < CANARY_TOLERANCE:
                continue
            uses = sorted({str(lab) for lab, impl in zip(frame["label"], frame["impl"])
                           if isinstance(impl, str) and json.loads(impl or "{}").get("canary") == kernel})
            out.append(f"Run {frame['run_id'].iloc[0]}: its {kernel} canary took {ms:.3g} ms, {ms / ref:.2g}× this "
                       f"machine's calibrated {ref:.3g} ms; the times of {', '.join(uses) or 'mechanisms using it'} "
                       "are suspect.")
    return out


# An elementwise canary this far from the machine's calibrated value (either way) means the environment moved.
CANARY_TOLERANCE = 2.0


def _floor(frame: pd.DataFrame) -> float | None:
    """The calibrated noise floor of the machine that measured ``frame`` (its first row's), if any."""
    from attnbench.api.calibrate import noise_floor

    machines = [m for m in frame["machine"].astype(str) if m]
    return noise_floor(machines[0]) if machines else None
