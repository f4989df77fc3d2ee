"""The contract checks, parametrised over the registry: a new attention is covered with no new test code."""

from __future__ import annotations

import pytest
import torch
from torch import nn

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


# ------------------------------------------------------------------------------ every check can fail
class _Good(nn.Module):
    """Per-token linear map: passes every check. Each variant below breaks what one check guards."""

    def __init__(self, dim, heads):
        super().__init__()
        self.lin = nn.Linear(dim, dim)

    def forward(self, x):
        return self.lin(x)


class _WrongShape(_Good):
    def forward(self, x):  # H and W swapped
        return self.lin(x).transpose(1, 2)


class _NonFinite(_Good):
    def forward(self, x):  # one channel overflows
        y = self.lin(x)
        return torch.cat([y[..., :1] * float("inf"), y[..., 1:]], dim=-1)


class _MixesTheBatch(_Good):
    def forward(self, x):  # every sample sees the batch mean
        return self.lin(x) + x.mean(0, keepdim=True)


class _UnusedParameter(_Good):
    def __init__(self, dim, heads):
        super().__init__(dim, heads)
        self.gate = nn.Linear(dim, dim)  # never used in forward: gets no gradient


class _OneGridOnly(_Good):
    """An absolute position embedding sized for the grid it was built for, without interpolation."""

    @staticmethod
    def grid_kwargs(height, width):
        return {"image_size": (height, width)}

    def __init__(self, dim, heads, image_size=(16, 16)):
        super().__init__(dim, heads)
        self.pos = nn.Parameter(0.02 * torch.randn(*image_size, dim))

    def forward(self, x):
        return self.lin(x + self.pos)


class _LosesPrecision(_Good):
    def forward(self, x):  # catastrophic cancellation: in bfloat16, 1000 + y rounds y to a multiple of 4
        return (self.lin(x) + 1000.0) - 1000.0


class _Unseeded(_Good):
    def __init__(self, dim, heads):
        super().__init__(dim, heads)
        g = torch.Generator()
        g.seed()  # not the global generator the registry seeds
        with torch.no_grad():
            self.lin.weight.copy_(torch.randn(dim, dim, generator=g) / dim**0.5)


BROKEN = {
    "shape": (_WrongShape, "output (2, 8, 16, 32) torch.float32, expected (2, 16, 8, 32)"),
    "finite": (_NonFinite, "non-finite output values"),
    "batch_independent": (_MixesTheBatch, "sample 0 changed"),
    "backward": (_UnusedParameter, "no grad: ['gate.weight', 'gate.bias']"),
    "two_resolutions": (_OneGridOnly, "RuntimeError"),
    "bfloat16": (_LosesPrecision, "differs from fp32"),
    "deterministic": (_Unseeded, "same seed, different outputs"),
}


def test_every_check_has_a_broken_mechanism():
    assert set(BROKEN) == set(CHECKS)


@pytest.mark.parametrize("check", sorted(BROKEN))
def test_each_check_fails_its_broken_mechanism(clean_registry, check):
    """The check fails on the mechanism broken for it, with a message that says what broke; the unbroken layer
    passes the same check, so the failure is the breakage's."""
    cls, message = BROKEN[check]
    clean_registry.register_attention("broken_for_test")(cls)
    clean_registry.register_attention("good_for_test")(_Good)
    result = run_check(CheckContext("broken_for_test", height=16, width=8), check)
    assert result.status == "fail" and message in result.detail, result
    good = run_check(CheckContext("good_for_test", height=16, width=8), check)
    assert good.status == "pass", good
