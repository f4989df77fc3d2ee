"""Where results live: the only module that knows the results layout (asv's ``results/<machine>/`` idea).

::

    <root>/<machine>/<run-id>/<suite>.csv     the rows of one run of one suite
    <root>/<machine>/<run-id>/<suite>.json    its manifest (command, fingerprint, started, finished)
    <root>/<machine>/<run-id>/plots/<suite>/  what `attnbench plot` wrote for it

A run id is ``<UTC start, %Y%m%d-%H%M%S>-<code version, 12 characters>``, with ``-dirty`` appended when the code
had uncommitted changes: it sorts by time and names the code that ran. The committed results of a checkout keep
runs under ``results/reference/`` (what new runs are compared with), ``results/rerun/`` (same-code re-runs of a
reference, from a fresh clone), ``results/legacy/`` and ``results/investigations/``.
"""

from __future__ import annotations

import re
import time
from dataclasses import dataclass
from pathlib import Path

__all__ = ["RunId", "all_suite_files", "checkout_results", "manifest_path", "new_run_id", "newest_run", "parse_run_id",
           "reference_for", "results_files", "results_path", "run_files", "run_manifests", "same_code_rerun",
           "suite_files"]

_RUN_ID = re.compile(r"^(?P<stamp>\d{8}-\d{6})-(?P<code>[^-]+)(?P<dirty>-dirty)?$")


@dataclass(frozen=True)
class RunId:
    """A parsed run id: when the run started (``stamp``), which code ran (``code``), and whether it was dirty."""

    stamp: str
    code: str
    dirty: bool = False

    def __str__(self) -> str:
        return f"{self.stamp}-{self.code}{'-dirty' if self.dirty else ''}"


# The clock of run ids when no ``now`` is given; tests replace it (one second per run) instead of sleeping for a new id.
_clock = time.time


def new_run_id(code_version: str, now: float | None = None) -> str:
    """The id of a run of ``code_version`` (``<sha>`` or ``<sha>+dirty.<hash>``) starting at ``now`` (default:
    the current time; tests inject it instead of sleeping between runs)."""
    stamp = time.strftime("%Y%m%d-%H%M%S", time.gmtime(_clock() if now is None else now))
    return str(RunId(stamp, code_version[:12] or "nogit", "dirty" in code_version))


def parse_run_id(name: str) -> RunId:
    """``"20261202-043355-1609310abcde"`` → ``RunId``; a folder name that is not a run id raises ValueError."""
    m = _RUN_ID.match(name)
    if m is None:
        raise ValueError(f"{name!r} is not a run id (expected <YYYYmmdd-HHMMSS>-<code version>[-dirty])")
    return RunId(m["stamp"], m["code"], bool(m["dirty"]))


def results_path(run_dir: Path, suite: str) -> Path:
    return Path(run_dir) / f"{suite}.csv"


def manifest_path(run_dir: Path, suite: str) -> Path:
    return Path(run_dir) / f"{suite}.json"


def _run_key(path: Path) -> str:
    """Sort key of a results file: its run folder's start time (run ids sort by time), then the path."""
    try:
        return parse_run_id(path.parent.name).stamp + str(path)
    except ValueError:
        return str(path)


def suite_files(root: Path, suite: str) -> list[Path]:
    """Results files of ``suite`` in the runs directly under ``root`` (``<root>/<machine>/<run-id>/``), oldest
    run first."""
    return sorted(Path(root).glob(f"*/*/{suite}.csv"), key=_run_key)


def results_files(paths: list[str | Path]) -> list[Path]:
    """The results CSVs a user named: files as given, folders searched recursively (backups left out)."""
    files: list[Path] = []
    for p in map(Path, paths):
        files.extend(sorted(f for f in p.rglob("*.csv") if ".bak" not in f.name) if p.is_dir() else [p])
    return files


def run_manifests(machine_dir: Path, suite: str) -> list[Path]:
    """Manifests of ``suite``'s runs on one machine (``<machine_dir>/<run-id>/<suite>.json``), newest first."""
    return sorted(Path(machine_dir).glob(f"*/{suite}.json"), reverse=True)


def all_suite_files(root: Path, suite: str) -> list[Path]:
    """Every results file of ``suite`` anywhere under ``root`` (run folders, ``reference/``, ``rerun/``, ...)."""
    return sorted(Path(root).rglob(f"{suite}.csv")) if Path(root).is_dir() else []


def run_files(root: Path, suite: str, run: str) -> Path | None:
    """The results file of ``suite`` in the run ``run`` under ``root`` (any machine), or None."""
    return next(iter(sorted(Path(root).glob(f"*/{run}/{suite}.csv"))), None)


def newest_run(root: Path, suite: str) -> Path:
    """The newest run's results file of ``suite`` under ``root``; FileNotFoundError when there is none."""
    found = suite_files(root, suite)
    if not found:
        raise FileNotFoundError(f"no results of suite {suite} under {root}")
    return found[-1]


def same_code_rerun(reference: Path, reruns: Path) -> Path:
    """The newest run under ``reruns`` of the same suite and the same code version as the results file
    ``reference`` (else the newest re-run of the suite)."""
    code = parse_run_id(reference.parent.name).code
    found = suite_files(reruns, reference.stem)
    same = [p for p in found if parse_run_id(p.parent.name).code == code]
    if not (same or found):
        raise FileNotFoundError(f"no re-run of suite {reference.stem} under {reruns}")
    return (same or found)[-1]


def checkout_results() -> Path | None:
    """``results/`` of the attnbench checkout this code runs from; None when the package is installed outside a
    checkout (then no committed reference exists to compare with)."""
    root = Path(__file__).resolve().parents[2]
    return root / "results" if (root / ".git").exists() else None


def reference_for(suite_csv: Path, committed: Path | None = None) -> Path | None:
    """The committed reference results of the same suite as ``suite_csv``: the newest run of this machine if there
    is one, else the newest of any machine; None without a checkout or a reference."""
    committed = committed if committed is not None else checkout_results()
    if committed is None:
        return None
    found = suite_files(committed / "reference", Path(suite_csv).stem)
    machine = Path(suite_csv).parent.parent.name
    same_machine = [p for p in found if p.parent.parent.name == machine]
    candidates = same_machine or found
    return candidates[-1] if candidates else None
