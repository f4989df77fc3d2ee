"""Built-in attention mechanisms; importing this package registers them.

Optional mechanisms (xformers, natten) register only when their package imports; otherwise they are recorded
as unavailable with the reason, which ``attnbench list`` shows.
"""

from attnbench.attention import full, full_naive, linear, mano, mano_reference, swin  # noqa: F401
from attnbench.attention import full_xformers, neighborhood  # noqa: F401  (optional; register if importable)
from attnbench.attention.base import GridAttention, QKVAttention

__all__ = ["GridAttention", "QKVAttention"]
