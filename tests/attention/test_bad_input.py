"""Bad constructor arguments raise ValueError at construction, naming the parameter and what is allowed.

The registry-parametrised test checks the contract (a ValueError that names the offending parameter), not the
built-ins' wording, so a third-party plugin that follows the contract in its own words passes; the built-ins'
exact messages are checked separately below.
"""

from __future__ import annotations

import re

import pytest
import torch

from attnbench import create_attention, list_attentions
from attnbench.registry import UnknownAttentionError

# (arguments, parameters of which the message must name at least one)
COMMON = [
    (dict(dim=30, heads=4), ("heads", "dim")),
    (dict(dim=32, heads=0), ("heads",)),
    (dict(dim=0, heads=1), ("dim",)),
    (dict(dim=32, heads=4, dropout=-0.1), ("dropout",)),
    (dict(dim=32, heads=4, dropout=1.5), ("dropout",)),
]


@pytest.mark.parametrize("name", list_attentions())
@pytest.mark.parametrize("kwargs,params", COMMON)
def test_common_arguments(name, kwargs, params):
    with pytest.raises(ValueError) as info:
        create_attention(name, **kwargs)
    message = str(info.value)
    assert any(re.search(rf"\b{p}\b", message) for p in params), message


def test_a_plugin_in_its_own_words_passes_the_contract_test(clean_registry):
    """A plugin that names the parameter in its own wording satisfies test_common_arguments."""

    @clean_registry.register_attention("own_words")
    class OwnWords(torch.nn.Module):
        def __init__(self, dim, heads, dropout=0.0):
            super().__init__()
            if dim < 1 or heads < 1 or dim % heads:
                raise ValueError(f"own_words: heads={heads} must divide dim={dim}")
            if not 0 <= dropout < 1:
                raise ValueError(f"own_words: dropout must lie in [0, 1), got {dropout}")

    for kwargs, params in COMMON:
        test_common_arguments("own_words", kwargs, params)


COMMON_BUILTIN_WORDING = [
    (dict(dim=30, heads=4), "heads=4 does not divide dim=30"),
    (dict(dim=32, heads=0), "heads=0"),
    (dict(dim=0, heads=1), "dim=0"),
    (dict(dim=32, heads=4, dropout=-0.1), "dropout=-0.1"),
]


@pytest.mark.parametrize("kwargs,match", COMMON_BUILTIN_WORDING)
def test_builtin_wording(kwargs, match):
    with pytest.raises(ValueError, match=match):
        create_attention("full", **kwargs)


@pytest.mark.parametrize(
    "name,kwargs,match",
    [
        ("swin", dict(window=0), r"swin: window=0 is invalid; expected an integer >= 1"),
        ("swin", dict(window=4, shift=4), r"shift=4 is invalid; expected 0 <= shift < window=4"),
        ("mano", dict(window=0), r"mano: window=0 is invalid"),
        ("mano", dict(rate=1), r"mano: rate=1 is invalid; expected an integer >= 2"),
        ("mano", dict(stride=3, window=2), r"mano: stride=3 is invalid; expected stride <= window=2"),
        ("mano", dict(down="max"), r"mano: down='max' is invalid; expected one of conv, pool"),
        ("mano", dict(up="bilinear"), r"mano: up='bilinear' is invalid; expected one of conv, nearest"),
        ("mano", dict(level_weighting="mean"), r"level_weighting='mean' is invalid"),
        ("mano", dict(max_levels=0), r"max_levels=0 is invalid"),
        ("mano_reference", dict(rate=1), r"mano_reference: rate=1 is invalid"),
        ("mano_reference", dict(image_size=16, window=4), r"level 3 \(side 2\) is not admissible for window=4"),
        ("mano_reference", dict(image_size=2, window=4), r"level 0 \(side 2\) is not admissible"),
        ("full", dict(backend="turbo"), r"full: backend='turbo' is invalid; expected one of auto, math, flash"),
        ("linear", dict(eps=0), r"linear: eps=0 is invalid"),
        ("swin", dict(windw=4), r"swin: unknown parameter 'windw'; did you mean 'window'\?"),
        ("mano", dict(sampling_rate=2), r"mano: unknown parameter 'sampling_rate'"),
    ],
)
def test_specific_arguments(name, kwargs, match):
    with pytest.raises(ValueError, match=match):
        create_attention(name, dim=32, heads=4, **kwargs)


def test_window_larger_than_grid_is_reported_not_a_shape_error():
    swin = create_attention("swin", dim=32, heads=4, window=8)
    assert swin.not_supported_reasons(4, 4) == ["grid 4x4 is not a multiple of window 8 (swin does not pad)"]


def test_unknown_name_lists_known_and_suggests():
    with pytest.raises(UnknownAttentionError) as info:
        create_attention("swim", dim=32, heads=4)
    message = str(info.value)
    assert "did you mean 'swin'?" in message and "full, full_naive" in message
