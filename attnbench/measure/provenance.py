"""Provenance of a measurement: software versions, device, CPU, host, checkout, time."""

from __future__ import annotations

import functools
import hashlib
import os
import platform
import re
import socket
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

__all__ = ["code_version", "device_tag", "git_sha", "load_average", "machine_tag", "nvml_index", "provenance",
           "resolve_device", "runtime_environment", "tree_is_dirty", "canary"]


@functools.lru_cache(maxsize=1)
def cpu_model() -> str:
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or platform.machine()


@functools.lru_cache(maxsize=4)
def git_sha(root: str | None = None) -> str:
    """HEAD of the attnbench checkout, with ``+dirty`` when tracked files are modified; ``""`` outside git."""
    root = root or str(Path(__file__).resolve().parents[2])
    try:
        sha = subprocess.run(["git", "-C", root, "rev-parse", "--short=12", "HEAD"], capture_output=True,
                             text=True, timeout=10).stdout.strip()
        dirty = subprocess.run(["git", "-C", root, "status", "--porcelain", "--untracked-files=no"],
                               capture_output=True, text=True, timeout=10).stdout.strip()
    except (OSError, subprocess.SubprocessError):
        return ""
    return f"{sha}+dirty" if sha and dirty else sha


def resolve_device(device: str) -> str:
    """``auto`` → ``cuda`` when a GPU is usable, else ``cpu``."""
    if device != "auto":
        return device
    import torch

    return "cuda" if torch.cuda.is_available() else "cpu"


def nvml_index(visible: str | None, ordinal: int) -> int | str:
    """The NVML handle key of torch's CUDA device ``ordinal``: ``CUDA_VISIBLE_DEVICES`` (``visible``) renumbers
    devices, so torch's device 0 may be NVML index 3, or a GPU/MIG UUID. Returns an int index or a UUID string."""
    if not visible:
        return ordinal
    entries = [e.strip() for e in visible.split(",") if e.strip()]
    if ordinal >= len(entries):
        return ordinal
    entry = entries[ordinal]
    return int(entry) if entry.isdigit() else entry


def _gpu_info() -> tuple[str, float | None]:
    """Name and total memory (GiB) of the GPU this process uses (torch's current device), through NVML
    (nvidia-ml-py) honouring ``CUDA_VISIBLE_DEVICES``, falling back to torch."""
    import torch

    ordinal = torch.cuda.current_device() if torch.cuda.is_available() else 0
    try:
        import pynvml

        pynvml.nvmlInit()
        try:
            key = nvml_index(os.environ.get("CUDA_VISIBLE_DEVICES"), ordinal)
            handle = (pynvml.nvmlDeviceGetHandleByIndex(key) if isinstance(key, int)
                      else pynvml.nvmlDeviceGetHandleByUUID(key))
            name = pynvml.nvmlDeviceGetName(handle)
            name = name.decode() if isinstance(name, bytes) else name
            return name, pynvml.nvmlDeviceGetMemoryInfo(handle).total / 2**30
        finally:
            pynvml.nvmlShutdown()
    except Exception:  # noqa: BLE001 - pynvml.NVMLError or no driver: fall back to torch
        props = torch.cuda.get_device_properties(ordinal)
        return props.name, props.total_memory / 2**30


def _slug(text: str) -> str:
    return re.sub(r"[^a-z0-9]+", "-", text.lower()).strip("-")


def device_tag(device: str) -> str:
    """Short name of the device: ``cpu``, or the GPU model (``NVIDIA H200`` → ``h200``)."""
    if device == "cpu":
        return "cpu"
    name = _gpu_info()[0].lower()
    name = re.sub(r"^(nvidia|amd)\s+", "", name)
    name = re.sub(r"\b(geforce|tesla|sxm\d?|pcie|nvl|hbm\w*|\d+gb)\b", "", name)
    return _slug(name) or "cuda"


def machine_tag(device: str) -> str:
    """Results folder of this machine, derived from the hardware (asv's ``results/<machine>``): the GPU model for
    CUDA runs (``h200``), else the CPU model and core count (``amd-epyc-2c``). Two machines of different hardware
    never share a folder; identical hardware does, on purpose (their runs are comparable)."""
    if device != "cpu":
        return device_tag(device)
    return f"{_slug(cpu_model()) or 'cpu'}-{os.cpu_count() or 1}c"


