"""Long-range same/different: balance, scene geometry, resolution independence, determinism."""

from __future__ import annotations

import numpy as np
import pytest
import torch
import torch.nn.functional as F

from attnbench.data import longrange


def test_shapes_and_exact_balance():
    x, y = longrange.make(40, 32, seed=0)
    assert x.shape == (40, 1, 32, 32) and x.dtype == torch.float32
    assert y.dtype == torch.int64 and int(y.sum()) == 20
    assert abs(int(longrange.make(41, 16, seed=1)[1].sum()) - 20.5) <= 0.5


def test_scene_geometry():
    for s in longrange.scenes(200, seed=3):
        c = s.centre
        assert np.hypot(*(c[0] - c[1])) >= longrange.MIN_KEY_DISTANCE
        assert 8 <= len(s.shape) <= 12  # two keys + 6..10 distractors
        assert (s.shape[0] == s.shape[1]) == bool(s.label)
        assert np.all((s.size >= 0.10) & (s.size <= 0.14))
        assert np.all((c > 0) & (c < 1))
        radius = s.size / 2 * np.sqrt(2)
        for k in (0, 1):  # no distractor touches a key
            d = np.hypot(*(c[2:] - c[k]).T)
            assert np.all(d >= radius[2:] + radius[k])
        assert s.amplitude[:2].tolist() == [1.0, 1.0] and np.all(s.amplitude[2:] == 0.5)


@pytest.mark.parametrize("noise", [0.0, 0.02])
def test_same_scene_at_every_resolution(noise):
    x32 = longrange.make(16, 32, seed=5, noise=noise)[0]
    x64 = longrange.make(16, 64, seed=5, noise=noise)[0]
    pooled = F.avg_pool2d(x64, 2)
    for a, b in zip(x32, pooled):
        assert np.corrcoef(a.ravel().numpy(), b.ravel().numpy())[0, 1] > 0.9
    other = longrange.make(16, 32, seed=6, noise=noise)[0]
    assert np.corrcoef(x32[0].ravel().numpy(), other[0].ravel().numpy())[0, 1] < 0.5


def test_deterministic_prefix_and_clean_range():
    a, la = longrange.make(10, 32, seed=9)
    b, lb = longrange.make(4, 32, seed=9)
    assert torch.equal(a[:4], b) and torch.equal(la[:4], lb)
    clean = longrange.make(10, 32, seed=9, noise=0.0)[0]
    assert clean.min() >= 0 and clean.max() <= 1 and clean.max() > 0.5
    assert 0.05 < float((a - clean).std()) < 0.15  # σ = 0.1 noise by default


def test_key_swap_changes_only_the_key():
    scene = longrange.scenes(1, seed=2)[0]
    before = longrange.render([scene], 64, noise=0.0)[0, 0]
    scene.shape = scene.shape.copy()
    scene.shape[1] = (scene.shape[1] + 1) % len(longrange.SHAPES)
    after = longrange.render([scene], 64, noise=0.0)[0, 0]
    changed = torch.nonzero(after != before).float() / 64  # (row, col) = (y, x) of changed pixels
    assert changed.numel() > 0
    key = torch.tensor(scene.centre[1][::-1].copy(), dtype=torch.float32)
    assert float((changed - key).norm(dim=1).max()) < scene.size[1]
