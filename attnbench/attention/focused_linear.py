"""Focused linear attention (Han et al. 2023, FLatten Transformer): a sharpening kernel plus a depthwise
convolution on V, O(N) time and memory."""

from __future__ import annotations

from typing import Any

import torch
import torch.nn.functional as F
from torch import nn

from attnbench.attention.base import QKVAttention, check_int
from attnbench.registry import register_attention


def focusing_map(x: torch.Tensor, scale: torch.Tensor, power: float) -> torch.Tensor:
    """The focusing function ``φ_p(x) = f_p(ReLU(x))``, ``f_p(y) = ‖y‖ / ‖y^p‖ · y^p`` (element-wise power).

    ``f_p`` keeps each feature vector's norm but raises its entries to the power ``p``, which pulls it towards its
    largest coordinates: similar queries and keys stay similar, dissimilar ones become more so (a sharper, more
    "focused" attention than ReLU's). As in the authors' code, the ReLU output gets ``+1e-6`` (no all-zero vector),
    is divided by a learnable per-channel ``scale`` before the power, and the norms are taken over all heads'
    channels together.

    Args:
        x: ``[B, N, heads·d]`` queries or keys (heads not yet split). scale: ``[heads·d]`` positive.
        power: the focusing factor ``p`` (3 in the paper).

    Returns:
        ``[B, N, heads·d]`` non-negative features.
    """
    x = (F.relu(x) + 1e-6) / scale
    norm = x.norm(dim=-1, keepdim=True)
    x = x**power
    return x / x.norm(dim=-1, keepdim=True) * norm


@register_attention("focused_linear")
class FocusedLinearAttention(QKVAttention):
    """Focused linear attention, "FLatten Transformer: Vision Transformer using Focused Linear Attention" (Han et
    al., ICCV 2023).

    Shapes: ``x [B, H, W, C] → [B, H, W, C]``.

    Equivalent O(N²) form, per head: ``out_i = Σ_j φ(q_i)·φ(k_j) v_j / (Σ_j φ(q_i)·φ(k_j) + N·eps) + DWC(V)_i``
    with the focusing map φ (:func:`focusing_map`) and ``DWC`` a depthwise ``kernel × kernel`` convolution of V on
    the grid, whose weights all heads share (the paper's rank restoration: the linear term has rank ≤ d, the
    convolution adds a full-rank local term). It is computed right-to-left with means over tokens, as the authors'
    code does: ``φ(Q) (φ(K)ᵀ V / N) / (φ(Q) · mean_j φ(k_j) + eps)``, so no N×N matrix exists and the float32 sums
    stay O(1) at large N.

    Left out: the authors' learnable positional encoding added to K, whose size fixes the number of tokens (it
    would tie the layer to one grid), and their PVT spatial reduction of K and V (``sr_ratio``; 1 here).

    Complexity: time O(N d² + N d k²) per head, memory O(N d). The kernel and reductions run in float32 even for
    bf16/fp16 inputs.

    Args:
        dim, heads, dim_head, qkv_bias, dropout: as for ``full`` (dropout applies to the output only).
        focusing_factor: the power p (3, the paper's default).
        kernel: side of the depthwise convolution on V (odd; 5, the paper's default).
        eps: added to the normaliser.
    """

    family = "linear"
    complexity = "time O(N d^2 + N d k^2), memory O(N d)"
    constraints = "none"
    reference = "Han et al. 2023 (FLatten Transformer, focused linear attention)"

    def __init__(
        self,
        dim: int,
        heads: int,
        dim_head: int | None = None,
        focusing_factor: float = 3,
        kernel: int = 5,
        qkv_bias: bool = True,
        dropout: float = 0.0,
        eps: float = 1e-6,
    ) -> None:
        super().__init__(dim, heads, dim_head=dim_head, qkv_bias=qkv_bias, dropout=dropout)
        if isinstance(focusing_factor, bool) or not isinstance(focusing_factor, (int, float)) or focusing_factor <= 0:
            raise ValueError(f"focused_linear: focusing_factor={focusing_factor!r} is invalid; expected a number > 0")
        if check_int(self, "kernel", kernel, 1) % 2 == 0:
            raise ValueError(f"focused_linear: kernel={kernel} is invalid; expected an odd integer (same-size output)")
        if isinstance(eps, bool) or not isinstance(eps, (int, float)) or eps <= 0:
            raise ValueError(f"focused_linear: eps={eps!r} is invalid; expected a float > 0")
        self.focusing_factor, self.kernel, self.eps = focusing_factor, kernel, float(eps)
        inner = heads * self.dim_head
        # softplus(0) = ln 2 at initialisation, as the authors' zero-initialised parameter gives
        self.scale = nn.Parameter(torch.zeros(inner))
        self.dwc = nn.Conv2d(self.dim_head, self.dim_head, kernel, padding=kernel // 2, groups=self.dim_head)

    def attend_flops(self, batch: int, tokens: int) -> dict[str, int]:
        """φ(K)ᵀV and φ(Q)(KV): 2·B·h·N·d² each; the normaliser φ(Q)·mean φ(k): 2·B·h·N·d; the depthwise conv
        on V: 2·B·h·N·d·k² (its bias is not counted)."""
        d = self.dim_head
        return {"matmul": batch * self.heads * tokens * (4 * d * d + 2 * d + 2 * d * self.kernel**2)}

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        B, H, W, C = self._check_input(x)
        N, heads, d = H * W, self.heads, self.dim_head
        q, k, v = self.qkv(x.reshape(B, N, C)).chunk(3, dim=-1)  # each B, N, heads·d
        compute = torch.promote_types(x.dtype, torch.float32)  # half precision upcast (p-th powers, sums over N)
        scale = F.softplus(self.scale.to(compute))
        q = focusing_map(q.to(compute), scale, self.focusing_factor)  # B, N, heads·d
        k = focusing_map(k.to(compute), scale, self.focusing_factor)
        q, k, v = (t.reshape(B, N, heads, d).transpose(1, 2) for t in (q, k, v))  # each B, heads, N, d

        kv = k.transpose(-2, -1) @ (v.to(compute) / N)  # B, heads, d, d
        normaliser = q @ k.mean(dim=-2, keepdim=True).transpose(-2, -1) + self.eps  # B, heads, N, 1
        out = (q @ kv) / normaliser  # B, heads, N, d

        # Rank restoration: one depthwise conv of V per head, on the grid, weights shared by the heads.
        v_grid = v.transpose(-2, -1).reshape(B * heads, d, H, W)  # B·heads, d, H, W
        local = self.dwc(v_grid).reshape(B, heads, d, N).transpose(-2, -1)  # B, heads, N, d
        out = (out + local.to(compute)).to(x.dtype)

        out = out.transpose(1, 2).reshape(B, H, W, heads * d)
        return self.proj_drop(self.proj(out))

    def extra_info(self) -> dict[str, Any]:
        return {**super().extra_info(), "focusing_factor": self.focusing_factor, "kernel": self.kernel}
