"""AFNO (Guibas et al. 2022): a block-diagonal complex MLP shared by all Fourier modes, with soft-shrinkage."""

from __future__ import annotations

from typing import Any

import torch
import torch.nn.functional as F
from torch import nn

from attnbench.attention._spectral import axis_modes, complex_einsum, gather_modes, scatter_modes
from attnbench.attention.base import GridAttention, check_dropout, check_heads, check_int
from attnbench.registry import register_attention, register_config


@register_attention("afno")
class AdaptiveFourierMixer(GridAttention):
    """Adaptive Fourier Neural Operator token mixer (Guibas et al., ICLR 2022), the reference code's ``AFNO2D``.

    Shapes: ``x [B, H, W, C] → [B, H, W, C]``.

    Algorithm, per sample::

        X = rfft2(x, norm="ortho")                       # [H, W//2+1, C] complex
        for every kept mode k, block b (C = blocks × c):  # the same weights for every mode
            h = ReLU(X[k, b] @ W1[b] + b1[b])             # [c·factor]; ReLU on real and imaginary parts apart
            Y[k, b] = S_λ(h @ W2[b] + b2[b])              # [c]; S_λ = soft-shrink, on both parts
        y = irfft2(Y, s=(H, W), norm="ortho") + x         # modes not kept are zero; the residual as AFNO2D

    The MLP weights are shared across modes (the token-mixing weight sharing of the paper), so one instance runs at
    any resolution. Hard thresholding keeps the modes with ``|k1| < K1`` and ``k2 < K2``, ``K = max(1,
    floor((side//2 + 1) · hard_thresholding_fraction))`` per axis: the lowest frequencies. The reference code slices
    rows ``[total - K : total + K]`` (``total = H//2 + 1``) of the unshifted spectrum instead, which below 1 keeps the
    highest row frequencies; with the default fraction 1 (every mode, FourCastNet's setting) both are the same.

    The residual ``+ x`` is AFNO2D's (``residual=False`` drops it); inside attnbench's pre-norm block
    ``x + mixer(norm(x))`` it gives AFNO's ``double_skip`` block. There is no input or output projection, as in
    AFNO2D.

    Equivalent explicit form: tests/attention/test_operator_mechanisms.py (a DFT by complex exponentials).

    Complexity: time O(N log N · C + N · C · c · factor) per sample (with every mode kept), memory O(N C). The
    complex products run as real ones (``complex_einsum``); the FFTs run in float32 (or float64) whatever the input
    dtype.

    Args:
        dim: channels C. heads: default number of blocks (the blocks play the part of heads, as the paper says).
        num_blocks: blocks of the block-diagonal weights (default ``heads``; the paper uses 8); must divide ``dim``.
        sparsity_threshold: λ of the soft-shrinkage (0.01 in the paper).
        hard_thresholding_fraction: fraction of the modes per axis kept, in (0, 1].
        hidden_size_factor: width of the MLP's hidden layer per block, in multiples of the block width.
        residual: add the input to the output (AFNO2D's ``+ bias``).
        dropout: dropout on the mixed output (before the residual).
    """

    family = "mixer"
    benchmark = "afno_b8"
    complexity = "time O(N log N C + N C^2 / blocks), memory O(N C)"
    constraints = "dim divisible by num_blocks; FFT work is not in the FLOP count"
    reference = "Guibas et al. 2022 (AFNO), AFNO2D"

    def __init__(
        self,
        dim: int,
        heads: int,
        num_blocks: int | None = None,
        sparsity_threshold: float = 0.01,
        hard_thresholding_fraction: float = 1.0,
        hidden_size_factor: int = 1,
        residual: bool = True,
        dropout: float = 0.0,
    ) -> None:
        super().__init__()
        check_heads(self, dim, heads)
        blocks = heads if num_blocks is None else check_int(self, "num_blocks", num_blocks, 1)
        if dim % blocks:
            raise ValueError(f"afno: num_blocks={blocks} does not divide dim={dim}; expected a divisor of {dim}")
        if isinstance(sparsity_threshold, bool) or not isinstance(sparsity_threshold, (int, float)) \
                or sparsity_threshold < 0:
            raise ValueError(f"afno: sparsity_threshold={sparsity_threshold!r} is invalid; expected a float >= 0")
        fraction = hard_thresholding_fraction
        if isinstance(fraction, bool) or not isinstance(fraction, (int, float)) or not 0 < fraction <= 1:
            raise ValueError(f"afno: hard_thresholding_fraction={fraction!r} is invalid; expected a float in (0, 1]")
        self.factor = check_int(self, "hidden_size_factor", hidden_size_factor, 1)
        self.dim, self.num_blocks, self.block = dim, blocks, dim // blocks
        self.sparsity_threshold, self.fraction = float(sparsity_threshold), float(fraction)
        self.residual = bool(residual)
        self.dropout = check_dropout(self, "dropout", dropout)
        hidden = self.block * self.factor
        scale = 0.02  # AFNO2D's init: 0.02 · N(0, 1) for weights and biases, both parts
        # [re/im, blocks, in, out] and [re/im, blocks, out]: real parameters, see complex_einsum
        self.w1 = nn.Parameter(scale * torch.randn(2, blocks, self.block, hidden))
        self.b1 = nn.Parameter(scale * torch.randn(2, blocks, hidden))
        self.w2 = nn.Parameter(scale * torch.randn(2, blocks, hidden, self.block))
        self.b2 = nn.Parameter(scale * torch.randn(2, blocks, self.block))
        self.drop = nn.Dropout(self.dropout)

    def _modes(self, height: int, width: int) -> tuple[tuple[int, int], int]:
        """Kept rows ``(p, q)`` of the first axis (``|k1| < K1``) and kept columns ``k2 < K2`` of the half axis."""
        k1 = max(1, int((height // 2 + 1) * self.fraction))
        k2 = max(1, int((width // 2 + 1) * self.fraction))
        return axis_modes(height, k1, k1 - 1), min(k2, width // 2 + 1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        B, H, W, C = self._check_input(x)
        work = torch.promote_types(x.dtype, torch.float32)  # FFTs have no bfloat16/float16 CPU kernels
        rows, cols = self._modes(H, W)
        x_ft = torch.fft.rfft2(x.to(work), dim=(1, 2), norm="ortho")  # B, H, W//2+1, C complex
        z = gather_modes(x_ft, rows, cols)  # B, p+q, cols, C
        kept = z.shape[:3]
        z = torch.view_as_real(z.reshape(-1, self.num_blocks, self.block)).movedim(-1, 0)  # 2, T, blocks, c
        h = complex_einsum("tni,nio->tno", z, self.w1.to(work)) + self.b1.to(work)[:, None]  # 2, T, blocks, c·f
        h = F.relu(h)
        y = complex_einsum("tni,nio->tno", h, self.w2.to(work)) + self.b2.to(work)[:, None]  # 2, T, blocks, c
        y = F.softshrink(y, lambd=self.sparsity_threshold)
        y = torch.complex(y[0], y[1]).reshape(*kept, C)  # B, p+q, cols, C
        out = torch.fft.irfft2(scatter_modes(y, H, W // 2 + 1, rows), s=(H, W), dim=(1, 2), norm="ortho")
        out = self.drop(out.to(x.dtype))  # B, H, W, C
        return out + x if self.residual else out

    def flop_parts(self, batch: int, height: int, width: int) -> dict[str, int]:
        """Per kept mode and block, two complex products (c → c·f → c) as four real ones each:
        16·B·M·C·c·f with ``M`` kept modes. The FFTs are left out, as ``FlopCounterMode`` leaves them out (see
        ``fno``)."""
        (p, q), cols = self._modes(height, width)
        return {"matmul": 16 * batch * (p + q) * cols * self.dim * self.block * self.factor}

    def extra_info(self) -> dict[str, Any]:
        return {"num_blocks": self.num_blocks, "fft_flops_counted": False}


# The paper's setting: 8 blocks (with its other defaults: λ = 0.01, every mode kept, hidden factor 1).
register_config("afno_b8", "afno", num_blocks=8)
