"""The measurement of one cost case: build one attention layer in this (fresh) process, then its peak memory, the
time of one step and the SDPA kernel one profiled step uses.

A step is one ``fwd`` (under ``inference_mode``) or one ``fwd_bwd`` (gradients cleared every call, a fixed output
gradient). The arguments are plain values, so the measurement knows nothing of suites or cases: a cost case
(:class:`attnbench.spec.cost.CostCase`) passes its configuration and timing budget.
"""

from __future__ import annotations

import json
import time
from collections.abc import Callable, Mapping
from typing import Any

__all__ = ["measure_cost", "step_cost"]


def measure_cost(attention: str, kwargs: Mapping[str, Any], *, mode: str, batch: int, height: int, width: int,
                 dim: int, heads: int, dtype: str, device: str, threads: int, compiled: bool, min_run_time: float,
                 min_blocks: int, max_run_time: float, warmup: int,
                 calls_per_block: int | None = None, profile_kernel: bool = True) -> dict[str, Any]:
    """Build the layer, then peak memory (first full-size step of this fresh process), time of one step (at least
    ``min_blocks`` blocks or the ``min_run_time`` .. ``max_run_time`` budget) and the SDPA kernel of one profiled
    step (unless ``profile_kernel`` is false); returns the measured columns of a results row."""
    import torch

    from attnbench.measure.provenance import load_average
    from attnbench.registry import build_for_grid, cost_model

    load_start = load_average()
    torch_dtype = getattr(torch, dtype)
    module = build_for_grid(attention, dim, heads, height, width, dict(kwargs), seed=0, device=device).to(torch_dtype)
    torch.manual_seed(1)
    x = torch.randn(batch, height, width, dim, device=device, dtype=torch_dtype)
    grad_out = torch.randn_like(x) if mode == "fwd_bwd" else None
    input_bytes = x.numel() * x.element_size() * (2 if grad_out is not None else 1)
    params = sum(p.numel() for p in module.parameters())
    runner = torch.compile(module) if compiled else module

    def clear_grads() -> None:
        module.zero_grad(set_to_none=True)  # never accumulate gradients across iterations
        x.grad = None

    if mode == "fwd":
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
    if compiled:  # compilation is timed separately and kept out of the measured region
        t0 = time.perf_counter()
        step()
        if device == "cuda":
            torch.cuda.synchronize()
        compile_s = time.perf_counter() - t0
    # Compiled: compilation has already grown and freed the heap, so a later HWM delta would read ~0, not the peak.
    measured = step_cost(step, device=device, threads=threads, min_run_time=min_run_time, min_blocks=min_blocks,
                         max_run_time=max_run_time, warmup=warmup, calls_per_block=calls_per_block,
                         reset=clear_grads, cpu_peak=not compiled, profile_kernel=profile_kernel)
    info: dict[str, Any] = getattr(module, "extra_info", lambda: {})()
    flops, moved = cost_model(module, batch, height, width, dim, mode, x.element_size())
    seconds = measured["time_ms_median"] / 1e3
    return {
        **measured,
        "input_mib": input_bytes / 2**20,
        "params": params,
        "compile_s": compile_s,
        "impl": json.dumps(info, sort_keys=True, default=str) if info else "",
        "flops": flops,
        "bytes": moved,
        "gflops_per_s": flops / seconds / 1e9 if flops else None,
        "gbytes_per_s": moved / seconds / 1e9 if moved else None,
        "load_start": load_start,
        "load_end": load_average(),
    }


def step_cost(step: Callable[[], object], *, device: str, threads: int, min_run_time: float, min_blocks: int,
              max_run_time: float, warmup: int, calls_per_block: int | None = None,
              reset: Callable[[], object] | None = None, cpu_peak: bool = True,
              profile_kernel: bool = True) -> dict[str, Any]:
    """Peak memory of the first full-size ``step`` in this fresh process (CPU: VmHWM after priming the runtime;
    CUDA: after warm-up, from a baseline taken once ``reset`` has cleared the last step's gradients), then the time
    of one step (:func:`attnbench.measure.timing.measure`) and the SDPA kernel one profiled step uses: the timing
    and memory columns of a results row. ``cpu_peak=False`` skips the CPU peak (after a compilation the heap has
    already grown and been freed, so a high-water-mark delta would read about 0, not the peak).
    ``profile_kernel=False`` skips the profiled step (``sdpa_backend`` empty): a replicated case profiles in its
    first process only, since the kernel SDPA picks follows from shapes, dtype and device, and one more step of a
    slow case is a sixth of its process's time."""
    from attnbench.measure import memory, timing
    from attnbench.measure.profiling import sdpa_kernels

    if device == "cpu":
        mem = None
        if cpu_peak:
            memory.prime_cpu_runtime()
            mem = memory.peak_memory(step, "cpu")  # first full-size step in this fresh process: honest HWM
        timing_warmup = warmup
    else:
        for _ in range(max(1, warmup)):
            step()
        # The baseline is taken after the last step's gradients are cleared, as on CPU (where none exist yet):
        # both counters then include x.grad and the parameter gradients the measured step creates.
        mem = memory.peak_memory(step, "cuda", reset=reset)
        timing_warmup = 0  # warmed up above, before the memory counters
    result = timing.measure(step, threads=threads, min_run_time=min_run_time, min_blocks=min_blocks,
                            warmup=timing_warmup, max_run_time=max_run_time, calls_per_block=calls_per_block)
    ci_lo, ci_hi = result.median_ci()
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
        "sdpa_backend": sdpa_kernels(step) if profile_kernel else "",
    }
