"""The window / grid family (``swin_v2``, ``maxvit``, ``axial``, ``neighborhood_ref``) against independent formulations.

The written mechanisms (``axial``, ``neighborhood_ref``) and the written compositions around timm's modules
(``maxvit``'s two partitions) are compared, in float64, with an explicit dense softmax over all ``N = H·W`` tokens
under a mask built here from the paper's definition; ``swin_v2`` is compared with timm's own Swin V2 block. The
last test checks each declared receptive field by perturbing one corner and watching the far one.
"""

from __future__ import annotations

import pytest
import torch
import torch.nn.functional as F

from attnbench import create_attention


def _x(B=2, H=4, W=6, C=16, seed=0):
    return torch.randn(B, H, W, C, generator=torch.Generator().manual_seed(seed), dtype=torch.float64)


def _dense(q, k, v, allowed, bias=None):
    """Softmax attention over all N tokens, keys outside ``allowed [N, N]`` (query, key) masked with -inf.

    ``q, k, v [B, heads, N, d]``; ``bias [heads, N, N]`` is added to the scores. Returns ``[B, N, heads·d]``."""
    scores = q @ k.transpose(-2, -1) * q.shape[-1] ** -0.5  # B, heads, N, N
    if bias is not None:
        scores = scores + bias
    out = scores.masked_fill(~allowed, float("-inf")).softmax(dim=-1) @ v  # B, heads, N, d
    return out.transpose(1, 2).flatten(2)


def _qkv(linear, x, heads, layout="3hd"):
    """``linear(x)`` for ``x [B, N, C]`` split into q, k, v ``[B, heads, N, d]``: ``3hd`` is attnbench's channel
    order (q | k | v, each heads × d), ``h3d`` timm's ``AttentionCl(head_first=True)`` (per head q | k | v)."""
    B, N, _ = x.shape
    out = F.linear(x, linear.weight, linear.bias)
    if layout == "3hd":
        return out.view(B, N, 3, heads, -1).permute(2, 0, 3, 1, 4).unbind(0)
    return out.view(B, N, heads, 3, -1).permute(3, 0, 2, 1, 4).unbind(0)


def _coords(H, W):
    """Row and column of every token in row-major order: two ``[N]`` tensors."""
    return torch.arange(H).repeat_interleave(W), torch.arange(W).repeat(H)


# ----------------------------------------------------------------------------------------------------------- axial
@pytest.mark.parametrize("grid", [(4, 6), (5, 3)])
def test_axial_is_row_attention_then_column_attention(grid):
    """axial = dense attention under a same-row mask, then dense attention under a same-column mask."""
    H, W = grid
    layer = create_attention("axial", dim=16, heads=2, dim_head=5).double().eval()
    x = _x(H=H, W=W)
    row, col = _coords(H, W)
    y = _dense(*_qkv(layer.qkv_rows, x.flatten(1, 2), 2), row[:, None] == row[None, :])  # B, N, inner
    z = _dense(*_qkv(layer.qkv_cols, y, 2), col[:, None] == col[None, :])
    expected = F.linear(z, layer.proj.weight, layer.proj.bias).view_as(x)
    with torch.no_grad():
        torch.testing.assert_close(layer(x), expected, rtol=1e-10, atol=1e-12)


# ------------------------------------------------------------------------------------------- neighborhood_ref
def _natten_mask(H, W, kernel):
    """``[N, N]`` (query, key) mask of NATTEN's 2-D neighbourhood, by loops, in the form of NATTEN's Flex Attention
    mask: the window's centre is the query clamped to ``[left, L - 1 - right]``, and the keys run from ``centre -
    left`` to ``centre + right`` with ``left = kernel // 2``, ``right = kernel // 2 - (1 if kernel is even)``."""
    left, right = kernel // 2, kernel // 2 + (kernel % 2 - 1)
    allowed = torch.zeros(H * W, H * W, dtype=torch.bool)
    for i in range(H):
        for j in range(W):
            ci, cj = min(max(i, left), H - 1 - right), min(max(j, left), W - 1 - right)
            for a in range(ci - left, ci + right + 1):
                for b in range(cj - left, cj + right + 1):
                    allowed[i * W + j, a * W + b] = True
    assert (allowed.sum(1) == kernel * kernel).all()  # every query sees exactly kernel² keys
    return allowed


