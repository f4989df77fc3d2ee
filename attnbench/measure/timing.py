"""Runtime of one step: ``torch.utils.benchmark.Timer`` with warm-up, median, IQR and the sample count.

``Timer.blocked_autorange`` grows the inner block until timer overhead is negligible (this doubles as warm-up),
then repeats blocks for ``min_run_time`` seconds. Its default timer synchronises CUDA before reading the clock,
so GPU times are honest. We top the measurements up to ``min_repeats`` so slow cases still give a spread.
"""

from __future__ import annotations

import statistics
from collections.abc import Callable
from dataclasses import dataclass

__all__ = ["TimingResult", "measure", "summarize"]


@dataclass(frozen=True)
class TimingResult:
    """Per-call times in seconds (each the mean over ``number_per_run`` calls of one block)."""

    times: tuple[float, ...]
    number_per_run: int

    @property
    def median(self) -> float:
        return statistics.median(self.times)

    @property
    def iqr(self) -> float:
        return summarize(self.times)[1]

    @property
    def minimum(self) -> float:
        return min(self.times)

    @property
    def n(self) -> int:
        return len(self.times)


def summarize(times: tuple[float, ...] | list[float]) -> tuple[float, float]:
    """``(median, IQR)`` with linear-interpolated quartiles (numpy's default); IQR is 0 for one sample."""
    xs = sorted(times)
    if not xs:
        raise ValueError("summarize needs at least one time")

    def q(p: float) -> float:
        pos = p * (len(xs) - 1)
        lo = int(pos)
        hi = min(lo + 1, len(xs) - 1)
        return xs[lo] + (xs[hi] - xs[lo]) * (pos - lo)

    return q(0.5), q(0.75) - q(0.25)


def measure(
    step: Callable[[], object],
    threads: int,
    min_run_time: float = 0.5,
    min_repeats: int = 5,
    warmup: int = 1,
    timer: Callable[[], float] | None = None,
) -> TimingResult:
    """Time ``step()``.

    Args:
        step: one forward (or forward+backward) call; must synchronise nothing itself.
        threads: intra-op threads used while timing (``Timer`` otherwise defaults to 1).
        min_run_time: seconds of measurement for ``blocked_autorange``.
        min_repeats: at least this many measurements (extra single blocks are added for slow steps).
        warmup: calls before any timing (first-call costs: allocator growth, lazy init, autotuning).
        timer: the clock (default ``timeit.default_timer``); tests inject a fake one.
    """
    from torch.utils.benchmark import Timer

    for _ in range(warmup):
        step()
    kwargs = {"timer": timer} if timer is not None else {}
    t = Timer(stmt="step()", globals={"step": step}, num_threads=threads, **kwargs)
    m = t.blocked_autorange(min_run_time=min_run_time)
    times = list(m.times)
    while len(times) < min_repeats:
        times.extend(t.timeit(m.number_per_run).times)
    return TimingResult(tuple(times), m.number_per_run)
