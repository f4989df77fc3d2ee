"""The kernel / linear family against independent formulations, in float64 on small grids.

Each test rebuilds what a mechanism computes another way, from the paper's formulas and the module's weights only:
explicit N×N kernel matrices instead of right-to-left products, explicit block means instead of pooling, sums of
shifted copies instead of convolutions, ``torch.linalg.pinv`` instead of the iteration. Registry-wide properties
(FLOPs, contract, receptive field) are tested elsewhere, parametrised over the registry.
"""

from __future__ import annotations

import math

import pytest
import torch
import torch.nn.functional as F

from attnbench import create_attention
from attnbench.attention.nystrom import iterative_pinv, nystrom_attention


def _x(B=2, H=6, W=7, C=16, seed=0):
    return torch.randn(B, H, W, C, generator=torch.Generator().manual_seed(seed), dtype=torch.float64)


def _heads(module, x):
    """``q, k, v [B, heads, N, d]`` from the module's qkv projection (``QKVAttention``'s layout)."""
    B, H, W, C = x.shape
    qkv = module.qkv(x.reshape(B, H * W, C)).reshape(B, H * W, 3, module.heads, module.dim_head)
    return qkv.permute(2, 0, 3, 1, 4).unbind(0)


def _merge(module, out, H, W):
    """``[B, heads, N, d]`` → the module's output projection, ``[B, H, W, C]``."""
    return module.proj(out.transpose(1, 2).reshape(out.shape[0], H, W, -1))


def _softmax_attention(q, k, v):
    """``softmax(q kᵀ/√d) v`` with the explicit N×M matrix."""
    return torch.softmax(q @ k.transpose(-2, -1) / math.sqrt(q.shape[-1]), dim=-1) @ v


