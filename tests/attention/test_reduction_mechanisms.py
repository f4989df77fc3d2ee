"""The reduction mechanisms, which wrap timm (``pvt_v2``: ``pvt_v2.Attention``; ``xcit``: ``xcit.XCA``), against
their papers' formulas written out in float64: what the wrappers feed timm and how they read its output back are
checked along with timm's layers themselves."""

from __future__ import annotations

import math

import pytest
import torch

from attnbench import create_attention

DTYPE = torch.float64


def _x(B=2, H=8, W=12, C=16, seed=0):
    return torch.randn(B, H, W, C, generator=torch.Generator().manual_seed(seed), dtype=DTYPE)


def _randomise(module, seed=1, scale=0.3):
    """Perturb every parameter (layer norms and temperatures start at values that would hide their use)."""
    g = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        for p in module.parameters():
            p.add_(scale * torch.randn(p.shape, generator=g, dtype=p.dtype))
    return module


def _layer_norm(t, weight, bias, eps):
    mean = t.mean(-1, keepdim=True)
    var = ((t - mean) ** 2).mean(-1, keepdim=True)
    return (t - mean) / torch.sqrt(var + eps) * weight + bias


def _softmax_attention(q, k, v):
    """``softmax(q kᵀ / √d) v`` on ``[B, n, d]``."""
    return torch.softmax(q @ k.transpose(-2, -1) / math.sqrt(q.shape[-1]), dim=-1) @ v


# ------------------------------------------------------------------------------------------------- pvt_v2


def _pvt_keys(a, x, sr, linear):
    """The reduced grid of PVT v2, written out: ``[B, Nk, C]``."""
    B, H, W, C = x.shape
    if linear:  # adaptive average pooling to 7 × 7 (the grid is a multiple of 7 here), 1×1 conv, LayerNorm, GELU
        s = H // 7
        r = x.reshape(B, 7, s, 7, s, C).mean(dim=(2, 4)).reshape(B, 49, C)
        r = r @ a.sr.weight[:, :, 0, 0].T + a.sr.bias
        r = _layer_norm(r, a.norm.weight, a.norm.bias, a.norm.eps)
        return 0.5 * r * (1.0 + torch.erf(r / math.sqrt(2.0)))
    if sr == 1:
        return x.reshape(B, H * W, C)
    patches = x.reshape(B, H // sr, sr, W // sr, sr, C)  # each key sums one sr × sr patch: conv kernel = stride
    r = torch.einsum("bhiwjc,ocij->bhwo", patches, a.sr.weight) + a.sr.bias
    return _layer_norm(r.reshape(B, -1, C), a.norm.weight, a.norm.bias, a.norm.eps)


@pytest.mark.parametrize("sr,linear,fused,grid", [(1, False, True, (8, 12)), (2, False, True, (8, 12)),
                                                  (4, False, False, (8, 12)), (4, True, True, (14, 14))],
                         ids=["sr1", "sr2", "sr4_manual", "linear_attn"])
def test_pvt_v2_equals_the_explicit_formula(sr, linear, fused, grid):
    """Queries from every token, keys and values from the reduced grid, softmax attention per head."""
    m = create_attention("pvt_v2", dim=16, heads=2, sr_ratio=sr, linear_attn=linear, fused=fused).to(DTYPE).eval()
    _randomise(m)
    a, x = m.attn, _x(H=grid[0], W=grid[1])
    B, H, W, C = x.shape
    d = C // 2
    q = x.reshape(B, H * W, C) @ a.q.weight.T + a.q.bias  # B, N, C
    kv = _pvt_keys(a, x, sr, linear) @ a.kv.weight.T + a.kv.bias  # B, Nk, 2C: [k | v], head h at h·d
    head = [slice(h * d, (h + 1) * d) for h in range(2)]
    outs = [_softmax_attention(q[..., s], kv[..., :C][..., s], kv[..., C:][..., s]) for s in head]
    expected = (torch.cat(outs, -1) @ a.proj.weight.T + a.proj.bias).reshape(B, H, W, C)
    with torch.no_grad():
        torch.testing.assert_close(m(x), expected, rtol=1e-10, atol=1e-12)


def test_pvt_v2_grid_must_be_a_multiple_of_the_ratio():
    m = create_attention("pvt_v2", dim=16, heads=2, sr_ratio=4)
    assert m.not_supported_reasons(8, 12) == []
    assert m.not_supported_reasons(8, 10) == [
        "grid 8x10 is not a multiple of sr_ratio 4 (the reduction conv would drop the remainder from the keys)"]
    with pytest.raises(ValueError, match="not a multiple of sr_ratio 4"):
        m(torch.randn(1, 8, 10, 16))
    assert create_attention("pvt_v2_linear", dim=16, heads=2).not_supported_reasons(5, 9) == []


# --------------------------------------------------------------------------------------------------- xcit


@pytest.mark.parametrize("fused", [False, True])
def test_xcit_equals_the_explicit_formula(fused):
    """Per head, channels attend to channels: ``softmax(τ q̂ k̂ᵀ) v`` with ``q, k, v [d, N]`` and ``q̂, k̂``
    L2-normalised over the tokens."""
    m = create_attention("xcit", dim=16, heads=2, fused=fused).to(DTYPE).eval()
    _randomise(m)
    a, x = m.attn, _x(H=6, W=7)
    B, H, W, C = x.shape
    d = C // 2
    y = x.reshape(B, H * W, C) @ a.qkv.weight.T + a.qkv.bias  # B, N, 3C: [q | k | v], head h at h·d
    outs = []
    for h in range(2):
        q, k, v = (y[..., part * C + h * d: part * C + (h + 1) * d].transpose(-2, -1) for part in range(3))  # B, d, N
        q, k = q / q.norm(dim=-1, keepdim=True), k / k.norm(dim=-1, keepdim=True)
        attn = torch.softmax(a.temperature[h] * (q @ k.transpose(-2, -1)), dim=-1)  # B, d, d
        outs.append((attn @ v).transpose(-2, -1))  # B, N, d
    expected = (torch.cat(outs, -1) @ a.proj.weight.T + a.proj.bias).reshape(B, H, W, C)
    with torch.no_grad():
        torch.testing.assert_close(m(x), expected, rtol=1e-10, atol=1e-12)


@pytest.mark.parametrize("name,kwargs", [
    ("pvt_v2", dict(sr_ratio=1)), ("pvt_v2", dict(sr_ratio=2, fused=False)), ("pvt_v2", dict(linear_attn=True)),
    ("xcit", dict(fused=True)),
], ids=lambda v: v if isinstance(v, str) else ",".join(f"{k}={x}" for k, x in v.items()))
def test_flop_formulas_of_other_options_match_the_counter(name, kwargs):
    """The registry-wide FLOP test builds the defaults; the options that change the counted work, here."""
    from flop_counting import counted_flops

    m = create_attention(name, dim=32, heads=4, **kwargs).train()
    x = torch.randn(2, 12, 8, 32, requires_grad=True)
    for backward in (False, True):
        assert counted_flops(m, x, backward) == (3 if backward else 1) * sum(m.flop_parts(2, 12, 8).values())
