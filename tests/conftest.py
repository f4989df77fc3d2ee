"""Shared fixtures: a fixed thread count and a registry snapshot for tests that register things."""

from __future__ import annotations

import pytest
import torch

from attnbench import registry

# Small, fixed intra-op parallelism: the CI machine has 2 cores and tests must not depend on its load.
torch.set_num_threads(1)


@pytest.fixture
def clean_registry():
    """Restore the registry (names, sources, unavailable list, plugin flag) after the test."""
    registry.list_attentions()  # load built-ins and installed plugins first, so the snapshot holds them
    snapshot = (dict(registry._REGISTRY), dict(registry._SOURCE), dict(registry._UNAVAILABLE), dict(registry._CONFIGS),
                registry._plugins_loaded)
    yield registry
    registry._REGISTRY.clear(); registry._REGISTRY.update(snapshot[0])
    registry._SOURCE.clear(); registry._SOURCE.update(snapshot[1])
    registry._UNAVAILABLE.clear(); registry._UNAVAILABLE.update(snapshot[2])
    registry._CONFIGS.clear(); registry._CONFIGS.update(snapshot[3])
    registry._plugins_loaded = snapshot[4]


def run_csvs(root, suite: str) -> list:
    """Results files of ``suite`` under a results root (``<root>/<machine>/<run-id>/<suite>.csv``), oldest first."""
    from pathlib import Path

    return sorted(Path(root).glob(f"*/*/{suite}.csv"), key=lambda p: p.parent.name)


def run_csv(root, suite: str):
    """The one results file of ``suite`` under ``root`` (fails when there are several or none)."""
    found = run_csvs(root, suite)
    assert len(found) == 1, found
    return found[0]