def _depthwise_conv(x, weight, bias=None):
    """Zero-padded 'same' depthwise cross-correlation as a sum of shifted copies: ``x [B, C, H, W]``,
    ``weight [C, 1, kh, kw]`` (odd sides)."""
    H, W = x.shape[-2:]
    kh, kw = weight.shape[-2:]
    padded = F.pad(x, (kw // 2, kw // 2, kh // 2, kh // 2))
    out = torch.zeros_like(x)
    for i in range(kh):
        for j in range(kw):
            out = out + weight[:, 0, i, j][None, :, None, None] * padded[:, :, i:i + H, j:j + W]
    return out if bias is None else out + bias[None, :, None, None]


def _rel(a, b):
    return ((a - b).norm() / b.norm()).item()


# --------------------------------------------------------------------------------------------------- performer
def test_performer_estimator_converges_to_softmax_attention():
    """FAVOR+ estimates the softmax kernel without bias: averaged over draws, the error of the normalised output
    falls at every step from 16 to 4096 features (about as 1/√m), and at 4096 it is a small fraction of what
    ignoring the logits (uniform attention) would cost.

    The estimator's relative variance grows like exp(|q + k|²) (q, k scaled by d^{-1/4}), so with large inputs
    these feature counts are still far from the 1/√m regime; entries of std 0.5 (logits of std 0.25) keep it there.
    """
    g = torch.Generator().manual_seed(0)
    q, k = (0.5 * torch.randn(2, 2, 64, 8, generator=g, dtype=torch.float64) for _ in range(2))
    v = torch.randn(2, 2, 64, 8, generator=g, dtype=torch.float64)
    exact = _softmax_attention(q, k, v)
    uniform = _rel(v.mean(dim=-2, keepdim=True).expand_as(v), exact)
    errors = []
    for features in (16, 64, 256, 1024, 4096):
        draws = [create_attention("performer", dim=16, heads=2, features=features, seed=s).double() for s in range(8)]
        with torch.no_grad():
            errors.append(sum(_rel(m.attend(q, k, v), exact) for m in draws) / len(draws))
    assert all(a > b for a, b in zip(errors[:-1], errors[1:], strict=True)), errors
    assert errors[-1] < errors[0] / 6 and errors[-1] < uniform / 4, (errors, uniform)


def test_performer_draw_is_fixed_seeded_and_orthogonal():
    torch.manual_seed(1)
    a = create_attention("performer", dim=32, heads=4, features=20, seed=3).eval()
    torch.manual_seed(2)  # the global generator does not matter, only ``seed``
    b = create_attention("performer", dim=32, heads=4, features=20, seed=3).eval()
    assert torch.equal(a.projection, b.projection) and a.projection.shape == (20, 8)
    assert "projection" in a.state_dict()  # a checkpoint reproduces the draw
    block = a.projection[:8].double()  # one block of d = 8 rows: orthogonal directions
    gram = block @ block.T
    assert (gram - torch.diag(torch.diagonal(gram))).abs().max().item() < 1e-5
    x = _x(C=32).float()
    with torch.no_grad():
        assert torch.equal(a(x), a(x))  # no redraw behind the caller's back
        a.redraw(4)
        assert not torch.equal(a.projection, b.projection)
        a.redraw(3)
        assert torch.equal(a.projection, b.projection)


def test_performer_default_features_follow_d_log_d():
    assert create_attention("performer", dim=64, heads=4).features == int(16 * math.log(16)) == 44
    assert create_attention("performer_f256", dim=64, heads=4).features == 256


# ------------------------------------------------------------------------------------------------ efficientvit
def test_efficientvit_is_timms_litemla_channels_first():
    """With ``norm=True`` the layer is timm's LiteMLA with its defaults (scales (5,), BatchNorm after proj)."""
    from timm.models.efficientvit_mit import LiteMLA

    ours = create_attention("efficientvit", dim=32, heads=4, norm=True).eval()
    theirs = LiteMLA(32, 32, heads=4, dim=8).eval()
    theirs.load_state_dict(ours.attn.state_dict())
    x = _x(H=6, W=10, C=32).float()
    with torch.no_grad():
        assert torch.equal(ours(x), theirs(x.permute(0, 3, 1, 2)).permute(0, 2, 3, 1))


def test_efficientvit_equals_explicit_relu_linear_attention():
    """The multi-scale qkv maps (1×1 conv, then per scale a depthwise conv and a grouped 1×1 conv), then per head
    the explicit N×N ReLU kernel matrix, normalised, times V, then the 1×1 output projection."""
    m = create_attention("efficientvit", dim=16, heads=2, scales=[3, 5], qkv_bias=True).double().eval()
    x = _x(H=5, W=7, C=16)
    B, H, W, C = x.shape
    d, t = m.dim_head, m.heads * m.dim_head
    conv = m.attn.qkv.conv
    qkv = torch.einsum("bhwc,oc->bohw", x, conv.weight[:, :, 0, 0]) + conv.bias[None, :, None, None]  # B, 3t, H, W
    maps = [qkv]
    for depthwise, grouped in m.attn.aggreg:
        y = _depthwise_conv(qkv, depthwise.weight, depthwise.bias)
        groups = grouped.groups  # 3·heads groups of d channels: each head's q, k or v mixed within itself
        w = grouped.weight[:, :, 0, 0].reshape(groups, 3 * t // groups, -1)  # group, out, in
        y = torch.einsum("goi,bgihw->bgohw", w, y.reshape(B, groups, -1, H, W)).reshape(B, 3 * t, H, W)
        maps.append(y + grouped.bias[None, :, None, None])
    heads = torch.cat(maps, dim=1).reshape(B, -1, 3 * d, H * W).transpose(-2, -1)  # B, h', N, 3d: [q | k | v]
    q, k, v = heads.split(d, dim=-1)
    kernel = F.relu(q) @ F.relu(k).transpose(-2, -1)  # B, h', N, N
    out = (kernel @ v) / (kernel.sum(dim=-1, keepdim=True) + m.attn.eps)  # B, h', N, d
    out = out.transpose(-2, -1).reshape(B, -1, H, W)  # B, t·(1+S), H, W
    proj = m.attn.proj.conv
    expected = torch.einsum("bchw,oc->bhwo", out, proj.weight[:, :, 0, 0]) + proj.bias
    assert m.extra_info()["attention_heads"] == 6
    with torch.no_grad():
        assert _rel(m(x), expected) < 1e-6  # timm runs the attention itself in float32


# ---------------------------------------------------------------------------------------------- focused_linear
def test_focused_linear_equals_explicit_kernel_attention_plus_dwc():
    m = create_attention("focused_linear", dim=16, heads=2).double().eval()
    with torch.no_grad():
        m.scale.normal_(generator=torch.Generator().manual_seed(1))  # a non-trivial per-channel scale
    x = _x(H=5, W=7, C=16)
    B, H, W, C = x.shape
    N, h, d = H * W, m.heads, m.dim_head
    q, k, v = m.qkv(x.reshape(B, N, C)).chunk(3, dim=-1)  # B, N, h·d

    def phi(t):  # f_p(y) = ‖y‖ / ‖y³‖ · y³ on y = (ReLU(t) + 1e-6) / softplus(scale), norms over all h·d channels
        y = (F.relu(t) + 1e-6) / F.softplus(m.scale)
        return y**3 * (y.norm(dim=-1, keepdim=True) / (y**3).norm(dim=-1, keepdim=True))

    q, k, v = (t.reshape(B, N, h, d).transpose(1, 2) for t in (phi(q), phi(k), v))  # B, h, N, d
    kernel = q @ k.transpose(-2, -1)  # B, h, N, N
    attention = (kernel @ v) / (kernel.sum(dim=-1, keepdim=True) + N * m.eps)
    v_grid = v.transpose(-2, -1).reshape(B * h, d, H, W)  # the heads share one depthwise kernel
    local = _depthwise_conv(v_grid, m.dwc.weight, m.dwc.bias).reshape(B, h, d, N).transpose(-2, -1)
    with torch.no_grad():
        assert _rel(m(x), _merge(m, attention + local, H, W)) < 1e-10


def test_focusing_map_keeps_the_norm_and_takes_the_direction_of_the_power():
    """The paper's two properties of f_p: ‖f_p(y)‖ = ‖y‖, and f_p(y) points along y^p (towards y's largest
    coordinates: the cosine with the largest coordinate's axis grows)."""
    from attnbench.attention.focused_linear import focusing_map

    x = torch.randn(4, 10, 12, generator=torch.Generator().manual_seed(0), dtype=torch.float64)
    y = F.relu(x) + 1e-6
    focused = focusing_map(x, torch.ones(12, dtype=torch.float64), 3)
    assert torch.allclose(focused.norm(dim=-1), y.norm(dim=-1))
    assert torch.allclose(focused / focused.norm(dim=-1, keepdim=True), y**3 / (y**3).norm(dim=-1, keepdim=True))
    assert (focused.amax(dim=-1) / focused.norm(dim=-1) >= y.amax(dim=-1) / y.norm(dim=-1) - 1e-12).all()


# ----------------------------------------------------------------------------------------------------- nystrom
def test_iterative_pinv_converges_to_the_moore_penrose_inverse():
    g = torch.Generator().manual_seed(0)
    a = torch.softmax(2 * torch.randn(3, 8, 8, generator=g, dtype=torch.float64), dim=-1)
    exact = torch.linalg.pinv(a)
    assert (iterative_pinv(a, 40) - exact).abs().max().item() < 1e-9
    assert (iterative_pinv(a, 6) - exact).abs().max().item() > 1e-6  # six iterations (the paper's) approximate


def test_nystrom_with_one_landmark_per_token_is_softmax_attention():
    g = torch.Generator().manual_seed(0)
    q, k, v = (torch.randn(2, 2, 24, 8, generator=g, dtype=torch.float64) for _ in range(3))
    out = nystrom_attention(q, k, v, landmarks=24, iterations=60)
    assert (out - _softmax_attention(q, k, v)).abs().max().item() < 1e-9


@pytest.mark.parametrize("grid,landmarks", [((6, 8), 12), ((5, 7), 8)], ids=["equal-segments", "uneven-segments"])
def test_nystrom_layer_equals_explicit_landmark_formula(grid, landmarks):
    """Landmarks as explicit segment means (runs [⌊iN/m⌋, ⌈(i+1)N/m⌉)), the three softmax kernels, an exact
    pseudo-inverse; the layer with enough iterations agrees."""
    H, W = grid
    m = create_attention("nystrom", dim=16, heads=2, landmarks=landmarks, pinv_iterations=60, conv_kernel=0)
    m = m.double().eval()
    x = _x(H=H, W=W)
    q, k, v = _heads(m, x)
    N = H * W
    runs = [(i * N // landmarks, -(-(i + 1) * N // landmarks)) for i in range(landmarks)]
    q_landmarks = torch.stack([q[:, :, a:b].mean(dim=-2) for a, b in runs], dim=-2)  # B, h, m, d
    k_landmarks = torch.stack([k[:, :, a:b].mean(dim=-2) for a, b in runs], dim=-2)
    scale = m.dim_head**-0.5
    kernel_1 = torch.softmax(q @ k_landmarks.transpose(-2, -1) * scale, dim=-1)
    kernel_2 = torch.softmax(q_landmarks @ k_landmarks.transpose(-2, -1) * scale, dim=-1)
    kernel_3 = torch.softmax(q_landmarks @ k.transpose(-2, -1) * scale, dim=-1)
    expected = _merge(m, kernel_1 @ torch.linalg.pinv(kernel_2) @ kernel_3 @ v, H, W)
    with torch.no_grad():
        assert _rel(m(x), expected) < 1e-9


def test_nystrom_on_a_grid_with_no_more_tokens_than_landmarks_is_softmax_attention():
    m = create_attention("nystrom", dim=16, heads=2, landmarks=64, conv_kernel=0).double().eval()
    x = _x(H=6, W=7)  # 42 tokens <= 64 landmarks
    with torch.no_grad():
        assert _rel(m(x), _merge(m, _softmax_attention(*_heads(m, x)), 6, 7)) < 1e-12


def test_nystrom_conv_adds_a_per_head_convolution_of_v_along_the_sequence():
    m = create_attention("nystrom", dim=16, heads=2, landmarks=8, conv_kernel=5).double().eval()
    plain = create_attention("nystrom", dim=16, heads=2, landmarks=8, conv_kernel=0).double().eval()
    plain.load_state_dict({k: t for k, t in m.state_dict().items() if not k.startswith("conv.")})
    x = _x(H=6, W=8)
    _, _, v = _heads(m, x)  # B, h, N, d
    N, kernel = v.shape[-2], m.conv.weight[:, 0, :, 0]  # heads, 5
    padded = F.pad(v, (0, 0, 2, 2))  # zeros beyond both ends of the sequence
    conv = sum(kernel[:, t][None, :, None, None] * padded[:, :, t:t + N] for t in range(5))  # B, h, N, d
    expected = plain(x) + F.linear(conv.transpose(1, 2).reshape(2, 6, 8, -1), m.proj.weight)  # proj is linear
    with torch.no_grad():
        assert _rel(m(x), expected) < 1e-12


def test_nystrom_matches_the_nystrom_attention_package():
    """lucidrains' ``nystrom-attention`` with copied weights (optional: skipped unless installed). One sample and
    one head, because that package scales its pseudo-inverse's start by a maximum over the whole batch."""
    package = pytest.importorskip("nystrom_attention")
    ours = create_attention("nystrom", dim=32, heads=1, landmarks=16, qkv_bias=False).eval()
    theirs = package.NystromAttention(dim=32, dim_head=32, heads=1, num_landmarks=16, pinv_iterations=6,
                                      residual=True, residual_conv_kernel=33).eval()
    theirs.to_qkv.load_state_dict(ours.qkv.state_dict())
    theirs.to_out[0].load_state_dict(ours.proj.state_dict())
    theirs.res_conv.load_state_dict(ours.conv.state_dict())
    x = _x(B=1, H=8, W=8, C=32).float()
    with torch.no_grad():
        assert _rel(ours(x), theirs(x.reshape(1, 64, 32)).reshape(1, 8, 8, 32)) < 1e-5


# ------------------------------------------------------------------------------------------------------- agent
def test_agent_equals_explicit_two_softmax_formula():
    """49 agents on a 14×21 grid: each agent is the mean of a 2×3 block of queries; aggregation softmax(A Kᵀ/√d) V,
    broadcast softmax(Q Aᵀ/√d) · that, plus the 3×3 depthwise conv of V."""
    m = create_attention("agent", dim=16, heads=2).double().eval()
    H, W = 14, 21
    x = _x(H=H, W=W)
    q, k, v = _heads(m, x)
    B, h, N, d = q.shape
    blocks = q.reshape(B, h, 7, H // 7, 7, W // 7, d)
    agents = blocks.mean(dim=(3, 5)).reshape(B, h, 49, d)  # row-major over the 7×7 agent grid
    scale = d**-0.5
    agent_v = torch.softmax(agents @ k.transpose(-2, -1) * scale, dim=-1) @ v  # B, h, 49, d
    out = torch.softmax(q @ agents.transpose(-2, -1) * scale, dim=-1) @ agent_v  # B, h, N, d
    v_grid = v.transpose(-2, -1).reshape(B, h * d, H, W)
    local = _depthwise_conv(v_grid, m.dwc.weight, m.dwc.bias).reshape(B, h, d, N).transpose(-2, -1)
    with torch.no_grad():
        assert _rel(m(x), _merge(m, out + local, H, W)) < 1e-12
    assert m.agent_grid(4, 12) == (4, 7)  # a side shorter than the agent grid: one agent per row


def test_agent_with_one_agent_per_token_is_two_composed_softmax_attentions():
    """Agents = queries (6×6 agents on a 6×6 grid, no pooling), DWC zeroed: softmax(Q Qᵀ/√d) softmax(Q Kᵀ/√d) V."""
    m = create_attention("agent", dim=16, heads=2, agents=36).double().eval()
    with torch.no_grad():
        m.dwc.weight.zero_()
        m.dwc.bias.zero_()
    x = _x(H=6, W=6)
    q, k, v = _heads(m, x)
    expected = _merge(m, _softmax_attention(q, q, _softmax_attention(q, k, v)), 6, 6)
    with torch.no_grad():
        assert _rel(m(x), expected) < 1e-12


# ---------------------------------------------------------------------------------------------- constructor args
@pytest.mark.parametrize("name,kwargs,match", [
    ("performer", dict(features=0), r"performer: features=0 is invalid"),
    ("performer", dict(seed=-1), r"performer: seed=-1 is invalid"),
    ("efficientvit", dict(scales=[4]), r"efficientvit: scales=\[4\] is invalid"),
    ("focused_linear", dict(kernel=4), r"focused_linear: kernel=4 is invalid"),
    ("focused_linear", dict(focusing_factor=0), r"focusing_factor=0 is invalid"),
    ("nystrom", dict(landmarks=0), r"nystrom: landmarks=0 is invalid"),
    ("nystrom", dict(conv_kernel=32), r"nystrom: conv_kernel=32 is invalid"),
    ("agent", dict(agents=50), r"agent: agents=50 is invalid; expected a perfect square"),
])
def test_bad_arguments_name_the_parameter(name, kwargs, match):
    with pytest.raises(ValueError, match=match):
        create_attention(name, dim=32, heads=4, **kwargs)
