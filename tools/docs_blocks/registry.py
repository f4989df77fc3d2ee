"""Blocks read from the registry rather than the results: the built-in mechanisms by family and their named
configurations (so the lists on the mechanisms page cannot miss one)."""

from __future__ import annotations

from attnbench.registry import UnknownAttentionError, attention_source, list_configs
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
    """Every built-in mechanism registered here, in ``attnbench list``'s order (by family): its complexity,
    constraints, reference and the named configuration suites sweep (optional ones appear where they import)."""
    from attnbench.api import list_mechanisms

    rows = [[f"`{r['name']}`", r["family"], f"`{r['benchmark']}`" if r["benchmark"] else "defaults", r["complexity"],
             r["constraints"], r["reference"]]
            for r in list_mechanisms() if r["kind"] == "attention" and r["source"] == "builtin"]
    return markdown_table(["name", "family", "swept as", "complexity (N = H·W)", "constraints", "reference"], rows)


BLOCKS = {"named-configs": named_configs, "mechanisms": mechanisms}
