"""The HTML report: self-contained, complete, and working in a real browser (headless Chromium via playwright).

The report is built from committed results (a cost reference run, an accuracy run, and an older cost run as the
reference), so every section is exercised. The browser test skips where no Chromium or playwright can be had, except
in CI (``CI=true``, set by `.ci/run`, which installs Debian's chromium): there a missing browser fails the test.
"""

from __future__ import annotations

import os
import re
import shutil
from pathlib import Path
from typing import NoReturn

import pytest

from attnbench.cli import main

ROOT = Path(__file__).resolve().parents[2]
REF = ROOT / "results" / "reference" / "amd-epyc-2c"
COST = REF / "20261201-175726-8c9f2de10c82" / "cpu.csv"
ACCURACY = REF / "20261201-190015-114ef8844c79" / "accuracy.csv"
OLD_COST = REF / "20261201-142004-86b1434ffc72" / "cpu.csv"


@pytest.fixture(scope="module")
def report(tmp_path_factory: pytest.TempPathFactory) -> Path:
    out = tmp_path_factory.mktemp("report") / "report.html"
    assert main(["report", str(COST), str(ACCURACY), "--reference", str(OLD_COST), "-o", str(out)]) == 0
    return out


def test_report_is_self_contained_and_complete(report: Path) -> None:
    html = report.read_text()
    # nothing fetched: no external script, style, font, image or frame
    assert not re.search(r"<(script|link|iframe)[^>]*\b(src|href)=", html)
    assert not re.search(r"""\b(src|href)=["']?(https?:)?//""", html)
    assert "@import" not in html and "url(http" not in html
    images = re.findall(r'<img src="data:image/(svg\+xml|png)', html)
    # per cost mode: runtime, memory, roofline (2 modes); fashion32: resolution + Pareto
    assert len(images) == 8, len(images)
    for heading in ("Machines and provenance", "Fitted exponents", "Local time slopes", "Achieved vs roofline",
                    "Frontier", "Crossover N*", "Accuracy (mean ± std over seeds)", "Against the reference run",
                    "Cost, case by case", "Every result row", "claims against these results"):
        assert heading in html, heading
    # the answer first: the summary is the first section, before any file list or provenance (collapsed)
    first = re.search(r'<section id="([\w-]+)"', html).group(1)
    assert first == "summary", first
    summary = html[html.index('<section id="summary"'):html.index("</section>")]
    for heading in ("scaling exponents and crossover", "fastest and least memory per grid", "accuracy leaderboard",
                    "claims: verdicts"):
        assert heading in summary, heading
    assert html.index("Machines and provenance") > html.index("</section>")  # provenance below, in <details>
    assert re.search(r"<details>\s*<summary>Machines and provenance", html)
    rows = re.search(r'id="rows".*?<tbody>(.*?)</tbody>', html, re.S).group(1)
    n_rows = sum(1 for path in (COST, ACCURACY) for _ in path.open()) - 2  # minus the two header lines
    assert rows.count("<tr>") == n_rows


