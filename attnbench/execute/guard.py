"""Imported first by the fork server (``set_forkserver_preload``): makes the server end with the runner.

The runner records its PID in ``ATTNBENCH_RUNNER_PID`` before the server starts. In the server (whose parent is the
runner) this sets ``PR_SET_PDEATHSIG``, so a runner killed by any signal takes the server down with it; imported
anywhere else it does nothing.
"""

from __future__ import annotations

import os
import signal

__all__ = ["die_with_parent", "die_with_runner"]


def die_with_parent(sig: int) -> bool:
    """Ask Linux to send ``sig`` to this process when its parent dies (``PR_SET_PDEATHSIG``); False elsewhere."""
    try:
        import ctypes

        return ctypes.CDLL(None, use_errno=True).prctl(1, sig) == 0  # PR_SET_PDEATHSIG = 1
    except (OSError, AttributeError):
        return False


def die_with_runner() -> bool:
    """Set the parent-death signal when this process is the runner's fork server; returns whether it did."""
    runner = os.environ.get("ATTNBENCH_RUNNER_PID", "")
    if not runner.isdigit() or int(runner) == os.getpid() or os.getppid() != int(runner):
        return False
    return die_with_parent(signal.SIGTERM)


die_with_runner()
