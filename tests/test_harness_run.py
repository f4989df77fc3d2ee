"""The cost harness end to end: smoke suite, fault injection, resume, truncated CSV, lock."""

from __future__ import annotations

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
from attnbench.store.schema import COLUMNS

ROOT = Path(__file__).resolve().parents[1]


def test_smoke_suite_end_to_end(tmp_path):
    start = time.perf_counter()
    assert main(["bench", str(ROOT / "suites" / "smoke.toml"), "--out", str(tmp_path), "--quiet"]) == 0
    assert time.perf_counter() - start < 60
    csv_path = tmp_path / "smoke.csv"
    header = csv_path.read_text().splitlines()[0].split(",")
    assert tuple(header) == COLUMNS
    rows = read_results(csv_path)
    assert len(rows) == 6 * 2 * 2  # 6 mechanisms x 2 grids x 2 modes, one row each
    assert len({r["case_key"] for r in rows}) == len(rows)
    for r in rows:
        assert r["status"] == "ok", r
        assert float(r["time_ms_median"]) > 0 and float(r["time_ms_iqr"]) >= 0 and int(r["time_n"]) >= 3
        assert float(r["peak_mib"]) >= 0 and r["mem_kind"] == "cpu_rss"
        assert int(r["threads"]) == 1 and r["dtype"] == "float32" and r["tf32"] == "false"
        assert r["torch"] and r["timestamp"] and r["schema_version"] == "1"
    assert {r["sdpa_backend"] for r in rows if r["attention"] == "full"} == {"flash"}
    plots = tmp_path / "plots" / "smoke"
    pngs = sorted(p.name for p in plots.glob("*.png"))
    assert "smoke_fwd_runtime.png" in pngs and "smoke_fwd_bwd_memory_cpu_rss.png" in pngs
    assert all((plots / p).stat().st_size > 10_000 for p in pngs)
    assert "Frontier" in (plots / "scaling.md").read_text()


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
def fault_suite(tmp_path, monkeypatch):
    (tmp_path / "attnbench_fault_plugins.py").write_text(FAULTS)
    monkeypatch.syspath_prepend(str(tmp_path))
    suite = tmp_path / "faults.toml"
    entries = "\n".join(f'[[attentions]]\nname = "{n}"\n' for n in
                        ("fault_oom", "fault_alloc", "fault_sigkill", "fault_sleep", "fault_value", "linear"))
    suite.write_text(textwrap.dedent(f"""
        name = "faults"
        device = "cpu"
        threads = 1
        dim = 8
        heads = 2
        grids = [[8, 8], [16, 16]]
        modes = ["fwd"]
        min_run_time = 0.01
        min_repeats = 2
        timeout = 4
        memory_limit_gib = 1
        imports = ["attnbench_fault_plugins"]
    """) + entries)
    yield suite
    sys.modules.pop("attnbench_fault_plugins", None)
    from attnbench import registry

    for name in ("fault_oom", "fault_alloc", "fault_sigkill", "fault_sleep", "fault_value"):
        registry._REGISTRY.pop(name, None)


def test_faults_become_statuses_and_the_sweep_finishes(fault_suite, tmp_path):
    assert main(["run", str(fault_suite), "--out", str(tmp_path / "out"), "--quiet"]) == 0
    rows = {(r["label"], r["height"]): r for r in read_results(tmp_path / "out" / "faults.csv")}
    assert len(rows) == 12
    small = {label: rows[(label, "8")] for label, _ in rows}
    assert small["fault_oom"]["status"] == "oom" and "OutOfMemoryError" in small["fault_oom"]["reason"]
    assert small["fault_alloc"]["status"] == "oom", small["fault_alloc"]["reason"]
    assert small["fault_sigkill"]["status"] == "crashed" and "SIGKILL" in small["fault_sigkill"]["reason"]
    assert small["fault_sleep"]["status"] == "timeout"
    assert small["fault_value"]["status"] == "error"
    assert small["fault_value"]["reason"] == "ValueError: bad thing happened"
    assert small["linear"]["status"] == "ok"
    # oom and timeout set a frontier: the larger grid is recorded as skipped, not tried
    for label in ("fault_oom", "fault_alloc", "fault_sleep"):
        assert rows[(label, "16")]["status"] == "skipped" and "above frontier" in rows[(label, "16")]["reason"]
    for label, status in (("fault_sigkill", "crashed"), ("fault_value", "error"), ("linear", "ok")):
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


