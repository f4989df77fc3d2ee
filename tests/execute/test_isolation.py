"""Case isolation: no case outlives its runner, the timeout counts from the case's start, the fork server does not
freeze the environment, and the CUDA memory baseline / NVML device rules (checked with stubs where no GPU exists)."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import psutil
import pytest

from attnbench.cli import main
from attnbench.store.csvfile import read_results
from conftest import run_csv

ROOT = Path(__file__).resolve().parents[2]

PLUGINS = '''
import os
import torch
from attnbench.attention.base import GridAttention
from attnbench.registry import register_attention


@register_attention("probe_spin")
class Spin(GridAttention):
    def __init__(self, dim, heads):
        super().__init__()

    def forward(self, x):
        while True:  # a case that never finishes, holding a core
            pass


@register_attention("probe_env")
class Env(GridAttention):
    def __init__(self, dim, heads):
        super().__init__()
        self.lin = torch.nn.Linear(dim, dim)

    def forward(self, x):
        return self.lin(x)

    def extra_info(self):
        return {"probe": os.environ.get("ATTNBENCH_PROBE", "unset")}
'''


def _suite(tmp_path: Path, name: str, timeout: float = 600) -> Path:
    (tmp_path / "attnbench_probe_plugins.py").write_text(PLUGINS)
    suite = tmp_path / f"{name}.toml"
    suite.write_text(textwrap.dedent(f"""
        name = "{name}"
        device = "cpu"
        threads = 1
        dim = 8
        heads = 2
        grids = [[8, 8]]
        min_run_time = 0.01
        min_blocks = 2
        timeout = {timeout}
        imports = ["attnbench_probe_plugins"]

        [[attentions]]
        name = "{'probe_spin' if name == 'spin' else 'probe_env'}"
    """))
    return suite


def _descendants_when_running(proc: subprocess.Popen, deadline: float) -> list[psutil.Process]:
    """The runner's process tree once a case process burns CPU (fork server + case)."""
    while time.time() < deadline:
        kids = psutil.Process(proc.pid).children(recursive=True)
        for k in kids:
            try:
                if k.cpu_percent(interval=0.2) > 50:
                    return [p for p in kids if p.is_running()]
            except psutil.Error:  # short-lived helpers (git) come and go
                pass
    raise AssertionError("no case process started")


@pytest.mark.parametrize("sig", [signal.SIGKILL, signal.SIGTERM])
def test_no_case_outlives_its_runner(sig, tmp_path):
    suite = _suite(tmp_path, "spin")
    env = {**os.environ, "PYTHONPATH": f"{tmp_path}{os.pathsep}{os.environ.get('PYTHONPATH', '')}"}
    proc = subprocess.Popen([sys.executable, "-m", "attnbench", "run", str(suite), "--out", str(tmp_path / "out"),
                             "--quiet"], cwd=ROOT, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        kids = _descendants_when_running(proc, time.time() + 120)
        os.kill(proc.pid, sig)
        proc.wait(30)
        gone, alive = psutil.wait_procs(kids, timeout=10)
        assert not alive, [(p.pid, p.name()) for p in alive]
    finally:
        proc.kill()
        proc.wait(30)


def test_timeout_counts_from_the_case_start_not_the_fork_server_start(tmp_path):
    """A fresh runner's first case gets its whole budget although the fork server spends seconds importing torch."""
    suite = _suite(tmp_path, "quick", timeout=1.5)
    env = {**os.environ, "PYTHONPATH": f"{tmp_path}{os.pathsep}{os.environ.get('PYTHONPATH', '')}"}
    subprocess.run([sys.executable, "-m", "attnbench", "run", str(suite), "--out", str(tmp_path / "out"), "--quiet"],
                   cwd=ROOT, env=env, check=True, capture_output=True, timeout=300)
    (row,) = read_results(run_csv(tmp_path / "out", "quick"))
    assert row["status"] == "ok", row["reason"]


def test_cases_see_the_runners_environment_now(tmp_path, monkeypatch):
    suite = _suite(tmp_path, "env")
    monkeypatch.syspath_prepend(str(tmp_path))
    seen = []
    for value in ("first", "second"):
        monkeypatch.setenv("ATTNBENCH_PROBE", value)
        out = tmp_path / f"out-{value}"
        assert main(["run", str(suite), "--out", str(out), "--quiet"]) == 0
        (row,) = read_results(run_csv(out, "env"))
        seen.append(row["impl"])
    assert '"probe": "first"' in seen[0] and '"probe": "second"' in seen[1], seen
    sys.modules.pop("attnbench_probe_plugins", None)
    from attnbench import registry

    for name in ("probe_spin", "probe_env"):
        registry._REGISTRY.pop(name, None)


def test_cuda_peak_baseline_is_taken_after_gradients_are_cleared(monkeypatch):
    """With a stub CUDA allocator: the baseline is read after ``reset`` (the previous step's gradients cleared),
    so the measured step's own gradients count, as on CPU."""
    import torch

    from attnbench.measure import memory

    events = []
    allocated = {"now": 0, "peak": 0}

    def grow(n):
        allocated["now"] += n
        allocated["peak"] = max(allocated["peak"], allocated["now"])

    monkeypatch.setattr(torch.cuda, "synchronize", lambda: None)
    monkeypatch.setattr(torch.cuda, "reset_peak_memory_stats", lambda: allocated.update(peak=allocated["now"]))
    monkeypatch.setattr(torch.cuda, "memory_allocated", lambda: events.append("baseline") or allocated["now"])
    monkeypatch.setattr(torch.cuda, "max_memory_allocated", lambda: allocated["peak"])
    grow(100)  # gradients left over from the previous step

    def clear():
        events.append("clear")
        grow(-100)

    def step():
        grow(300)  # activations + new gradients
        grow(-200)  # activations freed; the gradients (100) stay

    result = memory.peak_memory(step, "cuda", reset=clear)
    assert events == ["clear", "baseline"] and result.peak_bytes == 300 and result.kind == "cuda_allocated"


def test_nvml_reads_the_device_the_case_uses(monkeypatch):
    import types

    import torch

    from attnbench.measure import provenance

    assert provenance.nvml_index(None, 0) == 0 and provenance.nvml_index("3,1", 1) == 1
    assert provenance.nvml_index("2,3", 0) == 2 and provenance.nvml_index("GPU-abc,GPU-def", 1) == "GPU-def"
    calls = []
    fake = types.SimpleNamespace(
        nvmlInit=lambda: None, nvmlShutdown=lambda: None,
        nvmlDeviceGetHandleByIndex=lambda i: calls.append(("index", i)) or i,
        nvmlDeviceGetHandleByUUID=lambda u: calls.append(("uuid", u)) or u,
        nvmlDeviceGetName=lambda h: f"GPU {h}",
        nvmlDeviceGetMemoryInfo=lambda h: types.SimpleNamespace(total=2**30))
    monkeypatch.setitem(sys.modules, "pynvml", fake)
    monkeypatch.setattr(torch.cuda, "is_available", lambda: True)
    monkeypatch.setattr(torch.cuda, "current_device", lambda: 1)
    monkeypatch.setenv("CUDA_VISIBLE_DEVICES", "5,7")
    assert provenance._gpu_info() == ("GPU 7", 1.0) and calls == [("index", 7)]
