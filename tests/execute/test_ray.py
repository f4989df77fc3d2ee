"""``--executor ray`` on a local Ray instance (2 CPUs, no dashboard): same cases and statuses as the local
executor, a killed worker is a crashed row, a killed driver resumes, cases pack where they may, and a case no node
can hold is unsupported at once."""

from __future__ import annotations

import dataclasses
import json
import os
import signal
import subprocess
import sys
import textwrap
import threading
import time
from pathlib import Path

import pytest

from attnbench.cli import main
from attnbench.store.csvfile import read_results

ray = pytest.importorskip("ray", reason="the Ray executor's tests need pip install 'attnbench[ray]'")

ROOT = Path(__file__).resolve().parents[2]

PLUGINS = '''
import time
import torch
from attnbench.attention.base import GridAttention
from attnbench.registry import register_attention

_slept = False


class _Base(GridAttention):
    def __init__(self, dim, heads):
        super().__init__()
        self.lin = torch.nn.Linear(dim, dim)


@register_attention("ray_sleep")
class Sleeps(_Base):
    def forward(self, x):
        time.sleep(600)


@register_attention("ray_slow_start")
class SlowStart(_Base):
    """Sleeps 4 s on its first call in a process, then is cheap: wall time without CPU load."""

    def forward(self, x):
        global _slept
        if not _slept:
            _slept = True
            time.sleep(4)
        return self.lin(x)
'''


def _suite(path: Path, name: str, attentions: list[str], grids: str = "[[8, 8]]", extra: str = "") -> Path:
    entries = "\n".join(f'[[attentions]]\nname = "{a}"\nlabel = "{a}_{i}"\n' for i, a in enumerate(attentions))
    path.write_text(textwrap.dedent(f"""
        name = "{name}"
        device = "cpu"
        threads = 1
        dim = 8
        heads = 2
        grids = {grids}
        modes = ["fwd"]
        min_run_time = 0.01
        min_repeats = 2
        timeout = 60
        imports = ["attnbench_ray_plugins"]
    """) + extra + entries)
    return path


def _rows(out: Path, suite: str) -> list[dict[str, str]]:
    (csv,) = sorted(out.glob(f"*/*/{suite}.csv"))
    return read_results(csv)


@pytest.fixture(scope="module")
def plugins(tmp_path_factory: pytest.TempPathFactory) -> Path:
    where = tmp_path_factory.mktemp("plugins")
    (where / "attnbench_ray_plugins.py").write_text(PLUGINS)
    sys.path.insert(0, str(where))
    yield where
    sys.path.remove(str(where))
    sys.modules.pop("attnbench_ray_plugins", None)
    from attnbench import registry

    for name in ("ray_sleep", "ray_slow_start"):
        registry._REGISTRY.pop(name, None)


def test_driver_killed_mid_sweep_resumes_without_loss_or_duplicates(plugins: Path, tmp_path: Path) -> None:
    """The driver (with its own local Ray instance) is SIGKILLed mid-sweep; the re-run resumes the same run."""
    suite = _suite(tmp_path / "resume.toml", "resume", ["linear", "full", "full_naive"] * 2, grids="[[8, 8], [16, 16]]")
    out = tmp_path / "out"
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([str(plugins), str(ROOT)])}
    cmd = [sys.executable, "-m", "attnbench", "run", str(suite), "--out", str(out), "--quiet", "--executor", "ray"]
    proc = subprocess.Popen(cmd, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, env=env, cwd=tmp_path)
    deadline = time.time() + 180
    while time.time() < deadline and (not list(out.glob("*/*/resume.csv")) or len(_rows(out, "resume")) < 3):
        time.sleep(0.1)
    os.kill(proc.pid, signal.SIGKILL)
    proc.wait()
    before = len(_rows(out, "resume"))
    assert 3 <= before < 12
    done = subprocess.run(cmd, capture_output=True, text=True, env=env, cwd=tmp_path, timeout=300)
    assert done.returncode == 0, done.stderr[-2000:]
    assert "resuming the interrupted run" in done.stderr
    keys = [r["case_key"] for r in _rows(out, "resume")]
    assert len(keys) == 12 and len(set(keys)) == 12


@pytest.fixture(scope="module")
def cluster(plugins: Path):
    """One local Ray instance for the in-process tests: 2 CPUs, dashboard off, workers see the plugins."""
    ray.init(num_cpus=2, include_dashboard=False, log_to_driver=False,
             runtime_env={"env_vars": {"PYTHONPATH": os.pathsep.join([str(plugins), str(ROOT)])}})
    yield
    ray.shutdown()


