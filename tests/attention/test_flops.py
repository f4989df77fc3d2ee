"""Each mechanism's FLOP formula against torch's own counter (``FlopCounterMode``), parametrised over the registry.

A mechanism whose fast path computes its operations in a form the counter does not see is built with its
``flop_counter_kwargs`` (``mano``: the per-window SDPA path). SDPA is pinned to the math kernel so the counter sees
the attention as matmuls (it has no formula for the CPU flash kernel); then every FLOP the formulas count is visible
to it, so forward totals must agree exactly, and fwd+bwd totals equal 3 × forward (each matmul's backward: input
and weight gradient; the math kernel does not recompute, so the formulas' 2.5× fused-attention backward is replaced
by 2× here). A matmul against a fixed operand (kind ``matmul_fixed``: Performer's random projection, a buffer)
computes only its input's gradient: 1× backward. The counter's formula for a grouped convolution's weight gradient
is corrected (``tests/flop_counting.py``).
"""

from __future__ import annotations

import pytest
import torch
from flop_counting import counted_flops

from attnbench import list_attentions
from attnbench.registry import build_for_grid, capability_reasons, flop_counter_kwargs

GRIDS = [(16, 16), (8, 12)]


@pytest.mark.parametrize("grid", GRIDS, ids=lambda g: f"{g[0]}x{g[1]}")
@pytest.mark.parametrize("name", list_attentions())
def test_flop_formula_matches_the_counter(name, grid):
    h, w = grid
    module = build_for_grid(name, 32, 4, h, w, kwargs=flop_counter_kwargs(name))
    if capability_reasons(module, h, w, backward=True) or getattr(module, "flop_parts", None) is None:
        pytest.skip("cannot run backward here, or no FLOP formula")
    parts = module.flop_parts(2, h, w)
    if parts is None:
        pytest.skip(f"{name} declares no FLOP formula")
    x = torch.randn(2, h, w, 32)
    assert counted_flops(module, x, backward=False) == sum(parts.values()) == module.flops(2, h, w, "fwd")
    module.train()
    counted_backward = {"matmul": 2, "sdpa": 2, "matmul_fixed": 1}  # per forward FLOP, as the counter sees it
    expected = sum(value * (1 + counted_backward[kind]) for kind, value in parts.items())
    assert counted_flops(module, x.requires_grad_(True), backward=True) == expected
    bwd = module.flops(2, h, w, "fwd_bwd")
    assert bwd == int(sum(parts.values()) + 2 * parts.get("matmul", 0) + 2.5 * parts.get("sdpa", 0)
                      + parts.get("matmul_fixed", 0))


def test_dense_attention_counts_as_tritonbench_does():
    full = build_for_grid("full", 64, 4, 32, 32)
    n, attention = 32 * 32, 4 * 1 * 4 * (32 * 32) ** 2 * 16
    assert full.flop_parts(1, 32, 32)["sdpa"] == attention
    assert full.flops(1, 32, 32, "fwd_bwd") - 3 * full.flop_parts(1, 32, 32)["matmul"] == 3.5 * attention
    assert full.bytes_moved(1, 32, 32, 64) == 4 * (2 * n * 64 + sum(p.numel() for p in full.parameters()))


def test_roofline_measure_cache_and_fraction(tmp_path, monkeypatch, capsys):
    import json

    from attnbench.cli import main
    from attnbench.measure.roofline import cached, measure_roofline
    from attnbench.report.analysis.attainable import attainable, roofline_fraction

    roof = measure_roofline("cpu", 1, n=128, copy_mib=4, min_run_time=0.05)
    assert roof["peak_flops"]["float32"] > 1e6 and roof["copy_bytes_per_s"] > 1e6
    monkeypatch.setenv("ATTNBENCH_DATA", str(tmp_path))
    assert main(["roofline", "--device", "cpu", "--threads", "1", "--n", "128", "--copy-mib", "4"]) == 0
    assert "GFLOP/s" in capsys.readouterr().out
    from attnbench.measure.provenance import machine_tag

    assert cached(machine_tag("cpu"), "cpu", 1)["matmul_n"] == 128
    fake = {"peak_flops": {"float32": 100e9}, "copy_bytes_per_s": 10e9}
    assert attainable(fake, "float32", 1e9, 1e9) == 10e9  # 1 FLOP/byte: bandwidth-bound
    assert attainable(fake, "float32", 1e12, 1e9) == 100e9  # 1000 FLOP/byte: compute-bound
    row = {"runtime": json.dumps({"roofline": fake}), "flops": 1e9, "bytes": 1e9, "time_ms_median": 200.0,
           "dtype": "float32"}
    assert roofline_fraction(row) == pytest.approx(0.5)  # 5 GFLOP/s of an attainable 10
