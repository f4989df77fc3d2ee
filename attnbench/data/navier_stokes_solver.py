"""2-D incompressible Navier–Stokes in vorticity form on the unit torus, solved pseudo-spectrally in torch.

The setting of the FNO paper's Navier–Stokes data (Li et al. 2021, arXiv 2010.08895, their
``data_generation/navier_stokes/ns_2d.py``)::

    ∂ω/∂t + u·∇ω = ν Δω + f,    ∇·u = 0,    ω = ∂v/∂x − ∂u/∂y,    (x, y) ∈ [0, 1)²  (periodic)

with ν = 1e-3, forcing f(x, y) = 0.1 (sin 2π(x+y) + cos 2π(x+y)) and an initial vorticity drawn from the Gaussian
random field of FNO's code (``GaussianRF``, σ = 7^{3/2}, −Δ + 49 I to the power −2.5: see :func:`grf`). The
velocity comes from the stream function ψ, −Δψ = ω: u = ∂ψ/∂y, v = −∂ψ/∂x.

Scheme (ours; FNO's code uses Crank–Nicolson with a first-order explicit advection term): Crank–Nicolson for the
diffusion, second-order Adams–Bashforth for advection and forcing (CNAB2, the first step forward Euler), the
advection term u·∇ω evaluated in physical space from spectral derivatives, its spectrum truncated by the 2/3 rule
(as FNO's code does: the product is truncated, ω itself is not, so modes of ω above n/3 — which viscosity damps
within a few steps — can still alias). Second order in time; the Taylor–Green test in
``tests/data/test_navier_stokes.py`` measures the order.

Cost per step: 1 forward and 4 inverse real FFTs of ``[B, n, n]``, O(B n² log n).
"""

from __future__ import annotations

import math
from collections.abc import Sequence

import torch

__all__ = ["FORCING_AMPLITUDE", "SOLVER_VERSION", "VISCOSITY", "advection", "forcing", "grf", "solve", "velocity"]

SOLVER_VERSION = 1  # bump when the scheme changes what a seed produces (it is part of the dataset's recipe hash)
VISCOSITY = 1e-3
FORCING_AMPLITUDE = 0.1
GRF_ALPHA, GRF_TAU = 2.5, 7.0


def _grid(n: int, dtype: torch.dtype = torch.float64) -> tuple[torch.Tensor, torch.Tensor]:
    """Node coordinates ``x[i, j] = j / n``, ``y[i, j] = i / n`` (rows are y), ``[n, n]`` each."""
    t = torch.arange(n, dtype=dtype) / n
    y, x = torch.meshgrid(t, t, indexing="ij")
    return x, y


def forcing(n: int, dtype: torch.dtype = torch.float64, device: torch.device | str = "cpu") -> torch.Tensor:
    """``[n, n]``: f = 0.1 (sin 2π(x+y) + cos 2π(x+y)) on the node grid."""
    x, y = (t.to(device) for t in _grid(n, dtype))
    return FORCING_AMPLITUDE * (torch.sin(2 * math.pi * (x + y)) + torch.cos(2 * math.pi * (x + y)))


