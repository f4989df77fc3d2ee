"""Cost suites (``kind = "cost"``, the default): attentions × grids × modes × compile, one :class:`CostCase` each.

A cost case builds one attention layer in its fresh process and measures the peak memory and the time of one
``fwd`` (under ``inference_mode``) or ``fwd_bwd`` step (gradients cleared every call, a fixed output gradient).
"""

from __future__ import annotations

import json
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, ClassVar

from attnbench.spec.case import Case
from attnbench.spec.validate import (
    COMMON_KEYS, Checker, Suite, attention_specs, common_config, resolve_device_for, resolve_threads,
)

__all__ = ["COST_KEYS", "MODES", "CostCase", "load_cost_suite", "measure_cost"]

MODES = ("fwd", "fwd_bwd")
COST_KEYS = COMMON_KEYS | {
    "batch", "dim", "heads", "modes", "grids", "min_run_time", "min_blocks", "min_repeats", "max_run_time", "warmup",
    "frontier", "compile", "compile_timeout", "compile_grids",
}


@dataclass(frozen=True)
class CostCase(Case):
    """One layer at one grid, mode and configuration: time and peak memory of one step."""

    kind: ClassVar[str] = "cost"
    CONFIG_SETTINGS: ClassVar[tuple[str, ...]] = (
        "min_run_time", "min_blocks", "max_run_time", "warmup", "timeout", "memory_limit_gib", "imports")

    def config(self) -> dict[str, Any]:
        """As :meth:`Case.config`, plus the compile budget of a compiled case (an eager case's identity is the
        same whatever ``compile_timeout`` says, so results from before the key existed still match)."""
        config = super().config()
        if self.compile:
            config["compile_timeout"] = self.settings["compile_timeout"]
        return config

    def precheck(self) -> list[str]:
        """The mechanism's own ``not_supported_reasons`` at this grid, device, dtype and mode."""
        import torch

        from attnbench.registry import build_for_grid, capability_reasons

        module = build_for_grid(self.attention, self.dim, self.heads, self.height, self.width, self.kwargs)
        return capability_reasons(module, self.height, self.width, self.device, getattr(torch, self.dtype),
                                  backward=self.mode == "fwd_bwd")

    def run(self, progress: Callable[[str], None]) -> dict[str, Any]:
        return measure_cost(self)

    def time_limit(self) -> float:
        """``timeout``, plus ``compile_timeout`` for a compiled case (compilation happens inside the case)."""
        return self.settings["timeout"] + (self.settings["compile_timeout"] if self.compile else 0.0)


def load_cost_suite(raw: dict[str, Any], c: Checker) -> Suite:
    """Validate a cost suite and expand it grid-major into :class:`CostCase` s."""
    c.unknown_keys("", raw, COST_KEYS)
    cfg = common_config(c, raw)
    batch = c.int_("batch", raw.get("batch", 1), 1)
    modes = tuple(c.choice(f"modes[{i}]", m, MODES) for i, m in enumerate(c.list_("modes", raw.get("modes", ["fwd"]))))
    if len(set(modes)) != len(modes):
        raise c.fail("modes", f"duplicate mode in {list(modes)!r}")
    if "grids" not in raw:
        raise c.fail("grids", "missing: a cost suite sweeps grids, e.g. grids = [[32, 32], [64, 64]]")
    grids = c.grids("grids", raw.get("grids"))
    compile_axis = raw.get("compile", False)
    compile_axis = [compile_axis] if isinstance(compile_axis, bool) else c.list_("compile", compile_axis)
    compile_axis = tuple(c.bool_(f"compile[{i}]", v) for i, v in enumerate(compile_axis))
    # The compiled series may sweep fewer grids: compiling takes seconds to minutes per case on a small CPU.
    compile_grids = set(c.grids("compile_grids", raw["compile_grids"])) if "compile_grids" in raw else None
    settings = {
        "min_run_time": c.float_("min_run_time", raw.get("min_run_time", 0.5)),
        # min_repeats: the name before timing statistics were counted in blocks (kept as an alias)
        "min_blocks": c.int_("min_blocks" if "min_blocks" in raw else "min_repeats",
                             raw.get("min_blocks", raw.get("min_repeats", 20)), 2),
        "max_run_time": c.float_("max_run_time", raw.get("max_run_time", 10.0)),
        "warmup": c.int_("warmup", raw.get("warmup", 1), 0),
        "frontier": c.bool_("frontier", raw.get("frontier", True)),
        "memory_limit_gib": cfg["memory_limit_gib"],
        "imports": cfg["imports"],
        "timeout": cfg["timeout"],
        # seconds a compiled case may spend compiling, on top of timeout (inductor's C++ build is slow on 2 cores)
        "compile_timeout": c.float_("compile_timeout", raw.get("compile_timeout", 300)),
    }
    specs = attention_specs(c, raw, cfg["dim"], cfg["heads"], grids[0])
    device = resolve_device_for(c, cfg["device"])
    threads = resolve_threads(cfg["threads"])
    cases = []
    # Grid-major order interleaves mechanisms (drift hits all alike) and lets a frontier skip larger grids.
    all_grids = sorted({g for s in specs for g in (s.grids or grids)}, key=lambda hw: (hw[0] * hw[1], hw))
    if compile_grids is not None and not compile_grids <= set(all_grids):
        extra = sorted(compile_grids - set(all_grids))
        raise c.fail("compile_grids", f"{[list(g) for g in extra]} not among the suite's grids; expected a subset")
    for H, W in all_grids:
        for mode in modes:
            for compiled in compile_axis:
                if compiled and compile_grids is not None and (H, W) not in compile_grids:
                    continue
                for spec in specs:
                    if (H, W) not in (spec.grids or grids) or (compiled and not spec.compile):
                        continue
                    cases.append(CostCase(cfg["name"], spec.label, spec.name, spec.kwargs, mode, H, W, batch,
                                          cfg["dim"], cfg["heads"], cfg["dtype"], device, threads, compiled,
                                          cfg["tf32"], settings))
    return Suite(c.path, cfg["name"], "cost", cfg["description"], cfg["expected_duration"], device, specs,
                 tuple(cases))


