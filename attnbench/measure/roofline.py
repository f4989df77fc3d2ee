"""This machine's roofline, measured with the same timer as the benchmarks: dense matmul peak and copy bandwidth.

``attnbench roofline`` measures, per device and thread count, the FLOP/s of an ``n × n`` matmul (float32, and
bfloat16 / float16 where the device runs them) and the bandwidth of a large ``copy_`` (bytes read + written per
second), and caches the result per machine (``$ATTNBENCH_DATA`` or ``~/.cache/attnbench``, ``roofline-<machine>-
<device>-t<threads>.json``). Runs record the cached roofline in their provenance (``runtime``), so a report can say
what fraction of the attainable performance — ``min(peak FLOP/s, bandwidth × FLOPs/byte)`` — each case reached.

**Time cap.** Each dtype's side is chosen before it is timed: single calls are timed on the halving chain of the
requested side (``n, n/2, n/4, …`` down to :data:`MIN_N`), smallest first, and the side grows while a call stays
under :data:`CALL_CAP_S` (the next size is tried only when ``8 ×`` the last call, the cubic cost, stays under the
cap too). Going up rather than down means no probe call ever takes much longer than the cap: on a 2-core CPU
without an fp16 fast path a single 2048² fp16 matmul takes about a minute. The chosen side is then timed with the
benchmark timer for about ``min_run_time`` seconds. On a GPU the calls are short, so the requested side (large, for
the tensor-core peak) is kept.

**Slow dtypes.** A dtype whose single-call rate at its chosen side is below :data:`SLOW_FRACTION` (1 %) of
float32's FLOP/s has no fast path on this device: it is not timed to completion, and it is recorded under
``slow_dtypes`` (dtype → reason) and left **out** of ``peak_flops``, so an achieved-vs-roofline fraction never
divides by a meaningless peak.

Result (``FORMAT`` 2)::

    {"format": 2, "device": "cpu", "threads": 2,
     "peak_flops": {"float32": 2.9e11, "bfloat16": 1.7e12},      # FLOP/s, only dtypes timed to completion
     "slow_dtypes": {"float16": "float16: 0.3 GFLOP/s at n=256, < 1 % of float32 ..."},
     "matmul_n_by_dtype": {"float32": 2048, "bfloat16": 2048, "float16": 256},   # the side each dtype used
     "matmul_call_s": {"float32": 0.064, ...},                   # one call at that side (the probe)
     "matmul_n": 2048,                                           # requested side (format 1's key, still written)
     "call_cap_s": 0.2, "slow_fraction": 0.01,
     "copy_bytes_per_s": 2.3e10, "copy_mib": 256, "seconds": 6.1, "measured": "...", "torch": "..."}

Files of format 1 (no ``format`` key: one ``matmul_n`` for every dtype) stay readable: :func:`cached` upgrades
them on reading (``matmul_n_by_dtype`` from ``matmul_n``, and any cached dtype below 1 % of float32 moved to
``slow_dtypes``). :func:`matmul_sizes` and :func:`describe` read either format.
"""

from __future__ import annotations

import json
import os
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

__all__ = ["CALL_CAP_S", "FORMAT", "MIN_N", "SLOW_FRACTION", "VENDOR_PEAKS", "cache_path", "cached", "describe",
           "matmul_sizes", "measure_roofline", "roofline_for"]

FORMAT = 2
CALL_CAP_S = 0.2  # one matmul call at the chosen side stays under this
MIN_N = 128  # the side is never shrunk below this (or below the requested side, when that is smaller)
SLOW_FRACTION = 0.01  # below this fraction of float32's FLOP/s a dtype is "slow": recorded, not timed

# Vendor datasheet peaks (dense, no sparsity) for reading GPU rows next to the measured roofline.
VENDOR_PEAKS: dict[str, dict[str, float]] = {
    "h100": {"bf16_tflops": 989.0, "fp32_tflops": 67.0, "hbm_tbps": 3.35},
    "h200": {"bf16_tflops": 989.0, "fp32_tflops": 67.0, "hbm_tbps": 4.8},
}

