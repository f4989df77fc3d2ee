"""attnbench's performer, agent and axial layers against lucidrains' packages, with copied weights, in float64.

Optional: each test is skipped unless its package is installed (``performer-pytorch``, ``agent-attention-pytorch``,
``axial-attention``; test extras, never runtime dependencies). ``nystrom-attention`` is compared in
``test_linear_mechanisms.py``. Every test builds our layer through the registry, builds the package's layer,
copies the weights one way or the other (projections, the random feature matrix) and compares the outputs of a
whole layer on a 6×8 grid, batch 2. Where the two differ in configuration or in a convention, the test's
docstring names the difference and how the comparison removes it; the packages' code is read as of
performer-pytorch 1.1.4, agent-attention-pytorch 0.1.7 and axial-attention 0.6.1.
"""

from __future__ import annotations

import functools
import importlib

import pytest
import torch
import torch.nn.functional as F

from attnbench import create_attention

B, H, W = 2, 6, 8


def _x(C, seed=0):
    return torch.randn(B, H, W, C, generator=torch.Generator().manual_seed(seed), dtype=torch.float64)


def _rel(a, b):
    return ((a - b).norm() / b.norm()).item()


# --------------------------------------------------------------------------------------------------- performer
def test_performer_matches_performer_pytorch(monkeypatch):
    """``performer_pytorch.SelfAttention`` (non-causal FAVOR+, softmax kernel) with our q/k/v/out weights and our
    random projection copied into its ``projection_matrix``: the same layer, to rounding.

    Configuration: ``qkv_bias=True, attn_out_bias=True`` (our defaults), ``nb_features = features = 24``, one
    projection shared by all heads (as both do). Two conventions differ and are removed:

    * the package adds ``eps = 1e-4`` to every random feature after ``exp`` (``softmax_kernel``), which biases the
      estimator; ours adds ``eps`` to the normaliser only. The package's ``softmax_kernel`` is patched to
      ``eps=0`` and ours is built with ``eps=1e-300``, so neither adds anything measurable;
    * the package subtracts the largest ``ω·x`` before ``exp``, ours the largest ``ω·x − |x|²/2``; both are
      constants per query (queries) or per sample and head (keys) that cancel in the normalisation, so they change
      nothing once no ``eps`` is added. Its ``1/√m`` factor cancels likewise (ours leaves it out).
    """
    pytest.importorskip("performer_pytorch")
    package = importlib.import_module("performer_pytorch.performer_pytorch")
    monkeypatch.setattr(package, "softmax_kernel", functools.partial(package.softmax_kernel, eps=0.0))
    torch.manual_seed(0)
    dim, heads, d, m = 32, 4, 8, 24
    ours = create_attention("performer", dim=dim, heads=heads, features=m, eps=1e-300).double().eval()
    theirs = package.SelfAttention(dim=dim, heads=heads, dim_head=d, nb_features=m, qkv_bias=True,
                                   attn_out_bias=True).double().eval()
    inner = heads * d
    with torch.no_grad():
        for i, linear in enumerate((theirs.to_q, theirs.to_k, theirs.to_v)):  # ours: one Linear, rows (q|k|v)
            linear.weight.copy_(ours.qkv.weight[i * inner:(i + 1) * inner])
            linear.bias.copy_(ours.qkv.bias[i * inner:(i + 1) * inner])
        theirs.to_out.load_state_dict(ours.proj.state_dict())
        theirs.fast_attention.projection_matrix.copy_(ours.projection)
        x = _x(dim)
        expected = theirs(x.reshape(B, H * W, dim)).reshape(B, H, W, dim)
        assert _rel(ours(x), expected) < 1e-10