def test_resume_after_killing_the_parent(tmp_path):
    suite = tmp_path / "tiny.toml"
    suite.write_text(TINY)
    out = tmp_path / "out"
    csv_path = out / "tiny.csv"
    proc = subprocess.Popen([sys.executable, "-m", "attnbench", "run", str(suite), "--out", str(out), "--quiet"],
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, cwd=ROOT)
    deadline = time.time() + 120
    while time.time() < deadline and (not csv_path.exists() or len(_keys(csv_path)) < 4):
        time.sleep(0.05)
    os.kill(proc.pid, signal.SIGKILL)  # the parent dies mid-sweep
    proc.wait()
    done_before = len(_keys(csv_path))
    assert 4 <= done_before < 12
    assert main(["run", str(suite), "--out", str(out), "--quiet"]) == 0
    keys = _keys(csv_path)
    assert len(keys) == 12 and len(set(keys)) == 12  # every case exactly once
    assert main(["run", str(suite), "--out", str(out), "--quiet"]) == 0  # nothing left to do
    assert len(_keys(csv_path)) == 12


def test_truncated_last_line_is_repaired_with_a_warning(tmp_path):
    suite = tmp_path / "tiny.toml"
    suite.write_text(TINY.replace('modes = ["fwd", "fwd_bwd"]', 'modes = ["fwd"]'))
    out = tmp_path / "out"
    assert main(["run", str(suite), "--out", str(out), "--quiet"]) == 0
    csv_path = out / "tiny.csv"
    lines = csv_path.read_text().splitlines(keepends=True)
    assert len(lines) == 7
    csv_path.write_text("".join(lines[:-1]) + lines[-1][: len(lines[-1]) // 2])  # a crash mid-write
    with pytest.warns(RuntimeWarning, match="last line is truncated"):
        assert main(["run", str(suite), "--out", str(out), "--quiet"]) == 0
    keys = _keys(csv_path)
    assert len(keys) == 6 and len(set(keys)) == 6
    assert all(len(line.split(",")) >= len(COLUMNS) for line in csv_path.read_text().splitlines())


def test_fresh_keeps_the_old_file(tmp_path):
    suite = tmp_path / "tiny.toml"
    suite.write_text(TINY.replace("[[8, 8], [16, 16]]", "[[8, 8]]").replace('["fwd", "fwd_bwd"]', '["fwd"]'))
    out = tmp_path / "out"
    assert main(["run", str(suite), "--out", str(out), "--quiet"]) == 0
    assert main(["run", str(suite), "--out", str(out), "--quiet", "--fresh"]) == 0
    backups = list(out.glob("tiny.*.bak.csv"))
    assert len(backups) == 1 and len(read_results(backups[0])) == 3 and len(_keys(out / "tiny.csv")) == 3


def test_second_run_on_a_locked_file_is_refused(tmp_path, capsys):
    suite = tmp_path / "tiny.toml"
    suite.write_text(TINY)
    with ResultsFile(tmp_path / "out" / "tiny.csv"):
        assert main(["run", str(suite), "--out", str(tmp_path / "out"), "--quiet"]) == 2
    assert "holds its lock" in capsys.readouterr().err


def test_foreign_header_is_refused_and_left_untouched(tmp_path, capsys):
    suite = tmp_path / "tiny.toml"
    suite.write_text(TINY)
    (tmp_path / "out").mkdir()
    foreign = tmp_path / "out" / "tiny.csv"
    foreign.write_text("a,b,c\n1,2,3\n")
    assert main(["run", str(suite), "--out", str(tmp_path / "out"), "--quiet"]) == 2
    assert "header does not match" in capsys.readouterr().err
    assert foreign.read_text() == "a,b,c\n1,2,3\n"


@pytest.mark.slow
def test_compile_axis(tmp_path):
    """compile = [false, true]: two series, compile time recorded, no fake CPU peak for the compiled one."""
    suite = tmp_path / "tiny.toml"
    suite.write_text(TINY.replace('modes = ["fwd", "fwd_bwd"]', 'modes = ["fwd"]\ncompile = [false, true]')
                     .replace("[[8, 8], [16, 16]]", "[[8, 8]]").replace("timeout = 60", "timeout = 600"))
    assert main(["run", str(suite), "--out", str(tmp_path / "out"), "--quiet", "--only", "linear"]) == 0
    rows = {r["compile"]: r for r in read_results(tmp_path / "out" / "tiny.csv")}
    assert rows["true"]["status"] == "ok" and float(rows["true"]["compile_s"]) > 0
    assert rows["true"]["peak_mib"] == "" and rows["false"]["peak_mib"] != ""
    assert main(["plot", str(tmp_path / "out" / "tiny.csv")]) == 0
    assert "linear [compiled]" in (tmp_path / "out" / "plots" / "tiny" / "scaling.md").read_text()