_DTYPES = ("float32", "bfloat16", "float16")  # float32 first: the others are judged against it


def cache_path(machine: str, device: str, threads: int) -> Path:
    root = os.environ.get("ATTNBENCH_DATA")
    base = Path(root).expanduser() if root else Path.home() / ".cache" / "attnbench"
    return base / f"roofline-{machine}-{device}-t{threads}.json"


def cached(machine: str, device: str, threads: int) -> dict[str, Any] | None:
    """The cached roofline of this machine, device and thread count (``None`` before ``attnbench roofline``),
    upgraded to the current format when an older attnbench wrote it."""
    path = cache_path(machine, device, threads)
    try:
        result = json.loads(path.read_text())
    except (OSError, ValueError):
        return None
    return _upgrade(result) if isinstance(result, dict) else None


def roofline_for(machine: str, device: str, threads: int, n: int, copy_mib: int,
                 force: bool = False) -> dict[str, Any]:
    """The cached roofline, or (absent, or ``force``) a new measurement, written to the cache."""
    result = None if force else cached(machine, device, threads)
    if result is None:
        result = measure_roofline(device, threads, n=n, copy_mib=copy_mib)
        path = cache_path(machine, device, threads)
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(json.dumps(result, indent=1, sort_keys=True) + "\n")
    return result


def matmul_sizes(result: dict[str, Any]) -> dict[str, int]:
    """The matmul side each dtype was measured at (timed or probed), in either format."""
    if isinstance(result.get("matmul_n_by_dtype"), dict):
        return {k: int(v) for k, v in result["matmul_n_by_dtype"].items()}
    n = result.get("matmul_n")
    return {k: int(n) for k in result.get("peak_flops", {})} if n else {}


def describe(result: dict[str, Any]) -> list[str]:
    """Human-readable lines: one per timed dtype (side and GFLOP/s), one per slow dtype (its reason)."""
    sizes = matmul_sizes(result)
    peaks = result.get("peak_flops", {})
    lines = [f"matmul {sizes.get(k, '?')}² {k}: {v / 1e9:.1f} GFLOP/s" for k, v in peaks.items()]
    lines += [f"matmul {reason}" for reason in result.get("slow_dtypes", {}).values()]
    return lines


def _upgrade(result: dict[str, Any]) -> dict[str, Any]:
    """A format-1 result (one ``matmul_n`` for all dtypes, every measured dtype in ``peak_flops``) in format 2."""
    if result.get("format", 1) >= FORMAT:
        return result
    out = dict(result)
    peaks = dict(out.get("peak_flops") or {})
    n = out.get("matmul_n")
    out["matmul_n_by_dtype"] = {k: n for k in peaks} if n else {}
    slow: dict[str, str] = {}
    ref = peaks.get("float32")
    for k, v in list(peaks.items()):
        if k != "float32" and ref and v < SLOW_FRACTION * ref:
            slow[k] = (f"{k}: {v / 1e9:.3g} GFLOP/s at n={n}, < {SLOW_FRACTION * 100:g} % of float32 ({ref / 1e9:.1f} "
                       "GFLOP/s; cached by an older attnbench); not used as a peak")
            del peaks[k]
    out.update(peak_flops=peaks, slow_dtypes=slow, format=FORMAT)
    return out


def _time(stmt: str, env: dict[str, Any], threads: int, min_run_time: float) -> float:
    """Median seconds per call of ``stmt``: the benchmark timer, for about ``min_run_time`` seconds."""
    from torch.utils.benchmark import Timer

    return Timer(stmt, globals=env, num_threads=threads).blocked_autorange(min_run_time=min_run_time).median


def _call_seconds(env: dict[str, Any], device: str) -> float:
    """Seconds of one ``a @ b`` call (the faster of two: the first pays lazy initialisation), synchronised on CUDA."""
    import torch

    sync = torch.cuda.synchronize if device.startswith("cuda") else (lambda: None)
    best = float("inf")
    for _ in range(2):
        sync()
        start = time.perf_counter()
        env["a"] @ env["b"]
        sync()
        best = min(best, time.perf_counter() - start)
    return best


