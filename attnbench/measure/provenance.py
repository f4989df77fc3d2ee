"""Provenance of a measurement: software versions, device, CPU, host, checkout, time."""

from __future__ import annotations

import functools
import platform
import re
import socket
import subprocess
import time
from pathlib import Path
from typing import Any

__all__ = ["device_tag", "git_sha", "provenance", "resolve_device"]


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


def _gpu_info() -> tuple[str, float | None]:
    """GPU name and total memory (GiB) through NVML (nvidia-ml-py), falling back to torch."""
    try:
        import pynvml

        pynvml.nvmlInit()
        try:
            handle = pynvml.nvmlDeviceGetHandleByIndex(0)
            name = pynvml.nvmlDeviceGetName(handle)
            name = name.decode() if isinstance(name, bytes) else name
            return name, pynvml.nvmlDeviceGetMemoryInfo(handle).total / 2**30
        finally:
            pynvml.nvmlShutdown()
    except Exception:  # noqa: BLE001 - pynvml.NVMLError or no driver: fall back to torch
        import torch

        props = torch.cuda.get_device_properties(0)
        return props.name, props.total_memory / 2**30


def device_tag(device: str) -> str:
    """Folder name for results of this machine: ``cpu``, or the GPU model (``NVIDIA H200`` → ``h200``)."""
    if device == "cpu":
        return "cpu"
    name = _gpu_info()[0].lower()
    name = re.sub(r"^(nvidia|amd)\s+", "", name)
    name = re.sub(r"\b(geforce|tesla|sxm\d?|pcie|nvl|hbm\w*|\d+gb)\b", "", name)
    return re.sub(r"[^a-z0-9]+", "-", name).strip("-") or "cuda"


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
