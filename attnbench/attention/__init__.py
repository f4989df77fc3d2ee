"""Built-in attention mechanisms, one module each.

The registry imports a module when its mechanism is first asked for (``attnbench.registry._BUILTIN_MODULES``), so
a benchmark case pays only for the imports it needs. Optional mechanisms (xformers, natten) register only when
their package imports; otherwise they are recorded as unavailable with the reason (``attnbench list``).
"""

from attnbench.attention.base import GridAttention, QKVAttention

__all__ = ["GridAttention", "QKVAttention"]
