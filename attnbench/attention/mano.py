"""MANO multipole attention (Colagrande et al., arXiv 2507.02748), efficient and resolution-agnostic."""

from __future__ import annotations

from typing import Any, ClassVar

import torch
from torch import nn

from attnbench.attention import kernels
from attnbench.attention._patches import patch_conv, patch_conv_transpose_patches, patch_matrix
from attnbench.attention.base import GridAttention, check_choice, check_dropout, check_heads, check_int
from attnbench.attention.mano_paths import NATIVE_MAX_WINDOW, WindowPaths
from attnbench.attention.packed_windows import CANVAS_MAX_TOKENS
from attnbench.registry import register_attention, register_config


@register_attention("mano")
class MultipoleAttention(WindowPaths, GridAttention):
    """Multipole attention: one shared windowed softmax attention on every level of a V-cycle.

    Shapes: ``x [B, H, W, C] → [B, H, W, C]``, any grid the level rule admits.

    Algorithm (the authors' ``Multipole_Attention2D`` in ``models/MANO.py`` of github.com/AlexColagrande/MANO;
    see :mod:`attnbench.attention.mano_reference` for the plain port and what it was made from)::

        o_0 = W(x_0);  x_l = D(x_{l-1}), o_l = W(x_l)           # restrict the input features
        res = o_{L-1};  res = o_l + c_i · U(res) for l = L-2 … 0  # prolongate coarse to fine

    ``W`` is windowed attention (k×k windows, stride s, overlapping outputs averaged by their coverage count),
    ``D`` a bias-free ``Conv2d(k=r, stride=r)`` or average pooling, ``U`` a bias-free ``ConvTranspose2d`` or
    nearest up-sampling, all three shared across levels. ``c_i = 1/(i+1)`` compounding (``level_weighting="paper"``,
    as the reference code, ``i`` counted from the coarsest level), ``1/(l+1)`` counted from the finest level
    (``"finest"``: levels keep their weights when a finer input adds a level), or 1 (``"sum"``).

    Level rule (evaluated on every forward, unlike the reference): starting from ``(H, W)``, add the level
    ``(h/r, w/r)`` while both sides are divisible by ``r``, the new sides are ``>= max(r, k)`` and admit the
    windows (``(side - k) % s == 0``), up to ``max_levels``. For ``n = r^j`` this gives the reference's
    ``floor(log_r n)`` levels, so one set of weights runs at every admissible resolution. With ``k >= r`` and a
    coarsest grid of side ``<= k`` one layer has a global receptive field.

    Efficiency versus the reference (same outputs): both LayerNorms, the qkv projection and the output projection
    are token-wise, so they run once per token instead of once per window copy (``to_out`` commutes with the
    coverage average). The windows themselves run on one of five paths (``path``), described in
    :mod:`attnbench.attention.mano_paths`: ``native`` (one C++ operator for every level's windows, forward and
    backward; the default on CPU in float32 / float64), ``shifted`` (shifted element-wise products per level),
    ``sdpa`` (groups of non-overlapping windows through SDPA, for large windows), and ``canvas`` and ``packed``
    (every level at once in Python, for small calls where the native kernel cannot run).

    Work per token, C = 64, 4 heads (d = 16), k = 2, s = 1, r = 2 (levels sum to about 4/3 N tokens): qkv and
    output projections 8·C² = 32 768 FLOPs per level-token, attention inside windows 4·k⁴·C = 4 096 FLOPs per
    level-token as counted by window (the shifted path performs 4·(2k-1)²·C = 2 304 multiply-add FLOPs instead),
    down and up convolutions 2·C²·r² each per coarse token (16/3·C² = 21 845 per input token over all levels).

    Complexity (N = H·W): time O(N k⁴ d / s² + N C²) — ``N/s²`` window positions per level, each ``k²`` queries
    against ``k²`` keys, plus the token-wise projections and the r×r convolutions (:meth:`flop_parts` counts it);
    memory O(N C) in inference (each level's temporaries are freed as it goes); in training O(N C) on the native
    path (qkv kept; the backward's per-token scratch is heads·(2k-1)² values), O(N (C + heads·k⁴/s²))
    on the shifted path, O(N k² C / s²) on the SDPA path (each group's window copy is kept for backward). What
    this layer removes relative to the reference is the ``k²/s²``-fold duplication of the norms and projections
    and the unfolded copy, not the O(k⁴) window attention the mechanism defines.

    Args:
        dim, heads, dim_head, dropout: as for ``full``.
        window: k >= 1. stride: 1 <= s <= k. rate: r >= 2. down: ``conv`` | ``pool``. up: ``conv`` | ``nearest``.
        level_weighting: ``paper`` | ``finest`` | ``sum`` (:meth:`level_weights`).
        max_levels: cap on the number of levels (None = no cap).
        path: ``auto`` (:meth:`path_for`) | ``native`` | ``canvas`` | ``packed`` | ``shifted`` | ``sdpa``: how
            windows are computed (the same outputs up to float rounding).
    """

    family = "multipole"
    benchmark = "mano_k2s1r2"
    complexity = (
        "time O(N k^4 d / s^2 + N C^2), memory O(N C) inference / O(N (C + heads k^4 / s^2)) training (k <= 3)"
    )
    flop_counter_kwargs: ClassVar[dict[str, Any]] = {"path": "sdpa"}  # the shifted path's products are elementwise
    constraints = "(H-k), (W-k) divisible by stride; levels stop where r no longer divides"
    reference = "Colagrande et al. 2025 (MANO), arXiv 2507.02748"

    def __init__(
        self,
        dim: int,
        heads: int,
        window: int = 2,
        stride: int = 1,
        rate: int = 2,
        down: str = "conv",
        up: str = "conv",
        level_weighting: str = "paper",
        max_levels: int | None = None,
        path: str = "auto",
        dim_head: int | None = None,
        dropout: float = 0.0,
    ) -> None:
        super().__init__()
        self.dim_head = check_heads(self, dim, heads, dim_head)
        self.heads = heads
        k, s = check_int(self, "window", window, 1), check_int(self, "stride", stride, 1)
        if s > k:
            raise ValueError(f"mano: stride={s} is invalid; expected stride <= window={k} (else pixels are uncovered)")
        self.window, self.stride, self.rate = k, s, check_int(self, "rate", rate, 2)
        self.down_kind = check_choice(self, "down", down, ("conv", "pool"))
        self.up_kind = check_choice(self, "up", up, ("conv", "nearest"))
        self.level_weighting = check_choice(self, "level_weighting", level_weighting, ("paper", "finest", "sum"))
        self.max_levels = None if max_levels is None else check_int(self, "max_levels", max_levels, 1)
        self.dropout = check_dropout(self, "dropout", dropout)
        inner = heads * self.dim_head
        r = self.rate
        # Parameter names mirror the reference (norm → attn.norm → to_qkv → to_out) for weight copying.
        self.norm1 = nn.LayerNorm(dim)
        self.norm2 = nn.LayerNorm(dim)
        self.to_qkv = nn.Linear(dim, 3 * inner, bias=False)
        self.to_out = nn.Identity() if (heads == 1 and self.dim_head == dim) else nn.Linear(inner, dim)
        self.out_drop = nn.Dropout(self.dropout)
        self.down = nn.Conv2d(dim, dim, r, stride=r, bias=False) if down == "conv" else nn.AvgPool2d(r, stride=r)
        self.up = (
            nn.ConvTranspose2d(dim, dim, r, stride=r, bias=False)
            if up == "conv"
            else nn.Upsample(scale_factor=r, mode="nearest")
        )
        self.path = check_choice(self, "path", path, ("auto", "native", "packed", "canvas", "shifted", "sdpa"))
        if self.path == "native":
            reason = kernels.mano_windows_status() or (
                f"window={k} > {NATIVE_MAX_WINDOW}" if k > NATIVE_MAX_WINDOW else "")
            if reason:
                raise ValueError(f"mano: path='native' is unavailable: {reason}; use path='auto'")
        elif self.path == "auto" and k <= NATIVE_MAX_WINDOW:
            kernels.prepare()  # build (or load) the kernel now, never inside a timed or memory-measured call
        self._constants: dict[tuple[Any, ...], Any] = {}  # per-grid window counts, level plans, canvases
        self._supported: set[tuple[Any, ...]] = set()  # grids whose not_supported_reasons came back empty
        # Inference's patch matrices of the down and up convolutions: name -> (the weight's storage as a detached
        # tensor, its version then, the matrix). Holding the storage keeps its address from being reused, so an
        # unchanged address and version mean an unchanged weight.
        self._matrices: dict[str, tuple[torch.Tensor, int, torch.Tensor]] = {}
        self._last_levels: list[tuple[int, int]] = []
        self._last_path = ""

    def flop_parts(self, batch: int, height: int, width: int) -> dict[str, int]:
        """Per level ``(h, w)`` with ``P = ((h-k)/s+1)·((w-k)/s+1)`` window positions: the qkv and output
        projections once per token, q kᵀ and p v inside every window, 4·B·heads·P·k⁴·d; between levels the shared
        down and up convolutions, 2·B·C²·r²·(coarse tokens) each (pooling and nearest up-sampling count 0)."""
        k, s, r = self.window, self.stride, self.rate
        inner, dim = self.heads * self.dim_head, self.to_qkv.in_features
        out_proj = 0 if isinstance(self.to_out, nn.Identity) else 1
        shapes = self.level_shapes(height, width)
        matmul = sdpa = 0
        for h, w in shapes:
            n = batch * h * w
            positions = ((h - k) // s + 1) * ((w - k) // s + 1)
            matmul += 2 * n * dim * 3 * inner + out_proj * 2 * n * inner * dim
            sdpa += 4 * batch * self.heads * positions * k**4 * self.dim_head
        coarse = sum(batch * h * w for h, w in shapes[1:])
        resampling = (self.down_kind == "conv") + (self.up_kind == "conv")
        matmul += resampling * 2 * dim * dim * r * r * coarse
        return {"matmul": matmul, "sdpa": sdpa}

    def receptive_field(self, height: int, width: int) -> tuple[int, int]:
        """The coarsest level's window, ``k · r^(levels-1)`` tokens of the input grid per side (capped at the grid)."""
        reach = self.window * self.rate ** (len(self.level_shapes(height, width)) - 1)
        return min(reach, height), min(reach, width)

    # ----------------------------------------------------------------------------------------------- levels
    def level_shapes(self, height: int, width: int) -> list[tuple[int, int]]:
        """Grid shapes of the levels, finest first, by the level rule of the class docstring."""
        k, s, r = self.window, self.stride, self.rate
        shapes = [(height, width)]
        while self.max_levels is None or len(shapes) < self.max_levels:
            h, w = shapes[-1]
            if h % r or w % r:
                break
            h, w = h // r, w // r
            if min(h, w) < max(r, k) or (h - k) % s or (w - k) % s:
                break
            shapes.append((h, w))
        return shapes

    def not_supported_reasons(self, height, width, device="cpu", dtype=torch.float32, backward=False) -> list[str]:
        reasons = super().not_supported_reasons(height, width, device, dtype, backward)
        k, s = self.window, self.stride
        if height < k or width < k:
            reasons.append(f"grid {height}x{width} is smaller than window {k}")
        elif (height - k) % s or (width - k) % s:
            reasons.append(
                f"grid {height}x{width}: (side - window {k}) not divisible by stride {s}, so border tokens "
                "would be covered by no window"
            )
        return reasons

    # ------------------------------------------------------------------------------------------ V-cycle
    def _patch_matrix(self, module: nn.Conv2d | nn.ConvTranspose2d) -> torch.Tensor:
        """The patch matrix of the down or up convolution ``module``. Where autograd records, made afresh (a
        differentiable copy of the weight); in inference kept until the weight changes (its storage or version: an
        optimiser step, a load, ``Module.to``), so an eval forward does not copy the weights every call (two copies
        of r²·C² values: on a 16² grid about 6 % of the layer's forward, timed on the 2-core VM)."""
        weight = module.weight
        if (torch.is_grad_enabled() and weight.requires_grad) or torch.compiler.is_compiling():
            return patch_matrix(module)
        name = "down" if module is self.down else "up"
        cached = self._matrices.get(name)
        if (cached is None or cached[0].data_ptr() != weight.data_ptr() or cached[1] != weight._version
                or cached[0].dtype != weight.dtype):
            with torch.no_grad():
                matrix = patch_matrix(module).contiguous()
            cached = self._matrices[name] = (weight.detach(), weight._version, matrix)
        return cached[2]

    def _down(self, x: torch.Tensor, patches: bool = False, matrix: torch.Tensor | None = None) -> torch.Tensor:
        """``D``: ``[B, h, w, C] → [B, h/r, w/r, C]``; ``patches``: as a matrix product on the r×r patches
        (``matrix``: the convolution's patch matrix, made once per forward by the caller)."""
        if patches and isinstance(self.down, nn.Conv2d):
            return patch_conv(x, self.down, matrix)
        return self.down(x.permute(0, 3, 1, 2)).permute(0, 2, 3, 1)

    def _restrict(self, x: torch.Tensor, levels: int, patches: bool = True) -> list[torch.Tensor]:
        """``[x, D(x), D(D(x)), …]``, ``levels`` grids, finest first (the restriction needs only the inputs, so the
        all-level paths run it for all levels before any attention)."""
        matrix = self._patch_matrix(self.down) if patches and isinstance(self.down, nn.Conv2d) and levels > 1 else None
        out = [x]
        for _ in range(levels - 1):
            out.append(self._down(out[-1], patches, matrix))
        return out

    def _prolongate(self, fine: torch.Tensor, coarse: torch.Tensor, weight: float, patches: bool,
                    matrix: torch.Tensor | None = None) -> torch.Tensor:
        """One step up the V-cycle, ``fine + weight · U(coarse)``: ``fine [B, h·r, w·r, C]``, ``coarse [B, h, w, C]``.
        With ``patches``, ``U``'s matrix product stays in patch layout and the sum is taken through a patch view of
        ``fine`` (one operator where laying the patches out, scaling and adding took three; ``matrix``: the
        transposed convolution's patch matrix, made once per forward by the caller)."""
        # Without autograd, on the level-by-level path (``patches`` False: each level's output is a tensor of its
        # own, which nothing else holds), the sum goes into ``fine``: no new grid-sized allocation per level, so
        # fewer fresh pages to fault in per call on large grids. The all-level paths' outputs are views of one
        # tensor: summing into them would return a view of all levels' memory, strided over the batch.
        add = torch.Tensor.add_ if not (patches or torch.is_grad_enabled()) else torch.add
        if patches and isinstance(self.up, nn.ConvTranspose2d):
            B, h, w, C = coarse.shape
            r = self.rate
            up = patch_conv_transpose_patches(coarse, self.up, matrix)  # B, h, w, r, r, C
            out = add(fine.view(B, h, r, w, r, -1), up.transpose(2, 3), alpha=weight)
            return out.reshape(B, h * r, w * r, -1)
        return add(fine, self.up(coarse.permute(0, 3, 1, 2)).permute(0, 2, 3, 1), alpha=weight)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        B, H, W, C = self._check_input(x)
        key = (H, W, x.device.type, x.dtype)
        if key not in self._supported:  # checked once per grid: the answer depends only on the key
            reasons = self.not_supported_reasons(H, W, x.device, x.dtype)
            if reasons:
                raise ValueError(f"mano: {'; '.join(reasons)}")
            self._supported.add(key)
        path = self.path_for(B * H * W, x.device, x.dtype)
        if self.path == "native" and not self.native_usable(x.device, x.dtype):  # auto checked it in path_for
            raise ValueError(f"mano: path='native' runs on CPU in float32/float64 without attention dropout; got "
                             f"{x.device.type}, {x.dtype}, dropout {self.dropout if self.training else 0.0}")
        # Calls where operator overhead, not arithmetic, sets the time: resample by matrix products on the patches
        # (on large grids the patch copies cost more memory and time than the convolutions).
        small = path in ("packed", "canvas") or (path == "native" and B * H * W <= CANVAS_MAX_TOKENS)
        shapes = self.level_shapes(H, W)
        if path == "native" and small:
            outs = self._native_levels(x, shapes, patches=True)
            packed = 0  # the first level whose output is a view of one all-level tensor (resampled by patches)
        elif small:
            outs = self._packed_levels(x, shapes) if path == "packed" else self._canvas_levels(x, shapes)
            packed = 0
        else:
            # The large levels one at a time (the native kernel too, one call per level): in inference each level's
            # qkv and temporaries are freed before the next, so the peak holds the largest level's, not all levels'
            # (at 256² all levels in one call held 4/3 of them: 11 % more peak memory than the per-level path).
            # On the native path the coarse levels that fit in CANVAS_MAX_TOKENS tokens together then run as one
            # call, like a small grid's (issue 26: not a kernel, two norms and two projections per tiny level).
            outs = [self.window_attention(x, path)]
            packed = len(shapes)
            for level in range(1, len(shapes)):
                x = self._down(x)
                if path == "native" and B * sum(h * w for h, w in shapes[level:]) <= CANVAS_MAX_TOKENS:
                    outs += self._native_levels(x, shapes[level:], patches=True)
                    packed = level
                    break
                outs.append(self.window_attention(x, path))
        self._last_levels, self._last_path = shapes, path
        res = outs.pop()
        weights = self.level_weights(len(shapes))
        matrix = None  # the transposed convolution's patch matrix, for the levels resampled by patches
        if isinstance(self.up, nn.ConvTranspose2d) and packed < len(outs):
            matrix = self._patch_matrix(self.up)
        for level in range(len(outs) - 1, -1, -1):  # coarse to fine
            res = self._prolongate(outs[level], res, weights[level], level >= packed, matrix)
        return res

    def level_weights(self, levels: int) -> list[float]:
        """``w[l]``, the factor of the prolongated coarser result added at level ``l`` (0 = finest), for ``levels``
        levels. ``paper``: ``1/(i+1)`` with ``i`` counted from the coarsest (the reference), so one more level
        (a finer input grid, zero-shot) re-weights every level; ``finest``: ``1/(l+1)``, counted from the finest,
        so the levels a model was trained with keep their weights; ``sum``: 1."""
        if self.level_weighting == "paper":
            return [1.0 / (levels - 1 - level) for level in range(levels - 1)]
        if self.level_weighting == "finest":
            return [1.0 / (level + 1) for level in range(levels - 1)]
        return [1.0] * (levels - 1)

    def extra_info(self) -> dict[str, Any]:
        shapes = self._last_levels
        info = {"levels": len(shapes), "coarsest": f"{shapes[-1][0]}x{shapes[-1][1]}" if shapes else "",
                "window_path": self._last_path or self.path_for()}
        # Why auto could not take the native kernel, where it would have (a machine without a compiler).
        reason = kernels.mano_windows_status() if self.path == "auto" and self.window <= NATIVE_MAX_WINDOW else ""
        return {**info, "native": reason} if reason else info

    # ------------------------------------------------------------------------------------ weight copying
    def reference_pairs(self, ref: Any) -> list[tuple[nn.Module, nn.Module]]:
        """``(this layer's module, the mano_reference layer's module)`` holding the same weights (``ref``: a
        :class:`~attnbench.attention.mano_reference.MultipoleAttentionReference`)."""
        to_out = ref.attention.attn.to_out
        return [
            (self.norm1, ref.attention.norm),
            (self.norm2, ref.attention.attn.norm),
            (self.to_qkv, ref.attention.attn.to_qkv),
            (self.down, ref.down),
            (self.up, ref.up),
            (self.to_out, to_out[0] if isinstance(to_out, nn.Sequential) else to_out),
        ]

    @torch.no_grad()
    def load_reference_weights(self, ref: Any) -> MultipoleAttention:
        """Copy the weights of a ``mano_reference`` layer with the same hyper-parameters into this one."""
        for mine, theirs in self.reference_pairs(ref):
            if type(mine) is not type(theirs):
                raise ValueError(f"mano: cannot copy {type(theirs).__name__} into {type(mine).__name__}")
            mine.load_state_dict(theirs.state_dict())
        if (self.window, self.stride, self.rate) != (ref.window, ref.stride, ref.rate):
            raise ValueError(
                f"mano: reference has window/stride/rate {(ref.window, ref.stride, ref.rate)}, "
                f"this layer {(self.window, self.stride, self.rate)}"
            )
        return self


# Named configurations: k = window, s = stride, r = rate (timm-style names).
register_config("mano_k2s1r2", "mano", window=2, stride=1, rate=2)
register_config("mano_k2s1r4", "mano", window=2, stride=1, rate=4)
# Parameter-matched to the other mechanisms: average pooling and nearest up-sampling instead of the shared
# convolutions, which add 2·r²·C² parameters per layer (about 2x a backbone's parameters at r = 2).
register_config("mano_pool", "mano", down="pool", up="nearest")
