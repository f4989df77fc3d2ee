"""``--executor ray`` on a local Ray instance (2 CPUs, no GPU, no dashboard): same cases and statuses as the local
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

import psutil
import pytest

from attnbench.cli import main
from attnbench.store.csvfile import read_results

from conftest import registry_snapshot

ray = pytest.importorskip("ray", reason="the Ray executor's tests need pip install 'attnbench[ray]'")

ROOT = Path(__file__).resolve().parents[2]

# MARKS (a folder) is prepended when the module is written: the cases and the tests meet through files in it.
PLUGINS = '''
import os
import time
import torch
from attnbench.attention.base import GridAttention
from attnbench.registry import register_attention


class _Base(GridAttention):
    def __init__(self, dim, heads):
        super().__init__()
        self.lin = torch.nn.Linear(dim, dim)


def _mark(name, text=""):
    with open(os.path.join(MARKS, name + ".tmp"), "w") as fh:
        fh.write(text)
    os.replace(os.path.join(MARKS, name + ".tmp"), os.path.join(MARKS, name))


@register_attention("ray_sleep")
class Sleeps(_Base):
    """Writes its process id to MARKS/sleeping, then sleeps."""

    def forward(self, x):
        _mark("sleeping", str(os.getpid()))
        time.sleep(600)


@register_attention("ray_gate")
class Gate(_Base):
    """Marks MARKS/gate-entered, then waits (at most 45 s) for MARKS/gate-open: a sweep the test can interrupt at a
    known case."""

    def forward(self, x):
        _mark("gate-entered")
        deadline = time.time() + 45
        while not os.path.exists(os.path.join(MARKS, "gate-open")) and time.time() < deadline:
            time.sleep(0.05)
        return self.lin(x)


@register_attention("ray_pair")
class Pair(_Base):
    """On its first call in a process, marks MARKS/pair/<pid> and waits (at most 45 s) until two cases have: two
    cases that run at the same time both pass at once; one after the other, the first waits in vain."""

    _met = False

    def forward(self, x):
        if not Pair._met:
            Pair._met = True
            where = os.path.join(MARKS, "pair")
            os.makedirs(where, exist_ok=True)
            open(os.path.join(where, str(os.getpid())), "w").close()
            deadline = time.time() + 45
            while len(os.listdir(where)) < 2 and time.time() < deadline:
                time.sleep(0.05)
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
        calls_per_block = 1  # one call per block: the autorange would time thousands
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
    """The folder of the test plugins (``attnbench_ray_plugins``), on ``sys.path``; its ``marks/`` is where the cases
    leave marks. The registry is restored, and the module forgotten, after the module's tests."""
    where = tmp_path_factory.mktemp("plugins")
    (where / "marks").mkdir()
    (where / "attnbench_ray_plugins.py").write_text(f"MARKS = {str(where / 'marks')!r}\n" + PLUGINS)
    sys.path.insert(0, str(where))
    try:
        with registry_snapshot():
            yield where
    finally:
        sys.path.remove(str(where))
        sys.modules.pop("attnbench_ray_plugins", None)


def _wait_for(path: Path, proc: subprocess.Popen | None = None, seconds: float = 180) -> None:
    deadline = time.time() + seconds
    while not path.exists():
        assert proc is None or proc.poll() is None, f"the driver exited ({proc.returncode}) before {path.name}"
        assert time.time() < deadline, f"no {path.name} within {seconds:g} s"
        time.sleep(0.05)


@pytest.fixture(scope="module")
def cluster(plugins: Path):
    """One new local Ray instance for the in-process tests (never one already running here): 2 CPUs, no GPU,
    dashboard off, workers see the plugins."""
    ray.init(address="local", num_cpus=2, num_gpus=0, include_dashboard=False, log_to_driver=False,
             runtime_env={"env_vars": {"PYTHONPATH": os.pathsep.join([str(plugins), str(ROOT)])}})
    yield
    ray.shutdown()


def test_driver_killed_mid_sweep_resumes_without_loss_or_duplicates(cluster: None, plugins: Path, tmp_path: Path,
                                                                    capsys: pytest.CaptureFixture[str]) -> None:
    """A driver is SIGKILLed while its third case waits at a gate; the re-run resumes the same run and records the
    two cases left. The killed driver started a local Ray instance of its own: RAY_ADDRESS names an address where
    nothing listens, and a driver that joined it would fail."""
    suite = _suite(tmp_path / "resume.toml", "resume", ["linear", "full", "ray_gate", "full_naive"])
    out = tmp_path / "out"
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([str(plugins), str(ROOT)]),
           "RAY_ADDRESS": "127.0.0.1:1"}  # nothing listens there: joining it would fail
    cmd = ["run", str(suite), "--out", str(out), "--quiet", "--executor", "ray"]
    proc = subprocess.Popen([sys.executable, "-m", "attnbench", *cmd], stdout=subprocess.DEVNULL,
                            stderr=subprocess.DEVNULL, env=env, cwd=tmp_path)
    try:
        _wait_for(plugins / "marks" / "gate-entered", proc, seconds=120)
        os.kill(proc.pid, signal.SIGKILL)
    finally:
        proc.kill()
        proc.wait(30)
    assert sorted(r["label"] for r in _rows(out, "resume")) == ["full_1", "linear_0"]  # the two before the gate
    (plugins / "marks" / "gate-open").touch()
    capsys.readouterr()
    assert main(cmd) == 0  # the re-run, on this test's Ray instance
    assert "resuming the interrupted run" in capsys.readouterr().err
    rows = _rows(out, "resume")
    assert sorted(r["label"] for r in rows) == ["full_1", "full_naive_3", "linear_0", "ray_gate_2"]
    assert len({r["case_key"] for r in rows}) == 4 and {r["status"] for r in rows} == {"ok"}


