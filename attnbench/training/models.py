"""Models for the accuracy tasks: one isotropic grid transformer shared by every mechanism, and the layout of the
MANO paper's Darcy operator, both with a pluggable registry attention.

Both take ``[B, C_in, H, W]`` fields. Position enters as two appended coordinate channels (x, y) ∈ [0, 1)
on the node grid, identical for every mechanism and consistent across resolutions (so zero-shot evaluation at
another resolution sees the same coordinates for the same points).
"""

from __future__ import annotations

from typing import Any

import torch
import torch.nn.functional as F
from torch import nn

from attnbench.registry import build_for_grid

__all__ = ["MODELS", "Block", "GridTransformer", "OperatorTransformer", "attention_layers", "coordinates"]


def coordinates(batch: int, height: int, width: int, device: Any = None, dtype: Any = None) -> torch.Tensor:
    """``[B, 2, H, W]`` node coordinates ``(i / H, j / W)`` (the last node of a 2^k+1 grid is dropped)."""
    y = torch.arange(height, device=device, dtype=dtype) / height
    x = torch.arange(width, device=device, dtype=dtype) / width
    grid = torch.stack(torch.meshgrid(y, x, indexing="ij"))  # 2, H, W
    return grid.expand(batch, -1, -1, -1)


class Block(nn.Module):
    """Pre-norm transformer block on a channels-last grid: ``x + attn(LN x)``, then ``x + MLP(LN x)``."""

    def __init__(self, attention: nn.Module, dim: int, mlp_ratio: float, dropout: float) -> None:
        super().__init__()
        self.norm1, self.attn = nn.LayerNorm(dim), attention
        self.norm2 = nn.LayerNorm(dim)
        hidden = int(dim * mlp_ratio)
        self.mlp = nn.Sequential(nn.Linear(dim, hidden), nn.GELU(), nn.Dropout(dropout), nn.Linear(hidden, dim),
                                 nn.Dropout(dropout))

    def forward(self, x: torch.Tensor) -> torch.Tensor:  # B, H, W, C
        x = x + self.attn(self.norm1(x))
        return x + self.mlp(self.norm2(x))


class GridTransformer(nn.Module):
    """Isotropic ViT-style backbone with a pluggable attention from the registry.

    Shapes: input ``[B, C_in, H, W]``; tokens ``[B, H/p, W/p, dim]``; output ``[B, C_out, H, W]`` (``head =
    "dense"``, per-token regression un-patchified with ``pixel_shuffle``) or ``[B, classes]`` (``head =
    "classify"``, mean-pooled tokens → linear).

    Args:
        attention, attn_kwargs: registry name (or named configuration) and options. Each block's options come from
            the mechanism's ``block_kwargs`` (e.g. Swin alternates its shift 0, window // 2 unless ``shift`` is given).
        in_channels: data channels (coordinates are added on top). out_channels: output channels or classes.
        dim, depth, heads, mlp_ratio, dropout: backbone size. patch: patch side p (1 = pixel tokens).
        stem: ``patch`` (one strided conv) or ``conv`` (3×3 conv + GELU before the patch conv).
        head: ``dense`` or ``classify``. token_grid: the token grid for mechanisms built per grid
            (``mano_reference``'s ``image_size``); others ignore it.
    """

    def __init__(self, attention: str, attn_kwargs: dict[str, Any], in_channels: int, out_channels: int,
                 dim: int = 64, depth: int = 4, heads: int = 4, mlp_ratio: float = 2.0, patch: int = 1,
                 stem: str = "patch", head: str = "dense", dropout: float = 0.0,
                 token_grid: tuple[int, int] = (16, 16)) -> None:
        super().__init__()
        if head not in ("dense", "classify") or stem not in ("patch", "conv"):
            raise ValueError(f"head={head!r} / stem={stem!r}: expected dense|classify and patch|conv")
        self.patch, self.head_kind, self.out_channels = patch, head, out_channels
        c_in = in_channels + 2
        self.stem: nn.Module
        if stem == "conv":
            self.stem = nn.Sequential(nn.Conv2d(c_in, dim, 3, padding=1), nn.GELU(), nn.Conv2d(dim, dim, patch, patch))
        else:
            self.stem = nn.Conv2d(c_in, dim, patch, patch)
        blocks = []
        for i in range(depth):
            attn = build_for_grid(attention, dim, heads, token_grid[0], token_grid[1], attn_kwargs, block=i, seed=None)
            blocks.append(Block(attn, dim, mlp_ratio, dropout))
        self.blocks = nn.ModuleList(blocks)
        self.norm = nn.LayerNorm(dim)
        self.head = nn.Linear(dim, out_channels * patch * patch if head == "dense" else out_channels)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        B, _, H, W = x.shape
        x = torch.cat([x, coordinates(B, H, W, x.device, x.dtype)], dim=1)
        t = self.stem(x).permute(0, 2, 3, 1)  # B, H/p, W/p, dim
        for block in self.blocks:
            t = block(t)
        t = self.norm(t)
        if self.head_kind == "classify":
            return self.head(t.mean(dim=(1, 2)))
        out = self.head(t).permute(0, 3, 1, 2)  # B, out*p*p, H/p, W/p
        return F.pixel_shuffle(out, self.patch) if self.patch > 1 else out


