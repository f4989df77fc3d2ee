"""The tuning protocol (issue 24): validation splits, the learning-rate grid at the first seed, the other seeds at
the rate chosen on validation — resolved inside one run — and the report reading the chosen rate only."""

from __future__ import annotations

import json

import numpy as np
import pytest

from attnbench.cli import main
from attnbench.store.csvfile import read_results

from conftest import run_csv

SUITE = """
name = "tune"
kind = "accuracy"
device = "cpu"
threads = 1
seeds = [0, 1]
dim = 16
heads = 2
depth = 1
batch = 16
epochs = 1
timeout = 120
lr_grid = [1e-4, 3e-3]

[[tasks]]
name = "lr_tiny"
dataset = "longrange"
variant = "easy"
train_res = 16
eval_res = [16, 32]
n_train = 64
n_val = 32
n_test = 32
patch = 4
more_seeds = { attentions = ["linear"], seeds = [5] }

[[attentions]]
name = "linear"

[[attentions]]
name = "full"

[[attentions]]
name = "linear"
label = "linear_narrow"
dim = 8
"""


@pytest.fixture(scope="module")
def tuned_run(tmp_path_factory):
    """The results CSV of one run of SUITE (shared: the tests below only read it, or copy it)."""
    tmp_path = tmp_path_factory.mktemp("tune")
    path = tmp_path / "tune.toml"
    path.write_text(SUITE)
    assert main(["run", str(path), "--out", str(tmp_path / "out"), "--quiet"]) == 0
    return run_csv(tmp_path / "out", "tune")


def test_a_tuned_run_chooses_the_learning_rate_on_validation_and_trains_the_other_seeds_at_it(tuned_run):
    rows = [r for r in read_results(tuned_run) if r["eval_res"] == "16"]
    lr = {(r["label"], int(r["seed"]), json.loads(r["impl"])["lr"]): r for r in rows}
    # seed 0: both rates of the grid, each with its validation score; seed 1 (and linear's extra seed 5): one rate
    assert sorted(k for k in lr if k[1] == 0) == [("full", 0, 1e-4), ("full", 0, 3e-3), ("linear", 0, 1e-4),
                                                    ("linear", 0, 3e-3), ("linear_narrow", 0, 1e-4),
                                                    ("linear_narrow", 0, 3e-3)]
    assert all(r["status"] == "ok" and r["n_val"] == "32" and r["val_value"] for r in rows)
    # compute per step beside the parameters: the narrow model has fewer of both
    flops = {r["label"]: int(r["step_flops"]) for r in rows}
    params = {r["label"]: int(r["params"]) for r in rows}
    assert 0 < flops["linear_narrow"] < flops["linear"] and params["linear_narrow"] < params["linear"]
    for label in ("full", "linear"):
        scores = {g: float(lr[(label, 0, g)]["val_value"]) for g in (1e-4, 3e-3)}
        best = max(scores, key=lambda g: (scores[g], -g))  # top-1: higher is better, a tie to the smaller rate
        later = [k for k in lr if k[0] == label and k[1] != 0]
        assert later and all(k[2] == best for k in later)
        # a later seed at the chosen rate is the same configuration as the tuning seed's case at that rate
        assert {lr[k]["config_id"] for k in later} == {lr[(label, 0, best)]["config_id"]}
    assert sorted(k[1] for k in lr if k[0] == "linear") == [0, 0, 1, 5]
    assert {r["dim"] for r in rows if r["label"] == "linear_narrow"} == {"8"}


def _recount_tool():
    """``tools/recount_step_flops.py``, imported from its path (it lives in the checkout, not in the package)."""
    import importlib.util
    from pathlib import Path

    tool = Path(__file__).resolve().parents[2] / "tools" / "recount_step_flops.py"
    spec = importlib.util.spec_from_file_location("attnbench_recount_tool", tool)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_recounting_step_flops_rebuilds_each_rows_count_and_changes_nothing_else(tuned_run, tmp_path, capsys):
    import csv
    import shutil

    shutil.copytree(tuned_run.parent, tmp_path / "run")
    path = tmp_path / "run" / tuned_run.name
    text = path.read_text()
    with path.open(newline="") as f:
        rows = list(csv.DictReader(f))
    assert all(int(r["step_flops"]) > 0 for r in rows)  # the run counted every case: a recount must match it

    def write(fields: list[str], changed: dict[str, str]) -> None:
        with path.open("w", newline="") as f:
            writer = csv.DictWriter(f, fieldnames=fields, lineterminator="\n", extrasaction="ignore")
            writer.writeheader()
            writer.writerows({**r, **changed} for r in rows)

    write(list(rows[0]), {"step_flops": "7"})  # what an older counter might have written
    tool = _recount_tool()
    assert tool.main([str(path)]) == 0
    assert path.read_text() == text  # every count rebuilt as the run made it, every other byte kept
    assert "step_flops_recounted" in json.loads(path.with_suffix(".json").read_text())
    # a file from before the column (schema 7) gets it filled in
    write([c for c in rows[0] if c != "step_flops"], {"schema_version": "7"})
    assert tool.main([str(path)]) == 0
    assert path.read_text() == text
    # a row whose model the suite no longer builds (another parameter count) stops the tool, the file untouched
    path.write_text(text.replace(f",{rows[0]['params']},", ",1,", 1))
    before = path.read_text()
    with pytest.raises(SystemExit, match="the suite builds .* parameters, the row has 1"):
        tool.main([str(path)])
    assert path.read_text() == before


