"""nox sessions: ``nox -s tests`` (default), ``nox -s bench`` and ``nox -s docs``; extra arguments after ``--`` pass
through.

Virtual environments are reused between runs (``reuse_venv = "yes"``). ``nox --no-venv -s tests`` runs in the
current environment instead (nothing is installed then).
"""

from __future__ import annotations

import nox

nox.options.sessions = ["tests"]
nox.options.reuse_venv = "yes"


def _install(session: nox.Session, extras: str) -> None:
    if session.venv_backend == "none":  # --no-venv: use the environment nox runs in, as it is
        return
    # torch is a range in pyproject.toml: an already-installed CUDA build that satisfies it is kept.
    session.install("-e", f".[{extras}]")


@nox.session
def tests(session: nox.Session) -> None:
    """The test-suite (CPU, a few minutes). ``nox -s tests -- -m microbench`` runs the micro-benchmarks."""
    _install(session, "test,ray")  # the Ray executor's tests run on a local Ray instance
    session.run("pytest", *session.posargs)


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
