"""Axial attention as an attnbench plugin (Ho et al. 2019, "Axial Attention in Multidimensional Transformers").

Installing this package is all it takes: attnbench reads the ``attnbench.attention`` entry point declared in
``pyproject.toml``, and the class becomes ``create_attention("axial_example", ...)``, appears in ``attnbench list``,
passes ``attnbench check axial_example`` and can be named in any suite. (attnbench's built-in ``axial`` is the
sequential row-then-column layer; this example averages the two axes, hence its own name.)
"""

from __future__ import annotations

import torch
import torch.nn.functional as F

from attnbench.attention.base import QKVAttention


class AxialAttention(QKVAttention):
    """Row attention plus column attention on shared q, k, v, averaged.

    Shapes: ``x [B, H, W, C] → [B, H, W, C]``. Each token attends to its row (W keys) and its column (H keys),
    so two stacked layers reach the whole grid.

    Complexity: time O(N (H + W) d), memory O(N (H + W)) with the math backend, O(N) fused.
    """

    complexity = "time O(N (H+W) d), memory O(N)"
    constraints = "none"
    reference = "Ho et al. 2019 (axial attention)"

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        B, H, W, C = self._check_input(x)
        q, k, v = self.qkv(x).reshape(B, H, W, 3, self.heads, self.dim_head).unbind(3)  # B, H, W, heads, d

        def rows(t: torch.Tensor) -> torch.Tensor:  # B*H, heads, W, d
            return t.permute(0, 1, 3, 2, 4).reshape(B * H, self.heads, W, self.dim_head)

        def cols(t: torch.Tensor) -> torch.Tensor:  # B*W, heads, H, d
            return t.permute(0, 2, 3, 1, 4).reshape(B * W, self.heads, H, self.dim_head)

        row = F.scaled_dot_product_attention(rows(q), rows(k), rows(v))
        col = F.scaled_dot_product_attention(cols(q), cols(k), cols(v))
        row = row.reshape(B, H, self.heads, W, self.dim_head).permute(0, 1, 3, 2, 4)  # B, H, W, heads, d
        col = col.reshape(B, W, self.heads, H, self.dim_head).permute(0, 3, 1, 2, 4)  # B, H, W, heads, d
        out = 0.5 * (row + col)
        return self.proj_drop(self.proj(out.reshape(B, H, W, self.heads * self.dim_head)))