def test_report_errors_are_one_line(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    bad = tmp_path / "x.csv"
    bad.write_text("a,b\n1,2\n")
    assert main(["report", str(bad), "-o", str(tmp_path / "r.html")]) == 2
    assert main(["report", str(tmp_path / "missing.csv")]) == 2
    assert main(["report", str(COST), "-o", str(tmp_path)]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 3 and all(line.startswith("attnbench: error: ") for line in err)
    assert not (tmp_path / "r.html").exists()


def _chromium() -> str | None:
    return os.environ.get("ATTNBENCH_CHROMIUM") or shutil.which("chromium") or shutil.which("chromium-browser")


def _missing(what: str) -> NoReturn:
    """Skip for want of ``what``; in CI (``CI=true``) fail instead, so a CI run never passes without the browser."""
    if os.environ.get("CI", "").lower() == "true":
        pytest.fail(f"CI=true but {what}: the report's browser test must run in CI")
    pytest.skip(what)


def test_report_in_a_real_browser(report: Path, tmp_path: Path) -> None:
    executable = _chromium()
    if executable is None:
        _missing("no Chromium on this machine (apt-get install chromium; .ci/run does this as root)")
    try:
        from playwright import sync_api
    except ImportError:
        _missing("playwright not installed (pip install -e .[test])")
    errors: list[str] = []
    requests: list[str] = []
    with sync_api.sync_playwright() as pw:
        browser = pw.chromium.launch(executable_path=executable, args=["--no-sandbox"])
        page = browser.new_page(viewport={"width": 1400, "height": 900})
        page.on("console", lambda m: errors.append(m.text) if m.type == "error" else None)
        page.on("pageerror", lambda e: errors.append(str(e)))
        page.on("request", lambda r: requests.append(r.url))
        page.goto(report.as_uri(), wait_until="load")
        # the answer first: the first section on the page is the summary, and it is on the first screen
        assert page.eval_on_selector("section", "s => s.id") == "summary"
        assert page.locator("#summary h2").first.bounding_box()["y"] < 900
        assert page.locator("#summary table").count() >= 4
        assert not page.locator("#machines").is_visible()  # provenance collapsed until asked for
        page.click("#rows-section details > summary")  # open the all-rows table
        # every figure decoded
        sizes = page.eval_on_selector_all("img", "imgs => imgs.map(i => [i.complete, i.naturalWidth, i.naturalHeight])")
        assert len(sizes) == 8 and all(done and w > 0 and h > 0 for done, w, h in sizes), sizes
        # sorting: click "median ms" in the all-rows table, twice
        col = page.eval_on_selector_all("#rows th", "hs => hs.map(h => h.textContent)").index("median ms")
        header = page.locator("#rows th").nth(col)

        def column() -> list[float]:
            cells = page.eval_on_selector_all(f"#rows tbody tr td:nth-child({col + 1})",
                                              "tds => tds.map(t => t.textContent)")
            return [float(c) for c in cells if c]

        header.click()
        ascending = column()
        assert len(ascending) > 10 and ascending == sorted(ascending)
        assert header.get_attribute("aria-sort") == "ascending"
        header.click()
        assert column() == sorted(ascending, reverse=True)
        first = page.eval_on_selector(f"#rows tbody tr td:nth-child({col + 1})", "td => td.textContent")
        assert first != "", "empty cells sort last in both directions"
        # filtering: only matching rows stay visible, and the count says so
        total = page.locator("#rows tbody tr").count()
        page.fill("#rows input.filter", "mano_reference fwd_bwd")
        visible = page.locator("#rows tbody tr:not([hidden])")
        assert 0 < visible.count() < total
        assert all("mano_reference" in t and "fwd_bwd" in t for t in visible.all_inner_texts())
        assert page.inner_text("#rows .count") == f"{visible.count()} of {total} rows"
        page.fill("#rows input.filter", "")
        assert page.locator("#rows tbody tr:not([hidden])").count() == total
        shot = Path(os.environ.get("ATTNBENCH_SCREENSHOT_DIR", tmp_path)) / "report.png"
        page.evaluate("window.scrollTo(0, 0)")
        page.screenshot(path=str(shot), full_page=False)
        browser.close()
    assert shot.stat().st_size > 10_000
    assert errors == [], errors
    assert all(u.startswith(("file:", "data:")) for u in requests), [u for u in requests if not u.startswith("d")]


def test_a_run_that_never_finished_is_flagged(tmp_path: Path) -> None:
    """A run whose manifest has no finish time (interrupted) is named in the summary and marked in the provenance
    table; a finished run beside it is not."""
    import json

    from attnbench.report.render.html import run_states

    finished = ROOT / "results" / "investigations" / "navier-stokes" / "20261206-172702-5edd56ff809f"
    unfinished = ROOT / "results" / "reference" / "intel-r-xeon-r-processor-2c" / "20261202-001531-3ca2d84db0d9"
    assert json.loads((unfinished / "accuracy.json").read_text())["finished"] is None
    states = run_states([finished / "accuracy.csv", unfinished / "accuracy.csv"])
    assert states[(unfinished.name, "accuracy")] == "NEVER FINISHED"
    assert states[(finished.name, "accuracy")].startswith("2026-12-06T17:32")
    out = tmp_path / "report.html"
    assert main(["report", str(finished / "accuracy.csv"), str(unfinished / "accuracy.csv"), "-o", str(out)]) == 0
    html = out.read_text()
    summary = html[html.index('<section id="summary"'):html.index("</section>")]
    assert f"Run {unfinished.name} (accuracy) never finished" in summary and finished.name not in summary
    assert "NEVER FINISHED" in html[html.index("Machines and provenance"):]
