"""The timer: median and IQR, and the measurement loop under an injected fake clock (warm-up, the ``max_run_time``
cap, the page-fault counter)."""

from __future__ import annotations

import itertools
import mmap

import numpy as np
import pytest

from attnbench.measure.timing import measure, summarize

# One tick of the fake clocks below: sums of ticks are exact in floating point, so times compare with ==.
TICK = 2.0**-10


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


def _fake_step(ticks, calls=None):
    """A step that advances a fake clock by the next duration (in ticks) of ``ticks`` per call, and the clock."""
    now, durations = [0.0], iter(ticks)

    def step():
        if calls is not None:
            calls[0] += 1
        now[0] += next(durations) * TICK

    return step, lambda: now[0]


def test_measure_with_an_injected_fake_clock():
    """Each call of the step advances a fake clock by the next duration of a fixed cycle, so the blocks — and their
    median — are known exactly: 2 warm-up calls (10, 12), one call for ``blocked_autorange``'s block-size estimate
    (11: one call per block is enough), then blocks of one call until 0.2 s = 204.8 ticks have been timed."""
    cycle = [10, 12, 11, 30, 9]
    step, clock = _fake_step(itertools.cycle(cycle))
    result = measure(step, threads=1, min_run_time=0.2, min_blocks=7, warmup=2, timer=clock)
    expected = [30, 9, 10, 12, 11] * 2 + [30, 9, 10, 12]  # 14 blocks, 205 ticks
    assert result.number_per_run == 1 and result.times == tuple(t * TICK for t in expected)
    assert result.median == 11 * TICK  # sorted: 9 9 9 10 10 10 11 | 11 12 12 12 30 30 30
    assert (result.q1, result.q3, result.iqr) == (10 * TICK, 12 * TICK, 2 * TICK)
    assert result.minimum == 9 * TICK and result.n == 14
    step2, clock2 = _fake_step(itertools.cycle(cycle))
    again = measure(step2, threads=1, min_run_time=0.2, min_blocks=7, warmup=2, timer=clock2)
    assert again.times == result.times  # same clock, same numbers


@pytest.mark.parametrize("calls_per_block", [None, 1])
def test_warmup_runs_before_the_clock_is_read_and_is_never_timed(calls_per_block):
    """Two slow first calls (lazy initialisation, allocator growth) are the warm-up: they run before timing starts
    and no block contains them."""
    calls, first_read = [0], []
    step, fake = _fake_step(itertools.chain([5000, 5000], itertools.repeat(1)), calls)

    def clock():
        if not first_read:
            first_read.append(calls[0])
        return fake()

    result = measure(step, threads=1, min_run_time=0.01, min_blocks=5, warmup=2, timer=clock,
                     calls_per_block=calls_per_block)
    assert first_read == [2]  # both warm-up calls ran before the first clock read
    assert set(result.times) == {TICK} and result.n >= 5


def test_max_run_time_caps_the_top_up_blocks():
    """``blocked_autorange`` stops after one 1-s block; the top-up towards ``min_blocks`` runs only while fewer than
    ``max_run_time`` seconds (on the injected clock) have passed, but gives at least 2 blocks. Each top-up block
    costs 3 s: ``Timer.timeit`` warms up with 2 untimed calls first."""
    capped_step, capped_clock = _fake_step(itertools.repeat(1024))  # 1 s per call
    capped = measure(capped_step, threads=1, min_run_time=0.2, min_blocks=20, warmup=0, max_run_time=2.5,
                     timer=capped_clock)
    assert capped.times == (1.0, 1.0)  # 2 s after the autorange block (estimate + block), then 5 s: stop
    longer_step, longer_clock = _fake_step(itertools.repeat(1024))
    longer = measure(longer_step, threads=1, min_run_time=0.2, min_blocks=20, warmup=0, max_run_time=10.0,
                     timer=longer_clock)
    assert longer.n == 4  # top-ups end at 5, 8 and 11 s: the third passes 10 s, then stop
    enough_step, enough_clock = _fake_step(itertools.repeat(1024))
    enough = measure(enough_step, threads=1, min_run_time=0.2, min_blocks=3, warmup=0, max_run_time=100.0,
                     timer=enough_clock)
    assert enough.n == 3  # min_blocks reached well before the cap


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


PAGES = 256  # pages a faulting step maps and writes per call (1 MiB)


def _touch_fresh_pages():
    """Map ``PAGES`` fresh anonymous pages (no huge pages: one fault per 4 KiB page), write each once, unmap."""
    m = mmap.mmap(-1, PAGES * mmap.PAGESIZE, flags=mmap.MAP_PRIVATE | mmap.MAP_ANONYMOUS)
    if hasattr(mmap, "MADV_NOHUGEPAGE"):
        m.madvise(mmap.MADV_NOHUGEPAGE)
    for offset in range(0, len(m), mmap.PAGESIZE):
        m[offset] = 1
    m.close()


def test_minor_faults_are_counted_per_call():
    """A step that writes ``PAGES`` freshly mapped pages pays one minor fault per page on every call; a step that
    maps nothing pays (almost) none. Per call, not per block: blocks of 4 calls here."""
    faulting = measure(_touch_fresh_pages, threads=1, min_run_time=0.0, min_blocks=10, warmup=1, calls_per_block=4)
    assert faulting.n == 10
    assert PAGES * 0.95 <= faulting.minor_faults_per_call <= PAGES * 1.3, faulting.minor_faults_per_call
    quiet = measure(lambda: None, threads=1, min_run_time=0.0, min_blocks=10, warmup=1, calls_per_block=4)
    assert quiet.minor_faults_per_call < PAGES * 0.05, quiet.minor_faults_per_call
