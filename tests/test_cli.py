"""The command line: list and check, exit codes and one-line errors."""

from __future__ import annotations

import subprocess
import sys

from attnbench.cli import main


def test_list_shows_every_attention(capsys):
    assert main(["list", "--width", "250"]) == 0
    out = capsys.readouterr().out
    for name in ("full", "full_naive", "swin", "linear", "mano", "mano_reference", "full_xformers"):
        assert name in out


def test_list_in_a_shell_pipe_is_one_line_per_row(capsys):
    """Piped (not a terminal: here pytest's capture, then a real shell pipe), ``list`` prints CSV: one unwrapped line
    per mechanism, so grep finds it; json parses; a reader that leaves early (``| head``) gets no traceback."""
    import csv
    import io
    import json
    import subprocess
    import sys

    from attnbench import list_attentions

    assert main(["list"]) == 0
    out = capsys.readouterr().out
    assert [line for line in out.splitlines() if line.startswith("mano_reference,")]  # `| grep mano_reference`
    rows = list(csv.DictReader(io.StringIO(out)))
    assert {r["name"] for r in rows if r["kind"] == "attention" and r["available"] == "yes"} == set(list_attentions())
    assert {"swin_w8", "mano_k2s1r2"} <= {r["name"] for r in rows if r["kind"] == "configuration"}
    assert main(["list", "--format", "json"]) == 0
    assert json.loads(capsys.readouterr().out) == rows
    piped = subprocess.run(f"{sys.executable} -m attnbench list | head -1", shell=True,
                           capture_output=True, text=True, timeout=120)
    assert piped.stdout.startswith("name,") and "Traceback" not in piped.stderr  # CSV through a real pipe


def test_check_passes_and_prints_a_line_per_check(capsys):
    assert main(["check", "mano", "--grid", "8", "8", "--opt", "rate=2"]) == 0
    out = capsys.readouterr().out
    assert out.count("PASS") + out.count("SKIP") == 7


def test_check_bad_input_is_one_line_exit_2(capsys):
    assert main(["check", "swin", "--opt", "window=3"]) == 2
    assert main(["check", "nope"]) == 2
    assert main(["check", "mano", "--opt", "rate=1"]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 3 and all(line.startswith("attnbench: error: ") for line in err)
    assert "rate=1 is invalid" in err[2]


def test_python_dash_m_entry_point():
    proc = subprocess.run([sys.executable, "-m", "attnbench", "check", "linear"], capture_output=True, text=True,
                          timeout=120)
    assert proc.returncode == 0, proc.stderr


def test_every_command_and_option_has_help():
    import argparse

    from attnbench.cli import build_parser

    parser = build_parser()
    sub = next(a for a in parser._actions if isinstance(a, argparse._SubParsersAction))
    helps = {c.dest: c.help for c in sub._choices_actions}
    missing = [name for name in sub.choices if not helps.get(name)]
    for name, p in sub.choices.items():
        missing += [f"{name} {a.option_strings or a.dest}" for a in p._actions
                    if not isinstance(a, argparse._HelpAction) and not a.help]
    assert not missing, missing


def test_results_readme_lists_the_schema():
    """The column list in results/README.md is the one generated from the row schema."""
    from pathlib import Path

    from attnbench.store.schema import columns_markdown

    text = (Path(__file__).resolve().parents[1] / "results" / "README.md").read_text()
    assert columns_markdown() in text, columns_markdown()
