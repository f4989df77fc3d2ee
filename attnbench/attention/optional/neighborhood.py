"""Neighbourhood attention through NATTEN's ``na2d`` (optional)."""

from __future__ import annotations

from typing import Any

import torch

from attnbench.attention.base import QKVAttention, check_int
from attnbench.registry import mark_unavailable, register_attention

try:  # natten is an optional extra (sdist, built with --no-build-isolation after torch)
    import natten
except Exception as exc:  # noqa: BLE001
    natten = None
    _IMPORT_ERROR = f"natten not importable ({type(exc).__name__}: {exc})"


class NeighborhoodAttention(QKVAttention):
    """2-D neighbourhood attention (Hassani et al., CVPR 2023) via ``natten.na2d``.

    Shapes: ``x [B, H, W, C] → [B, H, W, C]``; each token attends to the ``kernel × kernel`` tokens around it
    (windows are clamped at the borders, so every query sees exactly ``kernel²`` keys).

    Complexity: time O(N kernel² d), memory O(N kernel²) with a fused backend. On CPU natten runs through
    PyTorch Flex Attention, which without ``torch_compile=True`` materialises the full score matrix (O(N²)
    memory) and has no backward: ``backward_devices`` says so, and ``not_supported_reasons(..., backward=True)``
    reports it.

    Args:
        dim, heads, dim_head, qkv_bias, dropout: as for ``full`` (natten has no attention dropout; ``dropout``
            applies to the output). kernel: neighbourhood side >= 2 (<= the grid). torch_compile: let natten
            compile its Flex Attention kernel.
    """

    family = "window"
    complexity = "time O(N k^2 d), memory O(N k^2) fused"
    constraints = "kernel <= H, W; CPU: forward only"
    reference = "Hassani et al. 2023; NATTEN na2d"
    backward_devices = frozenset({"cuda"})  # on CPU natten runs through Flex Attention, which has no backward

    def __init__(
        self,
        dim: int,
        heads: int,
        kernel: int = 7,
        dim_head: int | None = None,
        qkv_bias: bool = True,
        dropout: float = 0.0,
        torch_compile: bool = False,
    ) -> None:
        super().__init__(dim, heads, dim_head=dim_head, qkv_bias=qkv_bias, dropout=dropout)
        self.kernel = check_int(self, "kernel", kernel, 2)
        self.torch_compile = bool(torch_compile)

    def not_supported_reasons(self, height, width, device="cpu", dtype=torch.float32, backward=False) -> list[str]:
        reasons = super().not_supported_reasons(height, width, device, dtype, backward)
        if height < self.kernel or width < self.kernel:
            reasons.append(f"kernel {self.kernel} larger than grid {height}x{width}")
        return reasons

    def receptive_field(self, height: int, width: int) -> tuple[int, int]:
        return min(self.kernel, height), min(self.kernel, width)

    def attend(self, q: torch.Tensor, k: torch.Tensor, v: torch.Tensor) -> torch.Tensor:
        raise NotImplementedError("NeighborhoodAttention overrides forward")

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        B, H, W, C = self._check_input(x)
        q, k, v = self.qkv(x).reshape(B, H, W, 3, self.heads, self.dim_head).unbind(3)  # B, H, W, heads, d
        out = natten.na2d(q, k, v, kernel_size=self.kernel, torch_compile=self.torch_compile)
        return self.proj_drop(self.proj(out.reshape(B, H, W, self.heads * self.dim_head)))

    def extra_info(self) -> dict[str, Any]:
        return {"natten": getattr(natten, "__version__", "?"), "natten_compile": self.torch_compile}


if natten is not None:
    register_attention("neighborhood")(NeighborhoodAttention)
else:
    mark_unavailable("neighborhood", _IMPORT_ERROR + "; install natten with --no-build-isolation "
                                                     "(see docs/mechanisms.md, optional backends)")
