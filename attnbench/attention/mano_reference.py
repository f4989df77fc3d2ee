"""A plain port of the MANO authors' multipole attention layer: the correctness oracle for ``mano``.

Upstream: github.com/AlexColagrande/MANO, file ``models/MANO.py``, classes ``AttentionBlock``, ``LocalAttention2D``
and ``Multipole_Attention2D`` (Colagrande et al., arXiv 2507.02748). The upstream repository could not be fetched
when this port was written, so no upstream commit can be named; the port follows several third-party copies of that
file that agree on the logic (the layer is re-posted as a "plug-and-play" module; one copy keeps the original
``levels = int(math.log(image_size, sampling_rate))``). What it keeps: ``F.unfold``/``F.fold`` windows, a LayerNorm
applied to every window copy, a second LayerNorm inside a lucidrains-style ``AttentionBlock``, explicit softmax, and
a number of levels fixed at construction from ``image_size``. It is deliberately not optimised.
"""

from __future__ import annotations

from typing import Any

import torch
import torch.nn.functional as F
from torch import nn

from attnbench.attention.base import GridAttention, check_choice, check_dropout, check_heads, check_int, log_floor
from attnbench.registry import register_attention, register_config


class ReferenceAttentionBlock(nn.Module):
    """``AttentionBlock`` of the reference: LayerNorm → bias-free qkv → softmax(q kᵀ/√d) v → Linear + Dropout.

    Shapes: ``[b, n, C] → [b, n, C]``. ``to_out`` is the identity only when ``heads == 1 and dim_head == C``.
    """

    def __init__(self, dim: int, heads: int, dim_head: int, dropout: float) -> None:
        super().__init__()
        inner = heads * dim_head
        self.heads, self.scale = heads, dim_head**-0.5
        self.norm = nn.LayerNorm(dim)
        self.to_qkv = nn.Linear(dim, 3 * inner, bias=False)
        self.dropout = nn.Dropout(dropout)
        project_out = not (heads == 1 and dim_head == dim)
        self.to_out = nn.Sequential(nn.Linear(inner, dim), nn.Dropout(dropout)) if project_out else nn.Identity()

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        b, n, _ = x.shape
        x = self.norm(x)
        q, k, v = (t.reshape(b, n, self.heads, -1).transpose(1, 2) for t in self.to_qkv(x).chunk(3, dim=-1))
        attn = self.dropout((q @ k.transpose(-2, -1) * self.scale).softmax(dim=-1))  # b, h, n, n
        out = (attn @ v).transpose(1, 2).reshape(b, n, -1)  # b, n, h*d
        return self.to_out(out)


class ReferenceLocalAttention2D(nn.Module):
    """``LocalAttention2D`` of the reference: unfold k×k windows (stride s), LayerNorm, attention, fold, average.

    Shapes: ``[B, H, W, C] → [B, H, W, C]``. Every window holds its own copy of its tokens
    (``k²/s²``-fold duplication); overlapping outputs are summed by ``fold`` and divided by the coverage count.
    """

    def __init__(self, kernel_size: int, stride: int, dim: int, heads: int, dim_head: int, dropout: float) -> None:
        super().__init__()
        self.kernel_size, self.stride = kernel_size, stride
        self.norm = nn.LayerNorm(dim)
        self.attn = ReferenceAttentionBlock(dim, heads, dim_head, dropout)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        B, H, W, C = x.shape
        k, s = self.kernel_size, self.stride
        patches = F.unfold(x.permute(0, 3, 1, 2), kernel_size=k, stride=s)  # B, C*k*k, L
        L = patches.shape[-1]
        patches = patches.view(B, C, k * k, L).permute(0, 3, 2, 1).reshape(B * L, k * k, C)
        out = self.attn(self.norm(patches))  # B*L, k*k, C
        out = out.view(B, L, k * k, C).permute(0, 3, 2, 1).reshape(B, C * k * k, L)
        summed = F.fold(out, output_size=(H, W), kernel_size=k, stride=s)  # B, C, H, W
        ones = torch.ones(1, 1, H, W, device=x.device, dtype=x.dtype)
        count = F.fold(F.unfold(ones, kernel_size=k, stride=s), output_size=(H, W), kernel_size=k, stride=s)
        return (summed / count).permute(0, 2, 3, 1)


