"""The arithmetic behind issue 26's targets: counted FLOPs of `mano` against `swin` (window 8) for one layer, and of
one training step of the accuracy backbone with `mano` against `full`, at the grids the targets name.

A time ratio cannot go below the ratio of the work done, unless one side runs its FLOPs more efficiently; so this
table is the floor each target sits on. Counted as the harness counts (:func:`attnbench.measure.flops.count_flops`:
matrix products, convolutions and attention as the math SDPA kernel's matmuls; element-wise work, softmax and
normalisation not counted), `mano` through its ``flop_counter_kwargs`` (the sdpa path, whose window products the
counter sees; every path does the same arithmetic). Counts do not depend on the machine.

Usage, from a checkout: ``python results/investigations/mano-native/flop_ratio.py`` → ``flop-ratios.csv`` beside
this script (the table in docs/results.md is generated from it by ``python tools/docs.py``).
"""

from __future__ import annotations

import csv
import subprocess
from pathlib import Path

import torch
import torch.nn.functional as F

from attnbench.measure.flops import count_flops
from attnbench.registry import create_attention, flop_counter_kwargs
from attnbench.training.models import GridTransformer
from attnbench.training.step_cost import CLASSES, DEPTH

OUT = Path(__file__).with_name("flop-ratios.csv")
DIM, HEADS, BATCH_STEP = 64, 4, 16


def layer_flops(name: str, grid: int, mode: str, **kwargs) -> int:
    torch.manual_seed(0)
    layer = create_attention(name, dim=DIM, heads=HEADS, **kwargs, **flop_counter_kwargs(name))
    x = torch.randn(1, grid, grid, DIM, requires_grad=mode == "fwd_bwd")
    if mode == "fwd":
        layer.eval()
        with torch.no_grad():
            return count_flops(lambda: layer(x))
    return count_flops(lambda: layer(x).sum().backward())


def step_flops(name: str, grid: int) -> int:
    torch.manual_seed(0)
    model = GridTransformer(name, flop_counter_kwargs(name), in_channels=1, out_channels=CLASSES, dim=DIM, depth=DEPTH,
                            heads=HEADS, patch=1, head="classify", token_grid=(grid, grid)).train()
    x, y = torch.randn(BATCH_STEP, 1, grid, grid), torch.randint(0, CLASSES, (BATCH_STEP,))
    return count_flops(lambda: F.cross_entropy(model(x), y).backward())


def main() -> None:
    git = subprocess.run(["git", "rev-parse", "--short=12", "HEAD"], capture_output=True, text=True).stdout.strip()
    rows = []
    for mode in ("fwd", "fwd_bwd"):
        for grid in (16, 32, 64, 128, 256):
            a, b = layer_flops("mano", grid, mode), layer_flops("swin", grid, mode, window=8)
            rows.append({"what": "layer, batch 1", "mode": mode, "grid": grid, "a": "mano", "b": "swin (window 8)",
                         "flops_a": a, "flops_b": b})
    for grid in (8, 16):
        a, b = step_flops("mano", grid), step_flops("full", grid)
        rows.append({"what": f"training step, batch {BATCH_STEP}", "mode": "train_step", "grid": grid, "a": "mano",
                     "b": "full", "flops_a": a, "flops_b": b})
    for row in rows:
        row.update(ratio=row["flops_a"] / row["flops_b"], git=git, torch=torch.__version__)
    with OUT.open("w", newline="") as f:
        writer = csv.DictWriter(f, fieldnames=list(rows[0]))
        writer.writeheader()
        writer.writerows(rows)
    print(f"wrote {OUT} ({len(rows)} rows)")


if __name__ == "__main__":
    main()
