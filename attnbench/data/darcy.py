"""Darcy flow data made here, Li et al. (2020) recipe: sample, solve once on a fine grid, stride to each resolution.

One seed gives one sample: g = GRF(seed) on the fine node grid, a = 12/3 thresholded, u solved with f = 1. Every
requested resolution is a stride of the same fine (a, u), so all resolutions share one target function (solving
directly on a coarse grid would differ by ~1 % at 32², the size of a good model's error).

Seeds are fixed per split: train sample i uses seed i, test sample i uses seed 1_000_000 + i.

Cache layout: ``cache_dir()/darcy/<recipe-hash>/<split>_<res>.pt``, a dict with ``a`` (uint8 [n,res,res], the
values 3/12 themselves), ``u`` (float32 [n,res,res]), ``n``, ``resolution`` and ``recipe`` (JSON text). The hash
covers everything that determines a sample (fine grid, α, τ, the two a values, f, seed rule, solver version) but
NOT n: sample i depends only on (split, i), so a file with more samples serves a smaller request by its prefix, and
a larger request solves only the missing indices and rewrites the file. Files are written atomically.
"""

from __future__ import annotations

import argparse
import io
import json
import math
import os
import pathlib
import time
from concurrent.futures import Executor, ProcessPoolExecutor, as_completed

import numpy as np
import torch

from attnbench.data import atomic_write_bytes, cache_dir, check_request, read_cached, recipe_hash
from attnbench.data.darcy_solver import A_NEG, A_POS, ALPHA, SOLVER_VERSION, TAU, coefficient, grf, solve

__all__ = ["SEED_OFFSET", "cli", "coefficient", "dataset_dir", "fixture", "generate", "grf", "load", "recipe",
           "sample", "solve", "subsample"]

SEED_OFFSET = {"train": 0, "test": 1_000_000}
RHS = 1.0


def sample(seed: int, fine: int = 257) -> tuple[np.ndarray, np.ndarray]:
    """One Darcy sample on the fine node grid.

    Args:
        seed: Seed of ``np.random.default_rng``; the GRF draws all its noise from it.
        fine: Nodes per side of the solve grid (2^k + 1 so that it strides to powers of two).

    Returns:
        (a, u): float64 [fine, fine] each; a in {3, 12}, u zero on the boundary.
    """
    a = coefficient(grf(fine, np.random.default_rng(seed), ALPHA, TAU), A_POS, A_NEG)
    return a, solve(a, RHS)


def subsample(field: np.ndarray, resolution: int) -> np.ndarray:
    """Stride a node-grid field to ``resolution + 1`` nodes per side, then drop the last row and column.

    The dropped row/column is the far boundary (u = 0 there), matching the neuralop files; e.g. 257 → 256/128/64/32.

    Args:
        field: [..., F, F] on the node grid.
        resolution: Output side; must divide F − 1.

    Returns:
        [..., resolution, resolution], a view of ``field``.
    """
    fine = field.shape[-1]
    if resolution < 1 or (fine - 1) % resolution != 0:
        raise ValueError(f"resolution {resolution} does not divide fine grid {fine} - 1 = {fine - 1}")
    s = (fine - 1) // resolution
    return field[..., ::s, ::s][..., :-1, :-1]


def recipe(fine: int = 257) -> dict:
    """Everything that determines sample i of a split; its :func:`recipe_hash` names the cache directory.

    The linear-solver backend (SuperLU or pyamg) is deliberately not part of it: both solve to ≤ 1e-10 relative.
    """
    return {"dataset": "darcy-li2020", "fine": fine, "alpha": ALPHA, "tau": TAU, "a_pos": A_POS, "a_neg": A_NEG,
            "f": RHS, "seeds": SEED_OFFSET, "rng": "numpy.default_rng", "solver": SOLVER_VERSION,
            "subsample": "stride-drop-last"}


