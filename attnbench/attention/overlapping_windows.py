"""Softmax attention inside overlapping k×k windows, averaged over the windows that cover each token, computed by
shifted element-wise products: MANO's per-level operator without one tiny attention launch per window.

With window k and stride s < k every token sits in up to ``ceil(k/s)²`` windows, and a window holds only ``k²``
tokens, so batched matrix products (SDPA over millions of 4-token sequences for k = 2) spend their time on launch
and layout, not arithmetic. Here every score a window needs is a dot product between a query and the key at a
fixed offset ``δ ∈ [-(k-1), k-1]²``, so all scores come from ``(2k-1)²`` shifted element-wise products over the whole
grid, the per-window softmaxes run on a small ``[k², k², ...]`` tensor, and the averaged output is again
``(2k-1)²`` shifted multiply-adds of the values (each token's weight for offset δ summed over its windows first).
A hand-written backward reuses the same shifted products, so training saves only q, k, v and the window
probabilities (O(N (C + heads k⁴ / s²)) memory) and allocates no per-window copies.

Layout: channel-first per head, ``[heads, d, B, h, w]``, so every shifted product runs over long contiguous rows
of the grid and the sum over ``d`` is a reduction over an outer dimension.

Work per level (N = B·h·w tokens, inner = heads·d): ``(2k-1)²`` passes of ``2·N·inner`` FLOPs for the scores and
as many for the output (k = 2: 36·N·inner), against ``4·k⁴·inner·N/s²`` for attention per window (k = 2, s = 1:
64·N·inner) — the overlapping windows share their dot products.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F

# Tokens per band of windows on large grids: the k = 2 level at 128² (C = 64) runs from cache on the development
# machine; a 256² level in one piece was 1.7× slower than in four bands (DRAM-bound).
BLOCK_TOKENS = 1 << 14

def _shifted(x: torch.Tensor, k: int) -> torch.Tensor:
    """``[heads, d, B, h, w]`` → view ``[D, D, heads, d, B, h, w]`` with ``[i, j, ..., y, x] = x[..., y+δy, x+δx]``
    for ``δ = (i, j) - (k-1)`` (zero where that is outside the grid); D = 2k-1. One padded copy, then a view."""
    h, w = x.shape[-2:]
    padded = F.pad(x, (k - 1, k - 1, k - 1, k - 1))
    return padded.unfold(3, h, 1).unfold(4, w, 1).permute(3, 4, 0, 1, 2, 5, 6)


def _offset_order(k: int) -> list[tuple[int, int]]:
    """The offsets ``(i, j)``, the centre first (it covers the whole grid, so it can initialise a sum)."""
    D = 2 * k - 1
    return sorted(((i, j) for i in range(D) for j in range(D)), key=lambda ij: ij != (k - 1, k - 1))


def _shifted_dots(a: torch.Tensor, b: torch.Tensor, k: int) -> torch.Tensor:
    """``[D, D, heads, B, h, w]``: ``Σ_c a[:, c, ..., y, x] · b[:, c, ..., y+δy, x+δx]`` (0 where the key is
    padding)."""
    shifted = _shifted(b, k)
    # One offset at a time into a reused buffer: a single broadcast product would hold (2k-1)² copies of the grid
    # (and is slower on CPU beyond tiny grids, its operands being 7-d strided views).
    out = a.new_empty(*shifted.shape[:3], *shifted.shape[4:])
    product = torch.empty_like(a)  # one buffer for every offset's products: no allocation per offset
    for i, j in _offset_order(k):
        torch.sum(torch.mul(a, shifted[i, j], out=product), dim=1, out=out[i, j])
    return out


def _shifted_combine(weights: torch.Tensor, values: torch.Tensor, k: int) -> torch.Tensor:
    """``[heads, d, B, h, w]``: ``Σ_δ weights[δ, :, None] · values[..., y+δy, x+δx]`` (weights broadcast over d)."""
    shifted = _shifted(values, k)
    weights = weights.unsqueeze(3)
    order = _offset_order(k)
    out = weights[order[0]] * shifted[order[0]]
    for i, j in order[1:]:
        out.addcmul_(weights[i, j], shifted[i, j])
    return out


def _window_view(by_offset: torch.Tensor, k: int, s: int, a: tuple[int, int], positions: tuple[int, int]):
    """For in-window query position ``a``: view ``[k, k, heads, B, Ph, Pw]`` of the offset tensor
    ``[D, D, heads, B, h, w]`` holding, for every window, the offsets from ``a`` to the window's ``k×k`` keys."""
    ay, ax = a
    ey, ex = (positions[0] - 1) * s + 1, (positions[1] - 1) * s + 1
    # Basic slicing (not as_strided): torch.compile traces it without a graph break.
    return by_offset[k - 1 - ay : 2 * k - 1 - ay, k - 1 - ax : 2 * k - 1 - ax, :, :, ay : ay + ey : s, ax : ax + ex : s]