# ------------------------------------------------------------------------------------------------------- agent
def test_agent_matches_agent_attention_pytorch_given_our_agents():
    """``agent_attention_pytorch.AgentSelfAttention`` with our qkv and output weights, given our agent tokens
    through its ``agent_tokens`` argument: its output plus our depthwise convolution of V (projected) is ours.

    Why not the whole layers alone: the package's agents are **learned parameters** (``heads × n × d``, the same for
    every input), ours are the queries average-pooled to an ``a × a`` grid (the paper's definition, different for
    every input), so no weight copy makes its layer ours. Its ``forward(x, agent_tokens=...)`` replaces the learned
    agents, so the test passes it our agents (2×2 block means of its own queries: 4 agents, 3×4 blocks on the
    6×8 grid), computed here from the package's q. The package also has no depthwise 3×3 convolution of V (the
    paper's DWC term), no output-projection bias and no qkv bias: ours is built with ``qkv_bias=False``, and the
    test adds the DWC term (``F.conv2d`` with our ``dwc`` weights, through our output projection's weight) and our
    projection's bias to the package's output. Package options turned off because the paper has neither:
    ``talking_heads=False`` (1×1 convs mixing the heads' attention maps) and ``gate=False`` (a sigmoid gate per head
    and token). What is compared is then the paper's two-softmax core, ``softmax(Q Aᵀ/√d) · softmax(A Kᵀ/√d) V``
    with the same q, k, v, A, plus the rest of our layer.
    """
    package = pytest.importorskip("agent_attention_pytorch")
    torch.manual_seed(0)
    dim, heads, d, side = 32, 4, 8, 2
    ours = create_attention("agent", dim=dim, heads=heads, agents=side * side, qkv_bias=False).double().eval()
    theirs = package.AgentSelfAttention(dim, num_agent_tokens=side * side, dim_head=d, heads=heads,
                                        talking_heads=False, gate=False).double().eval()
    with torch.no_grad():
        theirs.to_qkv[0].weight.copy_(ours.qkv.weight)  # both: output rows ordered (qkv, heads, d)
        theirs.to_out[1].weight.copy_(ours.proj.weight)
        x = _x(dim)
        tokens = x.reshape(B, H * W, dim)
        q, _, v = theirs.to_qkv(tokens)  # B, heads, N, d each
        blocks = q.reshape(B, heads, side, H // side, side, W // side, d)
        agents = blocks.mean(dim=(3, 5)).reshape(B, heads, side * side, d)  # row-major over the agent grid
        core = theirs(tokens, agent_tokens=agents).reshape(B, H, W, dim)
        v_grid = v.transpose(-2, -1).reshape(B, heads * d, H, W)
        local = F.conv2d(v_grid, ours.dwc.weight, ours.dwc.bias, padding=1, groups=heads * d)  # B, h·d, H, W
        expected = core + F.linear(local.permute(0, 2, 3, 1), ours.proj.weight) + ours.proj.bias
        assert _rel(ours(x), expected) < 1e-10


# ------------------------------------------------------------------------------------------------------- axial
def test_axial_matches_axial_attention_sequential():
    """``axial_attention.AxialAttention(sum_axial_out=False)`` (one axis after the other, not the sum of both) with
    its weights copied into ours: the same layer, to rounding.

    Differences removed:

    * **order**: the package attends along the first spatial dimension first (for ``[B, H, W, C]``, ``dim_index=-1``:
      along H, i.e. columns), ours along rows first. The package is given the transposed grid ``[B, W, H, C]``, so
      its first axis is our rows, and its output is transposed back. Row and column attention do not commute, so
      without the transpose the outputs differ.
    * **intermediate projection**: each of the package's axes is a full attention with its own output projection
      ``to_out`` (Linear ``inner → dim``, with bias) and bias-free ``to_q``/``to_kv``; ours goes straight from the
      row attention's heads to the column attention's qkv projection. The composition ``to_qkv₂ ∘ to_out₁`` is one
      affine map ``inner → 3·inner``, so it is folded into our ``qkv_cols`` (weight ``W_qkv₂ W_out₁``, bias
      ``W_qkv₂ b_out₁``). Our ``qkv_rows`` bias is set to zero (the package's ``to_q``/``to_kv`` have none).
    """
    package = pytest.importorskip("axial_attention")
    torch.manual_seed(0)
    dim, heads = 32, 4
    ours = create_attention("axial", dim=dim, heads=heads).double().eval()
    theirs = package.AxialAttention(dim, num_dimensions=2, heads=heads, dim_index=-1,
                                    sum_axial_out=False).double().eval()
    first, second = (axial.fn for axial in theirs.axial_attentions)  # first: along dim 1 of the input
    with torch.no_grad():
        ours.qkv_rows.weight.copy_(torch.cat([first.to_q.weight, first.to_kv.weight]))  # rows (q|k|v), (heads, d)
        ours.qkv_rows.bias.zero_()
        qkv_second = torch.cat([second.to_q.weight, second.to_kv.weight])  # 3·inner, dim
        ours.qkv_cols.weight.copy_(qkv_second @ first.to_out.weight)
        ours.qkv_cols.bias.copy_(qkv_second @ first.to_out.bias)
        ours.proj.load_state_dict(second.to_out.state_dict())
        x = _x(dim)
        expected = theirs(x.transpose(1, 2)).transpose(1, 2)  # the package's first axis is our rows (W)
        assert _rel(ours(x), expected) < 1e-10
