"""The README stays a short front page, and its "adding your own attention" example runs and passes the contract
checks. (Its generated blocks are checked with every docs page in test_docs.py.)"""

from __future__ import annotations

import re
from pathlib import Path

README = Path(__file__).resolve().parents[1] / "README.md"
MAX_LINES = 200  # issue 21: the README is a front page; the rest lives in docs/*.md


def test_readme_plugin_example_passes_the_contract(clean_registry):
    from attnbench.contract import CheckContext, run_checks

    code = re.findall(r"```python\n(.*?)```", README.read_text(encoding="utf-8"), re.DOTALL)[0]
    namespace: dict = {}
    exec(compile(code, str(README), "exec"), namespace)  # noqa: S102  (registers "row" and builds one layer)
    assert "row" in clean_registry.list_attentions()
    results = run_checks(CheckContext("row", dim=64, heads=4))
    assert all(r.status == "pass" for r in results), results


def test_readme_is_at_most_200_lines():
    lines = README.read_text(encoding="utf-8").splitlines()
    assert len(lines) <= MAX_LINES, f"README.md has {len(lines)} lines (at most {MAX_LINES}): move sections to docs/"
