"""Native CPU kernels, compiled on first use with ``torch.utils.cpp_extension`` and cached per machine.

Two kernels, both MANO's: its window attention on every level of the V-cycle in one operator (:func:`mano_windows`,
source ``mano_windows.cpp``), and its two LayerNorms in a row as one (:func:`double_norm`, source
``double_norm.cpp``). On the accuracy suites' small grids the Python formulations launch tens of tiny operators per
layer (forward) and twice as many backward, and the launches, not the arithmetic, set the time; the kernels do the
same arithmetic in one pass per direction.

Building needs a C++ compiler and ninja (``pip install ninja``, a dependency). Where either is missing, or the build
fails, or ``ATTNBENCH_NATIVE=0`` is set, :func:`mano_windows_status` says why and :mod:`attnbench.attention.mano`
runs its Python paths instead (the same outputs up to float rounding; results rows name the path in ``impl``).

The build goes to torch's extension cache (``TORCH_EXTENSIONS_DIR``, by default ``~/.cache/torch_extensions``),
under a name that includes this machine's CPU model, since the code is compiled for the host's instruction set
(``-march=native``); torch rebuilds when the source or flags change and serialises concurrent builds with a lock.
:func:`prepare` builds ahead of time, so no timed or memory-measured call pays for compilation.
"""

from __future__ import annotations

import hashlib
import logging
import os
import platform
from pathlib import Path

import torch

__all__ = ["double_norm", "mano_windows", "mano_windows_status", "prepare", "quiet_cpp_extension_log"]

_SOURCES = [Path(__file__).with_name(name) for name in ("mano_windows.cpp", "double_norm.cpp")]
_state: dict[str, str | bool] = {}


def _cpu_tag() -> str:
    """A short stable tag of the host CPU (model name and ISA flags), so a shared cache never serves a build made
    for another instruction set."""
    text = platform.machine()
    try:
        with open("/proc/cpuinfo") as f:
            lines = [line for line in f if line.startswith(("model name", "flags"))]
        text += "".join(sorted(set(lines)))
    except OSError:
        text += platform.processor()
    return hashlib.sha1(text.encode()).hexdigest()[:10]


def quiet_cpp_extension_log() -> None:
    """Silence ``torch.utils.cpp_extension``'s import-time warning, for this process: on import it looks for a CUDA
    toolkit and, where it finds ``nvcc`` but no GPU, logs "No CUDA runtime is found" on stderr. That says nothing
    about a CPU build, and it would turn a one-line error into two. Called before this module builds the kernel and
    by the case processes (``torch.utils.benchmark`` imports ``cpp_extension`` too)."""
    logging.getLogger("torch.utils.cpp_extension").setLevel(logging.ERROR)


def _load() -> None:
    if os.environ.get("ATTNBENCH_NATIVE", "1") == "0":
        _state.update(ok=False, reason="disabled by ATTNBENCH_NATIVE=0")
        return
    if platform.system() != "Linux":
        _state.update(ok=False, reason=f"native kernels are built on Linux only (this is {platform.system()})")
        return
    try:
        quiet_cpp_extension_log()
        from torch.utils import cpp_extension

        cpp_extension.load(
            name=f"attnbench_mano_{_cpu_tag()}",
            sources=[str(source) for source in _SOURCES],
            extra_cflags=["-O3", "-march=native", "-fopenmp"],
            extra_ldflags=["-fopenmp"],
            is_python_module=False,
            verbose=False,
        )
        _register_fakes()
    except Exception as exc:  # no compiler, no ninja, a failed build: the Python paths serve instead
        lines = str(exc).strip().splitlines()
        first_error = next((line for line in lines if "error" in line.lower()), lines[-1] if lines else "")
        _state.update(ok=False, reason=f"build failed: {type(exc).__name__}: {first_error.strip()}"[:300])
        return
    _state.update(ok=True, reason="")


class _Windows(torch.autograd.Function):
    """Autograd for the kernel. A plain Function rather than ``torch.library.register_autograd``: the latter's Python
    wrapper cost about 0.35 ms per call on the 2-core VM (profiled), a tenth of a small layer's forward."""

    @staticmethod
    def forward(ctx, qkv, shapes, window, stride, scale):
        ctx.save_for_backward(qkv)
        ctx.geometry = (shapes, window, stride, scale)
        return torch.ops.attnbench_mano.windows(qkv, shapes, window, stride, scale)

    @staticmethod
    def backward(ctx, grad_out):
        (qkv,) = ctx.saved_tensors
        return torch.ops.attnbench_mano.windows_backward(grad_out, qkv, *ctx.geometry), None, None, None, None


