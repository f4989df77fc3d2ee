"""XCiT cross-covariance attention (El-Nouby et al. 2021), wrapping timm's ``xcit.XCA``."""

from __future__ import annotations

from typing import Any

import torch
from timm.models.xcit import XCA

from attnbench.attention.base import GridAttention, check_dropout, check_heads
from attnbench.registry import register_attention


@register_attention("xcit")
class CrossCovarianceAttention(GridAttention):
    """Cross-covariance attention (XCA) of "XCiT: Cross-Covariance Image Transformers" (El-Nouby et al., NeurIPS
    2021), via timm 1.x (``timm.models.xcit.XCA``).

    Shapes: ``x [B, H, W, C] → [B, H, W, C]``.

    Attention runs over channels instead of tokens: per head, with ``q, k, v [d, N]`` from the qkv projection (a
    row per channel) and ``q̂, k̂`` L2-normalised over the N tokens, ``out = softmax(τ · q̂ k̂ᵀ) v`` (softmax over
    the rows of a d×d map), with a learned temperature τ per head. The map sums over all tokens, so one layer is
    global; nothing depends on the grid, so one instance runs at any resolution. XCiT's block also has a local patch
    interaction (LPI, depth-wise convolutions) and class attention; those are not part of this token mixer.

    Complexity: time O(N · C · d) (= O(N d²) per head), memory O(N C + heads · d²).

    Args:
        dim: channels C. heads: heads (must divide ``dim``; the head width is ``dim // heads``).
        qkv_bias: bias in the qkv projection (XCiT's models use one). dropout: attention and output dropout.
        fused: timm's SDPA path (the tokens play SDPA's head width) or its manual path; timm's default for XCA is
            the manual one, and with a d×d map there is nothing for fusion to save, so that is the default here.
    """

    family = "reduction"
    complexity = "time O(N C d), memory O(N C + heads d^2)"
    constraints = "none"
    reference = "El-Nouby et al. 2021 (XCiT); timm xcit.XCA"

    def __init__(
        self, dim: int, heads: int, qkv_bias: bool = True, dropout: float = 0.0, fused: bool = False
    ) -> None:
        super().__init__()
        self.dim_head = check_heads(self, dim, heads)
        self.dim, self.heads = dim, heads
        p = check_dropout(self, "dropout", dropout)
        self.attn = XCA(dim, num_heads=heads, qkv_bias=qkv_bias, attn_drop=p, proj_drop=p)
        # timm reads TIMM_FUSED_ATTN at construction; pin the path (timm marks the flag Final for TorchScript only)
        self.attn.fused_attn = bool(fused)  # type: ignore[misc]

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        B, H, W, C = self._check_input(x)
        return self.attn(x.reshape(B, H * W, C)).reshape(B, H, W, C)

    def flop_parts(self, batch: int, height: int, width: int) -> dict[str, int]:
        """qkv and output projections, 2·B·N·C·4C; per head q̂ k̂ᵀ (d×N by N×d) and the map times v, 2·B·N·d²
        each: 4·B·N·C·d (``sdpa`` on the fused path, plain matmuls otherwise). Normalisation is not counted."""
        n, C, d = batch * height * width, self.dim, self.dim_head
        projections = 2 * n * C * 3 * C + 2 * n * C * C
        attention = 4 * n * C * d
        if self.attn.fused_attn:
            return {"matmul": projections, "sdpa": attention}
        return {"matmul": projections + attention}

    def extra_info(self) -> dict[str, Any]:
        return {"attention_path": "sdpa" if self.attn.fused_attn else "manual softmax"}
