"""attnbench as an installed package: the wheel carries the suites and the report template, and the installed
command finds its suites from any directory (no checkout)."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import zipfile
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]


@pytest.fixture(scope="module")
def wheel(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A non-editable wheel built from a copy of the sources (building in place would write into the checkout)."""
    src = tmp_path_factory.mktemp("src")
    shutil.copytree(ROOT, src, dirs_exist_ok=True, symlinks=True,
                    ignore=shutil.ignore_patterns(".git", ".venv", ".nox", "results", "*.egg-info", "build", "dist",
                                                  "__pycache__", ".pytest_cache", ".hypothesis", ".benchmarks"))
    out = tmp_path_factory.mktemp("wheel")
    done = subprocess.run([sys.executable, "-m", "pip", "wheel", str(src), "--no-deps", "--no-build-isolation",
                           "-w", str(out), "-q"], capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stderr[-2000:]
    (path,) = out.glob("attnbench-*.whl")
    return path


def test_wheel_contents(wheel: Path) -> None:
    names = set(zipfile.ZipFile(wheel).namelist())
    shipped = {p.name for p in (ROOT / "attnbench" / "suites").glob("*.toml")}
    assert {n.split("/")[-1] for n in names if n.startswith("attnbench/suites/")} == shipped
    assert "attnbench/report/render/templates/report.html.j2" in names
    assert "attnbench/attention/kernels/mano_windows.cpp" in names  # compiled on first use
    assert not [n for n in names if n.startswith(("tests/", "results/", "suites/"))]
    entry = next(n for n in names if n.endswith("entry_points.txt"))
    assert "attnbench = attnbench.cli:main" in zipfile.ZipFile(wheel).read(entry).decode()
    # the checkout's suites/ is the package's folder, not a second copy
    assert (ROOT / "suites").resolve() == (ROOT / "attnbench" / "suites").resolve()


def test_installed_wheel_runs_from_any_directory(wheel: Path, tmp_path: Path) -> None:
    target = tmp_path / "site"
    # the wheel alone (--no-deps) into its own folder, put first on the path: torch, timm, ... are this
    # environment's, attnbench is the installed wheel and shadows the checkout
    subprocess.run([sys.executable, "-m", "pip", "install", "--no-deps", "-q", "--target", str(target), str(wheel)],
                   check=True, timeout=300)
    work = tmp_path / "elsewhere"
    work.mkdir()
    env = {**os.environ, "PYTHONPATH": str(target)}

    def attnbench(*args: str) -> subprocess.CompletedProcess[str]:
        return subprocess.run([str(target / "bin" / "attnbench"), *args], capture_output=True, text=True, cwd=work,
                              env=env, timeout=120)

    where = subprocess.run([sys.executable, "-c", "import attnbench; print(attnbench.__file__)"], capture_output=True,
                           text=True, cwd=work, env=env, check=True, timeout=120).stdout
    assert where.startswith(str(target))  # the installed copy, not the checkout
    listed = attnbench("list", "--format", "csv")
    assert listed.returncode == 0 and "mano_reference," in listed.stdout, listed.stderr
    plan = attnbench("run", "smoke", "--dry-run")  # a packaged suite by name, from a directory with no suites/
    assert plan.returncode == 0, plan.stderr
    assert plan.stdout.startswith("smoke: 24 cases, 24 to run")
    default = attnbench("bench", "--dry-run")  # this machine's default suites, shipped in the package
    assert default.returncode == 0 and "cpu:" in default.stdout and "accuracy-quick:" in default.stdout, default.stderr
    assert not (work / "results").exists()  # a dry run writes nothing
