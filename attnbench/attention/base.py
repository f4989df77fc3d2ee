"""The attention contract every registered mechanism follows.

A grid attention is an ``nn.Module`` mapping a channels-last grid ``x: [B, H, W, C]`` to ``[B, H, W, C]``.
It declares what it cannot run through :meth:`GridAttention.not_supported_reasons` (xFormers' capability
pattern), so a harness can record ``unsupported: <reasons>`` instead of crashing, and it validates its
constructor arguments eagerly with :class:`ValueError` messages that name the parameter, the value and what
is allowed.
"""

from __future__ import annotations

from typing import Any, ClassVar

import torch
from torch import nn

__all__ = ["FAMILIES", "GridAttention", "QKVAttention", "check_choice", "check_dropout", "check_heads", "check_int",
           "log_floor"]


# The families a mechanism declares (``GridAttention.family``), in the order reports show them.
FAMILIES: dict[str, str] = {
    "global": "softmax attention over all N tokens",
    "window": "attention inside windows, grids, axes or neighbourhoods",
    "linear": "kernel, linear and low-rank approximations of softmax attention",
    "reduction": "attention over reduced keys or over channels",
    "multipole": "hierarchical (multilevel) attention",
    "operator": "attention designed as a PDE operator",
    "mixer": "token mixers that are not attention (spectral)",
    "other": "not declared",
}


def _owner(obj: Any) -> str:
    return getattr(obj, "registry_name", None) or type(obj).__name__


def check_int(owner: Any, name: str, value: Any, minimum: int) -> int:
    """Return ``value`` if it is an int >= ``minimum``, else raise a ValueError naming the parameter."""
    if isinstance(value, bool) or not isinstance(value, int) or value < minimum:
        raise ValueError(f"{_owner(owner)}: {name}={value!r} is invalid; expected an integer >= {minimum}")
    return value


def check_dropout(owner: Any, name: str, value: Any) -> float:
    """Return ``value`` as float if it is a probability in [0, 1), else raise a ValueError."""
    if isinstance(value, bool) or not isinstance(value, (int, float)) or not 0.0 <= value < 1.0:
        raise ValueError(f"{_owner(owner)}: {name}={value!r} is invalid; expected a float in [0, 1)")
    return float(value)


def check_choice(owner: Any, name: str, value: Any, allowed: tuple[str, ...]) -> str:
    """Return ``value`` if it is one of ``allowed``, else raise a ValueError listing them."""
    if value not in allowed:
        raise ValueError(f"{_owner(owner)}: {name}={value!r} is invalid; expected one of {', '.join(allowed)}")
    return value


def check_heads(owner: Any, dim: Any, heads: Any, dim_head: Any = None) -> int:
    """Validate ``dim`` and ``heads``; return the head dimension (``dim_head`` or ``dim // heads``)."""
    check_int(owner, "dim", dim, 1)
    check_int(owner, "heads", heads, 1)
    if dim_head is not None:
        return check_int(owner, "dim_head", dim_head, 1)
    if dim % heads:
        raise ValueError(
            f"{_owner(owner)}: heads={heads} does not divide dim={dim}; expected a divisor of {dim} "
            f"(one of {', '.join(str(d) for d in range(1, dim + 1) if dim % d == 0)})"
        )
    return dim // heads