def dataset_dir(fine: int = 257) -> pathlib.Path:
    """Cache directory of the recipe at this fine grid (not created)."""
    return cache_dir() / "darcy" / recipe_hash(recipe(fine))


def _solve_chunk(seeds: list[int], fine: int, resolutions: list[int]) -> dict[int, tuple[np.ndarray, np.ndarray]]:
    """Worker: solve each seed on the fine grid and return only the strided fields, to keep IPC small."""
    out: dict[int, tuple[list, list]] = {r: ([], []) for r in resolutions}
    for seed in seeds:
        a, u = sample(seed, fine)
        for r in resolutions:
            out[r][0].append(subsample(a, r).astype(np.uint8))
            out[r][1].append(subsample(u, r).astype(np.float32))
    return {r: (np.stack(av), np.stack(uv)) for r, (av, uv) in out.items()}


def _solve_many(seeds: list[int], fine: int, resolutions: list[int], workers: int | None,
                progress: bool) -> dict[int, tuple[np.ndarray, np.ndarray]]:
    """Solve ``seeds`` in chunks, in ``workers`` processes (1 = in this process); results in seed order."""
    if workers is None:
        workers = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else (os.cpu_count() or 1)
    # Several chunks per worker balance the load; chunks of several seeds amortise the per-task overhead.
    size = max(1, min(16, math.ceil(len(seeds) / (4 * max(workers, 1)))))
    chunks = [seeds[i:i + size] for i in range(0, len(seeds), size)]
    workers = max(1, min(workers, len(chunks)))
    results: list[dict | None] = [None] * len(chunks)

    bar = None
    if progress:
        from rich.progress import Progress  # lazy: only the interactive path needs rich

        bar = Progress(transient=False)
        bar.start()
        task = bar.add_task(f"Darcy {fine}² solves", total=len(seeds))
    try:
        if workers == 1:
            for k, chunk in enumerate(chunks):
                results[k] = _solve_chunk(chunk, fine, resolutions)
                if bar is not None:
                    bar.advance(task, len(chunk))
        else:
            with _executor(workers) as pool:
                futures = {pool.submit(_solve_chunk, c, fine, resolutions): k for k, c in enumerate(chunks)}
                for fut in as_completed(futures):
                    k = futures[fut]
                    results[k] = fut.result()
                    if bar is not None:
                        bar.advance(task, len(chunks[k]))
    finally:
        if bar is not None:
            bar.stop()
    solved = [c for c in results if c is not None]
    assert len(solved) == len(chunks), "a chunk of solves is missing"
    return {r: (np.concatenate([c[r][0] for c in solved]), np.concatenate([c[r][1] for c in solved]))
            for r in resolutions}


def _executor(workers: int) -> Executor:
    import multiprocessing as mp

    # fork is cheap (no re-import of torch in every worker); the workers use only numpy/scipy.
    ctx = mp.get_context("fork") if "fork" in mp.get_all_start_methods() else None
    return ProcessPoolExecutor(max_workers=workers, mp_context=ctx)


