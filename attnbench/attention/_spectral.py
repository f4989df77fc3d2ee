"""Shared pieces of the spectral token mixers (``fno``, ``afno``): which Fourier modes are kept, how they are
gathered from and scattered back into a half spectrum, and complex products written as real ones.

Layout: a real grid ``[B, H, W, C]`` has the half spectrum ``torch.fft.rfft2(x, dim=(1, 2))`` of shape
``[B, H, W//2 + 1, C]``. Along the first (full) axis, row ``r`` holds frequency ``r`` for ``r < ceil(H/2)`` and
``r - H`` (negative) otherwise; for even H the Nyquist row ``H/2`` counts as negative (``torch.fft.fftfreq``'s
convention). Along the second (half) axis, column ``c`` holds the non-negative frequency ``c``.
"""

from __future__ import annotations

import torch

__all__ = ["axis_modes", "complex_einsum", "gather_modes", "scatter_modes"]


def axis_modes(size: int, positive: int, negative: int) -> tuple[int, int]:
    """How many rows of a full FFT axis of length ``size`` to keep: the first ``p`` rows (frequencies
    ``0 .. p-1``) and the last ``q`` rows (frequencies ``-q .. -1``), at most ``positive`` and ``negative``.

    Clamped to what the axis holds (``ceil(size/2)`` non-negative and ``floor(size/2)`` negative frequencies), so
    the two blocks never overlap and a grid smaller than the requested modes keeps every row once.
    """
    return min(positive, (size + 1) // 2), min(negative, size // 2)


def gather_modes(x_ft: torch.Tensor, rows: tuple[int, int], cols: int) -> torch.Tensor:
    """The kept block of a half spectrum: ``[B, H, Wf, C] → [B, p + q, cols, C]`` (rows ``0..p-1`` then the last
    ``q`` rows, i.e. frequencies ``0..p-1, -q..-1``; columns ``0..cols-1``)."""
    p, q = rows
    H = x_ft.shape[1]
    return torch.cat([x_ft[:, :p, :cols], x_ft[:, H - q:, :cols]], dim=1)  # B, p+q, cols, C


def scatter_modes(y: torch.Tensor, height: int, half_width: int, rows: tuple[int, int]) -> torch.Tensor:
    """Inverse of :func:`gather_modes`: place ``y [B, p + q, cols, C]`` into a zero half spectrum
    ``[B, height, half_width, C]`` (the modes that were not kept stay zero)."""
    p, q = rows
    B, _, cols, C = y.shape
    out = y.new_zeros(B, height, half_width, C)  # B, H, Wf, C
    out[:, :p, :cols] = y[:, :p]
    if q:  # ``out[:, height - 0:]`` would be an empty slice; skip it rather than rely on that
        out[:, height - q:, :cols] = y[:, p:]
    return out


def complex_einsum(equation: str, x: torch.Tensor, w: torch.Tensor) -> torch.Tensor:
    """A complex contraction ``einsum(equation, x, w)`` computed as one real einsum.

    ``x`` and ``w`` carry their real and imaginary parts along a leading axis of size 2 (``x[0]`` real, ``x[1]``
    imaginary), and so does the result. The four real products ``x_re·w_re, x_re·w_im, x_im·w_re, x_im·w_im`` come
    out of a single einsum over the two part axes, then combine as ``(re, im) = (x_re w_re - x_im w_im,
    x_re w_im + x_im w_re)``.

    Why real: a complex matmul costs four real ones, but ``torch.utils.flop_counter.FlopCounterMode`` counts a
    complex matmul by its shape only, as if it were real (a quarter of its work). Written as real products, the
    counter and the mechanisms' FLOP formulas both see the real work. It also keeps every parameter real, so
    ``module.to(torch.bfloat16)`` converts weights instead of discarding their imaginary parts.

    Args:
        equation: a two-operand einsum without the part axes, e.g. ``"bmi,mio->bmo"``.
        x: ``[2, *x_dims]``. w: ``[2, *w_dims]``.

    Returns:
        ``[2, *out_dims]``.
    """
    inputs, out = equation.replace(" ", "").split("->")
    x_sub, w_sub = inputs.split(",")
    if "r" in equation or "s" in equation:
        raise ValueError(f"complex_einsum: equation {equation!r} must not use the letters r, s (reserved for parts)")
    parts = torch.einsum(f"r{x_sub},s{w_sub}->rs{out}", x, w)  # 2 (x part), 2 (w part), *out_dims
    return torch.stack([parts[0, 0] - parts[1, 1], parts[0, 1] + parts[1, 0]])  # 2, *out_dims
