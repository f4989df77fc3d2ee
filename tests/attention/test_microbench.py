"""pytest-benchmark micro-benchmarks of each forward (not in the default run: ``nox -s tests -- -n 0 -m microbench``,
in one process: pytest-benchmark times nothing under pytest-xdist's workers).

These time one layer in-process for quick A/B checks while developing; the numbers that go into README and
``results/`` come from the isolated harness (``attnbench run``), not from here.
"""

from __future__ import annotations

import pytest
import torch

from attnbench import list_attentions
from attnbench.registry import build_for_grid, capability_reasons


@pytest.mark.microbench
@pytest.mark.parametrize("side", [32, 64])
@pytest.mark.parametrize("name", list_attentions())
def test_forward(benchmark, name: str, side: int) -> None:
    torch.set_num_threads(1)
    module = build_for_grid(name, 64, 4, side, side)
    reasons = capability_reasons(module, side, side, "cpu", torch.float32)
    if reasons:
        pytest.skip("; ".join(reasons))
    x = torch.randn(1, side, side, 64)
    benchmark.extra_info.update(threads=torch.get_num_threads(), dtype="float32", grid=f"{side}x{side}")

    def run() -> torch.Tensor:
        with torch.inference_mode():
            return module(x)

    out = benchmark.pedantic(run, warmup_rounds=2, rounds=5, iterations=1)
    assert out.shape == x.shape
