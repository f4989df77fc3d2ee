"""Navier–Stokes vorticity data made here (the FNO setting, :mod:`attnbench.data.navier_stokes_solver`): each sample
is an initial vorticity ω(0) drawn from the Gaussian random field and the vorticity ω(T) the equation carries it to.

The operator learned is ω(0) ↦ ω(T) on the periodic unit square, viscosity 1e-3, FNO's forcing. Every sample is
solved once on the ``fine`` grid and strided to each resolution (the nodes i/n of a coarser grid are nodes of the
fine one, so all resolutions share one target function, as for Darcy).

Seeds are fixed per split: train sample i draws its initial field from ``torch.Generator`` seed i, test sample i
from seed 1_000_000 + i; a sample never depends on which others are solved with it.

Cache layout: ``cache_dir()/navier_stokes/<recipe-hash>/<split>_<res>.pt``, a dict with ``w0`` and ``wT`` (float32
``[n, res, res]``), ``n``, ``resolution`` and ``recipe`` (JSON text). As for Darcy the hash covers everything that
determines a sample but not n: a longer file serves a shorter request by its prefix, a longer request solves only
the missing indices. Files are written atomically.
"""

from __future__ import annotations

import argparse
import io
import json
import pathlib
import time

import torch

from attnbench.data import atomic_write_bytes, cache_dir, check_request, read_cached, recipe_hash
from attnbench.data.navier_stokes_solver import GRF_ALPHA, GRF_TAU, SOLVER_VERSION, VISCOSITY, forcing, grf, solve

__all__ = ["DT", "FINE", "HORIZON", "SEED_OFFSET", "cli", "dataset_dir", "generate", "load", "recipe"]

SEED_OFFSET = {"train": 0, "test": 1_000_000}
FINE = 128  # solve grid: 64² training data and the 128² zero-shot test share one solution
HORIZON = 1.0  # T: the target is ω(T) from ω(0)
DT = 2e-3  # time step; the CNAB2 scheme's temporal error at this step is measured in the solver test
CHUNK = 64  # samples integrated together (batched FFTs); results do not depend on it


def recipe(fine: int = FINE, horizon: float = HORIZON, dt: float = DT) -> dict:
    """Everything that determines sample i of a split; its :func:`recipe_hash` names the cache directory."""
    return {"dataset": "navier-stokes-torus-fno", "fine": fine, "viscosity": VISCOSITY,
            "forcing": "0.1(sin 2pi(x+y) + cos 2pi(x+y))", "grf_alpha": GRF_ALPHA, "grf_tau": GRF_TAU,
            "horizon": horizon, "dt": dt, "seeds": SEED_OFFSET, "rng": "torch.Generator per sample",
            "solver": SOLVER_VERSION, "subsample": "stride"}


def dataset_dir(fine: int = FINE, horizon: float = HORIZON, dt: float = DT) -> pathlib.Path:
    """Cache directory of the recipe (not created)."""
    return cache_dir() / "navier_stokes" / recipe_hash(recipe(fine, horizon, dt))


def _stride(field: torch.Tensor, resolution: int) -> torch.Tensor:
    fine = field.shape[-1]
    if resolution < 1 or fine % resolution:
        raise ValueError(f"navier_stokes: resolution {resolution} does not divide the solve grid {fine}")
    s = fine // resolution
    return field[..., ::s, ::s]


def _solve_seeds(seeds: list[int], fine: int, horizon: float, dt: float) -> tuple[torch.Tensor, torch.Tensor]:
    """(ω(0), ω(T)) float64 ``[len(seeds), fine, fine]``: each initial field from its own generator, integrated in
    one batch."""
    w0 = torch.cat([grf(1, fine, torch.Generator().manual_seed(seed)) for seed in seeds])
    (wT,) = solve(w0, forcing(fine), VISCOSITY, [horizon], dt)
    return w0, wT


