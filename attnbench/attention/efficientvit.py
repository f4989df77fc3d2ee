"""EfficientViT's lightweight multi-scale ReLU linear attention (Cai et al. 2023), wrapping timm's ``LiteMLA``."""

from __future__ import annotations

from typing import Any

import torch
from timm.models.efficientvit_mit import LiteMLA
from torch import nn

from attnbench.attention.base import GridAttention, check_dropout, check_heads
from attnbench.registry import register_attention


def _check_scales(scales: Any) -> tuple[int, ...]:
    """``scales`` as a tuple of odd kernel sizes >= 1 (LiteMLA pads each aggregation conv by ``k // 2``)."""
    if not isinstance(scales, (tuple, list)) or not all(
        isinstance(s, int) and not isinstance(s, bool) and s >= 1 and s % 2 for s in scales
    ):
        raise ValueError(f"efficientvit: scales={scales!r} is invalid; expected a list of odd integers >= 1, e.g. [5]")
    return tuple(scales)


@register_attention("efficientvit")
class EfficientViTAttention(GridAttention):
    """Lightweight multi-scale linear attention, "EfficientViT: Multi-Scale Linear Attention for High-Resolution
    Dense Prediction" (Cai et al., ICCV 2023), through timm's ``LiteMLA`` (``timm.models.efficientvit_mit``).

    Shapes: ``x [B, H, W, C] → [B, H, W, C]``; timm's module works channels-first, so ``x`` is permuted to
    ``[B, C, H, W]`` and back.

    What timm's ``LiteMLA`` computes:

    1. ``qkv``: a 1×1 convolution ``C → 3·heads·d``;
    2. multi-scale aggregation: for each kernel size ``k`` in ``scales``, a depthwise ``k×k`` convolution followed by
       a grouped 1×1 convolution (one group per q/k/v of each head) of the qkv map; the aggregated maps are
       concatenated with the original one as extra heads, so attention runs on ``heads · (1 + len(scales))``
       heads (EfficientViT uses ``scales = (5,)``, timm's default and this one's);
    3. ReLU linear attention per head, in float32: ``out_i = Σ_j relu(q_i)·relu(k_j) v_j / (Σ_j relu(q_i)·relu(k_j)
       + eps)``, computed right-to-left (``relu(K)ᵀ [V, 1]`` first, the column of ones giving the normaliser);
    4. ``proj``: a 1×1 convolution ``heads·d·(1 + len(scales)) → C``.

    timm builds ``proj`` with a BatchNorm2d and no bias (EfficientViT's block). A BatchNorm couples the samples of a
    batch in training mode, which no other mechanism does, so here ``norm=False`` (default) builds ``proj`` with a
    bias and no norm; ``norm=True`` is timm's layer exactly.

    Complexity: time O(N C (d + k²)) for aggregation kernel k, memory O(N C); O(N) in the tokens.

    Args:
        dim: channels C. heads: heads before the multi-scale concatenation. dim_head: per-head width d (default
            ``dim // heads``; EfficientViT uses 16 or 32).
        scales: kernel sizes of the multi-scale aggregation (odd); ``[]`` gives plain ReLU linear attention.
        qkv_bias: bias in the qkv and aggregation convolutions (EfficientViT: none).
        norm: timm's BatchNorm2d after the output projection (see above).
        dropout: dropout on the output.
        eps: added to the normaliser (timm's default).
    """

    family = "linear"
    complexity = "time O(N C (d + k^2)), memory O(N C)"
    constraints = "none"
    reference = "Cai et al. 2023 (EfficientViT, ReLU linear attention); timm LiteMLA"

    def __init__(
        self,
        dim: int,
        heads: int,
        dim_head: int | None = None,
        scales: tuple[int, ...] | list[int] = (5,),
        qkv_bias: bool = False,
        norm: bool = False,
        dropout: float = 0.0,
        eps: float = 1e-5,
    ) -> None:
        super().__init__()
        self.dim_head = check_heads(self, dim, heads, dim_head)
        self.dim, self.heads = dim, heads
        self.scales = _check_scales(scales)
        self.norm = bool(norm)
        p = check_dropout(self, "dropout", dropout)
        if isinstance(eps, bool) or not isinstance(eps, (int, float)) or eps <= 0:
            raise ValueError(f"efficientvit: eps={eps!r} is invalid; expected a float > 0")
        self.attn = LiteMLA(
            dim,
            dim,
            heads=heads,
            dim=self.dim_head,
            use_bias=(bool(qkv_bias), not self.norm),
            norm_layer=(None, nn.BatchNorm2d if self.norm else None),
            act_layer=(None, None),
            kernel_func=nn.ReLU,
            scales=self.scales,
            eps=float(eps),
        )
        self.drop = nn.Dropout(p)

    def flop_parts(self, batch: int, height: int, width: int) -> dict[str, int]:
        """Convolutions and matmuls, counted as ``FlopCounterMode`` does (2 per multiply-add, biases and the norm
        not counted), with ``t = heads·d`` and ``S = len(scales)``: qkv 2·B·N·C·3t; per scale k, the depthwise conv
        2·B·N·3t·k² and the grouped 1×1 conv 2·B·N·3t·d; attention on ``heads·(1+S)`` heads, ``relu(K)ᵀ[V, 1]`` and
        ``relu(Q)(KV)`` 2·B·h'·N·d·(d+1) each; proj 2·B·N·t(1+S)·C."""
        n, d, c = batch * height * width, self.dim_head, self.dim
        t, s = self.heads * d, len(self.scales)
        convs = 2 * n * c * 3 * t + sum(2 * n * 3 * t * (k * k + d) for k in self.scales) + 2 * n * t * (1 + s) * c
        attention = 2 * 2 * n * self.heads * (1 + s) * d * (d + 1)
        return {"matmul": convs + attention}

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        self._check_input(x)
        out = self.attn(x.permute(0, 3, 1, 2))  # B, C, H, W
        return self.drop(out.permute(0, 2, 3, 1))  # B, H, W, C

    def extra_info(self) -> dict[str, Any]:
        return {"scales": list(self.scales), "attention_heads": self.heads * (1 + len(self.scales)), "norm": self.norm}
