"""The training loop and evaluation of one model, plus what a harness asks of a trained model's attention layers.

Regression (Darcy) trains on the mean relative L2 error of the decoded field, with pointwise Gaussian normalisation
of input and output fitted on the training set (Li et al.'s ``UnitGaussianNormalizer``; for zero-shot evaluation
on another grid the normaliser fields are interpolated to that grid's nodes). Classification trains on
cross-entropy. AdamW with a one-cycle schedule, fixed epochs, seeded initialisation and data order.

The functions take a :class:`TrainingRun`: anything with the run's ``settings`` (batch, lr, weight_decay, epochs,
eval_batch, curve_every, as attributes), ``seed``, ``device`` and ``dtype`` — a training case satisfies it;
nothing here imports suites.

The loss curve: the mean training loss of every epoch, and with ``curve_every = k > 0`` the test metric at the
training grid after every k-th epoch (and the last). Those evaluations are timed apart and left out of the training
wall time, so a curve does not make a model look slower.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import Any, Protocol

import torch
import torch.nn.functional as F
from torch import nn

from attnbench.measure.flops import count_flops
from attnbench.registry import capability_reasons, receptive_field
from attnbench.training.metrics import rel_l2, rel_mse, top1
from attnbench.training.models import attention_layers
from attnbench.training.tasks import Normaliser, TaskData

__all__ = ["TrainingRun", "evaluate", "model_reasons", "step_flops", "train_model", "window_ratio"]


class LoopSettings(Protocol):
    """What the loop reads of a run's settings (an accuracy suite's validated settings have these attributes)."""

    @property
    def batch(self) -> int: ...
    @property
    def lr(self) -> float: ...
    @property
    def weight_decay(self) -> float: ...
    @property
    def epochs(self) -> int: ...
    @property
    def eval_batch(self) -> int: ...
    @property
    def curve_every(self) -> int: ...


class TrainingRun(Protocol):
    """What the loop reads of a training run."""

    @property
    def settings(self) -> LoopSettings: ...
    @property
    def seed(self) -> int | None: ...
    @property
    def device(self) -> str: ...
    @property
    def dtype(self) -> str: ...


def model_reasons(model: nn.Module, side: int, device: str, dtype: str, backward: bool = False) -> list[str]:
    """Why a model's attention layers cannot run on a ``side × side`` token grid (empty: they can)."""
    reasons: list[str] = []
    for attn in attention_layers(model):
        for r in capability_reasons(attn, side, side, device, getattr(torch, dtype), backward=backward):
            if r not in reasons:
                reasons.append(r)
    return reasons


def window_ratio(model: nn.Module, side: int) -> float:
    """Side of what one attention layer reaches divided by the token grid side (1 = global), asked of the layer."""
    layers = attention_layers(model)
    if not layers:
        return 1.0
    return min(1.0, receptive_field(layers[0], side, side)[0] / side)


def step_flops(model: nn.Module, data: TaskData, run: TrainingRun,
               norm: tuple[Normaliser, Normaliser] | None) -> int | None:
    """FLOPs of one training step's forward and backward on one batch of the training set, counted by
    :func:`attnbench.measure.flops.count_flops` (torch's ``FlopCounterMode``, mended: attention as the math SDPA
    kernel's matmuls, grouped convolutions' weight gradients at their real size; FFTs and elementwise work are not
    counted): the compute per step that sits beside a model's parameter count. The gradients it leaves are
    cleared; None where the counter cannot trace the model."""
    x, y = data.train
    xb, yb = x[:run.settings.batch].to(run.device), y[:run.settings.batch].to(run.device)
    if norm is not None:
        xb = norm[0].encode(xb)
    model.train()

    def step() -> None:
        out = model(xb.to(getattr(torch, run.dtype))).float()
        loss = rel_l2(_decode(norm, out), yb).mean() if data.problem == "regression" else F.cross_entropy(out, yb)
        loss.backward()

    try:
        return count_flops(step)
    except Exception:  # noqa: BLE001 - a count is a fact to record, never a reason to fail the training case
        return None
    finally:
        model.zero_grad(set_to_none=True)