class GridAttention(nn.Module):
    """Base class of the attention contract.

    Shapes:
        ``forward(x)``: ``x`` is ``[B, H, W, C]`` (channels last) and the result is ``[B, H, W, C]``.

    Subclasses set the class variables below (shown by ``attnbench list`` and docs/mechanisms.md) and implement
    ``forward``. They call ``super().__init__()`` and validate their arguments with the ``check_*`` helpers.

    Class variables:
        family: the kind of token mixing, one of :data:`FAMILIES` (suites select by it: ``families = ["window"]``;
            figures draw one panel per family). Plugins declare theirs; ``"other"`` when they do not.
        benchmark: the named configuration (:func:`~attnbench.registry.register_config`) that suites sweep when
            they select this mechanism by family or pattern — its published benchmark settings (window 8, 64
            landmarks, ...); ``None``: the mechanism with its defaults.
        complexity: time and memory in ``N = H·W`` (and the other hyper-parameters), e.g. ``"O(N^2 d) / O(N)"``.
        constraints: human-readable grid/device constraints, e.g. ``"H, W divisible by window"``.
        reference: the paper or library implemented.
        supported_devices: device types the implementation runs on.
        supported_dtypes: dtypes the implementation runs in.
        backward_devices: device types with a backward pass (``None``: every supported device). Tests and the
            harness read it through ``not_supported_reasons(..., backward=True)``, never by mechanism name.

    Hooks a harness or model asks instead of naming a mechanism: :meth:`grid_kwargs` (constructor arguments a grid
    needs), :meth:`block_kwargs` (per-block options in a stack, e.g. Swin's alternating shift),
    :meth:`receptive_field` / :meth:`is_global` (what one layer reaches at a grid) and :meth:`extra_info`.
    """

    registry_name: ClassVar[str | None] = None
    family: ClassVar[str] = "other"
    benchmark: ClassVar[str | None] = None
    complexity: ClassVar[str] = "?"
    constraints: ClassVar[str] = "none"
    reference: ClassVar[str] = "?"
    supported_devices: ClassVar[frozenset[str]] = frozenset({"cpu", "cuda"})
    supported_dtypes: ClassVar[frozenset[torch.dtype]] = frozenset({torch.float32, torch.bfloat16, torch.float16})
    backward_devices: ClassVar[frozenset[str] | None] = None

    @classmethod
    def grid_kwargs(cls, height: int, width: int) -> dict[str, Any]:
        """Constructor arguments an instance needs for a given grid (e.g. a fixed ``image_size``); default none.

        A harness merges these under the user's own arguments when it builds an instance per grid.
        """
        return {}

    @classmethod
    def block_kwargs(cls, index: int, kwargs: dict[str, Any]) -> dict[str, Any]:
        """Constructor arguments of the ``index``-th block (0-based) of a stack built from ``kwargs``; default as given.

        A model that stacks layers calls this per block, so per-block conventions of a mechanism (Swin's W-MSA /
        SW-MSA alternation) live on the mechanism.
        """
        return dict(kwargs)

    def receptive_field(self, height: int, width: int) -> tuple[int, int]:
        """Rows and columns of the ``height × width`` grid that one output token of one layer can depend on.

        Default: the whole grid (global attention). Local mechanisms return their window extent, capped at the grid.
        """
        return height, width

    def is_global(self, height: int, width: int) -> bool:
        """Whether one layer has a global receptive field on a ``height × width`` grid."""
        rows, cols = self.receptive_field(height, width)
        return rows >= height and cols >= width

    def not_supported_reasons(
        self,
        height: int,
        width: int,
        device: torch.device | str = "cpu",
        dtype: torch.dtype = torch.float32,
        backward: bool = False,
    ) -> list[str]:
        """Why this instance cannot run on a ``height × width`` grid; an empty list means it can.

        Args:
            height, width: the grid. device, dtype: where and in what precision it would run.
            backward: whether gradients are needed (some backends are forward-only on some devices).

        Subclasses extend the list with their own constraints (``super()`` first).
        """
        reasons: list[str] = []
        device_type = torch.device(device).type
        if device_type not in self.supported_devices:
            supported = ", ".join(sorted(self.supported_devices))
            reasons.append(f"device {device_type} not supported (supported: {supported})")
        if dtype not in self.supported_dtypes:
            names = ", ".join(sorted(str(d).removeprefix("torch.") for d in self.supported_dtypes))
            reasons.append(f"dtype {str(dtype).removeprefix('torch.')} not supported (supported: {names})")
        if backward and self.backward_devices is not None and device_type not in self.backward_devices:
            reasons.append(f"{_owner(self)} has no backward pass on {device_type} "
                           f"(backward on: {', '.join(sorted(self.backward_devices)) or 'none'})")
        if height < 1 or width < 1:
            reasons.append(f"grid {height}x{width} is empty")
        return reasons

    def extra_info(self) -> dict[str, Any]:
        """Implementation facts a results row should record (e.g. the SDPA backend used, padding)."""
        return {}

    # ------------------------------------------------------------------------------------------- cost model
    # Backward FLOPs per forward FLOP: a matmul's backward computes the input and the weight gradient (2×); fused
    # attention's backward recomputes the scores, 5 matmuls for the forward's 2 (2.5×), as FlashAttention and
    # TritonBench count (fwd + bwd = 3.5 × fwd).
    BACKWARD_RATIO: ClassVar[dict[str, float]] = {"matmul": 2.0, "sdpa": 2.5}
    # Keyword arguments under which every FLOP that :meth:`flop_parts` counts runs as a matmul or SDPA that
    # ``FlopCounterMode`` sees (the FLOP test builds the mechanism with them), for mechanisms whose fast path
    # computes the same operations in another form (``mano``: shifted element-wise products).
    flop_counter_kwargs: ClassVar[dict[str, Any]] = {}

    def flop_parts(self, batch: int, height: int, width: int) -> dict[str, int] | None:
        """Forward FLOPs of one call on ``[batch, height, width, C]``, by kind, from the mechanism's own formula.

        Counted as ``torch.utils.flop_counter.FlopCounterMode`` counts: 2 per multiply-add of matmuls and
        convolutions (``matmul``) and of the two products of scaled-dot-product attention (``sdpa``); elementwise
        ops, softmax and norms are not counted. ``None``: the mechanism declares no formula (plugins may).
        """
        return None

    def flops(self, batch: int, height: int, width: int, mode: str = "fwd") -> int | None:
        """FLOPs of one ``fwd`` or ``fwd_bwd`` call (see :attr:`BACKWARD_RATIO`); ``None`` when not declared."""
        parts = self.flop_parts(batch, height, width)
        if parts is None:
            return None
        total: float = sum(parts.values())
        if mode == "fwd_bwd":
            total += sum(self.BACKWARD_RATIO[kind] * value for kind, value in parts.items())
        return int(total)

    def bytes_moved(self, batch: int, height: int, width: int, dim: int, mode: str = "fwd",
                    element_size: int = 4) -> int:
        """Minimum memory traffic of one call, bytes: ``fwd`` reads x and the parameters and writes y;
        ``fwd_bwd`` also reads the output gradient, x and the parameters again and writes the input and parameter
        gradients. A lower bound (every intermediate kept on chip), for a roofline's bandwidth side."""
        act = batch * height * width * dim
        params = sum(p.numel() for p in self.parameters())
        elements = 2 * act + params if mode == "fwd" else 5 * act + 3 * params
        return int(elements * element_size)

    @staticmethod
    def _check_input(x: torch.Tensor) -> tuple[int, int, int, int]:
        if x.dim() != 4:
            raise ValueError(f"expected x of shape [B, H, W, C], got {tuple(x.shape)}")
        B, H, W, C = x.shape
        return B, H, W, C


