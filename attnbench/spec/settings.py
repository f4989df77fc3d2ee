"""The settings a suite's TOML declares, one frozen dataclass per kind, each key declared once.

A field is a TOML key: its name, type and default are the declaration, and :func:`~.checker.setting` attaches the
check its value must pass. The loaders derive the allowed keys from these fields (:func:`~.checker.keys_of`) and
validate a table with :func:`~.checker.read`; cases and the code they call read attributes (``settings.lr``).

* :class:`SuiteConfig` — what every suite says about itself and its layers (name, device, dtype, dim, ...).
* :class:`RunSettings` — how any case's process runs (timeout, memory cap, plugin imports); the base of the
  per-kind settings a case carries.
* :class:`CostSweep` and :class:`CostSettings` — a cost suite's axes, and its timing budget.
* :class:`Recipe`, :class:`TaskOptions` and :class:`TrainingSettings` — an accuracy suite's model and optimiser
  (suite defaults a task may override), a task's data and evaluation, and what a training case carries.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Any

from attnbench.spec.checker import Checker, boolean, integer, keys_of, number, one_of, setting, text

__all__ = ["COMMON_KEYS", "DATASETS", "DEVICES", "DTYPES", "MODEL_ALIASES", "MODES", "CostSettings", "CostSweep",
           "LayerSize", "Recipe", "RunSettings", "SuiteConfig", "TaskOptions", "TrainingSettings"]

DTYPES = ("float32", "bfloat16", "float16")
DEVICES = ("auto", "cpu", "cuda")
# fwd / fwd_bwd: one attention layer; train_step: one optimiser step of the accuracy backbone with it
# (attnbench.training.step_cost).
MODES = ("fwd", "fwd_bwd", "train_step")
# dataset → (problem, resolutions it exists at for training)
DATASETS: dict[str, tuple[str, tuple[int, ...] | None]] = {
    "neuralop": ("regression", (16,)),
    "darcy": ("regression", None),
    "fashion": ("classification", (32, 64, 128)),
    "longrange": ("classification", None),
    "navier_stokes": ("regression", (8, 16, 32, 64, 128)),  # strides of the 128² solve
}
# Suite model names: "mano_paper" is the operator layout under the name the committed results carry.
MODEL_ALIASES = {"backbone": "backbone", "operator": "operator", "mano_paper": "operator"}


# ------------------------------------------------------------------- checks that need more than one type test
def _suite_name(c: Checker, where: str, value: Any) -> str:
    name = c.str_(where, value)
    if not re.fullmatch(r"[A-Za-z0-9_.-]+", name):
        raise c.fail(where, f"expected letters, digits, '.', '_' or '-', got {name!r}")
    return name


def _threads(c: Checker, where: str, value: Any) -> int | str:
    """An integer >= 1, or ``"all"`` (the CPU count, resolved where the cases are built)."""
    if value != "all":
        c.int_(where, value, 1)
    return value


def _imports(c: Checker, where: str, value: Any) -> tuple[str, ...]:
    """Module names, imported now: importing registers plugin attentions the ``[[attentions]]`` then name."""
    import importlib

    modules = tuple(c.str_(f"{where}[{i}]", m) for i, m in enumerate(c.list_(where, value, False)))
    for m in modules:
        try:
            importlib.import_module(m)
        except Exception as exc:  # noqa: BLE001
            raise c.fail(where, f"cannot import {m!r}: {type(exc).__name__}: {exc}") from None
    return modules


def _modes(c: Checker, where: str, value: Any) -> tuple[str, ...]:
    modes = tuple(c.choice(f"{where}[{i}]", m, MODES) for i, m in enumerate(c.list_(where, value)))
    if len(set(modes)) != len(modes):
        raise c.fail(where, f"duplicate mode in {list(modes)!r}")
    return modes


def _grids(c: Checker, where: str, value: Any) -> tuple[tuple[int, int], ...]:
    """Required: ``None`` is a suite without the key."""
    if value is None:
        raise c.fail(where, "missing: a cost suite sweeps grids, e.g. grids = [[32, 32], [64, 64]]")
    return c.grids(where, value)


def _grid_list(c: Checker, where: str, value: Any) -> tuple[tuple[int, int], ...]:
    return c.grids(where, value)


def _compile_axis(c: Checker, where: str, value: Any) -> tuple[bool, ...]:
    """``true``/``false`` (one series) or an array of them (one series each)."""
    values = [value] if isinstance(value, bool) else c.list_(where, value)
    return tuple(c.bool_(f"{where}[{i}]", v) for i, v in enumerate(values))


def _lr_grid(c: Checker, where: str, value: Any) -> tuple[float, ...]:
    """Learning rates to choose from on the validation split: distinct positive numbers, at least two."""
    value = list(value) if isinstance(value, tuple) else value  # a suite default, checked once already
    grid = tuple(c.float_(f"{where}[{i}]", v, True) for i, v in enumerate(c.list_(where, value, False)))
    if len(set(grid)) != len(grid):
        raise c.fail(where, f"duplicate learning rate in {list(grid)!r}")
    if len(grid) == 1:
        raise c.fail(where, f"one learning rate {grid[0]:g} is no grid; give two or more, or set lr instead")
    return tuple(sorted(grid))


def _model_kwargs(c: Checker, where: str, value: Any) -> dict[str, Any]:
    if not isinstance(value, dict):
        raise c.fail(where, f"expected a table, got {value!r}")
    return dict(value)


# ------------------------------------------------------------------------------------------- declarations
@dataclass(frozen=True)
class LayerSize:
    """The attention layer's channels and heads: a suite's, and an accuracy task's override of them."""

    dim: int = setting(64, integer(1))
    heads: int = setting(4, integer(1))