def _query_positions(k: int) -> list[tuple[int, int]]:
    return [(ay, ax) for ay in range(k) for ax in range(k)]


def _gather(by_offset: torch.Tensor, k: int, s: int, positions) -> torch.Tensor:
    """``[D, D, heads, B, h, w]`` per-token offsets → ``[k², k², heads, B, Ph, Pw]`` per-window (query, key) pairs."""
    stacked = torch.stack([_window_view(by_offset, k, s, a, positions) for a in _query_positions(k)])
    return stacked.view(k * k, k * k, *stacked.shape[3:])


def _scatter(per_window: torch.Tensor, k: int, s: int, positions, shape) -> torch.Tensor:
    """Adjoint of :func:`_gather`: sum every window's (query, key) entry into its token and offset."""
    out = per_window.new_zeros(shape)
    per_window = per_window.view(k * k, k, k, *per_window.shape[2:])
    for index, a in enumerate(_query_positions(k)):  # for a fixed query position the view does not overlap itself
        _window_view(out, k, s, a, positions).add_(per_window[index])
    return out


def _softmax_(x: torch.Tensor) -> torch.Tensor:
    """Softmax over dim 1, in place (one buffer instead of three at the memory peak of inference)."""
    x -= x.amax(1, keepdim=True)
    x.exp_()
    x /= x.sum(1, keepdim=True)
    return x


def _adjoint_shift_(out_padded: torch.Tensor, weights: torch.Tensor, x: torch.Tensor, k: int) -> torch.Tensor:
    """``out[..., y+δy, x+δx] += weights[δ] · x[..., y, x]`` into a grid padded by ``k-1``; returns the crop."""
    h, w = x.shape[-2:]
    for i, j in _offset_order(k):
        out_padded[..., i : i + h, j : j + w].addcmul_(weights[i, j].unsqueeze(1), x)
    return out_padded[..., k - 1 : k - 1 + h, k - 1 : k - 1 + w]


