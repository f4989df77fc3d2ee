"""nox sessions: ``nox -s tests`` and ``nox -s lint`` (the defaults), ``nox -s bench`` and ``nox -s docs``; extra
arguments after ``--`` pass through.

Virtual environments are reused between runs (``reuse_venv = "yes"``). ``nox --no-venv -s tests`` runs in the
current environment instead (nothing is installed then).
"""

from __future__ import annotations

import os
import sys
from pathlib import Path

import nox

nox.options.sessions = ["tests", "lint"]
nox.options.reuse_venv = "yes"


def _install(session: nox.Session, extras: str, *constraints: str) -> None:
    if session.venv_backend == "none":  # --no-venv: use the environment nox runs in, as it is
        return
    # torch is a range in pyproject.toml: an already-installed CUDA build that satisfies it is kept (unless a
    # constraints file pins another version, as the tests' does).
    session.install(*(a for c in constraints for a in ("-c", c)), "-e", f".[{extras}]")


@nox.session
def tests(session: nox.Session) -> None:
    """The test-suite (CPU, a few minutes, in parallel on the machine's cores). ``nox -s tests -- -n 0 -m microbench``
    runs the micro-benchmarks.

    Installed with the versions the tests rely on (exact SDPA kernels, timm's window attention, numerics):
    ``.ci/constraints.txt``. The 15 slowest tests are listed at the end."""
    _install(session, "test,ray", ".ci/constraints.txt")  # the Ray executor's tests run on a local Ray instance
    # One pytest worker per core (at most 4: each imports torch), a test file per worker (``loadfile``), so a
    # module's shared fixture — the smoke bench, the report — runs once. ``-- -n 0`` runs them in one process.
    workers = min(4, os.cpu_count() or 1)
    session.run("pytest", "-n", str(workers), "--dist", "loadfile", "--durations=15", *session.posargs)


# Exact versions: a new ruff or mypy release adds rules and inferences, and CI must not turn red on its own.
LINT_TOOLS = ("ruff==0.17.6", "mypy==2.4.1")
TESTS_PYTHON = Path(".nox") / "tests" / "bin" / "python"


@nox.session
def lint(session: nox.Session) -> None:
    """``ruff check .`` (pycodestyle, pyflakes, isort, bugbear, pyupgrade) and ``mypy attnbench`` (configured in
    pyproject.toml). mypy reads the dependencies' types (torch, numpy, matplotlib) from the tests session's environment
    when it exists, so CI installs torch once; otherwise attnbench and its dependencies are installed here."""
    python = sys.executable
    if session.venv_backend != "none":
        session.install(*LINT_TOOLS)
        if TESTS_PYTHON.exists():
            python = str(TESTS_PYTHON.absolute())  # not resolve(): the venv's link, not the base interpreter
        else:
            session.install("-c", ".ci/constraints.txt", "-e", ".")
            python = str(Path(session.bin) / "python")
    session.run("ruff", "check", ".", *session.posargs)
    session.run("mypy", "--python-executable", python)


@nox.session(default=False)
def bench(session: nox.Session) -> None:
    """Measure this machine: its default suites (CUDA: suites/gpu.toml; CPU: suites/cpu.toml then the quick accuracy
    suite) as a new run in results/<machine>/<run-id>/, their plots, a comparison with the committed reference, and
    report.html (printed last). ``nox -s bench -- suites/smoke.toml --set batch=2`` runs the given suite instead;
    ``nox -s bench -- --dry-run`` lists what would run and for how long."""
    _install(session, "test")
    session.run("python", "-m", "attnbench", "bench", *session.posargs)


@nox.session(default=False)
def docs(session: nox.Session) -> None:
    """Rewrite the generated blocks of README.md and docs/*.md from the committed results (``tools/docs.py``, which
    needs the checkout). ``nox -s docs -- --check`` changes nothing and fails when a block is out of date."""
    if session.venv_backend != "none":
        session.install("-e", ".")
    session.run("python", "tools/docs.py", *session.posargs)
