"""Accuracy suites (``kind = "accuracy"``): tasks × attentions × seeds, one training case each.

A training case trains one model at ``train_res`` and evaluates it at every grid of ``eval_res`` (the others
are zero-shot resolution transfer); it writes one results row per evaluation grid, in the cost schema.

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
"""

from __future__ import annotations

from typing import Any

from attnbench.suite import Case, Suite, _Checker, attention_specs, common_config, resolve_threads, resolved_device

__all__ = ["DATASETS", "load_accuracy_suite"]

# dataset → (problem, resolutions it exists at for training)
DATASETS: dict[str, tuple[str, tuple[int, ...] | None]] = {
    "neuralop": ("regression", (16,)),
    "darcy": ("regression", None),
    "fashion": ("classification", (32, 64, 128)),
    "longrange": ("classification", None),
}

SUITE_KEYS = {
    "name", "kind", "description", "expected_duration", "device", "dtype", "threads", "timeout", "tf32",
    "memory_limit_gib", "imports", "seeds", "tasks", "attentions",
    # model and optimiser defaults (a task may override them)
    "dim", "heads", "depth", "mlp_ratio", "dropout", "batch", "lr", "weight_decay", "epochs", "patch", "stem",
}
TASK_KEYS = {
    "name", "dataset", "train_res", "eval_res", "n_train", "n_test", "attentions", "model", "model_kwargs",
    "fine", "dim", "heads", "depth", "mlp_ratio", "dropout", "batch", "lr", "weight_decay", "epochs", "patch",
    "stem", "eval_batch", "variant",
}
MODELS = ("backbone", "mano_paper")


def load_accuracy_suite(raw: dict[str, Any], c: _Checker) -> Suite:
    c.unknown_keys("", raw, SUITE_KEYS)
    cfg = common_config(c, raw)
    seeds = tuple(c.int_(f"seeds[{i}]", s, 0) for i, s in enumerate(c.list_("seeds", raw.get("seeds", [0]))))
    if len(set(seeds)) != len(seeds):
        raise c.fail("seeds", f"duplicate seed in {list(seeds)!r}")
    defaults = {
        "dim": cfg["dim"], "heads": cfg["heads"],
        "depth": c.int_("depth", raw.get("depth", 4), 1),
        "mlp_ratio": c.float_("mlp_ratio", raw.get("mlp_ratio", 2.0)),
        "dropout": c.float_("dropout", raw.get("dropout", 0.0), positive=False),
        "batch": c.int_("batch", raw.get("batch", 16), 1),
        "lr": c.float_("lr", raw.get("lr", 1e-3)),
        "weight_decay": c.float_("weight_decay", raw.get("weight_decay", 1e-4), positive=False),
        "epochs": c.int_("epochs", raw.get("epochs", 10), 1),
        "patch": c.int_("patch", raw.get("patch", 1), 1),
        "stem": c.choice("stem", raw.get("stem", "patch"), ("patch", "conv")),
    }
    specs = attention_specs(c, raw, cfg["dim"], cfg["heads"], (16, 16))
    labels = [s.label for s in specs]
    device = resolved_device(c, cfg["device"])
    threads = resolve_threads(cfg["threads"])
    cases: list[Case] = []
    names: set[str] = set()
    for i, task in enumerate(c.list_("tasks", raw.get("tasks"))):
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
        opts = {k: task.get(k, v) for k, v in defaults.items()}
        for k in ("dim", "heads", "depth", "batch", "epochs", "patch"):
            c.int_(f"{where}.{k}", opts[k], 1)
        for k in ("lr", "mlp_ratio"):
            c.float_(f"{where}.{k}", opts[k])
        c.choice(f"{where}.stem", opts["stem"], ("patch", "conv"))
        for r in eval_res:
            if r % opts["patch"]:
                raise c.fail(f"{where}.eval_res", f"grid {r} is not a multiple of patch {opts['patch']}")
        model = c.choice(f"{where}.model", task.get("model", "backbone"), MODELS)
        if model == "mano_paper" and problem != "regression":
            raise c.fail(f"{where}.model", "mano_paper is the Darcy operator; use it with neuralop or darcy")
        if model == "mano_paper":  # the authors' Darcy operator: always MANO attention, built from model_kwargs
            if "attentions" in task:
                raise c.fail(f"{where}.attentions", "not used with model = \"mano_paper\" (it always uses mano)")
            runs = [("mano_paper", "mano", {})]
        else:
            chosen = c.list_(f"{where}.attentions", task.get("attentions", labels))
            runs = []
            for j, label in enumerate(chosen):
                spec = next((s for s in specs if s.label == label), None)
                if spec is None:
                    raise c.fail(f"{where}.attentions[{j}]", f"unknown label {label!r}; defined: {', '.join(labels)}")
                runs.append((spec.label, spec.name, spec.kwargs))
        model_kwargs = task.get("model_kwargs", {})
        if not isinstance(model_kwargs, dict):
            raise c.fail(f"{where}.model_kwargs", f"expected a table, got {model_kwargs!r}")
        settings = {
            **opts, "dataset": dataset, "problem": problem, "eval_res": eval_res,
            "n_train": c.int_(f"{where}.n_train", task.get("n_train", 1000), 1),
            "n_test": c.int_(f"{where}.n_test", task.get("n_test", 200), 1),
            "fine": c.int_(f"{where}.fine", task.get("fine", 257), 3),
            "eval_batch": c.int_(f"{where}.eval_batch", task.get("eval_batch", 16), 1),
            "variant": c.choice(f"{where}.variant", task.get("variant", "standard"), ("standard", "easy")),
            "model": model, "model_kwargs": dict(model_kwargs), "frontier": False,
            "timeout": cfg["timeout"], "memory_limit_gib": cfg["memory_limit_gib"], "imports": cfg["imports"],
        }
        for seed in seeds:
            for label, attention, kwargs in runs:
                cases.append(Case(cfg["name"], "accuracy", label, attention, kwargs, "train", train_res, train_res,
                                  opts["batch"], opts["dim"], opts["heads"], cfg["dtype"], device, threads, False,
                                  cfg["tf32"], settings, task=name, seed=seed))
    return Suite(c.path, cfg["name"], "accuracy", cfg["description"], cfg["expected_duration"], device, cfg,
                 specs, tuple(cases))
