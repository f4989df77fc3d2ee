"""This machine's roofline, measured with the same timer as the benchmarks: dense matmul peak and copy bandwidth.

``attnbench roofline`` measures, per device and thread count, the FLOP/s of an ``n × n`` matmul (float32, and
bfloat16 / float16 where the device runs them) and the bandwidth of a large ``copy_`` (bytes read + written per
second), and caches the result per machine (``$ATTNBENCH_DATA`` or ``~/.cache/attnbench``, ``roofline-<machine>-
<device>-t<threads>.json``). Runs record the cached roofline in their provenance (``runtime``), so a report can say
what fraction of the attainable performance — ``min(peak FLOP/s, bandwidth × FLOPs/byte)`` — each case reached.
"""

from __future__ import annotations

import json
import os
import time
from pathlib import Path
from typing import Any

__all__ = ["VENDOR_PEAKS", "cache_path", "cached", "measure_roofline"]

# Vendor datasheet peaks (dense, no sparsity) for reading GPU rows next to the measured roofline.
VENDOR_PEAKS: dict[str, dict[str, float]] = {
    "h100": {"bf16_tflops": 989.0, "fp32_tflops": 67.0, "hbm_tbps": 3.35},
    "h200": {"bf16_tflops": 989.0, "fp32_tflops": 67.0, "hbm_tbps": 4.8},
}


def cache_path(machine: str, device: str, threads: int) -> Path:
    root = os.environ.get("ATTNBENCH_DATA")
    base = Path(root).expanduser() if root else Path.home() / ".cache" / "attnbench"
    return base / f"roofline-{machine}-{device}-t{threads}.json"


def cached(machine: str, device: str, threads: int) -> dict[str, Any] | None:
    """The cached roofline of this machine, device and thread count (``None`` before ``attnbench roofline``)."""
    path = cache_path(machine, device, threads)
    try:
        return json.loads(path.read_text())
    except (OSError, ValueError):
        return None


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


def _time(stmt: str, env: dict[str, Any], threads: int, min_run_time: float) -> float:
    from torch.utils.benchmark import Timer

    return Timer(stmt, globals=env, num_threads=threads).blocked_autorange(min_run_time=min_run_time).median


def measure_roofline(device: str = "cpu", threads: int = 1, n: int = 2048, copy_mib: int = 256,
                     min_run_time: float = 1.0) -> dict[str, Any]:
    """Measure matmul peaks and copy bandwidth on ``device`` with ``threads`` intra-op threads."""
    import torch

    torch.set_num_threads(threads)
    peaks: dict[str, float] = {}
    for dtype in (torch.float32, torch.bfloat16, torch.float16):
        try:
            a = torch.randn(n, n, device=device, dtype=dtype)
            b = torch.randn(n, n, device=device, dtype=dtype)
            a @ b  # lazy initialisation and kernel selection outside the timing
            seconds = _time("a @ b", {"a": a, "b": b}, threads, min_run_time)
        except RuntimeError:
            continue
        peaks[str(dtype).removeprefix("torch.")] = 2 * n**3 / seconds
    elements = copy_mib * 2**20 // 4
    src = torch.randn(elements, device=device)
    dst = torch.empty_like(src)
    dst.copy_(src)
    seconds = _time("dst.copy_(src)", {"dst": dst, "src": src}, threads, min_run_time)
    return {"device": device, "threads": threads, "matmul_n": n, "peak_flops": peaks,
            "copy_bytes_per_s": 2 * src.numel() * src.element_size() / seconds,
            "measured": time.strftime("%Y-%m-%dT%H:%M:%S%z"), "torch": torch.__version__}
