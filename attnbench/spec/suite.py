"""Suites: declarative TOML files, strictly validated (:mod:`.validate`), expanded into typed cases.

A suite names the attentions (registry name or named configuration + kwargs, optional label) and the axes to sweep.
Cost suites (``kind = "cost"``, the default; :mod:`.cost`) sweep grids × modes × compile; accuracy suites
(``kind = "accuracy"``; :mod:`.training`) sweep tasks × attentions × seeds. Both share the validator, the runner
and the row schema.
"""

from __future__ import annotations

from collections.abc import Callable
from importlib import resources
from pathlib import Path
from typing import Any

from attnbench.spec.cost import load_cost_suite
from attnbench.spec.training_suite import load_training_suite
from attnbench.spec.validate import Checker, Suite, SuiteError, apply_overrides, tomllib

__all__ = ["KINDS", "SUITES_DIR", "default_suites", "load_suite", "packaged_suites", "resolve_suite"]

# Suite kind → loader. A new kind of case adds one entry here and one module beside cost.py / training.py.
KINDS: dict[str, Callable[[dict[str, Any], Checker], Suite]] = {
    "cost": load_cost_suite,
    "accuracy": load_training_suite,
}

# The suites ship inside the package (a checkout's top-level suites/ is a link to this folder: one copy of each file),
# so an installed wheel finds them from any working directory.
SUITES_DIR = Path(str(resources.files("attnbench") / "suites"))


def packaged_suites() -> list[str]:
    """Names of the suites that ship with attnbench (``cpu``, ``smoke``, ...)."""
    return sorted(p.stem for p in SUITES_DIR.glob("*.toml"))


def resolve_suite(path: str | Path) -> Path:
    """``path`` as given when that file exists; else a packaged suite named like it (``smoke``, ``smoke.toml`` or
    ``suites/smoke.toml`` from outside a checkout); else ``path`` unchanged (loading it then says it is missing)."""
    given = Path(path)
    if given.exists():
        return given
    packaged = SUITES_DIR / (given.stem + ".toml")
    return packaged if given.suffix in ("", ".toml") and packaged.is_file() else given


def load_suite(path: str | Path, overrides: dict[str, Any] | None = None) -> Suite:
    """Read, override, validate and expand a suite; raises :class:`SuiteError` with a one-line message."""
    shown = str(path)
    try:
        raw = tomllib.loads(resolve_suite(path).read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise SuiteError(f"{shown}: no such suite file (packaged suites: {', '.join(packaged_suites())})") from None
    except IsADirectoryError:
        raise SuiteError(f"{shown}: is a directory, not a suite file") from None
    except UnicodeDecodeError as exc:
        raise SuiteError(f"{shown}: not a text (UTF-8) file (byte {exc.start}); a suite is a TOML file") from None
    except tomllib.TOMLDecodeError as exc:
        raise SuiteError(f"{shown}: invalid TOML: {exc}") from None
    if not raw:
        raise SuiteError(f"{shown}: the suite is empty; it needs at least grids = [[H, W], ...] (or [[tasks]]) and "
                         'one [[attentions]] table with a name, e.g. name = "full"')
    if overrides:
        raw = apply_overrides(raw, overrides, shown)
    c = Checker(shown)
    kind = c.choice("kind", raw.get("kind", "cost"), tuple(KINDS))
    return KINDS[kind](raw, c)


def default_suites() -> list[str]:
    """This machine's default: ``suites/gpu.toml`` when CUDA works, else ``suites/cpu.toml`` and the quick
    accuracy suite."""
    from attnbench.measure.provenance import resolve_device

    names = ["gpu.toml"] if resolve_device("auto") == "cuda" else ["cpu.toml", "accuracy-quick.toml"]
    return [str(SUITES_DIR / n) for n in names if (SUITES_DIR / n).exists()]
