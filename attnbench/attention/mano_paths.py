"""How MANO's per-level window operator ``W`` is computed: five formulations with the same outputs up to float
rounding, chosen per call by :meth:`WindowPaths.path_for` (a base of
:class:`attnbench.attention.mano.MultipoleAttention`, where the V-cycle around them lives).

- ``native`` (default on CPU in float32 / float64 for k <= 4 where the kernel builds, and not while training
  with dropout): the restriction runs first, the levels' tokens are normalised into one tensor by one C++
  operator (both LayerNorms in one pass, read from the levels without a concatenation copy) and projected
  once, and one C++ operator (:mod:`attnbench.attention.kernels`) attends inside every window of every level
  and averages per token, forward and backward; the backward recomputes the window scores instead of saving
  them, so training keeps only qkv. One operator per direction for the whole V-cycle's windows, where the
  Python paths below launch tens (on the accuracy suites' 8×8 and 16×16 token grids the launches, not the
  arithmetic, set their time). Calls of more than :data:`CANVAS_MAX_TOKENS` tokens run their large levels one at
  a time instead, so that inference holds one large level's qkv at a time, not all levels', and then the coarse
  levels that fit in :data:`CANVAS_MAX_TOKENS` tokens together as one call.
- ``shifted`` (default for k <= 3 otherwise, :mod:`attnbench.attention.overlapping_windows`): every score a
  window needs is a query-key dot product at one of ``(2k-1)²`` fixed offsets, so the whole level takes
  ``(2k-1)²`` shifted element-wise products for the scores, per-window softmaxes on a ``[k², k², ...]`` tensor,
  and ``(2k-1)²`` shifted multiply-adds for the averaged output; overlapping windows share their dot products.
  No per-window launches, no window copies; a hand-written backward keeps only q, k, v and the window
  probabilities.
- ``sdpa`` (default for larger windows, where batched matmuls win): the overlapping windows as ``ceil(k/s)²``
  groups of non-overlapping windows (strided views), each through ``scaled_dot_product_attention``.
- ``canvas`` (default for k <= 3 and calls of at most :data:`CANVAS_MAX_TOKENS` tokens B·H·W): the restriction
  runs first (it needs only the inputs), the levels are laid out side by side on one grid
  (:class:`~attnbench.attention.packed_windows.LevelCanvas`, built once per grid), normalised and projected once,
  and one ``shifted`` pass covers all levels, the windows that straddle two levels masked out: the operators of
  one level instead of one set per level, where on small grids launches, not arithmetic, set the time.
- ``packed`` (default for calls of at most :data:`PACKED_MAX_TOKENS` tokens): the levels' tokens concatenated,
  every window of every level gathered by one precomputed index, attention inside all windows as k⁴ broadcast
  products, one scatter-add to average (:mod:`attnbench.attention.packed_windows`) — about a dozen operators
  for the whole V-cycle, but each token copied into its ``k²/s²`` windows, hence only for the tiniest calls.

On the ``canvas`` and ``packed`` paths, and on the ``native`` path for calls of at most
:data:`CANVAS_MAX_TOKENS` tokens, the down and up convolutions (kernel = stride = r) run as matrix products
on the r×r patches, channels-last (:mod:`attnbench.attention._patches`): on small grids the convolution kernels
and the permutes around them cost more than the arithmetic; on large ones the patch copies cost memory and time.

The paths differ only in cost; the oracle tests (tests/attention/test_oracles.py) hold each to the authors' layer.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import torch
from torch import nn

from attnbench.attention import kernels
from attnbench.attention.overlapping_windows import grouped_window_attention, overlapping_window_attention
from attnbench.attention.packed_windows import (
    CANVAS_MAX_TOKENS,
    PACKED_MAX_TOKENS,
    LevelCanvas,
    LevelPlan,
    level_canvas,
    level_coverage,
    level_plan,
    packed_window_attention,
)

__all__ = ["NATIVE_DTYPES", "NATIVE_MAX_WINDOW", "SHIFTED_MAX_WINDOW", "WindowPaths"]

# Largest window the shifted formulation runs by default ("auto"); larger windows use one SDPA per window group.
SHIFTED_MAX_WINDOW = 3
# Largest window the native kernel takes (its per-token arrays are sized for it: kernels/mano_windows.cpp).
NATIVE_MAX_WINDOW = 4
NATIVE_DTYPES = (torch.float32, torch.float64)


class WindowPaths(nn.Module):
    """The window formulations of a MANO layer. The layer provides the shared modules and options declared below
    (its constructor sets them) and ``_restrict``, the V-cycle's restriction (the all-level paths restrict first)."""

    norm1: nn.LayerNorm
    norm2: nn.LayerNorm
    to_qkv: nn.Linear
    to_out: nn.Module
    out_drop: nn.Module
    heads: int
    dim_head: int
    window: int
    stride: int
    dropout: float
    path: str
    _constants: dict[tuple[Any, ...], Any]

    def _restrict(self, x: torch.Tensor, levels: int, patches: bool = True) -> list[torch.Tensor]:
        """The layer's restriction: ``[x, D(x), D(D(x)), …]``, ``levels`` grids, finest first."""
        raise NotImplementedError

    def _constant(self, key: tuple[Any, ...], build: Callable[[], Any]) -> Any:
        """A per-grid constant (window counts, level plan, canvas): built once, outside autograd, and cached under
        ``key``; under ``torch.compile`` built inline and traced as a constant (a cache lookup would guard and
        recompile per call)."""
        if torch.compiler.is_compiling():
            return build()
        if key not in self._constants:
            with torch.inference_mode(False):  # a constant built during inference must still serve training
                self._constants[key] = build()
        return self._constants[key]

    def _count(self, h: int, w: int, x: torch.Tensor) -> torch.Tensor:
        """``[h, w, 1]``: how many windows cover each token of an ``h × w`` level."""
        return self._constant(("count", h, w, x.device, x.dtype), lambda: torch.tensor(
            level_coverage(h, w, self.window, self.stride), device=x.device, dtype=x.dtype)[..., None])

    def _plan(self, batch: int, shapes: list[tuple[int, int]], x: torch.Tensor) -> LevelPlan:
        """The :class:`~attnbench.attention.packed_windows.LevelPlan` of levels ``shapes`` at ``batch`` entries."""
        return self._constant(("plan", batch, tuple(shapes), x.device, x.dtype),
                              lambda: level_plan(shapes, self.window, self.stride, batch, x.device, x.dtype))

    def _canvas(self, shapes: list[tuple[int, int]], x: torch.Tensor) -> LevelCanvas:
        """The :class:`~attnbench.attention.packed_windows.LevelCanvas` of levels ``shapes``."""
        return self._constant(("canvas", tuple(shapes), x.device, x.dtype),
                              lambda: level_canvas(shapes, self.window, self.stride, x.device, x.dtype))

    def _packed_levels(self, x: torch.Tensor, shapes: list[tuple[int, int]]) -> list[torch.Tensor]:
        """``W`` on every level at once (the ``packed`` path): ``x [B, H, W, C]`` with levels ``shapes`` → the
        levels' outputs ``[B, h_l, w_l, C]``, finest first."""
        B, _, _, C = x.shape
        tokens = torch.cat([level.reshape(B, -1, C) for level in self._restrict(x, len(shapes))], dim=1)  # B, T, C
        # Channel-first qkv [3·inner, B·T] straight from the matmul, the layout the kernel wants.
        qkv = torch.mm(self.to_qkv.weight, self.norm2(self.norm1(tokens.view(-1, C))).t())
        plan = self._plan(B, shapes, x)
        out = packed_window_attention(qkv, plan, self.heads, self.dim_head, self.dropout if self.training else 0.0)
        out = self.out_drop(self.to_out(out.t())).view(B, -1, C)  # B, T, C
        return [t.reshape(B, h, w, -1) for t, (h, w) in zip(out.split([h * w for h, w in shapes], dim=1), shapes)]

    def _canvas_levels(self, x: torch.Tensor, shapes: list[tuple[int, int]]) -> list[torch.Tensor]:
        """``W`` on every level at once (the ``canvas`` path): ``x [B, H, W, C]`` with levels ``shapes`` → the
        levels' outputs ``[B, h_l, w_l, C]`` (views of one output canvas), finest first."""
        B, _, _, C = x.shape
        canvas = self._canvas(shapes, x)
        cells = canvas.place(self._restrict(x, len(shapes))).view(-1, C)  # B·height·width, C
        # Channel-first qkv [3, heads, d, B, height, width] straight from the matmul (no transpose copy).
        qkv = torch.mm(self.to_qkv.weight, self.norm2(self.norm1(cells)).t())
        qkv = qkv.view(3, self.heads, self.dim_head, B, canvas.height, canvas.width)
        del cells
        out = overlapping_window_attention(qkv, self.window, self.stride, canvas.count,
                                           self.dropout if self.training else 0.0, valid=canvas.valid)
        out = self.out_drop(self.to_out(out.view(-1, B * canvas.height * canvas.width).t()))
        return canvas.levels(out.view(B, canvas.height, canvas.width, C))

    def _native_levels(self, x: torch.Tensor, shapes: list[tuple[int, int]], patches: bool) -> list[torch.Tensor]:
        """``W`` on every level at once (the ``native`` path): ``x [B, H, W, C]`` with levels ``shapes`` → the
        levels' outputs ``[B, h_l, w_l, C]`` (views of one output), finest first."""
        B, _, _, C = x.shape
        levels = self._restrict(x, len(shapes), patches)
        # The levels' tokens normalised straight into one [B, T, C] tensor (no concatenation copy first).
        normed = kernels.double_norm([level.reshape(B, -1, C) for level in levels], self.norm1, self.norm2)
        del levels
        T = normed.shape[1]
        # Channel-first qkv [3, heads, d, B, T] straight from the matmul (no transpose copy), the kernel's layout;
        # its output [heads, d, B, T] enters the output projection as a transposed view.
        qkv = torch.mm(self.to_qkv.weight, normed.view(-1, C).t())
        del normed
        out = kernels.mano_windows(qkv.view(3, self.heads, self.dim_head, B, T),
                                   [side for shape in shapes for side in shape], self.window, self.stride,
                                   self.dim_head**-0.5)
        del qkv  # inference frees the largest temporary before the output projection allocates
        out = self.out_drop(self.to_out(out.view(-1, B * T).t())).view(B, T, -1)
        return [t.view(B, h, w, -1) for t, (h, w) in zip(out.split([h * w for h, w in shapes], dim=1), shapes)]

    def window_attention(self, x: torch.Tensor, path: str | None = None) -> torch.Tensor:
        """The shared per-level operator ``W`` on one level: ``[B, h, w, C] → [B, h, w, C]``, on the ``native``,
        ``shifted`` or ``sdpa`` path (default: the one :meth:`path_for` picks for a large grid)."""
        B, h, w, C = x.shape
        path = path or self.path_for(device=x.device, dtype=x.dtype)
        if path == "native":
            return self._native_levels(x, [(h, w)], patches=False)[0]
        x = self.norm2(self.norm1(x)).reshape(B * h * w, C)
        if path == "shifted":
            # qkv channel-first per head, [3, heads, d, B, h, w], straight from the matmul (no transpose copy).
            qkv = torch.mm(self.to_qkv.weight, x.t()).view(3, self.heads, self.dim_head, B, h, w)
            count = self._count(h, w, x)[..., 0]
            del x  # inference frees each temporary as soon as it is consumed (training keeps what backward needs)
            dropout = self.dropout if self.training else 0.0
            out = overlapping_window_attention(qkv, self.window, self.stride, count, dropout)
            del qkv
            out = out.view(-1, B * h * w).t()
        else:
            qkv = self.to_qkv(x).view(B, h, w, -1)
            out = grouped_window_attention(qkv, self.window, self.stride, self.heads, self._count(h, w, x),
                                           self.dropout if self.training else 0.0).view(B * h * w, -1)
        return self.out_drop(self.to_out(out).view(B, h, w, -1))

    def path_for(self, tokens: int | None = None, device: torch.device | str = "cpu",
                 dtype: torch.dtype = torch.float32) -> str:
        """Which formulation runs on a call of ``tokens`` = B·H·W (None: a large call) on ``device`` in ``dtype``
        under ``path = "auto"``: ``native`` where :meth:`native_usable`, else ``packed`` up to
        :data:`PACKED_MAX_TOKENS`, then ``canvas`` up to :data:`CANVAS_MAX_TOKENS` for k <= 3, then ``shifted`` for
        k <= 3, else ``sdpa`` (where the Python formulations cross: ``packed_windows``)."""
        if self.path != "auto":
            return self.path
        if self.native_usable(device, dtype):
            return "native"
        shifted = self.window <= SHIFTED_MAX_WINDOW
        if tokens is not None and tokens <= PACKED_MAX_TOKENS:
            return "packed"
        if tokens is not None and tokens <= CANVAS_MAX_TOKENS and shifted:
            return "canvas"
        return "shifted" if shifted else "sdpa"

    def native_usable(self, device: torch.device | str = "cpu", dtype: torch.dtype = torch.float32) -> bool:
        """Whether the native kernel can run this layer's windows: CPU, float32 or float64, window <= 4, no
        attention dropout in force (the kernel has none), and the kernel built (:mod:`attnbench.attention.kernels`)."""
        return (torch.device(device).type == "cpu" and dtype in NATIVE_DTYPES and self.window <= NATIVE_MAX_WINDOW
                and not (self.training and self.dropout) and not kernels.mano_windows_status())
