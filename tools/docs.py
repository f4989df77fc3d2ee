"""Rewrite the generated blocks of README.md and docs/*.md from the committed results (never typed in by hand).

A page marks each generated block::

    <!-- BEGIN GENERATED: cost-fwd fwd -->
    ...
    <!-- END GENERATED: cost-fwd -->

The name picks a generator (``--list`` shows them); the words after it are its arguments. ``python tools/docs.py``
rewrites every block of every page; ``--check`` only compares and exits 1 when a block differs from what the results
give (``tests/test_docs.py`` runs it). Sources: the newest reference run of each suite (``results/reference/``), its
re-runs (``results/rerun/``), the schema-1 legacy results and the investigations, all found through
``attnbench.store.layout``. This script needs the checkout: it is not part of the installed package.
"""

from __future__ import annotations

import argparse
import re
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
if str(Path(__file__).resolve().parent) not in sys.path:  # the block modules beside this script (tools/docs_blocks)
    sys.path.insert(0, str(Path(__file__).resolve().parent))

from docs_blocks import BLOCKS, Page, Sources  # noqa: E402 - importable only after the sys.path line above

__all__ = ["BLOCKS", "ROOT", "Page", "Sources", "check", "main", "pages", "render", "update"]

# A block's markers each start a line (a marker quoted inside a sentence is text, not a block).
_BEGIN = re.compile(r"^<!-- BEGIN GENERATED:", re.MULTILINE)
_BLOCK = re.compile(r"^(<!-- BEGIN GENERATED: (?P<name>[\w-]+)(?P<args>[^>]*?) -->\n)(?P<body>.*?)"
                    r"^(<!-- END GENERATED: (?P=name) -->)", re.DOTALL | re.MULTILINE)


def pages(root: Path = ROOT) -> list[Path]:
    """The pages that may hold generated blocks: README.md and docs/*.md."""
    return [root / "README.md", *sorted((root / "docs").glob("*.md"))]


def render(text: str, page: Page) -> str:
    """``text`` (the content of ``page``) with every generated block rewritten from the results."""
    found = list(_BLOCK.finditer(text))
    if len(found) != len(_BEGIN.findall(text)):
        raise ValueError(f"{page.file}: a '<!-- BEGIN GENERATED: name -->' line without its matching "
                         "'<!-- END GENERATED: name -->' line")

    def block(m: re.Match) -> str:
        name, args = m.group("name"), m.group("args").split()
        if name not in BLOCKS:
            raise KeyError(f"{page.file}: block {name!r} has no generator; known: {', '.join(BLOCKS)}")
        return f"{m.group(1)}{BLOCKS[name](page, *args)}\n{m.group(5)}"

    return _BLOCK.sub(block, text)


def update(path: Path, check: bool = False, sources: Sources | None = None) -> bool:
    """Rewrite (or, with ``check``, only compare) the generated blocks of ``path``; returns whether it was current.
    ``sources`` (default: this checkout's results) may be shared between pages so each file is loaded once."""
    path = Path(path)
    text = path.read_text(encoding="utf-8")
    new = render(text, Page(sources or Sources(ROOT), path))
    if new != text and not check:
        path.write_text(new, encoding="utf-8")
    return new == text


def check(root: Path = ROOT) -> list[Path]:
    """The pages under ``root`` whose generated blocks are out of date (empty: all current)."""
    sources = Sources(root)
    return [path for path in pages(root) if not update(path, check=True, sources=sources)]


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python tools/docs.py", description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("pages", nargs="*", type=Path, help="pages to process (default: README.md and docs/*.md)")
    parser.add_argument("--check", action="store_true", help="change nothing; exit 1 if a block is out of date")
    parser.add_argument("--list", action="store_true", help="list the block generators and exit")
    args = parser.parse_args(argv)
    if args.list:
        for name, fn in BLOCKS.items():
            print(f"{name}: {' '.join((fn.__doc__ or '').split(chr(10) * 2)[0].split())}")
        return 0
    sources = Sources(ROOT)
    stale = []
    for path in args.pages or pages(ROOT):
        current = update(path, check=args.check, sources=sources)
        stale += [] if current else [path]
        shown = path.resolve().relative_to(ROOT) if path.resolve().is_relative_to(ROOT) else path
        print(f"{shown}: {'current' if current else ('out of date' if args.check else 'updated')}")
    if stale and args.check:
        print("run `python tools/docs.py` (or `nox -s docs`) to regenerate", file=sys.stderr)
    return 1 if stale and args.check else 0


if __name__ == "__main__":
    sys.exit(main())
