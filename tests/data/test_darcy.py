"""Darcy data: solver convergence, GRF statistics, subsampling and the cache."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from attnbench.data import darcy, recipe_hash
from attnbench.data.darcy_solver import node_grid

FINE = 65  # 64/32/16 strides; a solve at 65² takes a few ms


@pytest.fixture(autouse=True)
def _private_cache(tmp_path, monkeypatch):
    monkeypatch.setenv("ATTNBENCH_DATA", str(tmp_path / "cache"))


def _mms_error(n: int) -> float:
    """Relative L2 error for u = sin πx sin πy, a = 1 + x² + y, f = −∇·(a∇u) computed by hand."""
    pi = np.pi

    def f(x, y):
        ux, uy = pi * np.cos(pi * x) * np.sin(pi * y), pi * np.sin(pi * x) * np.cos(pi * y)
        lap = -2 * pi**2 * np.sin(pi * x) * np.sin(pi * y)
        return -(2 * x * ux + 1.0 * uy + (1 + x**2 + y) * lap)

    u = darcy.solve(lambda x, y: 1 + x**2 + y, f, n_nodes=n)
    x, y = node_grid(n)
    exact = np.sin(pi * x) * np.sin(pi * y)
    return float(np.linalg.norm(u - exact) / np.linalg.norm(exact))


def test_manufactured_solution_converges_second_order():
    errors = [_mms_error(n) for n in (33, 65, 129)]
    assert errors[0] < 1e-3
    for coarse, fine in zip(errors, errors[1:]):
        assert 3.5 < coarse / fine < 4.5


def test_solve_accepts_arrays_and_keeps_boundary_zero():
    a = np.full((17, 17), 2.0)
    u = darcy.solve(a, np.ones((17, 17)))
    assert u.shape == (17, 17)
    assert np.all(u[0] == 0) and np.all(u[-1] == 0) and np.all(u[:, 0] == 0) and np.all(u[:, -1] == 0)
    assert np.all(u[1:-1, 1:-1] > 0)  # f > 0 with zero boundary gives a positive solution
    np.testing.assert_allclose(u, u.T, atol=1e-14)  # constant a: symmetric in x ↔ y
    with pytest.raises(ValueError):
        darcy.solve(np.zeros((5, 5)))


def test_grf_statistics_and_threshold():
    rng = np.random.default_rng(0)
    m, n = 400, 33
    g = np.stack([darcy.grf(n, rng) for _ in range(m)])
    assert g.shape == (m, n, n)
    np.testing.assert_allclose(g.mean(axis=(1, 2)), 0.0, atol=1e-12)  # constant mode removed
    z = g.mean(axis=0) / (g.std(axis=0) / np.sqrt(m))  # pointwise ensemble mean in standard errors
    assert np.abs(z).max() < 5.0
    a = darcy.coefficient(g)
    assert set(np.unique(a).tolist()) == {3.0, 12.0}
    assert 0.4 < (a == 12.0).mean() < 0.6
    # Same seed, same field.
    np.testing.assert_array_equal(darcy.grf(n, np.random.default_rng(5)), darcy.grf(n, np.random.default_rng(5)))


def test_subsample_strides_and_validates():
    field = np.arange(65 * 65, dtype=float).reshape(65, 65)
    s32 = darcy.subsample(field, 32)
    assert s32.shape == (32, 32)
    np.testing.assert_array_equal(s32, field[::2, ::2][:-1, :-1])
    np.testing.assert_array_equal(darcy.subsample(field, 16), darcy.subsample(field, 32)[::2, ::2])
    with pytest.raises(ValueError, match="does not divide"):
        darcy.subsample(field, 48)


def test_generate_shares_target_across_resolutions_and_caches(monkeypatch):
    out = darcy.generate([16, 32], n=3, split="train", fine=FINE, workers=1, progress=False)
    (a16, u16), (a32, u32) = out[16], out[32]
    assert a32.shape == u32.shape == (3, 32, 32) and a32.dtype == u32.dtype == torch.float32
    assert torch.equal(u16, u32[:, ::2, ::2]) and torch.equal(a16, a32[:, ::2, ::2])
    assert set(torch.unique(a32).tolist()) <= {3.0, 12.0}
    a_ref, u_ref = darcy.sample(2, FINE)  # train sample i is seed i
    np.testing.assert_allclose(u32[2].numpy(), darcy.subsample(u_ref, 32), rtol=1e-6)

    root = darcy.dataset_dir(FINE)
    assert sorted(p.name for p in root.iterdir()) == ["train_16.pt", "train_32.pt"]  # no temp files left
    assert root.name == recipe_hash(darcy.recipe(FINE))

    def boom(*args, **kwargs):
        raise AssertionError("should have been served from the cache")

    with monkeypatch.context() as m:
        m.setattr(darcy, "_solve_many", boom)
        again = darcy.generate([32, 16], n=2, split="train", fine=FINE, progress=False)  # a prefix of the cache
    assert torch.equal(again[32][1], u32[:2]) and torch.equal(again[16][0], a16[:2])

    longer = darcy.generate([32], n=5, split="train", fine=FINE, workers=1, progress=False)[32]
    assert torch.equal(longer[1][:3], u32)  # extension solves only the new indices, old ones unchanged
    np.testing.assert_allclose(longer[1][4].numpy(), darcy.subsample(darcy.sample(4, FINE)[1], 32), rtol=1e-6)


def test_splits_differ_and_workers_agree():
    train = darcy.generate([16], n=4, split="train", fine=33, workers=1, progress=False)[16]
    test_1 = darcy.generate([16], n=4, split="test", fine=33, workers=1, progress=False)[16]
    assert not torch.equal(train[0], test_1[0])
    darcy.dataset_dir(33).joinpath("test_16.pt").unlink()
    test_2 = darcy.generate([16], n=4, split="test", fine=33, workers=2, progress=False)[16]
    assert torch.equal(test_1[1], test_2[1])
    with pytest.raises(ValueError):
        darcy.generate([16], n=4, split="valid", fine=33)


def test_corrupt_cache_file_is_regenerated():
    u = darcy.load(16, "train", 2, fine=33, workers=1, progress=False)[1]
    path = darcy.dataset_dir(33) / "train_16.pt"
    path.write_bytes(b"not a torch file")
    assert torch.equal(darcy.load(16, "train", 2, fine=33, workers=1, progress=False)[1], u)


def test_fixture_and_cli(capsys):
    a, u = darcy.fixture(n=4, resolution=16, fine=33)
    assert a.shape == u.shape == (4, 16, 16)
    rc = darcy.cli(["--res", "16", "--n-train", "2", "--n-test", "1", "--fine", "33", "--workers", "1",
                    "--no-progress"])
    out = capsys.readouterr().out
    assert rc == 0 and str(darcy.dataset_dir(33)) in out and "test_16.pt" in out
    with pytest.raises(SystemExit):
        darcy.cli(["--res", "20", "--fine", "33", "--no-progress"])
