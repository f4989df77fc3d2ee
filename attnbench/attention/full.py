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
_NAMES = {v: k for k, v in _BACKENDS.items()}
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
            ``torch.nn.attention.sdpa_kernel``. :meth:`extra_info` reports the backend actually used.
        qkv_bias: bias in the qkv projection. dropout: attention and output dropout.
    """

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
        self._last_signature: tuple[Any, ...] | None = None

    def not_supported_reasons(self, height, width, device="cpu", dtype=torch.float32, backward=False) -> list[str]:
        reasons = super().not_supported_reasons(height, width, device, dtype, backward)
        device_type = torch.device(device).type
        if self.backend in ("efficient", "cudnn") and device_type != "cuda":
            reasons.append(f"SDPA backend {self.backend} needs CUDA")
        if device_type == "cuda" and self.backend in ("flash", "cudnn") and dtype not in _HALF:
            reasons.append(f"SDPA backend {self.backend} on CUDA needs float16/bfloat16, got {dtype}")
        return reasons

    def attend(self, q: torch.Tensor, k: torch.Tensor, v: torch.Tensor) -> torch.Tensor:
        self._last_signature = (tuple(q.shape), q.dtype, q.device)
        ctx = contextlib.nullcontext() if self.backend == "auto" else sdpa_kernel(_BACKENDS[self.backend])
        with ctx:
            return F.scaled_dot_product_attention(q, k, v, dropout_p=self.dropout if self.training else 0.0)

    def resolved_backend(self) -> str:
        """The SDPA backend used by the last forward (``"unknown"`` before the first forward)."""
        if self.backend != "auto":
            return self.backend
        if self._last_signature is None:
            return "unknown"
        shape, dtype, device = self._last_signature
        # Ask PyTorch's own dispatcher with tensors of the last call's signature (O(N) memory, no compute).
        q = torch.empty(shape, dtype=dtype, device=device)
        try:
            choice = SDPBackend(int(torch._fused_sdp_choice(q, q, q, dropout_p=self.dropout if self.training else 0.0)))
        except Exception:  # noqa: BLE001 - private API; never let provenance break a run
            return "unknown"
        return _NAMES.get(choice, choice.name.lower())

    def extra_info(self) -> dict[str, Any]:
        return {"sdpa_backend": self.resolved_backend()}


register_config("full_math", "full", backend="math")  # pins the O(N^2)-memory math kernel
