"""MaxViT multi-axis attention: block (local window) attention, then grid (dilated, global) attention, via timm."""

from __future__ import annotations

from functools import partial
from typing import Any

import torch
from timm.layers import RelPosBias
from timm.models.maxxvit import AttentionCl, grid_partition, grid_reverse, window_partition, window_reverse

from attnbench.attention.base import GridAttention, check_dropout, check_heads, check_int
from attnbench.registry import register_attention, register_config


@register_attention("maxvit")
class MaxViTAttention(GridAttention):
    """Multi-axis attention of MaxViT (Tu et al., ECCV 2022): block attention, then grid attention, via timm.

    Shapes: ``x [B, H, W, C] → [B, H, W, C]``.

    - Block attention: the grid is cut into non-overlapping ``window × window`` blocks (timm's
      ``window_partition``); tokens attend inside their block.
    - Grid attention: the grid is cut into ``grid_size × grid_size`` groups of tokens spaced ``(H / grid_size,
      W / grid_size)`` apart (timm's ``grid_partition``); tokens attend inside their group, a sparse global mix.

    Each stage is timm 1.x's ``timm.models.maxxvit.AttentionCl`` (qkv, SDPA or manual softmax, output projection)
    with a learned relative position bias over the partition's own coordinates (``timm.layers.RelPosBias``, the
    Swin-style table of timm's ``maxvit_rw_*`` models), so the layer holds two sets of projections. One layer is
    ``grid_attn(block_attn(x))``: the two stages run back to back without the norms, residuals and MLP that sit
    between them in a MaxViT block (a model adds its own around the layer).

    Reach (:meth:`receptive_field`): an output token reads its grid group (``grid_size`` rows spaced ``H /
    grid_size`` apart), each of which read its block of ``window`` rows, so one layer reaches ``min(H, grid_size ·
    window)`` rows (likewise columns): global when ``H, W <= grid_size · window`` (64 at the benchmark's 8 and 8),
    not beyond, where the blocks of the group's rows no longer cover the grid.

    Grids: H and W must be multiples of ``window`` and of ``grid_size`` (timm's partitions do not pad; MaxViT
    chooses the input size so that they divide). The biases depend on in-partition offsets only, so one instance
    runs on every such grid.

    Complexity: time O(N (window² + grid_size²) d), memory O(N (window² + grid_size²)) (math) / O(N d) (fused).

    Args:
        dim, heads, qkv_bias, dropout: as for ``full`` (``qkv_bias`` is timm's ``attn_bias``: the qkv and the output
            projection biases). dim_head: must be ``dim // heads`` when given (``AttentionCl`` derives the heads
            from it). window: block side (>= 1). grid_size: side of the grid partition (>= 1; default ``window``, as
            timm's ``MaxxVitTransformerCfg``). fused: SDPA inside each partition (timm's default) or the manual
            softmax path.
    """

    family = "window"
    benchmark = "maxvit_w8"
    complexity = "time O(N (w^2 + g^2) d), memory O(N (w^2 + g^2)) math / O(N d) fused"
    constraints = "H, W multiples of window and grid_size"
    reference = "Tu et al. 2022 (MaxViT); timm maxxvit.AttentionCl, window/grid_partition, RelPosBias"

    def __init__(
        self,
        dim: int,
        heads: int,
        window: int = 8,
        grid_size: int | None = None,
        dim_head: int | None = None,
        qkv_bias: bool = True,
        dropout: float = 0.0,
        fused: bool = True,
    ) -> None:
        super().__init__()
        d = check_heads(self, dim, heads)
        if dim_head is not None and dim_head != d:
            raise ValueError(f"maxvit: dim_head={dim_head!r} is invalid; timm's AttentionCl uses dim // heads = {d}")
        self.window = check_int(self, "window", window, 1)
        self.grid_size = self.window if grid_size is None else check_int(self, "grid_size", grid_size, 1)
        p = check_dropout(self, "dropout", dropout)

        def stage(side: int) -> AttentionCl:
            rel_pos = partial(RelPosBias, window_size=(side, side))  # a bias table over in-partition offsets
            attn = AttentionCl(dim, dim, dim_head=d, bias=bool(qkv_bias), rel_pos_cls=rel_pos, attn_drop=p,
                               proj_drop=p)
            # timm reads TIMM_FUSED_ATTN at construction (and marks the flag Final for TorchScript); pin it, record it
            attn.fused_attn = bool(fused)  # type: ignore[misc]
            return attn

        self.block_attn = stage(self.window)
        self.grid_attn = stage(self.grid_size)

    def not_supported_reasons(self, height, width, device="cpu", dtype=torch.float32, backward=False) -> list[str]:
        reasons = super().not_supported_reasons(height, width, device, dtype, backward)
        for name, side in (("window", self.window), ("grid_size", self.grid_size)):
            if height % side or width % side:
                reasons.append(f"grid {height}x{width} is not a multiple of {name} {side} (maxvit does not pad)")
        return reasons

    def receptive_field(self, height: int, width: int) -> tuple[int, int]:
        reach = self.grid_size * self.window
        return min(reach, height), min(reach, width)

    def flop_parts(self, batch: int, height: int, width: int) -> dict[str, int]:
        """Per stage, qkv and output projections over all N tokens (8·N·C²) and q kᵀ, p v inside every partition
        (4·N·side²·C); SDPA on the fused path, plain matmuls on the manual one (the bias is an addition)."""
        n, dim = batch * height * width, self.block_attn.qkv.in_features
        attention = 4 * n * (self.window**2 + self.grid_size**2) * dim
        kind = "sdpa" if self.block_attn.fused_attn else "matmul"
        parts = {"matmul": 2 * (2 * n * dim * 3 * dim + 2 * n * dim * dim)}
        parts[kind] = parts.get(kind, 0) + attention
        return parts

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        B, H, W, C = self._check_input(x)
        for name, side in (("window", self.window), ("grid_size", self.grid_size)):
            if H % side or W % side:  # timm's partitions would fail with a bare assertion
                raise ValueError(f"maxvit: grid {H}x{W} is not a multiple of {name} {side}")
        block, grid = [self.window, self.window], [self.grid_size, self.grid_size]
        y = window_partition(x, block)  # B*nBlocks, window, window, C
        y = window_reverse(self.block_attn(y), block, (H, W))  # B, H, W, C
        y = grid_partition(y, grid)  # B*(H/g)*(W/g), grid_size, grid_size, C: tokens H/g, W/g apart
        return grid_reverse(self.grid_attn(y), grid, (H, W))  # B, H, W, C

    def extra_info(self) -> dict[str, Any]:
        return {"window_path": "sdpa" if self.block_attn.fused_attn else "manual softmax", "padding": 0}


# Named configuration: window = grid size = 8, MaxViT's partition at 256² input (timm's ``maxvit_*_256`` models; at
# 224² the paper's P = G = 7: the input side / 32).
register_config("maxvit_w8", "maxvit", window=8, grid_size=8)