class OperatorTransformer(nn.Module):
    """The layout of the MANO authors' Darcy model (their ``MANO`` class in ``models/MANO.py`` of
    github.com/AlexColagrande/MANO), with any registry attention.

    ``[B, C_in, H, W]`` → channels last → ``Linear(C_in, dim)`` → Dropout → depth × [``x + attn(x)``,
    ``x + FFN(x)`` with a pre-LayerNorm FFN] → LayerNorm → ``Linear(dim, dim)`` → Tanh → ``Linear(dim, C_out)``.
    No positional encoding (as in the authors' code): MANO's own LayerNorms act as the pre-norm. ``dropout`` is
    passed to the attention too, as the authors' model does. The authors' demo configuration: dim 128, depth 8,
    4 heads of 32, MLP 128, dropout 0.1, and ``mano`` with window 2, stride 1, rate 4, conv down/up.

    Args:
        attention: registry name. in_channels, out_channels: data channels. dim, depth, heads, mlp_dim, dropout:
            model size. token_grid: grid passed to the attention's ``grid_kwargs``. **attn_kwargs: attention
            options (e.g. ``window``, ``stride``, ``rate``, ``dim_head``).
    """

    def __init__(self, attention: str, in_channels: int = 1, out_channels: int = 1, dim: int = 128, depth: int = 8,
                 heads: int = 4, mlp_dim: int = 128, dropout: float = 0.1, token_grid: tuple[int, int] = (64, 64),
                 **attn_kwargs: Any) -> None:
        super().__init__()
        self.lift = nn.Sequential(nn.Linear(in_channels, dim), nn.Dropout(dropout))
        attn_kwargs = {**attn_kwargs, "dropout": dropout}
        self.attn = nn.ModuleList(
            build_for_grid(attention, dim, heads, token_grid[0], token_grid[1], attn_kwargs, block=i, seed=None)
            for i in range(depth))
        self.ffn = nn.ModuleList(
            nn.Sequential(nn.LayerNorm(dim), nn.Linear(dim, mlp_dim), nn.GELU(), nn.Dropout(dropout),
                          nn.Linear(mlp_dim, dim), nn.Dropout(dropout))
            for _ in range(depth))
        self.norm = nn.LayerNorm(dim)
        self.project = nn.Sequential(nn.Linear(dim, dim), nn.Tanh(), nn.Linear(dim, out_channels))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        t = self.lift(x.permute(0, 2, 3, 1))  # B, H, W, dim
        for attn, ffn in zip(self.attn, self.ffn):
            t = attn(t) + t
            t = ffn(t) + t
        return self.project(self.norm(t)).permute(0, 3, 1, 2)


def attention_layers(model: nn.Module) -> list[nn.Module]:
    """The attention layers of a model built here, in order."""
    layers = [m.attn for m in model.modules() if isinstance(m, Block)]
    return layers or list(getattr(model, "attn", []))


# Suite name → model class (``model = "..."`` in an accuracy task).
MODELS: dict[str, type[nn.Module]] = {"backbone": GridTransformer, "operator": OperatorTransformer}
