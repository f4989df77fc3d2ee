"""Regenerate every committed derived file under ``results/`` from the committed CSVs, with the command each one
records: the per-run figures and ``scaling.md`` / ``accuracy.md`` (``attnbench plot``), ``results/claims.md``
(``attnbench claims``) and the HTML reports (``attnbench report``). Run it from a checkout after a change to the
report code; ``git diff results/`` then shows what the change did to committed outputs (only layout and
presentation may change: the numbers come from the same rows).

    python tools/regenerate_results.py            # everything
    python tools/regenerate_results.py --only md  # markdown only (fast)
"""

from __future__ import annotations

import argparse
import html
import re
import shlex
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
RESULTS = ROOT / "results"


def _attnbench(args: list[str]) -> None:
    print("attnbench", shlex.join(args), flush=True)
    subprocess.run([sys.executable, "-m", "attnbench", *args], cwd=ROOT, check=True, stdout=subprocess.DEVNULL)


def plotted_runs() -> list[Path]:
    """Results CSVs whose plots are committed (``<run>/plots/<suite>/`` exists beside ``<run>/<suite>.csv``)."""
    return sorted(csv for csv in RESULTS.rglob("*.csv")
                  if ".bak" not in csv.name and (csv.parent / "plots" / csv.stem).is_dir())


def _recorded_command(path: Path) -> list[str]:
    """The ``attnbench ...`` command a generated file says it was written by."""
    text = path.read_text()
    found = (re.search(r"Reproduce: `attnbench ([^`]*)`", text)
             or re.search(r"by <code>attnbench ([^<]*)</code>", text))
    if found is None:
        raise SystemExit(f"{path}: no recorded command")
    return shlex.split(html.unescape(found.group(1)))


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--only", choices=("md", "all"), default="all",
                        help="md: plots' markdown and claims.md only (still writes the figures: they come together)")
    args = parser.parse_args(argv)
    done: set[str] = set()
    for csv in plotted_runs():
        # the command a run's scaling.md records (it may have plotted several files together), else the file alone
        recorded = csv.parent / "plots" / csv.stem / "scaling.md"
        command = _recorded_command(recorded) if recorded.exists() else []
        if not command or not all((ROOT / f).exists() for f in command[1:]):  # recorded before the run was moved
            command = ["plot", str(csv.relative_to(ROOT))]
        if str(csv.relative_to(ROOT)) in done:
            continue
        done.update(command[1:])
        _attnbench(command)
    _attnbench(_recorded_command(RESULTS / "claims.md"))
    if args.only == "all":
        for report in sorted(RESULTS.rglob("report.html")):
            command = _recorded_command(report)
            # reports written before the full command was recorded name their reference runs separately
            refs = re.search(r"Reference: <code>([^<]*)</code>", report.read_text())
            if refs and "--reference" not in command:
                for ref in html.unescape(refs.group(1)).split(", "):
                    command += ["--reference", ref]
            if "-o" not in command and "--output" not in command:
                command += ["-o", str(report.relative_to(ROOT))]
            _attnbench(command)
    return 0


if __name__ == "__main__":
    sys.exit(main())