@pytest.mark.parametrize("tile", [1, 2, 8])
@pytest.mark.parametrize("grid, kernel", [((6, 9), 3), ((6, 9), 4), ((5, 7), 5), ((4, 4), 4)])
def test_neighborhood_ref_is_dense_attention_under_the_natten_mask(grid, kernel, tile):
    """Outputs and input gradients equal a dense masked softmax (odd and even kernels, border clamping, a kernel as
    large as the grid), whatever the query tiles: one query each, tiles with a shifted last one, one tile."""
    H, W = grid
    layer = create_attention("neighborhood_ref", dim=16, heads=2, kernel=kernel, tile=tile).double().eval()
    x = _x(H=H, W=W).requires_grad_(True)
    y = _dense(*_qkv(layer.qkv, x.flatten(1, 2), 2), _natten_mask(H, W, kernel))
    expected = F.linear(y, layer.proj.weight, layer.proj.bias).view_as(x)
    out = layer(x)
    torch.testing.assert_close(out, expected, rtol=1e-10, atol=1e-12)
    grad_out = torch.randn_like(out)
    (ours,) = torch.autograd.grad(out, x, grad_out)
    (theirs,) = torch.autograd.grad(expected, x, grad_out)
    torch.testing.assert_close(ours, theirs, rtol=1e-10, atol=1e-12)


@pytest.mark.parametrize("kernel", [3, 4])
def test_neighborhood_ref_matches_natten(kernel):
    """Where NATTEN imports, the optional ``neighborhood`` (natten.na2d) and the reference agree with copied weights."""
    pytest.importorskip("natten")
    natten_layer = create_attention("neighborhood", dim=16, heads=2, kernel=kernel).eval()
    reference = create_attention("neighborhood_ref", dim=16, heads=2, kernel=kernel).eval()
    reference.load_state_dict(natten_layer.state_dict())
    x = _x(H=8, W=10).float()
    with torch.no_grad():
        torch.testing.assert_close(reference(x), natten_layer(x), rtol=1e-4, atol=1e-5)


# ------------------------------------------------------------------------------------------------------ maxvit
def _maxvit_stage(attn, x, group, pos, side):
    """One MaxViT partition stage, dense: tokens attend within their ``group [N]``, with timm's relative position
    bias ``table[(Δrow + side - 1)·(2·side - 1) + Δcol + side - 1]``, Δ = query minus key position ``pos [N, 2]``
    inside the partition. ``x [B, N, C] → [B, N, C]``."""
    heads = attn.num_heads
    delta = pos[:, None, :] - pos[None, :, :] + side - 1  # N, N, 2
    delta = delta.clamp(0, 2 * side - 2)  # pairs of different partitions leave the table's range; they are masked
    bias = attn.rel_pos.relative_position_bias_table[delta[..., 0] * (2 * side - 1) + delta[..., 1]]  # N, N, heads
    out = _dense(*_qkv(attn.qkv, x, heads, layout="h3d"), group[:, None] == group[None, :], bias.permute(2, 0, 1))
    return F.linear(out, attn.proj.weight, attn.proj.bias)


