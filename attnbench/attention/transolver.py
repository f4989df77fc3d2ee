"""Transolver physics attention (Wu et al., ICML 2024): attention among M learned slices of the grid."""

from __future__ import annotations

from typing import Any

import torch
import torch.nn.functional as F
from torch import nn

from attnbench.attention.base import GridAttention, check_dropout, check_heads, check_int
from attnbench.registry import register_attention, register_config


@register_attention("transolver")
class PhysicsAttention(GridAttention):
    """Physics-attention of "Transolver: A Fast Transformer Solver for PDEs on General Geometries" (Wu et al. 2024),
    the structured-mesh variant of the reference code (thuml/Transolver, ``Physics_Attention_Structured_Mesh_2D``).

    Shapes: ``x [B, H, W, C] → [B, H, W, C]``.

    Algorithm, per head (``d = dim_head``, ``M = slices``)::

        f = conv_fx(x), g = conv_x(x)                        # [N, d] each (k×k convolutions, C → heads·d)
        w = softmax(slice(g) / clamp(τ, 0.1, 5))             # [N, M]: each token's weights over the slices
        z = (wᵀ f) / (Σ_n w + 1e-5)                          # [M, d]: slice tokens, weighted means of the tokens
        z' = softmax(q kᵀ / √d) v, q, k, v = z Wq, z Wk, z Wv # [M, d]: full attention among the slice tokens
        out = w z'                                           # [N, d]: deslice, each token mixes its slices
        y = Linear(concat_heads(out))                        # [N, C]

    ``slice`` is one linear map ``d → M`` shared by the heads (orthogonally initialised), ``τ`` a learned
    temperature per head (initially 0.5), ``Wq, Wk, Wv`` bias-free ``d × d`` maps shared by the heads, as in the
    reference. Every token reaches every slice, so one layer is global. Nothing depends on the grid size except the
    convolutions' zero padding: one instance runs at any resolution. ``kernel=1`` gives the point-wise projections
    of the reference's unstructured-mesh variant.

    Complexity: time O(N (C·heads·d·k² + heads·M·d) + heads·M²·d), memory O(N · heads · (M + d)).

    Args:
        dim: channels C. heads: heads. dim_head: per-head width (default ``dim // heads``).
        slices: M, the number of slice tokens per head (the reference code's default 64; the benchmark setting 32).
        kernel: side of the two input convolutions (odd; the structured-mesh code's 3).
        dropout: on the slice-attention weights and on the output.
    """

    family = "operator"
    benchmark = "transolver_s32"
    complexity = "time O(N M C + N C^2 k^2 + M^2 C), memory O(N M heads)"
    constraints = "none (convolution kernel odd)"
    reference = "Wu et al. 2024 (Transolver), Physics_Attention_Structured_Mesh_2D"

    def __init__(
        self,
        dim: int,
        heads: int,
        dim_head: int | None = None,
        slices: int = 64,
        kernel: int = 3,
        dropout: float = 0.0,
    ) -> None:
        super().__init__()
        self.dim_head = check_heads(self, dim, heads, dim_head)
        self.dim, self.heads = dim, heads
        self.slices = check_int(self, "slices", slices, 1)
        self.kernel = check_int(self, "kernel", kernel, 1)
        if self.kernel % 2 == 0:  # an even kernel with padding k // 2 would grow the grid by one row and column
            raise ValueError(f"transolver: kernel={kernel} is invalid; expected an odd integer >= 1")
        self.dropout = check_dropout(self, "dropout", dropout)
        inner = heads * self.dim_head
        self.in_project_x = nn.Conv2d(dim, inner, kernel, padding=kernel // 2)  # features that choose the slices
        self.in_project_fx = nn.Conv2d(dim, inner, kernel, padding=kernel // 2)  # features that are sliced
        self.in_project_slice = nn.Linear(self.dim_head, slices)
        nn.init.orthogonal_(self.in_project_slice.weight)
        self.temperature = nn.Parameter(torch.full((1, heads, 1, 1), 0.5))
        self.to_q = nn.Linear(self.dim_head, self.dim_head, bias=False)
        self.to_k = nn.Linear(self.dim_head, self.dim_head, bias=False)
        self.to_v = nn.Linear(self.dim_head, self.dim_head, bias=False)
        self.to_out = nn.Linear(inner, dim)
        self.out_drop = nn.Dropout(self.dropout)

    def _heads(self, features: torch.Tensor) -> torch.Tensor:
        """``[B, heads·d, H, W] → [B, heads, N, d]`` (channel ``h·d + j`` is head h's j-th, as the reference)."""
        B = features.shape[0]
        return features.reshape(B, self.heads, self.dim_head, -1).transpose(-2, -1)  # B, heads, N, d

    def slice_weights(self, x_mid: torch.Tensor) -> torch.Tensor:
        """Each token's weights over the slices: ``[B, heads, N, d] → [B, heads, N, M]``, rows summing to 1."""
        logits = self.in_project_slice(x_mid)  # B, heads, N, M
        return (logits / self.temperature.clamp(0.1, 5.0)).softmax(dim=-1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        B, H, W, C = self._check_input(x)
        grid = x.permute(0, 3, 1, 2)  # B, C, H, W (the convolutions are channels-first)
        fx = self._heads(self.in_project_fx(grid))  # B, heads, N, d
        weights = self.slice_weights(self._heads(self.in_project_x(grid)))  # B, heads, N, M
        # Slice: weighted means of the tokens; the 1e-5 keeps an (almost) empty slice finite, as the reference
        norm = weights.sum(dim=2)[..., None]  # B, heads, M, 1
        tokens = (weights.transpose(-2, -1) @ fx) / (norm + 1e-5)  # B, heads, M, d
        q, k, v = self.to_q(tokens), self.to_k(tokens), self.to_v(tokens)  # B, heads, M, d each
        mixed = F.scaled_dot_product_attention(q, k, v, dropout_p=self.dropout if self.training else 0.0)
        out = weights @ mixed  # B, heads, N, d: deslice
        out = out.transpose(1, 2).reshape(B, H, W, self.heads * self.dim_head)  # B, H, W, heads·d
        return self.out_drop(self.to_out(out))

    def flop_parts(self, batch: int, height: int, width: int) -> dict[str, int]:
        """Two k×k convolutions C → heads·d and the output projection; per head the slice logits (N·d·M), the
        slice tokens (M·N·d), the q, k, v maps (3·M·d²) and the deslice (N·M·d), all 2 FLOPs per multiply-add;
        the attention among slice tokens, 4·B·h·M²·d, is SDPA (its backward recomputes)."""
        n, h, d, m = batch * height * width, self.heads, self.dim_head, self.slices
        inner = h * d
        convs = 2 * 2 * n * inner * self.dim * self.kernel**2
        per_head = 2 * n * d * m + 2 * n * d * m + 2 * n * m * d + 3 * 2 * batch * m * d * d
        return {"matmul": convs + h * per_head + 2 * n * inner * self.dim,
                "sdpa": 4 * batch * h * m * m * d}

    def extra_info(self) -> dict[str, Any]:
        return {"slices": self.slices, "kernel": self.kernel}


# The benchmark setting: 32 slices.
register_config("transolver_s32", "transolver", slices=32)