@dataclass(frozen=True)
class SuiteConfig(LayerSize):
    """What every suite says about itself and its layers. ``name`` defaults to the file's stem; ``threads`` is an
    integer or ``"all"``."""

    name: str = setting("", _suite_name)
    threads: int | str = setting(1, _threads)
    description: str = setting("", text())
    expected_duration: str = setting("", text())
    device: str = setting("auto", one_of(*DEVICES))
    dtype: str = setting("float32", one_of(*DTYPES))
    tf32: bool = setting(False, boolean())


@dataclass(frozen=True)
class RunSettings:
    """How a case's fresh process runs, whatever the case measures: the timeout before it is killed, the
    address-space cap on CPU (GiB) and the plugin modules it imports."""

    timeout: float = setting(300.0, number())
    memory_limit_gib: float | None = setting(None, number())
    imports: tuple[str, ...] = setting((), _imports)


@dataclass(frozen=True)
class CostSweep:
    """A cost suite's axes: grids × modes × compile (``compile_grids``: the compiled series may sweep fewer
    grids, since compiling takes seconds to minutes per case on a small CPU), at one batch size, and how many
    replicate processes measure each case (``replicates``, in rounds shuffled by ``order_seed``)."""

    grids: tuple[tuple[int, int], ...] = setting(check=_grids)
    batch: int = setting(1, integer(1))
    modes: tuple[str, ...] = setting(("fwd",), _modes)
    compile: tuple[bool, ...] = setting((False,), _compile_axis)
    compile_grids: tuple[tuple[int, int], ...] | None = setting(None, _grid_list)
    # Replicates: every case is measured in this many processes, one per round; each round runs every case once,
    # in an order shuffled by (order_seed, round). The process is the unit of repetition (asv's "processes").
    replicates: int = setting(1, integer(1))
    order_seed: int = setting(0, integer(0))


@dataclass(frozen=True)
class CostSettings(RunSettings):
    """The timing budget of a cost case (see :func:`attnbench.measure.timing.measure`), whether its failure skips
    the larger grids of its series (``frontier``), and the seconds a compiled case may spend compiling on top of
    ``timeout`` (inductor's C++ build is slow on 2 cores)."""

    min_run_time: float = setting(0.5, number())
    # min_repeats: the name before timing statistics were counted in blocks (still read)
    min_blocks: int = setting(20, integer(2), alias="min_repeats")
    max_run_time: float = setting(10.0, number())
    warmup: int = setting(1, integer(0))
    frontier: bool = setting(True, boolean())
    compile_timeout: float = setting(300.0, number())
    # Calls per timing block, fixed for every grid (0: torch's autorange chooses, 1000 down to 1 as calls slow).
    calls_per_block: int = setting(0, integer(0))


@dataclass(frozen=True)
class Recipe(LayerSize):
    """The model and optimiser of an accuracy suite: the suite's values are defaults a task may override."""

    depth: int = setting(4, integer(1))
    mlp_ratio: float = setting(2.0, number())
    dropout: float = setting(0.0, number(positive=False))
    batch: int = setting(16, integer(1))
    lr: float = setting(1e-3, number())
    # The tuning protocol (issue 24): every mechanism trains at each of these learning rates at the first seed,
    # and the other seeds train at the one with the best validation metric (empty: every seed trains at ``lr``).
    lr_grid: tuple[float, ...] = setting((), _lr_grid)
    weight_decay: float = setting(1e-4, number(positive=False))
    epochs: int = setting(10, integer(1))
    patch: int = setting(1, integer(1))
    stem: str = setting("patch", one_of("patch", "conv"))


@dataclass(frozen=True)
class TaskOptions:
    """A task's data, model layout and evaluation (keys of a ``[[tasks]]`` table only).

    ``dataset`` and ``eval_res`` are validated by the loader (``eval_res`` needs ``train_res``, and always
    includes it). ``model`` is the layout (``backbone`` or ``operator``); the suite may name it by an alias
    (``mano_paper``), kept as :attr:`TrainingSettings.model_name`."""

    dataset: str = setting("", None)
    eval_res: tuple[int, ...] = setting((), None)
    n_train: int = setting(1000, integer(1))
    n_test: int = setting(200, integer(1))
    # Validation samples, drawn from the training distribution and disjoint from the training and test sets:
    # the learning rate of a tuned task is chosen on them (0: no validation split).
    n_val: int = setting(0, integer(0))
    fine: int = setting(257, integer(3))
    eval_batch: int = setting(16, integer(1))
    curve_every: int = setting(0, integer(0))
    variant: str = setting("standard", one_of("standard", "easy"))
    model: str = setting("backbone", one_of(*MODEL_ALIASES))
    model_kwargs: dict[str, Any] = setting(check=_model_kwargs, factory=dict)


@dataclass(frozen=True)
class TrainingSettings(TaskOptions, Recipe, RunSettings):
    """What a training case carries: its run settings, recipe and task options, plus what validation derived —
    the dataset's ``problem`` and the model as the suite names it (``model_name``)."""

    problem: str = "regression"
    model_name: str = "backbone"


# Keys every suite kind accepts besides its own: the suite's description of itself, its run settings, its kind
# and its attentions — [[attentions]] tables and patterns, narrowed by families and exclude (spec.validate)
# (each kind adds its own keys).
COMMON_KEYS = keys_of(SuiteConfig, RunSettings) | {"kind", "attentions", "families", "exclude"}
