"""Name → attention class registry, with plugins discovered through entry points.

Built-in mechanisms register themselves with :func:`register_attention` when :mod:`attnbench.attention` is
imported. Other installed packages add theirs without touching attnbench by declaring, in their
``pyproject.toml``::

    [project.entry-points."attnbench.attention"]
    my_attention = "my_package.module:MyAttention"

The entry points are read lazily, on the first call of :func:`list_attentions`, :func:`get_attention` or
:func:`create_attention`, and cached (:func:`refresh_plugins` reads them again). A plugin that fails to import
gives a :class:`RuntimeWarning` naming it; the others still load (xarray's backend-plugin behaviour, except that
a clash of two different classes under one name is an error here, not a silent pick).
"""

from __future__ import annotations

import difflib
import importlib
import importlib.metadata
import inspect
import re
import threading
import warnings
from collections.abc import Callable, Iterable
from typing import Any, TypeVar

from torch import nn

__all__ = [
    "ENTRY_POINT_GROUP",
    "UnknownAttentionError",
    "attention_source",
    "create_attention",
    "get_attention",
    "list_attentions",
    "load_plugins",
    "mark_unavailable",
    "refresh_plugins",
    "register_attention",
    "unavailable_attentions",
]

ENTRY_POINT_GROUP = "attnbench.attention"
_NAME_RE = re.compile(r"^[a-z][a-z0-9_]*$")

# Built-ins are imported on demand (a benchmark case process imports only the mechanism it runs: timm alone
# costs ~2 s of start-up). ``list_attentions`` imports them all.
_BUILTIN_MODULES: dict[str, str] = {
    name: f"attnbench.attention.{name}"
    for name in ("full", "full_naive", "linear", "swin", "mano", "mano_reference", "full_xformers", "neighborhood")
}

_REGISTRY: dict[str, type[nn.Module]] = {}
_SOURCE: dict[str, str] = {}
_UNAVAILABLE: dict[str, str] = {}
_lock = threading.RLock()
_plugins_loaded = False
_loading_source: str | None = None  # set while a plugin module is being imported

T = TypeVar("T", bound=type)


class UnknownAttentionError(LookupError):
    """Raised for a name that is not registered; the message lists the known names."""


def register_attention(name: str, *, override: bool = False) -> Callable[[T], T]:
    """Class decorator: register an attention class under ``name``.

    Re-registering the same class under the same name is a no-op. A different class under a taken name raises
    ``ValueError`` unless ``override=True``.

    Args:
        name: lower_snake registry name, e.g. ``"swin"``.
        override: replace an existing registration deliberately.
    """
    if not isinstance(name, str) or not _NAME_RE.match(name):
        raise ValueError(f"attention name {name!r} is invalid; expected lower_snake_case matching {_NAME_RE.pattern}")

    def decorator(cls: T) -> T:
        if not (isinstance(cls, type) and issubclass(cls, nn.Module)):
            raise TypeError(f"register_attention({name!r}) expects an nn.Module subclass, got {cls!r}")
        with _lock:
            existing = _REGISTRY.get(name)
            if existing is not None and existing is not cls and not override:
                raise ValueError(
                    f"attention name {name!r} is already registered to {_qualname(existing)} "
                    f"({_SOURCE.get(name, '?')}); cannot register {_qualname(cls)} (pass override=True to replace it)"
                )
            if existing is not cls or override:
                _REGISTRY[name] = cls
                _SOURCE[name] = _loading_source or "builtin"
                _UNAVAILABLE.pop(name, None)
            if cls.__dict__.get("registry_name") is None:  # an alias keeps the first name
                cls.registry_name = name  # type: ignore[attr-defined]
        return cls

    return decorator


def mark_unavailable(name: str, reason: str) -> None:
    """Record that an optional mechanism could not be registered, and why (shown by ``attnbench list``)."""
    with _lock:
        if name not in _REGISTRY:
            _UNAVAILABLE[name] = reason


def _qualname(cls: type) -> str:
    return f"{cls.__module__}.{cls.__qualname__}"


def _ensure_builtins(name: str | None = None) -> None:
    """Import the built-in module of ``name`` (all built-in modules when ``name`` is None)."""
    modules = _BUILTIN_MODULES.values() if name is None else [_BUILTIN_MODULES[name]]
    for module in modules:
        importlib.import_module(module)


