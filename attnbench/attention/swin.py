"""Swin (shifted) window attention with relative position bias, built on timm's own modules."""

from __future__ import annotations

from types import SimpleNamespace
from typing import Any

import torch
from timm.models.swin_transformer import SwinTransformerBlock, WindowAttention, window_partition, window_reverse

from attnbench.attention.base import GridAttention, check_dropout, check_heads, check_int
from attnbench.registry import register_attention


@register_attention("swin")
class SwinAttention(GridAttention):
    """Window multi-head self-attention W-MSA / SW-MSA (Liu et al., ICCV 2021) via timm.

    Shapes: ``x [B, H, W, C] → [B, H, W, C]``; tokens attend inside non-overlapping ``window × window`` windows,
    with a learned relative position bias. With ``shift > 0`` the grid is rolled by ``-shift`` first and a mask
    keeps wrapped-around regions apart (SW-MSA).

    What comes from timm (``timm.models.swin_transformer``): ``WindowAttention`` (qkv, relative position bias
    table and index, softmax or SDPA, output projection), ``window_partition`` / ``window_reverse``, and the
    shifted-window mask of ``SwinTransformerBlock.get_attn_mask``. Like timm's block, a shift is dropped along
    a side no larger than the window (one window holds the whole side).

    Grids: H and W must be multiples of ``window``; other grids are reported by :meth:`not_supported_reasons`
    rather than padded, because zero padding would add key tokens that change the result (timm pads without
    masking them).

    Complexity: time O(N · window² · d), memory O(N · window²).

    Args:
        dim, heads, dim_head, qkv_bias, dropout: as for ``full``.
        window: window side (>= 1). shift: cyclic shift in tokens, 0 <= shift < window (Swin uses window // 2).
        fused: use SDPA inside windows (timm's ``fused_attn``); timm defaults to the manual softmax path for
            Swin, which is slower, so attnbench defaults to SDPA and records the path.
    """

    complexity = "time O(N w^2 d), memory O(N w^2)"
    constraints = "H, W multiples of window"
    reference = "Liu et al. 2021 (Swin); timm WindowAttention"

    def __init__(
        self,
        dim: int,
        heads: int,
        window: int = 8,
        shift: int = 0,
        dim_head: int | None = None,
        qkv_bias: bool = True,
        dropout: float = 0.0,
        fused: bool = True,
    ) -> None:
        super().__init__()
        check_heads(self, dim, heads, dim_head)
        self.window = check_int(self, "window", window, 1)
        self.shift = check_int(self, "shift", shift, 0)
        if self.shift >= self.window:
            raise ValueError(f"swin: shift={shift} is invalid; expected 0 <= shift < window={window}")
        p = check_dropout(self, "dropout", dropout)
        self.attn = WindowAttention(
            dim, num_heads=heads, head_dim=dim_head, window_size=window, qkv_bias=qkv_bias, attn_drop=p, proj_drop=p
        )
        self.attn.fused_attn = bool(fused)
        self._masks: dict[tuple[Any, ...], torch.Tensor | None] = {}

    def not_supported_reasons(self, height, width, device="cpu", dtype=torch.float32, backward=False) -> list[str]:
        reasons = super().not_supported_reasons(height, width, device, dtype, backward)
        if height % self.window or width % self.window:
            reasons.append(f"grid {height}x{width} is not a multiple of window {self.window} (swin does not pad)")
        return reasons

    def _shifts(self, H: int, W: int) -> tuple[int, int]:
        return (0 if H <= self.window else self.shift, 0 if W <= self.window else self.shift)

    def _mask(self, H: int, W: int, x: torch.Tensor) -> torch.Tensor | None:
        shift = self._shifts(H, W)
        key = (H, W, shift, x.device, x.dtype)
        if key not in self._masks:
            # Reuse timm's mask construction; it reads only these three attributes and x's shape/device/dtype.
            spec = SimpleNamespace(window_size=(self.window,) * 2, shift_size=shift, window_area=self.window**2)
            with torch.inference_mode(False):  # a cache filled during inference must still serve training
                self._masks[key] = SwinTransformerBlock.get_attn_mask(
                    spec, torch.empty(1, H, W, 0, device=x.device, dtype=x.dtype))
        return self._masks[key]

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        B, H, W, C = self._check_input(x)
        if H % self.window or W % self.window:
            raise ValueError(f"swin: grid {H}x{W} is not a multiple of window {self.window}")
        sh, sw = self._shifts(H, W)
        if sh or sw:
            x = torch.roll(x, shifts=(-sh, -sw), dims=(1, 2))
        windows = window_partition(x, (self.window, self.window)).view(-1, self.window**2, C)  # B*nW, w*w, C
        out = self.attn(windows, mask=self._mask(H, W, x))  # B*nW, w*w, C
        out = window_reverse(out.view(-1, self.window, self.window, C), (self.window, self.window), H, W)  # B,H,W,C
        if sh or sw:
            out = torch.roll(out, shifts=(sh, sw), dims=(1, 2))
        return out

    def extra_info(self) -> dict[str, Any]:
        return {"window_path": "sdpa" if self.attn.fused_attn else "manual softmax", "padding": 0}
