"""Global attention through xFormers' ``memory_efficient_attention`` (optional, CUDA only)."""

from __future__ import annotations

from typing import Any

import torch

from attnbench.attention.base import QKVAttention
from attnbench.registry import mark_unavailable, register_attention

try:  # xformers is an optional extra; it has no CPU path and may fail to load its extensions
    import xformers.ops as xops
except Exception as exc:  # noqa: BLE001 - any import failure means "not available", recorded with its reason
    xops = None
    _IMPORT_ERROR = f"xformers not importable ({type(exc).__name__}: {str(exc).splitlines()[0] if str(exc) else ''})"


class XFormersFullAttention(QKVAttention):
    """Global softmax attention via ``xformers.ops.memory_efficient_attention`` (Lefaudeux et al., xFormers).

    Shapes: ``x [B, H, W, C] → [B, H, W, C]``; xFormers takes ``[B, N, heads, d]``.

    Complexity: time O(N² d), memory O(N). CUDA only (xFormers 0.0.35 has no CPU operator).
    """

    family = "global"
    complexity = "time O(N^2 d), memory O(N)"
    constraints = "CUDA only"
    reference = "xFormers memory_efficient_attention"
    supported_devices = frozenset({"cuda"})

    def attend(self, q: torch.Tensor, k: torch.Tensor, v: torch.Tensor) -> torch.Tensor:
        q, k, v = (t.transpose(1, 2) for t in (q, k, v))  # B, N, heads, d
        p = self.dropout if self.training else 0.0
        return xops.memory_efficient_attention(q, k, v, p=p).transpose(1, 2)

    def extra_info(self) -> dict[str, Any]:
        return {"sdpa_backend": "xformers"}


if xops is not None:
    register_attention("full_xformers")(XFormersFullAttention)
else:
    mark_unavailable("full_xformers", _IMPORT_ERROR + "; install the 'xformers' extra on a CUDA machine")
