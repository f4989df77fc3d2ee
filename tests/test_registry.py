"""Registry: decorator rules, entry-point plugins (fake and one real, pip-installed), error messages."""

from __future__ import annotations

import importlib.metadata
import os
import shutil
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest
from torch import nn

from attnbench.attention.base import GridAttention

ROOT = Path(__file__).resolve().parents[1]
EXAMPLE = ROOT / "examples" / "attnbench-plugin-example"


class _A(GridAttention):
    def __init__(self, dim, heads):
        super().__init__()

    def forward(self, x):
        return x


class _B(_A):
    pass


def test_same_class_twice_is_a_noop_and_a_different_class_is_an_error(clean_registry):
    reg = clean_registry
    reg.register_attention("toy_a")(_A)
    reg.register_attention("toy_a")(_A)
    assert reg.get_attention("toy_a") is _A and _A.registry_name == "toy_a"
    with pytest.raises(ValueError, match="'toy_a' is already registered"):
        reg.register_attention("toy_a")(_B)
    reg.register_attention("toy_a", override=True)(_B)
    assert reg.get_attention("toy_a") is _B


def test_names_and_targets_are_validated(clean_registry):
    with pytest.raises(ValueError, match="lower_snake_case"):
        clean_registry.register_attention("Bad-Name")
    with pytest.raises(TypeError, match="nn.Module subclass"):
        clean_registry.register_attention("not_a_module")(object)


@pytest.fixture
def plugin_module(tmp_path, monkeypatch):
    """A throw-away importable module holding two plugin classes."""
    (tmp_path / "fake_attnbench_plugin.py").write_text(textwrap.dedent("""
        from attnbench.attention.base import GridAttention

        class Good(GridAttention):
            def __init__(self, dim, heads):
                super().__init__()
            def forward(self, x):
                return x

        class Other(GridAttention):
            def __init__(self, dim, heads):
                super().__init__()
            def forward(self, x):
                return x
    """))
    monkeypatch.syspath_prepend(str(tmp_path))
    yield "fake_attnbench_plugin"
    sys.modules.pop("fake_attnbench_plugin", None)


def test_fake_entry_points_valid_duplicate_broken(clean_registry, plugin_module):
    EP = importlib.metadata.EntryPoint
    group = clean_registry.ENTRY_POINT_GROUP
    eps = [
        EP("broken_one", "module_that_does_not_exist_xyz:Thing", group),
        EP("full", f"{plugin_module}:Other", group),  # clashes with the built-in
        EP("good_one", f"{plugin_module}:Good", group),
    ]
    with pytest.warns(RuntimeWarning) as warned:
        clean_registry.load_plugins(eps)
    messages = [str(w.message) for w in warned]
    assert any("plugin 'broken_one'" in m and "ModuleNotFoundError" in m for m in messages)
    assert any("plugin 'full'" in m and "already registered" in m for m in messages)
    assert "good_one" in clean_registry.list_attentions()  # the others still load
    assert clean_registry.attention_source("good_one").startswith("plugin")
    assert clean_registry.get_attention("full").__module__ == "attnbench.attention.full"


def test_entry_points_are_loaded_lazily_and_cached(clean_registry, monkeypatch):
    calls = []

    def fake_entry_points(group):
        calls.append(group)
        return []

    monkeypatch.setattr(importlib.metadata, "entry_points", fake_entry_points)
    clean_registry.refresh_plugins()
    clean_registry.list_attentions()
    clean_registry.list_attentions()
    clean_registry.get_attention("full")
    assert calls == [clean_registry.ENTRY_POINT_GROUP]


def _pip(*args: str) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "pip", *args], capture_output=True, text=True, timeout=300)


@pytest.fixture
def installed_example_plugin(clean_registry, tmp_path, monkeypatch):
    """The example plugin pip-installed into a throwaway folder (``--target``), first on ``sys.path`` here and on
    ``PYTHONPATH`` for the commands the test starts; ``importlib.metadata`` finds its entry point there. The
    running environment is never changed, so an interrupted test leaves nothing installed."""
    if _pip("--version").returncode != 0:
        pytest.skip("pip is not available in this environment")
    source = tmp_path / "src"  # building writes build/ and *.egg-info beside the sources: a copy, not the checkout
    shutil.copytree(EXAMPLE, source, ignore=shutil.ignore_patterns("build", "*.egg-info", "__pycache__"))
    target = tmp_path / "site"
    proc = _pip("install", "--no-deps", "--no-build-isolation", "--no-index", "--target", str(target), str(source))
    assert proc.returncode == 0, proc.stdout + proc.stderr
    monkeypatch.syspath_prepend(str(target))
    monkeypatch.setenv("PYTHONPATH", os.pathsep.join(p for p in (str(target), os.environ.get("PYTHONPATH")) if p))
    clean_registry.refresh_plugins()
    try:
        yield clean_registry
    finally:
        sys.modules.pop("attnbench_plugin_example", None)


