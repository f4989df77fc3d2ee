"""Contract checks any registered attention must pass (used by ``attnbench check`` and the test-suite).

Each check builds the attention through the registry (:func:`attnbench.registry.build_for_grid`), runs it on a
small random grid and returns a :class:`CheckResult` with status ``pass``, ``fail`` or ``skip`` (not applicable,
with the reason). This module only checks; construction belongs to the registry.
"""

from __future__ import annotations

import traceback
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import torch
from torch import nn

from attnbench.registry import build_for_grid, capability_reasons

__all__ = ["CHECKS", "CheckContext", "CheckResult", "Skip", "run_check", "run_checks"]


class Skip(Exception):
    """A check that does not apply to this attention (the message says why)."""


@dataclass(frozen=True)
class CheckResult:
    name: str
    status: str  # "pass" | "fail" | "skip"
    detail: str = ""


@dataclass
class CheckContext:
    """What a check needs: the attention name and the base configuration."""

    name: str
    height: int = 16
    width: int = 16
    dim: int = 32
    heads: int = 4
    batch: int = 2
    device: str = "cpu"
    kwargs: dict[str, Any] = field(default_factory=dict)

    def build(self, seed: int = 0, height: int | None = None, width: int | None = None) -> nn.Module:
        return build_for_grid(self.name, self.dim, self.heads, height or self.height, width or self.width,
                              self.kwargs, seed=seed, device=self.device)

    def input(self, height: int | None = None, width: int | None = None, seed: int = 1,
              dtype: torch.dtype = torch.float32) -> torch.Tensor:
        g = torch.Generator().manual_seed(seed)
        x = torch.randn(self.batch, height or self.height, width or self.width, self.dim, generator=g)
        return x.to(device=self.device, dtype=dtype)


def _forward(module: nn.Module, x: torch.Tensor) -> torch.Tensor:
    with torch.no_grad():  # some backends (natten on CPU) refuse to build an autograd graph
        return module(x)


def _rel_err(a: torch.Tensor, b: torch.Tensor) -> float:
    a, b = a.float(), b.float()
    return ((a - b).norm() / b.norm().clamp_min(1e-12)).item()


def check_shape(ctx: CheckContext) -> str:
    x = ctx.input()
    y = _forward(ctx.build(), x)
    if y.shape != x.shape or y.dtype != x.dtype:
        raise AssertionError(f"output {tuple(y.shape)} {y.dtype}, expected {tuple(x.shape)} {x.dtype}")
    return f"{tuple(y.shape)}"


def check_finite(ctx: CheckContext) -> str:
    y = _forward(ctx.build(), ctx.input())
    bad = (~torch.isfinite(y)).sum().item()
    if bad:
        raise AssertionError(f"{bad} non-finite output values")
    return "all finite"


def check_batch_independent(ctx: CheckContext) -> str:
    m, x = ctx.build(), ctx.input()
    x2 = x.clone()
    x2[1:] = torch.randn_like(x2[1:])
    y, y2 = _forward(m, x), _forward(m, x2)
    err = (y[0] - y2[0]).abs().max().item()
    if not err <= 1e-5:  # written so that NaN fails too
        raise AssertionError(f"sample 0 changed by {err:.3g} when only the other samples changed")
    return f"max change {err:.2g}"


def check_backward(ctx: CheckContext) -> str:
    m = ctx.build()
    reasons = capability_reasons(m, ctx.height, ctx.width, ctx.device, torch.float32, backward=True)
    if reasons:
        raise Skip("; ".join(reasons))
    with torch.inference_mode():  # caches filled during inference must not poison a later backward
        m(ctx.input())
    x = ctx.input().requires_grad_(True)
    m(x).square().mean().backward()
    missing = [n for n, p in m.named_parameters() if p.requires_grad and p.grad is None]
    bad = [n for n, p in m.named_parameters() if p.grad is not None and not torch.isfinite(p.grad).all()]
    zero = [n for n, p in m.named_parameters() if p.grad is not None and not p.grad.abs().sum()]
    if missing or bad or zero or x.grad is None:
        raise AssertionError(f"no grad: {missing}; non-finite grad: {bad}; all-zero grad: {zero}")
    return f"{sum(1 for _ in m.parameters())} parameter tensors reached"


def check_two_resolutions(ctx: CheckContext) -> str:
    m = ctx.build()
    candidates = [(2 * ctx.height, 2 * ctx.width), (2 * ctx.height, ctx.width), (ctx.height // 2, ctx.width // 2)]
    for h, w in candidates:
        if h >= 1 and w >= 1 and not capability_reasons(m, h, w, ctx.device, torch.float32):
            y = _forward(m, ctx.input(h, w))
            if y.shape != (ctx.batch, h, w, ctx.dim) or not torch.isfinite(y).all():
                raise AssertionError(f"bad output at {h}x{w}: {tuple(y.shape)}")
            return f"{ctx.height}x{ctx.width} and {h}x{w} with one instance"
    raise Skip(f"one instance supports no second grid among {candidates}")


def check_bfloat16(ctx: CheckContext) -> str:
    m = ctx.build()
    reasons = capability_reasons(m, ctx.height, ctx.width, ctx.device, torch.bfloat16)
    if reasons:
        raise Skip("; ".join(reasons))
    ref = _forward(m, ctx.input())
    y = _forward(m.to(torch.bfloat16), ctx.input(dtype=torch.bfloat16))
    if y.dtype != torch.bfloat16 or y.shape != ref.shape or not torch.isfinite(y).all():
        raise AssertionError(f"bf16 output {y.dtype} {tuple(y.shape)}, finite={bool(torch.isfinite(y).all())}")
    err = _rel_err(y, ref)
    if err > 0.05:
        raise AssertionError(f"bf16 output differs from fp32 by {err:.3f} (relative L2 > 0.05)")
    return f"relative L2 to fp32 {err:.3g}"


def check_deterministic(ctx: CheckContext) -> str:
    x = ctx.input()
    a, b = _forward(ctx.build(seed=3), x), _forward(ctx.build(seed=3), x)
    if not torch.equal(a, b):
        raise AssertionError(f"same seed, different outputs (max diff {(a - b).abs().max().item():.3g})")
    return "same seed, same output"


CHECKS: dict[str, Callable[[CheckContext], str]] = {
    "shape": check_shape,
    "finite": check_finite,
    "batch_independent": check_batch_independent,
    "backward": check_backward,
    "two_resolutions": check_two_resolutions,
    "bfloat16": check_bfloat16,
    "deterministic": check_deterministic,
}


def run_check(ctx: CheckContext, check: str) -> CheckResult:
    """Run one named check; errors become ``fail`` results carrying the exception's last line."""
    try:
        m = ctx.build()
        reasons = capability_reasons(m, ctx.height, ctx.width, ctx.device, torch.float32)
        if reasons:
            return CheckResult(check, "fail", f"grid {ctx.height}x{ctx.width} unsupported: {'; '.join(reasons)}")
        return CheckResult(check, "pass", CHECKS[check](ctx))
    except Skip as exc:
        return CheckResult(check, "skip", str(exc))
    except Exception as exc:  # noqa: BLE001 - a check reports failures, it does not crash
        where = traceback.extract_tb(exc.__traceback__)[-1]
        return CheckResult(check, "fail", f"{type(exc).__name__}: {exc} ({where.filename}:{where.lineno})")


def run_checks(ctx: CheckContext) -> list[CheckResult]:
    """Every check of :data:`CHECKS`, in order."""
    return [run_check(ctx, name) for name in CHECKS]
