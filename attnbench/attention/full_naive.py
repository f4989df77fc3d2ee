"""Global softmax attention with the N×N score matrix materialised: the O(N²)-memory reference."""

from __future__ import annotations

from typing import Any

import torch

from attnbench.attention.base import QKVAttention
from attnbench.registry import register_attention


@register_attention("full_naive")
class NaiveFullAttention(QKVAttention):
    """Global multi-head softmax attention written out: ``softmax(q kᵀ / √d) v``.

    Shapes: ``x [B, H, W, C] → [B, H, W, C]``; the scores are ``[B, heads, N, N]`` with ``N = H·W``.

    This is what "ViT memory" claims refer to: the score matrix and its softmax are stored (twice, for
    backward), so memory is ``2·heads·N²`` elements per sample. Same parameters as ``full``, so weights can be
    copied between them (tests check they agree to 1e-5 in float32).

    Complexity: time O(N² d), memory O(N²).
    """

    family = "global"
    complexity = "time O(N^2 d), memory O(N^2)"
    constraints = "memory 2*heads*N^2 elements per sample"
    reference = "Vaswani et al. 2017 (explicit scores)"

    def attend(self, q: torch.Tensor, k: torch.Tensor, v: torch.Tensor) -> torch.Tensor:
        scores = (q * self.dim_head**-0.5) @ k.transpose(-2, -1)  # B, heads, N, N
        attn = scores.softmax(dim=-1)
        if self.training and self.dropout:
            attn = torch.nn.functional.dropout(attn, self.dropout)
        return attn @ v

    def attend_flops(self, batch: int, tokens: int) -> dict[str, int]:
        """q kᵀ and p v as plain matmuls (their backward does not recompute): 4·B·h·N²·d."""
        return {"matmul": 4 * batch * self.heads * tokens**2 * self.dim_head}

    def extra_info(self) -> dict[str, Any]:
        return {"scores": "explicit N x N"}