def generate(resolutions: list[int], n: int, split: str, fine: int = FINE, horizon: float = HORIZON,
             dt: float = DT, progress: bool = True) -> dict[int, tuple[torch.Tensor, torch.Tensor]]:
    """Samples 0..n−1 of a split at several resolutions, from the cache or solved now (in this process, chunks of
    :data:`CHUNK` samples) and cached.

    Returns:
        {res: (ω(0) float32 [n, res, res], ω(T) float32 [n, res, res])}.
    """
    check_request("navier_stokes", split, n, SEED_OFFSET)
    resolutions = sorted(set(int(r) for r in resolutions))
    for r in resolutions:
        _stride(torch.empty(fine, fine), r)  # validates before any work
    root = dataset_dir(fine, horizon, dt)
    paths = {r: root / f"{split}_{r}.pt" for r in resolutions}
    cached = {r: read_cached(p) for r, p in paths.items()}
    have = {r: (int(c["n"]) if c is not None else 0) for r, c in cached.items()}
    start = min(min(have.values()), n)
    if start < n:
        seeds = [SEED_OFFSET[split] + i for i in range(start, n)]
        parts: list[tuple[torch.Tensor, torch.Tensor]] = []
        began = time.perf_counter()
        for i in range(0, len(seeds), CHUNK):
            parts.append(_solve_seeds(seeds[i : i + CHUNK], fine, horizon, dt))
            if progress:
                print(f"Navier–Stokes {fine}² ({split}): {min(i + CHUNK, len(seeds))}/{len(seeds)} samples solved "
                      f"in {time.perf_counter() - began:.0f} s", flush=True)
        w0 = torch.cat([p[0] for p in parts])
        wT = torch.cat([p[1] for p in parts])
        text = json.dumps(recipe(fine, horizon, dt), sort_keys=True)
        for r in resolutions:
            if have[r] >= n:
                continue  # never shrink a cached file
            old = cached[r]
            blob = {"w0": torch.cat([old["w0"][:start] if old else torch.empty(0, r, r),
                                     _stride(w0, r).float()]),
                    "wT": torch.cat([old["wT"][:start] if old else torch.empty(0, r, r),
                                     _stride(wT, r).float()]),
                    "n": n, "resolution": r, "recipe": text}
            buf = io.BytesIO()
            torch.save(blob, buf)
            atomic_write_bytes(paths[r], buf.getvalue())
            cached[r] = blob
    out = {}
    for r in resolutions:
        found = cached[r]
        assert found is not None, f"resolution {r}: neither cached nor solved"
        out[r] = (found["w0"][:n].clone(), found["wT"][:n].clone())
    return out


def load(resolution: int, split: str, n: int, **kw) -> tuple[torch.Tensor, torch.Tensor]:
    """(ω(0), ω(T)) float32 ``[n, resolution, resolution]`` of one split; ``kw`` goes to :func:`generate`."""
    return generate([resolution], n, split, **kw)[resolution]


def cli(argv: list[str] | None = None) -> int:
    """``attnbench data navier-stokes --res 64 128 --n-train 1000 --n-test 200``."""
    p = argparse.ArgumentParser(prog="attnbench data navier-stokes",
                                description="Generate (or reuse) the cached Navier–Stokes vorticity data set.")
    p.add_argument("--res", type=int, nargs="+", default=[64, 128], help="output resolutions (divide the solve grid)")
    p.add_argument("--n-train", type=int, default=1000)
    p.add_argument("--n-test", type=int, default=200)
    p.add_argument("--no-progress", action="store_true")
    args = p.parse_args(argv)
    try:
        for r in args.res:
            _stride(torch.empty(FINE, FINE), r)
    except ValueError as err:
        p.error(str(err))
    t0 = time.perf_counter()
    for split, n in (("train", args.n_train), ("test", args.n_test)):
        if n > 0:
            generate(args.res, n, split, progress=not args.no_progress)
    root = dataset_dir()
    print(f"Navier–Stokes data (solve grid {FINE}², resolutions {args.res}) in {root}")
    for f in sorted(root.glob("*.pt")):
        print(f"  {f.name}")
    print(f"done in {time.perf_counter() - t0:.1f} s")
    return 0
