"""The tests' own environment (tests/conftest.py): a private data cache, CPU for device "auto" even where a GPU is
usable, registry snapshots that always restore, and run ids without sleeping."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest


def test_the_data_cache_is_private(private_data_cache: Path) -> None:
    from attnbench.data import cache_dir
    from attnbench.measure.roofline import cache_path

    home = Path.home() / ".cache" / "attnbench"
    assert Path(os.environ["ATTNBENCH_DATA"]) == private_data_cache != home
    assert cache_dir() == private_data_cache
    assert cache_path("m", "cpu", 1).parent == private_data_cache  # no user's roofline reaches a test's run


def test_device_auto_is_cpu_even_where_a_gpu_is_usable(monkeypatch: pytest.MonkeyPatch) -> None:
    import torch

    from attnbench.spec.suite import SUITES_DIR, load_suite

    monkeypatch.setattr(torch.cuda, "is_available", lambda: True)  # a GPU machine, as far as attnbench can tell
    assert load_suite(SUITES_DIR / "smoke.toml").device == "cpu"
    seen = subprocess.run([sys.executable, "-c", "import os; print(repr(os.environ['CUDA_VISIBLE_DEVICES']))"],
                          capture_output=True, text=True, check=True, timeout=60).stdout
    assert seen.strip() == "''"  # the commands a test starts see no GPU


def test_a_registry_snapshot_restores_every_table_after_an_error() -> None:
    from torch import nn

    from attnbench import registry

    from conftest import registry_snapshot

    before = [dict(t) for t in (registry._REGISTRY, registry._CONFIGS, registry._SOURCE, registry._UNAVAILABLE)]
    with pytest.raises(RuntimeError), registry_snapshot() as reg:
        reg.register_attention("snapshot_probe")(type("Probe", (nn.Module,), {}))
        reg.register_config("snapshot_probe_cfg", "linear")
        reg._UNAVAILABLE["snapshot_probe_missing"] = "why"
        raise RuntimeError("the test failed half-way")
    after = [dict(t) for t in (registry._REGISTRY, registry._CONFIGS, registry._SOURCE, registry._UNAVAILABLE)]
    assert after == before


def test_run_clock_gives_a_new_later_id_per_run(run_clock: None) -> None:
    from attnbench.store.layout import new_run_id

    ids = [new_run_id("abc") for _ in range(3)]
    assert ids == sorted(ids) and len(set(ids)) == 3  # three runs within the same second, three ids


@pytest.mark.gpu
def test_a_test_marked_gpu_sees_the_real_device() -> None:
    """Skips on a machine without a usable GPU."""
    from attnbench.measure.provenance import resolve_device

    assert resolve_device("auto") == "cuda" and os.environ.get("CUDA_VISIBLE_DEVICES") != ""
