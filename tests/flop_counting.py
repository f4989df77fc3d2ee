"""Counting a module's FLOPs with the package's mended counter (``attnbench.measure.flops``: SDPA as the math
kernel's matmuls, a grouped convolution's weight gradient divided by its groups) — shared by the registry-wide FLOP
test and the mechanism tests that check non-default options."""

from __future__ import annotations

import torch

from attnbench.measure.flops import count_flops

__all__ = ["counted_flops"]


def counted_flops(module: torch.nn.Module, x: torch.Tensor, backward: bool) -> int:
    """Total FLOPs the counter sees for one forward (and, with ``backward``, a backward of ``ones``)."""
    def step() -> None:
        y = module(x)
        if backward:
            y.backward(torch.ones_like(y))

    return count_flops(step)
