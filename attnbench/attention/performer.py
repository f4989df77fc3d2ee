"""Performer FAVOR+ (Choromanski et al. 2021): softmax attention estimated with positive orthogonal random
features, O(N) time and memory."""

from __future__ import annotations

import math
from typing import Any, ClassVar

import torch

from attnbench.attention.base import QKVAttention, check_int
from attnbench.registry import register_attention, register_config


def orthogonal_gaussian_projection(features: int, dim_head: int, generator: torch.Generator) -> torch.Tensor:
    """The random projection ``[features, dim_head]`` of FAVOR+ (rows ω_1 … ω_m).

    Rows come in blocks of ``dim_head`` exactly orthogonal directions (a Haar-uniform orthogonal matrix: QR of a
    Gaussian matrix, with the signs of R's diagonal moved into Q); each row is then rescaled to the norm of an
    independent Gaussian vector (a χ_d length), so every ω_i is marginally N(0, I_d) and the estimator stays
    unbiased while the orthogonality lowers its variance (the paper's "ORF" with ``scaling = 0``). Drawn in float64.
    """
    blocks = []
    for _ in range(math.ceil(features / dim_head)):
        q, r = torch.linalg.qr(torch.randn(dim_head, dim_head, generator=generator, dtype=torch.float64))
        blocks.append((q * torch.sign(torch.diagonal(r))).T)  # rows: an orthonormal basis
    directions = torch.cat(blocks)[:features]  # m, d
    lengths = torch.randn(features, dim_head, generator=generator, dtype=torch.float64).norm(dim=1, keepdim=True)
    return (directions * lengths).float()


def positive_random_features(x: torch.Tensor, projection: torch.Tensor, shift_dims: tuple[int, ...]) -> torch.Tensor:
    """FAVOR+'s positive features ``φ(x) ∝ exp(ω·x − |x|²/2)``, so that ``E_ω[φ(q)·φ(k)] ∝ exp(q·k)``.

    Args:
        x: ``[B, heads, N, d]`` queries or keys, already scaled by ``d^{-1/4}`` (so ``q·k`` is the softmax logit).
        projection: ``[m, d]`` random rows ω (:func:`orthogonal_gaussian_projection`).
        shift_dims: the dimensions over which the largest exponent is subtracted before ``exp`` to keep it in
            range: ``(-1,)`` for queries (one constant per query, which cancels in that query's normalisation) and
            ``(-2, -1)`` for keys (one constant per sample and head, which cancels between numerator and
            denominator). The shift is a constant of the estimator, hence detached. The paper's ``1/√m`` factor also
            cancels and is left out.

    Returns:
        ``[B, heads, N, m]`` positive features.
    """
    exponent = x @ projection.T - x.square().sum(-1, keepdim=True) / 2  # B, heads, N, m
    return torch.exp(exponent - exponent.amax(dim=shift_dims, keepdim=True).detach())