@functools.lru_cache(maxsize=4)
def code_version(root: str | None = None) -> str:
    """The code that runs: the git sha, plus a hash of the uncommitted diff when tracked files differ
    (``abc123+dirty.1f2e3d4c``), so two different dirty states never count as the same code."""
    root = root or str(Path(__file__).resolve().parents[2])
    sha = git_sha(root)
    if not sha.endswith("+dirty"):
        return sha
    try:
        diff = subprocess.run(["git", "-C", root, "diff", "HEAD"], capture_output=True, timeout=30).stdout
    except (OSError, subprocess.SubprocessError):
        diff = b""
    return f"{sha}.{hashlib.sha1(diff).hexdigest()[:8]}"


def tree_is_dirty(root: str | None = None) -> bool:
    """Whether tracked files of the checkout differ from HEAD (False outside a git checkout)."""
    return git_sha(root or str(Path(__file__).resolve().parents[2])).endswith("+dirty")


def load_average() -> float | None:
    """The 1-minute load average of the machine (other work running while we time shows up here)."""
    try:
        return round(os.getloadavg()[0], 2)
    except OSError:
        return None


# Environment variables that change how kernels run (thread pools, allocators, instruction sets, devices).
ENV_PREFIXES = ("OMP_", "MKL_", "KMP_", "GOMP_", "OPENBLAS_", "DNNL_", "ONEDNN_", "ATEN_", "TORCH_", "PYTORCH_",
                "CUDA_", "NVIDIA_", "LD_PRELOAD", "MALLOC_", "ATTNBENCH_")


def runtime_environment() -> dict[str, Any]:
    """What the process runs with beyond versions: interpreter path, kernel-relevant environment variables,
    torch's parallel backend and CPU capability, and the CPU frequency governor / current frequency."""
    import torch

    env = {k: v for k, v in sorted(os.environ.items()) if k.startswith(ENV_PREFIXES)}
    info: dict[str, Any] = {"executable": sys.executable, "torch_path": str(Path(torch.__file__).parent), "env": env,
                            "canary_ms": canary(),
                            "cpu_capability": getattr(torch.backends.cpu, "get_cpu_capability", lambda: "")(),
                            "interop_threads": torch.get_num_interop_threads()}
    try:
        info["parallel"] = torch.__config__.parallel_info().splitlines()[1:4]
    except Exception:  # noqa: BLE001 - informational only
        pass
    for name, path in (("governor", "/sys/devices/system/cpu/cpu0/cpufreq/scaling_governor"),
                       ("cpu_mhz", "/sys/devices/system/cpu/cpu0/cpufreq/scaling_cur_freq")):
        try:
            info[name] = Path(path).read_text().strip()
        except OSError:
            pass
    return info


def canary() -> dict[str, float]:
    """Single-thread time (ms) of two elementwise kernels on 2^18 floats: ``exp`` and ``expm1``.

    Why: two installed copies of the same torch build (byte-identical files) ran ``expm1`` — and so ``elu`` and the
    ``linear`` mechanism — far apart on the development machine (docs/results.md, "Run-to-run differences"). A run
    records this canary so such an environment is visible in the data, not only as a mysterious outlier.
    """
    import torch
    from torch.utils.benchmark import Timer

    x = torch.randn(2**18, generator=torch.Generator().manual_seed(0))
    out = torch.empty_like(x)
    times = {}
    for op in ("exp", "expm1"):
        timer = Timer(f"torch.{op}(x, out=out)", globals={"torch": torch, "x": x, "out": out}, num_threads=1)
        times[op] = round(timer.blocked_autorange(min_run_time=0.1).median * 1e3, 4)
    return times


def provenance(device: str) -> dict[str, Any]:
    """The provenance columns of a results row (evaluated in the process that measured)."""
    import torch

    import attnbench

    info: dict[str, Any] = {
        "torch": torch.__version__,
        "cuda": torch.version.cuda or "",
        "cpu_model": cpu_model(),
        "hostname": socket.gethostname(),
        "git_sha": git_sha(),
        "code_version": code_version(),
        "machine": machine_tag(device),
        "attnbench": attnbench.__version__,
        "python": platform.python_version(),
        "timestamp": time.strftime("%Y-%m-%dT%H:%M:%S%z"),
    }
    if device == "cuda":
        info["device_name"], mem = _gpu_info()
        info["device_mem_gib"] = round(mem, 1) if mem else ""
    else:
        info["device_name"] = cpu_model()
        try:
            import psutil

            info["device_mem_gib"] = round(psutil.virtual_memory().total / 2**30, 1)
        except ImportError:  # psutil is a dependency, but provenance must never break a run
            info["device_mem_gib"] = ""
    return info
