"""Numerics of the Darcy data: Gaussian random field, two-valued coefficient, finite-difference solve.

This follows the Li et al. (2020) recipe (FNO paper §5.2, ``GRF.m``/``solve_gwf.m``) with one deliberate change:
face coefficients are harmonic means of the node values, which is the consistent choice for a piecewise-constant
coefficient (the original arithmetic means on a spline-interpolated field differ by ~0.25 % relative L2 in u).
Pure numpy/scipy, no torch, so worker processes stay light. Arrays are indexed ``[i, j]`` = ``(x_i, y_j)`` on the
node grid ``x_i = i h``, ``h = 1/(N-1)``.
"""

from __future__ import annotations

from collections.abc import Callable

import numpy as np
import scipy.fft
import scipy.sparse
import scipy.sparse.linalg

__all__ = ["A_NEG", "A_POS", "ALPHA", "TAU", "SOLVER_VERSION", "coefficient", "grf", "node_grid", "solve"]

ALPHA = 2.0
TAU = 3.0
A_POS = 12.0  # paper §5.2; the released demo.m says 4 for the negative part but the public data only hold {3, 12}
A_NEG = 3.0
# Bump when a change to the numerics changes the generated data, so old cache entries stop matching.
SOLVER_VERSION = "fd5-harmonic-1"

Field = np.ndarray | Callable[[np.ndarray, np.ndarray], np.ndarray]


def grf(n_nodes: int, rng: np.random.Generator, alpha: float = ALPHA, tau: float = TAU) -> np.ndarray:
    """Sample a zero-mean Gaussian random field with covariance ∝ (−Δ + τ² I)^(−α), Neumann Laplacian.

    Karhunen–Loève expansion in the cosine basis, as in ``GRF.m``: white noise times the square root of the
    covariance eigenvalues, then an orthonormal inverse DCT-II (MATLAB's ``idct2``).

    Args:
        n_nodes: Points per side N.
        rng: Source of the N×N standard normal coefficients (the only randomness).
        alpha: Smoothness exponent α.
        tau: Inverse length scale τ.

    Returns:
        g, float64 [N, N]. Its overall scale is irrelevant to the thresholded coefficient.
    """
    xi = rng.standard_normal((n_nodes, n_nodes))
    k = np.arange(n_nodes, dtype=np.float64)
    k1, k2 = np.meshgrid(k, k, indexing="ij")
    coef = tau ** (alpha - 1.0) * (np.pi**2 * (k1**2 + k2**2) + tau**2) ** (-alpha / 2.0)
    spectrum = n_nodes * coef * xi
    spectrum[0, 0] = 0.0  # drop the constant mode so the field has mean exactly zero, as GRF.m does
    return scipy.fft.idctn(spectrum, type=2, norm="ortho")


def coefficient(g: np.ndarray, a_pos: float = A_POS, a_neg: float = A_NEG) -> np.ndarray:
    """Threshold a field at zero: ``a_pos`` where g >= 0, ``a_neg`` where g < 0.

    Args:
        g: Field of any shape.

    Returns:
        a, float64, same shape as ``g``, taking only the two values.
    """
    return np.where(g >= 0.0, a_pos, a_neg)


def node_grid(n_nodes: int) -> tuple[np.ndarray, np.ndarray]:
    """Node coordinates of the unit square, ``indexing='ij'``: two float64 [N, N] arrays (x, y)."""
    t = np.linspace(0.0, 1.0, n_nodes)
    return np.meshgrid(t, t, indexing="ij")


def _as_nodes(value: Field | float, n_nodes: int | None, name: str) -> np.ndarray:
    """Evaluate a scalar, array or callable f(x, y) on the node grid; returns float64 [N, N] (or the scalar)."""
    if callable(value):
        if n_nodes is None:
            raise ValueError(f"{name} is a callable; pass n_nodes to fix the grid")
        x, y = node_grid(n_nodes)
        return np.broadcast_to(np.asarray(value(x, y), dtype=np.float64), (n_nodes, n_nodes))
    return np.asarray(value, dtype=np.float64)


