"""Axial attention: full softmax attention along each row, then along each column (Ho et al. 2019, Wang et al. 2020)."""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

from attnbench.attention.base import GridAttention, check_dropout, check_heads
from attnbench.registry import register_attention


@register_attention("axial")
class AxialAttention(GridAttention):
    """Row attention followed by column attention, each a multi-head softmax attention over one axis.

    Shapes: ``x [B, H, W, C] → [B, H, W, C]``.

    One layer is the axial-attention block of Axial-DeepLab (Wang et al., ECCV 2020; Ho et al. 2019 stack the same
    two axial layers): ``qkv_rows`` projects x; every token attends to the ``W`` tokens of its row; ``qkv_cols``
    projects that result; every token attends to the ``H`` tokens of its column; ``proj`` maps back to C. The two
    sub-layers are sequential, so one layer reaches the whole grid (token (i, j) reads column j, whose tokens
    have each read their row). No residual inside the layer; a model adds its own around it.

    Equivalent dense form (what ``tests/attention/test_window_mechanisms.py`` checks in float64)::

        y = softmax(q₁ k₁ᵀ/√d + M_row) v₁   with q₁, k₁, v₁ = qkv_rows(x), M_row = 0 if same row else -inf
        z = softmax(q₂ k₂ᵀ/√d + M_col) v₂   with q₂, k₂, v₂ = qkv_cols(y), M_col = 0 if same column else -inf
        out = proj(z)

    Each axis runs through ``scaled_dot_product_attention`` on ``[B·H, heads, W, d]`` (rows) and
    ``[B·W, heads, H, d]`` (columns). Resolution-agnostic: any ``H × W`` grid, no parameters tied to the grid.

    Complexity: time O(N (H + W) d) (O(N^1.5 d) on a square grid); memory O(N d) with a fused SDPA kernel,
    O(N (H + W)) with the math kernel.

    Args:
        dim, heads, dim_head, qkv_bias, dropout: as for ``full`` (dropout on both attentions and the output).
    """

    family = "window"
    complexity = "time O(N (H+W) d), memory O(N d) fused / O(N (H+W)) math"
    constraints = "none"
    reference = "Ho et al. 2019 (Axial Transformer); Wang et al. 2020 (Axial-DeepLab)"

    def __init__(
        self,
        dim: int,
        heads: int,
        dim_head: int | None = None,
        qkv_bias: bool = True,
        dropout: float = 0.0,
    ) -> None:
        super().__init__()
        self.dim_head = check_heads(self, dim, heads, dim_head)
        self.dim, self.heads = dim, heads
        self.dropout = check_dropout(self, "dropout", dropout)
        inner = heads * self.dim_head
        self.qkv_rows = nn.Linear(dim, 3 * inner, bias=bool(qkv_bias))
        self.qkv_cols = nn.Linear(inner, 3 * inner, bias=bool(qkv_bias))
        self.proj = nn.Linear(inner, dim)
        self.proj_drop = nn.Dropout(self.dropout)

    def _attend_rows(self, qkv: torch.Tensor) -> torch.Tensor:
        """``qkv [B, R, L, 3·inner] → [B, R, L, inner]``: softmax attention among the L tokens of each of the R rows."""
        B, R, L, _ = qkv.shape
        qkv = qkv.reshape(B * R, L, 3, self.heads, self.dim_head).permute(2, 0, 3, 1, 4)  # 3, B*R, heads, L, d
        q, k, v = qkv.unbind(0)
        out = F.scaled_dot_product_attention(q, k, v, dropout_p=self.dropout if self.training else 0.0)
        return out.transpose(1, 2).reshape(B, R, L, self.heads * self.dim_head)  # B, R, L, inner

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        B, H, W, C = self._check_input(x)
        y = self._attend_rows(self.qkv_rows(x))  # B, H, W, inner: each row attended
        # Columns are the rows of the transposed grid; the projection is token-wise, so it commutes with the transpose.
        z = self._attend_rows(self.qkv_cols(y.transpose(1, 2))).transpose(1, 2)  # B, H, W, inner
        return self.proj_drop(self.proj(z))

    def flop_parts(self, batch: int, height: int, width: int) -> dict[str, int]:
        """The three projections over all N tokens (C→3·inner, inner→3·inner, inner→C), and q kᵀ and p v in every
        row (W keys) and every column (H keys): 4·B·N·(H + W)·inner."""
        n, inner = batch * height * width, self.heads * self.dim_head
        return {"matmul": 2 * n * self.dim * 3 * inner + 2 * n * inner * 3 * inner + 2 * n * inner * self.dim,
                "sdpa": 4 * n * (height + width) * inner}