def test_smoke_suite_through_ray_matches_the_local_executor(cluster: None, tmp_path: Path) -> None:
    """The smoke suite's six mechanisms (8x8, forward) through Ray: the cases a local run records (the suite's
    planned case keys), all ok, each placed on this instance's node, one at a time (a timing case holds the
    node)."""
    from attnbench.spec.suite import load_suite

    smoke = str(ROOT / "suites" / "smoke.toml")
    small = {"grids": [[8, 8]], "modes": ["fwd"]}
    assert main(["run", smoke, "--out", str(tmp_path / "ray"), "--quiet", "--set", "grids=[[8,8]]",
                 "--set", 'modes=["fwd"]', "--executor", "ray"]) == 0
    remote = _rows(tmp_path / "ray", "smoke")
    planned = {c.key for c in load_suite(smoke, small).cases}
    assert len(planned) == 6 and {r["case_key"]: r["status"] for r in remote} == dict.fromkeys(planned, "ok")
    placement = [json.loads(r["runtime"])["placement"] for r in remote]
    assert all(p["executor"] == "ray" and p["node"] and p["node_id"] for p in placement)
    spans = sorted((p["start_unix"], p["end_unix"]) for p in placement)
    assert all(a_end <= b_start for (_, a_end), (b_start, _) in zip(spans, spans[1:])), spans


def test_a_worker_killed_during_a_case_is_a_crashed_row(cluster: None, plugins: Path, tmp_path: Path) -> None:
    """The Ray worker running a sleeping case is killed; only a worker of this test's own Ray instance (a descendant
    of this process) is ever a candidate."""
    suite = _suite(tmp_path / "kill.toml", "kill", ["ray_sleep", "linear"])
    killed: list[int] = []
    problems: list[str] = []

    def kill_the_worker() -> None:
        try:
            _wait_for(plugins / "marks" / "sleeping", seconds=120)
            case = psutil.Process(int((plugins / "marks" / "sleeping").read_text()))
            ours = psutil.Process().children(recursive=True)  # this test's Ray instance: raylet, workers, cases
            worker = next(p for p in case.parents() if "ray::_run_remote" in " ".join(p.cmdline()))
            if worker not in ours:
                problems.append(f"worker {worker.pid} is not of this test's Ray instance")
                return
            worker.kill()
            killed.append(worker.pid)
        except (AssertionError, StopIteration, psutil.Error) as exc:
            problems.append(repr(exc))

    thread = threading.Thread(target=kill_the_worker)
    thread.start()
    assert main(["run", str(suite), "--out", str(tmp_path / "out"), "--quiet", "--executor", "ray"]) == 0
    thread.join()
    rows = {r["label"]: r for r in _rows(tmp_path / "out", "kill")}
    assert killed and not problems, problems
    assert rows["ray_sleep_0"]["status"] == "crashed", rows["ray_sleep_0"]
    assert rows["ray_sleep_0"]["reason"].startswith("Ray worker died on node ")
    assert rows["linear_1"]["status"] == "ok"  # the sweep went on


def test_cases_that_may_pack_run_in_parallel(cluster: None, plugins: Path, tmp_path: Path) -> None:
    """Two one-thread timing cases with --ray-pack-timing on 2 CPUs run at the same time: their intervals on the
    workers (``runtime.placement``) overlap. Each waits on its first call for the other to start, so the overlap
    does not hang on timing luck; run one after the other, the first waits in vain and the intervals are apart."""
    suite = _suite(tmp_path / "pack.toml", "pack", ["ray_pair"] * 2)
    assert main(["run", str(suite), "--out", str(tmp_path / "par"), "--quiet", "--executor", "ray",
                 "--ray-pack-timing"]) == 0
    rows = _rows(tmp_path / "par", "pack")
    assert [r["status"] for r in rows] == ["ok", "ok"], rows
    (a_start, a_end), (b_start, b_end) = sorted((p["start_unix"], p["end_unix"]) for p in
                                                (json.loads(r["runtime"])["placement"] for r in rows))
    assert b_start < a_end  # the second started before the first ended
    assert len({json.loads(r["runtime"])["placement"]["worker_pid"] for r in rows}) == 2


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