def log_floor(n: int, base: int) -> int:
    """``floor(log_base(n))`` with integer arithmetic (``math.log`` rounds badly for large n)."""
    if n < 1 or base < 2:
        raise ValueError(f"log_floor needs n >= 1 and base >= 2, got n={n}, base={base}")
    k, p = 0, base
    while p <= n:
        k, p = k + 1, p * base
    return k


class QKVAttention(GridAttention):
    """Shared frame of token-mixing attentions over all ``N = H·W`` tokens.

    ``x [B, H, W, C] → qkv Linear(C, 3·heads·dim_head) → attend(q, k, v) → proj Linear(heads·dim_head, C)``.
    Subclasses implement :meth:`attend` on ``q, k, v: [B, heads, N, dim_head]`` returning the same shape.
    """

    def __init__(
        self, dim: int, heads: int, dim_head: int | None = None, qkv_bias: bool = True, dropout: float = 0.0
    ) -> None:
        super().__init__()
        self.dim_head = check_heads(self, dim, heads, dim_head)
        self.dim, self.heads = dim, heads
        self.dropout = check_dropout(self, "dropout", dropout)
        inner = heads * self.dim_head
        self.qkv = nn.Linear(dim, 3 * inner, bias=bool(qkv_bias))
        self.proj = nn.Linear(inner, dim)
        self.proj_drop = nn.Dropout(self.dropout)

    def attend(self, q: torch.Tensor, k: torch.Tensor, v: torch.Tensor) -> torch.Tensor:
        raise NotImplementedError

    def attend_flops(self, batch: int, tokens: int) -> dict[str, int] | None:
        """Forward FLOPs of :meth:`attend` on ``N = tokens`` (see :meth:`GridAttention.flop_parts`)."""
        return None

    def flop_parts(self, batch: int, height: int, width: int) -> dict[str, int] | None:
        attend = self.attend_flops(batch, height * width)
        if attend is None:
            return None
        inner, n = self.heads * self.dim_head, batch * height * width
        parts = {"matmul": 2 * n * self.dim * 3 * inner + 2 * n * inner * self.dim}  # qkv and output projections
        for kind, value in attend.items():
            parts[kind] = parts.get(kind, 0) + value
        return parts

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        B, H, W, C = self._check_input(x)
        qkv = self.qkv(x.reshape(B, H * W, C)).reshape(B, H * W, 3, self.heads, self.dim_head)
        q, k, v = qkv.permute(2, 0, 3, 1, 4).unbind(0)  # each B, heads, N, dim_head
        out = self.attend(q, k, v)  # B, heads, N, dim_head
        out = out.transpose(1, 2).reshape(B, H, W, self.heads * self.dim_head)
        return self.proj_drop(self.proj(out))
