"""Cost suites (``kind = "cost"``, the default): attentions × grids × modes × compile, one :class:`CostCase` each.

A cost case builds one attention layer in its fresh process and measures the peak memory and the time of one
``fwd`` or ``fwd_bwd`` step (:func:`attnbench.measure.cost.measure_cost`), or, in mode ``train_step``, one optimiser
step of the accuracy backbone built with the mechanism (:func:`attnbench.training.step_cost.measure_train_step`);
this module only validates the suite and says what each case is.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any, ClassVar

from attnbench.measure.cost import measure_cost
from attnbench.spec.case import Case
from attnbench.spec.checker import Checker, keys_of, read
from attnbench.spec.settings import COMMON_KEYS, MODES, CostSettings, CostSweep
from attnbench.spec.validate import Suite, attention_specs, common_config, resolve_device_for, resolve_threads

__all__ = ["COST_KEYS", "MODES", "CostCase", "load_cost_suite"]

COST_KEYS = COMMON_KEYS | keys_of(CostSweep, CostSettings)


@dataclass(frozen=True)
class CostCase(Case):
    """One layer at one grid, mode and configuration: time and peak memory of one step."""

    settings: CostSettings = field(default_factory=CostSettings)

    kind: ClassVar[str] = "cost"
    CONFIG_SETTINGS: ClassVar[tuple[str, ...]] = (
        "min_run_time", "min_blocks", "max_run_time", "warmup", "timeout", "memory_limit_gib", "imports")

    def config(self) -> dict[str, Any]:
        """As :meth:`Case.config`, plus the compile budget of a compiled case and a fixed ``calls_per_block``
        (an eager, autoranged case's identity is the
        same whatever ``compile_timeout`` says, so results from before the key existed still match)."""
        config = super().config()
        if self.compile:
            config["compile_timeout"] = self.settings.compile_timeout
        if self.settings.calls_per_block:  # only when fixed: autoranged cases keep the ids they always had
            config["calls_per_block"] = self.settings.calls_per_block
        return config

    @property
    def frontier(self) -> bool:
        return self.settings.frontier

    def identity(self) -> dict[str, Any]:
        """As :meth:`Case.identity`, with the timing budget's columns."""
        s = self.settings
        return {**super().identity(), "min_run_time": s.min_run_time, "min_blocks": s.min_blocks,
                "warmup": s.warmup}

    def precheck(self) -> list[str]:
        """The mechanism's own ``not_supported_reasons`` at this grid, device, dtype and mode."""
        import torch

        from attnbench.registry import build_for_grid, capability_reasons

        module = build_for_grid(self.attention, self.dim, self.heads, self.height, self.width, self.kwargs)
        return capability_reasons(module, self.height, self.width, self.device, getattr(torch, self.dtype),
                                  backward=self.mode != "fwd")

    def run(self, progress: Callable[[str], None]) -> dict[str, Any]:
        s = self.settings
        if self.mode == "train_step":
            from attnbench.training.step_cost import measure_train_step

            return measure_train_step(self.attention, self.kwargs, batch=self.batch, height=self.height,
                                      width=self.width, dim=self.dim, heads=self.heads, dtype=self.dtype,
                                      device=self.device, threads=self.threads, min_run_time=s.min_run_time,
                                      min_blocks=s.min_blocks, max_run_time=s.max_run_time, warmup=s.warmup,
                                      calls_per_block=s.calls_per_block or None)
        return measure_cost(self.attention, self.kwargs, mode=self.mode, batch=self.batch, height=self.height,
                            width=self.width, dim=self.dim, heads=self.heads, dtype=self.dtype, device=self.device,
                            threads=self.threads, compiled=self.compile, min_run_time=s.min_run_time,
                            min_blocks=s.min_blocks, max_run_time=s.max_run_time, warmup=s.warmup,
                            calls_per_block=s.calls_per_block or None,
                            # the kernel SDPA picks is the same in every process: profiled in the first one only
                            profile_kernel=self.replicate <= 1)

    def time_limit(self) -> float:
        """``timeout``, plus ``compile_timeout`` for a compiled case (compilation happens inside the case)."""
        return self.settings.timeout + (self.settings.compile_timeout if self.compile else 0.0)


def load_cost_suite(raw: dict[str, Any], c: Checker) -> Suite:
    """Validate a cost suite and expand it grid-major into :class:`CostCase` s."""
    c.unknown_keys("", raw, COST_KEYS)
    cfg = common_config(c, raw)
    sweep = CostSweep(**read(CostSweep, c, raw))
    # The run settings are read once (importing the suite's plugins registers the attentions named below).
    settings = CostSettings(**read(CostSettings, c, raw))
    if "train_step" in sweep.modes and any(sweep.compile):
        raise c.fail("compile", "train_step is measured eager only; use compile = [false] in a suite with it")
    specs = attention_specs(c, raw, cfg.dim, cfg.heads, sweep.grids[0])
    device = resolve_device_for(c, cfg.device)
    threads = resolve_threads(cfg.threads)
    cases = []
    # Grid-major order interleaves mechanisms (drift hits all alike) and lets a frontier skip larger grids.
    all_grids = sorted({g for s in specs for g in (s.grids or sweep.grids)}, key=lambda hw: (hw[0] * hw[1], hw))
    compile_grids = set(sweep.compile_grids) if sweep.compile_grids is not None else None
    if compile_grids is not None and not compile_grids <= set(all_grids):
        extra = sorted(compile_grids - set(all_grids))
        raise c.fail("compile_grids", f"{[list(g) for g in extra]} not among the suite's grids; expected a subset")
    for H, W in all_grids:
        for mode in sweep.modes:
            for compiled in sweep.compile:
                if compiled and compile_grids is not None and (H, W) not in compile_grids:
                    continue
                for spec in specs:
                    if (H, W) not in (spec.grids or sweep.grids) or (compiled and not spec.compile):
                        continue
                    cases.append(CostCase(cfg.name, spec.label, spec.name, spec.kwargs, mode, H, W, sweep.batch,
                                          cfg.dim, cfg.heads, cfg.dtype, device, threads, compiled, cfg.tf32,
                                          settings))
    return Suite(c.path, cfg.name, "cost", cfg.description, cfg.expected_duration, device, specs, tuple(cases),
                 sweep.replicates, sweep.order_seed)