def _operands(n: int, dtype: Any, device: str) -> dict[str, Any]:
    import torch

    return {"a": torch.randn(n, n, device=device, dtype=dtype), "b": torch.randn(n, n, device=device, dtype=dtype)}


def _chain(n: int, min_n: int) -> list[int]:
    """The halving chain of ``n`` down to ``min_n`` (just ``[n]`` when ``n`` is already small), smallest first."""
    sides = [n]
    while sides[-1] // 2 >= min_n:
        sides.append(sides[-1] // 2)
    return sides[::-1]


def _choose_side(n: int, dtype: Any, device: str, cap: float, min_n: int,
                 call: Callable[[dict[str, Any], str], float]) -> tuple[int, float, dict[str, Any]]:
    """The largest side on ``n``'s halving chain whose single call stays under ``cap`` seconds (the smallest side
    when even that one is over): ``(side, seconds of one call, operands)``. The next side is only tried when its
    cubic estimate, ``8 ×`` the last call, is under ``cap`` too, so no probe runs far past the cap."""
    kept: tuple[int, float, dict[str, Any]] | None = None
    for s in _chain(n, min_n):
        if kept is not None and kept[1] * (s / kept[0]) ** 3 > cap:
            break
        trial = _operands(s, dtype, device)
        took = call(trial, device)
        if kept is not None and took > cap:
            break
        kept = (s, took, trial)  # the smallest side is kept even over the cap; its estimate stops the rest
    assert kept is not None, "the halving chain holds at least one side"
    return kept


def measure_roofline(device: str = "cpu", threads: int = 1, n: int = 2048, copy_mib: int = 256,
                     min_run_time: float = 1.0, call_cap_s: float = CALL_CAP_S, min_n: int = MIN_N,
                     slow_fraction: float = SLOW_FRACTION) -> dict[str, Any]:
    """Measure matmul peaks and copy bandwidth on ``device`` with ``threads`` intra-op threads, each dtype at the
    largest side up to ``n`` whose call stays under ``call_cap_s``; dtypes below ``slow_fraction`` of float32 are
    recorded in ``slow_dtypes``, not timed and not in ``peak_flops`` (see the module docstring)."""
    import torch

    began = time.perf_counter()
    torch.set_num_threads(threads)
    peaks: dict[str, float] = {}
    sizes: dict[str, int] = {}
    calls: dict[str, float] = {}
    slow: dict[str, str] = {}
    for name in _DTYPES:
        try:
            side, seconds, env = _choose_side(n, getattr(torch, name), device, call_cap_s, min_n, _call_seconds)
        except RuntimeError:  # the device does not run this dtype's matmul
            continue
        sizes[name], calls[name] = side, seconds
        rate, ref = 2 * side**3 / seconds, peaks.get("float32")
        if name != "float32" and ref and rate < slow_fraction * ref:
            slow[name] = (f"{name}: {rate / 1e9:.3g} GFLOP/s at n={side}, < {slow_fraction * 100:g} % of float32 "
                          f"({ref / 1e9:.1f} GFLOP/s; no fast path on this {device}); not timed to completion")
            continue
        try:
            peaks[name] = 2 * side**3 / _time("a @ b", env, threads, min_run_time)
        except RuntimeError:
            continue
    elements = copy_mib * 2**20 // 4
    src = torch.randn(elements, device=device)
    dst = torch.empty_like(src)
    dst.copy_(src)
    seconds = _time("dst.copy_(src)", {"dst": dst, "src": src}, threads, min_run_time)
    return {"format": FORMAT, "device": device, "threads": threads, "matmul_n": n, "matmul_n_by_dtype": sizes,
            "matmul_call_s": calls, "peak_flops": peaks, "slow_dtypes": slow, "call_cap_s": call_cap_s,
            "slow_fraction": slow_fraction, "copy_bytes_per_s": 2 * src.numel() * src.element_size() / seconds,
            "copy_mib": copy_mib, "seconds": round(time.perf_counter() - began, 2),
            "measured": time.strftime("%Y-%m-%dT%H:%M:%S%z"), "torch": torch.__version__}
