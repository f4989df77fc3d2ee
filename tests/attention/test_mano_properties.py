"""MANO-specific properties: receptive field, resolution-independent parameters, admissibility."""

from __future__ import annotations

import os

import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st
from native_kernel import needs_native, skip_unless_native

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


@needs_native
def test_auto_path_follows_the_tokens_per_call():
    """``auto`` takes the native kernel on CPU in float32 / float64 for windows up to NATIVE_MAX_WINDOW (not while
    training with attention dropout). Elsewhere (here: bfloat16) it picks packed up to PACKED_MAX_TOKENS tokens per
    call (B·H·W), the canvas up to CANVAS_MAX_TOKENS, the per-level shifted path above; windows too large for the
    shifted formulation go from packed straight to sdpa. The forward reports the path it ran."""
    from attnbench.attention.mano_paths import NATIVE_MAX_WINDOW
    from attnbench.attention.packed_windows import CANVAS_MAX_TOKENS, PACKED_MAX_TOKENS

    mano = create_attention("mano", dim=16, heads=2)
    sizes = (PACKED_MAX_TOKENS, PACKED_MAX_TOKENS + 1, CANVAS_MAX_TOKENS, CANVAS_MAX_TOKENS + 1, None)
    assert {mano.path_for(t) for t in sizes} == {mano.path_for(t, dtype=torch.float64) for t in sizes} == {"native"}
    assert [mano.path_for(t, dtype=torch.bfloat16) for t in sizes] == ["packed", "canvas", "canvas", "shifted",
                                                                       "shifted"]
    assert mano.path_for(4, device="meta") == "packed"
    wide = create_attention("mano", dim=16, heads=2, window=NATIVE_MAX_WINDOW + 1, stride=1, rate=2)
    assert [wide.path_for(t) for t in (PACKED_MAX_TOKENS, PACKED_MAX_TOKENS + 1)] == ["packed", "sdpa"]
    dropping = create_attention("mano", dim=16, heads=2, dropout=0.1)
    assert dropping.train().path_for(4) == "packed" and dropping.eval().path_for(4) == "native"
    assert create_attention("mano", dim=16, heads=2, path="shifted").path_for(4) == "shifted"
    with torch.no_grad():
        for x, expected in ((torch.randn(1, 16, 16, 16), "native"),
                            (torch.randn(1, 16, 16, 16, dtype=torch.bfloat16), "packed"),
                            (torch.randn(4, 16, 16, 16, dtype=torch.bfloat16), "canvas")):
            mano.to(x.dtype)(x)
            assert mano.extra_info()["window_path"] == expected


@pytest.mark.parametrize("shapes,k,s", [([(8, 8), (4, 4), (2, 2)], 2, 1), ([(27, 27), (9, 9), (3, 3)], 3, 2),
                                        ([(16, 12), (4, 3)], 3, 1), ([(24, 24), (12, 12), (6, 6)], 3, 3)])
