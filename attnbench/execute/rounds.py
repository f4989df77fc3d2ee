"""Replicated suites in rounds: every case is measured in ``suite.replicates`` separate processes, one per round,
round 1 of every case before round 2 of any (asv's interleaved rounds; Chromium Pinpoint's interleaving), so a phase
of the machine hits every mechanism alike instead of the ones that happened to run during it.

Order within a round is shuffled with a seeded generator (``order_seed`` and the round number), and recorded in the
rows (``round_position``). Round 1 keeps the grids ascending and shuffles only within a grid: the frontier (skip
the larger grids of a series after an ``oom``/``timeout``) needs the smaller grid first, and a case that fails in
round 1 is not re-tried in later rounds. From round 2 on, the whole round is shuffled.
"""

from __future__ import annotations

import dataclasses
import itertools
import random
from typing import Any

from attnbench.spec.case import Case
from attnbench.spec.validate import Suite
from attnbench.store.status import Status

__all__ = ["earlier_failures", "plan_rounds", "round_seed"]


def round_seed(order_seed: int, round_: int) -> str:
    """The seed of one round's shuffle (a string: ``random.Random`` hashes it the same on every platform)."""
    return f"attnbench:{order_seed}:{round_}"


def plan_rounds(suite: Suite) -> list[list[Case]]:
    """The cases of each round, in run order. A suite measured once is one round in the suite's own order."""
    if suite.replicates <= 1:
        return [list(suite.cases)]
    rounds = []
    for r in range(1, suite.replicates + 1):
        rng = random.Random(round_seed(suite.order_seed, r))
        cases = [dataclasses.replace(c, replicate=r) for c in suite.cases]
        if r == 1:  # grids ascending (the frontier needs the small grid first), shuffled within each grid
            order: list[Case] = []
            for _, group in itertools.groupby(cases, key=lambda c: c.tokens):
                block = list(group)
                rng.shuffle(block)
                order += block
        else:
            order = cases[:]
            rng.shuffle(order)
        rounds.append(order)
    return rounds


def earlier_failures(rows: list[dict[str, Any]]) -> dict[str, str]:
    """Replicated cases that failed in a round already recorded: case key (without the round) → what happened.
    Such a case is not re-tried blindly in later rounds; those rounds record it as skipped with this reason."""
    out: dict[str, str] = {}
    for r in rows:
        status, rep = r.get("status", ""), str(r.get("replicate") or "")
        if rep and status not in (Status.OK, Status.SKIPPED):
            out.setdefault(str(r["case_key"]).rsplit("|r", 1)[0], f"{status} in round {rep}")
    return out