@pytest.mark.parametrize("fused", [True, False])
@pytest.mark.parametrize("grid, window, grid_size", [((4, 6), 2, 2), ((6, 6), 2, 3), ((6, 12), 3, 2)])
def test_maxvit_is_block_attention_then_grid_attention(grid, window, grid_size, fused):
    """maxvit = dense attention within ``window × window`` blocks, then within the ``grid_size × grid_size`` groups
    of tokens ``(H / grid_size, W / grid_size)`` apart, each with its relative position bias."""
    H, W = grid
    layer = create_attention("maxvit", dim=16, heads=2, window=window, grid_size=grid_size, fused=fused)
    layer = layer.double().eval()
    with torch.no_grad():  # a bias far from zero, so a misplaced one cannot hide
        for attn in (layer.block_attn, layer.grid_attn):
            attn.rel_pos.relative_position_bias_table.normal_()
    row, col = _coords(H, W)
    x = _x(H=H, W=W)
    block = (row // window) * (W // window) + col // window
    y = _maxvit_stage(layer.block_attn, x.flatten(1, 2), block, torch.stack([row % window, col % window], 1), window)
    sh, sw = H // grid_size, W // grid_size  # spacing of a group's tokens
    group = (row % sh) * sw + col % sw
    z = _maxvit_stage(layer.grid_attn, y, group, torch.stack([row // sh, col // sw], 1), grid_size)
    with torch.no_grad():
        torch.testing.assert_close(layer(x), z.view_as(x), rtol=1e-10, atol=1e-12)


# ----------------------------------------------------------------------------------------------------- swin_v2
@pytest.mark.parametrize("shift", [0, 2])
def test_swin_v2_equals_timms_block_attention(shift):
    """The layer is timm's ``SwinTransformerV2Block`` attention branch (roll, partition, V2 window attention with
    its mask, reverse, roll back) with the same weights, on a non-square grid."""
    from timm.models.swin_transformer_v2 import SwinTransformerV2Block

    ours = create_attention("swin_v2", dim=16, heads=2, window=4, shift=shift).double().eval()
    with torch.no_grad():  # move q/v biases and logit scale off their constant initial values
        for p in ours.parameters():
            p.add_(0.1 * torch.randn_like(p))
    block = SwinTransformerV2Block(16, input_resolution=(8, 12), num_heads=2, window_size=4, shift_size=shift)
    block = block.double().eval()
    block.attn.load_state_dict(ours.attn.state_dict())  # PairLinear keeps nn.Linear's parameter names
    x = _x(H=8, W=12)
    with torch.no_grad():
        torch.testing.assert_close(ours(x), block._attn(x), rtol=1e-10, atol=1e-12)


def test_pair_linear_equals_linear():
    from attnbench.attention.swin_v2 import PairLinear

    linear = torch.nn.Linear(2, 7).double()
    pair = PairLinear(2, 7).double()
    pair.load_state_dict(linear.state_dict())
    x = torch.randn(3, 5, 2, dtype=torch.float64)
    torch.testing.assert_close(pair(x), linear(x), rtol=1e-12, atol=1e-12)


# --------------------------------------------------------------------------------------------- receptive field
@pytest.mark.parametrize("name, kwargs, grid", [
    ("maxvit", dict(window=2, grid_size=2), (4, 4)),  # reach 2·2 = 4: global
    ("maxvit", dict(window=2, grid_size=2), (8, 8)),  # reach 4 < 8: the group's blocks leave rows out
    ("maxvit", dict(window=2, grid_size=2), (4, 8)),  # rows reached, columns not
    ("maxvit", dict(window=2, grid_size=4), (8, 8)),  # reach 8: global
    ("axial", {}, (5, 7)),
    ("neighborhood_ref", dict(kernel=3), (3, 3)),
    ("neighborhood_ref", dict(kernel=3), (5, 4)),
    ("swin_v2", dict(window=4), (4, 4)),
    ("swin_v2", dict(window=4), (8, 4)),
], ids=lambda v: str(v))
def test_far_corner_moves_exactly_when_the_layer_says_global(name, kwargs, grid):
    H, W = grid
    layer = create_attention(name, dim=16, heads=2, **kwargs).double().eval()
    x = _x(B=1, H=H, W=W)
    y = x.clone()
    y[:, 0, 0] += 1.0
    with torch.no_grad():
        change = (layer(x)[:, -1, -1] - layer(y)[:, -1, -1]).abs().max().item()
    assert (change > 1e-9) == layer.is_global(H, W), (name, grid, change, layer.receptive_field(H, W))