def load_plugins(entry_points: Iterable[importlib.metadata.EntryPoint] | None = None) -> None:
    """Load attention plugins from the ``attnbench.attention`` entry-point group (once, unless refreshed).

    Args:
        entry_points: the entry points to load instead of the installed ones (tests pass fakes here).
    """
    global _plugins_loaded, _loading_source
    with _lock:
        if entry_points is None:
            if _plugins_loaded:
                return
            _plugins_loaded = True
            entry_points = importlib.metadata.entry_points(group=ENTRY_POINT_GROUP)
        for ep in entry_points:
            dist = getattr(getattr(ep, "dist", None), "name", None)
            source = f"plugin ({dist})" if dist else f"plugin ({ep.value})"
            previous, _loading_source = _loading_source, source
            try:
                obj = ep.load()
                if isinstance(obj, type) and issubclass(obj, nn.Module):
                    if _REGISTRY.get(ep.name) is not obj:
                        register_attention(ep.name)(obj)
                    _SOURCE[ep.name] = source
                # A module object is fine too: importing it ran its @register_attention decorators.
            except Exception as exc:  # noqa: BLE001 - a broken plugin must not take the others down
                warnings.warn(
                    f"attnbench: plugin {ep.name!r} ({ep.value}) failed to load: {type(exc).__name__}: {exc}",
                    RuntimeWarning,
                    stacklevel=2,
                )
            finally:
                _loading_source = previous


def refresh_plugins() -> None:
    """Forget that plugins were loaded, so the next lookup reads the entry points again."""
    global _plugins_loaded
    with _lock:
        _plugins_loaded = False
    importlib.invalidate_caches()


def _ensure_loaded() -> None:
    _ensure_builtins()
    load_plugins()


def list_attentions() -> list[str]:
    """Sorted names of every registered (available) attention, built-in and plugin."""
    _ensure_loaded()
    return sorted(_REGISTRY)


def unavailable_attentions() -> dict[str, str]:
    """Optional mechanisms that are not registered here, with the reason (e.g. a missing package)."""
    _ensure_loaded()
    return dict(sorted(_UNAVAILABLE.items()))


def attention_source(name: str) -> str:
    """``"builtin"`` or ``"plugin (<distribution>)"``."""
    get_attention(name)
    return _SOURCE[name]


def get_attention(name: str) -> type[nn.Module]:
    """The class registered under ``name``; raises :class:`UnknownAttentionError` listing the known names."""
    if name in _BUILTIN_MODULES:
        _ensure_builtins(name)
    else:
        load_plugins()
    try:
        return _REGISTRY[name]
    except KeyError:
        pass
    _ensure_loaded()
    if name in _UNAVAILABLE:
        raise UnknownAttentionError(f"attention {name!r} is not available here: {_UNAVAILABLE[name]}")
    known = sorted(_REGISTRY)
    close = difflib.get_close_matches(str(name), known, n=1)
    hint = f"; did you mean {close[0]!r}?" if close else ""
    raise UnknownAttentionError(f"unknown attention {name!r}{hint} Known: {', '.join(known)}")


def allowed_kwargs(cls: type) -> list[str] | None:
    """Constructor keyword names of ``cls``; ``None`` when it accepts ``**kwargs``."""
    params = inspect.signature(cls.__init__).parameters
    if any(p.kind is inspect.Parameter.VAR_KEYWORD for p in params.values()):
        return None
    return [n for n, p in params.items() if n != "self" and p.kind is not inspect.Parameter.VAR_POSITIONAL]


def create_attention(name: str, dim: int, heads: int, **kwargs: Any) -> nn.Module:
    """Build the attention registered under ``name``.

    Keyword arguments whose value is ``None`` are dropped so the class default applies (timm's convention). An
    unknown keyword raises ``ValueError`` naming it, the allowed ones and the closest match.

    Args:
        name: registry name (see :func:`list_attentions`).
        dim: channels C of the grid.
        heads: number of attention heads.
        **kwargs: mechanism-specific options (window, stride, rate, ...).
    """
    cls = get_attention(name)
    kwargs = {k: v for k, v in kwargs.items() if v is not None}
    allowed = allowed_kwargs(cls)
    if allowed is not None:
        for key in kwargs:
            if key not in allowed:
                close = difflib.get_close_matches(key, allowed, n=1)
                hint = f"; did you mean {close[0]!r}?" if close else ""
                raise ValueError(
                    f"{name}: unknown parameter {key!r}{hint} Allowed: {', '.join(a for a in allowed if a not in ('dim', 'heads'))}"
                )
    return cls(dim=dim, heads=heads, **kwargs)
