"""Profile one training step of the accuracy backbone with torch.profiler (issue 26, item 2): where the time of a
step goes, operator by operator, for each mechanism named.

Usage (from a checkout, nothing else running): ``python results/investigations/mano-native/profile_step.py
[--grid 8] [--threads 2] [--steps 10] full mano``. Prints, per mechanism, the step's operator count and the
operators with the most self CPU time. The model, batch and optimiser are those of ``suites/train-step.toml``
(:func:`attnbench.training.step_cost.measure_train_step`): 4 pre-norm blocks, dim 64, 4 heads, batch 16, patch 1,
cross-entropy and AdamW. Profiler overhead inflates small operators, so read shares and counts, not absolute times
(the harness's train-step runs give those).
"""

from __future__ import annotations

import argparse

import torch
import torch.nn.functional as F
from torch.profiler import ProfilerActivity, profile

from attnbench.training.models import GridTransformer
from attnbench.training.step_cost import CLASSES, DEPTH


def profile_step(attention: str, grid: int, steps: int, rows: int) -> str:
    torch.manual_seed(0)
    model = GridTransformer(attention, {}, in_channels=1, out_channels=CLASSES, dim=64, depth=DEPTH, heads=4, patch=1,
                            head="classify", token_grid=(grid, grid)).train()
    optimiser = torch.optim.AdamW(model.parameters(), lr=1e-3)
    x = torch.randn(16, 1, grid, grid)
    labels = torch.randint(0, CLASSES, (16,))

    def step() -> None:
        optimiser.zero_grad(set_to_none=True)
        F.cross_entropy(model(x), labels).backward()
        optimiser.step()

    for _ in range(3):  # warm-up: first calls allocate, build per-grid constants, load the kernel
        step()
    with profile(activities=[ProfilerActivity.CPU]) as prof:
        for _ in range(steps):
            step()
    events = prof.key_averages()
    operators = sum(e.count for e in events) / steps
    self_ms = sum(e.self_cpu_time_total for e in events) / steps / 1000
    head = f"{attention} at {grid}x{grid} tokens: {operators:.0f} profiled events per step, {self_ms:.1f} ms self CPU"
    return head + "\n" + events.table(sort_by="self_cpu_time_total", row_limit=rows)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("attentions", nargs="+")
    parser.add_argument("--grid", type=int, default=8)
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--steps", type=int, default=10)
    parser.add_argument("--rows", type=int, default=15)
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    for attention in args.attentions:
        print(profile_step(attention, args.grid, args.steps, args.rows), end="\n\n")


if __name__ == "__main__":
    main()
