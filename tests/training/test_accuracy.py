"""Accuracy pipeline: metrics, normaliser resampling, training reduces the loss for every mechanism, suites."""

from __future__ import annotations

import json
import math

import pytest
import torch

from attnbench import list_attentions
from attnbench.cli import main
from attnbench.registry import build_for_grid, capability_reasons
from attnbench.spec.settings import TrainingSettings
from attnbench.spec.training import TrainCase
from attnbench.store.csvfile import read_results
from attnbench.training.loop import train_model
from attnbench.training.metrics import rel_l2, rel_mse, top1
from attnbench.training.tasks import Normaliser, TaskData, resample_nodes

from conftest import run_csv


def test_metrics_against_hand_computed_values():
    true = torch.tensor([[[3.0, 4.0]], [[1.0, 0.0]]])  # norms 5 and 1
    pred = torch.tensor([[[3.0, 4.0]], [[0.0, 0.0]]])
    assert rel_l2(pred, true).tolist() == pytest.approx([0.0, 1.0])
    pred = torch.tensor([[[0.0, 4.0]], [[1.0, 2.0]]])  # errors 3 and 2
    assert rel_l2(pred, true).tolist() == pytest.approx([3 / 5, 2.0])
    assert rel_mse(pred, true).tolist() == pytest.approx([9 / 25, 4.0])
    logits = torch.tensor([[0.1, 0.9], [2.0, -1.0], [0.0, 1.0]])
    assert top1(logits, torch.tensor([1, 1, 1])).tolist() == [1.0, 0.0, 1.0]


def test_resample_nodes_keeps_shared_nodes_and_is_linear():
    coarse = torch.arange(16.0).reshape(4, 4)
    fine = resample_nodes(coarse, 8)
    assert torch.equal(fine[::2, ::2], coarse)  # the 4-grid nodes are the even nodes of the 8-grid
    assert fine[0, 1].item() == pytest.approx(0.5) and fine[1, 0].item() == pytest.approx(2.0)
    assert torch.equal(resample_nodes(fine, 4), coarse)


def _case(attention: str, kwargs: dict | None = None) -> TrainCase:
    settings = TrainingSettings(dataset="darcy", problem="regression", eval_res=(32,), n_train=64, n_test=8, fine=129,
                                batch=16, lr=3e-3, weight_decay=1e-4, epochs=2, patch=2, stem="patch", depth=2,
                                mlp_ratio=2.0, dropout=0.0, heads=4, dim=32, model="backbone", model_name="backbone",
                                model_kwargs={}, eval_batch=8)
    return TrainCase("t", attention, attention, kwargs or {}, "train", 32, 32, 16, 32, 4, "float32", "cpu", 1,
                     False, False, settings, task="darcy32", seed=0)


def _trains_on_cpu(name: str) -> bool:
    """Asked of the mechanism (its capability flags), never decided by name here."""
    layer = build_for_grid(name, 32, 4, 16, 16)
    return not capability_reasons(layer, 16, 16, "cpu", torch.float32, backward=True)


TRAINABLE = [n for n in list_attentions() if _trains_on_cpu(n)]


@pytest.mark.parametrize("model", ["backbone", "operator"])
def test_the_counting_model_runs_what_the_fast_path_hides_and_leaves_the_random_state_alone(model):
    import dataclasses

    from attnbench.training.models import attention_layers

    case = _case("mano")  # its native / packed window paths compute attention as elementwise products
    if model == "operator":  # the authors' Darcy layout: the attention is named in model_kwargs
        settings = dataclasses.replace(case.settings, model="operator", model_name="mano_paper",
                                       model_kwargs={"attention": "mano", "dim": 16, "depth": 1, "heads": 2,
                                                     "mlp_dim": 16, "dropout": 0.0})
        case = dataclasses.replace(case, settings=settings)
    torch.manual_seed(0)
    state = torch.get_rng_state()
    counting = case.build_counting_model(1)
    assert torch.equal(torch.get_rng_state(), state)
    assert {layer.extra_info()["window_path"] for layer in attention_layers(counting)} == {"sdpa"}
    params = sum(p.numel() for p in case.build_model(1).parameters())
    assert sum(p.numel() for p in counting.parameters()) == params


@pytest.mark.parametrize("name", TRAINABLE)
def test_two_epochs_reduce_the_training_loss(name):
    from attnbench.data import darcy

    a, u = darcy.fixture(64, 32, fine=129)
    data = TaskData("regression", (a[:, None], u[:, None]), {})
    case = _case(name)
    torch.manual_seed(0)
    model = case.build_model(1)
    norm = (Normaliser(data.train[0]), Normaliser(data.train[1]))
    with torch.no_grad():
        before = rel_l2(norm[1].decode(model(norm[0].encode(data.train[0]))), data.train[1]).mean().item()
    _, last, curve = train_model(model, data, case, lambda message: None, norm)
    assert curve["train_loss"][-1] == last and len(curve["train_loss"]) == case.settings.epochs
    assert curve["test_epoch"] == []  # curve_every unset: no test evaluations
    with torch.no_grad():
        model.eval()
        after = rel_l2(norm[1].decode(model(norm[0].encode(data.train[0]))), data.train[1]).mean().item()
    assert after < 0.8 * before, (before, after, last)


