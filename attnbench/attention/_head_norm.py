"""Per-head layer normalisation, as the Galerkin Transformer normalises its keys, values or queries."""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

__all__ = ["HeadLayerNorm"]


class HeadLayerNorm(nn.Module):
    """A LayerNorm over the head width with its own affine parameters for every head.

    Shapes: ``x [B, heads, N, d] → [B, heads, N, d]``.

    The same as the reference code's ``nn.ModuleList([nn.LayerNorm(d_k) for _ in range(n_head)])`` applied head by
    head (scaomath/galerkin-transformer, ``SimpleAttention``), as one call: normalise every token's ``d`` values to
    zero mean and unit (biased) variance, then scale and shift with the head's ``weight[h], bias[h]``.
    """

    def __init__(self, heads: int, dim_head: int, eps: float = 1e-5) -> None:
        super().__init__()
        self.eps = eps
        self.weight = nn.Parameter(torch.ones(heads, 1, dim_head))  # heads, 1, d: broadcasts over B and N
        self.bias = nn.Parameter(torch.zeros(heads, 1, dim_head))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        d = x.shape[-1]
        return F.layer_norm(x, (d,), eps=self.eps) * self.weight.to(x.dtype) + self.bias.to(x.dtype)
