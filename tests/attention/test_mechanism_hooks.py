"""What is particular to a mechanism is asked of the mechanism: receptive field, per-block options, capabilities.
Parametrised over the registry, so a new mechanism is covered with no new test code."""

from __future__ import annotations

import pytest
import torch

from attnbench import create_attention, list_attentions
from attnbench.registry import build_for_grid, capability_reasons, receptive_field


@pytest.mark.parametrize("name", list_attentions())
def test_receptive_field_is_within_the_grid_and_consistent_with_is_global(name):
    for h, w in ((16, 16), (32, 32), (16, 32)):
        layer = build_for_grid(name, 32, 4, h, w)
        if capability_reasons(layer, h, w):
            continue
        rows, cols = receptive_field(layer, h, w)
        assert 1 <= rows <= h and 1 <= cols <= w, (name, h, w, rows, cols)
        if hasattr(layer, "is_global"):
            assert layer.is_global(h, w) == (rows >= h and cols >= w)


@pytest.mark.parametrize("name", list_attentions())
def test_the_declared_receptive_field_is_true(name):
    """A change at token (0, 0) moves the output at the far corner (H-1, W-1) after one layer exactly when the
    mechanism declares itself global at that grid ("does not move" is exact: the far corner's computation never
    reads the perturbed token)."""
    checked = 0
    for h, w in ((16, 16), (16, 32), (64, 64)):
        layer = build_for_grid(name, 16, 2, h, w)
        if capability_reasons(layer, h, w):
            continue
        # float64 where the mechanism takes it (so "does not move" is exact up to independent rounding), else fp32
        dtype = torch.float64 if not capability_reasons(layer, h, w, "cpu", torch.float64) else torch.float32
        layer = layer.to(dtype)
        x = torch.randn(1, h, w, 16, dtype=dtype, generator=torch.Generator().manual_seed(0))
        y = x.clone()
        y[:, 0, 0] += 3.0
        with torch.no_grad():
            moved = (layer(x)[:, -1, -1] - layer(y)[:, -1, -1]).abs().max().item()
        rows, cols = receptive_field(layer, h, w)
        if rows >= h and cols >= w:
            assert moved > 1e-9, (name, h, w, "declared global, but the far corner did not move")
        else:
            assert moved == 0.0, (name, h, w, f"declared {rows}x{cols}, but the far corner moved by {moved:.3g}")
        checked += 1
    assert checked, f"{name} runs on none of the test grids"


@pytest.mark.parametrize("name", list_attentions())
def test_block_kwargs_build_every_block(name):
    """A stack of four blocks can be built from the mechanism's own per-block options."""
    layers = [build_for_grid(name, 32, 4, 16, 16, block=i) for i in range(4)]
    x = torch.randn(1, 16, 16, 32)
    with torch.no_grad():
        for layer in layers:
            if not capability_reasons(layer, 16, 16):
                assert layer(x).shape == x.shape


def test_known_receptive_fields():
    assert receptive_field(create_attention("swin", 32, 4, window=8), 32, 32) == (8, 8)
    assert create_attention("full", 32, 4).is_global(64, 64)
    # mano k=2, r=2 on 16x16: levels 16, 8, 4, 2 -> the coarsest window spans 2 * 2^3 = 16 tokens: global
    mano = create_attention("mano", 32, 4, window=2, stride=1, rate=2)
    assert mano.is_global(16, 16) and receptive_field(mano, 16, 16) == (16, 16)
    assert not create_attention("mano", 32, 4, window=2, rate=2, max_levels=2).is_global(16, 16)


def test_swin_alternates_its_shift_unless_given():
    shifts = [build_for_grid("swin_w8", 32, 4, 16, 16, block=i).shift for i in range(4)]
    assert shifts == [0, 4, 0, 4]
    assert [build_for_grid("swin_local_w2", 32, 4, 16, 16, block=i).shift for i in range(2)] == [0, 0]


@pytest.mark.parametrize("shift", [(2, 2), (0, 2), (2, 0)])
def test_swin_mask_equals_timm_block_mask(shift):
    """Our SW-MSA mask is exactly the one timm's SwinTransformerBlock builds (public class, no stand-in)."""
    from timm.models.swin_transformer import SwinTransformerBlock

    from attnbench.attention.swin import shifted_window_mask

    block = SwinTransformerBlock(dim=8, input_resolution=(16, 8), num_heads=2, window_size=4, shift_size=2)
    block.shift_size = shift  # timm keeps a per-axis tuple
    x = torch.zeros(1, 16, 8, 8)
    ours = shifted_window_mask(16, 8, 4, shift, dtype=x.dtype)
    theirs = block.get_attn_mask(x)
    assert ours is not None and theirs is not None and torch.equal(ours, theirs)
    assert shifted_window_mask(16, 8, 4, (0, 0)) is None
