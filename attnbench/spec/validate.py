"""The one validator every suite kind shares: typed checks with one-line errors, ``--set`` overrides, the keys
common to all suites and the ``[[attentions]]`` table.

Any unknown key, wrong type or impossible value stops before anything runs with one line that names the file and
the key::

    suites/x.toml: attentions[2].kwargs: swin: window=-1 is invalid; expected an integer >= 1
"""

from __future__ import annotations

import difflib
import json
import math
import re
import sys
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

if sys.version_info >= (3, 11):
    import tomllib
else:  # pragma: no cover - Python 3.10
    import tomli as tomllib

__all__ = ["DEVICES", "DTYPES", "AttentionSpec", "Checker", "Suite", "SuiteError", "COMMON_KEYS", "apply_overrides",
           "attention_specs", "common_config", "resolve_device_for", "resolve_threads", "tomllib", "type_name"]

DTYPES = ("float32", "bfloat16", "float16")
DEVICES = ("auto", "cpu", "cuda")


class SuiteError(ValueError):
    """An invalid suite; ``str()`` is the one-line message shown to the user (exit code 2)."""


@dataclass(frozen=True)
class AttentionSpec:
    name: str
    label: str
    kwargs: dict[str, Any]
    grids: tuple[tuple[int, int], ...] | None = None  # per-attention override of the suite's grids
    compile: bool = True  # false: this mechanism stays out of a cost suite's compiled series


@dataclass(frozen=True)
class Suite:
    """A validated suite: its settings and its expanded cases (every case knows how to run itself)."""

    path: str
    name: str
    kind: str
    description: str
    expected_duration: str
    device: str
    attentions: tuple[AttentionSpec, ...]
    cases: tuple[Any, ...]  # spec.case.Case subclasses


# ----------------------------------------------------------------------------------------------- helpers
def type_name(value: Any) -> str:
    return {bool: "a boolean", int: "an integer", float: "a float", str: "a string", list: "an array",
            dict: "a table"}.get(type(value), type(value).__name__)


class Checker:
    """Typed checks of raw TOML values; every failure is a :class:`SuiteError` naming the file and the key."""

    def __init__(self, path: str) -> None:
        self.path = path

    def fail(self, where: str, message: str) -> SuiteError:
        return SuiteError(f"{self.path}: {where}: {message}")

    def int_(self, where: str, value: Any, minimum: int) -> int:
        if isinstance(value, bool) or not isinstance(value, int) or value < minimum:
            raise self.fail(where, f"expected an integer >= {minimum}, got {value!r}")
        return value

    def float_(self, where: str, value: Any, positive: bool = True) -> float:
        if (isinstance(value, bool) or not isinstance(value, (int, float)) or not math.isfinite(value)
                or (positive and value <= 0) or value < 0):
            raise self.fail(where, f"expected a finite number {'> 0' if positive else '>= 0'}, got {value!r}")
        return float(value)

    def bool_(self, where: str, value: Any) -> bool:
        if not isinstance(value, bool):
            raise self.fail(where, f"expected true or false, got {value!r}")
        return value

    def str_(self, where: str, value: Any) -> str:
        if not isinstance(value, str):
            raise self.fail(where, f"expected a string, got {type_name(value)} {value!r}")
        return value

    def choice(self, where: str, value: Any, allowed: tuple[str, ...]) -> str:
        if value not in allowed:
            raise self.fail(where, f"expected one of {', '.join(allowed)}, got {value!r}")
        return value

    def list_(self, where: str, value: Any, nonempty: bool = True) -> list[Any]:
        if not isinstance(value, list):
            raise self.fail(where, f"expected an array, got {type_name(value)} {value!r}")
        if nonempty and not value:
            raise self.fail(where, "expected a non-empty array")
        return value

    def grids(self, where: str, value: Any) -> tuple[tuple[int, int], ...]:
        out = []
        for i, g in enumerate(self.list_(where, value)):
            if (not isinstance(g, list) or len(g) != 2
                    or any(isinstance(v, bool) or not isinstance(v, int) or v < 1 for v in g)):
                raise self.fail(f"{where}[{i}]", f"expected [H, W], two integers >= 1, got {g!r}")
            out.append((g[0], g[1]))
        if len(set(out)) != len(out):
            raise self.fail(where, f"duplicate grid in {value!r}")
        return tuple(sorted(out, key=lambda hw: (hw[0] * hw[1], hw)))

    def unknown_keys(self, where: str, table: dict[str, Any], allowed: set[str]) -> None:
        for key in table:
            if key not in allowed:
                close = difflib.get_close_matches(key, sorted(allowed), n=1)
                hint = f" (did you mean {close[0]!r}?)" if close else ""
                prefix = f"{where}." if where else ""
                raise self.fail(f"{prefix}{key}", f"unknown key{hint}; allowed: {', '.join(sorted(allowed))}")


# -------------------------------------------------------------------------------------------- overrides
_SEGMENT = re.compile(r"([^.\[\]]+)|\[(\d+)\]")


def apply_overrides(raw: dict[str, Any], overrides: dict[str, Any], path: str) -> dict[str, Any]:
    """``{"batch": 2, "attentions[0].kwargs.window": 4}`` applied to the raw TOML table (a copy)."""
    data = json.loads(json.dumps(raw))
    for dotted, value in overrides.items():
        parts: list[str | int] = [int(m.group(2)) if m.group(2) else m.group(1) for m in _SEGMENT.finditer(dotted)]
        parts = [int(p) if isinstance(p, str) and p.isdigit() else p for p in parts]
        target: Any = data
        for i, part in enumerate(parts[:-1]):
            try:
                target = target[part]
            except (KeyError, IndexError, TypeError):
                if isinstance(part, str) and isinstance(target, dict):
                    target = target.setdefault(part, {})
                else:
                    raise SuiteError(f"{path}: --set {dotted}: no element {'.'.join(map(str, parts[:i + 1]))}") from None
        last = parts[-1] if parts else None
        if last is None:
            raise SuiteError(f"{path}: --set {dotted!r}: empty key")
        try:
            target[last] = value
        except (IndexError, TypeError):
            raise SuiteError(f"{path}: --set {dotted}: no element {dotted}") from None
    return data