@pytest.mark.parametrize("old,new,fragment", [
    ("n_val = 32", "n_val = 0", "tasks[0].lr_grid: needs n_val > 0"),
    ("lr_grid = [1e-4, 3e-3]", "lr_grid = [1e-3]", "lr_grid: one learning rate 0.001 is no grid"),
    ("lr_grid = [1e-4, 3e-3]", "lr_grid = [1e-3, 1e-3]", "lr_grid: duplicate learning rate"),
    ('attentions = ["linear"], seeds = [5]', 'attentions = ["lin"], seeds = [5]',
     "tasks[0].more_seeds.attentions[0]: 'lin' is not one of the task's attentions"),
    ('attentions = ["linear"], seeds = [5]', 'attentions = ["linear"], seeds = [1]',
     "tasks[0].more_seeds.seeds: seeds [1] are already the task's seeds"),
])
def test_protocol_settings_are_validated_in_one_line(old, new, fragment, tmp_path, capsys):
    path = tmp_path / "tune.toml"
    path.write_text(SUITE.replace(old, new, 1))
    assert main(["run", str(path), "--out", str(tmp_path / "out")]) == 2
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1 and fragment in err, err


def test_only_an_accuracy_suite_sets_one_mechanisms_width(tmp_path, capsys):
    path = tmp_path / "cost.toml"
    path.write_text('name = "c"\ngrids = [[8, 8]]\n[[attentions]]\nname = "full"\ndim = 8\n')
    assert main(["run", str(path), "--out", str(tmp_path / "out")]) == 2
    assert "attentions[0].dim: only an accuracy suite sets one mechanism's width" in capsys.readouterr().err
    path.write_text(SUITE.replace("dim = 8\n", "dim = 9\n"))
    assert main(["run", str(path), "--out", str(tmp_path / "out")]) == 2
    assert "attentions[2].dim: 9 is not a multiple of heads = 2" in capsys.readouterr().err


def _suite(tmp_path):
    from attnbench.spec.suite import load_suite

    path = tmp_path / "tune.toml"
    path.write_text(SUITE)
    return load_suite(path)


def test_a_pending_case_waits_for_the_grid_and_says_why_it_cannot_run(tmp_path):
    suite = _suite(tmp_path)
    pending = [c for c in suite.cases if c.tune_from]
    grid = [c for c in suite.cases if not c.tune_from]
    assert len(grid) == 6 and len(pending) == 4 and all(c.tune_seed == 0 for c in pending)
    case = next(c for c in pending if c.label == "full")
    tuners = {c.settings.lr: c for c in grid if c.label == "full"}

    def row(lr: float, status: str = "ok", val: float = 0.5) -> dict[str, str]:
        return {"case_key": f"{tuners[lr].key}|eval16", "status": status, "metric": "top1", "val_value": str(val)}

    assert case.resolve([row(1e-4)]) is None  # 3e-3 not recorded yet: wait
    chosen = case.resolve([row(1e-4, val=0.6), row(3e-3, val=0.7)])
    assert chosen.settings.lr == 3e-3 and not chosen.tune_from and chosen.config_id == tuners[3e-3].config_id
    assert case.resolve([row(1e-4, val=0.7), row(3e-3, val=0.7)]).settings.lr == 1e-4  # a tie: the smaller rate
    failed = case.resolve([row(1e-4, "timeout"), row(3e-3, "error")])
    assert isinstance(failed, str) and "no learning rate" in failed


def test_validation_splits_are_disjoint_from_training_and_test(tmp_path, monkeypatch):
    from attnbench.data import fashion

    labels = np.repeat(np.arange(10), 50)
    train = fashion._balanced_subset(labels, 100, seed=3)
    val = fashion._balanced_subset(labels, 60, seed=3, after=100)
    assert len(set(train) & set(val)) == 0 and len(val) == 60
    assert np.bincount(labels[val]).tolist() == [6] * 10  # still class-balanced
    # a larger training draw of the same seed is a superset, so "after" always skips exactly the training picks
    assert set(train) <= set(fashion._balanced_subset(labels, 160, seed=3))
    assert set(train) | set(val) == set(fashion._balanced_subset(labels, 160, seed=3))


def test_only_selects_one_mechanism_on_one_task(tmp_path, capsys):
    path = tmp_path / "tune.toml"
    path.write_text(SUITE)
    assert main(["run", str(path), "--dry-run", "--only", "lr_tiny/full"]) == 0
    out = capsys.readouterr().out
    assert "lr_tiny full" in out and "linear" not in out
    assert main(["run", str(path), "--dry-run", "--only", "lr_tiny/nope"]) == 2
    err = capsys.readouterr().err
    assert "no such task or label; known: full, linear, linear_narrow, lr_tiny, or TASK/LABEL" in err
