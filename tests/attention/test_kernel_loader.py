"""The native kernels' loader (attnbench/attention/kernels): what loading prints."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path


def test_loading_prints_no_cuda_home_warning(tmp_path: Path) -> None:
    """``torch.utils.cpp_extension`` warns "No CUDA runtime is found" on import where ``nvcc`` is on PATH but no GPU
    is; the loader imports it quietly, so a run's one-line error stays one line (stderr is otherwise empty here)."""
    fake = tmp_path / "nvcc"
    fake.write_text("#!/bin/sh\nexit 1\n")
    fake.chmod(0o755)
    env = {k: v for k, v in os.environ.items() if k not in ("CUDA_HOME", "CUDA_PATH", "ATTNBENCH_NATIVE")}
    env["PATH"] = f"{tmp_path}{os.pathsep}{env.get('PATH', '')}"
    code = "from attnbench.attention import kernels\nkernels.prepare()\nprint('loaded')\n"
    out = subprocess.run([sys.executable, "-c", code], env=env, capture_output=True, text=True, timeout=300)
    assert out.returncode == 0, out.stderr
    assert out.stdout.strip() == "loaded"
    assert "CUDA" not in out.stderr, out.stderr
