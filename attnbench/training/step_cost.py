"""The cost of one training step of the accuracy backbone (cost mode ``train_step``): what an accuracy suite pays
per optimiser step, measured like a layer's ``fwd_bwd`` (fresh process, peak memory of the first step, timing
blocks, :func:`attnbench.measure.cost.step_cost`).

The model is the accuracy suites' :class:`~attnbench.training.models.GridTransformer` — ``depth`` pre-norm blocks
of the mechanism (each block's options from its ``block_kwargs``), width ``dim``, ``heads`` heads, MLP ratio 2 —
on a ``height × width`` token grid (patch 1, so the case's grid is the token grid the attention sees; the
accuracy suites reach the same token grids with patches: fashion32 at patch 4 is 8×8 tokens), with a
classification head over 10 classes. One step: clear the gradients, forward, cross-entropy, backward, one AdamW
update. What differs from a layer's ``fwd_bwd`` is everything a real step adds around the attention — the MLPs,
norms, the optimiser — so a mechanism's share of a training step is read here, not extrapolated.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from typing import Any

__all__ = ["DEPTH", "CLASSES", "measure_train_step"]

DEPTH = 4  # blocks in the accuracy suites' backbone
CLASSES = 10


def measure_train_step(attention: str, kwargs: Mapping[str, Any], *, batch: int, height: int, width: int, dim: int,
                       heads: int, dtype: str, device: str, threads: int, min_run_time: float, min_blocks: int,
                       max_run_time: float, warmup: int, calls_per_block: int | None = None) -> dict[str, Any]:
    """Build the backbone and an AdamW optimiser, then peak memory, time of one step and the SDPA kernel (the
    measured columns of a results row; FLOPs are not declared for a whole model)."""
    import torch
    import torch.nn.functional as F

    from attnbench.measure.cost import step_cost
    from attnbench.measure.provenance import load_average
    from attnbench.training.models import GridTransformer

    load_start = load_average()
    torch_dtype = getattr(torch, dtype)
    torch.manual_seed(0)
    model = GridTransformer(attention, dict(kwargs), in_channels=1, out_channels=CLASSES, dim=dim, depth=DEPTH,
                            heads=heads, patch=1, head="classify", token_grid=(height, width))
    model = model.to(device=device, dtype=torch_dtype).train()
    optimiser = torch.optim.AdamW(model.parameters(), lr=1e-3)
    torch.manual_seed(1)
    x = torch.randn(batch, 1, height, width, device=device, dtype=torch_dtype)
    labels = torch.randint(0, CLASSES, (batch,), device=device)

    def clear_grads() -> None:
        optimiser.zero_grad(set_to_none=True)

    def step() -> None:
        clear_grads()
        F.cross_entropy(model(x), labels).backward()
        optimiser.step()

    measured = step_cost(step, device=device, threads=threads, min_run_time=min_run_time, min_blocks=min_blocks,
                         max_run_time=max_run_time, warmup=warmup, calls_per_block=calls_per_block,
                         reset=clear_grads)
    layer = model.blocks[0].attn
    info: dict[str, Any] = getattr(layer, "extra_info", lambda: {})()
    return {
        **measured,
        "input_mib": x.numel() * x.element_size() / 2**20,
        "params": sum(p.numel() for p in model.parameters()),
        "impl": json.dumps({**info, "depth": DEPTH, "optimiser": "AdamW"}, sort_keys=True, default=str),
        "load_start": load_start,
        "load_end": load_average(),
    }