# ------------------------------------------------------------------------------------- shared sections
# Keys every suite kind accepts (each kind adds its own).
COMMON_KEYS = {
    "name", "kind", "description", "expected_duration", "device", "dtype", "threads", "timeout", "tf32",
    "memory_limit_gib", "imports", "attentions",
}
ATTENTION_KEYS = {"name", "label", "kwargs", "grids", "compile"}


def _import_modules(c: Checker, raw: dict[str, Any]) -> tuple[str, ...]:
    import importlib

    modules = tuple(c.str_(f"imports[{i}]", m) for i, m in enumerate(c.list_("imports", raw.get("imports", []), False)))
    for m in modules:  # importing registers plugin attentions that are not installed as packages
        try:
            importlib.import_module(m)
        except Exception as exc:  # noqa: BLE001
            raise c.fail("imports", f"cannot import {m!r}: {type(exc).__name__}: {exc}") from None
    return modules


def common_config(c: Checker, raw: dict[str, Any]) -> dict[str, Any]:
    """Keys shared by cost and accuracy suites (device, dtype, threads, dim, heads, ...)."""
    name = c.str_("name", raw.get("name", Path(c.path).stem))
    if not re.fullmatch(r"[A-Za-z0-9_.-]+", name):
        raise c.fail("name", f"expected letters, digits, '.', '_' or '-', got {name!r}")
    threads = raw.get("threads", 1)
    if threads != "all":
        c.int_("threads", threads, 1)
    return {
        "name": name,
        "description": c.str_("description", raw.get("description", "")),
        "expected_duration": c.str_("expected_duration", raw.get("expected_duration", "")),
        "device": c.choice("device", raw.get("device", "auto"), DEVICES),
        "dtype": c.choice("dtype", raw.get("dtype", "float32"), DTYPES),
        "dim": c.int_("dim", raw.get("dim", 64), 1),
        "heads": c.int_("heads", raw.get("heads", 4), 1),
        "threads": threads,
        "timeout": c.float_("timeout", raw.get("timeout", 300)),
        "tf32": c.bool_("tf32", raw.get("tf32", False)),
        "memory_limit_gib": (c.float_("memory_limit_gib", raw["memory_limit_gib"])
                             if "memory_limit_gib" in raw else None),
        "imports": _import_modules(c, raw),
    }


def attention_specs(c: Checker, raw: dict[str, Any], dim: int, heads: int,
                    probe_grid: tuple[int, int]) -> tuple[AttentionSpec, ...]:
    """Validate ``[[attentions]]``: known names, distinct labels, constructor arguments accepted."""
    from attnbench.registry import UnknownAttentionError, build_for_grid

    specs: list[AttentionSpec] = []
    if not raw.get("attentions"):
        raise c.fail("attentions", 'no mechanism to run: add at least one [[attentions]] table, e.g. name = "full" '
                                   "(see attnbench list)")
    for i, entry in enumerate(c.list_("attentions", raw.get("attentions"))):
        where = f"attentions[{i}]"
        if not isinstance(entry, dict):
            raise c.fail(where, f"expected a table with name/label/kwargs, got {entry!r}")
        c.unknown_keys(where, entry, ATTENTION_KEYS)
        if "name" not in entry:
            raise c.fail(f"{where}.name", "missing")
        name = c.str_(f"{where}.name", entry["name"])
        label = c.str_(f"{where}.label", entry.get("label", name))
        kwargs = entry.get("kwargs", {})
        if not isinstance(kwargs, dict):
            raise c.fail(f"{where}.kwargs", f"expected a table, got {type_name(kwargs)} {kwargs!r}")
        grids = c.grids(f"{where}.grids", entry["grids"]) if "grids" in entry else None
        probe = grids[0] if grids else probe_grid
        try:
            build_for_grid(name, dim, heads, probe[0], probe[1], kwargs)
        except UnknownAttentionError as exc:
            raise c.fail(f"{where}.name", str(exc)) from None
        except (ValueError, TypeError) as exc:
            raise c.fail(f"{where}.kwargs", str(exc)) from None
        if any(s.label == label for s in specs):
            raise c.fail(f"{where}.label", f"duplicate label {label!r}; give each entry a distinct label")
        compiled = c.bool_(f"{where}.compile", entry.get("compile", True))
        specs.append(AttentionSpec(name, label, dict(kwargs), grids, compiled))
    return tuple(specs)


def resolve_device_for(c: Checker, device: str) -> str:
    """``auto`` → this machine's device; ``cuda`` where none is usable is a suite error."""
    from attnbench.measure.provenance import resolve_device

    resolved = resolve_device(device)
    if resolved == "cuda":
        import torch

        if not torch.cuda.is_available():
            raise c.fail("device", 'cuda requested but no CUDA device is usable here; use device = "auto" or "cpu" '
                                   "(--set device=cpu)")
    return resolved


def resolve_threads(threads: int | str) -> int:
    """``"all"`` → the CPU count."""
    import os

    return (os.cpu_count() or 1) if threads == "all" else int(threads)
