"""The machine's own speed, measured where the cases run: a compute canary and a memory canary (a few hundred ms),
recorded once per round of a replicated suite, and the CPU time the hypervisor stole during each case.

Why: the same VM type ran a whole suite 2× slower on one day than on another, with memory-bound and compute-bound
kernels slowing differently. Within a run, paired ratios cancel that; across runs, the canaries say how far the
machine itself moved, so a comparison can say "the machine ran 1.9× slower" instead of blaming the code.
"""

from __future__ import annotations

from pathlib import Path

__all__ = ["CpuTimes", "cpu_times", "speed_index", "steal_percent"]


def speed_index(threads: int, device: str = "cpu") -> dict[str, float]:
    """``compute_ms``: median time of a 256² float32 matmul; ``memory_ms``: median time of copying 32 MiB; both
    on ``threads`` intra-op threads, best of a few short blocks (≈ 0.3 s in all)."""
    import torch
    from torch.utils.benchmark import Timer

    dev = torch.device(device)
    a = torch.randn(256, 256, device=dev)
    src = torch.randn(8 * 1024 * 1024, device=dev)  # 32 MiB of float32
    dst = torch.empty_like(src)
    out = {}
    timed = (("compute_ms", "a @ a", {"a": a}), ("memory_ms", "dst.copy_(src)", {"dst": dst, "src": src}))
    for name, stmt, env in timed:
        m = Timer(stmt=stmt, globals=env, num_threads=threads).blocked_autorange(min_run_time=0.12)
        out[name] = round(m.median * 1e3, 4)
    return out


CpuTimes = tuple[int, int]  # (steal jiffies, total jiffies)


def cpu_times(stat: Path = Path("/proc/stat")) -> CpuTimes | None:
    """Steal and total CPU time so far (all CPUs, in jiffies); None where ``/proc/stat`` is not available."""
    try:
        fields = stat.read_text().splitlines()[0].split()
    except OSError:
        return None
    if not fields or fields[0] != "cpu":
        return None
    values = [int(v) for v in fields[1:]]
    # user nice system idle iowait irq softirq steal [guest guest_nice: already counted in user/nice]
    return (values[7] if len(values) > 7 else 0), sum(values[:8])


def steal_percent(before: CpuTimes | None, after: CpuTimes | None) -> float | None:
    """Percentage of CPU time stolen by the hypervisor between two :func:`cpu_times` readings."""
    if before is None or after is None or after[1] <= before[1]:
        return None
    return round(100.0 * (after[0] - before[0]) / (after[1] - before[1]), 2)
