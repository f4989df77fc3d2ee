"""The Navier–Stokes solver against exact solutions (Taylor–Green decay, an analytic advection term and velocity),
its measured order in time, and the cached dataset built on it."""

from __future__ import annotations

import math

import pytest
import torch

from attnbench.data import navier_stokes as ns
from attnbench.data.navier_stokes_solver import _grid, advection, forcing, grf, solve, velocity


def _taylor_green_error(visc: float, dt: float, n: int = 16, t_end: float = 1.0) -> float:
    """Relative max error at ``t_end`` of ω0 = sin 2πx sin 2πy, whose exact solution decays as exp(−8π² ν t) (a
    single |k| shell: the advection term is zero)."""
    x, y = _grid(n)
    w0 = (torch.sin(2 * math.pi * x) * torch.sin(2 * math.pi * y))[None]
    (w,) = solve(w0, None, visc, [t_end], dt)
    exact = w0 * math.exp(-8 * math.pi**2 * visc * t_end)
    return ((w - exact).abs().max() / exact.abs().max()).item()


def test_taylor_green_decay_is_second_order_in_time():
    """Crank–Nicolson's error against the exact decay falls 4× per halved step (order 2 within 0.05); at the dataset's
    viscosity and step the error is below 1e-8."""
    errors = [_taylor_green_error(0.01, dt) for dt in (0.1, 0.05, 0.025)]
    orders = [math.log2(a / b) for a, b in zip(errors, errors[1:])]
    assert errors[0] > 1e-4 and all(abs(p - 2) < 0.05 for p in orders), (errors, orders)
    assert _taylor_green_error(1e-3, ns.DT) < 1e-8


def test_advection_and_velocity_match_the_analytic_field():
    """ω = sin 2πx + sin 4πy: ψ solves −Δψ = ω, u = ∂ψ/∂y = cos(4πy)/(4π), v = −∂ψ/∂x = −cos(2πx)/(2π) and
    u·∇ω = −1.5 cos 2πx cos 4πy (a sign or a factor wrong in any derivative breaks one of them)."""
    x, y = _grid(32)
    w = torch.sin(2 * math.pi * x) + torch.sin(4 * math.pi * y)
    u, v = velocity(w)
    assert torch.allclose(u, torch.cos(4 * math.pi * y) / (4 * math.pi), atol=1e-12)
    assert torch.allclose(v, -torch.cos(2 * math.pi * x) / (2 * math.pi), atol=1e-12)
    expected = -1.5 * torch.cos(2 * math.pi * x) * torch.cos(4 * math.pi * y)
    assert torch.allclose(advection(w), expected, atol=1e-12)


def test_nonlinear_flow_converges_at_second_order_in_time():
    """A random initial field with the forcing on (the advection term at work): self-convergence over three steps,
    errors against a 4× finer step, order 2 within 0.2 (forward Euler for advection would give 1)."""
    w0 = grf(2, 32, torch.Generator().manual_seed(0))
    f = forcing(32)
    ref, coarse, fine = (solve(w0, f, 1e-3, [0.5], dt)[0] for dt in (0.0025, 0.02, 0.01))
    e1, e2 = (coarse - ref).abs().max().item(), (fine - ref).abs().max().item()
    order = math.log2(e1 / e2)
    assert w0.abs().max() > 0.1 and abs(order - 2) < 0.2, (e1, e2, order)


def test_grf_is_zero_mean_and_fixed_by_its_seed():
    a = grf(3, 32, torch.Generator().manual_seed(5))
    b = grf(3, 32, torch.Generator().manual_seed(5))
    assert torch.equal(a, b) and a.shape == (3, 32, 32)
    assert a.mean(dim=(1, 2)).abs().max() < 1e-12 and a.std() > 0.1
    assert not torch.equal(a, grf(3, 32, torch.Generator().manual_seed(6)))


@pytest.mark.parametrize("times,dt,message", [([0.0105], 0.01, "multiples of dt"), ([0.2, 0.1], 0.01, "ascending"),
                                              ([], 0.01, "non-empty"), ([-0.1], 0.01, ">= 0"), ([0.1], 0.0, "dt > 0")])
def test_solve_rejects_bad_times_in_one_line(times, dt, message):
    with pytest.raises(ValueError, match=message) as err:
        solve(torch.zeros(1, 8, 8, dtype=torch.float64), None, 1e-3, times, dt)
    assert "\n" not in str(err.value)


def test_dataset_strides_one_solution_and_extends_its_cache(monkeypatch):
    """Resolutions are strides of one solve; a longer request keeps the cached prefix and solves only the rest, and
    a sample does not depend on the samples solved beside it."""
    kw = {"fine": 32, "horizon": 0.05, "dt": 0.01, "progress": False}
    first = ns.generate([16, 32], 2, "train", **kw)
    assert first[32][0].shape == (2, 32, 32) and first[32][0].dtype == torch.float32
    assert torch.equal(first[16][1], first[32][1][:, ::2, ::2])
    assert not torch.equal(first[32][0], first[32][1])  # the flow moved
    monkeypatch.setattr(ns, "CHUNK", 1)  # the third sample alone in its batch
    solved: list[int] = []
    original = ns._solve_seeds
    monkeypatch.setattr(ns, "_solve_seeds", lambda seeds, *a: (solved.extend(seeds), original(seeds, *a))[1])
    more = ns.generate([16, 32], 3, "train", **kw)
    assert solved == [2]  # only the missing sample
    assert torch.equal(more[32][1][:2], first[32][1])
    alone = ns._solve_seeds([2], 32, 0.05, 0.01)[1].float()
    together = ns._solve_seeds([0, 1, 2], 32, 0.05, 0.01)[1].float()
    assert torch.allclose(alone[0], together[2], atol=1e-6) and torch.allclose(more[32][1][2], alone[0], atol=1e-6)
    test = ns.generate([32], 2, "test", **kw)[32]
    assert not torch.equal(test[0], first[32][0])  # disjoint seeds
    with pytest.raises(ValueError, match="does not divide"):
        ns.generate([24], 1, "train", **kw)


def test_the_accuracy_task_loads_train_and_zero_shot_test_fields():
    """``dataset = "navier_stokes"`` in an accuracy task: ω(0) → ω(T) pairs as ``[n, 1, H, W]`` regression data at
    the training grid and at every evaluation grid, the test fields the same solutions at both grids."""
    from types import SimpleNamespace

    from attnbench.training.tasks import load_task

    settings = SimpleNamespace(dataset="navier_stokes", n_train=2, n_test=1, eval_res=(64, 128), fine=0, variant="",
                               n_val=0)
    data = load_task(settings, 64)
    assert data.problem == "regression" and data.train[0].shape == data.train[1].shape == (2, 1, 64, 64)
    (x64, y64), (x128, y128) = data.test[64], data.test[128]
    assert x128.shape == (1, 1, 128, 128) and torch.equal(x64, x128[..., ::2, ::2])
    assert torch.equal(y64, y128[..., ::2, ::2])
