"""The generated blocks of README.md and docs/*.md, by name: each a function of the page it is written into (and
the block's arguments, as written after its name) that returns markdown computed from the committed results."""

from __future__ import annotations

from collections.abc import Callable

from docs_blocks import accuracy, cost, registry, runs, timing
from docs_blocks.sources import Page, Sources

__all__ = ["BLOCKS", "Page", "Sources"]

BLOCKS: dict[str, Callable[..., str]] = {**cost.BLOCKS, **runs.BLOCKS, **accuracy.BLOCKS, **registry.BLOCKS,
                                      **timing.BLOCKS}
