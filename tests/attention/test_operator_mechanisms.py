"""The PDE-operator mechanisms (``galerkin``, ``fourier_attention``, ``transolver``) and the spectral token mixers
(``fno``, ``afno``), each against an independent formulation in float64 at small size: the papers' formulas
written out head by head, and Fourier transforms as explicit sums of complex exponentials (no ``torch.fft``)."""

from __future__ import annotations

import math

import pytest
import torch

from attnbench import create_attention

DTYPE = torch.float64


def _x(B=2, H=6, W=5, C=16, seed=0):
    return torch.randn(B, H, W, C, generator=torch.Generator().manual_seed(seed), dtype=DTYPE)


def _layer_norm(t, weight, bias, eps):
    """LayerNorm over the last axis, written out: zero mean, unit biased variance, then the affine map."""
    mean = t.mean(-1, keepdim=True)
    var = ((t - mean) ** 2).mean(-1, keepdim=True)
    return (t - mean) / torch.sqrt(var + eps) * weight + bias


def _randomise(module, seed=1, scale=0.3):
    """Perturb every parameter (the layer norms start as the identity affine map, which would hide their use)."""
    g = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        for p in module.parameters():
            p.add_(scale * torch.randn(p.shape, generator=g, dtype=p.dtype))
    return module


def _heads_qkv(module, x):
    """Per head ``Q, K, V [B, N, d]`` from the module's qkv weights: rows ``[q | k | v]``, head h at ``h·d:(h+1)·d``."""
    B, H, W, C = x.shape
    inner = module.heads * module.dim_head
    y = x.reshape(B, H * W, C) @ module.qkv.weight.T + module.qkv.bias  # B, N, 3·inner
    d = module.dim_head
    return [tuple(y[..., part * inner + h * d: part * inner + (h + 1) * d] for part in range(3))
            for h in range(module.heads)]


def _project(module, heads_out, shape):
    B, H, W, C = shape
    return (torch.cat(heads_out, dim=-1) @ module.proj.weight.T + module.proj.bias).reshape(B, H, W, C)


# ------------------------------------------------------------------------------------------------ galerkin


def test_galerkin_equals_the_explicit_formula():
    """``Q (LN(K)ᵀ LN(V)) / N`` per head with each head's own layer-norm parameters."""
    m = _randomise(create_attention("galerkin", dim=16, heads=2).to(DTYPE).eval())
    x = _x()
    N = x.shape[1] * x.shape[2]
    outs = []
    for h, (q, k, v) in enumerate(_heads_qkv(m, x)):
        kt = _layer_norm(k, m.norm_k.weight[h, 0], m.norm_k.bias[h, 0], 1e-5)
        vt = _layer_norm(v, m.norm_v.weight[h, 0], m.norm_v.bias[h, 0], 1e-5)
        outs.append(q @ (kt.transpose(-2, -1) @ vt) / N)
    with torch.no_grad():
        torch.testing.assert_close(m(x), _project(m, outs, x.shape), rtol=1e-10, atol=1e-12)


def test_galerkin_is_linear_in_the_queries():
    """No softmax: for fixed keys and values the layer is a linear map of Q (``out = Q A``)."""
    m = _randomise(create_attention("galerkin", dim=16, heads=2).to(DTYPE).eval())
    g = torch.Generator().manual_seed(3)
    q1, q2, k, v = (torch.randn(2, 2, 30, 8, generator=g, dtype=DTYPE) for _ in range(4))
    with torch.no_grad():
        torch.testing.assert_close(m.attend(2.0 * q1 - 0.5 * q2, k, v),
                                   2.0 * m.attend(q1, k, v) - 0.5 * m.attend(q2, k, v), rtol=1e-10, atol=1e-12)


# ---------------------------------------------------------------------------------------- fourier_attention


