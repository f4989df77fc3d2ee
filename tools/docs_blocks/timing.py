"""Blocks about the calibrated timing: the replicated reference run against its same-code re-run (the targets of
the calibrated-timing issue), and this machine's calibration (A/A noise floor, power on a planted slowdown)."""

from __future__ import annotations

import json
import subprocess
from datetime import datetime
from pathlib import Path

from attnbench.report.analysis.agreement import agreement, agreement_table
from attnbench.report.render.markdown import table_markdown
from attnbench.store.layout import manifest_path, newest_run
from docs_blocks.sources import Page

__all__ = ["BLOCKS"]

SUITE, CALIBRATE = "cpu", "calibrate"


def _minutes(csv: Path) -> float:
    """Wall time of a run of one suite, from its manifest (started → finished), in minutes."""
    m = json.loads(manifest_path(csv.parent, csv.stem).read_text())
    fmt = "%Y-%m-%dT%H:%M:%S%z"
    return (datetime.strptime(m["finished"], fmt) - datetime.strptime(m["started"], fmt)).total_seconds() / 60


def _code_difference(root: Path, a: str, b: str) -> str:
    """How the code of two runs differs, in words: the package's files changed between commits ``a`` and ``b``
    (``git diff``), and whether the cost measurement executes any of them (everything outside ``report/`` and
    the accuracy suites' files does)."""
    if a == b:
        return f"the same code (`{a}`)"
    try:
        changed = subprocess.run(["git", "diff", "--name-only", a, b, "--", "attnbench"], cwd=root, text=True,
                                 capture_output=True, check=True, timeout=60).stdout.split()
    except (OSError, subprocess.SubprocessError):
        return f"different code (`{a}` and `{b}`; not an A/A pair)"
    measured = [f for f in changed if not f.startswith("attnbench/report/")]
    files = ", ".join(f"`{f}`" for f in changed) or "nothing"
    if measured:
        return f"different code (`{a}` and `{b}`, differing in {files}: not an A/A pair)"
    return (f"commits `{a}` and `{b}`, whose package differs only in {files}, which no cost measurement runs: the "
            "same measurement code")


def timing_agreement(page: Page) -> str:
    """Run 2 (the same-code re-run) against run 1's (the reference's) stated uncertainty, with both runs' wall
    times and the roofline's measurement time recorded with them."""
    src = page.sources
    one, two = src.reference(SUITE), src.rerun(None, SUITE)
    a, b = src.frame(one), src.frame(two)
    table = agreement_table(agreement(a, b))
    roof = json.loads(a["runtime"].iloc[0]).get("roofline") or {}
    machine = a["device_name"].iloc[0]
    # without a re-run of the reference's own commit the newest re-run stands in: say how their code differs
    code = _code_difference(src.root, a["code_version"].iloc[0], b["code_version"].iloc[0])
    return (f"Run 1 {page.link(one)} and run 2 {page.link(two)}: {code} on {machine} ({a['machine'].iloc[0]}), "
            f"one after the other; "
            f"`attnbench run suites/cpu.toml` took {_minutes(one):.1f} and {_minutes(two):.1f} min; the roofline "
            f"they record was measured in {roof.get('seconds', float('nan')):.1f} s.\n\n"
            + table_markdown(table, heading=None))


def calibration(page: Page) -> str:
    """The newest committed calibration of the reference machine (``attnbench calibrate``)."""
    src = page.sources
    csv = newest_run(src.reference_root, CALIBRATE)
    c = json.loads((csv.parent / "calibration.json").read_text())
    return (f"`attnbench calibrate` on {c['machine']} ({page.link(csv)}, {c['replicates_per_set']} processes per "
            f"set, odd rounds against even rounds): A/A noise floor {c['noise_floor']:.3f} (the "
            f"{100 * c['floor_quantile']:.0f}th percentile of the ratio, either way, over {c['aa_cases']} cases); "
            f"{c['aa_flagged']} of {c['aa_cases']} unchanged cases flagged; the planted 1.25× slowdown of `full` "
            f"flagged in {c['planted_flagged']} of {c['planted_cases']} cases at grids from "
            f"{int(c['planted_min_tokens'] ** 0.5)}² (median ratio {c['planted_ratio_median']:.3f}).")


BLOCKS = {"timing-agreement": timing_agreement, "calibration": calibration}
