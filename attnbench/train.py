"""Accuracy cases: load a task, train one model, evaluate it at every requested grid (zero-shot included).

Runs inside the case's fresh process (:func:`attnbench.worker.run_case`). Regression (Darcy) trains on the mean
relative L2 error of the decoded field, with pointwise Gaussian normalisation of input and output fitted on the
training set (Li et al.'s ``UnitGaussianNormalizer``); for zero-shot evaluation on another grid the normaliser
fields are interpolated to that grid's nodes. Classification trains on cross-entropy. AdamW with a one-cycle
schedule, fixed epochs, seeded initialisation and data order.
"""

from __future__ import annotations

import json
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import torch
import torch.nn.functional as F
from torch import nn

from attnbench.metrics import rel_l2, rel_mse, top1
from attnbench.suite import Case

__all__ = ["accuracy_precheck", "build_model", "load_task", "prepare_data", "resample_nodes", "run_accuracy_case",
           "train_model"]


# ------------------------------------------------------------------------------------------------ data
@dataclass
class TaskData:
    """``train``: (x [n, C, H, W], y); ``test``: grid → (x, y); regression targets are ``[n, 1, H, W]``."""

    problem: str
    train: tuple[torch.Tensor, torch.Tensor]
    test: dict[int, tuple[torch.Tensor, torch.Tensor]]
    classes: int = 1


def load_task(settings: dict[str, Any], train_res: int) -> TaskData:
    """Load (or generate) a task's training set at ``train_res`` and its test sets at every ``eval_res``."""
    dataset, n_train, n_test = settings["dataset"], settings["n_train"], settings["n_test"]
    evals = settings["eval_res"]
    if dataset == "neuralop":
        from attnbench.data import neuralop

        x, y = neuralop.load("train", train_res)
        tests = {}
        for r in evals:
            tx, ty = neuralop.load("test", r)
            tests[r] = (tx[:n_test, None], ty[:n_test, None])
        return TaskData("regression", (x[:n_train, None], y[:n_train, None]), tests)
    if dataset == "darcy":
        from attnbench.data import darcy

        fine = settings["fine"]
        train = darcy.generate([train_res], n_train, "train", fine=fine, progress=False)[train_res]
        test = darcy.generate(sorted(set(evals)), n_test, "test", fine=fine, progress=False)
        return TaskData("regression", (train[0][:, None], train[1][:, None]),
                        {r: (test[r][0][:, None], test[r][1][:, None]) for r in evals})
    if dataset == "fashion":
        from attnbench.data import fashion

        train = fashion.load("train", train_res, n=n_train, seed=0)
        return TaskData("classification", train,
                        {r: fashion.load("test", r, n=n_test, seed=0) for r in evals}, classes=10)
    if dataset == "longrange":
        from attnbench.data import longrange

        variant = settings.get("variant", "standard")
        x, y = longrange.make(n_train, train_res, seed=1, variant=variant)
        mean, std = x.mean(), x.std()  # scalar normalisation; the same numbers at every grid
        tests = {}
        for r in evals:
            tx, ty = longrange.make(n_test, r, seed=2, variant=variant)  # the same scenes at every grid
            tests[r] = ((tx - mean) / std, ty)
        return TaskData("classification", ((x - mean) / std, y), tests, classes=2)
    raise ValueError(f"unknown dataset {dataset!r}")


def resample_nodes(field: torch.Tensor, size: int) -> torch.Tensor:
    """Linear interpolation of a ``[..., n, n]`` node field (nodes at i/n) onto the nodes j/size of another grid.

    On a finer grid the old nodes are reproduced exactly; beyond the last node the value is held (border).
    """
    n = field.shape[-1]
    if n == size:
        return field
    pos = torch.arange(size, dtype=torch.float32) * (n / size)  # target nodes in source index units
    coord = pos / (n - 1) * 2 - 1  # align_corners=True: -1 and 1 are the first and last source nodes
    gy, gx = torch.meshgrid(coord, coord, indexing="ij")
    grid = torch.stack([gx, gy], dim=-1)[None]
    flat = field.reshape(-1, 1, n, n).float()
    out = F.grid_sample(flat, grid.expand(flat.shape[0], -1, -1, -1), mode="bilinear", padding_mode="border",
                        align_corners=True)
    return out.reshape(*field.shape[:-2], size, size).to(field.dtype)


class Normaliser:
    """Pointwise mean and std over the training samples (``[C, H, W]``), resampled for other grids."""

    def __init__(self, x: torch.Tensor, eps: float = 1e-5) -> None:
        self.mean, self.std, self.eps = x.mean(0), x.std(0), eps

    def _at(self, size: int) -> tuple[torch.Tensor, torch.Tensor]:
        return resample_nodes(self.mean, size), resample_nodes(self.std, size)

    def encode(self, x: torch.Tensor) -> torch.Tensor:
        mean, std = self._at(x.shape[-1])
        return (x - mean.to(x.device)) / (std.to(x.device) + self.eps)

    def decode(self, x: torch.Tensor) -> torch.Tensor:
        mean, std = self._at(x.shape[-1])
        return x * (std.to(x.device) + self.eps) + mean.to(x.device)


