"""The mechanisms and this machine: list what is registered, check one against the contract, measure the
roofline."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

from attnbench.api.errors import InputError

if TYPE_CHECKING:  # annotations only: the contract checks are imported when they run
    from attnbench.contract import CheckResult

__all__ = ["CheckOptions", "Roofline", "RooflineOptions", "check", "list_mechanisms", "roofline"]


def list_mechanisms() -> list[dict[str, str]]:
    """One record per registered attention (with its family and the configuration suites sweep), unavailable
    optional one and named configuration (``list``), mechanisms by family then name."""
    from attnbench.attention.base import FAMILIES
    from attnbench.registry import (
        attention_source,
        get_attention,
        list_attentions,
        list_configs,
        unavailable_attentions,
    )

    order = list(FAMILIES)

    def family_key(name: str) -> tuple[int, str]:
        family = getattr(get_attention(name), "family", "other")
        return (order.index(family) if family in order else len(order), name)

    rows = []
    for name in sorted(list_attentions(), key=family_key):
        cls = get_attention(name)
        rows.append({"name": name, "kind": "attention", "attention": name, "source": attention_source(name),
                     "family": getattr(cls, "family", "other"), "benchmark": getattr(cls, "benchmark", None) or "",
                     "complexity": getattr(cls, "complexity", "?"), "constraints": getattr(cls, "constraints", "?"),
                     "available": "yes", "reference": getattr(cls, "reference", "?"), "options": ""})
    for name, reason in unavailable_attentions().items():
        rows.append({"name": name, "kind": "attention", "attention": name, "source": "builtin (optional)",
                     "family": "", "benchmark": "", "complexity": "", "constraints": "", "available": f"no: {reason}",
                     "reference": "", "options": ""})
    for name, (attention, kwargs) in list_configs().items():
        rows.append({"name": name, "kind": "configuration", "attention": attention, "source": "", "family": "",
                     "benchmark": "", "complexity": "",
                     "constraints": "", "available": "", "reference": "",
                     "options": ", ".join(f"{k}={v!r}" for k, v in kwargs.items())})
    return rows


@dataclass(frozen=True)
class CheckOptions:
    """Where and at which size to check a mechanism; ``kwargs`` are its constructor options."""

    grid: tuple[int, int] = (16, 16)
    device: str = "cpu"
    dim: int = 32
    heads: int = 4
    kwargs: Mapping[str, Any] = field(default_factory=dict)


def check(name: str, options: CheckOptions | None = None) -> list[CheckResult]:
    """The contract checks of one registered attention (or named configuration); a bad name, bad options or a
    grid the mechanism cannot run on raise :class:`InputError` before any check runs."""
    import torch

    from attnbench.contract import CheckContext, run_checks
    from attnbench.registry import UnknownAttentionError, capability_reasons

    options = options or CheckOptions()
    ctx = CheckContext(name, height=options.grid[0], width=options.grid[1], dim=options.dim, heads=options.heads,
                       device=options.device, kwargs=dict(options.kwargs))
    try:
        reasons = capability_reasons(ctx.build(), ctx.height, ctx.width, ctx.device, torch.float32)
    except (UnknownAttentionError, ValueError) as exc:
        raise InputError(str(exc)) from None
    if reasons:
        raise InputError(f"{name} cannot run on grid {ctx.height}x{ctx.width}: {'; '.join(reasons)} (use --grid)")
    return run_checks(ctx)


@dataclass(frozen=True)
class RooflineOptions:
    """``device``: auto, cpu or cuda; ``threads``: default all CPUs; matmul side ``n``; copy size in MiB."""

    device: str = "auto"
    threads: int | None = None
    n: int = 2048
    copy_mib: int = 256
    force: bool = False  # measure again even when a cached result exists


@dataclass(frozen=True)
class Roofline:
    """This machine's peaks: ``result`` holds ``peak_flops`` per timed dtype, ``slow_dtypes`` (dtype → why it was
    not timed), ``matmul_n_by_dtype``, ``copy_bytes_per_s`` and the requested ``matmul_n``;
    ``vendor`` the datasheet peaks where the machine is known."""

    machine: str
    device: str
    threads: int
    cache: Path
    result: dict[str, Any]
    vendor: dict[str, float] | None


def roofline(options: RooflineOptions | None = None) -> Roofline:
    """Measure (or read the cached) matmul peak and copy bandwidth of this machine."""
    import os

    from attnbench.measure.provenance import machine_tag, resolve_device
    from attnbench.measure.roofline import VENDOR_PEAKS, cache_path, roofline_for

    options = options or RooflineOptions()
    device = resolve_device(options.device)
    threads = options.threads or os.cpu_count() or 1
    machine = machine_tag(device)
    result = roofline_for(machine, device, threads, options.n, options.copy_mib, force=options.force)
    return Roofline(machine, device, threads, cache_path(machine, device, threads), result,
                    VENDOR_PEAKS.get(machine))
