"""The training case (``kind = "accuracy"``): one model trained at ``train_res`` and evaluated at every grid of
``eval_res`` (the others are zero-shot resolution transfer), one results row per evaluation grid, in the one row
schema. The suite format that expands into these cases: :mod:`attnbench.spec.training_suite`.

The tuning protocol (issue 24): a case of a later seed of a tuned task holds its learning-rate grid
(``tune_from``) and waits, in the run, until that grid's cases at the first seed have finished; then it trains at
the rate whose first-seed model scored best on the validation split, never on the test set
(:meth:`TrainCase.resolve`).
"""

from __future__ import annotations

import dataclasses
import json
import math
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any, ClassVar

from attnbench.spec.case import Case
from attnbench.spec.settings import TrainingSettings
from attnbench.store.status import Status

__all__ = ["TrainCase"]


def _float(text: Any) -> float:
    try:
        return float(text)
    except (TypeError, ValueError):
        return math.nan


@dataclass(frozen=True)
class TrainCase(Case):
    """Train one model with one attention and seed, then evaluate it at every grid of ``settings.eval_res``."""

    settings: TrainingSettings = field(default_factory=TrainingSettings)
    task: str = ""
    seed: int | None = None
    # Pending: the learning rate is the one of this grid whose model at ``tune_seed`` scored best on validation
    # (empty: ``settings.lr`` is the learning rate).
    tune_from: tuple[float, ...] = ()
    tune_seed: int | None = None

    kind: ClassVar[str] = "accuracy"
    CONFIG_SETTINGS: ClassVar[tuple[str, ...]] = (
        "dataset", "problem", "eval_res", "n_train", "n_test", "fine", "eval_batch", "variant", "model", "model_name",
        "model_kwargs", "depth", "mlp_ratio", "dropout", "lr", "weight_decay", "epochs", "patch", "stem", "timeout",
        "memory_limit_gib", "imports")

    def config(self) -> dict[str, Any]:
        """As :meth:`Case.config`; ``curve_every`` joins only when set, so cases without a test curve keep the
        identity they had before curves existed (their seeds still group with older runs' seeds)."""
        config = super().config()
        for name in ("curve_every", "n_val", "lr_grid"):  # likewise: only when set
            if getattr(self.settings, name):
                config[name] = getattr(self.settings, name)
        return config

    @property
    def key(self) -> str:
        if self.tune_from:  # no learning rate yet: the key names the grid and the seed that chooses from it
            grid = ",".join(f"{lr:g}" for lr in self.tune_from)
            return f"{self.task}|seed{self.seed}|lr chosen at seed{self.tune_seed} from {grid}|{super().key}"
        return f"{self.task}|seed{self.seed}|{super().key}"

    def at_lr(self, lr: float) -> TrainCase:
        """This case at learning rate ``lr`` (no longer pending)."""
        return dataclasses.replace(self, settings=dataclasses.replace(self.settings, lr=lr), tune_from=(),
                                   tune_seed=None)

    def resolve(self, rows: Sequence[dict[str, Any]]) -> TrainCase | str | None:
        """A pending case with its learning rate chosen from ``rows`` (the run's rows so far): the grid value whose
        case at the tuning seed has the best validation metric. ``None`` while a grid case has no row yet; a
        string (the reason) when none of them trained. A case that is not pending is returned as it is."""
        if not self.tune_from:
            return self
        by_key = {r["case_key"]: r for r in rows}
        scores = {}
        for lr in self.tune_from:
            tuner = dataclasses.replace(self.at_lr(lr), seed=self.tune_seed)
            row = by_key.get(f"{tuner.key}|eval{self.height}")  # the row at the training grid
            if row is None:
                return None
            value = _float(row.get("val_value"))
            if row.get("status") == Status.OK and math.isfinite(value):
                scores[lr] = value if row.get("metric") == "rel_l2" else -value  # lower is better
        if not scores:
            return (f"no learning rate of {list(self.tune_from)} trained at seed {self.tune_seed}, so none was "
                    "chosen")
        return self.at_lr(min(scores, key=lambda lr: (scores[lr], lr)))  # a tie goes to the smaller rate

    @property
    def row_keys(self) -> list[str]:
        """One row per evaluation grid."""
        return [f"{self.key}|eval{r}" for r in self.settings.eval_res]

    @property
    def frontier(self) -> bool:
        return False

    @property
    def selectors(self) -> tuple[str, ...]:
        """The task, the label, and ``task/label``: one mechanism on one task."""
        return (self.task, self.label, f"{self.task}/{self.label}")

    @property
    def description(self) -> str:
        lr = (f"lr chosen at seed {self.tune_seed}" if self.tune_from else f"lr {self.settings.lr:g}"
              if self.settings.lr_grid else "")
        return (f"{self.suite}: {self.task} {self.label} {self.mode} {self.height}x{self.width}"
                + (f" seed {self.seed} {lr}" if lr else ""))

    def identity(self) -> dict[str, Any]:
        return {**super().identity(), "task": self.task, "seed": self.seed}

    @property
    def classes(self) -> int:
        return 10 if self.settings.problem == "classification" else 1

    def build_model(self, classes: int, extra: dict[str, Any] | None = None) -> Any:
        """The task's model with this case's attention (a ``torch.nn.Module``); ``extra``: attention keyword
        arguments on top of the case's."""
        from attnbench.training.models import MODELS

        s = self.settings
        if s.model == "operator":
            kwargs = {k: v for k, v in s.model_kwargs.items() if k != "attention"}
            return MODELS["operator"](s.model_kwargs["attention"], in_channels=1, out_channels=1,
                                      **{**kwargs, **(extra or {})})
        tokens = self.height // s.patch
        return MODELS["backbone"](self.attention, {**self.kwargs, **(extra or {})}, in_channels=1,
                                  out_channels=classes, dim=s.dim, depth=s.depth, heads=s.heads,
                                  mlp_ratio=s.mlp_ratio, patch=s.patch, stem=s.stem,
                                  head="dense" if s.problem == "regression" else "classify", dropout=s.dropout,
                                  token_grid=(tokens, tokens))

    def build_counting_model(self, classes: int) -> Any:
        """The model :meth:`build_model` makes, for counting FLOPs: built with its mechanism's
        ``flop_counter_kwargs``, under which a fast path that computes its operations in a form the counter does not
        see (``mano``'s native kernel) runs them as matmuls / SDPA; the same parameters. Built without touching the
        global random state."""
        import torch

        from attnbench.registry import flop_counter_kwargs

        s = self.settings
        extra = flop_counter_kwargs(s.model_kwargs["attention"] if s.model == "operator" else self.attention)
        with torch.random.fork_rng(devices=[]):
            return self.build_model(classes, extra)

    def count_step_flops(self, data: Any, norm: Any) -> int | None:
        """FLOPs of one training step on the first batch of ``data`` (a ``TaskData``; ``norm`` its normalisers or
        None), counted on :meth:`build_counting_model`'s model on this case's device and dtype (see
        :func:`attnbench.training.loop.step_flops`); None where the counter cannot trace it."""
        import torch

        from attnbench.training.loop import step_flops

        model = self.build_counting_model(data.classes if data.problem == "classification" else 1)
        return step_flops(model.to(device=self.device, dtype=getattr(torch, self.dtype)), data, self, norm)

    @classmethod
    def prepare(cls, cases: Sequence[Case]) -> None:
        """Generate or fetch every dataset the cases read, once, before the (timed) case processes start."""
        from attnbench.training.tasks import prepare_data

        seen: set[tuple[Any, ...]] = set()
        for case in cases:
            assert isinstance(case, TrainCase)  # a training suite holds only training cases
            prepare_data(case.settings, case.height, seen)

    def precheck(self) -> list[str]:
        """The dataset is missing, or an attention layer cannot train at the token grid."""
        import torch

        from attnbench.training.loop import model_reasons
        from attnbench.training.tasks import dataset_reasons

        reasons = dataset_reasons(self.settings)
        if reasons:
            return reasons
        torch.manual_seed(0)
        return model_reasons(self.build_model(self.classes), self.height // self.settings.patch, self.device,
                             self.dtype, backward=True)

    def run(self, progress: Callable[[str], None]) -> dict[str, Any]:
        """Train at ``train_res``, then evaluate at every ``eval_res`` (zero-shot where it differs)."""
        import torch

        from attnbench.measure.memory import read_peak, start_peak
        from attnbench.measure.provenance import load_average
        from attnbench.training.loop import evaluate, model_reasons, train_model, window_ratio
        from attnbench.training.tasks import Normaliser, load_task

        s = self.settings
        data = load_task(s, self.height, seed=self.seed or 0)
        torch.manual_seed(self.seed or 0)
        model = self.build_model(data.classes if data.problem == "classification" else 1)
        model = model.to(device=self.device, dtype=getattr(torch, self.dtype))
        params = sum(p.numel() for p in model.parameters())
        norm = (Normaliser(data.train[0]), Normaliser(data.train[1])) if data.problem == "regression" else None
        base = start_peak(self.device)
        load_start = load_average()
        train_s, final_loss, curve = train_model(model, data, self, progress, norm)
        load_end = load_average()  # the load while training: other work on the machine inflates train_s
        peak = read_peak(self.device, base)
        validation = {}
        if data.val is not None:
            progress("evaluating on the validation split")
            validation = {"n_val": data.val[0].shape[0],
                          "val_value": evaluate(model, data, self.height, self, norm, split="val")["value"]}
        impl = {"dataset": s.dataset, "model": s.model_name, "depth": s.depth, "stem": s.stem,
                **({"classes": data.classes} if data.problem == "classification" else {}),
                "batch": s.batch, "lr": s.lr, **({"lr_grid": list(s.lr_grid)} if s.lr_grid else {}),
                **({"model_kwargs": s.model_kwargs} if s.model_kwargs else {})}
        common = {"impl": json.dumps(impl, sort_keys=True), "params": params, "n_train": data.train[0].shape[0],
                  "epochs": s.epochs, "train_s": train_s, "final_loss": final_loss,
                  "curve": json.dumps(curve, separators=(",", ":")), "load_start": load_start,
                  "load_end": load_end, **validation,
                  "peak_mib": peak.peak_bytes / 2**20 if peak else None, "mem_kind": peak.kind if peak else "",
                  "train_res": self.height, "patch": s.patch, "status": Status.OK}
        rows = []
        for res in s.eval_res:
            side = res // s.patch
            row = {**common, "eval_res": res, "token_height": side, "token_width": side,
                   "mode": "trained" if res == self.height else "zero_shot", "n_test": data.test[res][0].shape[0],
                   "window_ratio": window_ratio(model, side)}
            reasons = model_reasons(model, side, self.device, self.dtype)
            if reasons:
                row.update(status=Status.UNSUPPORTED, reason="; ".join(reasons))
            else:
                progress(f"evaluating at {res}x{res}")
                row.update(evaluate(model, data, res, self, norm))
            rows.append(row)
        # counted last, on a model of its own: nothing it allocates or draws can touch training or its peak memory
        flops = self.count_step_flops(data, norm)
        return {"status": Status.OK, "rows": [{**row, "step_flops": flops} for row in rows]}

    def rows(self, outcome: dict[str, Any]) -> list[dict[str, Any]]:
        """One row per evaluation grid; a failed case gives every evaluation row its status."""
        outcome = dict(outcome)
        per_grid = outcome.pop("rows", None)
        if per_grid is None:
            per_grid = [{"eval_res": r, "train_res": self.height} for r in self.settings.eval_res]
        return [{**self.identity(), **outcome, **r, "case_key": key} for key, r in zip(self.row_keys, per_grid)]
