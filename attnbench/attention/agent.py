"""Agent attention (Han et al. 2024): softmax attention through a small set of agent tokens pooled from the
queries, O(N n) for n agents."""

from __future__ import annotations

import math
from typing import Any

import torch
import torch.nn.functional as F
from torch import nn

from attnbench.attention.base import QKVAttention, check_int
from attnbench.registry import register_attention, register_config


@register_attention("agent")
class AgentAttention(QKVAttention):
    """Agent attention, "Agent Attention: On the Integration of Softmax and Linear Attention" (Han et al., ECCV
    2024).

    Shapes: ``x [B, H, W, C] → [B, H, W, C]``.

    Per head, with agent tokens ``A [n, d]`` = the queries average-pooled to an ``a × a`` grid (``n = a²``):

    1. agent aggregation: ``V_A = softmax(A Kᵀ / √d) V`` (the agents gather from all N tokens);
    2. agent broadcast: ``O = softmax(Q Aᵀ / √d) V_A`` (every token reads from the n agents);
    3. plus a depthwise 3×3 convolution of V on the grid (the paper's diversity-restoring DWC), then the output
       projection.

    Both softmax attentions run through ``scaled_dot_product_attention`` (n keys or n queries, so no N×N matrix).
    On a grid smaller than the agent grid along a side, that side gets one agent per row or column
    (``min(a, H) × min(a, W)`` agents), so no token is pooled twice.

    Left out: the paper's agent and position biases (learned per grid size, bilinearly resized; they would tie the
    layer to one resolution) and its PVT spatial reduction (``sr_ratio``; 1 here).

    Complexity: time O(N n d), memory O(N n) per head (O(N d) with a fused SDPA kernel).

    Args:
        dim, heads, dim_head, qkv_bias, dropout: as for ``full`` (dropout on both attention maps and the output).
        agents: number of agent tokens n, a perfect square (49 = 7×7 in the paper's Swin/PVT models).
    """

    family = "linear"
    benchmark = "agent_a49"
    complexity = "time O(N n d), memory O(N n) for n agents"
    constraints = "none"
    reference = "Han et al. 2024 (Agent Attention); position biases omitted"

    def __init__(
        self,
        dim: int,
        heads: int,
        dim_head: int | None = None,
        agents: int = 49,
        qkv_bias: bool = True,
        dropout: float = 0.0,
    ) -> None:
        super().__init__(dim, heads, dim_head=dim_head, qkv_bias=qkv_bias, dropout=dropout)
        side = math.isqrt(check_int(self, "agents", agents, 1))
        if side * side != agents:
            raise ValueError(f"agent: agents={agents} is invalid; expected a perfect square (agents pool the queries "
                             f"to a square grid, e.g. 49 = 7x7)")
        self.agents, self.agent_side = agents, side
        inner = heads * self.dim_head
        self.dwc = nn.Conv2d(inner, inner, 3, padding=1, groups=inner)

    def agent_grid(self, height: int, width: int) -> tuple[int, int]:
        """The grid the queries are pooled to on a ``height × width`` grid (``a × a``, capped at the grid)."""
        return min(self.agent_side, height), min(self.agent_side, width)

    def flop_parts(self, batch: int, height: int, width: int) -> dict[str, int]:
        """qkv and output projections; two SDPAs between N tokens and n agents, 4·B·h·n·N·d each; the depthwise
        3×3 conv on V, 2·B·N·(h·d)·9 (bias not counted). Pooling and softmax are not counted."""
        n_tokens = height * width
        rows, cols = self.agent_grid(height, width)
        inner = self.heads * self.dim_head
        projections = 2 * batch * n_tokens * (self.dim * 3 * inner + inner * self.dim)
        dwc = 2 * batch * n_tokens * inner * 9
        return {"matmul": projections + dwc, "sdpa": 8 * batch * self.heads * rows * cols * n_tokens * self.dim_head}

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        B, H, W, C = self._check_input(x)
        N, heads, d = H * W, self.heads, self.dim_head
        qkv = self.qkv(x.reshape(B, N, C)).reshape(B, N, 3, heads, d)
        q, k, v = qkv.permute(2, 0, 3, 1, 4).unbind(0)  # each B, heads, N, d

        rows, cols = self.agent_grid(H, W)
        q_grid = q.transpose(-2, -1).reshape(B, heads * d, H, W)  # B, heads·d, H, W
        agents = F.adaptive_avg_pool2d(q_grid, (rows, cols))  # B, heads·d, rows, cols
        # contiguous (n·d numbers): CPU SDPA takes its fused kernel only for a last dimension of stride 1, and the math
        # fallback's safe softmax cost 3.5x the whole layer at 128² (against agent-attention-pytorch, 2 threads)
        agents = agents.reshape(B, heads, d, rows * cols).transpose(-2, -1).contiguous()  # B, heads, n, d

        p = self.dropout if self.training else 0.0
        agent_v = F.scaled_dot_product_attention(agents, k, v, dropout_p=p)  # B, heads, n, d: aggregation
        out = F.scaled_dot_product_attention(q, agents, agent_v, dropout_p=p)  # B, heads, N, d: broadcast

        v_grid = v.transpose(-2, -1).reshape(B, heads * d, H, W)  # B, heads·d, H, W
        out = out.transpose(1, 2).reshape(B, H, W, heads * d) + self.dwc(v_grid).permute(0, 2, 3, 1)  # B, H, W, h·d
        return self.proj_drop(self.proj(out))

    def extra_info(self) -> dict[str, Any]:
        return {**super().extra_info(), "agents": self.agents}


register_config("agent_a49", "agent", agents=49)
