"""The contract checks, parametrised over the registry: a new attention is covered with no new test code."""

from __future__ import annotations

import pytest

from attnbench import list_attentions
from attnbench.contract import CHECKS, CheckContext, run_check


@pytest.mark.parametrize("check", sorted(CHECKS))
@pytest.mark.parametrize("name", list_attentions())
def test_contract(name: str, check: str) -> None:
    result = run_check(CheckContext(name), check)
    if result.status == "skip":
        pytest.skip(result.detail)
    assert result.status == "pass", result.detail


@pytest.mark.parametrize("name", list_attentions())
def test_non_square_grid(name: str) -> None:
    """Every attention that claims to support a 16x32 grid produces a finite output of the right shape."""
    result = run_check(CheckContext(name, height=16, width=32), "shape")
    if result.status == "fail" and "unsupported" in result.detail:
        pytest.skip(result.detail)
    assert result.status == "pass", result.detail


def test_checks_can_fail() -> None:
    """A broken attention fails the checks (they are not vacuous)."""
    import torch
    from torch import nn

    from attnbench.contract import check_batch_independent, check_finite, check_shape
    from attnbench.registry import _REGISTRY, register_attention

    @register_attention("broken_for_test")
    class Broken(nn.Module):
        def __init__(self, dim, heads):
            super().__init__()
            self.lin = nn.Linear(dim, dim)

        def forward(self, x):  # mixes the batch, transposes H and W, and blows up on large inputs
            y = self.lin(x.mean(0, keepdim=True).expand_as(x)).transpose(1, 2)
            return y * torch.exp(100 * x.abs().amax())

    try:
        ctx = CheckContext("broken_for_test", height=8, width=16)
        for fn in (check_shape, check_finite, check_batch_independent):
            with pytest.raises(AssertionError):
                fn(ctx)
    finally:
        _REGISTRY.pop("broken_for_test")
