"""Blocks read from the registry rather than the results: the built-in mechanisms by family and their named
configurations (so the lists on the mechanisms page cannot miss one)."""

from __future__ import annotations

from attnbench.attention.base import FAMILIES
from attnbench.registry import UnknownAttentionError, attention_source, get_attention, list_attentions, list_configs
from attnbench.report.render.markdown import markdown_table
from docs_blocks.sources import Page

__all__ = ["BLOCKS"]


def named_configs(page: Page) -> str:
    """The named configurations of the built-in mechanisms (plugins' own are left out: they vary by environment)."""
    rows = []
    for name, (attention, kwargs) in list_configs().items():
        try:
            builtin = attention_source(attention) == "builtin"
        except UnknownAttentionError:  # an optional mechanism that cannot import here
            builtin = False
        if builtin:
            rows.append([f"`{name}`", f"`{attention}`", ", ".join(f"{k}={v!r}" for k, v in kwargs.items())])
    return markdown_table(["name", "mechanism", "options"], rows)


def mechanisms(page: Page) -> str:
    """Every built-in mechanism registered here, by family (the order of ``FAMILIES``): its complexity,
    constraints, reference and the named configuration suites sweep (optional ones appear where they import)."""
    order = list(FAMILIES)
    rows = []
    for name in list_attentions():
        if attention_source(name) != "builtin":
            continue
        cls = get_attention(name)
        family = getattr(cls, "family", "other")
        rows.append((order.index(family) if family in order else len(order), name,
                     [f"`{name}`", family, f"`{cls.benchmark}`" if getattr(cls, "benchmark", None) else "defaults",
                      getattr(cls, "complexity", "?"), getattr(cls, "constraints", "?"),
                      getattr(cls, "reference", "?")]))
    return markdown_table(["name", "family", "swept as", "complexity (N = H·W)", "constraints", "reference"],
                          [r for _, _, r in sorted(rows, key=lambda r: r[:2])])


BLOCKS = {"named-configs": named_configs, "mechanisms": mechanisms}
