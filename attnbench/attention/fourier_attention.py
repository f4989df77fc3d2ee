"""Fourier-type attention (Cao 2021): softmax-free, layer-normalised queries and keys, quadratic as published."""

from __future__ import annotations

from typing import Any

import torch

from attnbench.attention._head_norm import HeadLayerNorm
from attnbench.attention.base import QKVAttention, check_choice
from attnbench.attention.galerkin import check_eps, galerkin_product
from attnbench.registry import register_attention, register_config


@register_attention("fourier_attention")
class FourierAttention(QKVAttention):
    """Fourier-type attention, "Choose a Transformer: Fourier or Galerkin" (Cao, NeurIPS 2021).

    Shapes: ``x [B, H, W, C] → [B, H, W, C]``.

    Per head: ``out = (Q̃ K̃ᵀ / N) V`` with ``Q̃ = LN(Q)``, ``K̃ = LN(K)`` layer-normalised per head (the reference
    code's ``SimpleAttention(attention_type="fourier")``, ``vanilla_attention`` without softmax). ``(Q̃ K̃ᵀ / N)``
    is the kernel of a Fredholm integral operator sampled at the tokens, with 1/N the quadrature weight.

    Order of the products (``order``):

    - ``"quadratic"`` (default, the paper's): the N×N scores are formed, then applied to V. Time O(N² d), memory
      O(heads · N²) per sample (the scores are kept for backward) — quadratic like ``full_naive``; at 256×256 the
      scores alone are 64 GiB per sample in float32, so large grids run out of memory by design.
    - ``"associative"``: ``Q̃ (K̃ᵀ V) / N``, the same numbers up to rounding (no softmax separates the
      products), in O(N d²) time and O(N d) memory; the named configuration ``fourier_attention_assoc``.

    The products run in float32 for bfloat16 inputs, as ``galerkin`` does.

    Args:
        dim, heads, dim_head, qkv_bias: as for ``full``. dropout: on the output only.
        order: ``"quadratic"`` or ``"associative"``. eps: the layer norms' epsilon (the reference code's 1e-5).
    """

    family = "operator"
    complexity = "time O(N^2 d), memory O(N^2) (order=associative: O(N d^2) / O(N d))"
    constraints = "order=quadratic stores heads*N^2 scores per sample"
    reference = "Cao 2021 (Galerkin Transformer), SimpleAttention fourier"

    def __init__(
        self,
        dim: int,
        heads: int,
        dim_head: int | None = None,
        qkv_bias: bool = True,
        dropout: float = 0.0,
        order: str = "quadratic",
        eps: float = 1e-5,
    ) -> None:
        super().__init__(dim, heads, dim_head=dim_head, qkv_bias=qkv_bias, dropout=dropout)
        self.order = check_choice(self, "order", order, ("quadratic", "associative"))
        eps = check_eps("fourier_attention", eps)
        self.norm_q = HeadLayerNorm(heads, self.dim_head, eps)
        self.norm_k = HeadLayerNorm(heads, self.dim_head, eps)

    def attend(self, q: torch.Tensor, k: torch.Tensor, v: torch.Tensor) -> torch.Tensor:
        dtype = q.dtype
        work = torch.promote_types(dtype, torch.float32)
        q, k, v = self.norm_q(q.to(work)), self.norm_k(k.to(work)), v.to(work)  # B, heads, N, d
        if self.order == "associative":
            return galerkin_product(q, k, v).to(dtype)
        # 1/N applied to Q̃ ([N, d]) rather than to the scores ([N, N]): the same product, N/d times fewer divisions
        scores = (q / q.shape[-2]) @ k.transpose(-2, -1)  # B, heads, N, N
        return (scores @ v).to(dtype)  # B, heads, N, d

    def attend_flops(self, batch: int, tokens: int) -> dict[str, int]:
        """Quadratic: Q̃K̃ᵀ and (·)V, 2·B·h·N²·d each; associative: K̃ᵀV and Q̃(·), 2·B·h·N·d² each."""
        inner = tokens if self.order == "quadratic" else self.dim_head
        return {"matmul": 4 * batch * self.heads * tokens * inner * self.dim_head}

    def extra_info(self) -> dict[str, Any]:
        return {"order": self.order}


register_config("fourier_attention_assoc", "fourier_attention", order="associative")