SUITE = """
name = "acc"
kind = "accuracy"
device = "cpu"
threads = 1
seeds = [0]
dim = 16
heads = 2
depth = 1
batch = 8
epochs = 1
timeout = 120

[[tasks]]
name = "darcy_tiny"
dataset = "darcy"
train_res = 16
eval_res = [16, 32]
n_train = 16
n_test = 4
fine = 65
curve_every = 1

[[tasks]]
name = "fashion_missing"
dataset = "fashion"
train_res = 32
n_train = 20
n_test = 10
patch = 4
attentions = ["linear"]

[[attentions]]
name = "linear"

[[attentions]]
name = "mano_reference"
"""


def test_accuracy_suite_rows_zero_shot_and_missing_dataset(tmp_path, monkeypatch):
    from attnbench.data import fashion

    monkeypatch.setenv("ATTNBENCH_DATA", str(tmp_path / "data"))
    monkeypatch.setattr(fashion, "SYSTEM_DIR", tmp_path / "nowhere")
    path = tmp_path / "acc.toml"
    path.write_text(SUITE)
    assert main(["run", str(path), "--out", str(tmp_path / "out"), "--quiet"]) == 0
    csv_path = run_csv(tmp_path / "out", "acc")
    rows = read_results(csv_path)
    by = {(r["task"], r["label"], r["eval_res"]): r for r in rows}
    assert len(rows) == 5  # 2 attentions x 2 grids for darcy, 1 row for the missing dataset
    lin16, lin32 = by[("darcy_tiny", "linear", "16")], by[("darcy_tiny", "linear", "32")]
    assert lin16["status"] == "ok" and lin16["mode"] == "trained" and lin16["metric"] == "rel_l2"
    assert lin32["status"] == "ok" and lin32["mode"] == "zero_shot"
    assert 0 < float(lin16["rel_mse"]) and float(lin16["train_s"]) > 0 and int(lin16["params"]) > 0
    assert lin16["mem_kind"] == "cpu_rss" and lin16["n_train"] == "16" and lin16["seed"] == "0"
    # the curve's last test point is the same model on the same test set as the trained row's value
    curve = json.loads(lin16["curve"])
    assert len(curve["train_loss"]) == 1 and curve["test_epoch"] == [1] and curve["test_metric"] == "rel_l2"
    assert curve["test_value"][0] == pytest.approx(float(lin16["value"]), rel=1e-4)
    ref32 = by[("darcy_tiny", "mano_reference", "32")]
    assert ref32["status"] == "unsupported" and "image_size=16" in ref32["reason"]  # levels fixed at build
    missing = by[("fashion_missing", "linear", "32")]
    assert missing["status"] == "unsupported" and "apt-get install -y dataset-fashion-mnist" in missing["reason"]
    # plots and the table come out of the same rows
    assert main(["plot", str(csv_path)]) == 0
    md = (csv_path.parent / "plots" / "acc" / "accuracy.md").read_text()
    assert "darcy_tiny" in md and "zero_shot" in md
    assert (csv_path.parent / "plots" / "acc" / "darcy_tiny_accuracy_vs_resolution.png").stat().st_size > 5000
    assert (csv_path.parent / "plots" / "acc" / "darcy_tiny_loss_curves.png").stat().st_size > 5000


def test_late_change_reads_the_last_quarter_of_the_test_curve():
    from attnbench.report.analysis.accuracy import late_change

    curve = {"test_epoch": [5, 10, 15, 20], "test_value": [1.0, 0.5, 0.42, 0.41]}
    assert late_change(curve) == pytest.approx((0.41 - 0.42) / 0.42)  # epoch 15 is 3/4 of 20
    assert math.isnan(late_change({"test_epoch": [20], "test_value": [0.4]}))  # one point: no change to read


@pytest.mark.parametrize("old,new,fragment", [
    ('dataset = "darcy"', 'dataset = "cifar"', "tasks[0].dataset: expected one of neuralop, darcy, fashion"),
    ("train_res = 32", "train_res = 40", "tasks[1].train_res: fashion trains at 32, 64, 128, got 40"),
    ('attentions = ["linear"]', 'attentions = ["lin"]', "tasks[1].attentions[0]: unknown label 'lin'"),
    ("seeds = [0]", "seeds = [0, 0]", "seeds: duplicate seed"),
    ("n_train = 16", "n_train = 0", "tasks[0].n_train: expected an integer >= 1, got 0"),
    ('name = "darcy_tiny"', 'name = "darcy_tiny"\nepoch = 3', "tasks[0].epoch: unknown key (did you mean 'epochs'?)"),
])
def test_accuracy_suite_validation(old, new, fragment, tmp_path, capsys):
    path = tmp_path / "acc.toml"
    path.write_text(SUITE.replace(old, new, 1))
    assert main(["run", str(path), "--out", str(tmp_path / "out")]) == 2
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1 and err.startswith(f"attnbench: error: {path}: ") and fragment in err, err


def test_paper_model_variant_runs():
    import dataclasses

    case = _case("mano")
    settings = dataclasses.replace(case.settings, model="operator", model_kwargs=dict(
        attention="mano", dim=32, depth=2, heads=2, dim_head=16, mlp_dim=32, rate=4))
    case = dataclasses.replace(case, settings=settings)
    model = case.build_model(1)
    out = model(torch.randn(2, 1, 32, 32))
    assert out.shape == (2, 1, 32, 32)
