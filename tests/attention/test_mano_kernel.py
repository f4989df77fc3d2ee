"""MANO's native window kernel (attnbench/attention/kernels) against the Python shifted formulation, level by level,
in float64: outputs, gradients, the exponential sharing's fallback, thread-count independence and its errors."""

from __future__ import annotations

import os
import subprocess
import sys

import pytest
import torch
from native_kernel import needs_native

from attnbench.attention import kernels
from attnbench.attention.overlapping_windows import overlapping_window_attention
from attnbench.attention.packed_windows import level_coverage

pytestmark = needs_native


def _flat(shapes):
    return [side for shape in shapes for side in shape]


def _oracle(qkv, shapes, k, s):
    """The per-level shifted path: ``qkv [3, heads, d, B, T]`` → ``[heads, d, B, T]``."""
    outs, offset = [], 0
    for h, w in shapes:
        level = qkv[..., offset : offset + h * w].unflatten(-1, (h, w))  # 3, heads, d, B, h, w
        count = torch.tensor(level_coverage(h, w, k, s), dtype=qkv.dtype)
        outs.append(overlapping_window_attention(level, k, s, count).flatten(-2))  # heads, d, B, h·w
        offset += h * w
    return torch.cat(outs, -1)


def test_the_kernel_builds_here():
    """Where a C++ compiler is present (the CI machine) the kernel must build: a silent fallback would leave the
    native path untested and the benchmark timing the Python paths."""
    assert kernels.mano_windows_status() == ""


CASES = [  # (shapes finest first, window, stride, heads, d)
    ([(8, 8), (4, 4), (2, 2)], 2, 1, 4, 16),  # the accuracy suites' 8x8 token grid, d specialised
    ([(16, 12), (8, 6), (4, 3)], 3, 1, 2, 32),
    ([(9, 9), (3, 3)], 3, 2, 3, 5),  # d read at run time
    ([(7, 9)], 3, 2, 1, 4),
    ([(6, 8), (2, 4)], 2, 2, 2, 6),
    ([(10, 10)], 4, 2, 2, 3),
    ([(3, 5)], 1, 1, 2, 3),
]


@pytest.mark.parametrize("shapes,k,s,heads,d", CASES, ids=lambda c: str(c).replace(" ", ""))
def test_kernel_equals_the_shifted_formulation(shapes, k, s, heads, d):
    """Outputs and qkv gradients of three batch entries (so the token chunks of the parallel loop cross entries)."""
    torch.manual_seed(0)
    T = sum(h * w for h, w in shapes)
    qkv = torch.randn(3, heads, d, 3, T, dtype=torch.float64, requires_grad=True)
    out = kernels.mano_windows(qkv, _flat(shapes), k, s, d**-0.5)
    expected = _oracle(qkv, shapes, k, s)
    assert out.shape == expected.shape == (heads, d, 3, T)
    assert (out - expected).abs().max().item() < 1e-12
    grad_out = torch.randn_like(out)
    (mine,) = torch.autograd.grad(out, qkv, grad_out)
    (theirs,) = torch.autograd.grad(expected, qkv, grad_out)
    assert (mine - theirs).abs().max().item() < 1e-12


def test_kernel_gradients_pass_gradcheck():
    shapes = [(4, 4), (2, 2)]
    qkv = torch.randn(3, 2, 3, 2, 20, dtype=torch.float64, requires_grad=True)
    assert torch.autograd.gradcheck(lambda t: kernels.mano_windows(t, _flat(shapes), 2, 1, 0.5), (qkv,))


def test_a_window_far_below_the_tokens_top_score_keeps_its_own_softmax():
    """The kernel shares one exponential per offset between a token's windows, taken against the token's largest
    score; a window whose scores all lie far below it would underflow to 0 / 0, so it takes its own. Scores of
    ±several hundred in float32 reach that case for many tokens; the result must still match the float64 oracle."""
    torch.manual_seed(1)
    shapes = [(8, 8), (4, 4)]
    qkv = torch.randn(3, 2, 4, 2, 80, dtype=torch.float64) * 12
    out = kernels.mano_windows(qkv.float(), _flat(shapes), 2, 1, 4**-0.5)  # the oracle's scale, d^-0.5
    expected = _oracle(qkv, shapes, 2, 1)
    assert torch.isfinite(out).all()
    assert ((out.double() - expected).abs().max() / expected.abs().max()).item() < 1e-5


def test_results_do_not_depend_on_the_thread_count():
    """Each token's output and each key's and value's gradient is computed by one task, whatever the split: the
    results are bitwise the same on 1 and 2 threads (a race in the backward's accumulation would break this)."""
    shapes = [(16, 16), (8, 8), (4, 4), (2, 2)]
    qkv = torch.randn(3, 4, 16, 4, 340, dtype=torch.float64, requires_grad=True)
    grad_out = torch.randn(4, 16, 4, 340, dtype=torch.float64)
    threads = torch.get_num_threads()
    results = []
    try:
        for n in (1, 2):
            torch.set_num_threads(n)
            out = kernels.mano_windows(qkv, _flat(shapes), 2, 1, 0.25)
            results.append((out, *torch.autograd.grad(out, qkv, grad_out)))
    finally:
        torch.set_num_threads(threads)
    assert all(torch.equal(a, b) for a, b in zip(*results))


@pytest.mark.parametrize("qkv,shapes,k,message", [
    (torch.zeros(3, 2, 4, 1, 19), [4, 4, 2, 2], 2, "T = 20 tokens"),
    (torch.zeros(3, 2, 4, 1, 16), [4, 4], 5, "window must be in"),
    (torch.zeros(3, 2, 4, 1, 16), [4, 4, 2], 2, "shapes must be"),
    (torch.zeros(3, 4, 2, 1, 16).transpose(1, 2), [4, 4], 2, "contiguous"),
])
def test_bad_kernel_input_is_one_clear_error(qkv, shapes, k, message):
    with pytest.raises(RuntimeError, match=message):
        kernels.mano_windows(qkv, shapes, k, 1, 1.0)


def test_without_the_kernel_mano_runs_its_python_paths_and_says_why():
    """``ATTNBENCH_NATIVE=0`` (as a machine without a compiler): ``auto`` falls back to the Python paths, the row's
    ``impl`` names the reason, and asking for ``path='native'`` is one clear error."""
    code = (
        "import torch\n"
        "from attnbench import create_attention\n"
        "m = create_attention('mano', dim=16, heads=2)\n"
        "m(torch.randn(1, 8, 8, 16))\n"
        "info = m.extra_info()\n"
        "print(info['window_path'], '|', info['native'])\n"
        "try:\n"
        "    create_attention('mano', dim=16, heads=2, path='native')\n"
        "except ValueError as e:\n"
        "    print(e)\n"
    )
    env = {**os.environ, "ATTNBENCH_NATIVE": "0"}
    out = subprocess.run([sys.executable, "-c", code], env=env, capture_output=True, text=True, timeout=120)
    assert out.returncode == 0, out.stderr
    lines = out.stdout.strip().splitlines()
    assert lines[0] == "packed | disabled by ATTNBENCH_NATIVE=0"
    assert lines[1] == "mano: path='native' is unavailable: disabled by ATTNBENCH_NATIVE=0; use path='auto'"
