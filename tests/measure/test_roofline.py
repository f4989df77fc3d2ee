"""The roofline under a time cap: the side shrinks for a slow dtype, a dtype below 1 % of float32 is reported slow
and kept out of the peaks, the cache round-trips, and a file written by the old format is still read."""

from __future__ import annotations

import json

import pytest

from attnbench.measure import roofline as rl

# Seconds per call at side 2048 (cubic in the side): float32 fast (3.4 TFLOP/s).
F32_2048 = 0.005


def _cost(dtype: str, side: int) -> float:
    """Fake seconds of one ``side``² matmul: float32 fast; bfloat16 fast up to 1024 but 0.5 s at 2048 (a step the
    cubic estimate does not foresee); float16 1 s at 2048 (17 GFLOP/s, 0.5 % of float32: slow)."""
    if dtype == "float32":
        return F32_2048 * (side / 2048) ** 3
    if dtype == "bfloat16":
        return 0.5 if side >= 2048 else 0.16 * (side / 2048) ** 3
    return 1.0 * (side / 2048) ** 3


@pytest.fixture
def fake(monkeypatch):
    """No real matmul: operands are descriptors, one call "takes" :func:`_cost`, the timer returns it too. Records
    every probe call and every timed statement."""
    log = {"probes": [], "timed": []}

    def operands(n, dtype, device):
        return {"n": n, "dtype": str(dtype).removeprefix("torch.")}

    def call_seconds(env, device):
        took = _cost(env["dtype"], env["n"])
        log["probes"].append((env["dtype"], env["n"], took))
        return took

    def timer(stmt, env, threads, min_run_time):
        if stmt == "dst.copy_(src)":
            return 1e-3
        log["timed"].append((env["dtype"], env["n"]))
        return _cost(env["dtype"], env["n"])

    monkeypatch.setattr(rl, "_operands", operands)
    monkeypatch.setattr(rl, "_call_seconds", call_seconds)
    monkeypatch.setattr(rl, "_time", timer)
    return log


def test_time_cap_shrinks_the_side_and_reports_a_slow_dtype(fake):
    roof = rl.measure_roofline("cpu", 1, n=2048, copy_mib=1)
    # float32 keeps the requested side; bfloat16's 2048² call is over the cap, so it stays at 1024; float16's
    # cubic estimate for 2048 (8 × 0.125 s) is over the cap, so 2048 is never even tried
    assert roof["matmul_n_by_dtype"] == {"float32": 2048, "bfloat16": 1024, "float16": 1024}
    assert roof["matmul_n"] == 2048 and rl.matmul_sizes(roof) == roof["matmul_n_by_dtype"]
    assert max(took for _, _, took in fake["probes"]) <= 0.5  # no minute-long probe; only bfloat16's step is over
    assert ("float16", 2048) not in [(d, n) for d, n, _ in fake["probes"]]
    # float16 is slow: recorded with its reason, not timed to completion, not a peak
    assert "float16" not in roof["peak_flops"]
    reason = roof["slow_dtypes"]["float16"]
    assert reason.startswith("float16: ") and "n=1024" in reason and "< 1 % of float32" in reason
    assert [d for d, _ in fake["timed"]] == ["float32", "bfloat16"]
    # the timed ones are 2 n³ over the timer's median at their own side
    assert roof["peak_flops"]["float32"] == pytest.approx(2 * 2048**3 / F32_2048)
    assert roof["peak_flops"]["bfloat16"] == pytest.approx(2 * 1024**3 / _cost("bfloat16", 1024))
    assert set(roof["slow_dtypes"]) == {"float16"} and roof["format"] == rl.FORMAT
    assert any("float16" in line and "not timed" in line for line in rl.describe(roof))


def test_smallest_side_over_the_cap_is_kept_and_nothing_larger_tried(fake):
    roof = rl.measure_roofline("cpu", 1, n=2048, copy_mib=1, call_cap_s=1e-9)
    assert set(roof["matmul_n_by_dtype"].values()) == {rl.MIN_N}
    assert {n for _, n, _ in fake["probes"]} == {rl.MIN_N}


def test_cache_round_trips_and_is_reused(fake, tmp_path, monkeypatch):
    monkeypatch.setenv("ATTNBENCH_DATA", str(tmp_path))
    first = rl.roofline_for("m", "cpu", 2, 2048, 1)
    assert rl.cache_path("m", "cpu", 2).parent == tmp_path
    assert rl.cached("m", "cpu", 2) == json.loads(json.dumps(first))
    timed = len(fake["timed"])
    assert rl.roofline_for("m", "cpu", 2, 2048, 1) == rl.cached("m", "cpu", 2)
    assert len(fake["timed"]) == timed  # read from the cache, not measured again
    rl.roofline_for("m", "cpu", 2, 2048, 1, force=True)
    assert len(fake["timed"]) > timed
    assert rl.cached("m", "cpu", 3) is None  # another thread count has its own file


# written by the format-1 code (one matmul_n for every dtype, no slow_dtypes)
OLD = {"copy_bytes_per_s": 23289955966.99, "device": "cpu", "matmul_n": 2048, "measured": "2026-12-06T07:22:06+0000",
       "peak_flops": {"bfloat16": 1737009078512.29, "float16": 264831925235.16, "float32": 294599290838.51},
       "threads": 2, "torch": "2.14.1+cu130"}


def test_old_format_cached_file_is_still_read(tmp_path, monkeypatch):
    from attnbench.report.analysis.attainable import attainable

    monkeypatch.setenv("ATTNBENCH_DATA", str(tmp_path))
    path = rl.cache_path("m", "cpu", 2)
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(OLD))
    roof = rl.cached("m", "cpu", 2)
    assert roof["peak_flops"] == OLD["peak_flops"] and roof["slow_dtypes"] == {}
    assert roof["matmul_n"] == 2048 and roof["matmul_n_by_dtype"] == dict.fromkeys(OLD["peak_flops"], 2048)
    assert rl.matmul_sizes(OLD) == roof["matmul_n_by_dtype"]  # readable without upgrading too
    assert len(rl.describe(OLD)) == 3
    # an old file holding a meaningless peak (fp16 at 0.3 GFLOP/s): moved out of the peaks on reading
    slow = dict(OLD, peak_flops=dict(OLD["peak_flops"], float16=0.3e9))
    path.write_text(json.dumps(slow))
    roof = rl.cached("m", "cpu", 2)
    assert "float16" not in roof["peak_flops"] and "float16" in roof["slow_dtypes"]
    assert attainable(roof, "float16", 1e12, 1e6) is None  # no achieved-vs-roofline fraction against it
    assert attainable(roof, "float32", 1e12, 1e6) == OLD["peak_flops"]["float32"]


def test_real_measurement_small():
    roof = rl.measure_roofline("cpu", 1, n=256, copy_mib=1, min_run_time=0.02)
    assert roof["peak_flops"]["float32"] > 1e6 and roof["copy_bytes_per_s"] > 1e6
    assert roof["matmul_n_by_dtype"]["float32"] <= 256 and roof["seconds"] < 20
    assert set(roof["matmul_n_by_dtype"]) == set(roof["peak_flops"]) | set(roof["slow_dtypes"])
    json.dumps(roof)
