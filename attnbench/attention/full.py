"""Global softmax attention over all H·W tokens through PyTorch SDPA (the ViT baseline)."""

from __future__ import annotations

import contextlib
from typing import Any

import torch
import torch.nn.functional as F
from torch.nn.attention import SDPBackend, sdpa_kernel

from attnbench.attention.base import QKVAttention, check_choice
from attnbench.registry import register_attention, register_config

_BACKENDS = {
    "math": SDPBackend.MATH,
    "flash": SDPBackend.FLASH_ATTENTION,
    "efficient": SDPBackend.EFFICIENT_ATTENTION,
    "cudnn": SDPBackend.CUDNN_ATTENTION,
}
_HALF = {torch.float16, torch.bfloat16}


@register_attention("full")
class FullAttention(QKVAttention):
    """Global multi-head softmax attention (Vaswani et al. 2017; ViT, Dosovitskiy et al. 2021).

    Shapes: ``x [B, H, W, C] → [B, H, W, C]``; all ``N = H·W`` tokens attend to each other.

    Equivalent PyTorch: ``softmax(q @ k.T / sqrt(d)) @ v`` per head, computed by
    ``torch.nn.functional.scaled_dot_product_attention``.

    Complexity: time O(N² d); memory O(N²) with the ``math`` backend, O(N) with the fused ones (flash,
    efficient, cudnn, and the CPU flash kernel that ``auto`` picks on CPU).

    Args:
        dim: channels C. heads: number of heads. dim_head: per-head width (default ``dim // heads``).
        backend: SDPA backend, ``auto`` (PyTorch chooses) or one of ``math, flash, efficient, cudnn``; pinned with
            ``torch.nn.attention.sdpa_kernel``; the harness records the kernel that actually ran.
        qkv_bias: bias in the qkv projection. dropout: attention and output dropout.
    """

    family = "global"
    complexity = "time O(N^2 d), memory O(N) fused / O(N^2) math"
    constraints = "backend=flash/cudnn: CUDA fp16/bf16; efficient/cudnn: CUDA only"
    reference = "Vaswani et al. 2017; torch SDPA"

    def __init__(
        self,
        dim: int,
        heads: int,
        dim_head: int | None = None,
        backend: str = "auto",
        qkv_bias: bool = True,
        dropout: float = 0.0,
    ) -> None:
        super().__init__(dim, heads, dim_head=dim_head, qkv_bias=qkv_bias, dropout=dropout)
        self.backend = check_choice(self, "backend", backend, ("auto", *_BACKENDS))

    def not_supported_reasons(self, height, width, device="cpu", dtype=torch.float32, backward=False) -> list[str]:
        reasons = super().not_supported_reasons(height, width, device, dtype, backward)
        device_type = torch.device(device).type
        if self.backend in ("efficient", "cudnn") and device_type != "cuda":
            reasons.append(f"SDPA backend {self.backend} needs CUDA")
        if device_type == "cuda" and self.backend in ("flash", "cudnn") and dtype not in _HALF:
            reasons.append(f"SDPA backend {self.backend} on CUDA needs float16/bfloat16, got {dtype}")
        return reasons

    def attend(self, q: torch.Tensor, k: torch.Tensor, v: torch.Tensor) -> torch.Tensor:
        ctx = contextlib.nullcontext() if self.backend == "auto" else sdpa_kernel(_BACKENDS[self.backend])
        with ctx:
            return F.scaled_dot_product_attention(q, k, v, dropout_p=self.dropout if self.training else 0.0)

    def attend_flops(self, batch: int, tokens: int) -> dict[str, int]:
        """q kᵀ and p v: 4·B·h·N²·d."""
        return {"sdpa": 4 * batch * self.heads * tokens**2 * self.dim_head}

    def extra_info(self) -> dict[str, Any]:
        # The kernel that actually ran is recorded by the harness from a profiled step (``sdpa_backend`` column).
        return {"backend_requested": self.backend}


register_config("full_math", "full", backend="math")  # pins the O(N^2)-memory math kernel
