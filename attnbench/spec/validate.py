"""The one validator every suite kind shares: ``--set`` overrides, the keys common to all suites (declared in
:mod:`.settings`, checked by :mod:`.checker`) and the ``[[attentions]]`` table.

Any unknown key, wrong type or impossible value stops before anything runs with one line that names the file and
the key::

    suites/x.toml: attentions[2].kwargs: swin: window=-1 is invalid; expected an integer >= 1
"""

from __future__ import annotations

import json
import re
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from attnbench.spec.checker import Checker, SuiteError, read, type_name
from attnbench.spec.settings import COMMON_KEYS, DEVICES, DTYPES, SuiteConfig

if sys.version_info >= (3, 11):
    import tomllib
else:  # pragma: no cover - Python 3.10
    import tomli as tomllib

__all__ = ["DEVICES", "DTYPES", "AttentionSpec", "Checker", "Suite", "SuiteError", "COMMON_KEYS", "apply_overrides",
           "attention_specs", "common_config", "discovered", "resolve_device_for", "resolve_threads", "tomllib",
           "type_name"]


@dataclass(frozen=True)
class AttentionSpec:
    name: str
    label: str
    kwargs: dict[str, Any]
    grids: tuple[tuple[int, int], ...] | None = None  # per-attention override of the suite's grids
    compile: bool = True  # false: this mechanism stays out of a cost suite's compiled series
    # accuracy suites: the model's width for this entry (a narrower MANO matches the others' parameters while
    # keeping the authors' layer); None: the task's width
    dim: int | None = None


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
    replicates: int = 1  # processes per case, one per round (cost suites)
    order_seed: int = 0  # seeds each round's shuffled case order


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
                    where = ".".join(map(str, parts[:i + 1]))
                    raise SuiteError(f"{path}: --set {dotted}: no element {where}") from None
        last = parts[-1] if parts else None
        if last is None:
            raise SuiteError(f"{path}: --set {dotted!r}: empty key")
        try:
            target[last] = value
        except (IndexError, TypeError):
            raise SuiteError(f"{path}: --set {dotted}: no element {dotted}") from None
    return data


# ------------------------------------------------------------------------------------- shared sections
# The keys of one [[attentions]] table.
ATTENTION_KEYS = {"name", "label", "kwargs", "grids", "compile", "dim"}


def common_config(c: Checker, raw: dict[str, Any]) -> SuiteConfig:
    """The keys every suite kind shares about itself and its layers (name, device, dtype, threads, dim, ...);
    ``name`` defaults to the file's stem."""
    return SuiteConfig(**read(SuiteConfig, c, raw, defaults={"name": Path(c.path).stem}))


def _families(c: Checker, raw: dict[str, Any]) -> set[str] | None:
    """The suite's ``families`` (None: every family); each must be one a mechanism declares."""
    if "families" not in raw:
        return None
    from attnbench.attention.base import FAMILIES
    from attnbench.registry import get_attention, list_attentions

    known = set(FAMILIES) | {getattr(get_attention(n), "family", "other") for n in list_attentions()}
    chosen = set()
    for i, family in enumerate(c.list_("families", raw["families"])):
        family = c.str_(f"families[{i}]", family)
        if family not in known:
            raise c.fail(f"families[{i}]", f"unknown family {family!r}; expected one of {', '.join(sorted(known))}")
        chosen.add(family)
    return chosen


def discovered(c: Checker, raw: dict[str, Any]) -> list[tuple[str, Any]]:
    """The suite's attention entries as ``(where, table)``, with patterns expanded (timm's ``list_models("swin*")``,
    asv's discovery): a string in ``attentions`` (``"*"``, ``"swin*"``, ``"mano"``) selects every registered
    mechanism whose name matches it — built-in or plugin — narrowed to the suite's ``families`` and minus its
    ``exclude`` patterns; each becomes the table ``{name = <its benchmark configuration>, label = <mechanism>}``
    (:attr:`~attnbench.attention.base.GridAttention.benchmark`). ``families`` alone means ``attentions = ["*"]``.
    Tables are kept as written, and a pattern never adds a mechanism a table already labels. So a new mechanism,
    built-in or plugin, is swept by a suite of patterns without editing it."""
    from fnmatch import fnmatchcase

    from attnbench.registry import get_attention, list_attentions

    families = _families(c, raw)
    entries = list(c.list_("attentions", raw.get("attentions", ["*"] if families is not None else []),
                           nonempty=False))
    excluded = [c.str_(f"exclude[{i}]", p)
                for i, p in enumerate(c.list_("exclude", raw.get("exclude", []), nonempty=False))]
    labels = {e.get("label", e.get("name")) for e in entries if isinstance(e, dict)}
    out: list[tuple[str, Any]] = []
    for i, entry in enumerate(entries):
        where = f"attentions[{i}]"
        if not isinstance(entry, str):
            out.append((where, entry))
            continue
        names = [n for n in list_attentions() if fnmatchcase(n, entry)]
        if not names:
            raise c.fail(where, f"pattern {entry!r} matches no registered mechanism (see attnbench list)")
        for name in names:
            cls = get_attention(name)
            if (families is not None and getattr(cls, "family", "other") not in families
                    or any(fnmatchcase(name, p) for p in excluded) or name in labels):
                continue
            labels.add(name)
            out.append((f"{where} ({name})", {"name": getattr(cls, "benchmark", None) or name, "label": name}))
    return out


def attention_specs(c: Checker, raw: dict[str, Any], dim: int, heads: int,
                    probe_grid: tuple[int, int], widths: bool = False) -> tuple[AttentionSpec, ...]:
    """Validate the attentions (:func:`discovered`): known names, distinct labels, constructor arguments
    accepted."""
    from attnbench.registry import UnknownAttentionError, build_for_grid

    specs: list[AttentionSpec] = []
    entries = discovered(c, raw)
    if not entries:
        raise c.fail("attentions", 'no mechanism to run: add at least one [[attentions]] table, e.g. name = "full", '
                                   'or a pattern, attentions = ["*"] (see attnbench list)')
    for where, entry in entries:
        if not isinstance(entry, dict):
            raise c.fail(where, f"expected a table with name/label/kwargs or a name pattern, got {entry!r}")
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
        width = None
        if "dim" in entry:
            if not widths:
                raise c.fail(f"{where}.dim", "only an accuracy suite sets one mechanism's width; a cost suite sets "
                                             "dim for every layer")
            width = c.int_(f"{where}.dim", entry["dim"], 1)
            if width % heads:
                raise c.fail(f"{where}.dim", f"{width} is not a multiple of heads = {heads}")
        try:
            build_for_grid(name, width or dim, heads, probe[0], probe[1], kwargs)
        except UnknownAttentionError as exc:
            raise c.fail(f"{where}.name", str(exc)) from None
        except (ValueError, TypeError) as exc:
            raise c.fail(f"{where}.kwargs", str(exc)) from None
        if any(s.label == label for s in specs):
            raise c.fail(f"{where}.label", f"duplicate label {label!r}; give each entry a distinct label")
        compiled = c.bool_(f"{where}.compile", entry.get("compile", True))
        specs.append(AttentionSpec(name, label, dict(kwargs), grids, compiled, width))
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
