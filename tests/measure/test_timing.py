"""The timer: median and IQR, and the measurement loop under an injected fake clock."""

from __future__ import annotations

import itertools

import numpy as np
import pytest

from attnbench.measure.timing import measure, summarize


def test_summarize_median_and_iqr():
    assert summarize([3.0]) == (3.0, 0.0)
    median, iqr = summarize([5.0, 1.0, 4.0, 2.0, 3.0])
    assert median == 3.0 and iqr == pytest.approx(2.0)  # quartiles 2 and 4
    median, iqr = summarize([1.0, 2.0, 3.0, 10.0])
    assert median == 2.5 and iqr == pytest.approx(4.75 - 1.75)
    xs = np.random.default_rng(1).exponential(size=11)
    assert summarize(list(xs))[1] == pytest.approx(np.percentile(xs, 75) - np.percentile(xs, 25))
    with pytest.raises(ValueError):
        summarize([])


def test_measure_with_an_injected_fake_clock():
    """Each call of the step advances a fake clock by the next duration of a fixed cycle: deterministic."""
    now = [0.0]
    durations = itertools.cycle([0.010, 0.012, 0.011, 0.030, 0.009])

    def step():
        now[0] += next(durations)

    result = measure(step, threads=1, min_run_time=0.2, min_blocks=7, warmup=2, timer=lambda: now[0])
    again_now = [0.0]
    durations = itertools.cycle([0.010, 0.012, 0.011, 0.030, 0.009])

    def step2():
        again_now[0] += next(durations)

    again = measure(step2, threads=1, min_run_time=0.2, min_blocks=7, warmup=2, timer=lambda: again_now[0])
    assert result.times == again.times  # same clock, same numbers
    assert result.n >= 7 and result.number_per_run >= 1
    median, iqr = summarize(result.times)
    assert (result.median, result.iqr) == (median, iqr)
    assert 0.009 <= result.median <= 0.030 and result.minimum >= 0.009 - 1e-12


def test_fixed_calls_per_block_time_every_call_and_nothing_else():
    """A fixed block size times back-to-back blocks: no untimed calls between them (``Timer.timeit`` would warm up
    with two before every block, tripling a slow case's cost), at least ``min_blocks`` and ``min_run_time``."""
    now, calls = [0.0], [0]
    durations = itertools.cycle([0.010, 0.012, 0.011, 0.030, 0.009])

    def step():
        calls[0] += 1
        now[0] += next(durations)

    result = measure(step, threads=1, min_run_time=0.05, min_blocks=3, warmup=1, timer=lambda: now[0],
                     calls_per_block=1)
    assert result.number_per_run == 1 and calls[0] == 1 + result.n  # the warm-up call, then only timed ones
    assert result.times == pytest.approx((0.012, 0.011, 0.030))  # exactly the calls after the warm-up
    now[0], calls[0] = 0.0, 0
    durations = itertools.cycle([1.0])
    capped = measure(step, threads=1, min_run_time=0.0, min_blocks=10, warmup=0, max_run_time=2.5,
                     timer=lambda: now[0], calls_per_block=2)
    assert capped.times == (1.0, 1.0) and calls[0] == 4  # the max_run_time cap: 2 blocks, then stop
