"""The README's "adding your own attention" example runs and passes the contract checks."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

README = Path(__file__).resolve().parents[1] / "README.md"


def test_readme_plugin_example_passes_the_contract(clean_registry):
    from attnbench.contract import CheckContext, run_checks

    code = re.findall(r"```python\n(.*?)```", README.read_text(), re.S)[0]
    namespace: dict = {}
    exec(compile(code, str(README), "exec"), namespace)  # registers "row" and builds one layer
    assert "row" in clean_registry.list_attentions()
    results = run_checks(CheckContext("row", dim=64, heads=4))
    assert all(r.status == "pass" for r in results), results
    assert "row" in clean_registry._REGISTRY
    clean_registry._REGISTRY.pop("row")


def test_generated_readme_blocks_are_current():
    """Every table and claim in README's generated blocks is what the committed results give."""
    from attnbench.report import readme

    assert readme.update(README, check=True), "README is out of date: run python -m attnbench.report.readme"


def test_readme_generator_fails_on_an_unknown_block(tmp_path):
    from attnbench.report import readme

    path = tmp_path / "R.md"
    path.write_text("<!-- BEGIN GENERATED: nope -->\nx\n<!-- END GENERATED: nope -->\n")
    with pytest.raises(KeyError, match="no generator"):
        readme.update(path)
