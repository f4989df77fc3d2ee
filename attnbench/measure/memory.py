"""Peak memory of one step, with the counter that is right for the device.

* CUDA: ``torch.cuda.reset_peak_memory_stats()`` once inputs and parameters exist, then
  ``max_memory_allocated() - memory_allocated()`` around the step: the memory the step itself needed
  (kind ``cuda_allocated``; inputs are recorded separately).
* CPU: torch has no CPU allocator statistics, so we use the process high-water mark. Writing ``5`` to
  ``/proc/self/clear_refs`` resets ``VmHWM`` to the current RSS; peak = ``VmHWM`` after the step minus ``VmRSS``
  before it (kind ``cpu_rss``). This is honest only in a fresh process on the first large step — freed heap
  blocks stay resident and are reused silently — so the harness measures memory first, in a new process per case.
"""

from __future__ import annotations

import gc
from collections.abc import Callable
from pathlib import Path

__all__ = ["MemoryResult", "cpu_peak_supported", "peak_memory", "prime_cpu_runtime", "read_peak", "start_peak"]

_STATUS = Path("/proc/self/status")


def _status_kib(field: str) -> int:
    for line in _STATUS.read_text().splitlines():
        if line.startswith(field + ":"):
            return int(line.split()[1])
    raise RuntimeError(f"{field} not found in {_STATUS}")


def cpu_peak_supported() -> bool:
    return _STATUS.exists() and Path("/proc/self/clear_refs").exists()


class MemoryResult(tuple):
    """``(peak_bytes, kind)``; kind is ``cuda_allocated`` or ``cpu_rss``."""

    __slots__ = ()

    def __new__(cls, peak_bytes: int, kind: str) -> MemoryResult:
        return super().__new__(cls, (peak_bytes, kind))

    @property
    def peak_bytes(self) -> int:
        return self[0]

    @property
    def kind(self) -> str:
        return self[1]


def prime_cpu_runtime() -> None:
    """Run tiny versions of the common kernels so thread pools and library state exist before measuring.

    Their first use allocates per-thread stacks and caches; that must not be charged to the first large step.
    """
    import torch
    import torch.nn.functional as F

    x = torch.randn(2, 2, 16, 8, requires_grad=True)
    y = F.scaled_dot_product_attention(x, x, x) + (x @ x.transpose(-1, -2)).softmax(-1) @ x
    y = F.layer_norm(torch.nn.Linear(8, 8)(y), (8,))
    z = F.conv_transpose2d(F.conv2d(y, torch.randn(2, 2, 2, 2), stride=2), torch.randn(2, 2, 2, 2), stride=2)
    # An explicit gradient, as the harness passes: autograd imports sympy (~35 MiB) on the first such call.
    z.backward(torch.ones_like(z))


def start_peak(device: str) -> int | None:
    """Reset the peak counter of ``device`` and return the baseline in bytes (``None``: no CPU counter here)."""
    import torch

    if device == "cuda":
        torch.cuda.synchronize()
        torch.cuda.reset_peak_memory_stats()
        return torch.cuda.memory_allocated()
    if not cpu_peak_supported():
        return None
    Path("/proc/self/clear_refs").write_text("5")
    return _status_kib("VmRSS") * 1024


def read_peak(device: str, base: int | None) -> MemoryResult | None:
    """Peak bytes since :func:`start_peak` beyond its baseline (``None`` when there was no counter)."""
    import torch

    if device == "cuda":
        torch.cuda.synchronize()
        return MemoryResult(torch.cuda.max_memory_allocated() - (base or 0), "cuda_allocated")
    if base is None:
        return None
    return MemoryResult(max(0, _status_kib("VmHWM") * 1024 - base), "cpu_rss")


def peak_memory(step: Callable[[], object], device: str, reset: Callable[[], object] | None = None) -> MemoryResult:
    """Peak bytes that ``step()`` needs beyond what is allocated before it.

    ``reset`` runs first, before the baseline is read (e.g. clearing the previous step's gradients, so that the
    measured step's own gradients count on every device).
    """
    if reset is not None:
        reset()
    gc.collect()
    if device != "cuda" and not cpu_peak_supported():
        raise RuntimeError("CPU peak memory needs Linux /proc/self/clear_refs")
    base = start_peak(device)
    step()
    result = read_peak(device, base)
    assert result is not None  # a counter exists: checked above
    return result
