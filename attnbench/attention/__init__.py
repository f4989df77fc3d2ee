"""Attention mechanisms: the contract (``base``), one module per built-in mechanism, optional backends apart.

The registry imports a module when its mechanism is first asked for (:data:`BUILTIN_MODULES`), so a benchmark case
pays only for the imports it needs. Optional mechanisms (``optional/``: xformers, natten) register only when their
package imports; otherwise they are recorded as unavailable with the reason (``attnbench list``).
"""

import pkgutil
from pathlib import Path

from attnbench.attention.base import FAMILIES, GridAttention, QKVAttention

__all__ = ["BUILTIN_MODULES", "CORE_MODULES", "FAMILIES", "OPTIONAL_MODULES", "GridAttention", "QKVAttention"]

# Modules of this package that hold no mechanism: the contract, shared kernels, and test-only layers (``planted``
# registers through a suite's ``imports``, never by default).
_NOT_MECHANISMS = frozenset({"base", "overlapping_windows", "packed_windows", "planted"})


def _modules(package: str, path: list[str]) -> dict[str, str]:
    """Registry name → module for every module of ``package`` (the file is named after the mechanism it
    registers), so a new built-in mechanism is one new file and nothing else to edit."""
    return {m.name: f"{package}.{m.name}" for m in sorted(pkgutil.iter_modules(path), key=lambda m: m.name)
            if not m.ispkg and not m.name.startswith("_") and m.name not in _NOT_MECHANISMS}


# Registry name → module that registers it. Named configurations (``swin_w8``) live in the same modules.
CORE_MODULES: dict[str, str] = _modules(__name__, __path__)
# Imported only on demand: their import can be slow or have side effects (CUDA extensions, compilation).
OPTIONAL_MODULES: dict[str, str] = _modules(f"{__name__}.optional", [str(Path(__path__[0]) / "optional")])
BUILTIN_MODULES: dict[str, str] = {**CORE_MODULES, **OPTIONAL_MODULES}
