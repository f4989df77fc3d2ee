"""Accuracy suites (``kind = "accuracy"``): tasks × attentions × seeds, one :class:`TrainCase` each.

A training case trains one model at ``train_res`` and evaluates it at every grid of ``eval_res`` (the others
are zero-shot resolution transfer); it writes one results row per evaluation grid, in the one row schema.
A task's ``model`` is ``backbone`` (the shared isotropic transformer, one run per attention label) or
``operator`` / ``mano_paper`` (the MANO authors' Darcy layout: ``model_kwargs`` name its ``attention`` and
size; the run is labelled with the model name).

Example::

    name = "accuracy-quick"
    kind = "accuracy"
    seeds = [0]
    dim = 64
    depth = 4

    [[tasks]]
    name = "neuralop16"
    dataset = "neuralop"          # neuralop | darcy | fashion | longrange
    train_res = 16
    eval_res = [16, 32]
    n_train = 1000
    epochs = 10

    [[attentions]]
    name = "mano"

The tuning protocol (issue 24): a task with ``n_val`` validation samples and an ``lr_grid`` trains every attention
at each learning rate of the grid at its first seed; every other seed trains at the learning rate whose first-seed
model scored best on the validation split (never on the test set). Those later cases wait, in the run, until the
grid's cases have finished (:meth:`TrainCase.resolve`). A task may set its own ``seeds``, and
``more_seeds = { attentions = [...], seeds = [...] }`` adds seeds for some of its attentions (the core
mechanisms get five seeds where the rest get three).
"""

from __future__ import annotations

import dataclasses
import json
import math
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any, ClassVar

from attnbench.spec.case import Case
from attnbench.spec.checker import Checker, keys_of, read
from attnbench.spec.settings import (
    COMMON_KEYS,
    DATASETS,
    MODEL_ALIASES,
    Recipe,
    RunSettings,
    TaskOptions,
    TrainingSettings,
)
from attnbench.spec.validate import (
    AttentionSpec,
    Suite,
    attention_specs,
    common_config,
    resolve_device_for,
    resolve_threads,
)
from attnbench.store.status import Status

__all__ = ["DATASETS", "MODEL_ALIASES", "TrainCase", "load_training_suite"]

# The suite's own keys besides the shared ones and its recipe: the seeds every run repeats with, and the tasks.
SUITE_KEYS = COMMON_KEYS | {"seeds", "tasks"} | keys_of(Recipe)
# A task's own keys besides its options and its overrides of the suite's recipe: its name, the grid it trains at
# and the attention labels it trains (default: all of the suite's).
TASK_KEYS = {"name", "train_res", "attentions", "seeds", "more_seeds"} | keys_of(Recipe, TaskOptions)


def load_training_suite(raw: dict[str, Any], c: Checker) -> Suite:
    """Validate an accuracy suite and expand it into :class:`TrainCase` s (task × seed × attention)."""
    c.unknown_keys("", raw, SUITE_KEYS)
    cfg = common_config(c, raw)
    run = read(RunSettings, c, raw)  # once: importing the suite's plugins registers the attentions named below
    seeds = _seeds(c, "seeds", raw.get("seeds", [0]))
    recipe = read(Recipe, c, raw)
    specs = attention_specs(c, raw, cfg.dim, cfg.heads, (16, 16), widths=True)
    device = resolve_device_for(c, cfg.device)
    threads = resolve_threads(cfg.threads)
    cases: list[TrainCase] = []
    names: set[str] = set()
    for i, task in enumerate(c.list_("tasks", raw.get("tasks"))):
        name, train_res, settings, runs = _task(c, i, task, recipe, run, specs, names)
        task_seeds = _seeds(c, f"tasks[{i}].seeds", task["seeds"]) if "seeds" in task else seeds
        extra = _more_seeds(c, f"tasks[{i}].more_seeds", task.get("more_seeds"), [r[0] for r in runs], task_seeds)
        grid = settings.lr_grid
        for seed in sorted({*task_seeds, *(s for ss in extra.values() for s in ss)}):
            for label, attention, kwargs, width in runs:
                if seed not in task_seeds and seed not in extra.get(label, ()):
                    continue
                # batch, dim and heads are the task's recipe; an entry's own width replaces dim
                own = dataclasses.replace(settings, dim=width) if width else settings
                base = TrainCase(cfg.name, label, attention, kwargs, "train", train_res, train_res, own.batch,
                                 own.dim, own.heads, cfg.dtype, device, threads, False, cfg.tf32, own, task=name,
                                 seed=seed)
                if not grid:
                    cases.append(base)
                elif seed == task_seeds[0]:  # the tuning seed: one case per learning rate of the grid
                    cases.extend(base.at_lr(lr) for lr in grid)
                else:  # trains at the learning rate the tuning seed chooses on validation (resolved in the run)
                    cases.append(dataclasses.replace(base, tune_from=grid, tune_seed=task_seeds[0]))
    return Suite(c.path, cfg.name, "accuracy", cfg.description, cfg.expected_duration, device, specs, tuple(cases))


