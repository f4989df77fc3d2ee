"""Fashion-MNIST at 32², 64² and 128²: the same images at every resolution.

Files (the four idx files, each ``.gz`` or raw) are looked up in ``$ATTNBENCH_DATA/fashion-mnist/`` (or
``~/.cache/attnbench/fashion-mnist/``) first, then in ``/usr/share/datasets/fashion-mnist/`` from the Debian package
``dataset-fashion-mnist`` (MIT). Images are zero-padded 28 → 32, normalised with the training-set mean/std of the
padded images (≈0.219/0.332), then resized bilinearly (no antialias) to 64/128. Normalising before the resize is the
same as after it, because bilinear weights sum to one.
"""

from __future__ import annotations

import functools
import gzip
import pathlib

import numpy as np
import torch
import torch.nn.functional as F

from attnbench.data import DatasetUnavailable, cache_dir

__all__ = ["RESOLUTIONS", "SYSTEM_DIR", "find_files", "load", "read_idx", "train_stats"]

SYSTEM_DIR = pathlib.Path("/usr/share/datasets/fashion-mnist")
RESOLUTIONS = (32, 64, 128)
PAD = 2
_NAMES = {"train": ("train-images-idx3-ubyte", "train-labels-idx1-ubyte"),
          "test": ("t10k-images-idx3-ubyte", "t10k-labels-idx1-ubyte")}
# idx type byte → big-endian numpy dtype (the format's definition, http://yann.lecun.com/exdb/mnist/).
_IDX_DTYPES = {0x08: ">u1", 0x09: ">i1", 0x0B: ">i2", 0x0C: ">i4", 0x0D: ">f4", 0x0E: ">f8"}
_MISSING = ("Fashion-MNIST not found in /usr/share/datasets/fashion-mnist or $ATTNBENCH_DATA/fashion-mnist; "
            "install with: sudo apt-get install -y dataset-fashion-mnist")


def read_idx(path: str | pathlib.Path) -> np.ndarray:
    """Parse an idx file (gzip-compressed or raw, told apart by content, not by name).

    Args:
        path: The file.

    Returns:
        Array of the stored dtype in native byte order, shape = the dims in the header.

    Raises:
        ValueError: bad magic number, unknown type code, or a payload shorter/longer than the header says.
    """
    path = pathlib.Path(path)
    raw = path.read_bytes()
    if raw[:2] == b"\x1f\x8b":
        try:
            raw = gzip.decompress(raw)
        except (OSError, EOFError) as err:
            raise ValueError(f"{path}: corrupt gzip stream ({err})") from err
    if len(raw) < 4 or raw[0] != 0 or raw[1] != 0 or raw[2] not in _IDX_DTYPES:
        raise ValueError(f"{path}: not an idx file (bad magic number {raw[:4].hex() or 'empty'})")
    dtype = np.dtype(_IDX_DTYPES[raw[2]])
    ndim = raw[3]
    header = 4 + 4 * ndim
    if len(raw) < header:
        raise ValueError(f"{path}: truncated idx header ({len(raw)} bytes, need {header})")
    dims = tuple(int(d) for d in np.frombuffer(raw, dtype=">u4", count=ndim, offset=4))
    expected = header + int(np.prod(dims, dtype=np.int64)) * dtype.itemsize
    if len(raw) != expected:
        kind = "truncated" if len(raw) < expected else "oversized"
        raise ValueError(f"{path}: {kind} idx file: {len(raw)} bytes, header {dims} needs {expected}")
    return np.frombuffer(raw, dtype=dtype, offset=header).reshape(dims).astype(dtype.newbyteorder("="))


def _candidates() -> list[pathlib.Path]:
    return [cache_dir() / "fashion-mnist", SYSTEM_DIR]


def find_files() -> dict[str, pathlib.Path]:
    """Paths of the four idx files, all from the first directory that has every one of them.

    Returns:
        {"train-images-idx3-ubyte": path, ...}, each path ``.gz`` or raw.

    Raises:
        DatasetUnavailable: no candidate directory holds the full set.
    """
    for root in _candidates():
        found = {}
        for base in (*_NAMES["train"], *_NAMES["test"]):
            for name in (base + ".gz", base):
                if (root / name).is_file():
                    found[base] = root / name
                    break
        if len(found) == 4:
            return found
    raise DatasetUnavailable(_MISSING)