@pytest.mark.parametrize("order", ["quadratic", "associative"])
def test_fourier_attention_equals_the_explicit_formula(order):
    """``(LN(Q) LN(K)ᵀ / N) V`` per head, whichever order the products run in."""
    m = _randomise(create_attention("fourier_attention", dim=16, heads=2, order=order).to(DTYPE).eval())
    x = _x(H=5, W=7)
    N = x.shape[1] * x.shape[2]
    outs = []
    for h, (q, k, v) in enumerate(_heads_qkv(m, x)):
        qt = _layer_norm(q, m.norm_q.weight[h, 0], m.norm_q.bias[h, 0], 1e-5)
        kt = _layer_norm(k, m.norm_k.weight[h, 0], m.norm_k.bias[h, 0], 1e-5)
        outs.append((qt @ kt.transpose(-2, -1) / N) @ v)
    with torch.no_grad():
        torch.testing.assert_close(m(x), _project(m, outs, x.shape), rtol=1e-10, atol=1e-12)


# ----------------------------------------------------------------------------------------------- transolver


def test_transolver_with_one_slice_per_token_is_attention_over_the_tokens():
    """M = N slices and a one-hot assignment (token n → its own slice): slicing and deslicing are the identity
    (up to the reference's 1e-5 in the slice normaliser), so the layer is softmax attention over the N tokens.

    The assignment comes from the layer's own weights, not a patch: the inputs are one-hot (token n carries e_n in
    a random order), ``in_project_x`` copies them into every head, and ``in_project_slice`` is 50·I at the
    smallest temperature (0.1), so each token's slice logits are 500 on its own slice and 0 elsewhere."""
    B, H, W, heads = 2, 3, 4, 2
    N = H * W
    m = create_attention("transolver", dim=N, heads=heads, dim_head=N, slices=N, kernel=1).to(DTYPE).eval()
    _randomise(m, seed=4)
    with torch.no_grad():
        m.in_project_x.weight.copy_(torch.eye(N, dtype=DTYPE).repeat(heads, 1)[:, :, None, None])
        m.in_project_x.bias.zero_()
        m.in_project_slice.weight.copy_(50.0 * torch.eye(N, dtype=DTYPE))
        m.in_project_slice.bias.zero_()
        m.temperature.fill_(0.1)
    g = torch.Generator().manual_seed(5)
    slots = torch.stack([torch.randperm(N, generator=g) for _ in range(B)])  # B, N: token n → one-hot slot
    x = torch.nn.functional.one_hot(slots, N).to(DTYPE).reshape(B, H, W, N)

    fx = x.reshape(B, N, N) @ m.in_project_fx.weight[:, :, 0, 0].T + m.in_project_fx.bias  # B, N, heads·d
    outs = []
    for h in range(heads):
        tokens = fx[..., h * N:(h + 1) * N] / (1.0 + 1e-5)  # each slice holds exactly one token
        q, k, v = tokens @ m.to_q.weight.T, tokens @ m.to_k.weight.T, tokens @ m.to_v.weight.T
        outs.append(torch.softmax(q @ k.transpose(-2, -1) / math.sqrt(N), dim=-1) @ v)
    expected = (torch.cat(outs, -1) @ m.to_out.weight.T + m.to_out.bias).reshape(B, H, W, N)
    with torch.no_grad():
        torch.testing.assert_close(m(x), expected, rtol=1e-10, atol=1e-12)


def test_transolver_slice_weights_are_distributions():
    m = create_attention("transolver", dim=16, heads=2, slices=5).to(DTYPE).eval()
    with torch.no_grad():
        w = m.slice_weights(torch.randn(2, 2, 30, 8, dtype=DTYPE))
    assert w.shape == (2, 2, 30, 5) and (w >= 0).all()
    torch.testing.assert_close(w.sum(-1), torch.ones(2, 2, 30, dtype=DTYPE))


# --------------------------------------------------------------------------------- explicit Fourier transforms


