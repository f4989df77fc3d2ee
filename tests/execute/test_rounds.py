"""Replicated suites: rounds interleave every case, shuffled by a recorded seed; a case that fails in one round is
recorded and not re-tried blindly; the rows carry their round, place, canaries and CPU steal."""

from __future__ import annotations

import textwrap
from collections import Counter
from pathlib import Path

import pytest

from attnbench.cli import main
from attnbench.execute.rounds import earlier_failures, plan_rounds
from attnbench.spec.suite import SUITES_DIR, load_suite
from attnbench.store.csvfile import read_results

from conftest import run_csv

PLUGIN = '''
import torch
from attnbench.attention.base import GridAttention
from attnbench.registry import register_attention


@register_attention("rounds_fault")
class RaisesValueError(GridAttention):
    def __init__(self, dim, heads):
        super().__init__()
        self.lin = torch.nn.Linear(dim, dim)

    def forward(self, x):
        raise ValueError("fails every time")
'''


def test_rounds_hold_every_case_once_grids_ascending_first_then_shuffled_by_the_seed():
    suite = load_suite(SUITES_DIR / "cpu.toml")
    rounds = plan_rounds(suite)
    assert len(rounds) == suite.replicates == 6
    for r, cases in enumerate(rounds, 1):
        assert sorted(c.case_key for c in cases) == sorted(c.key for c in suite.cases)  # every case once
        assert {c.replicate for c in cases} == {r}
    first = [c.tokens for c in rounds[0]]
    assert first == sorted(first)  # the frontier needs the small grids first
    assert [c.label for c in rounds[0]] != [c.label for c in suite.cases]  # but mechanisms shuffled within a grid
    assert [c.tokens for c in rounds[1]] != sorted(c.tokens for c in rounds[1])  # later rounds: all shuffled
    orders = [[c.case_key for c in cases] for cases in rounds[1:]]
    assert len({tuple(o) for o in orders}) == len(orders)  # a new order every round
    assert [c.key for c in plan_rounds(suite)[3]] == [c.key for c in rounds[3]]  # seeded: the same plan again
    other = load_suite(SUITES_DIR / "cpu.toml", {"order_seed": 1})
    assert [c.key for c in plan_rounds(other)[3]] != [c.key for c in rounds[3]]
    keys = [c.key for cases in rounds for c in cases]
    assert len(set(keys)) == len(keys)  # one row key per process


def test_unreplicated_suites_keep_their_order_and_keys():
    suite = load_suite(SUITES_DIR / "smoke.toml")
    assert suite.replicates == 1
    assert [c.key for c in plan_rounds(suite)[0]] == [c.key for c in suite.cases]
    assert all("|r" not in c.key for c in suite.cases)


def test_earlier_failures_name_the_round():
    rows = [{"case_key": "a|fwd|8x8|r1", "status": "error", "replicate": "1"},
            {"case_key": "b|fwd|8x8|r1", "status": "ok", "replicate": "1"},
            {"case_key": "c|fwd|8x8", "status": "error", "replicate": ""}]
    assert earlier_failures(rows) == {"a|fwd|8x8": "error in round 1"}


@pytest.fixture
def fault_plugin(write_plugin):
    return write_plugin("attnbench_rounds_plugin", PLUGIN)


def test_a_replicated_run_records_rounds_and_does_not_retry_a_failure(tmp_path: Path, fault_plugin: str):
    suite = tmp_path / "rep.toml"
    suite.write_text(textwrap.dedent(f"""
        name = "rep"
        device = "cpu"
        threads = 1
        dim = 8
        heads = 2
        grids = [[8, 8], [16, 16]]
        modes = ["fwd"]
        replicates = 2  # round 2 is the one that must skip, not re-try, round 1's failure
        order_seed = 7
        calls_per_block = 1
        min_run_time = 0.01
        min_blocks = 3
        timeout = 30
        imports = ["{fault_plugin}"]

        [[attentions]]
        name = "linear"

        [[attentions]]
        name = "rounds_fault"
    """))
    assert main(["run", str(suite), "--out", str(tmp_path / "out"), "--quiet"]) == 0
    rows = read_results(run_csv(tmp_path / "out", "rep"))
    assert len(rows) == 2 * 2 * 2 and len({r["case_key"] for r in rows}) == len(rows)
    linear = [r for r in rows if r["label"] == "linear"]
    assert Counter(r["replicate"] for r in linear) == {"1": 2, "2": 2}
    assert all(r["status"] == "ok" and r["order_seed"] == "7" and r["time_calls_per_block"] == "1" for r in linear)
    # the kernel is profiled in the first process of a case only (linear calls no SDPA: "none", not "")
    assert {r["replicate"]: r["sdpa_backend"] for r in linear} == {"1": "none", "2": ""}
    assert all(float(r["speed_compute_ms"]) > 0 and float(r["speed_memory_ms"]) > 0 for r in rows)
    assert {r["round_position"] for r in rows} == {"1", "2", "3", "4"}
    assert all(r["cpu_steal_pct"] != "" for r in linear)  # /proc/stat exists on the CI machine
    fault = sorted((r["replicate"], r["height"], r["status"], r["reason"])
                   for r in rows if r["label"] == "rounds_fault")
    assert [f[2] for f in fault if f[0] == "1"] == ["error", "error"]
    assert all(f[2] == "skipped" and "error in round 1" in f[3] for f in fault if f[0] != "1")  # not re-tried
    # what every analysis reads: one row per case, its estimate over the processes
    from attnbench.report.analysis.frame import load_frame

    cases = load_frame([run_csv(tmp_path / "out", "rep")])
    lin = cases[cases["label"] == "linear"]
    assert (lin["sdpa_backend"] == "none").all()  # the case row keeps the first process's kernel
    assert len(lin) == 2 and (lin["replicates"] == 2).all() and lin["time_ms_ci_lo"].isna().all()  # 2 < 6
