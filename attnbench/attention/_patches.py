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

__all__ = [
    "conv_matrix", "conv_transpose_matrix", "patch_conv", "patch_conv_transpose", "patch_conv_transpose_patches",
    "patch_matrix",
]


def conv_matrix(conv: nn.Conv2d) -> torch.Tensor:
    """``conv``'s weight ``[C_out, C_in, r, r]`` as the ``[C_out, r·r·C_in]`` matrix of the patch product (one copy:
    a caller resampling several grids with the same module makes it once and passes it on)."""
    weight = conv.weight
    return weight.permute(0, 2, 3, 1).reshape(weight.shape[0], -1)


def conv_transpose_matrix(conv: nn.ConvTranspose2d) -> torch.Tensor:
    """``conv``'s weight ``[C_in, C_out, r, r]`` as the ``[C_in, r·r·C_out]`` matrix of the patch product."""
    weight = conv.weight
    return weight.permute(0, 2, 3, 1).reshape(weight.shape[0], -1)


def patch_matrix(conv: nn.Conv2d | nn.ConvTranspose2d) -> torch.Tensor:
    """:func:`conv_matrix` or :func:`conv_transpose_matrix`, whichever ``conv`` is."""
    return conv_matrix(conv) if isinstance(conv, nn.Conv2d) else conv_transpose_matrix(conv)


def patch_conv(x: torch.Tensor, conv: nn.Conv2d, matrix: torch.Tensor | None = None) -> torch.Tensor:
    """``conv`` (kernel = stride = r, no padding; its bias, if any, added) on ``x [B, h, w, C_in]`` →
    ``[B, h/r, w/r, C_out]``; ``matrix``: :func:`conv_matrix` of ``conv``, if the caller has it."""
    B, h, w, C = x.shape
    r = conv.stride[0]
    patches = x.view(B, h // r, r, w // r, r, C).transpose(2, 3).reshape(B, h // r, w // r, r * r * C)
    return F.linear(patches, conv_matrix(conv) if matrix is None else matrix, conv.bias)


def patch_conv_transpose_patches(x: torch.Tensor, conv: nn.ConvTranspose2d,
                                 matrix: torch.Tensor | None = None) -> torch.Tensor:
    """``conv`` (kernel = stride = r, no padding, no bias) on ``x [B, h, w, C_in]``, left in patch layout:
    ``[B, h, w, r, r, C_out]``, element ``[b, i, j, u, v]`` the output pixel ``(i·r + u, j·r + v)`` (one matrix
    product; a caller adding the result to a grid can take the sum through a patch view of the grid instead of
    laying the patches out first). ``matrix``: :func:`conv_transpose_matrix` of ``conv``, if the caller has it."""
    if conv.bias is not None:
        raise ValueError("patch_conv_transpose: bias is not supported (a bias-free ConvTranspose2d is expected)")
    B, h, w, C = x.shape
    r = conv.stride[0]
    matrix = conv_transpose_matrix(conv) if matrix is None else matrix
    return (x.reshape(-1, C) @ matrix).view(B, h, w, r, r, -1)


def patch_conv_transpose(x: torch.Tensor, conv: nn.ConvTranspose2d) -> torch.Tensor:
    """``conv`` (kernel = stride = r, no padding, no bias) on ``x [B, h, w, C_in]`` → ``[B, h·r, w·r, C_out]``: one
    product to ``r²·C_out`` channels per token, then the patches laid out on the grid."""
    B, h, w, _ = x.shape
    r = conv.stride[0]
    patches = patch_conv_transpose_patches(x, conv)
    return patches.transpose(2, 3).reshape(B, h * r, w * r, patches.shape[-1])
