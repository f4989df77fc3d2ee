"""Malformed suites: each gives one line naming the file and key, exit code 2, and nothing runs."""

from __future__ import annotations

from pathlib import Path

import pytest

from attnbench.cli import main
from attnbench.spec.suite import load_suite

GOOD = """
name = "v"
device = "cpu"
batch = 1
dim = 16
heads = 2
threads = 1
modes = ["fwd"]
grids = [[8, 8]]

[[attentions]]
name = "full"

[[attentions]]
name = "mano"
label = "mano_k2"
kwargs = { window = 2 }
"""

CASES = [  # (id, replace this, with this, expected fragment of the message)
    ("unknown key", "batch = 1", "batch = 1\nbacth = 2", "bacth: unknown key"),
    ("wrong type", "batch = 1", 'batch = "one"', "batch: expected an integer >= 1, got 'one'"),
    ("negative batch", "batch = 1", "batch = -1", "batch: expected an integer >= 1, got -1"),
    ("bad dtype", 'device = "cpu"', 'device = "cpu"\ndtype = "float8"', "dtype: expected one of float32, bfloat16"),
    ("bad device", 'device = "cpu"', 'device = "tpu"', "device: expected one of auto, cpu, cuda, got 'tpu'"),
    ("bad mode", 'modes = ["fwd"]', 'modes = ["bwd"]', "modes[0]: expected one of fwd, fwd_bwd"),
    ("empty modes", 'modes = ["fwd"]', "modes = []", "modes: expected a non-empty array"),
    ("zero threads", "threads = 1", "threads = 0", "threads: expected an integer >= 1, got 0"),
    ("grid not 2 ints", "grids = [[8, 8]]", "grids = [[8, 8, 8]]", "grids[0]: expected [H, W], two integers >= 1"),
    ("grid float", "grids = [[8, 8]]", "grids = [[8, 8.5]]", "grids[0]: expected [H, W]"),
    ("empty grids", "grids = [[8, 8]]", "grids = []", "grids: expected a non-empty array"),
    ("duplicate grid", "grids = [[8, 8]]", "grids = [[8, 8], [8, 8]]", "grids: duplicate grid"),
    ("no attentions", '[[attentions]]\nname = "full"\n\n[[attentions]]\nname = "mano"\nlabel = "mano_k2"\n'
                      'kwargs = { window = 2 }', "",
     "attentions: no mechanism to run: add at least one [[attentions]]"),
    ("empty attentions", "", "", "attentions: no mechanism to run"),
    ("no grids", "grids = [[8, 8]]", "", "grids: missing: a cost suite sweeps grids"),
    ("nan min_run_time", "batch = 1", "batch = 1\nmin_run_time = nan",
     "min_run_time: expected a finite number > 0, got nan"),
    ("inf timeout", "batch = 1", "batch = 1\ntimeout = inf", "timeout: expected a finite number > 0, got inf"),
    ("unknown attention", 'name = "full"', 'name = "fulll"',
     "attentions[0].name: unknown attention 'fulll'; did you mean 'full'?"),
    ("attention missing name", 'name = "full"', 'label = "x"', "attentions[0].name: missing"),
    ("unknown attention key", 'name = "full"', 'name = "full"\nkwarg = {}', "attentions[0].kwarg: unknown key"),
    ("bad kwargs value", "window = 2", "window = -1",
     "attentions[1].kwargs: mano: window=-1 is invalid; expected an integer >= 1"),
    ("unknown kwarg", "window = 2", "windw = 2", "attentions[1].kwargs: mano: unknown parameter 'windw'"),
    ("kwargs not a table", "kwargs = { window = 2 }", "kwargs = 2", "attentions[1].kwargs: expected a table"),
    ("heads do not divide dim", "heads = 2", "heads = 3", "attentions[0].kwargs: full: heads=3 does not divide dim=16"),
    ("duplicate labels", 'label = "mano_k2"', 'label = "full"', "attentions[1].label: duplicate label 'full'"),
    ("same mechanism twice without labels", 'label = "mano_k2"\n', "", None),  # allowed? no: labels default to name
    ("negative timeout", "batch = 1", "batch = 1\ntimeout = -5", "timeout: expected a finite number > 0, got -5"),
    ("bad min_run_time", "batch = 1", "batch = 1\nmin_run_time = 0", "min_run_time: expected a finite number > 0"),
    ("bad frontier", "batch = 1", 'batch = 1\nfrontier = "yes"', "frontier: expected true or false"),
    ("bad compile axis", "batch = 1", "batch = 1\ncompile = [1]", "compile[0]: expected true or false"),
    ("compile_grids not in grids", "batch = 1", "batch = 1\ncompile = [false, true]\ncompile_grids = [[16, 16]]",
     "compile_grids: [[16, 16]] not among the suite's grids; expected a subset"),
    ("bad compile_timeout", "batch = 1", "batch = 1\ncompile_timeout = 0",
     "compile_timeout: expected a finite number > 0"),
    ("bad attention compile", 'label = "mano_k2"', 'label = "mano_k2"\ncompile = "no"',
     "attentions[1].compile: expected true or false"),
    ("bad import", "batch = 1", 'batch = 1\nimports = ["no_such_module_xyz"]',
     "imports: cannot import 'no_such_module_xyz'"),
    ("bad toml", "batch = 1", "batch = = 1", "invalid TOML"),
    ("bad name", 'name = "v"', 'name = "a b"', "name: expected letters, digits"),
]


