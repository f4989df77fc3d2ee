"""Fashion-MNIST: idx parsing, lookup and its error, padding/resizing/normalisation, balanced subsets."""

from __future__ import annotations

import gzip
import struct

import numpy as np
import pytest
import torch
import torch.nn.functional as F

from attnbench.data import DatasetUnavailable, fashion


def _idx_bytes(arr: np.ndarray) -> bytes:
    code = {np.dtype(np.uint8): 0x08, np.dtype(np.int32): 0x0C, np.dtype(np.float32): 0x0D}[arr.dtype]
    header = bytes([0, 0, code, arr.ndim]) + struct.pack(f">{arr.ndim}I", *arr.shape)
    return header + arr.astype(arr.dtype.newbyteorder(">")).tobytes()


@pytest.fixture
def private_env(tmp_path, monkeypatch):
    """Empty private cache and no system copy: only what a test writes is visible."""
    monkeypatch.setenv("ATTNBENCH_DATA", str(tmp_path / "cache"))
    monkeypatch.setattr(fashion, "SYSTEM_DIR", tmp_path / "no-system-copy")
    fashion._stats_for.cache_clear()
    return tmp_path / "cache" / "fashion-mnist"


@pytest.fixture
def fake_set(private_env):
    """3 train and 2 test images per class, random 28×28 uint8; train files gzipped, test files raw."""
    rng = np.random.default_rng(0)
    private_env.mkdir(parents=True)
    data = {}
    for split, per, prefix, gz in (("train", 3, "train", True), ("test", 2, "t10k", False)):
        labels = np.repeat(np.arange(10, dtype=np.uint8), per)
        rng.shuffle(labels)
        images = rng.integers(0, 256, (labels.size, 28, 28), dtype=np.uint8)
        for kind, arr in (("images-idx3", images), ("labels-idx1", labels)):
            raw = _idx_bytes(arr)
            name = f"{prefix}-{kind}-ubyte"
            if gz:
                (private_env / f"{name}.gz").write_bytes(gzip.compress(raw))
            else:
                (private_env / name).write_bytes(raw)
        data[split] = (images, labels)
    return data


def test_read_idx_gz_raw_and_errors(tmp_path):
    arr = np.arange(24, dtype=np.int32).reshape(2, 3, 4) - 5
    (tmp_path / "a").write_bytes(_idx_bytes(arr))
    (tmp_path / "a.gz").write_bytes(gzip.compress(_idx_bytes(arr)))
    for name in ("a", "a.gz"):
        out = fashion.read_idx(tmp_path / name)
        assert out.dtype == np.int32 and out.shape == (2, 3, 4)
        np.testing.assert_array_equal(out, arr)
    (tmp_path / "bad").write_bytes(b"\x01\x02\x08\x01" + bytes(8))
    with pytest.raises(ValueError, match="magic"):
        fashion.read_idx(tmp_path / "bad")
    (tmp_path / "short").write_bytes(_idx_bytes(arr)[:-3])
    with pytest.raises(ValueError, match="truncated"):
        fashion.read_idx(tmp_path / "short")


def test_missing_dataset_names_the_install_command(private_env):
    with pytest.raises(DatasetUnavailable) as info:
        fashion.load("train", 32)
    msg = str(info.value)
    assert "\n" not in msg and "apt-get install -y dataset-fashion-mnist" in msg


def test_padding_normalisation_and_resize(fake_set):
    images, labels = fake_set["train"]
    padded = np.pad(images / 255.0, ((0, 0), (2, 2), (2, 2)))
    mean, std = fashion.train_stats()
    np.testing.assert_allclose([mean, std], [padded.mean(), padded.std()], rtol=1e-9)

    x32, y = fashion.load("train", 32)
    assert x32.shape == (30, 1, 32, 32) and x32.dtype == torch.float32 and y.dtype == torch.int64
    np.testing.assert_array_equal(y.numpy(), labels)
    np.testing.assert_allclose(x32[:, 0].numpy(), (padded - mean) / std, rtol=1e-5, atol=1e-5)
    assert torch.allclose(x32[:, :, :2, :], torch.tensor(-mean / std, dtype=torch.float32))  # zero padding

    x64, _ = fashion.load("train", 64)
    assert x64.shape == (30, 1, 64, 64)
    expected = F.interpolate(x32, size=(64, 64), mode="bilinear", align_corners=False, antialias=False)
    torch.testing.assert_close(x64, expected)

    xt, yt = fashion.load("test", 128)  # raw (uncompressed) files, normalised with the train statistics
    assert xt.shape == (20, 1, 128, 128) and yt.shape == (20,)
    with pytest.raises(ValueError, match="resolution"):
        fashion.load("train", 48)


def test_balanced_subset(fake_set):
    x, y = fashion.load("train", 32, n=20, seed=1)
    assert x.shape == (20, 1, 32, 32)
    assert torch.bincount(y, minlength=10).tolist() == [2] * 10
    small = fashion.load("train", 32, n=10, seed=1)[0]
    assert all(any(torch.equal(s, b) for b in x) for s in small)  # a smaller n is a subset of a larger one
    assert not torch.equal(fashion.load("train", 32, n=10, seed=2)[0], small)
    with pytest.raises(ValueError, match="class"):
        fashion.load("train", 32, n=40)


@pytest.mark.skipif(not fashion.SYSTEM_DIR.is_dir(), reason="Debian dataset-fashion-mnist not installed")
def test_real_files_if_installed(tmp_path, monkeypatch):
    monkeypatch.setenv("ATTNBENCH_DATA", str(tmp_path))
    x, y = fashion.load("test", 32, n=100)
    assert x.shape == (100, 1, 32, 32) and torch.bincount(y).tolist() == [10] * 10
    mean, std = fashion.train_stats()
    assert abs(mean - 0.219) < 0.001 and abs(std - 0.332) < 0.001
