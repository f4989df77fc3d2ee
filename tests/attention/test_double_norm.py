"""MANO's fused pair of LayerNorms (attnbench/attention/kernels/double_norm.cpp) against ``norm2(norm1(x))`` in
float64: outputs and the gradients of x and all four affine parameters, at the channel counts compiled as constants
and at one read at run time; thread-count independence, and its errors."""

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
def test_double_norm_equals_two_layer_norms(C):
    norm1, norm2 = _norms(C)
    x = (torch.randn(3, 300, C, dtype=torch.float64) * 3 + 5).requires_grad_(True)  # rows cross the task blocks
    out = kernels.double_norm(x, norm1, norm2)
    expected = norm2(norm1(x))
    assert out.shape == x.shape and (out - expected).abs().max().item() < 1e-12
    params = [x, norm1.weight, norm1.bias, norm2.weight, norm2.bias]
    grad = torch.randn_like(out)
    for mine, theirs in zip(torch.autograd.grad(out, params, grad), torch.autograd.grad(expected, params, grad)):
        assert mine.shape == theirs.shape and (mine - theirs).abs().max().item() < 1e-10


def test_double_norm_passes_gradcheck():
    norm1, norm2 = _norms(5)
    x = torch.randn(7, 5, dtype=torch.float64, requires_grad=True)
    args = (x, norm1.weight, norm1.bias, norm2.weight, norm2.bias)

    def fused(x, w1, b1, w2, b2):
        return torch.ops.attnbench_mano.double_norm(x, w1, b1, w2, b2, norm1.eps, norm2.eps)[0]

    kernels.prepare()
    assert torch.autograd.gradcheck(lambda *a: kernels._DoubleNorm.apply(*a, norm1.eps, norm2.eps), args)
    assert torch.equal(fused(*args), kernels.double_norm(x, norm1, norm2))


def test_double_norm_float32_and_without_autograd():
    norm1, norm2 = _norms(64, torch.float32)
    x = torch.randn(1000, 64)
    with torch.no_grad():
        out = kernels.double_norm(x, norm1, norm2)
        expected = norm2(norm1(x))
    assert not out.requires_grad
    torch.testing.assert_close(out, expected, rtol=1e-5, atol=1e-5)


def test_double_norm_does_not_depend_on_the_thread_count():
    """The parameter gradients are summed per fixed block of tokens, then over the blocks in order: bitwise the
    same on 1 and 2 threads."""
    norm1, norm2 = _norms(64)
    x = torch.randn(2000, 64, dtype=torch.float64, requires_grad=True)
    grad = torch.randn_like(x)
    params = [x, norm1.weight, norm1.bias, norm2.weight, norm2.bias]
    threads = torch.get_num_threads()
    results = []
    try:
        for n in (1, 2):
            torch.set_num_threads(n)
            out = kernels.double_norm(x, norm1, norm2)
            results.append((out, *torch.autograd.grad(out, params, grad)))
    finally:
        torch.set_num_threads(threads)
    assert all(torch.equal(a, b) for a, b in zip(*results))


def test_bad_double_norm_input_is_one_clear_error():
    norm1, _ = _norms(8, torch.float32)
    _, norm2 = _norms(6, torch.float32)
    with pytest.raises(RuntimeError, match=r"each weight and bias must be a contiguous \[C = 8\] tensor"):
        kernels.double_norm(torch.randn(4, 8), norm1, norm2)
