"""MANO's fused pair of LayerNorms (attnbench/attention/kernels/double_norm.cpp) against
``norm2(norm1(torch.cat(xs, 1)))`` in float64: outputs and the gradients of every part and of all four affine
parameters, at the channel counts compiled as constants and at one read at run time; thread-count independence,
and its errors."""

from __future__ import annotations

import pytest
import torch
from native_kernel import needs_native
from torch import nn

from attnbench.attention import kernels

pytestmark = needs_native


def _norms(C: int, dtype=torch.float64, seed: int = 0) -> tuple[nn.LayerNorm, nn.LayerNorm]:
    """Two LayerNorms with random affine parameters (the defaults, ones and zeros, would hide a swapped weight)."""
    torch.manual_seed(seed)
    norm1, norm2 = nn.LayerNorm(C).to(dtype), nn.LayerNorm(C, eps=1e-6).to(dtype)
    with torch.no_grad():
        for p in (*norm1.parameters(), *norm2.parameters()):
            p.copy_(torch.randn_like(p))
    return norm1, norm2


@pytest.mark.parametrize("C", [64, 32, 128, 24])  # 64, 32, 128: C compiled in; 24: C read at run time
def test_double_norm_equals_two_layer_norms_of_the_concatenation(C):
    """Three parts of 300, 75 and 19 tokens, three entries: the output's rows run entry by entry, part by part,
    and cross the kernel's task blocks; each part gets its own slice of the input gradient."""
    norm1, norm2 = _norms(C)
    xs = [(torch.randn(3, n, C, dtype=torch.float64) * 3 + 5).requires_grad_(True) for n in (300, 75, 19)]
    out = kernels.double_norm(xs, norm1, norm2)
    expected = norm2(norm1(torch.cat(xs, 1)))
    assert out.shape == expected.shape == (3, 394, C) and (out - expected).abs().max().item() < 1e-12
    params = [*xs, norm1.weight, norm1.bias, norm2.weight, norm2.bias]
    grad = torch.randn_like(out)
    for mine, theirs in zip(torch.autograd.grad(out, params, grad), torch.autograd.grad(expected, params, grad)):
        assert mine.shape == theirs.shape and (mine - theirs).abs().max().item() < 1e-10


def test_double_norm_passes_gradcheck():
    norm1, norm2 = _norms(5)
    parts = [torch.randn(2, n, 5, dtype=torch.float64, requires_grad=True) for n in (4, 3)]
    kernels.prepare()
    assert torch.autograd.gradcheck(
        lambda *a: kernels._DoubleNorm.apply(*a[:4], norm1.eps, norm2.eps, *a[4:]),
        (norm1.weight, norm1.bias, norm2.weight, norm2.bias, *parts),
    )


def test_double_norm_float32_and_without_autograd():
    norm1, norm2 = _norms(64, torch.float32)
    x = torch.randn(2, 500, 64)
    with torch.no_grad():
        out = kernels.double_norm([x], norm1, norm2)
        expected = norm2(norm1(x))
    assert not out.requires_grad
    torch.testing.assert_close(out, expected, rtol=1e-5, atol=1e-5)


def test_double_norm_does_not_depend_on_the_thread_count():
    """The parameter gradients are summed per fixed block of tokens, then over the blocks in order: bitwise the
    same on 1 and 2 threads."""
    norm1, norm2 = _norms(64)
    x = torch.randn(4, 500, 64, dtype=torch.float64, requires_grad=True)
    grad = torch.randn_like(x)
    params = [x, norm1.weight, norm1.bias, norm2.weight, norm2.bias]
    threads = torch.get_num_threads()
    results = []
    try:
        for n in (1, 2):
            torch.set_num_threads(n)
            out = kernels.double_norm([x], norm1, norm2)
            results.append((out, *torch.autograd.grad(out, params, grad)))
    finally:
        torch.set_num_threads(threads)
    assert all(torch.equal(a, b) for a, b in zip(*results))


@pytest.mark.parametrize("xs,message", [
    ([torch.randn(2, 4, 8), torch.randn(3, 4, 8)], r"every part of xs must be a contiguous \[B, n, C\] CPU tensor"),
    ([torch.randn(2, 4, 8), torch.randn(2, 4, 6)], "with B = 2 and C = 8"),
    ([torch.randn(8, 8)], r"\[B, n, C\]"),
])
def test_bad_double_norm_input_is_one_clear_error(xs, message):
    norm1, norm2 = _norms(8, torch.float32)
    with pytest.raises(RuntimeError, match=message):
        torch.ops.attnbench_mano.double_norm(xs, norm1.weight, norm1.bias, norm2.weight, norm2.bias, 1e-5, 1e-5)
    _, wrong = _norms(6, torch.float32)
    with pytest.raises(RuntimeError, match=r"each weight and bias must be a contiguous \[C = 8\] tensor"):
        kernels.double_norm([torch.randn(1, 4, 8)], norm1, wrong)
