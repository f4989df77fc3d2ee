"""The results CSV file: the schema of :mod:`attnbench.store.schema`, crash-safe appends under a file lock.

Every case appends one row and flushes it (``fsync``) before the next case starts, so a crash loses at most the
case in flight. A second run on the same file is refused while the first holds the lock. A truncated last line
(a crash in the middle of a write) is detected on open, reported, and removed by an atomic rewrite — never
merged into the data.
"""

from __future__ import annotations

import csv
import fcntl
import io
import os
import warnings
from collections.abc import Iterable
from pathlib import Path
from typing import Any

from attnbench.store.schema import COLUMNS, SCHEMA_VERSION, format_value

__all__ = ["ResultsError", "ResultsFile", "is_locked", "read_results", "remove_lock"]

class ResultsError(RuntimeError):
    """A results file that cannot be used (locked, foreign header); the message is one line."""


def _split_complete(text: str) -> tuple[str, str]:
    """``(complete, partial)``: everything up to the last newline, and what follows it."""
    cut = text.rfind("\n") + 1
    return text[:cut], text[cut:]


def read_results(path: str | Path, repair: bool = False) -> list[dict[str, str]]:
    """Rows of a results CSV as dicts of strings.

    A last line without its newline, or with the wrong number of fields, is a truncated write: it is ignored
    with a warning and, with ``repair=True``, removed from the file by an atomic rewrite.
    """
    path = Path(path)
    if not path.exists():
        return []
    text = path.read_text()
    complete, partial = _split_complete(text)
    rows = list(csv.reader(io.StringIO(complete)))
    bad_tail = bool(partial)
    if rows and rows[0] and len(rows) > 1 and len(rows[-1]) != len(rows[0]):
        bad_tail, rows = True, rows[:-1]
    if bad_tail:
        warnings.warn(f"{path}: last line is truncated (a crash while writing?); ignoring it"
                      + (" and removing it from the file" if repair else ""), RuntimeWarning, stacklevel=2)
        if repair:
            buf = io.StringIO()
            csv.writer(buf, lineterminator="\n").writerows(rows)
            tmp = path.with_suffix(path.suffix + ".tmp")
            tmp.write_text(buf.getvalue())
            os.replace(tmp, path)
    if not rows:
        return []
    header, body = rows[0], rows[1:]
    return [dict(zip(header, r)) for r in body]


def _lock_path(path: str | Path) -> Path:
    return Path(path).with_suffix(Path(path).suffix + ".lock")


def _free_lock(path: str | Path, remove: bool) -> bool:
    """Whether nobody holds the lock of the results file ``path`` (True too when there is no lock file); with
    ``remove``, a free lock file is deleted while we hold it."""
    lock = _lock_path(path)
    if not lock.exists():
        return True
    fd = os.open(lock, os.O_RDWR)
    try:
        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except BlockingIOError:
        return False
    else:
        if remove:
            lock.unlink(missing_ok=True)
        return True
    finally:
        os.close(fd)  # closing drops a lock we may have taken


def is_locked(path: str | Path) -> bool:
    """Whether a run holds the lock of the results file ``path`` right now."""
    return not _free_lock(path, remove=False)


def remove_lock(path: str | Path) -> bool:
    """Remove the lock file of a finished run's results file ``path``, so the run folder holds results and no
    machinery; left in place (False) while some process holds it. A finished run is never resumed, so nothing
    locks it again."""
    return _free_lock(path, remove=True)


class ResultsFile:
    """An open results CSV for one run: exclusive lock, schema check, resume keys, append one row at a time."""

    def __init__(self, path: str | Path) -> None:
        self.path = Path(path)
        self.path.parent.mkdir(parents=True, exist_ok=True)
        self._lock_path = _lock_path(self.path)
        self._lock_fd: int | None = None

    def __enter__(self) -> ResultsFile:
        self._lock_fd = os.open(self._lock_path, os.O_CREAT | os.O_RDWR, 0o644)
        try:
            fcntl.flock(self._lock_fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            os.close(self._lock_fd)
            self._lock_fd = None
            raise ResultsError(f"{self.path}: another attnbench run holds its lock ({self._lock_path}); "
                               "wait for it, or --fresh for a new run") from None
        self.rows = read_results(self.path, repair=True)
        if self.path.exists() and self.path.stat().st_size:
            with self.path.open() as fh:
                header = next(csv.reader(fh), [])
            if tuple(header) != COLUMNS:
                missing = sorted(set(COLUMNS) - set(header))
                extra = sorted(set(header) - set(COLUMNS))
                raise ResultsError(
                    f"{self.path}: header does not match results schema v{SCHEMA_VERSION} "
                    f"(missing {missing[:5]}, unexpected {extra[:5]}); it is left untouched — use another --out")
        else:
            self._write_lines([list(COLUMNS)])
        return self

    def __exit__(self, *exc: Any) -> None:
        if self._lock_fd is not None:
            fcntl.flock(self._lock_fd, fcntl.LOCK_UN)
            os.close(self._lock_fd)
            self._lock_fd = None

    def done_keys(self) -> set[str]:
        return {r.get("case_key", "") for r in self.rows}

    def _write_lines(self, lines: Iterable[list[Any]]) -> None:
        buf = io.StringIO()
        csv.writer(buf, lineterminator="\n").writerows(lines)
        with self.path.open("a") as fh:
            fh.write(buf.getvalue())
            fh.flush()
            os.fsync(fh.fileno())

    def append(self, row: dict[str, Any]) -> None:
        """Append one row (unknown keys are an error; missing ones are empty) and flush it to disk."""
        unknown = set(row) - set(COLUMNS)
        if unknown:
            raise KeyError(f"row has columns outside the schema: {sorted(unknown)}")
        row = {**row, "schema_version": SCHEMA_VERSION}
        self._write_lines([[format_value(row.get(c)) for c in COLUMNS]])
        self.rows.append({c: str(format_value(row.get(c))) for c in COLUMNS})

