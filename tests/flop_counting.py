"""Counting a module's FLOPs as torch's ``FlopCounterMode`` does, with the math SDPA kernel (so attention shows
as matmuls) and a corrected formula for a grouped convolution's weight gradient — shared by the registry-wide FLOP
test and the mechanism tests that check non-default options."""

from __future__ import annotations

import torch
from torch.nn.attention import SDPBackend, sdpa_kernel
from torch.utils.flop_counter import FlopCounterMode, conv_backward_flop

__all__ = ["counted_flops"]


def _grouped_conv_backward_flop(grad_out_shape, x_shape, w_shape, bias, stride, padding, dilation, transposed,
                                output_padding, groups, output_mask, out_shape, **kwargs) -> int:
    """torch's ``convolution_backward`` formula with the weight gradient of a grouped convolution divided by
    ``groups``: torch's own counts it as a dense convolution's (its comment skips groups "for the sake of
    brevity"), ``groups`` times too many for the depthwise convolutions of focused_linear, agent or efficientvit."""
    formula = conv_backward_flop.__wrapped__  # torch registers it wrapped in a tensor → shape converter
    args = (grad_out_shape, x_shape, w_shape, bias, stride, padding, dilation, transposed, output_padding, groups)
    grad_input = formula(*args, [output_mask[0], False], out_shape)
    grad_weight = formula(*args, [False, output_mask[1]], out_shape)
    return grad_input + grad_weight // groups


def counted_flops(module: torch.nn.Module, x: torch.Tensor, backward: bool) -> int:
    """Total FLOPs the counter sees for one forward (and, with ``backward``, a backward of ``ones``)."""
    counter = FlopCounterMode(display=False, custom_mapping={torch.ops.aten.convolution_backward:
                                                             _grouped_conv_backward_flop})
    with sdpa_kernel(SDPBackend.MATH), counter:
        y = module(x)
        if backward:
            y.backward(torch.ones_like(y))
    return counter.get_total_flops()
