"""All levels of a multilevel windowed attention in one pass: the ``packed`` path of :mod:`attnbench.attention.mano`.

The levels' tokens are concatenated (finest first) into one ``[B, T, ·]`` tensor; a precomputed index lists the
tokens of every ``k × k`` window (stride ``s``) of every level, so one gather builds all windows, one SDPA attends
inside them, and one scatter-add followed by a division by each token's window count averages the overlapping
outputs. A dozen operators for a whole V-cycle instead of about a hundred per level — the win where operator
launches, not arithmetic, set the time; each token is copied into its ``k²/s²`` windows, so only for small calls.

Work: the same ``4·B·heads·P·k⁴·d`` attention FLOPs as one SDPA per window (``P`` windows in all), counted as SDPA.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
import torch.nn.functional as F

__all__ = ["PACKED_MAX_TOKENS", "LevelPlan", "level_plan", "packed_window_attention"]

# Most tokens in a call (B·H·W) the packed formulation runs by default ("auto"). Below it a level's work is smaller
# than the ~100 operator launches per level the shifted path spends, and one gather, one SDPA and one scatter-add for
# all levels win; above it the copies into k²/s² windows and SDPA over millions of 4-token sequences cost more than
# the shared shifted products. A first look on the 2-core VM (one process, timed while other work ran, so rough):
# B = 1 at 16² packed 6.2 / 19 ms (fwd / fwd_bwd) against shifted 8.4 / 35; B = 16 at 8² level (22 / 73 vs 24 / 73);
# B = 1 at 32² packed loses (27 / 73 vs 16 / 53).
PACKED_MAX_TOKENS = 512


@dataclass(frozen=True)
class LevelPlan:
    """Everything about a grid's levels that does not depend on the input's values, built once per grid.

    ``shapes``: the levels' ``(h, w)``, finest first; ``sizes``: their token counts; ``index [P, k²]``: the
    tokens of every window of every level, as indices into the levels' tokens concatenated finest first (``P``
    windows in all); ``count [T, 1]``: how many windows cover each of the ``T`` tokens."""

    shapes: tuple[tuple[int, int], ...]
    sizes: tuple[int, ...]
    index: torch.Tensor
    count: torch.Tensor


def level_plan(shapes: list[tuple[int, int]], window: int, stride: int, device: torch.device,
               dtype: torch.dtype) -> LevelPlan:
    """The :class:`LevelPlan` of levels ``shapes`` (finest first) for ``window × window`` windows at ``stride``."""
    k, s = window, stride
    sizes = tuple(h * w for h, w in shapes)
    offsets = [sum(sizes[:i]) for i in range(len(sizes))]
    side = torch.arange(k)
    windows = []
    for (h, w), offset in zip(shapes, offsets):
        rows = torch.arange(0, h - k + 1, s)[:, None, None, None] + side[None, None, :, None]  # Ph, 1, k, 1
        cols = torch.arange(0, w - k + 1, s)[None, :, None, None] + side[None, None, None, :]  # 1, Pw, 1, k
        windows.append((offset + rows * w + cols).reshape(-1, k * k))  # Ph·Pw, k²
    index = torch.cat(windows).to(device)
    count = torch.bincount(index.flatten(), minlength=sum(sizes)).to(dtype)[:, None]
    return LevelPlan(tuple(shapes), sizes, index, count)


def packed_window_attention(qkv: torch.Tensor, plan: LevelPlan, heads: int, dim_head: int,
                            dropout: float = 0.0) -> torch.Tensor:
    """``qkv [B, T, 3·heads·dim_head]`` (the levels' tokens, concatenated as ``plan`` says) → ``[B, T,
    heads·dim_head]``: softmax attention inside every window of every level, averaged over the windows covering
    each token."""
    B, T, _ = qkv.shape
    n_win, kk = plan.index.shape
    inner = heads * dim_head
    win = qkv[:, plan.index].view(B * n_win, kk, 3, heads, dim_head)  # B·P, k², 3, heads, d
    q, k, v = win.permute(2, 0, 3, 1, 4).unbind(0)  # each B·P, heads, k², d
    o = F.scaled_dot_product_attention(q, k, v, dropout_p=dropout)
    o = o.transpose(1, 2).reshape(B, n_win * kk, inner)  # every window's outputs, in index order
    return qkv.new_zeros(B, T, inner).index_add(1, plan.index.flatten(), o) / plan.count
