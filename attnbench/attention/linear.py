"""Kernelised linear attention (Katharopoulos et al. 2020), O(N) time and memory."""

from __future__ import annotations

from typing import Any

import torch
import torch.nn.functional as F

from attnbench.attention.base import QKVAttention
from attnbench.registry import register_attention


def elu_feature_map(x: torch.Tensor) -> torch.Tensor:
    """φ(x) = elu(x) + 1 > 0, the feature map of "Transformers are RNNs"."""
    return F.elu(x) + 1.0


@register_attention("linear")
class LinearAttention(QKVAttention):
    """Non-causal linear attention, "Transformers are RNNs" (Katharopoulos et al., ICML 2020).

    Shapes: ``x [B, H, W, C] → [B, H, W, C]``.

    Equivalent O(N²) form: ``out_i = Σ_j φ(q_i)·φ(k_j) v_j / Σ_j φ(q_i)·φ(k_j)`` with ``φ = elu + 1``. It is
    computed right-to-left as ``φ(Q) (φ(K)ᵀ V) / (φ(Q) Σ_j φ(k_j))``, so no N×N matrix exists.

    Complexity: time O(N d²), memory O(N d + d²) per head. The reductions run in float32 even for bf16 inputs
    (sums over N tokens lose too much precision in bf16).

    Args:
        dim, heads, dim_head, qkv_bias, dropout: as for ``full`` (dropout applies to the output only).
        eps: added to the normaliser.
    """

    family = "linear"
    complexity = "time O(N d^2), memory O(N d)"
    constraints = "none"
    reference = "Katharopoulos et al. 2020, phi = elu + 1"

    def __init__(
        self,
        dim: int,
        heads: int,
        dim_head: int | None = None,
        qkv_bias: bool = True,
        dropout: float = 0.0,
        eps: float = 1e-6,
    ) -> None:
        super().__init__(dim, heads, dim_head=dim_head, qkv_bias=qkv_bias, dropout=dropout)
        if not isinstance(eps, (int, float)) or isinstance(eps, bool) or eps <= 0:
            raise ValueError(f"linear: eps={eps!r} is invalid; expected a float > 0")
        self.eps = float(eps)

    def attend(self, q: torch.Tensor, k: torch.Tensor, v: torch.Tensor) -> torch.Tensor:
        dtype = q.dtype
        q, k, v = elu_feature_map(q.float()), elu_feature_map(k.float()), v.float()  # B, h, N, d
        kv = k.transpose(-2, -1) @ v  # B, h, d, d
        normaliser = q @ k.sum(dim=-2, keepdim=True).transpose(-2, -1)  # B, h, N, 1
        return ((q @ kv) / (normaliser + self.eps)).to(dtype)

    def attend_flops(self, batch: int, tokens: int) -> dict[str, int]:
        """φ(K)ᵀV and φ(Q)(KV): 2·B·h·N·d² each; the normaliser φ(Q)·Σφ(k): 2·B·h·N·d."""
        d = self.dim_head
        return {"matmul": batch * self.heads * tokens * (4 * d * d + 2 * d)}

    def extra_info(self) -> dict[str, Any]:
        # elu is computed with torch.expm1: rows name that kernel, so a run whose expm1 canary is off (an
        # environment that runs it slowly, seen on the development VM) flags this mechanism's times.
        return {**super().extra_info(), "canary": "expm1"}
