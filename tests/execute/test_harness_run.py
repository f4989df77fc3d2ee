"""The cost harness end to end: smoke suite, fault injection, resume, truncated CSV, lock."""

from __future__ import annotations

import csv
import json
import os
import signal
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import pytest

from attnbench.cli import main
from attnbench.store.csvfile import ResultsFile, read_results
from attnbench.store.schema import COLUMNS, SCHEMA_VERSION

from conftest import run_csv, run_csvs, small_roofline_measurement

ROOT = Path(__file__).resolve().parents[2]


@pytest.fixture(scope="module")
def smoke_bench(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """``bench`` of the smoke suite, once for the tests below: its results file."""
    out = tmp_path_factory.mktemp("smoke")
    with small_roofline_measurement():  # the first bench measures the roofline: a small real one will do here
        assert main(["bench", str(ROOT / "suites" / "smoke.toml"), "--out", str(out), "--quiet"]) == 0
    return run_csv(out, "smoke")


def test_smoke_bench_rows(smoke_bench):
    csv_path = smoke_bench
    assert csv_path.parent.parent.name.endswith("c")  # results/<machine: cpu model + cores>/<run>/smoke.csv
    header = csv_path.read_text().splitlines()[0].split(",")
    assert tuple(header) == COLUMNS
    rows = read_results(csv_path)
    assert len(rows) == 6 * 2 * 2  # 6 mechanisms x 2 grids x 2 modes, one row each
    assert len({r["case_key"] for r in rows}) == len(rows)
    for r in rows:
        assert r["status"] == "ok", r
        assert float(r["time_ms_median"]) > 0 and float(r["time_ms_iqr"]) >= 0 and int(r["time_n"]) >= 3
        assert float(r["time_ms_q1"]) <= float(r["time_ms_median"]) <= float(r["time_ms_q3"])
        assert float(r["time_ms_ci_lo"]) <= float(r["time_ms_median"]) <= float(r["time_ms_ci_hi"])
        assert len(json.loads(r["time_samples_ms"])) == int(r["time_n"]) and int(r["time_calls_per_block"]) >= 1
        assert r["load_start"] != "" and r["run_id"] == csv_path.parent.name and r["config_id"] in r["case_key"]
        assert float(r["peak_mib"]) >= 0 and r["mem_kind"] == "cpu_rss"  # the value: see the memory probe below
        assert int(r["threads"]) == 1 and r["dtype"] == "float32" and r["tf32"] == "false"
        assert r["torch"] and r["timestamp"] and r["schema_version"] == str(SCHEMA_VERSION)
        assert int(r["flops"]) > 0 and int(r["bytes"]) > 0 and float(r["gflops_per_s"]) > 0


def test_smoke_bench_records_the_sdpa_kernel_that_ran(smoke_bench):
    """The kernel of a profiled step, for every mechanism that calls SDPA (exact: torch is pinned for the tests,
    .ci/constraints.txt)."""
    rows = read_results(smoke_bench)
    assert {r["sdpa_backend"] for r in rows if r["attention"] == "full"} == {"flash"}
    # timm's window attention passes its relative-position bias as a mask: CPU training falls back to math
    assert {r["mode"]: r["sdpa_backend"] for r in rows if r["attention"] == "swin_w8"} == {"fwd": "flash",
                                                                                          "fwd_bwd": "math"}
    # mano at these grids takes the packed or canvas path (B·H·W <= CANVAS_MAX_TOKENS per call): neither calls SDPA
    no_sdpa = ("linear", "full_naive", "mano_reference_k2s1r2", "mano_k2s1r2")
    assert {r["sdpa_backend"] for r in rows if r["attention"] in no_sdpa} == {"none"}


def test_smoke_bench_plots_and_leaves_no_lock(smoke_bench):
    plots = smoke_bench.parent / "plots" / "smoke"
    pngs = sorted(p.name for p in plots.glob("*.png"))
    assert "smoke_fwd_runtime.png" in pngs and "smoke_fwd_bwd_memory_cpu_rss.png" in pngs
    assert all((plots / p).stat().st_size > 10_000 for p in pngs)
    assert "Frontier" in (plots / "scaling.md").read_text()
    # a finished run's folder holds results, not machinery: no lock file is left beside them
    assert not list(smoke_bench.parent.glob("*.lock")), list(smoke_bench.parent.glob("*"))


PROBE_MIB = 256
MEMORY_PROBE = f'''
import torch
from attnbench.attention.base import GridAttention
from attnbench.registry import register_attention


@register_attention("probe_alloc")
class Allocates(GridAttention):
    """Allocates and writes {PROBE_MIB} MiB in its forward, and frees them before returning."""

    def __init__(self, dim, heads):
        super().__init__()
        self.lin = torch.nn.Linear(dim, dim)

    def forward(self, x):
        block = torch.ones({PROBE_MIB} * 2**20 // 4)  # float32: every page is written, so all of it is resident
        return self.lin(x) + block[:1]
'''


def test_cpu_peak_memory_reads_a_known_allocation(tmp_path, write_plugin):
    """A forward that allocates 256 MiB (beside a layer and input of a few KiB) has a CPU peak of that size,
    within 15 %: the high-water mark is reset after the runtime priming, in the case's fresh process."""
    suite = tmp_path / "mem.toml"
    suite.write_text(textwrap.dedent(f"""
        name = "mem"
        device = "cpu"
        threads = 1
        dim = 8
        heads = 2
        grids = [[8, 8]]
        modes = ["fwd"]
        min_run_time = 0.01
        calls_per_block = 1  # one call per block: the autorange would time thousands
        min_blocks = 2
        warmup = 0
        imports = ["{write_plugin("attnbench_memory_probe", MEMORY_PROBE)}"]

        [[attentions]]
        name = "probe_alloc"
    """))
    assert main(["run", str(suite), "--out", str(tmp_path / "out"), "--quiet"]) == 0
    (row,) = read_results(run_csv(tmp_path / "out", "mem"))
    assert row["status"] == "ok" and row["mem_kind"] == "cpu_rss", row
    assert abs(float(row["peak_mib"]) - PROBE_MIB) <= 0.15 * PROBE_MIB, row["peak_mib"]


FAULTS = '''
import os, signal, time
import torch
from attnbench.attention.base import GridAttention
from attnbench.registry import register_attention


class _Fault(GridAttention):
    def __init__(self, dim, heads):
        super().__init__()
        self.lin = torch.nn.Linear(dim, dim)


@register_attention("fault_oom")
class RaisesOOM(_Fault):
    def forward(self, x):
        raise torch.OutOfMemoryError("CUDA out of memory. Tried to allocate 1 TiB (simulated)")


@register_attention("fault_alloc")
class AllocatesTooMuch(_Fault):
    def forward(self, x):
        return x + torch.ones(4 * 2**30 // 4).sum()  # 4 GiB, past the suite's 1 GiB address-space cap


@register_attention("fault_sigkill")
class KillsItself(_Fault):
    def forward(self, x):
        os.kill(os.getpid(), signal.SIGKILL)


@register_attention("fault_sleep")
class Sleeps(_Fault):
    def forward(self, x):
        time.sleep(600)


@register_attention("fault_value")
class RaisesValueError(_Fault):
    def forward(self, x):
        raise ValueError("bad thing happened\\nsecond line")
'''


@pytest.fixture
def fault_suite(tmp_path, write_plugin):
    write_plugin("attnbench_fault_plugins", FAULTS)
    suite = tmp_path / "faults.toml"
    entries = "\n".join(f'[[attentions]]\nname = "{n}"\n' for n in
                        ("fault_oom", "fault_alloc", "fault_sigkill", "fault_sleep", "fault_value", "linear"))
    suite.write_text(textwrap.dedent("""
        name = "faults"
        device = "cpu"
        threads = 1
        dim = 8
        heads = 2
        grids = [[8, 8], [16, 16]]
        modes = ["fwd"]
        min_run_time = 0.01
        calls_per_block = 1  # one call per block: the autorange would time thousands
        min_repeats = 2
        timeout = 4
        memory_limit_gib = 1
        imports = ["attnbench_fault_plugins"]
    """) + entries)
    return suite


def test_faults_become_statuses_and_the_sweep_finishes(fault_suite, tmp_path):
    assert main(["run", str(fault_suite), "--out", str(tmp_path / "out"), "--quiet"]) == 0
    rows = {(r["label"], r["height"]): r for r in read_results(run_csv(tmp_path / "out", "faults"))}
    assert len(rows) == 12
    small = {label: rows[(label, "8")] for label, _ in rows}
    assert small["fault_oom"]["status"] == "oom" and "OutOfMemoryError" in small["fault_oom"]["reason"]
    assert small["fault_alloc"]["status"] == "oom", small["fault_alloc"]["reason"]
    assert small["fault_sigkill"]["status"] == "crashed" and "SIGKILL" in small["fault_sigkill"]["reason"]
    assert small["fault_sleep"]["status"] == "timeout"
    assert small["fault_value"]["status"] == "error"
    assert small["fault_value"]["reason"] == "ValueError: bad thing happened"
    assert small["linear"]["status"] == "ok"
    # oom, timeout and a SIGKILL (the kernel's OOM killer) set a frontier: the larger grid is skipped, not tried
    for label in ("fault_oom", "fault_alloc", "fault_sleep", "fault_sigkill"):
        assert rows[(label, "16")]["status"] == "skipped" and "above frontier" in rows[(label, "16")]["reason"]
    for label, status in (("fault_value", "error"), ("linear", "ok")):
        assert rows[(label, "16")]["status"] == status


TINY = """
name = "tiny"
device = "cpu"
threads = 1
dim = 16
heads = 2
grids = [[8, 8], [16, 16]]
modes = ["fwd", "fwd_bwd"]
min_run_time = 0.01
calls_per_block = 1  # one call per block: the autorange would time thousands
min_repeats = 2
timeout = 60

[[attentions]]
name = "linear"

[[attentions]]
name = "full"

[[attentions]]
name = "swin"
kwargs = { window = 4 }
"""


def _keys(path: Path) -> list[str]:
    return [r["case_key"] for r in read_results(path)]


def test_resume_after_killing_the_parent_then_a_new_run(tmp_path, capsys, run_clock):
    suite = tmp_path / "tiny.toml"
    suite.write_text(TINY)
    out = tmp_path / "out"
    proc = subprocess.Popen([sys.executable, "-m", "attnbench", "run", str(suite), "--out", str(out), "--quiet"],
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, cwd=ROOT)
    deadline = time.time() + 120
    while time.time() < deadline and (not run_csvs(out, "tiny") or len(_keys(run_csvs(out, "tiny")[0])) < 4):
        time.sleep(0.05)
    os.kill(proc.pid, signal.SIGKILL)  # the parent dies mid-sweep
    proc.wait()
    csv_path = run_csv(out, "tiny")
    done_before = len(_keys(csv_path))
    assert 4 <= done_before < 12
    before = sorted(p.relative_to(out) for p in out.rglob("*"))
    assert main(["run", str(suite), "--out", str(out), "--dry-run"]) == 0
    plan = capsys.readouterr().out.splitlines()
    assert f"{12 - done_before} to run, {done_before} already recorded in {csv_path.parent} (resumed)" in plan[0]
    assert sum("recorded, skipped, ~" in line and "median of 1 earlier run)" in line for line in plan) == done_before
    assert sum(": run, no earlier result" in line for line in plan) == 12 - done_before
    assert sorted(p.relative_to(out) for p in out.rglob("*")) == before  # a dry run writes nothing
    assert main(["run", str(suite), "--out", str(out), "--quiet"]) == 0  # the interrupted run is resumed
    keys = _keys(run_csv(out, "tiny"))
    assert len(keys) == 12 and len(set(keys)) == 12  # every case exactly once, in the same file
    assert main(["run", str(suite), "--out", str(out), "--quiet"]) == 0  # finished: a new run, a new file
    first, second = run_csvs(out, "tiny")
    assert first == csv_path and len(_keys(first)) == 12 and len(_keys(second)) == 12


def test_a_changed_configuration_is_a_new_run_not_a_resume(tmp_path, run_clock):
    """An interrupted run is resumed only with the same configurations: edited kwargs measure the new ones."""
    suite = tmp_path / "tiny.toml"
    suite.write_text(TINY.replace('modes = ["fwd", "fwd_bwd"]', 'modes = ["fwd"]'))
    out = tmp_path / "out"
    assert main(["run", str(suite), "--out", str(out), "--quiet", "--only", "linear"]) == 0
    manifest = next(out.glob("*/*/tiny.json"))
    data = json.loads(manifest.read_text())
    assert data["command"] == f"attnbench run {suite} --out {out} --quiet --only linear"  # reproducible from it
    data["finished"] = None  # pretend it was interrupted
    manifest.write_text(json.dumps(data))
    assert main(["run", str(suite), "--out", str(out), "--quiet", "--only", "linear",
                 "--set", "attentions[0].kwargs.eps=1e-3"]) == 0
    first, second = run_csvs(out, "tiny")
    assert len(_keys(first)) == 2 and len(_keys(second)) == 2
    assert {json.loads(r["kwargs"]).get("eps") for r in read_results(second)} == {1e-3}
    assert set(_keys(first)).isdisjoint(_keys(second))  # the configuration is part of the case identity


def test_truncated_last_line_is_repaired_with_a_warning(tmp_path):
    suite = tmp_path / "tiny.toml"
    suite.write_text(TINY.replace('modes = ["fwd", "fwd_bwd"]', 'modes = ["fwd"]'))
    out = tmp_path / "out"
    assert main(["run", str(suite), "--out", str(out), "--quiet"]) == 0
    csv_path = run_csv(out, "tiny")
    manifest = csv_path.with_suffix(".json")
    data = json.loads(manifest.read_text())
    data["finished"] = None  # a crash mid-write: the run never finished
    manifest.write_text(json.dumps(data))
    lines = csv_path.read_text().splitlines(keepends=True)
    assert len(lines) == 7
    csv_path.write_text("".join(lines[:-1]) + lines[-1][: len(lines[-1]) // 2])  # a crash mid-write
    with pytest.warns(RuntimeWarning, match="last line is truncated"):
        assert main(["run", str(suite), "--out", str(out), "--quiet"]) == 0
    keys = _keys(run_csv(out, "tiny"))
    assert len(keys) == 6 and len(set(keys)) == 6
    assert all(len(line.split(",")) >= len(COLUMNS) for line in csv_path.read_text().splitlines())


def test_fresh_does_not_resume_an_interrupted_run(tmp_path, run_clock):
    suite = tmp_path / "tiny.toml"
    suite.write_text(TINY.replace("[[8, 8], [16, 16]]", "[[8, 8]]").replace('["fwd", "fwd_bwd"]', '["fwd"]'))
    out = tmp_path / "out"
    assert main(["run", str(suite), "--out", str(out), "--quiet"]) == 0
    manifest = next(out.glob("*/*/tiny.json"))
    manifest.write_text(manifest.read_text().replace('"finished": "', '"was": "'))
    assert main(["run", str(suite), "--out", str(out), "--quiet", "--fresh"]) == 0
    assert [len(_keys(p)) for p in run_csvs(out, "tiny")] == [3, 3]


def test_second_run_on_a_locked_file_is_refused(tmp_path, capsys, run_clock):
    """A run whose file is locked by another process is not resumed: the second run starts its own."""
    suite = tmp_path / "tiny.toml"
    suite.write_text(TINY.replace("[[8, 8], [16, 16]]", "[[8, 8]]").replace('["fwd", "fwd_bwd"]', '["fwd"]'))
    out = tmp_path / "out"
    assert main(["run", str(suite), "--out", str(out), "--quiet"]) == 0
    first = run_csv(out, "tiny")
    manifest = first.with_suffix(".json")
    manifest.write_text(manifest.read_text().replace('"finished": "', '"was": "'))
    with ResultsFile(first):  # "another run" holds it
        assert main(["run", str(suite), "--out", str(out), "--quiet"]) == 0
    assert len(run_csvs(out, "tiny")) == 2 and len(_keys(first)) == 3


def test_foreign_header_is_refused_and_left_untouched(tmp_path, capsys):
    foreign = tmp_path / "out" / "tiny.csv"
    foreign.parent.mkdir()
    foreign.write_text("a,b,c\n1,2,3\n")
    from attnbench.store.csvfile import ResultsError

    with pytest.raises(ResultsError, match="header does not match"):
        with ResultsFile(foreign):
            pass
    assert foreign.read_text() == "a,b,c\n1,2,3\n"


@pytest.mark.slow
def test_compile_axis(tmp_path):
    """compile = [false, true]: two series, compile time recorded, no fake CPU peak for the compiled one."""
    suite = tmp_path / "tiny.toml"
    suite.write_text(TINY.replace('modes = ["fwd", "fwd_bwd"]', 'modes = ["fwd"]\ncompile = [false, true]')
                     .replace("[[8, 8], [16, 16]]", "[[8, 8]]").replace("timeout = 60", "timeout = 600"))
    assert main(["run", str(suite), "--out", str(tmp_path / "out"), "--quiet", "--only", "linear"]) == 0
    csv_path = run_csv(tmp_path / "out", "tiny")
    rows = {r["compile"]: r for r in read_results(csv_path)}
    assert rows["true"]["status"] == "ok" and float(rows["true"]["compile_s"]) > 0
    assert rows["true"]["peak_mib"] == "" and rows["false"]["peak_mib"] != ""
    assert main(["plot", str(csv_path)]) == 0
    assert "linear [compiled]" in (csv_path.parent / "plots" / "tiny" / "scaling.md").read_text()


def test_dirty_checkout_does_not_write_into_results_unless_allowed(tmp_path, monkeypatch, capsys):
    from attnbench.measure import provenance
    from attnbench.store import layout

    suite = tmp_path / "tiny.toml"
    suite.write_text(TINY.replace("[[8, 8], [16, 16]]", "[[8, 8]]").replace('["fwd", "fwd_bwd"]', '["fwd"]'))
    committed = tmp_path / "checkout" / "results"
    monkeypatch.setattr(layout, "checkout_results", lambda: committed)
    monkeypatch.setattr(provenance, "tree_is_dirty", lambda root=None: True)
    assert main(["run", str(suite), "--out", str(committed), "--quiet"]) == 2
    err = capsys.readouterr().err
    assert "uncommitted changes" in err and "--allow-dirty" in err and not committed.exists()
    assert main(["run", str(suite), "--out", str(tmp_path / "elsewhere"), "--quiet"]) == 0
    assert main(["run", str(suite), "--out", str(committed), "--quiet", "--allow-dirty"]) == 0


def test_bench_compares_this_machine_with_the_committed_reference(tmp_path, monkeypatch, capsys, run_clock):
    import shutil

    from attnbench.store import layout

    suite = tmp_path / "tiny.toml"
    suite.write_text(TINY.replace("[[8, 8], [16, 16]]", "[[8, 8]]").replace('["fwd", "fwd_bwd"]', '["fwd"]')
                     .replace("min_repeats = 2", "min_blocks = 5"))
    committed = tmp_path / "checkout" / "results"
    monkeypatch.setattr(layout, "checkout_results", lambda: committed)
    assert main(["bench", str(suite), "--out", str(tmp_path / "out"), "--quiet"]) == 0
    assert "no committed reference" in capsys.readouterr().out
    first = run_csv(tmp_path / "out", "tiny")
    shutil.copytree(first.parent, committed / "reference" / first.parent.parent.name / first.parent.name)
    assert main(["bench", str(suite), "--out", str(tmp_path / "out"), "--quiet"]) == 0
    out = capsys.readouterr().out
    assert "This machine vs the committed reference" in out and "3 cases" in out
    assert len(run_csvs(tmp_path / "out", "tiny")) == 2  # the second bench measured again
    report = run_csvs(tmp_path / "out", "tiny")[1].parent / "report.html"
    assert f"report: {report}" in out  # bench ends with the report's path, unbroken however long
    assert "Against the reference run" in report.read_text()


def test_gpu_quick_check_dry_run_on_cpu(tmp_path, monkeypatch):
    """`bench --quick` (made for the first GPU) end to end on CPU with tiny grids: roofline and `check` of every
    mechanism first, then every mechanism fwd and fwd_bwd, results + quick-check.json + plots."""
    from attnbench.cli import main
    from attnbench.spec.suite import SUITES_DIR, load_suite

    monkeypatch.setenv("ATTNBENCH_DATA", str(tmp_path / "cache"))
    suite = load_suite(SUITES_DIR / "gpu-quick.toml", {"device": "cpu"})
    assert suite.device == "cpu" and {(c.height, c.dim) for c in suite.cases} >= {(512, 128)}
    labels = {s.label for s in suite.attentions}
    assert {"full", "swin", "linear", "mano", "mano_reference", "full_naive"} <= labels
    args = ["bench", "--quick", "--set", "device=cpu", "--set", "dtype=float32", "--set", "grids=[[8,8]]",
            "--set", "threads=1", "--set", "min_run_time=0.01", "--set", "calls_per_block=1", "--set", "min_blocks=3",
            "--set", "warmup=0",
            "--out", str(tmp_path / "results"), "--quiet"]
    with small_roofline_measurement():  # measured (the cache is empty), but small: its values are not asserted
        assert main(args) == 0
    (csv_path,) = (tmp_path / "results").rglob("gpu-quick.csv")
    with open(csv_path) as f:
        rows = list(csv.DictReader(f))
    assert {(r["label"], r["mode"]) for r in rows} == {(label, m) for label in labels for m in ("fwd", "fwd_bwd")}
    assert {r["status"] for r in rows} == {"ok"} and {r["dtype"] for r in rows} == {"float32"}
    quick = json.loads((csv_path.parent / "quick-check.json").read_text())
    assert quick["device"] == "cpu" and quick["roofline"]["peak_flops"]["float32"] > 0
    assert set(quick["checks"]) == labels
    assert all(c["status"] in ("pass", "skip") for checks in quick["checks"].values() for c in checks)
    plots = csv_path.parent / "plots" / "gpu-quick"
    # the preflight's roofline is recorded with the rows: the achieved-vs-roofline chart and table exist
    assert (plots / "gpu-quick_fwd_roofline.png").stat().st_size > 0
    assert "## Achieved vs roofline" in (plots / "scaling.md").read_text()
    assert main(["bench", "--quick", str(SUITES_DIR / "cpu.toml")]) == 2  # --quick names its own suite


@pytest.fixture(scope="module")
def logged_run(tmp_path_factory: pytest.TempPathFactory) -> tuple[int, str, str]:
    """One tiny run (3 cases) as a log file or CI sees it: stderr is not a terminal and progress is on; the summary
    goes to stdout as CSV. Returns (exit status, stdout, stderr)."""
    import contextlib
    import io

    tmp_path = tmp_path_factory.mktemp("logged")
    suite = tmp_path / "tiny.toml"
    suite.write_text(TINY.replace("[[8, 8], [16, 16]]", "[[8, 8]]").replace('["fwd", "fwd_bwd"]', '["fwd"]'))
    out, err = io.StringIO(), io.StringIO()
    with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
        code = main(["run", str(suite), "--out", str(tmp_path / "out"), "--format", "csv"])
    return code, out.getvalue(), err.getvalue()


def test_a_log_gets_one_line_per_finished_case(logged_run):
    """When the output is not a terminal (a log file, CI), progress is one line per finished case, not a bar."""
    code, _, err = logged_run
    assert code == 0, err
    lines = [line for line in err.splitlines() if line.startswith("[") and ": ok " in line]
    assert [line.split()[0] for line in lines] == ["[1/3]", "[2/3]", "[3/3]"]
    assert all(line.split()[1] == "tiny:" for line in lines)
    assert all(line.endswith(" ms") for line in lines)


def test_summary_tables_as_csv_and_json(logged_run, tmp_path, capsys):
    """``--format csv|json``: the run's summary as one record per case on stdout, for other programs."""
    import csv
    import io

    code, out, err = logged_run
    assert code == 0, err
    rows = list(csv.DictReader(io.StringIO(out)))
    assert sorted(r["label"] for r in rows) == ["full", "linear", "swin"]
    assert all(r["status"] == "ok" and float(r["time_ms_median"]) > 0 and r["height"] == "8" for r in rows)
    suite = tmp_path / "tiny.toml"
    suite.write_text(TINY.replace("[[8, 8], [16, 16]]", "[[8, 8]]").replace('["fwd", "fwd_bwd"]', '["fwd"]'))
    assert main(["run", str(suite), "--out", str(tmp_path / "out"), "--quiet", "--format", "json"]) == 0
    assert {r["label"] for r in json.loads(capsys.readouterr().out)} == {"full", "linear", "swin"}