def train_model(model: nn.Module, data: TaskData, run: TrainingRun, progress: Callable[[str], None],
                norm: tuple[Normaliser, Normaliser] | None) -> tuple[float, float, dict[str, Any]]:
    """Train in place; returns (wall seconds without curve evaluations, mean loss of the last epoch, loss curve).

    The curve is ``{"train_loss": [per epoch], "test_epoch": [...], "test_value": [...], "test_metric": str,
    "split": "val" | "test"}`` (the test lists empty unless ``curve_every`` > 0; ``split``: what they evaluate —
    the validation split where the task has one, else the test set)."""
    s = run.settings
    every = int(s.curve_every or 0)
    curve: dict[str, Any] = {"train_loss": [], "test_epoch": [], "test_value": [], "test_metric": "",
                             "split": "val" if data.val is not None else "test"}
    held_out = 0.0
    x, y = data.train
    n = x.shape[0]
    steps = max(1, -(-n // s.batch))
    opt = torch.optim.AdamW(model.parameters(), lr=s.lr, weight_decay=s.weight_decay)
    sched = torch.optim.lr_scheduler.OneCycleLR(opt, max_lr=s.lr, total_steps=s.epochs * steps, pct_start=0.1)
    gen = torch.Generator().manual_seed(run.seed or 0)
    dtype = getattr(torch, run.dtype)
    model.train()
    start, last = time.perf_counter(), float("nan")
    for epoch in range(s.epochs):
        order, total = torch.randperm(n, generator=gen), 0.0
        for i in range(steps):
            idx = order[i * s.batch:(i + 1) * s.batch]
            xb, yb = x[idx].to(run.device), y[idx].to(run.device)
            if norm is not None:
                xb = norm[0].encode(xb)
            out = model(xb.to(dtype)).float()
            if data.problem == "regression":
                loss = rel_l2(_decode(norm, out), yb).mean()
            else:
                loss = F.cross_entropy(out, yb)
            opt.zero_grad(set_to_none=True)
            loss.backward()
            opt.step()
            sched.step()
            total += loss.item() * len(idx)
        last = total / n
        curve["train_loss"].append(last)
        note = ""
        if every and ((epoch + 1) % every == 0 or epoch + 1 == s.epochs):
            t0 = time.perf_counter()
            # On the validation split where the task has one, so that a curve is no look at the test set.
            result = evaluate(model, data, data.train[0].shape[-1], run, norm, split=curve["split"])
            model.train()
            held_out += time.perf_counter() - t0
            curve["test_epoch"].append(epoch + 1)
            curve["test_value"].append(result["value"])
            curve["test_metric"] = result["metric"]
            note = f", {curve['split']} {result['metric']} {result['value']:.4g}"
        progress(f"epoch {epoch + 1}/{s.epochs} loss {last:.4g}{note} "
                 f"({time.perf_counter() - start - held_out:.0f} s)")
    return time.perf_counter() - start - held_out, last, curve


def _decode(norm: tuple[Normaliser, Normaliser] | None, out: torch.Tensor) -> torch.Tensor:
    """The model's output in the target's units: decoded by the output normaliser (None: used as it is, as the
    input is then)."""
    return norm[1].decode(out) if norm is not None else out


@torch.no_grad()
def evaluate(model: nn.Module, data: TaskData, res: int, run: TrainingRun,
             norm: tuple[Normaliser, Normaliser] | None, split: str = "test") -> dict[str, float | str]:
    """Mean metric over the test set at grid ``res`` (``split="val"``: over the validation split, which exists at
    the training grid): rel L2 and rel MSE (regression) or top-1 (classification)."""
    if split == "val":
        if data.val is None or res != data.train[0].shape[-1]:
            raise ValueError(f"no validation split at grid {res}")
        x, y = data.val
    else:
        x, y = data.test[res]
    model.eval()
    dtype = getattr(torch, run.dtype)
    batch = run.settings.eval_batch
    l2, mse, acc = [], [], []
    for i in range(0, x.shape[0], batch):
        xb, yb = x[i:i + batch].to(run.device), y[i:i + batch].to(run.device)
        out = model((norm[0].encode(xb) if norm else xb).to(dtype)).float()
        if data.problem == "regression":
            pred = _decode(norm, out)
            l2.append(rel_l2(pred, yb))
            mse.append(rel_mse(pred, yb))
        else:
            acc.append(top1(out, yb))
    if data.problem == "regression":
        return {"metric": "rel_l2", "value": torch.cat(l2).mean().item(), "rel_l2": torch.cat(l2).mean().item(),
                "rel_mse": torch.cat(mse).mean().item()}
    value = torch.cat(acc).mean().item()
    return {"metric": "top1", "value": value, "top1": value}