@register_attention("performer")
class PerformerAttention(QKVAttention):
    """Non-causal Performer attention with FAVOR+ (Choromanski et al., "Rethinking Attention with Performers",
    ICLR 2021).

    Shapes: ``x [B, H, W, C] → [B, H, W, C]``; all ``N = H·W`` tokens interact.

    The softmax kernel is estimated with ``m`` positive orthogonal random features (:func:`positive_random_features`):
    ``out_i = Σ_j φ(q_i)·φ(k_j) v_j / Σ_j φ(q_i)·φ(k_j)`` → ``softmax(q kᵀ/√d) v`` as ``m → ∞``, computed
    right-to-left as ``φ(Q) (φ(K)ᵀ V) / (φ(Q) Σ_j φ(k_j))`` so no N×N matrix exists.

    The random projection is a **fixed draw**: a buffer sampled at construction from a generator seeded with
    ``seed`` (independent of torch's global generator), so timings and outputs are deterministic. The paper's
    periodic redrawing during training is available as :meth:`redraw` and never called automatically. One draw is
    shared by all heads, as in the authors' code.

    Complexity: time O(N m d), memory O(N m + m d) per head. The features and reductions run in float32 even for
    bf16/fp16 inputs (``exp`` of the logits and sums over N tokens).

    Args:
        dim, heads, dim_head, qkv_bias, dropout: as for ``full`` (dropout applies to the output only).
        features: number of random features ``m``; default ``⌊d · ln d⌋`` (the paper's theory and the
            ``performer-pytorch`` default); the named configuration ``performer_f256`` uses 256.
        seed: seed of the projection's draw.
        eps: added to the normaliser.
    """

    family = "linear"
    benchmark = "performer_f256"
    complexity = "time O(N m d), memory O(N m)"
    constraints = "none"
    reference = "Choromanski et al. 2021 (FAVOR+, positive orthogonal random features)"
    # The two projections onto the fixed random rows need only the input's gradient (the projection is a buffer):
    # their backward is one matmul per forward matmul, not two.
    BACKWARD_RATIO: ClassVar[dict[str, float]] = {**QKVAttention.BACKWARD_RATIO, "matmul_fixed": 1.0}
    projection: torch.Tensor  # [features, dim_head], a buffer

    def __init__(
        self,
        dim: int,
        heads: int,
        dim_head: int | None = None,
        features: int | None = None,
        seed: int = 0,
        qkv_bias: bool = True,
        dropout: float = 0.0,
        eps: float = 1e-6,
    ) -> None:
        super().__init__(dim, heads, dim_head=dim_head, qkv_bias=qkv_bias, dropout=dropout)
        d = self.dim_head
        if features is None:
            features = max(1, int(d * math.log(d)))
        self.features = check_int(self, "features", features, 1)
        self.seed = check_int(self, "seed", seed, 0)
        if isinstance(eps, bool) or not isinstance(eps, (int, float)) or eps <= 0:
            raise ValueError(f"performer: eps={eps!r} is invalid; expected a float > 0")
        self.eps = float(eps)
        generator = torch.Generator().manual_seed(self.seed)
        self.register_buffer("projection", orthogonal_gaussian_projection(self.features, d, generator))  # m, d

    @torch.no_grad()
    def redraw(self, seed: int) -> None:
        """Replace the random projection by a new draw from ``seed`` (the paper redraws during training)."""
        self.seed = check_int(self, "seed", seed, 0)
        fresh = orthogonal_gaussian_projection(self.features, self.dim_head, torch.Generator().manual_seed(seed))
        self.projection.copy_(fresh)

    def attend(self, q: torch.Tensor, k: torch.Tensor, v: torch.Tensor) -> torch.Tensor:
        dtype = q.dtype
        compute = torch.promote_types(dtype, torch.float32)  # half precision upcast, float64 kept (tests)
        q, k, v = q.to(compute), k.to(compute), v.to(compute)
        scale = self.dim_head ** -0.25  # on q and on k: q·k / √d is the softmax logit
        projection = self.projection.to(compute)
        q_feat = positive_random_features(q * scale, projection, shift_dims=(-1,))  # B, h, N, m
        k_feat = positive_random_features(k * scale, projection, shift_dims=(-2, -1))  # B, h, N, m
        kv = k_feat.transpose(-2, -1) @ v  # B, h, m, d
        normaliser = q_feat @ k_feat.sum(dim=-2, keepdim=True).transpose(-2, -1)  # B, h, N, 1
        return ((q_feat @ kv) / (normaliser + self.eps)).to(dtype)

    def attend_flops(self, batch: int, tokens: int) -> dict[str, int]:
        """Projections q Ωᵀ and k Ωᵀ: 2·B·h·N·d·m each (``matmul_fixed``); φ(K)ᵀV and φ(Q)(KV): 2·B·h·N·m·d
        each; the normaliser φ(Q)·Σφ(k): 2·B·h·N·m."""
        bhn, m, d = batch * self.heads * tokens, self.features, self.dim_head
        return {"matmul_fixed": 4 * bhn * d * m, "matmul": bhn * (4 * m * d + 2 * m)}

    def bytes_moved(self, batch: int, height: int, width: int, dim: int, mode: str = "fwd",
                    element_size: int = 4) -> int:
        """The default lower bound plus the projection buffer, read by the forward and again by the backward."""
        reads = 1 if mode == "fwd" else 2
        projection = reads * self.projection.numel() * element_size
        return super().bytes_moved(batch, height, width, dim, mode, element_size) + projection

    def extra_info(self) -> dict[str, Any]:
        # exp over N·m features per head dominates the elementwise work: rows name that kernel's canary.
        return {**super().extra_info(), "features": self.features, "seed": self.seed, "canary": "exp"}


register_config("performer_f256", "performer", features=256)