def test_smoke_suite_through_ray_matches_the_local_executor(cluster: None, tmp_path: Path,
                                                            capsys: pytest.CaptureFixture[str]) -> None:
    smoke = str(ROOT / "suites" / "smoke.toml")
    small = ["--set", "grids=[[8,8]]", "--set", 'modes=["fwd"]']  # the smoke suite's six mechanisms, one case each
    start = time.perf_counter()
    assert main(["run", smoke, "--out", str(tmp_path / "local"), "--quiet", *small]) == 0
    middle = time.perf_counter()
    assert main(["run", smoke, "--out", str(tmp_path / "ray"), "--quiet", *small, "--executor", "ray"]) == 0
    end = time.perf_counter()
    local, remote = _rows(tmp_path / "local", "smoke"), _rows(tmp_path / "ray", "smoke")
    # the same cases one at a time (a timing case holds the node): the difference is Ray's, per case
    overhead = ((end - middle) - (middle - start)) / len(remote)
    with capsys.disabled():
        print(f"\nsmoke 8x8 fwd, {len(remote)} cases: local {middle - start:.1f} s, Ray {end - middle:.1f} s; overhead "
              f"{overhead * 1e3:.0f} ms per case (the Ray worker's first case also starts its case-process server)")
    assert {r["case_key"]: r["status"] for r in remote} == {r["case_key"]: r["status"] for r in local}
    assert len(remote) == 6 and {r["status"] for r in remote} == {"ok"}
    placement = [json.loads(r["runtime"])["placement"] for r in remote]
    assert all(p["executor"] == "ray" and p["node"] and p["node_id"] for p in placement)


def test_a_worker_killed_during_a_case_is_a_crashed_row(cluster: None, plugins: Path, tmp_path: Path) -> None:
    import psutil

    suite = _suite(tmp_path / "kill.toml", "kill", ["ray_sleep", "linear"])
    killed: list[int] = []

    def kill_the_worker() -> None:
        deadline = time.time() + 120
        while time.time() < deadline and not killed:
            for p in psutil.process_iter(["cmdline"]):
                if "ray::_run_remote" in " ".join(p.info["cmdline"] or []):
                    time.sleep(3)  # let the case start sleeping
                    p.kill()
                    killed.append(p.pid)
                    return
            time.sleep(0.2)

    thread = threading.Thread(target=kill_the_worker)
    thread.start()
    assert main(["run", str(suite), "--out", str(tmp_path / "out"), "--quiet", "--executor", "ray"]) == 0
    thread.join()
    rows = {r["label"]: r for r in _rows(tmp_path / "out", "kill")}
    assert killed
    assert rows["ray_sleep_0"]["status"] == "crashed", rows["ray_sleep_0"]
    assert rows["ray_sleep_0"]["reason"].startswith("Ray worker died on node ")
    assert rows["linear_1"]["status"] == "ok"  # the sweep went on


def test_cases_that_may_pack_run_in_parallel(cluster: None, plugins: Path, tmp_path: Path,
                                             capsys: pytest.CaptureFixture[str]) -> None:
    """Eight 1-thread cases, each mostly waiting 4 s: on 2 logical workers clearly faster than one at a time
    (each Ray worker pays its own case-process server start once, so the ratio stays above 1/2)."""
    suite = _suite(tmp_path / "pack.toml", "pack", ["ray_slow_start"] * 8)
    start = time.perf_counter()
    assert main(["run", str(suite), "--out", str(tmp_path / "seq"), "--quiet"]) == 0
    sequential = time.perf_counter() - start
    start = time.perf_counter()
    assert main(["run", str(suite), "--out", str(tmp_path / "par"), "--quiet", "--executor", "ray",
                 "--ray-pack-timing"]) == 0
    parallel = time.perf_counter() - start
    with capsys.disabled():
        print(f"\n8 one-thread cases: sequential {sequential:.1f} s, Ray on 2 CPUs {parallel:.1f} s, "
              f"ratio {parallel / sequential:.2f}")
    assert {r["status"] for r in _rows(tmp_path / "par", "pack")} == {"ok"}
    assert parallel < 0.8 * sequential


def test_a_case_no_node_can_hold_is_unsupported_at_once(cluster: None, tmp_path: Path) -> None:
    from attnbench.execute.executors import RayExecutor
    from attnbench.spec.suite import load_suite

    case = dataclasses.replace(load_suite(ROOT / "suites" / "smoke.toml").cases[0], device="cuda")
    executor = RayExecutor()
    start = time.perf_counter()
    ((_, outcome, _),) = list(executor.outcomes([case], {}, lambda c, m: None))
    assert outcome["status"] == "unsupported" and "GPU" in outcome["reason"]
    assert time.perf_counter() - start < 5  # not queued, waiting for a GPU that never comes


def test_without_ray_the_option_says_how_to_get_it(monkeypatch: pytest.MonkeyPatch, tmp_path: Path,
                                                    capsys: pytest.CaptureFixture[str]) -> None:
    monkeypatch.setitem(sys.modules, "ray", None)  # import ray → ImportError
    smoke = str(ROOT / "suites" / "smoke.toml")
    assert main(["run", smoke, "--out", str(tmp_path), "--executor", "ray"]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and "pip install 'attnbench[ray]'" in err[0]
