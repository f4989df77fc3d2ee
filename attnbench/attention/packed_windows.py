"""All levels of a multilevel windowed attention in one pass: the ``packed`` and ``canvas`` paths of
:mod:`attnbench.attention.mano`.

On small grids a V-cycle level has too little work to pay for the ~100 operators the per-level ``shifted`` path
launches on it, so these two formulations run every level's window attention at once.

- ``packed`` (:func:`packed_window_attention`): the levels' tokens are concatenated (finest first); a precomputed
  index lists the tokens of every ``k × k`` window (stride ``s``) of every level, so one gather builds all windows,
  k⁴ broadcast products attend inside them, and one scatter-add followed by a division by each token's window count
  averages the overlapping outputs. About a dozen operators for the whole V-cycle, but each token is copied into its
  ``k²/s²`` windows and every product is k² times a level's size: the fastest for the tiniest calls only.
- ``canvas`` (:class:`LevelCanvas`): the levels are laid out side by side on one grid, and one pass of the shifted
  formulation (:mod:`attnbench.attention.overlapping_windows`) covers all of them, the windows that straddle two
  levels masked out. The operators of one level for all levels, about 13 % more cells than tokens.

Work: the same ``4·B·heads·P·k⁴·d`` attention FLOPs as one SDPA per window (``P`` windows in all).
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
import torch.nn.functional as F

__all__ = ["CANVAS_MAX_TOKENS", "PACKED_MAX_TOKENS", "LevelCanvas", "LevelPlan", "coverage", "level_canvas",
           "level_coverage", "level_plan", "packed_window_attention", "window_starts"]

# Most tokens in a call (B·H·W) each formulation runs by default (mano's ``path = "auto"``): packed up to
# PACKED_MAX_TOKENS, the canvas up to CANVAS_MAX_TOKENS, the per-level shifted path above. Where they cross on the
# 2-core VM (one process each, fwd / fwd_bwd ms, dim 64, 4 heads, k = 2, s = 1, r = 2): packed beats the canvas at
# B·H·W = 64 (0.8 / 2.6 against 1.5 / 4.1) and about ties it at 512, and loses from 1024 (B = 4 at 16²: 8.0 / 18.3
# against 3.9 / 11.2); the canvas beats the shifted path up to 8192 (B = 2 at 64²: 18.1 / 59.4 against
# 20.3 / 61.6) and loses at 16384 (B = 1 at 128²: 39.5 / 157 against 41.4 / 117, its bands hold more cells).
# results/investigations/mano-small-grids/ (paths.toml) holds the harness's measurements.
PACKED_MAX_TOKENS = 512
CANVAS_MAX_TOKENS = 8192


def window_starts(size: int, window: int, stride: int) -> range:
    """Top-left offsets of the sliding windows along one side (no padding)."""
    return range(0, size - window + 1, stride)


def coverage(size: int, window: int, stride: int) -> torch.Tensor:
    """How many sliding windows cover each position along one side: ``[size]`` (float)."""
    return torch.tensor(_coverage(size, window, stride), dtype=torch.float32)


def level_coverage(height: int, width: int, window: int, stride: int) -> list[list[int]]:
    """How many of a ``height × width`` level's own windows cover each of its cells, row by row.

    Plain Python, made a tensor once by the callers: under torch.compile, slice updates would trace into hundreds of
    tiny graph operations (minutes of code generation) and ``.tolist()`` or ``bincount`` break the graph."""
    rows, cols = _coverage(height, window, stride), _coverage(width, window, stride)
    return [[a * b for b in cols] for a in rows]


def _coverage(size: int, window: int, stride: int) -> list[int]:
    count = [0] * size
    for start in window_starts(size, window, stride):
        for i in range(start, start + window):
            count[i] += 1
    return count


@dataclass(frozen=True)
class LevelPlan:
    """Everything about a grid's levels at one batch size that does not depend on the input's values, built once.

    ``batch``: B; ``slots``: k²; ``index [k²·B·P]``: for every in-window slot (outermost), every batch entry and
    every window of every level (``P`` windows per entry), the token's column in the ``B·T`` tokens of all levels
    (entry-major, levels concatenated finest first); ``count [T]``: how many windows cover each token."""

    batch: int
    slots: int
    index: torch.Tensor
    count: torch.Tensor


def level_plan(shapes: list[tuple[int, int]], window: int, stride: int, batch: int, device: torch.device,
               dtype: torch.dtype) -> LevelPlan:
    """The :class:`LevelPlan` of levels ``shapes`` (finest first) for ``window × window`` windows at ``stride`` and
    ``batch`` entries."""
    k, s = window, stride
    sizes = tuple(h * w for h, w in shapes)
    offsets = [sum(sizes[:i]) for i in range(len(sizes))]
    side = torch.arange(k)
    windows = []
    for (h, w), offset in zip(shapes, offsets):
        rows = torch.arange(0, h - k + 1, s)[:, None, None, None] + side[None, None, :, None]  # Ph, 1, k, 1
        cols = torch.arange(0, w - k + 1, s)[None, :, None, None] + side[None, None, None, :]  # 1, Pw, 1, k
        windows.append((offset + rows * w + cols).reshape(-1, k * k))  # Ph·Pw, k²
    per_entry = torch.cat(windows).t()  # k², P
    # Each token is covered by its own level's windows only.
    count = torch.tensor([c for h, w in shapes for row in level_coverage(h, w, k, s) for c in row], dtype=dtype)
    index = per_entry[:, None, :] + sum(sizes) * torch.arange(batch)[None, :, None]  # k², B, P
    return LevelPlan(batch, k * k, index.reshape(-1).to(device), count.to(device))


def packed_window_attention(qkv: torch.Tensor, plan: LevelPlan, heads: int, dim_head: int,
                            dropout: float = 0.0) -> torch.Tensor:
    """``qkv [3·heads·dim_head, B·T]`` (channel-first; the levels' tokens as ``plan`` says) → ``[heads·dim_head,
    B·T]``: softmax attention inside every window of every level, averaged over the windows covering each token.

    Channel-first with the windows innermost, every operator below runs over long contiguous rows: the k² × k²
    scores of all windows are k⁴ broadcast products summed over the head dimension (an outer one), not B·P tiny
    matrix products (SDPA on 4-token sequences spends its time on per-sequence overhead and strided copies)."""
    n = plan.index.numel()  # k² · B·P
    inner = heads * dim_head
    win = qkv.index_select(1, plan.index).view(3, heads, dim_head, plan.slots, n // plan.slots)
    q, k, v = win.unbind(0)  # each heads, d, k² slots, B·P windows
    scores = (q.unsqueeze(3) * k.unsqueeze(2)).sum(1) * dim_head**-0.5  # heads, k² (query), k² (key), B·P
    probs = F.dropout(scores.softmax(2), dropout) if dropout else scores.softmax(2)
    out = (probs.unsqueeze(1) * v.unsqueeze(2)).sum(3)  # heads, d, k² (query), B·P
    summed = qkv.new_zeros(inner, qkv.shape[1]).index_add(1, plan.index, out.reshape(inner, n))
    return (summed.view(inner, plan.batch, -1) / plan.count).view(inner, -1)


@dataclass(frozen=True)
class LevelCanvas:
    """The levels laid out side by side on one grid, so that one shifted-window pass
    (:func:`~attnbench.attention.overlapping_windows.overlapping_window_attention`) serves all of them.

    The finest level sits at the top left; the coarser ones are stacked top to bottom in a column to its right
    (offsets rounded up to multiples of the stride, so each level's windows fall on the canvas's window grid).
    Windows that are not wholly inside one level are masked out (``valid``), so no window mixes two levels and the
    unused cells are never attended to.

    ``shapes``: the levels' ``(h, w)``, finest first; ``offsets``: each level's top-left cell; ``height``,
    ``width``: the canvas; ``valid [Ph, Pw]``: 1 for the window positions wholly inside a level;
    ``count [height, width]``: how many valid windows cover each cell (1 on unused cells, whose outputs are never
    read)."""

    shapes: tuple[tuple[int, int], ...]
    offsets: tuple[tuple[int, int], ...]
    height: int
    width: int
    valid: torch.Tensor
    count: torch.Tensor

    def place(self, levels: list[torch.Tensor]) -> torch.Tensor:
        """``levels [B, h_l, w_l, C]`` (finest first) → the canvas ``[B, height, width, C]``, zeros between them."""
        B, _, _, C = levels[0].shape
        canvas = levels[0].new_zeros(B, self.height, self.width, C)
        for (oy, ox), level in zip(self.offsets, levels):
            canvas[:, oy : oy + level.shape[1], ox : ox + level.shape[2]] = level
        return canvas

    def levels(self, canvas: torch.Tensor) -> list[torch.Tensor]:
        """The inverse of :meth:`place`: views ``[B, h_l, w_l, C]`` of the canvas, finest first."""
        return [canvas[:, oy : oy + h, ox : ox + w] for (oy, ox), (h, w) in zip(self.offsets, self.shapes)]


def level_canvas(shapes: list[tuple[int, int]], window: int, stride: int, device: torch.device,
                 dtype: torch.dtype) -> LevelCanvas:
    """The :class:`LevelCanvas` of levels ``shapes`` (finest first; each admits ``window``-windows at ``stride``)."""
    k, s = window, stride

    def aligned(v: int) -> int:  # the next multiple of the stride: window starts coincide with the canvas's
        return -(-v // s) * s

    column = aligned(shapes[0][1])
    offsets, top = [(0, 0)], 0
    for h, _ in shapes[1:]:
        offsets.append((top, column))
        top = aligned(top + h)
    height = max(shapes[0][0], *(oy + h for (oy, _), (h, _) in zip(offsets, shapes)))
    width = max(ox + w for (_, ox), (_, w) in zip(offsets, shapes))
    height, width = k + aligned(height - k), k + aligned(width - k)  # every cell row/column has a window start
    # Python lists made tensors once (a constant under torch.compile, not a graph of slice updates).
    valid = [[0.0] * ((width - k) // s + 1) for _ in range((height - k) // s + 1)]
    count = [[1.0] * width for _ in range(height)]  # 1 outside every level: those cells' outputs are never read
    for (oy, ox), (h, w) in zip(offsets, shapes):
        for i in range((h - k) // s + 1):
            valid[oy // s + i][ox // s : ox // s + (w - k) // s + 1] = [1.0] * ((w - k) // s + 1)
        for i, row in enumerate(level_coverage(h, w, k, s)):  # valid windows cover a level as its own windows do
            count[oy + i][ox : ox + w] = [float(c) for c in row]
    return LevelCanvas(tuple(shapes), tuple(offsets), height, width, torch.tensor(valid, device=device, dtype=dtype),
                       torch.tensor(count, device=device, dtype=dtype))
