"""Galerkin-type attention (Cao 2021): softmax-free, layer-normalised keys and values, O(N d²)."""

from __future__ import annotations

import torch

from attnbench.attention._head_norm import HeadLayerNorm
from attnbench.attention.base import QKVAttention
from attnbench.registry import register_attention


def check_eps(owner: str, eps: object) -> float:
    """``eps`` as a float if it is > 0, else a ValueError naming it (shared with ``fourier_attention``)."""
    if isinstance(eps, bool) or not isinstance(eps, (int, float)) or eps <= 0:
        raise ValueError(f"{owner}: eps={eps!r} is invalid; expected a float > 0")
    return float(eps)


def galerkin_product(q: torch.Tensor, k: torch.Tensor, v: torch.Tensor) -> torch.Tensor:
    """``Q (Kᵀ V) / N`` on ``[B, heads, N, d]``: the d×d product first, so no N×N matrix exists."""
    kv = (k.transpose(-2, -1) @ v) / k.shape[-2]  # B, heads, d, d
    return q @ kv  # B, heads, N, d


@register_attention("galerkin")
class GalerkinAttention(QKVAttention):
    """Galerkin-type attention, "Choose a Transformer: Fourier or Galerkin" (Cao, NeurIPS 2021).

    Shapes: ``x [B, H, W, C] → [B, H, W, C]``.

    Per head, with ``Q, K, V [N, d]`` from the qkv projection: ``out = Q (K̃ᵀ Ṽ) / N`` where ``K̃ = LN(K)``,
    ``Ṽ = LN(V)`` are layer-normalised per head (each head its own affine parameters, :class:`HeadLayerNorm`), as
    the reference code's ``SimpleAttention(attention_type="galerkin")`` with ``norm_type="layer"``. No softmax:
    ``Kᵀ V / N`` is the Petrov–Galerkin projection's inner products approximated by the quadrature over the N
    tokens, which is what makes the layer an operator (the 1/N keeps it independent of the resolution).

    Complexity: time O(N d²), memory O(N d + d²) per head. The products run in float32 for bfloat16 inputs
    (sums over N tokens in bfloat16 lose too much), as ``linear`` does.

    Args:
        dim, heads, dim_head, qkv_bias: as for ``full``. dropout: on the output only.
        eps: the layer norms' epsilon (the reference code's 1e-5).
    """

    family = "operator"
    complexity = "time O(N d^2), memory O(N d)"
    constraints = "none"
    reference = "Cao 2021 (Galerkin Transformer), SimpleAttention galerkin"

    def __init__(
        self,
        dim: int,
        heads: int,
        dim_head: int | None = None,
        qkv_bias: bool = True,
        dropout: float = 0.0,
        eps: float = 1e-5,
    ) -> None:
        super().__init__(dim, heads, dim_head=dim_head, qkv_bias=qkv_bias, dropout=dropout)
        eps = check_eps("galerkin", eps)
        self.norm_k = HeadLayerNorm(heads, self.dim_head, eps)
        self.norm_v = HeadLayerNorm(heads, self.dim_head, eps)

    def attend(self, q: torch.Tensor, k: torch.Tensor, v: torch.Tensor) -> torch.Tensor:
        dtype = q.dtype
        work = torch.promote_types(dtype, torch.float32)
        k, v = self.norm_k(k.to(work)), self.norm_v(v.to(work))  # B, heads, N, d
        return galerkin_product(q.to(work), k, v).to(dtype)

    def attend_flops(self, batch: int, tokens: int) -> dict[str, int]:
        """K̃ᵀṼ and Q(K̃ᵀṼ): 2·B·h·N·d² each (the layer norms and the 1/N are not counted)."""
        return {"matmul": 4 * batch * self.heads * tokens * self.dim_head**2}
