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

SPIN = '''
import os
from attnbench.attention.base import GridAttention
from attnbench.execute.guard import die_with_parent
from attnbench.registry import register_attention


@register_attention("probe_spin")
class Spin(GridAttention):
    """A case that never finishes, holding a core. It writes its process id first, and clears its parent-death
    signal, so that when the runner dies only the case's own watchdog (or the runner's cleanup) can end it."""

    def __init__(self, dim, heads):
        super().__init__()

    def forward(self, x):
        die_with_parent(0)
        with open(PID_FILE + ".tmp", "w") as fh:
            fh.write(str(os.getpid()))
        os.replace(PID_FILE + ".tmp", PID_FILE)
        while True:
            pass
'''

ENV = '''
import os
import torch
from attnbench.attention.base import GridAttention
from attnbench.registry import register_attention


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


def _suite(tmp_path: Path, name: str, module: str, attention: str) -> Path:
    suite = tmp_path / f"{name}.toml"
    suite.write_text(textwrap.dedent(f"""
        name = "{name}"
        device = "cpu"
        threads = 1
        dim = 8
        heads = 2
        grids = [[8, 8]]
        modes = ["fwd"]
        min_run_time = 0.01
        calls_per_block = 1  # one call per block: the autorange would time thousands
        min_blocks = 2
        imports = ["{module}"]

        [[attentions]]
        name = "{attention}"
    """))
    return suite


def _running(p: psutil.Process) -> bool:
    """Alive and not a zombie (an orphan's zombie waits for a reaper the container may not have)."""
    try:
        return p.is_running() and p.status() != psutil.STATUS_ZOMBIE
    except psutil.Error:
        return False


def _spinning_case(pid_file: Path, runner: subprocess.Popen, deadline: float) -> psutil.Process:
    """The case process of ``runner``, once it has written its PID (it spins from then on)."""
    while time.time() < deadline:
        assert runner.poll() is None, f"the runner exited ({runner.returncode}) before its case started"
        if pid_file.exists():
            return psutil.Process(int(pid_file.read_text()))
        time.sleep(0.05)
    raise AssertionError("no case process started")


@pytest.mark.parametrize("sig", [signal.SIGKILL, signal.SIGTERM])
def test_no_case_outlives_its_runner(sig, tmp_path):
    """SIGKILL: the runner cannot clean up; the case's watchdog sees it gone and ends the case. SIGTERM: the runner
    kills the case's process group on its way out. Either way the spinning case is gone within seconds."""
    pid_file = tmp_path / "case.pid"
    (tmp_path / "attnbench_probe_spin.py").write_text(f"PID_FILE = {str(pid_file)!r}\n" + SPIN)
    suite = _suite(tmp_path, "spin", "attnbench_probe_spin", "probe_spin")
    env = {**os.environ, "PYTHONPATH": f"{tmp_path}{os.pathsep}{os.environ.get('PYTHONPATH', '')}"}
    proc = subprocess.Popen([sys.executable, "-m", "attnbench", "run", str(suite), "--out", str(tmp_path / "out"),
                             "--quiet"], cwd=ROOT, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    case = None
    try:
        case = _spinning_case(pid_file, proc, time.time() + 120)
        tree = psutil.Process(proc.pid).children(recursive=True)  # the fork server and the case
        assert case in tree and _running(case)  # the runner's own case, alive and spinning when the runner dies
        os.kill(proc.pid, sig)
        proc.wait(30)
        deadline = time.time() + 10
        while time.time() < deadline and any(_running(p) for p in tree):
            time.sleep(0.1)
        assert not [p for p in tree if _running(p)], [(p.pid, p.name()) for p in tree if _running(p)]
    finally:
        proc.kill()
        proc.wait(30)
        if case is not None and _running(case):  # a failed test leaves no core spinning
            case.kill()


QUICK_CASE = '''
import types


class QuickCase:
    """The least run_isolated needs of a case: its process settings, and a run that answers at once."""

    device, threads, tf32 = "cpu", 1, False
    settings = types.SimpleNamespace(memory_limit_gib=None, imports=())

    def run(self, progress):
        return {"answer": 42}
'''


def test_timeout_counts_from_the_case_start_not_the_fork_server_start(tmp_path, monkeypatch):
    """A new fork server's first case gets its whole budget although the server spends seconds starting (here:
    importing torch plus a module that sleeps 3 s). The case itself needs milliseconds, so its 2 s budget holds
    on a loaded machine, and only a timeout counted from the server's start would miss it."""
    import multiprocessing.forkserver as forkserver

    from attnbench.execute import isolate

    (tmp_path / "attnbench_slow_preload.py").write_text("import time\ntime.sleep(3)\n")
    (tmp_path / "attnbench_quick_case.py").write_text(QUICK_CASE)
    monkeypatch.syspath_prepend(str(tmp_path))  # the case processes get this sys.path ...
    # ... but the fork server does not (Python 3.11's forkserver.main ignores the sys_path it is handed, and a
    # preload module it cannot import is skipped silently): it finds the slow module through PYTHONPATH.
    monkeypatch.setenv("PYTHONPATH", os.pathsep.join(filter(None, [str(tmp_path), os.environ.get("PYTHONPATH")])))
    ctx = isolate._context()
    preload = list(forkserver._forkserver._preload_modules)
    isolate.restart_case_server()
    ctx.set_forkserver_preload([*preload, "attnbench_slow_preload"])
    try:
        from attnbench_quick_case import QuickCase

        start = time.perf_counter()
        out = isolate.run_isolated(QuickCase(), timeout=2.0)
        wall = time.perf_counter() - start
    finally:  # later cases get a server with the usual preload
        isolate.restart_case_server()
        ctx.set_forkserver_preload(preload)
        sys.modules.pop("attnbench_quick_case", None)
    assert out.get("status") == "ok" and out.get("answer") == 42, out
    assert wall > 3.0  # the server's start did fall inside run_isolated, longer than the case's budget


FREEZE_CASE = QUICK_CASE.replace('return {"answer": 42}', 'import gc\n        return {"frozen": gc.get_freeze_count()}')


def test_a_case_does_not_walk_the_preloaded_objects_in_its_garbage_collections(tmp_path, monkeypatch):
    """The fork server freezes what its preloads created (attnbench.execute.freeze): a case's gc.collect() before
    its memory baseline then walks only the case's own objects, not torch's and timm's (~0.15 s per case)."""
    from attnbench.execute import isolate

    (tmp_path / "attnbench_freeze_case.py").write_text(FREEZE_CASE)
    monkeypatch.syspath_prepend(str(tmp_path))
    from attnbench_freeze_case import QuickCase

    try:
        out = isolate.run_isolated(QuickCase(), timeout=60.0)
    finally:
        sys.modules.pop("attnbench_freeze_case", None)
    assert out.get("status") == "ok", out
    assert out["frozen"] > 100_000, out  # torch alone creates more objects than that


def test_cases_see_the_runners_environment_now(tmp_path, monkeypatch, write_plugin):
    suite = _suite(tmp_path, "env", write_plugin("attnbench_probe_env", ENV), "probe_env")
    seen = []
    for value in ("first", "second"):
        monkeypatch.setenv("ATTNBENCH_PROBE", value)
        out = tmp_path / f"out-{value}"
        assert main(["run", str(suite), "--out", str(out), "--quiet"]) == 0
        (row,) = read_results(run_csv(out, "env"))
        seen.append(row["impl"])
    assert '"probe": "first"' in seen[0] and '"probe": "second"' in seen[1], seen


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