def generate(resolutions: list[int], n: int, split: str, fine: int = 257, workers: int | None = None,
             progress: bool = True) -> dict[int, tuple[torch.Tensor, torch.Tensor]]:
    """Darcy samples 0..n−1 of a split at several resolutions, from the cache or solved now and cached.

    Args:
        resolutions: Output sides; each must divide ``fine − 1``.
        n: Number of samples (indices 0..n−1 of the split).
        split: ``"train"`` or ``"test"`` (they use disjoint seeds).
        fine: Nodes per side of the solve grid, e.g. 129, 257 or 513.
        workers: Processes for the solves; None = all available CPUs, 1 = in this process.
        progress: Show a ``rich`` progress bar while solving.

    Returns:
        {res: (a float32 [n, res, res] in {3, 12}, u float32 [n, res, res])}.
    """
    check_request("darcy", split, n, SEED_OFFSET)
    resolutions = sorted(set(int(r) for r in resolutions))
    for r in resolutions:
        subsample(np.empty((fine, fine)), r)  # validates divisibility before any work
    root = dataset_dir(fine)
    paths = {r: root / f"{split}_{r}.pt" for r in resolutions}
    cached = {r: read_cached(p) for r, p in paths.items()}
    have = {r: (int(c["n"]) if c is not None else 0) for r, c in cached.items()}

    start = min(min(have.values()), n)  # every index below this is cached at every requested resolution
    if start < n:
        seeds = [SEED_OFFSET[split] + i for i in range(start, n)]
        new = _solve_many(seeds, fine, resolutions, workers, progress)
        text = json.dumps(recipe(fine), sort_keys=True)
        for r in resolutions:
            if have[r] >= n:
                continue  # already long enough; never shrink a cached file
            old = cached[r]
            a_old = old["a"][:start].numpy() if old is not None else new[r][0][:0]
            u_old = old["u"][:start].numpy() if old is not None else new[r][1][:0]
            blob = {"a": torch.from_numpy(np.concatenate([a_old, new[r][0]])),
                    "u": torch.from_numpy(np.concatenate([u_old, new[r][1]])),
                    "n": n, "resolution": r, "recipe": text}
            buf = io.BytesIO()
            torch.save(blob, buf)
            atomic_write_bytes(paths[r], buf.getvalue())
            cached[r] = blob

    out: dict[int, tuple[torch.Tensor, torch.Tensor]] = {}
    for r in resolutions:
        found = cached[r]
        assert found is not None, f"resolution {r}: neither cached nor solved"  # every index < n is cached now
        out[r] = (found["a"][:n].to(torch.float32), found["u"][:n].to(torch.float32).clone())
    return out


def load(resolution: int, split: str, n: int, fine: int = 257, **kw) -> tuple[torch.Tensor, torch.Tensor]:
    """(a, u) float32 [n, resolution, resolution] of one split; ``kw`` goes to :func:`generate`."""
    return generate([resolution], n, split, fine=fine, **kw)[resolution]


def fixture(n: int = 64, resolution: int = 32, fine: int = 129) -> tuple[torch.Tensor, torch.Tensor]:
    """Small train set for tests, solved in this process without a progress bar (~2 s for the default, cached).

    Returns:
        (a, u) float32 [n, resolution, resolution].
    """
    return generate([resolution], n, "train", fine=fine, workers=1, progress=False)[resolution]


def cli(argv: list[str] | None = None) -> int:
    """``attnbench data darcy --res 32 64 --n-train 1000 --n-test 200 [--fine 257] [--workers N]``.

    Returns:
        Process exit status (0 on success).
    """
    p = argparse.ArgumentParser(prog="attnbench data darcy",
                                description="Generate (or reuse) the cached Darcy flow data set.")
    p.add_argument("--res", type=int, nargs="+", default=[32, 64], help="output resolutions (divide fine-1)")
    p.add_argument("--n-train", type=int, default=1000)
    p.add_argument("--n-test", type=int, default=200)
    p.add_argument("--fine", type=int, default=257, help="solve grid, nodes per side (257 or 513)")
    p.add_argument("--workers", type=int, default=None, help="solver processes (default: all CPUs)")
    p.add_argument("--no-progress", action="store_true")
    args = p.parse_args(argv)
    try:
        for r in args.res:
            subsample(np.empty((args.fine, args.fine)), r)
    except ValueError as err:
        p.error(str(err))
    t0 = time.perf_counter()
    for split, n in (("train", args.n_train), ("test", args.n_test)):
        if n > 0:
            generate(args.res, n, split, fine=args.fine, workers=args.workers, progress=not args.no_progress)
    root = dataset_dir(args.fine)
    print(f"Darcy data (fine {args.fine}², resolutions {args.res}) in {root}")
    for f in sorted(root.glob("*.pt")):
        print(f"  {f.name}")
    print(f"done in {time.perf_counter() - t0:.1f} s")
    return 0
