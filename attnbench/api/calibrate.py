"""``attnbench calibrate``: this machine's A/A noise floor and the power of ``compare``, measured once and stored
per machine, so a comparison can say "within this machine's noise" instead of "significant"."""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

from attnbench.api.runs import RunOptions, run
from attnbench.store.layout import checkout_results, suite_files

if TYPE_CHECKING:
    from rich.console import Console

__all__ = ["CalibrateOptions", "Calibration", "calibrate", "calibration_path", "noise_floor"]


def calibration_path(machine: str) -> Path:
    """Where this machine's calibration is kept: ``$ATTNBENCH_DATA`` (or ``~/.cache/attnbench``)
    ``/calibration-<machine>.json``."""
    from attnbench.data import cache_dir

    return cache_dir() / f"calibration-{machine}.json"


def _committed(machine: str) -> Path | None:
    """The newest calibration committed with a checkout's reference runs of ``machine``."""
    results = checkout_results()
    if results is None:
        return None
    found = [p.parent / "calibration.json" for p in suite_files(results / "reference", "calibrate")
             if p.parent.parent.name == machine and (p.parent / "calibration.json").exists()]
    return found[-1] if found else None


def _stored(machine: str) -> dict[str, Any]:
    for path in (calibration_path(machine), _committed(machine)):
        if path is not None and path.exists():
            return dict(json.loads(path.read_text()))
    return {}


def calibrated_canary(machine: str) -> dict[str, float]:
    """The elementwise canaries (``runtime.canary_ms``: exp, expm1) of ``machine``'s calibration run."""
    return dict(_stored(machine).get("canary_ms") or {})


def noise_floor(machine: str) -> float | None:
    """The A/A noise floor of ``machine`` (a ratio ≥ 1) from its stored or committed calibration; None if the
    machine was never calibrated."""
    value = _stored(machine).get("noise_floor")
    return float(value) if value else None


@dataclass(frozen=True)
class CalibrateOptions:
    """The calibration suite (default: the packaged ``calibrate.toml``), where its run goes, and overrides."""

    suite: str | Path | None = None
    run: RunOptions = field(default_factory=RunOptions)


@dataclass
class Calibration:
    """What was measured (``result``: noise floor, A/A and planted flag counts, per-case tables), where it is
    stored (``stored``: the machine's file; ``beside``: next to the run's results) and the run's results file."""

    machine: str
    result: dict[str, Any]
    results: Path
    stored: Path
    beside: Path


def calibrate(options: CalibrateOptions | None = None, *, console: Console | None = None) -> Calibration:
    """Run the calibration suite (every case in interleaved rounds), compute the floor and the power from its odd
    and even rounds, and store them for this machine."""
    from attnbench.attention.planted import BASE, LABEL
    from attnbench.report.analysis.calibration import calibration
    from attnbench.report.analysis.frame import load_frame
    from attnbench.spec.suite import SUITES_DIR

    options = options or CalibrateOptions()
    suite = str(options.suite or SUITES_DIR / "calibrate.toml")
    done = run([suite], options.run, console=console)
    path = done.paths[0]
    rows = load_frame([path], replicates="rows")
    result = calibration(rows, planted=LABEL, base=BASE)
    machine = str(rows["machine"].iloc[0])
    runtime = json.loads(rows["runtime"].iloc[0] or "{}")
    result.update(machine=machine, run_id=str(rows["run_id"].iloc[0]), results=str(path),
                  canary_ms=runtime.get("canary_ms", {}))
    text = json.dumps(result, indent=1, sort_keys=True, default=float) + "\n"
    stored = calibration_path(machine)
    stored.parent.mkdir(parents=True, exist_ok=True)
    for target in (stored, path.parent / "calibration.json"):
        tmp = target.with_name(f".{target.name}.tmp")
        tmp.write_text(text)
        tmp.replace(target)
    return Calibration(machine, result, path, stored, path.parent / "calibration.json")
