"""PVT v2 spatial-reduction attention (Wang et al. 2022), wrapping timm's ``pvt_v2.Attention``."""

from __future__ import annotations

from typing import Any

import torch
from timm.models.pvt_v2 import Attention as PvtAttention

from attnbench.attention.base import GridAttention, check_dropout, check_heads, check_int
from attnbench.registry import register_attention, register_config

# timm's linear_attn variant pools the keys to a fixed 7 × 7 grid (``nn.AdaptiveAvgPool2d(7)``)
_POOLED_SIDE = 7


@register_attention("pvt_v2")
class SpatialReductionAttention(GridAttention):
    """Spatial-reduction attention of PVT v2, "PVT v2: Improved Baselines with Pyramid Vision Transformer" (Wang et
    al., CVMJ 2022), via timm 1.x (``timm.models.pvt_v2.Attention``, called as ``forward(x, feat_size)``).

    Shapes: ``x [B, H, W, C] → [B, H, W, C]``; all ``N = H·W`` tokens are queries, the keys and values come from a
    reduced grid.

    Algorithm (timm's)::

        q = Linear(x)                                         # [N, C]
        r = LayerNorm(Conv2d(x, kernel=stride=sr_ratio))      # [N / sr², C]: the reduced grid
        k, v = Linear(r)                                      # [N / sr², C] each
        y = Linear(softmax(q kᵀ / √d) v)                      # per head, SDPA or timm's manual path

    With ``linear_attn=True`` (PVT v2-Li) the reduction is ``GELU(LayerNorm(Conv1×1(AdaptiveAvgPool(7)(x))))``:
    49 keys at every resolution, and ``sr_ratio`` is not used (as in timm).

    Every query attends to every reduced key, and the reduced keys cover the whole grid, so one layer is global.

    Grids: with the convolution reduction H and W must be multiples of ``sr_ratio``; otherwise the strided
    convolution would drop the last rows/columns from the keys (no padding in timm), so those tokens could never be
    attended to. :meth:`not_supported_reasons` says so instead. Resolution-agnostic otherwise: the convolution runs
    at any multiple of its ratio.

    Complexity: time O(N · N/sr² · C + N C²), memory O(N C) with SDPA (O(N · N/sr²) on the manual path);
    ``linear_attn``: O(49 N C + N C²).

    Args:
        dim: channels C. heads: heads (must divide ``dim``; timm fixes the head width at ``dim // heads``).
        sr_ratio: reduction ratio (PVT v2's stages use 8, 4, 2, 1; 1 is full attention).
        linear_attn: the PVT v2-Li pooling reduction.
        qkv_bias: bias in the q and kv projections. dropout: attention and output dropout.
        fused: SDPA (timm's default for PVT v2) or timm's manual softmax path.
    """

    family = "reduction"
    benchmark = "pvt_v2_sr4"
    complexity = "time O(N^2 C / sr^2 + N C^2), memory O(N C) fused"
    constraints = "H, W multiples of sr_ratio (linear_attn: none)"
    reference = "Wang et al. 2022 (PVT v2); timm pvt_v2.Attention"

    def __init__(
        self,
        dim: int,
        heads: int,
        sr_ratio: int = 4,
        linear_attn: bool = False,
        qkv_bias: bool = True,
        dropout: float = 0.0,
        fused: bool = True,
    ) -> None:
        super().__init__()
        check_heads(self, dim, heads)
        self.sr_ratio = check_int(self, "sr_ratio", sr_ratio, 1)
        self.linear_attn = bool(linear_attn)
        p = check_dropout(self, "dropout", dropout)
        self.attn = PvtAttention(dim, num_heads=heads, sr_ratio=sr_ratio, linear_attn=self.linear_attn,
                                 qkv_bias=qkv_bias, attn_drop=p, proj_drop=p)
        # timm reads TIMM_FUSED_ATTN at construction; pin the path (timm marks the flag Final for TorchScript only)
        self.attn.fused_attn = bool(fused)  # type: ignore[misc]

    def not_supported_reasons(self, height, width, device="cpu", dtype=torch.float32, backward=False) -> list[str]:
        reasons = super().not_supported_reasons(height, width, device, dtype, backward)
        if not self.linear_attn and (height % self.sr_ratio or width % self.sr_ratio):
            reasons.append(f"grid {height}x{width} is not a multiple of sr_ratio {self.sr_ratio} (the reduction "
                           f"conv would drop the remainder from the keys)")
        return reasons

    def _keys(self, height: int, width: int) -> int:
        """Number of key tokens at a grid."""
        if self.linear_attn:
            return _POOLED_SIDE**2
        return (height // self.sr_ratio) * (width // self.sr_ratio)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        B, H, W, C = self._check_input(x)
        if not self.linear_attn and (H % self.sr_ratio or W % self.sr_ratio):
            raise ValueError(f"pvt_v2: grid {H}x{W} is not a multiple of sr_ratio {self.sr_ratio}")
        out = self.attn(x.reshape(B, H * W, C), [H, W])  # B, N, C
        return out.reshape(B, H, W, C)

    def flop_parts(self, batch: int, height: int, width: int) -> dict[str, int]:
        """q and output projections over the N queries (2·B·N·C² each); the reduction conv (2·B·N·C² for
        kernel = stride = sr, or 2·B·49·C² for the 1×1 conv after pooling; none for sr 1); the kv projection over
        the ``Nk`` keys (4·B·Nk·C²); q kᵀ and p v, 4·B·N·Nk·C (``sdpa`` when fused, plain matmuls otherwise).
        Pooling, LayerNorm and GELU are not counted."""
        n, C = batch * height * width, self.attn.dim
        keys = batch * self._keys(height, width)
        if self.linear_attn:
            reduce = 2 * keys * C * C
        else:
            reduce = 2 * keys * C * C * self.sr_ratio**2 if self.sr_ratio > 1 else 0
        attention = 4 * n * self._keys(height, width) * C
        matmul = 2 * n * C * C + reduce + 2 * keys * C * 2 * C + 2 * n * C * C
        if self.attn.fused_attn:
            return {"matmul": matmul, "sdpa": attention}
        return {"matmul": matmul + attention}

    def extra_info(self) -> dict[str, Any]:
        return {"attention_path": "sdpa" if self.attn.fused_attn else "manual softmax",
                "reduction": "pool 7x7 + conv 1x1" if self.linear_attn else f"conv stride {self.sr_ratio}"}


# The benchmark setting: sr_ratio 4 (PVT v2's second stage); the pooling variant PVT v2-Li.
register_config("pvt_v2_sr4", "pvt_v2", sr_ratio=4)
register_config("pvt_v2_linear", "pvt_v2", linear_attn=True)
