"""Neighbourhood attention (NATTEN semantics) in plain PyTorch: a reference with a backward pass on every device."""

from __future__ import annotations

from typing import Any

import torch
import torch.nn.functional as F

from attnbench.attention.base import QKVAttention, check_int
from attnbench.registry import register_attention, register_config


def neighborhood_start(positions: torch.Tensor, size: int, kernel: int) -> torch.Tensor:
    """First key position of the neighbourhood of each query position along a side of ``size`` (NATTEN's rule).

    ``clamp(i - kernel // 2, 0, size - kernel)``: the window is centred on the query where it fits and shifted
    inwards at the borders, so every query sees exactly ``kernel`` positions per side (NATTEN's window for stride 1
    and dilation 1, odd or even kernel).
    """
    return (positions - kernel // 2).clamp(0, size - kernel)


def tile_plan(size: int, kernel: int, tile: int, device: Any = None) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """How one side of the grid is cut into query tiles, and the keys each tile needs.

    Returns ``queries [M, t]`` (positions of each tile's queries; ``t = min(tile, size)``, the last tile shifted
    back to end at the border, so it may repeat queries of the one before), ``keys [M, halo]`` (the tile's halo:
    ``halo = min(t + kernel - 1, size)`` consecutive positions, shifted inwards at the borders, which hold every
    query's neighbourhood) and ``allowed [M, t, halo]`` (key in the query's neighbourhood).
    """
    t = min(tile, size)
    halo = min(t + kernel - 1, size)
    starts = torch.arange(0, size, t, device=device).clamp(max=size - t)  # M
    queries = starts[:, None] + torch.arange(t, device=device)  # M, t
    keys = (starts - kernel // 2).clamp(0, size - halo)[:, None] + torch.arange(halo, device=device)  # M, halo
    first = neighborhood_start(queries, size, kernel)[..., None]  # M, t, 1
    allowed = (keys[:, None, :] >= first) & (keys[:, None, :] < first + kernel)  # M, t, halo
    return queries, keys, allowed


@register_attention("neighborhood_ref")
class NeighborhoodReference(QKVAttention):
    """2-D neighbourhood attention (Hassani et al., CVPR 2023) written in PyTorch, NATTEN's semantics.

    Shapes: ``x [B, H, W, C] → [B, H, W, C]``; each token attends to the ``kernel × kernel`` tokens around it, the
    window shifted inwards at the borders (:func:`neighborhood_start`), so every query sees exactly ``kernel²`` keys.

    The same layer as the optional ``neighborhood`` (``natten.na2d``): the same ``qkv`` / ``proj`` parameters
    (weights copy across), scale ``d^-0.5``, no relative position bias (``na2d`` has none) and no attention dropout
    (``dropout`` applies to the output, as there). What differs is how it runs, blocked as NATTEN's own fused
    kernels are: the queries are cut into ``tile × tile`` tiles; each tile attends, through
    ``scaled_dot_product_attention`` with a boolean mask, to its ``(tile + kernel - 1)²`` halo, which holds every
    one of its queries' neighbourhoods. SDPA's autograd gives the backward pass on CPU that NATTEN lacks.

    Equivalent dense form (what ``tests/attention/test_window_mechanisms.py`` checks in float64):
    ``softmax(q kᵀ / √d + M) v`` with ``M = 0`` where the key is in the query's neighbourhood and ``-inf``
    elsewhere.

    Work: the masked halo products are computed too, ``(tile + kernel - 1)²`` keys per query instead of ``kernel²``
    (4× at the default tile 8 and kernel 7) — :meth:`flop_parts` counts what runs. In exchange the copies are small
    (the halos hold ``((tile + kernel - 1) / tile)²`` ≈ 3× the keys and values, against ``kernel²`` = 49× for a
    gather of every query's neighbourhood) and the products run in SDPA's kernels.

    Complexity: time O(N (t + k)² d) for tile t; memory O(N ((t + k) / t)² C) (the halo copies; SDPA's fused CPU
    kernel keeps no scores).

    Args:
        dim, heads, dim_head, qkv_bias, dropout: as for ``full`` (dropout on the output only). kernel: neighbourhood
            side >= 2 (<= the grid), as for ``neighborhood``. tile: query tile side >= 1, a speed/memory trade-off
            that does not change the result.
    """

    family = "window"
    benchmark = "neighborhood_ref_k7"
    complexity = "time O(N (t+k)^2 d), memory O(N ((t+k)/t)^2 C) for tile t"
    constraints = "kernel <= H, W"
    reference = "Hassani et al. 2023 (neighbourhood attention), NATTEN na2d semantics; written in PyTorch"

    def __init__(
        self,
        dim: int,
        heads: int,
        kernel: int = 7,
        tile: int = 8,
        dim_head: int | None = None,
        qkv_bias: bool = True,
        dropout: float = 0.0,
    ) -> None:
        super().__init__(dim, heads, dim_head=dim_head, qkv_bias=qkv_bias, dropout=dropout)
        self.kernel = check_int(self, "kernel", kernel, 2)
        self.tile = check_int(self, "tile", tile, 1)
        self._plans: dict[tuple[Any, ...], tuple[torch.Tensor, ...]] = {}

    def not_supported_reasons(self, height, width, device="cpu", dtype=torch.float32, backward=False) -> list[str]:
        reasons = super().not_supported_reasons(height, width, device, dtype, backward)
        if height < self.kernel or width < self.kernel:
            reasons.append(f"kernel {self.kernel} larger than grid {height}x{width}")
        return reasons

    def receptive_field(self, height: int, width: int) -> tuple[int, int]:
        return min(self.kernel, height), min(self.kernel, width)

    def flop_parts(self, batch: int, height: int, width: int) -> dict[str, int]:
        """qkv and output projections over all N tokens; q kᵀ and p v of every tile against its halo,
        4·B·heads·d·Σ_tiles t²·l² (queries repeated by a shifted last tile included)."""
        n, inner = batch * height * width, self.heads * self.dim_head
        tiles = 1
        for size in (height, width):
            t = min(self.tile, size)
            tiles *= -(-size // t) * t * min(t + self.kernel - 1, size)  # M·t·l along this side
        return {"matmul": 2 * n * self.dim * 3 * inner + 2 * n * inner * self.dim,
                "sdpa": 4 * batch * inner * tiles}

    def _plan(self, H: int, W: int, device: torch.device) -> tuple[torch.Tensor, ...]:
        """Row and column tile plans (:func:`tile_plan`), the tiles' mask ``[My·Mx, 1, ty·tx, ly·lx]`` (l: the halo
        side) and, per side, where each position's output sits in the tiled result (``[H]`` and ``[W]`` indices into
        ``My·ty`` and ``Mx·tx``)."""
        key = (H, W, device)
        if key not in self._plans:
            with torch.inference_mode(False):  # a cache filled during inference must still serve training
                rows, cols = (tile_plan(size, self.kernel, self.tile, device) for size in (H, W))
                (q_rows, _, allowed_rows), (q_cols, _, allowed_cols) = rows, cols
                mask = allowed_rows[:, None, :, None, :, None] & allowed_cols[None, :, None, :, None, :]
                My, Mx, ty, tx, ly, lx = mask.shape
                mask = mask.reshape(My * Mx, 1, ty * tx, ly * lx)

                def pick(queries: torch.Tensor, size: int) -> torch.Tensor:  # any tile holding the position will do
                    t, position = queries.shape[1], torch.arange(size, device=device)
                    which = (position // t).clamp(max=queries.shape[0] - 1)
                    return which * t + position - queries[which, 0]

                self._plans[key] = (*rows[:2], *cols[:2], mask, pick(q_rows, H), pick(q_cols, W))
        return self._plans[key]

    def attend(self, q: torch.Tensor, k: torch.Tensor, v: torch.Tensor) -> torch.Tensor:
        raise NotImplementedError("neighborhood_ref needs the grid shape: it overrides forward")

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        B, H, W, C = self._check_input(x)
        if H < self.kernel or W < self.kernel:
            raise ValueError(f"neighborhood_ref: kernel {self.kernel} larger than grid {H}x{W}")
        q_rows, k_rows, q_cols, k_cols, mask, pick_rows, pick_cols = self._plan(H, W, x.device)
        My, ty, Mx, tx = *q_rows.shape, *q_cols.shape
        qkv = self.qkv(x).view(B, H, W, 3, self.heads, self.dim_head)

        def tiles(t: torch.Tensor, rows: torch.Tensor, cols: torch.Tensor) -> torch.Tensor:
            """``[B, H, W, heads, d]`` → ``[B·My·Mx, heads, r·c, d]``, the tokens at ``rows [My, r] × cols [Mx, c]``."""
            r, c = rows.shape[1], cols.shape[1]
            t = t.index_select(1, rows.reshape(-1)).index_select(2, cols.reshape(-1))  # B, My*r, Mx*c, heads, d
            t = t.view(B, My, r, Mx, c, self.heads, self.dim_head).permute(0, 1, 3, 5, 2, 4, 6)
            return t.reshape(B * My * Mx, self.heads, r * c, self.dim_head)

        q = tiles(qkv[:, :, :, 0], q_rows, q_cols)  # B*My*Mx, heads, ty*tx, d
        k, v = tiles(qkv[:, :, :, 1], k_rows, k_cols), tiles(qkv[:, :, :, 2], k_rows, k_cols)  # ..., ly*lx, d
        if B > 1:  # the mask is per tile; SDPA's batch runs over (sample, tile)
            mask = mask.expand(B, *mask.shape).reshape(B * My * Mx, *mask.shape[1:])
        out = F.scaled_dot_product_attention(q, k, v, attn_mask=mask)  # B*My*Mx, heads, ty*tx, d
        out = out.view(B, My, Mx, self.heads, ty, tx, self.dim_head).permute(0, 1, 4, 2, 5, 3, 6)
        out = out.reshape(B, My * ty, Mx * tx, self.heads * self.dim_head)  # tiled rows and columns
        out = out.index_select(1, pick_rows).index_select(2, pick_cols)  # B, H, W, inner
        return self.proj_drop(self.proj(out))


# Named configuration: the NAT / DiNAT papers' kernel 7.
register_config("neighborhood_ref_k7", "neighborhood_ref", kernel=7)