# ----------------------------------------------------------------------------------------------- model
def build_model(case: Case, classes: int) -> nn.Module:
    s = case.settings
    if s["model"] == "mano_paper":
        from attnbench.models import MANODarcyOperator

        return MANODarcyOperator(in_channels=1, out_channels=1, **s["model_kwargs"])
    from attnbench.models import GridTransformer

    tokens = case.height // s["patch"]
    return GridTransformer(case.attention, case.kwargs, in_channels=1, out_channels=classes, dim=s["dim"],
                           depth=s["depth"], heads=s["heads"], mlp_ratio=s["mlp_ratio"], patch=s["patch"],
                           stem=s["stem"], head="dense" if s["problem"] == "regression" else "classify",
                           dropout=s["dropout"], token_grid=(tokens, tokens))


def _attentions(model: nn.Module) -> list[nn.Module]:
    from attnbench.models import Block

    mods = [m.attn for m in model.modules() if isinstance(m, Block)]
    return mods or list(getattr(model, "attn", []))


def _reasons(model: nn.Module, side: int, case: Case, backward: bool = False) -> list[str]:
    from attnbench.contract import supported

    reasons: list[str] = []
    for attn in _attentions(model):
        for r in supported(attn, side, side, case.device, getattr(torch, case.dtype), backward=backward):
            if r not in reasons:
                reasons.append(r)
    return reasons


def window_ratio(model: nn.Module, side: int) -> float:
    """Side of what one attention window reaches divided by the token grid side (1 = global)."""
    attn = (_attentions(model) or [None])[0]
    if attn is None:
        return 1.0
    if hasattr(attn, "level_shapes"):  # multipole: the coarsest window covers window · rate^(levels-1) tokens
        levels = len(attn.level_shapes(side, side))
        return min(1.0, attn.window * attn.rate ** (levels - 1) / side)
    if hasattr(attn, "image_size") and hasattr(attn, "levels"):
        return min(1.0, attn.window * attn.rate ** (attn.levels - 1) / side)
    for name in ("window", "kernel"):
        if hasattr(attn, name):
            return min(1.0, getattr(attn, name) / side)
    return 1.0


def prepare_data(cases: list[Case]) -> None:
    """Generate or fetch what the training cases will read, once, before the sweep (with progress bars)."""
    from attnbench.data import DatasetUnavailable

    seen: set[tuple[Any, ...]] = set()
    for case in cases:
        s = case.settings
        if s["dataset"] == "darcy":
            for split, n, grids in (("train", s["n_train"], (case.height,)), ("test", s["n_test"], tuple(s["eval_res"]))):
                key = (split, n, grids, s["fine"])
                if key not in seen:
                    seen.add(key)
                    from attnbench.data import darcy

                    darcy.generate(list(grids), n, split, fine=s["fine"])
        elif s["dataset"] == "neuralop" and "neuralop" not in seen:
            seen.add("neuralop")
            try:
                from attnbench.data import neuralop

                neuralop.fetch()
            except DatasetUnavailable:
                pass  # the precheck turns this into unsupported rows with the reason


def accuracy_precheck(case: Case) -> list[str]:
    """Reasons a training case cannot run: the dataset is missing, or the attention cannot train at that grid."""
    from attnbench.data import DatasetUnavailable

    s = case.settings
    try:
        if s["dataset"] == "neuralop":
            from attnbench.data import neuralop

            neuralop.fetch()
        elif s["dataset"] == "fashion":
            from attnbench.data import fashion

            fashion.find_files()
    except DatasetUnavailable as exc:
        return [str(exc)]
    torch.manual_seed(0)
    return _reasons(build_model(case, 10 if s["problem"] == "classification" else 1), case.height // s["patch"],
                    case, backward=True)


# -------------------------------------------------------------------------------------------- training
def _peak_start(device: str) -> int:
    if device == "cuda":
        torch.cuda.synchronize()
        torch.cuda.reset_peak_memory_stats()
        return torch.cuda.memory_allocated()
    from attnbench.memory import _status_kib, cpu_peak_supported

    if not cpu_peak_supported():
        return -1
    open("/proc/self/clear_refs", "w").write("5")
    return _status_kib("VmRSS") * 1024


def _peak_end(device: str, base: int) -> tuple[float | None, str]:
    if device == "cuda":
        torch.cuda.synchronize()
        return (torch.cuda.max_memory_allocated() - base) / 2**20, "cuda_allocated"
    if base < 0:
        return None, ""
    from attnbench.memory import _status_kib

    return max(0, _status_kib("VmHWM") * 1024 - base) / 2**20, "cpu_rss"


