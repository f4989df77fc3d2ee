"""neuralop 0.3.0 anchor data: verified extraction from a wheel, cache reuse, error messages (no network)."""

from __future__ import annotations

import hashlib
import io
import subprocess
import zipfile

import pytest
import torch

from attnbench.data import DatasetUnavailable, neuralop

SHAPES = {"darcy_train_16.pt": (6, 16), "darcy_test_16.pt": (2, 16), "darcy_test_32.pt": (2, 32)}


@pytest.fixture(autouse=True)
def _private_cache(tmp_path, monkeypatch):
    monkeypatch.setenv("ATTNBENCH_DATA", str(tmp_path / "cache"))


def _fake_blobs() -> dict[str, bytes]:
    g = torch.Generator().manual_seed(0)
    blobs = {}
    for name, (n, r) in SHAPES.items():
        buf = io.BytesIO()
        torch.save({"x": torch.rand(n, r, r, generator=g) > 0.5, "y": torch.randn(n, r, r, generator=g)}, buf)
        blobs[name] = buf.getvalue()
    return blobs


def _wheel(path, blobs: dict[str, bytes]):
    with zipfile.ZipFile(path, "w") as zf:
        zf.writestr("neuralop/__init__.py", "")
        for name, data in blobs.items():
            zf.writestr(f"{neuralop.MEMBER_DIR}/{name}", data)
    return path


def test_hash_mismatch_is_a_clear_error_and_writes_nothing(tmp_path):
    blobs = _fake_blobs()
    wheel = _wheel(tmp_path / "neuraloperator-0.3.0-py3-none-any.whl", blobs)
    dest = tmp_path / "dest"
    with pytest.raises(neuralop.ChecksumError) as info:
        neuralop.fetch(dest, wheel=wheel)
    msg = str(info.value)
    first = next(iter(neuralop.SHA256))
    assert "\n" not in msg
    assert f"{neuralop.MEMBER_DIR}/{first}" in msg
    assert neuralop.SHA256[first] in msg and hashlib.sha256(blobs[first]).hexdigest() in msg
    assert isinstance(info.value, DatasetUnavailable) and isinstance(info.value, ValueError)
    assert not dest.exists() or not any(dest.iterdir())


def test_extract_verify_load_and_reuse(tmp_path, monkeypatch):
    blobs = _fake_blobs()
    monkeypatch.setattr(neuralop, "SHA256", {k: hashlib.sha256(v).hexdigest() for k, v in blobs.items()})
    wheel = _wheel(tmp_path / "w.whl", blobs)
    calls = []

    def fake_download(target):
        calls.append(target)
        return wheel

    monkeypatch.setattr(neuralop, "_download", fake_download)
    x, y = neuralop.load("train", 16)
    assert x.shape == y.shape == (6, 16, 16) and x.dtype == y.dtype == torch.float32
    assert set(torch.unique(x).tolist()) <= {0.0, 1.0}
    assert neuralop.load("test", 32)[0].shape == (2, 32, 32)
    assert len(calls) == 1  # the second load used the verified cache

    # A cache file damaged later is noticed by its hash and fetched again.
    (neuralop.fetch() / "darcy_test_16.pt").write_bytes(b"damaged")
    assert neuralop.load("test", 16)[1].shape == (2, 16, 16)
    assert len(calls) == 2


def test_missing_member_and_bad_zip(tmp_path):
    wheel = _wheel(tmp_path / "w.whl", {})
    with pytest.raises(DatasetUnavailable, match="has no member"):
        neuralop.fetch(tmp_path / "d", wheel=wheel)
    (tmp_path / "junk.whl").write_bytes(b"not a zip")
    with pytest.raises(DatasetUnavailable, match="cannot open"):
        neuralop.fetch(tmp_path / "d", wheel=tmp_path / "junk.whl")


def test_pip_failure_gives_manual_command(monkeypatch):
    def failing_run(cmd, **kwargs):
        assert "download" in cmd and "--no-deps" in cmd and "install" not in cmd
        return subprocess.CompletedProcess(cmd, 1, "", "ERROR: No matching distribution found\n")

    monkeypatch.setattr(neuralop.subprocess, "run", failing_run)
    with pytest.raises(DatasetUnavailable) as info:
        neuralop.fetch()
    msg = str(info.value)
    assert "\n" not in msg and "No matching distribution" in msg
    assert "pip download --no-deps neuraloperator==0.3.0" in msg


def test_unknown_combination_lists_allowed():
    with pytest.raises(ValueError, match=r"\('test', 32\)"):
        neuralop.load("train", 32)


@pytest.mark.slow
def test_real_wheel_download():
    """Downloads the real 4 MB wheel (``-m slow``); skips when the index cannot be reached."""
    try:
        x, y = neuralop.load("test", 32)
    except DatasetUnavailable as err:
        pytest.skip(f"offline: {err}")
    assert x.shape == y.shape == (50, 32, 32)
    assert torch.equal(neuralop.load("test", 16)[1], y[:, ::2, ::2])
