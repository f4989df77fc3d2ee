"""Swin (shifted) window attention with relative position bias, built on timm's own modules."""

from __future__ import annotations

import inspect
from typing import Any

import torch
from timm.models.swin_transformer import WindowAttention, window_partition, window_reverse

from attnbench.attention.base import GridAttention, check_dropout, check_heads, check_int
from attnbench.registry import register_attention, register_config


def shifted_window_mask(height: int, width: int, window: int, shift: tuple[int, int], device: Any = None,
                        dtype: Any = None) -> torch.Tensor | None:
    """Additive SW-MSA mask ``[nW, window², window²]`` (0 within a region, -100 across), ``None`` without shift.

    The same mask as timm's ``SwinTransformerBlock.get_attn_mask`` (finite -100, not -inf): after the cyclic roll
    by ``-shift`` the grid splits into up to 3 × 3 regions; tokens of different regions must not attend to each
    other. Built from timm's public ``window_partition``.
    """
    if not any(shift):
        return None

    def regions(size: int, s: int) -> torch.Tensor:  # region index of every position along one side
        index = torch.zeros(size, dtype=torch.long, device=device)
        if s:
            index[size - window:] = 1
            index[size - s:] = 2
        return index

    label = regions(height, shift[0])[:, None] * 3 + regions(width, shift[1])[None, :]  # H, W
    label = label.to(dtype or torch.float32)[None, :, :, None]  # 1, H, W, 1
    windows = window_partition(label, (window, window)).reshape(-1, window * window)  # nW, w*w
    diff = windows[:, None, :] - windows[:, :, None]  # nW, w*w, w*w
    return torch.zeros_like(diff).masked_fill(diff != 0, -100.0)


@register_attention("swin")
class SwinAttention(GridAttention):
    """Window multi-head self-attention W-MSA / SW-MSA (Liu et al., ICCV 2021) via timm.

    Shapes: ``x [B, H, W, C] → [B, H, W, C]``; tokens attend inside non-overlapping ``window × window`` windows,
    with a learned relative position bias. With ``shift > 0`` the grid is rolled by ``-shift`` first and a mask
    keeps wrapped-around regions apart (SW-MSA).

    What comes from timm 1.x (``timm.models.swin_transformer``, public names only): ``WindowAttention`` (qkv,
    relative position bias table and index, softmax or SDPA, output projection) and ``window_partition`` /
    ``window_reverse``; :func:`shifted_window_mask` rebuilds the mask of ``SwinTransformerBlock.get_attn_mask``.
    Like timm's block, a shift is dropped along a side no larger than the window (one window holds the whole side).
    In a stack, :meth:`block_kwargs` alternates the shift 0, ``window // 2`` (W-MSA / SW-MSA) unless it is given.

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

    family = "window"
    benchmark = "swin_w8"
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
        self.attn.fused_attn = bool(fused)  # type: ignore[misc]  # timm marks it Final; it is a per-instance switch
        self._masks: dict[tuple[Any, ...], torch.Tensor | None] = {}

    def not_supported_reasons(self, height, width, device="cpu", dtype=torch.float32, backward=False) -> list[str]:
        reasons = super().not_supported_reasons(height, width, device, dtype, backward)
        if height % self.window or width % self.window:
            reasons.append(f"grid {height}x{width} is not a multiple of window {self.window} "
                           f"({self.registry_name} does not pad)")
        return reasons

    @classmethod
    def block_kwargs(cls, index: int, kwargs: dict[str, Any]) -> dict[str, Any]:
        """Swin's W-MSA / SW-MSA pairs: unless ``shift`` is given, odd blocks shift by ``window // 2``."""
        kwargs = dict(kwargs)
        if "shift" not in kwargs:
            window = kwargs.get("window", inspect.signature(cls.__init__).parameters["window"].default)
            kwargs["shift"] = window // 2 if index % 2 else 0
        return kwargs

    def flop_parts(self, batch: int, height: int, width: int) -> dict[str, int]:
        """qkv and output projections over all N tokens; inside each of the N/w² windows, q kᵀ and p v over w²
        tokens: 4·B·h·N·w²·d (the relative-position bias and the shift mask are additions, not counted)."""
        n = batch * height * width
        heads, dim = self.attn.num_heads, self.attn.qkv.in_features
        inner = self.attn.qkv.out_features // 3
        d = inner // heads
        return {"matmul": 2 * n * dim * 3 * inner + 2 * n * inner * dim,
                "sdpa": 4 * n * heads * self.window**2 * d}

    def receptive_field(self, height: int, width: int) -> tuple[int, int]:
        return min(self.window, height), min(self.window, width)

    def _shifts(self, H: int, W: int) -> tuple[int, int]:
        return (0 if H <= self.window else self.shift, 0 if W <= self.window else self.shift)

    def _mask(self, H: int, W: int, x: torch.Tensor) -> torch.Tensor | None:
        shift = self._shifts(H, W)
        key = (H, W, shift, x.device, x.dtype)
        if key not in self._masks:
            with torch.inference_mode(False):  # a cache filled during inference must still serve training
                self._masks[key] = shifted_window_mask(H, W, self.window, shift, x.device, x.dtype)
        return self._masks[key]

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        B, H, W, C = self._check_input(x)
        if H % self.window or W % self.window:
            raise ValueError(f"{self.registry_name}: grid {H}x{W} is not a multiple of window {self.window}")
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


# Named configurations (timm-style names): ``create_attention("swin_w8", dim, heads)``.
register_config("swin_w8", "swin", window=8)
register_config("swin_w4", "swin", window=4)
register_config("swin_local_w2", "swin", window=2, shift=0)  # windows never exchange information: a local control
