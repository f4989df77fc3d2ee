"""Cost mode ``train_step``: one optimiser step of the accuracy backbone, measured like a layer."""

from __future__ import annotations

import json

import pytest
from native_kernel import native_available

from attnbench.spec.suite import load_suite
from attnbench.spec.validate import SuiteError
from attnbench.training.step_cost import DEPTH, measure_train_step


def test_a_train_step_is_timed_and_updates_the_model(monkeypatch):
    import torch

    from attnbench.training import models

    built = []
    original = models.GridTransformer.__init__

    def spy(self, *args, **kwargs):
        original(self, *args, **kwargs)
        built.append(self)

    monkeypatch.setattr(models.GridTransformer, "__init__", spy)
    row = measure_train_step("mano", {}, batch=2, height=8, width=8, dim=16, heads=2, dtype="float32", device="cpu",
                             threads=1, min_run_time=0.01, min_blocks=3, max_run_time=1.0, warmup=1,
                             calls_per_block=1)
    assert row["time_n"] >= 3 and row["time_ms_median"] > 0 and row["peak_mib"] > 0
    impl = json.loads(row["impl"])
    assert impl["depth"] == DEPTH and impl["optimiser"] == "AdamW"
    assert impl["window_path"] == ("native" if native_available() else "packed")  # without a C++ compiler: packed
    (model,) = built
    assert len(model.blocks) == DEPTH and row["params"] == sum(p.numel() for p in model.parameters())
    torch.manual_seed(0)  # the same initial weights measure_train_step drew ...
    fresh = models.GridTransformer("mano", {}, in_channels=1, out_channels=10, dim=16, depth=DEPTH, heads=2,
                                   patch=1, head="classify", token_grid=(8, 8))
    moved = [not torch.equal(a, b) for a, b in zip(model.parameters(), fresh.parameters())]
    assert all(moved)  # ... which the optimiser steps have changed, every parameter


def test_a_train_step_suite_expands_and_refuses_compile(tmp_path):
    head = ('name = "t"\ndevice = "cpu"\nbatch = 2\ndim = 16\nheads = 2\nthreads = 1\nmodes = ["train_step"]\n'
            'grids = [[8, 8]]\nattentions = ["full", "mano"]\n')
    path = tmp_path / "t.toml"
    path.write_text(head)
    suite = load_suite(path)
    assert {(c.label, c.mode) for c in suite.cases} == {("full", "train_step"), ("mano", "train_step")}
    path.write_text(head + "compile = [false, true]\n")
    with pytest.raises(SuiteError, match="compile: train_step is measured eager only"):
        load_suite(path)
