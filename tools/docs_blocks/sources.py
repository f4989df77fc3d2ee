"""What a generated block reads (the committed results of the checkout) and where it is written (a page).

:class:`Sources` finds runs through :mod:`attnbench.store.layout` (never by parsing folder names here) and loads
each results file once per render. :class:`Page` is what a block function gets: the sources, plus the markdown file
the block sits in, so that links resolve from that file (``README.md`` links ``results/...``, ``docs/results.md``
links ``../results/...``) while the text shown stays the path from the repository root.
"""

from __future__ import annotations

import os
from dataclasses import dataclass, field
from functools import cached_property
from pathlib import Path

import pandas as pd

from attnbench.report.analysis.frame import load_frame
from attnbench.store.layout import newest_run, run_files, same_code_rerun, suite_files

__all__ = ["Page", "Sources"]


@dataclass
class Sources:
    """The checkout at ``root``: its ``results/`` folder, with the results files a render has loaded so far."""

    root: Path
    _frames: dict[Path, pd.DataFrame] = field(default_factory=dict, repr=False)

    @property
    def results(self) -> Path:
        return self.root / "results"

    @property
    def reference_root(self) -> Path:
        return self.results / "reference"

    @property
    def rerun_root(self) -> Path:
        return self.results / "rerun"

    def frame(self, path: Path) -> pd.DataFrame:
        """The rows of one results file (loaded once per render; a copy, so a block cannot change another's)."""
        path = Path(path)
        if path not in self._frames:
            self._frames[path] = load_frame([path])
        return self._frames[path].copy()

    def reference(self, suite: str) -> Path:
        """The newest committed reference run's results file of ``suite``."""
        return newest_run(self.reference_root, suite)

    def rerun(self, run: str | None = None, suite: str = "cpu") -> Path:
        """The committed re-run ``run`` of ``suite`` (default: the newest re-run of the reference's own code)."""
        if run is None:
            return same_code_rerun(self.reference(suite), self.rerun_root)
        found = run_files(self.rerun_root, suite, run)
        if found is None:
            raise FileNotFoundError(f"no re-run {run} of suite {suite} under {self.rerun_root}")
        return found

    def references(self, suite: str) -> list[Path]:
        """Every committed reference run's results file of ``suite``, oldest run first."""
        return suite_files(self.reference_root, suite)

    def rel(self, path: Path) -> str:
        """``path`` from the repository root, as the generated text shows it (and as commands take it)."""
        return Path(path).resolve().relative_to(self.root.resolve()).as_posix()

    @cached_property
    def protocol(self) -> pd.DataFrame:
        """The full-protocol accuracy rows (read once per render; see :mod:`docs_blocks.accuracy`)."""
        from docs_blocks.accuracy import protocol_rows

        return protocol_rows(self)


@dataclass(frozen=True)
class Page:
    """One markdown file that holds generated blocks, and the sources they are generated from."""

    sources: Sources
    file: Path

    def href(self, path: Path) -> str:
        """A link target for ``path``, relative to this page's folder."""
        return Path(os.path.relpath(Path(path).resolve(), self.file.resolve().parent)).as_posix()

    def link(self, path: Path) -> str:
        """``[`results/...`](../results/...)``: the repository path as text, the page-relative path as target."""
        return f"[`{self.sources.rel(path)}`]({self.href(path)})"