def train_model(model: nn.Module, data: TaskData, case: Case, progress: Callable[[str], None],
                norm: tuple[Normaliser, Normaliser] | None) -> tuple[float, float]:
    """Train in place; returns (wall seconds, mean loss of the last epoch)."""
    s = case.settings
    x, y = data.train
    n = x.shape[0]
    steps = max(1, -(-n // s["batch"]))
    opt = torch.optim.AdamW(model.parameters(), lr=s["lr"], weight_decay=s["weight_decay"])
    sched = torch.optim.lr_scheduler.OneCycleLR(opt, max_lr=s["lr"], total_steps=s["epochs"] * steps, pct_start=0.1)
    gen = torch.Generator().manual_seed(case.seed or 0)
    dtype = getattr(torch, case.dtype)
    model.train()
    start, last = time.perf_counter(), float("nan")
    for epoch in range(s["epochs"]):
        order, total = torch.randperm(n, generator=gen), 0.0
        for i in range(steps):
            idx = order[i * s["batch"]:(i + 1) * s["batch"]]
            xb, yb = x[idx].to(case.device), y[idx].to(case.device)
            if norm is not None:
                xb = norm[0].encode(xb)
            out = model(xb.to(dtype)).float()
            if data.problem == "regression":
                loss = rel_l2(norm[1].decode(out), yb).mean()
            else:
                loss = F.cross_entropy(out, yb)
            opt.zero_grad(set_to_none=True)
            loss.backward()
            opt.step()
            sched.step()
            total += loss.item() * len(idx)
        last = total / n
        progress(f"epoch {epoch + 1}/{s['epochs']} loss {last:.4g} ({time.perf_counter() - start:.0f} s)")
    return time.perf_counter() - start, last


@torch.no_grad()
def evaluate(model: nn.Module, data: TaskData, res: int, case: Case,
             norm: tuple[Normaliser, Normaliser] | None) -> dict[str, float]:
    x, y = data.test[res]
    model.eval()
    dtype = getattr(torch, case.dtype)
    l2, mse, acc = [], [], []
    for i in range(0, x.shape[0], case.settings["eval_batch"]):
        xb, yb = x[i:i + case.settings["eval_batch"]].to(case.device), y[i:i + case.settings["eval_batch"]].to(case.device)
        out = model((norm[0].encode(xb) if norm else xb).to(dtype)).float()
        if data.problem == "regression":
            pred = norm[1].decode(out)
            l2.append(rel_l2(pred, yb))
            mse.append(rel_mse(pred, yb))
        else:
            acc.append(top1(out, yb))
    if data.problem == "regression":
        return {"metric": "rel_l2", "value": torch.cat(l2).mean().item(), "rel_l2": torch.cat(l2).mean().item(),
                "rel_mse": torch.cat(mse).mean().item()}
    value = torch.cat(acc).mean().item()
    return {"metric": "top1", "value": value, "top1": value}


def run_accuracy_case(case: Case, progress: Callable[[str], None]) -> dict[str, Any]:
    s = case.settings
    data = load_task(s, case.height)
    torch.manual_seed(case.seed or 0)
    model = build_model(case, data.classes if data.problem == "classification" else 1)
    model = model.to(device=case.device, dtype=getattr(torch, case.dtype))
    params = sum(p.numel() for p in model.parameters())
    norm = (Normaliser(data.train[0]), Normaliser(data.train[1])) if data.problem == "regression" else None
    base = _peak_start(case.device)
    train_s, final_loss = train_model(model, data, case, progress, norm)
    peak_mib, mem_kind = _peak_end(case.device, base)
    impl = {"dataset": s["dataset"], "model": s["model"], "depth": s["depth"], "stem": s["stem"], "batch": s["batch"],
            "lr": s["lr"], **({"model_kwargs": s["model_kwargs"]} if s["model_kwargs"] else {})}
    common = {"impl": json.dumps(impl, sort_keys=True), "params": params, "n_train": data.train[0].shape[0],
              "epochs": s["epochs"], "train_s": train_s,
              "final_loss": final_loss, "peak_mib": peak_mib, "mem_kind": mem_kind, "train_res": case.height,
              "patch": s["patch"], "status": "ok"}
    rows = []
    for res in s["eval_res"]:
        side = res // s["patch"]
        row = {**common, "eval_res": res, "token_height": side, "token_width": side,
               "mode": "trained" if res == case.height else "zero_shot", "n_test": data.test[res][0].shape[0],
               "window_ratio": window_ratio(model, side)}
        reasons = _reasons(model, side, case)
        if reasons:
            row.update(status="unsupported", reason="; ".join(reasons))
        else:
            progress(f"evaluating at {res}x{res}")
            row.update(evaluate(model, data, res, case, norm))
        rows.append(row)
    return {"status": "ok", "rows": rows}