def _phases(freqs, H, W):
    """``e^{2πi (k1 n1 / H + k2 n2 / W)}`` for every kept ``(k1, k2)``: ``[M, H, W]`` complex."""
    n1 = torch.arange(H, dtype=DTYPE)[:, None]
    n2 = torch.arange(W, dtype=DTYPE)[None, :]
    return torch.stack([torch.exp(2j * math.pi * (k1 * n1 / H + k2 * n2 / W)) for k1, k2 in freqs])


def _dft(x, freqs):
    """Fourier coefficients ``X[b, m, c] = Σ_n x[b, n, c] e^{-2πi k_m·n/N}`` of the kept modes: ``[B, M, C]``."""
    B, H, W, C = x.shape
    return torch.einsum("mhw,bhwc->bmc", _phases(freqs, H, W).conj(), x.to(torch.complex128))


def _inverse_half_spectrum(Y, freqs, H, W):
    """The real grid whose half spectrum is ``Y`` on the kept modes and 0 elsewhere: ``Σ_m c_m Re(Y_m e^{2πi k·n/N})``
    with ``c = 1`` on the zero and Nyquist columns and 2 on the others (each stands for its conjugate too)."""
    c = torch.tensor([1.0 if k2 == 0 or 2 * k2 == W else 2.0 for _, k2 in freqs], dtype=DTYPE)
    return torch.einsum("m,mhw,bmc->bhwc", c.to(torch.complex128), _phases(freqs, H, W), Y).real