@register_attention("mano_reference")
class MultipoleAttentionReference(GridAttention):
    """Multipole attention as in the authors' code (Colagrande et al., arXiv 2507.02748), unoptimised.

    Shapes: ``x [B, n, n, C] → [B, n, n, C]`` with ``n = image_size`` only (levels are fixed at construction).

    V-cycle: ``o_0 = W(x)``; ``x_l = D(x_{l-1})``, ``o_l = W(x_l)`` for ``l < L = floor(log_r n)``; then from the
    coarsest level, ``res = o_l + res_weight_i · U(res)`` with ``res_weight_i = 1/(i+1)`` (compounding). ``W`` is
    one shared windowed attention, ``D`` one shared bias-free ``Conv2d(k=r, stride=r)`` (or ``AvgPool2d``), ``U``
    one shared bias-free ``ConvTranspose2d(k=r, stride=r)`` (or nearest up-sampling).

    Complexity: time O(N k⁴ d / s²), memory O(N k² / s²) — the unfolded copies are stored.

    Args:
        image_size: grid side n the layer is built for. window: k. stride: s (<= k). rate: r (>= 2).
        down: ``conv`` or ``pool``. up: ``conv`` or ``nearest``. dim_head: per-head width (default dim // heads).
        dropout: attention and output dropout.
    """

    family = "multipole"
    benchmark = "mano_reference_k2s1r2"
    complexity = "time O(N k^4 d / s^2), memory O(N k^2 / s^2)"
    constraints = "square grid equal to image_size; every level admissible"
    reference = "Colagrande et al. 2025 (MANO), authors' Multipole_Attention2D"

    def __init__(
        self,
        dim: int,
        heads: int,
        image_size: int = 64,
        window: int = 2,
        stride: int = 1,
        rate: int = 2,
        down: str = "conv",
        up: str = "conv",
        dim_head: int | None = None,
        dropout: float = 0.0,
    ) -> None:
        super().__init__()
        dim_head = check_heads(self, dim, heads, dim_head)
        self.image_size = check_int(self, "image_size", image_size, 1)
        k, s = check_int(self, "window", window, 1), check_int(self, "stride", stride, 1)
        r = check_int(self, "rate", rate, 2)
        if s > k:
            raise ValueError(f"mano_reference: stride={s} is invalid; expected stride <= window={k}")
        check_choice(self, "down", down, ("conv", "pool"))
        check_choice(self, "up", up, ("conv", "nearest"))
        p = check_dropout(self, "dropout", dropout)
        self.window, self.stride, self.rate = k, s, r
        self.levels = max(1, log_floor(self.image_size, r))  # int(math.log(image_size, rate)) in the original
        sides = [self.image_size // r**level for level in range(self.levels)]
        for level, side in enumerate(sides):
            if side * r**level != self.image_size or side < k or (side - k) % s:
                raise ValueError(
                    f"mano_reference: image_size={image_size} with rate={r} gives level sides "
                    f"{', '.join(map(str, sides))}; level {level} (side {side}) is not admissible for window={k}, "
                    f"stride={s}: expected image_size divisible by rate**(levels-1), side >= window and "
                    f"(side - window) divisible by stride at every level"
                )
        self.attention = ReferenceLocalAttention2D(k, s, dim, heads, dim_head, p)
        self.down = nn.Conv2d(dim, dim, r, stride=r, bias=False) if down == "conv" else nn.AvgPool2d(r, stride=r)
        self.up = (
            nn.ConvTranspose2d(dim, dim, r, stride=r, bias=False)
            if up == "conv"
            else nn.Upsample(scale_factor=r, mode="nearest")
        )

    @classmethod
    def grid_kwargs(cls, height: int, width: int) -> dict[str, Any]:
        return {"image_size": height}

    def flop_parts(self, batch: int, height: int, width: int) -> dict[str, int]:
        """As ``mano``, but the projections run on every window copy (``k²`` tokens per window position) and the
        attention is written out as matmuls: per level 2·B·P·k²·C·(3·inner + inner) + 4·B·heads·P·k⁴·d."""
        k, s, r = self.window, self.stride, self.rate
        block = self.attention.attn
        heads, inner, dim = block.heads, block.to_qkv.out_features // 3, block.to_qkv.in_features
        out_proj = 0 if isinstance(block.to_out, nn.Identity) else 1
        sides = [self.image_size // r**level for level in range(self.levels)]
        matmul = 0
        for side in sides:
            copies = batch * ((side - k) // s + 1) ** 2 * k * k  # tokens of all window copies
            matmul += 2 * copies * dim * 3 * inner + out_proj * 2 * copies * inner * dim
            matmul += 4 * copies * heads * k * k * (inner // heads)
        coarse = sum(batch * side * side for side in sides[1:])
        resampling = isinstance(self.down, nn.Conv2d) + isinstance(self.up, nn.ConvTranspose2d)
        matmul += resampling * 2 * dim * dim * r * r * coarse
        return {"matmul": matmul}

    def receptive_field(self, height: int, width: int) -> tuple[int, int]:
        """The coarsest level's window, ``k · r^(levels-1)`` tokens per side (levels fixed at construction)."""
        reach = self.window * self.rate ** (self.levels - 1)
        return min(reach, height), min(reach, width)

    def not_supported_reasons(self, height, width, device="cpu", dtype=torch.float32, backward=False) -> list[str]:
        reasons = super().not_supported_reasons(height, width, device, dtype, backward)
        if (height, width) != (self.image_size, self.image_size):
            reasons.append(f"built for image_size={self.image_size}; grid {height}x{width} needs a new instance")
        return reasons

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        B, H, W, C = self._check_input(x)
        if (H, W) != (self.image_size, self.image_size):
            raise ValueError(f"mano_reference: built for image_size={self.image_size}, got grid {H}x{W}")
        maps = [self.attention(x)]
        for _ in range(1, self.levels):
            x = self.down(x.permute(0, 3, 1, 2)).permute(0, 2, 3, 1)
            maps.append(self.attention(x))
        res = maps.pop()
        for i, level_out in enumerate(reversed(maps)):
            res = level_out + (1 / (i + 1)) * self.up(res.permute(0, 3, 1, 2)).permute(0, 2, 3, 1)
        return res

    def extra_info(self) -> dict[str, Any]:
        return {"levels": self.levels}


register_config("mano_reference_k2s1r2", "mano_reference", window=2, stride=1, rate=2)
