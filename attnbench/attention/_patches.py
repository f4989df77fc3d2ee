"""Convolutions whose kernel equals their stride, channels-last, as matrix products on the patches.

A ``Conv2d(C_in, C_out, r, stride=r)`` touches disjoint r×r patches, and its transpose writes disjoint patches, so
each is one matrix product plus a re-layout of the patches: no convolution kernel, and no permute to channels-first
and back (on small grids those cost more than the arithmetic: MANO's restriction and prolongation on the accuracy
suites' 8×8 and 16×16 token grids). The modules keep their parameters, so weights load and save as usual.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

__all__ = ["patch_conv", "patch_conv_transpose"]


def patch_conv(x: torch.Tensor, conv: nn.Conv2d) -> torch.Tensor:
    """``conv`` (kernel = stride = r, no padding; its bias, if any, added) on ``x [B, h, w, C_in]`` →
    ``[B, h/r, w/r, C_out]``."""
    B, h, w, C = x.shape
    r = conv.stride[0]
    patches = x.view(B, h // r, r, w // r, r, C).transpose(2, 3).reshape(B, h // r, w // r, r * r * C)
    weight = conv.weight  # [C_out, C_in, r, r] → [C_out, (r, r, C_in)], the patches' order
    return F.linear(patches, weight.permute(0, 2, 3, 1).reshape(weight.shape[0], -1), conv.bias)


def patch_conv_transpose(x: torch.Tensor, conv: nn.ConvTranspose2d) -> torch.Tensor:
    """``conv`` (kernel = stride = r, no padding, no bias) on ``x [B, h, w, C_in]`` → ``[B, h·r, w·r, C_out]``: one
    product to ``r²·C_out`` channels per token, then the patches laid out on the grid."""
    if conv.bias is not None:
        raise ValueError("patch_conv_transpose: bias is not supported (a bias-free ConvTranspose2d is expected)")
    B, h, w, C = x.shape
    r = conv.stride[0]
    weight = conv.weight  # [C_in, C_out, r, r] → [C_in, (r, r, C_out)]
    c_out = weight.shape[1]
    patches = x.reshape(-1, C) @ weight.permute(0, 2, 3, 1).reshape(C, -1)  # B·h·w, r·r·C_out
    return patches.view(B, h, w, r, r, c_out).transpose(2, 3).reshape(B, h * r, w * r, c_out)