class _DoubleNorm(torch.autograd.Function):
    """Autograd for :func:`double_norm`: saves the parts and the per-token statistics, recomputes the normalised
    values; the input gradient comes back as one ``[B, T, C]`` tensor, handed to the parts as views."""

    @staticmethod
    def forward(ctx, w1, b1, w2, b2, eps1, eps2, *xs):
        y, stats = torch.ops.attnbench_mano.double_norm(list(xs), w1, b1, w2, b2, eps1, eps2)
        ctx.save_for_backward(stats, w1, b1, w2, *xs)
        return y

    @staticmethod
    def backward(ctx, grad_y):
        stats, w1, b1, w2, *xs = ctx.saved_tensors
        grad_x, *grads = torch.ops.attnbench_mano.double_norm_backward(grad_y, xs, stats, w1, b1, w2)
        return *grads, None, None, *grad_x.split([x.shape[1] for x in xs], dim=1)


def _register_fakes() -> None:
    """Output shapes for torch.compile's tracing: the operators stay opaque calls in a compiled graph."""

    @torch.library.register_fake("attnbench_mano::windows")
    def _(qkv, shapes, window, stride, scale):
        _, heads, d, B, T = qkv.shape
        return qkv.new_empty(heads, d, B, T)

    @torch.library.register_fake("attnbench_mano::windows_backward")
    def _(grad_out, qkv, shapes, window, stride, scale):
        return torch.empty_like(qkv)

    @torch.library.register_fake("attnbench_mano::double_norm")
    def _(xs, w1, b1, w2, b2, eps1, eps2):
        B, _, C = xs[0].shape
        T = sum(x.shape[1] for x in xs)
        return xs[0].new_empty(B, T, C), xs[0].new_empty(B * T, 4)

    @torch.library.register_fake("attnbench_mano::double_norm_backward")
    def _(grad_y, xs, stats, w1, b1, w2):
        return torch.empty_like(grad_y), *(w1.new_empty(w1.shape) for _ in range(4))


def prepare() -> bool:
    """Build (or load the cached build of) the kernels once per process; True when they are usable."""
    if "ok" not in _state:
        _load()
    return bool(_state["ok"])


def mano_windows_status() -> str:
    """'' when the MANO window kernel is usable, else why not (building it first if no attempt was made)."""
    prepare()
    return str(_state["reason"])


def mano_windows(qkv: torch.Tensor, shapes: list[int], window: int, stride: int, scale: float) -> torch.Tensor:
    """Window attention on every level at once: ``qkv [3, heads, d, B, T]`` (contiguous, channel-first: the layout
    ``W · xᵀ`` gives; the levels' tokens concatenated finest first, each row-major) and ``shapes = [h_0, w_0, h_1,
    w_1, …]`` → ``[heads, d, B, T]``: per token, the mean over the ``window × window`` windows (``stride`` apart,
    inside its level) that contain it of that window's softmax attention output, scores scaled by ``scale``.
    Differentiable in ``qkv``; CPU, float32 or float64, window <= 4. Call :func:`prepare` first."""
    if not (torch.is_grad_enabled() and qkv.requires_grad):
        # Nothing to differentiate: the operator itself, without the autograd Function's Python machinery (about
        # 50 µs per call profiled on the 2-core VM, a tenth of a 16² layer's forward).
        return torch.ops.attnbench_mano.windows(qkv, shapes, window, stride, scale)
    return _Windows.apply(qkv, shapes, window, stride, scale)


def double_norm(xs: list[torch.Tensor], norm1: torch.nn.LayerNorm, norm2: torch.nn.LayerNorm) -> torch.Tensor:
    """``norm2(norm1(torch.cat(xs, 1)))`` in one pass per token, without the concatenation: ``xs``, tensors
    ``[B, n_i, C]`` (one B and C) → ``[B, Σ n_i, C]``, both LayerNorms over C with weights and biases
    (differentiable in every part and all four parameters). CPU, float32 or float64; call :func:`prepare` first."""
    xs = [x.contiguous() for x in xs]
    params = (norm1.weight, norm1.bias, norm2.weight, norm2.bias)
    if not (torch.is_grad_enabled() and any(t.requires_grad for t in (*params, *xs))):
        return torch.ops.attnbench_mano.double_norm(xs, *params, norm1.eps, norm2.eps)[0]  # no autograd machinery
    return _DoubleNorm.apply(*params, norm1.eps, norm2.eps, *xs)
