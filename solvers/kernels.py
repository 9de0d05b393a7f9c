"""Compiled CPU kernels (numba): one explicit step over ``(S, Y + 2 gy, X + 2 gx)`` buffers.

Every kernel reads the ghost-filled source buffer and writes only the interior of the
destination, so boundary conditions stay in :mod:`gridformer.solvers.boundary`. Arguments always
have the same types (C-contiguous float64 3-D buffers, int64 offset arrays, Python floats and
ints), so each kernel compiles once per process. There are four kernels in all.
"""

from __future__ import annotations

import numpy as np
from numba import njit

__all__ = ["FLUX_CODES", "REACTION_CODES", "burgers_step", "nonfinite", "react_step",
           "stencil_step"]

# reaction kinds for react_step
FISHER_KPP, ALLEN_CAHN, GRAY_SCOTT = 0, 1, 2
# flux kinds for burgers_step
GODUNOV, UPWIND = 0, 1
# the same codes by scheme / equation name (also used by the fused kernels)
FLUX_CODES = {"godunov": GODUNOV, "upwind": UPWIND}
REACTION_CODES = {"fisher_kpp": FISHER_KPP, "allen_cahn": ALLEN_CAHN, "gray_scott": GRAY_SCOTT}


@njit(cache=True, fastmath=False)
def stencil_step(src, dst, dys, dxs, weights, gy, gx, prev, beta):  # pragma: no cover - jit
    """``dst = beta * prev + sum_k weights[k] * src[shift_k]`` on the interior.

    src, dst, prev : (S, Y + 2 gy, X + 2 gx) float64; dys, dxs : (K,) int64; weights : (K,).
    ``beta = 0`` skips ``prev`` (pass any buffer of the right shape).
    """
    n_samples, yp, xp = src.shape
    ny = yp - 2 * gy
    nx = xp - 2 * gx
    for s in range(n_samples):
        for y in range(gy, gy + ny):
            out = dst[s, y, gx:gx + nx]  # (X,)
            if beta != 0.0:
                old = prev[s, y, gx:gx + nx]
                for x in range(nx):
                    out[x] = beta * old[x]
            else:
                for x in range(nx):
                    out[x] = 0.0
            for k in range(weights.shape[0]):
                row = src[s, y + dys[k]]
                start = gx + dxs[k]
                w = weights[k]
                for x in range(nx):
                    out[x] += w * row[start + x]


@njit(cache=True, fastmath=False, inline="always")
def _flux(left, right, kind):  # pragma: no cover - jit
    """Numerical flux of ``f(u) = u^2 / 2`` at a face between ``left`` and ``right``."""
    if kind == 0:  # Godunov (exact Riemann solution)
        a = max(left, 0.0)
        b = min(right, 0.0)
        return max(0.5 * a * a, 0.5 * b * b)
    # conservative upwind by the Rankine-Hugoniot speed (left + right) / 2
    if left + right >= 0.0:
        return 0.5 * left * left
    return 0.5 * right * right


@njit(cache=True, fastmath=False)
def burgers_step(src, dst, gy, gx, dt, hy, hx, viscosity, kind):  # pragma: no cover - jit
    """One forward-Euler step of ``u_t + div(u^2/2 (1, 1)) = nu lap(u)`` (x only when gy = 0)."""
    n_samples, yp, xp = src.shape
    ny = yp - 2 * gy
    nx = xp - 2 * gx
    cx = dt / hx
    dxx = viscosity * dt / (hx * hx)
    cy = dt / hy
    dyy = viscosity * dt / (hy * hy)
    for s in range(n_samples):
        for y in range(gy, gy + ny):
            for x in range(gx, gx + nx):
                u = src[s, y, x]
                west = src[s, y, x - 1]
                east = src[s, y, x + 1]
                du = -cx * (_flux(u, east, kind) - _flux(west, u, kind))
                du += dxx * (east - 2.0 * u + west)
                if gy > 0:
                    south = src[s, y - 1, x]
                    north = src[s, y + 1, x]
                    du -= cy * (_flux(u, north, kind) - _flux(south, u, kind))
                    du += dyy * (north - 2.0 * u + south)
                dst[s, y, x] = u + du


@njit(cache=True, fastmath=False)
def react_step(u, v, u_out, v_out, gy, gx, dt, kind, p0, p1):  # pragma: no cover - jit
    """Add ``dt * reaction(u, v)`` to the interior of ``u_out`` (and ``v_out`` for Gray-Scott).

    Fisher-KPP: ``R = p0 u (1 - u)``; Allen-Cahn: ``R = p0 (u - u^3)``;
    Gray-Scott: ``R_u = -u v^2 + p0 (1 - u)``, ``R_v = u v^2 - (p0 + p1) v`` (p0 feed, p1 kill).
    """
    n_samples, yp, xp = u.shape
    ny = yp - 2 * gy
    nx = xp - 2 * gx
    for s in range(n_samples):
        for y in range(gy, gy + ny):
            for x in range(gx, gx + nx):
                a = u[s, y, x]
                if kind == 0:
                    u_out[s, y, x] += dt * p0 * a * (1.0 - a)
                elif kind == 1:
                    u_out[s, y, x] += dt * p0 * (a - a * a * a)
                else:
                    b = v[s, y, x]
                    uvv = a * b * b
                    u_out[s, y, x] += dt * (p0 * (1.0 - a) - uvv)
                    v_out[s, y, x] += dt * (uvv - (p0 + p1) * b)


@njit(cache=True, fastmath=False)
def nonfinite(buf):  # pragma: no cover - jit
    """True if any entry of the (S, Yp, Xp) buffer is NaN or infinite."""
    acc = 0.0
    for value in buf.ravel():
        acc += value - value  # 0 for finite values, NaN otherwise
    return acc != 0.0


def offsets_for_kernel(offsets: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Split ``(K, ndim)`` stencil offsets into contiguous ``(dys, dxs)`` int64 arrays."""
    offsets = np.asarray(offsets, dtype=np.int64)
    dxs = np.ascontiguousarray(offsets[:, -1])
    dys = np.ascontiguousarray(offsets[:, 0]) if offsets.shape[1] == 2 else np.zeros_like(dxs)
    return dys, dxs