def _signed_rows(H, lowest, highest):
    """The frequencies ``lowest <= k1 < highest`` that an axis of length H tells apart (``[-H//2, ceil(H/2))``)."""
    return [k for k in range(lowest, highest) if -(H // 2) <= k < (H + 1) // 2]


@pytest.mark.parametrize("H,W,modes", [(8, 8, 3), (6, 6, 4), (5, 7, 4)], ids=["8x8_m3", "6x6_m4_clamped", "5x7_odd"])
def test_fno_equals_an_explicit_dft(H, W, modes):
    """``K(x) + W x`` with ``K(x) = 1/(HW) Σ_k c Re(X[k] R[k] e^{2πi k·n/N})`` over the modes ``-m ≤ k1 < m``,
    ``0 ≤ k2 < m`` the grid has; ``R[k]`` is the weight of frequency k (row k1, or 2m + k1 when negative)."""
    C = 6
    m = create_attention("fno", dim=C, heads=2, modes=modes).to(DTYPE).eval()
    _randomise(m, seed=6)
    x = _x(H=H, W=W, C=C)
    freqs = [(k1, k2) for k1 in _signed_rows(H, -modes, modes) for k2 in range(min(modes, W // 2 + 1))]
    X = _dft(x, freqs)  # B, M, C
    R = torch.stack([torch.complex(m.weight[0, k1 % (2 * modes), k2], m.weight[1, k1 % (2 * modes), k2])
                     for k1, k2 in freqs])  # M, C_in, C_out
    Y = torch.einsum("bmi,mio->bmo", X, R)
    expected = _inverse_half_spectrum(Y, freqs, H, W) / (H * W) + x @ m.skip.weight.T + m.skip.bias
    with torch.no_grad():
        torch.testing.assert_close(m(x), expected, rtol=1e-9, atol=1e-11)


def _split(f, z):
    """A real function applied to the real and imaginary parts separately (AFNO's ReLU and soft-shrink)."""
    return torch.complex(f(z.real), f(z.imag))


@pytest.mark.parametrize("H,W,fraction", [(8, 8, 1.0), (8, 6, 0.5), (7, 5, 0.6)])
def test_afno_equals_an_explicit_dft(H, W, fraction):
    """Orthonormal DFT of the kept modes (``|k1| < K1``, ``k2 < K2``, ``K = floor((side//2 + 1)·fraction)``); per
    mode and block ``S_λ(ReLU(X W1 + b1) W2 + b2)`` in complex arithmetic, parts apart for ReLU and S_λ; the
    orthonormal inverse; plus the input."""
    C, blocks, lam = 8, 2, 0.05
    m = create_attention("afno", dim=C, heads=2, num_blocks=blocks, sparsity_threshold=lam,
                         hard_thresholding_fraction=fraction, hidden_size_factor=2).to(DTYPE).eval()
    with torch.no_grad():  # large enough that ReLU and the shrinkage both cut somewhere
        g = torch.Generator().manual_seed(7)
        for p in m.parameters():
            p.copy_(0.5 * torch.randn(p.shape, generator=g, dtype=DTYPE))
    x = _x(H=H, W=W, C=C)
    K1, K2 = max(1, int((H // 2 + 1) * fraction)), max(1, int((W // 2 + 1) * fraction))
    freqs = [(k1, k2) for k1 in _signed_rows(H, -(K1 - 1), K1) for k2 in range(min(K2, W // 2 + 1))]
    X = _dft(x, freqs) / math.sqrt(H * W)  # B, M, C
    X = X.reshape(*X.shape[:2], blocks, C // blocks)  # B, M, blocks, c
    w1, b1 = torch.complex(m.w1[0], m.w1[1]), torch.complex(m.b1[0], m.b1[1])
    w2, b2 = torch.complex(m.w2[0], m.w2[1]), torch.complex(m.b2[0], m.b2[1])
    hidden = _split(torch.relu, torch.einsum("bmni,nio->bmno", X, w1) + b1)
    shrink = lambda t: torch.sign(t) * torch.clamp(t.abs() - lam, min=0.0)  # noqa: E731
    Y = _split(shrink, torch.einsum("bmni,nio->bmno", hidden, w2) + b2).reshape(X.shape[0], len(freqs), C)
    expected = _inverse_half_spectrum(Y, freqs, H, W) / math.sqrt(H * W) + x
    with torch.no_grad():
        torch.testing.assert_close(m(x), expected, rtol=1e-9, atol=1e-11)


def test_spectral_mixers_run_at_other_resolutions_with_the_same_modes():
    """Train low, test high: one instance, a fixed set of frequencies, any grid (FNO keeps 2·m·m modes once the
    grid holds them, whatever its size; AFNO's weights are shared by all modes)."""
    fno = create_attention("fno", dim=8, heads=2, modes=3, skip=False).eval()
    assert fno.flop_parts(1, 16, 16) == fno.flop_parts(1, 64, 32) == {"matmul": 8 * (2 * 3 * 3) * 8 * 8}
    afno = create_attention("afno", dim=8, heads=2).eval()
    with torch.no_grad():
        for side in (8, 16, 33):
            for layer in (fno, afno):
                assert layer(torch.randn(1, side, side + 2, 8)).shape == (1, side, side + 2, 8)


@pytest.mark.parametrize("name,kwargs", [
    ("fourier_attention", dict(order="associative")), ("fno", dict(skip=False, modes=3)), ("fno", dict(modes=5)),
    ("afno", dict(hard_thresholding_fraction=0.5, hidden_size_factor=2, num_blocks=8)),
    ("transolver", dict(kernel=1, slices=7, dim_head=6)),
], ids=lambda v: v if isinstance(v, str) else ",".join(f"{k}={x}" for k, x in v.items()))
def test_flop_formulas_of_other_options_match_the_counter(name, kwargs):
    """The registry-wide FLOP test builds the defaults; the options that change the counted work, here (forward,
    and fwd+bwd = 3× forward when every operand of every counted product needs its gradient)."""
    from flop_counting import counted_flops

    m = create_attention(name, dim=32, heads=4, **kwargs).train()
    x = torch.randn(2, 12, 10, 32, requires_grad=True)
    for backward in (False, True):
        assert counted_flops(m, x, backward) == (3 if backward else 1) * sum(m.flop_parts(2, 12, 10).values())