def measure_cost(case: CostCase) -> dict[str, Any]:
    """Build the layer, then peak memory (first full-size step of this fresh process), time of one step (≥ 20
    blocks or the budget) and the SDPA kernel of one profiled step."""
    import torch

    from attnbench.measure import memory, timing
    from attnbench.measure.profiling import sdpa_kernels
    from attnbench.measure.provenance import load_average
    from attnbench.registry import build_for_grid, cost_model

    load_start = load_average()
    s = case.settings
    dtype = getattr(torch, case.dtype)
    module = build_for_grid(case.attention, case.dim, case.heads, case.height, case.width, case.kwargs,
                            seed=0, device=case.device).to(dtype)
    torch.manual_seed(1)
    x = torch.randn(case.batch, case.height, case.width, case.dim, device=case.device, dtype=dtype)
    grad_out = torch.randn_like(x) if case.mode == "fwd_bwd" else None
    input_bytes = x.numel() * x.element_size() * (2 if grad_out is not None else 1)
    params = sum(p.numel() for p in module.parameters())
    runner = torch.compile(module) if case.compile else module

    def clear_grads() -> None:
        module.zero_grad(set_to_none=True)  # never accumulate gradients across iterations
        x.grad = None

    if case.mode == "fwd":
        module.eval()

        def step() -> None:
            with torch.inference_mode():
                runner(x)
    else:
        module.train()
        x.requires_grad_(True)

        def step() -> None:
            clear_grads()
            runner(x).backward(grad_out)

    compile_s = None
    if case.compile:  # compilation is timed separately and kept out of the measured region
        t0 = time.perf_counter()
        step()
        if case.device == "cuda":
            torch.cuda.synchronize()
        compile_s = time.perf_counter() - t0
    if case.device == "cpu":
        # Compiled: compilation has already grown and freed the heap, so a later HWM delta would read ~0, not the peak.
        mem = None
        if not case.compile:
            memory.prime_cpu_runtime()
            mem = memory.peak_memory(step, "cpu")  # first full-size step in this fresh process: honest HWM
        warmup = s["warmup"]
    else:
        for _ in range(max(1, s["warmup"])):
            step()
        # The baseline is taken after the last step's gradients are cleared, as on CPU (where none exist yet):
        # both counters then include x.grad and the parameter gradients the measured step creates.
        mem = memory.peak_memory(step, "cuda", reset=clear_grads)
        warmup = 0
    result = timing.measure(step, threads=case.threads, min_run_time=s["min_run_time"], min_blocks=s["min_blocks"],
                            warmup=warmup, max_run_time=s["max_run_time"])
    kernels = sdpa_kernels(step)
    info = getattr(module, "extra_info", lambda: {})()
    ci_lo, ci_hi = result.median_ci()
    flops, moved = cost_model(module, case.batch, case.height, case.width, case.dim, case.mode, x.element_size())
    return {
        "time_ms_median": result.median * 1e3,
        "time_ms_q1": result.q1 * 1e3,
        "time_ms_q3": result.q3 * 1e3,
        "time_ms_iqr": result.iqr * 1e3,
        "time_ms_min": result.minimum * 1e3,
        "time_ms_ci_lo": ci_lo * 1e3,
        "time_ms_ci_hi": ci_hi * 1e3,
        "time_n": result.n,
        "time_calls_per_block": result.number_per_run,
        "time_samples_ms": json.dumps([round(t * 1e3, 6) for t in result.times]),
        "minor_faults_per_call": result.minor_faults_per_call,
        "peak_mib": mem.peak_bytes / 2**20 if mem else None,
        "mem_kind": mem.kind if mem else "",
        "input_mib": input_bytes / 2**20,
        "params": params,
        "compile_s": compile_s,
        "sdpa_backend": kernels,
        "impl": json.dumps(info, sort_keys=True, default=str) if info else "",
        "flops": flops,
        "bytes": moved,
        "gflops_per_s": flops / result.median / 1e9 if flops else None,
        "gbytes_per_s": moved / result.median / 1e9 if moved else None,
        "load_start": load_start,
        "load_end": load_average(),
    }