@pytest.mark.parametrize("case", CASES, ids=[c[0] for c in CASES])
def test_malformed_suite_is_one_line_exit_2(case, tmp_path, capsys):
    ident, old, new, fragment = case
    assert old in GOOD, ident
    text = (GOOD.replace(old, new, 1) if ident != "empty attentions"
            else GOOD.split("[[attentions]]")[0] + "attentions = []\n")
    if ident == "same mechanism twice without labels":
        text = GOOD.replace('name = "full"', 'name = "mano"').replace('label = "mano_k2"\n', "")
        fragment = "attentions[1].label: duplicate label 'mano'"
    path = tmp_path / "v.toml"
    path.write_text(text)
    out = tmp_path / "out"
    assert main(["run", str(path), "--out", str(out), "--quiet"]) == 2
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1, err
    assert err.startswith(f"attnbench: error: {path}: "), err
    assert fragment in err, err
    assert "Traceback" not in err
    assert not out.exists()  # nothing ran, nothing was written


def test_set_overrides_are_validated_too(tmp_path, capsys):
    path = tmp_path / "v.toml"
    path.write_text(GOOD)
    assert main(["run", str(path), "--set", "batch=0", "--out", str(tmp_path / "o")]) == 2
    assert "batch: expected an integer >= 1, got 0" in capsys.readouterr().err
    suite = load_suite(path, {"attentions[1].kwargs.window": 4, "grids": [[8, 8], [16, 32]]})
    assert suite.attentions[1].kwargs == {"window": 4} and len(suite.cases) == 4


def test_shipped_suites_are_valid(clean_registry):  # calibrate.toml imports (registers) the planted layer
    root = Path(__file__).resolve().parents[2] / "suites"
    for path in sorted(root.glob("*.toml")):
        overrides = {"device": "cpu"} if "gpu" in path.name else {}
        suite = load_suite(path, overrides)
        assert suite.cases, path


def test_cases_are_grid_major_and_keys_unique():
    root = Path(__file__).resolve().parents[2] / "suites"
    suite = load_suite(root / "cpu.toml")
    tokens = [c.tokens for c in suite.cases]
    assert tokens == sorted(tokens)
    from attnbench.registry import list_attentions

    # every available mechanism (cpu.toml: attentions = ["*"]) x 5 grids x 2 modes, each case once
    assert {c.label for c in suite.cases} == set(list_attentions())
    assert len({c.key for c in suite.cases}) == len(suite.cases) == len(list_attentions()) * 5 * 2
    assert suite.replicates == 6  # every case in six processes, one per round


def test_compiled_series_sweep_compile_grids_with_extra_time(tmp_path):
    path = tmp_path / "c.toml"
    path.write_text(GOOD.replace("grids = [[8, 8]]", "grids = [[8, 8], [16, 16]]\ncompile = [false, true]\n"
                                 "compile_grids = [[16, 16]]\ntimeout = 10\ncompile_timeout = 90"))
    cases = load_suite(path).cases
    assert sorted((c.height, c.compile) for c in cases if c.label == "full") == [(8, False), (16, False), (16, True)]
    assert {c.compile: c.time_limit() for c in cases} == {False: 10.0, True: 100.0}
    # an eager case's identity ignores the compile budget (runs from before the key existed still match)
    assert {c.compile: "compile_timeout" in c.config() for c in cases} == {False: False, True: True}
    path.write_text(path.read_text().replace('label = "mano_k2"', 'label = "mano_k2"\ncompile = false'))
    assert {c.label for c in load_suite(path).cases if c.compile} == {"full"}  # mano opted out of the compiled series


@pytest.mark.parametrize("content,fragment", [
    (b"", "the suite is empty; it needs at least grids"),
    (b"# only a comment\n", "the suite is empty"),
    (b"name = \"x\"\n\xff\xfe grids", "not a text (UTF-8) file"),
])
def test_empty_or_binary_suite_file_is_one_line(content, fragment, tmp_path, capsys):
    path = tmp_path / "s.toml"
    path.write_bytes(content)
    assert main(["run", str(path), "--out", str(tmp_path / "out"), "--quiet"]) == 2
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1 and err.startswith(f"attnbench: error: {path}: ") and fragment in err, err


@pytest.mark.parametrize("content", ["a,b\n1,2\n", "", "\x00\x01binary"])
def test_plot_of_a_file_that_is_not_results_is_one_line(content, tmp_path, capsys):
    path = tmp_path / "x.csv"
    path.write_text(content)
    assert main(["plot", str(path)]) == 2
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1 and str(path) in err and "Traceback" not in err, err
    assert main(["compare", str(path), str(path)]) == 2
