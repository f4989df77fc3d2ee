"""attnbench: efficient attention on 2-D grids, measured honestly across resolutions."""

from attnbench.registry import (
    attention_source,
    create_attention,
    get_attention,
    list_attentions,
    register_attention,
    unavailable_attentions,
)

__version__ = "0.1.0"

__all__ = [
    "__version__",
    "attention_source",
    "create_attention",
    "get_attention",
    "list_attentions",
    "register_attention",
    "unavailable_attentions",
]
