"""Accuracy suites (``kind = "accuracy"``): tasks × attentions × seeds, one
:class:`~attnbench.spec.training.TrainCase` each.

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
from typing import Any

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
from attnbench.spec.training import TrainCase
from attnbench.spec.validate import (
    AttentionSpec,
    Suite,
    attention_specs,
    common_config,
    resolve_device_for,
    resolve_threads,
)

__all__ = ["load_training_suite"]

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
