"""Each mechanism against an independent reference computation."""

from __future__ import annotations

import pytest
import torch
from native_kernel import needs_native, skip_unless_native

from attnbench import create_attention
from attnbench.attention.linear import elu_feature_map
from attnbench.attention.mano_reference import ReferenceLocalAttention2D


def _x(B=2, H=8, W=8, C=32, seed=0, dtype=torch.float32):
    return torch.randn(B, H, W, C, generator=torch.Generator().manual_seed(seed), dtype=dtype)


def _copy_qkv_proj(dst, src):
    dst.qkv.load_state_dict(src.qkv.state_dict())
    dst.proj.load_state_dict(src.proj.state_dict())


@pytest.mark.parametrize("backend", ["auto", "math", "flash"])
def test_full_matches_naive(backend):
    full = create_attention("full", dim=32, heads=4, backend=backend).eval()
    naive = create_attention("full_naive", dim=32, heads=4).eval()
    _copy_qkv_proj(naive, full)
    x = _x(H=12, W=10)
    with torch.no_grad():
        assert (full(x) - naive(x)).abs().max().item() < 1e-5
    from attnbench.measure.profiling import sdpa_kernels

    with torch.no_grad():  # the kernel that ran, as the harness records it (auto picks flash on CPU)
        assert sdpa_kernels(lambda: full(x)) == (backend if backend != "auto" else "flash")
        assert sdpa_kernels(lambda: naive(x)) == "none"


def test_full_backend_is_pinned():
    """Pinning a backend really restricts SDPA: on CPU the CUDA-only ones refuse to run."""
    full = create_attention("full", dim=32, heads=4, backend="efficient").eval()
    assert full.not_supported_reasons(8, 8, "cpu") == ["SDPA backend efficient needs CUDA"]
    with pytest.raises(RuntimeError):
        full(_x())


@pytest.mark.parametrize("grid", [(8, 8), (8, 16)])
def test_swin_window_equals_full(grid):
    """One window covering the grid, no shift, zero relative bias: Swin is global attention."""
    H, W = grid
    swin = create_attention("swin", dim=32, heads=4, window=H, shift=0).eval()
    full = create_attention("full", dim=32, heads=4).eval()
    _copy_qkv_proj(full, swin.attn)
    with torch.no_grad():
        swin.attn.relative_position_bias_table.zero_()
    x = _x(H=H, W=H)
    with torch.no_grad():
        assert (swin(x) - full(x)).abs().max().item() < 1e-5
    if W != H:  # two windows side by side: each half equals full attention on that half
        x = _x(H=H, W=W)
        with torch.no_grad():
            out = swin(x)
            for j in (0, H):
                assert (out[:, :, j:j + H] - full(x[:, :, j:j + H])).abs().max().item() < 1e-5


def test_swin_shift_mask_blocks_wrapped_regions():
    """With a shift, a token's output must not depend on tokens that only wrapped around into its window."""
    swin = create_attention("swin", dim=16, heads=2, window=4, shift=2).eval()
    x = _x(B=1, H=8, W=8, C=16)
    y = x.clone()
    y[:, 0, 0] += 10.0  # top-left token; after the roll it shares a window with the bottom-right corner
    with torch.no_grad():
        a, b = swin(x), swin(y)
    assert (a[:, 7, 7] - b[:, 7, 7]).abs().max().item() < 1e-6  # masked: wrapped region
    assert (a[:, 1, 1] - b[:, 1, 1]).abs().max().item() > 1e-4  # same window and region: changes


def test_swin_fused_and_manual_paths_agree():
    swin = create_attention("swin", dim=32, heads=4, window=4, shift=2).eval()
    x = _x(H=8, W=8)
    with torch.no_grad():
        a = swin(x)
        swin.attn.fused_attn = False
        b = swin(x)
    assert (a - b).abs().max().item() < 1e-5


def test_linear_equals_explicit_quadratic_form():
    lin = create_attention("linear", dim=32, heads=4).eval()
    x = _x(H=6, W=7)
    B, H, W, C = x.shape
    with torch.no_grad():
        qkv = lin.qkv(x.reshape(B, H * W, C)).reshape(B, H * W, 3, 4, 8).permute(2, 0, 3, 1, 4)
        q, k, v = elu_feature_map(qkv[0]), elu_feature_map(qkv[1]), qkv[2]
        sim = q @ k.transpose(-2, -1)  # B, h, N, N — the explicit O(N^2) kernel matrix
        out = (sim / (sim.sum(-1, keepdim=True) + lin.eps)) @ v
        expected = lin.proj(out.transpose(1, 2).reshape(B, H, W, C))
        assert (lin(x) - expected).abs().max().item() < 1e-5


