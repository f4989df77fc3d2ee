"""README.md and docs/*.md: every generated block is what the committed results give (``tools/docs.py --check``),
the generator refuses what it cannot render, and every relative link points at something that exists."""

from __future__ import annotations

import importlib.util
import re
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]


@pytest.fixture(scope="module")
def docs_tool():
    """``tools/docs.py``, imported from its path (it lives in the checkout, not in the package)."""
    spec = importlib.util.spec_from_file_location("attnbench_docs_tool", ROOT / "tools" / "docs.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_generated_blocks_are_current(docs_tool):
    """Every table, figure link and claim in a generated block is what the committed results give."""
    stale = docs_tool.check(ROOT)
    assert not stale, f"out of date: {', '.join(str(p.relative_to(ROOT)) for p in stale)}; run python tools/docs.py"


def test_every_page_is_checked(docs_tool):
    pages = docs_tool.pages(ROOT)
    assert ROOT / "README.md" in pages and len(pages) > 1, pages
    assert all(p.exists() for p in pages)


def test_check_reports_a_stale_block_and_writes_nothing(docs_tool, tmp_path):
    path = tmp_path / "R.md"
    stale = "<!-- BEGIN GENERATED: named-configs -->\nno table\n<!-- END GENERATED: named-configs -->\n"
    path.write_text(stale)
    assert docs_tool.update(path, check=True) is False
    assert path.read_text() == stale
    assert docs_tool.update(path) is False  # rewritten now
    assert docs_tool.update(path, check=True) is True and "| `swin_w8` | `swin` |" in path.read_text()


def test_the_generator_fails_on_an_unknown_block(docs_tool, tmp_path):
    path = tmp_path / "R.md"
    path.write_text("<!-- BEGIN GENERATED: nope -->\nx\n<!-- END GENERATED: nope -->\n")
    with pytest.raises(KeyError, match="no generator"):
        docs_tool.update(path)


def test_the_generator_fails_on_an_unclosed_block(docs_tool, tmp_path):
    path = tmp_path / "R.md"
    path.write_text("<!-- BEGIN GENERATED: cost-plot -->\nx\n<!-- END GENERATED: cost-fwd -->\n")
    with pytest.raises(ValueError, match="without its matching"):
        docs_tool.update(path)
    assert "x" in path.read_text()  # nothing written


def test_a_block_renders_with_links_relative_to_its_page(docs_tool, tmp_path):
    """The same block links ``results/...`` from the README and ``../results/...`` from a docs page."""
    text = "<!-- BEGIN GENERATED: cost-plot -->\n<!-- END GENERATED: cost-plot -->\n"
    sources = docs_tool.Sources(ROOT)
    top = docs_tool.render(text, docs_tool.Page(sources, ROOT / "README.md"))
    nested = docs_tool.render(text, docs_tool.Page(sources, ROOT / "docs" / "x.md"))
    assert "](results/reference/" in top and "](../results/reference/" in nested


def _slug(heading: str) -> str:
    """GitHub's anchor for a heading: lower case, punctuation dropped, spaces to hyphens."""
    return re.sub(r"[^\w\- ]", "", heading.strip().lower()).replace(" ", "-")


def test_relative_links_resolve(docs_tool):
    bad = []
    for page in docs_tool.pages(ROOT):
        text = page.read_text(encoding="utf-8")
        for target in re.findall(r"\]\(([^)\s]+)\)", text):
            if re.match(r"[a-z]+:", target):
                continue
            path, _, anchor = target.partition("#")
            file = (page.parent / path).resolve() if path else page
            if not file.exists():
                bad.append(f"{page.name}: {target} (no such file)")
            elif anchor and file.suffix == ".md":
                headings = re.findall(r"^#+ (.+)$", file.read_text(encoding="utf-8"), re.MULTILINE)
                if anchor not in {_slug(h) for h in headings}:
                    bad.append(f"{page.name}: {target} (no such heading)")
    assert not bad, bad
