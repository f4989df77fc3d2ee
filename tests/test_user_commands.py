"""The commands a new user types after a run (docs/usage.md), on two small committed runs: ``compare``, ``report``
and ``claims``. (The installed wheel's ``bench --dry-run`` is in test_package.py.)

The fixtures under ``tests/fixtures/results/`` are the committed CPU reference run and its re-run of the same commit,
trimmed to a few cases (tests/fixtures/README.md says which).
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from attnbench.cli import main

ROOT = Path(__file__).resolve().parents[1]
MACHINE = "intel-r-xeon-r-processor-2c"
# relative to the checkout, as a user types them there
A = f"tests/fixtures/results/reference/{MACHINE}/20261206-100938-a67cdaf375fc"
B = f"tests/fixtures/results/rerun/{MACHINE}/20261206-102042-a67cdaf375fc"
LABELS = ("full", "full_naive", "mano", "swin")


@pytest.fixture(autouse=True)
def _clean_cache(tmp_path, monkeypatch):
    """No calibration or roofline from this machine's cache: the machine's committed calibration is the floor."""
    monkeypatch.setenv("ATTNBENCH_DATA", str(tmp_path / "cache"))
    monkeypatch.chdir(ROOT)


def test_compare_two_runs_as_typed():
    """``python -m attnbench compare A B``: a table of the eight cases, the one status change, the summary line;
    exit 0, also with ``--fail-above 1.1`` (nothing is significantly slower)."""
    proc = subprocess.run([sys.executable, "-m", "attnbench", "compare", A, B, "--fail-above", "1.1"],
                          capture_output=True, text=True, timeout=120, env={**os.environ, "COLUMNS": "200"})
    assert proc.returncode == 0, proc.stdout + proc.stderr
    out = proc.stdout
    assert "8 cases; significant: 0 slower, 0 faster" in out and "1 status changes" in out
    assert "status timeout → ok" in out  # full_naive at 128², which timed out in the reference run
    for label in LABELS:
        assert f"│ {label} " in out
    assert "Traceback" not in proc.stderr


def test_compare_as_json_and_in_the_other_direction(capsys):
    assert main(["compare", B, A, "--format", "json"]) == 0
    rows = json.loads(capsys.readouterr().out)
    assert len(rows) == 8 and {r["label"] for r in rows} == set(LABELS)
    assert {r["grid"] for r in rows} == {"64x64", "128x128"}
    changed = [r for r in rows if r["change"]]
    assert [(r["label"], r["grid"], r["change"]) for r in changed] == [("full_naive", "128x128", "status ok → timeout")]
    measured = [r for r in rows if r["replicates"]]
    assert len(measured) == 7 and all(r["replicates"] == "6/6" for r in measured)
    assert all(0.5 < r["ratio"] < 2 and 0 <= r["p"] <= 1 for r in measured)


def test_compare_of_a_missing_path_is_one_line_exit_2(capsys):
    assert main(["compare", A, "tests/fixtures/results/no-such-run"]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and "no such results file or directory" in err[0]


def test_report_with_a_reference(tmp_path, capsys):
    """``attnbench report RUN --reference REF -o report.html``: one self-contained page with the comparison."""
    out = tmp_path / "report.html"
    assert main(["report", B, "--reference", A, "-o", str(out)]) == 0
    assert capsys.readouterr().out.startswith(f"{out} (")
    html = out.read_text(encoding="utf-8")
    assert html.lstrip().lower().startswith("<!doctype html")
    assert f"Against the reference run {A}" in html and "status timeout → ok" in html
    assert all(label in html for label in LABELS)
    assert "<script src=" not in html and "<link rel=\"stylesheet\" href=" not in html  # opens offline


def test_claims_of_a_cost_run(tmp_path, capsys):
    """``attnbench claims RESULTS -o claims.md``: a verdict for every claim; the accuracy claims, with no accuracy
    rows given, are "not testable here", the cost claims are judged."""
    from attnbench.report.analysis.claims import CLAIMS, VERDICTS

    out = tmp_path / "claims.md"
    assert main(["claims", A, "-o", str(out)]) == 0
    assert capsys.readouterr().out.strip() == str(out)
    text = out.read_text(encoding="utf-8")
    assert f"Reproduce: `attnbench claims {A} -o {out}`" in text
    rows = {line.split(" | ")[0].lstrip("| "): line.split(" | ") for line in text.splitlines()
            if line.startswith("| ") and not line.startswith("| claim") and not line.startswith("|---")}
    assert set(rows) == {c.name for c in CLAIMS}
    verdicts = {name: cells[3] for name, cells in rows.items()}
    assert set(verdicts.values()) <= set(VERDICTS)
    assert verdicts["accuracy rivalling ViT and Swin"] == "not testable here"
    assert verdicts["linear time and memory"] != "not testable here"
    assert "vs full_naive fwd at 64²" in rows["1–2 orders of magnitude less runtime and peak memory"][1]