MANO_CASES = [  # (H, window, stride, rate, down, up)
    (16, 2, 1, 2, "conv", "conv"),
    (16, 2, 2, 2, "pool", "nearest"),
    (32, 2, 1, 4, "conv", "conv"),
    (16, 4, 2, 4, "pool", "conv"),
    (27, 3, 1, 3, "conv", "nearest"),
    (27, 3, 2, 3, "conv", "conv"),  # ceil(k/s) groups with gaps between windows
    (24, 3, 3, 2, "conv", "conv"),
    (128, 2, 1, 2, "conv", "conv"),  # the configuration of the README's mano vs mano_reference numbers
]


@pytest.mark.parametrize("path", ["native", "shifted", "sdpa", "packed", "canvas"])
@pytest.mark.parametrize("case", MANO_CASES, ids=lambda c: "H{}-k{}-s{}-r{}-{}-{}".format(*c))
def test_mano_equals_reference(case, path):
    """Outputs within 1e-5, input gradients within 1e-4 and every parameter's gradient within 1e-4 (relative to
    its largest entry) of the authors' code, on every window path."""
    H, k, s, r, down, up = case
    if H == 128 and path != "native":
        pytest.skip("the large case runs on the default path only (time)")
    if path == "native":
        skip_unless_native()
    torch.manual_seed(0)
    C = 64 if H == 128 else 32
    ref = create_attention("mano_reference", dim=C, heads=4, image_size=H, window=k, stride=s, rate=r,
                           down=down, up=up).eval()
    mano = create_attention("mano", dim=C, heads=4, window=k, stride=s, rate=r, down=down, up=up, path=path).eval()
    mano.load_reference_weights(ref)
    x = _x(B=1 if H == 128 else 2, H=H, W=H, C=C).requires_grad_(True)
    a, b = ref(x), mano(x)
    assert mano.extra_info()["levels"] == ref.levels
    assert mano.extra_info()["window_path"] == path
    assert (a - b).abs().max().item() < 1e-5
    pairs = [(m, t) for m, t in mano.reference_pairs(ref) if list(m.parameters())]
    mine = [p for m, _ in pairs for p in m.parameters()]
    theirs = [p for _, t in pairs for p in t.parameters()]
    assert mine and len(mine) == len(theirs)
    ga, *grads_ref = torch.autograd.grad(a.square().sum(), [x, *theirs])
    gb, *grads = torch.autograd.grad(b.square().sum(), [x, *mine])
    assert (ga - gb).abs().max().item() < 1e-4
    for g_ref, g in zip(grads_ref, grads):
        assert (g_ref - g).abs().max().item() <= 1e-4 * max(1.0, g_ref.abs().max().item())


def test_overlapping_windows_equal_per_window_attention():
    """The shifted formulation against a loop over every window (one SDPA each), float64, with and without bands,
    and its hand-written backward against finite differences."""
    from attnbench.attention.overlapping_windows import overlapping_window_attention
    from attnbench.attention.packed_windows import coverage

    gen = torch.Generator().manual_seed(0)
    for h, w, k, s, block in [(8, 8, 2, 1, 10**6), (8, 8, 2, 1, 16), (9, 7, 3, 2, 14), (10, 10, 4, 2, 30),
                              (6, 6, 3, 3, 6), (5, 5, 1, 1, 10**6)]:
        B, heads, d = 2, 3, 4
        qkv = torch.randn(3, heads, d, B, h, w, dtype=torch.float64, generator=gen, requires_grad=True)
        count = coverage(h, k, s)[:, None].double() * coverage(w, k, s)[None, :].double()
        expected = torch.zeros(heads, d, B, h, w, dtype=torch.float64)
        q, key, v = (t.permute(2, 0, 3, 4, 1) for t in qkv.unbind(0))  # B, heads, h, w, d
        for i in range(0, h - k + 1, s):
            for j in range(0, w - k + 1, s):
                win = [t[:, :, i : i + k, j : j + k].reshape(B, heads, k * k, d) for t in (q, key, v)]
                o = torch.nn.functional.scaled_dot_product_attention(*win).reshape(B, heads, k, k, d)
                expected[..., i : i + k, j : j + k] += o.permute(1, 4, 0, 2, 3)
        expected = expected / count
        got = overlapping_window_attention(qkv, k, s, count, block_tokens=block)
        assert (got - expected).abs().max().item() < 1e-12, (h, w, k, s, block)
        g = torch.randn_like(got, generator=gen)
        (grad_got,) = torch.autograd.grad((got * g).sum(), qkv)
        (grad_expected,) = torch.autograd.grad((expected * g).sum(), qkv)
        assert (grad_got - grad_expected).abs().max().item() < 1e-12
    count = coverage(5, 2, 1)[:, None].double() * coverage(4, 2, 1)[None, :].double()
    qkv = torch.randn(3, 2, 3, 1, 5, 4, dtype=torch.float64, generator=gen, requires_grad=True)
    assert torch.autograd.gradcheck(lambda t: overlapping_window_attention(t, 2, 1, count, block_tokens=8), (qkv,))


