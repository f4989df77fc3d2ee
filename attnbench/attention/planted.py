"""A planted slowdown, for calibrating the statistics (``attnbench calibrate``) — not a mechanism to compare.

``planted_full`` is ``full`` (global softmax attention through SDPA) doing exactly 1.25× its attention work: the
attention of a quarter of the heads is computed a second time and averaged with the first (``(a + a) / 2 == a``
exactly in floating point), so the output is ``full``'s and nothing can be optimised away. Beyond the smallest
grids, where the projections' O(N C²) is a visible share, the attention's O(N² d) is the whole cost, so the case
takes 1.25× ``full``'s time: a known effect whose detection rate `compare` must show.

It is registered only when this module is imported (a suite's ``imports = ["attnbench.attention.planted"]``), so
it never appears in ``attnbench list`` or the default suites.
"""

from __future__ import annotations

import torch

from attnbench.attention.full import FullAttention
from attnbench.registry import register_attention

__all__ = ["BASE", "LABEL", "PlantedSlowdown", "SLOWDOWN"]

SLOWDOWN = 1.25  # the attention work done, relative to full
# The labels the calibration suite gives the planted layer and the layer it slows down.
LABEL, BASE = "planted", "full"


@register_attention("planted_full")
class PlantedSlowdown(FullAttention):
    """``full`` with 1.25× the attention work (heads must be a multiple of 4).

    Shapes: ``x [B, H, W, C] → [B, H, W, C]``, identical to ``full``'s output.
    Complexity: time 1.25 · O(N² d), memory as ``full``.
    """

    family = "global"
    complexity = "time 1.25 x O(N^2 d) (a planted slowdown of full), memory O(N)"
    constraints = "heads a multiple of 4; a calibration probe, not a mechanism"
    reference = "attnbench calibration: full with a quarter of its heads attended twice"

    def __init__(self, dim: int, heads: int, **kwargs: object) -> None:
        if heads % 4:
            raise ValueError(f"planted_full: heads={heads!r} is invalid; expected a multiple of 4")
        super().__init__(dim, heads, **kwargs)  # type: ignore[arg-type]

    def attend(self, q: torch.Tensor, k: torch.Tensor, v: torch.Tensor) -> torch.Tensor:
        extra = self.heads // 4  # B, h, N, d inputs; the first quarter of the heads again
        out = super().attend(torch.cat([q, q[:, :extra]], 1), torch.cat([k, k[:, :extra]], 1),
                             torch.cat([v, v[:, :extra]], 1))  # B, 1.25 h, N, d
        twice = (out[:, :extra] + out[:, self.heads:]) / 2  # the same values, computed twice
        return torch.cat([twice, out[:, extra:self.heads]], 1)  # B, h, N, d

    def attend_flops(self, batch: int, tokens: int) -> dict[str, int]:
        """``full``'s 4·B·h·N²·d for 1.25·h heads."""
        return {"sdpa": 4 * batch * (self.heads + self.heads // 4) * tokens**2 * self.dim_head}