def _harmonic(p: np.ndarray, q: np.ndarray) -> np.ndarray:
    return 2.0 * p * q / (p + q)


def solve(a: Field, f: Field | float = 1.0, n_nodes: int | None = None, method: str = "auto") -> np.ndarray:
    """Solve −∇·(a∇u) = f on [0,1]² with u = 0 on the boundary, 5-point finite differences on the node grid.

    The unknowns are the (N−2)² interior nodes in row-major order. Each face carries the harmonic mean of the two
    node values it joins; the matrix is symmetric positive definite and built in one ``scipy.sparse.diags`` call.

    Args:
        a: Coefficient at the nodes, [N, N] positive, or a callable a(x, y) evaluated at the nodes
            (then ``n_nodes`` is required).
        f: Right-hand side: a constant, an [N, N] array at the nodes, or a callable f(x, y).
        n_nodes: Grid size N, needed only when ``a`` is a callable.
        method: ``"direct"`` (SuperLU, MMD ordering), ``"amg"`` (pyamg Ruge–Stüben + CG, needs pyamg) or ``"auto"``
            (amg when pyamg imports and N >= 256, where it is ~1.5× faster; otherwise direct).

    Returns:
        u, float64 [N, N], zero on the boundary rows and columns.
    """
    a_nodes = _as_nodes(a, n_nodes, "a")
    if a_nodes.ndim != 2 or a_nodes.shape[0] != a_nodes.shape[1] or a_nodes.shape[0] < 3:
        raise ValueError(f"a must be a square [N, N] grid with N >= 3, got shape {a_nodes.shape}")
    if np.any(a_nodes <= 0):
        raise ValueError("a must be positive everywhere")
    n = a_nodes.shape[0]
    m = n - 2
    h = 1.0 / (n - 1)
    f_nodes = _as_nodes(f, n, "f")

    # Face coefficients of every interior node towards its four neighbours, each [m, m].
    c = a_nodes[1:-1, 1:-1]
    east = _harmonic(c, a_nodes[2:, 1:-1]).ravel()    # (i+1, j): row offset +m
    west = _harmonic(c, a_nodes[:-2, 1:-1]).ravel()
    north = _harmonic(c, a_nodes[1:-1, 2:]).ravel()   # (i, j+1): offset +1
    south = _harmonic(c, a_nodes[1:-1, :-2]).ravel()

    diag = east + west + north + south
    # Symmetric couplings. The ±1 diagonal must not link the last node of one row to the first of the next.
    up1 = -north[:-1].copy()
    up1[np.arange(1, m * m) % m == 0] = 0.0
    upm = -east[:-m]
    A = scipy.sparse.diags([diag, up1, up1, upm, upm], [0, 1, -1, m, -m], shape=(m * m, m * m), format="csr")
    A = A * (1.0 / h**2)
    b = np.broadcast_to(f_nodes, (n, n))[1:-1, 1:-1].ravel().astype(np.float64)

    inner = _linear_solve(A, b, method)
    u = np.zeros((n, n))
    u[1:-1, 1:-1] = inner.reshape(m, m)
    return u


def _linear_solve(A: scipy.sparse.csr_matrix, b: np.ndarray, method: str) -> np.ndarray:
    """Solve the SPD system; ``auto`` prefers pyamg only where it is measured to be faster (large N)."""
    if method not in ("auto", "direct", "amg"):
        raise ValueError(f"method must be 'auto', 'direct' or 'amg', got {method!r}")
    if method != "direct":
        try:
            import pyamg  # optional: not a dependency of attnbench
        except ImportError:
            if method == "amg":
                raise
            pyamg = None
        if pyamg is not None and (method == "amg" or A.shape[0] >= 254 * 254):
            x = pyamg.ruge_stuben_solver(A).solve(b, tol=1e-10, accel="cg")
            return np.asarray(x)
    return scipy.sparse.linalg.spsolve(A.tocsc(), b, permc_spec="MMD_AT_PLUS_A")