def _read_split(files: dict[str, pathlib.Path], split: str) -> tuple[np.ndarray, np.ndarray]:
    img_name, lab_name = _NAMES[split]
    images, labels = read_idx(files[img_name]), read_idx(files[lab_name])
    if images.ndim != 3 or labels.ndim != 1 or images.shape[0] != labels.shape[0]:
        raise ValueError(f"Fashion-MNIST {split}: images {images.shape} and labels {labels.shape} do not match")
    return images, labels


@functools.lru_cache(maxsize=4)
def _stats_for(train_images: pathlib.Path) -> tuple[float, float]:
    x = read_idx(train_images)
    side = x.shape[-1] + 2 * PAD
    count = x.shape[0] * side * side  # the padding zeros count in the denominator, add nothing to the sums
    if x.dtype == np.uint8:  # a histogram is exact and needs no float copy of 47M pixels
        hist = np.bincount(x.ravel(), minlength=256).astype(np.float64)
        levels = np.arange(256) / 255.0
        s1, s2 = hist @ levels, hist @ (levels * levels)
    else:
        v = x.astype(np.float64) / 255.0
        s1, s2 = v.sum(), (v * v).sum()
    mean = s1 / count
    var = s2 / count - mean * mean
    return float(mean), float(np.sqrt(var))


def train_stats() -> tuple[float, float]:
    """(mean, std) of the padded 32² training images scaled to [0, 1], over the whole training set."""
    return _stats_for(find_files()["train-images-idx3-ubyte"])


def _balanced_subset(labels: np.ndarray, n: int, seed: int, after: int = 0) -> np.ndarray:
    """Indices of n samples, n // C per class (the first n % C classes get one more), in dataset order.

    Each class's order is one seeded permutation, so a smaller n gives a subset of a larger one. ``after``: skip
    the picks a subset of that size takes first, so the result is disjoint from it (a validation split beside a
    training subset of the same seed).
    """
    classes = np.unique(labels)
    rng = np.random.default_rng(seed)
    picks = []
    for c_idx, c in enumerate(classes):
        def count(total: int, c_idx: int = c_idx) -> int:
            return total // len(classes) + (1 if c_idx < total % len(classes) else 0)
        start, k = count(after), count(n)
        members = np.flatnonzero(labels == c)
        if start + k > len(members):
            raise ValueError(f"n={n} after {after} needs {start + k} samples of class {c}, only {len(members)} "
                             "available")
        picks.append(members[rng.permutation(len(members))[start:start + k]])
    return np.sort(np.concatenate(picks))


def load(split: str, resolution: int, n: int | None = None, seed: int = 0,
         after: int = 0) -> tuple[torch.Tensor, torch.Tensor]:
    """Fashion-MNIST images and labels at one resolution.

    Args:
        split: ``"train"`` (60k) or ``"test"`` (10k).
        resolution: 32, 64 or 128.
        n: If given, a class-balanced subset of n samples chosen with ``seed``; None = the whole split.
        seed: Seed of the subset choice.
        after: With ``n``: skip the samples a subset of ``after`` samples of this seed holds (disjoint from it).

    Returns:
        (images float32 [n, 1, res, res], normalised; labels int64 [n]). The full train split at 128² is 3.9 GB.
    """
    if split not in _NAMES:
        raise ValueError(f"split must be 'train' or 'test', got {split!r}")
    if resolution not in RESOLUTIONS:
        raise ValueError(f"resolution must be one of {RESOLUTIONS}, got {resolution}")
    files = find_files()
    images, labels = _read_split(files, split)
    if n is not None:
        idx = _balanced_subset(labels, n, seed, after)
        images, labels = images[idx], labels[idx]
    mean, std = _stats_for(files["train-images-idx3-ubyte"])

    out = torch.empty((images.shape[0], 1, resolution, resolution), dtype=torch.float32)
    step = 2048  # converts in blocks so the float copies never exceed a block
    for i in range(0, images.shape[0], step):
        x = torch.from_numpy(images[i:i + step].astype(np.float32) / 255.0).unsqueeze(1)
        x = (F.pad(x, (PAD, PAD, PAD, PAD)) - mean) / std
        if x.shape[-1] != resolution:
            x = F.interpolate(x, size=(resolution, resolution), mode="bilinear", align_corners=False,
                              antialias=False)
        out[i:i + step] = x
    return out, torch.from_numpy(labels.astype(np.int64))