def test_level_canvas_holds_every_levels_windows_and_no_other(shapes, k, s):
    """Brute force: the levels do not overlap on the canvas, the valid window positions are exactly the levels' own
    windows (each wholly inside one level), and ``count`` is each level's own coverage."""
    from attnbench.attention.packed_windows import coverage, level_canvas

    canvas = level_canvas(shapes, k, s, torch.device("cpu"), torch.float64)
    owner = torch.full((canvas.height, canvas.width), -1)
    for level, ((oy, ox), (h, w)) in enumerate(zip(canvas.offsets, shapes)):
        assert oy % s == 0 and ox % s == 0  # the level's windows fall on the canvas's window grid
        assert (owner[oy : oy + h, ox : ox + w] == -1).all()
        owner[oy : oy + h, ox : ox + w] = level
    expected = sum(((h - k) // s + 1) * ((w - k) // s + 1) for h, w in shapes)
    assert int(canvas.valid.sum()) == expected
    for y, x in canvas.valid.nonzero().tolist():
        cells = owner[y * s : y * s + k, x * s : x * s + k]
        assert cells.shape == (k, k) and (cells == cells[0, 0]).all() and cells[0, 0] >= 0
    for (oy, ox), (h, w) in zip(canvas.offsets, shapes):
        own = coverage(h, k, s)[:, None].double() * coverage(w, k, s)[None, :].double()
        assert torch.equal(canvas.count[oy : oy + h, ox : ox + w], own)
    assert (canvas.count[owner == -1] == 1).all()  # never read, never divided by zero


@pytest.mark.parametrize("path", ["native", "canvas", "packed", "shifted", "sdpa"])
# 2·16²: the all-level paths (their levels' outputs are views of one tensor); 3·64² tokens: above CANVAS_MAX_TOKENS,
# level by level.
@pytest.mark.parametrize("batch,side", [(2, 16), (3, 64)])
def test_inference_equals_training_mode_and_leaves_its_input_alone(path, batch, side):
    """Without autograd the level-by-level V-cycle sums each prolongated level into the finer level's output in
    place, and the kernel runs without its autograd Function: the output must equal the differentiable forward's
    and be contiguous, and the input (which the in-place sums must never reach) must come back unchanged."""
    if path == "native":
        skip_unless_native()
    torch.manual_seed(0)
    mano = create_attention("mano", dim=16, heads=2, path=path)
    x = torch.randn(batch, side, side, 16)
    kept = x.clone()
    expected = mano(x)
    with torch.no_grad():
        got = mano(x)
    torch.testing.assert_close(got, expected.detach(), rtol=1e-6, atol=1e-6)
    assert torch.equal(x, kept) and got.is_contiguous()


@pytest.mark.parametrize("path", ["native", "canvas", "packed", "shifted"])
def test_mano_traces_into_one_small_graph(path):
    """What ``torch.compile`` sees: one graph with no break and a bounded operator count. Building the level plans
    with tensor slice updates traced hundreds of tiny operators (compiling at 32² took over 7 minutes) and ``.tolist``
    or ``bincount`` broke the graph."""
    if path == "native":
        skip_unless_native()
    torch._dynamo.reset()
    mano = create_attention("mano", dim=16, heads=2, path=path)
    explained = torch._dynamo.explain(mano)(torch.randn(1, 16, 16, 16))
    assert explained.graph_break_count == 0 and explained.graph_count == 1
    assert explained.op_count < 120


@pytest.mark.parametrize("r,bias", [(2, False), (3, True), (4, False)])
def test_patch_convolutions_equal_the_modules(r, bias):
    """The channels-last patch products against ``Conv2d`` / ``ConvTranspose2d`` themselves, float64, outputs and
    weight gradients."""
    from torch import nn

    from attnbench.attention._patches import patch_conv, patch_conv_transpose

    torch.manual_seed(0)
    conv = nn.Conv2d(5, 7, r, stride=r, bias=bias).double()
    deconv = nn.ConvTranspose2d(7, 5, r, stride=r, bias=False).double()
    x = torch.randn(2, 3 * r, 2 * r, 5, dtype=torch.float64)
    down = patch_conv(x, conv)
    expected = conv(x.permute(0, 3, 1, 2)).permute(0, 2, 3, 1)
    assert down.shape == (2, 3, 2, 7) and (down - expected).abs().max().item() < 1e-12
    up = patch_conv_transpose(down, deconv)
    expected_up = deconv(expected.permute(0, 3, 1, 2)).permute(0, 2, 3, 1)
    assert up.shape == x.shape and (up - expected_up).abs().max().item() < 1e-12
    x.requires_grad_(True)
    params = [x, conv.weight, deconv.weight]
    grads = torch.autograd.grad(patch_conv_transpose(patch_conv(x, conv), deconv).square().sum(), params)
    reference = deconv(conv(x.permute(0, 3, 1, 2))).permute(0, 2, 3, 1)
    for g, g_ref in zip(grads, torch.autograd.grad(reference.square().sum(), params)):
        assert (g - g_ref).abs().max().item() < 1e-10


@pytest.mark.parametrize("path", ["native", "packed"])
def test_inference_keeps_its_patch_matrices_only_while_the_weights_stay(path):
    """Inference keeps the down and up convolutions' patch matrices between calls; an in-place change of a weight
    (an optimiser step, a load) and new weight storage (what ``Module.to`` does) must each be seen by the next
    call: its output equals the differentiable forward's, which makes the matrices afresh."""
    if path == "native":
        skip_unless_native()
    torch.manual_seed(0)
    mano = create_attention("mano", dim=16, heads=2, path=path)
    x = torch.randn(2, 16, 16, 16)

    def check(x):
        with torch.no_grad():
            got = mano(x)
        torch.testing.assert_close(got, mano(x).detach(), rtol=1e-6, atol=1e-6)

    check(x)
    with torch.no_grad():
        mano.down.weight.mul_(-2.0)
        mano.up.weight.add_(0.5)
    check(x)
    mano.load_state_dict({k: v * 0.5 if k.endswith("weight") else v for k, v in mano.state_dict().items()})
    check(x)
    mano.down.weight.data = mano.down.weight.data * 3.0  # new storage, a fresh version counter
    mano.up.weight.data = mano.up.weight.data.flip(0).contiguous()
    check(x)
