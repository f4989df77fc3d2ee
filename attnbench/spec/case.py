"""A case: one isolated unit of work of a suite, typed by what it does (:class:`~attnbench.spec.cost.CostCase`,
:class:`~attnbench.spec.training.TrainCase`).

A case knows how to check itself before it runs (:meth:`Case.precheck`, in the parent), run in its fresh process
(:meth:`Case.run`, in the child) and turn an outcome into results rows (:meth:`Case.rows`), so an executor never
asks what kind of case it holds.
"""

from __future__ import annotations

import functools
import hashlib
import json
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any, ClassVar

from attnbench.spec.settings import RunSettings

__all__ = ["Case"]


@dataclass(frozen=True)
class Case:
    """What every case has: an attention at a grid, in a configuration. Subclasses set :attr:`kind`."""

    suite: str
    label: str
    attention: str
    kwargs: dict[str, Any]
    mode: str
    height: int
    width: int
    batch: int
    dim: int
    heads: int
    dtype: str
    device: str
    threads: int
    compile: bool
    tf32: bool
    # How the case's process runs; each kind carries its own subclass (timing budget, training recipe).
    settings: RunSettings = field(default_factory=RunSettings)
    # Which replicate this is (the round it runs in, from 1) when the suite measures each case in several
    # processes; 0: the case is measured once. Not part of the configuration: replicates are the same case.
    replicate: int = 0

    kind: ClassVar[str] = ""

    @property
    def tokens(self) -> int:
        return self.height * self.width

    # Names of the settings that change a measurement and so belong to its configuration (the rest is bookkeeping).
    CONFIG_SETTINGS: ClassVar[tuple[str, ...]] = ()

    def config(self) -> dict[str, Any]:
        """Everything that changes the measurement except the grid (and the code version, which is the run's):
        the mechanism and every option in force, mode, sizes, dtype, device, threads, compile, TF32 and the
        kind's own settings (timing budget, training recipe)."""
        return {
            "kind": self.kind, "attention": self.attention, "kwargs": self.resolved_kwargs(), "mode": self.mode,
            "batch": self.batch, "dim": self.dim, "heads": self.heads, "dtype": self.dtype, "device": self.device,
            "threads": self.threads, "compile": self.compile, "tf32": self.tf32,
            **{name: getattr(self.settings, name) for name in self.CONFIG_SETTINGS},
        }

    @functools.cached_property
    def config_id(self) -> str:
        """Short stable hash of :meth:`config`; analyses group rows by it, compare matches runs on it."""
        text = json.dumps(self.config(), sort_keys=True, default=str, separators=(",", ":"))
        return hashlib.sha256(text.encode()).hexdigest()[:10]

    @property
    def key(self) -> str:
        """Identity used for resume: the same key is never measured twice in one run. Readable prefix + config."""
        return (f"{self.label}|{self.mode}|{self.height}x{self.width}|b{self.batch}|c{self.dim}h{self.heads}|"
                f"{self.dtype}|{self.device}|t{self.threads}|compile={int(self.compile)}|{self.config_id}"
                + (f"|r{self.replicate}" if self.replicate else ""))

    @property
    def case_key(self) -> str:
        """:attr:`key` without the replicate: what all replicates of this case share."""
        return self.key.rsplit("|r", 1)[0] if self.replicate else self.key

    @property
    def row_keys(self) -> list[str]:
        """Keys of the rows this case writes (one by default)."""
        return [self.key]

    @property
    def series(self) -> tuple[str, str, str, bool]:
        """Cases of one series share a frontier: a failure at N skips larger N."""
        return (self.kind, self.label, self.mode, self.compile)

    @property
    def frontier(self) -> bool:
        """Whether an oom/timeout of this case skips the larger grids of its series."""
        return True

    @property
    def selectors(self) -> tuple[str, ...]:
        """Names ``--only`` can select this case by."""
        return (self.label,)

    @property
    def description(self) -> str:
        """One line for progress displays."""
        return (f"{self.suite}: {self.label} {self.mode} {self.height}x{self.width}" + (" compiled" * self.compile)
                + (f" r{self.replicate}" if self.replicate else ""))

    def resolve(self, rows: Sequence[dict[str, Any]]) -> Case | str | None:
        """The case to run, given the run's rows so far: itself (the default), another case it stands for once
        what it depends on is recorded (a training case whose learning rate is chosen on validation), None while
        that is still missing, or the reason it can never run."""
        return self

    @classmethod
    def prepare(cls, cases: Sequence[Case]) -> None:
        """Work done once in the parent before a sweep of these cases (e.g. generating datasets); default none."""

    def precheck(self) -> list[str]:
        """Reasons the case cannot run here (empty: it can); asked in the parent before a process is started."""
        raise NotImplementedError

    def run(self, progress: Callable[[str], None]) -> dict[str, Any]:
        """Run in the case's fresh process; returns the measured columns (or a failure status)."""
        raise NotImplementedError

    def time_limit(self) -> float:
        """Seconds the case's process may run before it is killed and recorded as a timeout."""
        return float(self.settings.timeout)

    def resolved_kwargs(self) -> dict[str, Any]:
        """The constructor options in force: a named configuration's, overridden by the suite's ``kwargs``."""
        from attnbench.registry import resolve_config

        return {**resolve_config(self.attention)[1], **self.kwargs}

    def family(self) -> str:
        """The mechanism's declared family (``GridAttention.family``; ``other`` for a plugin that declares none)."""
        from attnbench.registry import get_attention

        return str(getattr(get_attention(self.attention), "family", "other"))

    def identity(self) -> dict[str, Any]:
        """The identity columns every row of this case carries (``kwargs``: the options in force; the timing
        budget's columns are empty but for a kind that has one)."""
        return {
            "suite": self.suite, "kind": self.kind, "case_key": self.key, "label": self.label,
            "attention": self.attention, "family": self.family(),
            "kwargs": json.dumps(self.resolved_kwargs(), sort_keys=True),
            "mode": self.mode,
            "height": self.height, "width": self.width, "tokens": self.tokens, "batch": self.batch,
            "dim": self.dim, "heads": self.heads, "dtype": self.dtype, "device": self.device,
            "threads": self.threads, "compile": self.compile, "tf32": self.tf32, "config_id": self.config_id,
            "min_run_time": None, "min_blocks": None, "warmup": None, "timeout": self.settings.timeout,
            "replicate": self.replicate or None,
        }

    def rows(self, outcome: dict[str, Any]) -> list[dict[str, Any]]:
        """The results rows of one outcome, aligned with :attr:`row_keys` (one row by default)."""
        return [{**self.identity(), **outcome, "case_key": self.key}]
