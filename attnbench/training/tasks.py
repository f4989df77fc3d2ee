"""Training tasks: load a dataset's training and test sets, and the pointwise normaliser of regression fields.

A task is described by plain settings (``dataset``, ``n_train``, ``n_test``, ``eval_res``, ... as attributes, see
:class:`TaskSettings`), as validated by the accuracy suite; nothing here knows about suites or cases.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any, Protocol

import torch
import torch.nn.functional as F

__all__ = ["Normaliser", "TaskData", "TaskSettings", "dataset_reasons", "load_task", "prepare_data",
           "resample_nodes"]


class TaskSettings(Protocol):
    """What loading a task reads of its settings (an accuracy suite's validated settings have these attributes)."""

    @property
    def dataset(self) -> str: ...
    @property
    def n_train(self) -> int: ...
    @property
    def n_test(self) -> int: ...
    @property
    def eval_res(self) -> Sequence[int]: ...
    @property
    def fine(self) -> int: ...
    @property
    def variant(self) -> str: ...
    @property
    def n_val(self) -> int: ...


@dataclass
class TaskData:
    """``train``: (x [n, C, H, W], y); ``test``: grid → (x, y); ``val``: (x, y) at the training grid, or None;
    regression targets are ``[n, 1, H, W]``."""

    problem: str
    train: tuple[torch.Tensor, torch.Tensor]
    test: dict[int, tuple[torch.Tensor, torch.Tensor]]
    classes: int = 1
    val: tuple[torch.Tensor, torch.Tensor] | None = None


def load_task(settings: TaskSettings, train_res: int, seed: int = 0) -> TaskData:
    """Load (or generate) a task's training set at ``train_res``, its test sets at every ``eval_res`` and, with
    ``n_val`` > 0, a validation split at ``train_res``.

    Where the training set is a draw (the Fashion-MNIST subset, the long-range scenes), ``seed`` draws it, so
    seeds vary data as well as initialisation; seed 0 gives the draw earlier versions always used. Test sets never
    depend on the seed. The validation split comes from the training distribution and is disjoint from both:
    the next ``n_val`` samples of the training split (Darcy, Navier–Stokes, the neuralop training file), the
    next ``n_val`` per-class picks of the seed's Fashion-MNIST draw, or scenes of their own seed (long range).
    """
    dataset, n_train, n_test, n_val = settings.dataset, settings.n_train, settings.n_test, settings.n_val
    evals = settings.eval_res
    if dataset == "neuralop":
        from attnbench.data import neuralop

        x, y = neuralop.load("train", train_res)
        if n_train + n_val > x.shape[0]:
            raise ValueError(f"neuralop: n_train + n_val = {n_train + n_val} exceeds the {x.shape[0]} training "
                             "samples of the file")
        tests = {}
        for r in evals:
            tx, ty = neuralop.load("test", r)
            tests[r] = (tx[:n_test, None], ty[:n_test, None])
        return TaskData("regression", (x[:n_train, None], y[:n_train, None]), tests,
                        val=_tail(x, y, n_train, n_val))
    if dataset in ("darcy", "navier_stokes"):
        from attnbench.data import darcy, navier_stokes

        def solved(grids: list[int], n: int, split: str) -> dict[int, tuple[torch.Tensor, torch.Tensor]]:
            if dataset == "darcy":
                return darcy.generate(grids, n, split, fine=settings.fine, progress=False)
            return navier_stokes.generate(grids, n, split, progress=False)

        x, y = solved([train_res], n_train + n_val, "train")[train_res]
        test = solved(sorted(set(evals)), n_test, "test")
        return TaskData("regression", (x[:n_train, None], y[:n_train, None]),
                        {r: (test[r][0][:, None], test[r][1][:, None]) for r in evals},
                        val=_tail(x, y, n_train, n_val))
    if dataset == "fashion":
        from attnbench.data import fashion

        train = fashion.load("train", train_res, n=n_train, seed=seed)
        val = fashion.load("train", train_res, n=n_val, seed=seed, after=n_train) if n_val else None
        return TaskData("classification", train,
                        {r: fashion.load("test", r, n=n_test, seed=0) for r in evals}, classes=10, val=val)
    if dataset == "longrange":
        from attnbench.data import longrange

        variant = settings.variant
        x, y = longrange.make(n_train, train_res, seed=1 + 1000 * seed, variant=variant)  # test scenes: seed 2
        mean, std = x.mean(), x.std()  # scalar normalisation; the same numbers at every grid
        tests = {}
        for r in evals:
            tx, ty = longrange.make(n_test, r, seed=2, variant=variant)  # the same scenes at every grid
            tests[r] = ((tx - mean) / std, ty)
        val = None
        if n_val:  # seed 3: never a training seed (1 + 1000·seed) nor the test scenes' 2
            vx, vy = longrange.make(n_val, train_res, seed=3, variant=variant)
            val = ((vx - mean) / std, vy)
        return TaskData("classification", ((x - mean) / std, y), tests, classes=2, val=val)
    raise ValueError(f"unknown dataset {dataset!r}")


def _tail(x: torch.Tensor, y: torch.Tensor, n_train: int, n_val: int) -> tuple[torch.Tensor, torch.Tensor] | None:
    """Samples ``n_train .. n_train + n_val − 1`` as ``[n_val, 1, H, W]`` fields (None when ``n_val`` is 0)."""
    if not n_val:
        return None
    return x[n_train:n_train + n_val, None], y[n_train:n_train + n_val, None]


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




def prepare_data(settings: TaskSettings, train_res: int, seen: set[tuple[Any, ...]]) -> None:
    """Generate or fetch what one training run will read (progress bars on), skipping what ``seen`` already holds."""
    from attnbench.data import DatasetUnavailable

    if settings.dataset in ("darcy", "navier_stokes"):  # solved here: generate each split at its grids once
        from attnbench.data import darcy, navier_stokes

        for split, n, grids in (("train", settings.n_train + settings.n_val, (train_res,)),
                                ("test", settings.n_test, tuple(settings.eval_res))):
            key = (settings.dataset, split, n, grids, settings.fine)
            if key not in seen:
                seen.add(key)
                if settings.dataset == "darcy":
                    darcy.generate(list(grids), n, split, fine=settings.fine)
                else:
                    navier_stokes.generate(list(grids), n, split)
    elif settings.dataset == "neuralop" and ("neuralop",) not in seen:
        seen.add(("neuralop",))
        try:
            from attnbench.data import neuralop

            neuralop.fetch()
        except DatasetUnavailable:
            pass  # the precheck turns this into unsupported rows with the reason


def dataset_reasons(settings: TaskSettings) -> list[str]:
    """Why a task's dataset cannot be had here (empty: it can), with the command that installs it."""
    from attnbench.data import DatasetUnavailable

    try:
        if settings.dataset == "neuralop":
            from attnbench.data import neuralop

            neuralop.fetch()
        elif settings.dataset == "fashion":
            from attnbench.data import fashion

            fashion.find_files()
    except DatasetUnavailable as exc:
        return [str(exc)]
    return []
