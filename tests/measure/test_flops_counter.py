"""The mended FLOP counter (``attnbench.measure.flops``) and the training rows' ``step_flops`` that use it."""

from __future__ import annotations

from types import SimpleNamespace

import torch
import torch.nn.functional as F

from attnbench.measure.flops import count_flops
from attnbench.registry import build_for_grid
from attnbench.training.loop import step_flops
from attnbench.training.models import GridTransformer
from attnbench.training.tasks import TaskData


def test_attention_on_cpu_counts_as_its_matmuls():
    # torch's counter has no formula for the CPU flash kernel: unmended, this counts 0
    b, h, n, d = 2, 4, 64, 8
    q, k, v = (torch.randn(b, h, n, d, requires_grad=True) for _ in range(3))

    def step() -> None:
        F.scaled_dot_product_attention(q, k, v).sum().backward()

    forward = 2 * (2 * b * h * n * n * d)  # q·kᵀ and p·v
    assert count_flops(step) == 3 * forward  # backward: four matmuls of the same size, nothing recomputed


def test_a_depthwise_convolution_backward_counts_its_real_work():
    # torch's formula counts the weight gradient as a dense convolution's: groups (= 16) times too much
    conv = torch.nn.Conv2d(16, 16, 3, padding=1, groups=16)
    x = torch.randn(2, 16, 8, 8, requires_grad=True)
    forward = 2 * 2 * 16 * 8 * 8 * 9
    assert count_flops(lambda: conv(x)) == forward
    assert count_flops(lambda: conv(x).sum().backward()) == 3 * forward  # input and weight gradient, one each


def test_step_flops_count_the_attention_of_a_training_step():
    # 16x16 tokens at width 8: attention is most of the step, so a count that drops it falls far below this bound
    torch.manual_seed(0)
    model = GridTransformer("full", {}, in_channels=1, out_channels=1, dim=8, depth=1, heads=2, patch=1,
                            token_grid=(16, 16))
    data = TaskData("regression", (torch.randn(4, 1, 16, 16), torch.randn(4, 1, 16, 16)), {})
    run = SimpleNamespace(settings=SimpleNamespace(batch=4), device="cpu", dtype="float32")
    attention = build_for_grid("full", 8, 2, 16, 16).flop_parts(4, 16, 16)["sdpa"]
    counted = step_flops(model, data, run, None)
    assert counted is not None and counted >= 3 * attention
    assert all(p.grad is None for p in model.parameters())  # the count leaves no gradients behind