class _Spectral:
    """Wavenumbers of an ``n × n`` real FFT (``rfft2`` layout ``[n, n//2 + 1]``), the Laplacian's symbol and the 2/3
    dealiasing mask."""

    def __init__(self, n: int, dtype: torch.dtype = torch.float64, device: torch.device | str = "cpu") -> None:
        ky = torch.fft.fftfreq(n, d=1.0 / n, dtype=dtype, device=device)[:, None].expand(n, n // 2 + 1)  # rows: y
        kx = torch.fft.rfftfreq(n, d=1.0 / n, dtype=dtype, device=device)[None, :].expand(n, n // 2 + 1)
        self.n = n
        self.dx, self.dy = 2j * math.pi * kx, 2j * math.pi * ky  # ∂/∂x, ∂/∂y
        self.lap = 4 * math.pi**2 * (kx**2 + ky**2)  # the symbol of −Δ (≥ 0)
        inv = torch.zeros_like(self.lap)
        inv[self.lap > 0] = 1.0 / self.lap[self.lap > 0]
        self.inv_lap = inv  # the mean of ψ is 0 (ω has zero mean on the torus)
        self.keep = ((kx.abs() <= n / 3) & (ky.abs() <= n / 3)).to(dtype)  # 2/3 rule

    def velocity(self, w_h: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        psi_h = w_h * self.inv_lap  # −Δψ = ω
        u = torch.fft.irfft2(self.dy * psi_h, s=(self.n, self.n))
        v = torch.fft.irfft2(-self.dx * psi_h, s=(self.n, self.n))
        return u, v

    def advection_h(self, w_h: torch.Tensor) -> torch.Tensor:
        """The spectrum of u·∇ω, dealiased."""
        u, v = self.velocity(w_h)
        wx = torch.fft.irfft2(self.dx * w_h, s=(self.n, self.n))
        wy = torch.fft.irfft2(self.dy * w_h, s=(self.n, self.n))
        return torch.fft.rfft2(u * wx + v * wy) * self.keep


def velocity(w: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """``w [..., n, n]`` vorticity → ``(u, v)``, each ``[..., n, n]``: the velocity of stream function ψ, −Δψ = ω."""
    return _Spectral(w.shape[-1], w.dtype, w.device).velocity(torch.fft.rfft2(w))


def advection(w: torch.Tensor) -> torch.Tensor:
    """``w [..., n, n]`` → ``u·∇ω`` ``[..., n, n]`` (dealiased): the nonlinear term of the equation."""
    spec = _Spectral(w.shape[-1], w.dtype, w.device)
    return torch.fft.irfft2(spec.advection_h(torch.fft.rfft2(w)), s=(spec.n, spec.n))


def grf(batch: int, n: int, generator: torch.Generator, alpha: float = GRF_ALPHA, tau: float = GRF_TAU,
        dtype: torch.dtype = torch.float64) -> torch.Tensor:
    """``[batch, n, n]`` initial vorticities as FNO's ``GaussianRF(2, n, alpha, tau)`` draws them: complex normal
    coefficients (real and imaginary parts standard normal) on the full ``n × n`` spectrum, scaled by
    ``n² √2 σ (4π²|k|² + τ²)^{−α/2}`` with σ = τ^{α−1} (7^{3/2} for α = 2.5, τ = 7) and no mean mode, the real part
    of their inverse FFT — a zero-mean field with covariance operator 2σ² (−Δ + τ² I)^{−α}."""
    ky = torch.fft.fftfreq(n, d=1.0 / n, dtype=dtype)[:, None]
    kx = torch.fft.fftfreq(n, d=1.0 / n, dtype=dtype)[None, :]
    sigma = tau ** (alpha - 1)
    amplitude = n**2 * math.sqrt(2.0) * sigma * (4 * math.pi**2 * (kx**2 + ky**2) + tau**2) ** (-alpha / 2)
    amplitude[0, 0] = 0.0
    real = torch.randn(batch, n, n, generator=generator, dtype=dtype)
    imag = torch.randn(batch, n, n, generator=generator, dtype=dtype)
    return torch.fft.ifft2(amplitude * torch.complex(real, imag)).real


def solve(w0: torch.Tensor, f: torch.Tensor | None, visc: float, times: Sequence[float], dt: float) -> torch.Tensor:
    """Integrate from ``w0 [B, n, n]`` (t = 0) and return the vorticity at each of ``times`` (ascending, each a
    multiple of ``dt``): ``[len(times), B, n, n]``. ``f [n, n]`` is the forcing (None: unforced)."""
    if not times or min(times) < 0 or dt <= 0:
        raise ValueError(f"navier_stokes.solve: times must be a non-empty list of times >= 0 and dt > 0, got "
                         f"times={list(times)}, dt={dt}")
    n = w0.shape[-1]
    spec = _Spectral(n, w0.dtype, w0.device)
    steps = [round(t / dt) for t in times]
    if any(abs(s * dt - t) > 1e-9 * max(1.0, t) for s, t in zip(steps, times)) or steps != sorted(steps):
        raise ValueError(f"navier_stokes.solve: times {list(times)} must be ascending multiples of dt={dt}")
    f_h = torch.fft.rfft2(f) if f is not None else torch.zeros_like(spec.lap)
    w_h = torch.fft.rfft2(w0)
    explicit = None  # the previous step's −u·∇ω + f, for Adams–Bashforth
    half = 0.5 * dt * visc * spec.lap
    out, done = [], 0
    for step in range(steps[-1] + 1):
        while done < len(steps) and steps[done] == step:
            out.append(torch.fft.irfft2(w_h, s=(n, n)))
            done += 1
        if step == steps[-1]:
            break
        current = f_h - spec.advection_h(w_h)
        rhs = current if explicit is None else 1.5 * current - 0.5 * explicit
        w_h = ((1 - half) * w_h + dt * rhs) / (1 + half)
        explicit = current
    return torch.stack(out)