def _seeds(c: Checker, where: str, value: Any) -> tuple[int, ...]:
    seeds = tuple(c.int_(f"{where}[{i}]", s, 0) for i, s in enumerate(c.list_(where, value)))
    if len(set(seeds)) != len(seeds):
        raise c.fail(where, f"duplicate seed in {list(seeds)!r}")
    return seeds


def _more_seeds(c: Checker, where: str, value: Any, labels: list[str],
                seeds: tuple[int, ...]) -> dict[str, tuple[int, ...]]:
    """``more_seeds = { attentions = [labels], seeds = [...] }``: label → the seeds it adds to the task's."""
    if value is None:
        return {}
    if not isinstance(value, dict):
        raise c.fail(where, f"expected a table {{ attentions = [...], seeds = [...] }}, got {value!r}")
    c.unknown_keys(where, value, {"attentions", "seeds"})
    for key in ("attentions", "seeds"):
        if key not in value:
            raise c.fail(f"{where}.{key}", "missing")
    more = _seeds(c, f"{where}.seeds", value["seeds"])
    if set(more) & set(seeds):
        raise c.fail(f"{where}.seeds", f"seeds {sorted(set(more) & set(seeds))} are already the task's seeds")
    out = {}
    for j, label in enumerate(c.list_(f"{where}.attentions", value["attentions"])):
        if label not in labels:
            raise c.fail(f"{where}.attentions[{j}]",
                         f"{label!r} is not one of the task's attentions: {', '.join(labels)}")
        out[label] = more
    return out


