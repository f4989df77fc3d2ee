"""Typed checks of raw TOML values, and the reading of a settings dataclass from a TOML table.

Every failure is a :class:`SuiteError` whose ``str()`` is one line naming the file and the key, so the command
line can show it as is (exit code 2) and the API can raise it as is.

A settings dataclass declares its keys once: each field is a key (its name, type and default), and
:func:`setting` attaches the check its TOML value must pass. :func:`keys_of` derives the allowed keys from the
fields and :func:`read` validates a table against them, so no list of keys is written twice.
"""

from __future__ import annotations

import dataclasses
import difflib
import math
from collections.abc import Callable, Mapping
from typing import Any

__all__ = ["Check", "Checker", "SuiteError", "boolean", "keys_of", "number", "integer", "one_of", "read", "setting",
           "text", "type_name"]


class SuiteError(ValueError):
    """An invalid suite; ``str()`` is the one-line message shown to the user (exit code 2)."""


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

    def unknown_keys(self, where: str, table: Mapping[str, Any], allowed: set[str]) -> None:
        for key in table:
            if key not in allowed:
                close = difflib.get_close_matches(key, sorted(allowed), n=1)
                hint = f" (did you mean {close[0]!r}?)" if close else ""
                prefix = f"{where}." if where else ""
                raise self.fail(f"{prefix}{key}", f"unknown key{hint}; allowed: {', '.join(sorted(allowed))}")


# A check validates one raw value at a key and returns the value to keep (``float_`` turns 1 into 1.0).
Check = Callable[[Checker, str, Any], Any]


def integer(minimum: int) -> Check:
    return lambda c, where, value: c.int_(where, value, minimum)


def number(positive: bool = True) -> Check:
    """A finite number, > 0 (``positive``) or >= 0."""
    return lambda c, where, value: c.float_(where, value, positive)


def boolean() -> Check:
    return lambda c, where, value: c.bool_(where, value)


def text() -> Check:
    return lambda c, where, value: c.str_(where, value)


def one_of(*allowed: str) -> Check:
    return lambda c, where, value: c.choice(where, value, allowed)


def setting(default: Any = dataclasses.MISSING, check: Check | None = None, *, alias: str | None = None,
            factory: Callable[[], Any] | None = None) -> Any:
    """A field that is a TOML key: its default, the check its value must pass (None: the loader validates it,
    because its check needs other keys), and an older name the key is still read under (``alias``)."""
    metadata = {"check": check, "alias": alias}
    if factory is not None:
        return dataclasses.field(default_factory=factory, metadata=metadata)
    return dataclasses.field(default=default, metadata=metadata)


def keys_of(*classes: type) -> set[str]:
    """The TOML keys the settings dataclasses declare: every field's name and alias."""
    keys = set()
    for cls in classes:
        for f in dataclasses.fields(cls):
            keys.add(f.name)
            if f.metadata.get("alias"):
                keys.add(f.metadata["alias"])
    return keys


def read(cls: type, c: Checker, table: Mapping[str, Any], prefix: str = "", *,
         defaults: Mapping[str, Any] | None = None, coerce: bool = True) -> dict[str, Any]:
    """The values of the keys ``cls`` declares with a check, in field order: from ``table`` or ``defaults``
    (both checked), else the field's default (valid as declared). A field without a default is required: its
    check receives ``None`` and says what is missing.

    ``prefix`` names the table in messages (``tasks[0].``). ``coerce=False`` checks a value but keeps it as
    written: a task's override of a suite default stays an int where the TOML says ``2``, because the case's
    configuration id hashes the value and must not change for results already measured."""
    defaults = defaults or {}
    out: dict[str, Any] = {}
    for f in dataclasses.fields(cls):
        check = f.metadata.get("check")
        if check is None:
            continue
        alias = f.metadata.get("alias")
        name = alias if alias and f.name not in table and alias in table else f.name
        if name in table:
            value = table[name]
        elif f.name in defaults:
            value = defaults[f.name]
        elif f.default is not dataclasses.MISSING:
            out[f.name] = f.default
            continue
        elif f.default_factory is not dataclasses.MISSING:
            out[f.name] = f.default_factory()
            continue
        else:
            value = None
        checked = check(c, f"{prefix}{name}", value)
        out[f.name] = checked if coerce else value
    return out
