"""Name → attention class registry, with plugins discovered through entry points.

Built-in mechanisms register themselves with :func:`register_attention` when :mod:`attnbench.attention` is
imported. Other installed packages add theirs without touching attnbench by declaring, in their
``pyproject.toml``::

    [project.entry-points."attnbench.attention"]
    my_attention = "my_package.module:MyAttention"

Named configurations (timm-style) bind a mechanism to options: ``register_config("swin_w8", "swin", window=8)``
makes ``create_attention("swin_w8", dim, heads)`` a Swin layer with window 8, usable in suites and on the CLI;
options given by the caller override the configuration's. The registry also owns construction for a grid
(:func:`build_for_grid`) and the tolerant capability questions a harness asks of any module, plugins included
(:func:`capability_reasons`, :func:`receptive_field`).

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

import torch
from torch import nn

from attnbench.attention import BUILTIN_MODULES

__all__ = [
    "ENTRY_POINT_GROUP",
    "UnknownAttentionError",
    "attention_source",
    "build_for_grid",
    "capability_reasons",
    "cost_model",
    "create_attention",
    "flop_counter_kwargs",
    "get_attention",
    "list_attentions",
    "list_configs",
    "load_plugins",
    "mark_unavailable",
    "receptive_field",
    "refresh_plugins",
    "register_attention",
    "register_config",
    "resolve_config",
    "unavailable_attentions",
]

ENTRY_POINT_GROUP = "attnbench.attention"
_NAME_RE = re.compile(r"^[a-z][a-z0-9_]*$")

# Built-ins are imported on demand (a benchmark case process imports only the mechanism it runs: timm alone
# costs ~2 s of start-up). ``list_attentions`` imports them all.
_REGISTRY: dict[str, type[nn.Module]] = {}
_CONFIGS: dict[str, tuple[str, dict[str, Any]]] = {}
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


def register_config(name: str, attention: str, **kwargs: Any) -> None:
    """Register ``name`` as ``attention`` with fixed options (timm's named variants), e.g. ``swin_w8``.

    The name must not be a mechanism's; re-registering the same binding is a no-op, a different one an error.
    """
    if not _NAME_RE.match(name):
        raise ValueError(f"configuration name {name!r} is invalid; expected lower_snake_case matching "
                         f"{_NAME_RE.pattern}")
    with _lock:
        if name in _REGISTRY:
            raise ValueError(f"configuration name {name!r} is already a registered attention")
        if name in _CONFIGS and _CONFIGS[name] != (attention, kwargs):
            raise ValueError(f"configuration {name!r} is already registered as {_CONFIGS[name]}")
        _CONFIGS[name] = (attention, dict(kwargs))


def list_configs() -> dict[str, tuple[str, dict[str, Any]]]:
    """Named configurations: ``{name: (attention, options)}``, sorted by name."""
    _ensure_loaded()
    return {k: (a, dict(kw)) for k, (a, kw) in sorted(_CONFIGS.items())}


def resolve_config(name: str) -> tuple[str, dict[str, Any]]:
    """``(attention, options)`` for a mechanism or a named configuration (options empty for a mechanism)."""
    get_attention(name)
    if name in _CONFIGS:
        attention, kwargs = _CONFIGS[name]
        return attention, dict(kwargs)
    return name, {}


def mark_unavailable(name: str, reason: str) -> None:
    """Record that an optional mechanism could not be registered, and why (shown by ``attnbench list``)."""
    with _lock:
        if name not in _REGISTRY:
            _UNAVAILABLE[name] = reason


def _qualname(cls: type) -> str:
    return f"{cls.__module__}.{cls.__qualname__}"


def _ensure_builtins(name: str | None = None) -> None:
    """Import the built-in module of ``name`` (all built-in modules when ``name`` is None)."""
    modules = BUILTIN_MODULES.values() if name is None else [BUILTIN_MODULES[name]]
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
    """The class registered under ``name`` (a mechanism or a named configuration of one); raises
    :class:`UnknownAttentionError` listing the known names."""
    if name in BUILTIN_MODULES:
        _ensure_builtins(name)
    else:
        load_plugins()
    found = _lookup(name)
    if found is not None:
        return found
    _ensure_loaded()  # a named configuration lives in its mechanism's module
    found = _lookup(name)
    if found is not None:
        return found
    if name in _UNAVAILABLE:
        raise UnknownAttentionError(f"attention {name!r} is not available here: {_UNAVAILABLE[name]}")
    known = sorted(_REGISTRY)
    close = difflib.get_close_matches(str(name), known + sorted(_CONFIGS), n=1)
    hint = f"; did you mean {close[0]!r}?" if close else ""
    raise UnknownAttentionError(f"unknown attention {name!r}{hint} Known: {', '.join(known)}")


def flop_counter_kwargs(name: str) -> dict[str, Any]:
    """Options under which every FLOP of mechanism (or configuration) ``name`` runs as an operation torch's FLOP
    counter sees (``flop_counter_kwargs`` on the class; empty for most): what a FLOP count builds it with."""
    return dict(getattr(get_attention(name), "flop_counter_kwargs", {}))


def _lookup(name: str) -> type[nn.Module] | None:
    if name in _REGISTRY:
        return _REGISTRY[name]
    if name in _CONFIGS:
        return _REGISTRY.get(_CONFIGS[name][0])
    return None


def allowed_kwargs(cls: type) -> list[str] | None:
    """Constructor keyword names of ``cls``; ``None`` when it accepts ``**kwargs``."""
    params = inspect.signature(cls.__init__).parameters  # type: ignore[misc]  # the class's own, read not called
    if any(p.kind is inspect.Parameter.VAR_KEYWORD for p in params.values()):
        return None
    return [n for n, p in params.items() if n != "self" and p.kind is not inspect.Parameter.VAR_POSITIONAL]


def create_attention(name: str, dim: int, heads: int, **kwargs: Any) -> nn.Module:
    """Build the attention registered under ``name``.

    Keyword arguments whose value is ``None`` are dropped so the class default applies (timm's convention). An
    unknown keyword raises ``ValueError`` naming it, the allowed ones and the closest match.

    Args:
        name: registry name or named configuration (see :func:`list_attentions`, :func:`list_configs`).
        dim: channels C of the grid.
        heads: number of attention heads.
        **kwargs: mechanism-specific options (window, stride, rate, ...); they override a configuration's.
    """
    cls = get_attention(name)
    attention, defaults = resolve_config(name)
    name = attention
    kwargs = {k: v for k, v in {**defaults, **kwargs}.items() if v is not None}
    allowed = allowed_kwargs(cls)
    if allowed is not None:
        for key in kwargs:
            if key not in allowed:
                close = difflib.get_close_matches(key, allowed, n=1)
                hint = f"; did you mean {close[0]!r}?" if close else ""
                raise ValueError(
                    f"{name}: unknown parameter {key!r}{hint} Allowed: "
                    f"{', '.join(a for a in allowed if a not in ('dim', 'heads'))}"
                )
    return cls(dim=dim, heads=heads, **kwargs)


def build_for_grid(name: str, dim: int, heads: int, height: int, width: int, kwargs: dict[str, Any] | None = None,
                   *, block: int = 0, seed: int | None = 0, device: str = "cpu") -> nn.Module:
    """An instance of ``name`` for a ``height × width`` grid, in eval mode on ``device``.

    Options, later ones winning: the class's ``grid_kwargs(height, width)`` (e.g. a fixed ``image_size``), the named
    configuration's, the caller's ``kwargs``; then the class's ``block_kwargs(block, ...)`` for the ``block``-th
    layer of a stack (Swin alternates its shift). ``seed`` re-seeds torch first (``None`` leaves the global
    generator alone, e.g. inside a model).
    """
    cls = get_attention(name)
    _, defaults = resolve_config(name)
    grid_kwargs = getattr(cls, "grid_kwargs", None)
    merged = {**(grid_kwargs(height, width) if grid_kwargs else {}), **defaults, **(kwargs or {})}
    block_kwargs = getattr(cls, "block_kwargs", None)
    if block_kwargs is not None:
        merged = block_kwargs(block, merged)
    if seed is not None:
        torch.manual_seed(seed)
    return create_attention(name, dim=dim, heads=heads, **merged).to(device).eval()


def capability_reasons(module: nn.Module, height: int, width: int, device: str = "cpu",
                       dtype: torch.dtype = torch.float32, backward: bool = False) -> list[str]:
    """Why ``module`` cannot run at a grid (empty: it can), tolerant of plugins that lack ``not_supported_reasons``
    or its ``backward`` keyword (a bare ``nn.Module`` is assumed to run everywhere)."""
    fn = getattr(module, "not_supported_reasons", None)
    if fn is None:
        return []
    try:
        return list(fn(height, width, device, dtype, backward=backward))
    except TypeError:
        return list(fn(height, width, device, dtype))


def cost_model(module: nn.Module, batch: int, height: int, width: int, dim: int, mode: str = "fwd",
               element_size: int = 4) -> tuple[int | None, int | None]:
    """``(flops, bytes)`` of one call from the mechanism's own formulas (``GridAttention.flops`` /
    ``bytes_moved``); ``None`` for what a plugin does not declare."""
    flops = getattr(module, "flops", None)
    moved = getattr(module, "bytes_moved", None)
    return (flops(batch, height, width, mode) if flops else None,
            moved(batch, height, width, dim, mode, element_size) if moved else None)


def receptive_field(module: nn.Module, height: int, width: int) -> tuple[int, int]:
    """Rows and columns one layer of ``module`` reaches at a grid; a plugin without the hook counts as global."""
    fn = getattr(module, "receptive_field", None)
    return tuple(fn(height, width)) if fn is not None else (height, width)
