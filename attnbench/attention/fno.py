"""FNO spectral convolution (Li et al. 2021) as a token mixer: a fixed set of low Fourier modes, mixed per mode."""

from __future__ import annotations

from typing import Any

import torch
from torch import nn

from attnbench.attention._spectral import axis_modes, complex_einsum, gather_modes, scatter_modes
from attnbench.attention.base import GridAttention, check_dropout, check_heads, check_int
from attnbench.registry import register_attention, register_config


@register_attention("fno")
class FourierNeuralOperatorMixer(GridAttention):
    """One Fourier layer of the FNO (Li et al., ICLR 2021, "Fourier Neural Operator for Parametric PDEs") without
    its activation: ``y = K(x) + W x``.

    Shapes: ``x [B, H, W, C] → [B, H, W, C]``.

    Spectral convolution ``K`` (the reference code's ``SpectralConv2d``)::

        X = rfft2(x)                               # [B, H, W//2+1, C], unnormalised (torch's "backward" norm)
        Y[k1, k2] = X[k1, k2] @ R[k1, k2]          # complex C×C matrix per kept mode, zero elsewhere
        K(x) = irfft2(Y, s=(H, W))                 # includes the 1/(H·W)

    The kept modes are the reference code's: along the first axis the ``modes`` lowest non-negative frequencies
    ``0..modes-1`` and the ``modes`` lowest negative ones ``-modes..-1`` (rows ``[:modes]`` and ``[-modes:]``, its
    ``weights1`` and ``weights2``), along the half axis ``0..modes-1``: ``2·modes·modes`` modes. The set is fixed in
    frequency, so one instance runs at any resolution and a layer trained low evaluates high (the FNO's
    discretisation invariance). On a grid too small to hold them, the modes it has are kept (``axis_modes``), each
    with its own frequency's weights.

    ``W x`` is the FNO layer's pointwise linear path (the reference's 1×1 ``Conv2d`` ``w0``; ``skip=False`` drops
    it). The layer's activation σ is left to the model around the mixer (attnbench's blocks add the residual and an
    MLP), so the mixer is linear like the attention it stands in for.

    Equivalent explicit form (tests/attention/test_operator_mechanisms.py): with ``X[k] = Σ_n x[n] e^{-2πi k·n/N}``
    over the kept ``k = (k1, k2)``, ``K(x)[n] = 1/(H·W) Σ_k c_{k2} Re(X[k] R[k] e^{2πi k·n/N})`` where ``c = 1`` on
    the zero and Nyquist columns and 2 elsewhere (the half spectrum stands for its conjugate half).

    Complexity: time O(N log N · C + modes² · C²) per sample, memory O(N C + modes² C²) (the weights). The complex
    per-mode products run as real ones (``complex_einsum``), so FLOP counts are real FLOPs. The FFTs run in float32
    (or float64) whatever the input dtype, since torch's FFTs have no bfloat16 kernel.

    Args:
        dim: channels C (the mixing is C → C).
        heads: accepted for the common interface and validated like the others' (must divide ``dim``); the spectral
            convolution mixes all channels together and has no heads.
        modes: kept frequencies per side (the paper's ``modes1 = modes2``; 12 in its 2-D experiments).
        skip: add the pointwise linear path ``W x``.
        dropout: dropout on the output.
    """

    family = "mixer"
    benchmark = "fno_m16"
    complexity = "time O(N log N C + m^2 C^2), memory O(N C + m^2 C^2)"
    constraints = "none (a grid smaller than the modes keeps the modes it has); FFT work is not in the FLOP count"
    reference = "Li et al. 2021 (FNO), SpectralConv2d + pointwise W"

    def __init__(
        self, dim: int, heads: int, modes: int = 12, skip: bool = True, dropout: float = 0.0
    ) -> None:
        super().__init__()
        check_heads(self, dim, heads)
        self.dim, self.heads = dim, heads
        self.modes = check_int(self, "modes", modes, 1)
        self.dropout = check_dropout(self, "dropout", dropout)
        # [re/im, 2·modes rows (frequencies 0..m-1 then -m..-1), modes columns, C_in, C_out], real: see
        # complex_einsum. The reference code's init: uniform [0, 1/(C_in·C_out)) for both parts.
        scale = 1.0 / (dim * dim)
        self.weight = nn.Parameter(scale * torch.rand(2, 2 * modes, modes, dim, dim))
        self.skip = nn.Linear(dim, dim) if skip else None
        self.drop = nn.Dropout(self.dropout)

    def _modes(self, height: int, width: int) -> tuple[tuple[int, int], int]:
        """Kept rows ``(p, q)`` of the first axis and kept columns of the half axis at a grid."""
        return axis_modes(height, self.modes, self.modes), min(self.modes, width // 2 + 1)

    def _mode_weights(self, rows: tuple[int, int], cols: int) -> torch.Tensor:
        """``[2, (p + q)·cols, C, C]``: the weights of the kept modes, in :func:`gather_modes` order."""
        p, q = rows
        m, C = self.modes, self.dim
        if p == q == cols == m:  # the whole table (every grid with H >= 2m, W >= 2m - 2): a view, no copy
            return self.weight.reshape(2, 2 * m * m, C, C)
        w = torch.cat([self.weight[:, :p, :cols], self.weight[:, 2 * m - q:, :cols]], dim=1)  # 2, p+q, cols, C, C
        return w.reshape(2, (p + q) * cols, C, C)

    def spectral(self, x: torch.Tensor) -> torch.Tensor:
        """The spectral convolution ``K(x)``: ``[B, H, W, C] → [B, H, W, C]`` in ``x``'s dtype."""
        B, H, W, C = x.shape
        work = torch.promote_types(x.dtype, torch.float32)  # FFTs have no bfloat16/float16 CPU kernels
        rows, cols = self._modes(H, W)
        x_ft = torch.fft.rfft2(x.to(work), dim=(1, 2))  # B, H, W//2+1, C complex
        z = gather_modes(x_ft, rows, cols).reshape(B, -1, C)  # B, M, C with M = (p + q)·cols kept modes
        z = torch.view_as_real(z).movedim(-1, 0)  # 2, B, M, C
        y = complex_einsum("bmi,mio->bmo", z, self._mode_weights(rows, cols).to(work))  # 2, B, M, C
        y = torch.complex(y[0], y[1]).reshape(B, rows[0] + rows[1], cols, C)  # B, p+q, cols, C
        y_ft = scatter_modes(y, H, W // 2 + 1, rows)  # B, H, W//2+1, C
        return torch.fft.irfft2(y_ft, s=(H, W), dim=(1, 2)).to(x.dtype)  # B, H, W, C

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        self._check_input(x)
        y = self.spectral(x)
        if self.skip is not None:
            y = y + self.skip(x)
        return self.drop(y)

    def flop_parts(self, batch: int, height: int, width: int) -> dict[str, int]:
        """Per kept mode a complex C×C product as four real ones, 8·B·M·C² with ``M`` kept modes; the pointwise
        path 2·B·N·C². The two FFTs (≈ 2.5·N·log2(N)·C real FLOPs each) are left out because ``FlopCounterMode``,
        which these formulas must equal, does not count FFTs; FLOP rates of ``fno`` understate its work by that
        much."""
        (p, q), cols = self._modes(height, width)
        C = self.dim
        parts = 8 * batch * (p + q) * cols * C * C
        if self.skip is not None:
            parts += 2 * batch * height * width * C * C
        return {"matmul": parts}

    def extra_info(self) -> dict[str, Any]:
        return {"modes": self.modes, "fft_flops_counted": False}


# The setting suites sweep: 16 modes per side (the paper's 2-D experiments use 12, the default).
register_config("fno_m16", "fno", modes=16)
