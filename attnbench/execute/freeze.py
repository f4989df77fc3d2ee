"""Imported last by the fork server (``set_forkserver_preload``): moves everything the preloads created into the
garbage collector's permanent generation.

Why: every case measures its peak memory after a ``gc.collect()`` (so garbage from building the layer is not
charged to the step). In a process forked from a server that has imported torch and timm, a full collection walks
all of their hundreds of thousands of objects: ~0.15 s per case on a 2-core VM, a third of a small case's wall
time, and it touches (so copies) every page holding them. Frozen objects are never collected again and never
walked; what the case itself creates is collected as before. Imported anywhere else it does nothing.
"""

from __future__ import annotations

import gc

from attnbench.execute.guard import is_runners_fork_server

__all__ = ["freeze_preloaded"]


def freeze_preloaded() -> bool:
    """Collect once, then freeze what is left, when this process is the runner's fork server; returns whether it
    did."""
    if not is_runners_fork_server():
        return False
    gc.collect()
    gc.freeze()
    return True


freeze_preloaded()