def test_masked_windows_weigh_nothing_with_and_without_bands():
    """``valid`` (the canvas's mask): against a loop over the existing windows only, float64, in one piece and in
    bands (the mask is sliced with the band), outputs and gradients."""
    from attnbench.attention.overlapping_windows import overlapping_window_attention

    gen = torch.Generator().manual_seed(1)
    for h, w, k, s, block in [(9, 8, 2, 1, 10**6), (9, 8, 2, 1, 16), (11, 9, 3, 2, 18)]:
        B, heads, d = 2, 2, 3
        qkv = torch.randn(3, heads, d, B, h, w, dtype=torch.float64, generator=gen, requires_grad=True)
        valid = (torch.rand((h - k) // s + 1, (w - k) // s + 1, generator=gen) < 0.6).double()
        count = torch.zeros(h, w, dtype=torch.float64)
        expected = torch.zeros(heads, d, B, h, w, dtype=torch.float64)
        q, key, v = (t.permute(2, 0, 3, 4, 1) for t in qkv.unbind(0))  # B, heads, h, w, d
        for i, j in valid.nonzero().tolist():
            y, x = i * s, j * s
            win = [t[:, :, y : y + k, x : x + k].reshape(B, heads, k * k, d) for t in (q, key, v)]
            o = torch.nn.functional.scaled_dot_product_attention(*win).reshape(B, heads, k, k, d)
            expected[..., y : y + k, x : x + k] += o.permute(1, 4, 0, 2, 3)
            count[y : y + k, x : x + k] += 1
        count = count.clamp(min=1)
        expected = expected / count
        got = overlapping_window_attention(qkv, k, s, count, block_tokens=block, valid=valid)
        assert (got - expected).abs().max().item() < 1e-12, (h, w, k, s, block)
        g = torch.randn_like(got, generator=gen)
        (grad_got,) = torch.autograd.grad((got * g).sum(), qkv)
        (grad_expected,) = torch.autograd.grad((expected * g).sum(), qkv)
        assert (grad_got - grad_expected).abs().max().item() < 1e-12
    with pytest.raises(ValueError, match=r"valid must be \[Ph, Pw\]"):
        overlapping_window_attention(qkv, 2, 1, count, valid=valid[0])  # a row would broadcast: refused


def test_mano_reference_weights_must_match_hyperparameters():
    ref = create_attention("mano_reference", dim=32, heads=4, image_size=16, window=2, stride=1)
    mano = create_attention("mano", dim=32, heads=4, window=2, stride=2)
    with pytest.raises(ValueError, match="window/stride/rate"):
        mano.load_reference_weights(ref)


@needs_native
def test_mano_one_level_is_its_window_attention():
    mano = create_attention("mano", dim=32, heads=4, window=4, stride=2, max_levels=1).eval()
    local = ReferenceLocalAttention2D(4, 2, 32, 4, 8, 0.0).eval()
    local.norm.load_state_dict(mano.norm1.state_dict())
    local.attn.norm.load_state_dict(mano.norm2.state_dict())
    local.attn.to_qkv.load_state_dict(mano.to_qkv.state_dict())
    local.attn.to_out[0].load_state_dict(mano.to_out.state_dict())
    x = _x(H=16, W=12)
    with torch.no_grad():
        out = mano(x)
        assert mano.extra_info()["levels"] == 1
        assert mano.extra_info()["window_path"] == "native"
        packed = mano._packed_levels(x, mano.level_shapes(16, 12))[0]
        assert (out - packed).abs().max().item() < 1e-6
        assert (out - mano.window_attention(x)).abs().max().item() < 1e-6
        assert (out - local(x)).abs().max().item() < 1e-5
