"""Imported first by the fork server (``set_forkserver_preload``): makes the server end with the runner.

The runner records its PID in ``ATTNBENCH_RUNNER_PID`` before the server starts. In the server (whose parent is the
runner) this sets ``PR_SET_PDEATHSIG``, so a runner killed by any signal takes the server down with it; imported
anywhere else it does nothing.
"""

from __future__ import annotations

import os
import signal

__all__ = ["die_with_parent", "die_with_runner", "is_runners_fork_server"]


def die_with_parent(sig: int) -> bool:
    """Ask Linux to send ``sig`` to this process when its parent dies (``PR_SET_PDEATHSIG``); False elsewhere."""
    try:
        import ctypes

        return ctypes.CDLL(None, use_errno=True).prctl(1, sig) == 0  # PR_SET_PDEATHSIG = 1
    except (OSError, AttributeError):
        return False


def is_runners_fork_server() -> bool:
    """Whether this process is the fork server the runner (``ATTNBENCH_RUNNER_PID``) started: its child, not it."""
    runner = os.environ.get("ATTNBENCH_RUNNER_PID", "")
    return runner.isdigit() and int(runner) != os.getpid() and os.getppid() == int(runner)


def die_with_runner() -> bool:
    """Set the parent-death signal when this process is the runner's fork server; returns whether it did."""
    return is_runners_fork_server() and die_with_parent(signal.SIGTERM)


die_with_runner()
