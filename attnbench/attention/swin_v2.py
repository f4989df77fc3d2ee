"""Swin V2 (shifted) window attention: scaled cosine attention and a log-spaced continuous position bias, via timm."""

from __future__ import annotations

from typing import Any, cast

import torch
from timm.models.swin_transformer_v2 import WindowAttention
from torch import nn

from attnbench.attention.base import GridAttention, check_dropout, check_heads, check_int
from attnbench.attention.swin import SwinAttention
from attnbench.registry import register_attention, register_config


class PairLinear(nn.Linear):
    """``nn.Linear`` with two input features, computed as two broadcast multiply-adds instead of a matmul.

    Shapes: ``x [..., 2] → [..., out_features]``; same parameters and outputs as ``nn.Linear(2, out_features)``.

    Why: the first layer of Swin V2's position-bias MLP reads a constant table that needs no gradient, so its
    backward computes only the weight gradient, and torch's FLOP counter would see a 1× backward for it where
    every other matmul has 2× (the 3×-forward rule of ``tests/attention/test_flops.py`` and of
    :attr:`GridAttention.BACKWARD_RATIO`). With fan-in 2 a matmul is pointless anyway: 2 multiply-adds per output,
    on a ``(2·window - 1)²``-entry table independent of N, elementwise work that is not counted.
    """

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        out = x[..., 0:1] * self.weight[:, 0] + x[..., 1:2] * self.weight[:, 1]  # ..., out_features
        return out if self.bias is None else out + self.bias


@register_attention("swin_v2")
class SwinV2Attention(SwinAttention):
    """Swin Transformer V2 window attention W-MSA / SW-MSA (Liu et al., CVPR 2022) via timm.

    Shapes: ``x [B, H, W, C] → [B, H, W, C]``; tokens attend inside non-overlapping ``window × window`` windows,
    cyclically shifted by ``-shift`` with the SW-MSA mask when ``shift > 0`` (exactly as :mod:`swin`, whose
    partition, shift and mask code this class inherits).

    What changes from V1, all inside timm 1.x's ``timm.models.swin_transformer_v2.WindowAttention`` (public class,
    wrapped unchanged except for the first position-bias layer, see :class:`PairLinear`):

    - scaled cosine attention: ``logits = cos(q, k) · exp(min(logit_scale, log 100))`` with a learnable per-head
      ``logit_scale`` (initialised to log 10) instead of ``q·k / √d``;
    - continuous position bias: a 2-layer MLP (2 → 512 → heads, ReLU) maps each log-spaced relative offset
      ``sign(Δ) · log2(1 + 8|Δ|/(window - 1)) / 3`` to a bias, squashed to ``16 · sigmoid``;
    - q and v biases, no k bias.

    timm's V2 module has no SDPA path: scores are explicit ``[B·nW, heads, w², w²]`` matmuls and a softmax.

    Grids: H and W must be multiples of ``window`` (see :mod:`swin`: no padding); a shift is dropped along a side no
    larger than the window. The position bias is a function of the offset, so one instance runs on every grid that
    is a multiple of its window. In a stack, :meth:`block_kwargs` alternates the shift 0, ``window // 2``.

    Complexity: time O(N · window² · d), memory O(N · window²).

    Args:
        dim, heads, qkv_bias, dropout: as for ``full``. dim_head: must be ``dim // heads`` when given (timm's V2
            module has no separate head width). window: window side (>= 1). shift: cyclic shift in tokens,
            0 <= shift < window (Swin uses window // 2).
    """

    family = "window"
    benchmark = "swin_v2_w8"
    complexity = "time O(N w^2 d), memory O(N w^2)"
    constraints = "H, W multiples of window"
    reference = "Liu et al. 2022 (Swin V2); timm swin_transformer_v2.WindowAttention"

    def __init__(
        self,
        dim: int,
        heads: int,
        window: int = 8,
        shift: int = 0,
        dim_head: int | None = None,
        qkv_bias: bool = True,
        dropout: float = 0.0,
    ) -> None:
        # Skip SwinAttention.__init__ (it builds timm's V1 module); reuse its partition, shift, mask and forward.
        GridAttention.__init__(self)
        d = check_heads(self, dim, heads)
        if dim_head is not None and dim_head != d:
            raise ValueError(f"swin_v2: dim_head={dim_head!r} is invalid; timm's Swin V2 WindowAttention uses "
                             f"dim // heads = {d}")
        self.window = check_int(self, "window", window, 1)
        self.shift = check_int(self, "shift", shift, 0)
        if self.shift >= self.window:
            raise ValueError(f"swin_v2: shift={shift} is invalid; expected 0 <= shift < window={window}")
        p = check_dropout(self, "dropout", dropout)
        self.dim, self.heads = dim, heads
        attn = WindowAttention(dim, window_size=(window, window), num_heads=heads, qkv_bias=bool(qkv_bias),
                               attn_drop=p, proj_drop=p)
        cpb_mlp = attn.cpb_mlp
        first = cast(nn.Linear, cpb_mlp[0])
        pair = PairLinear(first.in_features, first.out_features, bias=first.bias is not None)
        pair.load_state_dict(first.state_dict())  # the same (already initialised) weights, the same outputs
        cpb_mlp[0] = pair
        self.cpb_hidden = pair.out_features
        # The attribute swin's forward calls; SwinAttention declares it as timm's V1 module.
        self.attn = attn  # type: ignore[assignment]
        self._masks: dict[tuple[Any, ...], torch.Tensor | None] = {}

    def flop_parts(self, batch: int, height: int, width: int) -> dict[str, int]:
        """qkv and output projections over all N tokens; inside each window, the cosine scores and p v as plain
        matmuls, 4·N·w²·C; the second position-bias layer once per call, 2·(2w-1)²·512·heads (the first is
        elementwise, :class:`PairLinear`; normalisation, scaling, bias and mask are not counted)."""
        n, dim = batch * height * width, self.dim
        table = (2 * self.window - 1) ** 2
        return {"matmul": 2 * n * dim * 3 * dim + 2 * n * dim * dim + 4 * n * self.window**2 * dim
                + 2 * table * self.cpb_hidden * self.heads}

    def extra_info(self) -> dict[str, Any]:
        return {"window_path": "manual softmax (timm's Swin V2 module has no SDPA path)", "padding": 0}


# Named configuration: the Swin V2 papers' window 8 (``swinv2_*_window8_256``).
register_config("swin_v2_w8", "swin_v2", window=8)
