"""Attention mechanisms: the contract (``base``), one module per built-in mechanism, optional backends apart.

The registry imports a module when its mechanism is first asked for (:data:`BUILTIN_MODULES`), so a benchmark case
pays only for the imports it needs. Optional mechanisms (``optional/``: xformers, natten) register only when their
package imports; otherwise they are recorded as unavailable with the reason (``attnbench list``).
"""

from attnbench.attention.base import GridAttention, QKVAttention

__all__ = ["BUILTIN_MODULES", "CORE_MODULES", "OPTIONAL_MODULES", "GridAttention", "QKVAttention"]

# Registry name → module that registers it. Named configurations (``swin_w8``) live in the same modules.
CORE_MODULES: dict[str, str] = {
    name: f"attnbench.attention.{name}" for name in ("full", "full_naive", "linear", "swin", "mano", "mano_reference")
}
# Imported only on demand: their import can be slow or have side effects (CUDA extensions, compilation).
OPTIONAL_MODULES: dict[str, str] = {
    name: f"attnbench.attention.optional.{name}" for name in ("full_xformers", "neighborhood")
}
BUILTIN_MODULES: dict[str, str] = {**CORE_MODULES, **OPTIONAL_MODULES}
