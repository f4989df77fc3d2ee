"""Suites that select mechanisms by pattern and family (timm's ``list_models("swin*")``, asv's discovery): a new
mechanism, built-in or plugin, is swept without editing the suite, with its benchmark configuration."""

from __future__ import annotations

from fnmatch import fnmatchcase
from pathlib import Path

import pytest

from attnbench.registry import get_attention, list_attentions, register_attention
from attnbench.spec.suite import load_suite
from attnbench.spec.validate import SuiteError

HEAD = """
name = "d"
device = "cpu"
batch = 1
dim = 16
heads = 2
threads = 1
modes = ["fwd"]
grids = [[16, 16]]
"""


def _suite(tmp_path: Path, body: str):
    path = tmp_path / "d.toml"
    path.write_text(HEAD + body)
    return load_suite(path)


def _family(name: str) -> str:
    return getattr(get_attention(name), "family", "other")


def test_star_sweeps_every_mechanism_with_its_benchmark_configuration(tmp_path):
    suite = _suite(tmp_path, 'attentions = ["*"]\n')
    assert sorted(s.label for s in suite.attentions) == list_attentions()
    swin = next(s for s in suite.attentions if s.label == "swin")
    assert swin.name == get_attention("swin").benchmark == "swin_w8"  # the named configuration, labelled "swin"
    assert next(s for s in suite.attentions if s.label == "full").name == "full"  # no benchmark: its defaults


def test_families_and_patterns_and_exclude_narrow_the_selection(tmp_path):
    by_family = _suite(tmp_path, 'families = ["window", "multipole"]\nexclude = ["*_reference"]\n')
    expected = [n for n in list_attentions() if _family(n) in {"window", "multipole"} and not n.endswith("_reference")]
    assert sorted(s.label for s in by_family.attentions) == expected and "swin" in expected and "mano" in expected
    pattern = _suite(tmp_path, 'attentions = ["mano*"]\n')
    assert sorted(s.label for s in pattern.attentions) == [n for n in list_attentions() if fnmatchcase(n, "mano*")]


def test_a_written_table_wins_over_a_pattern_for_its_label(tmp_path):
    suite = _suite(tmp_path, 'attentions = ["swin*", { name = "swin_w4", label = "swin" }]\n')
    swin = [s for s in suite.attentions if s.label == "swin"]
    assert len(swin) == 1 and swin[0].name == "swin_w4"


def test_a_new_plugin_is_swept_without_editing_the_suite(tmp_path, clean_registry):
    from attnbench.attention.full import FullAttention

    @register_attention("zz_plugin_attention")
    class Plugin(FullAttention):
        family = "global"

    suite = _suite(tmp_path, 'families = ["global"]\n')
    assert "zz_plugin_attention" in {s.label for s in suite.attentions}


@pytest.mark.parametrize("body, fragment", [
    ('attentions = ["nothing_matches*"]\n',
     "attentions[0]: pattern 'nothing_matches*' matches no registered mechanism"),
    ('families = ["windowed"]\n', "families[0]: unknown family 'windowed'; expected one of"),
    ('attentions = [3]\n', "attentions[0]: expected a table with name/label/kwargs or a name pattern, got 3"),
])
def test_a_bad_selection_is_one_line_naming_the_key(tmp_path, body, fragment):
    with pytest.raises(SuiteError, match="d.toml: ") as err:
        _suite(tmp_path, body)
    assert fragment in str(err.value) and "\n" not in str(err.value)
