"""Nyströmformer (Xiong et al. 2021): softmax attention approximated through m landmarks and an iterative
pseudo-inverse, O(N m) time and memory."""

from __future__ import annotations

from typing import Any

import torch
import torch.nn.functional as F
from torch import nn

from attnbench.attention.base import QKVAttention, check_int
from attnbench.registry import register_attention, register_config


def segment_means(x: torch.Tensor, segments: int) -> torch.Tensor:
    """Means of ``segments`` contiguous runs of tokens: ``[B, heads, N, d] → [B, heads, segments, d]``.

    When ``segments`` divides N these are the paper's landmarks (runs of N/m tokens in raster order). Otherwise the
    runs are adaptive average pooling's ``[⌊iN/m⌋, ⌈(i+1)N/m⌉)``, of ⌊N/m⌋ or ⌈N/m⌉ tokens (two neighbours may
    share one token), which needs no padding and no mask (the authors' code requires divisibility; lucidrains'
    pads the sequence and masks the padding).
    """
    B, heads, N, d = x.shape
    if N % segments == 0:
        return x.reshape(B, heads, segments, N // segments, d).mean(dim=-2)
    pooled = F.adaptive_avg_pool1d(x.reshape(B * heads, N, d).transpose(1, 2), segments)  # B·heads, d, segments
    return pooled.transpose(1, 2).reshape(B, heads, segments, d)


def iterative_pinv(a: torch.Tensor, iterations: int) -> torch.Tensor:
    """Approximate Moore–Penrose pseudo-inverse of ``a [..., m, m]`` by the iteration Nyströmformer uses (Razavi et
    al. 2014): ``Z ← ¼ Z (13 I − A Z (15 I − A Z (7 I − A Z)))`` from ``Z₀ = Aᵀ / (‖A‖₁ ‖A‖_∞)``.

    The norms are taken per matrix; the authors' code takes the largest over the whole batch, which would make a
    sample's output depend on the other samples. Each iteration costs four m×m×m matmuls.
    """
    magnitude = a.abs()
    norm_1 = magnitude.sum(dim=-2).amax(dim=-1)  # ..., largest column sum
    norm_inf = magnitude.sum(dim=-1).amax(dim=-1)  # ..., largest row sum
    z = a.transpose(-2, -1) / (norm_1 * norm_inf)[..., None, None]
    identity = torch.eye(a.shape[-1], dtype=a.dtype, device=a.device)
    for _ in range(iterations):
        az = a @ z
        z = 0.25 * z @ (13 * identity - az @ (15 * identity - az @ (7 * identity - az)))
    return z


def nystrom_attention(
    q: torch.Tensor, k: torch.Tensor, v: torch.Tensor, landmarks: int, iterations: int
) -> torch.Tensor:
    """Nyström approximation of ``softmax(q kᵀ/√d) v`` (the paper's Eq. 15): ``[B, heads, N, d]`` each → same.

    With landmarks ``Q̃ = segment_means(q)``, ``K̃ = segment_means(k)`` (``[B, heads, m, d]``)::

        softmax(Q K̃ᵀ/√d) · pinv(softmax(Q̃ K̃ᵀ/√d)) · (softmax(Q̃ Kᵀ/√d) V)

    multiplied right to left (the authors multiply the first two factors first, which costs N·m² instead of m²·d).
    With as many landmarks as tokens and an exact inverse it is softmax attention exactly.
    """
    q = q * q.shape[-1] ** -0.5
    q_landmarks, k_landmarks = segment_means(q, landmarks), segment_means(k, landmarks)  # B, h, m, d
    kernel_1 = (q @ k_landmarks.transpose(-2, -1)).softmax(dim=-1)  # B, h, N, m
    kernel_2 = (q_landmarks @ k_landmarks.transpose(-2, -1)).softmax(dim=-1)  # B, h, m, m
    kernel_3 = (q_landmarks @ k.transpose(-2, -1)).softmax(dim=-1)  # B, h, m, N
    return kernel_1 @ (iterative_pinv(kernel_2, iterations) @ (kernel_3 @ v))  # B, h, N, d


@register_attention("nystrom")
class NystromAttention(QKVAttention):
    """Nyströmformer attention, "Nyströmformer: A Nyström-based Algorithm for Approximating Self-Attention" (Xiong
    et al., AAAI 2021).

    Shapes: ``x [B, H, W, C] → [B, H, W, C]``; the grid is read as a sequence of N = H·W tokens in raster order.

    Softmax attention is approximated through ``m = landmarks`` landmark queries and keys (segment means,
    :func:`segment_means`) and the iterative pseudo-inverse (:func:`iterative_pinv`, ``pinv_iterations`` = 6 as the
    paper): see :func:`nystrom_attention`. When the grid has no more tokens than landmarks, the layer computes
    exact softmax attention instead (through SDPA), as the authors' code does when ``num_landmarks == seq_len``.

    Optionally (``conv_kernel > 0``, default 33 as the paper), a depthwise convolution of V along the token sequence
    is added, one kernel per head shared by its d channels (the authors' ``Conv2d(heads, heads, (k, 1))``); on a
    grid it mixes ±k/2 neighbours in raster order, i.e. mostly along a row.

    Complexity: time O(N m d + m³ · iterations), memory O(N m) per head. The landmark kernels and the
    pseudo-inverse run in float32 even for bf16/fp16 inputs (the iteration diverges in half precision).

    Args:
        dim, heads, dim_head, qkv_bias, dropout: as for ``full`` (dropout applies to the output only).
        landmarks: number of landmarks m (64 in the paper's main experiments).
        pinv_iterations: iterations of the pseudo-inverse.
        conv_kernel: length of the convolution on V (odd), or 0 for none.
    """

    family = "linear"
    benchmark = "nystrom_l64"
    complexity = "time O(N m d + m^3), memory O(N m) for m landmarks"
    constraints = "none (N not a multiple of landmarks: uneven segments)"
    reference = "Xiong et al. 2021 (Nystromformer)"

    def __init__(
        self,
        dim: int,
        heads: int,
        dim_head: int | None = None,
        landmarks: int = 64,
        pinv_iterations: int = 6,
        conv_kernel: int = 33,
        qkv_bias: bool = True,
        dropout: float = 0.0,
    ) -> None:
        super().__init__(dim, heads, dim_head=dim_head, qkv_bias=qkv_bias, dropout=dropout)
        self.landmarks = check_int(self, "landmarks", landmarks, 1)
        self.pinv_iterations = check_int(self, "pinv_iterations", pinv_iterations, 1)
        self.conv_kernel = check_int(self, "conv_kernel", conv_kernel, 0)
        if conv_kernel and conv_kernel % 2 == 0:
            raise ValueError(f"nystrom: conv_kernel={conv_kernel} is invalid; expected 0 or an odd integer")
        self.conv = None
        if conv_kernel:  # one length-k kernel per head, sliding along N over the [N, d] "image" of that head's V
            self.conv = nn.Conv2d(heads, heads, (conv_kernel, 1), padding=(conv_kernel // 2, 0), groups=heads,
                                  bias=False)

    def attend(self, q: torch.Tensor, k: torch.Tensor, v: torch.Tensor) -> torch.Tensor:
        dtype, tokens = q.dtype, q.shape[-2]
        compute = torch.promote_types(dtype, torch.float32)  # half precision upcast, float64 kept (tests)
        q32, k32, v32 = q.to(compute), k.to(compute), v.to(compute)
        if tokens <= self.landmarks:
            out = F.scaled_dot_product_attention(q32, k32, v32)  # B, h, N, d
        else:
            out = nystrom_attention(q32, k32, v32, self.landmarks, self.pinv_iterations)  # B, h, N, d
        if self.conv is not None:
            out = out + self.conv(v).to(compute)  # v as a [B, heads, N, d] image: a length-k conv along N
        return out.to(dtype)

    def attend_flops(self, batch: int, tokens: int) -> dict[str, int]:
        """Nyström (N > m): q K̃ᵀ, Q̃ Kᵀ, (·)V and kernel_1 (·): 2·B·h·N·m·d each; Q̃ K̃ᵀ and pinv (·): 2·B·h·m²·d
        each; the pseudo-inverse: 8·B·h·m³ per iteration. Exact (N ≤ m): SDPA, 4·B·h·N²·d. The convolution on V:
        2·B·h·N·d·k."""
        bh, m, d = batch * self.heads, self.landmarks, self.dim_head
        conv = 2 * bh * tokens * d * self.conv_kernel
        if tokens <= m:
            return {"sdpa": 4 * bh * tokens**2 * d, "matmul": conv}
        return {"matmul": bh * (8 * tokens * m * d + 4 * m * m * d + 8 * m**3 * self.pinv_iterations) + conv}

    def extra_info(self) -> dict[str, Any]:
        return {**super().extra_info(), "landmarks": self.landmarks, "pinv_iterations": self.pinv_iterations,
                "conv_kernel": self.conv_kernel}


register_config("nystrom_l64", "nystrom", landmarks=64)
