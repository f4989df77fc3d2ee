"""Whether MANO's native kernel (attnbench/attention/kernels) can be expected to run in this test session.

Expected wherever a C++ compiler is on PATH and ``ATTNBENCH_NATIVE`` is not ``0``: there a test that needs the
kernel runs, and fails if the kernel does not build. Elsewhere (a machine without a compiler, or the kernel switched
off) such tests skip with the reason, and the tests of the Python fallback cover ``mano``."""

from __future__ import annotations

import os
import shutil

import pytest

from attnbench.attention import kernels


def native_expected() -> bool:
    return os.environ.get("ATTNBENCH_NATIVE", "1") != "0" and shutil.which(os.environ.get("CXX", "c++")) is not None


def native_available() -> bool:
    return kernels.mano_windows_status() == ""


def native_skipped() -> bool:
    """Neither built nor expected here: the tests that need the kernel skip."""
    return not native_expected() and not native_available()


needs_native = pytest.mark.skipif(
    native_skipped(),
    reason=f"MANO's native kernel is not built here and not expected (no C++ compiler, or ATTNBENCH_NATIVE=0): "
           f"{kernels.mano_windows_status()}",
)


def skip_unless_native() -> None:
    """Inside a test: skip, as :data:`needs_native` would, when the kernel is neither built nor expected here."""
    if native_skipped():
        pytest.skip("MANO's native kernel is not built here (no C++ compiler, or ATTNBENCH_NATIVE=0)")
