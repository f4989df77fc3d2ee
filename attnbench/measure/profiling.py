"""Which kernels a step actually ran, from one profiled call (``torch.profiler``), not from a re-query."""

from __future__ import annotations

import os
from collections.abc import Callable

__all__ = ["sdpa_kernels"]


def sdpa_kernels(step: Callable[[], object]) -> str:
    """The SDPA kernel(s) that actually ran in one profiled call of ``step`` (any mechanism that calls SDPA), e.g.
    ``flash`` for ``aten::_scaled_dot_product_flash_attention_for_cpu``; ``none`` when no SDPA op ran."""
    from torch.profiler import ProfilerActivity, profile

    saved = os.dup(2)  # the profiler back-end logs start/stop lines on the C stderr; keep the console clean
    try:
        with open(os.devnull, "w") as null:
            os.dup2(null.fileno(), 2)
            with profile(activities=[ProfilerActivity.CPU]) as prof:
                step()
    finally:
        os.dup2(saved, 2)
        os.close(saved)
    found = set()
    for event in prof.events():
        name = event.name
        if name.startswith("xformers") or "memory_efficient_attention" in name:
            found.add("xformers")
        elif name.startswith("aten::_scaled_dot_product_") or name.startswith("aten::_flash_attention"):
            for kernel, marker in (("flash", "flash"), ("efficient", "efficient"), ("cudnn", "cudnn"),
                                   ("math", "math"), ("fused", "fused")):
                if marker in name:
                    found.add(kernel)
                    break
    return ",".join(sorted(found)) or "none"
