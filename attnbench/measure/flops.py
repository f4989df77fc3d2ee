"""Counting FLOPs with torch's ``FlopCounterMode``, mended where its count is wrong for the models benchmarked here.

Two mends, both found by comparing its counts with the mechanisms' own formulas (``tests/attention/test_flops.py``):

- **Attention on CPU counts as nothing.** The counter has formulas for the CUDA SDPA kernels, not for the CPU flash
  kernel (``aten._scaled_dot_product_flash_attention_for_cpu``), so a forward and backward of full attention on
  CPU counted 0 FLOPs. While counting, SDPA is pinned to the math kernel, which the counter sees as its matmuls:
  forward ``4·B·heads·N_q·N_k·d``, backward twice that (the math kernel keeps the scores and does not recompute
  them; a fused kernel's backward recomputes them, 2.5×, which the mechanisms' own ``flops`` count).
- **A grouped convolution's weight gradient counts as a dense one's.** torch's ``convolution_backward`` formula
  skips ``groups`` "for the sake of brevity", so a depthwise convolution's weight gradient counted ``groups``
  (= channels) times its work — about 22× too much compute per step for efficientvit. Here it is divided by
  ``groups``.

Not counted, as by the counter: FFTs (``fno``, ``afno``), elementwise work, softmax, norms — and whatever a custom
kernel computes inside (``mano``'s native window path): count such a mechanism built with its
``flop_counter_kwargs`` (``TrainCase.build_counting_model`` does). A count needs one forward (and backward) of the
module; it is a count of operations, not a time, so it may run on any device — but the math kernel holds the full
``B·heads·N²`` score matrix, so counting global attention on a large grid needs that much memory (a training
case's count that fails records no value rather than failing the case).
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import Any

import torch

__all__ = ["count_flops", "flop_counter"]


def _grouped_conv_backward_flop(grad_out_shape: Any, x_shape: Any, w_shape: Any, bias: Any, stride: Any,
                                padding: Any, dilation: Any, transposed: bool, output_padding: Any, groups: int,
                                output_mask: Any, out_shape: Any, **kwargs: Any) -> int:
    """torch's ``convolution_backward`` formula with the weight gradient of a grouped convolution divided by
    ``groups`` (the input gradient is already right: it is a grouped convolution of its own)."""
    from torch.utils.flop_counter import conv_backward_flop

    formula = conv_backward_flop.__wrapped__  # type: ignore[attr-defined]  # torch wraps it in a shape converter
    args = (grad_out_shape, x_shape, w_shape, bias, stride, padding, dilation, transposed, output_padding, groups)
    grad_input = formula(*args, [output_mask[0], False], out_shape)
    grad_weight = formula(*args, [False, output_mask[1]], out_shape)
    return int(grad_input + grad_weight // groups)


@contextmanager
def flop_counter() -> Iterator[Any]:
    """A ``FlopCounterMode`` with the mends above active; read ``.get_total_flops()`` after the block."""
    from torch.nn.attention import SDPBackend, sdpa_kernel
    from torch.utils.flop_counter import FlopCounterMode

    counter = FlopCounterMode(display=False, custom_mapping={torch.ops.aten.convolution_backward:
                                                             _grouped_conv_backward_flop})
    with sdpa_kernel(SDPBackend.MATH), counter:
        yield counter


def count_flops(step: Callable[[], object]) -> int:
    """FLOPs of everything ``step()`` computes (call ``.backward()`` inside it to count the backward too)."""
    with flop_counter() as counter:
        step()
    return int(counter.get_total_flops())