class _OverlappingWindows(torch.autograd.Function):
    @staticmethod
    def forward(ctx, qkv, window, stride, count, dropout, generator, valid):
        _, heads, d, B, h, w = qkv.shape
        q, k, v = qkv.unbind(0)
        positions = ((h - window) // stride + 1, (w - window) // stride + 1)
        scale = d**-0.5
        scores = _shifted_dots(q, k, window)  # D, D, heads, B, h, w
        shape = scores.shape
        scores *= scale
        probs = _softmax_(_gather(scores, window, stride, positions))  # k²(query), k²(key), heads, B, Ph, Pw
        del scores
        keep = valid  # windows that do not exist (e.g. across two levels of a canvas) weigh nothing
        if dropout:
            drop = torch.empty_like(probs).bernoulli_(1 - dropout, generator=generator) / (1 - dropout)
            keep = drop if valid is None else drop * valid
        weights = _scatter(probs if keep is None else probs * keep, window, stride, positions, shape)
        weights /= count  # the average over the windows covering each token, folded into the weights
        out = _shifted_combine(weights, v, window)  # weights are 0 wherever the key would be padding
        ctx.save_for_backward(qkv, probs, weights, count, keep)
        ctx.geometry = (window, stride, positions, scale)
        return out

    @staticmethod
    def backward(ctx, grad_out):
        qkv, probs, weights, count, keep = ctx.saved_tensors
        window, stride, positions, scale = ctx.geometry
        q, k, v = qkv.unbind(0)
        grad_out = grad_out.contiguous()
        grad = torch.empty_like(qkv)
        padded = F.pad(torch.zeros_like(v), (window - 1,) * 4)
        grad[2] = _adjoint_shift_(padded, weights, grad_out, window)  # out = Σ_δ weights_δ · shift_δ(v)
        grad_probs = _gather(_shifted_dots(grad_out, v, window) / count, window, stride, positions)
        if keep is not None:
            grad_probs = grad_probs * keep
        grad_logits = probs * (grad_probs - (probs * grad_probs).sum(1, keepdim=True)) * scale
        grad_scores = _scatter(grad_logits, window, stride, positions, weights.shape)
        grad[0] = _shifted_combine(grad_scores, k, window)  # scores_δ = Σ_c q · shift_δ(k)
        grad[1] = _adjoint_shift_(padded.zero_(), grad_scores, q, window)
        return grad, None, None, None, None, None, None


def overlapping_window_attention(
    qkv: torch.Tensor, window: int, stride: int, count: torch.Tensor, dropout: float = 0.0,
    generator: torch.Generator | None = None, block_tokens: int = BLOCK_TOKENS, valid: torch.Tensor | None = None,
) -> torch.Tensor:
    """Window attention with overlapping windows, averaged per token.

    Args:
        qkv: ``[3, heads, d, B, h, w]`` queries, keys, values (channel-first per head).
        window, stride: k and s; ``(h - k)`` and ``(w - k)`` must be multiples of s (every token covered).
        count: ``[h, w]``, how many windows cover each token (the average's denominator).
        dropout: probability of dropping an attention weight (inside each window, as the reference does).
        block_tokens: grids with more tokens run as horizontal bands of windows of about this many tokens, so
            the (2k-1)² passes over each band hit cache rather than DRAM (same result up to summation order).
        valid: optional ``[Ph, Pw]`` (window positions ``(h-k)/s+1`` by ``(w-k)/s+1``), 1 for a window that
            exists, 0 for one whose output is dropped (a canvas of several grids: windows across two of them);
            ``count`` must then count only existing windows (and be nonzero everywhere).

    Returns:
        ``[heads, d, B, h, w]``: for each token, the mean over its windows of that window's softmax attention output.
    """
    if qkv.dim() != 6 or qkv.shape[0] != 3:
        raise ValueError(f"overlapping_window_attention: qkv must be [3, heads, d, B, h, w], got {list(qkv.shape)}")
    B, h, w = qkv.shape[3:]
    positions = ((h - window) // stride + 1, (w - window) // stride + 1)
    if valid is not None and tuple(valid.shape) != positions:
        raise ValueError(f"overlapping_window_attention: valid must be [Ph, Pw] = {list(positions)} (one entry per "
                         f"window position), got {list(valid.shape)}")
    rows = max(stride, block_tokens // (B * w) // stride * stride)  # window start rows per band
    if h - window < rows:
        return _OverlappingWindows.apply(qkv, window, stride, count, float(dropout), generator, valid)
    out = qkv.new_zeros(qkv.shape[1:])
    for start in range(0, h - window + 1, rows):
        # A band holds the windows starting on rows [start, start + rows); bands share k - s token rows.
        stop = min(h, start + rows + window - stride)
        band_valid = None if valid is None else valid[start // stride : (start + rows) // stride]
        band = _OverlappingWindows.apply(qkv[..., start:stop, :], window, stride, count[start:stop], float(dropout),
                                         generator, band_valid)
        out[..., start:stop, :] += band
    return out


def grouped_window_attention(qkv: torch.Tensor, window: int, stride: int, heads: int, count: torch.Tensor,
                             dropout: float = 0.0) -> torch.Tensor:
    """The same windows through ``scaled_dot_product_attention`` (mano's ``sdpa`` path, for windows too large for
    the shifted products): ``qkv [B, h, w, 3·inner] → [B, h, w, inner]``, the overlapping windows as ``ceil(k/s)²``
    groups of non-overlapping windows (strided views), each group one SDPA call; ``count [h, w, 1]``."""
    B, h, w, channels = qkv.shape
    k, s = window, stride
    inner = channels // 3
    dim_head = inner // heads
    out = qkv.new_zeros(B, h, w, inner)
    groups = -(-k // s)  # ceil(k / s): windows g, g+groups, ... never overlap
    step = groups * s
    for gh in range(groups):
        for gw in range(groups):
            if gh * s > h - k or gw * s > w - k:
                continue
            # Strided views of non-overlapping windows: B, nh, nw, 3*inner, k, k (no copy yet).
            win = qkv[:, gh * s :, gw * s :].unfold(1, k, step).unfold(2, k, step)
            nh, nw = win.shape[1], win.shape[2]
            win = win.permute(0, 1, 2, 4, 5, 3).reshape(B * nh * nw, k * k, 3, heads, dim_head)
            q, key, v = win.permute(2, 0, 3, 1, 4).unbind(0)  # B*nW, heads, k*k, dim_head
            o = F.scaled_dot_product_attention(q, key, v, dropout_p=dropout)  # B*nW, heads, k*k, dim_head
            o = o.transpose(1, 2).reshape(B, nh, nw, k, k, inner).permute(0, 1, 2, 5, 3, 4)
            # Add into the same windows of the output (a view with non-overlapping windows).
            target = out[:, gh * s :, gw * s :].unfold(1, k, step).unfold(2, k, step)[:, :nh, :nw]
            target += o
    return out / count
