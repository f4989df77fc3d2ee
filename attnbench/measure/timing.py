"""Runtime of one step: ``torch.utils.benchmark.Timer`` with warm-up, ≥ 20 timing blocks (or a stated budget), and
statistics that say what they are computed over.

``Timer.blocked_autorange`` grows the inner block until timer overhead is negligible (this doubles as warm-up),
then repeats blocks of ``number`` calls for ``min_run_time`` seconds; its default timer synchronises CUDA before
reading the clock, so GPU times are honest. We top the blocks up to ``min_blocks`` unless ``max_run_time`` seconds
of timing have passed. Every statistic is over **blocks**: each sample is the mean per-call time of one block of
``number`` consecutive calls (so the spread of single calls is not observed). The median's 95 % CI is a
percentile bootstrap over blocks. Minor page faults per call are counted too (``getrusage``): a step whose
temporaries come from freshly mapped pages pays for zeroing them on every call.
"""

from __future__ import annotations

import resource
import statistics
import time
from collections.abc import Callable
from dataclasses import dataclass

__all__ = ["TimingResult", "bootstrap_median_ci", "measure", "quartiles", "summarize"]


@dataclass(frozen=True)
class TimingResult:
    """Per-call times in seconds, one per block (each the mean over ``number_per_run`` calls of one block)."""

    times: tuple[float, ...]
    number_per_run: int
    minor_faults_per_call: float | None = None

    @property
    def median(self) -> float:
        return statistics.median(self.times)

    @property
    def q1(self) -> float:
        return quartiles(self.times)[0]

    @property
    def q3(self) -> float:
        return quartiles(self.times)[2]

    @property
    def iqr(self) -> float:
        return summarize(self.times)[1]

    @property
    def minimum(self) -> float:
        return min(self.times)

    @property
    def n(self) -> int:
        return len(self.times)

    def median_ci(self, level: float = 0.95) -> tuple[float, float]:
        return bootstrap_median_ci(self.times, level)


def quartiles(times: tuple[float, ...] | list[float]) -> tuple[float, float, float]:
    """``(q1, median, q3)`` with linear-interpolated quartiles (numpy's default)."""
    xs = sorted(times)
    if not xs:
        raise ValueError("quartiles need at least one time")

    def q(p: float) -> float:
        pos = p * (len(xs) - 1)
        lo = int(pos)
        hi = min(lo + 1, len(xs) - 1)
        return xs[lo] + (xs[hi] - xs[lo]) * (pos - lo)

    return q(0.25), q(0.5), q(0.75)


def summarize(times: tuple[float, ...] | list[float]) -> tuple[float, float]:
    """``(median, IQR)``; IQR is 0 for one sample."""
    q1, med, q3 = quartiles(times)
    return med, q3 - q1


def bootstrap_median_ci(times: tuple[float, ...] | list[float], level: float = 0.95, resamples: int = 2000,
                        seed: int = 0) -> tuple[float, float]:
    """Percentile-bootstrap confidence interval of the median (seeded: the same samples give the same CI)."""
    import numpy as np

    xs = np.asarray(times, float)
    if len(xs) < 2:
        return float(xs[0]), float(xs[0])
    rng = np.random.default_rng(seed)
    medians = np.median(rng.choice(xs, size=(resamples, len(xs)), replace=True), axis=1)
    lo, hi = np.quantile(medians, [(1 - level) / 2, (1 + level) / 2])
    return float(lo), float(hi)


def measure(
    step: Callable[[], object],
    threads: int,
    min_run_time: float = 0.5,
    min_blocks: int = 20,
    warmup: int = 1,
    max_run_time: float = 10.0,
    timer: Callable[[], float] | None = None,
    calls_per_block: int | None = None,
) -> TimingResult:
    """Time ``step()``.

    Args:
        step: one forward (or forward+backward) call; must synchronise nothing itself.
        threads: intra-op threads used while timing (``Timer`` otherwise defaults to 1).
        min_run_time: seconds of measurement for ``blocked_autorange``.
        min_blocks: top the blocks up to this many ...
        warmup: calls before any timing (first-call costs: allocator growth, lazy init, autotuning).
        max_run_time: ... unless this many seconds of timing have passed (then fewer blocks, at least 2).
        timer: the clock (default ``timeit.default_timer``), also the one ``max_run_time`` is counted on; tests
            inject a fake one.
        calls_per_block: a fixed block size instead of the autorange's choice, so every grid of a series is timed
            the same way (the autorange moves from 10 to 1 calls per block as a call gets slower, and a scaling
            fit across that step mixes two regimes). Blocks then repeat until ``min_blocks`` blocks and
            ``min_run_time`` seconds, or ``max_run_time`` seconds (at least 2 blocks).
    """
    from torch.utils.benchmark import Timer
    from torch.utils.benchmark.utils.timer import timer as benchmark_timer

    for _ in range(warmup):
        step()
    calls = [0]

    def counted() -> None:
        calls[0] += 1
        step()

    t = Timer(stmt="step()", globals={"step": counted}, num_threads=threads, timer=timer or benchmark_timer)
    clock = timer or time.perf_counter  # the cap below counts the injected clock's seconds too
    faults0, start = resource.getrusage(resource.RUSAGE_SELF).ru_minflt, clock()
    if calls_per_block:
        times = _fixed_blocks(counted, threads, calls_per_block, min_run_time, min_blocks, max_run_time, timer)
        number = calls_per_block
    else:
        m = t.blocked_autorange(min_run_time=min_run_time)
        number, times = m.number_per_run, list(m.times)
        while len(times) < min_blocks and (len(times) < 2 or clock() - start < max_run_time):
            times.extend(t.timeit(number).times)  # note: Timer.timeit first warms up with ≥ 2 untimed calls
    faults = resource.getrusage(resource.RUSAGE_SELF).ru_minflt - faults0
    return TimingResult(tuple(times), number, faults / calls[0] if calls[0] else None)


def _fixed_blocks(step: Callable[[], object], threads: int, number: int, min_run_time: float, min_blocks: int,
                  max_run_time: float, timer: Callable[[], float] | None) -> list[float]:
    """Back-to-back blocks of ``number`` calls, timed with the benchmark timer (it synchronises CUDA), until
    ``min_blocks`` blocks and ``min_run_time`` seconds, or ``max_run_time`` seconds (at least 2 blocks). Unlike
    ``Timer.timeit``, no untimed calls run between blocks: the warm-up was done before, once."""
    from torch.utils.benchmark.utils.common import set_torch_threads
    from torch.utils.benchmark.utils.timer import timer as benchmark_timer

    clock = timer or benchmark_timer
    times: list[float] = []
    with set_torch_threads(threads):
        start = clock()
        while True:
            elapsed = clock() - start
            if len(times) >= 2 and (elapsed >= max_run_time or (len(times) >= min_blocks and elapsed >= min_run_time)):
                return times
            t0 = clock()
            for _ in range(number):
                step()
            times.append((clock() - t0) / number)
