"""The Python API called directly: run, plan, compare, plot, report and claims of tiny runs, and bad input raising
one-line ValueErrors (never exiting)."""

from __future__ import annotations

import json

import pytest

from attnbench import api
from attnbench.spec.suite import SUITES_DIR
from attnbench.spec.validate import SuiteError
from attnbench.store.csvfile import read_results

SMOKE = str(SUITES_DIR / "smoke.toml")
# One tiny case: linear attention at 8x8, forward only, with the smallest timing budget the suite allows.
TINY = {"grids": [[8, 8]], "modes": ["fwd"], "min_run_time": 0.01, "calls_per_block": 1, "min_blocks": 3, "warmup": 0}
START = 1_700_000_000.0  # an injected clock: two runs a second apart without sleeping


def _options(tmp_path, **kwargs) -> api.RunOptions:
    return api.RunOptions(out=tmp_path / "results", overrides=TINY, only=["linear"], progress=False, **kwargs)


@pytest.fixture(scope="module")
def two_runs(tmp_path_factory) -> tuple[api.RunResult, api.RunResult]:
    """The same tiny case measured twice, as two runs whose ids come from the injected clock."""
    tmp_path = tmp_path_factory.mktemp("api")
    first = api.run([SMOKE], _options(tmp_path, now=START))
    second = api.run([SMOKE], _options(tmp_path, now=START + 1))
    return first, second


def test_run_writes_one_run_folder_named_by_its_id(two_runs):
    first, second = two_runs
    assert first.run_id != second.run_id and first.run_id.startswith("20231114-221320-")
    (path,) = first.paths
    assert path.parent.name == first.run_id and path.name == "smoke.csv"
    rows = read_results(path)
    assert [(r["label"], r["mode"], r["height"], r["status"]) for r in rows] == [("linear", "fwd", "8", "ok")]
    manifest = json.loads(path.with_suffix(".json").read_text())
    assert manifest["run_id"] == first.run_id and manifest["finished"]
    assert first.reports[0].counts == {"ok": 1}


def test_compare_matches_the_same_case_in_two_runs(two_runs):
    first, second = two_runs
    comparison = api.compare(first.paths[0], second.paths[0], api.CompareOptions(threshold=100.0))
    assert len(comparison.table) == 1 and comparison.accuracy is None
    assert comparison.exit_code == 0  # no change reaches a ratio of 100
    [row] = comparison.table.to_dict("records")
    assert row["label"] == "linear"


def test_plan_lists_the_cases_and_writes_nothing(tmp_path):
    plans = api.plan([SMOKE], _options(tmp_path))
    assert [(p.suite.name, len(p.cases), p.resumed) for p in plans] == [("smoke", 1, None)]
    assert not plans[0].cases[0].recorded
    assert not (tmp_path / "results").exists()


def test_plot_report_and_claims_return_what_they_wrote(two_runs, tmp_path):
    first, _ = two_runs
    written = api.plot(first.paths, api.PlotOptions(out=tmp_path / "plots"))
    assert tmp_path / "plots" / "smoke" / "scaling.md" in written and all(p.exists() for p in written)
    page = api.report(first.paths, api.ReportOptions(output=tmp_path / "report.html"))
    assert page == tmp_path / "report.html" and page.stat().st_size > 0
    assert api.claims(first.paths, tmp_path / "claims.md").read_text().startswith("#")


def test_list_mechanisms_has_every_builtin():
    from attnbench import list_attentions

    rows = api.list_mechanisms()
    assert set(list_attentions()) <= {r["name"] for r in rows if r["kind"] == "attention"}


def _one_line(exc: pytest.ExceptionInfo) -> str:
    message = str(exc.value)
    assert isinstance(exc.value, ValueError) and len(message.splitlines()) == 1, message
    return message


def test_bad_input_raises_one_line_value_errors(tmp_path):
    with pytest.raises(SuiteError) as exc:  # a bad value names the file and the key
        api.load_suites([SMOKE], api.RunOptions(overrides={"batch": 0}))
    assert _one_line(exc).startswith(f"{SMOKE}: batch: expected an integer >= 1")
    with pytest.raises(SuiteError) as exc:
        api.load_suites([SMOKE], api.RunOptions(overrides={"min_blockz": 3}))
    assert "min_blockz: unknown key (did you mean 'min_blocks'?)" in _one_line(exc)
    with pytest.raises(api.InputError) as exc:  # an unknown label names the option
        api.run([SMOKE], api.RunOptions(out=tmp_path / "results", only=["nope"]))
    assert _one_line(exc).startswith("--only nope: no such task or label; known: ")
    assert not tmp_path.joinpath("results").exists()
    with pytest.raises(api.InputError) as exc:  # a missing results file names the file
        api.compare(tmp_path / "a.csv", tmp_path / "b.csv")
    assert _one_line(exc) == f"{tmp_path / 'a.csv'}: no such results file or directory"
    with pytest.raises(api.InputError) as exc:
        api.check("no_such_attention")
    assert "no_such_attention" in _one_line(exc)
    with pytest.raises(api.InputError) as exc:
        api.report([SMOKE], api.ReportOptions(output=tmp_path))
    assert _one_line(exc).startswith(f"-o {tmp_path}: is a directory")
    with pytest.raises(api.InputError) as exc:
        api.bench([SMOKE], api.BenchOptions(quick=True))
    assert "takes no SUITE arguments" in _one_line(exc)


def test_check_returns_one_result_per_contract_check():
    results = api.check("linear", api.CheckOptions(grid=(8, 8)))
    assert results and {r.status for r in results} <= {"pass", "skip"}