def _task(c: Checker, i: int, task: Any, recipe: dict[str, Any], run: dict[str, Any], specs: tuple[AttentionSpec, ...],
          names: set[str]) -> tuple[str, int, TrainingSettings, list[tuple[str, str, dict[str, Any], int | None]]]:
    """One ``[[tasks]]`` table: its name (added to ``names``, the tasks' so far), training grid, the settings its
    cases carry, and its runs (label, attention, kwargs, the entry's own width or None)."""
    where = f"tasks[{i}]"
    if not isinstance(task, dict):
        raise c.fail(where, f"expected a table, got {task!r}")
    c.unknown_keys(where, task, TASK_KEYS)
    for key in ("name", "dataset", "train_res"):
        if key not in task:
            raise c.fail(f"{where}.{key}", "missing")
    name = c.str_(f"{where}.name", task["name"])
    if name in names:
        raise c.fail(f"{where}.name", f"duplicate task name {name!r}")
    names.add(name)
    dataset = c.choice(f"{where}.dataset", task["dataset"], tuple(DATASETS))
    problem, allowed_res = DATASETS[dataset]
    train_res = c.int_(f"{where}.train_res", task["train_res"], 1)
    if allowed_res and train_res not in allowed_res:
        raise c.fail(f"{where}.train_res", f"{dataset} trains at {', '.join(map(str, allowed_res))}, got {train_res}")
    eval_res = [c.int_(f"{where}.eval_res[{j}]", r, 1)
                for j, r in enumerate(c.list_(f"{where}.eval_res", task.get("eval_res", [train_res])))]
    if train_res not in eval_res:
        eval_res.insert(0, train_res)
    # The task's overrides keep their TOML values as written (see checker.read): the config id hashes them.
    opts = read(Recipe, c, task, f"{where}.", defaults=recipe, coerce=False)
    opts["lr_grid"] = tuple(sorted(float(v) for v in opts["lr_grid"]))  # checked above; as numbers, in order
    for r in eval_res:
        if r % opts["patch"]:
            raise c.fail(f"{where}.eval_res", f"grid {r} is not a multiple of patch {opts['patch']}")
    options = read(TaskOptions, c, task, f"{where}.")
    model, model_kwargs = options.pop("model"), options["model_kwargs"]
    if MODEL_ALIASES[model] == "operator":  # the authors' Darcy layout: attention and size from model_kwargs
        if problem != "regression":
            raise c.fail(f"{where}.model", f"{model} is the Darcy operator layout; use it with neuralop or darcy")
        if "attentions" in task:
            raise c.fail(f"{where}.attentions", f"not used with model = \"{model}\" (name model_kwargs.attention)")
        if not isinstance(model_kwargs.get("attention"), str):
            raise c.fail(f"{where}.model_kwargs.attention", "missing: the registry name of the model's attention")
        runs: list[tuple[str, str, dict[str, Any], int | None]] = [(model, model_kwargs["attention"], {}, None)]
    else:
        labels = [s.label for s in specs]
        runs = []
        for j, label in enumerate(c.list_(f"{where}.attentions", task.get("attentions", labels))):
            spec = next((s for s in specs if s.label == label), None)
            if spec is None:
                raise c.fail(f"{where}.attentions[{j}]", f"unknown label {label!r}; defined: {', '.join(labels)}")
            runs.append((spec.label, spec.name, spec.kwargs, spec.dim))
    if opts["lr_grid"] and not options["n_val"]:
        raise c.fail(f"{where}.lr_grid", "needs n_val > 0: the learning rate is chosen on the validation split")
    settings = TrainingSettings(**run, **opts, **options, dataset=dataset, eval_res=tuple(eval_res), problem=problem,
                                model=MODEL_ALIASES[model], model_name=model)
    return name, train_res, settings, runs


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
        """The model :meth:`build_model` makes, for counting FLOPs: where the mechanism's fast path computes its
        operations in a form the FLOP counter does not see (``mano``'s native kernel), built with the mechanism's
        ``flop_counter_kwargs``, under which the same operations run as matmuls / SDPA. The same parameters;
        built without touching the global random state, so the trained model's initialisation and data order stay
        as they were."""
        import torch

        from attnbench.training.models import attention_layers

        with torch.random.fork_rng(devices=[]):
            model = self.build_model(classes)
            layers = attention_layers(model)
            extra = dict(getattr(type(layers[0]), "flop_counter_kwargs", {})) if layers else {}
            return self.build_model(classes, extra) if extra else model

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
        from attnbench.training.loop import evaluate, model_reasons, step_flops, train_model, window_ratio
        from attnbench.training.tasks import Normaliser, load_task

        s = self.settings
        data = load_task(s, self.height, seed=self.seed or 0)
        torch.manual_seed(self.seed or 0)
        model = self.build_model(data.classes if data.problem == "classification" else 1)
        model = model.to(device=self.device, dtype=getattr(torch, self.dtype))
        params = sum(p.numel() for p in model.parameters())
        norm = (Normaliser(data.train[0]), Normaliser(data.train[1])) if data.problem == "regression" else None
        counting = self.build_counting_model(data.classes if data.problem == "classification" else 1)
        flops = step_flops(counting.to(device=self.device, dtype=getattr(torch, self.dtype)), data, self, norm)
        del counting
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
                  "load_end": load_end, "step_flops": flops, **validation,
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
        return {"status": Status.OK, "rows": rows}

    def rows(self, outcome: dict[str, Any]) -> list[dict[str, Any]]:
        """One row per evaluation grid; a failed case gives every evaluation row its status."""
        outcome = dict(outcome)
        per_grid = outcome.pop("rows", None)
        if per_grid is None:
            per_grid = [{"eval_res": r, "train_res": self.height} for r in self.settings.eval_res]
        return [{**self.identity(), **outcome, **r, "case_key": key} for key, r in zip(self.row_keys, per_grid)]
