"""What runs inside one case's fresh process: configure, build, measure memory and time, report a dict.

The parent (:mod:`attnbench.runner`) never measures anything itself; it starts one process per case, enforces
the timeout and turns a missing answer into ``timeout`` or ``crashed``. Exceptions are mapped here: out of
memory (``torch.OutOfMemoryError``, ``MemoryError``, the CPU allocator's "can't allocate") → ``oom``, anything
else → ``error`` with the exception's one-line message.
"""

from __future__ import annotations

import importlib
import json
import logging
import resource
import time
from collections.abc import Callable
from typing import Any

import torch

from attnbench.suite import Case

__all__ = ["classify_exception", "configure", "run_case"]

# torch.utils.benchmark imports cpp_extension, which warns about a missing CUDA toolkit on CPU-only machines.
logging.getLogger("torch.utils.cpp_extension").setLevel(logging.ERROR)

_OOM_MARKERS = ("out of memory", "can't allocate memory", "cannot allocate memory", "bad_alloc")


def classify_exception(exc: BaseException) -> tuple[str, str]:
    """``(status, reason)`` for an exception raised by a case."""
    message = (str(exc).strip().splitlines() or [""])[0][:300]
    oom_type = getattr(torch, "OutOfMemoryError", None)
    if isinstance(exc, MemoryError) or (oom_type is not None and isinstance(exc, oom_type)):
        return "oom", f"{type(exc).__name__}: {message}"
    if isinstance(exc, RuntimeError) and any(m in str(exc).lower() for m in _OOM_MARKERS):
        return "oom", f"{type(exc).__name__}: {message}"
    return "error", f"{type(exc).__name__}: {message}"


def _vm_size_bytes() -> int:
    with open("/proc/self/status") as fh:
        for line in fh:
            if line.startswith("VmSize:"):
                return int(line.split()[1]) * 1024
    return 0


def configure(case: Case) -> None:
    """Threads, TF32, memory cap and plugin imports: set explicitly in every case process, and recorded."""
    torch.set_num_threads(case.threads)
    torch.backends.cuda.matmul.allow_tf32 = case.tf32
    torch.backends.cudnn.allow_tf32 = case.tf32
    torch.set_float32_matmul_precision("high" if case.tf32 else "highest")
    limit = case.settings.get("memory_limit_gib")
    if limit and case.device == "cpu":
        # Address-space cap on top of what is mapped now (the CUDA build of torch maps GBs it never touches),
        # so an oversized allocation fails as an exception (oom) instead of summoning the kernel's OOM killer.
        cap = _vm_size_bytes() + int(limit * 2**30)
        resource.setrlimit(resource.RLIMIT_AS, (cap, resource.getrlimit(resource.RLIMIT_AS)[1]))
    for module in case.settings.get("imports", ()):
        importlib.import_module(module)


def run_case(case: Case, progress: Callable[[str], None] | None = None) -> dict[str, Any]:
    """Run one case and return the measured columns (status ``ok``) or a failure status."""
    start = time.perf_counter()
    try:
        configure(case)
        if case.kind == "cost":
            out = run_cost_case(case)
        else:
            from attnbench.train import run_accuracy_case

            out = run_accuracy_case(case, progress or (lambda message: None))
        out.setdefault("status", "ok")
    except BaseException as exc:  # noqa: BLE001 - every failure is a result row, never a crashed sweep
        if isinstance(exc, KeyboardInterrupt):
            raise
        status, reason = classify_exception(exc)
        out = {"status": status, "reason": reason}
    out["case_wall_s"] = round(time.perf_counter() - start, 3)
    return out


def _sync(device: str) -> None:
    if device == "cuda":
        torch.cuda.synchronize()


def run_cost_case(case: Case) -> dict[str, Any]:
    from attnbench import memory, timing
    from attnbench.contract import build

    s = case.settings
    dtype = getattr(torch, case.dtype)
    module = build(case.attention, case.dim, case.heads, case.height, case.width, case.kwargs,
                   seed=0, device=case.device).to(dtype)
    torch.manual_seed(1)
    x = torch.randn(case.batch, case.height, case.width, case.dim, device=case.device, dtype=dtype)
    grad_out = torch.randn_like(x) if case.mode == "fwd_bwd" else None
    input_bytes = x.numel() * x.element_size() * (2 if grad_out is not None else 1)
    params = sum(p.numel() for p in module.parameters())
    runner = torch.compile(module) if case.compile else module

    if case.mode == "fwd":
        module.eval()

        def step() -> None:
            with torch.inference_mode():
                runner(x)
    else:
        module.train()
        x.requires_grad_(True)

        def step() -> None:
            module.zero_grad(set_to_none=True)  # never accumulate gradients across iterations
            x.grad = None
            runner(x).backward(grad_out)

    compile_s = None
    if case.compile:  # compilation is timed separately and kept out of the measured region
        t0 = time.perf_counter()
        step()
        _sync(case.device)
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
        mem = memory.peak_memory(step, "cuda")
        warmup = 0
    result = timing.measure(step, threads=case.threads, min_run_time=s["min_run_time"],
                            min_repeats=s["min_repeats"], warmup=warmup)
    info = getattr(module, "extra_info", lambda: {})()
    return {
        "time_ms_median": result.median * 1e3,
        "time_ms_iqr": result.iqr * 1e3,
        "time_ms_min": result.minimum * 1e3,
        "time_n": result.n,
        "peak_mib": mem.peak_bytes / 2**20 if mem else None,
        "mem_kind": mem.kind if mem else "",
        "input_mib": input_bytes / 2**20,
        "params": params,
        "compile_s": compile_s,
        "sdpa_backend": info.get("sdpa_backend", ""),
        "impl": json.dumps(info, sort_keys=True, default=str) if info else "",
    }
