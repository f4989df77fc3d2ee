"""Benchmark data: Darcy flow (our own solver and the neuralop 0.3.0 anchor), Fashion-MNIST, long-range synthetic.

Every dataset lives in one submodule with a ``load``/``make`` entry point; this package only holds what they share:
the cache location, the recipe hash that names cache entries, and the error raised when data cannot be obtained.
It imports nothing heavy, so ``import attnbench.data`` stays cheap; import the submodule you need.
"""

from __future__ import annotations

import hashlib
import json
import os
import pathlib

__all__ = ["DatasetUnavailable", "atomic_write_bytes", "cache_dir", "check_request", "read_cached", "recipe_hash"]


class DatasetUnavailable(RuntimeError):
    """A dataset cannot be obtained here; the one-line message names what is missing and the command to get it."""


def cache_dir() -> pathlib.Path:
    """Root of the data cache: ``$ATTNBENCH_DATA`` if set, else ``~/.cache/attnbench``; created on demand.

    Returns:
        The existing cache directory.
    """
    env = os.environ.get("ATTNBENCH_DATA")
    root = pathlib.Path(env).expanduser() if env else pathlib.Path.home() / ".cache" / "attnbench"
    root.mkdir(parents=True, exist_ok=True)
    return root


def recipe_hash(obj: dict) -> str:
    """Short stable name for a generation recipe.

    Args:
        obj: JSON-serialisable description of everything that determines the data.

    Returns:
        The first 16 hex characters of the sha256 of the canonical JSON (sorted keys, no whitespace), so equal
        recipes map to the same cache entry whatever the key order.
    """
    text = json.dumps(obj, sort_keys=True, separators=(",", ":"), ensure_ascii=True)
    return hashlib.sha256(text.encode("utf-8")).hexdigest()[:16]


def atomic_write_bytes(path: pathlib.Path, data: bytes) -> None:
    """Write ``data`` to ``path`` via a temporary file in the same directory: a crash never leaves a torn file."""
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    try:
        with open(tmp, "wb") as fh:
            fh.write(data)
            fh.flush()
            os.fsync(fh.fileno())
        os.replace(tmp, path)
    finally:
        tmp.unlink(missing_ok=True)


def read_cached(path: pathlib.Path) -> dict | None:
    """A cached ``torch.save``d dict, or None when missing or unreadable (an unreadable file is regenerated, never
    trusted)."""
    if not path.exists():
        return None
    import torch  # only the datasets that cache tensors need it; this package stays cheap to import

    try:
        return torch.load(path, map_location="cpu", weights_only=True)
    except Exception:  # noqa: BLE001 - any failure to read means "not cached"
        return None


def check_request(dataset: str, split: str, n: int, splits: dict[str, int]) -> None:
    """A one-line ``ValueError`` naming the dataset unless ``split`` is one of ``splits`` and ``n`` >= 1."""
    if split not in splits:
        raise ValueError(f"{dataset}: split must be one of {sorted(splits)}, got {split!r}")
    if n < 1:
        raise ValueError(f"{dataset}: n must be positive, got {n}")
