"""MANO-specific properties: receptive field, resolution-independent parameters, admissibility."""

from __future__ import annotations

import os

import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st

from attnbench import create_attention


def _in_ci() -> bool:
    return os.environ.get("CI", "").lower() not in ("", "0", "false")


# In CI, Hypothesis draws the same examples on every run (a red CI is reproducible, never a lucky or unlucky draw);
# locally it explores. Loaded before the @settings below, which inherit from the loaded profile.
settings.register_profile("attnbench-ci", derandomize=True, deadline=None, print_blob=True)
if _in_ci():
    settings.load_profile("attnbench-ci")


def _corner_effect(mano, H=32, W=32) -> float:
    x = torch.randn(1, H, W, 16, generator=torch.Generator().manual_seed(0))
    y = x.clone()
    # Perturb the top-left token along a random direction (a constant shift would vanish in the LayerNorms).
    y[:, 0, 0] += 5.0 * torch.randn(16, generator=torch.Generator().manual_seed(1))
    with torch.no_grad():
        return (mano(x)[:, -1, -1] - mano(y)[:, -1, -1]).abs().max().item()


@pytest.mark.parametrize("down,up", [("conv", "conv"), ("pool", "nearest")])
def test_one_layer_is_global_when_window_covers_rate(down, up):
    torch.manual_seed(0)
    mano = create_attention("mano", dim=16, heads=2, window=2, stride=1, rate=2, down=down, up=up).eval()
    # k >= r: the coarsest 2x2 grid is one window. The effect is small (the "paper" weights damp level 4 by
    # 1/4!), but unaffected tokens are bit-identical, so anything well above float noise is a real path.
    assert _corner_effect(mano) > 1e-6
    mano.max_levels = 1
    assert _corner_effect(mano) == 0.0  # one level: a 2x2 window reaches 1 token away


def test_window_smaller_than_rate_is_not_global_in_one_layer():
    """k < r (the paper's Darcy demo, r=4, k=2) leaves the far corner out of reach of a single layer."""
    mano = create_attention("mano", dim=16, heads=2, window=2, stride=1, rate=4).eval()
    assert _corner_effect(mano, 64, 64) == 0.0


def test_parameter_count_is_resolution_independent():
    mano = create_attention("mano", dim=32, heads=4)
    n = sum(p.numel() for p in mano.parameters())
    for H in (16, 32, 64):
        ref = create_attention("mano_reference", dim=32, heads=4, image_size=H)
        assert sum(p.numel() for p in ref.parameters()) == n
        assert mano.level_shapes(H, H)[-1] == (2, 2)  # levels grow with the grid, weights do not
    assert len(mano.level_shapes(64, 64)) == 6 and len(mano.level_shapes(16, 16)) == 4


def test_level_rule_matches_reference_floor_log():
    from attnbench.attention.base import log_floor

    for r in (2, 3, 4):
        mano = create_attention("mano", dim=8, heads=1, window=2, stride=1, rate=r)
        for j in range(1, 6):
            n = r**j
            if n >= 2:
                assert len(mano.level_shapes(n, n)) == max(1, log_floor(n, r))


@settings(max_examples=40, deadline=None)
@given(
    H=st.integers(1, 40), W=st.integers(1, 40), k=st.integers(1, 5), s=st.integers(1, 5), r=st.integers(2, 4),
    down=st.sampled_from(["conv", "pool"]), up=st.sampled_from(["conv", "nearest"]),
)
def test_grids_are_reported_or_finite(H, W, k, s, r, down, up):
    """Any (grid, window, stride, rate): either not_supported_reasons says why, or the output is finite."""
    if s > k:
        with pytest.raises(ValueError, match="stride"):
            create_attention("mano", dim=8, heads=2, window=k, stride=s, rate=r)
        return
    mano = create_attention("mano", dim=8, heads=2, window=k, stride=s, rate=r, down=down, up=up).eval()
    reasons = mano.not_supported_reasons(H, W)
    x = torch.randn(1, H, W, 8)
    if reasons:
        with pytest.raises(ValueError):
            mano(x)
    else:
        with torch.no_grad():
            y = mano(x)
        assert y.shape == x.shape and torch.isfinite(y).all()


@pytest.mark.skipif(not _in_ci(), reason="CI is not set: Hypothesis draws new examples locally")
def test_hypothesis_is_derandomized_in_ci():
    used = test_grids_are_reported_or_finite._hypothesis_internal_use_settings
    assert used.derandomize and used.database is None and used.max_examples == 40


def test_inadmissible_examples_are_reported():
    mano = create_attention("mano", dim=8, heads=2, window=2, stride=2)
    assert any("stride" in r for r in mano.not_supported_reasons(15, 16))
    assert any("smaller than window" in r for r in create_attention("mano", dim=8, heads=2, window=4)
               .not_supported_reasons(2, 8))
    ref = create_attention("mano_reference", dim=8, heads=2, image_size=16)
    assert any("image_size=16" in r for r in ref.not_supported_reasons(32, 32))


def test_level_weights_finest_keep_the_trained_levels_weights():
    """``finest`` counts levels from the finest grid: one more (coarser) level, as a finer input adds, leaves the
    weights of the levels a model was trained with unchanged; ``paper`` (counted from the coarsest) re-weights all."""
    from attnbench import create_attention

    paper = create_attention("mano", dim=16, heads=2, level_weighting="paper")
    finest = create_attention("mano", dim=16, heads=2, level_weighting="finest")
    assert finest.level_weights(4)[:2] == finest.level_weights(3) == [1.0, 0.5]
    assert paper.level_weights(3) == [0.5, 1.0] and paper.level_weights(4)[:2] != paper.level_weights(3)
    x = torch.randn(1, 16, 16, 16)
    one_level = create_attention("mano", dim=16, heads=2, level_weighting="finest", max_levels=1)
    assert torch.isfinite(finest(x)).all() and one_level.level_weights(1) == []