def test_real_plugin_package_is_found_and_checked(installed_example_plugin):
    reg = installed_example_plugin
    assert "axial_example" in reg.list_attentions()
    assert reg.attention_source("axial_example") == "plugin (attnbench-plugin-example)"
    proc = subprocess.run([sys.executable, "-m", "attnbench", "check", "axial_example", "--grid", "8", "12"],
                          capture_output=True, text=True, timeout=300)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert "FAIL" not in proc.stdout and proc.stdout.count("PASS") >= 6
    listing = subprocess.run([sys.executable, "-m", "attnbench", "list", "--width", "250"], capture_output=True,
                             text=True, timeout=300).stdout
    assert "axial_example" in listing and "plugin (attnbench-plugin-example)" in listing


def test_the_decorator_returns_the_class_itself_and_builds_it(clean_registry):
    """Registering neither wraps nor copies: the decorated name is still the class, the registry hands back that
    very class, and ``create_attention`` builds an instance of exactly it (a plain ``nn.Module`` as well)."""

    class Plain(nn.Module):
        def __init__(self, dim, heads):
            super().__init__()
            self.dim, self.heads = dim, heads

        def forward(self, x):
            return x

    returned = clean_registry.register_attention("toy_identity")(Plain)
    assert returned is Plain and clean_registry.get_attention("toy_identity") is Plain
    layer = clean_registry.create_attention("toy_identity", dim=8, heads=2)
    assert type(layer) is Plain and (layer.dim, layer.heads) == (8, 2)
    assert Plain.registry_name == "toy_identity"


# ------------------------------------------------------------------------------------------ named configurations
def test_named_configuration_builds_its_mechanism_and_caller_options_win(clean_registry):
    from attnbench import create_attention

    layer = create_attention("swin_w8", dim=32, heads=4)
    assert type(layer) is clean_registry.get_attention("swin") and layer.window == 8
    assert create_attention("swin_w8", dim=32, heads=4, window=4).window == 4
    assert clean_registry.resolve_config("mano_k2s1r2") == ("mano", {"window": 2, "stride": 1, "rate": 2})
    assert clean_registry.resolve_config("linear") == ("linear", {})
    assert "swin_w8" in clean_registry.list_configs() and "swin_w8" not in clean_registry.list_attentions()


def test_configuration_names_are_checked(clean_registry):
    clean_registry.register_config("toy_cfg", "swin", window=4)
    clean_registry.register_config("toy_cfg", "swin", window=4)  # the same binding again: a no-op
    with pytest.raises(ValueError, match="already registered"):
        clean_registry.register_config("toy_cfg", "swin", window=2)
    with pytest.raises(ValueError, match="already a registered attention"):
        clean_registry.register_config("mano", "swin", window=2)
    with pytest.raises(clean_registry.UnknownAttentionError, match="did you mean 'swin_w8'"):
        clean_registry.get_attention("swin_w9")


def test_named_configuration_in_a_suite_and_on_the_cli(tmp_path):
    from attnbench.cli import main
    from attnbench.spec.suite import load_suite

    suite = tmp_path / "s.toml"
    suite.write_text('grids = [[16, 16]]\ndevice = "cpu"\n[[attentions]]\nname = "swin_w8"\n'
                     '[[attentions]]\nname = "mano_k2s1r2"\nlabel = "m"\nkwargs = { rate = 4 }\n')
    cases = load_suite(suite).cases
    assert [(c.label, c.attention) for c in cases] == [("swin_w8", "swin_w8"), ("m", "mano_k2s1r2")]
    assert main(["check", "swin_w4", "--grid", "8", "8"]) == 0


# ------------------------------------------------------------------------------- a bare third-party plugin
@pytest.fixture
def bare_plugin(tmp_path, monkeypatch):
    """A plugin as a third party may write it: a plain nn.Module, no decorator, no attnbench base class."""
    (tmp_path / "bare_attnbench_plugin.py").write_text(textwrap.dedent("""
        import torch
        from torch import nn

        class TokenMix(nn.Module):
            def __init__(self, dim, heads):
                super().__init__()
                if dim % heads:
                    raise ValueError(f"token_mix: heads={heads} must divide dim={dim}")
                self.heads = heads
                self.qkv = nn.Linear(dim, 3 * dim)

            def forward(self, x):
                B, H, W, C = x.shape
                q, k, v = self.qkv(x).reshape(B, H * W, 3, self.heads, C // self.heads).permute(2, 0, 3, 1, 4)
                out = torch.nn.functional.scaled_dot_product_attention(q, k, v)
                return out.transpose(1, 2).reshape(B, H, W, C)
    """))
    monkeypatch.syspath_prepend(str(tmp_path))
    yield "bare_attnbench_plugin"
    sys.modules.pop("bare_attnbench_plugin", None)


def test_bare_module_plugin_lists_and_passes_the_checks(clean_registry, bare_plugin):
    from attnbench.contract import CheckContext, run_checks

    ep = importlib.metadata.EntryPoint("token_mix", f"{bare_plugin}:TokenMix", clean_registry.ENTRY_POINT_GROUP)
    clean_registry.load_plugins([ep])
    assert "token_mix" in clean_registry.list_attentions()
    results = run_checks(CheckContext("token_mix", height=8, width=12))
    assert [r for r in results if r.status == "fail"] == [], results
    assert sum(r.status == "pass" for r in results) >= 6
    layer = clean_registry.build_for_grid("token_mix", 32, 4, 8, 8)
    assert clean_registry.receptive_field(layer, 8, 8) == (8, 8)  # no hook: counted as global
